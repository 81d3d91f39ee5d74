{{/* Files the controller reads: a metrics certificate, notification URLs. Only when used. */}}
{{- define "canaryctl.volumeMounts" -}}
{{- if or .Values.metrics.certSecret .Values.notifications.url.secretName .Values.notifications.config.secretName }}
volumeMounts:
  {{- if .Values.metrics.certSecret }}
  - name: metrics-tls
    mountPath: /etc/canaryctl/metrics-tls
    readOnly: true
  {{- end }}
  {{- if .Values.notifications.url.secretName }}
  - name: notify-url
    mountPath: /etc/canaryctl/notify
    readOnly: true
  {{- end }}
  {{- if .Values.notifications.config.secretName }}
  - name: notify-config
    mountPath: /etc/canaryctl/notify-config
    readOnly: true
  {{- end }}
{{- end }}
{{- end -}}

{{- define "canaryctl.volumes" -}}
{{- if or .Values.metrics.certSecret .Values.notifications.url.secretName .Values.notifications.config.secretName }}
volumes:
  {{- with .Values.metrics.certSecret }}
  - name: metrics-tls
    secret:
      secretName: {{ . }}
  {{- end }}
  {{- with .Values.notifications.url }}
  {{- if .secretName }}
  - name: notify-url
    secret:
      secretName: {{ .secretName }}
      items: [{key: {{ .key | quote }}, path: url}]
  {{- end }}
  {{- end }}
  {{- with .Values.notifications.config }}
  {{- if .secretName }}
  - name: notify-config
    secret:
      secretName: {{ .secretName }}
      items: [{key: {{ .key | quote }}, path: channels.json}]
  {{- end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* The name of every object; cluster-scoped ones too. */}}
{{- define "canaryctl.fullname" -}}
{{- .Values.fullnameOverride | default .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The pod labels the Deployment selects on (as in manifests/deployment.yaml). */}}
{{- define "canaryctl.selectorLabels" -}}
app.kubernetes.io/name: canaryctl
app.kubernetes.io/component: controller
{{- end -}}

{{- define "canaryctl.labels" -}}
app.kubernetes.io/name: canaryctl
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Two replicas only make sense with leader election: only the Lease holder writes. */}}
{{- define "canaryctl.ha" -}}
{{- if and .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{ end -}}
{{- end -}}

{{- define "canaryctl.args" -}}
- run
- --log-format={{ .Values.logFormat }}
{{- if .Values.metrics.secure }}
- --metrics-secure
{{- end }}
{{- if .Values.leaderElection.enabled }}
- --leader-elect
{{- if ne .Values.leaderElection.leaseName "canaryctl" }}
- --leader-elect-lease-name={{ .Values.leaderElection.leaseName }}
{{- end }}
{{- end }}
{{- if eq .Values.gateway.backend "gateway-api" }}
- --gateway=gateway-api
{{- end }}
{{- if .Values.metrics.certSecret }}
- --metrics-cert-file=/etc/canaryctl/metrics-tls/tls.crt
- --metrics-key-file=/etc/canaryctl/metrics-tls/tls.key
{{- end }}
{{- range .Values.watchNamespaces | uniq }}
- --namespace={{ . }}
{{- end }}
{{- range .Values.hookAllow }}
- --hook-allow={{ . }}
{{- end }}
{{- with .Values.prometheusUrl }}
- --prometheus-url={{ . }}
{{- end }}
{{- if .Values.notifications.url.secretName }}
- --notify-url-file=/etc/canaryctl/notify/url
- --notify-format={{ .Values.notifications.format }}
{{- end }}
{{- if .Values.notifications.config.secretName }}
- --notify-config=/etc/canaryctl/notify-config/channels.json
{{- end }}
{{- range .Values.extraArgs }}
- {{ . }}
{{- end }}
{{- if .Values.appBindings.required }}
- --require-app-binding
{{- end }}
{{- end -}}

{{/* What the controller does to the Services it watches: the informer (list, watch), the
status annotation (patch), Events on them (create, patch a repeated one). */}}
{{- define "canaryctl.serviceRules" -}}
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}

{{/* The Gateway API backend's HTTPRoutes, beside the Services they route to. */}}
{{- define "canaryctl.routeRules" -}}
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end -}}

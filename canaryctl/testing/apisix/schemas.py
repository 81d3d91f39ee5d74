"""APISIX's JSON schemas for what canaryctl writes: routes, upstreams and the traffic-split plugin.

Transcribed from apache/apisix `apisix/schema_def.lua` (route, upstream, id, host, labels)
and `apisix/plugins/traffic-split.lua` (APISIX 3.x: an upstream's `type` defaults to
`roundrobin`, a node's `port` is optional). Sub-schemas canaryctl never sends (health
`checks`, `tls`, `keepalive_pool`, `discovery_args`) are reduced to their type. Defaults
written here end up in stored values, as APISIX's validator injects them.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

ID: Schema = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[a-zA-Z0-9-_.]+$"},
        {"type": "integer", "minimum": 1},
    ]
}
HOST: Schema = {"type": "string", "pattern": r"^\*?[0-9a-zA-Z-._\[\]:]+$"}
TIMESTAMP: Schema = {"type": "integer"}
NAME: Schema = {"type": "string", "maxLength": 100, "minLength": 1}
DESC: Schema = {"type": "string", "maxLength": 256}
LABELS: Schema = {
    "type": "object",
    "patternProperties": {
        ".*": {"type": "string", "pattern": r"^\S+$", "maxLength": 64, "minLength": 1}
    },
    "maxProperties": 16,
}
TIMEOUT: Schema = {
    "type": "object",
    "properties": {
        part: {"type": "number", "exclusiveMinimum": 0} for part in ("connect", "send", "read")
    },
    "required": ["connect", "send", "read"],
}
_WEIGHT: Schema = {"type": "integer", "minimum": 0}
NODES: Schema = {
    "anyOf": [
        {"type": "object", "patternProperties": {".*": _WEIGHT}},
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "host": HOST,
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "weight": _WEIGHT,
                    "priority": {"type": "integer", "default": 0},
                    "metadata": {"type": "object"},
                },
                "required": ["host", "weight"],
            },
        },
    ]
}
UPSTREAM: Schema = {
    "type": "object",
    "properties": {
        "create_time": TIMESTAMP,
        "update_time": TIMESTAMP,
        "nodes": NODES,
        "retries": {"type": "integer", "minimum": 0},
        "retry_timeout": {"type": "number", "minimum": 0},
        "timeout": TIMEOUT,
        "tls": {"type": "object"},
        "keepalive_pool": {"type": "object"},
        "type": {
            "type": "string",
            "default": "roundrobin",
            "enum": ["chash", "roundrobin", "ewma", "least_conn"],
        },
        "checks": {"type": "object"},
        "hash_on": {
            "type": "string",
            "default": "vars",
            "enum": ["vars", "header", "cookie", "consumer", "vars_combinations"],
        },
        "key": {"type": "string"},
        "scheme": {"default": "http", "enum": ["grpc", "grpcs", "http", "https"]},
        "labels": LABELS,
        "discovery_type": {"type": "string"},
        "discovery_args": {"type": "object"},
        "pass_host": {"type": "string", "enum": ["pass", "node", "rewrite"], "default": "pass"},
        "upstream_host": HOST,
        "name": NAME,
        "desc": DESC,
        "service_name": {"type": "string", "maxLength": 256, "minLength": 1},
        "id": ID,
    },
    "oneOf": [{"required": ["nodes"]}, {"required": ["service_name", "discovery_type"]}],
    "additionalProperties": False,
}
_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"]
_IP = [
    {"title": "IPv4", "type": "string", "format": "ipv4"},
    {"title": "IPv4/CIDR", "type": "string", "pattern": r"^[0-9.]+/([12]?[0-9]|3[0-2])$"},
    {"title": "IPv6", "type": "string", "format": "ipv6"},
    {"title": "IPv6/CIDR", "type": "string", "pattern": r"^[a-fA-F0-9:]+/[0-9]{1,3}$"},
]
_REMOTE_ADDR: Schema = {"type": "string", "anyOf": _IP}


def _one_or_other(first: str, second: str) -> Schema:
    """Neither of the two properties, or exactly one of them."""
    either = {"anyOf": [{"required": [first]}, {"required": [second]}]}
    return {"oneOf": [{"not": either}, {"required": [first]}, {"required": [second]}]}


ROUTE: Schema = {
    "type": "object",
    "properties": {
        "create_time": TIMESTAMP,
        "update_time": TIMESTAMP,
        "uri": {"type": "string", "minLength": 1, "maxLength": 4096},
        "uris": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        "name": NAME,
        "desc": DESC,
        "priority": {"type": "integer", "default": 0},
        "methods": {
            "type": "array",
            "items": {"type": "string", "enum": _METHODS},
            "uniqueItems": True,
        },
        "host": HOST,
        "hosts": {"type": "array", "items": HOST, "minItems": 1, "uniqueItems": True},
        "remote_addr": _REMOTE_ADDR,
        "remote_addrs": {
            "type": "array",
            "items": _REMOTE_ADDR,
            "minItems": 1,
            "uniqueItems": True,
        },
        "timeout": TIMEOUT,
        "vars": {"type": "array"},
        "filter_func": {"type": "string", "minLength": 10, "pattern": r"^function"},
        "script": {"type": "string", "minLength": 10, "maxLength": 102400},
        "script_id": ID,
        "plugins": {"type": "object"},
        "plugin_config_id": ID,
        "upstream": UPSTREAM,
        "labels": LABELS,
        "service_id": ID,
        "upstream_id": ID,
        "service_protocol": {"enum": ["grpc", "http"]},
        "enable_websocket": {"type": "boolean"},
        "id": ID,
        "status": {"type": "integer", "enum": [1, 0], "default": 1},
    },
    "allOf": [
        {"oneOf": [{"required": ["uri"]}, {"required": ["uris"]}]},
        _one_or_other("host", "hosts"),
        _one_or_other("remote_addr", "remote_addrs"),
    ],
    "anyOf": [
        {"required": [what, match]}
        for match in ("uri", "uris")
        for what in ("plugins", "upstream", "upstream_id", "service_id")
    ]
    + [{"required": ["script", "uri"]}, {"required": ["script", "uris"]}],
    "not": {
        "anyOf": [{"required": ["script", "plugins"]}, {"required": ["script", "plugin_config_id"]}]
    },
    "additionalProperties": False,
}

TRAFFIC_SPLIT: Schema = {
    "type": "object",
    "properties": {
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "match": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"vars": {"type": "array"}}},
                    },
                    "weighted_upstreams": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "upstream_id": ID,
                                "upstream": UPSTREAM,
                                "weight": {"type": "integer", "default": 1, "minimum": 0},
                            },
                        },
                        "default": [{"weight": 1}],
                        "minItems": 1,
                        "maxItems": 20,
                    },
                },
                "additionalProperties": False,
            },
        }
    },
    "additionalProperties": False,
}

PROMETHEUS: Schema = {
    "type": "object",
    "properties": {"prefer_name": {"type": "boolean", "default": False}},
}

# Plugins of APISIX's default `plugins:` list the emulator accepts without checking their
# configuration (only traffic-split and prometheus are checked and emulated).
UNCHECKED_PLUGINS = frozenset(
    """real-ip ai client-control proxy-control request-id zipkin ext-plugin-pre-req
    fault-injection mocking serverless-pre-function cors ip-restriction ua-restriction
    referer-restriction csrf uri-blocker request-validation chaitin-waf multi-auth
    openid-connect cas-auth authz-casbin authz-casdoor wolf-rbac ldap-auth hmac-auth
    basic-auth jwt-auth jwe-decrypt key-auth consumer-restriction attach-consumer-label
    forward-auth opa authz-keycloak proxy-cache body-transformer ai-prompt-template
    ai-prompt-decorator ai-prompt-guard ai-rag ai-rate-limiting ai-proxy ai-proxy-multi
    ai-content-moderation proxy-mirror proxy-rewrite workflow api-breaker limit-conn
    limit-count limit-req gzip server-info redirect response-rewrite degraphql kafka-proxy
    grpc-transcode grpc-web http-dubbo public-api datadog loki-logger elasticsearch-logger
    echo loggly http-logger splunk-hec-logging skywalking-logger google-cloud-logging
    sls-logger tcp-logger kafka-logger rocketmq-logger syslog udp-logger file-logger
    clickhouse-logger tencent-cloud-cls inspect example-plugin aws-lambda azure-functions
    openwhisk openfunction serverless-post-function ext-plugin-post-req
    ext-plugin-post-resp""".split()  # noqa: SIM905 - a word list reads better than 90 lines
)

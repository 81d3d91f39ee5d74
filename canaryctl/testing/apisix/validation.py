"""The checks APISIX's Admin API runs on a route or upstream before storing it, with its words.

Follows apache/apisix `apisix/admin/resource.lua` (`check_conf`: body, id, forbidden
timestamps), `apisix/admin/routes.lua`, `apisix/admin/upstreams.lua`,
`apisix/upstream.lua` (`check_upstream_conf`), `apisix/admin/plugins.lua`
(`check_schema`) and `apisix/plugins/traffic-split.lua` (`check_schema`). Every function
returns None when the value is fine (schema defaults filled in, as APISIX stores them)
or the `error_msg` the Admin API answers with status 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from canaryctl.testing.apisix import schemas
from canaryctl.testing.apisix.expr import ExprError, compile_vars
from canaryctl.testing.apisix.jsonschema import check, lua_number

# upstream_hash_vars_schema of schema_def.lua: which variables a chash `key` may name
_HASH_VARS = {
    "type": "string",
    "pattern": r"^((uri|server_name|server_addr|request_uri|remote_port|remote_addr"
    r"|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+)$",
}
_HASH_HEADER = {"type": "string", "pattern": r"^[a-zA-Z0-9-_]+$"}
_HASH_KEY_SCHEMAS = {"vars": _HASH_VARS, "header": _HASH_HEADER, "cookie": _HASH_HEADER}

Exists = Callable[[str, Any], bool]  # (resource, id) -> is it stored?


class _Absent:
    """No request body at all (JSON `null` is None, which APISIX treats differently)."""

    def __repr__(self) -> str:
        return "ABSENT"

    def __deepcopy__(self, memo: dict) -> _Absent:
        return self  # one marker, compared by identity


ABSENT: Any = _Absent()


def lua_tostring(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return lua_number(value)
    return str(value)


def check_id(kind: str, url_id: str | None, conf: Any, need_id: bool) -> tuple[Any, str | None]:
    """resource.lua's id rules: (the id to store under, error)."""
    if conf is ABSENT:
        return None, "missing configurations"
    if not isinstance(conf, dict):
        return url_id, None  # the schema refuses it with its own words
    resource_id = url_id if url_id is not None else conf.get("id")
    if need_id and resource_id is None:
        return None, f"missing {kind} id"
    if not need_id and resource_id is not None:
        return None, f"wrong {kind} id, do not need it"
    if need_id and "id" in conf and lua_tostring(conf["id"]) != lua_tostring(resource_id):
        return None, f"wrong {kind} id"
    if resource_id is not None:
        conf["id"] = resource_id
    return resource_id, None


def forbidden_timestamps(conf: Any) -> str | None:
    """PUT and POST may not set `create_time` / `update_time` (PATCH may)."""
    if not isinstance(conf, dict):
        return None
    for prefix, part in (
        ("", conf),
        ("upstream.", conf.get("upstream")),
        ("plugins.", conf.get("plugins")),
    ):
        for name in ("create_time", "update_time"):
            if isinstance(part, dict) and part.get(name) is not None:
                return f"the property is forbidden:  {prefix}{name}"
    return None


def check_upstream(conf: Any) -> str | None:
    """An upstream resource, or a route's inline upstream (`check_upstream_conf`)."""
    error = check(schemas.UPSTREAM, conf)
    if error:
        return f"invalid configuration: {error}"
    if conf.get("pass_host") == "rewrite" and not conf.get("upstream_host"):
        return "`upstream_host` can't be empty when `pass_host` is `rewrite`"
    if conf.get("type") != "chash":
        return None
    hash_on = conf.get("hash_on")
    if hash_on != "consumer" and conf.get("key") is None:
        return "missing key"
    key_schema = _HASH_KEY_SCHEMAS.get(hash_on, {"type": "string"})
    error = None if hash_on == "consumer" else check(key_schema, conf["key"])
    return f"invalid configuration: {error}" if error else None


def check_route(conf: Any, exists: Exists) -> str | None:
    """A route (routes.lua `check_conf`); `exists` answers the upstream_id reference check."""
    if isinstance(conf, dict):
        if "host" in conf and "hosts" in conf:
            return "only one of host or hosts is allowed"
        if "remote_addr" in conf and "remote_addrs" in conf:
            return "only one of remote_addr or remote_addrs is allowed"
    error = check(schemas.ROUTE, conf)
    if error:
        return f"invalid configuration: {error}"
    if "upstream" in conf and (error := check_upstream(conf["upstream"])):
        return error
    for field, resource, label in (
        ("upstream_id", "upstreams", "upstream info by upstream id"),
        ("service_id", "services", "service info by service id"),
        ("plugin_config_id", "plugin_configs", "plugin config info by plugin config id"),
    ):
        ref = conf.get(field)
        if ref is not None and not exists(resource, ref):
            return f"failed to fetch {label} [{lua_tostring(ref)}], response code: 404"
    if "plugins" in conf and (error := check_plugins(conf["plugins"])):
        return error
    if "vars" in conf:
        try:
            compile_vars(conf["vars"])
        except ExprError as bad:
            return f"failed to validate the 'vars' expression: {bad}"
    return None


def check_plugins(plugins: dict[str, Any]) -> str | None:
    """Each plugin must be known and its configuration valid (admin/plugins.lua)."""
    for name, conf in plugins.items():
        if not isinstance(conf, dict):
            shown = json.dumps(conf, separators=(",", ":"))
            return f"invalid plugin conf {shown} for plugin [{name}]"
        if name in schemas.UNCHECKED_PLUGINS:
            continue
        checker = _PLUGIN_CHECKS.get(name)
        if checker is None:
            return f"unknown plugin [{name}]"
        error = checker(conf)
        if error:
            return f"failed to check the configuration of plugin {name} err: {error}"
    return None


def check_traffic_split(conf: dict[str, Any]) -> str | None:
    error = check(schemas.TRAFFIC_SPLIT, conf)
    if error:
        return error
    for rule in conf.get("rules") or []:
        for entry in rule.get("match") or []:
            try:
                compile_vars(entry.get("vars"))
            except ExprError as bad:
                return f"failed to validate the 'vars' expression: {bad}"
    return None


_PLUGIN_CHECKS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "traffic-split": check_traffic_split,
    "prometheus": lambda conf: check(schemas.PROMETHEUS, conf),
}

"""What a client may send for each API7 Cloud resource, checked and cut to what the server keeps.

The emulator must refuse what the real service would refuse (the 400s of the spec) and
silently ignore what a client is not allowed to set (ids, status, timestamps, read-only
lists). Keeping that in pure functions lets the store stay about state and the HTTP
layer about transport.

Beyond the spec's 400s, a body that is not a JSON object, a known field of the wrong JSON
type, a missing `name`, and enum values outside their set (`path_type`, API `type`, canary
`state`/`type`, rule `position`/`operator`) are 400 too: the Go service decodes into typed
structs and would not accept them either.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from canaryctl.testing.api7cloud.routing import RULE_OPERATORS, RULE_POSITIONS

Json = dict[str, Any]

CANARY_STATES = ("paused", "in_progress", "finished")
CANARY_TYPES = ("percent", "rule")
PATH_TYPES = ("Prefix", "Exact")
API_TYPES = ("Rest", "WebSocket")
UPSTREAM_SCHEMES = ("http", "https")
NORMAL_STATUS = 50  # the SDK's EntityStatus "Normal"


class ApiError(Exception):
    """A request the Open API answers with an error envelope (or plain text for 5xx)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(kind: str, resource_id: str) -> ApiError:
    return ApiError(404, f"{kind} {resource_id} not found")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(body: Json, key: str, check: Callable[[Any], bool], expected: str, default: Any) -> Any:
    """The value of `key` (or `default` when absent/null), 400 when of the wrong JSON type."""
    value = body.get(key)
    if value is None:
        return copy.deepcopy(default)
    if not check(value):
        raise bad_request(f"field {key!r} must be {expected}")
    return copy.deepcopy(value)


def _string(body: Json, key: str, default: str = "") -> str:
    return _field(body, key, lambda v: isinstance(v, str), "a string", default)


def _integer(body: Json, key: str, default: int = 0) -> int:
    return _field(body, key, _is_int, "an integer", default)


def _boolean(body: Json, key: str) -> bool:
    return _field(body, key, lambda v: isinstance(v, bool), "a boolean", False)


def _object(body: Json, key: str) -> Json | None:
    return _field(body, key, lambda v: isinstance(v, dict), "an object", None)


def _string_list(body: Json, key: str) -> list[str] | None:
    check = lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v)  # noqa: E731
    return _field(body, key, check, "an array of strings", None)


def _object_list(body: Json, key: str) -> list[Json] | None:
    check = lambda v: isinstance(v, list) and all(isinstance(item, dict) for item in v)  # noqa: E731
    return _field(body, key, check, "an array of objects", None)


def _one_of(value: str, allowed: tuple[str, ...], key: str) -> str:
    if value not in allowed:
        raise bad_request(f"field {key!r} must be one of {', '.join(allowed)} (got {value!r})")
    return value


def require_object(body: Any) -> Json:
    """The request body as a JSON object, or 400."""
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


def _named(body: Json, kind: str) -> str:
    name = _string(body, "name")
    if not name:
        raise bad_request(f"{kind} name is required")
    return name


def _check_upstream(entry: Json) -> None:
    if not isinstance(entry.get("version"), str) or not entry["version"]:
        raise bad_request("every upstream needs a non-empty string 'version'")
    upstream = _object(entry, "upstream") or {}
    _one_of(_string(upstream, "scheme", "http"), UPSTREAM_SCHEMES, "scheme")
    for target in _object_list(upstream, "targets") or []:
        if not isinstance(target.get("host"), str) or not _is_int(target.get("port")):
            raise bad_request("every upstream target needs a string 'host' and an integer 'port'")
        _integer(target, "weight")


def application_spec(body: Any) -> Json:
    """The client-settable fields of an Application; management fields are dropped."""
    body = require_object(body)
    upstreams = _object_list(body, "upstreams")
    for entry in upstreams or []:
        _check_upstream(entry)
    return {
        "name": _named(body, "application"),
        "description": _string(body, "description"),
        "labels": _string_list(body, "labels"),
        "protocols": _string_list(body, "protocols"),
        "path_prefix": _string(body, "path_prefix"),
        "hosts": _string_list(body, "hosts"),
        "plugins": _object(body, "plugins"),
        "upstreams": upstreams,
        "default_upstream_version": _string(body, "default_upstream_version"),
        "active": _integer(body, "active"),
    }


def _check_api_path(entry: Json) -> None:
    if not isinstance(entry.get("path"), str):
        raise bad_request("every API path needs a string 'path'")
    _one_of(_string(entry, "path_type", "Prefix"), PATH_TYPES, "path_type")


def api_spec(body: Any) -> Json:
    """The client-settable fields of an API (a route inside an application)."""
    body = require_object(body)
    paths = _object_list(body, "paths")
    for entry in paths or []:
        _check_api_path(entry)
    return {
        "name": _named(body, "API"),
        "description": _string(body, "description"),
        "labels": _string_list(body, "labels"),
        "methods": _string_list(body, "methods"),
        "paths": paths,
        "strip_path_prefix": _boolean(body, "strip_path_prefix"),
        "plugins": _object(body, "plugins"),
        "active": _integer(body, "active"),
        "type": _one_of(_string(body, "type", "Rest"), API_TYPES, "type"),
    }


def _check_rule(rule: Json) -> None:
    _one_of(_string(rule, "position"), RULE_POSITIONS, "position")
    _one_of(_string(rule, "operator"), tuple(RULE_OPERATORS), "operator")
    if not _string(rule, "key"):
        raise bad_request("every canary rule needs a non-empty 'key'")


def canary_spec(body: Any, upstream_versions: list[str]) -> Json:
    """The client-settable fields of a CanaryRelease; `percent` missing means 0."""
    body = require_object(body)
    version = _string(body, "canary_upstream_version")
    if version not in upstream_versions:
        raise bad_request(
            f"canary_upstream_version {version!r} names no upstream of the application"
        )
    percent = _integer(body, "percent")
    if not 0 <= percent <= 100:
        raise bad_request(f"percent must be within 0-100 (got {percent})")
    rules = _object_list(body, "rules")
    for rule in rules or []:
        _check_rule(rule)
    return {
        "name": _string(body, "name"),
        "state": _one_of(_string(body, "state"), CANARY_STATES, "state"),
        "type": _one_of(_string(body, "type"), CANARY_TYPES, "type"),
        "canary_upstream_version": version,
        "percent": percent,
        "rules": rules,
    }

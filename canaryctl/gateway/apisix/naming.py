"""The ids, names and label values of canaryctl's APISIX objects, derived from the app's name.

Ids are a function of the application name (and, for an upstream, of the Service key), so
creating an object is an idempotent PUT: a retry after a lost answer, or a second controller
replica, writes the same object again instead of a duplicate. APISIX limits what fits
(apache/apisix `apisix/schema_def.lua`): ids are 1-64 characters of `[a-zA-Z0-9-._]`, label
values 1-64 non-space characters, names 1-100 characters, `desc` up to 256. Application
names are DNS subdomains of up to 253 characters, so:

- readable ids while they fit: route `canaryctl-<app>`, upstream
  `canaryctl-<app>.<namespace>.<service>`; otherwise `canaryctl_` + a cut of the name + a
  SHA-256 prefix (`_` never occurs in a DNS name, so the two forms never collide);
- names and label values that do not fit are cut and end in a hash of the whole text;
- the exact application name is kept in the route's `desc`, the exact Service key in each
  upstream's `desc`, and every upstream's `name` starts with its route's id, which lets one
  application's upstreams be listed with the Admin API's `name` filter.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "canaryctl-"
HASHED_PREFIX = "canaryctl_"
ID_MAX = 64
LABEL_MAX = 64
NAME_MAX = 100
_NOT_ID = re.compile(r"[^a-zA-Z0-9._-]")


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:length]


def _hashed_id(readable_part: str, *parts: str) -> str:
    """`canaryctl_<cut of readable_part>-<hash of parts>`, exactly 64 characters at most."""
    cut = _NOT_ID.sub("-", readable_part)[:21]
    return f"{HASHED_PREFIX}{cut}-{_digest(*parts, length=32)}"


def route_id(app: str) -> str:
    """The id of the application's route."""
    readable = PREFIX + app
    if len(readable) <= ID_MAX and not _NOT_ID.search(app):
        return readable
    return _hashed_id(app, app)


def upstream_id(app: str, key: str) -> str:
    """The id of the upstream for Service `key` (`namespace/service`) in application `app`."""
    namespace, _, service = key.rpartition("/")
    parts = (app, namespace, service)
    readable = PREFIX + ".".join(parts)
    if (
        len(readable) <= ID_MAX
        and namespace
        and "." not in namespace  # the key is parsed back from the right
        and "." not in service
        and not _NOT_ID.search(readable)  # PREFIX and the dots are id characters too
    ):
        return readable
    return _hashed_id(service, app, key)


def upstream_name(app: str, key: str) -> str:
    """`<route id> <namespace/service>`: readable, and prefixed for the `name` list filter."""
    return fit(f"{route_id(app)} {key}", NAME_MAX)


def upstream_name_filter(app: str) -> str:
    """The Admin API `name` filter (a PCRE) matching the upstreams of `app`."""
    return "^" + re.escape(route_id(app)) + " "


def fit(text: str, limit: int) -> str:
    """`text`, or when longer than `limit` its start and a hash of the whole (`limit` long)."""
    if len(text) <= limit:
        return text
    digest = _digest(text, length=16)
    return f"{text[: limit - len(digest) - 1]}~{digest}"


def label_value(text: str) -> str:
    """`text` as an APISIX label value (non-space, at most 64 characters)."""
    return fit("".join(text.split()) or "-", LABEL_MAX)

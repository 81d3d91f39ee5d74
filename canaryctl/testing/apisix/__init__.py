"""An Apache APISIX emulator: the Admin API (v3) plus a data plane with traffic-split and metrics.

canaryctl's self-hosted APISIX backend is tested against this stand-in, which answers as
APISIX 3.x does for routes and upstreams. Modules, one concept each: `jsonschema` (schema
checks in APISIX's validator's words), `schemas` (route, upstream, traffic-split),
`validation` (what the Admin API refuses), `store` (thread-safe etcd-like state and the
Admin API's semantics), `admin` (the Admin API over HTTP), `expr` (`vars` expressions),
`routing` (which route serves a request), `balancer` (weighted round robin and
traffic-split), `dataplane` (the gateway port), `metrics` (the prometheus plugin's series,
shared with the API7 Cloud emulator), `emulator` (the wiring), `cli` (`canaryctl dev
apisix`). Faults, request log, resolve map and the HTTP server come from
`canaryctl.testing.httpemulation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from canaryctl.testing.httpemulation.requestlog import RequestRecord

if TYPE_CHECKING:
    from canaryctl.testing.apisix.emulator import ApisixEmulator

__all__ = ["ApisixEmulator", "RequestRecord"]


def __getattr__(name: str) -> Any:
    """`ApisixEmulator` is imported on first use, so `canaryctl --help` stays light."""
    if name == "ApisixEmulator":
        from canaryctl.testing.apisix.emulator import ApisixEmulator

        return ApisixEmulator
    raise AttributeError(name)

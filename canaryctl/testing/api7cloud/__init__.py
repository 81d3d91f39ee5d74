"""An API7 Cloud emulator: the Open API of `docs/api7-cloud.md` plus a routing data plane.

API7 Cloud is dormant and unreachable, so canaryctl tests its client against this
stand-in. Modules, one concept each: `resources` (what clients may send), `store`
(thread-safe state and semantics), `api` (HTTP transport of the Open API), `admin`
(its part of the `/_emulator/` control API), `routing` (pure split decisions),
`dataplane` (the proxy), `emulator` (the wiring), `cli` (`canaryctl dev api7cloud`).
Faults, request log, resolve map and the HTTP server are shared with the APISIX emulator
(`canaryctl.testing.httpemulation`); the data plane's metrics are APISIX's own series
(`canaryctl.testing.apisix.metrics`).
"""

from canaryctl.testing.api7cloud.emulator import Emulator
from canaryctl.testing.httpemulation.requestlog import RequestRecord

__all__ = ["Emulator", "RequestRecord"]

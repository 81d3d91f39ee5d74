"""An API7 Cloud emulator: the Open API of `specs/api7-cloud.md` plus a routing data plane.

API7 Cloud is dormant and unreachable, so canaryctl tests its client against this
stand-in. Modules, one concept each: `resources` (what clients may send), `store`
(thread-safe state and semantics), `api` (HTTP transport of the Open API), `admin`
(`/_emulator/` control API), `faults`, `requestlog`, `routing` (pure split decisions),
`dataplane` (the proxy), `metrics` (APISIX-named series), `server` (background HTTP
server that really stops), `emulator` (the wiring), `cli` (`canaryctl dev api7cloud`).
"""

from canaryctl.testing.api7cloud.emulator import Emulator
from canaryctl.testing.api7cloud.requestlog import RequestRecord

__all__ = ["Emulator", "RequestRecord"]

"""The Gateway API backend: one HTTPRoute per application, canary weights as backendRef weights.

Layers, bottom up: `client` (raw apiserver calls, errors, retries, metrics), `route` /
`state` / `plan` (pure: what canaryctl writes, what a route means, which writes to make),
`backend` (performs them and watches the routes), `options` (`canaryctl run` flags).
"""

from canaryctl.gateway.gatewayapi.backend import GatewayApiGateway
from canaryctl.gateway.gatewayapi.client import RouteClient
from canaryctl.gateway.model import ParentRef

__all__ = ["GatewayApiGateway", "ParentRef", "RouteClient"]

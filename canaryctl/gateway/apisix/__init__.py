"""The self-hosted Apache APISIX backend: canaryctl's apps as routes and upstreams (Admin API v3).

Layers, bottom up: `transport` (HTTP, the key, errors, retries, metrics), `client` (routes
and upstreams, paged and filtered lists), `naming` (deterministic ids, names and label
values), `bodies` / `diff` / `state` (pure: what canaryctl writes, which calls get there, what
the objects mean), `backend` (performs the calls), `options` (`canaryctl run --gateway apisix`).
"""

from canaryctl.gateway.apisix.backend import ApisixGateway
from canaryctl.gateway.apisix.client import AdminClient
from canaryctl.gateway.apisix.transport import DEFAULT_ADMIN_URL, DEFAULT_TIMEOUT, RetryPolicy

__all__ = ["DEFAULT_ADMIN_URL", "DEFAULT_TIMEOUT", "AdminClient", "ApisixGateway", "RetryPolicy"]

"""The API7 Cloud backend: `Api7Client` speaks the Open API, `Api7Gateway` maps our apps onto it.

Layers, bottom up: `transport` (HTTP, errors, retries, metrics), `client` (resources,
pagination, cluster selection), `bodies` / `diff` / `state` (pure: what canaryctl writes,
which calls get there, what the objects mean), `backend` (performs the calls).
"""

from canaryctl.gateway.api7.backend import Api7Gateway
from canaryctl.gateway.api7.client import Api7Client, ClusterRef
from canaryctl.gateway.api7.transport import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "Api7Client",
    "Api7Gateway",
    "ClusterRef",
    "RetryPolicy",
]

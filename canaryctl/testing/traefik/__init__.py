"""A real Gateway API implementation for tests: Traefik built from the Go module proxy."""

from canaryctl.testing.traefik.backends import Backend
from canaryctl.testing.traefik.build import TraefikUnavailable, ensure_traefik, traefik_version
from canaryctl.testing.traefik.gateway import CONTROLLER_NAME, TraefikGateway

__all__ = [
    "CONTROLLER_NAME",
    "Backend",
    "TraefikGateway",
    "TraefikUnavailable",
    "ensure_traefik",
    "traefik_version",
]

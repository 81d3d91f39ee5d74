"""HTTPRoute helpers for tests: build a weighted route, read what the implementation reported.

Tests and benchmarks write HTTPRoutes directly (canaryctl's own backend writes its own);
these builders keep them short, and `route_condition` reads the status an implementation
writes per parent Gateway (`status.parents[].conditions`), which is the only feedback the
Gateway API gives about whether a route was accepted and its backends resolved.
"""

from __future__ import annotations

from collections.abc import Mapping

from canaryctl.testing.localkube.gateway_api import GROUP
from canaryctl.testing.processes import wait_until
from canaryctl.testing.traefik.backends import SERVICE_PORT

VERSION = "v1"
PLURAL = "httproutes"


def backend_refs(weights: Mapping[str, int]) -> list[dict]:
    """`{service: weight}` -> backendRefs to the Services' port."""
    return [
        {"name": service, "port": SERVICE_PORT, "weight": weight}
        for service, weight in weights.items()
    ]


def http_route(
    name: str, parent_ref: dict, hostname: str, rules: list[dict], labels: dict | None = None
) -> dict:
    """An HTTPRoute attached to `parent_ref` for requests with Host `hostname`."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"parentRefs": [parent_ref], "hostnames": [hostname], "rules": rules},
    }


def weighted_rule(weights: Mapping[str, int], matches: list[dict] | None = None) -> dict:
    rule: dict = {"backendRefs": backend_refs(weights)}
    if matches:
        rule["matches"] = matches
    return rule


def route_condition(
    route: dict, condition: str, controller_name: str, parent_name: str
) -> dict | None:
    """The condition `controller_name` reported for parent Gateway `parent_name`, if any."""
    for parent in route.get("status", {}).get("parents", []):
        if parent.get("controllerName") != controller_name:
            continue
        if parent.get("parentRef", {}).get("name") != parent_name:
            continue
        for entry in parent.get("conditions", []):
            if entry["type"] == condition:
                return entry
    return None


class RouteClient:
    """Create, patch and read HTTPRoutes with a kubernetes ApiClient."""

    def __init__(self, api_client):
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)

    def create(self, namespace: str, body: dict) -> dict:
        return self.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def get(self, namespace: str, name: str) -> dict:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    def set_rules(self, namespace: str, name: str, rules: list[dict]) -> dict:
        """Replace the route's rules (a merge patch replaces lists whole)."""
        patch = {"spec": {"rules": rules}}
        return self.api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, patch
        )

    def wait_condition(
        self,
        namespace: str,
        name: str,
        condition: str,
        controller_name: str,
        parent_name: str,
        status: str = "True",
        timeout: float = 30,
    ) -> dict:
        """Wait until the condition has `status` for the route's current generation."""
        found: dict = {}

        def reported() -> bool:
            route = self.get(namespace, name)
            entry = route_condition(route, condition, controller_name, parent_name)
            generation = route["metadata"]["generation"]
            if entry and entry["status"] == status and entry["observedGeneration"] == generation:
                found.update(entry)
                return True
            return False

        wait_until(reported, timeout, f"{condition}={status} on HTTPRoute {namespace}/{name}")
        return found

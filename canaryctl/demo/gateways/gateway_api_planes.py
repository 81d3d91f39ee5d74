"""The two data planes the Gateway API demo kit can put behind its Gateway.

`TraefikPlane` is a real Gateway API implementation: Traefik (built from the Go module proxy,
see `canaryctl.testing.traefik`) programs a Gateway of its own class, routes by the
HTTPRoutes canaryctl writes, reports their status, and exports the request metrics the
release analysis reads. Its backends must sit behind EndpointSlices at an address that is
not loopback, so the error-page servers listen inside a private network namespace (built in
this process, so their fail rate can still change while they run) and the plane writes one
EndpointSlice per Service, as the EndpointSlice controller would for a ready pod.

`FollowerPlane` is the stand-in for machines where Traefik cannot run (no root, no `ip`, no
Go to build it): `canaryctl.testing.routefollower` follows the routes' weights and matches,
and the analysis reads the backends' own metrics. Both answer the same questions: where to
send requests, what is routed for an app now, which queries judge a canary.
"""

from __future__ import annotations

import json
import secrets
from contextlib import ExitStack
from typing import Any

import requests

from canaryctl.examples.errorpage import ErrorPage
from canaryctl.gateway.gatewayapi.route import GROUP
from canaryctl.gateway.model import ParentRef
from canaryctl.kube import load_api_client
from canaryctl.testing.routefollower import RouteFollower
from canaryctl.testing.traefik import TraefikGateway, traefik_version
from canaryctl.testing.traefik.backends import create_endpoint_slice, slice_name
from canaryctl.testing.traefik.netns import check_possible
from canaryctl.testing.traefik.runtime import RoutedRule, rawdata, routed_rules

GATEWAY_NAMESPACE = "canaryctl-gateway"
Backends = list[tuple[str, int]]  # ("namespace/service", weight) of the weighted rule

# Traefik's own series: one service per backendRef, named after the route and the Service
# (see canaryctl/testing/traefik/runtime.py); `{app}` is the route's name.
_TRAEFIK_BACKEND = "-svc-{namespace}-{service}-[0-9]+@kubernetesgateway"
_TRAEFIK_SERVICE = f'service=~"httproute-{{namespace}}-{{app}}-gw-.+{_TRAEFIK_BACKEND}"'
_TRAEFIK_REQUESTS = (
    f"sum(increase(traefik_service_requests_total{{{_TRAEFIK_SERVICE}}}[{{window}}]))"
)
TRAEFIK_QUERIES = {
    "requests": _TRAEFIK_REQUESTS,
    "errors": "sum(increase(traefik_service_requests_total"
    f'{{{_TRAEFIK_SERVICE},code=~"5.."}}[{{window}}]))',
    "latency-p99": "1000 * histogram_quantile(0.99, sum by (le) (rate("
    f"traefik_service_request_duration_seconds_bucket{{{_TRAEFIK_SERVICE}}}[{{window}}])))",
    "observed-requests": _TRAEFIK_REQUESTS,
}
# The backends' own metrics, labelled by Prometheus with the Service they stand for.
_BACKEND = 'namespace="{namespace}",service="{service}"'
_BACKEND_REQUESTS = f"sum(increase(http_requests_total{{{_BACKEND}}}[{{window}}]))"
BACKEND_QUERIES = {
    "requests": _BACKEND_REQUESTS,
    "errors": f'sum(increase(http_requests_total{{{_BACKEND},code=~"5.."}}[{{window}}]))',
    "latency-p99": "1000 * histogram_quantile(0.99, sum by (le) "
    f"(rate(http_request_duration_seconds_bucket{{{_BACKEND}}}[{{window}}])))",
    "observed-requests": _BACKEND_REQUESTS,
}


def service_of(host_port: str) -> tuple[str, str]:
    """(namespace, service) of `service.namespace.svc.<domain>:port`."""
    service, namespace = host_port.split(".")[:2]
    return namespace, service


class TraefikPlane:
    """Traefik serving a Gateway of its own in GATEWAY_NAMESPACE."""

    name = "traefik"
    backend_metrics = False  # Prometheus scrapes Traefik itself
    metrics_path = "/metrics"
    queries = TRAEFIK_QUERIES

    def __init__(self, kube: Any, namespace: str, progress) -> None:
        self.kube, self.namespace = kube, namespace
        name = f"traefik-{secrets.token_hex(3)}"  # routes left by other runs never attach
        self.gateway = TraefikGateway(kube, GATEWAY_NAMESPACE, name, progress)
        self.session = requests.Session()
        self._slices: list[tuple[str, str]] = []  # (namespace, EndpointSlice name)

    def start(self, stack: ExitStack) -> None:
        check_possible()  # before a first build of Traefik that could not run anyway
        stack.enter_context(self.gateway)
        stack.callback(self._delete_slices)
        stack.callback(self.session.close)
        self.gateway.wait_programmed()

    @property
    def parent(self) -> ParentRef:
        return ParentRef(GATEWAY_NAMESPACE, self.gateway.name)

    @property
    def description(self) -> str:
        return (
            f"Traefik {traefik_version()}, a real Gateway API implementation "
            f"(Gateway {self.parent}, class {self.gateway.gateway_class})"
        )

    @property
    def emulator(self) -> TraefikGateway:
        return self.gateway

    @property
    def dataplane_url(self) -> str:
        return self.gateway.url

    @property
    def metrics_target(self) -> str:
        return f"127.0.0.1:{self.gateway.admin_port}"

    def new_backend(self, version: str, fail_rate: float) -> ErrorPage:
        """An error-page server listening in the backend network namespace."""
        network = self.gateway.network
        return network.build_inside(
            lambda: ErrorPage(version=version, fail_rate=fail_rate, host=network.backend_ip)
        )

    def route_service(self, host_port: str, address: str) -> None:
        """The Service's EndpointSlice: its port named `http` leads to `address`."""
        namespace, service = service_of(host_port)
        ip, _, port = address.rpartition(":")
        with self.kube.api_client() as api:
            create_endpoint_slice(api, namespace, service, ip, int(port))
        self._slices.append((namespace, slice_name(service)))

    def _delete_slices(self) -> None:
        for namespace, name in self._slices:
            delete = ["delete", "endpointslice", name, "-n", namespace, "--ignore-not-found"]
            self.kube.kubectl(*delete, "--wait=false", check=False)

    def rules(self, app: str) -> list[RoutedRule]:
        """The routers Traefik runs for the app's route, its first rule first."""
        raw = rawdata(self.session, self.gateway.admin_url)
        gateway = (GATEWAY_NAMESPACE, self.gateway.name)
        return routed_rules(raw, self.namespace, app, gateway)

    def weights(self, app: str) -> Backends:
        """The weighted rule's backends as Traefik balances them: the route's last rule."""
        rules = self.rules(app)
        return list(rules[-1].backends) if rules else []

    def describe(self, app: str) -> list[str]:
        rules = self.rules(app)
        if not rules:
            return [f"Traefik routes no HTTPRoute {self.namespace}/{app} on {self.parent}"]
        lines = [f"Traefik: HTTPRoute {self.namespace}/{app} weights: {_shown(rules[-1])}"]
        for rule in rules[:-1]:
            lines.append(f"Traefik: router rule {rule.rule} -> {_shown(rule)}")
        return lines


class FollowerPlane:
    """The route-following stand-in, parent `canaryctl-gateway/demo`."""

    name = "route-follower"
    backend_metrics = True  # Prometheus scrapes each backend, labelled by its Service
    queries = BACKEND_QUERIES
    parent = ParentRef(GATEWAY_NAMESPACE, "demo")
    gateway_class = "canaryctl-route-follower"

    def __init__(self, kube: Any, namespace: str, why: str = "") -> None:
        self.kube, self.namespace = kube, namespace
        self.why = why  # why Traefik is not the data plane ("" when chosen)
        self.emulator: RouteFollower

    def start(self, stack: ExitStack) -> None:
        self._create_parent()
        api = stack.enter_context(load_api_client(str(self.kube.kubeconfig)))
        self.emulator = stack.enter_context(RouteFollower(api, self.parent, [self.namespace]))

    @property
    def description(self) -> str:
        described = (
            "the route-follower, a stand-in that follows HTTPRoute weights and matches "
            f"(Gateway {self.parent})"
        )
        return f"{described}; Traefik could not run here: {self.why}" if self.why else described

    @property
    def dataplane_url(self) -> str:
        return self.emulator.dataplane_url

    @property
    def metrics_target(self) -> str:
        return self.emulator.dataplane_address

    def route_service(self, host_port: str, address: str) -> None:
        self.emulator.add_resolve(host_port, address)

    def weights(self, app: str) -> Backends:
        return self.emulator.weights(app)

    def describe(self, app: str) -> list[str]:
        route = self.emulator.route_for(app)
        if route is None:
            return [f"no HTTPRoute for {app} on Gateway {self.parent}"]
        weights = ", ".join(f"{key.split('/')[-1]}={weight}" for key, _, weight in route.backends)
        return [f"route-follower: HTTPRoute {route.key} weights: {weights}"]

    def _create_parent(self) -> None:
        gateway_class = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "GatewayClass",
            "metadata": {"name": self.gateway_class},
            "spec": {"controllerName": "canaryctl.dev/route-follower"},
        }
        listener = {
            "name": "http",
            "protocol": "HTTP",
            "port": 80,
            "allowedRoutes": {"namespaces": {"from": "All"}},
        }
        gateway = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gateway",
            "metadata": {"name": self.parent.name, "namespace": self.parent.namespace},
            "spec": {"gatewayClassName": self.gateway_class, "listeners": [listener]},
        }
        for manifest in (gateway_class, gateway):
            self.kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def _shown(rule: RoutedRule) -> str:
    return ", ".join(f"{key.split('/')[-1]}={weight}" for key, weight in rule.backends)

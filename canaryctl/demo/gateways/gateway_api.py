"""The Gateway API kit: the real CRDs, a Gateway as parent, and a route-following data plane.

The upstream standard-channel CRDs are installed into the local apiserver, a GatewayClass and
a Gateway (`canaryctl-gateway/demo`, routes from every namespace allowed) are created as the
parent, and `canaryctl.testing.routefollower.RouteFollower` plays the implementation's data
plane: it watches the HTTPRoutes attached to that Gateway and spreads each app's requests by
the route's weights (a real Traefik data plane replaces it later). Release analysis reads
the error-page backends' own request metrics, which Prometheus scrapes from each backend with
the labels `namespace` and `service`; the `--query-*` templates below select by them.
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import ExitStack
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from canaryctl.demo.gateways import Split
from canaryctl.gateway.gatewayapi.route import GROUP, ParentRef
from canaryctl.kube import load_api_client
from canaryctl.testing.routefollower import RouteFollower

PARENT = ParentRef("canaryctl-gateway", "demo")
GATEWAY_CLASS = "canaryctl-route-follower"
_SELECT = 'namespace="{namespace}",service="{service}"'
QUERIES = {
    "requests": f"sum(increase(http_requests_total{{{_SELECT}}}[{{window}}]))",
    "errors": f'sum(increase(http_requests_total{{{_SELECT},code=~"5.."}}[{{window}}]))',
    "latency-p99": "1000 * histogram_quantile(0.99, sum by (le) "
    f"(rate(http_request_duration_seconds_bucket{{{_SELECT}}}[{{window}}])))",
}
WRITE_VERBS = ("APPLY", "PATCH", "POST", "PUT", "DELETE")


class GatewayApiKit:
    name = "gateway-api"
    backend_metrics = True  # Prometheus scrapes the backends (labelled), not the data plane

    def __init__(self) -> None:
        self.kube: Any = None
        self.namespace = ""
        self.emulator: RouteFollower
        self._baseline: Counter = Counter()

    def bind_cluster(self, kube: Any, namespace: str) -> None:
        """The local control plane the kit installs into, and the namespace the apps live in
        (the data plane follows only its routes: other tests' leftovers stay out of the way)."""
        self.kube, self.namespace = kube, namespace

    def start(self, stack: ExitStack) -> None:
        self.kube.install_gateway_api()
        self._create_parent()
        api = stack.enter_context(load_api_client(str(self.kube.kubeconfig)))
        self.emulator = stack.enter_context(RouteFollower(api, PARENT, [self.namespace]))
        self.clear_log()

    def _create_parent(self) -> None:
        if self.kube.kubectl("get", "namespace", PARENT.namespace, check=False).returncode:
            self.kube.kubectl("create", "namespace", PARENT.namespace)
        gateway_class = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "GatewayClass",
            "metadata": {"name": GATEWAY_CLASS},
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
            "metadata": {"name": PARENT.name, "namespace": PARENT.namespace},
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [listener]},
        }
        for manifest in (gateway_class, gateway):
            self.kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def route_service(self, host_port: str, address: str) -> None:
        self.emulator.add_resolve(host_port, address)

    def controller_args(self) -> list[str]:
        queries = [f"--query-{name}={template}" for name, template in QUERIES.items()]
        return ["--gateway=gateway-api", f"--gateway-api-parent={PARENT}", *queries]

    def controller_env(self) -> dict[str, str]:
        return {}

    @property
    def dataplane_url(self) -> str:
        return self.emulator.dataplane_url

    @property
    def metrics_target(self) -> str:
        return self.emulator.dataplane_address

    def split(self, app: str) -> Split:
        """(stable, canary, canary %) as the data plane follows the route: backendRefs in order."""
        weights = self.emulator.weights(app)
        if not weights:
            return (None, None, 0)
        if len(weights) == 1:
            return (weights[0][0], None, 0)
        (stable, stable_weight), (canary, canary_weight) = weights[:2]
        total = stable_weight + canary_weight
        return (stable, canary, round(100 * canary_weight / total) if total else 0)

    def describe_route(self, app: str) -> str:
        """The route's weights as the data plane follows them, for the demo's output."""
        route = self.emulator.route_for(app)
        if route is None:
            return f"no HTTPRoute for {app} on Gateway {PARENT}"
        weights = ", ".join(f"{key.split('/')[-1]}={weight}" for key, _, weight in route.backends)
        return f"HTTPRoute {route.key} weights: {weights}"

    def writes(self) -> list:
        """Write requests on HTTPRoutes since `clear_log`, from the apiserver's own counters."""
        now = self._write_counts()
        return sorted((now - self._baseline).elements())

    def clear_log(self) -> None:
        self._baseline = self._write_counts()

    def _write_counts(self) -> Counter:
        return httproute_requests(self.kube, WRITE_VERBS)


def httproute_requests(kube: Any, verbs: tuple[str, ...]) -> Counter:
    """`apiserver_request_total` on httproutes by verb, as kube-apiserver counts them."""
    text = kube.kubectl("get", "--raw", "/metrics").stdout
    counts: Counter = Counter()
    for family in text_string_to_metric_families(text):
        if family.name != "apiserver_request":
            continue
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "apiserver_request_total"
                and labels.get("resource") == "httproutes"
                and not labels.get("subresource")  # not the implementation's status writes
                and labels.get("verb") in verbs
            ):
                counts[labels["verb"]] += int(sample.value)
    return counts

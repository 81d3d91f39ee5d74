"""The Gateway API kit: the real CRDs, a Gateway as parent, and a data plane behind it.

The upstream standard-channel CRDs are installed into the local apiserver and the controller
writes HTTPRoutes for a Gateway in `canaryctl-gateway`. The data plane behind that Gateway is
Traefik, a real Gateway API implementation, whenever it can run here; where it cannot (no
root or no `ip` for the backends' network namespace, no Go to build it) the kit says so and
falls back to the route-following stand-in — unless CANARYCTL_REQUIRE_LOCALKUBE=1 (CI), where
that is an error. `data_plane` pins either one ("traefik", "route-follower"); see
gateway_api_planes.py for both. The release analysis reads the data plane's metrics: Traefik's
own service series, or the backends' series for the stand-in, through the `--query-*`
templates the kit passes to the controller.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from contextlib import ExitStack
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from canaryctl.demo.gateways import Split
from canaryctl.demo.gateways.gateway_api_planes import (
    GATEWAY_NAMESPACE,
    FollowerPlane,
    TraefikPlane,
)
from canaryctl.testing.traefik import TraefikUnavailable

WRITE_VERBS = ("APPLY", "PATCH", "POST", "PUT", "DELETE")
DATA_PLANES = ("auto", "traefik", "route-follower")
REQUIRE_ENV = "CANARYCTL_REQUIRE_LOCALKUBE"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class GatewayApiKit:
    name = "gateway-api"

    def __init__(self, data_plane: str = "auto") -> None:
        if data_plane not in DATA_PLANES:
            raise ValueError(f"data_plane must be one of {DATA_PLANES}, got {data_plane!r}")
        self.data_plane = data_plane
        self.kube: Any = None
        self.namespace = ""
        self.progress = _stderr
        self.plane: TraefikPlane | FollowerPlane
        self.emulator: Any = None  # the TraefikGateway, or the RouteFollower
        self._baseline: Counter = Counter()

    def bind_cluster(self, kube: Any, namespace: str) -> None:
        """The local control plane the kit installs into, and the namespace the apps live in
        (the data plane reads only its routes: other tests' leftovers stay out of the way)."""
        self.kube, self.namespace = kube, namespace

    def start(self, stack: ExitStack) -> None:
        self.kube.install_gateway_api()
        if self.kube.kubectl("get", "namespace", GATEWAY_NAMESPACE, check=False).returncode:
            self.kube.kubectl("create", "namespace", GATEWAY_NAMESPACE)
        self.plane = self._start_plane(stack)
        self.emulator = self.plane.emulator
        self.clear_log()

    def _start_plane(self, stack: ExitStack) -> TraefikPlane | FollowerPlane:
        why = ""
        if self.data_plane != "route-follower":
            traefik = TraefikPlane(self.kube, self.namespace, self.progress)
            try:
                traefik.start(stack)
                return traefik
            except TraefikUnavailable as error:
                if self.data_plane == "traefik" or os.environ.get(REQUIRE_ENV) == "1":
                    raise
                why = str(error)
                self.progress(f"Traefik cannot run here ({why}); using the route-follower")
        follower = FollowerPlane(self.kube, self.namespace, why)
        follower.start(stack)
        return follower

    @property
    def data_plane_description(self) -> str:
        """Which data plane serves the Gateway, in words for the demo's output."""
        return self.plane.description

    @property
    def backend_metrics(self) -> bool:
        return self.plane.backend_metrics

    @property
    def metrics_path(self) -> str:
        return getattr(self.plane, "metrics_path", "/metrics")

    def new_backend(self, version: str, fail_rate: float):
        """Traefik needs backends in its network namespace; the stand-in takes loopback."""
        make = getattr(self.plane, "new_backend", None)
        return make(version, fail_rate) if make else None

    def route_service(self, host_port: str, address: str) -> None:
        self.plane.route_service(host_port, address)

    def controller_args(self) -> list[str]:
        queries = [f"--query-{name}={template}" for name, template in self.plane.queries.items()]
        return ["--gateway=gateway-api", f"--gateway-api-parent={self.plane.parent}", *queries]

    def controller_env(self) -> dict[str, str]:
        return {}

    @property
    def dataplane_url(self) -> str:
        return self.plane.dataplane_url

    @property
    def metrics_target(self) -> str:
        return self.plane.metrics_target

    def split(self, app: str) -> Split:
        """(stable, canary, canary %) as the data plane routes now: backendRefs in order."""
        weights = self.plane.weights(app)
        if not weights:
            return (None, None, 0)
        if len(weights) == 1:
            return (weights[0][0], None, 0)
        (stable, stable_weight), (canary, canary_weight) = weights[:2]
        total = stable_weight + canary_weight
        return (stable, canary, round(100 * canary_weight / total) if total else 0)

    def describe_route(self, app: str) -> str:
        """The route as the data plane runs it (weights; Traefik: its match rules too)."""
        return "\n".join(self.plane.describe(app))

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

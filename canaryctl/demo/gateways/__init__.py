"""The gateways the demo and the end-to-end tests can run against, one small kit each.

A kit starts its gateway stand-in (an emulator with a data plane, or a real data plane), routes
each Service's DNS name to a local backend (DNS names do not resolve here), tells the
controller how to reach the gateway, and answers the questions a demo stage asks: what does the
gateway hold for an app, which calls wrote to it. `DemoEnvironment` does everything else the
same way for every gateway. Kits are imported by name only when chosen. Optional:
`bind_cluster(kube, namespace)` is called before `start` for a kit that needs the cluster (the
APISIX kit resolves Service names to their ClusterIPs from it).
"""

from __future__ import annotations

import importlib
from contextlib import ExitStack
from typing import Any, Protocol

Split = tuple[str | None, str | None, int]  # (stable key, canary key, canary weight)

# --gateway NAME -> "module:Class" of its kit
KITS = {
    "api7": "canaryctl.demo.gateways.api7:Api7Kit",
    "gateway-api": "canaryctl.demo.gateways.gateway_api:GatewayApiKit",
    "apisix": "canaryctl.demo.gateways.apisix:ApisixKit",
}


class GatewayKit(Protocol):
    """One gateway for the demo, as `DemoEnvironment` drives it."""

    name: str
    emulator: Any  # the gateway stand-in, for tests that poke at it (faults, request log)

    def start(self, stack: ExitStack) -> None:
        """Start the gateway; everything started is closed by `stack`."""

    def route_service(self, host_port: str, address: str) -> None:
        """Send what the gateway addresses to `host_port` (a Service DNS name) to `address`."""

    def controller_args(self) -> list[str]:
        """`canaryctl run` flags that point the controller at this gateway."""

    def controller_env(self) -> dict[str, str]:
        """Environment (credentials) the controller needs for this gateway."""

    @property
    def dataplane_url(self) -> str:
        """Where requests for an app go (with `Host: <app>`)."""

    @property
    def metrics_target(self) -> str:
        """`host:port` Prometheus scrapes for the gateway's request metrics."""

    def split(self, app: str) -> Split:
        """What the gateway routes for `app` now."""

    def writes(self) -> list:
        """The logged calls that wrote to the gateway, oldest first."""

    def clear_log(self) -> None:
        """Forget the logged calls."""

    # Optional: `bind_cluster(kube, namespace)` is called before `start` for a gateway that
    # lives in the cluster (Gateway API); `backend_metrics = True` makes Prometheus scrape
    # each backend's own /metrics with `namespace` and `service` labels instead of
    # `metrics_target`; `describe_route(app)` is printed after each walk-through stage;
    # `data_plane_description` says what serves the requests; `metrics_path` is where
    # `metrics_target` serves its metrics; `new_backend(version, fail_rate)` builds a backend
    # (an unstarted ErrorPage) where the data plane can reach it, or returns None.


def data_plane_of(kit: GatewayKit) -> str:
    """What serves the demo's requests for `kit`, in words, with its address."""
    described = getattr(kit, "data_plane_description", f"the {kit.name} emulator's data plane")
    return f"data plane: {described}, at {kit.dataplane_url}"


def kit_for(name: str) -> GatewayKit:
    """A new kit for the gateway called `name` (one of KITS)."""
    module_name, _, class_name = KITS[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)()

"""`ApisixEmulator`: APISIX's Admin API and data plane on two local ports, for one test or demo.

APISIX needs etcd and OpenResty, which a test machine does not have, so canaryctl's
APISIX backend is tested against this stand-in. One object wires the state (`Store`),
the Admin API server (with faults, request log and the `/_emulator/` control API) and the
data plane (routing, traffic-split, proxying, prometheus series), and gives tests a
Python view of all of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from canaryctl.backgroundhttp import BackgroundHTTPServer
from canaryctl.testing.apisix.admin import PREFIX, AdminContext, AdminHandler
from canaryctl.testing.apisix.balancer import Balancers
from canaryctl.testing.apisix.dataplane import (
    METRICS_SCOPES,
    NODE_LABELS,
    DataPlaneContext,
    DataPlaneHandler,
    SplitOverrides,
)
from canaryctl.testing.apisix.metrics import METRICS_PATH, ApisixMetrics
from canaryctl.testing.apisix.store import Store
from canaryctl.testing.httpemulation.control import ControlContext, ControlError, json_object
from canaryctl.testing.httpemulation.faults import FaultSet
from canaryctl.testing.httpemulation.requestlog import RequestLog, RequestRecord
from canaryctl.testing.httpemulation.resolve import Resolver

Json = dict[str, Any]


class ApisixEmulator:
    """APISIX's Admin API on `admin_url` and its gateway on `dataplane_url`. Use as a context
    manager or call `start()` / `stop()`. Keys never appear in any repr, log or message.

    `admin_key=None` turns key checking off (APISIX's `admin_key_required: false`);
    `viewer_key` adds a read-only key. `node_label` and `metrics_scope`: see `dataplane`
    ("global" counts every request as a global prometheus rule does; "route" only routes
    with the prometheus plugin). `balancer_seed` fixes where round robins start.
    """

    def __init__(
        self,
        admin_key: str | None = "emulator-admin-key",
        viewer_key: str | None = None,
        resolve: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        admin_port: int = 0,
        dataplane_port: int = 0,
        fault_seed: int | None = None,
        balancer_seed: int | None = None,
        node_label: str = "target",
        metrics_scope: str = "global",
        clock: Callable[[], float] = time.time,
    ):
        if node_label not in NODE_LABELS or metrics_scope not in METRICS_SCOPES:
            raise ValueError(f"node_label in {NODE_LABELS}, metrics_scope in {METRICS_SCOPES}")
        self.store = Store(clock)
        self.faults = FaultSet(fault_seed)
        self.resolver = Resolver(resolve)
        self.metrics = ApisixMetrics()
        self.overrides = SplitOverrides()
        self._request_log = RequestLog()
        keys = {key: role for key, role in ((admin_key, "admin"), (viewer_key, "viewer")) if key}
        admin = AdminContext(self.store, keys, self.faults, self._request_log, self._control())
        self._admin = BackgroundHTTPServer(AdminHandler, admin, host, admin_port)
        dataplane = DataPlaneContext(
            self.store,
            self.resolver,
            self.metrics,
            Balancers(balancer_seed),
            self.overrides,
            node_label,
            metrics_scope,
        )
        try:
            self._dataplane = BackgroundHTTPServer(
                DataPlaneHandler, dataplane, host, dataplane_port
            )
        except BaseException:
            self._admin.stop()  # do not leak the first socket when the second port is taken
            raise

    def __repr__(self) -> str:
        return f"ApisixEmulator(admin_url={self.admin_url!r}, dataplane_url={self.dataplane_url!r})"

    def _control(self) -> ControlContext:
        extra = {
            ("GET", "state"): lambda body: {"routes": self.routes(), "upstreams": self.upstreams()},
            ("POST", "split"): self._split_from_control,
            ("DELETE", "split"): lambda body: {"cleared": self.overrides.clear()},
        }
        return ControlContext(self.faults, self._request_log, self.resolver.add, extra)

    def _split_from_control(self, body: bytes) -> Json:
        fields = json_object(body)
        weights = fields.get("weights")
        valid = weights is None or (
            isinstance(weights, list) and all(isinstance(w, int) and w >= 0 for w in weights)
        )
        if not isinstance(fields.get("route_id"), str) or not valid:
            raise ControlError(400, "expected {route_id: str, weights: [int >= 0] or null}")
        self.set_split(fields["route_id"], weights)
        return {"route_id": fields["route_id"], "weights": weights}

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> ApisixEmulator:
        self._admin.start()
        self._dataplane.start()
        return self

    def stop(self) -> None:
        """Stop both servers: connections closed, threads joined, sockets closed."""
        self._dataplane.stop()
        self._admin.stop()

    def __enter__(self) -> ApisixEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ---------------------------------------------------------------------

    @property
    def admin_url(self) -> str:
        """The Admin API's base, without `/apisix/admin` (see `admin_api`)."""
        return self._admin.url

    @property
    def admin_api(self) -> str:
        return self._admin.url + PREFIX

    @property
    def dataplane_url(self) -> str:
        return self._dataplane.url

    @property
    def dataplane_address(self) -> str:
        """`127.0.0.1:PORT` of the data plane: a Prometheus scrape target."""
        return f"{self._dataplane.host}:{self._dataplane.port}"

    metrics_path = METRICS_PATH

    # --- state, as the Admin API would return it ---------------------------------------

    def routes(self) -> list[Json]:
        return [item.value for item in self.store.list("routes")]

    def upstreams(self) -> list[Json]:
        return [item.value for item in self.store.list("upstreams")]

    def route(self, route_id: str) -> Json | None:
        item = self.store.find("routes", route_id)
        return item.value if item else None

    def upstream(self, upstream_id: str) -> Json | None:
        item = self.store.find("upstreams", upstream_id)
        return item.value if item else None

    # --- the data plane's split --------------------------------------------------------

    def set_split(self, route_id: str, weights: Sequence[int] | None) -> None:
        """Make the data plane split route `route_id` by `weights` (one per configured
        `weighted_upstreams` entry of the rule that applies, in order) instead of the
        configured weights; None restores the configuration. An override whose length does
        not fit the rule is ignored."""
        self.overrides.set(route_id, weights)

    def clear_splits(self) -> None:
        self.overrides.clear()

    # --- request log, faults, resolution ----------------------------------------------

    def request_log(self) -> list[RequestRecord]:
        return self._request_log.records()

    def clear_request_log(self) -> None:
        self._request_log.clear()

    def inject_fault(
        self,
        kind: str = "status",
        method: str = "*",
        path: str = "*",
        status: int = 503,
        probability: float | None = None,
        times: int | None = None,
        retry_after: int = 1,
        latency_ms: int = 0,
    ) -> str:
        """Add an Admin API fault (see `httpemulation.faults`); returns its id."""
        return self.faults.add(
            kind,
            method=method,
            path=path,
            status=status,
            probability=probability,
            times=times,
            retry_after=retry_after,
            latency_ms=latency_ms,
        )

    def remove_fault(self, fault_id: str) -> bool:
        return self.faults.remove(fault_id)

    def clear_faults(self) -> None:
        self.faults.clear()

    def add_resolve(self, target: str, address: str) -> None:
        """Send data-plane traffic for upstream node `host:port` to `address` (`addr:port`)."""
        self.resolver.add(target, address)

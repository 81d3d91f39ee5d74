"""`Emulator`: the API7 Cloud Open API and its data plane, on two local ports, for one test or demo.

API7 Cloud cannot be reached any more, so canaryctl's client is tested against this
stand-in that follows `docs/api7-cloud.md`. One object wires the state (`Store`), the
Open API server (with faults, request log and admin API) and the data plane (routing,
proxying, APISIX metrics), and offers tests a Python view of all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from canaryctl.backgroundhttp import BackgroundHTTPServer
from canaryctl.gateway.model import OWNER_LABEL
from canaryctl.testing.api7cloud.admin import control_context
from canaryctl.testing.api7cloud.api import OpenApiContext, OpenApiHandler
from canaryctl.testing.api7cloud.dataplane import DataPlaneContext, DataPlaneHandler
from canaryctl.testing.api7cloud.routing import Balancers
from canaryctl.testing.api7cloud.store import Store
from canaryctl.testing.apisix.dataplane import SplitOverrides
from canaryctl.testing.apisix.metrics import METRICS_PATH, ApisixMetrics
from canaryctl.testing.httpemulation.faults import FaultSet
from canaryctl.testing.httpemulation.requestlog import RequestLog, RequestRecord
from canaryctl.testing.httpemulation.resolve import Resolver


class Emulator:
    """API7 Cloud on `url` (Open API) and `dataplane_url` (gateway). Use as a context manager
    or call `start()` / `stop()`. The token never appears in any repr, log or message."""

    def __init__(
        self,
        token: str = "emulator-token",
        org_name: str = "default",
        cluster_name: str = "default",
        resolve: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        dataplane_port: int = 0,
        fault_seed: int | None = None,
        org_id: str | None = None,
        cluster_id: str | None = None,
    ):
        self.store = Store(org_name, cluster_name, org_id, cluster_id)
        self.faults = FaultSet(fault_seed)
        self.resolver = Resolver(resolve)
        self.metrics = ApisixMetrics()
        self.overrides = SplitOverrides()
        self._request_log = RequestLog()
        control = control_context(
            self.store, self.faults, self._request_log, self.resolver.add, self.overrides
        )
        self._api = BackgroundHTTPServer(
            OpenApiHandler,
            OpenApiContext(self.store, token, self.faults, self._request_log, control),
            host,
            port,
        )
        try:
            self._dataplane = BackgroundHTTPServer(
                DataPlaneHandler,
                DataPlaneContext(
                    self.store, self.resolver, self.metrics, Balancers(), self.overrides
                ),
                host,
                dataplane_port,
            )
        except BaseException:
            self._api.stop()  # do not leak the first socket when the second port is taken
            raise

    def __repr__(self) -> str:
        return f"Emulator(url={self.url!r}, dataplane_url={self.dataplane_url!r})"

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Emulator:
        self._api.start()
        self._dataplane.start()
        return self

    def stop(self) -> None:
        """Stop both servers: connections closed, threads joined, sockets closed."""
        self._dataplane.stop()
        self._api.stop()

    def __enter__(self) -> Emulator:
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
    def url(self) -> str:
        """The Open API base, without `/api/v1`."""
        return self._api.url

    @property
    def dataplane_url(self) -> str:
        return self._dataplane.url

    @property
    def dataplane_address(self) -> str:
        """`127.0.0.1:PORT` of the data plane: a Prometheus scrape target."""
        return f"{self._dataplane.host}:{self._dataplane.port}"

    metrics_path = METRICS_PATH

    @property
    def org_id(self) -> str:
        return self.store.org_id

    @property
    def cluster_id(self) -> str:
        return self.store.cluster_id

    # --- state, as the API would return it ---------------------------------------------

    def apps(self) -> list[dict[str, Any]]:
        return self.store.list_apps()

    def app_by_name(self, name: str) -> dict[str, Any] | None:
        return next((app for app in self.store.list_apps() if app["name"] == name), None)

    def apis(self, app_id: str) -> list[dict[str, Any]]:
        return self.store.list_apis(app_id)

    def canaries(self, app_id: str) -> list[dict[str, Any]]:
        return self.store.list_canaries(app_id)

    def create_foreign_app(self, name: str, **fields: Any) -> dict[str, Any]:
        """An app canaryctl does not own (no owner label unless `labels` has it), in the default
        cluster."""
        body = {"name": name, "hosts": [name], "path_prefix": "/", "protocols": ["HTTP"], **fields}
        if OWNER_LABEL in (body.get("labels") or []):
            raise ValueError("a foreign app must not carry canaryctl's owner label")
        return self.store.create_app(None, body)

    # --- the data plane's split --------------------------------------------------------

    def set_split(self, app: str, weights: Sequence[int] | None) -> None:
        """Make the data plane split app `app` (name or id) by `weights` — `[canary, default]`,
        relative — instead of its canary's percent, while that canary is live; None restores
        the configuration. As APISIX's `set_split`, for a data plane that does not do what it
        was told."""
        if weights is not None and (len(weights) != 2 or min(weights) < 0 or not sum(weights)):
            raise ValueError("weights: [canary, default], non-negative, not both 0")
        self.overrides.set(app, weights)

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
        """Add a fault (see `faults`); returns its id for `remove_fault`."""
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
        """Route data-plane traffic for upstream target `host:port` to `address` (`addr:port`)."""
        self.resolver.add(target, address)

"""The Apache APISIX kit: the project's Admin API + data plane emulator, labelling as APISIX does.

Real APISIX labels its request metrics' `node` with the address it balanced to (the Service's
ClusterIP, for a node named by the Service's DNS name), so the emulator runs in that mode
(`node_label="address"`) and the kit plays the cluster's part: given the local apiserver
(`bind_cluster`), it watches the demo namespace's Services with canaryctl's own informer and
resolves each `<service>.<namespace>.svc.cluster.local:<port>` to the Service's real
ClusterIP, which in turn leads to the local backend (as kube-proxy would). The controller
then judges canaries with `canaryctl run --gateway apisix`'s default queries, keyed on
`{cluster_ip}`.
"""

from __future__ import annotations

import secrets
import threading
from contextlib import ExitStack
from typing import Any

from canaryctl.cache import ServiceStore
from canaryctl.demo.gateways import Split
from canaryctl.gateway.apisix import naming
from canaryctl.informer import ServiceInformer
from canaryctl.objects import Service
from canaryctl.testing.apisix import ApisixEmulator

CLUSTER_DOMAIN = "cluster.local"


class ApisixKit:
    name = "apisix"

    def __init__(self) -> None:
        self.key = secrets.token_hex(16)
        self.emulator: ApisixEmulator
        self._lock = threading.Lock()
        self._backends: dict[str, str] = {}  # Service host:port -> local backend address
        self._cluster_ips: dict[str, str] = {}  # Service host:port -> ClusterIP:port
        self._cluster: tuple[Any, str] | None = None  # (LocalKube, namespace) from bind_cluster

    def bind_cluster(self, kube: Any, namespace: str) -> None:
        """The apiserver and namespace whose Services `start` resolves (called before it)."""
        self._cluster = (kube, namespace)

    def start(self, stack: ExitStack) -> None:
        self.emulator = stack.enter_context(
            ApisixEmulator(admin_key=self.key, node_label="address")
        )
        if self._cluster is not None:  # resolve Service names to ClusterIPs, as cluster DNS does
            kube, namespace = self._cluster
            api = kube.api_client()
            stack.callback(api.close)
            informer = ServiceInformer(api, ServiceStore(), self._on_service, [namespace])
            stack.callback(informer.stop)
            informer.start()

    def _on_service(self, old: Service | None, new: Service | None) -> None:
        if new is None or new.cluster_ip in ("", "None"):
            return
        for port in new.ports:
            host_port = f"{new.name}.{new.namespace}.svc.{CLUSTER_DOMAIN}:{port.port}"
            with self._lock:
                self._cluster_ips[host_port] = f"{new.cluster_ip}:{port.port}"
            self._install(host_port)

    def route_service(self, host_port: str, address: str) -> None:
        with self._lock:
            self._backends[host_port] = address
        self._install(host_port)

    def _install(self, host_port: str) -> None:
        """Name -> ClusterIP -> backend once both are known; name -> backend until then."""
        with self._lock:
            backend, cluster_ip = self._backends.get(host_port), self._cluster_ips.get(host_port)
        if cluster_ip is not None:
            if backend is not None:
                self.emulator.add_resolve(cluster_ip, backend)
            self.emulator.add_resolve(host_port, cluster_ip)
        elif backend is not None:
            self.emulator.add_resolve(host_port, backend)

    def controller_args(self) -> list[str]:
        return ["--gateway=apisix", f"--apisix-admin-url={self.emulator.admin_url}"]

    def controller_env(self) -> dict[str, str]:
        return {"APISIX_ADMIN_KEY": self.key}

    @property
    def dataplane_url(self) -> str:
        return self.emulator.dataplane_url

    @property
    def metrics_target(self) -> str:
        return self.emulator.dataplane_address

    def split(self, app: str) -> Split:
        """(stable key, canary key, weight) from the route and upstreams as stored."""
        route = self.emulator.route(naming.route_id(app))
        stable = route and self.emulator.upstream(str(route.get("upstream_id")))
        if not route or not stable:  # routable once the route and its upstream exist
            return (None, None, 0)
        split = ((route.get("plugins") or {}).get("traffic-split") or {}).get("rules") or []
        entries = split[-1].get("weighted_upstreams", []) if split else []  # the weighted rule
        canary_entry = next((e for e in entries if e.get("upstream_id")), None)
        canary = canary_entry and self.emulator.upstream(str(canary_entry["upstream_id"]))
        return (
            stable.get("desc"),
            canary.get("desc") if canary else None,
            int(canary_entry.get("weight", 1)) if canary and canary_entry else 0,
        )

    def writes(self) -> list:
        return [record for record in self.emulator.request_log() if record.method != "GET"]

    def clear_log(self) -> None:
        self.emulator.clear_request_log()

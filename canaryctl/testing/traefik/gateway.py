"""A real Gateway API data plane for tests: Traefik, a Gateway, and reachable backends.

Given a LocalKube with the Gateway API CRDs, `TraefikGateway` creates a GatewayClass for
Traefik's controller and a Gateway whose one HTTP listener port is the port of Traefik's
entryPoint on 127.0.0.1, starts Traefik against the control plane, and adds error-page
backends behind Services (see backends.py). Whatever then writes HTTPRoutes for that
Gateway — a test, or canaryctl's Gateway API backend — gets real routing, weights and
route status from an implementation the tests do not control.

Each instance labels its GatewayClass and gives Traefik that label as selector, so two
instances in one control plane never program each other's Gateways.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from canaryctl.testing.localkube import LocalKube
from canaryctl.testing.localkube.build import Progress
from canaryctl.testing.localkube.gateway_api import GROUP
from canaryctl.testing.processes import die_with_parent, free_port, terminate, wait_until
from canaryctl.testing.traefik import backends, traffic
from canaryctl.testing.traefik.backends import Backend
from canaryctl.testing.traefik.build import TraefikUnavailable, ensure_traefik
from canaryctl.testing.traefik.netns import BackendNetwork
from canaryctl.testing.traefik.routes import RouteClient

CONTROLLER_NAME = "traefik.io/gateway-controller"
INSTANCE_LABEL = "canaryctl.testing/traefik"
LISTENER = "web"
FIRST_BACKEND_PORT = 8001
# Latency histogram buckets in seconds: Traefik's default (0.1, 0.3, 1.2, 5) cannot tell a
# 5 ms answer from a 90 ms one, which a p99 limit in milliseconds needs.
LATENCY_BUCKETS = "0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5"


class TraefikGateway:
    """Traefik serving Gateway `namespace/name`. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        kube: LocalKube,
        namespace: str,
        name: str = "traefik",
        progress: Progress = print,
    ):
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.instance = uuid.uuid4().hex[:8]
        self.gateway_class = f"traefik-{self.instance}"
        self._progress = progress
        self.port = self.admin_port = 0
        self.network = BackendNetwork()
        self.backends: list[Backend] = []
        self._port_offsets = itertools.count()
        self._process: subprocess.Popen | None = None
        self.session = requests.Session()  # keep-alive connection to Traefik, requests in order

    def __enter__(self) -> TraefikGateway:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Traefik's entryPoint for the Gateway's listener."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """Ping, Prometheus metrics (`/metrics`) and Traefik's API (`/api/rawdata`)."""
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def parent_ref(self) -> dict:
        """The `parentRefs` entry an HTTPRoute uses to attach to this Gateway."""
        return {"group": GROUP, "kind": "Gateway", "namespace": self.namespace, "name": self.name}

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> TraefikGateway:
        binary = ensure_traefik(self._progress)
        self.port, self.admin_port = free_port(), free_port()
        try:
            self.network.create()
            self._apply(self._gateway_class_body())
            self._apply(self._gateway_body())
            self._process = self._spawn(binary)
            wait_until(self._ready, 30, "Traefik to answer /ping")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop Traefik and the backends, remove the network and the Gateway objects."""
        terminate(self._process, grace=5)
        self._process = None
        for backend in self.backends:
            backend.stop()
        self.backends.clear()
        self.network.remove()
        self.session.close()
        for kind in (f"gateway/{self.name}", f"gatewayclass/{self.gateway_class}"):
            delete = ["delete", kind, "-n", self.namespace, "--wait=false", "--ignore-not-found"]
            self.kube.kubectl(*delete, check=False)

    @property
    def state_dir(self) -> Path:
        """Where logs go: the control plane's state directory, removed with it."""
        assert self.kube.dir is not None, "the LocalKube is not started"
        return self.kube.dir / "state"

    @property
    def log_path(self) -> Path:
        return self.state_dir / f"traefik-{self.instance}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _spawn(self, binary: Path) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
        env["KUBECONFIG"] = str(self.kube.kubeconfig)
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                [str(binary), *self.arguments()],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )

    def arguments(self) -> list[str]:
        """Traefik's static configuration, as flags."""
        return [
            f"--entryPoints.{LISTENER}.address=127.0.0.1:{self.port}",
            f"--entryPoints.traefik.address=127.0.0.1:{self.admin_port}",
            "--ping=true",
            "--api=true",
            "--api.insecure=true",
            "--api.dashboard=false",
            "--metrics.prometheus=true",
            "--metrics.prometheus.entryPoint=traefik",
            "--metrics.prometheus.addEntryPointsLabels=true",
            "--metrics.prometheus.addServicesLabels=true",
            "--metrics.prometheus.addRoutersLabels=true",
            f"--metrics.prometheus.buckets={LATENCY_BUCKETS}",
            "--providers.kubernetesgateway=true",
            f"--providers.kubernetesgateway.labelSelector={INSTANCE_LABEL}={self.instance}",
            "--providers.kubernetesgateway.statusAddress.ip=127.0.0.1",
            "--providers.providersThrottleDuration=0s",
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            "--log.level=INFO",
            "--log.noColor=true",
        ]

    def _ready(self) -> bool:
        process = self._process
        if process is None or process.poll() is not None:
            code = process.returncode if process else None
            raise TraefikUnavailable(f"traefik exited with {code}:\n{self.log()[-3000:]}")
        try:
            return requests.get(f"{self.admin_url}/ping", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # Gateway API objects -----------------------------------------------------------------

    def _gateway_class_body(self) -> dict:
        return {
            "apiVersion": f"{GROUP}/v1",
            "kind": "GatewayClass",
            "metadata": {"name": self.gateway_class, "labels": {INSTANCE_LABEL: self.instance}},
            "spec": {"controllerName": CONTROLLER_NAME},
        }

    def _gateway_body(self) -> dict:
        listener = {
            "name": LISTENER,
            "port": self.port,
            "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": "All"}},
        }
        return {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gateway",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"gatewayClassName": self.gateway_class, "listeners": [listener]},
        }

    def _apply(self, body: dict) -> None:
        self.kube.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))

    def gateway_conditions(self) -> dict[str, str]:
        """The Gateway's status conditions as {type: status}, as Traefik wrote them."""
        from kubernetes import client

        with self.kube.api_client() as api:
            gateway: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, "v1", self.namespace, "gateways", self.name
            )
        conditions = gateway.get("status", {}).get("conditions", [])
        return {c["type"]: c["status"] for c in conditions}

    def wait_programmed(self, timeout: float = 30) -> None:
        """Wait until Traefik reports the Gateway Accepted and Programmed."""
        wanted = {"Accepted": "True", "Programmed": "True"}
        wait_until(
            lambda: wanted.items() <= self.gateway_conditions().items(),
            timeout,
            f"Gateway {self.namespace}/{self.name} to be programmed",
        )

    # backends ----------------------------------------------------------------------------

    def add_backend(
        self, namespace: str, service: str, version: str, fail_rate: float = 0.0
    ) -> Backend:
        """Start error-page `version` in the backend network behind Service `service`."""
        port = FIRST_BACKEND_PORT + next(self._port_offsets)
        address = self.network.backend_ip
        log_path = self.state_dir / f"backend-{namespace}-{service}.log"
        command = backends.error_page_command(version, address, port, fail_rate)
        process = self.network.spawn(command, log_path)
        backend = Backend(namespace, service, version, address, port, process)
        self.backends.append(backend)
        backends.wait_serving(backend, log_path)
        with self.kube.api_client() as api:
            backends.create_service(api, namespace, service, address, port)
        return backend

    def remove_backends(self, namespace: str) -> None:
        """Stop the backends of `namespace` and delete their Services and EndpointSlices."""
        leaving = [b for b in self.backends if b.namespace == namespace]
        for backend in leaving:
            backend.stop()
            self.backends.remove(backend)
        objects = [f"service/{b.service}" for b in leaving]
        objects += [f"endpointslice/{backends.slice_name(b.service)}" for b in leaving]
        if objects:
            delete = ["delete", *objects, "-n", namespace, "--ignore-not-found", "--wait=false"]
            self.kube.kubectl(*delete, check=False)

    # traffic and route status ------------------------------------------------------------

    def count_answers(
        self, host: str, count: int = 100, headers: Mapping[str, str] | None = None
    ) -> Counter[str]:
        """Send `count` requests for `host` through Traefik; answers counted by version."""
        return traffic.count_answers(self.session, self.url, host, count, headers)

    def wait_for_split(
        self,
        host: str,
        expected: Mapping[str, int],
        headers: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> Counter[str]:
        """Poll until one batch of sum(expected) requests is answered exactly `expected`."""
        return traffic.wait_for_split(self.session, self.url, host, expected, headers, timeout)

    def wait_route_condition(
        self, namespace: str, route: str, condition: str, status: str = "True", timeout=30
    ) -> dict:
        """Wait until Traefik reports `condition` with `status` on the route for this Gateway."""
        with self.kube.api_client() as api:
            return RouteClient(api).wait_condition(
                namespace, route, condition, CONTROLLER_NAME, self.name, status, timeout
            )

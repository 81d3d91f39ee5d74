"""Everything the seed's walk-through needs, on loopback, in one context manager.

A real kube-apiserver + etcd (localkube), a gateway (a kit from `canaryctl.demo.gateways`:
API7 Cloud by default), one error-page backend per version, and the controller as a real
`canaryctl run` subprocess. Service DNS names do not resolve here, so the gateway kit routes
each `error-page-vN.<namespace>.svc.cluster.local:80` to its local backend (a kit may also
say where a backend must listen to be reachable: `new_backend`). Used by `canaryctl demo`
and by the end-to-end tests.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import requests

import canaryctl
from canaryctl.annotations import STATUS
from canaryctl.demo.gateways import GatewayKit, Split, kit_for
from canaryctl.examples.errorpage import ErrorPage
from canaryctl.kube import SERVICEACCOUNT_DIR_ENV
from canaryctl.testing.localkube import LocalKube, free_port, wait_until
from canaryctl.testing.prometheus import PrometheusServer, ScrapeJob

NAMESPACE = "canary-release-demo"
APP_HOST = "error-page"
DATAPLANE_METRICS_PATH = "/apisix/prometheus/metrics"  # the emulators'; a kit may say otherwise


def examples_dir() -> Path:
    """`manifests/examples` of the source tree canaryctl runs from."""
    path = Path(canaryctl.__file__).resolve().parents[1] / "manifests" / "examples"
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path} not found: run the demo from a checkout (pip install -e .)"
        )
    return path


class DemoEnvironment:
    """localkube + gateway + error-page backends + controller, torn down in reverse order."""

    def __init__(
        self,
        versions: Sequence[str] = ("v1", "v2"),
        namespace: str = NAMESPACE,
        kube: LocalKube | None = None,
        progress: Callable[[str], None] = print,
        controller_args: Sequence[str] = (),
        with_prometheus: bool = False,
        serviceaccount_dir: Path | None = None,
        gateway: str | GatewayKit = "api7",
        watched: Sequence[str] | None = (),
        scrape_controller: bool = False,
        with_controller: bool = True,
    ):
        self.versions = list(versions)
        self.namespace = namespace
        self.progress = progress
        self.controller_args = list(controller_args)
        # the command before the controller's `run` arguments (a benchmark may swap it)
        self.controller_command: Sequence[str] = (sys.executable, "-m", "canaryctl")
        self.serviceaccount_dir = serviceaccount_dir
        self.with_prometheus = with_prometheus
        self.with_controller = with_controller  # False: the caller spawns its own
        self.prometheus: PrometheusServer | None = None
        self.kit = kit_for(gateway) if isinstance(gateway, str) else gateway
        # the controller's namespaces: () means just `namespace`, None every namespace
        self.watched = [namespace] if watched == () else watched
        self.kube = kube
        self._own_kube = kube is None
        self._stack = ExitStack()
        self.backends: dict[str, ErrorPage] = {}
        self.controller: subprocess.Popen | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="canaryctl-demo-"))
        self.health_port = self.metrics_port = 0
        # Prometheus also scrapes the controller: its metrics port is fixed before either starts
        self.scrape_controller = scrape_controller

    def __enter__(self) -> DemoEnvironment:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop_controller()
        self._stack.close()
        for path in sorted(self.workdir.glob("*")):
            path.unlink()
        self.workdir.rmdir()

    @property
    def started_kube(self) -> LocalKube:
        """The control plane in use; a RuntimeError before the environment has one."""
        if self.kube is None:
            raise RuntimeError("the demo environment is not started")
        return self.kube

    def _start(self) -> None:
        if self._own_kube:
            self.progress("starting a local kube-apiserver + etcd")
            self.kube = self._stack.enter_context(LocalKube(progress=self.progress))
        if self.kubectl("get", "namespace", self.namespace, check=False).returncode != 0:
            self.kubectl("create", "namespace", self.namespace)
            self._stack.callback(
                self.kubectl, "delete", "namespace", self.namespace, "--wait=false", check=False
            )
        bind_cluster = getattr(self.kit, "bind_cluster", None)
        if bind_cluster is not None:  # a gateway that lives in the cluster (Gateway API)
            bind_cluster(self.kube, self.namespace)
        if hasattr(self.kit, "progress"):
            self.kit.progress = self.progress
        self.kit.start(self._stack)
        self.emulator = self.kit.emulator
        for version in self.versions:
            self.add_backend(version)
        if self.with_prometheus:  # scrapes the request metrics every second
            self.prometheus = self._prometheus()
            self._stack.callback(self.prometheus.close)
            self.prometheus.start()
        if self.with_controller:
            self.start_controller()

    def _prometheus(self) -> PrometheusServer:
        """Scraping the gateway's data plane, or (`kit.backend_metrics`) each backend's own
        /metrics labelled with the Service it stands for (backends added later are not); and
        the controller too with `scrape_controller`."""
        jobs = self._jobs()
        if not getattr(self.kit, "backend_metrics", False):
            path = getattr(self.kit, "metrics_path", DATAPLANE_METRICS_PATH)
            return PrometheusServer([self.kit.metrics_target], metrics_path=path, extra_jobs=jobs)
        labels = {
            backend.address: {"namespace": self.namespace, "service": f"error-page-{version}"}
            for version, backend in self.backends.items()
        }
        return PrometheusServer(
            list(labels), metrics_path="/metrics", target_labels=labels, extra_jobs=jobs
        )

    def _jobs(self) -> list[ScrapeJob]:
        if not self.scrape_controller:
            return []
        self.metrics_port = free_port()
        return [ScrapeJob("canaryctl", (f"127.0.0.1:{self.metrics_port}",))]

    def add_backend(self, version: str, fail_rate: float = 0.0) -> ErrorPage:
        """Start error-page `version` and route its Service's DNS name to it."""
        new_backend = getattr(self.kit, "new_backend", None)  # where the data plane reaches it
        page = new_backend(version, fail_rate) if new_backend else None
        backend = self._stack.enter_context(page or ErrorPage(version=version, fail_rate=fail_rate))
        self.backends[version] = backend
        self.kit.route_service(
            f"error-page-{version}.{self.namespace}.svc.cluster.local:80", backend.address
        )
        return backend

    # controller process ----------------------------------------------------------------------

    @property
    def controller_log(self) -> Path:
        return self.workdir / "controller.log"

    def start_controller(self) -> None:
        """Run `canaryctl run` against this environment and wait until it is ready."""
        if not self.scrape_controller:  # else the port Prometheus scrapes, kept across restarts
            self.metrics_port = free_port()
        self.health_port = free_port()
        self.controller = self.spawn_controller(
            self.watched, self.metrics_port, self.health_port, self.controller_log
        )
        self.wait_ready(self.controller, self.health_port)

    def wait_ready(self, process: subprocess.Popen, health_port: int, timeout: float = 60) -> None:
        """Wait until the controller `process` answers /readyz (it exiting is an error)."""
        wait_until(lambda: self._ready(process, health_port), timeout, "the controller to be ready")

    def spawn_controller(
        self,
        namespaces: Sequence[str] | None,
        metrics_port: int,
        health_port: int,
        log_path: Path,
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen:
        """Start one `canaryctl run` for this environment (None: watching every namespace)."""
        access_args, access_env = self._kube_access()
        command = [
            *self.controller_command,
            "run",
            *access_args,
            *self.kit.controller_args(),
            f"--metrics-addr=127.0.0.1:{metrics_port}",
            f"--health-addr=127.0.0.1:{health_port}",
            *[f"--namespace={namespace}" for namespace in namespaces or ()],
            "--log-format=json",
            *self._analysis_args(),
            *self.controller_args,
            *extra_args,
        ]
        env = {**os.environ, **access_env, **self.kit.controller_env(), **(extra_env or {})}
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _analysis_args(self) -> list[str]:
        return [f"--prometheus-url={self.prometheus.url}"] if self.prometheus else []

    def _kube_access(self) -> tuple[list[str], dict[str, str]]:
        """How the controller reaches the API server: the admin kubeconfig, or, given
        `serviceaccount_dir` (token, ca.crt, namespace), the in-cluster config a pod would use."""
        if self.serviceaccount_dir is None:
            return [f"--kubeconfig={self.started_kube.kubeconfig}"], {}
        return [], {
            SERVICEACCOUNT_DIR_ENV: str(self.serviceaccount_dir),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.started_kube.apiserver_port),
        }

    def _ready(self, process: subprocess.Popen, health_port: int) -> bool:
        if process.poll() is not None:
            raise RuntimeError(
                f"controller exited with {process.returncode}; log:\n"
                + self.controller_log.read_text()[-3000:]
            )
        try:
            url = f"http://127.0.0.1:{health_port}/readyz"
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop_controller(self, timeout: float = 10) -> int | None:
        """SIGTERM the controller; return its exit code (None if it was not running)."""
        if self.controller is None:
            return None
        process, self.controller = self.controller, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise RuntimeError(
                    f"controller did not exit within {timeout} s of SIGTERM"
                ) from None
        return process.returncode

    def kill_controller(self) -> None:
        """SIGKILL the controller, as a crash would."""
        if self.controller is not None:
            self.controller.kill()
            self.controller.wait()
            self.controller = None

    def metrics_text(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    # user actions ------------------------------------------------------------------------------

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.started_kube.kubectl(*args, check=check)

    def shell(self, command: str) -> subprocess.CompletedProcess:
        """Run a command line as a user would type it (`kubectl` uses the local control plane)."""
        kube = self.started_kube
        env = {
            **os.environ,
            "KUBECONFIG": str(kube.kubeconfig),
            "PATH": f"{kube.kubectl_path.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        return subprocess.run(
            shlex.split(command),
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=examples_dir(),
        )

    def apply_service(
        self,
        name: str,
        annotations: dict[str, str] | None = None,
        ports: list[dict] | None = None,
        kind: str = "ClusterIP",
        namespace: str | None = None,
    ) -> None:
        """Create or update Service `name` (ClusterIP, Headless or ExternalName) in the namespace"""
        spec: dict = {
            "type": "ClusterIP",
            "ports": ports if ports is not None else [{"name": "http", "port": 80}],
        }
        if kind == "Headless":  # the only kind of ClusterIP Service allowed without ports
            spec["clusterIP"] = "None"
        elif kind == "ExternalName":
            spec = {"type": kind, "externalName": "example.com"}
        manifest = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace or self.namespace,
                "annotations": annotations or {},
            },
            "spec": spec,
        }
        self.started_kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def annotate(self, name: str, *pairs: str) -> None:
        """`kubectl annotate --overwrite` on Service `name` (`key=value`, or `key-` to remove)."""
        self.kubectl("annotate", "service", "-n", self.namespace, name, "--overwrite", *pairs)

    def status(self, name: str) -> dict | None:
        """The parsed `api7.cloud/canary-status` of Service `name` (None when absent)."""
        out = self.kubectl("get", "service", name, "-n", self.namespace, "-o", "json").stdout
        return json.loads(json.loads(out)["metadata"].get("annotations", {}).get(STATUS) or "null")

    def events(self, name: str, reason: str) -> list[dict]:
        """canaryctl's Events with `reason` on Service `name`, oldest first."""
        out = self.kubectl(
            "get",
            "events",
            "-n",
            self.namespace,
            "-o",
            "json",
            f"--field-selector=involvedObject.name={name},reason={reason},source=canaryctl",
        ).stdout
        return sorted(json.loads(out)["items"], key=lambda e: e.get("lastTimestamp") or "")

    def gateway_writes(self) -> list:
        """The gateway's logged calls that wrote to it."""
        return self.kit.writes()

    def send(self, count: int = 100, headers: dict[str, str] | None = None) -> collections.Counter:
        """Send `count` requests with `Host: error-page` (and `headers`) through the data plane;
        count the answers by version."""
        answers: collections.Counter = collections.Counter()
        with requests.Session() as session:
            for _ in range(count):
                response = session.get(
                    f"{self.kit.dataplane_url}/api/error_page",
                    headers={"Host": APP_HOST, **(headers or {})},
                    timeout=5,
                )
                answers[_version_of(response)] += 1
        return answers

    def split(self, app: str = APP_HOST) -> Split:
        """(stable, canary, canary weight) as the gateway routes `app` now."""
        return self.kit.split(app)

    def wait_for_split(
        self, expected: tuple[str | None, str | None, int], timeout: float = 30
    ) -> None:
        wait_until(
            lambda: self.split() == expected,
            timeout,
            f"the gateway to hold {expected} (has {self.split()})",
        )


def _version_of(response: requests.Response) -> str:
    try:
        return response.json().get("version") or f"HTTP {response.status_code}"
    except ValueError:
        return f"HTTP {response.status_code}"

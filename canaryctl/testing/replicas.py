"""Several `canaryctl run --leader-elect` replicas on one DemoEnvironment: HA tests and benchmark.

Each replica is a real process with its own POD_NAME, so its identity (and with it the
User-Agent of every gateway call it makes) says which replica it is, and its own metrics
and health ports and log. `LeaseHistory` polls the Lease and keeps every term — who held it
from which acquireTime on — so a test can check that each gateway write came from the
replica holding the Lease at that moment, and never from two replicas in one term.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.httpemulation.requestlog import RequestRecord
from canaryctl.testing.processes import free_port, wait_until

_IDENTITY_IN_AGENT = re.compile(r"\(([^()]*)\)\s*$")


@dataclass(frozen=True)
class Timings:
    """Leader election timings in seconds (client-go's defaults are 15 / 10 / 2)."""

    lease: int = 3
    renew: float = 2.0
    retry: float = 0.5

    def args(self) -> list[str]:
        return [
            f"--leader-elect-lease-duration={self.lease}s",
            f"--leader-elect-renew-deadline={self.renew}s",
            f"--leader-elect-retry-period={self.retry}s",
        ]


@dataclass
class Replica:
    name: str
    process: subprocess.Popen
    metrics_port: int
    health_port: int
    log_path: Path

    @property
    def identity(self) -> str:
        """The identity the process announced ("leader election on" in its JSON log)."""
        found: list[str] = []

        def announced() -> bool:
            found[:] = [line["identity"] for line in self.log_lines() if "identity" in line]
            return bool(found) or self.process.poll() is not None

        wait_until(announced, 30, f"{self.name} to announce its identity")
        assert found, f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
        return found[0]

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue  # e.g. a traceback printed by Python itself
        return lines

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:]

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.health_port}/readyz"
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def metric(self, name: str, /, **labels: str) -> float | None:
        """One sample of this replica's /metrics (None if absent)."""
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    return sample.value
        return None

    def reconciles(self) -> float:
        """Reconciles finished without error (`success` and `requeue_after`)."""
        name = "controller_runtime_reconcile_total"
        return sum(self.metric(name, result=result) or 0 for result in ("success", "requeue_after"))


@dataclass
class ReplicaSet:
    """Replicas of one controller contending for one Lease in `lease_namespace`."""

    env: DemoEnvironment
    lease_namespace: str
    timings: Timings = Timings()
    lease_name: str = "canaryctl"
    extra_args: Sequence[str] = ()
    replicas: list[Replica] = field(default_factory=list)

    def spawn(self, name: str, extra_args: Sequence[str] = ()) -> Replica:
        """Start replica `name` (POD_NAME); returns at once (see `wait_ready`)."""
        metrics_port, health_port = free_port(), free_port()
        log_path = self.env.workdir / f"{name}.log"
        for attempt in itertools.count(1):  # a fresh file: identities are read from it
            if not log_path.exists():
                break
            log_path = self.env.workdir / f"{name}.{attempt}.log"
        args = [
            "--leader-elect",
            f"--leader-elect-namespace={self.lease_namespace}",
            f"--leader-elect-lease-name={self.lease_name}",
            *self.timings.args(),
            *self.extra_args,
            *extra_args,
        ]
        process = self.env.spawn_controller(
            self.env.watched, metrics_port, health_port, log_path, args, {"POD_NAME": name}
        )
        replica = Replica(name, process, metrics_port, health_port, log_path)
        self.replicas.append(replica)
        return replica

    def wait_ready(self, replica: Replica, timeout: float = 60) -> Replica:
        def ready() -> bool:
            assert replica.process.poll() is None, f"{replica.name}:\n{replica.log_tail()}"
            return replica.ready()

        wait_until(ready, timeout, f"{replica.name} to be ready")
        return replica

    def api_client(self) -> client.ApiClient:
        assert self.env.kube is not None, "the environment is not started"
        return self.env.kube.api_client()

    def lease(self) -> client.V1LeaseSpec:
        with self.api_client() as api:
            coordination = client.CoordinationV1Api(api)
            spec = coordination.read_namespaced_lease(self.lease_name, self.lease_namespace).spec
        assert spec is not None
        return spec

    def holder(self) -> str:
        try:
            return self.lease().holder_identity or ""
        except client.ApiException as error:
            if error.status == 404:
                return ""
            raise

    def leader(self, timeout: float = 30) -> Replica:
        """The live replica holding the Lease (waits for one)."""
        live = [r for r in self.replicas if r.process.poll() is None]
        by_identity = {r.identity: r for r in live}
        wait_until(lambda: self.holder() in by_identity, timeout, "a replica to hold the Lease")
        return by_identity[self.holder()]

    def standbys(self) -> list[Replica]:
        holder = self.holder()
        return [r for r in self.replicas if r.process.poll() is None and r.identity != holder]

    def kill(self, replica: Replica) -> float:
        """SIGKILL `replica`; the wall-clock time it was sent."""
        sent = time.time()
        replica.process.kill()
        replica.process.wait()
        return sent

    def terminate(self, replica: Replica, timeout: float | None = 30) -> tuple[float, int | None]:
        """SIGTERM `replica`; (when it was sent, its exit code). `timeout=None`: do not wait."""
        sent = time.time()
        replica.process.send_signal(signal.SIGTERM)
        return sent, None if timeout is None else replica.process.wait(timeout)

    def close(self) -> None:
        for replica in self.replicas:
            if replica.process.poll() is None:
                replica.process.kill()
                replica.process.wait()


@dataclass(frozen=True)
class Term:
    holder: str  # "" for a released Lease
    since: float  # acquireTime, wall-clock seconds


class LeaseHistory:
    """Polls the Lease every `interval` seconds; keeps each term (holder, acquireTime)."""

    def __init__(self, replicas: ReplicaSet, interval: float = 0.02) -> None:
        self._replicas, self._interval = replicas, interval
        self._terms: dict[tuple[str, float], Term] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="lease-history", daemon=True)

    def __enter__(self) -> LeaseHistory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def terms(self) -> list[Term]:
        return sorted(self._terms.values(), key=lambda term: term.since)

    def holder_at(self, moment: float) -> str | None:
        """Who held the Lease at wall-clock `moment`, as far as the terms seen tell."""
        earlier = [term for term in self.terms() if term.since <= moment]
        return earlier[-1].holder if earlier else None

    def _poll(self) -> None:
        with self._replicas.api_client() as api:
            coordination = client.CoordinationV1Api(api)
            while not self._stop.wait(self._interval):
                try:
                    spec = coordination.read_namespaced_lease(
                        self._replicas.lease_name, self._replicas.lease_namespace
                    ).spec
                except client.ApiException:
                    continue
                if spec is not None and spec.acquire_time is not None:
                    term = Term(spec.holder_identity or "", spec.acquire_time.timestamp())
                    self._terms[(term.holder, term.since)] = term


def identity_of(user_agent: str) -> str:
    """The replica identity canaryctl puts in its User-Agent comment ("" if none)."""
    match = _IDENTITY_IN_AGENT.search(user_agent)
    return match.group(1) if match else ""


def writes(records: Iterable[RequestRecord]) -> list[RequestRecord]:
    """The calls that change the gateway (failed attempts included: they were sent)."""
    return [record for record in records if record.method not in ("GET", "HEAD")]


def writes_out_of_term(records: Iterable[RequestRecord], history: LeaseHistory) -> list[str]:
    """Every write whose sender did not hold the Lease when the gateway answered it."""
    wrong = []
    for record in writes(records):
        writer, holder = identity_of(record.user_agent), history.holder_at(record.time)
        if writer != holder:
            wrong.append(f"{record.method} {record.path} at {record.time:.3f} by {writer!r}, "
                         f"holder {holder!r}")  # fmt: skip
    return wrong

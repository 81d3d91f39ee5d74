"""High availability for real: replicas of `canaryctl run --leader-elect` as processes against a
real kube-apiserver and the API7 Cloud emulator.

Who wrote what is read from the emulator's request log: every replica sends its identity in
its User-Agent. `LeaseHistory` polls the Lease for every term (holder, acquireTime); every
gateway write must come from the replica holding the Lease when the gateway answered it,
so no test may show two identities writing in one lease term. Timings are short (lease 3 s,
renew deadline 2 s, retry 0.5 s) except for the SIGTERM handover, which uses client-go's
defaults (15 / 10 / 2 s): a handover under 2 s there cannot come from polling or expiry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.traffic import LoadGenerator
from canaryctl.testing.partition import PartitionableRelay
from canaryctl.testing.processes import wait_until
from canaryctl.testing.replicas import (
    LeaseHistory,
    Replica,
    ReplicaSet,
    Timings,
    identity_of,
    writes,
    writes_out_of_term,
)
from canaryctl.timestamps import parse_utc

pytestmark = pytest.mark.localkube

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
SHORT = Timings(lease=3, renew=2.0, retry=0.5)
DEFAULTS = Timings(lease=15, renew=10.0, retry=2.0)


@pytest.fixture
def env(localkube, namespace) -> Iterator[DemoEnvironment]:
    with DemoEnvironment(
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        with_controller=False,
        controller_args=["--resync-period=2"],
    ) as environment:
        yield environment


@pytest.fixture
def replicas(env, namespace) -> Iterator[ReplicaSet]:
    made = ReplicaSet(env, namespace, SHORT)
    yield made
    made.close()


def start(replicas: ReplicaSet, *names: str) -> list[Replica]:
    """Start replicas in this order, each ready (synced) before the next: the first leads."""
    started = [replicas.wait_ready(replicas.spawn(name)) for name in names[:1]]
    assert replicas.leader() is started[0]
    return started + [replicas.wait_ready(replicas.spawn(name)) for name in names[1:]]


def key(env, name: str) -> str:
    return f"{env.namespace}/{name}"


def publish_canary(env, percent: int) -> None:
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.apply_service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: str(percent)})
    wait_for_weight(env, percent)


def wait_for_weight(env, percent: int) -> None:
    env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v2"), percent))
    wait_until(
        lambda: (env.status("error-page-v2") or {}).get("appliedWeight") == percent,
        15,
        f"the status to say {percent} %",
    )


def resource_versions(env) -> dict[str, str]:
    """The Services' resourceVersions: unchanged means nobody patched them (status included)."""
    out = env.kubectl("get", "services", "-n", env.namespace, "-o", "yaml").stdout
    return {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in
            yaml.safe_load(out)["items"]}  # fmt: skip


def writers(env) -> list[str]:
    return [identity_of(record.user_agent) for record in writes(env.emulator.request_log())]


# ------------------------------------------------------------------------------------------


def test_two_replicas_one_writer_and_a_warm_ready_standby(env, replicas):
    with LeaseHistory(replicas) as history:
        leader, standby = start(replicas, "replica-a", "replica-b")
        publish_canary(env, 10)
        for percent in (20, 30):
            env.annotate("error-page-v2", f"{PERCENT}={percent}")
            wait_for_weight(env, percent)
        log = env.emulator.request_log()

    assert writes(log) and writes_out_of_term(log, history) == []
    assert set(writers(env)) == {leader.identity}
    assert leader.identity.startswith("replica-a_") and standby.identity.startswith("replica-b_")
    assert leader.metric("leader_election_master_status", name="canaryctl") == 1
    assert standby.metric("leader_election_master_status", name="canaryctl") == 0
    assert standby.ready()  # synced, serving, contending
    assert standby.reconciles() == 0
    assert standby.metric("workqueue_depth", name="service") == 0
    # warm: the standby read the gateway (at start and on its resync period) without writing
    assert any(identity_of(r.user_agent) == standby.identity for r in log if r.method == "GET")


def test_sigkill_the_leader_a_standby_leads_in_time_writes_nothing_and_a_restart_stands_by(
    env, replicas
):
    with LeaseHistory(replicas) as history:
        leader, *_ = start(replicas, "replica-a", "replica-b", "replica-c")
        publish_canary(env, 30)
        before = resource_versions(env)
        env.emulator.clear_request_log()

        killed_at = replicas.kill(leader)
        successor = replicas.leader(timeout=SHORT.lease + 10)
        acquired = replicas.lease().acquire_time.timestamp()
        wait_until(lambda: successor.reconciles() >= 1, 10, "the new leader to reconcile")

        assert acquired - killed_at <= SHORT.lease + 2 * SHORT.retry
        transitions = "canaryctl_leader_election_transitions_total"
        assert successor.metric(transitions, name="canaryctl") == 1  # it saw one handoff
        assert writes(env.emulator.request_log()) == []  # the canary is right: nothing to write
        assert resource_versions(env) == before  # not even a status patch
        assert env.split()[2] == 30 and env.send(100)["v2"] == 30

        restarted = replicas.wait_ready(replicas.spawn("replica-a"))
        assert restarted.identity != leader.identity  # a new process, a new identity
        env.annotate("error-page-v2", f"{PERCENT}=40")
        wait_for_weight(env, 40)
        assert restarted.metric("leader_election_master_status", name="canaryctl") == 0
        assert restarted.reconciles() == 0
        log = env.emulator.request_log()

    assert set(writers(env)) == {successor.identity}
    assert writes_out_of_term(log, history) == []


def test_sigterm_hands_over_in_under_two_seconds_at_default_timings(env, namespace):
    replicas = ReplicaSet(env, namespace, DEFAULTS)
    try:
        with LeaseHistory(replicas) as history:
            leader, standby = start(replicas, "replica-a", "replica-b")
            publish_canary(env, 20)
            transitions = replicas.lease().lease_transitions

            sent, code = replicas.terminate(leader)
            assert replicas.leader(timeout=DEFAULTS.lease + 10) is standby
            acquired = replicas.lease().acquire_time.timestamp()
            env.annotate("error-page-v2", f"{PERCENT}=25")
            wait_for_weight(env, 25)
            log = env.emulator.request_log()
    finally:
        replicas.close()

    assert code == 0
    print(f"SIGTERM -> new leader's acquireTime: {acquired - sent:.3f} s")
    assert acquired - sent < 2.0  # polling alone: 2-4.4 s; expiry: 15 s
    assert replicas.lease().lease_transitions == transitions + 1
    assert any("released lease" in line.get("msg", "") for line in leader.log_lines())
    assert writers(env)[-1] == standby.identity
    assert writes_out_of_term(log, history) == []


def test_a_partitioned_leader_stops_writing_before_another_leads(
    env, replicas, localkube, tmp_path
):
    relay = PartitionableRelay("127.0.0.1", localkube.apiserver_port).start()
    try:
        kubeconfig = through(localkube.kubeconfig, relay.url, tmp_path)
        leader = replicas.wait_ready(replicas.spawn("replica-a", [f"--kubeconfig={kubeconfig}"]))
        assert replicas.leader() is leader
        standby = replicas.wait_ready(replicas.spawn("replica-b"))
        publish_canary(env, 30)
        with LeaseHistory(replicas) as history, HandEdits(env):
            # the gateway loses the canary again and again; the leader's resync puts it back
            wait_until(lambda: writers(env).count(leader.identity) >= 3, 20, "corrections")
            cut_at = time.time()
            relay.cut()  # the leader no longer reaches the API server; the gateway it still does
            assert leader.process.wait(SHORT.renew + 5) == 1
            exited_at = time.time()
            assert replicas.leader(timeout=SHORT.lease + 10) is standby
            wait_until(lambda: standby.identity in writers(env), 20, "the new leader's writes")
            log = env.emulator.request_log()
    finally:
        relay.close()

    by_leader = [r.time for r in writes(log) if identity_of(r.user_agent) == leader.identity]
    by_standby = [r.time for r in writes(log) if identity_of(r.user_agent) == standby.identity]
    assert max(by_leader) < min(by_standby)
    assert max(by_leader) - cut_at <= SHORT.renew + 0.5  # it stopped at its renew deadline
    assert exited_at - cut_at <= SHORT.renew + 2
    assert any("lost the lease" in line.get("msg", "") for line in leader.log_lines())
    assert writes_out_of_term(log, history) == []


def through(kubeconfig: Path, server: str, directory: Path) -> Path:
    """A copy of `kubeconfig` that reaches the API server at `server` (a relay)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = server
    path = directory / "through-relay.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


class HandEdits:
    """Deletes the app's canary in the emulator behind canaryctl's back, every 0.2 s."""

    def __init__(self, env) -> None:
        self._store = env.emulator.store
        self._app = env.emulator.app_by_name("error-page")["id"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._edit, daemon=True)

    def __enter__(self) -> HandEdits:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _edit(self) -> None:
        while not self._stop.wait(0.2):
            for canary in self._store.list_canaries(self._app):
                self._store.delete_canary(self._app, canary["id"])


# an automated release ---------------------------------------------------------------------

STEPS = "api7.cloud/canary-steps"
INTERVAL = "api7.cloud/canary-step-interval"


@pytest.fixture
def release_env(localkube, namespace, prometheus_server_factory) -> Iterator[DemoEnvironment]:
    prometheus_server_factory([])  # skips (or fails when required) without prometheus
    with DemoEnvironment(
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        with_prometheus=True,
        with_controller=False,
    ) as environment:
        yield environment


def test_sigkill_mid_release_the_new_leader_continues_the_same_step_on_time(release_env, namespace):
    env = release_env
    replicas = ReplicaSet(env, namespace, SHORT)
    try:
        leader, successor = start(replicas, "replica-a", "replica-b")
        env.apply_service("error-page-v1", {APP: "error-page"})
        with LoadGenerator(env.emulator.dataplane_url, rate=60):
            env.apply_service("error-page-v2", {
                APP: "error-page", CANARY: "true", STEPS: "20,50", INTERVAL: "10s",
                "api7.cloud/canary-min-requests": "10",
            })  # fmt: skip
            wait_until(lambda: release(env).get("weight") == 20, 30, "the first step")
            started = release(env)["stepStartedAt"]
            env.emulator.clear_request_log()
            replicas.kill(leader)
            assert replicas.leader(timeout=SHORT.lease + 10) is successor
            wait_until(lambda: successor.reconciles() >= 1, 10, "the new leader to reconcile")
            assert writes(env.emulator.request_log()) == []  # mid-step: nothing to write
            assert release(env)["stepStartedAt"] == started and release(env)["weight"] == 20
            wait_until(lambda: release(env).get("weight") == 50, 40, "the second step")
            advanced = release(env)["stepStartedAt"]
    finally:
        replicas.close()

    assert set(writers(env)) == {successor.identity}
    assert 10 <= seconds_between(started, advanced) <= 10 + SHORT.lease + 5


def release(env) -> dict:
    return (env.status("error-page-v2") or {}).get("release") or {}


def seconds_between(earlier: str, later: str) -> float:
    return (parse_utc(later) - parse_utc(earlier)).total_seconds()

"""Leader election against a real kube-apiserver: acquire, renew, take over, release, partitions.

Timings are short (lease 3 s, renew deadline 2 s, retry 0.5 s) so a takeover after a crash
takes seconds. Time bounds follow from the algorithm, with `SLACK` for a loaded machine: a
standby tries every retry period x (1..2.2) (client-go's jitter), sees the leader's last
write at its next try and takes over one lease duration after that.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from canaryctl import metrics
from canaryctl.kube import SERVICEACCOUNT_DIR_ENV, load_api_client
from canaryctl.leaderelection import JITTER_FACTOR, ElectionConfig, LeaderElector, LeaseLock
from canaryctl.leaderelection.leaselock import LeaseConflict
from canaryctl.testing.partition import PartitionableRelay
from canaryctl.testing.processes import wait_until

pytestmark = pytest.mark.localkube

LEASE, RENEW, RETRY = 3, 2.0, 0.5
SLACK = 0.5  # seconds of scheduling and request latency allowed on a busy 2-core machine
MAX_POLL = RETRY * (1 + JITTER_FACTOR)  # longest wait between two tries of a standby


class Candidate:
    """One elector and what its callbacks saw, stamped with time.monotonic()."""

    def __init__(self, api: client.ApiClient, config: ElectionConfig, **options) -> None:
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.leaders: list[str] = []
        self.elector = LeaderElector(
            api,
            config,
            on_started_leading=self._work,
            on_stopped_leading=self._stopped,
            on_new_leader=self.leaders.append,
            **options,
        )
        self.identity = self.elector.identity

    def _work(self, stop: threading.Event) -> None:
        self.started_at = time.monotonic()
        stop.wait()

    def _stopped(self) -> None:
        self.stopped_at = time.monotonic()

    def leads(self) -> bool:
        return self.elector.is_leader()


class Sampler:
    """Polls is_leader() of every candidate about every millisecond; counts overlaps."""

    def __init__(self) -> None:
        self.candidates: list[Candidate] = []
        self.samples = 0
        self.overlaps: list[list[str]] = []
        self.first_true: dict[str, float] = {}
        self.last_true: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_forever, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _sample_forever(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            leading = [c.identity for c in list(self.candidates) if c.leads()]
            for identity in leading:
                self.first_true.setdefault(identity, now)
                self.last_true[identity] = now
            if len(leading) > 1:
                self.overlaps.append(leading)
            self.samples += 1
            time.sleep(0.001)


@pytest.fixture
def config(namespace) -> ElectionConfig:
    # a lease name per test keeps the process-wide metrics of tests apart
    return ElectionConfig(f"canaryctl-{namespace}", namespace, LEASE, RENEW, RETRY)


@pytest.fixture
def candidates() -> Iterator[list[Candidate]]:
    """Candidates to stop (as if crashed) after the test."""
    made: list[Candidate] = []
    yield made
    for candidate in made:
        candidate.elector.stop(release=False, timeout=RENEW + 1)


@pytest.fixture
def start(kube_api, config, candidates):
    def start_candidate(api: client.ApiClient | None = None, **options) -> Candidate:
        candidate = Candidate(api or kube_api, options.pop("config", config), **options)
        candidates.append(candidate)
        candidate.elector.start()
        return candidate

    return start_candidate


@pytest.fixture
def partitionable(localkube) -> Iterator:
    """factory() -> (relay, ApiClient through it); relays and clients closed afterwards."""
    made: list[tuple[PartitionableRelay, client.ApiClient]] = []

    def factory() -> tuple[PartitionableRelay, client.ApiClient]:
        relay = PartitionableRelay("127.0.0.1", localkube.apiserver_port).start()
        api = load_api_client(str(localkube.kubeconfig))
        api.configuration.host = relay.url
        made.append((relay, api))
        return relay, api

    yield factory
    for relay, api in made:
        relay.close()
        api.close()


def read_lease(api: client.ApiClient, config: ElectionConfig) -> client.V1LeaseSpec:
    lease = client.CoordinationV1Api(api).read_namespaced_lease(config.lease_name, config.namespace)
    return lease.spec


def lead(candidate: Candidate, timeout: float = LEASE + 5) -> None:
    """Wait until `candidate` leads and its on_started_leading has run."""

    def leading() -> bool:
        return candidate.started_at is not None and candidate.leads()

    wait_until(leading, timeout, f"{candidate.identity} to lead")


def leader_among(group: list[Candidate], timeout: float = LEASE + 5) -> Candidate:
    """Wait until exactly one of `group` leads; that one."""
    wait_until(lambda: sum(c.leads() for c in group) == 1, timeout, "exactly one leader")
    return next(c for c in group if c.leads())


def sees(candidate: Candidate, leader: Candidate) -> None:
    wait_until(lambda: leader.identity in candidate.leaders, 5, "the standby to see the leader")


def stays_false(condition, seconds: float) -> bool:
    """Poll `condition` for `seconds`; True if it never held (a window, not a sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return False
        time.sleep(0.01)
    return True


def gauge(config: ElectionConfig) -> float | None:
    return metrics.REGISTRY.get_sample_value(
        "leader_election_master_status", {"name": config.lease_name}
    )


# ------------------------------------------------------------------------------------------


def test_one_elector_acquires_and_renews(kube_api, config, start):
    assert gauge(config) is None
    leader = start()
    lead(leader)
    spec = read_lease(kube_api, config)
    assert spec.holder_identity == leader.identity
    assert (spec.lease_duration_seconds, spec.lease_transitions) == (LEASE, 0)
    assert gauge(config) == 1

    renewals = {spec.renew_time}
    wait_until(
        lambda: renewals.add(read_lease(kube_api, config).renew_time) or len(renewals) >= 3,
        4 * RETRY + SLACK,
        "two renewals",
        interval=0.05,
    )
    again = read_lease(kube_api, config)
    assert again.acquire_time == spec.acquire_time
    assert again.holder_identity == leader.identity and leader.leads()
    assert leader.leaders == [leader.identity]

    leader.elector.stop()
    assert not leader.leads() and leader.stopped_at is not None
    assert gauge(config) == 0


def test_standby_takes_over_a_lease_duration_after_a_crash(kube_api, config, start):
    first = start()
    lead(first)
    standby = start()
    sees(standby, first)
    assert stays_false(standby.leads, 1.5 * LEASE), "took over a lease that was being renewed"
    acquired = read_lease(kube_api, config).acquire_time

    crashed_at = time.monotonic()
    first.elector.stop(release=False)  # stops renewing, hands nothing back
    lead(standby, LEASE + 2 * MAX_POLL + 2 * SLACK)

    takeover = standby.started_at - crashed_at
    # the crashed leader's last write was at most one retry period before the crash, and the
    # standby saw it at most one jittered poll after; it then waited one lease duration
    assert LEASE - RETRY - SLACK <= takeover <= LEASE + 2 * MAX_POLL + SLACK
    spec = read_lease(kube_api, config)
    assert spec.holder_identity == standby.identity
    assert spec.lease_transitions == 1
    assert spec.acquire_time > acquired
    assert standby.leaders == [first.identity, standby.identity]


def test_graceful_release_hands_over_at_the_standbys_next_try(kube_api, namespace, start):
    slow_expiry = ElectionConfig("canaryctl", namespace, 10, 6.0, RETRY)
    transitions_seen = ("canaryctl_leader_election_transitions_total", {"name": "canaryctl"})
    before = metrics.REGISTRY.get_sample_value(*transitions_seen) or 0
    first = start(config=slow_expiry)
    lead(first)
    standby = start(config=slow_expiry)
    sees(standby, first)

    stopped_at = time.monotonic()
    first.elector.stop()
    lead(standby, 3)

    assert first.stopped_at is not None
    assert standby.started_at - stopped_at < MAX_POLL + SLACK  # 10 s if it waited for expiry
    spec = read_lease(kube_api, slow_expiry)
    assert (spec.holder_identity, spec.lease_transitions) == (standby.identity, 1)
    assert metrics.REGISTRY.get_sample_value(*transitions_seen) - before == 1


def test_release_leaves_an_empty_holder_and_a_one_second_lease(kube_api, config, start):
    leader = start()
    lead(leader)
    leader.elector.stop()
    spec = read_lease(kube_api, config)
    assert not spec.holder_identity
    assert spec.lease_duration_seconds == 1
    assert spec.lease_transitions == 0
    assert leader.elector.leader() == ""


def test_each_change_of_holder_counts_one_transition(kube_api, config, start):
    chain = [start() for _ in range(3)]
    for step in range(3):
        leader = leader_among(chain)
        assert read_lease(kube_api, config).lease_transitions == step
        for other in chain:
            if other is not leader:
                sees(other, leader)
        leader.elector.stop()
        chain.remove(leader)
        chain.append(start())


def test_a_service_account_needs_only_get_create_update_on_leases(
    localkube, kube_api, namespace, config, start, tmp_path, monkeypatch
):
    kubectl = localkube.kubectl
    kubectl("create", "serviceaccount", "canaryctl", "-n", namespace)
    kubectl("create", "role", "leader-election", "-n", namespace, "--verb=get,create,update",
            "--resource=leases.coordination.k8s.io")  # fmt: skip
    kubectl("create", "rolebinding", "leader-election", "-n", namespace,
            "--role=leader-election", f"--serviceaccount={namespace}:canaryctl")  # fmt: skip
    (tmp_path / "token").write_text(localkube.service_account_token(namespace, "canaryctl"))
    shutil.copy(localkube.pki / "ca.crt", tmp_path / "ca.crt")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(localkube.apiserver_port))
    monkeypatch.setenv(SERVICEACCOUNT_DIR_ENV, str(tmp_path))

    with load_api_client(None) as pod_api:
        leader = start(pod_api)
        pod_api.user_agent = leader.elector.user_agent("canaryctl/test")
        lead(leader)
        leader.elector.stop()
    assert leader.stopped_at is not None
    assert read_lease(kube_api, config).lease_duration_seconds == 1  # released


class RacingLock(LeaseLock):
    """A real LeaseLock whose first create waits until every racer is about to create."""

    def __init__(self, api, config, barrier: threading.Barrier, conflicts: list) -> None:
        super().__init__(api, config.namespace, config.lease_name)
        self._barrier, self._conflicts, self._first = barrier, conflicts, True

    def create(self, spec: dict, timeout: float) -> dict:
        if self._first:
            self._first = False
            self._barrier.wait(10)
        try:
            return super().create(spec, timeout)
        except LeaseConflict:
            self._conflicts.append(spec["holderIdentity"])
            raise


def test_two_electors_creating_at_once_leave_exactly_one_leader(kube_api, config, start):
    barrier, conflicts = threading.Barrier(2), []
    racers = [
        start(lock=RacingLock(kube_api, config, barrier, conflicts)),
        start(lock=RacingLock(kube_api, config, barrier, conflicts)),
    ]
    wait_until(lambda: any(r.leads() for r in racers), 10, "a winner")
    winner = next(r for r in racers if r.leads())
    loser = next(r for r in racers if r is not winner)

    assert conflicts == [loser.identity]  # the API server refused the second create
    assert stays_false(loser.leads, 2 * RETRY * (1 + JITTER_FACTOR))
    sees(loser, winner)
    spec = read_lease(kube_api, config)
    assert (spec.holder_identity, spec.lease_transitions) == (winner.identity, 0)


def test_partitioned_leader_steps_down_before_anyone_takes_over(start, partitionable):
    relay, partitioned_api = partitionable()
    leader = start(partitioned_api)
    lead(leader)
    standby = start()
    sees(standby, leader)
    sampler = Sampler()
    sampler.candidates += [leader, standby]
    sampler.start()

    cut_at = time.monotonic()
    relay.cut()
    lead(standby, LEASE + 2 * MAX_POLL + 2 * SLACK)
    sampler.stop()

    assert leader.stopped_at is not None and not leader.leads()
    assert leader.stopped_at - cut_at <= RENEW + RETRY  # its last good renewal preceded the cut
    stepped_down = sampler.last_true[leader.identity]
    took_over = sampler.first_true[standby.identity]
    assert took_over - stepped_down >= 0.5  # the margin lease - renew deadline, less polling
    assert standby.started_at - cut_at >= LEASE - RETRY - 0.1  # only after the lease expired
    assert sampler.overlaps == [] and sampler.samples > 1000


ACTIONS = ("graceful", "crash", "partition")


def test_three_electors_never_lead_at_once_through_churn(kube_api, config, start, partitionable):
    sampler = Sampler()
    pool = [partitionable() for _ in range(3)]
    routes = {}  # identity -> (relay, api) of that candidate

    def add(route) -> Candidate:
        candidate = start(route[1])
        routes[candidate.identity] = route
        sampler.candidates.append(candidate)
        return candidate

    active = [add(route) for route in pool]
    sampler.start()
    for round_number, action in enumerate(ACTIONS * 2):
        leader = leader_among(active)
        relay, _ = routes[leader.identity]
        if action == "graceful":
            leader.elector.stop()
        elif action == "crash":
            leader.elector.stop(release=False)
        else:
            relay.cut()
        others = [c for c in active if c is not leader]
        leader_among(others, 2 * LEASE + 5)
        if action == "partition":
            assert leader.elector.join(RENEW + 1), "the partitioned leader did not step down"
            relay.heal()
        active = [*others, add(routes[leader.identity])]
        assert read_lease(kube_api, config).lease_transitions == round_number + 1
    sampler.stop()

    assert sampler.overlaps == []
    assert sampler.samples > 5000


# standbys watching the Lease ------------------------------------------------------------------


def slow_poll(namespace: str) -> ElectionConfig:
    """Timings whose polls are 2-4.4 s apart and whose lease lasts 10 s: a takeover faster
    than that can only come from the standby's watch on the Lease."""
    return ElectionConfig("canaryctl", namespace, 10, 6.0, 2.0)


def test_a_watching_standby_takes_a_released_lease_before_its_next_poll(namespace, start):
    slow = slow_poll(namespace)
    first = start(config=slow)
    lead(first)
    standby = start(config=slow)
    sees(standby, first)

    stopped_at = time.monotonic()
    first.elector.stop()
    lead(standby, 3)
    # polling alone would take at least one retry period (2 s); expiry 10 s
    assert standby.started_at - stopped_at < slow.retry_period / 2


def test_a_watching_standby_takes_over_right_when_a_crashed_leaders_lease_runs_out(
    kube_api, namespace, start
):
    slow = slow_poll(namespace)
    first = start(config=slow)
    lead(first)
    standby = start(config=slow)
    sees(standby, first)

    crashed_at = time.monotonic()
    first.elector.stop(release=False)
    lead(standby, slow.lease_duration + 3 * slow.retry_period)
    takeover = standby.started_at - crashed_at
    # the last renewal came at most one retry period before the crash and was seen at once;
    # polling would add up to two jittered retries (8.8 s) on top of the lease duration
    assert slow.lease_duration - slow.retry_period - SLACK <= takeover
    assert takeover <= slow.lease_duration + SLACK
    assert read_lease(kube_api, slow).holder_identity == standby.identity


def service_account_api(localkube, namespace, tmp_path, monkeypatch, verbs: str, names: str = ""):
    """An ApiClient as ServiceAccount `elector`, allowed `verbs` on leases (only `names`)."""
    kubectl = localkube.kubectl
    kubectl("create", "serviceaccount", "elector", "-n", namespace)
    limit = [f"--resource-name={name}" for name in names.split(",") if name]
    kubectl("create", "role", "elector", "-n", namespace, f"--verb={verbs}",
            "--resource=leases.coordination.k8s.io", *limit)  # fmt: skip
    kubectl("create", "rolebinding", "elector", "-n", namespace, "--role=elector",
            f"--serviceaccount={namespace}:elector")  # fmt: skip
    (tmp_path / "token").write_text(localkube.service_account_token(namespace, "elector"))
    shutil.copy(localkube.pki / "ca.crt", tmp_path / "ca.crt")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(localkube.apiserver_port))
    monkeypatch.setenv(SERVICEACCOUNT_DIR_ENV, str(tmp_path))
    return load_api_client(None)


def test_watching_one_lease_needs_only_watch_on_that_name(
    localkube, namespace, start, tmp_path, monkeypatch, caplog
):
    slow = slow_poll(namespace)
    first = start(config=slow)
    lead(first)
    with service_account_api(localkube, namespace, tmp_path, monkeypatch,
                             "get,update,watch", names="canaryctl") as pod_api:  # fmt: skip
        standby = start(pod_api, config=slow)
        sees(standby, first)
        stopped_at = time.monotonic()
        first.elector.stop()
        lead(standby, 3)
    assert standby.started_at - stopped_at < slow.retry_period / 2  # the watch was allowed
    assert "cannot watch lease" not in caplog.text


def test_without_watch_permission_a_standby_falls_back_to_polling(
    localkube, namespace, start, tmp_path, monkeypatch, caplog
):
    slow = slow_poll(namespace)
    first = start(config=slow)
    lead(first)
    with service_account_api(localkube, namespace, tmp_path, monkeypatch,
                             "get,update") as pod_api:  # fmt: skip
        standby = start(pod_api, config=slow)
        sees(standby, first)
        first.elector.stop()
        lead(standby, slow.retry_period * (1 + JITTER_FACTOR) + SLACK)
    assert "cannot watch lease canaryctl (HTTP 403)" in caplog.text

"""ServiceInformer against a real kube-apiserver: list, watch, bookmarks, 410 after compaction,
apiserver restarts, namespace scoping, resync and a prompt stop. Plus the pure Backoff."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from canaryctl import metrics
from canaryctl.cache import ServiceStore
from canaryctl.informer import ServiceInformer
from canaryctl.listwatch import Backoff
from canaryctl.objects import Service
from canaryctl.testing.localkube import wait_until

Pair = tuple[Service | None, Service | None]


class HandlerCalls:
    """A thread-safe recording handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Pair] = []

    def __call__(self, old: Service | None, new: Service | None) -> None:
        with self._lock:
            self._calls.append((old, new))

    def all(self) -> list[Pair]:
        with self._lock:
            return list(self._calls)

    def of(self, key: str) -> list[Pair]:
        return [(old, new) for old, new in self.all() if (new or old).key == key]


class GatedSleep:
    """An informer `sleep` that holds every backoff until the test opens the gate."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.opened = threading.Event()
        self._done = threading.Event()

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.opened.wait(60)
        self._done.wait(min(seconds, 0.5))

    def close(self) -> None:
        self.opened.set()
        self._done.set()


def counter(family, label: str) -> float:
    return family.labels(label)._value.get()


def service_body(name: str, **annotations: str) -> dict:
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"ports": [{"port": 80}]},
    }


@pytest.fixture
def other_namespace(localkube) -> Iterator[str]:
    name = localkube.create_namespace()
    yield name
    localkube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def informers() -> Iterator[list[ServiceInformer]]:
    """Informers started by a test, stopped afterwards whatever happens."""
    started: list[ServiceInformer] = []
    yield started
    for informer in started:
        informer.stop()


@pytest.fixture
def run(kube_api, informers):
    def start(handler, namespaces=None, **options) -> ServiceInformer:
        informer = ServiceInformer(kube_api, ServiceStore({}), handler, namespaces, **options)
        informers.append(informer.start())
        assert informer.wait_for_sync(20), "informer did not sync"
        return informer

    return start


def stored(informer: ServiceInformer) -> dict[str, str]:
    return {view.key: view.resource_version for view in informer.store.list()}


def server_state(core_api: client.CoreV1Api, namespace: str) -> dict[str, str]:
    items = json.loads(core_api.list_namespaced_service(namespace, _preload_content=False).data)[
        "items"
    ]
    return {f"{namespace}/{s['metadata']['name']}": s["metadata"]["resourceVersion"] for s in items}


# list + watch -------------------------------------------------------------------------------------


def test_initial_list_pages_through_existing_services(run, core_api, namespace):
    for name in ("a", "b", "c"):
        core_api.create_namespaced_service(namespace, service_body(name, team=name))
    calls = HandlerCalls()
    before = counter(metrics.relists_total, "initial")

    informer = run(calls, [namespace], page_size=2)

    assert informer.has_synced()
    assert stored(informer) == server_state(core_api, namespace)
    assert sorted(new.key for old, new in calls.all() if old is None) == [
        f"{namespace}/{n}" for n in "abc"
    ]
    assert informer.store.get(f"{namespace}/b").annotations == {"team": "b"}
    assert counter(metrics.relists_total, "initial") == before + 1


def test_added_modified_deleted_reach_the_handler_with_old_and_new(run, core_api, namespace):
    calls = HandlerCalls()
    informer = run(calls, [namespace])
    key = f"{namespace}/web"

    core_api.create_namespaced_service(namespace, service_body("web"))
    wait_until(lambda: len(calls.of(key)) == 1, 10, "ADDED")
    core_api.patch_namespaced_service(
        "web", namespace, {"metadata": {"annotations": {"stage": "canary"}}}
    )
    wait_until(lambda: len(calls.of(key)) == 2, 10, "MODIFIED")
    core_api.delete_namespaced_service("web", namespace)
    wait_until(lambda: len(calls.of(key)) == 3, 10, "DELETED")

    (none, added), (before, after), (deleted, gone) = calls.of(key)
    assert none is None and gone is None
    assert added == before and "stage" not in before.annotations
    assert (
        after.annotations["stage"] == "canary" and after.resource_version != before.resource_version
    )
    assert deleted.key == key and deleted.annotations["stage"] == "canary"
    assert informer.store.get(key) is None and len(informer.store) == 0
    assert int(informer.last_sync_resource_version(namespace)) > int(
        after.resource_version
    )  # the deletion's


def test_all_namespaces_or_only_the_given_ones(
    run, core_api, namespace, other_namespace, localkube
):
    third = localkube.create_namespace()
    try:
        scoped, everything = HandlerCalls(), HandlerCalls()
        two = run(scoped, [namespace, other_namespace])
        cluster = run(everything)
        for ns in (namespace, other_namespace, third):
            core_api.create_namespaced_service(ns, service_body("svc"))
        wanted = {f"{ns}/svc" for ns in (namespace, other_namespace, third)}

        wait_until(
            lambda: wanted <= set(cluster.store.keys()),
            10,
            "all three in the cluster-wide informer",
        )
        wait_until(lambda: len(two.store) == 2, 10, "two in the scoped informer")
        assert set(two.store.keys()) == {f"{namespace}/svc", f"{other_namespace}/svc"}
        assert all(
            (new or old).namespace in (namespace, other_namespace) for old, new in scoped.all()
        )
    finally:
        localkube.kubectl("delete", "namespace", third, "--wait=false", check=False)


def test_watch_that_times_out_resumes_from_the_bookmarked_version_without_relisting(
    run, core_api, namespace, other_namespace
):
    calls = HandlerCalls()
    relists = counter(metrics.relists_total, "initial") + counter(metrics.relists_total, "expired")
    closed = counter(metrics.watch_restarts_total, "closed")
    informer = run(calls, [namespace], watch_timeout=(3, 3))
    listed = int(informer.last_sync_resource_version(namespace))

    core_api.create_namespaced_service(
        other_namespace, service_body("elsewhere")
    )  # moves the global version
    # only a BOOKMARK can tell an idle watch of `namespace` about a newer version
    wait_until(
        lambda: int(informer.last_sync_resource_version(namespace)) > listed, 15, "a bookmark"
    )
    wait_until(
        lambda: counter(metrics.watch_restarts_total, "closed") >= closed + 2, 15, "two re-watches"
    )

    core_api.create_namespaced_service(namespace, service_body("later"))
    wait_until(lambda: calls.of(f"{namespace}/later"), 10, "an event after the re-watches")
    assert (
        counter(metrics.relists_total, "initial") + counter(metrics.relists_total, "expired")
        == relists + 1
    )
    assert calls.all() == calls.of(f"{namespace}/later")


# outages ------------------------------------------------------------------------------------------


def test_compaction_while_disconnected_relists_and_loses_no_change(
    run, core_api, namespace, other_namespace, localkube
):
    for name in ("kept", "deleted", "changed"):
        core_api.create_namespaced_service(namespace, service_body(name))
    calls, gate = HandlerCalls(), GatedSleep()
    expired = counter(metrics.relists_total, "expired")
    try:
        informer = run(calls, [namespace], sleep=gate)
        core_api.patch_namespaced_service(
            "kept", namespace, {"metadata": {"annotations": {"before": "1"}}}
        )
        wait_until(
            lambda: "before" in informer.store.get(f"{namespace}/kept").annotations, 10, "the patch"
        )
        core_api.create_namespaced_service(
            other_namespace, service_body("x")
        )  # a version the informer never sees

        localkube.compact()  # etcd compacted, apiserver restarted: the informer's version is gone
        wait_until(lambda: gate.delays, 30, "the informer to back off")
        core_api.delete_namespaced_service("deleted", namespace)
        core_api.patch_namespaced_service(
            "changed", namespace, {"metadata": {"annotations": {"after": "1"}}}
        )
        core_api.create_namespaced_service(namespace, service_body("added"))
        gate.opened.set()

        wait_until(
            lambda: stored(informer) == server_state(core_api, namespace),
            30,
            "the store to catch up",
        )
    finally:
        gate.close()
    assert counter(metrics.relists_total, "expired") >= expired + 1
    ((old, gone),) = [pair for pair in calls.of(f"{namespace}/deleted") if pair[1] is None]
    assert gone is None and old.name == "deleted"
    old, new = calls.of(f"{namespace}/changed")[-1]
    assert "after" not in old.annotations and new.annotations["after"] == "1"
    assert calls.of(f"{namespace}/added")[-1][0] is None
    assert informer.store.get(f"{namespace}/kept").annotations == {"before": "1"}


def test_apiserver_restart_backs_off_then_resumes(run, core_api, namespace, localkube):
    calls, delays, done = HandlerCalls(), [], threading.Event()
    errors = counter(metrics.watch_restarts_total, "error")

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        done.wait(seconds)

    try:
        informer = run(
            calls, [namespace], sleep=sleep, backoff=lambda: Backoff(initial=0.2, cap=1.0)
        )
        localkube.restart_apiserver()
        core_api.create_namespaced_service(namespace, service_body("after-restart"))
        wait_until(
            lambda: informer.store.get(f"{namespace}/after-restart"), 30, "the informer to resume"
        )
    finally:
        done.set()
    assert delays and delays[0] <= 0.2
    assert all(
        later >= min(0.8 * earlier * 2, 0.8) for earlier, later in itertools.pairwise(delays)
    )  # doubling
    assert counter(metrics.watch_restarts_total, "error") > errors
    assert calls.of(f"{namespace}/after-restart")[0][0] is None


# handler, resync, stop ----------------------------------------------------------------------------


def test_failing_handler_does_not_stop_the_watch(run, core_api, namespace):
    seen: list[str] = []

    def handler(old, new):
        seen.append(new.name)
        if new.name == "first":
            raise RuntimeError("handler bug")

    run(handler, [namespace])
    core_api.create_namespaced_service(namespace, service_body("first"))
    core_api.create_namespaced_service(namespace, service_body("second"))
    wait_until(lambda: seen == ["first", "second"], 10, "both events despite the failure")


def test_resync_hands_every_cached_service_to_the_handler_again(run, core_api, namespace):
    core_api.create_namespaced_service(namespace, service_body("web"))
    calls = HandlerCalls()
    informer = run(calls, [namespace], resync_period=0.2)
    wait_until(lambda: len(calls.of(f"{namespace}/web")) >= 3, 10, "two resyncs")
    cached = informer.store.get(f"{namespace}/web")
    assert all(old is new is cached for old, new in calls.of(f"{namespace}/web")[1:])


def test_stop_returns_promptly_from_an_idle_watch(kube_api, namespace):
    others = set(threading.enumerate())
    informer = ServiceInformer(
        kube_api, ServiceStore({}), HandlerCalls(), [namespace, "default"], resync_period=60
    )
    informer.start()
    assert informer.wait_for_sync(20)
    threads = set(threading.enumerate()) - others
    assert len(threads) == 3  # two namespaces + resync

    started = time.monotonic()
    informer.stop()
    assert time.monotonic() - started < 2.0
    assert not any(thread.is_alive() for thread in threads)


def test_wait_for_sync_times_out_when_the_apiserver_is_unreachable():
    configuration = client.Configuration(
        host="https://127.0.0.1:9"
    )  # nothing listens on the discard port
    informer = ServiceInformer(client.ApiClient(configuration), ServiceStore({}), HandlerCalls())
    informer.start()
    try:
        assert not informer.wait_for_sync(0.5) and not informer.has_synced()
    finally:
        informer.stop()


# Backoff (pure) -----------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_from_0_8_to_30_seconds_and_jitters_downwards():
    clock = FakeClock()
    steady = Backoff(clock=clock, rng=lambda: 0.0)
    delays = []
    for _ in range(8):
        delays.append(steady.next_delay())
        clock.now += 1
    assert delays == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    assert Backoff(clock=clock, rng=lambda: 1.0).next_delay() == pytest.approx(0.64)


def test_backoff_starts_over_after_two_quiet_minutes():
    clock = FakeClock()
    backoff = Backoff(clock=clock, rng=lambda: 0.0)
    assert [backoff.next_delay(), backoff.next_delay()] == [0.8, 1.6]
    clock.now += 119
    assert backoff.next_delay() == 3.2
    clock.now += 121
    assert backoff.next_delay() == 0.8

"""The controller's wiring without an API server: the worker's queue protocol, the event filter,
gateway (re)loading, and a whole start -> reconcile -> stop with an in-memory gateway.

`process_next_work_item` is tested as controller-runtime tests its controller: a scripted
reconciler answers each key with an outcome, and the queue must see exactly the right calls.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest

from canaryctl import annotations as ann
from canaryctl.cache import ServiceStore
from canaryctl.controller import Controller, Settings
from canaryctl.gateway.base import TransientGatewayError
from canaryctl.gateway.model import AppState, Upstream
from canaryctl.objects import Service, ServicePort
from canaryctl.reconciler import INDEXERS, Result
from canaryctl.testing.memory_gateway import MemoryGateway
from canaryctl.testing.processes import wait_until
from canaryctl.workqueue import FakeClock, new_controller_queue

V1 = Upstream("demo", "v1", "v1.demo.svc.cluster.local", 80)


def svc(name: str, version: str = "1", **annotations: str) -> Service:
    return Service(
        "demo",
        name,
        "uid-" + name,
        version,
        MappingProxyType(annotations),
        (ServicePort("http", 80),),
    )


class RecordingQueue:
    """The controller queue, with the calls a worker makes on it written down."""

    def __init__(self):
        self.inner = new_controller_queue("test", clock=FakeClock(), metrics=False)
        self.log: list[tuple] = []

    def __getattr__(self, name):
        method = getattr(self.inner, name)
        if name in ("forget", "done", "add_rate_limited", "add_after", "add"):

            def recorded(*args):
                self.log.append((name, *args))
                return method(*args)

            return recorded
        return method


@dataclass
class ScriptedReconciler:
    outcomes: dict[str, object]
    seen: list[str] = field(default_factory=list)

    def reconcile(self, app: str) -> Result:
        self.seen.append(app)
        outcome = self.outcomes[app]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]


class Sink:
    """Records Events; flush/stop as the real recorder offers them."""

    def __init__(self):
        self.events: list[tuple[str, str, str]] = []
        self.stopped = False

    def normal(self, service, reason, message):
        self.events.append(("Normal", service.key, reason))

    def warning(self, service, reason, message):
        self.events.append(("Warning", service.key, reason))

    def flush(self, timeout=5.0):
        return True

    def stop(self, timeout=2.0):
        self.stopped = True


class StaticInformer:
    """A Service source that lists once and never changes (the informer's place in the loop)."""

    def __init__(self, store: ServiceStore, services: list[Service], handler):
        self.store, self.services, self.handler = store, services, handler
        self.synced = threading.Event()
        self.stopped = False

    def start(self):
        for service in self.services:
            self.store.upsert(service)
            self.handler(None, service)
        self.synced.set()
        return self

    def wait_for_sync(self, timeout=None):
        return self.synced.wait(timeout)

    def has_synced(self):
        return self.synced.is_set()

    def stop(self, timeout=2.0):
        self.stopped = True


def controller(gateway: MemoryGateway | None = None, **settings) -> tuple[Controller, list]:
    patches: list[tuple[str, str | None]] = []
    settings.setdefault("metrics_addr", "127.0.0.1:0")
    settings.setdefault("health_addr", "127.0.0.1:0")
    built = Controller(
        ServiceStore(INDEXERS),
        gateway or MemoryGateway(),
        Sink(),
        lambda service, value: patches.append((service.key, value)),
        Settings(**settings),
        queue=RecordingQueue(),  # type: ignore[arg-type]
    )
    return built, patches


# --- process_next_work_item ---------------------------------------------------------------------

OUTCOMES = [
    # (reconcile outcome, queue calls after get)
    (Result(), [("forget", "app"), ("done", "app")]),
    (Result(requeue_after=30.0), [("forget", "app"), ("add_after", "app", 30.0), ("done", "app")]),
    (TransientGatewayError("503"), [("add_rate_limited", "app"), ("done", "app")]),
    (RuntimeError("a bug"), [("add_rate_limited", "app"), ("done", "app")]),
]


@pytest.mark.parametrize("outcome, calls", OUTCOMES, ids=["ok", "requeue", "gateway", "bug"])
def test_each_reconcile_outcome_makes_the_right_queue_calls(outcome, calls):
    built, _ = controller()
    built.reconciler = ScriptedReconciler({"app": outcome})  # type: ignore[assignment]
    built.queue.add("app")
    built.queue.log.clear()
    assert built.process_next_work_item() is True
    assert built.queue.log == calls


def test_a_failing_key_backs_off_longer_each_time_and_success_resets_it():
    built, _ = controller()
    built.reconciler = ScriptedReconciler({"app": TransientGatewayError("503")})  # type: ignore[assignment]
    for failures in range(1, 4):
        built.queue.add("app")
        built.process_next_work_item()
        assert built.queue.num_requeues("app") == failures
    built.reconciler.outcomes["app"] = Result()  # type: ignore[attr-defined]
    built.queue.add("app")
    built.process_next_work_item()
    assert built.queue.num_requeues("app") == 0


def test_after_shutdown_the_worker_stops():
    built, _ = controller()
    built.queue.shut_down()
    assert built.process_next_work_item() is False
    built.run_worker()  # returns at once


def test_an_empty_get_keeps_the_worker_going():
    built, _ = controller()
    built.queue.inner.get = lambda timeout=None: (None, False)
    assert built.process_next_work_item() is True


# --- the event filter -----------------------------------------------------------------------------


def test_only_changes_to_what_canaryctl_reads_are_enqueued():
    built, _ = controller()
    old = svc("v1", **{ann.APP: "shop"})
    status_only = svc("v1", "2", **{ann.APP: "shop", ann.STATUS: "{}"})
    moved = svc("v1", "3", **{ann.APP: "cart"})
    built.enqueue_service_change(old, status_only)
    assert len(built.queue.inner) == 0
    built.enqueue_service_change(status_only, moved)
    assert sorted(call[1] for call in built.queue.log if call[0] == "add") == ["cart", "shop"]
    built.queue.log.clear()
    built.enqueue_service_change(moved, moved)  # a periodic resync hands the same object
    built.enqueue_service_change(moved, None)
    assert [call[1] for call in built.queue.log] == ["cart", "cart"]


# --- the gateway cache ----------------------------------------------------------------------------


def test_the_gateway_is_read_again_until_it_answers():
    gateway = MemoryGateway({"shop": AppState("shop", True, V1, None, 0)})
    gateway.fail_next.append(TransientGatewayError("connection refused"))
    built, _ = controller(gateway)
    built._stopping.wait = lambda seconds: False  # no real waiting between attempts
    built.load_gateway_cache()
    assert gateway.calls == [("list", "*"), ("list", "*")]
    assert built.gateway_cache.loaded and built.gateway_cache.owned_names() == ["shop"]


class ResumableGateway(MemoryGateway):
    """A backend with a cheaper read for restarts, as API7 Cloud's `list_apps_to_resume`."""

    def list_apps_to_resume(self) -> dict[str, AppState]:
        self._call("resume", "*")
        return dict(self.apps)


def test_the_start_reads_the_gateway_as_a_restart_may_and_a_resync_reads_it_whole():
    gateway = ResumableGateway({"shop": AppState("shop", True, V1, None, 0)})
    built, _ = controller(gateway, workers=1, resync_period=3600)
    built.informer = StaticInformer(built.store, [], built.enqueue_service_change)
    built.start(lead=False)
    built.resync_gateway()
    built.start_leading()  # a takeover: the old leader may have written since, read it whole
    assert gateway.calls[:3] == [("resume", "*"), ("list", "*"), ("list", "*")]
    built.stop(timeout=5)


def test_a_resync_enqueues_what_changed_behind_our_back_and_every_published_app():
    gateway = MemoryGateway({"shop": AppState("shop", True, V1, None, 0)})
    built, _ = controller(gateway)
    built.load_gateway_cache()
    built.store.upsert(svc("v1", **{ann.APP: "cart"}))
    gateway.apps["shop"] = AppState("shop", True, V1, None, 0, conforms=False)  # a hand edit
    built.queue.log.clear()
    built.resync_gateway()
    assert [call[1] for call in built.queue.log if call[0] == "add"] == ["shop", "cart"]


def test_a_failed_resync_changes_nothing():
    built, _ = controller()
    built.gateway.fail_next.append(TransientGatewayError("timeout"))  # type: ignore[attr-defined]
    built.queue.log.clear()
    built.resync_gateway()
    assert built.queue.log == []


# --- the whole loop -------------------------------------------------------------------------------


def test_start_syncs_then_reconciles_and_stop_shuts_everything_down():
    gateway = MemoryGateway({"gone": AppState("gone", True, V1, None, 0)})
    built, patches = controller(gateway, workers=1, resync_period=3600)
    services = [svc("v1", **{ann.APP: "shop"})]
    built.informer = StaticInformer(built.store, services, built.enqueue_service_change)
    assert not built.ready()
    built.start()
    assert built.ready()
    wait_until(lambda: len(patches) == 1 and "gone" not in gateway.apps, 10, "both apps handled")
    assert gateway.apps["shop"].stable == V1  # published
    assert json.loads(patches[0][1])["appliedWeight"] == 100
    assert ("Normal", "demo/v1", "Published") in built.recorder.events  # type: ignore[attr-defined]
    built.stop(timeout=5)
    assert not built.ready() and built.informer.stopped  # type: ignore[attr-defined]
    assert built.recorder.stopped  # type: ignore[attr-defined]


def test_start_fails_when_the_services_never_sync():
    built, _ = controller(sync_timeout=0.05)
    informer = StaticInformer(built.store, [], built.enqueue_service_change)
    informer.start = lambda: informer  # never syncs
    built.informer = informer
    with pytest.raises(RuntimeError, match="did not sync"):
        built.start()
    built.stop(timeout=1)


# --- standing by and leading (leader election) ----------------------------------------------------


def test_a_standby_syncs_and_is_ready_but_reconciles_and_enqueues_nothing():
    gateway = MemoryGateway({"gone": AppState("gone", True, V1, None, 0)})
    built, patches = controller(gateway, workers=1, resync_period=3600)
    services = [svc("v1", **{ann.APP: "shop"})]
    built.informer = StaticInformer(built.store, services, built.enqueue_service_change)
    built.start(lead=False)
    assert built.ready()  # synced: a standby is ready to take over
    built.enqueue_service_change(None, svc("v2", **{ann.APP: "cart"}))
    built.resync_gateway()
    assert len(built.queue.inner) == 0 and gateway.calls == [("list", "*"), ("list", "*")]
    assert patches == [] and built.recorder.events == []  # type: ignore[attr-defined]
    built.stop(timeout=5)


def test_a_new_leader_reads_the_gateway_again_and_rewrites_nothing_that_is_right():
    """The old leader published `shop` after this standby's gateway read; the new leader reads
    again, looks at every app and finds nothing to write: no gateway write, no status patch."""
    gateway = MemoryGateway()
    old, old_patches = controller(gateway, workers=1, resync_period=3600)
    old.informer = StaticInformer(old.store, [svc("v1", **{ann.APP: "shop"})], lambda *_: None)
    new, new_patches = controller(gateway, workers=1, resync_period=3600)
    new.informer = StaticInformer(new.store, [], new.enqueue_service_change)
    new.start(lead=False)  # a standby whose gateway read found nothing yet
    old.start()
    wait_until(lambda: len(old_patches) == 1, 10, "the old leader to publish shop")
    old.stop(timeout=5)
    [(_, status)] = old_patches  # what the Service now carries, as the informer would show
    new.store.upsert(svc("v1", "2", **{ann.APP: "shop", ann.STATUS: status}))
    gateway.calls.clear()

    new.start_leading()
    wait_until(lambda: ("forget", "shop") in new.queue.log, 10, "shop reconciled")
    assert gateway.calls == [("list", "*")]  # read again, written never
    assert new_patches == [] and new.recorder.events == []  # type: ignore[attr-defined]
    assert new.stop_leading(timeout=5) is True
    new.stop(timeout=5)


def test_a_new_leader_reads_the_gateway_once_more_when_a_late_write_can_no_longer_land():
    """A write the old leader sent just before it stopped may land after the takeover's read;
    one more read at the end of the suspect window finds it and puts things right."""
    gateway = MemoryGateway()
    built, _ = controller(gateway, workers=1, resync_period=3600, suspect_window=0.5)
    built.informer = StaticInformer(built.store, [svc("v1", **{ann.APP: "shop"})], lambda *_: None)
    built.start(lead=False)
    built.start_leading()
    wait_until(lambda: ("apply", "shop") in gateway.calls, 10, "shop published")
    gateway.apps.pop("shop")  # the old leader's late delete lands
    wait_until(lambda: gateway.calls.count(("apply", "shop")) == 2, 10, "shop put back")
    assert gateway.calls.count(("list", "*")) == 3  # start, takeover, end of the window
    built.stop(timeout=5)

"""The API7 backend's read at a restart (`list_apps_to_resume`) against the emulator: one read
per owned app besides the app list, the same verdicts as a full read, nothing written when
nothing changed, and the drift it leaves to the next full read."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from canaryctl.gateway.api7 import Api7Client, Api7Gateway, RetryPolicy
from canaryctl.gateway.base import TerminalGatewayError, TransientGatewayError
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.testing.api7cloud import Emulator
from canaryctl.testing.processes import wait_until

TOKEN = "tok-resume-secret"
FAST = RetryPolicy(attempts=2, deadline=2.0, backoff_initial=0.005, backoff_max=0.01)
V1 = Upstream("demo", "web-v1", "web-v1.demo.svc.cluster.local", 80)
V2 = Upstream("demo", "web-v2", "web-v2.demo.svc.cluster.local", 80)
SPECS = {
    "shop": AppSpec("shop", V1, V2, 30, "demo"),  # a live canary
    "web": AppSpec("web", V1, owner="demo"),  # a stable alone
}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
def gateway(emu: Emulator) -> Iterator[Api7Gateway]:
    with Api7Client(TOKEN, emu.url, timeout=(1.0, 2.0), retry=FAST, page_size=2) as client:
        yield Api7Gateway(client, emu.cluster_id)


def sent_during(emu: Emulator, gateway: Api7Gateway, action) -> tuple[object, list[tuple]]:
    """Run `action`; its result and the (method, resource) of the requests it sent."""
    settle(emu, gateway)
    emu.clear_request_log()
    result = action()
    settle(emu, gateway)
    sent = [(r.method, _resource(r.path)) for r in emu.request_log() if not r.path.endswith("/me")]
    return result, sent


def settle(emu: Emulator, gateway: Api7Gateway) -> None:
    """The emulator logs after answering: a marker request comes after all earlier ones."""
    before = sum(r.path.endswith("/user/me") for r in emu.request_log())
    gateway.client.me()
    wait_until(lambda: sum(r.path.endswith("/user/me") for r in emu.request_log()) > before)


def _resource(path: str) -> str:
    for marker, name in (("canary_releases", "canary"), ("/apis", "api"), ("/apps", "app")):
        if marker in path:
            return name
    return path


def routing(state: AppState) -> tuple:
    return (state.owned, state.conforms, state.stable, state.canary, state.weight, state.owner)


def test_a_restart_reads_one_list_per_owned_app_and_sees_what_a_full_read_sees(emu, gateway):
    for spec in SPECS.values():
        gateway.apply(None, spec)
    emu.create_foreign_app("legacy", labels=["team:web"])
    full = gateway.list_apps()
    resumed, sent = sent_during(emu, gateway, gateway.list_apps_to_resume)
    assert {name: routing(state) for name, state in resumed.items()} == {
        name: routing(state) for name, state in full.items()
    }
    pages = [call for call in sent if call == ("GET", "app")]
    assert len(pages) == 2  # three apps, two per page
    assert sorted(call for call in sent if call not in pages) == [("GET", "api"), ("GET", "canary")]
    assert all(method == "GET" for method, _ in sent)


def test_nothing_is_written_after_a_restart_when_nothing_changed(emu, gateway):
    for spec in SPECS.values():
        gateway.apply(None, spec)
    resumed = gateway.list_apps_to_resume()
    for name, spec in SPECS.items():
        assert resumed[name].matches(spec)
        _, sent = sent_during(emu, gateway, lambda s=spec, n=name: gateway.apply(resumed[n], s))
        assert sent == []


def test_a_weight_changed_by_hand_while_canaryctl_was_down_is_seen_and_put_back(emu, gateway):
    state = gateway.apply(None, SPECS["shop"])
    app_id, [canary] = state.raw.app["id"], state.raw.canaries
    emu.store.replace_canary(app_id, canary["id"], {**canary, "percent": 70})
    resumed = gateway.list_apps_to_resume()["shop"]
    assert resumed.weight == 70 and not resumed.matches(SPECS["shop"])
    _, sent = sent_during(emu, gateway, lambda: gateway.apply(resumed, SPECS["shop"]))
    assert sent == [("PUT", "canary")]
    assert emu.canaries(app_id)[0]["percent"] == 30


def test_an_app_left_without_its_api_by_a_crash_gets_it_after_a_restart(emu, gateway):
    fault = emu.inject_fault(method="POST", path="*/apis", status=503)
    with pytest.raises(TransientGatewayError):
        gateway.apply(None, SPECS["shop"])  # the app is created, its API and canary are not
    emu.remove_fault(fault)
    resumed = gateway.list_apps_to_resume()["shop"]  # the failure was forgotten with the process
    assert resumed.owned and not resumed.conforms
    _, sent = sent_during(emu, gateway, lambda: gateway.apply(resumed, SPECS["shop"]))
    assert sent == [("POST", "api"), ("POST", "canary")]
    assert gateway.read_app("shop").matches(SPECS["shop"])


def test_deleting_a_resumed_app_reads_the_children_it_did_not_read(emu, gateway):
    gateway.apply(None, SPECS["shop"])
    resumed = gateway.list_apps_to_resume()["shop"]
    _, sent = sent_during(emu, gateway, lambda: gateway.delete(resumed))
    assert sent == [("GET", "api"), ("DELETE", "canary"), ("DELETE", "api"), ("DELETE", "app")]
    assert emu.apps() == []


def test_an_api_deleted_by_hand_beside_a_live_canary_waits_for_the_next_full_read(emu, gateway):
    """The drift the restart's read does not look for: the full read (a resync) repairs it."""
    state = gateway.apply(None, SPECS["shop"])
    app_id = state.raw.app["id"]
    emu.store.delete_api(app_id, state.raw.apis[0]["id"])
    assert gateway.list_apps_to_resume()["shop"].matches(SPECS["shop"])
    full = gateway.list_apps()["shop"]
    assert not full.matches(SPECS["shop"])
    _, sent = sent_during(emu, gateway, lambda: gateway.apply(full, SPECS["shop"]))
    assert sent == [("POST", "api")] and len(emu.apis(app_id)) == 1


def test_per_app_reads_overlap_and_a_failing_one_fails_the_whole_read(emu, gateway):
    """Eight stables, each read answered after 300 ms: read one after another, no two answers
    would come closer than that; READ_CONCURRENCY at a time, most come together."""
    for index in range(8):
        gateway.apply(None, AppSpec(f"app-{index}", V1, owner="demo"))
    fault = emu.inject_fault(kind="latency", method="GET", path="*/apis", latency_ms=300)
    resumed, _ = sent_during(emu, gateway, gateway.list_apps_to_resume)
    emu.remove_fault(fault)
    assert sorted(resumed) == [f"app-{index}" for index in range(8)]
    assert all(state.owned and state.conforms for state in resumed.values())
    answered = sorted(r.time for r in emu.request_log() if r.path.endswith("/apis"))
    assert len(answered) == 8
    together = sum(later - earlier < 0.15 for earlier, later in itertools.pairwise(answered))
    assert together >= 4, answered  # sequential reads: 0
    emu.inject_fault(method="GET", path="*/apis", status=404, times=1)
    with pytest.raises(TerminalGatewayError, match="404"):
        gateway.list_apps_to_resume()

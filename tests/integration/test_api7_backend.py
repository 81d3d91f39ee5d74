"""The API7 gateway backend against the emulator: the seed's walk-through call by call, ownership,
recovery from half-applied writes, and the issue's acceptance run with 30 % of calls failing."""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import partial

import pytest

from canaryctl.gateway.api7 import Api7Client, Api7Gateway, RetryPolicy
from canaryctl.gateway.base import TerminalGatewayError, TransientGatewayError
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.testing.api7cloud import Emulator
from canaryctl.testing.processes import wait_until

TOKEN = "tok-5b8e-secret"
FAST = RetryPolicy(
    attempts=4, deadline=3.0, backoff_initial=0.005, backoff_max=0.02, retry_after_cap=0.01
)
V1 = Upstream("demo", "error-page-v1", "error-page-v1.demo.svc.cluster.local", 80)
V2 = Upstream("demo", "error-page-v2", "error-page-v2.demo.svc.cluster.local", 80)
V3 = Upstream("demo", "error-page-v3", "error-page-v3.demo.svc.cluster.local", 8080)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(token=TOKEN, fault_seed=11) as emulator:
        yield emulator


@pytest.fixture
def gateway(emu: Emulator) -> Iterator[Api7Gateway]:
    with Api7Client(TOKEN, emu.url, timeout=(1.0, 2.0), retry=FAST, page_size=3) as client:
        yield Api7Gateway(client, emu.cluster_id)


def settle(emu: Emulator, gateway: Api7Gateway) -> None:
    """Wait until every request sent so far is in the log (the emulator writes it after answering).

    A marker request on the same keep-alive connection is logged after all earlier ones.
    """

    def markers() -> int:
        return sum(r.path.endswith("/user/me") for r in emu.request_log())

    before = markers()
    gateway.client.me()
    wait_until(lambda: markers() > before)


def clear_log(emu: Emulator, gateway: Api7Gateway) -> None:
    settle(emu, gateway)
    emu.clear_request_log()


def sent_since_clear(emu: Emulator, gateway: Api7Gateway) -> list[tuple[str, str]]:
    """(method, resource) of the requests since `clear_log`, in order."""
    settle(emu, gateway)
    return [
        (r.method, _resource(r.path)) for r in emu.request_log() if not r.path.endswith("/user/me")
    ]


def calls_during(
    emu: Emulator, gateway: Api7Gateway, action
) -> tuple[object, list[tuple[str, str]]]:
    """Run `action`; its result and the (method, resource) it sent, in order."""
    clear_log(emu, gateway)
    result = action()
    return result, sent_since_clear(emu, gateway)


def _resource(path: str) -> str:
    for marker, name in (("canary_releases", "canary"), ("/apis", "api"), ("/apps", "app")):
        if marker in path:
            return name
    return path


def assert_read_back_agrees(gateway: Api7Gateway, state: AppState, spec: AppSpec) -> None:
    fresh = gateway.read_app(spec.name)
    assert state.matches(spec) and fresh.matches(spec) and fresh.conforms
    assert (fresh.stable, fresh.canary, fresh.weight) == (state.stable, state.canary, state.weight)


def test_the_seed_walkthrough_writes_the_fewest_calls(emu, gateway):
    stable_only, with_canary = AppSpec("error-page", V1), AppSpec("error-page", V1, V2, 10)
    state, sent = calls_during(emu, gateway, lambda: gateway.apply(None, stable_only))
    assert sent == [("POST", "app"), ("POST", "api")]
    assert_read_back_agrees(gateway, state, stable_only)

    state, sent = calls_during(emu, gateway, lambda: gateway.apply(state, with_canary))
    assert sent == [("PUT", "app"), ("POST", "canary")]
    assert_read_back_agrees(gateway, state, with_canary)

    for weight in (0, 100):
        spec = AppSpec("error-page", V1, V2, weight)
        state, sent = calls_during(
            emu, gateway, lambda state=state, spec=spec: gateway.apply(state, spec)
        )
        assert sent == [("PUT", "canary")]
        assert_read_back_agrees(gateway, state, spec)
        [canary] = emu.canaries(state.raw.app["id"])
        assert (canary["state"], canary.get("percent", 0)) == ("in_progress", weight)

    promoted = AppSpec("error-page", V2)
    state, sent = calls_during(emu, gateway, lambda: gateway.apply(state, promoted))
    assert sent == [("PUT", "app"), ("DELETE", "canary")]
    assert_read_back_agrees(gateway, state, promoted)
    app = emu.app_by_name("error-page")
    assert app["default_upstream_version"] == V2.key and [
        u["version"] for u in app["upstreams"]
    ] == [V2.key]
    assert emu.canaries(app["id"]) == []


def test_nothing_is_written_or_read_when_the_state_already_matches(emu, gateway):
    spec = AppSpec("shop", V1, V2, 30)
    state = gateway.apply(None, spec)
    again, sent = calls_during(emu, gateway, lambda: gateway.apply(state, spec))
    assert sent == [] and again is state
    listed, _ = calls_during(emu, gateway, gateway.list_apps)
    _, sent = calls_during(emu, gateway, lambda: gateway.apply(listed["shop"], spec))
    assert sent == []


def test_removing_the_canary_ends_the_rule_before_dropping_its_upstream(emu, gateway):
    state = gateway.apply(None, AppSpec("shop", V1, V2, 30))
    state, sent = calls_during(emu, gateway, lambda: gateway.apply(state, AppSpec("shop", V1)))
    assert sent == [("DELETE", "canary"), ("PUT", "app")]
    assert_read_back_agrees(gateway, state, AppSpec("shop", V1))


def test_list_apps_reads_owned_apps_whole_and_foreign_ones_as_foreign(emu, gateway):
    gateway.apply(None, AppSpec("shop", V1, V2, 30))
    emu.create_foreign_app("legacy", labels=["team:web"])
    apps = gateway.list_apps()
    assert set(apps) == {"shop", "legacy"}
    assert apps["shop"].owned and apps["shop"].conforms and apps["shop"].weight == 30
    assert len(apps["shop"].raw.apis) == 1 and len(apps["shop"].raw.canaries) == 1
    assert not apps["legacy"].owned and not apps["legacy"].conforms


def test_a_foreign_app_is_never_modified_or_deleted(emu, gateway):
    emu.create_foreign_app("legacy")
    foreign = gateway.read_app("legacy")
    clear_log(emu, gateway)
    for action in (
        lambda: gateway.apply(foreign, AppSpec("legacy", V1)),
        lambda: gateway.delete(foreign),
    ):
        with pytest.raises(TerminalGatewayError, match="not created by canaryctl"):
            action()
    assert sent_since_clear(emu, gateway) == []
    assert emu.app_by_name("legacy")["hosts"] == ["legacy"]
    with pytest.raises(TerminalGatewayError) as caught:
        gateway.apply(
            None, AppSpec("legacy", V1)
        )  # a stale view: the server refuses the duplicate name
    assert caught.value.status == 400 and emu.apis(emu.app_by_name("legacy")["id"]) == []


def test_read_app_and_delete(emu, gateway):
    assert gateway.read_app("shop") is None
    state = gateway.apply(None, AppSpec("shop", V1, V2, 30))
    _, sent = calls_during(emu, gateway, lambda: gateway.delete(state))
    assert sent == [("DELETE", "canary"), ("DELETE", "api"), ("DELETE", "app")]
    assert emu.apps() == [] and gateway.read_app("shop") is None


def test_a_half_applied_create_is_finished_by_the_next_attempt_without_duplicates(emu, gateway):
    fault = emu.inject_fault(method="POST", path="*/canary_releases", status=503)
    spec = AppSpec("shop", V1, V2, 10)
    with pytest.raises(TransientGatewayError):
        gateway.apply(None, spec)
    emu.remove_fault(fault)
    # after a failed write the caller reads the app again (the reconciler's gateway cache does)
    state = gateway.apply(gateway.read_app("shop"), spec)
    app = emu.app_by_name("shop")
    assert (
        len(emu.apps()) == 1 and len(emu.apis(app["id"])) == 1 and len(emu.canaries(app["id"])) == 1
    )
    assert_read_back_agrees(gateway, state, spec)


def test_an_object_removed_behind_our_back_is_recreated_on_the_next_attempt(emu, gateway):
    state = gateway.apply(None, AppSpec("shop", V1, V2, 10))
    emu.store.delete_canary(state.raw.app["id"], state.raw.canaries[0]["id"])
    with pytest.raises(TransientGatewayError, match="changed under canaryctl"):
        gateway.apply(state, AppSpec("shop", V1, V2, 20))
    state = gateway.apply(gateway.read_app("shop"), AppSpec("shop", V1, V2, 20))
    assert_read_back_agrees(gateway, state, AppSpec("shop", V1, V2, 20))


# --- acceptance: 30 % of calls fail, 200 operations still converge ----------------------------

APPS = [f"app-{i}" for i in range(5)]
VERSIONS = [V1, V2, V3]


def random_operation(rng: random.Random) -> tuple[str, AppSpec | None]:
    """An app name and what it should become (None: delete it)."""
    name = rng.choice(APPS)
    if rng.random() < 0.15:
        return name, None
    stable = rng.choice(VERSIONS)
    if rng.random() < 0.3:
        return name, AppSpec(name, stable)
    canary = rng.choice([v for v in VERSIONS if v != stable])
    return name, AppSpec(
        name, stable, canary, rng.choice([0, 5, 10, 25, 50, 100, rng.randint(0, 100)])
    )


def until_done(gateway: Api7Gateway, name: str, known: AppState | None, operation, limit: int = 50):
    """Retry `operation(state)` on transient errors as the controller does: the work queue tries
    again, and after a failed write the app is read again before the next attempt."""
    state = known
    for _ in range(limit):
        try:
            return operation(state)
        except TransientGatewayError:
            state = _read_until_done(gateway, name, limit)
    raise AssertionError(f"no success after {limit} attempts")


def _read_until_done(gateway: Api7Gateway, name: str, limit: int) -> AppState | None:
    for _ in range(limit):
        try:
            return gateway.read_app(name)
        except TransientGatewayError:
            continue
    raise AssertionError(f"no read after {limit} attempts")


def test_two_hundred_operations_converge_with_thirty_percent_of_calls_failing(emu, gateway):
    for fault in (
        {"kind": "status", "status": 500},
        {"kind": "status", "status": 503},
        {"kind": "retry_after", "retry_after": 1},
        {"kind": "drop"},
    ):
        emu.inject_fault(probability=0.085, **fault)  # 1 - 0.915**4 = 30 % of calls fail
    rng = random.Random(2024)
    known: dict[str, AppState | None] = dict.fromkeys(APPS)
    desired: dict[str, AppSpec | None] = dict.fromkeys(APPS)
    for _ in range(200):
        name, spec = random_operation(rng)
        desired[name] = spec
        if spec is not None:
            known[name] = until_done(
                gateway, name, known[name], partial(gateway.apply, desired=spec)
            )
        elif known[name] is not None:
            until_done(gateway, name, known[name], lambda state: state and gateway.delete(state))
            known[name] = None
    failed = [r for r in emu.request_log() if r.status != 200]
    assert 0.2 < len(failed) / len(emu.request_log()) < 0.4
    emu.clear_faults()

    assert sorted(app["name"] for app in emu.apps()) == sorted(
        n for n, s in desired.items() if s is not None
    )
    for name, spec in desired.items():
        if spec is None:
            continue
        app = emu.app_by_name(name)
        assert len(emu.apis(app["id"])) == 1 and len(emu.canaries(app["id"])) == (
            spec.canary is not None
        )
        assert_read_back_agrees(gateway, known[name], spec)

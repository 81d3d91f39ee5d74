"""The APISIX backend against the APISIX emulator: the seed's walk-through call by call and
through the data plane, ownership, restarts, unknown outcomes, and 200 operations with 30 %
of Admin API calls failing."""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Iterator
from functools import partial

import pytest
import requests

from canaryctl import metrics
from canaryctl.examples.errorpage import ErrorPage
from canaryctl.gateway.apisix import AdminClient, ApisixGateway, RetryPolicy, naming
from canaryctl.gateway.base import TerminalGatewayError, TransientGatewayError
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.testing.apisix import ApisixEmulator
from canaryctl.testing.processes import wait_until

KEY = "apisix-admin-key-7f3e-secret"
FAST = RetryPolicy(
    attempts=4, deadline=3.0, backoff_initial=0.005, backoff_max=0.02, retry_after_cap=0.01
)
V1 = Upstream("demo", "error-page-v1", "error-page-v1.demo.svc.cluster.local", 80)
V2 = Upstream("demo", "error-page-v2", "error-page-v2.demo.svc.cluster.local", 80)
V3 = Upstream("demo", "error-page-v3", "error-page-v3.demo.svc.cluster.local", 8080)


@pytest.fixture
def emu() -> Iterator[ApisixEmulator]:
    with ApisixEmulator(admin_key=KEY, fault_seed=11, balancer_seed=3) as emulator:
        yield emulator


def connect(emu: ApisixEmulator, **options) -> ApisixGateway:
    options = {"timeout": (1.0, 2.0), "retry": FAST, **options}
    return ApisixGateway(AdminClient(KEY, emu.admin_url, **options))


@pytest.fixture
def gateway(emu: ApisixEmulator) -> Iterator[ApisixGateway]:
    gateway = connect(emu)
    yield gateway
    gateway.client.close()


def calls_during(emu: ApisixEmulator, action) -> tuple[object, list[tuple[str, str]]]:
    """Run `action`; its result and the (method, resource) it sent, in order (the emulator
    logs each call before answering it)."""
    emu.clear_request_log()
    result = action()
    return result, [(r.method, r.path.split("/")[3]) for r in emu.request_log()]


def refused(gateway: ApisixGateway, spec: AppSpec) -> None:
    """Creating `spec`'s app is refused (a foreign object holds one of its ids)."""
    with pytest.raises(TerminalGatewayError, match="not created by canaryctl"):
        gateway.apply(None, spec)


def assert_read_back_agrees(gateway: ApisixGateway, state: AppState, spec: AppSpec) -> None:
    fresh = gateway.read_app(spec.name)
    assert state.matches(spec) and fresh.matches(spec) and fresh.conforms
    assert (fresh.stable, fresh.canary, fresh.weight) == (state.stable, state.canary, state.weight)


def test_the_seed_walkthrough_call_by_call_and_through_the_data_plane(emu, gateway):
    with ErrorPage("v1") as v1, ErrorPage("v2") as v2:
        emu.add_resolve(V1.target, v1.address)
        emu.add_resolve(V2.target, v2.address)

        def answers() -> dict:
            url = emu.dataplane_url + "/api/error_page"
            with requests.Session() as session:
                got = [
                    session.get(url, headers={"Host": "error-page"}, timeout=5) for _ in range(100)
                ]
            return dict(collections.Counter(r.json()["version"] for r in got))

        spec = AppSpec("error-page", V1, owner="demo")
        state, sent = calls_during(emu, lambda: gateway.apply(None, spec))
        # looks at the two ids before creating them: never PUT over someone else's object
        assert sent == [
            ("GET", "routes"),
            ("GET", "upstreams"),
            ("PUT", "upstreams"),
            ("PUT", "routes"),
        ]
        assert_read_back_agrees(gateway, state, spec)
        assert answers() == {"v1": 100}

        spec = AppSpec("error-page", V1, V2, 10, "demo")
        state, sent = calls_during(emu, lambda: gateway.apply(state, spec))
        assert sent == [("GET", "upstreams"), ("PUT", "upstreams"), ("PATCH", "routes")]
        assert_read_back_agrees(gateway, state, spec)
        assert answers() == {"v1": 90, "v2": 10}

        for weight, expected in ((0, {"v1": 100}), (100, {"v2": 100}), (10, {"v1": 90, "v2": 10})):
            spec = AppSpec("error-page", V1, V2, weight, "demo")
            state, sent = calls_during(emu, partial(gateway.apply, state, spec))
            assert sent == [("PATCH", "routes")]  # one write, no read, per weight change
            assert_read_back_agrees(gateway, state, spec)
            assert answers() == expected

        state = gateway.apply(state, AppSpec("error-page", V1, V2, 100, "demo"))
        promoted = AppSpec("error-page", V2, owner="demo")
        state, sent = calls_during(emu, lambda: gateway.apply(state, promoted))
        assert sent == [("PATCH", "routes"), ("DELETE", "upstreams")]
        assert_read_back_agrees(gateway, state, promoted)
        assert answers() == {"v2": 100}
        route = emu.route(naming.route_id("error-page"))
        assert route["upstream_id"] == naming.upstream_id("error-page", V2.key)
        assert "traffic-split" not in (route.get("plugins") or {})
        assert [u["desc"] for u in emu.upstreams()] == [V2.key]

        _, sent = calls_during(emu, lambda: gateway.delete(state))
        assert sent == [("DELETE", "routes"), ("DELETE", "upstreams")]
        assert (
            emu.routes() == [] and emu.upstreams() == [] and gateway.read_app("error-page") is None
        )


def test_nothing_is_written_or_read_when_the_state_already_matches(emu, gateway):
    spec = AppSpec("shop", V1, V2, 30, "team")
    state = gateway.apply(None, spec)
    again, sent = calls_during(emu, lambda: gateway.apply(state, spec))
    assert sent == [] and again is state


def test_a_restart_with_nothing_changed_writes_nothing_and_reads_by_pages(emu):
    specs = [AppSpec(f"app-{i:02d}", V1, V2, i, "team") for i in range(30)]
    first = connect(emu)
    for spec in specs:
        first.apply(None, spec)
    restarted = connect(emu, page_size=10)  # a new process: nothing but what it lists
    listed, sent = calls_during(emu, restarted.list_apps)
    assert sent == [("GET", "routes")] * 3 + [("GET", "upstreams")] * 6  # 30 routes, 60 upstreams
    assert {r.query for r in emu.request_log()} >= {"label=managed-by&page=1&page_size=10"}
    _, sent = calls_during(emu, lambda: [restarted.apply(listed[s.name], s) for s in specs])
    assert sent == []
    assert all(listed[s.name].conforms and listed[s.name].owner == "team" for s in specs)


def test_an_app_made_by_an_earlier_attempt_is_adopted_not_overwritten(emu, gateway):
    spec = AppSpec("shop", V1, V2, 30)
    gateway.apply(None, spec)
    route_id = naming.route_id("shop")
    emu.store.patch(
        "routes", route_id, {"plugins": {"limit-count": {"count": 5, "time_window": 1}}}, ""
    )
    # a controller that never saw it (its write's answer was lost) plans a create
    state, sent = calls_during(emu, lambda: gateway.apply(None, spec))
    assert ("PUT", "routes") not in sent and ("PUT", "upstreams") not in sent
    assert state.matches(spec) and "limit-count" in emu.route(route_id)["plugins"]


def test_a_write_held_past_the_timeout_lands_twice_and_nothing_is_duplicated(emu):
    gateway = connect(emu, timeout=(1.0, 0.3))
    emu.inject_fault(kind="latency", method="PUT", path="*/routes/*", latency_ms=800, times=1)
    state = gateway.apply(None, AppSpec("shop", V1))  # first PUT times out, the retry lands
    assert state.conforms and len(emu.routes()) == 1

    def route_puts() -> int:
        return sum(r.method == "PUT" and "routes" in r.path for r in emu.request_log())

    wait_until(lambda: route_puts() == 2, 5, "the held PUT to land")  # late, on the same id
    assert len(emu.routes()) == 1 and len(emu.upstreams()) == 1
    assert gateway.read_app("shop").matches(AppSpec("shop", V1))


def test_read_app_sees_a_half_applied_create_and_the_next_apply_finishes_it(emu, gateway):
    fault = emu.inject_fault(method="PUT", path="*/routes/*", status=503)
    spec = AppSpec("shop", V1, V2, 10)
    with pytest.raises(TransientGatewayError, match="503"):
        gateway.apply(None, spec)
    emu.remove_fault(fault)
    half = gateway.read_app("shop")  # the reconciler reads a suspect app before the next write
    assert half.owned and half.stable is None and not half.conforms
    state = gateway.apply(half, spec)
    assert len(emu.routes()) == 1 and len(emu.upstreams()) == 2
    assert_read_back_agrees(gateway, state, spec)


def test_an_upstream_removed_behind_our_back_is_recreated_after_a_read(emu, gateway):
    state = gateway.apply(None, AppSpec("shop", V1, V2, 10))
    emu.store.delete("upstreams", naming.upstream_id("shop", V2.key), force=True)
    fresh = gateway.read_app("shop")
    assert fresh.canary is None and not fresh.matches(AppSpec("shop", V1, V2, 10))
    state = gateway.apply(fresh, AppSpec("shop", V1, V2, 20))
    assert_read_back_agrees(gateway, state, AppSpec("shop", V1, V2, 20))


# --- ownership ------------------------------------------------------------------------------


def test_foreign_objects_are_never_modified_or_deleted(emu, gateway):
    admin = requests.Session()
    admin.headers["X-API-KEY"] = KEY
    foreign_upstream = {
        "nodes": {"10.0.0.1:80": 1},
        "type": "roundrobin",
        "labels": {"managed-by": "helm"},
    }
    foreign_route = {
        "uri": "/*",
        "hosts": ["legacy"],
        "upstream_id": "team-upstream",
        "desc": "legacy",
    }
    for resource, object_id, body in (
        ("upstreams", "team-upstream", foreign_upstream),
        ("routes", naming.route_id("legacy"), foreign_route),  # at the id canaryctl would use
        (
            "routes",
            "team-route",
            {**foreign_route, "hosts": ["shop"], "labels": {"managed-by": "x"}},
        ),
    ):
        admin.put(
            f"{emu.admin_api}/{resource}/{object_id}", json=body, timeout=5
        ).raise_for_status()
    before = (emu.routes(), emu.upstreams())

    gateway.apply(None, AppSpec("shop", V1))
    listed = gateway.list_apps()
    assert set(listed) == {"shop"}  # unlabelled objects are not even listed
    _, sent = calls_during(emu, partial(refused, gateway, AppSpec("legacy", V1)))
    assert sent == [("GET", "routes")]  # looked, refused, wrote nothing
    foreign = gateway.read_app("legacy")
    assert foreign is not None and not foreign.owned  # -> the decision warns Conflict
    for action in (
        lambda: gateway.apply(foreign, AppSpec("legacy", V1)),
        lambda: gateway.delete(foreign),
    ):
        with pytest.raises(TerminalGatewayError, match="not created by canaryctl"):
            action()
    gateway.delete(listed["shop"])
    assert (emu.routes(), emu.upstreams()) == before


def test_a_foreign_upstream_at_canaryctls_id_is_refused_before_any_write(emu, gateway):
    upstream_id = naming.upstream_id("shop", V1.key)
    emu.store.put("upstreams", upstream_id, {"nodes": {"10.0.0.9:80": 1}, "type": "roundrobin"})
    _, sent = calls_during(emu, partial(refused, gateway, AppSpec("shop", V1)))
    assert sent == [("GET", "routes"), ("GET", "upstreams")]
    assert emu.routes() == [] and emu.upstream(upstream_id)["nodes"] == {"10.0.0.9:80": 1}


# --- transport ------------------------------------------------------------------------------


def test_the_key_never_shows_in_errors_reprs_or_logs(emu, caplog):
    caplog.set_level(logging.DEBUG)
    gateway = connect(emu)
    gateway.apply(None, AppSpec("shop", V1))
    wrong = ApisixGateway(AdminClient(KEY + "-wrong", emu.admin_url, retry=FAST))
    with pytest.raises(TerminalGatewayError) as caught:
        wrong.list_apps()
    assert caught.value.status == 401 and "rejected the key" in str(caught.value)
    shown = " ".join([str(caught.value), repr(gateway), repr(gateway.client), caplog.text])
    assert KEY not in shown and "apisix" in caplog.text.lower()


def test_429_and_5xx_are_retried_and_counted(emu, gateway):
    state = gateway.apply(None, AppSpec("shop", V1, V2, 10))
    retries = metrics.gateway_retries_total.labels("apisix")._value.get()
    emu.inject_fault(kind="retry_after", method="PATCH", retry_after=1, times=1)
    emu.inject_fault(kind="status", method="PATCH", status=503, times=1)
    state, sent = calls_during(emu, lambda: gateway.apply(state, AppSpec("shop", V1, V2, 20)))
    assert sent == [("PATCH", "routes")] * 3 and state.weight == 20
    assert metrics.gateway_retries_total.labels("apisix")._value.get() == retries + 2


def test_a_delete_whose_answer_was_lost_after_it_landed_is_done(emu):
    slow_retry = RetryPolicy(attempts=3, deadline=10.0, backoff_initial=1.0, backoff_max=2.0)
    gateway = connect(emu, timeout=(1.0, 0.3), retry=slow_retry)
    state = gateway.apply(None, AppSpec("shop", V1))
    emu.inject_fault(kind="latency", method="DELETE", path="*/routes/*", latency_ms=600, times=1)
    gateway.delete(state)  # times out, lands at 0.6 s; the retry after >= 1 s finds it gone
    statuses = [r.status for r in emu.request_log() if r.method == "DELETE" and "routes" in r.path]
    assert sorted(statuses) == [200, 404]
    assert emu.routes() == [] and emu.upstreams() == []


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
    weight = rng.choice([0, 5, 10, 25, 50, 100, rng.randint(0, 100)])
    return name, AppSpec(name, stable, canary, weight)


def until_done(
    gateway: ApisixGateway, name: str, known: AppState | None, operation, limit: int = 50
):
    """Retry `operation(state)` on transient errors as the controller does: the work queue tries
    again, and after a failed write the app is read again before the next attempt."""
    state = known
    for _ in range(limit):
        try:
            return operation(state)
        except TransientGatewayError:
            state = _read_until_done(gateway, name, limit)
    raise AssertionError(f"no success after {limit} attempts")


def _read_until_done(gateway: ApisixGateway, name: str, limit: int) -> AppState | None:
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
    failed = [r for r in emu.request_log() if r.status in (0, 429, 500, 503)]
    assert 0.2 < len(failed) / len(emu.request_log()) < 0.4
    emu.clear_faults()

    live = {name: spec for name, spec in desired.items() if spec is not None}
    assert sorted(r["desc"] for r in emu.routes()) == sorted(live)
    wanted = {
        naming.upstream_id(name, u.key)
        for name, s in live.items()
        for u in {s.stable, s.canary}
        if u
    }
    assert sorted(u["id"] for u in emu.upstreams()) == sorted(wanted)  # no duplicate, no leftover
    for name, spec in live.items():
        assert_read_back_agrees(gateway, known[name], spec)

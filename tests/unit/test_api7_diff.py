"""The pure API7 diff: which calls, in which order, for every transition of one application.

A tiny in-memory model of the API7 server (`Held`) applies the planned calls one by one, so
the tests can check what routes after each call, not only the final result.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools

import pytest

from canaryctl.gateway.api7.bodies import Api7Objects, is_owned
from canaryctl.gateway.api7.diff import API, APP, CANARY, DELETE, POST, PUT, Call, calls_for
from canaryctl.gateway.api7.state import app_state
from canaryctl.gateway.base import TerminalGatewayError
from canaryctl.gateway.model import OWNER_LABEL, AppSpec, AppState, Upstream

V1 = Upstream("demo", "error-page-v1", "error-page-v1.demo.svc.cluster.local", 80)
V2 = Upstream("demo", "error-page-v2", "error-page-v2.demo.svc.cluster.local", 8080)
V3 = Upstream("demo", "error-page-v3", "error-page-v3.demo.svc.cluster.local", 80)


class Held:
    """What an API7 server holds for one app, changed only by calls the server would accept."""

    def __init__(self) -> None:
        self.objects: Api7Objects | None = None
        self._ids = itertools.count(1000)

    def state(self) -> AppState | None:
        return None if self.objects is None else app_state(copy.deepcopy(self.objects))

    def perform(self, call: Call) -> None:
        body = copy.deepcopy(call.body)
        if call.kind == APP:
            self._perform_on_app(call, body)
            return
        assert self.objects is not None, "a child call before the app exists"
        field = "apis" if call.kind == API else "canaries"
        children = list(getattr(self.objects, field))
        if call.verb == POST:
            children.append({**body, "id": str(next(self._ids))})
        else:
            index = [c["id"] for c in children].index(call.object_id)
            if call.verb == DELETE:
                children.pop(index)
            else:
                children[index] = {**body, "id": call.object_id}
        self.objects = Api7Objects(self.objects.app, *self._children(field, children))
        self._check_canaries()

    def _perform_on_app(self, call: Call, body: dict) -> None:
        assert call.verb in (POST, PUT)
        if call.verb == POST:
            assert self.objects is None, "duplicate app"
            self.objects = Api7Objects({**body, "id": "1"})
        else:
            assert call.object_id == self.objects.app["id"]
            self.objects = Api7Objects(
                {**body, "id": call.object_id}, self.objects.apis, self.objects.canaries
            )
        self._check_canaries()

    def _children(self, field: str, children: list[dict]) -> tuple[tuple, tuple]:
        if field == "apis":
            return tuple(children), self.objects.canaries
        return self.objects.apis, tuple(children)

    def _check_canaries(self) -> None:
        versions = {u["version"] for u in self.objects.app["upstreams"]}
        live = [c for c in self.objects.canaries if c["state"] in ("in_progress", "paused")]
        assert all(c["canary_upstream_version"] in versions for c in live), (
            "canary without its upstream"
        )
        assert len([c for c in live if c["state"] == "in_progress"]) <= 1, (
            "two canaries in progress"
        )

    def shares(self) -> dict[str, int]:
        """Percent of requests each upstream version receives now."""
        if self.objects is None:
            return {}
        app = self.objects.app
        live = [c for c in self.objects.canaries if c["state"] == "in_progress"]
        percent = live[0].get("percent", 0) if live else 0
        result = {app["default_upstream_version"]: 100 - percent}
        if live:
            result[live[0]["canary_upstream_version"]] = (
                result.get(live[0]["canary_upstream_version"], 0) + percent
            )
        return {version: share for version, share in result.items() if share}


def held_for(spec: AppSpec) -> Held:
    held = Held()
    for call in calls_for(None, spec):
        held.perform(call)
    return held


def verbs(calls: list[Call]) -> list[tuple[str, str]]:
    return [(call.verb, call.kind) for call in calls]


def test_create_from_nothing_writes_app_api_then_canary():
    calls = calls_for(None, AppSpec("error-page", V1, V2, 10))
    assert verbs(calls) == [(POST, APP), (POST, API), (POST, CANARY)]
    app, api, canary = (call.body for call in calls)
    assert app["name"] == "error-page" and app["hosts"] == ["error-page"]
    assert (
        OWNER_LABEL in app["labels"] and app["protocols"] == ["HTTP"] and app["path_prefix"] == "/"
    )
    assert app["default_upstream_version"] == V1.key and app["active"] == 0
    assert app["upstreams"] == [
        {
            "version": V1.key,
            "upstream": {
                "scheme": "http",
                "lb_type": "roundrobin",
                "targets": [{"host": V1.host, "port": 80, "weight": 100}],
            },
        },
        {
            "version": V2.key,
            "upstream": {
                "scheme": "http",
                "lb_type": "roundrobin",
                "targets": [{"host": V2.host, "port": 8080, "weight": 100}],
            },
        },
    ]
    assert api["paths"] == [{"path": "/", "path_type": "Prefix"}] and api["methods"] == []
    assert api["type"] == "Rest" and api["active"] == 0 and api["strip_path_prefix"] is False
    assert OWNER_LABEL in api["labels"]
    assert canary == {
        "name": "canaryctl",
        "type": "percent",
        "state": "in_progress",
        "canary_upstream_version": V2.key,
        "percent": 10,
    }


def test_create_without_canary_has_no_canary_call():
    assert verbs(calls_for(None, AppSpec("error-page", V1))) == [(POST, APP), (POST, API)]


@pytest.mark.parametrize(
    "spec", [AppSpec("a", V1), AppSpec("a", V1, V2, 0), AppSpec("a", V1, V2, 100)]
)
def test_what_canaryctl_wrote_conforms_and_needs_no_call(spec):
    state = held_for(spec).state()
    assert state.owned and state.conforms and state.matches(spec)
    assert (state.stable, state.canary, state.weight) == (spec.stable, spec.canary, spec.weight)
    assert calls_for(state, spec) == []


def test_weight_change_is_one_put_of_the_full_canary():
    state = held_for(AppSpec("a", V1, V2, 10)).state()
    [call] = calls_for(state, AppSpec("a", V1, V2, 50))
    old = state.raw.canaries[0]
    assert (call.verb, call.kind, call.object_id) == (PUT, CANARY, old["id"])
    assert call.body == {
        "name": "canaryctl",
        "type": "percent",
        "state": "in_progress",
        "canary_upstream_version": V2.key,
        "percent": 50,
    }


@pytest.mark.parametrize("weight", [0, 100])
def test_canary_stays_in_progress_at_the_ends(weight):
    state = held_for(AppSpec("a", V1, V2, 50)).state()
    [call] = calls_for(state, AppSpec("a", V1, V2, weight))
    assert call.body["state"] == "in_progress" and call.body["percent"] == weight


def test_adding_a_canary_puts_the_app_then_posts_the_canary():
    state = held_for(AppSpec("a", V1)).state()
    calls = calls_for(state, AppSpec("a", V1, V2, 10))
    assert verbs(calls) == [(PUT, APP), (POST, CANARY)]
    assert [u["version"] for u in calls[0].body["upstreams"]] == [V1.key, V2.key]
    assert calls[0].body["default_upstream_version"] == V1.key


def test_removing_a_canary_deletes_it_before_dropping_its_upstream():
    state = held_for(AppSpec("a", V1, V2, 30)).state()
    calls = calls_for(state, AppSpec("a", V1))
    assert verbs(calls) == [(DELETE, CANARY), (PUT, APP)]
    assert [u["version"] for u in calls[1].body["upstreams"]] == [V1.key]


def test_promotion_switches_the_default_before_ending_the_canary():
    state = held_for(AppSpec("a", V1, V2, 100)).state()
    calls = calls_for(state, AppSpec("a", V2))
    assert verbs(calls) == [(PUT, APP), (DELETE, CANARY)]
    assert calls[0].body["default_upstream_version"] == V2.key
    assert [u["version"] for u in calls[0].body["upstreams"]] == [V2.key]


def test_replacing_the_canary_service_ends_the_old_rule_first():
    state = held_for(AppSpec("a", V1, V2, 30)).state()
    assert verbs(calls_for(state, AppSpec("a", V1, V3, 30))) == [
        (DELETE, CANARY),
        (PUT, APP),
        (POST, CANARY),
    ]


def test_new_stable_while_the_canary_routes_everything_bridges_over_the_old_canary_upstream():
    state = held_for(AppSpec("a", V1, V3, 100)).state()
    calls = calls_for(state, AppSpec("a", V2))
    assert verbs(calls) == [(PUT, APP), (DELETE, CANARY), (PUT, APP)]
    assert [u["version"] for u in calls[0].body["upstreams"]] == [V2.key, V3.key]
    assert calls[0].body["default_upstream_version"] == V2.key
    assert [u["version"] for u in calls[2].body["upstreams"]] == [V2.key]


def test_foreign_app_is_never_planned_for():
    foreign = AppState(
        "a", owned=False, stable=V1, canary=None, weight=0, raw=Api7Objects({"id": "9"})
    )
    with pytest.raises(TerminalGatewayError, match="not created by canaryctl"):
        calls_for(foreign, AppSpec("a", V1))


def drifted(spec: AppSpec, change) -> AppState:
    """The state of `spec` as written, after `change` (in place, or returning new objects)."""
    objects = copy.deepcopy(held_for(spec).objects)
    return app_state(change(objects) or objects)


def test_drift_in_hosts_is_corrected_with_one_put_keeping_foreign_fields():
    def edit(objects):
        objects.app.update(hosts=["other"], labels=["team:web", OWNER_LABEL], plugins={"cors": {}})
        objects.app["upstreams"][0]["upstream"]["timeout"] = {"connect": 5}

    state = drifted(AppSpec("a", V1), edit)
    assert not state.conforms and not state.matches(AppSpec("a", V1))
    [call] = calls_for(state, AppSpec("a", V1))
    assert (call.verb, call.kind) == (PUT, APP) and call.body["hosts"] == ["a"]
    assert call.body["labels"] == ["team:web", OWNER_LABEL] and call.body["plugins"] == {"cors": {}}
    assert call.body["upstreams"][0]["upstream"]["timeout"] == {"connect": 5}
    assert "id" not in call.body


def test_unknown_extra_upstream_is_dropped():
    def edit(objects):
        objects.app["upstreams"].append(
            {"version": "x", "upstream": {"targets": [{"host": "h", "port": 1}]}}
        )

    state = drifted(AppSpec("a", V1), edit)
    assert not state.conforms
    [call] = calls_for(state, AppSpec("a", V1))
    assert [u["version"] for u in call.body["upstreams"]] == [V1.key]


def test_missing_api_is_recreated_and_changed_api_replaced():
    state = drifted(AppSpec("a", V1), lambda o: dataclasses.replace(o, apis=()))
    assert not state.conforms and verbs(calls_for(state, AppSpec("a", V1))) == [(POST, API)]
    state = drifted(
        AppSpec("a", V1), lambda o: o.apis[0].update(paths=[{"path": "/x", "path_type": "Exact"}])
    )
    [call] = calls_for(state, AppSpec("a", V1))
    assert (call.verb, call.kind, call.body["paths"]) == (
        PUT,
        API,
        [{"path": "/", "path_type": "Prefix"}],
    )


def test_duplicate_api_is_deleted_keeping_the_conforming_one():
    def edit(objects):
        bad = {**copy.deepcopy(objects.apis[0]), "id": "7", "methods": ["GET"]}
        return dataclasses.replace(objects, apis=(bad, objects.apis[0]))

    state = drifted(AppSpec("a", V1), edit)
    assert calls_for(state, AppSpec("a", V1)) == [Call(DELETE, API, "7")]


def test_paused_canary_routes_nothing_and_is_resumed_only_when_weight_is_wanted():
    state = drifted(AppSpec("a", V1, V2, 20), lambda o: o.canaries[0].update(state="paused"))
    assert state.weight == 0 and state.canary == V2 and state.conforms
    assert calls_for(state, AppSpec("a", V1, V2, 0)) == []
    [call] = calls_for(state, AppSpec("a", V1, V2, 20))
    assert call.body["state"] == "in_progress" and call.body["percent"] == 20


def test_missing_percent_means_zero():
    state = drifted(AppSpec("a", V1, V2, 0), lambda o: o.canaries[0].pop("percent"))
    assert state.weight == 0 and state.matches(AppSpec("a", V1, V2, 0))


def test_finished_canary_is_cleaned_up():
    state = drifted(
        AppSpec("a", V1),
        lambda o: dataclasses.replace(
            o,
            canaries=(
                {
                    "id": "5",
                    "name": "old",
                    "state": "finished",
                    "type": "percent",
                    "canary_upstream_version": "gone",
                },
            ),
        ),
    )
    assert state.canary is None and not state.conforms
    assert calls_for(state, AppSpec("a", V1)) == [Call(DELETE, CANARY, "5")]


def test_app_without_owner_label_reads_as_foreign():
    state = drifted(AppSpec("a", V1), lambda o: o.app.update(labels=["team:web"]))
    assert not state.owned and not state.conforms and not is_owned(state.raw.app)


SPECS = (
    [AppSpec("a", V1)]
    + [
        AppSpec("a", stable, canary, weight)
        for stable, canary in [(V1, V2), (V1, V3), (V2, V3), (V2, V1)]
        for weight in (0, 37, 100)
    ]
    + [AppSpec("a", V2), AppSpec("a", V3)]
)


@pytest.mark.parametrize(
    "before,after",
    list(itertools.product(SPECS, SPECS)),
    ids=lambda s: f"{s.stable.key[-2:]}+{s.canary.key[-2:] if s.canary else '-'}@{s.weight}",
)
def test_every_transition_converges_safely(before, after):
    held = held_for(before)
    initial = held.shares()
    calls = calls_for(held.state(), after)
    allowed = set(initial) | {after.stable.key} | ({after.canary.key} if after.weight else set())
    for call in calls:
        held.perform(call)
        assert set(held.shares()) <= allowed, f"stray traffic after {call}"
    state = held.state()
    assert state.matches(after) and state.conforms and calls_for(state, after) == []
    assert len(held.objects.apis) == 1 and len(held.objects.canaries) == (after.canary is not None)
    if before == after:
        assert calls == []
    if (
        before.stable == after.stable
        and before.canary == after.canary
        and before.weight != after.weight
    ):
        assert len(calls) == 1, "a weight change is one call"


def test_conformity_is_planned_only_when_first_asked(count_calls):
    import canaryctl.gateway.api7.state as state_module

    plans = count_calls(state_module, "calls_for_objects")
    state = held_for(AppSpec("a", V1, V2, 10)).state()
    assert plans == []  # reading the objects does not plan them again
    assert not state.matches(AppSpec("a", V1, V2, 20))  # the weight differs: conformity unasked
    assert plans == []
    assert state.matches(AppSpec("a", V1, V2, 10)) and state.conforms
    assert len(plans) == 1  # planned once, then remembered


def test_unasked_conformity_still_sees_drift():
    held = held_for(AppSpec("a", V1, V2, 10))
    held.objects = Api7Objects(
        {**held.objects.app, "hosts": ["other"]}, held.objects.apis, held.objects.canaries
    )
    state = held.state()
    assert not state.conforms and not state.matches(AppSpec("a", V1, V2, 10))
    assert calls_for(state, AppSpec("a", V1, V2, 10))  # and one write corrects it

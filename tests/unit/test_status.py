"""The canary-status annotation: its JSON shape, change detection, and applied shares."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryctl.gateway.model import AppState, Upstream
from canaryctl.status import StatusDoc, applied_share, changed, render

NOW = datetime(2024, 5, 1, 12, 30, 15, 999, tzinfo=UTC)
DOC = StatusDoc(
    "canary", "error-page", 10, "Canary", "canary of application error-page; receives 10 %"
)
V1 = Upstream("demo", "v1", "v1.demo.svc.cluster.local", 80)
V2 = Upstream("demo", "v2", "v2.demo.svc.cluster.local", 80)


def test_render_is_compact_json_with_the_documented_keys_in_order():
    text = render(DOC, 10, NOW)
    assert text == (
        '{"role":"canary","app":"error-page","desiredWeight":10,"appliedWeight":10,"phase":"Canary",'
        '"message":"canary of application error-page; receives 10 %","time":"2024-05-01T12:30:15Z"}'
    )


def test_render_writes_time_in_utc():
    seoul = timezone(timedelta(hours=9))
    assert json.loads(render(DOC, None, NOW.astimezone(seoul)))["time"] == "2024-05-01T12:30:15Z"


def test_render_refuses_a_naive_time():
    with pytest.raises(ValueError):
        render(DOC, 10, datetime(2024, 5, 1))


def test_unknown_weights_render_as_null():
    held = StatusDoc("none", "error-page", None, "Invalid", "bad")
    assert json.loads(render(held, None, NOW))["desiredWeight"] is None


def test_a_missing_status_is_a_change():
    assert changed(None, DOC, 10)


def test_only_the_time_changing_is_not_a_change():
    assert not changed(render(DOC, 10, NOW), DOC, 10)
    assert not changed(render(DOC, 10, NOW - timedelta(days=3)), DOC, 10)


@pytest.mark.parametrize(
    "doc, applied",
    [
        (DOC, 0),
        (DOC, None),
        (StatusDoc("canary", "error-page", 20, "Canary", DOC.message), 10),
        (StatusDoc("canary", "error-page", 10, "Holding", DOC.message), 10),
        (StatusDoc("canary", "error-page", 10, "Canary", "other"), 10),
        (StatusDoc("stable", "error-page", 10, "Canary", DOC.message), 10),
        (StatusDoc("canary", "other", 10, "Canary", DOC.message), 10),
    ],
)
def test_any_field_but_time_changing_is_a_change(doc, applied):
    assert changed(render(DOC, 10, NOW), doc, applied)


@pytest.mark.parametrize(
    "previous", ["", "not json", "[1, 2]", '"text"', "null", '{"role":"canary"}']
)
def test_a_garbled_or_foreign_previous_status_is_a_change(previous):
    assert changed(previous, DOC, 10)


def test_applied_share_is_unknown_without_an_owned_app():
    assert applied_share(None, "demo/v1") is None
    assert applied_share(AppState("error-page", False, V1, None, 0), "demo/v1") is None


@pytest.mark.parametrize(
    "state, v1_share, v2_share",
    [
        (AppState("error-page", True, V1, None, 0), 100, 0),
        (AppState("error-page", True, V1, V2, 10), 90, 10),
        (AppState("error-page", True, V1, V2, 0), 100, 0),
        (AppState("error-page", True, V1, V2, 100), 0, 100),
        (AppState("error-page", True, V2, None, 0), 0, 100),
    ],
)
def test_applied_share_is_each_members_part_of_the_requests(state, v1_share, v2_share):
    assert (applied_share(state, "demo/v1"), applied_share(state, "demo/v2")) == (
        v1_share,
        v2_share,
    )


docs = st.builds(
    StatusDoc,
    st.sampled_from(["stable", "canary", "none"]),
    st.text(),
    st.one_of(st.none(), st.integers(0, 100)),
    st.text(),
    st.text(),
)
times = st.datetimes(timezones=st.just(UTC))


@given(doc=docs, applied=st.one_of(st.none(), st.integers(0, 100)), written=times, later=times)
def test_rerendering_an_unchanged_status_is_never_a_change(doc, applied, written, later):
    previous = render(doc, applied, written)
    assert not changed(previous, doc, applied)
    assert json.loads(previous) | {"time": None} == json.loads(render(doc, applied, later)) | {
        "time": None
    }

"""The canary-status annotation: JSON shape, reading it back, change detection, applied shares."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryctl.gateway.model import AppState, Upstream
from canaryctl.release.state import CheckResult, ReleaseState
from canaryctl.status import MAX_MESSAGE, MemberStatus, applied_share, status_app

NOW = datetime(2024, 5, 1, 12, 30, 15, 999, tzinfo=UTC)
DOC = MemberStatus(
    "canary", "error-page", 10, "Canary", "canary of application error-page; receives 10 %", 10
)
V1 = Upstream("demo", "v1", "v1.demo.svc.cluster.local", 80)
V2 = Upstream("demo", "v2", "v2.demo.svc.cluster.local", 80)
RELEASE = ReleaseState(
    "Progressing",
    1,
    25,
    datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    failures=1,
    last_check=CheckResult("fail", "error rate 3.0 % > 1.0 %", 120.0, 60),
    last_check_at=datetime(2024, 5, 1, 12, 1, tzinfo=UTC),
    percent_seen=10,
)


def test_render_is_compact_json_with_the_documented_keys_in_order():
    text = DOC.render(NOW)
    assert text == (
        '{"role":"canary","app":"error-page","desiredWeight":10,"appliedWeight":10,'
        '"phase":"Canary","message":"canary of application error-page; receives 10 %",'
        '"time":"2024-05-01T12:30:15Z"}'
    )


def test_render_writes_time_in_utc():
    seoul = timezone(timedelta(hours=9))
    assert json.loads(DOC.render(NOW.astimezone(seoul)))["time"] == "2024-05-01T12:30:15Z"


def test_render_refuses_a_naive_time():
    with pytest.raises(ValueError):
        DOC.render(datetime(2024, 5, 1))


def test_unknown_weights_render_as_null():
    held = MemberStatus("none", "error-page", None, "Invalid", "bad")
    assert json.loads(held.render(NOW))["desiredWeight"] is None


def test_a_release_state_is_written_under_release_and_read_back_exactly():
    status = replace(DOC, release=RELEASE)
    parsed = MemberStatus.parse(status.render(NOW))
    assert json.loads(status.render(NOW))["release"]["weight"] == 25
    assert parsed == replace(status, time=NOW.replace(microsecond=0))


def test_a_long_message_is_cut_and_says_so():
    status = replace(DOC, message="x" * 250_000)
    written = json.loads(status.render(NOW))["message"]
    assert len(written) <= MAX_MESSAGE and written.endswith("characters cut)")


def test_a_missing_status_is_a_change():
    assert not DOC.same_content(None)


def test_only_the_time_changing_is_not_a_change():
    assert DOC.same_content(DOC.render(NOW))
    assert DOC.same_content(DOC.render(NOW - timedelta(days=3)))


@pytest.mark.parametrize(
    "doc",
    [
        replace(DOC, applied_weight=0),
        replace(DOC, applied_weight=None),
        replace(DOC, desired_weight=20),
        replace(DOC, phase="Holding"),
        replace(DOC, message="other"),
        replace(DOC, role="stable"),
        replace(DOC, app="other"),
        replace(DOC, release=RELEASE),
    ],
)
def test_any_field_but_time_changing_is_a_change(doc):
    assert not doc.same_content(DOC.render(NOW))


@pytest.mark.parametrize(
    "previous", ["", "not json", "[1, 2]", '"text"', "null", '{"role":"canary"}']
)
def test_a_garbled_or_foreign_previous_status_is_a_change(previous):
    assert not DOC.same_content(previous)


@pytest.mark.parametrize("text", [None, "", "not json", "[1, 2]", '"text"', "null"])
def test_what_is_not_a_json_object_reads_as_no_status(text):
    assert MemberStatus.parse(text) is None


def test_odd_fields_read_leniently_one_by_one():
    odd = '{"role":"boss","app":7,"desiredWeight":"10","appliedWeight":150,"phase":"Canary"}'
    assert MemberStatus.parse(odd) == MemberStatus("none", "", None, "Canary", "", None)


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


statuses = st.builds(
    MemberStatus,
    st.sampled_from(["stable", "canary", "none"]),
    st.text(),
    st.one_of(st.none(), st.integers(0, 100)),
    st.text(),
    st.text(max_size=2000),
    st.one_of(st.none(), st.integers(0, 100)),
)
times = st.datetimes(timezones=st.just(UTC))


@given(status=statuses, written=times, later=times)
def test_rerendering_an_unchanged_status_is_never_a_change(status, written, later):
    previous = status.render(written)
    assert status.same_content(previous)
    assert json.loads(previous) | {"time": None} == json.loads(status.render(later)) | {
        "time": None
    }


@pytest.mark.parametrize(
    ("annotation", "app"),
    [
        ('{"role":"stable","app":"error-page","desiredWeight":90}', "error-page"),
        ('{"role":"canary","app":""}', ""),
        ('{"role":"canary","app":7}', ""),  # lenient, as parse is: a non-string is no app
        ('{"role":"canary"}', ""),
        ('["app","error-page"]', ""),
        ("not json", ""),
        ("[" * 100_000, ""),  # absurdly nested: RecursionError, not a crash
        (None, ""),
    ],
)
def test_status_app_reads_the_app_as_parse_does(annotation, app):
    assert status_app(annotation) == app
    parsed = MemberStatus.parse(annotation)
    assert (parsed.app if parsed is not None else "") == app

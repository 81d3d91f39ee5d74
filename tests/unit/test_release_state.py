"""Release state: exact JSON round trip, tolerant reading, whole-second times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryctl import metrics
from canaryctl.release.state import (
    CHECK_OUTCOMES,
    PHASES,
    CheckResult,
    Evidence,
    MetricCheck,
    ReleaseState,
    whole_seconds_up,
)

T0 = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)

finite = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
times = st.integers(0, 10**9).map(lambda s: datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=s))
signed = st.floats(min_value=-100, max_value=100, allow_nan=False)
evidences = st.builds(
    Evidence,
    verdict=st.sampled_from(["pass", "fail", "no_data"]),
    method=st.sampled_from(["fisher", "z"]),
    p_value=st.floats(0, 1),
    low=signed,
    high=signed,
    canary_bad=st.integers(0, 10**6),
    canary_requests=st.integers(0, 10**6),
    stable_bad=st.integers(0, 10**6),
    stable_requests=st.integers(0, 10**6),
    confidence=st.floats(0.8, 0.999),
    min_effect=st.floats(0.01, 100),
    slower_than_ms=st.none() | finite,
)
metric_checks = st.builds(
    MetricCheck,
    name=st.sampled_from(["error_rate", "latency_p99", "slow_requests"]),
    value=finite,
    threshold=finite,
    passed=st.booleans(),
    stable=st.none() | finite,
    evidence=st.none() | evidences,
)
check_results = st.builds(
    CheckResult,
    result=st.sampled_from(CHECK_OUTCOMES),
    message=st.text(),
    requests=finite,
    window_s=st.integers(0, 10**6),
    metrics=st.lists(metric_checks, max_size=3).map(tuple),
)


@st.composite
def states(draw) -> ReleaseState:
    check = draw(st.none() | check_results)
    return ReleaseState(
        phase=draw(st.sampled_from(PHASES)),
        step=draw(st.integers(0, 100)),
        weight=draw(st.integers(0, 100)),
        step_started_at=draw(times),
        failures=draw(st.integers(0, 1000)),
        errors=draw(st.integers(0, 1000)),
        no_data=draw(st.integers(0, 1000)),
        last_check=check,
        last_check_at=None if check is None else draw(st.none() | times),
        reason=draw(st.text()),
        percent_seen=draw(st.none() | st.integers(0, 100)),
        last_action=draw(st.none() | st.text()),
    )


@given(states())
def test_round_trip_through_json_is_exact(state):
    text = json.dumps(state.to_dict())
    assert ReleaseState.from_dict(json.loads(text)) == state


def test_the_persisted_form_is_readable():
    check = CheckResult(
        "fail",
        "error rate 30.0 % > 1.0 % over 12 s (60 requests)",
        60.0,
        12,
        (MetricCheck("error_rate", 30.0, 1.0, False),),
    )
    state = ReleaseState(
        "Progressing",
        1,
        10,
        T0,
        failures=1,
        last_check=check,
        last_check_at=T0 + timedelta(seconds=12),
        percent_seen=10,
    )
    assert state.to_dict() == {
        "phase": "Progressing",
        "step": 1,
        "weight": 10,
        "stepStartedAt": "2024-06-01T12:00:00Z",
        "counts": {"fail": 1, "error": 0, "noData": 0},
        "lastCheck": {
            "result": "fail",
            "at": "2024-06-01T12:00:12Z",
            "message": "error rate 30.0 % > 1.0 % over 12 s (60 requests)",
            "requests": 60.0,
            "windowSeconds": 12,
            "metrics": [
                {
                    "name": "error_rate",
                    "value": 30.0,
                    "threshold": 1.0,
                    "passed": False,
                    "stable": None,
                }
            ],
        },
        "reason": "",
        "percentSeen": 10,
        "lastAction": None,
    }


EVIDENCE = Evidence("fail", "fisher", 2.5e-9, 6.58, 17.38, 12, 100, 10, 1000, 0.95, 1.0)


def test_statistical_evidence_is_persisted_with_the_metric():
    check = CheckResult(
        "fail",
        "error rate 12.0 % ...",
        100.0,
        60,
        (MetricCheck("error_rate", 12.0, 2.0, False, 1.0, EVIDENCE),),
    )
    state = ReleaseState("Progressing", 0, 5, T0, failures=1, last_check=check, last_check_at=T0)
    [metric] = state.to_dict()["lastCheck"]["metrics"]
    assert metric["evidence"] == {
        "verdict": "fail",
        "method": "fisher",
        "pValue": 2.5e-9,
        "difference": {"low": 6.58, "high": 17.38},
        "canary": {"bad": 12, "requests": 100},
        "stable": {"bad": 10, "requests": 1000},
        "confidence": 0.95,
        "minEffect": 1.0,
        "slowerThanMs": None,
    }
    assert ReleaseState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_a_state_written_before_evidence_existed_reads_back():
    old = {  # as canaryctl wrote it before compare=statistical: no "evidence" key at all
        "phase": "Progressing",
        "step": 1,
        "weight": 10,
        "stepStartedAt": "2024-06-01T12:00:00Z",
        "counts": {"fail": 1, "error": 0, "noData": 0},
        "lastCheck": {
            "result": "fail",
            "at": "2024-06-01T12:00:12Z",
            "message": "error rate 30.0 % > 1.0 % over 12 s (60 requests)",
            "requests": 60.0,
            "windowSeconds": 12,
            "metrics": [
                {
                    "name": "error_rate",
                    "value": 30.0,
                    "threshold": 1.0,
                    "passed": False,
                    "stable": None,
                }
            ],
        },
        "reason": "",
        "percentSeen": 10,
        "lastAction": None,
    }
    state = ReleaseState.from_dict(old)
    assert state is not None and state.last_check is not None
    assert state.last_check.metrics == (MetricCheck("error_rate", 30.0, 1.0, False),)
    assert state.to_dict() == old


def _evidence_json(**changes) -> dict:
    metric = MetricCheck("error_rate", 12.0, 2.0, False, 1.0, EVIDENCE)
    check = CheckResult("fail", "", 100.0, 60, (metric,))
    data = ReleaseState("Progressing", 0, 5, T0, last_check=check).to_dict()
    data["lastCheck"]["metrics"][0]["evidence"].update(changes)
    return json.loads(json.dumps(data))


@pytest.mark.parametrize(
    "data",
    [
        _evidence_json(verdict="maybe"),
        _evidence_json(pValue="0.1"),
        _evidence_json(canary={"bad": -1, "requests": 100}),
        _evidence_json(difference=[0, 1]),
        _evidence_json(slowerThanMs="500"),
    ],
)
def test_garbage_evidence_means_start_fresh(data):
    assert ReleaseState.from_dict(data) is None
    assert ReleaseState.from_dict(_evidence_json()) is not None


def test_outcomes_are_the_metric_labels():
    assert CHECK_OUTCOMES == metrics.CHECK_RESULTS


VALID = ReleaseState(
    "Paused", 2, 25, T0, errors=5, reason="paused after 5 checks in error"
).to_dict()


def _with(path: tuple[str, ...], value) -> dict:
    data = json.loads(json.dumps(VALID))
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "garbage",
        42,
        [],
        {},
        _with(("phase",), "Running"),
        _with(("phase",), None),
        _with(("weight",), 101),
        _with(("weight",), -1),
        _with(("weight",), "25"),
        _with(("weight",), 25.0),
        _with(("weight",), True),
        _with(("step",), KeyError),
        _with(("stepStartedAt",), "yesterday"),
        _with(("stepStartedAt",), "2024-06-01T12:00:00.5Z"),
        _with(("counts", "fail"), -1),
        _with(("counts",), []),
        _with(("reason",), None),
        _with(("percentSeen",), 150),
        _with(("lastAction",), 3),
        _with(("lastCheck",), "pass"),
        _with(
            ("lastCheck",),
            {
                "result": "maybe",
                "at": None,
                "message": "",
                "requests": 0,
                "windowSeconds": 0,
                "metrics": [],
            },
        ),
        _with(
            ("lastCheck",),
            {
                "result": "pass",
                "at": None,
                "message": "",
                "requests": "NaN",
                "windowSeconds": 0,
                "metrics": [],
            },
        ),
    ],
)
def test_missing_or_garbage_input_means_start_fresh(data):
    assert ReleaseState.from_dict(data) is None


def test_a_valid_document_reads_back():
    assert ReleaseState.from_dict(VALID) == ReleaseState(
        "Paused", 2, 25, T0, errors=5, reason="paused after 5 checks in error"
    )


def test_times_must_be_aware_whole_seconds():
    with pytest.raises(ValueError):
        ReleaseState("Progressing", 0, 5, T0.replace(microsecond=1))
    with pytest.raises(ValueError):
        ReleaseState("Progressing", 0, 5, T0.replace(tzinfo=None))


def test_whole_seconds_round_up_never_down():
    assert whole_seconds_up(T0) == T0
    assert whole_seconds_up(T0 + timedelta(microseconds=1)) == T0 + timedelta(seconds=1)
    assert whole_seconds_up(T0 + timedelta(milliseconds=999)) == T0 + timedelta(seconds=1)
    cest = timezone(timedelta(hours=2))
    assert whole_seconds_up(datetime(2024, 6, 1, 14, 0, 0, 500000, tzinfo=cest)) == T0 + timedelta(
        seconds=1
    )

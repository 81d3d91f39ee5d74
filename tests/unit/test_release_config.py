"""Release annotations: defaults, every accepted form, every rejected one, all problems at once."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryctl.annotations import APP, CANARY, PERCENT, STATUS, Invalid
from canaryctl.objects import Service, ServicePort
from canaryctl.release import config as rc
from canaryctl.release.config import (
    Action,
    ReleaseConfig,
    parse_duration_s,
    parse_release,
    parse_steps,
)


def service(annotations: dict[str, str]) -> Service:
    values = {APP: "error-page", CANARY: "true", **annotations}
    return Service(
        "demo", "error-page-v2", "uid", "1", MappingProxyType(values), (ServicePort("http", 80),)
    )


def config_of(annotations: dict[str, str]) -> ReleaseConfig:
    result = parse_release(service(annotations))
    assert isinstance(result, ReleaseConfig), result
    return result


def problems_of(annotations: dict[str, str]) -> list:
    result = parse_release(service(annotations))
    assert isinstance(result, Invalid), result
    return list(result.problems)


def test_without_steps_the_release_is_manual():
    assert parse_release(service({})) is None
    assert (
        parse_release(service({rc.STEP_INTERVAL: "30s", rc.ACTION: "pause", PERCENT: "10"})) is None
    )


def test_steps_alone_enable_automation_with_documented_defaults():
    assert config_of({rc.STEPS: "5,10,25,50,100"}) == ReleaseConfig(
        steps=(5, 10, 25, 50, 100),
        interval_s=60.0,
        max_error_rate=1.0,
        max_latency_p99_ms=500.0,
        compare="absolute",
        error_rate_margin=1.0,
        latency_ratio=1.5,
        min_requests=20,
        failure_limit=2,
        error_limit=5,
        nodata_limit=5,
        on_failure="rollback",
        action=None,
        confidence=0.95,
        min_effect=1.0,
    )


def test_every_setting_is_read():
    config = config_of(
        {
            rc.STEPS: " 10, 50 ",
            rc.STEP_INTERVAL: "1m30s",
            rc.MAX_ERROR_RATE: "2.5%",
            rc.MAX_LATENCY_P99: "1.5s",
            rc.COMPARE: "Stable",
            rc.ERROR_RATE_MARGIN: "0.5",
            rc.LATENCY_RATIO: "2",
            rc.MIN_REQUESTS: "100",
            rc.FAILURE_LIMIT: "3",
            rc.ERROR_LIMIT: "4",
            rc.NODATA_LIMIT: "6",
            rc.ON_FAILURE: "pause",
            rc.ACTION: "retry@1717236000",
            rc.CONFIDENCE: "0.99",
            rc.MIN_EFFECT: "0.5",
        }
    )
    assert config == ReleaseConfig(
        steps=(10, 50, 100),
        interval_s=90.0,
        max_error_rate=2.5,
        max_latency_p99_ms=1500.0,
        compare="stable",
        error_rate_margin=0.5,
        latency_ratio=2.0,
        min_requests=100,
        failure_limit=3,
        error_limit=4,
        nodata_limit=6,
        on_failure="pause",
        action=Action("retry", "retry@1717236000"),
        confidence=0.99,
        min_effect=0.5,
    )


@pytest.mark.parametrize(
    "annotations, confidence, min_effect",
    [
        ({}, 0.95, 1.0),
        ({rc.CONFIDENCE: "0.8"}, 0.8, 1.0),
        ({rc.CONFIDENCE: "0.999"}, 0.999, 1.0),
        ({rc.CONFIDENCE: "99%"}, 0.99, 1.0),
        ({rc.CONFIDENCE: " 97.5% "}, 0.975, 1.0),
        ({rc.MIN_EFFECT: "0.01"}, 0.95, 0.01),
        ({rc.MIN_EFFECT: "2.5%"}, 0.95, 2.5),
    ],
)
def test_statistical_comparison_settings(annotations, confidence, min_effect):
    config = config_of({rc.STEPS: "5,50", rc.COMPARE: "statistical", **annotations})
    assert config.compare == "statistical"
    assert config.confidence == pytest.approx(confidence) and config.min_effect == min_effect


def test_the_statistical_problems_spell_out_what_is_accepted():
    problems = problems_of({rc.STEPS: "50", rc.COMPARE: "Kayenta", rc.CONFIDENCE: "95"})
    assert [p.message for p in problems] == [
        'annotation api7.cloud/canary-compare="Kayenta" is invalid: '
        "accepted values are absolute, stable or statistical",
        'annotation api7.cloud/canary-confidence="95" is invalid: accepted values are '
        'fractions from 0.8 to 0.999 or percentages with %, e.g. "0.95" or "99%"',
    ]


def test_latency_judging_can_be_switched_off():
    assert config_of({rc.STEPS: "50", rc.MAX_LATENCY_P99: "off"}).max_latency_p99_ms is None


@pytest.mark.parametrize(
    "text, steps",
    [
        ("5,10,25,50,100", (5, 10, 25, 50, 100)),
        ("5,10,25,50", (5, 10, 25, 50, 100)),
        ("100", (100,)),
        ("1", (1, 100)),
        ("007, 50", (7, 50, 100)),
    ],
)
def test_steps_end_at_100(text, steps):
    assert parse_steps(text) == steps


@pytest.mark.parametrize(
    "text", ["", ",", "5,,10", "0,10", "10,5", "10,10", "5,101", "-5", "5.5", "a", "5;10", "5,10,"]
)
def test_bad_steps_are_rejected(text):
    assert parse_steps(text) is None


@given(st.lists(st.integers(1, 100), min_size=1, unique=True).map(sorted))
def test_any_increasing_schedule_round_trips(steps):
    parsed = parse_steps(",".join(map(str, steps)))
    assert parsed == tuple(steps) + (() if steps[-1] == 100 else (100,))


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("30s", 30),
        ("1m", 60),
        ("1m30s", 90),
        ("500ms", 0.5),
        ("1.5m", 90),
        ("2h", 7200),
        ("1h1m1s", 3661),
    ],
)
def test_go_durations(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "30", "s", "1d", "-1s", "1 s", "1.s", "1e3s", "1m 30s", "inf s"]
)
def test_malformed_durations(text):
    assert parse_duration_s(text) is None


@pytest.mark.parametrize(
    "annotation, value",
    [
        (rc.STEPS, "10,5"),
        (rc.STEP_INTERVAL, "500ms"),
        (rc.STEP_INTERVAL, "25h"),
        (rc.STEP_INTERVAL, "60"),
        (rc.MAX_ERROR_RATE, "101"),
        (rc.MAX_ERROR_RATE, "-1"),
        (rc.MAX_ERROR_RATE, "nan"),
        (rc.MAX_ERROR_RATE, "1e1"),
        (rc.MAX_LATENCY_P99, "0ms"),
        (rc.MAX_LATENCY_P99, "500"),
        (rc.MAX_LATENCY_P99, "2h"),
        (rc.COMPARE, "relative"),
        (rc.COMPARE, "statistics"),
        (rc.CONFIDENCE, "95"),
        (rc.CONFIDENCE, "0.5"),
        (rc.CONFIDENCE, "1"),
        (rc.CONFIDENCE, "0.9999"),
        (rc.CONFIDENCE, "0.95%"),
        (rc.CONFIDENCE, "high"),
        (rc.MIN_EFFECT, "0"),
        (rc.MIN_EFFECT, "101"),
        (rc.MIN_EFFECT, "-1"),
        (rc.ERROR_RATE_MARGIN, "x"),
        (rc.LATENCY_RATIO, "0.5"),
        (rc.MIN_REQUESTS, "0"),
        (rc.MIN_REQUESTS, "1.5"),
        (rc.MIN_REQUESTS, "99999999999"),
        (rc.FAILURE_LIMIT, "0"),
        (rc.ERROR_LIMIT, "1001"),
        (rc.NODATA_LIMIT, "two"),
        (rc.ON_FAILURE, "ignore"),
        (rc.ACTION, "promote!"),
        (rc.ACTION, "skip"),
        (rc.ACTION, "pause@"),
        (rc.ACTION, "pause@has space"),
    ],
)
def test_each_invalid_value_is_one_problem_naming_annotation_value_and_accepted(annotation, value):
    problems = problems_of(
        {rc.STEPS: "5,50", annotation: value} if annotation != rc.STEPS else {rc.STEPS: value}
    )
    assert [p.annotation for p in problems] == [annotation]
    message = problems[0].message
    assert annotation in message and f'"{value}"' in message and "accepted values are" in message


def test_all_problems_are_reported_at_once_and_even_without_steps():
    problems = problems_of({rc.STEP_INTERVAL: "soon", rc.ON_FAILURE: "panic", rc.ACTION: "go"})
    assert {p.annotation for p in problems} == {rc.STEP_INTERVAL, rc.ON_FAILURE, rc.ACTION}


def test_accepted_values_are_spelled_out():
    [problem] = problems_of({rc.STEPS: "5,50", rc.ON_FAILURE: "panic"})
    assert problem.message == (
        'annotation api7.cloud/canary-on-failure="panic" is invalid: '
        "accepted values are rollback or pause"
    )


def test_a_misspelt_release_annotation_is_a_problem_with_a_suggestion():
    [problem] = problems_of({"api7.cloud/canary-stpes": "5,50"})
    assert problem.annotation == "api7.cloud/canary-stpes"
    assert "did you mean api7.cloud/canary-steps?" in problem.message
    assert "not a canaryctl annotation" in problem.message


def test_status_and_seed_annotations_are_not_release_inputs():
    assert config_of({rc.STEPS: "50", STATUS: '{"phase":"Canary"}', PERCENT: "10"}).steps == (
        50,
        100,
    )


@pytest.mark.parametrize(
    "value, verb",
    [("promote", "promote"), (" Abort ", "abort"), ("pause@2024-06-01T10:00:00Z", "pause")],
)
def test_actions_keep_their_whole_value_as_identity(value, verb):
    action = config_of({rc.STEPS: "50", rc.ACTION: value}).action
    assert action == Action(verb, value.strip())

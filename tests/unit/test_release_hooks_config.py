"""Hook, gate and split annotations: accepted values, rejected ones with what is accepted, and
the JSON body a hook receives."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from canaryctl.annotations import APP, CANARY, Invalid
from canaryctl.objects import Service, ServicePort
from canaryctl.release import config as rc
from canaryctl.release.config import ReleaseConfig, parse_hook_url, parse_release
from canaryctl.release.hooks import HookCall, context_of
from canaryctl.release.state import CheckResult, ReleaseState

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def service(annotations: dict[str, str]) -> Service:
    values = {APP: "error-page", CANARY: "true", rc.STEPS: "10,50", **annotations}
    return Service(
        "demo", "error-page-v2", "uid", "1", MappingProxyType(values), (ServicePort("http", 80),)
    )


def test_defaults_judge_the_split_at_5_points_warn_and_call_no_hooks():
    config = parse_release(service({}))
    assert isinstance(config, ReleaseConfig)
    assert (config.split_tolerance, config.on_split_mismatch) == (5.0, "warn")
    assert (config.pre_hook, config.step_hook, config.promote_gate, config.rollback_hook) == (
        None,
        None,
        None,
        None,
    )
    assert config.hook_timeout_s == 10.0


def test_every_hook_annotation_is_read():
    config = parse_release(
        service(
            {
                rc.PRE_HOOK: "http://checks.tools.svc:8080/pre",
                rc.STEP_HOOK: "https://checks.example.com/step?suite=smoke",
                rc.PROMOTE_GATE: "http://[::1]:9000/gate",
                rc.ROLLBACK_HOOK: "http://chat.tools/rollback",
                rc.HOOK_TIMEOUT: "2.5s",
                rc.SPLIT_TOLERANCE: "2.5",
                rc.ON_SPLIT_MISMATCH: "HOLD",
            }
        )
    )
    assert isinstance(config, ReleaseConfig)
    assert config.pre_hook == "http://checks.tools.svc:8080/pre"
    assert config.step_hook == "https://checks.example.com/step?suite=smoke"
    assert config.promote_gate == "http://[::1]:9000/gate"
    assert config.rollback_hook == "http://chat.tools/rollback"
    assert (config.hook_timeout_s, config.split_tolerance, config.on_split_mismatch) == (
        2.5,
        2.5,
        "hold",
    )
    off = parse_release(service({rc.SPLIT_TOLERANCE: "off"}))
    assert isinstance(off, ReleaseConfig) and off.split_tolerance is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://checks/pre",  # not http(s)
        "checks.tools.svc/pre",  # no scheme
        "http:///pre",  # no host
        "http://user:secret@checks/pre",  # credentials do not belong in an annotation
        "http://token@checks/pre",
        "http://checks/pre#part",
        "http://checks:99999/pre",  # no such port
        "http://checks:0/pre",
        "http://checks/a b",
        "http://[::1/pre",
        "",
        "http://checks/" + "x" * 2048,
    ],
)
def test_hook_urls_that_are_refused(url):
    assert parse_hook_url(url) is None
    result = parse_release(service({rc.STEP_HOOK: url}))
    assert isinstance(result, Invalid)
    (problem,) = result.problems
    assert problem.annotation == rc.STEP_HOOK and problem.value == url
    assert "http:// or https:// URLs with a host" in problem.message


@pytest.mark.parametrize(
    "annotation, value, accepted",
    [
        (rc.HOOK_TIMEOUT, "50ms", "durations from 100ms to 60s"),
        (rc.HOOK_TIMEOUT, "2m", "durations from 100ms to 60s"),
        (rc.SPLIT_TOLERANCE, "0", 'percentage points from 0.1 to 100, e.g. "5", or "off"'),
        (rc.SPLIT_TOLERANCE, "-5", 'percentage points from 0.1 to 100, e.g. "5", or "off"'),
        (rc.ON_SPLIT_MISMATCH, "pause", "warn or hold"),
    ],
)
def test_other_values_that_are_refused_name_annotation_value_and_what_is_accepted(
    annotation, value, accepted
):
    result = parse_release(service({annotation: value}))
    assert isinstance(result, Invalid)
    (problem,) = result.problems
    assert (problem.annotation, problem.value) == (annotation, value)
    assert accepted in problem.message and value in problem.message


def test_a_misspelt_hook_annotation_is_named_with_a_guess():
    result = parse_release(service({"api7.cloud/canary-prehook": "http://checks/pre"}))
    assert isinstance(result, Invalid)
    assert f"did you mean {rc.PRE_HOOK}?" in result.message


def test_the_body_a_hook_receives():
    state = ReleaseState(
        "Progressing",
        1,
        50,
        T0,
        last_check=CheckResult("pass", "error rate 0.0 % <= 1.0 %", 120, 60),
        last_check_at=T0,
    )
    context = context_of("error-page", ("shop", "error-page-v2"), ("base", "error-page-v1"), 3)
    call = HookCall("promote", "http://gate/", 10.0, context, state)
    assert json.loads(call.body()) == {
        "hook": "promote",
        "app": "error-page",
        "namespace": "shop",
        "canary": "error-page-v2",
        "stable": "base/error-page-v1",  # in another namespace than the canary
        "phase": "Progressing",
        "step": 2,
        "steps": 3,
        "weight": 50,
        "reason": "",
        "lastCheck": {
            "result": "pass",
            "at": "2026-06-01T12:00:00Z",
            "message": "error rate 0.0 % <= 1.0 %",
            "requests": 120,
            "windowSeconds": 60,
            "metrics": [],
        },
    }
    later = CheckResult("fail", "newer", 10, 70)
    about = json.loads(call.about(later, T0.replace(minute=1)).body())["lastCheck"]
    assert (about["result"], about["at"]) == ("fail", "2026-06-01T12:01:00Z")

"""The seed's walk-through end to end: real kubectl, real apiserver, emulator, controller process."""

from __future__ import annotations

import pytest

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.walkthrough import ANNOTATE, SEED_STAGES, V2, run_stage
from canaryctl.testing.localkube import wait_until

NS = "canary-release-demo"


@pytest.fixture
def demo(localkube):
    with DemoEnvironment(
        versions=("v1", "v2", "v3"), kube=localkube, progress=lambda _: None
    ) as env:
        yield env


def test_seed_walkthrough_then_v3_canary_then_cleanup(demo):
    for stage in SEED_STAGES:
        result = run_stage(demo, stage, say=lambda _: None)
        assert result.matched, (stage.title, result.answers)

    # a following error-page-v3 canary at 50 % splits against v2, the promoted stable
    demo.shell(f"kubectl apply -f error-page-v3.yaml -n {NS}")
    demo.shell(
        f'{ANNOTATE} error-page-v3 "api7.cloud/published-canary-service=true" '
        '"api7.cloud/published-service-canary-percentage=50" "api7.cloud/published-service=error-page"'
    )
    demo.wait_for_split((V2, f"{NS}/error-page-v3", 50))
    answers = demo.send(100)
    assert answers["v2"] == 50 and answers["v3"] == 50, answers

    # removing every annotation leaves no canaryctl object in the emulator
    for service in ("error-page-v2", "error-page-v3"):
        demo.shell(
            f"kubectl annotate service -n {NS} {service} api7.cloud/published-service- "
            "api7.cloud/published-canary-service- api7.cloud/published-service-canary-percentage-"
        )
    wait_until(
        lambda: demo.emulator.app_by_name("error-page") is None, 30, "the app to be cleaned up"
    )
    assert demo.emulator.apps() == []
    # ... and no stale status annotation on the former members
    wait_until(
        lambda: (
            "api7.cloud/canary-status"
            not in demo.kubectl(
                "get",
                "service",
                "error-page-v3",
                "-n",
                NS,
                "-o",
                "jsonpath={.metadata.annotations}",
            ).stdout
        ),
        15,
        "the status annotation to be removed",
    )
    assert demo.stop_controller() == 0

"""The seed's walk-through end to end: real kubectl, real apiserver, emulator, controller process,
against each gateway (API7 Cloud and APISIX emulators)."""

from __future__ import annotations

import json

import pytest

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.walkthrough import ANNOTATE, SEED_STAGES, V2, run_stage
from canaryctl.testing.localkube import wait_until

NS = "canary-release-demo"


@pytest.fixture(params=["api7", "apisix"])
def demo(localkube, request):
    with DemoEnvironment(
        versions=("v1", "v2", "v3"),
        kube=localkube,
        progress=lambda _: None,
        gateway=request.param,
    ) as env:
        yield env
    finish_deleting(localkube, NS)  # the seed's namespace is reused by the next gateway's run


def finish_deleting(localkube, namespace: str) -> None:
    """Do what kube-controller-manager (not running here) does for a deleted namespace: empty
    it, drop its finalizer, and wait until it is gone."""
    localkube.kubectl("delete", "services,deployments", "--all", "-n", namespace, check=False)
    found = localkube.kubectl("get", "namespace", namespace, "-o", "json", check=False)
    if found.returncode != 0:
        return
    manifest = json.loads(found.stdout)
    manifest["spec"]["finalizers"] = []
    localkube.kubectl(
        "replace",
        "--raw",
        f"/api/v1/namespaces/{namespace}/finalize",
        "-f",
        "-",
        input=json.dumps(manifest),
    )
    wait_until(
        lambda: localkube.kubectl("get", "namespace", namespace, check=False).returncode != 0,
        30,
        f"namespace {namespace} to be gone",
    )


def gateway_objects(demo) -> list:
    """Everything the gateway emulator holds (canaryctl's and anybody's)."""
    if demo.kit.name == "api7":
        return demo.emulator.apps()
    return demo.emulator.routes() + demo.emulator.upstreams()


def test_seed_walkthrough_then_v3_canary_then_cleanup(demo):
    for stage in SEED_STAGES:
        demo.kit.clear_log()
        result = run_stage(demo, stage, say=lambda _: None)
        assert result.matched, (stage.title, result.answers)
        if stage.title.startswith("canary percentage"):  # steady state: one write, zero reads
            wait_until(lambda: demo.kit.writes(), 5, "the write to be logged")
            calls = [(r.method, r.status) for r in demo.emulator.request_log()]
            assert len(calls) == 1 and calls[0][0] in ("PUT", "PATCH"), calls

    # a following error-page-v3 canary at 50 % splits against v2, the promoted stable
    demo.shell(f"kubectl apply -f error-page-v3.yaml -n {NS}")
    demo.shell(
        f'{ANNOTATE} error-page-v3 "api7.cloud/published-canary-service=true" '
        '"api7.cloud/published-service-canary-percentage=50" '
        '"api7.cloud/published-service=error-page"'
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
    wait_until(lambda: gateway_objects(demo) == [], 30, "the app to be cleaned up")
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

"""A network that loses answers, and values too big to echo, against a real apiserver and the
emulator: a write held past the client's timeout is corrected within one suspect window (not at
the next resync), a create whose answer was lost leaves no duplicate, a status the apiserver
refuses (422) is not retried forever, and a busy release cannot flood etcd with Events.

The controller runs with a 2 s request timeout and a 12 s suspect window; the resync period is
the default 10 minutes, far beyond these tests, so only the suspect window can correct anything.
"""

from __future__ import annotations

import json
import time

import pytest

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.processes import wait_until

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
WINDOW = 12.0


@pytest.fixture
def env(localkube, namespace):
    with DemoEnvironment(
        versions=("v1", "v2"),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        controller_args=["--api7-timeout=2", f"--suspect-window={WINDOW:g}"],
    ) as environment:
        yield environment


def version(env, name: str) -> str:
    return f"{env.namespace}/{name}"


def publish(env, percent: int) -> None:
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.apply_service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: str(percent)})
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), percent))


def test_a_write_held_past_the_timeout_is_corrected_within_one_suspect_window(env):
    publish(env, 10)
    # the gateway holds the next canary write 6 s: the client times out at 2 s and retries
    env.emulator.inject_fault(
        kind="latency", method="PUT", path="*/canary_releases/*", times=1, latency_ms=6000
    )
    env.annotate("error-page-v2", f"{PERCENT}=20")
    held_at = time.monotonic()
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), 20))
    env.annotate("error-page-v2", f"{PERCENT}=50")
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), 50))
    # the held write (20) lands ~6 s after it was sent, over the newer 50 ...
    wait_until(lambda: env.split()[2] == 20, 10, "the held write to land late")
    landed_at = time.monotonic()
    # ... and is corrected when the suspect window ends, not at the 10-minute resync
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), 50), 20)
    corrected_at = time.monotonic()
    assert corrected_at - held_at <= WINDOW + 6, (landed_at - held_at, corrected_at - held_at)
    assert env.status("error-page-v2")["appliedWeight"] == 50
    wait_until(lambda: 'canaryctl_canary_applied_weight{app="error-page"' in env.metrics_text(), 5)
    applied = [
        line
        for line in env.metrics_text().splitlines()
        if line.startswith("canaryctl_canary_applied_weight{") and "error-page" in line
    ]
    assert applied and applied[0].endswith(" 50.0")


def test_a_create_whose_answer_was_lost_leaves_no_duplicate(env):
    # the gateway holds the API create 6 s: the client times out, finds nothing, creates again
    env.emulator.inject_fault(
        kind="latency", method="POST", path="*/apis", times=1, latency_ms=6000
    )
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.wait_for_split((version(env, "error-page-v1"), None, 0))
    app_id = env.emulator.app_by_name("error-page")["id"]
    wait_until(lambda: len(env.emulator.apis(app_id)) == 2, 10, "the held create to land too")
    wait_until(lambda: len(env.emulator.apis(app_id)) == 1, WINDOW + 6, "the duplicate removed")
    assert env.send(10) == {"v1": 10}


def test_a_status_the_apiserver_refuses_is_not_retried_forever(env, core_api):
    # the user's own annotations leave no room for the status (all annotations of an object
    # share 256 KiB): the status patch answers 422
    service = {
        "metadata": {
            "name": "error-page-v1",
            "annotations": {APP: "error-page", "note": "x" * 261_900},
        },
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }
    core_api.create_namespaced_service(env.namespace, service)
    env.wait_for_split((version(env, "error-page-v1"), None, 0))
    wait_until(lambda: "cannot write the status" in env.controller_log.read_text(), 10)
    assert _metric(env, "controller_runtime_reconcile_errors_total") == 0
    with pytest.raises(TimeoutError):  # a retry loop would show within a few seconds
        wait_until(lambda: _metric(env, "controller_runtime_reconcile_errors_total") > 0, 3)
    assert env.controller_log.read_text().count("cannot write the status") <= 2


def test_an_enormous_app_name_is_warned_and_nothing_unbounded_is_echoed(env, core_api):
    create_service(core_api, env, "error-page-v1", {APP: "a" * 250_000})
    wait_until(lambda: env.events("error-page-v1", "InvalidAnnotation"), 20, "the warning")
    status = env.status("error-page-v1")
    assert len(json.dumps(status)) < 3000 and status["phase"] == "Invalid"
    assert all(len(line) < 5000 for line in env.controller_log.read_text().splitlines())
    assert _metric(env, "controller_runtime_reconcile_errors_total") == 0


def test_a_busy_release_cannot_flood_etcd_with_events(env, core_api):
    publish(env, 0)
    for percent in range(1, 101):  # 100 weight changes, each a different CanaryWeightChanged
        body = {"metadata": {"annotations": {PERCENT: str(percent)}}}
        core_api.patch_namespaced_service("error-page-v2", env.namespace, body)
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), 100), 60)
    events = env.kubectl("get", "events", "-n", env.namespace, "-o", "json").stdout
    changed = [e for e in json.loads(events)["items"] if e["reason"] == "CanaryWeightChanged"]
    assert len(changed) <= 11  # 10 Events, then one "(combined from similar events)"
    assert any("combined from similar events" in e["message"] for e in changed) or len(changed) < 10


def create_service(core_api, env, name: str, annotations: dict[str, str]) -> None:
    """A Service created with the API directly (kubectl apply would copy the annotations into
    its last-applied annotation and exceed the 256 KiB limit itself)."""
    body = {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }
    core_api.create_namespaced_service(env.namespace, body)


def _metric(env, name: str) -> float:
    total = 0.0
    for line in env.metrics_text().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total

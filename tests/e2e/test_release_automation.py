"""Automated releases end to end: real Prometheus scraping the emulator's data plane, real
apiserver, controller process, steady traffic. Step intervals are a few seconds.

The promotion and the rollback also run against APISIX, whose emulator then labels its
metrics as real APISIX does (`node` = the Service's ClusterIP, read from the apiserver), so
they are judged with `canaryctl run --gateway apisix`'s default queries."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.traffic import LoadGenerator
from canaryctl.testing.apisix.metrics import METRICS_PATH
from canaryctl.testing.localkube import wait_until

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
STEPS = "api7.cloud/canary-steps"
INTERVAL = "api7.cloud/canary-step-interval"
ACTION = "api7.cloud/canary-action"


BOTH_GATEWAYS = pytest.mark.parametrize("env", ["api7", "apisix"], indirect=True)


@pytest.fixture
def env(localkube, namespace, prometheus_server_factory, request):
    prometheus_server_factory(
        []
    )  # skips (or fails under CANARYCTL_REQUIRE_PROMETHEUS=1) without prometheus
    with DemoEnvironment(
        versions=("v1", "v2"),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        with_prometheus=True,
        gateway=getattr(request, "param", "api7"),
    ) as environment:
        environment.apply_service("error-page-v1", {APP: "error-page"})
        environment.wait_for_split((f"{namespace}/error-page-v1", None, 0))
        yield environment


def release(
    env, service: str = "error-page-v2", steps: str = "20,50", interval: str = "4s", **settings: str
):
    annotations = {
        APP: "error-page",
        CANARY: "true",
        STEPS: steps,
        INTERVAL: interval,
        "api7.cloud/canary-min-requests": "10",
    }
    annotations.update(
        {f"api7.cloud/canary-{key.replace('_', '-')}": value for key, value in settings.items()}
    )
    env.apply_service(service, annotations)


def progress(env, service: str = "error-page-v2") -> dict:
    return (env.status(service) or {}).get("release") or {}


def weights_seen(env, until, timeout: float, service: str = "error-page-v2") -> list[int]:
    """Poll the release state until `until(state)`; return the distinct weights it went through."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        state = progress(env, service)
        if state and (not seen or seen[-1] != state["weight"]):
            seen.append(state["weight"])
        if state and until(state):
            return seen
        assert time.monotonic() < deadline, f"timed out; release state {state}, weights {seen}"
        time.sleep(0.2)


def node_labels(env) -> set[str]:
    """The `node` values of the gateway's request metrics."""
    text = requests.get(env.emulator.dataplane_url + METRICS_PATH, timeout=5).text
    return {
        sample.labels["node"]
        for family in text_string_to_metric_families(text)
        if family.name == "apisix_http_status"
        for sample in family.samples
    }


def cluster_ip(env, service: str) -> str:
    return env.kubectl(
        "get", "service", service, "-n", env.namespace, "-o", "jsonpath={.spec.clusterIP}"
    ).stdout


@BOTH_GATEWAYS
def test_a_healthy_canary_is_promoted_through_every_step(env):
    with LoadGenerator(env.emulator.dataplane_url, rate=60):
        release(env)
        seen = weights_seen(env, lambda s: s["phase"] == "Succeeded", 90)
    assert seen == [20, 50, 100]
    if env.kit.name == "apisix":  # judged on real APISIX's labels: the Services' ClusterIPs
        assert {cluster_ip(env, "error-page-v1"), cluster_ip(env, "error-page-v2")} <= node_labels(
            env
        )
    assert env.split()[2] == 100
    advanced = env.events("error-page-v2", "StepAdvanced")
    assert advanced and any("analysis passed" in e["message"] for e in advanced)
    assert env.events("error-page-v2", "Succeeded")
    # promotion then follows when the stable leaves (docs/design.md)
    env.kubectl("delete", "service", "error-page-v1", "-n", env.namespace)
    env.wait_for_split((f"{env.namespace}/error-page-v2", None, 0))


@BOTH_GATEWAYS
def test_b_a_failing_canary_is_rolled_back_with_value_and_threshold(env):
    env.backends["v2"].fail_rate = 0.3
    with LoadGenerator(env.emulator.dataplane_url, rate=60):
        release(env, failure_limit="1")
        wait_until(lambda: progress(env).get("phase") == "RolledBack", 90, "the rollback")
    assert progress(env)["weight"] == 0 and env.split()[2] == 0
    failed = env.events("error-page-v2", "AnalysisFailed")
    assert failed, "an AnalysisFailed event"
    message = failed[0]["message"]
    assert "error rate" in message and "%" in message and "1" in message, message
    assert env.events("error-page-v2", "RolledBack")
    assert progress(env)["lastCheck"]["result"] == "fail"


def test_c_prometheus_outage_holds_the_weight_and_the_release_continues_after(env):
    with LoadGenerator(env.emulator.dataplane_url, rate=60):
        release(env, steps="20,50", interval="4s", error_limit="50")
        wait_until(lambda: progress(env).get("weight") == 20, 30, "the first step")
        env.prometheus.stop()
        wait_until(
            lambda: (progress(env).get("lastCheck") or {}).get("result") == "error",
            30,
            "an error check",
        )
        state = progress(env)
        assert state["phase"] == "Progressing" and state["weight"] == 20  # held, not rolled back
        assert env.events("error-page-v2", "AnalysisError")
        env.prometheus.start()
        seen = weights_seen(env, lambda s: s["phase"] == "Succeeded", 120)
    assert seen[-1] == 100 and 0 not in seen


def test_d_no_traffic_is_no_data_then_a_clear_pause(env):
    release(env, nodata_limit="2")
    wait_until(lambda: progress(env).get("phase") == "Paused", 60, "the pause")
    state = progress(env)
    assert state["weight"] == 20 and state["counts"]["noData"] == 2
    assert (
        "no-data" in state["reason"]
        or "no data" in state["reason"].lower()
        or "requests" in state["reason"]
    )
    assert env.events("error-page-v2", "AnalysisNoData") and env.events("error-page-v2", "Paused")
    assert env.split()[2] == 20


def test_e_controller_killed_mid_step_resumes_the_same_step_on_time(env):
    with LoadGenerator(env.emulator.dataplane_url, rate=60):
        release(env, steps="20,50", interval="8s")
        wait_until(lambda: progress(env).get("weight") == 20, 30, "the first step")
        started = progress(env)["stepStartedAt"]
        env.kill_controller()
        env.start_controller()
        state = progress(env)
        assert (
            state["weight"] == 20 and state["stepStartedAt"] == started
        )  # same step, not restarted
        wait_until(lambda: progress(env).get("weight") == 50, 40, "the second step")
        advanced_at = progress(env)["stepStartedAt"]
    from datetime import datetime

    elapsed = (
        datetime.fromisoformat(advanced_at.replace("Z", "+00:00"))
        - datetime.fromisoformat(started.replace("Z", "+00:00"))
    ).total_seconds()
    assert 8 <= elapsed <= 20, elapsed  # not shortened, and not restarted from scratch by the kill


def test_f_manual_pause_resume_promote_abort(env):
    with LoadGenerator(env.emulator.dataplane_url, rate=60):
        release(env, steps="20,50", interval="4s")
        wait_until(lambda: progress(env).get("weight") == 20, 30, "the first step")
        env.annotate("error-page-v2", f"{ACTION}=pause@1")
        wait_until(lambda: progress(env).get("phase") == "Paused", 15, "paused")
        assert progress(env)["weight"] == 20
        env.annotate("error-page-v2", f"{ACTION}=resume@2")
        wait_until(lambda: progress(env).get("phase") == "Progressing", 15, "resumed")
        env.annotate("error-page-v2", f"{ACTION}=promote@3")
        wait_until(lambda: progress(env).get("phase") == "Succeeded", 15, "promoted")
        env.wait_for_split(
            (f"{env.namespace}/error-page-v1", f"{env.namespace}/error-page-v2", 100)
        )
        env.annotate("error-page-v2", f"{ACTION}=abort@4")
        wait_until(lambda: progress(env).get("phase") == "Aborted", 15, "aborted")
        env.wait_for_split((f"{env.namespace}/error-page-v1", f"{env.namespace}/error-page-v2", 0))
        # a hand-set weight pauses the release there
        env.annotate("error-page-v2", f"{ACTION}=retry@5")
        wait_until(lambda: progress(env).get("phase") == "Progressing", 15, "retried")
        env.annotate("error-page-v2", "api7.cloud/published-service-canary-percentage=35")
        wait_until(
            lambda: progress(env).get("phase") == "Paused" and progress(env)["weight"] == 35,
            15,
            "hand-set",
        )
        env.wait_for_split((f"{env.namespace}/error-page-v1", f"{env.namespace}/error-page-v2", 35))


# the same automation through the Gateway API backend -------------------------------------------
# Traefik routes the load by the HTTPRoute's weights and Prometheus scrapes its service series,
# which the kit's `--query-*` templates select by route and Service (where Traefik cannot run,
# the route-following stand-in and the backends' own metrics take its place).


@pytest.fixture
def route_env(localkube, gateway_api, namespace, prometheus_server_factory):
    prometheus_server_factory([])  # skip (or fail under CANARYCTL_REQUIRE_PROMETHEUS=1)
    with DemoEnvironment(
        versions=("v1", "v2"),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        with_prometheus=True,
        gateway="gateway-api",
    ) as environment:
        environment.apply_service("error-page-v1", {APP: "error-page"})
        environment.wait_for_split((f"{namespace}/error-page-v1", None, 0))
        yield environment
    localkube.kubectl("delete", "httproutes", "--all", "-n", namespace, "--wait=false")


def route_weights_seen(env, until, timeout: float) -> list[int]:
    """The distinct canary weights the HTTPRoute held (as the data plane follows it), polled
    until `until()`."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        weight = env.split()[2]
        if not seen or seen[-1] != weight:
            seen.append(weight)
        if until():
            return seen
        assert time.monotonic() < deadline, f"timed out; route weights {seen}"
        time.sleep(0.05)


def test_gateway_api_routes_weights_step_up_for_a_healthy_canary(route_env):
    env = route_env
    with LoadGenerator(env.kit.dataplane_url, rate=60) as load:
        release(env)
        seen = route_weights_seen(env, lambda: progress(env).get("phase") == "Succeeded", 90)
        env.wait_for_split(
            (f"{env.namespace}/error-page-v1", f"{env.namespace}/error-page-v2", 100)
        )
    assert [w for w in seen if w] in ([20, 50, 100], [20, 50]), seen  # 100: the write just landed
    assert load.counts().get("v2 200", 0) > 0 and not any("500" in a for a in load.counts())
    check = progress(env)["lastCheck"]
    assert check["result"] == "pass" and "error rate" in check["message"]


def test_gateway_api_routes_weight_falls_to_0_for_a_failing_canary(route_env):
    env = route_env
    env.backends["v2"].fail_rate = 0.3
    with LoadGenerator(env.kit.dataplane_url, rate=60):
        release(env, failure_limit="1")
        seen = route_weights_seen(env, lambda: progress(env).get("phase") == "RolledBack", 90)
    env.wait_for_split((f"{env.namespace}/error-page-v1", f"{env.namespace}/error-page-v2", 0))
    assert 20 in seen and 100 not in seen, seen  # stepped up to 20, then back to 0
    failed = env.events("error-page-v2", "AnalysisFailed")
    assert failed and "error rate" in failed[0]["message"]

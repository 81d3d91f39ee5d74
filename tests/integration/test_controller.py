"""The controller process on a real apiserver and API7 emulator: restarts, outages, bad input."""

from __future__ import annotations

import json

import pytest

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.localkube import wait_until

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
STATUS = "api7.cloud/canary-status"


@pytest.fixture
def env(localkube, namespace):
    with DemoEnvironment(
        versions=("v1", "v2"),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        controller_args=["--resync-period=3"],
    ) as environment:
        yield environment


def version(env, name: str) -> str:
    return f"{env.namespace}/{name}"


def publish_canary(env, percent: int) -> None:
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.apply_service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: str(percent)})
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), percent))


def test_restart_mid_canary_writes_nothing_and_keeps_the_canary_running(env):
    publish_canary(env, 30)
    wait_until(lambda: (env.status("error-page-v2") or {}).get("appliedWeight") == 30, 15, "status")
    assert env.stop_controller() == 0
    env.emulator.clear_request_log()
    env.start_controller()
    # a full resync cycle passes (3 s) and the split is untouched
    wait_until(lambda: "canaryctl_gateway_requests_total" in env.metrics_text(), 10, "metrics")
    before = len(env.emulator.request_log())
    wait_until(lambda: len(env.emulator.request_log()) > before, 15, "a gateway resync read")
    assert env.gateway_writes() == []
    assert env.split() == (version(env, "error-page-v1"), version(env, "error-page-v2"), 30)
    assert env.send(100)["v2"] == 30


def test_service_deleted_while_controller_down_is_cleaned_up_at_start(env):
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.wait_for_split((version(env, "error-page-v1"), None, 0))
    env.kill_controller()
    env.kubectl("delete", "service", "error-page-v1", "-n", env.namespace)
    env.start_controller()
    wait_until(lambda: env.emulator.app_by_name("error-page") is None, 20, "cleanup of the app")


def test_promotion_that_happened_while_down_is_applied_at_start(env):
    publish_canary(env, 100)
    env.kill_controller()
    env.kubectl("delete", "service", "error-page-v1", "-n", env.namespace)
    env.start_controller()
    env.wait_for_split((version(env, "error-page-v2"), None, 0))
    assert env.send(20)["v2"] == 20


def test_compaction_while_running_loses_no_update(env):
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.apply_service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: "10"})
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), 10))
    env.annotate("error-page-v2", f"{PERCENT}=20")
    env.kube.compact()  # etcd compacted + apiserver restarted: the watch must relist on 410
    env.annotate("error-page-v2", f"{PERCENT}=40")
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), 40))


def test_gateway_storm_converges_once_it_passes(env):
    env.emulator.inject_fault(kind="status", status=503, method="*", path="*")
    env.emulator.inject_fault(
        kind="retry_after", status=429, method="POST", path="*", retry_after=1
    )
    env.apply_service("error-page-v1", {APP: "error-page"})
    # the client's own retries give up (transient error), the Service gets a Warning,
    # the queue backs off
    wait_until(lambda: env.events("error-page-v1", "GatewayError"), 60, "a GatewayError warning")
    assert env.emulator.app_by_name("error-page") is None
    assert "503" in env.events("error-page-v1", "GatewayError")[0]["message"]
    env.emulator.clear_faults()
    env.wait_for_split((version(env, "error-page-v1"), None, 0), timeout=60)


BAD_INPUT = [
    ("percent-abc", {APP: "error-page", CANARY: "true", PERCENT: "abc"}, PERCENT, "abc"),
    ("percent-150", {APP: "error-page", CANARY: "true", PERCENT: "150"}, PERCENT, "150"),
    ("percent-neg", {APP: "error-page", CANARY: "true", PERCENT: "-1"}, PERCENT, "-1"),
    ("percent-frac", {APP: "error-page", CANARY: "true", PERCENT: "10.5"}, PERCENT, "10.5"),
    ("flag-yes", {APP: "error-page", CANARY: "yes", PERCENT: "10"}, CANARY, "yes"),
]


def test_every_bad_input_warns_and_changes_nothing(env):
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.wait_for_split((version(env, "error-page-v1"), None, 0))
    for name, bad_annotations, annotation, value in BAD_INPUT:
        env.emulator.clear_request_log()
        env.apply_service(name, bad_annotations)
        wait_until(
            lambda name=name: env.events(name, "InvalidAnnotation"), 15, f"a warning for {name}"
        )
        message = env.events(name, "InvalidAnnotation")[0]["message"]
        assert annotation in message and f'"{value}"' in message and "accepted" in message, message
        assert env.events(name, "InvalidAnnotation")[0]["type"] == "Warning"
        assert env.gateway_writes() == [], name
        assert env.split() == (version(env, "error-page-v1"), None, 0)
        env.kubectl("delete", "service", name, "-n", env.namespace)


# case -> (valid Services set up first, the culprit Service, the annotation its warning names)
STRUCTURAL = {
    "empty-name": ([], ("svc-x", {APP: ""}, None, "ClusterIP"), APP),
    "bad-dns": ([], ("svc-x", {APP: "Not_A_DNS_Name"}, None, "ClusterIP"), APP),
    "two-stables": (
        [("svc-a", {APP: "pair"})],
        ("svc-x", {APP: "pair"}, None, "ClusterIP"),
        "stable",
    ),
    "two-canaries": (
        [("svc-s", {APP: "trio"}), ("svc-a", {APP: "trio", CANARY: "true"})],
        ("svc-x", {APP: "trio", CANARY: "true"}, None, "ClusterIP"),
        "canar",
    ),
    "no-ports": ([], ("svc-x", {APP: "noports"}, [], "Headless"), "port"),
    "external-name": ([], ("svc-x", {APP: "external"}, None, "ExternalName"), "ExternalName"),
    "canary-without-stable": (
        [],
        ("svc-x", {APP: "lonely", CANARY: "true", PERCENT: "10"}, None, "ClusterIP"),
        "stable",
    ),
}
WARNING_REASONS = ("InvalidAnnotation", "Conflict", "StableMissing")


@pytest.mark.parametrize("case", sorted(STRUCTURAL))
def test_structural_bad_input_warns_and_changes_nothing(env, case):
    setup, (name, annotations, ports, type_), mentioned = STRUCTURAL[case]
    for valid_name, valid_annotations in setup:
        env.apply_service(valid_name, valid_annotations)
    for valid_name, _ in setup:  # converged: every member's status reports an applied weight
        wait_until(
            lambda valid_name=valid_name: (
                (env.status(valid_name) or {}).get("appliedWeight") is not None
            ),
            15,
            "the setup",
        )
    apps_before = env.emulator.apps()
    env.emulator.clear_request_log()
    env.apply_service(name, annotations, ports, type_)

    def warnings():
        return [e for reason in WARNING_REASONS for e in env.events(name, reason)]

    wait_until(warnings, 15, f"a warning for {case}")
    assert all(e["type"] == "Warning" for e in warnings())
    assert any(mentioned.lower() in e["message"].lower() for e in warnings()), warnings()
    assert env.gateway_writes() == []
    assert env.emulator.apps() == apps_before


def test_foreign_app_of_the_same_name_is_left_alone(env):
    foreign = env.emulator.create_foreign_app("error-page")
    env.stop_controller()
    env.start_controller()  # the gateway view now knows the foreign app
    env.apply_service("error-page-v1", {APP: "error-page"})
    wait_until(lambda: env.events("error-page-v1", "Conflict"), 15, "a Conflict warning")
    assert env.gateway_writes() == []
    assert env.emulator.app_by_name("error-page") == foreign


def test_foreign_app_created_behind_our_back_is_detected_after_one_refused_create(env):
    foreign = env.emulator.create_foreign_app("error-page")  # the controller's view predates it
    env.apply_service("error-page-v1", {APP: "error-page"})
    wait_until(lambda: env.events("error-page-v1", "Conflict"), 15, "a Conflict warning")
    assert [(w.method, w.status) for w in env.gateway_writes()] == [("POST", 400)]
    assert env.emulator.app_by_name("error-page") == foreign


def test_status_annotation_reports_role_and_weights_without_a_write_loop(env):
    publish_canary(env, 25)
    wait_until(
        lambda: (env.status("error-page-v2") or {}).get("appliedWeight") == 25, 15, "canary status"
    )
    canary, stable = env.status("error-page-v2"), env.status("error-page-v1")
    assert (
        canary["role"] == "canary"
        and canary["desiredWeight"] == 25
        and canary["app"] == "error-page"
    )
    assert stable["role"] == "stable" and stable["appliedWeight"] == 75
    rv = json.loads(
        env.kubectl("get", "service", "error-page-v2", "-n", env.namespace, "-o", "json").stdout
    )
    # several resyncs later nothing rewrote the status (no reconcile loop on our own writes)
    metrics_before = env.metrics_text()
    wait_until(
        lambda: (
            env.metrics_text().count("workqueue_adds_total")
            and _adds(env.metrics_text()) >= _adds(metrics_before) + 2
        ),
        20,
        "two resyncs",
    )
    again = json.loads(
        env.kubectl("get", "service", "error-page-v2", "-n", env.namespace, "-o", "json").stdout
    )
    assert again["metadata"]["resourceVersion"] == rv["metadata"]["resourceVersion"]


def _adds(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("workqueue_adds_total{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _sample(text: str, series: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_use_controller_runtime_names_and_start_at_zero(env):
    text = env.metrics_text()
    labels = '{controller="service",name="service"}'
    for series in [
        'controller_runtime_reconcile_total{controller="service",result="error"}',
        'controller_runtime_reconcile_errors_total{controller="service"}',
        'controller_runtime_reconcile_time_seconds_count{controller="service"}',
        f"workqueue_depth{labels}",
        f"workqueue_adds_total{labels}",
        f"workqueue_retries_total{labels}",
        f"workqueue_queue_duration_seconds_count{labels}",
        f"workqueue_work_duration_seconds_count{labels}",
        f"workqueue_unfinished_work_seconds{labels}",
        f"workqueue_longest_running_processor_seconds{labels}",
        'canaryctl_releases_total{result="rolled_back"}',
        'canaryctl_watch_restarts_total{reason="expired"}',
    ]:
        assert _sample(text, series) is not None, series
    assert (
        _sample(text, 'controller_runtime_reconcile_total{controller="service",result="error"}')
        == 0
    )
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.wait_for_split((version(env, "error-page-v1"), None, 0))
    wait_until(
        lambda: (
            (
                _sample(
                    env.metrics_text(),
                    'controller_runtime_reconcile_total{controller="service",result="success"}',
                )
                or 0
            )
            >= 1
        ),
        10,
        "a successful reconcile to be counted",
    )
    after = env.metrics_text()
    assert (_sample(after, 'canaryctl_gateway_writes_total{backend="api7"}') or 0) >= 2  # app + API
    import requests

    assert requests.get(f"http://127.0.0.1:{env.health_port}/healthz", timeout=5).status_code == 200
    assert requests.get(f"http://127.0.0.1:{env.health_port}/readyz", timeout=5).status_code == 200


def test_dry_run_plans_but_writes_nothing(localkube, namespace):
    with DemoEnvironment(
        versions=("v1",),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        controller_args=["--dry-run"],
    ) as dry:
        dry.apply_service("error-page-v1", {APP: "error-page"})
        wait_until(
            lambda: (
                (
                    _sample(
                        dry.metrics_text(),
                        'controller_runtime_reconcile_total{controller="service",result="success"}',
                    )
                    or 0
                )
                >= 1
            ),
            15,
            "the reconcile to run",
        )
        assert dry.gateway_writes() == []
        assert dry.emulator.apps() == []
        assert dry.status("error-page-v1") is None
        assert "dry-run plan" in dry.controller_log.read_text()


def test_an_app_whose_services_live_outside_the_watched_namespaces_is_not_cleaned_up(env):
    """Controllers scoped to other namespaces may share a gateway: never delete the others' apps."""
    from canaryctl.gateway.api7 import Api7Client, Api7Gateway
    from canaryctl.gateway.model import AppSpec, Upstream

    with Api7Client(env.kit.token, env.emulator.url) as client:
        other = Upstream("elsewhere", "web", "web.elsewhere.svc.cluster.local", 80)
        Api7Gateway(client, env.emulator.cluster_id).apply(None, AppSpec("elsewhere-web", other))
    env.stop_controller()
    env.emulator.clear_request_log()
    env.start_controller()  # scoped to env.namespace; the app is owned but has no members here
    wait_until(
        lambda: (
            sum(r.method == "GET" and r.path.endswith("/apps") for r in env.emulator.request_log())
            >= 2
        ),
        20,
        "the start-up read and a resync read",
    )
    assert env.gateway_writes() == []
    assert env.emulator.app_by_name("elsewhere-web") is not None

"""The controller process against a real apiserver and the API7 emulator: restarts, outages, bad input."""
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
    with DemoEnvironment(versions=("v1", "v2"), kube=localkube, namespace=namespace, progress=lambda _: None,
                         controller_args=["--resync-period=3"]) as environment:
        yield environment


def service(env, name: str, annotations: dict[str, str] | None = None, ports: list[dict] | None = None,
            type_: str = "ClusterIP") -> None:
    spec = {"type": type_, "ports": ports if ports is not None else [{"name": "http", "port": 80}]}
    if type_ == "None":  # headless: the only kind of ClusterIP Service allowed without ports
        spec = {"type": "ClusterIP", "clusterIP": "None", "ports": ports}
    if type_ == "ExternalName":
        spec = {"type": type_, "externalName": "example.com"}
    manifest = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": env.namespace, "annotations": annotations or {}},
                "spec": spec}
    env.kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def annotate(env, name: str, *pairs: str) -> None:
    env.kubectl("annotate", "service", "-n", env.namespace, name, "--overwrite", *pairs)


def version(env, name: str) -> str:
    return f"{env.namespace}/{name}"


def writes(env) -> list:
    return [r for r in env.emulator.request_log() if r.method != "GET"]


def events(env, name: str, reason: str) -> list[dict]:
    out = env.kubectl("get", "events", "-n", env.namespace, "-o", "json",
                      f"--field-selector=involvedObject.name={name},reason={reason}").stdout
    return json.loads(out)["items"]


def status(env, name: str) -> dict:
    out = env.kubectl("get", "service", name, "-n", env.namespace, "-o", "json").stdout
    return json.loads(json.loads(out)["metadata"].get("annotations", {}).get(STATUS, "null") or "null")


def publish_canary(env, percent: int) -> None:
    service(env, "error-page-v1", {APP: "error-page"})
    service(env, "error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: str(percent)})
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), percent))


def test_restart_mid_canary_writes_nothing_and_keeps_the_canary_running(env):
    publish_canary(env, 30)
    wait_until(lambda: (status(env, "error-page-v2") or {}).get("appliedWeight") == 30, 15, "status")
    assert env.stop_controller() == 0
    env.emulator.clear_request_log()
    env.start_controller()
    # a full resync cycle passes (3 s) and the split is untouched
    wait_until(lambda: "canaryctl_gateway_requests_total" in env.metrics_text(), 10, "metrics")
    before = len(env.emulator.request_log())
    wait_until(lambda: len(env.emulator.request_log()) > before, 15, "a gateway resync read")
    assert writes(env) == []
    assert env.split() == (version(env, "error-page-v1"), version(env, "error-page-v2"), 30)
    assert env.send(100)["v2"] == 30


def test_service_deleted_while_controller_down_is_cleaned_up_at_start(env):
    service(env, "error-page-v1", {APP: "error-page"})
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
    service(env, "error-page-v1", {APP: "error-page"})
    service(env, "error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: "10"})
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), 10))
    annotate(env, "error-page-v2", f"{PERCENT}=20")
    env.kube.compact()  # etcd compacted + apiserver restarted: the watch must relist on 410
    annotate(env, "error-page-v2", f"{PERCENT}=40")
    env.wait_for_split((version(env, "error-page-v1"), version(env, "error-page-v2"), 40))


def test_gateway_storm_converges_once_it_passes(env):
    env.emulator.inject_fault(kind="status", status=503, method="*", path="*")
    env.emulator.inject_fault(kind="retry_after", status=429, method="POST", path="*", retry_after=1)
    service(env, "error-page-v1", {APP: "error-page"})
    # the client's own retries give up (transient error), the Service gets a Warning, the queue backs off
    wait_until(lambda: events(env, "error-page-v1", "GatewayError"), 60, "a GatewayError warning")
    assert env.emulator.app_by_name("error-page") is None
    assert "503" in events(env, "error-page-v1", "GatewayError")[0]["message"]
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
    service(env, "error-page-v1", {APP: "error-page"})
    env.wait_for_split((version(env, "error-page-v1"), None, 0))
    for name, annotations, annotation, value in BAD_INPUT:
        env.emulator.clear_request_log()
        service(env, name, annotations)
        wait_until(lambda: events(env, name, "InvalidAnnotation"), 15, f"a warning for {name}")
        message = events(env, name, "InvalidAnnotation")[0]["message"]
        assert annotation in message and f'"{value}"' in message and "accepted" in message, message
        assert events(env, name, "InvalidAnnotation")[0]["type"] == "Warning"
        assert writes(env) == [], name
        assert env.split() == (version(env, "error-page-v1"), None, 0)
        env.kubectl("delete", "service", name, "-n", env.namespace)


# case -> (valid Services set up first, the culprit Service, the annotation its warning names)
STRUCTURAL = {
    "empty-name": ([], ("svc-x", {APP: ""}, None, "ClusterIP"), APP),
    "bad-dns": ([], ("svc-x", {APP: "Not_A_DNS_Name"}, None, "ClusterIP"), APP),
    "two-stables": ([("svc-a", {APP: "pair"})], ("svc-x", {APP: "pair"}, None, "ClusterIP"), "stable"),
    "two-canaries": ([("svc-s", {APP: "trio"}), ("svc-a", {APP: "trio", CANARY: "true"})],
                     ("svc-x", {APP: "trio", CANARY: "true"}, None, "ClusterIP"), "canar"),
    "no-ports": ([], ("svc-x", {APP: "noports"}, [], "None"), "port"),
    "external-name": ([], ("svc-x", {APP: "external"}, None, "ExternalName"), "ExternalName"),
    "canary-without-stable": ([], ("svc-x", {APP: "lonely", CANARY: "true", PERCENT: "10"}, None, "ClusterIP"),
                              "stable"),
}
WARNING_REASONS = ("InvalidAnnotation", "Conflict", "StableMissing")


@pytest.mark.parametrize("case", sorted(STRUCTURAL))
def test_structural_bad_input_warns_and_changes_nothing(env, case):
    setup, (name, annotations, ports, type_), mentioned = STRUCTURAL[case]
    for valid_name, valid_annotations in setup:
        service(env, valid_name, valid_annotations)
    for valid_name, _ in setup:  # converged: every member's status reports an applied weight
        wait_until(lambda: (status(env, valid_name) or {}).get("appliedWeight") is not None, 15, "the setup")
    apps_before = env.emulator.apps()
    env.emulator.clear_request_log()
    service(env, name, annotations, ports=ports, type_=type_)

    def warnings():
        return [e for reason in WARNING_REASONS for e in events(env, name, reason)]
    wait_until(warnings, 15, f"a warning for {case}")
    assert all(e["type"] == "Warning" for e in warnings())
    assert any(mentioned.lower() in e["message"].lower() for e in warnings()), warnings()
    assert writes(env) == []
    assert env.emulator.apps() == apps_before


def test_foreign_app_of_the_same_name_is_left_alone(env):
    foreign = env.emulator.create_foreign_app("error-page")
    env.stop_controller()
    env.start_controller()  # the gateway view now knows the foreign app
    service(env, "error-page-v1", {APP: "error-page"})
    wait_until(lambda: events(env, "error-page-v1", "Conflict"), 15, "a Conflict warning")
    assert writes(env) == []
    assert env.emulator.app_by_name("error-page") == foreign


def test_foreign_app_created_behind_our_back_is_detected_after_one_refused_create(env):
    foreign = env.emulator.create_foreign_app("error-page")  # the controller's view predates it
    service(env, "error-page-v1", {APP: "error-page"})
    wait_until(lambda: events(env, "error-page-v1", "Conflict"), 15, "a Conflict warning")
    assert [(w.method, w.status) for w in writes(env)] == [("POST", 400)]
    assert env.emulator.app_by_name("error-page") == foreign


def test_status_annotation_reports_role_and_weights_without_a_write_loop(env):
    publish_canary(env, 25)
    wait_until(lambda: (status(env, "error-page-v2") or {}).get("appliedWeight") == 25, 15, "canary status")
    canary, stable = status(env, "error-page-v2"), status(env, "error-page-v1")
    assert canary["role"] == "canary" and canary["desiredWeight"] == 25 and canary["app"] == "error-page"
    assert stable["role"] == "stable" and stable["appliedWeight"] == 75
    rv = json.loads(env.kubectl("get", "service", "error-page-v2", "-n", env.namespace, "-o", "json").stdout)
    # several resyncs later nothing rewrote the status (no reconcile loop on our own writes)
    metrics_before = env.metrics_text()
    wait_until(lambda: env.metrics_text().count("workqueue_adds_total") and
               _adds(env.metrics_text()) >= _adds(metrics_before) + 2, 20, "two resyncs")
    again = json.loads(env.kubectl("get", "service", "error-page-v2", "-n", env.namespace, "-o", "json").stdout)
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
    for series in ['controller_runtime_reconcile_total{controller="service",result="error"}',
                   'controller_runtime_reconcile_errors_total{controller="service"}',
                   'controller_runtime_reconcile_time_seconds_count{controller="service"}',
                   f"workqueue_depth{labels}", f"workqueue_adds_total{labels}", f"workqueue_retries_total{labels}",
                   f"workqueue_queue_duration_seconds_count{labels}", f"workqueue_work_duration_seconds_count{labels}",
                   f"workqueue_unfinished_work_seconds{labels}", f"workqueue_longest_running_processor_seconds{labels}",
                   'canaryctl_releases_total{result="rolled_back"}', 'canaryctl_watch_restarts_total{reason="expired"}']:
        assert _sample(text, series) is not None, series
    assert _sample(text, 'controller_runtime_reconcile_total{controller="service",result="error"}') == 0
    service(env, "error-page-v1", {APP: "error-page"})
    env.wait_for_split((version(env, "error-page-v1"), None, 0))
    wait_until(lambda: (_sample(env.metrics_text(),
                                'controller_runtime_reconcile_total{controller="service",result="success"}') or 0) >= 1,
               10, "a successful reconcile to be counted")
    after = env.metrics_text()
    assert (_sample(after, 'canaryctl_gateway_writes_total{backend="api7"}') or 0) >= 2  # app + API
    import requests
    assert requests.get(f"http://127.0.0.1:{env.health_port}/healthz", timeout=5).status_code == 200
    assert requests.get(f"http://127.0.0.1:{env.health_port}/readyz", timeout=5).status_code == 200


def test_dry_run_plans_but_writes_nothing(localkube, namespace):
    with DemoEnvironment(versions=("v1",), kube=localkube, namespace=namespace, progress=lambda _: None,
                         controller_args=["--dry-run"]) as dry:
        service(dry, "error-page-v1", {APP: "error-page"})
        wait_until(lambda: (_sample(dry.metrics_text(),
                                    'controller_runtime_reconcile_total{controller="service",result="success"}')
                            or 0) >= 1, 15, "the reconcile to run")
        assert writes(dry) == []
        assert dry.emulator.apps() == []
        assert status(dry, "error-page-v1") is None
        assert "dry-run plan" in dry.controller_log.read_text()

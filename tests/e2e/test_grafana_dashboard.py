"""The Grafana dashboard's every query, run against a real Prometheus that scrapes a running
controller and the gateway's data plane during an automated release (`demo --auto`'s set-up);
and release notifications from that controller process to a webhook receiver.

A query that Prometheus refuses, or that returns no series, fails the test: a dashboard
panel saying "No data" for a running release is a bug. Template variables are resolved as
Grafana would, to the test's namespace and application; `$__rate_interval` to 20s (Grafana's
floor is four scrape intervals; Prometheus scrapes every second here).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.traffic import LoadGenerator
from canaryctl.testing.processes import wait_until
from canaryctl.testing.webhook import WebhookReceiver

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "manifests" / "grafana" / "canaryctl.json"
APP_ANNOTATION = "api7.cloud/published-service"
APP = "error-page"
SECRET_PATH = "/hooks/very-secret-token"


def canary_annotations(interval: str) -> dict[str, str]:
    return {
        APP_ANNOTATION: APP,
        "api7.cloud/published-canary-service": "true",
        "api7.cloud/canary-steps": "10,50",
        "api7.cloud/canary-step-interval": interval,
        "api7.cloud/canary-min-requests": "10",
    }


@pytest.fixture
def world(localkube, namespace, prometheus_server_factory, tmp_path):
    """(environment, webhook receiver): Prometheus scrapes the gateway and the controller, whose
    `default` notification channel is the receiver (URL in a file, as from a Secret)."""
    prometheus_server_factory([])  # skips (or fails under CANARYCTL_REQUIRE_PROMETHEUS=1)
    with WebhookReceiver(path=SECRET_PATH) as hook:
        url_file = tmp_path / "notify-url"
        url_file.write_text(hook.url + "\n")
        with DemoEnvironment(
            versions=("v1", "v2"),
            kube=localkube,
            namespace=namespace,
            progress=lambda _: None,
            with_prometheus=True,
            scrape_controller=True,
            controller_args=[f"--notify-url-file={url_file}"],
        ) as env:
            env.apply_service("error-page-v1", {APP_ANNOTATION: APP})
            env.wait_for_split((f"{namespace}/error-page-v1", None, 0))
            yield env, hook


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", ())
    ]


def query_of(title: str) -> str:
    return next(expr for panel, expr in dashboard_queries() if panel == title)


def resolve(expr: str, namespace: str) -> str:
    values = {"namespace": namespace, "app": APP, "__rate_interval": "20s"}
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)


def query_range(prometheus_url: str, expr: str) -> dict:
    end = time.time()
    params = {"query": expr, "start": end - 60, "end": end, "step": 5}
    return requests.get(f"{prometheus_url}/api/v1/query_range", params=params, timeout=10).json()


def has_series(prometheus_url: str, expr: str) -> bool:
    answer = requests.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
    return bool(answer.json()["data"]["result"])


def test_every_dashboard_query_returns_data_during_a_release(world):
    env, _ = world
    url, ns = env.prometheus.url, env.namespace
    env.prometheus.wait_scraped()
    env.emulator.inject_fault(method="POST", path="*/canary_releases", status=503, times=1)
    with LoadGenerator(env.kit.dataplane_url, rate=50):
        env.apply_service("error-page-v2", canary_annotations("5s"))
        for what, expr in [
            ("a check's value", f'canaryctl_analysis_value{{namespace="{ns}",app="{APP}"}}'),
            (
                "traffic on both sides",
                f"count({resolve(query_of('Requests per second'), ns)} > 0) == 2",
            ),
            ("a gateway error", 'canaryctl_gateway_requests_total{code="503"}'),
        ]:
            wait_until(lambda e=expr: has_series(url, e), 60, f"Prometheus to have {what}")
        problems = []
        for title, expr in dashboard_queries():
            answer = query_range(url, resolve(expr, ns))
            if answer.get("status") != "success":
                problems.append(f"{title}: {answer.get('error')} in {expr}")
            elif not answer["data"]["result"]:
                problems.append(f"{title}: no data from {expr}")
    assert not problems, "\n".join(problems)
    assert len(dashboard_queries()) >= 20


def test_template_variables_offer_the_test_application(world):
    env, _ = world
    env.prometheus.wait_scraped()
    variables = json.loads(DASHBOARD.read_text())["templating"]["list"]
    queries = {v["name"]: v["query"]["query"] for v in variables if v["type"] == "query"}
    for name, query in queries.items():
        metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", query).groups()
        match = resolve(metric, env.namespace)
        wait_until(
            lambda m=match, n=label, want=name: _offers(env, m, n, want),
            30,
            f"variable {name} to offer the test's value",
        )


def _offers(env: DemoEnvironment, match: str, label: str, variable: str) -> bool:
    answer = requests.get(
        f"{env.prometheus.url}/api/v1/label/{label}/values", params={"match[]": match}, timeout=10
    ).json()
    wanted = env.namespace if variable == "namespace" else APP
    return wanted in answer["data"]


def test_a_running_controller_notifies_release_moments_once(world):
    env, hook = world
    env.apply_service("error-page-v2", canary_annotations("1h"))
    wait_until(lambda: len(hook.received) >= 1, 30, "the Started notification")
    [started] = hook.bodies()
    assert started["event"] == "Started" and started["release"]["weight"] == 10
    assert started["namespace"] == env.namespace and started["app"] == APP
    assert hook.received[0].headers["Idempotency-Key"] == started["idempotencyKey"]
    env.stop_controller()
    env.start_controller()  # re-decides the same persisted state
    wait_until(lambda: _reconciled(env), 30, "the restarted controller to reconcile the app")
    assert _notifications_submitted(env) == 0 and len(hook.received) == 1
    assert "very-secret-token" not in env.controller_log.read_text()


def _metric(env: DemoEnvironment, name: str) -> float:
    pattern = re.compile(rf"^{name}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(env.metrics_text()))


def _reconciled(env: DemoEnvironment) -> bool:
    return _metric(env, "controller_runtime_reconcile_total") > 0


def _notifications_submitted(env: DemoEnvironment) -> float:
    return _metric(env, "canaryctl_notifications_total")

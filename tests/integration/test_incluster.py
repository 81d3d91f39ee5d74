"""In-cluster mode for real: `canaryctl run` as the shipped ServiceAccount, with the shipped RBAC.

The test does what the kubelet does for a pod: applies `manifests/`, mints a token for the
`canaryctl` ServiceAccount (TokenRequest), lays out token, CA and namespace as the
ServiceAccount mount, and points KUBERNETES_SERVICE_HOST/PORT at the local control plane.
The controller gets no kubeconfig (no flag, no KUBECONFIG, an empty HOME) and the
Deployment's own arguments (`--metrics-secure` among them), and the seed's walk-through
must still converge — every list, watch, status patch and Event going through RBAC —
without a single refusal and without a token ever reaching the log; `/metrics` answers
over HTTPS only to a ServiceAccount bound to `canaryctl-metrics-reader`. The Deployment runs
`--leader-elect`, so the controller first takes the Lease in its own namespace (found from
the ServiceAccount mount), watches it as the Role allows, and hands it back on SIGTERM.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.walkthrough import NAMESPACE, SEED_STAGES, Stage, run_stage
from canaryctl.kube import SERVICEACCOUNT_DIR_ENV, load_api_client

pytestmark = pytest.mark.localkube

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
SYSTEM_NAMESPACE = "canaryctl-system"
STATUS_JSONPATH = r"jsonpath={.metadata.annotations.api7\.cloud/canary-status}"


def seed_stages_in(namespace: str) -> list[Stage]:
    """The seed's stages verbatim but for the namespace: the seed's own may already be in use
    (or terminating, forever: the local control plane runs no namespace controller)."""

    def move(value: str | int | None) -> str | int | None:
        return value.replace(NAMESPACE, namespace) if isinstance(value, str) else value

    return [
        dataclasses.replace(
            stage,
            commands=[move(c) for c in stage.commands],
            split=tuple(move(v) for v in stage.split),
        )
        for stage in SEED_STAGES
    ]


def deployment_args() -> list[str]:
    """The controller container's arguments after `run`, as manifests/deployment.yaml has them."""
    deployment = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "run"
    return container["args"][1:]


@pytest.fixture
def metrics_reader_token(localkube, namespace) -> Iterator[str]:
    """A token of a ServiceAccount bound to canaryctl-metrics-reader, as Prometheus' would be."""
    localkube.kubectl("create", "serviceaccount", "prometheus", "-n", namespace)
    binding = f"{namespace}-canaryctl-metrics"
    localkube.kubectl(
        "create",
        "clusterrolebinding",
        binding,
        "--clusterrole=canaryctl-metrics-reader",
        f"--serviceaccount={namespace}:prometheus",
    )
    yield localkube.service_account_token(namespace, "prometheus")
    localkube.kubectl("delete", "clusterrolebinding", binding, check=False)


@pytest.fixture
def pod_token(localkube) -> str:
    localkube.kubectl("apply", "-k", str(MANIFESTS))
    return localkube.service_account_token(SYSTEM_NAMESPACE, "canaryctl")


@pytest.fixture
def serviceaccount_dir(localkube, pod_token, tmp_path) -> Path:
    """What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount."""
    return localkube.serviceaccount_mount(
        tmp_path / "serviceaccount", SYSTEM_NAMESPACE, "canaryctl", pod_token
    )


@pytest.fixture
def demo(localkube, serviceaccount_dir, tmp_path, monkeypatch) -> Iterator[DemoEnvironment]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.kube/config to fall back to
    monkeypatch.delenv("KUBECONFIG", raising=False)
    with DemoEnvironment(
        kube=localkube,
        namespace=f"incluster-{uuid.uuid4().hex[:8]}",
        progress=lambda _: None,
        serviceaccount_dir=serviceaccount_dir,
        controller_args=deployment_args(),
    ) as env:
        yield env


def test_seed_walkthrough_converges_as_the_shipped_serviceaccount(
    demo, pod_token, metrics_reader_token, tmp_path
):
    for stage in seed_stages_in(demo.namespace):
        result = run_stage(demo, stage, say=lambda _: None)
        assert result.matched, (stage.title, result.answers)
    scrapes = scrape_secure_metrics(demo, tmp_path, reader=metrics_reader_token, pod=pod_token)

    assert demo.stop_controller() == 0
    log = demo.controller_log.read_text()
    assert "controller started" in log
    assert "Forbidden" not in log, log[-3000:]  # an RBAC refusal, however it was logged
    assert "HTTP 403" not in log and "cannot watch lease" not in log, log[-3000:]
    assert "became leader of lease canaryctl-system/canaryctl" in log
    assert pod_token not in log and demo.kit.token not in log and metrics_reader_token not in log

    reader, controller_itself, anonymous = scrapes
    assert reader.status_code == 200
    assert (
        'controller_runtime_reconcile_total{controller="service",result="success"}' in reader.text
    )
    assert (controller_itself.status_code, anonymous.status_code) == (403, 401)

    # status patches and Events went through RBAC too
    status = demo.kubectl(
        "get", "service", "error-page-v2", "-n", demo.namespace, "-o", STATUS_JSONPATH
    ).stdout
    assert json.loads(status)["app"] == "error-page"
    events = demo.kubectl(
        "get", "events", "-n", demo.namespace, "-o", "jsonpath={.items[*].reason}"
    ).stdout.split()
    assert {"Published", "Promoted"} <= set(events), events

    # handed back on SIGTERM: the next replica need not wait for it to expire
    lease = demo.kubectl("get", "lease", "canaryctl", "-n", SYSTEM_NAMESPACE, "-o", "json").stdout
    assert not json.loads(lease)["spec"].get("holderIdentity")


def scrape_secure_metrics(demo, tmp_path: Path, reader: str, pod: str) -> list[requests.Response]:
    """GET /metrics over HTTPS, pinning the certificate the controller made, as the reader,
    as the controller's own ServiceAccount, and without a token."""
    pinned = tmp_path / "served.pem"
    pinned.write_text(ssl.get_server_certificate(("127.0.0.1", demo.metrics_port)))
    url = f"https://127.0.0.1:{demo.metrics_port}/metrics"
    return [
        requests.get(url, headers=headers, verify=pinned, timeout=10)
        for headers in (
            {"Authorization": f"Bearer {reader}"},
            {"Authorization": f"Bearer {pod}"},
            {},
        )
    ]


def test_incluster_client_reads_services_cluster_wide_and_no_secrets(
    localkube, serviceaccount_dir, monkeypatch
):
    """What the Deployment does and the walk-through above (one namespace, to stay apart from other
    tests) does not: list and watch Services in every namespace, from the pod's files alone."""
    monkeypatch.setenv(SERVICEACCOUNT_DIR_ENV, str(serviceaccount_dir))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(localkube.apiserver_port))
    with load_api_client(None) as api:
        core = client.CoreV1Api(api)
        listed = core.list_service_for_all_namespaces(limit=1)
        watch = core.list_service_for_all_namespaces(
            watch=True,
            timeout_seconds=1,
            _preload_content=False,
            resource_version=listed.metadata.resource_version,
        )
        assert watch.status == 200
        watch.release_conn()
        with pytest.raises(client.ApiException) as refused:
            core.list_namespaced_secret(SYSTEM_NAMESPACE)
    assert refused.value.status == 403

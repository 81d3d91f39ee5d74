"""The local control plane is the real thing: watches, 410 after compaction, RBAC, restarts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import requests
from kubernetes import client

from canaryctl.testing.localkube import KUBERNETES_VERSION, wait_until


def _service(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}


def _watch_lines(api: client.CoreV1Api, namespace: str, resource_version: str, seconds: int = 5):
    response = api.list_namespaced_service(
        namespace,
        watch=True,
        resource_version=resource_version,
        timeout_seconds=seconds,
        _preload_content=False,
        _request_timeout=(5, seconds + 10),
    )
    try:
        for line in response:
            yield json.loads(line)
    finally:
        response.release_conn()


def test_watch_sees_added_modified_deleted_in_order(kube_api, namespace):
    api = client.CoreV1Api(kube_api)
    start = api.list_namespaced_service(namespace).metadata.resource_version
    api.create_namespaced_service(namespace, _service("web"))
    api.patch_namespaced_service("web", namespace, {"metadata": {"annotations": {"a": "1"}}})
    api.delete_namespaced_service("web", namespace)

    events = []
    for event in _watch_lines(api, namespace, start):
        events.append(event)
        if event["type"] == "DELETED":
            break
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert events[1]["object"]["metadata"]["annotations"] == {"a": "1"}


def test_watch_from_compacted_version_gets_410(localkube, namespace):
    api = client.CoreV1Api(localkube.api_client())
    old = api.create_namespaced_service(namespace, _service("old")).metadata.resource_version
    for i in range(3):
        api.patch_namespaced_service("old", namespace, {"metadata": {"annotations": {"n": str(i)}}})
    revision = localkube.compact()
    assert revision > int(old)

    api = client.CoreV1Api(localkube.api_client())  # the apiserver restarted: new connections
    first = next(_watch_lines(api, namespace, old))
    assert first["type"] == "ERROR"
    assert first["object"]["code"] == 410 and first["object"]["reason"] == "Expired"


def test_service_account_token_needs_rbac(localkube, kube_api, namespace):
    localkube.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = localkube.service_account_token(namespace, "reader")
    url = f"{localkube.server}/api/v1/namespaces/{namespace}/services"
    ca = str(localkube.pki / "ca.crt")
    headers = {"Authorization": f"Bearer {token}"}

    assert requests.get(url, headers=headers, verify=ca, timeout=10).status_code == 403
    localkube.kubectl(
        "create", "role", "svc-reader", "--verb=list", "--resource=services", "-n", namespace
    )
    localkube.kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=svc-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    wait_until(
        lambda: requests.get(url, headers=headers, verify=ca, timeout=10).status_code == 200,
        timeout=10,
        what="the RoleBinding to take effect",
    )
    # the binding grants list on services only
    secrets = f"{localkube.server}/api/v1/namespaces/{namespace}/secrets"
    assert requests.get(secrets, headers=headers, verify=ca, timeout=10).status_code == 403


def test_watch_survives_apiserver_restart_by_rewatching(localkube, namespace):
    api = client.CoreV1Api(localkube.api_client())
    last = api.create_namespaced_service(namespace, _service("survivor")).metadata.resource_version
    stream = _watch_lines(api, namespace, last, seconds=120)
    outcome = {}

    def consume():
        # A cut connection surfaces as one of several urllib3/http errors; only the end matters.
        try:
            outcome["events"] = list(stream)
        except Exception as error:  # noqa: BLE001 -- whichever error it is
            outcome["error"] = error

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    localkube.restart_apiserver()
    reader.join(30)
    assert not reader.is_alive(), "the watch stream must end when the apiserver goes away"

    # re-watch: from the last version if the new apiserver still has it, else relist (410)
    api = client.CoreV1Api(localkube.api_client())
    api.patch_namespaced_service(
        "survivor", namespace, {"metadata": {"annotations": {"after": "restart"}}}
    )
    event = next(_watch_lines(api, namespace, last))
    if event["type"] == "ERROR":
        assert event["object"]["code"] == 410
        listed = api.list_namespaced_service(namespace)
        assert listed.items[0].metadata.annotations == {"after": "restart"}
        api.patch_namespaced_service(
            "survivor", namespace, {"metadata": {"annotations": {"again": "1"}}}
        )
        event = next(_watch_lines(api, namespace, listed.metadata.resource_version))
    assert event["type"] == "MODIFIED"
    assert event["object"]["metadata"]["annotations"]["after"] == "restart"
    assert int(event["object"]["metadata"]["resourceVersion"]) > int(last)


def test_cli_serves_a_kubeconfig_and_stops_cleanly_on_ctrl_c(localkube, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "canaryctl", "dev", "localkube", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kubeconfig = tmp_path / "kubeconfig"
    try:
        wait_until(lambda: kubeconfig.exists() or process.poll() is not None, 60, "DIR/kubeconfig")
        kubectl = [str(localkube.kubectl_path), f"--kubeconfig={kubeconfig}"]
        assert (
            subprocess.run(
                [*kubectl, "get", "--raw", "/readyz"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            == "ok"
        )
        version = subprocess.run(
            [*kubectl, "version", "-o", "json"], capture_output=True, text=True, timeout=30
        )
        assert json.loads(version.stdout)["serverVersion"]["gitVersion"] == KUBERNETES_VERSION
        children = _children(process.pid)
        assert len(children) == 2
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    for pid in children:
        wait_until(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 10, f"child {pid} to exit")
    assert not (tmp_path / "state").exists()


def _children(pid: int) -> list[int]:
    result = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
    )
    return [int(p) for p in result.stdout.split()]

"""`manifests/gateways/apisix` (a kustomize component) against the real API server.

Rendered on top of `manifests/`, it must switch the controller to `--gateway=apisix`, take the
Admin API key from the Secret `apisix-admin` (key `key`) as an environment variable — never
through RBAC — and limit egress with a NetworkPolicy that lets the Admin API through. Applied
for real in a namespace of its own (with a name suffix, so the cluster-wide objects of other
tests stay untouched), the Deployment is then run as a kubelet would run it: its stored args,
its env resolved from the stored Secret, the ServiceAccount's token — against the APISIX
emulator standing in for the in-cluster Admin API address.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from canaryctl.gateway.apisix import naming
from canaryctl.kube import SERVICEACCOUNT_DIR_ENV
from canaryctl.testing.apisix import ApisixEmulator
from canaryctl.testing.processes import free_port, wait_until

pytestmark = pytest.mark.localkube

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
COMPONENT = MANIFESTS / "gateways" / "apisix"
ADMIN_KEY = "manifests-admin-key-51d0"


def overlay(directory: Path, **fields: str) -> Path:
    """An overlay in `directory` of the base plus the component (kustomize wants relative paths)."""
    extra = "".join(f"{name}: {value}\n" for name, value in fields.items())
    (directory / "kustomization.yaml").write_text(
        f"resources:\n  - {os.path.relpath(MANIFESTS, directory)}\n"
        f"components:\n  - {os.path.relpath(COMPONENT, directory)}\n{extra}"
    )
    return directory


def render(localkube, directory: Path) -> list[dict]:
    return list(yaml.safe_load_all(localkube.kubectl("kustomize", str(directory)).stdout))


def one(objects: list[dict], kind: str) -> dict:
    [found] = [o for o in objects if o["kind"] == kind]
    return found


def test_the_component_switches_the_gateway_and_reads_the_key_from_the_secret(localkube, tmp_path):
    objects = render(localkube, overlay(tmp_path))
    base = list(yaml.safe_load_all(localkube.kubectl("kustomize", str(MANIFESTS)).stdout))
    pod = one(objects, "Deployment")["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["args"][0] == "run" and container["args"][-1] == "--gateway=apisix"
    assert "--leader-elect" in container["args"]
    assert container["env"] == [  # the pod's identity for leader election, then APISIX
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "APISIX_ADMIN_URL", "value": "http://apisix-admin.apisix.svc.cluster.local:9180"},
        {
            "name": "APISIX_ADMIN_KEY",
            "valueFrom": {"secretKeyRef": {"name": "apisix-admin", "key": "key"}},
        },
    ]
    # RBAC is the base's, untouched: nothing on Secrets
    assert [o for o in objects if o["kind"].startswith("ClusterRole")] == [
        o for o in base if o["kind"].startswith("ClusterRole")
    ]
    policy = one(objects, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Egress"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    admin_rules = [r for r in policy["egress"] if {"protocol": "TCP", "port": 9180} in r["ports"]]
    assert len(admin_rules) == 1 and admin_rules[0]["to"]


@pytest.fixture
def installed(localkube, tmp_path) -> Iterator[str]:
    """The component applied for real into a fresh namespace (suffixed cluster-wide names)."""
    namespace = f"apisix-{uuid.uuid4().hex[:8]}"
    localkube.kubectl("create", "namespace", namespace, "--save-config")
    localkube.kubectl(
        "create", "secret", "generic", "apisix-admin", "-n", namespace,
        f"--from-literal=key={ADMIN_KEY}",
    )  # fmt: skip
    directory = overlay(tmp_path, namespace=namespace, nameSuffix=f"-{namespace}")
    applied = localkube.kubectl("apply", "-k", str(directory), "--validate=strict")
    assert "Warning" not in applied.stderr, applied.stderr
    assert "networkpolicy.networking.k8s.io/canaryctl-egress-" in applied.stdout
    yield namespace
    localkube.kubectl("delete", "-k", str(directory), "--wait=false", check=False)


def kubelet_env(localkube, namespace: str, container: dict) -> dict[str, str]:
    """The container's environment as the kubelet builds it: values, and Secret keys it reads
    with its own credentials (the controller's ServiceAccount never reads Secrets)."""
    env = {}
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
            continue
        field = variable["valueFrom"].get("fieldRef", {}).get("fieldPath")
        if field:  # the pod's own name and namespace
            env[variable["name"]] = namespace if field == "metadata.namespace" else "canaryctl-0"
            continue
        ref = variable["valueFrom"]["secretKeyRef"]
        secret = localkube.kubectl("get", "secret", ref["name"], "-n", namespace, "-o", "json")
        env[variable["name"]] = base64.b64decode(
            json.loads(secret.stdout)["data"][ref["key"]]
        ).decode()
    return env


def test_the_controller_runs_from_the_stored_deployment_and_secret(
    localkube, installed, tmp_path, namespace
):
    account = f"system:serviceaccount:{installed}:canaryctl-{installed}"
    for verb, resource, expected in (
        ("get", "secrets", "no"),
        ("list", "secrets", "no"),
        ("watch", "services", "yes"),
    ):
        answer = localkube.kubectl(
            "auth", "can-i", verb, resource, "-n", installed, f"--as={account}", check=False
        )
        assert answer.stdout.strip() == expected, (verb, resource)
    stored = json.loads(
        localkube.kubectl(
            "get", "deployment", f"canaryctl-{installed}", "-n", installed, "-o", "json"
        ).stdout
    )
    [container] = stored["spec"]["template"]["spec"]["containers"]
    mount = localkube.serviceaccount_mount(
        tmp_path / "serviceaccount", installed, f"canaryctl-{installed}"
    )

    with ApisixEmulator(admin_key=ADMIN_KEY) as emulator:
        env = kubelet_env(localkube, installed, container)
        assert env["APISIX_ADMIN_KEY"] == ADMIN_KEY
        env["APISIX_ADMIN_URL"] = emulator.admin_url  # what the in-cluster name would reach
        health = free_port()
        log = tmp_path / "controller.log"
        command = [
            sys.executable, "-m", "canaryctl", *container["args"],
            f"--metrics-addr=127.0.0.1:{free_port()}", f"--health-addr=127.0.0.1:{health}",
            f"--namespace={namespace}",
        ]  # fmt: skip
        process_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("APISIX_", "API7_"))},
            **env,
            SERVICEACCOUNT_DIR_ENV: str(mount),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(localkube.apiserver_port),
            "HOME": str(tmp_path),
        }
        process_env.pop("KUBECONFIG", None)
        with open(log, "wb") as output:
            controller = subprocess.Popen(
                command, env=process_env, stdout=output, stderr=subprocess.STDOUT
            )
        try:
            wait_until(lambda: _ready(health, controller, log), 60, "the controller to be ready")
            service = {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web-v1", "namespace": namespace,
                             "annotations": {"api7.cloud/published-service": "web"}},
                "spec": {"ports": [{"name": "http", "port": 80}]},
            }  # fmt: skip
            localkube.kubectl("apply", "-f", "-", input=json.dumps(service))
            wait_until(lambda: emulator.route(naming.route_id("web")) is not None, 30, "the route")
        finally:
            controller.send_signal(signal.SIGTERM)
            assert controller.wait(15) == 0
    text = log.read_text()
    assert "Forbidden" not in text and ADMIN_KEY not in text, text[-2000:]


def _ready(port: int, controller: subprocess.Popen, log: Path) -> bool:
    if controller.poll() is not None:
        raise AssertionError(f"controller exited: {log.read_text()[-2000:]}")
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False

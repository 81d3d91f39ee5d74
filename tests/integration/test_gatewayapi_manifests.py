"""`manifests/gateways/gateway-api`: the component adds exactly what the backend calls.

The component's RBAC is applied to the real apiserver (with the Gateway API CRDs installed,
so `kubectl auth can-i` knows the resources) for a ServiceAccount in a namespace of the
test's own, and the ServiceAccount is asked verb by verb; the whole overlay (base +
component) passes a server dry run, and its Deployment runs `--gateway=gateway-api` with the
parent from the ConfigMap and no API7 Cloud credentials.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.localkube

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
COMPONENT = MANIFESTS / "gateways" / "gateway-api"
OWN = ("canaryctl-gateway-api",)  # the component's cluster-scoped objects


@pytest.fixture
def overlay(localkube, gateway_api, tmp_path):
    """Base + component moved into a fresh namespace; yields (directory, namespace)."""
    namespace = f"gwapi-{uuid.uuid4().hex[:8]}"
    localkube.kubectl("create", "namespace", namespace, "--save-config")
    (tmp_path / "kustomization.yaml").write_text(
        f"namespace: {namespace}\n"
        f"resources:\n  - {os.path.relpath(MANIFESTS, tmp_path)}\n"
        f"components:\n  - {os.path.relpath(COMPONENT, tmp_path)}\n"
    )
    yield tmp_path, namespace
    localkube.kubectl("delete", "clusterrole,clusterrolebinding", *OWN, check=False)
    localkube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def render(localkube, directory: Path) -> list[dict]:
    return list(yaml.safe_load_all(localkube.kubectl("kustomize", str(directory)).stdout))


def test_the_overlay_passes_a_server_dry_run_and_runs_the_gateway_api_backend(localkube, overlay):
    directory, namespace = overlay
    result = localkube.kubectl("apply", "-k", str(directory), "--dry-run=server")
    assert "Warning" not in result.stderr, result.stderr
    objects = render(localkube, directory)
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        "run",
        "--log-format=json",
        "--metrics-secure",
        "--leader-elect",
        "--gateway=gateway-api",
    ]
    assert container["env"] == [  # the pod's identity for leader election, no API7 credentials
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {
            "name": "CANARYCTL_GATEWAY_API_PARENT",
            "valueFrom": {"configMapKeyRef": {"name": "canaryctl-gateway-api", "key": "parent"}},
        },
    ]
    [config] = [o for o in objects if o["kind"] == "ConfigMap"]
    assert config["metadata"]["namespace"] == namespace and "/" in config["data"]["parent"]


ALLOWED = [
    ("get", "httproutes.gateway.networking.k8s.io", "-n", "apps"),
    ("list", "httproutes.gateway.networking.k8s.io", "--all-namespaces"),
    ("watch", "httproutes.gateway.networking.k8s.io", "--all-namespaces"),
    ("create", "httproutes.gateway.networking.k8s.io", "-n", "apps"),
    ("patch", "httproutes.gateway.networking.k8s.io", "-n", "apps"),
    ("delete", "httproutes.gateway.networking.k8s.io", "-n", "apps"),
    ("get", "gateways.gateway.networking.k8s.io", "-n", "infra"),
]
DENIED = [
    ("update", "httproutes.gateway.networking.k8s.io", "-n", "apps"),
    ("patch", "httproutes.gateway.networking.k8s.io", "-n", "apps", "--subresource=status"),
    ("deletecollection", "httproutes.gateway.networking.k8s.io", "-n", "apps"),
    ("list", "gateways.gateway.networking.k8s.io", "--all-namespaces"),
    ("patch", "gateways.gateway.networking.k8s.io", "-n", "infra"),
    ("create", "referencegrants.gateway.networking.k8s.io", "-n", "apps"),
    ("get", "gatewayclasses.gateway.networking.k8s.io", "--all-namespaces"),
    ("get", "grpcroutes.gateway.networking.k8s.io", "-n", "apps"),
    ("get", "secrets", "-n", "apps"),
]


def test_the_component_grants_exactly_what_the_backend_calls(localkube, overlay):
    directory, namespace = overlay
    own = [
        o
        for o in render(localkube, directory)
        if o["metadata"]["name"] in OWN and o["kind"].startswith("ClusterRole")
    ]
    assert sorted(o["kind"] for o in own) == ["ClusterRole", "ClusterRoleBinding"]
    localkube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(own))
    user = f"system:serviceaccount:{namespace}:canaryctl"
    for verb, resource, *scope in ALLOWED:
        assert localkube.can_i(user, verb, resource, *scope) == "yes", (verb, resource)
    for verb, resource, *scope in DENIED:
        assert localkube.can_i(user, verb, resource, *scope) == "no", (verb, resource)
    listed = localkube.kubectl("auth", "can-i", "--list", f"--as={user}", "-n", "apps").stdout
    rows = {tuple(line.split()) for line in listed.splitlines()[1:]}
    unbound = localkube.kubectl(
        "auth", "can-i", "--list", f"--as=system:serviceaccount:{namespace}:nobody", "-n", "apps"
    ).stdout
    extra = rows - {tuple(line.split()) for line in unbound.splitlines()[1:]}
    assert extra == {
        (
            "httproutes.gateway.networking.k8s.io",
            "[]",
            "[]",
            "[get",
            "list",
            "watch",
            "create",
            "patch",
            "delete]",
        ),
        ("gateways.gateway.networking.k8s.io", "[]", "[]", "[get]"),
    }

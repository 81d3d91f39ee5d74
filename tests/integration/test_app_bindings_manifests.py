"""`manifests/components/app-bindings`: the component adds reading Namespaces and the flag."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.localkube

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
COMPONENT = MANIFESTS / "components" / "app-bindings"
OWN = ("canaryctl-app-bindings",)


@pytest.fixture
def overlay(localkube, tmp_path):
    namespace = f"bindings-{uuid.uuid4().hex[:8]}"
    localkube.kubectl("create", "namespace", namespace)
    (tmp_path / "kustomization.yaml").write_text(
        f"namespace: {namespace}\n"
        f"resources:\n  - {os.path.relpath(MANIFESTS, tmp_path)}\n"
        f"components:\n  - {os.path.relpath(COMPONENT, tmp_path)}\n"
    )
    yield tmp_path, namespace
    localkube.kubectl("delete", "clusterrole,clusterrolebinding", *OWN, check=False)
    localkube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_component_reads_namespaces_and_turns_bindings_on(localkube, overlay):
    directory, namespace = overlay
    objects = list(yaml.safe_load_all(localkube.kubectl("kustomize", str(directory)).stdout))
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    assert (
        "--require-app-binding" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    )
    rbac = [o for o in objects if o["metadata"]["name"] in OWN]
    localkube.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
    user = f"system:serviceaccount:{namespace}:canaryctl"
    for verb in ("get", "list", "watch"):
        assert localkube.can_i(user, verb, "namespaces", "--all-namespaces") == "yes"
    for verb in ("create", "update", "patch", "delete"):
        assert localkube.can_i(user, verb, "namespaces", "--all-namespaces") == "no"

"""`manifests/` against a real API server: what users apply must be valid and least-privilege.

The kustomization is applied for real to the local control plane (server-side validation,
admission, Pod Security), dry-run again, moved to another namespace by an overlay, and
then the controller's ServiceAccount is asked, verb by verb, what it may do: everything
`canaryctl run` calls is allowed, everything else — Secrets above all — is denied. Leader
election's Lease is allowed in the controller's own namespace only, and only by its name.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import canaryctl

pytestmark = pytest.mark.localkube

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
EXAMPLES = MANIFESTS / "examples"
SYSTEM_NAMESPACE = "canaryctl-system"
CONTROLLER = f"system:serviceaccount:{SYSTEM_NAMESPACE}:canaryctl"
APP_NAMESPACE = "any-app-namespace"  # RBAC is cluster-wide: any namespace will do


def render(localkube, directory: Path) -> list[dict]:
    """`kubectl kustomize DIR` as a list of objects."""
    return list(yaml.safe_load_all(localkube.kubectl("kustomize", str(directory)).stdout))


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def overlay(tmp_path: Path, base: Path, namespace: str) -> Path:
    """A kustomization in tmp_path moving `base` into `namespace` (kustomize wants it relative)."""
    (tmp_path / "kustomization.yaml").write_text(
        f"namespace: {namespace}\nresources:\n  - {os.path.relpath(base, tmp_path)}\n"
    )
    return tmp_path


def dry_run_lines(localkube, directory: Path) -> list[str]:
    result = localkube.kubectl(
        "apply", "-k", str(directory), "--dry-run=server", "--validate=strict"
    )
    assert "Warning" not in result.stderr, result.stderr
    return result.stdout.splitlines()


@pytest.fixture
def declared_namespace(localkube) -> Iterator[str]:
    """A fresh namespace created as `kubectl apply` expects (else apply warns about it)."""
    name = f"manifests-{uuid.uuid4().hex[:8]}"
    localkube.kubectl("create", "namespace", name, "--save-config")
    yield name
    localkube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def installed(localkube) -> subprocess.CompletedProcess:
    """`kubectl apply -k manifests/` for real; idempotent, so other modules may apply it too."""
    return localkube.kubectl("apply", "-k", str(MANIFESTS), "--validate=strict")


# applying -----------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest():
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_apply_creates_every_object_without_warnings(localkube, installed):
    kinds = {f"{o['kind'].lower()}/{o['metadata']['name']}" for o in render(localkube, MANIFESTS)}
    assert kinds == {
        "namespace/canaryctl-system",
        "serviceaccount/canaryctl",
        "clusterrole/canaryctl",
        "clusterrolebinding/canaryctl",
        "clusterrole/canaryctl-metrics-reader",
        "role/canaryctl-leader-election",
        "rolebinding/canaryctl-leader-election",
        "deployment/canaryctl",
        "poddisruptionbudget/canaryctl",
        "service/canaryctl-metrics",
    }
    reported = {
        re.sub(r"\.(rbac\.authorization\.k8s\.io|apps|policy)/", "/", line.split()[0])
        for line in installed.stdout.splitlines()
    }
    assert reported == kinds
    assert "Warning" not in installed.stderr, installed.stderr  # e.g. Pod Security or deprecations


def test_server_dry_run_is_clean(localkube, installed):
    lines = dry_run_lines(localkube, MANIFESTS)
    assert len(lines) == 10 and all(line.endswith("(server dry run)") for line in lines), lines


def test_namespace_is_overridable_by_an_overlay(localkube, declared_namespace, tmp_path):
    namespace = declared_namespace
    directory = overlay(tmp_path, MANIFESTS, namespace)
    objects = render(localkube, directory)
    assert [o["metadata"]["name"] for o in of_kind(objects, "Namespace")] == [namespace]
    namespaced = [o for o in objects if o["kind"] not in ("Namespace", "ClusterRole",
                                                         "ClusterRoleBinding")]  # fmt: skip
    assert len(namespaced) == 6
    assert {o["metadata"]["namespace"] for o in namespaced} == {namespace}
    for binding in of_kind(objects, "ClusterRoleBinding") + of_kind(objects, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "canaryctl", "namespace": namespace}
        ]
    created = [
        line for line in dry_run_lines(localkube, directory) if "created (server dry run)" in line
    ]
    assert sorted(line.split()[0] for line in created) == [
        "deployment.apps/canaryctl",
        "poddisruptionbudget.policy/canaryctl",
        "role.rbac.authorization.k8s.io/canaryctl-leader-election",
        "rolebinding.rbac.authorization.k8s.io/canaryctl-leader-election",
        "service/canaryctl-metrics",
        "serviceaccount/canaryctl",
    ]


def test_examples_pass_server_dry_run_in_a_namespace(localkube, declared_namespace, tmp_path):
    # warn mode: a Deployment whose pods would break the restricted standard makes apply warn
    localkube.kubectl(
        "label", "namespace", declared_namespace, "pod-security.kubernetes.io/warn=restricted"
    )
    lines = dry_run_lines(localkube, overlay(tmp_path, EXAMPLES, declared_namespace))
    assert sorted(line.split()[0] for line in lines if "created (server dry run)" in line) == [
        "deployment.apps/error-page-v1",
        "deployment.apps/error-page-v2",
        "service/error-page-v1",
        "service/error-page-v2",
    ]


# the controller's pod ------------------------------------------------------------------------


def controller_pod(localkube) -> dict:
    """A Pod with the Deployment's template, in the controller's namespace."""
    [deployment] = of_kind(render(localkube, MANIFESTS), "Deployment")
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "spec": template["spec"],
        "metadata": {
            "name": "canaryctl-template-check",
            "namespace": SYSTEM_NAMESPACE,
            "labels": template["metadata"]["labels"],
        },
    }


def create_dry_run(localkube, pod: dict) -> subprocess.CompletedProcess:
    return localkube.kubectl(
        "create",
        "-f",
        "-",
        "--dry-run=server",
        "-o",
        "name",
        input=yaml.safe_dump(pod),
        check=False,
    )


def test_controller_pod_is_admitted_under_restricted_pod_security(localkube, installed):
    pod = controller_pod(localkube)
    assert create_dry_run(localkube, pod).returncode == 0

    # the namespace really enforces it: the pod without its container securityContext is refused
    loose = copy.deepcopy(pod)
    del loose["spec"]["containers"][0]["securityContext"]
    refused = create_dry_run(localkube, loose)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr


def test_deployment_matches_the_controller_contract(localkube):
    objects = render(localkube, MANIFESTS)
    [deployment], [metrics] = of_kind(objects, "Deployment"), of_kind(objects, "Service")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert spec["replicas"] == 2  # a leader and a warm standby
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},  # the new pod is ready first
    }
    assert container["image"] == f"ghcr.io/canaryctl/canaryctl:{canaryctl.__version__}"
    assert container["args"] == ["run", "--log-format=json", "--metrics-secure", "--leader-elect"]
    env = {e["name"]: e["valueFrom"] for e in container["env"]}
    assert env == {
        "API7_CLOUD_TOKEN": {"secretKeyRef": {"name": "api7-cloud", "key": "token"}},
        "API7_CLOUD_ADDR": {"secretKeyRef": {"name": "api7-cloud", "key": "addr",
                                             "optional": True}},
        "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
        "POD_NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    }  # fmt: skip
    [spread] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert spread["podAffinityTerm"] == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]},
    }
    [budget] = of_kind(objects, "PodDisruptionBudget")
    assert budget["spec"] == {"minAvailable": 1, "selector": deployment["spec"]["selector"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert (container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]) == (
        {"path": "/healthz", "port": "health"},
        {"path": "/readyz", "port": "health"},
    )
    assert pod["serviceAccountName"] == "canaryctl" and pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["runAsGroup"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert metrics["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
        "prometheus.io/scheme": "https",  # --metrics-secure
    }
    assert (
        metrics["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert metrics["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics"}]


# RBAC ----------------------------------------------------------------------------------------

IN_APP_NAMESPACE = ("-n", APP_NAMESPACE)
EVERYWHERE = ("--all-namespaces",)
IN_OWN_NAMESPACE = ("-n", SYSTEM_NAMESPACE)
NOT_NAMESPACED: tuple[str, ...] = ()  # non-resource URLs

ALLOWED = [
    ("get", "services", IN_APP_NAMESPACE),
    ("list", "services", EVERYWHERE),
    ("watch", "services", EVERYWHERE),
    ("patch", "services", IN_APP_NAMESPACE),
    ("create", "events", IN_APP_NAMESPACE),
    ("patch", "events", IN_APP_NAMESPACE),
    ("create", "tokenreviews.authentication.k8s.io", EVERYWHERE),  # --metrics-secure
    ("create", "subjectaccessreviews.authorization.k8s.io", EVERYWHERE),
]
DENIED = [
    ("get", "secrets", IN_OWN_NAMESPACE),  # not even its own api7-cloud Secret
    ("list", "secrets", EVERYWHERE),
    ("watch", "secrets", EVERYWHERE),
    ("create", "services", IN_APP_NAMESPACE),
    ("update", "services", IN_APP_NAMESPACE),
    ("delete", "services", IN_APP_NAMESPACE),
    ("patch", "services", (*IN_APP_NAMESPACE, "--subresource=status")),
    ("get", "events", IN_APP_NAMESPACE),
    ("delete", "events", IN_APP_NAMESPACE),
    ("create", "events.events.k8s.io", IN_APP_NAMESPACE),
    ("get", "pods", IN_APP_NAMESPACE),
    ("list", "configmaps", EVERYWHERE),
    ("list", "endpointslices.discovery.k8s.io", EVERYWHERE),
    ("patch", "deployments.apps", IN_OWN_NAMESPACE),
    ("create", "serviceaccounts", (*IN_OWN_NAMESPACE, "--subresource=token")),
    ("impersonate", "users", EVERYWHERE),
    ("bind", "clusterroles.rbac.authorization.k8s.io", EVERYWHERE),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", EVERYWHERE),
    ("*", "*", EVERYWHERE),
    ("get", "/metrics", NOT_NAMESPACED),  # its own metrics: only for the metrics-reader role
    ("create", "localsubjectaccessreviews.authorization.k8s.io", IN_APP_NAMESPACE),
    ("create", "certificatesigningrequests.certificates.k8s.io", EVERYWHERE),
]


@pytest.mark.parametrize("verb, resource, scope", ALLOWED, ids=[f"{v}-{r}" for v, r, _ in ALLOWED])
def test_controller_may(localkube, installed, verb, resource, scope):
    assert localkube.can_i(CONTROLLER, verb, resource, *scope) == "yes"


@pytest.mark.parametrize(
    "verb, resource, scope", DENIED, ids=[f"{v}-{r}{''.join(s[2:])}" for v, r, s in DENIED]
)
def test_controller_may_not(localkube, installed, verb, resource, scope):
    assert localkube.can_i(CONTROLLER, verb, resource, *scope) == "no"


def granted_rules(localkube, user: str, namespace: str = APP_NAMESPACE) -> set[tuple[str, ...]]:
    """`kubectl auth can-i --list` rows as (resource, non-resource URLs, names, verbs)."""
    table = localkube.kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace).stdout
    return {tuple(line.split()) for line in table.splitlines()[1:]}


UNBOUND = f"system:serviceaccount:{SYSTEM_NAMESPACE}:no-bindings"


def test_controller_has_nothing_beyond_its_four_rules(localkube, installed):
    """Everything the ServiceAccount may do, minus what any unbound ServiceAccount may do."""
    extra = granted_rules(localkube, CONTROLLER) - granted_rules(localkube, UNBOUND)
    assert extra == {
        ("events", "[]", "[]", "[create", "patch]"),
        ("services", "[]", "[]", "[get", "list", "watch", "patch]"),
        ("tokenreviews.authentication.k8s.io", "[]", "[]", "[create]"),
        ("subjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"),
    }


# leader election: its Lease, in its own namespace, by name --------------------------------------

LEASES = "leases.coordination.k8s.io"
LEASE_ALLOWED = [
    ("create", LEASES),  # the first replica creates it; create cannot be limited to a name
    ("get", f"{LEASES}/canaryctl"),
    ("update", f"{LEASES}/canaryctl"),  # renew, take over, hand back
    ("watch", f"{LEASES}/canaryctl"),  # standbys: a watch with fieldSelector metadata.name
]
LEASE_DENIED = [
    ("get", f"{LEASES}/someone-elses"),
    ("update", f"{LEASES}/someone-elses"),
    ("watch", LEASES),  # every Lease of the namespace
    ("list", LEASES),
    ("patch", f"{LEASES}/canaryctl"),
    ("delete", f"{LEASES}/canaryctl"),
]


@pytest.mark.parametrize("verb, resource", LEASE_ALLOWED, ids=[v for v, _ in LEASE_ALLOWED])
def test_leader_election_is_allowed_in_the_controllers_own_namespace_only(
    localkube, installed, verb, resource
):
    assert localkube.can_i(CONTROLLER, verb, resource, *IN_OWN_NAMESPACE) == "yes"
    assert localkube.can_i(CONTROLLER, verb, resource, *IN_APP_NAMESPACE) == "no"
    assert localkube.can_i(CONTROLLER, verb, resource, *EVERYWHERE) == "no"  # cluster-wide


@pytest.mark.parametrize(
    "verb, resource", LEASE_DENIED, ids=[f"{v}-{r.rpartition('/')[2]}" for v, r in LEASE_DENIED]
)
def test_no_other_lease_and_no_other_verb(localkube, installed, verb, resource):
    assert localkube.can_i(CONTROLLER, verb, resource, *IN_OWN_NAMESPACE) == "no"


def test_in_its_own_namespace_the_controller_has_only_the_lease_rules_more(localkube, installed):
    own = granted_rules(localkube, CONTROLLER, SYSTEM_NAMESPACE)
    elsewhere = granted_rules(localkube, CONTROLLER)
    assert own - elsewhere == {
        (LEASES, "[]", "[]", "[create]"),
        (LEASES, "[]", "[canaryctl]", "[get", "update", "watch]"),
    }


@pytest.fixture
def metrics_reader(localkube, declared_namespace, installed) -> str:
    """A ServiceAccount bound to canaryctl-metrics-reader, as the README tells Prometheus users."""
    namespace = declared_namespace
    localkube.kubectl("create", "serviceaccount", "prometheus", "-n", namespace)
    binding = f"{namespace}-canaryctl-metrics"
    localkube.kubectl(
        "create",
        "clusterrolebinding",
        binding,
        "--clusterrole=canaryctl-metrics-reader",
        f"--serviceaccount={namespace}:prometheus",
    )
    yield f"system:serviceaccount:{namespace}:prometheus"
    localkube.kubectl("delete", "clusterrolebinding", binding, check=False)


def test_metrics_reader_role_grants_get_on_metrics_and_nothing_else(localkube, metrics_reader):
    [role] = [
        o
        for o in of_kind(render(localkube, MANIFESTS), "ClusterRole")
        if o["metadata"]["name"] == "canaryctl-metrics-reader"
    ]
    assert role["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert localkube.can_i(metrics_reader, "get", "/metrics", *NOT_NAMESPACED) == "yes"
    assert localkube.can_i(metrics_reader, "post", "/metrics", *NOT_NAMESPACED) == "no"
    assert localkube.can_i(UNBOUND, "get", "/metrics", *NOT_NAMESPACED) == "no"
    extra = granted_rules(localkube, metrics_reader) - granted_rules(localkube, UNBOUND)
    assert extra == {("[/metrics]", "[]", "[get]")}

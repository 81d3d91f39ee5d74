"""The Helm chart (manifests/helm/canaryctl) with the real `helm`, and against the kustomize
manifests, which stay the one description of what canaryctl needs: with default values the
chart renders the same RBAC rules and pod spec as `kubectl kustomize manifests/`, and, once
installed on a real kube-apiserver, its ServiceAccount may do exactly what the kustomize
one may (`kubectl auth can-i --list`, row for row). Scoped to namespaces (`watchNamespaces`),
it grants Roles in those alone, and the controller runs on them as its ServiceAccount.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.gateways.gateway_api import GatewayApiKit
from canaryctl.testing.localkube import wait_until

pytestmark = pytest.mark.localkube

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
CHART = MANIFESTS / "helm" / "canaryctl"
DASHBOARD = MANIFESTS / "grafana" / "canaryctl.json"
SYSTEM_NAMESPACE = "canaryctl-system"
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"


@pytest.fixture(scope="module")
def helm(helm_binary, tmp_path_factory):
    """`helm(*args)` -> CompletedProcess, with Helm's own directories in a temp dir."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        **{f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")},
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(helm_binary), *args], env=env, capture_output=True, text=True, timeout=120
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run


def template(helm, *values: str, namespace: str = SYSTEM_NAMESPACE) -> list[dict]:
    out = helm("template", "canaryctl", str(CHART), "--namespace", namespace, *values).stdout
    return [o for o in yaml.safe_load_all(out) if o]


def kustomize(localkube, directory: Path) -> list[dict]:
    return [
        o for o in yaml.safe_load_all(localkube.kubectl("kustomize", str(directory)).stdout) if o
    ]


def by_kind_and_name(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def assert_same_rbac_and_pods(chart: list[dict], manifests: list[dict]) -> None:
    """Every kustomize object (but the Namespace) has its chart twin with the same rules,
    bindings, pod spec, Service and disruption budget."""
    ours, theirs = by_kind_and_name(chart), by_kind_and_name(manifests)
    missing = {key for key in theirs if key[0] != "Namespace"} - set(ours)
    assert not missing, f"the chart lacks {sorted(missing)}"
    for (kind, name), expected in theirs.items():
        got = ours.get((kind, name))
        if kind in ("ClusterRole", "Role"):
            assert got["rules"] == expected["rules"], f"{kind} {name}"
        elif kind in ("ClusterRoleBinding", "RoleBinding"):
            assert (got["roleRef"], got["subjects"]) == (expected["roleRef"], expected["subjects"])
        elif kind == "Deployment":
            for field in ("replicas", "strategy", "selector"):
                assert got["spec"][field] == expected["spec"][field], field
            assert got["spec"]["template"]["spec"] == expected["spec"]["template"]["spec"]
            assert (
                got["spec"]["template"]["metadata"]["labels"]
                == (expected["spec"]["template"]["metadata"]["labels"])
            )
        elif kind in ("Service", "PodDisruptionBudget", "ConfigMap"):
            assert got.get("spec", got.get("data")) == expected.get("spec", expected.get("data"))
            if kind == "Service":
                assert got["metadata"]["annotations"] == expected["metadata"]["annotations"]


def test_lint_is_clean(helm):
    result = helm("lint", str(CHART), "--strict")
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_defaults_render_the_kustomize_rbac_and_pod_spec(helm, localkube):
    assert_same_rbac_and_pods(template(helm), kustomize(localkube, MANIFESTS))


@pytest.mark.parametrize(
    "component, values",
    [
        ("gateways/gateway-api", "gateway.backend=gateway-api"),
        ("components/app-bindings", "appBindings.required=true"),
    ],
)
def test_values_render_what_a_kustomize_component_adds(
    helm, localkube, tmp_path, component, values
):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{os.path.relpath(MANIFESTS, overlay)}]\n"
        f"components: [{os.path.relpath(MANIFESTS / component, overlay)}]\n"
    )
    assert_same_rbac_and_pods(template(helm, "--set", values), kustomize(localkube, overlay))


def test_values_become_flags_and_read_only_mounts(helm):
    values = [
        "--set",
        "watchNamespaces={shop,payments},prometheusUrl=http://prometheus:9090",
        "--set",
        "hookAllow={.tools.svc.cluster.local,10.0.0.0/8}",
        "--set",
        "notifications.url.secretName=hooks,notifications.format=slack",
        "--set",
        "notifications.config.secretName=hooks,metrics.certSecret=canaryctl-tls",
        "--set",
        "leaderElection.enabled=true,replicas=2",
    ]
    rendered = template(helm, *values)
    objects = by_kind_and_name(rendered)
    pod = objects[("Deployment", "canaryctl")]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"][:4] == [
        "run",
        "--log-format=json",
        "--metrics-secure",
        "--leader-elect",
    ]
    for flag in (
        "--namespace=shop",
        "--namespace=payments",
        "--prometheus-url=http://prometheus:9090",
        "--hook-allow=.tools.svc.cluster.local",
        "--hook-allow=10.0.0.0/8",
        "--notify-url-file=/etc/canaryctl/notify/url",
        "--notify-format=slack",
        "--notify-config=/etc/canaryctl/notify-config/channels.json",
        "--metrics-cert-file=/etc/canaryctl/metrics-tls/tls.crt",
    ):
        assert flag in container["args"]
    assert all(mount["readOnly"] for mount in container["volumeMounts"])
    assert {v["name"]: v["secret"]["secretName"] for v in pod["volumes"]} == {
        "metrics-tls": "canaryctl-tls",
        "notify-url": "hooks",
        "notify-config": "hooks",
    }
    assert not any("http" in str(env) for env in container["env"])  # URLs only in files
    assert [e["name"] for e in container["env"]][:2] == ["POD_NAME", "POD_NAMESPACE"]
    assert objects[("PodDisruptionBudget", "canaryctl")]["spec"]["minAvailable"] == 1
    # scoped: Services and Events through a Role in each watched namespace, nothing cluster-wide
    roles = [o for o in rendered if o["kind"] in ("Role", "RoleBinding")]
    assert {
        (o["kind"], o["metadata"]["namespace"])
        for o in roles
        if o["metadata"]["name"] == ("canaryctl")
    } == {(kind, ns) for kind in ("Role", "RoleBinding") for ns in ("shop", "payments")}
    cluster_rules = objects[("ClusterRole", "canaryctl")]["rules"]
    assert [rule["resources"] for rule in cluster_rules] == [
        ["tokenreviews"],
        ["subjectaccessreviews"],
    ]
    lease = objects[("Role", "canaryctl-leader-election")]["rules"]
    assert lease[1] == {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["canaryctl"],
        "verbs": ["get", "update", "watch"],
    }


def test_two_replicas_without_leader_election_are_refused(helm):
    result = helm(
        "template", "x", str(CHART), "--set", "replicas=2,leaderElection.enabled=false", check=False
    )
    assert result.returncode != 0 and "needs leaderElection.enabled" in result.stderr


def test_a_service_monitor_only_where_its_api_is_served(helm):
    assert not [o for o in template(helm) if o["kind"] == "ServiceMonitor"]
    [monitor] = [
        o
        for o in template(helm, "--api-versions", SERVICE_MONITOR_API)
        if o["kind"] == "ServiceMonitor"
    ]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}
    plain = template(helm, "--api-versions", SERVICE_MONITOR_API, "--set", "metrics.secure=false")
    [monitor] = [o for o in plain if o["kind"] == "ServiceMonitor"]
    assert monitor["spec"]["endpoints"][0]["scheme"] == "http"


def test_the_dashboard_is_a_configmap_for_grafanas_sidecar(helm):
    assert (CHART / "dashboards" / "canaryctl.json").read_bytes() == DASHBOARD.read_bytes()
    [config_map] = [
        o
        for o in template(helm)
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["canaryctl.json"]) == json.loads(DASHBOARD.read_text())


def can_i_list(localkube, user: str, namespace: str) -> list[str]:
    listed = localkube.kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace)
    return sorted(listed.stdout.splitlines()[1:])  # without the header


def test_install_grants_exactly_what_the_kustomize_manifests_grant(helm, localkube):
    localkube.kubectl("apply", "-k", str(MANIFESTS))
    release = f"canaryctl-{uuid.uuid4().hex[:6]}"
    namespace = localkube.create_namespace()
    app_namespace = localkube.create_namespace()
    installed = helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        f"fullnameOverride={release}",
        "--kubeconfig",
        str(localkube.kubeconfig),
    )
    try:
        assert "STATUS: deployed" in installed.stdout
        ours = f"system:serviceaccount:{namespace}:{release}"
        theirs = f"system:serviceaccount:{SYSTEM_NAMESPACE}:canaryctl"
        mine = can_i_list(localkube, ours, app_namespace)
        assert mine == can_i_list(localkube, theirs, app_namespace)
        assert any(row.startswith("services ") and "patch" in row for row in mine)
        assert can_i_list(localkube, ours, namespace) == can_i_list(
            localkube, theirs, SYSTEM_NAMESPACE
        )
        assert localkube.can_i(ours, "get", "secrets", "-n", namespace) == "no"
    finally:
        helm(
            "uninstall",
            release,
            "--namespace",
            namespace,
            "--kubeconfig",
            str(localkube.kubeconfig),
        )


@pytest.mark.parametrize("backend", ["api7", "gateway-api"])
def test_a_scoped_install_runs_on_roles_in_its_namespaces_alone(
    helm, localkube, tmp_path, monkeypatch, request, backend
):
    """watchNamespaces: Roles in those namespaces, no cluster-wide grant on Services, Events or
    HTTPRoutes; and `canaryctl run` as that ServiceAccount, with the chart's arguments,
    publishes a canary in a watched namespace without a single refusal."""
    kit = GatewayApiKit(data_plane="route-follower") if backend == "gateway-api" else backend
    if backend == "gateway-api":
        request.getfixturevalue("gateway_api")
    release = f"scoped-{uuid.uuid4().hex[:6]}"
    system, watched, second, unwatched = (localkube.create_namespace() for _ in range(4))
    values = [
        "--set",
        f"fullnameOverride={release},watchNamespaces={{{watched},{second}}}",
        "--set",
        f"gateway.backend={backend}",
    ]
    [deployment] = [
        o for o in template(helm, *values, namespace=system) if o["kind"] == "Deployment"
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args = [a for a in container["args"][1:] if not a.startswith(("--namespace=", "--gateway="))]
    helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        system,
        *values,
        "--kubeconfig",
        str(localkube.kubeconfig),
    )
    try:
        user = f"system:serviceaccount:{system}:{release}"
        for verb, resource in (("patch", "services"), ("watch", "services"), ("create", "events")):
            assert localkube.can_i(user, verb, resource, "-n", watched) == "yes"
            assert localkube.can_i(user, verb, resource, "-n", second) == "yes"
            assert localkube.can_i(user, verb, resource, "-n", unwatched) == "no"
            assert localkube.can_i(user, verb, resource, "--all-namespaces") == "no"
        if backend == "gateway-api":
            routes = "httproutes.gateway.networking.k8s.io"
            assert localkube.can_i(user, "create", routes, "-n", watched) == "yes"
            assert localkube.can_i(user, "create", routes, "-n", unwatched) == "no"
        account = localkube.serviceaccount_mount(tmp_path / "serviceaccount", system, release)
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config to fall back to
        monkeypatch.delenv("KUBECONFIG", raising=False)
        with DemoEnvironment(
            kube=localkube,
            namespace=watched,
            watched=[watched, second],
            progress=lambda _: None,
            serviceaccount_dir=account,
            controller_args=args,
            gateway=kit,
        ) as env:
            env.apply_service("error-page-v1", {APP: "error-page"})
            env.apply_service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: "30"})
            env.wait_for_split((f"{watched}/error-page-v1", f"{watched}/error-page-v2", 30))
            wait_until(lambda: env.events("error-page-v1", "Published"), 30, "an Event")
            wait_until(lambda: env.status("error-page-v2"), 30, "the status annotation")
            assert env.stop_controller() == 0
            log = env.controller_log.read_text()
        assert "controller started" in log
        assert "Forbidden" not in log and "HTTP 403" not in log, log[-3000:]
    finally:
        helm("uninstall", release, "--namespace", system, "--kubeconfig", str(localkube.kubeconfig))

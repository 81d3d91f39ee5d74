"""load_api_client's three credential sources, and annotation merge patches, on a real apiserver."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from canaryctl.kube import SERVICEACCOUNT_DIR_ENV, load_api_client, patch_service_annotations

ADMIN = "localkube-admin"  # the common name of localkube's admin client certificate


def whoami(api: client.ApiClient) -> str:
    review = client.AuthenticationV1Api(api).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    return review.status.user_info.username


@pytest.fixture
def in_cluster(localkube, namespace, tmp_path, monkeypatch) -> Iterator[str]:
    """A pod's environment: service host/port variables and a mounted ServiceAccount token + CA."""
    localkube.kubectl("create", "serviceaccount", "canaryctl", "-n", namespace)
    (tmp_path / "token").write_text(localkube.service_account_token(namespace, "canaryctl"))
    shutil.copy(localkube.pki / "ca.crt", tmp_path / "ca.crt")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(localkube.apiserver_port))
    monkeypatch.setenv(SERVICEACCOUNT_DIR_ENV, str(tmp_path))
    yield f"system:serviceaccount:{namespace}:canaryctl"


def test_kubeconfig_gives_a_keep_alive_client(localkube):
    with load_api_client(str(localkube.kubeconfig)) as api:
        assert api.configuration.keep_alive is True
        assert whoami(api) == ADMIN


def test_in_cluster_uses_the_mounted_service_account(in_cluster):
    with load_api_client(None) as api:
        assert whoami(api) == in_cluster
        assert api.configuration.keep_alive is True


def test_in_cluster_without_a_token_names_the_directory(in_cluster, tmp_path):
    (tmp_path / "token").unlink()
    with pytest.raises(ConfigException, match=str(tmp_path)):
        load_api_client(None)


def test_outside_a_pod_falls_back_to_the_default_kubeconfig(localkube, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(localkube.kubeconfig))
    with load_api_client(None) as api:
        assert whoami(api) == ADMIN


def test_patch_sets_and_removes_only_the_named_annotations(kube_api, namespace):
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web", "annotations": {"owner": "team-a"}},
            "spec": {"ports": [{"port": 80}]},
        },
    )

    view = patch_service_annotations(
        kube_api, namespace, "web", {"api7.cloud/canary-status": '{"phase":"Ready"}'}
    )
    assert view.annotations == {"owner": "team-a", "api7.cloud/canary-status": '{"phase":"Ready"}'}

    view = patch_service_annotations(
        kube_api, namespace, "web", {"api7.cloud/canary-status": None, "absent": None}
    )
    assert view.annotations == {"owner": "team-a"}
    assert core.read_namespaced_service("web", namespace).metadata.annotations == {
        "owner": "team-a"
    }


def test_patching_a_missing_service_is_a_404(kube_api, namespace):
    with pytest.raises(client.ApiException) as raised:
        patch_service_annotations(kube_api, namespace, "nope", {"a": "1"})
    assert raised.value.status == 404

"""pytest fixtures for canaryctl's real-parts tests: a local control plane and namespaces.

Enable with `pytest_plugins = ["canaryctl.testing.pytest_plugin"]`. Without a Go toolchain
the control-plane tests are skipped — unless CANARYCTL_REQUIRE_LOCALKUBE=1 (as in CI), in
which case they fail loudly instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from canaryctl.testing.helm import HelmUnavailable, ensure_helm
from canaryctl.testing.localkube import LocalKube, LocalKubeUnavailable
from canaryctl.testing.prometheus import PrometheusServer, PrometheusUnavailable
from canaryctl.testing.traefik import TraefikGateway

REQUIRE_ENV = "CANARYCTL_REQUIRE_LOCALKUBE"


def _progress(message: str) -> None:
    stream = sys.__stderr__  # the real stderr, past pytest's capture (None if there is none)
    if stream is not None:
        stream.write(message + "\n")
        stream.flush()


@pytest.fixture(scope="session")
def localkube() -> Iterator[LocalKube]:
    """One kube-apiserver + etcd for the whole test session."""
    kube = LocalKube(progress=_progress)
    try:
        kube.start()
    except LocalKubeUnavailable as error:
        _unavailable("local control plane", error)
    try:
        yield kube
    finally:
        kube.stop()


def _unavailable(what: str, error: Exception) -> NoReturn:
    """Skip the test, or fail it when CANARYCTL_REQUIRE_LOCALKUBE=1 (as in CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{what} required ({REQUIRE_ENV}=1) but unavailable: {error}", pytrace=False)
    pytest.skip(f"{what} unavailable: {error}")


@pytest.fixture(scope="session")
def gateway_api(localkube: LocalKube) -> list[str]:
    """The Gateway API standard-channel CRDs, installed once on the session's control plane.

    Returns the CRD names (all Established).
    """
    try:
        return localkube.install_gateway_api()
    except LocalKubeUnavailable as error:
        _unavailable("Gateway API CRDs", error)


@pytest.fixture
def namespace(localkube: LocalKube) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting).

    No kube-controller-manager runs, so nothing empties a deleted namespace: its Services are
    deleted explicitly, or controllers watching all namespaces would still see them.
    """
    name = localkube.create_namespace()
    yield name
    localkube.kubectl(
        "delete", "services,deployments", "--all", "-n", name, "--wait=false", check=False
    )
    localkube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kube_api(localkube: LocalKube):
    """An admin kubernetes ApiClient for the session's control plane (canaryctl's own loader)."""
    from canaryctl.kube import load_api_client

    with load_api_client(str(localkube.kubeconfig)) as api:
        yield api


@pytest.fixture
def core_api(kube_api):
    """CoreV1Api on `kube_api`."""
    from kubernetes import client

    return client.CoreV1Api(kube_api)


@pytest.fixture(scope="session")
def traefik(localkube: LocalKube, gateway_api: list[str]) -> Iterator[TraefikGateway]:
    """Traefik serving a Gateway in its own namespace, for the whole session.

    Tests add backends (`traefik.add_backend(namespace, service, version)`) and write
    HTTPRoutes with `parentRefs: [traefik.parent_ref]`. Skipped only when Go is missing and
    CANARYCTL_REQUIRE_LOCALKUBE is unset; any other failure to start fails the test.
    """
    gateway = TraefikGateway(localkube, localkube.create_namespace(), progress=_progress)
    try:
        gateway.start()
    except LocalKubeUnavailable as error:
        if shutil.which("go") is None:
            _unavailable("Traefik", error)
        pytest.fail(f"Traefik could not start: {error}", pytrace=False)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    """The `helm` binary (built from the Go module proxy once); skipped like the control plane."""
    try:
        return ensure_helm(progress=_progress)
    except HelmUnavailable as error:
        _unavailable("Helm", error)


PROMETHEUS_REQUIRE_ENV = "CANARYCTL_REQUIRE_PROMETHEUS"


@pytest.fixture(scope="session")
def prometheus_server_factory() -> Iterator[Callable[..., PrometheusServer]]:
    """`factory(targets, **options)` -> a started `PrometheusServer`, closed at the session's end.

    The caller may close it earlier. Skips without a `prometheus` binary unless
    CANARYCTL_REQUIRE_PROMETHEUS=1.
    """
    servers: list[PrometheusServer] = []

    def start(targets: list[str], **options) -> PrometheusServer:
        server = PrometheusServer(targets, **options)
        servers.append(server)
        try:
            return server.start()
        except PrometheusUnavailable as error:
            if os.environ.get(PROMETHEUS_REQUIRE_ENV) == "1":
                pytest.fail(
                    f"Prometheus required ({PROMETHEUS_REQUIRE_ENV}=1) but unavailable: {error}",
                    pytrace=False,
                )
            pytest.skip(f"Prometheus unavailable: {error}")

    yield start
    for server in servers:
        server.close()

"""`/metrics` behind Kubernetes authentication and authorization, against a real kube-apiserver.

The guard runs with the shipped controller ServiceAccount's own token (so the shipped RBAC
must allow the reviews), over TLS with the self-signed certificate. Real ServiceAccount
tokens from the TokenRequest API: one bound to `canaryctl-metrics-reader` reads metrics,
one without the binding gets 403, no token or a made-up one gets 401. kube-apiserver's own
request counters show how many reviews repeated scrapes really cost.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kubernetes import client

from canaryctl import metrics
from canaryctl.delegated_auth import DecisionCache, KubernetesAuthGuard
from canaryctl.server import Endpoint, metrics_endpoint
from canaryctl.testing.processes import wait_until
from canaryctl.tls import rsa, selfsigned, server_context

pytestmark = pytest.mark.localkube

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
SYSTEM_NAMESPACE = "canaryctl-system"
GARBAGE = "eyJhbGciOiJSUzI1NiJ9.bm90LWEtdG9rZW4.c2lnbmF0dXJl"


def token_client(localkube, token: str) -> client.ApiClient:
    """An ApiClient that authenticates with `token` only, as a pod would."""
    configuration = client.Configuration(host=localkube.server)
    configuration.ssl_ca_cert = str(localkube.pki / "ca.crt")
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


@pytest.fixture(scope="module")
def controller_api(localkube) -> Iterator[client.ApiClient]:
    localkube.kubectl("apply", "-k", str(MANIFESTS))
    with token_client(
        localkube, localkube.service_account_token(SYSTEM_NAMESPACE, "canaryctl")
    ) as api:
        yield api


@pytest.fixture(scope="module")
def certified() -> selfsigned.CertifiedKey:
    return selfsigned.generate(["localhost", "127.0.0.1"], key=rsa.generate_private_key(2048))


@pytest.fixture
def ca_file(certified, tmp_path) -> Path:
    (tmp_path / "ca.pem").write_text(certified.certificate_pem)
    return tmp_path / "ca.pem"


@pytest.fixture
def guard(controller_api) -> KubernetesAuthGuard:
    return KubernetesAuthGuard(controller_api)


@pytest.fixture
def served(guard, certified) -> Iterator[Endpoint]:
    endpoint = metrics_endpoint(
        "127.0.0.1:0", metrics.REGISTRY, tls=server_context(certified), guard=guard
    )
    yield endpoint.start()
    endpoint.stop()


@pytest.fixture
def service_account(localkube, namespace):
    """`make(name, bound)`: a ServiceAccount's token; bound to canaryctl-metrics-reader if asked."""
    bindings: list[str] = []

    def make(name: str, bound: bool) -> str:
        localkube.kubectl("create", "serviceaccount", name, "-n", namespace)
        if bound:
            binding = f"metrics-{uuid.uuid4().hex[:8]}"
            localkube.kubectl(
                "create",
                "clusterrolebinding",
                binding,
                "--clusterrole=canaryctl-metrics-reader",
                f"--serviceaccount={namespace}:{name}",
            )
            bindings.append(binding)
        return localkube.service_account_token(namespace, name)

    make.bindings = bindings
    yield make
    for binding in bindings:
        localkube.kubectl("delete", "clusterrolebinding", binding, check=False)


def scrape(endpoint: Endpoint, ca_file: Path, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        f"https://127.0.0.1:{endpoint.port}/metrics", headers=headers, verify=ca_file, timeout=10
    )


def reviews_served(localkube) -> dict[str, float]:
    """kube-apiserver's own count of TokenReviews and SubjectAccessReviews it answered."""
    text = requests.get(
        f"{localkube.server}/metrics",
        cert=(str(localkube.pki / "admin.crt"), str(localkube.pki / "admin.key")),
        verify=str(localkube.pki / "ca.crt"),
        timeout=10,
    ).text
    counts = dict.fromkeys(("tokenreviews", "subjectaccessreviews"), 0.0)
    for line in text.splitlines():
        found = re.match(r'apiserver_request_total\{.*resource="(\w+)".*\} (\S+)$', line)
        if found and found.group(1) in counts:
            counts[found.group(1)] += float(found.group(2))
    return counts


def test_a_reader_gets_metrics_everyone_else_is_refused(
    served, ca_file, service_account, namespace
):
    reader = service_account("prometheus", bound=True)
    stranger = service_account("stranger", bound=False)

    allowed = scrape(served, ca_file, reader)
    assert allowed.status_code == 200, allowed.text
    assert "controller_runtime_reconcile_total" in allowed.text
    forbidden = scrape(served, ca_file, stranger)
    assert (forbidden.status_code, forbidden.text) == (
        403,
        f"Authorization denied for user system:serviceaccount:{namespace}:stranger\n",
    )
    for token in (None, GARBAGE, reader[:-4] + "AAAA"):  # none, made up, a forged signature
        refused = scrape(served, ca_file, token)
        assert (refused.status_code, refused.text) == (401, "Unauthorized\n")


def test_repeated_scrapes_cost_one_review_pair_per_cache_ttl(
    localkube, served, guard, ca_file, service_account
):
    reader = service_account("prometheus", bound=True)
    before = reviews_served(localkube)
    answers = [scrape(served, ca_file, reader).status_code for _ in range(30)]
    after = reviews_served(localkube)

    assert answers == [200] * 30
    assert {kind: after[kind] - before[kind] for kind in after} == {
        "tokenreviews": 1.0,
        "subjectaccessreviews": 1.0,
    }
    assert (guard.cache.misses, guard.cache.hits) == (1, 29)
    print(f"review cache: {guard.cache.hits / 30:.0%} hits over 30 scrapes, 2 API calls in all")


def test_a_revoked_binding_is_refused_once_the_cached_decision_expires(
    localkube, controller_api, certified, ca_file, service_account
):
    guard = KubernetesAuthGuard(controller_api, DecisionCache(ttl=1.0))
    endpoint = metrics_endpoint(
        "127.0.0.1:0", metrics.REGISTRY, tls=server_context(certified), guard=guard
    ).start()
    try:
        reader = service_account("prometheus", bound=True)
        assert scrape(endpoint, ca_file, reader).status_code == 200
        localkube.kubectl("delete", "clusterrolebinding", *service_account.bindings)
        wait_until(
            lambda: scrape(endpoint, ca_file, reader).status_code == 403,
            15,
            "the revoked reader to be refused",
        )
    finally:
        endpoint.stop()


def test_a_controller_without_review_rights_answers_500(
    localkube, certified, ca_file, service_account
):
    """What the ClusterRole's tokenreviews/subjectaccessreviews rows are for."""
    reader = service_account("prometheus", bound=True)
    unprivileged = service_account("no-review-rights", bound=False)
    with token_client(localkube, unprivileged) as api:
        endpoint = metrics_endpoint(
            "127.0.0.1:0",
            metrics.REGISTRY,
            tls=server_context(certified),
            guard=KubernetesAuthGuard(api),
        ).start()
        try:
            failed = scrape(endpoint, ca_file, reader)
        finally:
            endpoint.stop()
    assert (failed.status_code, failed.text) == (500, "Authentication failed\n")


def test_tokens_never_reach_the_logs(served, ca_file, service_account, caplog):
    caplog.set_level(logging.DEBUG)
    reader = service_account("prometheus", bound=True)
    stranger = service_account("stranger", bound=False)
    for token in (reader, stranger, GARBAGE, reader, stranger):
        scrape(served, ca_file, token)
    assert caplog.records  # the denial was logged (at debug) ...
    for token in (reader, stranger, GARBAGE):
        assert token not in caplog.text and token[-20:] not in caplog.text  # ... without a token

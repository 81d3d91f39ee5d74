"""The secure metrics guard's own parts: bearer tokens, the decision cache, refusals that
need no API call, and what happens when kube-apiserver cannot be reached."""

from __future__ import annotations

import logging

import pytest
import requests
from kubernetes import client
from prometheus_client import CollectorRegistry

from canaryctl import metrics
from canaryctl.delegated_auth import (
    ALLOWED,
    UNAUTHORIZED,
    Decision,
    DecisionCache,
    KubernetesAuthGuard,
    bearer_token,
)
from canaryctl.server import metrics_endpoint
from canaryctl.workqueue.clock import FakeClock

TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-part-of-the-token.signature"
FORBIDDEN = Decision((403, "text/plain", b"no\n"), "forbidden")


@pytest.mark.parametrize(
    "header, token",
    [
        (f"Bearer {TOKEN}", TOKEN),
        (f"bearer {TOKEN}", TOKEN),
        (f"  Bearer   {TOKEN}  ", TOKEN),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        (f"Basic {TOKEN}", None),
        (f"Bearer {TOKEN} extra", None),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


def test_cache_entries_expire_after_the_ttl():
    clock = FakeClock(start=0.0)
    cache = DecisionCache(ttl=10.0, clock=clock.now)
    cache.put(b"a", ALLOWED)
    clock.step(9.9)
    assert cache.get(b"a") is ALLOWED
    clock.step(0.1)
    assert cache.get(b"a") is None and len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_cache_evicts_the_least_recently_used_beyond_its_size():
    cache = DecisionCache(max_entries=3, clock=FakeClock().now)
    for key in (b"a", b"b", b"c"):
        cache.put(key, ALLOWED)
    cache.get(b"a")  # used: b is now the oldest
    cache.put(b"d", FORBIDDEN)
    assert len(cache) == 3 and cache.get(b"b") is None
    assert cache.get(b"a") is ALLOWED and cache.get(b"d") is FORBIDDEN


@pytest.fixture
def unreachable_guard() -> KubernetesAuthGuard:
    """A guard whose API server does not answer (nothing listens on port 9)."""
    configuration = client.Configuration(host="https://127.0.0.1:9")
    configuration.retries = 0
    return KubernetesAuthGuard(client.ApiClient(configuration))


def decisions(decision: str, source: str) -> float:
    return metrics.metrics_auth_total.labels(decision, source)._value.get()


def test_no_token_is_refused_without_asking_the_api_server(unreachable_guard):
    before = decisions("unauthenticated", "request")
    for header in (None, "Basic dXNlcjpwYXNz", "Bearer "):
        assert unreachable_guard("GET", "/metrics", header) == UNAUTHORIZED
    assert decisions("unauthenticated", "request") == before + 3
    assert unreachable_guard.cache.misses == 0  # never even looked up


def test_an_unreachable_api_server_is_a_500_that_is_not_cached_nor_logs_the_token(
    unreachable_guard, caplog
):
    caplog.set_level(logging.DEBUG)
    for _ in range(2):
        status, _, body = unreachable_guard("GET", "/metrics", f"Bearer {TOKEN}")
        assert (status, body) == (500, b"Authentication failed\n")
    assert len(unreachable_guard.cache) == 0 and unreachable_guard.cache.misses == 2
    assert "metrics authentication failed" in caplog.text
    assert "secret-part-of-the-token" not in caplog.text


def test_cache_keys_are_keyed_hashes_never_the_token(unreachable_guard):
    key = unreachable_guard._cache_key(TOKEN, "GET", "/metrics")
    assert TOKEN.encode() not in key and len(key) == 32
    assert key != unreachable_guard._cache_key(TOKEN, "GET", "/other")
    other_process = KubernetesAuthGuard(client.ApiClient(client.Configuration()))
    assert key != other_process._cache_key(TOKEN, "GET", "/metrics")  # a per-process secret


def test_the_endpoint_sends_the_guards_refusal_and_passes_it_the_header():
    seen = []

    def guard(method, path, authorization):
        seen.append((method, path, authorization))
        return None if authorization == "Bearer good" else (403, "text/plain", b"denied\n")

    endpoint = metrics_endpoint("127.0.0.1:0", CollectorRegistry(), guard=guard).start()
    try:
        url = f"http://127.0.0.1:{endpoint.port}/metrics?x=1"
        refused = requests.get(url, headers={"Authorization": "Bearer bad"}, timeout=5)
        served = requests.get(url, headers={"Authorization": "Bearer good"}, timeout=5)
    finally:
        endpoint.stop()
    assert (refused.status_code, refused.text) == (403, "denied\n")
    assert served.status_code == 200
    assert seen == [("GET", "/metrics", "Bearer bad"), ("GET", "/metrics", "Bearer good")]

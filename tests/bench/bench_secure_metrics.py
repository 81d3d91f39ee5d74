"""Secure metrics benchmark: what `--metrics-secure` costs per scrape, on loopback.

Starts a real kube-apiserver (localkube), applies `manifests/`, serves canaryctl's registry
over HTTPS behind the TokenReview + SubjectAccessReview guard (running as the shipped
controller ServiceAccount), and scrapes it N times (default 200, a new TLS connection each)
with the token of a ServiceAccount bound to `canaryctl-metrics-reader`. Prints the time to
make the self-signed certificate, scrape latency (first scrape, cached scrapes, and plain
HTTP for comparison), the review cache's hit rate and the reviews kube-apiserver answered.

    python tests/bench/bench_secure_metrics.py [--scrapes 200]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import requests
from kubernetes import client

from canaryctl import metrics
from canaryctl.delegated_auth import KubernetesAuthGuard
from canaryctl.server import metrics_endpoint
from canaryctl.testing.localkube import LocalKube
from canaryctl.tls import selfsigned, server_context

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def reviews_served(kube: LocalKube) -> float:
    text = requests.get(
        f"{kube.server}/metrics",
        cert=(str(kube.pki / "admin.crt"), str(kube.pki / "admin.key")),
        verify=str(kube.pki / "ca.crt"),
        timeout=10,
    ).text
    pattern = (
        r'apiserver_request_total\{.*resource="(tokenreviews|subjectaccessreviews)".*\} (\S+)$'
    )
    return sum(float(m.group(2)) for m in re.finditer(pattern, text, re.MULTILINE))


def token_client(kube: LocalKube, token: str) -> client.ApiClient:
    configuration = client.Configuration(host=kube.server)
    configuration.ssl_ca_cert = str(kube.pki / "ca.crt")
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def timed_get(url: str, **options) -> float:
    started = time.perf_counter()
    answer = requests.get(url, timeout=10, **options)
    assert answer.status_code == 200, answer.text
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    made = []
    for _ in range(3):
        started = time.perf_counter()
        certified = selfsigned.generate()
        made.append(time.perf_counter() - started)
    with LocalKube(progress=lambda m: print(m, file=sys.stderr)) as kube:
        kube.kubectl("apply", "-k", str(MANIFESTS))
        kube.kubectl("create", "serviceaccount", "prometheus", "-n", "default")
        kube.kubectl(
            "create",
            "clusterrolebinding",
            "bench-metrics",
            "--clusterrole=canaryctl-metrics-reader",
            "--serviceaccount=default:prometheus",
        )
        reader = kube.service_account_token("default", "prometheus")
        controller = token_client(kube, kube.service_account_token("canaryctl-system", "canaryctl"))
        guard = KubernetesAuthGuard(controller)
        secure = metrics_endpoint(
            "127.0.0.1:0", metrics.REGISTRY, tls=server_context(certified), guard=guard
        ).start()
        plain = metrics_endpoint("127.0.0.1:0", metrics.REGISTRY).start()
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as ca:
            ca.write(certified.certificate_pem)
            ca.flush()
            url = f"https://localhost:{secure.port}/metrics"
            options = {"headers": {"Authorization": f"Bearer {reader}"}, "verify": ca.name}
            before = reviews_served(kube)
            first = timed_get(url, **options)
            cached = [timed_get(url, **options) for _ in range(args.scrapes - 1)]
            reviews = reviews_served(kube) - before
        baseline = [
            timed_get(f"http://127.0.0.1:{plain.port}/metrics") for _ in range(args.scrapes)
        ]
        secure.stop()
        plain.stop()
    hits, misses = guard.cache.hits, guard.cache.misses
    print(f"self-signed RSA-2048 certificate: min {min(made):.2f} s, max {max(made):.2f} s")
    print(f"scrapes: {args.scrapes} over HTTPS, one token")
    print(f"first scrape (TokenReview + SubjectAccessReview): {first:.1f} ms")
    print(
        f"cached scrapes ms: p50={percentile(cached, 50):.1f} p99={percentile(cached, 99):.1f}; "
        f"plain HTTP p50={percentile(baseline, 50):.1f} p99={percentile(baseline, 99):.1f}"
    )
    print(f"review cache: {hits} hits, {misses} misses ({hits / (hits + misses):.1%} hit rate)")
    print(
        f"reviews kube-apiserver answered: {reviews:.0f} ({reviews / args.scrapes:.3f} per scrape)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The two demos a newcomer runs: `canaryctl demo` and `canaryctl demo --auto`, as processes."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

GATEWAYS = ["api7", "apisix"]


def _demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "canaryctl", "demo", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_demo_runs_the_seed_walkthrough_and_exits_0(
    localkube, gateway
):  # localkube: binaries built (or skip/fail)
    result = _demo("--gateway", gateway)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every stage matched" in result.stdout
    assert_table_rows(result.stdout)


def assert_table_rows(output: str) -> None:
    """The summary table: the 10 % stage split 90/10, the predicate stage all-or-nothing."""
    rows = {
        r"publish error-page-v2 as error-page \(canary 10 %\)\s+90\s+10\s+0\s+ok",
        r"X-Canary: always, 0 % of the rest \[X-Canary: always\]\s+0\s+0\s+100\s+ok",
        r"X-Canary: always, 0 % of the rest \[no X-Canary\]\s+0\s+100\s+0\s+ok",
    }
    for row in rows:
        assert re.search(row, output), (row, output)


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_demo_auto_promotes_v2_and_rolls_back_v3(localkube, prometheus_server_factory, gateway):
    prometheus_server_factory([])  # skip (or fail in CI) without a prometheus binary
    result = _demo("--auto", "--gateway", gateway)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "v2: Succeeded | v3: RolledBack at 0 %" in result.stdout
    assert "fail: error rate" in result.stdout


def test_demo_through_the_gateway_api_prints_the_routes_weights(localkube, gateway_api, traefik):
    # traefik: built and able to run here (or skip/fail), so the demo must not fall back
    result = _demo("--gateway", "gateway-api")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every stage matched" in result.stdout
    assert "data plane: Traefik v3." in result.stdout
    assert (
        "Traefik: HTTPRoute canary-release-demo/error-page weights: "
        "error-page-v1=90, error-page-v2=10" in result.stdout
    )
    assert "weights: error-page-v2=100\n" in result.stdout  # promoted: only the former canary
    header_rule = 'Header("x-canary","always") -> error-page-v3=1'
    assert header_rule in result.stdout  # the predicate canary's router, as Traefik runs it
    assert_table_rows(result.stdout)


def test_demo_auto_through_the_gateway_api_is_judged_from_traefiks_series(
    localkube, prometheus_server_factory, traefik
):
    prometheus_server_factory([])  # skip (or fail in CI) without a prometheus binary
    result = _demo("--auto", "--gateway", "gateway-api")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "data plane: Traefik v3." in result.stdout
    assert "--query-errors=sum(increase(traefik_service_requests_total{" in result.stdout
    assert "v2: Succeeded | v3: RolledBack at 0 %" in result.stdout
    assert "fail: error rate" in result.stdout

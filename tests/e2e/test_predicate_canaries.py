"""Predicate canaries end to end, on every gateway: requests carrying `X-Canary: always` reach the
canary, the others split by its weight — across a weight change, a controller restart and an
apiserver restart, with no gateway write where nothing changed.

Real kube-apiserver, the controller process, and each gateway's data plane (the API7 Cloud and
APISIX emulators, the Gateway API stand-in data plane that follows the HTTPRoute's rules).
"""

from __future__ import annotations

import pytest

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.processes import wait_until

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
MATCH = "api7.cloud/canary-match"
HEADER = {"X-Canary": "always"}


@pytest.fixture(params=["api7", "apisix", "gateway-api"])
def env(localkube, namespace, request):
    if request.param == "gateway-api":
        request.getfixturevalue("gateway_api")
    with DemoEnvironment(
        versions=("v1", "v2"),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        gateway=request.param,
    ) as environment:
        yield environment


def key(env, name: str) -> str:
    return f"{env.namespace}/{name}"


def routes_by_the_match(env, percent: int) -> None:
    """Every request with the header reaches v2; of the others `percent` % do."""
    assert env.send(50, HEADER) == {"v2": 50}
    without = env.send(100)
    assert without.get("v2", 0) == percent and without.get("v1", 0) == 100 - percent, without


def test_matching_requests_reach_the_canary_through_restarts(env):
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.apply_service(
        "error-page-v2",
        {APP: "error-page", CANARY: "true", PERCENT: "0", MATCH: "header:X-Canary=always"},
    )
    env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v2"), 0))
    wait_until(lambda: env.send(1, HEADER) == {"v2": 1}, 20, "the match to route")
    routes_by_the_match(env, 0)

    if env.kit.name == "api7":  # one canary release per app there: a rule, or a percentage
        env.annotate("error-page-v2", f"{PERCENT}=30")
        wait_until(lambda: env.events("error-page-v2", "MatchUnsupported"), 20, "the warning")
        assert "API7 Cloud" in env.events("error-page-v2", "MatchUnsupported")[0]["message"]
        routes_by_the_match(env, 0)  # the gateway keeps its last good state
        percent = 0
    else:
        env.annotate("error-page-v2", f"{PERCENT}=30")
        env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v2"), 30))
        percent = 30
        routes_by_the_match(env, percent)

    env.kit.clear_log()
    assert env.stop_controller() == 0
    env.start_controller()
    wait_until(lambda: "controller_runtime_reconcile_total" in env.metrics_text(), 20)
    env.kube.restart_apiserver()
    wait_until(
        lambda: (
            'result="success"' in env.metrics_text() and env.split()[1] == key(env, "error-page-v2")
        ),
        30,
        "the controller to reconcile after the restarts",
    )
    routes_by_the_match(env, percent)
    assert env.gateway_writes() == []  # nothing changed: nothing written

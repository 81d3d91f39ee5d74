"""`canaryctl run --gateway gateway-api` as a process against the real apiserver and CRDs.

The controller writes HTTPRoutes; the route-following stand-in of the test kit spreads
requests by their weights (pinned here: these tests read its view of the route and play its
part in reporting route status; tests/e2e/test_traefik_end_to_end.py runs Traefik). Writes
are counted by kube-apiserver itself (`apiserver_request_total{resource="httproutes"}` by
verb), so nothing of canaryctl's is trusted to report on itself.
"""

from __future__ import annotations

import json
import re

import pytest

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.gateways.gateway_api import GatewayApiKit, httproute_requests
from canaryctl.testing.localkube import wait_until

pytestmark = pytest.mark.localkube

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
READ_VERBS = ("GET", "LIST", "WATCH")


@pytest.fixture
def env(localkube, gateway_api, namespace):
    with DemoEnvironment(
        versions=("v1", "v2"),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        controller_args=["--resync-period=2"],
        gateway=GatewayApiKit(data_plane="route-follower"),
    ) as environment:
        yield environment
    localkube.kubectl("delete", "httproutes", "--all", "-n", namespace, "--wait=false")


def key(env, name: str) -> str:
    return f"{env.namespace}/{name}"


def route(env) -> dict:
    out = env.kubectl("get", "httproute", "error-page", "-n", env.namespace, "-o", "json")
    return json.loads(out.stdout)


def route_weights(env) -> list[int]:
    return [ref["weight"] for ref in route(env)["spec"]["rules"][0]["backendRefs"]]


def publish_canary(env, percent: int) -> None:
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.apply_service("error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: str(percent)})
    env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v2"), percent))


def test_the_seed_walkthrough_drives_the_routes_weights(env):
    env.apply_service("error-page-v1", {APP: "error-page"})
    env.wait_for_split((key(env, "error-page-v1"), None, 0))
    assert env.send(20) == {"v1": 20}
    for percent, v2 in ((10, 10), (0, 0), (100, 100)):
        env.apply_service(
            "error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: str(percent)}
        )
        env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v2"), percent))
        assert route_weights(env) == [100 - percent, percent]
        assert env.send(100).get("v2", 0) == v2
    wait_until(
        lambda: (env.status("error-page-v2") or {}).get("appliedWeight") == 100, 10, "status"
    )
    env.kubectl("delete", "service", "error-page-v1", "-n", env.namespace)
    env.wait_for_split((key(env, "error-page-v2"), None, 0))
    assert route_weights(env) == [100]
    assert env.events("error-page-v2", "Promoted")
    env.annotate("error-page-v2", f"{APP}-")  # unpublished: the app has no members left
    wait_until(
        lambda: (
            env.kubectl(
                "get", "httproute", "error-page", "-n", env.namespace, check=False
            ).returncode
            != 0
        ),
        10,
        "the route to be deleted",
    )
    assert env.events("error-page-v2", "CleanedUp")


def test_a_hand_edit_is_reverted_within_a_second_with_drift_corrected(env):
    publish_canary(env, 10)
    patch = [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 60}]
    edited = env.kubectl(
        "patch",
        "httproute",
        "error-page",
        "-n",
        env.namespace,
        "--type=json",
        f"--patch={json.dumps(patch)}",
        "--field-manager=hand-edit",
        "-o",
        "json",
    )
    edited_version = int(json.loads(edited.stdout)["metadata"]["resourceVersion"])

    def reverted() -> bool:  # a newer version than the edit, as the data plane sees the route
        followed = env.emulator.route_for("error-page")
        return (
            followed is not None
            and int(followed.resource_version) > edited_version
            and [weight for _, _, weight in followed.backends] == [90, 10]
        )

    wait_until(reverted, 1.0, "the hand edit to be reverted within a second", 0.005)
    wait_until(lambda: env.events("error-page-v1", "DriftCorrected"), 5, "a DriftCorrected event")
    message = env.events("error-page-v1", "DriftCorrected")[0]["message"]
    assert "hand-edit" in message and "10 %" in message, message
    assert not env.events("error-page-v2", "CanaryWeightChanged")


def test_a_route_the_implementation_does_not_accept_is_surfaced(env):
    publish_canary(env, 10)
    generation = route(env)["metadata"]["generation"]
    condition = {
        "type": "Accepted",
        "status": "False",
        "reason": "NotAllowedByListeners",
        "message": "listener http does not allow routes from this namespace",
        "observedGeneration": generation,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    status = {
        "parents": [
            {
                "parentRef": {"namespace": "canaryctl-gateway", "name": "demo"},
                "controllerName": "canaryctl.dev/route-follower",
                "conditions": [condition],
            }
        ]
    }
    env.kubectl(
        "patch",
        "httproute",
        "error-page",
        "-n",
        env.namespace,
        "--subresource=status",
        "--type=merge",
        f"--patch={json.dumps({'status': status})}",
    )
    wait_until(lambda: env.events("error-page-v1", "RouteNotAccepted"), 10, "RouteNotAccepted")
    message = env.events("error-page-v2", "RouteNotAccepted")[0]["message"]
    assert "NotAllowedByListeners" in message and "does not allow routes" in message
    wait_until(
        lambda: "NotAllowedByListeners" in (env.status("error-page-v1") or {}).get("message", ""),
        10,
        "the status annotation to carry it",
    )
    assert route_weights(env) == [90, 10]  # nothing rewritten because of it


def test_a_foreign_route_of_the_same_name_is_a_conflict_and_left_alone(env):
    foreign = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "error-page", "namespace": env.namespace},
        "spec": {"rules": [{"backendRefs": [{"name": "theirs", "port": 80}]}]},
    }
    env.kube.kubectl("create", "-f", "-", input=json.dumps(foreign))
    version = route(env)["metadata"]["resourceVersion"]
    env.apply_service("error-page-v1", {APP: "error-page"})
    wait_until(lambda: env.events("error-page-v1", "Conflict"), 20, "a Conflict warning")
    assert route(env)["metadata"]["resourceVersion"] == version


def test_restart_with_nothing_changed_writes_nothing(env):
    publish_canary(env, 30)
    wait_until(lambda: (env.status("error-page-v2") or {}).get("appliedWeight") == 30, 10, "status")
    version = route(env)["metadata"]["resourceVersion"]
    assert env.stop_controller() == 0
    env.kit.clear_log()
    reads = httproute_requests(env.kube, READ_VERBS)
    env.start_controller()
    started = reconciles(env)
    wait_until(lambda: reconciles(env) > started, 10, "a resync's reconcile (period 2 s)")
    assert env.kit.writes() == []
    assert route(env)["metadata"]["resourceVersion"] == version
    read = httproute_requests(env.kube, READ_VERBS) - reads
    # one list and one watch for the namespace, plus this test's own GETs of the route
    assert read["LIST"] <= 2 and read["WATCH"] <= 2, read


def reconciles(env) -> float:
    text = env.metrics_text()
    found = re.search(
        r'controller_runtime_reconcile_total\{[^}]*result="success"[^}]*\} (\S+)', text
    )
    return float(found.group(1)) if found else 0.0

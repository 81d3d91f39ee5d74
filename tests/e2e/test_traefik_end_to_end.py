"""canaryctl's Gateway API backend with a real implementation behind it: Traefik, end to end.

Real apiserver and CRDs, the controller as a process, Traefik (built from the Go module proxy)
programming the Gateway canaryctl's routes attach to, error-page backends behind Services and
EndpointSlices. Every count here is of requests Traefik routed; Traefik's own request
counters must agree with them. Traefik's weighted round robin is deterministic for requests
sent one after another from a freshly loaded configuration, so weighted counts are exact.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
import requests

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.gateways.gateway_api import GatewayApiKit
from canaryctl.examples.errorpage import PATH
from canaryctl.testing.localkube import wait_until
from canaryctl.testing.traefik import CONTROLLER_NAME
from canaryctl.testing.traefik.traffic import answer_label

pytestmark = pytest.mark.localkube

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
MATCH = "api7.cloud/canary-match"


@pytest.fixture
def env(localkube, gateway_api, traefik, namespace):
    """The demo environment with Traefik as its data plane (never the stand-in).

    `traefik` (the session's own instance) makes the test skip only where the plugin says so.
    """
    with DemoEnvironment(
        versions=("v1", "v2", "v3"),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        gateway=GatewayApiKit(data_plane="traefik"),
    ) as environment:
        yield environment
    localkube.kubectl("delete", "httproutes", "--all", "-n", namespace, "--wait=false")


def key(env, service: str) -> str:
    return f"{env.namespace}/{service}"


def publish(env, percent: int | None = None, canary: str = "error-page-v2", **extra) -> None:
    env.apply_service("error-page-v1", {APP: "error-page"})
    if percent is not None:
        annotations = {APP: "error-page", CANARY: "true", PERCENT: str(percent), **extra}
        env.apply_service(canary, annotations)


def route(env) -> dict:
    out = env.kubectl("get", "httproute", "error-page", "-n", env.namespace, "-o", "json")
    return json.loads(out.stdout)


SERIES = re.compile(r"^traefik_service_requests_total\{(.*)\} (\S+)$", re.M)


def served_by_traefik(env) -> dict[str, tuple[str, int]]:
    """traefik_service_requests_total of the backends in the test's namespace: labels ->
    (version, count), per series (Traefik drops a service's series with its configuration)."""
    text = requests.get(f"{env.emulator.admin_url}/metrics", timeout=5).text
    backend = re.compile(rf'service="[^"]*-svc-{re.escape(env.namespace)}-error-page-(v\d)-\d+@')
    series = {}
    for labels, value in SERIES.findall(text):
        found = backend.search(labels)
        if found:
            series[labels] = (found.group(1), int(float(value)))
    return series


def send_counted(env, count: int = 100) -> Counter:
    """Send `count` requests; check Traefik counted exactly the answers seen, per version."""
    before = served_by_traefik(env)
    answers = env.send(count)
    counted: Counter = Counter()
    for labels, (version, total) in served_by_traefik(env).items():
        counted[version] += total - before.get(labels, (version, 0))[1]
    assert +counted == answers, (counted, answers)
    return answers


def traefik_condition(env, condition: str) -> dict:
    """What Traefik reports on the route for the current generation."""
    return env.emulator.wait_route_condition(env.namespace, "error-page", condition, "True")


def test_walkthrough_counts_are_what_traefik_routed(env):
    publish(env)
    env.wait_for_split((key(env, "error-page-v1"), None, 0))
    assert send_counted(env) == {"v1": 100}
    for percent in (10, 0, 100):
        publish(env, percent)
        env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v2"), percent))
        expected = {"v1": 100 - percent, "v2": percent}
        assert send_counted(env) == {v: n for v, n in expected.items() if n}, percent
    accepted = traefik_condition(env, "Accepted")
    assert accepted["observedGeneration"] == route(env)["metadata"]["generation"]
    env.kubectl("delete", "service", "error-page-v1", "-n", env.namespace)
    env.wait_for_split((key(env, "error-page-v2"), None, 0))
    assert send_counted(env) == {"v2": 100}
    assert env.events("error-page-v2", "Promoted")


def test_a_hand_edit_is_reverted_and_traefik_routes_by_the_restored_weights(env):
    publish(env, 10)
    env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v2"), 10))
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
    edited_generation = json.loads(edited.stdout)["metadata"]["generation"]
    wait_until(lambda: env.events("error-page-v1", "DriftCorrected"), 10, "DriftCorrected")
    assert "hand-edit" in env.events("error-page-v1", "DriftCorrected")[0]["message"]
    restored = route(env)
    assert restored["metadata"]["generation"] > edited_generation
    weights = [ref["weight"] for ref in restored["spec"]["rules"][0]["backendRefs"]]
    assert weights == [90, 10]
    traefik_condition(env, "ResolvedRefs")  # Traefik has processed the restored generation
    env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v2"), 10))
    assert send_counted(env) == {"v1": 90, "v2": 10}


def test_a_canary_with_no_backend_is_surfaced_from_traefiks_resolved_refs(env):
    publish(env, 10, canary="error-page-v9")  # a Service with no endpoints: no Deployment
    message = wait_for_event(env, "error-page-v1", "RouteNotAccepted")
    assert "BackendNotFound" in message and "error-page-v9" in message, message
    assert CONTROLLER_NAME in message and "ResolvedRefs=False" in message, message
    wait_until(
        lambda: "BackendNotFound" in (env.status("error-page-v9") or {}).get("message", ""),
        10,
        "the status annotation to carry Traefik's verdict",
    )
    # Traefik answers the canary's share itself with 500, as the Gateway API asks
    env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v9"), 10))
    assert env.send(100) == {"v1": 90, "HTTP 500": 10}

    env.add_backend("v9")  # its EndpointSlice appears: Traefik resolves it, the problem clears
    wait_until(
        lambda: "BackendNotFound" not in (env.status("error-page-v9") or {}).get("message", "-"),
        20,
        "the problem to clear from the status annotation",
    )
    # Traefik writes the status before it switches to the new configuration: poll traffic
    env.emulator.wait_for_split("error-page", {"v1": 90, "v9": 10})
    assert env.send(100) == {"v1": 90, "v9": 10}


def test_a_missing_stable_service_is_surfaced_as_route_not_accepted(env):
    publish(env, 10)
    env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v2"), 10))
    # the stable leaves below 100 %: canaryctl keeps the route as it is (and warns) ...
    env.kubectl("delete", "service", "error-page-v1", "-n", env.namespace)
    # ... and Traefik reports the Service the route still names as not found
    message = wait_for_event(env, "error-page-v2", "RouteNotAccepted")
    assert "BackendNotFound" in message and "error-page-v1" in message, message
    wait_until(
        lambda: "BackendNotFound" in (env.status("error-page-v2") or {}).get("message", ""),
        10,
        "the status annotation to carry Traefik's verdict",
    )
    assert [ref["name"] for ref in route(env)["spec"]["rules"][0]["backendRefs"]] == [
        "error-page-v1",
        "error-page-v2",
    ]


@pytest.mark.parametrize(
    ("match", "matching", "other"),
    [
        ("header:X-Canary=always", {"headers": {"X-Canary": "always"}}, {}),
        (
            "cookie:beta=1",  # exact cookie: a regular expression on the Cookie header
            {"headers": {"Cookie": "theme=dark; beta=1"}},
            {"headers": {"Cookie": "beta=10"}},
        ),
        ("query:region~^eu-", {"params": {"region": "eu-west"}}, {"params": {"region": "us"}}),
    ],
)
def test_a_predicate_canary_at_0_gets_exactly_the_matching_requests(env, match, matching, other):
    publish(env, 0, canary="error-page-v3", **{MATCH: match})
    env.wait_for_split((key(env, "error-page-v1"), key(env, "error-page-v3"), 0))
    wait_until(lambda: len(env.kit.plane.rules("error-page")) == 2, 10, "the match rule")
    assert send_with(env, 50, **matching) == {"v3": 50}
    assert send_with(env, 50, **other) == {"v1": 50}
    assert send_with(env, 50) == {"v1": 50}


def send_with(env, count: int, headers: dict | None = None, params: dict | None = None):
    answers: Counter = Counter()
    with requests.Session() as session:
        for _ in range(count):
            answer = session.get(
                env.kit.dataplane_url + PATH,
                headers={"Host": "error-page", **(headers or {})},
                params=params,
                timeout=5,
            )
            answers[answer_label(answer)] += 1
    return answers


def wait_for_event(env, service: str, reason: str, timeout: float = 20) -> str:
    wait_until(lambda: env.events(service, reason), timeout, f"a {reason} event on {service}")
    return env.events(service, reason)[-1]["message"]

"""Attacks on a shared cluster, against a real apiserver and the emulator: no namespace can take
another's traffic, none can block it, and controllers scoped to different namespaces sharing one
gateway never overwrite each other.

`prod` is the test's namespace and owns application `error-page`; `evil` is a second namespace.
The controller watches both (except in the scoped-controllers case).
"""

from __future__ import annotations

import pytest

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.testing.processes import free_port, terminate, wait_until

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"


@pytest.fixture
def evil(localkube):
    name = localkube.create_namespace()
    yield name
    localkube.kubectl("delete", "services", "--all", "-n", name, "--wait=false", check=False)
    localkube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def env(localkube, namespace, evil):
    with DemoEnvironment(
        versions=("v1", "v2"),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        watched=[namespace, evil],
    ) as environment:
        # the intruder's Service routes to a backend of its own ("evil" answers)
        environment.add_backend("evil")
        environment.kit.route_service(
            f"x.{evil}.svc.cluster.local:80", environment.backends["evil"].address
        )
        yield environment


def key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def publish_prod(env, percent: int | None = None) -> None:
    env.apply_service("error-page-v1", {APP: "error-page"})
    expected = (key(env.namespace, "error-page-v1"), None, 0)
    if percent is not None:
        env.apply_service(
            "error-page-v2", {APP: "error-page", CANARY: "true", PERCENT: str(percent)}
        )
        expected = (expected[0], key(env.namespace, "error-page-v2"), percent)
    env.wait_for_split(expected)


def intrude(env, evil: str, name: str = "x", **annotations: str) -> None:
    env.apply_service(name, {APP: "error-page", **annotations}, namespace=evil)


def events_on(env, namespace: str, name: str, reason: str) -> list[dict]:
    out = env.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "-o",
        "json",
        f"--field-selector=involvedObject.name={name},reason={reason},source=canaryctl",
    ).stdout
    import json

    return json.loads(out)["items"]


def test_an_intruder_canary_gets_no_request_and_the_owner_is_told(env, evil):
    publish_prod(env)
    intrude(env, evil, **{CANARY: "true", PERCENT: "100"})
    wait_until(lambda: events_on(env, evil, "x", "Forbidden"), 20, "a Forbidden warning")
    wait_until(
        lambda: events_on(env, env.namespace, "error-page-v1", "ClaimRefused"), 20, "the owner told"
    )
    assert env.send(20) == {"v1": 20}  # 0 requests to the intruder
    assert "evil" not in env.status("error-page-v1")["message"]
    message = events_on(env, evil, "x", "Forbidden")[0]["message"]
    assert f"belongs to namespace {env.namespace}" in message


def test_when_the_owner_deletes_its_stable_the_intruder_is_not_promoted(env, evil):
    publish_prod(env)
    intrude(env, evil, **{CANARY: "true", PERCENT: "100"})
    wait_until(lambda: events_on(env, evil, "x", "Forbidden"), 20, "a Forbidden warning")
    env.kubectl("delete", "service", "error-page-v1", "-n", env.namespace)
    wait_until(lambda: env.split() == (None, None, 0), 20, "prod's app to be cleaned up")
    # the name is free; evil's lone canary publishes nothing (no stable), so nothing routes to it
    wait_until(lambda: events_on(env, evil, "x", "StableMissing"), 20, "StableMissing on evil/x")
    assert env.split() == (None, None, 0) and "evil" not in env.send(10)


def test_a_second_stable_or_canary_from_elsewhere_never_freezes_the_owner(env, evil):
    publish_prod(env, percent=20)
    intrude(env, evil, "a")
    intrude(env, evil, "b", **{CANARY: "true", PERCENT: "5"})
    wait_until(lambda: events_on(env, evil, "b", "Forbidden"), 20, "both intruders refused")
    for percent in (50, 60):
        env.annotate("error-page-v2", f"{PERCENT}={percent}")
        env.wait_for_split(
            (key(env.namespace, "error-page-v1"), key(env.namespace, "error-page-v2"), percent)
        )


def test_scoped_controllers_sharing_a_gateway_never_overwrite_each_other(env, evil, tmp_path):
    # a second controller, scoped to `evil`, shares the gateway with the test's one
    env.stop_controller()
    env.watched = [env.namespace]
    env.start_controller()
    publish_prod(env)
    metrics, health = free_port(), free_port()
    tenant_b = env.spawn_controller([evil], metrics, health, tmp_path / "b.log")
    try:
        env.wait_ready(tenant_b, health)
        intrude(env, evil)  # tenant B publishes tenant A's application name
        wait_until(lambda: events_on(env, evil, "x", "Forbidden"), 20, "B's controller refusing it")
        assert env.split() == (key(env.namespace, "error-page-v1"), None, 0)
        assert env.send(10) == {"v1": 10}
    finally:
        terminate(tenant_b)


def test_the_owner_grants_another_namespace(env, evil):
    env.apply_service("error-page-v1", {APP: "error-page", "api7.cloud/allowed-namespaces": evil})
    env.wait_for_split((key(env.namespace, "error-page-v1"), None, 0))
    intrude(env, evil, **{CANARY: "true", PERCENT: "100"})
    env.wait_for_split((key(env.namespace, "error-page-v1"), key(evil, "x"), 100))
    assert env.send(10) == {"evil": 10}


def test_with_name_bindings_a_squatter_cannot_take_a_name(localkube, namespace, evil):
    # evil/squat publishes `error-page` first; only prod's Namespace lists the name
    localkube.kubectl("annotate", "namespace", namespace, "api7.cloud/allowed-apps=error-*")
    with DemoEnvironment(
        versions=("v1",),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        watched=[namespace, evil],
        controller_args=["--require-app-binding"],
    ) as env:
        env.apply_service("squat", {APP: "error-page"}, namespace=evil)
        wait_until(lambda: events_on(env, evil, "squat", "Forbidden"), 20, "the squatter refused")
        message = events_on(env, evil, "squat", "Forbidden")[0]["message"]
        assert "api7.cloud/allowed-apps" in message and f"Namespace {evil}" in message
        env.apply_service("error-page-v1", {APP: "error-page"})
        env.wait_for_split((key(namespace, "error-page-v1"), None, 0))
        # a binding granted later lets the namespace publish its own names
        localkube.kubectl("annotate", "namespace", evil, "api7.cloud/allowed-apps=evil-app")
        env.apply_service("own", {APP: "evil-app"}, namespace=evil)
        wait_until(lambda: env.split("evil-app")[0] == key(evil, "own"), 20, "evil's own app")

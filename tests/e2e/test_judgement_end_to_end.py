"""Release judgement end to end: the split users actually get, and hooks and gates.

Real apiserver, the controller as a process, a real Prometheus scraping the gateway's data
plane, steady traffic. The observed split of a healthy release stays within tolerance; a data
plane made to split differently from its configuration (the emulators' and the Gateway API
stand-in's `set_split`) gives a `SplitMismatch` and, with `canary-on-split-mismatch: hold`, a
held step. A release can bring
its own traffic through a pre-release hook (the test kit's hook receiver starting a load
generator) and wait for a promote gate. Runs for every gateway kit that exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from canaryctl.demo.environment import DemoEnvironment
from canaryctl.demo.gateways.gateway_api import GatewayApiKit
from canaryctl.demo.traffic import LoadGenerator
from canaryctl.gateway.apisix.naming import route_id
from canaryctl.testing.hookreceiver import Answer, HookReceiver, Load
from canaryctl.testing.localkube import wait_until

APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PREFIX = "api7.cloud/canary-"
TOLERANCE = 5.0
# The defaults read the gateway's own per-upstream request counters (apisix_http_status by
# upstream node); the Gateway API kit passes its data plane's (Traefik's service series).


@contextmanager
def published_stable(kit: str | GatewayApiKit, localkube, namespace) -> Iterator[DemoEnvironment]:
    with DemoEnvironment(
        versions=("v1", "v2"),
        kube=localkube,
        namespace=namespace,
        progress=lambda _: None,
        with_prometheus=True,
        gateway=kit,
    ) as environment:
        environment.apply_service("error-page-v1", {APP: "error-page"})
        environment.wait_for_split((f"{namespace}/error-page-v1", None, 0))
        yield environment


@pytest.fixture(params=["api7", "apisix", "gateway-api"])
def env(request, localkube, namespace, prometheus_server_factory):
    prometheus_server_factory([])  # skips (or fails under CANARYCTL_REQUIRE_PROMETHEUS=1)
    with published_stable(request.param, localkube, namespace) as environment:
        yield environment


@pytest.fixture(params=["api7", "apisix", "gateway-api"])
def skewable(request, localkube, namespace, prometheus_server_factory):
    """As `env`, with a data plane that can be told to split differently: for the Gateway API,
    the kit's stand-in (Traefik splits as the route says, and nothing else)."""
    prometheus_server_factory([])
    kit = GatewayApiKit("route-follower") if request.param == "gateway-api" else request.param
    with published_stable(kit, localkube, namespace) as environment:
        yield environment


def release(env, **settings: str) -> None:
    annotations = {
        APP: "error-page",
        CANARY: "true",
        PREFIX + "steps": "20,50",
        PREFIX + "step-interval": "4s",
        PREFIX + "min-requests": "10",
    }
    annotations.update({PREFIX + key.replace("_", "-"): value for key, value in settings.items()})
    env.apply_service("error-page-v2", annotations)


def progress(env) -> dict:
    return (env.status("error-page-v2") or {}).get("release") or {}


def split_of(state: dict) -> dict:
    return (state.get("lastCheck") or {}).get("split") or {}


def skew(env, canary_share: int) -> None:
    """Make the data plane send `canary_share` % to the canary, whatever it is told."""
    if env.kit.name == "api7":
        env.emulator.set_split("error-page", [canary_share, 100 - canary_share])
    elif env.kit.name == "apisix":  # the weighted rule's entries: the canary, the route's own
        env.emulator.set_split(route_id("error-page"), [canary_share, 100 - canary_share])
    else:  # the route follower, by backend
        shares = {"error-page-v2": canary_share, "error-page-v1": 100 - canary_share}
        env.emulator.set_split(
            f"{env.namespace}/error-page",
            {f"{env.namespace}/{name}": share for name, share in shares.items()},
        )


def exported_share(env) -> float | None:
    found = re.search(
        r'^canaryctl_canary_observed_share\{app="error-page",namespace="[^"]+"\} (\S+)$',
        env.metrics_text(),
        re.M,
    )
    return float(found.group(1)) if found else None


def test_a_healthy_split_is_within_tolerance_at_every_check(env):
    with LoadGenerator(env.kit.dataplane_url, rate=60):
        release(env)
        wait_until(lambda: progress(env).get("phase") == "Succeeded", 90, "the release")
    split = split_of(progress(env))  # the last check, at 50 %
    assert split["verdict"] == "within" and split["expected"] == 50, split
    assert abs(split["share"] - 50) <= TOLERANCE and split["low"] <= 50 <= split["high"]
    assert split["canary"] + split["stable"] >= 10
    advanced = [e["message"] for e in env.events("error-page-v2", "StepAdvanced")]
    assert any("the canary served" in message for message in advanced), advanced
    assert not env.events("error-page-v2", "SplitMismatch")
    assert exported_share(env) == pytest.approx(split["share"], abs=0.01)


def test_a_data_plane_that_splits_differently_is_a_split_mismatch_and_holds_the_step(skewable):
    env = skewable
    skew(env, 80)
    with LoadGenerator(env.kit.dataplane_url, rate=60):
        release(env, on_split_mismatch="hold")
        wait_until(lambda: env.events("error-page-v2", "SplitMismatch"), 60, "SplitMismatch")
        state = progress(env)
    assert (state["phase"], state["weight"]) == ("Progressing", 20)  # held, not failed
    assert state["counts"]["splitMismatch"] >= 2 and state["counts"]["fail"] == 0
    split = split_of(state)
    assert split["verdict"] == "outside" and abs(split["share"] - 80) <= TOLERANCE, split
    (warning,) = env.events("error-page-v2", "SplitMismatch")
    assert warning["type"] == "Warning" and "outside 20 % ± 5" in warning["message"]
    assert env.events("error-page-v2", "StepHeld") and env.split()[2] == 20
    assert exported_share(env) == pytest.approx(split["share"], abs=0.01)


def test_a_release_brings_its_own_traffic_and_waits_for_its_promote_gate(env):
    with HookReceiver() as hooks:
        hooks.load_on_call("/pre", Load(env.kit.dataplane_url, rate=60, seconds=60))
        hooks.answer("/gate", Answer(423, "waiting for sign-off", times=1))
        release(env, pre_hook=hooks.url("/pre"), promote_gate=hooks.url("/gate"))
        wait_until(lambda: progress(env).get("phase") == "Succeeded", 90, "the release")
        (pre,) = hooks.calls("/pre")
        gates = hooks.calls("/gate")
        traffic = hooks.load_counts()
    assert (pre.payload["hook"], pre.payload["weight"]) == ("pre", 0)  # before any traffic
    assert [call.payload["weight"] for call in gates] == [50, 50]  # no, then yes
    (held,) = env.events("error-page-v2", "PromotionHeld")
    assert "waiting for sign-off" in held["message"] and "holding at 50 %" in held["message"]
    assert traffic.get("v2 200", 0) > 0 and traffic.get("v1 200", 0) > 0
    # the data plane follows the gateway's write (Traefik: after its provider throttle)
    wait_until(lambda: env.split()[2] == 100, 10, "the data plane at 100 %")

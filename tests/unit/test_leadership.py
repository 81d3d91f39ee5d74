"""Leadership's pure parts: the write fence, the flags, the pod's namespace, exit on loss."""

from __future__ import annotations

import argparse
from types import MappingProxyType

import pytest
from kubernetes import client

from canaryctl import metrics
from canaryctl.events import EventRecorder
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.kube import SERVICEACCOUNT_DIR_ENV
from canaryctl.leaderelection import ElectionConfig
from canaryctl.leadership import (
    ElectedController,
    FencedGateway,
    NotLeading,
    add_options,
    election_config,
    own_namespace,
    seconds,
)
from canaryctl.objects import Service, ServicePort
from canaryctl.testing.memory_gateway import MemoryGateway

V1 = Upstream("demo", "v1", "v1.demo.svc.cluster.local", 80)
SPEC = AppSpec("shop", V1)


class Switch:
    def __init__(self, on: bool = True) -> None:
        self.on = on

    def __call__(self) -> bool:
        return self.on


# the fence ---------------------------------------------------------------------------------


def test_the_fenced_gateway_writes_only_while_leading_and_always_reads():
    inner, leading = MemoryGateway({"cart": AppState("cart", True, V1, None, 0)}), Switch()
    inner.cross_namespace_members = False  # a backend's own attribute
    fenced = FencedGateway(inner, leading)
    fenced.apply(None, SPEC)
    leading.on = False
    with pytest.raises(NotLeading, match="shop"):
        fenced.apply(None, SPEC)
    with pytest.raises(NotLeading, match="cart"):
        fenced.delete(inner.apps["cart"])
    assert fenced.read_app("shop") is not None and set(fenced.list_apps()) == {"shop", "cart"}
    assert fenced.cross_namespace_members is False
    assert inner.writes() == [("apply", "shop")]  # the refused ones never reached the backend


def test_a_replica_that_lost_the_lease_drops_its_queued_events():
    def dropped() -> float:
        sample = ("canaryctl_events_dropped_total", {"reason": "not_leader"})
        return metrics.REGISTRY.get_sample_value(*sample) or 0.0

    before = dropped()
    # nothing listens at this address: an attempted send would fail, not be dropped
    recorder = EventRecorder(client.ApiClient(client.Configuration(host="http://127.0.0.1:9")),
                             may_send=Switch(False))  # fmt: skip
    service = Service("demo", "v1", "uid", "1", MappingProxyType({}), (ServicePort("http", 80),))
    recorder.warning(service, "GatewayError", "boom")
    assert recorder.flush(5)
    recorder.stop()
    assert recorder.dropped == 1 and dropped() - before == 1


# flags -------------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser)
    return parser.parse_args(argv)


def test_durations_read_like_client_go_flags():
    assert (seconds("15s"), seconds("15"), seconds("500ms"), seconds("2.5s")) == (15, 15, 0.5, 2.5)
    with pytest.raises(argparse.ArgumentTypeError):
        seconds("15m")


def test_no_election_without_the_flag_and_client_gos_defaults_with_it():
    assert election_config(parse(), {}) is None
    config = election_config(parse("--leader-elect", "--leader-elect-namespace=ops"), {})
    assert config == ElectionConfig("canaryctl", "ops", 15, 10, 2)


def test_short_timings_and_another_lease_name():
    args = parse("--leader-elect", "--leader-elect-namespace=ops",
                 "--leader-elect-lease-duration=3s", "--leader-elect-renew-deadline=2s",
                 "--leader-elect-retry-period=500ms", "--leader-elect-lease-name=b")  # fmt: skip
    assert election_config(args, {}) == ElectionConfig("b", "ops", 3, 2, 0.5)


def test_timings_that_break_the_safety_margin_are_refused():
    args = parse(
        "--leader-elect", "--leader-elect-namespace=ops", "--leader-elect-renew-deadline=15s"
    )
    with pytest.raises(ValueError, match="greater than the renew deadline"):
        election_config(args, {})


def test_the_namespace_comes_from_the_pod_else_it_is_required(tmp_path):
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    (mount / "namespace").write_text("canaryctl-system\n")
    in_pod = {SERVICEACCOUNT_DIR_ENV: str(mount)}
    assert own_namespace(in_pod) == "canaryctl-system"
    assert own_namespace({**in_pod, "POD_NAMESPACE": "from-field-ref"}) == "from-field-ref"
    assert election_config(parse("--leader-elect"), in_pod).namespace == "canaryctl-system"
    flagged = parse("--leader-elect", "--leader-elect-namespace=ops")
    assert election_config(flagged, in_pod).namespace == "ops"
    nowhere = {SERVICEACCOUNT_DIR_ENV: str(tmp_path / "missing")}
    with pytest.raises(ValueError, match="--leader-elect-namespace"):
        election_config(parse("--leader-elect"), nowhere)


# losing the lease --------------------------------------------------------------------------


def test_losing_the_lease_exits_and_handing_it_back_does_not():
    exits: list[int] = []
    config = ElectionConfig("canaryctl", "ops", 3, 2, 0.5)
    replica = ElectedController(client.ApiClient(), config, "pod-a_1", exit=exits.append)
    replica._stopped_leading()  # the elector's callback after a loss
    assert exits == [1]
    replica._stopping.set()  # SIGTERM: stop() hands the Lease back on purpose
    replica._stopped_leading()
    assert exits == [1]

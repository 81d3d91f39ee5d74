"""The Gateway API backend against the real apiserver with the upstream CRDs installed.

Every route canaryctl writes is judged by the real HTTPRoute schema and CEL rules; hand edits
are made by another field manager with kubectl, the implementation's verdict is written
through the status subresource, and 410 / apiserver restarts are the real thing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client

from canaryctl.gateway.base import TerminalGatewayError
from canaryctl.gateway.gatewayapi import GatewayApiGateway, ParentRef, RouteClient
from canaryctl.gateway.gatewayapi.route import GROUP, PLURAL, VERSION
from canaryctl.gateway.model import AppSpec, Upstream
from canaryctl.listwatch import Backoff
from canaryctl.testing.localkube import wait_until

pytestmark = pytest.mark.localkube


def upstream(namespace: str, service: str, port: int = 80) -> Upstream:
    return Upstream(namespace, service, f"{service}.{namespace}.svc.cluster.local", port)


class Notified:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.apps: list[str] = []

    def __call__(self, app: str) -> None:
        with self._lock:
            self.apps.append(app)

    def count(self, app: str) -> int:
        with self._lock:
            return self.apps.count(app)


@pytest.fixture
def custom(kube_api, gateway_api) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def notified() -> Notified:
    return Notified()


@pytest.fixture
def backend(kube_api, gateway_api, namespace, notified) -> Iterator[GatewayApiGateway]:
    gateway = GatewayApiGateway(
        RouteClient(kube_api),
        ParentRef(namespace, "gw"),
        namespaces=[namespace],
        backoff=lambda: Backoff(initial=0.2, cap=1.0),
    )
    gateway.start(notified)
    assert gateway.informer.wait_for_sync(20)
    yield gateway
    gateway.stop()


def route(custom, namespace: str, name: str = "web") -> dict:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def weights(stored: dict) -> list[tuple[str, int]]:
    refs = stored["spec"]["rules"][0]["backendRefs"]
    return [(ref["name"], ref["weight"]) for ref in refs]


def spec(namespace: str, weight: int | None = None, **options) -> AppSpec:
    stable = upstream(namespace, "web-v1")
    if weight is None:
        return AppSpec("web", stable, **options)
    return AppSpec("web", stable, upstream(namespace, "web-v2"), weight, **options)


def test_the_walkthrough_is_one_route_whose_weights_follow_the_spec(backend, custom, namespace):
    state = backend.apply(None, spec(namespace))
    stored = route(custom, namespace)
    assert weights(stored) == [("web-v1", 100)]
    assert stored["spec"]["hostnames"] == ["web"]
    assert stored["spec"]["parentRefs"] == [
        {"group": GROUP, "kind": "Gateway", "namespace": namespace, "name": "gw"}
    ]
    assert stored["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "canaryctl"}
    assert stored["metadata"]["annotations"]["api7.cloud/application"] == "web"
    assert state.owned and state.conforms and state.matches(spec(namespace))
    for percent, expected in ((10, [90, 10]), (0, [100, 0]), (100, [0, 100]), (35, [65, 35])):
        state = backend.apply(state, spec(namespace, percent))
        assert [w for _, w in weights(route(custom, namespace))] == expected
        assert state.weight == percent and state.conforms, state
        assert backend.read_app("web") == state
    promoted = AppSpec("web", upstream(namespace, "web-v2"))
    state = backend.apply(state, promoted)
    assert weights(route(custom, namespace)) == [("web-v2", 100)]
    assert state.matches(promoted) and backend.read_app("web") == state
    wait_until(lambda: backend.list_apps() == {"web": state}, 5, "the watch to see the write")


def test_a_matching_state_is_written_no_more(backend, custom, namespace):
    state = backend.apply(None, spec(namespace, 10))
    version = route(custom, namespace)["metadata"]["resourceVersion"]
    assert backend.apply(state, spec(namespace, 10)) is state
    assert route(custom, namespace)["metadata"]["resourceVersion"] == version


def test_cleanup_deletes_the_route(backend, custom, namespace):
    state = backend.apply(None, spec(namespace, 10))
    backend.delete(state)
    assert backend.read_app("web") is None
    backend.delete(state)  # already gone: still fine
    wait_until(lambda: backend.list_apps() == {}, 5, "the watch to see the deletion")


def test_own_writes_are_not_reported_as_changes(backend, custom, namespace, notified):
    state = backend.apply(None, spec(namespace, 10))
    state = backend.apply(state, spec(namespace, 20))
    backend.delete(state)
    wait_until(lambda: backend.list_apps() == {}, 5, "the watch to catch up")
    assert notified.apps == []


def foreign_route(custom, namespace: str) -> dict:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["web"],
            "rules": [{"backendRefs": [{"name": "theirs", "port": 8080}]}],
        },
    }
    return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def test_a_route_canaryctl_did_not_create_is_never_touched(backend, custom, namespace):
    created = foreign_route(custom, namespace)
    with pytest.raises(TerminalGatewayError, match="not created by canaryctl"):
        backend.apply(None, spec(namespace, 10))  # the cache had nothing: looked before creating
    state = backend.read_app("web")
    assert state is not None and not state.owned
    with pytest.raises(TerminalGatewayError, match="refusing to modify"):
        backend.apply(state, spec(namespace, 10))
    with pytest.raises(TerminalGatewayError, match="refusing to delete"):
        backend.delete(state)
    assert backend.list_apps()["web"] == state  # remembered for resyncs
    after = route(custom, namespace)
    assert after["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert after["metadata"].get("labels") is None


def test_members_of_another_namespace_are_refused_naming_referencegrant(backend, namespace):
    desired = AppSpec("web", upstream(namespace, "web-v1"), upstream("elsewhere", "web-v2"), 10)
    with pytest.raises(TerminalGatewayError, match="ReferenceGrant"):
        backend.apply(None, desired)
    assert GatewayApiGateway.cross_namespace_members is False


def test_the_parent_annotation_attaches_the_route_elsewhere(backend, custom, namespace):
    state = backend.apply(None, spec(namespace, 10, parent="infra/edge/https"))
    ref = route(custom, namespace)["spec"]["parentRefs"]
    assert ref == [
        {
            "group": GROUP,
            "kind": "Gateway",
            "namespace": "infra",
            "name": "edge",
            "sectionName": "https",
        }
    ]
    assert state.parent == "infra/edge/https" and state.conforms
    state = backend.apply(state, spec(namespace, 10))  # annotation removed: back to the default
    assert route(custom, namespace)["spec"]["parentRefs"][0]["name"] == "gw"
    assert state.parent == "" and state.conforms


def hand_edit(localkube, namespace: str, weight: int) -> None:
    patch = [{"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": weight}]
    localkube.kubectl(
        "patch",
        "httproute",
        "web",
        "-n",
        namespace,
        "--type=json",
        f"--patch={json.dumps(patch)}",
        "--field-manager=hand-edit",
    )


def test_a_hand_edit_is_seen_at_once_and_reverted_by_a_forced_apply(
    backend, custom, namespace, notified, localkube
):
    backend.apply(None, spec(namespace, 10))
    hand_edit(localkube, namespace, 50)
    wait_until(lambda: notified.count("web") == 1, 5, "the watch to report the hand edit")
    edited = backend.read_app("web")
    assert edited.edited_by == ("hand-edit",) and not edited.conforms
    assert edited.weight == round(100 * 50 / 140)  # what the route holds: 90 and 50
    assert not edited.matches(spec(namespace, 10))
    restored = backend.apply(edited, spec(namespace, 10))
    assert [w for _, w in weights(route(custom, namespace))] == [90, 10]
    assert restored.edited_by == () and restored.conforms and restored.matches(spec(namespace, 10))
    managers = {entry["manager"] for entry in route(custom, namespace)["metadata"]["managedFields"]}
    assert "canaryctl" in managers


def test_a_label_added_by_hand_is_not_drift(backend, namespace, notified, localkube):
    backend.apply(None, spec(namespace, 10))
    localkube.kubectl("label", "httproute", "web", "-n", namespace, "team=web")
    wait_until(lambda: backend.routes.list()[0].resource_version != "", 5, "the watch")
    state = backend.read_app("web")
    assert state.conforms and state.edited_by == ()
    assert notified.count("web") == 0


def not_accepted(generation: int, namespace: str) -> dict:
    condition = {
        "type": "Accepted",
        "status": "False",
        "reason": "NotAllowedByListeners",
        "message": "no listener of gw allows routes from this namespace",
        "observedGeneration": generation,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    parent = {
        "parentRef": {"group": GROUP, "kind": "Gateway", "namespace": namespace, "name": "gw"},
        "controllerName": "example.com/gateway",
        "conditions": [condition],
    }
    return {"status": {"parents": [parent]}}


def test_the_implementations_verdict_is_read_from_the_route_status(
    backend, custom, namespace, notified
):
    backend.apply(None, spec(namespace, 10))
    generation = route(custom, namespace)["metadata"]["generation"]
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "web", not_accepted(generation, namespace)
    )
    wait_until(lambda: notified.count("web") == 1, 5, "the watch to report the status")
    state = backend.read_app("web")
    assert state.problem_reason == "NotAllowedByListeners"
    assert "example.com/gateway reports Accepted=False" in state.problem
    assert "no listener of gw allows" in state.problem
    assert state.conforms  # the route is as written; the implementation refuses it


def test_the_route_watch_relists_after_410_and_survives_an_apiserver_restart(
    backend, namespace, notified, localkube
):
    backend.apply(None, spec(namespace, 10))
    localkube.compact()  # etcd compacted, apiserver restarted: the watch's version is gone
    hand_edit(localkube, namespace, 30)
    wait_until(lambda: notified.count("web") >= 1, 30, "the relisted watch to see the edit")
    localkube.restart_apiserver()
    hand_edit(localkube, namespace, 40)
    wait_until(lambda: notified.count("web") >= 2, 30, "the resumed watch to see the edit")
    assert backend.read_app("web").weight == round(100 * 40 / 130)

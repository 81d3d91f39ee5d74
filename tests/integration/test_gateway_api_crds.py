"""The Gateway API CRDs in the local apiserver are upstream's: schema and CEL rules bite.

A Gateway API backend is only as well tested as the objects the apiserver accepts from it,
so these tests check that the real standard-channel CRDs are installed and Established,
that a valid HTTPRoute is stored, that invalid ones are refused by the rules upstream wrote,
and that an implementation can report through the status subresource.
"""

from __future__ import annotations

import copy

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from canaryctl.testing.localkube.gateway_api import GATEWAY_API_VERSION, GROUP

pytestmark = pytest.mark.localkube

VERSION = "v1"
STANDARD_KINDS = {
    "gatewayclasses",
    "gateways",
    "grpcroutes",
    "httproutes",
    "referencegrants",
    "backendtlspolicies",
    "listenersets",
    "tlsroutes",
    "tcproutes",
    "udproutes",
}


def _route(name: str = "web") -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["error-page"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"name": "error-page-v1", "port": 80, "weight": 90},
                        {"name": "error-page-v2", "port": 80, "weight": 10},
                    ],
                }
            ],
        },
    }


def _create(api: client.CustomObjectsApi, namespace: str, body: dict) -> dict:
    return api.create_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes", body)


@pytest.fixture
def custom_api(kube_api, gateway_api) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


def test_standard_channel_crds_are_established(kube_api, gateway_api):
    crds = client.ApiextensionsV1Api(kube_api).list_custom_resource_definition().items
    ours = {crd.spec.names.plural: crd for crd in crds if crd.spec.group == GROUP}
    assert set(ours) == STANDARD_KINDS, sorted(ours)
    assert sorted(f"{plural}.{GROUP}" for plural in ours) == sorted(gateway_api)
    for plural, crd in ours.items():
        conditions = {c.type: c.status for c in crd.status.conditions}
        assert conditions.get("Established") == "True", plural
        annotations = crd.metadata.annotations
        assert annotations["gateway.networking.k8s.io/channel"] == "standard"
        assert annotations["gateway.networking.k8s.io/bundle-version"] == GATEWAY_API_VERSION
    served = {v.name for v in ours["httproutes"].spec.versions if v.served}
    assert VERSION in served


def test_installing_again_changes_nothing(localkube, kube_api, gateway_api):
    def versions() -> dict[str, str]:
        crds = client.ApiextensionsV1Api(kube_api).list_custom_resource_definition().items
        return {c.metadata.name: c.metadata.resource_version for c in crds}

    before = versions()
    assert localkube.install_gateway_api() == gateway_api
    assert versions() == before


def test_a_valid_httproute_is_stored_with_defaults(custom_api, namespace):
    stored = _create(custom_api, namespace, _route())
    rule = stored["spec"]["rules"][0]
    assert [ref["weight"] for ref in rule["backendRefs"]] == [90, 10]
    # defaults from the schema, filled in by the apiserver
    assert rule["backendRefs"][0]["kind"] == "Service"
    assert stored["spec"]["parentRefs"][0]["group"] == GROUP
    assert stored["spec"]["parentRefs"][0]["kind"] == "Gateway"


def _with_weight(route: dict, weight: int) -> dict:
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = weight
    return route


def _with_refs(route: dict, count: int) -> dict:
    refs = [{"name": f"svc-{i}", "port": 80, "weight": 1} for i in range(count)]
    route["spec"]["rules"][0]["backendRefs"] = refs
    return route


def _without_port(route: dict) -> dict:
    del route["spec"]["rules"][0]["backendRefs"][1]["port"]
    return route


def _relative_path(route: dict) -> dict:
    route["spec"]["rules"][0]["matches"][0]["path"]["value"] = "api"
    return route


def _redirect_with_backends(route: dict) -> dict:
    redirect = {"type": "RequestRedirect", "requestRedirect": {"statusCode": 302}}
    route["spec"]["rules"][0]["filters"] = [redirect]
    return route


def _filter_type_mismatch(route: dict) -> dict:
    modifier = {"set": [{"name": "X-Canary", "value": "1"}]}
    route["spec"]["rules"][0]["filters"] = [
        {"type": "URLRewrite", "requestHeaderModifier": modifier}
    ]
    return route


INVALID = {
    # OpenAPI schema bounds
    "weight above 1000000": (
        lambda r: _with_weight(r, 1_000_001),
        "weight in body should be less than or equal to 1000000",
    ),
    "negative weight": (
        lambda r: _with_weight(r, -1),
        "weight in body should be greater than or equal to 0",
    ),
    "17 backendRefs": (lambda r: _with_refs(r, 17), "must have at most 16 items"),
    # CEL rules (x-kubernetes-validations)
    "Service ref without port": (_without_port, "Must have port for Service reference"),
    "relative path prefix": (_relative_path, "must be an absolute path"),
    "redirect with backendRefs": (_redirect_with_backends, "RequestRedirect filter must not"),
    "filter type mismatch": (_filter_type_mismatch, "filter.requestHeaderModifier must be nil"),
}


@pytest.mark.parametrize("case", INVALID)
def test_an_invalid_httproute_is_refused_by_the_real_rules(custom_api, namespace, case):
    mutate, expected = INVALID[case]
    with pytest.raises(ApiException) as refused:
        _create(custom_api, namespace, mutate(copy.deepcopy(_route())))
    assert refused.value.status == 422, refused.value.body
    assert expected in refused.value.body
    assert (
        custom_api.list_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes")["items"]
        == []
    )


def _route_status(generation: int) -> dict:
    """What an implementation reports for one parent Gateway."""
    now = "2026-01-01T00:00:00Z"
    conditions = [
        {
            "type": kind,
            "status": "True",
            "reason": kind,
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": now,
        }
        for kind in ("Accepted", "ResolvedRefs")
    ]
    return {
        "parents": [
            {
                "parentRef": {"group": GROUP, "kind": "Gateway", "name": "gw"},
                "controllerName": "example.com/gateway-controller",
                "conditions": conditions,
            }
        ]
    }


def test_an_implementation_reports_through_the_status_subresource(custom_api, namespace):
    stored = _create(custom_api, namespace, _route())
    generation = stored["metadata"]["generation"]

    # status written with the main resource is dropped: only /status may change it
    custom_api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "httproutes", "web", {"status": _route_status(generation)}
    )
    read = custom_api.get_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes", "web")
    assert not read.get("status", {}).get("parents")

    custom_api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "httproutes", "web", {"status": _route_status(generation)}
    )
    read = custom_api.get_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes", "web")
    parent = read["status"]["parents"][0]
    assert parent["controllerName"] == "example.com/gateway-controller"
    assert {c["type"]: c["status"] for c in parent["conditions"]} == {
        "Accepted": "True",
        "ResolvedRefs": "True",
    }
    assert read["metadata"]["generation"] == generation  # status never bumps the generation


def test_status_is_validated_too(custom_api, namespace):
    _create(custom_api, namespace, _route())
    status = _route_status(1)
    status["parents"][0]["controllerName"] = "no-domain-prefix"
    with pytest.raises(ApiException) as refused:
        custom_api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "httproutes", "web", {"status": status}
        )
    assert refused.value.status == 422
    assert "controllerName" in refused.value.body

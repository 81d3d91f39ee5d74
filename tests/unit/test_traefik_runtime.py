"""Reading what Traefik routes from its `/api/rawdata` (the shape Traefik v3.7 returns)."""

from __future__ import annotations

from canaryctl.testing.traefik.runtime import normalize, routed_rules, router_prefix

MATCH_ROUTER = "httproute-demo-error-page-gw-canaryctl-gateway-traefik-ab12-ep-web-0-61503aed88"
WEIGHTED_ROUTER = "httproute-demo-error-page-gw-canaryctl-gateway-traefik-ab12-ep-web-1-b19631eadec"
OTHER_NAMESPACE_ROUTER = "httproute-other-error-page-gw-canaryctl-gateway-traefik-ab12-ep-web-0-ff"
GATEWAY = ("canaryctl-gateway", "traefik-ab12")


def router(name: str, rule: str, priority: int) -> dict:
    return {"entryPoints": ["web"], "service": f"{name}-wrr", "rule": rule, "priority": priority}


def weighted(*children: tuple[str, int]) -> dict:
    return {"weighted": {"services": [{"name": n, "weight": w} for n, w in children]}}


RAW = {
    "routers": {
        f"{MATCH_ROUTER}@kubernetesgateway": router(
            MATCH_ROUTER, 'Host("error-page") && Header("x-canary","always")', 113
        ),
        f"{WEIGHTED_ROUTER}@kubernetesgateway": router(WEIGHTED_ROUTER, 'Host("error-page")', 12),
        "api@internal": router("api", "PathPrefix(`/api`)", 2**62),
        f"{OTHER_NAMESPACE_ROUTER}@kubernetesgateway": router(
            OTHER_NAMESPACE_ROUTER, 'Host("error-page")', 12
        ),
    },
    "services": {
        f"{MATCH_ROUTER}-wrr@kubernetesgateway": weighted((f"{MATCH_ROUTER}-svc-demo-v3-0", 1)),
        f"{WEIGHTED_ROUTER}-wrr@kubernetesgateway": weighted(
            (f"{WEIGHTED_ROUTER}-svc-demo-error-page-v2-0", 100),
            (f"{WEIGHTED_ROUTER}-svc-demo-error-page-v3-1", 0),
        ),
    },
}


def test_the_routers_of_one_route_first_rule_first_with_their_weights():
    rules = routed_rules(RAW, "demo", "error-page", GATEWAY)
    assert [rule.router for rule in rules] == [MATCH_ROUTER, WEIGHTED_ROUTER]
    assert rules[0].backends == (("demo/v3", 1),)
    assert rules[1].backends == (("demo/error-page-v2", 100), ("demo/error-page-v3", 0))
    assert "Header" in rules[0].rule


def test_no_router_for_a_route_traefik_has_not_loaded():
    assert routed_rules(RAW, "demo", "other-app", GATEWAY) == []
    assert routed_rules({}, "demo", "error-page", GATEWAY) == []


def test_names_are_normalized_as_traefik_does():
    assert normalize("a.b--c_d") == "a-b-c-d"
    assert router_prefix("ns", "app.example.com", "gw-ns", "gw") == (
        "httproute-ns-app-example-com-gw-gw-ns-gw-ep-"
    )

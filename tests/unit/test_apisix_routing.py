"""Which route the APISIX emulator's data plane picks, as `radixtree_host_uri` does.

Each case names the upstream source or test it mirrors: apache/apisix
`apisix/http/router/radixtree_host_uri.lua`, `t/router/radixtree-host-uri*.t`,
`t/node/route-status.t`, `t/node/priority-balancer` and api7/lua-resty-radixtree's
matching order (exact path, then longest prefix, then priority).
"""

from __future__ import annotations

from canaryctl.testing.apisix.routing import RequestVars, match_route
from canaryctl.testing.apisix.store import StoredItem


def routes(*values: dict) -> list[StoredItem]:
    return [
        StoredItem("routes", str(index), {"id": str(index), **value}, index, index)
        for index, value in enumerate(values, start=1)
    ]


def served(
    table: list[StoredItem], path: str, host: str = "example.com", method: str = "GET", **headers
) -> str | None:
    variables = RequestVars(method, path, [("Host", host), *headers.items()])
    match = match_route(table, variables)
    return match.route.id if match else None


def test_exact_uri_beats_any_prefix_and_longer_prefix_beats_shorter():
    # lua-resty-radixtree: hash (exact) paths first, then prefixes from the longest
    table = routes({"uri": "/*"}, {"uri": "/api/*"}, {"uri": "/api/users"})
    assert served(table, "/api/users") == "3"
    assert served(table, "/api/users/1") == "2"
    assert served(table, "/api") == "1"  # `/api/*` is the prefix `/api/`
    assert served(table, "/other") == "1"


def test_priority_then_age_break_ties_on_the_same_uri():
    # same URI, several routes (docs/gateways/apisix.md): priority first, then age
    table = routes({"uri": "/a"}, {"uri": "/a", "priority": 5}, {"uri": "/a", "priority": 5})
    assert served(table, "/a") == "2"
    assert served(routes({"uri": "/a"}, {"uri": "/a"}), "/a") == "1"


def test_host_routes_first_exact_host_before_wildcard():
    # radixtree_host_uri.lua: host router (reversed hosts, exact before prefix) first
    table = routes(
        {"uri": "/x/y"},
        {"uri": "/*", "hosts": ["*.example.com"]},
        {"uri": "/*", "host": "api.example.com"},
    )
    assert served(table, "/x/y", host="api.example.com") == "3"
    assert served(table, "/x/y", host="www.example.com") == "2"
    assert served(table, "/x/y", host="example.com") == "1"  # `*.example.com` needs a subdomain


def test_a_host_without_a_matching_uri_falls_back_to_hostless_routes():
    # radixtree_host_uri.lua `match`: only_uri_router after the host router found nothing
    table = routes({"uri": "/only", "host": "a.com"}, {"uri": "/*"})
    assert served(table, "/only", host="a.com") == "1"
    assert served(table, "/else", host="a.com") == "2"


def test_host_header_port_and_case_are_ignored():
    # nginx `$host`: lower-cased, without port
    table = routes({"uri": "/*", "host": "error-page"})
    assert served(table, "/api/error_page", host="Error-Page:9080") == "1"
    assert served(table, "/api/error_page", host="other") is None


def test_methods_vars_and_remote_addrs_filter_candidates():
    # radixtree route options `methods`, `vars` (lua-resty-expr), `remote_addrs`
    table = routes(
        {"uri": "/*", "methods": ["POST"], "priority": 3},
        {"uri": "/*", "vars": [["http_x_canary", "==", "1"]], "priority": 2},
        {"uri": "/*", "remote_addrs": ["10.0.0.0/8"], "priority": 1},
        {"uri": "/*"},
    )
    assert served(table, "/", method="POST") == "1"
    assert served(table, "/", **{"X-Canary": "1"}) == "2"
    assert served(table, "/") == "4"


def test_disabled_routes_do_not_match():
    # t/node/route-status.t: status 0 takes the route out of the router
    table = routes({"uri": "/*", "status": 0})
    assert served(table, "/") is None


def test_match_reports_the_patterns_for_the_metrics():
    # prometheus exporter `matched_uri` / `matched_host` = radixtree `_path` / `_host`
    table = routes({"uris": ["/v1/*", "/v2/*"], "hosts": ["*.svc"]})
    variables = RequestVars("GET", "/v2/x?y=1", [("Host", "a.svc")])
    match = match_route(table, variables)
    assert match is not None
    assert (match.matched_uri, match.matched_host) == ("/v2/*", "*.svc")
    hostless = match_route(routes({"uri": "/v2/x"}), variables)
    assert hostless is not None and hostless.matched_host == ""

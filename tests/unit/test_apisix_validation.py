"""What the APISIX emulator's Admin API refuses, in APISIX's words, and the defaults it stores.

Each case names the upstream test it mirrors (apache/apisix `t/admin/*.t`,
`t/plugin/traffic-split.t`) or, where no test pins the text, the Lua source that words it.
Messages follow api7/jsonschema's generated validator (`lib/jsonschema.lua`).
"""

from __future__ import annotations

import copy

import pytest

from canaryctl.testing.apisix.jsonschema import check, lua_quote
from canaryctl.testing.apisix.store import AdminError, Store

UPSTREAM = {"nodes": {"127.0.0.1:8080": 1}, "type": "roundrobin"}
INVALID = "invalid configuration: "
NO_ENUM = "validation failed: matches none of the enum values"
NONE_REQUIRED = "validation failed: object matches none of the required"
ROUTE = {"uri": "/index.html", "upstream": UPSTREAM}


def refusal(resource: str, body, url_id: str | None = "1", method: str = "put") -> str:
    store = Store(clock=lambda: 1_700_000_000)
    store.put("upstreams", "known", copy.deepcopy(UPSTREAM))
    with pytest.raises(AdminError) as caught:
        getattr(store, method)(resource, url_id, copy.deepcopy(body))
    assert caught.value.status == 400
    assert store.find(resource, url_id or "") is None, "a refused value is not stored"
    return caught.value.body["error_msg"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # t/admin/routes.t "invalid route: duplicate method"
        (
            {"methods": ["GET", "GET"]},
            'invalid configuration: property "methods" validation failed: '
            "expected unique items but items 1 and 2 are equal",
        ),
        # t/admin/routes.t "invalid method"
        (
            {"methods": ["invalid_method"]},
            'invalid configuration: property "methods" validation failed: '
            "failed to validate item 1: matches none of the enum values",
        ),
        # t/admin/routes.t "invalid id" (TEST 12)
        ({"id": 3}, "wrong route id"),
        # t/admin/routes2.t TEST 14 "enable hosts and host together"
        ({"host": "xxx.com", "hosts": ["foo.com"]}, "only one of host or hosts is allowed"),
        # schema_def.lua host_def
        (
            {"host": "a b"},
            'invalid configuration: property "host" validation failed: failed to match '
            + 'pattern "^\\\\*?[0-9a-zA-Z-._\\\\[\\\\]:]+$" with "a b"',
        ),
        # schema_def.lua route: allOf 1 (uri or uris)
        (
            {"uris": ["/a"]},
            "invalid configuration: allOf 1 failed: value should match only one schema, "
            "but matches both schemas 1 and 2",
        ),
        # t/admin/upstream.t TEST 12 "no additional properties is valid", for routes
        (
            {"invalid_property": 1},
            "invalid configuration: additional properties forbidden, found invalid_property",
        ),
        # schema_def.lua labels_def
        (
            {"labels": {"env": "a b"}},
            'invalid configuration: property "labels" validation failed: failed to validate env '
            '(matching ".*"): failed to match pattern "^\\\\S+$" with "a b"',
        ),
        (
            {"status": 2},
            INVALID + 'property "status" ' + NO_ENUM,
        ),
        (
            {"priority": "1"},
            'invalid configuration: property "priority" validation failed: '
            "wrong type: expected integer, got string",
        ),
        (
            {"name": "n" * 101},
            'invalid configuration: property "name" validation failed: '
            "string too long, expected at most 100, got 101",
        ),
        # routes.lua check_conf: the upstream_id must exist
        (
            {"upstream_id": "nope"},
            "failed to fetch upstream info by upstream id [nope], response code: 404",
        ),
        # resource.lua check_forbidden_properties (two spaces, as APISIX writes it)
        ({"create_time": 1}, "the property is forbidden:  create_time"),
        # routes.lua: route `vars` are compiled by lua-resty-expr
        (
            {"vars": [["arg_a", "<>", "1"]]},
            "failed to validate the 'vars' expression: invalid operator '<>'",
        ),
        # admin/plugins.lua check_schema
        ({"plugins": {"no-such-plugin": {}}}, "unknown plugin [no-such-plugin]"),
        ({"plugins": {"proxy-rewrite": 1}}, "invalid plugin conf 1 for plugin [proxy-rewrite]"),
        # upstream.lua check_upstream_conf on an inline upstream
        (
            {"upstream": {**UPSTREAM, "pass_host": "rewrite"}},
            "`upstream_host` can't be empty when `pass_host` is `rewrite`",
        ),
    ],
)
def test_route_refusals(change: dict, message: str):
    assert refusal("routes", {**ROUTE, **change}) == message


def test_route_without_uri_or_without_upstream():
    # schema_def.lua route allOf / anyOf, in the order api7/jsonschema checks them
    assert refusal("routes", {"upstream": UPSTREAM}) == (
        "invalid configuration: allOf 1 failed: value should match only one schema, "
        "but matches none"
    )
    assert refusal("routes", {"uri": "/a"}) == (
        "invalid configuration: object matches none of the required: "
        + " or ".join(
            f'["{what}","{match}"]'
            for match in ("uri", "uris")
            for what in ("plugins", "upstream", "upstream_id", "service_id")
        )
        + ' or ["script","uri"] or ["script","uris"]'
    )


@pytest.mark.parametrize(
    ("body", "url_id", "method", "message"),
    [
        ({**UPSTREAM, "id": 3}, "1", "put", "wrong upstream id"),  # t/admin/upstream.t TEST 8
        # t/admin/upstream.t TEST 12
        (
            {**UPSTREAM, "invalid_property": "/index.html"},
            "1",
            "put",
            "invalid configuration: additional properties forbidden, found invalid_property",
        ),
        # t/admin/upstream.t TEST 14 "invalid type" (the library now spells "none")
        (
            {**UPSTREAM, "type": "invalid_type"},
            "1",
            "put",
            INVALID + 'property "type" ' + NO_ENUM,
        ),
        # t/admin/upstream.t TEST 15 and 16 "invalid weight of node"
        (
            {"nodes": {"127.0.0.1:8080": "1"}},
            "1",
            "put",
            INVALID + 'property "nodes" ' + NONE_REQUIRED,
        ),
        (
            {"nodes": {"127.0.0.1:8080": -100}},
            "1",
            "put",
            INVALID + 'property "nodes" ' + NONE_REQUIRED,
        ),
        (
            {"nodes": [{"host": "a", "port": 70000, "weight": 1}]},
            "1",
            "put",
            INVALID + 'property "nodes" ' + NONE_REQUIRED,
        ),
        ({**UPSTREAM, "type": "chash"}, "1", "put", "missing key"),  # t/admin/upstream.t TEST 17
        (UPSTREAM, "1", "post", "wrong upstream id, do not need it"),  # t/admin/upstream.t TEST 18
        ({**UPSTREAM, "id": 1}, None, "post", "wrong upstream id, do not need it"),  # TEST 19
        # t/admin/upstream.t TEST 10/11 "integer id less than 1", "invalid upstream id"
        (
            {**UPSTREAM, "id": -100},
            None,
            "put",
            INVALID + 'property "id" ' + NONE_REQUIRED,
        ),
        (
            UPSTREAM,
            "invalid_id$",
            "put",
            INVALID + 'property "id" ' + NONE_REQUIRED,
        ),
        (
            {"type": "roundrobin"},
            "1",
            "put",
            "invalid configuration: value should match only one schema, but matches none",
        ),
        (
            {**UPSTREAM, "timeout": {"connect": 1, "send": 1}},
            "1",
            "put",
            INVALID + 'property "timeout" validation failed: property "read" is required',
        ),
        (None, "1", "put", "invalid configuration: wrong type: expected object, got userdata"),
    ],
)
def test_upstream_refusals(body, url_id, method: str, message: str):
    assert refusal("upstreams", body, url_id, method) == message


def test_missing_body_and_missing_id():
    # resource.lua check_conf: "missing configurations", "missing <kind> id"
    from canaryctl.testing.apisix.validation import ABSENT

    assert refusal("routes", ABSENT) == "missing configurations"
    assert refusal("routes", ROUTE, url_id=None) == "missing route id"


SPLIT_ROUTE = {"uri": "/", "upstream": UPSTREAM}


@pytest.mark.parametrize(
    ("split", "message"),
    [
        # t/plugin/traffic-split.t TEST 3
        (
            {"rules": [{"match": [{"vars": [["arg_name", 123, "jack"]]}]}]},
            "failed to validate the 'vars' expression: invalid operator '123'",
        ),
        (
            {"rules": [{"weighted_upstreams": [{"upstream_id": "a", "weight": -1}]}]},
            'property "rules" validation failed: failed to validate item 1: property '
            '"weighted_upstreams" validation failed: failed to validate item 1: property '
            '"weight" validation failed: expected -1 to be at least 0',
        ),
        (
            {"rules": [{"weighted_upstreams": [{"weight": 1}] * 21}]},
            'property "rules" validation failed: failed to validate item 1: property '
            '"weighted_upstreams" validation failed: expect array to have at most 20 items',
        ),
        (
            {"rules": [{"weighted_upstreams": [], "extra": 1}]},
            'property "rules" validation failed: failed to validate item 1: '
            'property "weighted_upstreams" validation failed: '
            "expect array to have at least 1 items",
        ),
        ({"rules": [], "mode": "x"}, "additional properties forbidden, found mode"),
        (
            {"rules": [{"weighted_upstreams": [{"upstream": {"nodes": {"a:1": 1}, "type": "x"}}]}]},
            'property "rules" validation failed: failed to validate item 1: property '
            '"weighted_upstreams" validation failed: failed to validate item 1: property '
            '"upstream" validation failed: property "type" validation failed: '
            "matches none of the enum values",
        ),
    ],
)
def test_traffic_split_refusals(split: dict, message: str):
    body = {**SPLIT_ROUTE, "plugins": {"traffic-split": split}}
    prefix = "failed to check the configuration of plugin traffic-split err: "
    assert refusal("routes", body) == prefix + message


def test_defaults_are_stored_as_apisix_injects_them():
    # api7/jsonschema injects `default`s; schema_def.lua and traffic-split.lua name them
    store = Store(clock=lambda: 1_700_000_000)
    body = {
        "uri": "/*",
        "upstream": {"nodes": [{"host": "a.svc", "port": 80, "weight": 1}]},
        "plugins": {
            "traffic-split": {"rules": [{"weighted_upstreams": [{"upstream_id": "x"}]}, {}]}
        },
    }
    status, answer = store.put("routes", "r1", body)
    value = answer["value"]
    assert status == 201
    assert (value["priority"], value["status"], value["id"]) == (0, 1, "r1")
    assert value["upstream"] == {
        "nodes": [{"host": "a.svc", "port": 80, "weight": 1, "priority": 0}],
        "type": "roundrobin",
        "hash_on": "vars",
        "scheme": "http",
        "pass_host": "pass",
    }
    rules = value["plugins"]["traffic-split"]["rules"]
    assert rules == [
        {"weighted_upstreams": [{"upstream_id": "x", "weight": 1}]},
        {"weighted_upstreams": [{"weight": 1}]},
    ]
    assert (value["create_time"], value["update_time"]) == (1_700_000_000, 1_700_000_000)


def test_checker_primitives_follow_the_lua_library():
    # lib/jsonschema.lua: Lua type names, `%q` quoting, anyOf without `required` lists
    assert check({"type": "array"}, {}) is None  # an empty Lua table is also an array
    assert check({"type": "object"}, []) == "wrong type: expected object, got table"
    assert check({"type": "integer"}, 1.5) == "wrong type: expected integer, got number"
    assert check({"type": "string"}, True) == "wrong type: expected string, got boolean"
    assert check({"anyOf": [{"type": "string"}, {"type": "integer"}]}, []) == (
        "object matches none of the required"
    )
    assert check({"type": "number", "exclusiveMinimum": 0}, 0) == "expected 0 to be greater than 0"
    assert lua_quote('a"b\\c') == '"a\\"b\\\\c"'

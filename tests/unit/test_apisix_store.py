"""The APISIX emulator's etcd: Admin API semantics of PUT, POST, PATCH, DELETE and revisions.

Each case names the upstream test it mirrors (apache/apisix `t/admin/*.t`) or the Lua
source whose behaviour it pins (`apisix/core/etcd.lua`, `apisix/admin/resource.lua`,
`apisix/core/table.lua`).
"""

from __future__ import annotations

import threading

import pytest

from canaryctl.testing.apisix.store import AdminError, Store

UPSTREAM = {"nodes": {"127.0.0.1:8080": 1}, "type": "roundrobin"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> Store:
    return Store(clock)


def route(**fields) -> dict:
    return {"uri": "/index.html", "upstream": dict(UPSTREAM), **fields}


def test_put_creates_with_201_then_replaces_with_200(store: Store, clock: Clock):
    # t/admin/upstream-force-delete.t TEST 1 (201 on create); etcd.lua `set`: 200 with prev_kv
    status, body = store.put("routes", "1", route(desc="first"))
    first = store.get("routes", "1")
    assert status == 201 and body["key"] == "/apisix/routes/1"
    clock.now += 5
    status, body = store.put("routes", "1", route(desc="second"))
    second = store.get("routes", "1")
    assert status == 200 and body["value"]["desc"] == "second"
    assert second.created_index == first.created_index
    assert second.modified_index > first.modified_index
    assert second.value["create_time"] == first.value["create_time"]  # utils.inject_timestamp
    assert second.value["update_time"] == first.value["update_time"] + 5


def test_put_without_id_in_path_takes_the_body_id(store: Store):
    # t/admin/routes.t TEST 13 "id in the rule"
    status, body = store.put("routes", None, {"id": "7", "plugins": {}, "uri": "/index.html"})
    assert status == 201 and body["key"] == "/apisix/routes/7"


def test_post_draws_a_20_digit_id_from_an_extra_revision(store: Store):
    # etcd.lua `push`: `set("/gen_id")`, id = %020d of that revision, then the real write
    status, body = store.post("upstreams", None, dict(UPSTREAM))
    resource_id = body["value"]["id"]
    assert status == 201 and len(resource_id) == 20 and resource_id.isdigit()
    assert body["key"] == f"/apisix/upstreams/{resource_id}"
    assert store.get("upstreams", resource_id).created_index == int(resource_id) + 1


def test_patch_merges_null_deletes_and_arrays_are_replaced(store: Store, clock: Clock):
    # t/admin/routes2.t TEST 7 "patch route(multi)" and TEST 9 "patch route(minus methods)"
    store.put("routes", "1", route(methods=["GET", "POST", "PUT"], desc="old", name="n"))
    clock.now += 3
    status, body = store.patch(
        "routes",
        "1",
        {
            "methods": ["GET"],
            "upstream": {"nodes": {"127.0.0.1:8080": None, "127.0.0.2:8080": 1}},
            "desc": "new route",
            "name": None,
        },
        "",
    )
    value = body["value"]
    assert status == 200
    assert value["methods"] == ["GET"]
    assert value["upstream"]["nodes"] == {"127.0.0.2:8080": 1}
    assert value["upstream"]["type"] == "roundrobin"  # untouched keys of a merged object stay
    assert value["desc"] == "new route" and "name" not in value
    assert value["update_time"] == value["create_time"] + 3


def test_patch_sub_path_sets_one_field(store: Store):
    # t/admin/routes2.t TEST 10 "new methods - sub path way" and TEST 11 "new uri"
    store.put("routes", "1", route(methods=["GET"]))
    store.patch("routes", "1", ["POST"], "methods")
    store.patch("routes", "1", "/patch_uri_test", "uri")
    store.patch("routes", "1", {"127.0.0.3:80": 2}, "upstream/nodes")
    value = store.get("routes", "1").value
    assert value["methods"] == ["POST"] and value["uri"] == "/patch_uri_test"
    assert value["upstream"]["nodes"] == {"127.0.0.3:80": 2}


def test_patch_refusals_leave_the_stored_value(store: Store):
    # resource.lua `patch`: 404 from etcd; core.table.patch "invalid sub-path"; check_conf
    store.put("routes", "1", route())
    before = store.get("routes", "1")
    cases = [
        ("2", {"desc": "x"}, "", 404, {"message": "Key not found"}),
        ("1", {"uri": 1}, "", 400, None),
        ("1", "x", "uri/deeper", 400, {"error_msg": "invalid sub-path: /uri"}),
        ("1", ["x"], "", 400, {"error_msg": "invalid configuration"}),
        ("1", {"id": "9"}, "", 400, {"error_msg": "wrong route id"}),
    ]
    for url_id, conf, sub_path, status, body in cases:
        with pytest.raises(AdminError) as caught:
            store.patch("routes", url_id, conf, sub_path)
        assert caught.value.status == status
        assert body is None or caught.value.body == body
    assert store.get("routes", "1") == before


def test_delete_answers_and_missing_keys(store: Store):
    # t/admin/routes.t TEST 3 and TEST 4 "delete route(id: not_found)"
    store.put("routes", "1", route())
    assert store.delete("routes", "1") == (200, {"deleted": "1", "key": "/apisix/routes/1"})
    with pytest.raises(AdminError) as caught:
        store.delete("routes", "1")
    assert (caught.value.status, caught.value.body) == (404, {"message": "Key not found"})


def test_upstream_in_use_needs_force(store: Store):
    # t/admin/upstream-force-delete.t TEST 1-5
    store.put("upstreams", "1", dict(UPSTREAM))
    store.put("routes", "1", {"upstream_id": 1, "uri": "/index.html"})
    with pytest.raises(AdminError) as caught:
        store.delete("upstreams", "1")
    assert caught.value.body == {
        "error_msg": "can not delete this upstream, route [1] is still using it now"
    }
    assert store.delete("upstreams", "1", force=True)[0] == 200


def test_upstream_used_by_traffic_split_needs_force(store: Store):
    # upstreams.lua `check_resources_reference` ("plugin in route [...]")
    store.put("upstreams", "canary", dict(UPSTREAM))
    split = {"rules": [{"weighted_upstreams": [{"upstream_id": "canary", "weight": 5}, {}]}]}
    store.put("routes", "r1", route(plugins={"traffic-split": split}))
    with pytest.raises(AdminError) as caught:
        store.delete("upstreams", "canary")
    assert caught.value.body["error_msg"] == (
        "can not delete this upstream, plugin in route [r1] is still using it now"
    )
    store.delete("routes", "r1")
    assert store.delete("upstreams", "canary")[0] == 200


def test_list_is_in_etcd_key_order(store: Store):
    # etcd range reads are sorted by key bytes: "10" before "2"
    for resource_id in ("2", "10", "1"):
        store.put("routes", resource_id, route())
    assert [item.id for item in store.list("routes")] == ["1", "10", "2"]


def test_every_write_and_delete_takes_one_revision(store: Store):
    store.put("upstreams", "a", dict(UPSTREAM))
    first = store.get("upstreams", "a").modified_index
    store.put("upstreams", "b", dict(UPSTREAM))
    store.delete("upstreams", "b")
    store.put("upstreams", "a", dict(UPSTREAM))
    assert store.get("upstreams", "a").modified_index == first + 3


def test_concurrent_writers_never_share_a_revision(store: Store):
    def writer(prefix: str) -> None:
        for index in range(25):
            store.put("upstreams", f"{prefix}{index}", dict(UPSTREAM))

    threads = [threading.Thread(target=writer, args=(name,)) for name in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = store.list("upstreams")
    assert len(items) == 100
    assert len({item.modified_index for item in items}) == 100


def test_reads_hand_out_copies(store: Store):
    store.put("routes", "1", route(labels={"a": "b"}))
    store.get("routes", "1").value["labels"]["a"] = "changed"
    store.list("routes")[0].value["uri"] = "/changed"
    value = store.get("routes", "1").value
    assert value["labels"] == {"a": "b"} and value["uri"] == "/index.html"

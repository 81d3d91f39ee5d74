"""The APISIX emulator's Admin API over real HTTP, case by case against APISIX's own tests.

Each case names the upstream test it mirrors: apache/apisix `t/admin/<file>.t TEST n`
(numbers as in the stored copy read), or the Lua source (`apisix/admin/init.lua`,
`apisix/admin/v3_adapter.lua`) when no test pins the behaviour. One emulator serves
the module where state does not matter (tests use unique ids); tests about faults, logs,
lists or counts get a fresh one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from canaryctl.testing.apisix import ApisixEmulator
from canaryctl.testing.processes import next_line, stdout_lines

KEY = "edd1c9f0-test-admin-key"
VIEWER = "viewer-key-1"
UPSTREAM = {"nodes": {"127.0.0.1:8080": 1}, "type": "roundrobin"}


class Admin:
    """A tiny Admin API client for the tests."""

    def __init__(self, emulator: ApisixEmulator, key: str | None = KEY):
        self.base = emulator.admin_api
        self.session = requests.Session()
        if key is not None:
            self.session.headers["X-API-KEY"] = key

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=10, **kwargs)

    def ok(self, method: str, path: str, expected: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == expected, response.text
        assert response.headers["X-API-VERSION"] == "v3"
        return response.json()

    def error(self, status: int, method: str, path: str, **kwargs: Any) -> dict:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture(scope="module")
def emulator() -> Iterator[ApisixEmulator]:
    with ApisixEmulator(admin_key=KEY, viewer_key=VIEWER) as emu:
        yield emu


@pytest.fixture
def fresh() -> Iterator[ApisixEmulator]:
    with ApisixEmulator(admin_key=KEY, fault_seed=1) as emu:
        yield emu


@pytest.fixture
def admin(emulator: ApisixEmulator) -> Admin:
    return Admin(emulator)


def route(uri: str = "/index.html", **fields: Any) -> dict:
    return {"uri": uri, "upstream": dict(UPSTREAM), **fields}


# --- keys ---------------------------------------------------------------------------------


def test_missing_and_wrong_keys_are_401(emulator: ApisixEmulator):
    # apisix/admin/init.lua set_ctx_and_check_token; t/admin/token.t
    missing = Admin(emulator, key=None).call("GET", "/routes")
    wrong = Admin(emulator, key="nope").call("GET", "/routes")
    assert (missing.status_code, missing.json()) == (
        401,
        {"error_msg": "failed to check token", "description": "missing apikey"},
    )
    assert wrong.json()["description"] == "wrong apikey" and wrong.status_code == 401
    assert "X-API-VERSION" not in wrong.headers


def test_key_in_query_or_cookie_and_viewer_is_read_only(emulator: ApisixEmulator):
    # init.lua check_token: arg_api_key, http_x_api_key, cookie_x_api_key; viewer role
    plain = requests.Session()
    assert plain.get(emulator.admin_api + "/routes", params={"api_key": KEY}).status_code == 200
    by_cookie = plain.get(emulator.admin_api + "/routes", cookies={"x_api_key": KEY})
    assert by_cookie.status_code == 200
    viewer = Admin(emulator, key=VIEWER)
    assert viewer.call("GET", "/upstreams").status_code == 200
    refused = viewer.call("PUT", "/upstreams/viewer", json=UPSTREAM)
    assert refused.status_code == 401
    assert refused.json()["description"] == "invalid method for role viewer"
    assert emulator.upstream("viewer") is None


def test_no_key_configured_means_no_check():
    # init.lua check_token: admin_key_required false / no admin_key
    with ApisixEmulator(admin_key=None) as open_emulator:
        assert Admin(open_emulator, key=None).ok("GET", "/routes") == {"list": [], "total": 0}


# --- single resources ---------------------------------------------------------------------


def test_put_get_shapes(admin: Admin, emulator: ApisixEmulator):
    # t/admin/routes.t TEST 1-2 in the v3 shape (init.lua strips `node`, v3_adapter.filter)
    created = admin.ok("PUT", "/routes/shape", expected=201, json=route(desc="d"))
    assert set(created) == {"key", "value"} and created["key"] == "/apisix/routes/shape"
    fetched = admin.ok("GET", "/routes/shape")
    assert set(fetched) == {"key", "value", "createdIndex", "modifiedIndex"}
    assert fetched["value"] == created["value"] == emulator.route("shape")
    assert fetched["createdIndex"] == fetched["modifiedIndex"]
    replaced = admin.ok("PUT", "/routes/shape", expected=200, json=route(desc="e"))
    again = admin.ok("GET", "/routes/shape")
    assert replaced["value"]["desc"] == "e" and again["createdIndex"] == fetched["createdIndex"]
    assert again["modifiedIndex"] > fetched["modifiedIndex"]


def test_missing_key_is_404_message(admin: Admin):
    # etcd.lua not_found; t/admin/routes.t TEST 4 "delete route(id: not_found)"
    for method in ("GET", "DELETE", "PATCH"):
        assert admin.error(404, method, "/routes/not_found", json={"desc": "x"}) == {
            "message": "Key not found"
        }


def test_post_generates_the_id(admin: Admin):
    # t/admin/upstream.t TEST 5 "push upstream + delete"; etcd.lua `push`
    created = admin.ok("POST", "/upstreams", expected=201, json=UPSTREAM)
    new_id = created["key"].rsplit("/", 1)[1]
    assert len(new_id) == 20 and new_id.isdigit() and created["value"]["id"] == new_id
    assert admin.ok("DELETE", f"/upstreams/{new_id}") == {
        "deleted": "1",
        "key": f"/apisix/upstreams/{new_id}",
    }


def test_patch_merge_and_sub_path(admin: Admin):
    # t/admin/routes2.t TEST 6 (update_time changes, create_time stays), TEST 7, 10, 11
    admin.ok("PUT", "/routes/patched", expected=201, json=route(methods=["GET"], name="n"))
    before = admin.ok("GET", "/routes/patched")["value"]
    merged = admin.ok("PATCH", "/routes/patched", json={"name": None, "labels": {"k": "v"}})
    assert "name" not in merged["value"] and merged["value"]["labels"] == {"k": "v"}
    assert merged["value"]["create_time"] == before["create_time"]
    sub = admin.ok("PATCH", "/routes/patched/methods", json=["POST"])
    assert sub["value"]["methods"] == ["POST"]
    admin.ok("PATCH", "/routes/patched/uri", json="/patch_uri_test")
    assert admin.ok("GET", "/routes/patched")["value"]["uri"] == "/patch_uri_test"


def test_validation_errors_are_400_and_store_nothing(admin: Admin, emulator: ApisixEmulator):
    # t/admin/upstream.t TEST 14 "invalid type"; t/admin/routes2.t TEST 14
    refused = admin.error(400, "PUT", "/upstreams/bad-type", json={**UPSTREAM, "type": "x"})
    assert refused == {
        "error_msg": 'invalid configuration: property "type" validation failed: '
        "matches none of the enum values"
    }
    both = admin.error(400, "PUT", "/routes/bad", json=route(host="a.com", hosts=["b.com"]))
    assert both == {"error_msg": "only one of host or hosts is allowed"}
    assert emulator.upstream("bad-type") is None and emulator.route("bad") is None


def test_bad_json_body_and_ttl(admin: Admin):
    # init.lua run: "invalid request body: ..." with `req_body`; "invalid argument ttl"
    body = admin.error(400, "PUT", "/routes/json", data=b"{not json")
    assert body["error_msg"].startswith("invalid request body: ") and body["req_body"] == (
        "{not json"
    )
    ttl = admin.error(400, "PUT", "/routes/ttl?ttl=soon", json=route())
    assert ttl == {"error_msg": "invalid argument ttl: should be a number"}
    admin.ok("PUT", "/routes/ttl?ttl=60", expected=201, json=route())


def test_unknown_and_unemulated_resources(admin: Admin):
    # init.lua run: resources table
    assert admin.error(404, "GET", "/nothing") == {
        "error_msg": "Unsupported resource type: nothing"
    }
    assert admin.error(501, "GET", "/services")["error_msg"].endswith("implement services")


def test_upstream_in_use_needs_force(admin: Admin):
    # t/admin/upstream-force-delete.t TEST 1-6 (force=anyvalue is not force)
    admin.ok("PUT", "/upstreams/used", expected=201, json=UPSTREAM)
    admin.ok("PUT", "/routes/user", expected=201, json={"upstream_id": "used", "uri": "/u"})
    message = {"error_msg": "can not delete this upstream, route [user] is still using it now"}
    assert admin.error(400, "DELETE", "/upstreams/used") == message
    assert admin.error(400, "DELETE", "/upstreams/used?force=anyvalue") == message
    assert admin.ok("DELETE", "/upstreams/used?force=true")["deleted"] == "1"
    assert admin.ok("DELETE", "/routes/user")["deleted"] == "1"


def test_route_upstream_id_must_exist(admin: Admin):
    # routes.lua check_conf: etcd lookup of /upstreams/<id>
    body = admin.error(400, "PUT", "/routes/dangling", json={"upstream_id": "x", "uri": "/"})
    assert body == {
        "error_msg": "failed to fetch upstream info by upstream id [x], response code: 404"
    }


# --- lists --------------------------------------------------------------------------------


def put_routes(admin: Admin, count: int) -> None:
    for index in range(1, count + 1):
        admin.ok(
            "PUT",
            f"/routes/{index}",
            expected=201,
            json=route(f"/hello{index}", name=str(index), labels={str(index): str(index)}),
        )


def test_empty_and_full_lists(fresh: ApisixEmulator):
    # t/admin/routes2.t TEST 1 "list empty resources", v3 shape
    admin = Admin(fresh)
    assert admin.ok("GET", "/routes") == {"list": [], "total": 0}
    put_routes(admin, 3)
    listed = admin.ok("GET", "/routes")
    assert listed["total"] == 3 and [n["value"]["id"] for n in listed["list"]] == ["1", "2", "3"]
    assert listed["list"][0] == admin.ok("GET", "/routes/1")


def test_paging(fresh: ApisixEmulator):
    # t/admin/filter.t TEST 1 (bad page_size), TEST 2 (bad page), TEST 3 (createdIndex order),
    # TEST 4 (routes pagination)
    admin = Admin(fresh)
    put_routes(admin, 11)
    bad = admin.call("GET", "/routes/?page=1&page_size=2")
    assert bad.status_code == 400 and bad.text == "page_size must be between 10 and 500"
    assert bad.headers["Content-Type"].startswith("text/plain")
    first = admin.ok("GET", "/routes", params={"page": -1, "page_size": 10})
    assert len(first["list"]) == 10 and first["total"] == 11
    created = [node["createdIndex"] for node in first["list"]]
    assert created == sorted(created)
    assert len(admin.ok("GET", "/routes", params={"page": 2, "page_size": 10})["list"]) == 1
    assert admin.ok("GET", "/routes", params={"page": 3, "page_size": 10})["list"] == []
    assert len(admin.ok("GET", "/routes", params={"page": 2})["list"]) == 11  # no page_size


def test_filters(fresh: ApisixEmulator):
    # t/admin/filter.t TEST 6 (name, label), TEST 9 (filter before paging), TEST 10 (uri),
    # TEST 11 (label keys only)
    admin = Admin(fresh)
    put_routes(admin, 11)

    def names(**params: Any) -> list[str]:
        return sorted(n["value"]["name"] for n in admin.ok("GET", "/routes", params=params)["list"])

    assert names(name="1") == ["1", "10", "11"]
    assert names(name="1", page=1, page_size=10) == ["1", "10", "11"]
    assert names(label="1") == ["1"]
    assert names(uri="hello1") == ["1", "10", "11"]
    assert admin.ok("GET", "/routes", params={"label": "nope"}) == {"list": [], "total": 0}


# --- faults, request log, control API -----------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_fault_then_recovery(fresh: ApisixEmulator, status: int):
    fresh.inject_fault(
        "status", method="PUT", path="/apisix/admin/routes/*", status=status, times=1
    )
    admin = Admin(fresh)
    assert admin.error(status, "PUT", "/routes/f", json=route()) == {"error_msg": "injected fault"}
    assert fresh.route("f") is None
    admin.ok("PUT", "/routes/f", expected=201, json=route())
    assert [r.status for r in fresh.request_log()] == [status, 201]


def test_retry_after_fault(fresh: ApisixEmulator):
    fresh.inject_fault("retry_after", retry_after=7, times=2)
    admin = Admin(fresh)
    for _ in range(2):
        response = admin.call("GET", "/routes")
        assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert admin.call("GET", "/routes").status_code == 200


def test_latency_fault_delays_then_serves(fresh: ApisixEmulator):
    fresh.inject_fault("latency", latency_ms=300, path="/apisix/admin/upstreams")
    admin = Admin(fresh)
    started = time.monotonic()
    admin.ok("GET", "/upstreams")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    admin.ok("GET", "/routes")
    assert time.monotonic() - started < 0.3


def test_drop_fault_closes_the_connection(fresh: ApisixEmulator):
    fresh.inject_fault("drop", method="PUT", times=1)
    admin = Admin(fresh)
    with pytest.raises(requests.ConnectionError):
        admin.call("PUT", "/upstreams/dropped", json=UPSTREAM)
    assert fresh.upstream("dropped") is None
    admin.ok("PUT", "/upstreams/dropped", expected=201, json=UPSTREAM)
    assert [(r.method, r.status) for r in fresh.request_log()] == [("PUT", 0), ("PUT", 201)]


def test_the_request_log_names_each_callers_user_agent(fresh: ApisixEmulator):
    admin = Admin(fresh)
    admin.session.headers["User-Agent"] = "canaryctl/0.1.0 (replica-a_1f2e)"
    admin.ok("PUT", "/upstreams/u", expected=201, json=UPSTREAM)
    assert [r.user_agent for r in fresh.request_log()] == ["canaryctl/0.1.0 (replica-a_1f2e)"]


def test_control_api(fresh: ApisixEmulator):
    control = fresh.admin_url + "/_emulator"
    admin = Admin(fresh)
    created = requests.post(f"{control}/faults", json={"kind": "status", "status": 502}, timeout=5)
    assert admin.call("GET", "/routes").status_code == 502
    assert requests.delete(f"{control}/faults/{created.json()['id']}", timeout=5).ok
    admin.ok("PUT", "/upstreams/u", expected=201, json=UPSTREAM)
    state = requests.get(f"{control}/state", timeout=5).json()
    assert state == {"routes": [], "upstreams": [fresh.upstream("u")]}
    split = requests.post(f"{control}/split", json={"route_id": "r", "weights": [1, 2]}, timeout=5)
    assert split.status_code == 200 and fresh.overrides.get("r") == (1, 2)
    assert requests.post(f"{control}/split", json={"weights": "x"}, timeout=5).status_code == 400
    assert requests.delete(f"{control}/split", timeout=5).json() == {"cleared": 1}
    resolved = requests.post(f"{control}/resolve", json={"a.svc:80": "127.0.0.1:9"}, timeout=5)
    assert resolved.ok and fresh.resolver.resolve("a.svc", 80) == ("127.0.0.1", 9)
    logged = requests.get(f"{control}/requests", timeout=5).json()["requests"]
    assert [(r["path"], r["status"]) for r in logged] == [
        ("/apisix/admin/routes", 502),
        ("/apisix/admin/upstreams/u", 201),
    ]


# --- lifecycle and CLI --------------------------------------------------------------------


def test_stop_closes_everything_and_keys_stay_secret():
    emulator = ApisixEmulator(admin_key=KEY).start()
    Admin(emulator).ok("GET", "/routes")  # leaves a keep-alive connection open
    threads_before = threading.active_count()
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(emulator.admin_api + "/routes", timeout=2)
    assert threading.active_count() < threads_before
    assert KEY not in repr(emulator)


def test_taken_port_fails_cleanly():
    with ApisixEmulator(admin_key=KEY) as first:
        port = int(first.dataplane_url.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            ApisixEmulator(admin_key=KEY, dataplane_port=port)
        Admin(first).ok("GET", "/routes")


def test_cli_serves_until_sigterm():
    env = {**os.environ, "APISIX_ADMIN_KEY": KEY}
    with subprocess.Popen(
        [sys.executable, "-m", "canaryctl", "dev", "apisix", "--resolve", "a.svc:80=127.0.0.1:9"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        lines = stdout_lines(process)
        printed = dict(next_line(lines, process).strip().split(": ", 1) for _ in range(2))
        assert set(printed) == {"admin-api-url", "dataplane-url"}
        answer = requests.get(
            printed["admin-api-url"] + "/routes", headers={"X-API-KEY": KEY}, timeout=5
        )
        assert answer.json() == {"list": [], "total": 0}
        missing = requests.get(printed["dataplane-url"] + "/", timeout=5)
        assert missing.status_code == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert KEY not in process.stderr.read()

"""The API7 Cloud emulator over real HTTP, rule by rule against docs/api7-cloud.md.

One emulator serves the module where state does not matter (tests use unique names);
tests about faults, logs or counts get a fresh one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from canaryctl.gateway.model import OWNER_LABEL
from canaryctl.testing.api7cloud import Emulator
from canaryctl.testing.processes import next_line, stdout_lines

TOKEN = "s3cret-token"
ID_FIELDS = {"id", "org_id", "cluster_id", "control_plane_id", "app_id", "region_id", "plan_id"}
ID_LIST_FIELDS = {"org_ids", "canary_release_id"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class Client:
    """A tiny Open API client for the tests: returns (status, parsed JSON or text)."""

    def __init__(self, emulator: Emulator, token: str | None = TOKEN):
        self.base = emulator.url + "/api/v1"
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=10, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == {"code": 0, "message": "OK"} and "error" not in body
        return body["payload"]

    def error(self, expected_status: int, method: str, path: str, **kwargs: Any) -> str:
        response = self.call(method, path, **kwargs)
        assert response.status_code == expected_status, response.text
        body = response.json()
        assert "payload" not in body and isinstance(body["error"], str) and body["error"]
        assert body["status"]["code"] != 0 and isinstance(body["status"]["message"], str)
        return body["error"]


def app_body(name: str, **fields: Any) -> dict:
    upstreams = [
        {
            "version": v,
            "upstream": {
                "scheme": "http",
                "lb_type": "roundrobin",
                "targets": [{"host": f"{name}-{v}.demo.svc", "port": 80, "weight": 100}],
            },
        }
        for v in ("v1", "v2")
    ]
    return {
        "name": name,
        "description": "",
        "labels": [OWNER_LABEL],
        "protocols": ["HTTP"],
        "path_prefix": "/",
        "hosts": [name],
        "upstreams": upstreams,
        "default_upstream_version": "v1",
        "active": 0,
        **fields,
    }


def canary_body(state: str = "in_progress", percent: int = 10, **fields: Any) -> dict:
    return {
        "id": "0",
        "name": "canary",
        "state": state,
        "type": "percent",
        "canary_upstream_version": "v2",
        "percent": percent,
        **fields,
    }


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(token=TOKEN, org_name="acme", cluster_name="prod") as emu:
        yield emu


@pytest.fixture
def fresh() -> Iterator[Emulator]:
    with Emulator(token=TOKEN, fault_seed=1) as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator) -> Client:
    return Client(emulator)


def apps_path(emulator: Emulator, spelling: str = "clusters") -> str:
    return f"/{spelling}/{emulator.cluster_id}/apps"


def create_app(client: Client, emulator: Emulator, name: str, **fields: Any) -> dict:
    return client.ok("POST", apps_path(emulator), json=app_body(name, **fields))


def assert_typed(value: Any, key: str = "") -> None:
    """Every id is a decimal string, every timestamp RFC 3339, everywhere in a payload."""
    if isinstance(value, dict):
        for child_key, child in value.items():
            assert_typed(child, child_key)
    elif isinstance(value, list):
        for item in value:
            assert_typed(item, "id" if key in ID_LIST_FIELDS else "")
    elif key in ID_LIST_FIELDS:
        assert value is None, f"{key}={value!r}"  # arrays may be null, nothing else
    elif key in ID_FIELDS:
        assert isinstance(value, str) and value.isdigit(), f"{key}={value!r}"
    elif key in ("created_at", "updated_at"):
        assert isinstance(value, str) and RFC3339.match(value) and datetime.fromisoformat(value)


# --- transport -----------------------------------------------------------------------------


def test_user_org_and_clusters(emulator: Emulator, client: Client):
    user = client.ok("GET", "/user/me")
    assert isinstance(user["id"], str) and user["org_ids"] == [emulator.org_id]
    org = client.ok("GET", f"/orgs/{emulator.org_id}")
    assert org["name"] == "acme" and org["id"] == emulator.org_id and org["owner_id"] == user["id"]
    for spelling in ("controlplanes", "clusters"):
        page = client.ok("GET", f"/orgs/{emulator.org_id}/{spelling}")
        assert page["count"] == 1 and [c["name"] for c in page["list"]] == ["prod"]
    cluster = client.ok("GET", f"/clusters/{emulator.cluster_id}")
    assert (
        cluster["status"] == 3
        and cluster["org_id"] == emulator.org_id
        and cluster["settings"] == {}
    )
    for payload in (org, cluster, page):
        assert_typed(payload)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
def test_missing_or_wrong_token_is_401_envelope(emulator: Emulator, headers: dict):
    anonymous = Client(emulator, token=None)
    for path in ("/user/me", apps_path(emulator), f"/apps/{emulator.cluster_id}/apis"):
        assert "token" in anonymous.error(401, "GET", path, headers=headers)
    assert TOKEN not in anonymous.call("GET", "/user/me", headers=headers).text


def test_unknown_paths_and_ids_are_404_envelopes(emulator: Emulator, client: Client):
    app = create_app(client, emulator, "ids-404")
    for path in (
        "/nothing",
        f"/orgs/{emulator.org_id}x",
        "/orgs/1/clusters",
        "/clusters/1",
        "/clusters/1/apps",
        f"{apps_path(emulator)}/1",
        f"{apps_path(emulator)}/abc",
        f"/controlplanes/1/apps/{app['id']}",
        f"/apps/{app['id']}/apis/1",
        f"/apps/{app['id']}/canary_releases/1",
        "/apps/1/apis",
        "/apps/1/canary_releases",
    ):
        client.error(404, "GET", path)
    client.error(404, "PUT", f"{apps_path(emulator)}/1", json=app_body("ids-404-b"))
    client.error(404, "DELETE", f"/apps/{app['id']}/apis/1")


def test_wrong_method_on_a_known_path_is_an_envelope(emulator: Emulator, client: Client):
    client.error(405, "PATCH", f"{apps_path(emulator)}/1", json={"active": 0})


def test_gateway_cluster_header_and_request_id_are_accepted(emulator: Emulator, client: Client):
    headers = {"X-API7-Cloud-Gateway-Cluster-ID": emulator.cluster_id, "X-Request-ID": "42"}
    assert client.ok("GET", apps_path(emulator), headers=headers)["count"] >= 0


# --- applications --------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["controlplanes", "clusters"])
def test_app_lifecycle_with_both_spellings(emulator: Emulator, client: Client, spelling: str):
    base = apps_path(emulator, spelling)
    sent = app_body(
        f"life-{spelling}",
        id="0",
        status=0,
        created_at="0001-01-01T00:00:00Z",
        updated_at="0001-01-01T00:00:00Z",
        canary_release_id=None,
    )
    created = client.ok("POST", base, json=sent)
    assert (
        created["id"] != "0" and created["status"] != 0 and created["created_at"].startswith("20")
    )
    assert created["cluster_id"] == created["control_plane_id"] == emulator.cluster_id
    assert created["canary_release_id"] is None and created["canary_upstream_version_list"] is None
    assert_typed(created)
    assert client.ok("GET", f"{base}/{created['id']}") == created
    replaced = client.ok(
        "PUT", f"{base}/{created['id']}", json={**created, "description": "changed"}
    )
    assert replaced["description"] == "changed" and replaced["id"] == created["id"]
    assert replaced["created_at"] == created["created_at"]
    response = client.call("DELETE", f"{base}/{created['id']}")
    assert response.status_code == 200 and response.json()["status"] == {"code": 0, "message": "OK"}
    client.error(404, "GET", f"{base}/{created['id']}")


def test_duplicate_app_name_is_400_not_409(emulator: Emulator, client: Client):
    create_app(client, emulator, "dup")
    assert "dup" in client.error(400, "POST", apps_path(emulator), json=app_body("dup"))


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'"app"', b'{"hosts": ["x"]}'])
def test_malformed_bodies_are_400(emulator: Emulator, client: Client, raw: bytes):
    client.error(
        400, "POST", apps_path(emulator), data=raw, headers={"Content-Type": "application/json"}
    )


def test_pagination_pages_count_and_empty_list_past_the_end(emulator: Emulator, client: Client):
    names = [f"pg-{index:02d}" for index in range(23)]
    for name in names:
        create_app(client, emulator, name)
    pages = [
        client.ok("GET", apps_path(emulator), params={"page": page, "search": "pg-"})
        for page in (1, 2, 3, 4)
    ]
    assert [len(page["list"]) for page in pages] == [10, 10, 3, 0]
    assert all(page["count"] == 23 for page in pages) and pages[3]["list"] == []
    assert [app["name"] for page in pages for app in page["list"]] == names
    sized = client.ok(
        "GET", apps_path(emulator), params={"page": 2, "page_size": 20, "search": "pg-"}
    )
    assert [app["name"] for app in sized["list"]] == names[20:]
    assert client.ok("GET", apps_path(emulator), params={"search": "pg-1"})["count"] == 10
    for bad in ({"page": 0}, {"page": "x"}, {"page_size": 0}, {"page_size": -1}):
        client.error(400, "GET", apps_path(emulator), params=bad)


def test_sdk_style_iteration_terminates(emulator: Emulator, client: Client):
    for index in range(7):
        create_app(client, emulator, f"iter-{index}")
    seen, page = [], 1
    while True:
        items = client.ok(
            "GET", apps_path(emulator), params={"page": page, "page_size": 3, "search": "iter-"}
        )["list"]
        if not items:
            break
        seen += items
        page += 1
    assert len(seen) == 7 and page == 4


# --- APIs and canaries ---------------------------------------------------------------------


def test_api_lifecycle(emulator: Emulator, client: Client):
    app = create_app(client, emulator, "api-life")
    body = {
        "id": "0",
        "name": "all",
        "paths": [{"path": "/", "path_type": "Prefix"}],
        "strip_path_prefix": False,
        "active": 0,
        "type": "Rest",
        "labels": [OWNER_LABEL],
        "methods": None,
    }
    api = client.ok("POST", f"/apps/{app['id']}/apis", json=body)
    assert api["app_id"] == app["id"] and api["id"] != "0" and api["methods"] is None
    assert_typed(api)
    assert client.ok("GET", f"/apps/{app['id']}/apis")["list"] == [api]
    replaced = client.ok(
        "PUT", f"/apps/{app['id']}/apis/{api['id']}", json={**api, "strip_path_prefix": True}
    )
    assert replaced["strip_path_prefix"] is True
    client.ok("DELETE", f"/apps/{app['id']}/apis/{api['id']}")
    assert client.ok("GET", f"/apps/{app['id']}/apis") == {"list": [], "count": 0}
    client.error(
        400,
        "POST",
        f"/apps/{app['id']}/apis",
        json={**body, "paths": [{"path": "/", "path_type": "Glob"}]},
    )


def test_canary_lifecycle_and_read_only_app_fields(emulator: Emulator, client: Client):
    app = create_app(client, emulator, "cr-life")
    base = f"/apps/{app['id']}/canary_releases"
    canary = client.ok("POST", base, json=canary_body())
    assert (
        canary["app_id"] == app["id"]
        and canary["percent"] == 10
        and canary["state"] == "in_progress"
    )
    assert_typed(canary)
    app_path = f"{apps_path(emulator)}/{app['id']}"
    view = client.ok("GET", app_path)
    assert view["canary_release_id"] == [canary["id"]] and view["canary_upstream_version_list"] == [
        "v2"
    ]
    assert_typed(view)
    paused = client.ok("PUT", f"{base}/{canary['id']}", json={**canary, "state": "paused"})
    assert paused["state"] == "paused" and paused["created_at"] == canary["created_at"]
    view = client.ok("GET", app_path)
    assert view["canary_release_id"] is None and view["canary_upstream_version_list"] == ["v2"]
    client.ok("DELETE", f"{base}/{canary['id']}")
    assert client.ok("GET", base) == {"list": [], "count": 0}
    assert client.ok("GET", app_path)["canary_upstream_version_list"] is None


def test_canary_400s(emulator: Emulator, client: Client):
    app = create_app(client, emulator, "cr-400")
    base = f"/apps/{app['id']}/canary_releases"
    for bad in (
        canary_body(canary_upstream_version="v3"),
        canary_body(percent=101),
        canary_body(percent=-1),
        canary_body(state="running"),
        canary_body(type="weight"),
    ):
        client.error(400, "POST", base, json=bad)
    client.ok("POST", base, json=canary_body())
    assert "progress" in client.error(400, "POST", base, json=canary_body(percent=20))
    assert client.ok("GET", base)["count"] == 1


def test_missing_percent_means_zero(emulator: Emulator, client: Client):
    app = create_app(client, emulator, "cr-omit")
    body = canary_body()
    del body["percent"]
    assert client.ok("POST", f"/apps/{app['id']}/canary_releases", json=body)["percent"] == 0


def test_finishing_switches_the_default_upstream(emulator: Emulator, client: Client):
    app = create_app(client, emulator, "cr-finish")
    base = f"/apps/{app['id']}/canary_releases"
    canary = client.ok("POST", base, json=canary_body(percent=100))
    client.ok("PUT", f"{base}/{canary['id']}", json={**canary, "state": "finished"})
    view = client.ok("GET", f"{apps_path(emulator)}/{app['id']}")
    assert view["default_upstream_version"] == "v2" and view["canary_release_id"] is None
    assert (
        client.ok("POST", base, json=canary_body(percent=5))["state"] == "in_progress"
    )  # finished is not live


# --- Python view, foreign apps, request log ------------------------------------------------


def test_python_view_matches_the_api(emulator: Emulator, client: Client):
    app = create_app(client, emulator, "py-view")
    api = client.ok("POST", f"/apps/{app['id']}/apis", json={"name": "all"})
    canary = client.ok("POST", f"/apps/{app['id']}/canary_releases", json=canary_body())
    assert emulator.app_by_name("py-view") == client.ok("GET", f"{apps_path(emulator)}/{app['id']}")
    assert emulator.app_by_name("nope") is None
    assert emulator.apis(app["id"]) == [api] and emulator.canaries(app["id"]) == [canary]
    assert app["id"] in {a["id"] for a in emulator.apps()}


def test_foreign_app_has_no_owner_label(emulator: Emulator, client: Client):
    foreign = emulator.create_foreign_app("foreign", labels=["team:payments"])
    fetched = client.ok("GET", f"{apps_path(emulator)}/{foreign['id']}")
    assert fetched["hosts"] == ["foreign"] and OWNER_LABEL not in fetched["labels"]
    with pytest.raises(ValueError):
        emulator.create_foreign_app("owned", labels=[OWNER_LABEL])


def test_request_log_records_every_call_but_not_admin(fresh: Emulator):
    client = Client(fresh)
    client.ok("GET", "/user/me")
    Client(fresh, token="bad").call("GET", "/user/me")
    client.call("GET", "/nothing", params={"page": 2})
    requests.get(fresh.url + "/_emulator/requests", timeout=5)
    log = fresh.request_log()
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", "/api/v1/user/me", 200),
        ("GET", "/api/v1/user/me", 401),
        ("GET", "/api/v1/nothing", 404),
    ]
    assert log[2].query == "page=2" and log[0].time <= log[1].time <= log[2].time
    fresh.clear_request_log()
    assert fresh.request_log() == []


# --- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_fault_has_a_plain_text_body(fresh: Emulator, status: int):
    fresh.inject_fault("status", method="GET", path="/api/v1/user/me", status=status, times=1)
    response = Client(fresh).call("GET", "/user/me")
    assert response.status_code == status and response.headers["Content-Type"].startswith(
        "text/plain"
    )
    with pytest.raises(ValueError):
        response.json()
    assert Client(fresh).ok("GET", "/user/me")["org_ids"] == [fresh.org_id]
    assert [r.status for r in fresh.request_log()] == [status, 200]


def test_retry_after_fault_is_429_envelope_with_header(fresh: Emulator):
    fresh.inject_fault("retry_after", retry_after=7, times=2)
    client = Client(fresh)
    for _ in range(2):
        response = client.call("GET", "/user/me")
        assert response.status_code == 429 and response.headers["Retry-After"] == "7"
        assert "error" in response.json() and "payload" not in response.json()
    client.ok("GET", "/user/me")


def test_latency_fault_delays_then_serves(fresh: Emulator):
    fresh.inject_fault("latency", latency_ms=300, path="/api/v1/user/me")
    client = Client(fresh)
    started = time.monotonic()
    client.ok("GET", "/user/me")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    client.ok("GET", f"/orgs/{fresh.org_id}")
    assert time.monotonic() - started < 0.3


def test_drop_fault_closes_the_connection_without_answer(fresh: Emulator):
    fresh.inject_fault("drop", method="POST", times=1)
    client = Client(fresh)
    with pytest.raises(requests.ConnectionError):
        client.call("POST", apps_path(fresh), json=app_body("dropped"))
    assert fresh.app_by_name("dropped") is None
    client.ok("POST", apps_path(fresh), json=app_body("dropped"))
    assert [r.status for r in fresh.request_log()] == [0, 200]


def test_probability_fault_fails_some_calls_and_clear_stops_it(fresh: Emulator):
    fresh.inject_fault("status", status=500, probability=0.5)
    client = Client(fresh)
    statuses = [client.call("GET", "/user/me").status_code for _ in range(40)]
    assert 5 < statuses.count(500) < 35 and statuses.count(200) == 40 - statuses.count(500)
    fresh.clear_faults()
    assert all(client.call("GET", "/user/me").status_code == 200 for _ in range(10))


def test_faults_over_the_admin_api(fresh: Emulator):
    admin = fresh.url + "/_emulator"
    created = requests.post(
        f"{admin}/faults",
        json={"kind": "status", "status": 502, "path": "/api/v1/orgs/*"},
        timeout=5,
    )
    assert created.status_code == 200
    fault_id = created.json()["id"]
    requests.post(
        f"{admin}/faults",
        json={"kind": "retry_after", "method": "DELETE", "retry_after": 2},
        timeout=5,
    )
    assert (
        next(f["id"] for f in requests.get(f"{admin}/faults", timeout=5).json()["faults"])
        == fault_id
    )
    client = Client(fresh)
    assert client.call("GET", f"/orgs/{fresh.org_id}").status_code == 502
    assert client.call("GET", "/user/me").status_code == 200
    assert requests.delete(f"{admin}/faults/{fault_id}", timeout=5).status_code == 200
    assert requests.delete(f"{admin}/faults/{fault_id}", timeout=5).status_code == 404
    assert client.call("GET", f"/orgs/{fresh.org_id}").status_code == 200
    assert requests.delete(f"{admin}/faults", timeout=5).json() == {"cleared": 1}
    assert requests.post(f"{admin}/faults", json={"kind": "explode"}, timeout=5).status_code == 400
    assert requests.post(f"{admin}/faults", data=b"[", timeout=5).status_code == 400
    logged = requests.get(f"{admin}/requests", timeout=5).json()["requests"]
    assert [(r["path"], r["status"]) for r in logged] == [
        (f"/api/v1/orgs/{fresh.org_id}", 502),
        ("/api/v1/user/me", 200),
        (f"/api/v1/orgs/{fresh.org_id}", 200),
    ]
    assert requests.delete(f"{admin}/requests", timeout=5).status_code == 200
    assert fresh.request_log() == []


def test_the_request_log_names_each_callers_user_agent(fresh: Emulator):
    """So a test can tell which controller replica wrote (canaryctl sends its identity there)."""
    client = Client(fresh)
    client.session.headers["User-Agent"] = "canaryctl/0.1.0 (replica-a_1f2e)"
    client.ok("GET", "/user/me")
    client.session.headers["User-Agent"] = "canaryctl/0.1.0 (replica-b_3d4c)"
    client.call("GET", "/user/me", headers={"Authorization": "Bearer wrong"})
    assert [(r.status, r.user_agent) for r in fresh.request_log()] == [
        (200, "canaryctl/0.1.0 (replica-a_1f2e)"),
        (401, "canaryctl/0.1.0 (replica-b_3d4c)"),
    ]
    logged = requests.get(f"{fresh.url}/_emulator/requests", timeout=5).json()["requests"]
    assert [r["user_agent"] for r in logged] == [r.user_agent for r in fresh.request_log()]


def test_admin_state_and_resolve(fresh: Emulator):
    client = Client(fresh)
    app = client.ok("POST", apps_path(fresh), json=app_body("state"))
    client.ok("POST", f"/apps/{app['id']}/apis", json={"name": "all"})
    state = requests.get(fresh.url + "/_emulator/state", timeout=5).json()
    assert state["cluster_id"] == fresh.cluster_id and [a["name"] for a in state["apps"]] == [
        "state"
    ]
    assert [api["name"] for api in state["apps"][0]["apis"]] == ["all"]
    added = requests.post(
        fresh.url + "/_emulator/resolve", json={"state-v1.demo.svc:80": "127.0.0.1:9"}, timeout=5
    )
    assert added.status_code == 200 and fresh.resolver.resolve("state-v1.demo.svc", 80) == (
        "127.0.0.1",
        9,
    )
    assert (
        requests.post(fresh.url + "/_emulator/resolve", json={"x": "y"}, timeout=5).status_code
        == 400
    )
    assert requests.get(fresh.url + "/_emulator/nothing", timeout=5).status_code == 404


# --- lifecycle and CLI ---------------------------------------------------------------------


def test_stop_closes_keep_alive_connections_and_the_port():
    emulator = Emulator(token=TOKEN).start()
    client = Client(emulator)
    client.ok("GET", "/user/me")  # leaves a keep-alive connection open
    threads_before = threading.active_count()
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        client.call("GET", "/user/me")
    with pytest.raises(requests.ConnectionError):
        requests.get(emulator.url + "/api/v1/user/me", timeout=2)
    assert threading.active_count() < threads_before
    assert TOKEN not in repr(emulator)


def start_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    """`canaryctl dev ARGS` as a child process; a context manager (closes pipes, waits for it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "canaryctl", "dev", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_cli_prints_addresses_serves_and_stops_on_sigterm():
    with start_cli(
        "api7cloud",
        "--resolve",
        "a.svc:80=127.0.0.1:9",
        "--cluster-name",
        "edge",
        env={"API7_CLOUD_TOKEN": TOKEN},
    ) as process:
        lines = stdout_lines(process)
        printed = dict(next_line(lines, process).strip().split(": ", 1) for _ in range(4))
        assert set(printed) == {"open-api-url", "dataplane-url", "org-id", "cluster-id"}
        response = requests.get(
            f"{printed['open-api-url']}/api/v1/clusters/{printed['cluster-id']}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert response.json()["payload"]["name"] == "edge"
        assert (
            requests.get(
                printed["dataplane-url"] + "/", headers={"Host": "x"}, timeout=5
            ).status_code
            == 404
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert TOKEN not in process.stderr.read()


def test_cli_without_token_exits_2():
    env = {key: value for key, value in os.environ.items() if key != "API7_CLOUD_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "canaryctl", "dev", "api7cloud"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "token" in result.stderr


def test_taken_dataplane_port_fails_cleanly():
    with Emulator(token=TOKEN) as first:
        with pytest.raises(OSError):
            Emulator(token=TOKEN, dataplane_port=int(first.dataplane_url.rsplit(":", 1)[1]))
        assert Client(first).ok("GET", "/user/me")["org_ids"] == [first.org_id]

"""The API7 Cloud client over real HTTP: against the emulator, and a tiny scripted server
where the emulator cannot misbehave the way a test needs (headers, endless lists, TLS)."""

from __future__ import annotations

import http.server
import json
import logging
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from canaryctl import metrics
from canaryctl.gateway.api7 import Api7Client, RetryPolicy
from canaryctl.gateway.api7.client import _choose
from canaryctl.gateway.base import TerminalGatewayError, TransientGatewayError
from canaryctl.gateway.model import OWNER_LABEL
from canaryctl.testing.api7cloud import Emulator
from canaryctl.testing.processes import wait_until

TOKEN = "tok-3f9c2b7e-secret"
FAST = RetryPolicy(
    attempts=4, deadline=5.0, backoff_initial=0.01, backoff_max=0.05, retry_after_cap=2.0
)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(token=TOKEN, fault_seed=7) as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[Api7Client]:
    with Api7Client(TOKEN, emu.url, timeout=(1.0, 2.0), retry=FAST, page_size=5) as api7:
        yield api7


def app_body(name: str, *versions: str) -> dict:
    versions = versions or ("ns/v1",)
    return {
        "name": name,
        "hosts": [name],
        "labels": [OWNER_LABEL],
        "protocols": ["HTTP"],
        "path_prefix": "/",
        "active": 0,
        "default_upstream_version": versions[0],
        "upstreams": [
            {
                "version": v,
                "upstream": {
                    "scheme": "http",
                    "lb_type": "roundrobin",
                    "targets": [{"host": "h", "port": 80, "weight": 100}],
                },
            }
            for v in versions
        ],
    }


def counter(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, {"backend": "api7", **labels}) or 0.0


def api_calls(emu: Emulator, method: str | None = None, at_least: int = 1) -> list:
    """The logged requests (of `method`); waits for `at_least`, as logging follows each answer."""

    def matching() -> list:
        return [r for r in emu.request_log() if method is None or r.method == method]

    wait_until(lambda: len(matching()) >= at_least)
    return matching()


# --- account and cluster selection ------------------------------------------------------


def test_resolve_cluster_takes_the_only_one_or_the_named_one(client, emu):
    ref = client.resolve_cluster()
    assert (ref.org_id, ref.cluster_id, ref.cluster_name) == (emu.org_id, emu.cluster_id, "default")
    assert client.resolve_cluster(org="default", cluster=emu.cluster_id) == ref
    assert client.resolve_cluster(cluster="default") == ref


def test_resolve_cluster_names_the_choices_when_the_wanted_one_is_missing(client, emu):
    with pytest.raises(TerminalGatewayError) as caught:
        client.resolve_cluster(cluster="prod")
    assert "no cluster has the id or name 'prod'" in str(caught.value)
    assert f"default (id {emu.cluster_id})" in str(caught.value)


def test_choosing_among_several_without_a_name_lists_them():
    with pytest.raises(
        TerminalGatewayError,
        match=r"2 organizations are available; choose one by id or name. "
        r"Choices: a \(id 1\), b \(id 2\)",
    ):
        _choose([{"id": "1", "name": "a"}, {"id": "2", "name": "b"}], None, "organization")


# --- resources ------------------------------------------------------------------------------


def test_app_api_and_canary_round_trip(client, emu):
    cid = emu.cluster_id
    app = client.create_app(cid, app_body("shop", "ns/v1", "ns/v2"))
    assert app["id"].isdigit() and client.get_app(cid, app["id"])["name"] == "shop"
    assert client.find_app(cid, "shop")["id"] == app["id"] and client.find_app(cid, "sho") is None
    assert client.replace_app(
        cid, app["id"], {**app_body("shop", "ns/v1", "ns/v2"), "hosts": ["x"]}
    )["hosts"] == ["x"]
    api = client.create_api(
        app["id"], {"name": "canaryctl", "paths": [{"path": "/", "path_type": "Prefix"}]}
    )
    assert [a["id"] for a in client.list_apis(app["id"])] == [api["id"]]
    canary = client.create_canary(
        app["id"],
        {
            "name": "c",
            "type": "percent",
            "state": "in_progress",
            "canary_upstream_version": "ns/v2",
            "percent": 10,
        },
    )
    moved = client.replace_canary(app["id"], canary["id"], {**canary, "percent": 40})
    assert moved["percent"] == 40 and client.get_canary(app["id"], canary["id"])["percent"] == 40
    client.delete_canary(app["id"], canary["id"])
    client.delete_api(app["id"], api["id"])
    client.delete_app(cid, app["id"])
    assert emu.apps() == []


def test_lists_follow_pages_until_all_items_are_in(client, emu):
    for i in range(23):
        emu.create_foreign_app(f"app-{i:02}")
    emu.clear_request_log()
    names = [app["name"] for app in client.list_apps(emu.cluster_id)]
    assert sorted(names) == [f"app-{i:02}" for i in range(23)]
    assert [r.query for r in api_calls(emu, at_least=5)] == [
        f"page={p}&page_size=5" for p in range(1, 6)
    ]


def test_an_empty_page_ends_a_list_even_without_a_count(scripted):
    scripted.answers = [(200, {"list": [{"id": "1", "name": "a"}]}), (200, {"list": []})]
    assert [a["id"] for a in scripted.client().list_apps("9")] == ["1"]
    assert len(scripted.seen) == 2


def test_a_list_that_never_ends_is_cut_off(scripted):
    scripted.answers = [
        (200, {"list": [{"id": str(i), "name": "a"}], "count": 10**9}) for i in range(10)
    ]
    with pytest.raises(TerminalGatewayError, match="did not end after 3 pages"):
        scripted.client(max_pages=3).list_apps("9")


# --- errors -----------------------------------------------------------------------------------


def test_a_rejected_token_fails_fast_with_a_clear_message_and_no_token(emu, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "tok-wrong-7d1a-secret"
    with Api7Client(wrong, emu.url, retry=FAST) as api7:
        with pytest.raises(TerminalGatewayError) as caught:
            api7.list_apps(emu.cluster_id)
        assert wrong not in repr(api7)
    assert caught.value.status == 401
    assert (
        str(caught.value) == "API7 Cloud rejected the token (401): missing or invalid access token"
    )
    assert len(api_calls(emu)) == 1
    assert wrong not in caplog.text and TOKEN not in caplog.text and "Bearer" not in caplog.text
    assert "GET /clusters" in caplog.text  # calls are logged, without headers


def test_not_found_and_bad_request_are_terminal_with_the_server_message(client, emu):
    with pytest.raises(TerminalGatewayError) as missing:
        client.get_app(emu.cluster_id, "12345")
    assert missing.value.status == 404 and "not found (404)" in str(missing.value)
    app = client.create_app(emu.cluster_id, app_body("shop"))
    with pytest.raises(TerminalGatewayError) as refused:
        client.create_canary(
            app["id"],
            {
                "name": "c",
                "type": "percent",
                "state": "in_progress",
                "canary_upstream_version": "ns/nope",
                "percent": 10,
            },
        )
    assert refused.value.status == 400 and "ns/nope" in str(refused.value)
    with pytest.raises(TerminalGatewayError) as duplicate:
        client.create_app(emu.cluster_id, app_body("shop"))
    assert duplicate.value.status == 400 and "already used" in str(duplicate.value)
    assert len(api_calls(emu, "POST", at_least=3)) == 3  # terminal errors are never retried


def test_deleting_something_missing_on_the_first_attempt_is_not_found(client, emu):
    with pytest.raises(TerminalGatewayError) as caught:
        client.delete_app(emu.cluster_id, "12345")
    assert caught.value.status == 404


def test_client_repr_never_shows_the_token(client):
    assert TOKEN not in repr(client) and TOKEN not in repr(client._transport)
    assert TOKEN not in repr(vars(client._transport))


# --- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 500},
        {"kind": "status", "status": 502},
        {"kind": "status", "status": 503},
        {"kind": "retry_after", "retry_after": 0},
        {"kind": "drop"},
    ],
    ids=lambda f: f"{f['kind']}-{f.get('status', '')}",
)
def test_reads_writes_and_deletes_survive_transient_failures(client, emu, fault):
    app = client.create_app(emu.cluster_id, app_body("shop"))
    retries_before = counter("canaryctl_gateway_retries_total")
    for method in ("GET", "PUT", "DELETE"):
        emu.inject_fault(method=method, times=2, **fault)
    assert client.get_app(emu.cluster_id, app["id"])["name"] == "shop"
    assert client.replace_app(emu.cluster_id, app["id"], {**app_body("shop"), "hosts": ["a"]})[
        "hosts"
    ] == ["a"]
    client.delete_app(emu.cluster_id, app["id"])
    assert emu.apps() == []
    assert counter("canaryctl_gateway_retries_total") - retries_before == 6
    expected = 0 if fault["kind"] == "drop" else fault.get("status", 429)
    assert [r.status for r in api_calls(emu, "PUT", at_least=3)] == [expected, expected, 200]


def test_every_attempt_is_counted_by_method_and_code_and_timed(client, emu):
    before_503 = counter("canaryctl_gateway_requests_total", method="GET", code="503")
    before_200 = counter("canaryctl_gateway_requests_total", method="GET", code="200")
    before_error = counter("canaryctl_gateway_requests_total", method="GET", code="error")
    timed_before = counter("canaryctl_gateway_request_duration_seconds_count", method="GET")
    emu.inject_fault(method="GET", times=1, status=503)
    emu.inject_fault(kind="drop", method="GET", times=1)
    client.me()
    assert counter("canaryctl_gateway_requests_total", method="GET", code="503") - before_503 == 1
    assert (
        counter("canaryctl_gateway_requests_total", method="GET", code="error") - before_error == 1
    )
    assert counter("canaryctl_gateway_requests_total", method="GET", code="200") - before_200 == 1
    assert (
        counter("canaryctl_gateway_request_duration_seconds_count", method="GET") - timed_before
        == 3
    )


def test_giving_up_raises_transient_after_the_allowed_attempts(client, emu):
    emu.inject_fault(status=503)
    with pytest.raises(TransientGatewayError) as caught:
        client.list_apps(emu.cluster_id)
    assert "503" in str(caught.value) and "gave up after 4 attempts" in str(caught.value)
    assert TOKEN not in str(caught.value) and len(api_calls(emu, at_least=4)) == 4


def test_retry_after_is_honoured(client, emu):
    emu.inject_fault(kind="retry_after", retry_after=1, times=1)
    client.me()
    first, second = api_calls(emu, at_least=2)
    assert first.status == 429 and second.status == 200
    assert second.time - first.time >= 0.95


def test_a_retry_after_beyond_the_deadline_gives_up_at_once(emu):
    emu.inject_fault(kind="retry_after", retry_after=3)
    policy = RetryPolicy(
        attempts=4, deadline=1.0, backoff_initial=0.01, backoff_max=0.05, retry_after_cap=10
    )
    started = time.monotonic()
    with (
        Api7Client(TOKEN, emu.url, retry=policy) as api7,
        pytest.raises(TransientGatewayError, match="429"),
    ):
        api7.me()
    assert time.monotonic() - started < 0.9 and len(api_calls(emu)) == 1


def test_a_retry_after_is_capped(emu):
    emu.inject_fault(kind="retry_after", retry_after=30, times=1)
    policy = RetryPolicy(
        attempts=4, deadline=5, backoff_initial=0.01, backoff_max=0.05, retry_after_cap=0.2
    )
    with Api7Client(TOKEN, emu.url, retry=policy) as api7:
        started = time.monotonic()
        api7.me()
    assert time.monotonic() - started < 2


# --- creates are never duplicated ---------------------------------------------------------------


def create_kind(client: Api7Client, emu: Emulator, kind: str) -> tuple[dict, list]:
    """Create a `kind` object (with its app, for APIs and canaries); the stored list of its kind."""
    if kind == "app":
        return client.create_app(emu.cluster_id, app_body("shop")), emu.apps()
    app_id = emu.store.create_app(None, app_body("shop", "ns/v1", "ns/v2"))["id"]
    if kind == "api":
        api = client.create_api(
            app_id,
            {
                "name": "canaryctl",
                "labels": [OWNER_LABEL],
                "paths": [{"path": "/", "path_type": "Prefix"}],
            },
        )
        return api, emu.apis(app_id)
    canary = client.create_canary(
        app_id,
        {
            "name": "canaryctl",
            "type": "percent",
            "state": "in_progress",
            "canary_upstream_version": "ns/v2",
            "percent": 10,
        },
    )
    return canary, emu.canaries(app_id)


@pytest.mark.parametrize("kind", ["app", "api", "canary"])
def test_a_dropped_create_is_retried_once_it_is_known_not_to_have_landed(client, emu, kind):
    emu.inject_fault(kind="drop", method="POST", times=1)
    created, stored = create_kind(client, emu, kind)
    assert [obj["id"] for obj in stored] == [created["id"]]
    assert [(r.method, r.status) for r in api_calls(emu, at_least=3)] == [
        ("POST", 0),
        ("GET", 200),
        ("POST", 200),
    ]


@pytest.mark.parametrize("kind", ["app", "api", "canary"])
def test_a_create_whose_answer_was_lost_returns_what_landed(emu, kind):
    """A create applied after the client gave up on its answer is found, not made twice.

    The emulator cannot apply-then-drop; a delay beyond the read timeout is the same to the
    client: the server applies the create after the client gave up on the answer.
    """
    emu.inject_fault(kind="latency", method="POST", latency_ms=300, times=1)
    policy = RetryPolicy(attempts=4, deadline=10, backoff_initial=0.6, backoff_max=2.0)
    retries_before = counter("canaryctl_gateway_retries_total")
    with Api7Client(TOKEN, emu.url, timeout=(1.0, 0.1), retry=policy) as api7:
        created, stored = create_kind(api7, emu, kind)
    assert [obj["id"] for obj in stored] == [created["id"]]
    assert counter("canaryctl_gateway_retries_total") - retries_before == 1
    lookup = api_calls(emu, "GET")
    assert [r.query.startswith("search=") for r in lookup] == [True]
    assert all(
        r.time < lookup[0].time for r in api_calls(emu, "POST", at_least=0)
    )  # no POST after it


def test_a_delete_whose_answer_was_lost_is_done_when_the_retry_finds_nothing(emu):
    app_id = emu.store.create_app(None, app_body("shop"))["id"]
    emu.inject_fault(kind="latency", method="DELETE", latency_ms=300, times=1)
    policy = RetryPolicy(attempts=4, deadline=10, backoff_initial=0.6, backoff_max=2.0)
    with Api7Client(TOKEN, emu.url, timeout=(1.0, 0.1), retry=policy) as api7:
        api7.delete_app(emu.cluster_id, app_id)
    assert emu.apps() == []
    assert [(r.method, r.status) for r in api_calls(emu)][-1] == ("DELETE", 404)


# --- a scripted server: headers, odd lists, TLS -----------------------------------------------


class Scripted:
    """Answers requests with the next scripted (status, payload or error), recording what it saw."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, object]] = []
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.url = ""
        self.token = TOKEN

    def client(self, **options) -> Api7Client:
        return Api7Client(self.token, self.url, retry=FAST, **options)


def _scripted_handler(script: Scripted) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            script.seen.append((self.command, self.path, dict(self.headers), body))
            status, answer = script.answers.pop(0)
            envelope = {
                "status": {"code": 0 if status == 200 else 3, "message": "x"},
                "payload" if status == 200 else "error": answer,
            }
            data = (json.dumps(envelope) if status < 500 else "upstream down").encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_PUT = do_POST = do_DELETE = do_GET

    return Handler


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    script = Scripted()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _scripted_handler(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield script
    server.shutdown()
    server.server_close()


def test_headers_carry_the_token_json_type_and_one_request_id_per_logical_call(scripted):
    scripted.answers = [(503, None), (200, {"id": "3"}), (200, {"id": "3"})]
    with scripted.client() as api7:
        api7.replace_app("9", "3", {"name": "a"})
        api7.get_app("9", "3")
    (m1, p1, h1, b1), (_m2, _, h2, _), (m3, _, h3, b3) = scripted.seen
    assert (m1, p1) == ("PUT", "/api/v1/clusters/9/apps/3") and json.loads(b1) == {"name": "a"}
    assert h1["Authorization"] == f"Bearer {TOKEN}" and h1["Content-Type"] == "application/json"
    assert h1["X-Request-ID"] == h2["X-Request-ID"] != h3["X-Request-ID"]
    assert m3 == "GET" and b3 == b"" and "Content-Type" not in h3


def test_a_create_refused_as_taken_after_a_doubtful_attempt_returns_the_late_arrival(scripted):
    landed = {"id": "8", "name": "shop", "labels": [OWNER_LABEL]}
    scripted.answers = [
        (503, None),
        (200, {"list": [], "count": 0}),
        (400, "name 'shop' is already used"),
        (200, {"list": [landed], "count": 1}),
    ]
    with scripted.client() as api7:
        assert api7.create_app("9", {"name": "shop", "labels": [OWNER_LABEL]}) == landed
    assert [(method, path.split("?")[0]) for method, path, _, _ in scripted.seen] == [
        ("POST", "/api/v1/clusters/9/apps"),
        ("GET", "/api/v1/clusters/9/apps"),
        ("POST", "/api/v1/clusters/9/apps"),
        ("GET", "/api/v1/clusters/9/apps"),
    ]


def test_a_first_attempt_refused_as_bad_is_not_looked_up(scripted):
    scripted.answers = [(400, "name 'shop' is already used")]
    with (
        scripted.client() as api7,
        pytest.raises(TerminalGatewayError, match="already used") as caught,
    ):
        api7.create_app("9", {"name": "shop"})
    assert caught.value.status == 400 and len(scripted.seen) == 1


@pytest.fixture
def tls(tmp_path, scripted) -> Iterator[tuple[Scripted, str]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _scripted_handler(scripted))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scripted.url = f"https://127.0.0.1:{server.server_address[1]}"
    yield scripted, str(cert)
    server.shutdown()
    server.server_close()


def test_tls_is_verified_by_default_and_trusts_the_given_ca_bundle(tls):
    script, cert = tls
    with script.client() as api7, pytest.raises(TerminalGatewayError, match="TLS failed"):
        api7.me()
    script.answers = [(200, {"org_ids": ["1"]})]
    with script.client(ca_bundle=cert) as api7:
        assert api7.me() == {"org_ids": ["1"]}

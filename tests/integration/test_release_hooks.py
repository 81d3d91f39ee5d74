"""Release hooks over real HTTP: canaryctl's hook client against a local receiver, then whole
reconciles (real caches, the in-memory gateway, a scripted Prometheus) whose hooks are real
POSTs to that receiver — a pre hook that says no, a promote gate that says no, a hanging
step hook, a rollback notice sent off the reconcile path."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from canaryctl import annotations as ann
from canaryctl import metrics
from canaryctl.cache import ServiceStore
from canaryctl.gateway.cache import GatewayCache
from canaryctl.objects import Service, ServicePort
from canaryctl.reconciler import INDEXERS, Reconciler
from canaryctl.release import config as rc
from canaryctl.release.hookclient import HookClient
from canaryctl.release.hooks import HookCall, context_of
from canaryctl.release.hooktargets import HookTargets
from canaryctl.release.state import CheckResult, ReleaseState
from canaryctl.testing.hookreceiver import Answer, HookReceiver
from canaryctl.testing.memory_gateway import MemoryGateway
from canaryctl.testing.processes import free_port, wait_until
from canaryctl.tls import selfsigned
from canaryctl.tls.context import server_context

APP = "error-page"
T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
CONTEXT = context_of(APP, ("demo", "v2"), ("demo", "v1"), 3)
STATE = ReleaseState("Progressing", 1, 50, T0)
PASS = CheckResult("pass", "error rate 0.0 % <= 1.0 % over 60 s (600 requests)", 600, 60)
FAIL = CheckResult("fail", "error rate 30.0 % > 1.0 % over 60 s (600 requests)", 600, 60)


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    with HookReceiver() as started:
        yield started


@pytest.fixture
def client() -> Iterator[HookClient]:
    hooks = HookClient()
    yield hooks
    hooks.close(timeout=1)


def call(url: str, timeout_s: float = 2.0, hook: str = "step") -> HookCall:
    return HookCall(hook, url, timeout_s, CONTEXT, STATE)  # type: ignore[arg-type]


def hook_count(hook: str, result: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "canaryctl_hook_calls_total", {"hook": hook, "result": result}
        )
        or 0.0
    )


# --- the client -------------------------------------------------------------------------------


def test_a_2xx_is_a_pass_and_the_receiver_gets_the_release_context(receiver, client):
    receiver.answer("/step", Answer(204, ""))
    result = client.call(call(receiver.url("/step")))
    assert (result.result, result.status, result.attempts) == ("pass", 204, 1)
    (received,) = receiver.calls("/step")
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["User-Agent"].startswith("canaryctl/")
    assert received.payload == json.loads(call("x").body())
    assert (received.payload["app"], received.payload["weight"]) == (APP, 50)


def test_any_other_answer_is_a_fail_with_an_excerpt_and_is_not_retried(receiver, client):
    receiver.answer("/step", Answer(412, "smoke tests:\n 3 of 20 failed"))
    result = client.call(call(receiver.url("/step")))
    assert (result.result, result.status, result.attempts) == ("fail", 412, 1)
    assert result.message.endswith("answered HTTP 412: smoke tests: 3 of 20 failed")


def test_a_redirect_is_not_followed(receiver, client):
    receiver.answer("/step", Answer(302, "", headers={"Location": receiver.url("/elsewhere")}))
    result = client.call(call(receiver.url("/step")))
    assert (result.result, result.status) == ("fail", 302)
    assert "redirects are not followed" in result.message and not receiver.calls("/elsewhere")


def test_a_transient_answer_is_retried_within_the_budget(receiver, client):
    receiver.answer("/step", Answer(503, "warming up", times=2), Answer(200))
    result = client.call(call(receiver.url("/step")))
    assert (result.result, result.status, result.attempts) == ("pass", 200, 3)
    assert len(receiver.calls("/step")) == 3


def test_a_transient_answer_that_lasts_is_a_fail_when_the_budget_is_spent(receiver, client):
    receiver.answer("/step", Answer(503, "down for maintenance"))
    result = client.call(call(receiver.url("/step"), timeout_s=1.0))
    assert (result.result, result.status) == ("fail", 503) and result.attempts >= 3
    assert result.seconds <= 1.0 + 0.5


def test_a_hanging_hook_is_an_error_after_its_budget_not_a_fail(receiver, client):
    receiver.answer("/step", Answer(200, delay_s=60))
    before = hook_count("step", "error")
    result = client.call(call(receiver.url("/step"), timeout_s=1.0))
    assert (result.result, result.status) == ("error", None)
    assert "no answer within 1 s" in result.message and "timed out" in result.message
    assert result.seconds <= 1.0 + 0.5
    assert hook_count("step", "error") == before + 1


def test_an_unreachable_hook_is_an_error_and_is_retried(client):
    result = client.call(call(f"http://127.0.0.1:{free_port()}/step", timeout_s=1.0))
    assert result.result == "error" and result.attempts >= 3
    assert "connection refused" in result.message


def test_a_hook_that_answers_one_byte_at_a_time_costs_its_budget_not_more(client):
    """Per-read socket timeouts alone would let this run for minutes."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                if stop.wait(0.2):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        result = client.call(call(f"http://127.0.0.1:{listener.getsockname()[1]}/", 1.0))
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert (result.result, result.status) == ("error", None) and "timed out" in result.message
    assert result.seconds <= 1.0 + 0.5


def test_https_verifies_certificates(client):
    """The receiver speaks plain HTTP: a TLS hello gets no answer a TLS client accepts."""
    with HookReceiver() as plain:
        result = client.call(call(plain.url("/step").replace("http://", "https://"), 1.0))
    assert result.result == "error" and "TLS" in result.message


def test_https_reaches_a_trusted_hook_by_its_name():
    """The client opens the socket itself (to the address it allowed), then TLS: the certificate
    is still checked against the URL's host name."""
    certified = selfsigned.generate(["localhost"])
    hooks = HookClient(targets=HookTargets(["localhost"]))
    hooks.tls = ssl.create_default_context(cadata=certified.certificate_pem)
    try:
        with HookReceiver(tls=server_context(certified)) as secure:
            url = secure.url("/step").replace("127.0.0.1", "localhost")
            trusted = hooks.call(call(url))
            hooks.targets = HookTargets()  # any address: 127.0.0.1 is not the certificate's name
            mismatched = hooks.call(call(secure.url("/step"), timeout_s=1))
            calls = len(secure.calls("/step"))
    finally:
        hooks.close(timeout=1)
    assert (trusted.result, trusted.status, calls) == ("pass", 200, 1)
    assert mismatched.result == "error" and "TLS certificate not trusted" in mismatched.message


def test_notify_returns_before_the_hook_answers(receiver, client):
    receiver.answer("/rollback", Answer(200, delay_s=60))
    answered = hook_count("rollback", "error") + hook_count("rollback", "pass")
    client.notify([call(receiver.url("/rollback"), timeout_s=30, hook="rollback")])
    # had notify waited, the call would have ended (and been counted) before it returned
    assert hook_count("rollback", "error") + hook_count("rollback", "pass") == answered
    wait_until(lambda: len(receiver.calls("/rollback")) == 1, 5, "the rollback notice")


def test_notices_beyond_the_queue_are_dropped_and_counted(receiver, client):
    receiver.answer("/rollback", Answer(200, delay_s=60))
    dropped = hook_count("rollback", "dropped")
    client.notify([call(receiver.url("/rollback"), 30, "rollback") for _ in range(70)])
    # 64 wait in the queue, up to 2 are being sent: at least 4 of 70 had no room
    assert 4 <= hook_count("rollback", "dropped") - dropped <= 6


def test_a_link_local_hook_is_refused_without_a_connection_and_never_a_no(client):
    refused = hook_count("step", "refused")
    result = client.call(call("http://169.254.169.254/latest/meta-data/", timeout_s=5))
    assert (result.result, result.status, result.attempts) == ("error", None, 1)
    assert result.seconds < 1  # not retried: the same host would be refused again
    assert result.message == (
        "http://169.254.169.254/latest/meta-data/: not called: 169.254.169.254 is not a place"
        " hooks may call: --hook-allow allows any address but link-local"
    )
    assert hook_count("step", "refused") == refused + 1


@pytest.mark.parametrize(
    "allowed, reached",
    [
        (["10.0.0.0/8", "hooks.example.com"], False),
        (["127.0.0.0/8"], True),
        (["127.0.0.1"], True),
        (["localhost"], True),  # the URL's name, whatever it resolves to
        (["*.localhost"], True),  # a suffix covers the name itself too
    ],
)
def test_with_an_allow_list_only_listed_names_and_networks_are_called(receiver, allowed, reached):
    hooks = HookClient(targets=HookTargets(allowed))
    url = receiver.url("/step").replace("127.0.0.1", "localhost")
    try:
        result = hooks.call(call(url))
    finally:
        hooks.close(timeout=1)
    assert len(receiver.calls("/step")) == (1 if reached else 0)
    assert result.result == ("pass" if reached else "error")
    if not reached:
        assert "--hook-allow allows 10.0.0.0/8, hooks.example.com" in result.message


# --- whole reconciles -------------------------------------------------------------------------


def svc(name: str, **annotations: str) -> Service:
    return Service(
        "demo",
        name,
        f"uid-{name}",
        "1",
        MappingProxyType(dict(annotations)),
        (ServicePort("http", 80),),
    )


@dataclass
class Scripted:
    """Prometheus' place in the loop: answers checks from a list."""

    answers: list[CheckResult]
    asked: int = 0

    def check(self, config, canary, stable, window_s, now) -> CheckResult:
        self.asked += 1
        return self.answers.pop(0)


@dataclass
class Loop:
    """One application's reconciles with real hooks; records Events and statuses."""

    receiver: HookReceiver
    analyzer: Scripted = field(default_factory=lambda: Scripted([]))
    now: datetime = T0
    events: list[tuple[str, str, str]] = field(default_factory=list)
    targets: HookTargets = field(default_factory=HookTargets)

    def __post_init__(self) -> None:
        self.store = ServiceStore(INDEXERS)
        self.gateway = MemoryGateway()
        self.hooks = HookClient(targets=self.targets)
        self.reconciler = Reconciler(
            self.store,
            GatewayCache(),
            self.gateway,
            self,
            self.patch_status,
            self.analyzer,  # type: ignore[arg-type]
            now=lambda: self.now,
            hooks=self.hooks,
        )

    def normal(self, service: Service, reason: str, message: str) -> None:
        self.events.append(("Normal", reason, message))

    def warning(self, service: Service, reason: str, message: str) -> None:
        self.events.append(("Warning", reason, message))

    def patch_status(self, service: Service, value: str | None) -> None:
        annotations = dict(service.annotations) | {ann.STATUS: value or ""}
        version = str(int(service.resource_version) + 1)
        self.store.upsert(
            Service(
                service.namespace,
                service.name,
                service.uid,
                version,
                MappingProxyType(annotations),
                service.ports,
            )
        )

    def publish(self, **release: str) -> None:
        self.store.upsert(svc("v1", **{ann.APP: APP}))
        annotations = {ann.APP: APP, ann.CANARY: "true", rc.STEPS: "20,50", **release}
        self.store.upsert(svc("v2", **annotations))

    def reconcile_at(self, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)
        self.reconciler.reconcile(APP)

    def weight(self) -> int | None:
        state = self.gateway.apps.get(APP)
        return None if state is None else state.weight

    def release(self) -> dict:
        status = self.store.get("demo/v2").annotations[ann.STATUS]
        return json.loads(status)["release"]

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


@pytest.fixture
def loop(receiver) -> Iterator[Loop]:
    made = Loop(receiver)
    yield made
    made.hooks.close(timeout=1)


def test_a_pre_hook_that_says_no_aborts_at_0_percent_before_any_traffic(loop, receiver):
    receiver.answer("/pre", Answer(409, "change freeze until Monday"))
    loop.publish(**{rc.PRE_HOOK: receiver.url("/pre")})
    loop.reconcile_at(0)
    (asked,) = receiver.calls("/pre")
    assert (asked.payload["hook"], asked.payload["weight"]) == ("pre", 0)
    assert loop.weight() == 0 and loop.analyzer.asked == 0
    assert "StepAdvanced" not in loop.reasons() and "Aborted" in loop.reasons()
    state = loop.release()
    assert (state["phase"], state["weight"]) == ("Aborted", 0)
    assert "change freeze until Monday" in state["reason"]


def test_a_pre_hook_that_says_yes_starts_the_first_step(loop, receiver):
    loop.publish(**{rc.PRE_HOOK: receiver.url("/pre")})
    loop.reconcile_at(0)
    assert loop.weight() == 20 and len(receiver.calls("/pre")) == 1
    assert loop.release()["lastCheck"]["hooks"][0]["status"] == 200


def test_a_hanging_step_hook_holds_the_weight_as_an_error(loop, receiver):
    receiver.answer("/step", Answer(200, delay_s=60))
    loop.publish(**{rc.STEP_HOOK: receiver.url("/step"), rc.HOOK_TIMEOUT: "500ms"})
    loop.analyzer.answers.append(PASS)
    loop.reconcile_at(0)
    loop.reconcile_at(60)
    state = loop.release()
    assert (state["weight"], state["counts"]["error"], state["counts"]["fail"]) == (20, 1, 0)
    assert state["lastCheck"]["result"] == "error" and "AnalysisError" in loop.reasons()
    assert receiver.calls("/step")[0].payload["lastCheck"]["result"] == "pass"  # the metrics


def test_a_promote_gate_that_says_no_holds_at_the_last_step_then_yes_promotes(loop, receiver):
    receiver.answer("/gate", Answer(423, "waiting for sign-off", times=1))
    loop.publish(**{rc.PROMOTE_GATE: receiver.url("/gate")})
    loop.analyzer.answers.extend([PASS, PASS, PASS])
    loop.reconcile_at(0)
    loop.reconcile_at(60)  # 20 % -> 50 %: the gate is not asked below the last step
    assert loop.weight() == 50 and not receiver.calls("/gate")
    loop.events.clear()
    loop.reconcile_at(120)
    assert loop.weight() == 50 and loop.reasons() == ["PromotionHeld"]
    assert "waiting for sign-off" in loop.events[0][2]
    loop.reconcile_at(180)
    assert loop.weight() == 100 and loop.release()["phase"] == "Succeeded"
    assert [c.payload["weight"] for c in receiver.calls("/gate")] == [50, 50]


def test_the_rollback_hook_hears_of_a_rollback_after_the_gateway_write(loop, receiver):
    loop.publish(**{rc.ROLLBACK_HOOK: receiver.url("/rollback"), rc.FAILURE_LIMIT: "1"})
    loop.analyzer.answers.append(FAIL)
    loop.reconcile_at(0)
    loop.reconcile_at(60)
    assert loop.weight() == 0 and "RolledBack" in loop.reasons()
    wait_until(lambda: len(receiver.calls("/rollback")) == 1, 5, "the rollback notice")
    payload = receiver.calls("/rollback")[0].payload
    assert (payload["phase"], payload["weight"]) == ("RolledBack", 0)
    assert payload["lastCheck"]["result"] == "fail"


def test_a_pre_hook_the_operator_does_not_allow_holds_at_0_percent_and_says_why(receiver):
    loop = Loop(receiver, targets=HookTargets(["10.0.0.0/8"]))
    loop.publish(**{rc.PRE_HOOK: receiver.url("/pre")})
    loop.reconcile_at(0)
    assert receiver.calls("/pre") == [] and loop.weight() == 0
    assert "Aborted" not in loop.reasons()
    check = loop.release()["lastCheck"]
    assert (check["result"], check["hooks"][0]["attempts"]) == ("error", 1)
    assert check["message"] == (
        f"pre-release hook {receiver.url('/pre')}: not called: 127.0.0.1 is not a place hooks"
        " may call: --hook-allow allows 10.0.0.0/8"
    )

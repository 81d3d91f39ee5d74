"""Which Events are notified, their payloads and idempotency keys; channel configuration."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from canaryctl.cli import main
from canaryctl.notify.config import (
    DEFAULT_CHANNEL,
    NOTIFY,
    UrlSource,
    channels_from,
    requested_channels,
)
from canaryctl.notify.messages import (
    Notification,
    event_name,
    idempotency_key,
    payload,
    slack_payload,
)
from canaryctl.objects import Service, ServicePort
from canaryctl.release.config import parse_release
from canaryctl.release.state import CheckResult, ReleaseState

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
SECRET_URL = "https://hooks.example.com/services/T000/B000/very-secret-token"


def state(**changes) -> ReleaseState:
    return replace(ReleaseState("Progressing", 0, 10, T0), **changes)


def notification(**changes) -> Notification:
    base = Notification(
        "StepAdvanced",
        "Normal",
        "demo",
        "error-page",
        "demo/v2",
        "analysis passed: canary weight 10 % -> 30 % <step 2 of 3> & more",
        state(step=1, weight=30, last_check=CheckResult("pass", "ok"), last_check_at=T0),
        3,
        "k" * 32,
    )
    return replace(base, **changes)


def test_the_start_is_a_step_advanced_without_a_check():
    assert event_name("StepAdvanced", state()) == "Started"
    checked = state(last_check=CheckResult("pass", "ok"), last_check_at=T0)
    assert event_name("StepAdvanced", checked) == "StepAdvanced"


@pytest.mark.parametrize("reason", ["RolledBack", "AnalysisFailed", "Paused", "Promoted"])
def test_release_moments_are_notified(reason):
    assert event_name(reason, state()) == reason


@pytest.mark.parametrize(
    "reason", ["CanaryWeightChanged", "AnalysisNoData", "AnalysisError", "ActionIgnored", "X"]
)
def test_bookkeeping_events_are_not_notified(reason):
    assert event_name(reason, state()) is None


def test_the_key_is_stable_for_one_state_and_new_for_any_change():
    key = idempotency_key("app", "ns/v2", "AnalysisFailed", state(failures=1), "m")
    assert key == idempotency_key("app", "ns/v2", "AnalysisFailed", state(failures=1), "other")
    assert key != idempotency_key("app", "ns/v2", "AnalysisFailed", state(failures=2), "m")
    assert key != idempotency_key("app", "ns/v2", "RolledBack", state(failures=1), "m")
    later = state(failures=1, last_check=CheckResult("fail", "x"), last_check_at=T0)
    assert key != idempotency_key("app", "ns/v2", "AnalysisFailed", later, "m")
    assert idempotency_key("app", "ns/v1", "Promoted", None, "a") != idempotency_key(
        "app", "ns/v1", "Promoted", None, "b"
    )


def test_the_json_payload_carries_the_release_state():
    body = payload(notification(), "json", T0)
    assert body["event"] == "StepAdvanced" and body["app"] == "error-page"
    assert body["release"]["weight"] == 30 and body["release"]["step"] == 1
    assert body["stepCount"] == 3 and body["idempotencyKey"] == "k" * 32
    assert body["time"] == "2026-06-01T12:00:00Z"
    json.dumps(body)  # serialisable


def test_the_slack_payload_escapes_markup_and_lists_the_numbers():
    body = slack_payload(notification())
    assert "&lt;step 2 of 3&gt; &amp; more" in body["text"] and "<step" not in body["text"]
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert fields == {
        "Event": "StepAdvanced",
        "Phase": "Progressing",
        "Weight": "30 %",
        "Step": "2 of 3",
    }
    assert body["attachments"][0]["color"] == "good"
    warning = slack_payload(notification(type="Warning", release=None))
    assert warning["attachments"][0]["color"] == "danger"


def test_channels_from_a_url_file_and_a_config_file(tmp_path: Path):
    url_file = tmp_path / "url"
    url_file.write_text(SECRET_URL + "\n")
    config = tmp_path / "channels.json"
    config.write_text(
        json.dumps(
            {
                "channels": {
                    "payments": {"urlFile": str(url_file), "format": "slack"},
                    "audit": {"url": "http://127.0.0.1:9/a", "events": ["RolledBack"]},
                }
            }
        )
    )
    channels = channels_from(str(url_file), "slack", str(config))
    assert sorted(channels) == ["audit", DEFAULT_CHANNEL, "payments"]
    assert channels[DEFAULT_CHANNEL].format == "slack"
    assert channels[DEFAULT_CHANNEL].url.get() == SECRET_URL
    assert channels["audit"].events == frozenset({"RolledBack"})
    assert SECRET_URL not in repr(channels)


def test_a_rotated_url_file_is_read_again(tmp_path: Path):
    url_file = tmp_path / "url"
    url_file.write_text("http://127.0.0.1:9/one")
    source = UrlSource(path=url_file)
    url_file.write_text("http://127.0.0.1:9/two")
    assert source.get().endswith("/two")


@pytest.mark.parametrize(
    "content, flags, message",
    [
        (None, {}, "cannot read"),
        ("ftp://hooks.example.com/" + "x" * 10, {}, "not an http(s) URL"),
        (SECRET_URL + " trailing", {}, "not an http(s) URL"),
        (SECRET_URL, {"fmt": "xml"}, "--notify-format"),
    ],
)
def test_bad_settings_are_refused_without_showing_the_url(tmp_path, content, flags, message):
    url_file = tmp_path / "url"
    if content is not None:
        url_file.write_text(content)
    with pytest.raises(ValueError) as raised:
        channels_from(str(url_file), flags.get("fmt"), None)
    assert message in str(raised.value)
    assert "hooks.example.com" not in str(raised.value)


def test_a_format_without_a_url_file_is_refused():
    with pytest.raises(ValueError, match="needs --notify-url-file"):
        channels_from(None, "slack", None)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"Payments": {"url": "http://127.0.0.1:9/"}}, "lowercase DNS labels"),
        ({"a": {"url": "http://127.0.0.1:9/", "urlFile": "/x"}}, "exactly one"),
        ({"a": {"url": "http://127.0.0.1:9/", "events": ["Exploded"]}}, "events must be"),
        ({"a": {"url": "http://127.0.0.1:9/", "format": "xml"}}, "format must be"),
        ({"a": {"url": "http://127.0.0.1:9/", "headers": {}}}, "accepted keys"),
    ],
)
def test_bad_config_files_are_refused(tmp_path, spec, message):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"channels": spec}))
    with pytest.raises(ValueError, match=message):
        channels_from(None, None, str(config))


def test_services_name_channels_not_urls():
    assert requested_channels({NOTIFY: " payments, oncall ,payments"}) == (
        ["payments", "oncall"],
        0,
    )
    assert requested_channels({NOTIFY: SECRET_URL}) == ([], 1)
    assert requested_channels({}) == ([], 0)


def test_the_notify_annotation_is_not_an_unknown_release_annotation():
    annotations = {"api7.cloud/canary-steps": "50", NOTIFY: "payments"}
    service = Service("demo", "v2", "uid", "1", annotations, (ServicePort("http", 80),))
    assert parse_release(service).steps == (50, 100)


@pytest.fixture
def restore_root_logger():
    """`run` configures the root logger for the process; give the test session its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_run_refuses_an_unusable_url_file_before_any_api_call(
    tmp_path, monkeypatch, capsys, restore_root_logger
):
    monkeypatch.setenv("API7_CLOUD_TOKEN", "secret-token-value")
    url_file = tmp_path / "url"
    url_file.write_text("gopher://" + SECRET_URL.split("://")[1])
    monkeypatch.setenv("CANARYCTL_NOTIFY_URL_FILE", str(url_file))
    assert main(["run", "--api7-addr", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "--notify-url-file" in err and str(url_file) in err
    assert "very-secret-token" not in err

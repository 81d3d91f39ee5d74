"""Small I/O helpers: listen addresses, the health/metrics endpoints, structured logs."""

import json
import logging

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter

from canaryctl.logs import JsonFormatter, TextFormatter
from canaryctl.server import health_endpoint, metrics_endpoint, parse_address


@pytest.mark.parametrize(
    "address, expected",
    [
        (":8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9", ("::1", 9)),
        ("8080", ("0.0.0.0", 8080)),
    ],
)
def test_parse_address(address, expected):
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["host:", "host:http", ""])
def test_parse_address_rejects_garbage(address):
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(address)


def test_readyz_follows_the_readiness_callable_and_metrics_are_served():
    ready = {"value": False}
    health = health_endpoint("127.0.0.1:0", lambda: ready["value"]).start()
    registry = CollectorRegistry()
    Counter("demo_total", "a counter", registry=registry).inc(3)
    served = metrics_endpoint("127.0.0.1:0", registry).start()
    try:
        base = f"http://127.0.0.1:{health.port}"
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 503
        ready["value"] = True
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
        assert requests.get(f"{base}/nothing", timeout=5).status_code == 404
        assert (
            "demo_total 3.0"
            in requests.get(f"http://127.0.0.1:{served.port}/metrics", timeout=5).text
        )
    finally:
        health.stop()
        served.stop()


def _record(**extra) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {
            "name": "canaryctl.test",
            "levelname": "WARNING",
            "levelno": 30,
            "msg": "reconcile of %s failed",
            "args": ("shop",),
        }
    )
    record.__dict__.update(extra)
    return record


def test_json_logs_carry_extra_fields_as_keys():
    entry = json.loads(JsonFormatter().format(_record(app="shop", reason="GatewayError")))
    assert entry["msg"] == "reconcile of shop failed" and entry["level"] == "warning"
    assert entry["app"] == "shop" and entry["reason"] == "GatewayError" and "time" in entry


def test_text_logs_append_extra_fields():
    line = TextFormatter().format(_record(app="shop"))
    assert "reconcile of shop failed" in line and line.endswith("app=shop")


def test_huge_messages_and_fields_are_cut_and_say_so():
    import json as _json
    import logging as _logging

    from canaryctl.logs import MAX_FIELD, JsonFormatter, TextFormatter

    record = _logging.makeLogRecord(
        {"msg": "holding %s", "args": ("a" * 300_000,), "levelname": "INFO", "app": "b" * 300_000}
    )
    entry = _json.loads(JsonFormatter().format(record))
    assert len(entry["msg"]) < MAX_FIELD + 100 and entry["msg"].endswith("characters cut)")
    assert len(entry["app"]) < MAX_FIELD + 100
    assert len(TextFormatter().format(record)) < 3 * MAX_FIELD

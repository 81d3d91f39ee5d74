"""`canaryctl run --gateway apisix`: flags and environment, the start-up check against the APISIX
emulator, and the analysis queries that fit real APISIX's metrics."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator

import pytest

from canaryctl.cli import main
from canaryctl.commands import run
from canaryctl.gateway.apisix import ApisixGateway, options
from canaryctl.gateway.base import ConnectError
from canaryctl.release.analysis import APISIX_QUERIES, QueryTemplates, Target
from canaryctl.testing.apisix import ApisixEmulator

KEY = "run-flags-admin-key-93c1"


@pytest.fixture(autouse=True)
def restore_root_logger():
    """`run` configures the root logger for the process; give the test session its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def emu() -> Iterator[ApisixEmulator]:
    with ApisixEmulator(admin_key=KEY) as emulator:
        yield emulator


def parse(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run.configure(parser)
    return parser.parse_args(["--gateway=apisix", *flags])


def test_address_and_key_come_from_the_environment(monkeypatch, emu):
    monkeypatch.setenv("APISIX_ADMIN_URL", emu.admin_url)
    monkeypatch.setenv("APISIX_ADMIN_KEY", KEY)
    connection = options.connect(parse(), "canaryctl/test")
    try:
        assert (
            isinstance(connection.gateway, ApisixGateway) and connection.gateway.list_apps() == {}
        )
        assert KEY not in repr(connection.gateway)
    finally:
        connection.close()
    probe, *listed = emu.request_log()
    assert (probe.method, probe.path, probe.status) == ("GET", "/apisix/admin/routes", 200)
    assert [r.path for r in listed] == ["/apisix/admin/routes", "/apisix/admin/upstreams"]


def test_the_default_address_is_apisixs_own_admin_listener(monkeypatch):
    monkeypatch.delenv("APISIX_ADMIN_URL", raising=False)
    assert parse().apisix_admin_url == "http://127.0.0.1:9180"


def test_a_wrong_key_stops_the_controller_at_start_without_showing_it(monkeypatch, emu, capsys):
    monkeypatch.setenv("APISIX_ADMIN_KEY", "not-the-" + KEY)
    assert main(["run", "--gateway=apisix", f"--apisix-admin-url={emu.admin_url}"]) == 1
    err = capsys.readouterr().err
    assert "rejected the key (401)" in err and KEY not in err and "Traceback" not in err


def test_an_unreachable_admin_api_is_waited_for_not_fatal(monkeypatch, caplog):
    monkeypatch.setenv("APISIX_ADMIN_KEY", KEY)
    args = parse("--apisix-admin-url=http://127.0.0.1:9")
    connection = options.connect(args, "canaryctl/test")  # the controller retries its first read
    connection.close()
    assert "not reachable yet" in caplog.text


def test_tls_failure_is_fatal(monkeypatch, emu):
    monkeypatch.setenv("APISIX_ADMIN_KEY", KEY)
    https = emu.admin_url.replace("http://", "https://")
    with pytest.raises(ConnectError) as caught:
        options.connect(parse(f"--apisix-admin-url={https}"), "canaryctl/test")
    assert caught.value.exit_code == 1 and "TLS failed" in str(caught.value)


def test_apisix_analysis_defaults_select_the_services_clusterip():
    analyzer = run._analyzer(parse("--prometheus-url=http://127.0.0.1:9"))
    assert analyzer.templates == APISIX_QUERIES
    target = Target("demo", "error-page", "error-page-v2", "error-page-v2.demo.svc:80", "10.96.3.4")
    rendered = analyzer.templates.render(analyzer.templates.errors, target, "30s")
    assert rendered == 'sum(increase(apisix_http_status{node="10.96.3.4",code=~"5.."}[30s]))'
    api7 = run._analyzer(parse("--gateway=api7", "--prometheus-url=http://127.0.0.1:9"))
    assert api7.templates == QueryTemplates()  # node="{target}", as API7's data plane is emulated
    custom = run._analyzer(parse("--prometheus-url=http://x:9", "--query-requests=sum(up)"))
    assert (
        custom.templates.requests == "sum(up)" and custom.templates.errors == APISIX_QUERIES.errors
    )

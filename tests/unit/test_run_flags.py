"""`canaryctl run` refuses bad settings before touching any API."""

import logging

import pytest

from canaryctl.cli import main


@pytest.fixture(autouse=True)
def restore_root_logger():
    """`run` configures the root logger for the process; give the test session its own back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_run_without_a_token_exits_2(monkeypatch, capsys):
    monkeypatch.delenv("API7_CLOUD_TOKEN", raising=False)
    assert main(["run", "--api7-addr", "http://127.0.0.1:9"]) == 2
    assert "API7_CLOUD_TOKEN" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--query-errors", "--query-latency-buckets"])
def test_run_with_an_unknown_query_variable_exits_2(monkeypatch, capsys, flag):
    monkeypatch.setenv("API7_CLOUD_TOKEN", "secret-token-value")
    assert (
        main(
            [
                "run",
                "--api7-addr",
                "http://127.0.0.1:9",
                "--prometheus-url",
                "http://127.0.0.1:9",
                flag,
                "sum({bogus})",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "unknown variable(s) bogus" in err and "secret-token-value" not in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--metrics-cert-file=tls.crt", "--metrics-key-file=tls.key"], "need --metrics-secure"),
        (["--metrics-secure", "--metrics-cert-file=tls.crt"], "go together"),
        (
            [
                "--metrics-secure",
                "--metrics-cert-file=/nonexistent/tls.crt",
                "--metrics-key-file=/nonexistent/tls.key",
            ],
            "No such file",
        ),
    ],
    ids=["without-secure", "cert-without-key", "missing-files"],
)
def test_bad_metrics_tls_flags_exit_2(monkeypatch, capsys, flags, message):
    monkeypatch.setenv("API7_CLOUD_TOKEN", "secret-token-value")
    assert main(["run", "--api7-addr", "http://127.0.0.1:9", *flags]) == 2
    err = capsys.readouterr().err
    assert "invalid flag" in err and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "parent, message",
    [
        (None, "--gateway-api-parent is required"),
        ("just-a-name", "is not NAMESPACE/NAME[/SECTION]"),
        ("Infra/gw", "is not NAMESPACE/NAME[/SECTION]"),
    ],
)
def test_gateway_api_without_a_valid_parent_exits_2(monkeypatch, capsys, parent, message):
    monkeypatch.delenv("CANARYCTL_GATEWAY_API_PARENT", raising=False)
    args = ["run", "--gateway", "gateway-api", "--kubeconfig", "/nonexistent"]
    assert main(args + ([f"--gateway-api-parent={parent}"] if parent else [])) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--leader-elect"], "--leader-elect-namespace"),
        (
            ["--leader-elect", "--leader-elect-namespace=ops", "--leader-elect-renew-deadline=20s"],
            "greater than the renew deadline",
        ),
    ],
    ids=["no-namespace-outside-a-pod", "renew-deadline-past-the-lease"],
)
def test_bad_leader_election_flags_exit_2(monkeypatch, capsys, tmp_path, flags, message):
    monkeypatch.setenv("API7_CLOUD_TOKEN", "secret-token-value")
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.setenv("CANARYCTL_SERVICEACCOUNT_DIR", str(tmp_path))  # no namespace file
    assert main(["run", "--api7-addr", "http://127.0.0.1:9", *flags]) == 2
    err = capsys.readouterr().err
    assert "invalid flag" in err and message in err and "Traceback" not in err


@pytest.mark.parametrize("pattern", ["http://hooks.example.com", "a..b", "*.", "bad name"])
def test_a_hook_allow_that_is_no_name_suffix_or_network_exits_2(monkeypatch, capsys, pattern):
    monkeypatch.setenv("API7_CLOUD_TOKEN", "secret-token-value")
    assert main(["run", "--api7-addr", "http://127.0.0.1:9", f"--hook-allow={pattern}"]) == 2
    err = capsys.readouterr().err
    assert "invalid flag" in err and f"--hook-allow {pattern!r}" in err and "Traceback" not in err

"""Pure parts of the user-facing output: the YAML emitter, watch events, progress lines, and
the kubectl plugin's translation of kubectl-style arguments."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from canaryctl.annotations import STATUS
from canaryctl.commands.status import Row
from canaryctl.commands.status_watch import progress_line, row_events
from canaryctl.kubectl_plugin import canaryctl_argv, split_global_flags
from canaryctl.objects import Service, ServicePort
from canaryctl.release.config import STEP_INTERVAL, STEPS
from canaryctl.release.state import CheckResult, ReleaseState
from canaryctl.status import MemberStatus
from canaryctl.yamlout import dump, dump_all

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=("Cs",)))
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_yaml_reads_back_as_written(document):
    assert yaml.safe_load(dump(document)) == document


@pytest.mark.parametrize(
    "text", ["yes", "No", "null", "~", "1e3", "0x10", "12:30", "- a", "a: b", "#x", "", " x", "on"]
)
def test_strings_yaml_would_misread_are_quoted(text):
    assert yaml.safe_load(dump({"v": text})) == {"v": text}
    assert dump(text).startswith('"')


def test_special_floats_and_block_layout():
    assert yaml.safe_load(dump([math.inf, -math.inf, 1e16])) == [math.inf, -math.inf, 1e16]
    assert dump({"a": [], "b": {}, "c": [{"d": 1}]}) == "a: []\nb: {}\nc:\n  - d: 1\n"
    assert list(yaml.safe_load_all(dump_all([{"a": 1}, {"b": 2}]))) == [{"a": 1}, {"b": 2}]


def row(phase: str = "Canary", weight: int | None = 10, canary: str | None = "ns/v2") -> Row:
    return Row("ns", "web", ("ns/v1",), canary, weight, weight, phase, "")


def test_watch_events_name_what_changed():
    shown: dict = {}
    assert [e["type"] for e in row_events(shown, [row()])] == ["ADDED"]
    assert row_events(shown, [row()]) == []
    [modified] = row_events(shown, [row(phase="Progressing")])
    assert modified["type"] == "MODIFIED" and modified["row"]["phase"] == "Progressing"
    events = row_events(shown, [row(canary=None, weight=None)])
    assert sorted(e["type"] for e in events) == ["ADDED", "DELETED"]


def canary(release: ReleaseState | None, **annotations: str) -> Service:
    status = MemberStatus("canary", "web", 10, "Canary", "", release=release)
    values = {STEPS: "10,50", STEP_INTERVAL: "60s", STATUS: status.render(T0), **annotations}
    return Service("ns", "v2", "u", "1", MappingProxyType(values), (ServicePort("http", 80),))


def test_progress_counts_steps_and_the_time_left():
    release = ReleaseState("Progressing", 1, 50, T0)
    line = progress_line(canary(release), T0 + timedelta(seconds=15))
    assert line == "[########............] step 2 of 3 at 50%, next check in 45s"


def test_progress_after_a_check_counts_from_the_check():
    check = CheckResult("no_data", "too few requests")
    release = ReleaseState(
        "Progressing", 0, 10, T0, last_check=check, last_check_at=T0 + timedelta(seconds=60)
    )
    line = progress_line(canary(release), T0 + timedelta(seconds=70))
    assert line is not None and line.endswith("step 1 of 3 at 10%, next check in 50s")


def test_no_progress_for_a_paused_or_unknown_release():
    paused = ReleaseState("Paused", 1, 50, T0)
    assert progress_line(canary(paused), T0) is None
    assert progress_line(canary(None), T0) is None


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["-n", "shop", "promote", "web"], ["promote", "-n", "shop", "web"]),
        (["promote", "shop/web", "--context=x"], ["promote", "--context", "x", "shop/web"]),
        (["status", "-A", "--kubeconfig", "/k"], ["status", "--kubeconfig", "/k", "-A"]),
        (["--namespace=a", "weight", "web", "50"], ["weight", "-n", "a", "web", "50"]),
        (["-nfoo", "abort", "web"], ["abort", "-n", "foo", "web"]),
        (["status", "-o", "yaml", "--watch"], ["status", "-o", "yaml", "--watch"]),
    ],
)
def test_kubectl_style_flags_are_moved_after_the_command(argv, expected):
    assert canaryctl_argv(argv) == expected


def test_a_bare_name_without_n_gets_the_context_namespace(tmp_path, monkeypatch):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [
                    {"name": "a", "context": {"cluster": "c", "user": "u", "namespace": "shop"}},
                    {"name": "b", "context": {"cluster": "c", "user": "u"}},
                ],
                "current-context": "a",
            }
        )
    )
    assert canaryctl_argv(["pause", "web", "--kubeconfig", str(kubeconfig)]) == [
        "pause",
        "--kubeconfig",
        str(kubeconfig),
        "-n",
        "shop",
        "web",
    ]
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert canaryctl_argv(["pause", "web", "--context", "b"])[-3:] == ["-n", "default", "web"]


def test_a_flag_missing_its_value_is_left_for_the_command():
    assert split_global_flags(["status", "-n"]) == ({}, ["status", "-n"])
    assert canaryctl_argv([]) is None and canaryctl_argv(["help"]) is None

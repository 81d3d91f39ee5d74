"""`canaryctl status --watch` in a subprocess against a real kube-apiserver: each change to a
Service's status annotation redraws the table (or emits an event), straight from the watch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from canaryctl.annotations import APP, CANARY, PERCENT, STATUS
from canaryctl.release.config import STEP_INTERVAL, STEPS
from canaryctl.release.state import ReleaseState
from canaryctl.status import MemberStatus
from canaryctl.testing.processes import next_line, stdout_lines, terminate

pytestmark = pytest.mark.localkube

REPO = Path(__file__).resolve().parents[2]


def create_service(core_api, namespace: str, name: str, **annotations: str) -> None:
    body = {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"ports": [{"port": 80}]},
    }
    core_api.create_namespaced_service(namespace, body)


def set_status(core_api, namespace: str, name: str, status: MemberStatus) -> None:
    patch = {"metadata": {"annotations": {STATUS: status.render(datetime.now(UTC))}}}
    core_api.patch_namespaced_service(name, namespace, patch)


def progressing(step: int, weight: int) -> MemberStatus:
    started = datetime.now(UTC).replace(microsecond=0)
    release = ReleaseState("Progressing", step, weight, started)
    return MemberStatus("canary", "web", weight, "Canary", "", weight, release)


@pytest.fixture
def web(core_api, namespace) -> str:
    stable = MemberStatus("stable", "web", 100, "Stable", "", 100)
    create_service(
        core_api, namespace, "web-v1", **{APP: "web", STATUS: stable.render(datetime.now(UTC))}
    )
    create_service(
        core_api,
        namespace,
        "web-v2",
        **{APP: "web", CANARY: "true", PERCENT: "0", STEPS: "10,50", STEP_INTERVAL: "5m"},
    )
    return namespace


@pytest.fixture
def watch(localkube) -> Iterator:
    """`watch(*args)` starts `canaryctl status --watch ...`; stopped (SIGTERM) afterwards."""
    processes: list[subprocess.Popen] = []

    def start(*args: str):
        process = subprocess.Popen(
            [sys.executable, "-m", "canaryctl", "status", "--watch", *args],
            env={**os.environ, "PYTHONPATH": str(REPO), "KUBECONFIG": str(localkube.kubeconfig)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process, stdout_lines(process)

    yield start
    for process in processes:
        process.terminate()
        assert process.wait(10) == 0, "SIGTERM ends the watch with exit code 0"
        terminate(process)


def next_table(lines, process) -> list[str]:
    """The lines of the next redraw (a pipe gets one block per change, then a blank line)."""
    block = []
    while (line := next_line(lines, process).rstrip("\n")) != "":
        block.append(line)
    return block


def row_of(block: list[str], namespace: str) -> list[str]:
    return next(line.split() for line in block if line.startswith(namespace + " "))


def test_the_table_is_redrawn_on_every_change(watch, web, core_api):
    process, lines = watch("-n", web)
    first = next_table(lines, process)
    assert first[0].split()[:3] == ["NAMESPACE", "APP", "STABLE"]
    assert row_of(first, web)[:4] == [web, "web", "web-v1", "-"]
    set_status(core_api, web, "web-v2", progressing(1, 50))
    second = next_table(lines, process)
    assert row_of(second, web)[3:7] == ["web-v2", "50/50", "Progressing", "2/3"]
    [bar] = [line for line in second if line.startswith(f"  {web}/web-v2 ")]
    assert "step 2 of 3 at 50%" in bar and "next check in" in bar
    seconds_left = int(bar.rsplit("next check in ", 1)[1].rstrip("s"))
    assert 250 <= seconds_left <= 300  # a 5 m interval that just started


def test_json_lines_carry_one_event_per_changed_row(watch, web, core_api):
    process, lines = watch("-n", web, "-o", "json")
    added = json.loads(next_line(lines, process))
    assert added["type"] == "ADDED" and added["row"]["app"] == "web"
    assert added["row"]["canary"] is None
    set_status(core_api, web, "web-v2", progressing(0, 10))
    events = [json.loads(next_line(lines, process)), json.loads(next_line(lines, process))]
    assert sorted(e["type"] for e in events) == ["ADDED", "DELETED"]  # the row gained its canary
    [now] = [e["row"] for e in events if e["type"] == "ADDED"]
    assert (now["canary"], now["phase"], now["desiredWeight"]) == (
        f"{web}/web-v2",
        "Progressing",
        10,
    )
    set_status(core_api, web, "web-v2", progressing(1, 50))
    modified = json.loads(next_line(lines, process))
    assert modified["type"] == "MODIFIED" and modified["row"]["step"]["number"] == 2


def test_yaml_documents_for_scripts(watch, web, core_api):
    process, lines = watch("-n", web, "-o", "yaml")
    text = ""
    while "lastCheck:" not in text:  # the row's last key
        text += next_line(lines, process)
    [document] = yaml.safe_load_all(text)
    assert document["type"] == "ADDED" and document["row"]["stable"] == [f"{web}/web-v1"]

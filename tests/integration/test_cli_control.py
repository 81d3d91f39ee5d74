"""`canaryctl promote|abort|pause|resume|retry|weight|status` against a real kube-apiserver.

The CLI runs in-process (`canaryctl.cli.main`); what it wrote is read back from the API server.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pytest
import yaml
from kubernetes import client

from canaryctl.annotations import APP, CANARY, PERCENT, STATUS
from canaryctl.cli import main
from canaryctl.release.config import ACTION, STEPS, VERBS, parse_action
from canaryctl.release.state import CheckResult, MetricCheck, ReleaseState
from canaryctl.testing.localkube import free_port

pytestmark = pytest.mark.localkube


class Outcome(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def canaryctl(localkube, capsys):
    """`canaryctl(*args)` runs the CLI against the local control plane and returns what it said."""

    def run(*args: str, kubeconfig: str | None = None) -> Outcome:
        try:
            code = main([*args, "--kubeconfig", kubeconfig or str(localkube.kubeconfig)])
        except SystemExit as exit_:  # argparse refusing the arguments
            code = exit_.code
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def create_service(kube_api, namespace: str, name: str, **annotations: str) -> None:
    client.CoreV1Api(kube_api).create_namespaced_service(
        namespace,
        {"metadata": {"name": name, "annotations": annotations}, "spec": {"ports": [{"port": 80}]}},
    )


def read_service(kube_api, namespace: str, name: str) -> client.V1Service:
    return client.CoreV1Api(kube_api).read_namespaced_service(name, namespace)


def annotations_of(kube_api, namespace: str, name: str) -> dict[str, str]:
    return read_service(kube_api, namespace, name).metadata.annotations or {}


def automated_canary(kube_api, namespace: str, name: str = "web-v2", **annotations: str) -> None:
    create_service(
        kube_api,
        namespace,
        name,
        **{APP: "web", CANARY: "true", PERCENT: "10", STEPS: "5,10,25,50", **annotations},
    )


# --- actions ------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", VERBS)
def test_each_run_of_a_verb_writes_a_distinct_request(verb, canaryctl, kube_api, namespace):
    automated_canary(kube_api, namespace)
    written = []
    for _ in range(2):
        outcome = canaryctl(verb, f"{namespace}/web-v2")
        value = annotations_of(kube_api, namespace, "web-v2")[ACTION]
        assert outcome == Outcome(0, f"{namespace}/web-v2: {ACTION}={value}\n", "")
        written.append(value)
    assert written[0] != written[1]
    assert [parse_action(value).verb for value in written] == [verb, verb]
    assert annotations_of(kube_api, namespace, "web-v2")[PERCENT] == "10"


@pytest.mark.parametrize("verb", ["pause", "resume", "retry"])
def test_automation_verbs_on_a_manual_canary_warn_but_write(verb, canaryctl, kube_api, namespace):
    create_service(kube_api, namespace, "web-v2", **{APP: "web", CANARY: "true", PERCENT: "10"})
    outcome = canaryctl(verb, f"{namespace}/web-v2")
    assert outcome.code == 0
    assert f"warning: {namespace}/web-v2 has no {STEPS}" in outcome.err
    assert parse_action(annotations_of(kube_api, namespace, "web-v2")[ACTION]).verb == verb


@pytest.mark.parametrize(("verb", "percent"), [("promote", "100"), ("abort", "0")])
def test_promote_and_abort_set_the_weight_of_a_manual_canary(
    verb, percent, canaryctl, kube_api, namespace
):
    create_service(kube_api, namespace, "web-v2", **{APP: "web", CANARY: "true", PERCENT: "10"})
    outcome = canaryctl(verb, f"{namespace}/web-v2")
    assert outcome.code == 0 and outcome.err == ""
    assert outcome.out.startswith(f"{namespace}/web-v2: {PERCENT}={percent}\nnote: ")
    annotations = annotations_of(kube_api, namespace, "web-v2")
    assert annotations[PERCENT] == percent and ACTION not in annotations


def test_an_unpublished_canary_gets_a_warning(canaryctl, kube_api, namespace):
    create_service(kube_api, namespace, "loose", **{CANARY: "true", STEPS: "50"})
    outcome = canaryctl("pause", f"{namespace}/loose")
    assert outcome.code == 0 and f"has no {APP}" in outcome.err
    assert ACTION in annotations_of(kube_api, namespace, "loose")


@pytest.mark.parametrize("command", [("promote",), ("retry",), ("weight", "50")])
def test_a_missing_service_is_refused(command, canaryctl, namespace):
    outcome = canaryctl(command[0], f"{namespace}/nope", *command[1:])
    assert outcome == Outcome(2, "", f"error: Service {namespace}/nope not found\n")


@pytest.mark.parametrize("flag", [None, "false", "yes"])
@pytest.mark.parametrize("command", [("abort",), ("weight", "50")])
def test_a_service_that_is_not_a_canary_is_refused_and_left_alone(
    flag, command, canaryctl, kube_api, namespace
):
    create_service(
        kube_api, namespace, "web-v1", **{APP: "web", **({CANARY: flag} if flag else {})}
    )
    before = read_service(kube_api, namespace, "web-v1").metadata.resource_version
    outcome = canaryctl(command[0], f"{namespace}/web-v1", *command[1:])
    assert outcome.code == 2 and outcome.out == ""
    assert f"error: {namespace}/web-v1 is not a canary: {CANARY} " in outcome.err
    assert read_service(kube_api, namespace, "web-v1").metadata.resource_version == before


def test_a_malformed_target_is_refused(canaryctl):
    outcome = canaryctl("pause", "just-a-name")
    assert outcome.code == 2 and "is not NAMESPACE/SERVICE" in outcome.err


def test_an_unreachable_api_server_is_exit_code_1(canaryctl, localkube, tmp_path):
    config = yaml.safe_load(localkube.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    broken = tmp_path / "kubeconfig"
    broken.write_text(yaml.safe_dump(config))
    for command in (("promote", "default/web"), ("status", "-A")):
        outcome = canaryctl(*command, kubeconfig=str(broken))
        assert outcome.code == 1 and outcome.err.startswith("error: ")


# --- weight -------------------------------------------------------------------------------


def test_weight_on_an_automated_canary_sets_it_and_explains_the_pause(
    canaryctl, kube_api, namespace
):
    automated_canary(kube_api, namespace)
    outcome = canaryctl("weight", f"{namespace}/web-v2", "30")
    assert outcome.code == 0 and outcome.err == ""
    assert outcome.out.startswith(f"{namespace}/web-v2: {PERCENT}=30\nnote: ")
    assert (
        "pauses it at 30 %" in outcome.out and f"canaryctl resume {namespace}/web-v2" in outcome.out
    )
    assert annotations_of(kube_api, namespace, "web-v2")[PERCENT] == "30"


def test_weight_on_a_manual_canary_just_sets_it(canaryctl, kube_api, namespace):
    create_service(kube_api, namespace, "web-v2", **{APP: "web", CANARY: "true"})
    assert canaryctl("weight", f"{namespace}/web-v2", "007") == Outcome(
        0, f"{namespace}/web-v2: {PERCENT}=7\n", ""
    )
    assert annotations_of(kube_api, namespace, "web-v2")[PERCENT] == "7"


@pytest.mark.parametrize("percent", ["150", "abc", "-1", "10.5", ""])
def test_an_invalid_weight_is_refused_before_anything_is_written(
    percent, canaryctl, kube_api, namespace
):
    automated_canary(kube_api, namespace)
    before = read_service(kube_api, namespace, "web-v2").metadata.resource_version
    outcome = canaryctl("weight", f"{namespace}/web-v2", percent)
    assert outcome.code == 2
    assert f"{percent!r} is not a canary weight: accepted values are integers 0-100" in outcome.err
    assert read_service(kube_api, namespace, "web-v2").metadata.resource_version == before


def test_the_weight_already_set_writes_nothing_and_says_so(canaryctl, kube_api, namespace):
    automated_canary(kube_api, namespace, **{PERCENT: "010"})
    before = read_service(kube_api, namespace, "web-v2").metadata.resource_version
    outcome = canaryctl("weight", f"{namespace}/web-v2", "10")
    assert (
        outcome.code == 0 and outcome.out.startswith("note: ") and "nothing written" in outcome.out
    )
    assert "canaryctl pause" in outcome.out
    assert read_service(kube_api, namespace, "web-v2").metadata.resource_version == before


# --- status -------------------------------------------------------------------------------


def status_json(
    role: str,
    app: str,
    desired: int | None,
    applied: int | None,
    phase: str,
    release: ReleaseState | None = None,
) -> str:
    doc = {
        "role": role,
        "app": app,
        "desiredWeight": desired,
        "appliedWeight": applied,
        "phase": phase,
        "message": f"{role} of {app}",
        "time": "2024-06-01T12:00:00Z",
    }
    if release is not None:
        doc["release"] = release.to_dict()
    return json.dumps(doc)


@pytest.fixture
def published(kube_api, namespace) -> None:
    """An automated canary and its stable, an app without canary, and two odd Services.

    One has a garbage status, the other has no status at all (it was never published).
    """
    checked = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    check = CheckResult(
        "fail", "error rate 30 % > 1 %", 80.0, 30, (MetricCheck("error_rate", 30.0, 1.0, False),)
    )
    release = ReleaseState(
        "Progressing",
        2,
        25,
        checked - timedelta(minutes=1),
        failures=1,
        last_check=check,
        last_check_at=checked,
    )
    create_service(
        kube_api,
        namespace,
        "web-v1",
        **{APP: "web", STATUS: status_json("stable", "web", 75, 75, "Stable")},
    )
    automated_canary(
        kube_api, namespace, **{STATUS: status_json("canary", "web", 25, 25, "Canary", release)}
    )
    create_service(
        kube_api,
        namespace,
        "api",
        **{APP: "api", STATUS: status_json("stable", "api", 100, 100, "Stable")},
    )
    create_service(kube_api, namespace, "broken", **{APP: "legacy", STATUS: "{oops"})
    create_service(kube_api, namespace, "plain", **{APP: "other"})


def test_status_prints_a_row_per_canary_and_per_app_without_one(published, canaryctl, namespace):
    outcome = canaryctl("status", "--namespace", namespace)
    assert outcome.code == 0 and outcome.err == ""
    lines = [line.split() for line in outcome.out.splitlines()]
    assert lines[0] == [
        "NAMESPACE",
        "APP",
        "STABLE",
        "CANARY",
        "WEIGHT",
        "PHASE",
        "STEP",
        "LAST",
        "CHECK",
    ]
    assert lines[1] == [namespace, "api", "api", "-", "-", "Stable", "-", "-"]
    assert lines[2] == [namespace, "legacy", "broken", "-", "-", "Unknown", "-", "-"]
    assert lines[3][:7] == [namespace, "web", "web-v1", "web-v2", "25/25", "Progressing", "3/5"]
    assert lines[3][7:10] == ["25%", "fail", "error_rate"] and lines[3][10:13] == [
        "30%",
        ">",
        "1%,",
    ]
    assert (
        re.fullmatch(r"(3[0-9]|[4-9][0-9])s", lines[3][13]) and lines[3][14] == "ago"
    )  # checked 30 s before
    assert len(lines) == 4


def test_status_as_json(published, canaryctl, namespace):
    outcome = canaryctl("status", "-n", namespace, "-o", "json")
    rows = {row["app"]: row for row in json.loads(outcome.out)}
    assert outcome.code == 0 and sorted(rows) == ["api", "legacy", "web"]
    web = rows["web"]
    assert (web["stable"], web["canary"]) == ([f"{namespace}/web-v1"], f"{namespace}/web-v2")
    assert (web["desiredWeight"], web["appliedWeight"], web["phase"]) == (25, 25, "Progressing")
    assert web["step"] == {"number": 3, "count": 5, "weight": 25, "scheduledWeight": 25}
    assert web["lastCheck"]["result"] == "fail" and web["lastCheck"]["metrics"][0]["value"] == 30.0
    assert rows["legacy"]["phase"] == "Unknown" and rows["api"]["canary"] is None


def test_status_defaults_to_the_kubeconfig_context_namespace(
    published, canaryctl, localkube, namespace, tmp_path
):
    config = yaml.safe_load(localkube.kubeconfig.read_text())
    for context in config["contexts"]:
        context["context"]["namespace"] = namespace
    scoped = tmp_path / "kubeconfig"
    scoped.write_text(yaml.safe_dump(config))
    outcome = canaryctl("status", "-o", "json", kubeconfig=str(scoped))
    assert sorted(row["app"] for row in json.loads(outcome.out)) == ["api", "legacy", "web"]


def test_status_across_namespaces_includes_every_namespace(
    published, canaryctl, localkube, kube_api, namespace
):
    other = localkube.create_namespace()
    try:
        create_service(
            kube_api,
            other,
            "solo",
            **{APP: "solo", STATUS: status_json("stable", "solo", 100, 100, "Stable")},
        )
        rows = json.loads(canaryctl("status", "-A", "-o", "json").out)
        ours = sorted(
            (row["namespace"], row["app"]) for row in rows if row["namespace"] in (namespace, other)
        )
        assert ours == sorted(
            [(namespace, "api"), (namespace, "legacy"), (namespace, "web"), (other, "solo")]
        )
    finally:
        localkube.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_status_of_a_namespace_without_releases(canaryctl, namespace):
    assert canaryctl("status", "-n", namespace) == Outcome(
        0, "", f"No Services with a {STATUS} annotation in namespace {namespace}.\n"
    )
    assert canaryctl("status", "-n", namespace, "-o", "json") == Outcome(0, "[]\n", "")

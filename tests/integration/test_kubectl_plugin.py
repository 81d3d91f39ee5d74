"""`kubectl canary ...` through the real kubectl: plugin discovery, global flags, commands.

The launcher on PATH is what pip writes for the console script setup.cfg declares (a Python
file importing the entry point and calling it), so the declared entry point is the one run.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from canaryctl.annotations import APP, CANARY, PERCENT, STATUS
from canaryctl.release.config import ACTION, STEPS

pytestmark = pytest.mark.localkube

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "kubectl-canary"


def entry_point(name: str) -> str:
    """`module:function` of console script `name`, as setup.cfg declares it."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    for line in parser["options.entry_points"]["console_scripts"].splitlines():
        script, _, target = line.partition("=")
        if script.strip() == name:
            return target.strip()
    raise AssertionError(f"setup.cfg declares no console script {name}")


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory) -> Path:
    """A directory holding the `kubectl-canary` launcher, as pip installs console scripts."""
    module, _, function = entry_point(PLUGIN).partition(":")
    directory = tmp_path_factory.mktemp("plugin-bin")
    launcher = directory / PLUGIN
    launcher.write_text(
        f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n"
    )
    launcher.chmod(0o755)
    return directory


@pytest.fixture
def kubectl(localkube, plugin_dir):
    """`kubectl(*args, env=...)`: the real kubectl with the plugin on PATH and no KUBECONFIG."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        environment = {
            **{k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
            "PATH": os.pathsep.join([str(plugin_dir), str(localkube.kubectl_path.parent)]),
            "PYTHONPATH": str(REPO),
            "HOME": str(plugin_dir),  # no ~/.kube/config to fall back on
            **env,
        }
        return subprocess.run(
            [str(localkube.kubectl_path), *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def create_service(kube_api, namespace: str, name: str, **annotations: str) -> None:
    body = {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"ports": [{"port": 80}]},
    }
    client.CoreV1Api(kube_api).create_namespaced_service(namespace, body)


def status(role: str, app: str, weight: int, phase: str) -> str:
    document = {
        "role": role,
        "app": app,
        "desiredWeight": weight,
        "appliedWeight": weight,
        "phase": phase,
        "message": "",
    }
    return json.dumps(document)


@pytest.fixture
def release(kube_api, namespace) -> str:
    """An application `web` with a stable and an automated canary at 10 %."""
    create_service(
        kube_api, namespace, "web-v1", **{APP: "web", STATUS: status("stable", "web", 90, "Stable")}
    )
    create_service(
        kube_api,
        namespace,
        "web-v2",
        **{APP: "web", CANARY: "true", PERCENT: "10", STEPS: "10,50"},
        **{STATUS: status("canary", "web", 10, "Canary")},
    )
    return namespace


def annotations(kube_api, namespace: str, name: str) -> dict[str, str]:
    return client.CoreV1Api(kube_api).read_namespaced_service(name, namespace).metadata.annotations


def test_kubectl_finds_the_plugin(kubectl, plugin_dir):
    listed = kubectl("plugin", "list")
    assert listed.returncode == 0, listed.stderr
    assert str(plugin_dir / PLUGIN) in listed.stdout


def test_status_across_namespaces_prints_the_table(kubectl, localkube, release):
    shown = kubectl("canary", "status", "-A", "--kubeconfig", str(localkube.kubeconfig))
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()
    assert header.split() == [
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
    ours = [row.split() for row in rows if row.startswith(release + " ")]
    assert ours == [[release, "web", "web-v1", "web-v2", "10/10", "Canary", "-", "-"]]


def test_kubeconfig_from_the_environment_as_kubectl_reads_it(kubectl, localkube, release):
    shown = kubectl(
        "canary", "status", "-n", release, "-o", "json", KUBECONFIG=str(localkube.kubeconfig)
    )
    assert shown.returncode == 0, shown.stderr
    assert [row["app"] for row in json.loads(shown.stdout)] == ["web"]


def test_promote_by_namespace_and_name(kubectl, localkube, kube_api, release):
    done = kubectl("canary", "promote", f"{release}/web-v2", f"--kubeconfig={localkube.kubeconfig}")
    assert done.returncode == 0, done.stderr
    assert annotations(kube_api, release, "web-v2")[ACTION].startswith("promote@")


def test_global_flags_before_the_command_and_a_bare_name(kubectl, localkube, kube_api, release):
    done = kubectl(
        "canary", "-n", release, "--kubeconfig", str(localkube.kubeconfig), "pause", "web-v2"
    )
    assert done.returncode == 0, done.stderr
    assert annotations(kube_api, release, "web-v2")[ACTION].startswith("pause@")
    weight = kubectl(
        "canary", "weight", "web-v2", "30", f"-n={release}", f"--kubeconfig={localkube.kubeconfig}"
    )
    assert weight.returncode == 0, weight.stderr
    assert annotations(kube_api, release, "web-v2")[PERCENT] == "30"


def test_context_chooses_cluster_and_namespace(kubectl, localkube, kube_api, release, tmp_path):
    """The current context points nowhere; --context picks the working one and its namespace."""
    config = yaml.safe_load(localkube.kubeconfig.read_text())
    good = config["contexts"][0]
    broken_cluster = {"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1"}}
    config["clusters"].append(broken_cluster)
    config["contexts"] = [
        {"name": "work", "context": {**good["context"], "namespace": release}},
        {"name": "broken", "context": {**good["context"], "cluster": "nowhere"}},
    ]
    config["current-context"] = "broken"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    shown = kubectl(
        "canary", "status", "-o", "json", "--context", "work", KUBECONFIG=str(kubeconfig)
    )
    assert shown.returncode == 0, shown.stderr
    assert [row["namespace"] for row in json.loads(shown.stdout)] == [release]
    resumed = kubectl("canary", "resume", "web-v2", "--context=work", KUBECONFIG=str(kubeconfig))
    assert resumed.returncode == 0, resumed.stderr
    assert annotations(kube_api, release, "web-v2")[ACTION].startswith("resume@")
    failed = kubectl("canary", "status", "-n", release, KUBECONFIG=str(kubeconfig))
    assert failed.returncode == 1 and "cannot list Services" in failed.stderr


def test_unknown_commands_and_no_command_are_refused(kubectl):
    unknown = kubectl("canary", "run")
    assert unknown.returncode == 2 and "unknown command 'run'" in unknown.stderr
    bare = kubectl("canary")
    assert bare.returncode == 2 and "usage: kubectl canary COMMAND" in bare.stderr

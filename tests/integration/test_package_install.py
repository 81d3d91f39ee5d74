"""`pip install .` to a new virtualenv gives a working `canaryctl`: the image's recipe minus docker.

The source is the Docker build context (what `.dockerignore` lets through), installed for
real from PyPI with no access to this environment's packages, so a dependency missing from
setup.cfg, a test-only import on the command path, or a file missing from the context
fails here instead of in the image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import canaryctl

pytestmark = [pytest.mark.network, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
RUNTIME_DEPENDENCIES = {"kubernetes", "requests", "prometheus-client"}


def build_context(destination: Path, files: list[Path]) -> Path:
    """Copy the files `.dockerignore` lets into the build context to `destination`."""
    for path in files:
        (destination / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, destination / path)
    return destination


@pytest.fixture(scope="module")
def venv(tmp_path_factory, docker_context_files) -> Path:
    """A fresh virtualenv with canaryctl installed from the build context."""
    root = tmp_path_factory.mktemp("package-install")
    source = build_context(root / "src", docker_context_files)
    subprocess.run(
        [sys.executable, "-m", "venv", str(root / "venv")], check=True, capture_output=True
    )
    install = subprocess.run(
        [
            str(root / "venv" / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=root,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return root / "venv"


def run_in(venv: Path, *command: str) -> subprocess.CompletedProcess:
    """Run a command of the venv with a bare environment, away from the source tree."""
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin",
        "HOME": str(venv.parent),
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        [str(venv / "bin" / command[0]), *command[1:]],
        env=env,
        cwd=venv.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_canaryctl_help_runs_from_the_entry_point(venv):
    result = run_in(venv, "canaryctl", "--help")
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout and "demo" in result.stdout


@pytest.mark.parametrize(
    "command",
    [("run", "--help"), ("error-page", "--help")],
    ids=["controller", "example-backend"],
)
def test_commands_the_manifests_use_parse(venv, command):
    """The Deployment runs `canaryctl run ...`, the examples `canaryctl error-page ...`."""
    result = run_in(venv, "canaryctl", *command)
    assert result.returncode == 0, result.stderr
    assert "usage: canaryctl" in result.stdout


def test_installed_version_is_the_one_the_manifests_deploy(venv):
    result = run_in(venv, "canaryctl", "--version")
    assert result.stdout.strip() == f"canaryctl {canaryctl.__version__}"


def test_metadata_declares_exactly_the_runtime_dependencies(venv):
    script = (
        "import importlib.metadata as m, importlib.util as u, json; "
        "print(json.dumps([m.requires('canaryctl'), u.find_spec('pytest') is None]))"
    )
    requires, no_pytest = json.loads(run_in(venv, "python", "-c", script).stdout)
    names = {
        re.split(r"[\s;~<>=!\[(]", requirement)[0]
        for requirement in requires
        if "extra ==" not in requirement
    }
    assert names == RUNTIME_DEPENDENCIES
    assert no_pytest  # test extras stay out of a plain install
    check = run_in(venv, "python", "-m", "pip", "check")
    assert check.returncode == 0, check.stdout


def test_the_kubectl_plugin_is_installed_with_the_package(venv):
    """`kubectl canary` needs `kubectl-canary` on PATH: the console script pip installs."""
    result = run_in(venv, "kubectl-canary", "promote", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: kubectl canary promote" in result.stdout

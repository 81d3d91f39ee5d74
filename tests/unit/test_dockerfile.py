"""Static checks of the Dockerfile: no container engine runs here, so check what can be read.

Multi-stage on a slim Python, dependencies from the package metadata, nothing but the
installed tree in the final stage, a numeric non-root user that is the Deployment's
runAsUser, the exact entrypoint, and a build context holding only what is copied.
"""

from __future__ import annotations

import configparser
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SLIM_PYTHON = "python:3.11-slim"
COMPILERS = {"gcc", "g++", "cc", "clang", "make", "build-essential"}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def arguments(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages of a Dockerfile: comments dropped, continuation lines joined."""
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    stages: list[Stage] = []
    for line in filter(None, (line.strip() for line in logical.splitlines())):
        instruction, _, arguments = line.partition(" ")
        instruction, arguments = instruction.upper(), " ".join(arguments.split())
        if instruction == "FROM":
            base, _, name = arguments.partition(" AS ")
            stages.append(Stage(base, name or None))
        else:
            stages[-1].instructions.append((instruction, arguments))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((REPO / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def final(stages) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def controller_container() -> dict:
    deployment = yaml.safe_load((REPO / "manifests" / "deployment.yaml").read_text())
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_parser_reads_stages_and_joins_continuations():
    stages = parse_dockerfile("# c\nFROM a AS b\nRUN x \\\n    y\nFROM c\nUSER 1\n")
    assert [(s.base, s.name) for s in stages] == [("a", "b"), ("c", None)]
    assert stages[0].instructions == [("RUN", "x y")] and stages[1].arguments("USER") == ["1"]


def test_multi_stage_on_slim_python(stages):
    assert len(stages) >= 2
    assert {stage.base for stage in stages} == {SLIM_PYTHON}
    assert stages[0].name == "builder"


def test_builder_installs_the_package_with_its_declared_dependencies(stages):
    [install] = [run for run in stages[0].arguments("RUN") if "pip install" in run]
    assert install.endswith(" .") and "--prefix=/install" in install and "-r " not in install
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    dependencies = [
        re.split(r"[~<>=!\[ ]", line)[0]
        for line in setup["options"]["install_requires"].split()
        if line and line[0].isalpha()
    ]
    assert "kubernetes" in dependencies
    text = " ".join(args for stage in stages for _, args in stage.instructions)
    assert not [
        name for name in dependencies if name in text
    ]  # they come from the metadata, not from here


def test_final_stage_holds_only_the_installed_tree(final):
    assert final.arguments("COPY") == ["--from=builder /install /usr/local"]
    assert final.arguments("RUN") == []
    words = {word for _, args in final.instructions for word in re.split(r"[\s;&|]+", args)}
    assert not words & COMPILERS


def test_final_user_is_numeric_non_root_and_is_the_deployments(final):
    deployment = yaml.safe_load((REPO / "manifests" / "deployment.yaml").read_text())
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    [user] = final.arguments("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0
    assert (int(uid), int(gid)) == (pod_security["runAsUser"], pod_security["runAsGroup"])
    assert pod_security["runAsNonRoot"] is True


def test_entrypoint_and_command_are_exact(final, controller_container):
    assert [json.loads(args) for args in final.arguments("ENTRYPOINT")] == [["canaryctl"]]
    assert [json.loads(args) for args in final.arguments("CMD")] == [["run"]]
    assert controller_container["args"][0] == "run"


def test_exposes_the_deployments_ports(final, controller_container):
    exposed = {int(port) for args in final.arguments("EXPOSE") for port in args.split()}
    assert (
        exposed == {port["containerPort"] for port in controller_container["ports"]} == {8080, 8081}
    )


def test_build_context_admits_exactly_what_the_builder_copies(stages, docker_context_files):
    sources = {source for args in stages[0].arguments("COPY") for source in args.split()[:-1]}
    assert all((REPO / source).exists() for source in sources)
    assert {path.parts[0] for path in docker_context_files} == sources


def test_build_context_leaves_out_the_test_kit_the_demo_and_go_sources(docker_context_files):
    shipped = {path.as_posix() for path in docker_context_files}
    assert "canaryctl/commands/run.py" in shipped and "canaryctl/controller.py" in shipped
    assert not [p for p in shipped if p.startswith(("canaryctl/testing/", "canaryctl/demo/"))]
    assert not [p for p in shipped if p.endswith((".go", "go.mod.in", "go.sum", ".pyc"))]

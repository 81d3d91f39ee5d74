"""Shared fixtures: the real local control plane comes from canaryctl.testing; the Docker build
context is computed here the way Docker reads `.dockerignore` (no container engine runs here)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

pytest_plugins = ["canaryctl.testing.pytest_plugin"]

REPO = Path(__file__).resolve().parents[1]


def docker_context(repo: Path = REPO) -> list[Path]:
    """The files (relative paths) `docker build` sends: `.dockerignore` patterns in order, the
    last one matching a path or one of its parent directories decides, `!` lets a path back in."""
    patterns = [
        line.strip()
        for line in (repo / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    kept = []
    for path in sorted(p.relative_to(repo) for p in repo.rglob("*") if p.is_file()):
        if ".git" in path.parts:
            continue
        included = True
        for pattern in patterns:
            negated, glob = pattern.startswith("!"), pattern.lstrip("!")
            if _matches(path, glob):
                included = negated
        if included:
            kept.append(path)
    return kept


def _matches(path: Path, glob: str) -> bool:
    candidates = [Path(*path.parts[: i + 1]).as_posix() for i in range(len(path.parts))]
    if glob.startswith("**/"):
        return any(fnmatch.fnmatch(part, glob[3:]) for part in path.parts)
    return any(fnmatch.fnmatch(candidate, glob) for candidate in candidates)


@pytest.fixture(scope="session")
def docker_context_files() -> list[Path]:
    return docker_context()

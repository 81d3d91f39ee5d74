"""Helm, built from the Go module proxy once per version, for the chart's tests.

No Helm release download is reachable here, but `helm.sh/helm/v3` is a Go module whose go.mod
needs no `replace` lines, so its own module (with its go.sum) builds `./cmd/helm` as is, with
`-mod=readonly`. The version is stamped as Helm's Makefile does, including the Kubernetes
version its lint and `.Capabilities` default to (from the client-go it requires). The binary
lands in `$CANARYCTL_CACHE/helm/<version>/bin/helm` (default `~/.cache/canaryctl`).

`canaryctl dev helm [--build-only]` builds it (CI does, in its build step) and prints its path.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from canaryctl.testing.localkube.build import (
    LocalKubeUnavailable,
    Progress,
    cache_root,
    download_module,
    ensure_built,
    go_build,
    required_version,
    staged_dir,
)

HELM_MODULE = "helm.sh/helm/v3"
HELM_VERSION = "v3.22.0"


class HelmUnavailable(LocalKubeUnavailable):
    """Helm cannot be built on this machine."""


def binary_path(version: str = HELM_VERSION) -> Path:
    return cache_root() / "helm" / version / "bin" / "helm"


def ensure_helm(version: str = HELM_VERSION, progress: Progress = print) -> Path:
    """The path of the helm binary, building it first if needed."""
    return ensure_built(
        binary_path(version),
        f"Helm {version}",
        lambda go: _build(go, version, progress),
        HelmUnavailable,
    )


def version_ldflags(version: str, helm_gomod: str) -> str:
    """Helm's Makefile stamps: its version, and Kubernetes' (client-go v0.N.x is 1.N)."""
    minor = required_version(helm_gomod, "k8s.io/client-go").lstrip("v").split(".")[1]
    flags = ["-s", "-w", f"-X {HELM_MODULE}/internal/version.version={version}"]
    flags.append(f"-X {HELM_MODULE}/internal/version.gitTreeState=clean")
    for package in ("pkg/lint/rules", "pkg/chartutil"):
        flags += [f"-X {HELM_MODULE}/{package}.k8sVersionMajor=1"]
        flags += [f"-X {HELM_MODULE}/{package}.k8sVersionMinor={minor}"]
    return " ".join(flags)


def _build(go: str, version: str, progress: Progress) -> None:
    started = time.monotonic()
    progress(f"helm: building Helm {version} from the Go module proxy (first run only)")
    module = download_module(go, HELM_MODULE, version)
    source, gomod = Path(module["Dir"]), Path(module["GoMod"]).read_text()
    with staged_dir(binary_path(version).parent) as staging:
        go_build(
            go,
            source,  # the module as downloaded (read-only): nothing is written there
            ["./cmd/helm"],
            staging,
            version_ldflags(version, gomod),
            progress,
            "helm",
            extra_flags=("-mod=readonly",),
        )
    progress(f"helm: built in {time.monotonic() - started:.0f} s -> {binary_path(version)}")


# `canaryctl dev helm` ------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--build-only", action="store_true", help="build (or find) helm, print its path, exit"
    )


def run(args: argparse.Namespace) -> int:
    try:
        path = ensure_helm()
    except HelmUnavailable as error:
        print(f"helm unavailable: {error}")
        return 1
    print(path)
    return 0

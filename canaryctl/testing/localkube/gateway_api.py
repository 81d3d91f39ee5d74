"""The Gateway API's real standard-channel CRDs, installed into a LocalKube.

canaryctl's Gateway API backend writes HTTPRoutes; to test it honestly the apiserver must
hold the upstream CRDs, so their OpenAPI schema and CEL rules judge every object exactly as
in a real cluster. The CRD YAMLs ship inside the Go module `sigs.k8s.io/gateway-api`
(`config/crd/standard/`), which the Go module proxy serves; they are copied once to
`$CANARYCTL_CACHE/gateway-api/<version>/standard` (default `~/.cache/canaryctl`) and
installed with server-side apply (the HTTPRoute CRD is too large for client-side apply).
The directory also holds the project's ValidatingAdmissionPolicy that refuses
experimental-channel CRDs over standard ones; it is installed too, as upstream ships it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from canaryctl.testing.localkube.build import (
    LocalKubeUnavailable,
    Progress,
    cache_root,
    download_module,
    file_lock,
    go_toolchain,
    staged_dir,
)

if TYPE_CHECKING:
    from canaryctl.testing.localkube.cluster import LocalKube

# v1.7.0 needs a newer Go than 1.26; the CRDs of a v1.6 patch release are served as v1.
GATEWAY_API_VERSION = "v1.6.3"
GATEWAY_API_MODULE = "sigs.k8s.io/gateway-api"
GROUP = "gateway.networking.k8s.io"
CHANNEL_DIR = "config/crd/standard"


def crd_dir(version: str = GATEWAY_API_VERSION) -> Path:
    return cache_root() / "gateway-api" / version / "standard"


def ensure_crds(version: str = GATEWAY_API_VERSION, progress: Progress = print) -> Path:
    """The directory with the release's standard-channel YAMLs, fetched first if needed."""
    target = crd_dir(version)
    if _has_yamls(target):
        return target
    go = go_toolchain(f"to fetch the Gateway API CRDs ({GATEWAY_API_MODULE}) from the proxy")
    with file_lock(target.parent.parent / f"{version}.lock"):
        if not _has_yamls(target):
            progress(f"gateway-api: fetching {GATEWAY_API_MODULE}@{version} CRDs")
            source = Path(download_module(go, GATEWAY_API_MODULE, version)["Dir"]) / CHANNEL_DIR
            _copy_yamls(source, target)
    return target


def install(
    kube: LocalKube,
    version: str = GATEWAY_API_VERSION,
    progress: Progress = print,
    timeout: float = 60,
) -> list[str]:
    """Apply the CRDs (and upstream's admission policy) and wait until each CRD is Established.

    Idempotent: applying again changes nothing. Returns the CRD names.
    """
    directory = ensure_crds(version, progress)
    applied = kube.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=canaryctl-testing",
        "-f",
        str(directory),
        "-o",
        "name",
        timeout=timeout,
    ).stdout.split()
    crds = [name for name in applied if name.startswith("customresourcedefinition")]
    if not crds:
        raise LocalKubeUnavailable(f"no CustomResourceDefinition in {directory}")
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        f"--timeout={timeout:.0f}s",
        *crds,
        timeout=timeout + 10,
    )
    return [name.split("/", 1)[1] for name in crds]


def _has_yamls(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("*.yaml"))


def _copy_yamls(source: Path, target: Path) -> None:
    """Copy atomically: a reader sees either no directory or all of the files."""
    yamls = sorted(source.glob("*.yaml"))
    if not yamls:
        raise LocalKubeUnavailable(f"no CRD YAMLs under {source}")
    with staged_dir(target, prefix="crds-") as staging:
        for path in yamls:
            shutil.copyfile(path, staging / path.name)  # copyfile: not the cache's read-only mode

"""Build kube-apiserver, kubectl and etcd from the Go module proxy, once per version.

No kind/k3s/envtest download is reachable from where canaryctl is developed, but the Go
module proxy is. A tiny Go module shipped with this package requires `k8s.io/kubernetes`
at one pinned release; the release's staging modules (`k8s.io/api`, `k8s.io/client-go`,
...) are `replace`d by their published `v0.<minor>.<patch>` tags, generated from the
release's own go.mod so they can never drift. Binaries land in
`$CANARYCTL_CACHE/localkube/<version>/bin` (default `~/.cache/canaryctl`); a second run
builds nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

# The release matching the `kubernetes` Python client's major (37 <-> 1.37).
KUBERNETES_VERSION = "v1.37.2"
BINARIES = ("kube-apiserver", "kubectl", "etcd", "pki")
ETCD_SERVER_MODULE = "go.etcd.io/etcd/server/v3"

Progress = Callable[[str], None]


class LocalKubeUnavailable(RuntimeError):
    """The local control plane cannot be built or started on this machine."""


def cache_root() -> Path:
    """Where built binaries are kept between runs."""
    return Path(os.environ.get("CANARYCTL_CACHE") or Path.home() / ".cache" / "canaryctl")


def bin_dir(version: str = KUBERNETES_VERSION) -> Path:
    return cache_root() / "localkube" / version / "bin"


def staging_replaces(kubernetes_gomod: str, version: str) -> list[str]:
    """`replace` lines mapping each staging module of a release to its published tag.

    In k8s.io/kubernetes' go.mod staging modules appear as `k8s.io/<name> => ./staging/...`;
    each is published as `k8s.io/<name>` at `v0.<minor>.<patch>` of the release.
    """
    tag = "v0." + version.lstrip("v").split(".", 1)[1]
    names = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", kubernetes_gomod, re.MULTILINE)
    if not names:
        raise LocalKubeUnavailable("no staging replace lines found in the Kubernetes go.mod")
    return [f"replace {name} => {name} {tag}" for name in sorted(set(names))]


def required_version(gomod: str, module: str) -> str:
    """The version a go.mod requires of `module` (direct or indirect)."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", gomod, re.MULTILINE)
    if not match:
        raise LocalKubeUnavailable(f"{module} is not required by the Kubernetes go.mod")
    return match.group(1)


def version_ldflags(version: str) -> str:
    """Stamp the release version so `kubectl version` reports it for client and server."""
    major, minor = version.lstrip("v").split(".")[:2]
    pairs = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{key}={value}" for key, value in pairs.items()]
    return " ".join(flags)


def have_binaries(version: str = KUBERNETES_VERSION) -> bool:
    return all((bin_dir(version) / name).is_file() for name in BINARIES)


def ensure_binaries(version: str = KUBERNETES_VERSION, progress: Progress = print) -> Path:
    """Return the directory with all binaries, building them first if needed."""
    if have_binaries(version):
        return bin_dir(version)
    go = go_toolchain("to build kube-apiserver, kubectl and etcd from the Go module proxy")
    with _build_lock(version):
        if not have_binaries(version):  # another process may have built them meanwhile
            _build(go, version, progress)
    return bin_dir(version)


def go_toolchain(purpose: str) -> str:
    """Path of `go`, or LocalKubeUnavailable saying what it was needed for."""
    go = shutil.which("go")
    if not go:
        raise LocalKubeUnavailable(
            f"the Go toolchain (`go`) is not on PATH; it is needed once {purpose} "
            "(install Go >= 1.26)"
        )
    return go


def ensure_built(
    binary: Path,
    what: str,
    build: Callable[[str], None],
    unavailable: type[LocalKubeUnavailable] = LocalKubeUnavailable,
) -> Path:
    """`binary`, built first with `build(go)` unless it is in the cache already.

    One process at a time builds (a lock file beside the version's directory); a process
    that waited for the lock finds the binary and builds nothing. Why it cannot be built (no
    Go) is raised as `unavailable`, naming `what` was to be built."""
    if binary.is_file():
        return binary
    try:
        go = go_toolchain(f"to build {what} from the Go module proxy")
        version_dir = binary.parent.parent  # <cache>/<tool>/<version>/bin/<binary>
        with file_lock(version_dir.parent / f"{version_dir.name}.lock"):
            if not binary.is_file():  # another process may have built it
                build(go)
    except LocalKubeUnavailable as error:
        if isinstance(error, unavailable):
            raise
        raise unavailable(str(error)) from error
    return binary


@contextmanager
def staged_dir(final: Path, prefix: str = "bin-") -> Iterator[Path]:
    """A fresh directory beside `final` to fill. When the block ends normally it replaces
    `final`; when it raises, it is removed: a cache entry is complete or absent, never half."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent))
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build_lock(version: str):
    return file_lock(cache_root() / "localkube" / f"{version}.lock")


@contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` so one process at a time fills a cache entry."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(go: str, version: str, progress: Progress) -> None:
    started = time.monotonic()
    progress(
        f"localkube: building Kubernetes {version} and etcd from the Go module proxy "
        "(first run only; takes several minutes)"
    )
    module_dir = cache_root() / "localkube" / version / "src"
    _write_module(go, version, module_dir)
    progress("localkube: resolving modules (go mod tidy)")
    run_go(go, ["mod", "tidy"], module_dir)
    with staged_dir(bin_dir(version)) as staging:
        _go_build(go, version, module_dir, staging, progress)
    progress(f"localkube: built in {time.monotonic() - started:.0f} s -> {bin_dir(version)}")


def _write_module(go: str, version: str, module_dir: Path) -> None:
    """Lay out the Go module: template go.mod + generated replace lines, sources, go.sum."""
    kubernetes_gomod = _download_gomod(go, "k8s.io/kubernetes", version)
    etcd_version = required_version(kubernetes_gomod, ETCD_SERVER_MODULE)
    source = resources.files(__package__) / "gomod"
    if module_dir.exists():
        shutil.rmtree(module_dir)
    module_dir.mkdir(parents=True)
    template = (source / "go.mod.in").read_text()
    gomod = template.replace("@KUBERNETES_VERSION@", version).replace(
        "@ETCD_VERSION@", etcd_version
    )
    gomod = "\n".join(line for line in gomod.splitlines() if not line.startswith("//"))
    (module_dir / "go.mod").write_text(
        gomod.strip() + "\n\n" + "\n".join(staging_replaces(kubernetes_gomod, version)) + "\n"
    )
    for name in ("go.sum", "tools.go", "etcd/main.go", "pki/main.go"):
        target = module_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((source / name).read_bytes())


def _download_gomod(go: str, module: str, version: str) -> str:
    return Path(download_module(go, module, version)["GoMod"]).read_text()


def download_module(go: str, module: str, version: str) -> dict:
    """`go mod download -json module@version`: its paths (`Dir` = extracted, read-only source)."""
    with tempfile.TemporaryDirectory() as scratch:
        result = run_go(go, ["mod", "download", "-json", f"{module}@{version}"], Path(scratch))
    info = json.loads(result.stdout)
    if info.get("Error"):
        raise LocalKubeUnavailable(f"go mod download {module}@{version}: {info['Error']}")
    return info


def _go_build(go: str, version: str, module_dir: Path, out: Path, progress: Progress) -> None:
    targets = [
        "./etcd",
        "./pki",
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kubectl",
    ]
    go_build(go, module_dir, targets, out, version_ldflags(version), progress, "localkube")


def go_build(
    go: str,
    module_dir: Path,
    targets: list[str],
    out: Path,
    ldflags: str,
    progress: Progress,
    label: str,
    extra_flags: tuple[str, ...] = (),
) -> None:
    """`go build -o OUT/ TARGETS` in `module_dir`, reporting progress every 15 s."""
    command = [go, "build", "-v", "-trimpath", *extra_flags, "-ldflags", ldflags]
    command += ["-o", str(out) + "/", *targets]
    process = subprocess.Popen(
        command,
        cwd=module_dir,
        env=go_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    last_report, tail = time.monotonic(), list[str]()
    for compiled, line in enumerate(process.stdout, start=1):
        tail = ([*tail, line.rstrip()])[-30:]
        if time.monotonic() - last_report > 15:
            progress(f"{label}: compiled {compiled} packages so far ({line.strip()})")
            last_report = time.monotonic()
    if process.wait() != 0:
        raise LocalKubeUnavailable("go build failed:\n" + "\n".join(tail))


def run_go(go: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([go, *args], cwd=cwd, env=go_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalKubeUnavailable(f"go {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-mod=mod")
    env["CGO_ENABLED"] = "0"
    return env

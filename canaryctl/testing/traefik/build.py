"""Build Traefik from the Go module proxy, once per version, like the local control plane.

Traefik is a real Gateway API implementation that can run here: a single Go binary that
watches HTTPRoutes through a kubeconfig and proxies on loopback. No release download is
reachable, but the Go module proxy is. `go install .../cmd/traefik@version` refuses a
module with `replace` directives, so a small module shipped with this package (gomod/,
its go.mod says why each line is there) requires Traefik and carries its replaces. Two
pieces are written at build time: lego v5 (Traefik's ACME library) copied from its module
without the DNS-01 provider packages, whose SDKs the proxy partly refuses, and a stand-in
for a folder missing from Traefik's zip. The stripped binary lands in
`$CANARYCTL_CACHE/traefik/<version>/bin/traefik` (default `~/.cache/canaryctl`).
"""

from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path

from canaryctl.testing.localkube.build import (
    LocalKubeUnavailable,
    Progress,
    cache_root,
    download_module,
    ensure_built,
    go_build,
    go_toolchain,
    required_version,
    run_go,
    staged_dir,
)

TRAEFIK_MODULE = "github.com/traefik/traefik/v3"
LEGO_MODULE = "github.com/go-acme/lego/v5"
DNS_PROVIDERS_DIR = Path("providers") / "dns"
SHIPPED_FILES = ("go.mod", "go.sum", "tools.go", "ext/go.mod", "ext/ext.go")


class TraefikUnavailable(LocalKubeUnavailable):
    """Traefik cannot be built or started on this machine."""


def shipped_gomod() -> str:
    return (resources.files(__package__) / "gomod" / "go.mod").read_text()


def traefik_version() -> str:
    """The release pinned by the shipped go.mod."""
    return required_version(shipped_gomod(), TRAEFIK_MODULE)


def binary_path(version: str | None = None) -> Path:
    return cache_root() / "traefik" / (version or traefik_version()) / "bin" / "traefik"


def ensure_traefik(progress: Progress = print) -> Path:
    """Return the path of the Traefik binary, building it first if needed."""
    version = traefik_version()
    return ensure_built(
        binary_path(version),
        f"Traefik {version}",
        lambda go: _build(go, version, progress),
        TraefikUnavailable,
    )


def write_module(go: str, version: str, module_dir: Path) -> None:
    """Lay out the Go module: shipped files, the ext stand-in, lego without DNS providers.

    lego is taken at the version Traefik's own go.mod requires.
    """
    if module_dir.exists():
        shutil.rmtree(module_dir)
    module_dir.mkdir(parents=True)
    source = resources.files(__package__) / "gomod"
    for name in SHIPPED_FILES:
        target = module_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((source / name).read_bytes())
    traefik_gomod = Path(download_module(go, TRAEFIK_MODULE, version)["GoMod"]).read_text()
    lego_version = required_version(traefik_gomod, LEGO_MODULE)
    lego = Path(download_module(go, LEGO_MODULE, lego_version)["Dir"])
    _copy_without_dns_providers(lego, module_dir / "lego")
    providers = module_dir / "lego" / DNS_PROVIDERS_DIR / "dns_providers.go"
    providers.write_bytes((source / "lego_dns_providers.go").read_bytes())


def _copy_without_dns_providers(lego: Path, target: Path) -> None:
    """Copy lego's module (read-only in the module cache) minus providers/dns/*."""
    providers = lego / DNS_PROVIDERS_DIR

    def skip(directory: str, names: list[str]) -> list[str]:
        return names if Path(directory) == providers else []

    shutil.copytree(lego, target, ignore=skip, copy_function=shutil.copyfile)
    for path in [target, *target.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)


def version_ldflags(version: str) -> str:
    """Strip symbols and stamp the release so `traefik version` and its logs report it."""
    return f"-s -w -X github.com/traefik/traefik/v3/pkg/version.Version={version}"


def _build(go: str, version: str, progress: Progress) -> None:
    started = time.monotonic()
    progress(
        f"traefik: building Traefik {version} from the Go module proxy "
        "(first run only; takes several minutes)"
    )
    root = binary_path(version).parent.parent
    module_dir = root / "src"
    write_module(go, version, module_dir)
    with staged_dir(binary_path(version).parent) as staging:
        go_build(
            go,
            module_dir,
            [f"{TRAEFIK_MODULE}/cmd/traefik"],
            staging,
            version_ldflags(version),
            progress,
            "traefik",
            extra_flags=("-mod=readonly",),
        )
    size = binary_path(version).stat().st_size / 2**20
    progress(
        f"traefik: built in {time.monotonic() - started:.0f} s ({size:.0f} MB) "
        f"-> {binary_path(version)}"
    )


def tidy_module(progress: Progress = print) -> Path:
    """For maintainers moving to another release: write the module and `go mod tidy` it.

    Returns the directory; copy its go.mod and go.sum back to this package's gomod/.
    """
    go = go_toolchain("to tidy the Traefik build module")
    module_dir = cache_root() / "traefik" / "tidy"
    try:
        write_module(go, traefik_version(), module_dir)
        progress("traefik: go mod tidy")
        run_go(go, ["mod", "tidy"], module_dir)
    except LocalKubeUnavailable as error:
        raise TraefikUnavailable(str(error)) from error
    return module_dir

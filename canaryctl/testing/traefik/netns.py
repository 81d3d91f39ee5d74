"""A private network namespace where test backends listen on a non-loopback address.

Traefik finds backends through EndpointSlices, and the apiserver refuses loopback
addresses there; with no kubelet, the test kit writes the slices itself, so backends need
an address that is neither loopback nor the machine's own interface. Each
`BackendNetwork` is a network namespace with one veth pair: `HOST_IP/30` on this side,
`BACKEND_IP/30` inside, where backends run (`ip netns exec`). Nothing leaves the pair: the
namespace has no other link and no default route. Needs root and iproute2.

Besides processes (`spawn`), a server of this process can listen inside: `build_inside`
runs a constructor on a thread that has joined the namespace (setns(2) changes only the
calling thread's), so the sockets it binds live there while this process serves them —
how the demo keeps its error-page backends in-process (their fail rate can change while
they run) yet behind EndpointSlices.

Names carry the owner's pid, so namespaces left by a killed run are removed at the next
start (as localkube removes stale temp dirs); `remove()` runs at interpreter exit too.
"""

from __future__ import annotations

import atexit
import ctypes
import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from canaryctl.testing.localkube.build import file_lock
from canaryctl.testing.processes import die_with_parent
from canaryctl.testing.traefik.build import TraefikUnavailable

NAME_PREFIX = "canaryctl-"
# Private range for the /30 links; a /30 already on an interface of this host is skipped.
LINK_RANGE = ipaddress.IPv4Network("10.213.0.0/16")
CLONE_NEWNET = 0x40000000  # setns(2)'s namespace type for network namespaces
Built = TypeVar("Built")


class NetworkUnavailable(TraefikUnavailable):
    """Network namespaces cannot be made here (not root, or no iproute2)."""


class BackendNetwork:
    """One namespace + veth pair. Use as a context manager or call create()/remove()."""

    def __init__(self) -> None:
        token = uuid.uuid4().hex[:8]
        self.name = f"{NAME_PREFIX}{os.getpid()}-{token}"
        self.host_link = _host_link(token)
        self.host_ip = self.backend_ip = ""
        self._created = False

    def __repr__(self) -> str:
        return f"BackendNetwork({self.name!r}, backend_ip={self.backend_ip!r})"

    def __enter__(self) -> BackendNetwork:
        return self.create()

    def __exit__(self, *exc) -> None:
        self.remove()

    def create(self) -> BackendNetwork:
        check_possible()
        remove_stale_namespaces()
        with file_lock(Path(tempfile.gettempdir()) / "canaryctl-netns.lock"):
            link = _free_link_network()
            self.host_ip, self.backend_ip = (str(ip) for ip in link.hosts())
            self._created = True
            atexit.register(self.remove)
            try:
                self._create_links(link.prefixlen)
            except BaseException:
                self.remove()
                raise
        return self

    def _create_links(self, prefix: int) -> None:
        _ip("netns", "add", self.name)
        _ip(
            "link",
            "add",
            self.host_link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.name,
        )
        _ip("addr", "add", f"{self.host_ip}/{prefix}", "dev", self.host_link)
        _ip("link", "set", self.host_link, "up")
        _ip("-n", self.name, "addr", "add", f"{self.backend_ip}/{prefix}", "dev", "eth0")
        _ip("-n", self.name, "link", "set", "eth0", "up")
        _ip("-n", self.name, "link", "set", "lo", "up")

    def remove(self) -> None:
        """Delete the link pair and the namespace; safe to call twice."""
        if not self._created:
            return
        self._created = False
        atexit.unregister(self.remove)
        _ip("link", "del", self.host_link, check=False)
        _ip("netns", "del", self.name, check=False)

    def spawn(self, args: list[str], log_path: Path) -> subprocess.Popen:
        """Start `args` inside the namespace; it dies with this process."""
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.name, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )

    def build_inside(self, build: Callable[[], Built]) -> Built:
        """Call `build` on a thread inside the namespace; sockets it binds stay there."""
        built: list[Built] = []
        failed: list[BaseException] = []

        def inside() -> None:
            try:
                _join_namespace(Path("/run/netns") / self.name)
                built.append(build())
            except BaseException as error:  # noqa: BLE001 - re-raised on the caller's thread
                failed.append(error)

        thread = threading.Thread(target=inside, name=f"netns-{self.name}")
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return built[0]


def _join_namespace(path: Path) -> None:
    """setns(2) the calling thread into the network namespace at `path`."""
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(descriptor, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise NetworkUnavailable(f"setns({path}): {os.strerror(error)}")
    finally:
        os.close(descriptor)


def check_possible() -> None:
    """Raise NetworkUnavailable unless this process can make namespaces (before, say, a build)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        raise NetworkUnavailable("backend network namespaces need root and `ip` (iproute2)")


def remove_stale_namespaces() -> list[str]:
    """Delete canaryctl namespaces whose owning process no longer exists; return their names."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    removed = []
    for match in re.finditer(rf"^({NAME_PREFIX}(\d+)-([0-9a-f]+))", listed, re.MULTILINE):
        name, pid, token = match.group(1), int(match.group(2)), match.group(3)
        if _alive(pid):
            continue
        _ip("link", "del", _host_link(token), check=False)
        _ip("netns", "del", name, check=False)
        removed.append(name)
    return removed


def _host_link(token: str) -> str:
    return f"cc{token}"  # interface names have at most 15 characters


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_link_network() -> ipaddress.IPv4Network:
    """The first /30 of LINK_RANGE that no address of this host falls in."""
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    used = [ipaddress.IPv4Address(a) for a in re.findall(r"inet (\S+)/", shown.stdout)]
    for network in LINK_RANGE.subnets(new_prefix=30):
        if not any(address in network for address in used):
            return network
    raise NetworkUnavailable(f"no free /30 left in {LINK_RANGE}")


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NetworkUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")

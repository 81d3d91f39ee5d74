"""Where release hooks may be sent: the operator's allow list (`canaryctl run --hook-allow`).

Hook URLs come from Service annotations, so anyone who may annotate a Service chooses where
the controller sends a POST, from the controller's network position, and reads the first
characters of the answer in an Event. This module decides, before any connection is opened,
which addresses a hook may reach:

- Without an allow list, any address but a link-local one (169.254.0.0/16, fe80::/10, and
  IPv4-mapped forms of them): that is where clouds serve instance metadata and credentials,
  and no hook lives there.
- With an allow list, only a host whose name matches a listed name (`checks.tools.svc`) or
  suffix (`.tools.svc.cluster.local`, or `*.tools.svc.cluster.local`), or an address inside a
  listed network (`10.0.0.0/8`, `fd00::/8`, or one address). A name that matches still may not
  reach a link-local address; a listed network that covers one may.

The check runs on the addresses the host name resolves to, and the client connects only to
an address that passed, so a name cannot be pointed at a refused address between check and
use. Pure: no I/O here (the client resolves).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
FLAG = "--hook-allow"


class HookTargets:
    """The allow list: host names, host-name suffixes and networks (none: all but link-local)."""

    def __init__(self, patterns: Sequence[str] = ()):
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        self.networks: list[Network] = []
        for pattern in patterns:
            self._add(pattern.strip())
        self.described = ", ".join(patterns) if patterns else "any address but link-local"

    def _add(self, pattern: str) -> None:
        try:
            self.networks.append(ipaddress.ip_network(pattern, strict=False))
            return
        except ValueError:
            pass
        name = _name(pattern.removeprefix("*"))
        label = name.removeprefix(".")
        if not label or not all(part and _is_label(part) for part in label.split(".")):
            raise ValueError(
                f"{FLAG} {pattern!r}: give a host name (checks.tools.svc), a suffix "
                "(.tools.svc.cluster.local or *.tools.svc.cluster.local), or an address or "
                "network (10.0.0.0/8)"
            )
        if name.startswith("."):
            self.suffixes.append(name)
        else:
            self.names.add(name)

    @property
    def restricted(self) -> bool:
        return bool(self.names or self.suffixes or self.networks)

    def allowed(self, host: str, addresses: Iterable[str]) -> tuple[list[str], str | None]:
        """The addresses of `host` a hook may connect to, in order, and, when there is none,
        why (a sentence naming the host, the address refused and what is allowed)."""
        named = not self.restricted or self._name_allowed(host)
        allowed, refused = [], []
        for text in addresses:
            address = _address(text)
            if address is not None and self._address_allowed(address, named):
                allowed.append(text)
            else:
                refused.append(text)
        if allowed or not refused:
            return allowed, None
        distinct = list(dict.fromkeys(refused))
        shown = host if distinct == [host] else f"{host} ({', '.join(distinct)})"
        return [], f"{shown} is not a place hooks may call: {FLAG} allows {self.described}"

    def _name_allowed(self, host: str) -> bool:
        name = _name(host)
        return name in self.names or any(
            name.endswith(suffix) or name == suffix[1:] for suffix in self.suffixes
        )

    def _address_allowed(self, address: Address, named: bool) -> bool:
        listed = any(address in network for network in self.networks)
        if listed:
            return True
        link_local = any(address in network for network in LINK_LOCAL)
        return named and not link_local


def _name(host: str) -> str:
    return host.lower().rstrip(".")


def _is_label(part: str) -> bool:
    return len(part) <= 63 and all(ch.isalnum() or ch in "-_" for ch in part)


def _address(text: str) -> Address | None:
    """An address as getaddrinfo gives it (an IPv6 one may carry %scope), mapped IPv4 unwrapped."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address

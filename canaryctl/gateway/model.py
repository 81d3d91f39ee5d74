"""Backend-neutral description of what canaryctl puts on a gateway for one application.

The decision speaks only these types; each backend (API7 Cloud, APISIX Admin API, Gateway API)
maps them to its own objects. Keeping them small and frozen makes "did anything change?" a plain
`==`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any, Literal

# Marks gateway objects canaryctl created; objects without it are never modified or deleted.
OWNER_LABEL = "managed-by:canaryctl"
# API7 Cloud labels are plain strings: the owner namespace is recorded as `<prefix><namespace>`.
NAMESPACE_LABEL_PREFIX = "canaryctl-namespace:"


@dataclass(frozen=True)
class Upstream:
    """One Service as a gateway upstream."""

    namespace: str
    service: str
    host: str  # "<service>.<namespace>.svc.<cluster domain>"
    port: int
    # The Service's ClusterIP, which `host` resolves to: real APISIX labels its metrics with
    # it (analysis only). Not part of what a gateway holds, so never compared.
    cluster_ip: str = field(default="", compare=False)

    @functools.cached_property  # read many times per reconcile; kept beside the fields
    def key(self) -> str:
        """`<namespace>/<service>`: the Service's key, and the upstream's version label."""
        return f"{self.namespace}/{self.service}"

    @property
    def target(self) -> str:
        """`host:port`, as the gateway addresses the upstream."""
        return f"{self.host}:{self.port}"

    @classmethod
    def from_key(cls, key: str, host: str, port: int) -> Upstream:
        """The upstream a gateway labels `key` (`namespace/service`; otherwise no namespace)."""
        namespace, _, service = key.rpartition("/")
        return cls(namespace, service, host, port)


@dataclass(frozen=True)
class MatchTerm:
    """One condition a request must meet to go to the canary (see `canaryctl.matching`)."""

    kind: Literal["header", "cookie", "query"]
    name: str  # lower case for headers
    value: str
    regex: bool = False  # `value` is a regular expression searched in the request's value

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}{'~' if self.regex else '='}{self.value}"


@dataclass(frozen=True)
class AppSpec:
    """Desired gateway state of one application: hosts [name], one match-everything route."""

    name: str
    stable: Upstream
    canary: Upstream | None = None
    weight: int = 0  # percent of requests sent to the canary, 0-100; 0 when canary is None
    owner: str = ""  # the namespace the app belongs to, recorded on the gateway objects
    # where the app attaches on the gateway, as the stable's annotation asks ("": the backend's
    # default; only the Gateway API backend reads it: a Gateway `namespace/name[/section]`)
    parent: str = ""
    # requests that always reach the canary, whatever its weight (see canaryctl.matching)
    match: tuple[MatchTerm, ...] = ()


class Verdict:
    """A yes/no worked out the first time it is asked, then remembered.

    API7 and APISIX define `AppState.conforms` as "planning the objects again yields no call":
    a second plan after every write. A weight change never asks (`AppState.matches` reads it
    last, after the weight already differs), so those backends hand the plan over unrun.
    It compares and hashes as the bool it stands for.
    """

    __slots__ = ("_decide", "_value")

    def __init__(self, decide: Callable[[], bool]):
        self._decide: Callable[[], bool] | None = decide
        self._value = False

    def __bool__(self) -> bool:
        decide = self._decide
        if decide is not None:  # two threads may both decide: the same answer, no harm
            self._value, self._decide = bool(decide()), None
        return self._value

    def __eq__(self, other: object) -> bool:
        return bool(self) == other

    def __hash__(self) -> int:
        return hash(bool(self))

    def __repr__(self) -> str:
        return repr(bool(self))


def plans_nothing(plan: Callable[[], Sized]) -> Verdict:
    """API7's and APISIX's `conforms`: planning the observed routing again yields no call."""
    return Verdict(lambda: not plan())


@dataclass(frozen=True)
class AppState:
    """What the gateway holds under one application name, as last read or written.

    `matches(spec)` is the backend's verdict that applying `spec` would write nothing;
    `raw` carries the backend's own objects and ids (opaque to everyone else).
    """

    name: str
    owned: bool
    stable: Upstream | None
    canary: Upstream | None
    weight: int  # canary share actually routed (0 when there is no live canary rule)
    conforms: bool | Verdict = True  # hosts, route, labels etc. are as canaryctl writes them
    owner: str = ""  # the owner namespace recorded on the gateway objects ("" if none is)
    parent: str = ""  # the AppSpec.parent the objects were written for (recorded on them)
    parent_recorded: bool = False  # the backend records parents (Gateway API); others ignore them
    # what the gateway reports against the objects (e.g. an HTTPRoute not Accepted by its
    # Gateway): a message and the implementation's reason; "" when all is well
    problem: str = ""
    problem_reason: str = ""
    edited_by: tuple[str, ...] = ()  # who else changed what canaryctl wrote (hand edits)
    match: tuple[MatchTerm, ...] = ()  # the canary's request predicate, as routed
    raw: Any = field(default=None, compare=False, repr=False)

    def matches(self, spec: AppSpec) -> bool:
        """True when this state already routes exactly as `spec` asks (`conforms` is asked
        last: it may cost a plan, see `Verdict`)."""
        return bool(
            self.owned
            and self.stable == spec.stable
            and self.canary == spec.canary
            and (spec.canary is None or self.weight == spec.weight)
            and self.match == (spec.match if spec.canary else ())
            and self.owner == spec.owner
            and (self.parent == spec.parent or not self.parent_recorded)
            and self.conforms
        )


_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAMESPACE = re.compile(_DNS_LABEL, re.ASCII)
_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*", re.ASCII)


@dataclass(frozen=True)
class ParentRef:
    """The Gateway (and optionally its listener) a route attaches to.

    Only the Gateway API backend writes it, but the annotation parser validates the
    `gateway-api-parent` annotation with it, so it lives here rather than in that backend.
    """

    namespace: str
    name: str
    section: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.namespace, self.name, self.section) if part)

    @classmethod
    def parse(cls, text: str) -> ParentRef | None:
        """`NAMESPACE/NAME[/SECTION]` (whitespace around it ignored), or None if malformed."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3):
            return None
        namespace, name, section = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
        valid = (
            len(namespace) <= 63
            and _NAMESPACE.fullmatch(namespace)
            and len(name) <= 253
            and _SUBDOMAIN.fullmatch(name)
            and (not section or (len(section) <= 253 and _SUBDOMAIN.fullmatch(section)))
        )
        return cls(namespace, name, section) if valid else None


PARENT_FORMAT = "NAMESPACE/NAME[/SECTION] of a Gateway (DNS-1123 names)"

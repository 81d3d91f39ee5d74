"""Who may take part in an application: its owner namespace, the owner's grants, name bindings.

In a cluster shared by many teams, an application name is a claim on real traffic (the host
`<app>` on the gateway). The rules, all pure:

- An application belongs to one namespace, its *owner*. The gateway is the record: canaryctl
  writes the owner on the objects it creates and reads it back. A new application belongs to
  the namespace of its earliest-created publishing Service (first come, first served).
- Members come from the owner namespace. A Service elsewhere that publishes the name neither
  joins nor blocks the application: it is *refused* (a `Forbidden` Warning naming the owner),
  left out of planning, and the owner's Services are told (`ClaimRefused`).
- The owner may grant other namespaces, in the spirit of Gateway API's ReferenceGrant:
  `api7.cloud/allowed-namespaces: "team-b,team-c"` on any of its member Services. A backend that
  cannot route across namespaces (Gateway API without ReferenceGrants) refuses them anyway.
- A platform team can bind names to namespaces: with bindings required, a Namespace may publish
  only the names its `api7.cloud/allowed-apps` annotation lists (patterns: `shop`, `shop-*`).
- A controller scoped to some namespaces writes only applications owned by one of them, so
  controllers sharing a gateway never overwrite each other.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from canaryctl.annotations import PREFIX, Problem
from canaryctl.gateway.model import AppState
from canaryctl.objects import Service

GRANT = PREFIX + "allowed-namespaces"  # on a Service of the owner namespace
BINDING = PREFIX + "allowed-apps"  # on a Namespace, enforced with --require-app-binding
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)

Bindings = Mapping[str, Sequence[str]]  # namespace -> app name patterns it may publish


@dataclass(frozen=True)
class Refusal:
    """A Service left out of its application, and why (a Warning Event on it)."""

    service: Service
    message: str


@dataclass(frozen=True)
class Membership:
    """The outcome of the tenancy rules for one application."""

    owner: str | None  # the owner namespace; None while nobody may own the app
    admitted: tuple[Service, ...]  # the members planning may use
    refused: tuple[Refusal, ...] = ()
    problems: tuple[tuple[Service, Problem], ...] = ()  # invalid grant annotations
    writable: bool = True  # the owner is within this controller's namespaces


def admit(
    app: str,
    members: Sequence[Service],
    observed: AppState | None,
    bindings: Bindings | None = None,
    watched: frozenset[str] | None = None,
    cross_namespace: bool = True,
) -> Membership:
    """Apply the tenancy rules to the Services that publish `app`."""
    bound = [s for s in members if _bound(app, s.namespace, bindings)]
    refused = [Refusal(s, _unbound_message(app, s.namespace)) for s in members if s not in bound]
    owner = _recorded_owner(observed) or _first_come(bound)
    if owner is None:
        return Membership(None, (), tuple(refused))
    grants, problems = _grants([s for s in bound if s.namespace == owner])
    admitted = []
    for service in bound:
        if service.namespace == owner or (service.namespace in grants and cross_namespace):
            admitted.append(service)
        else:
            granted = service.namespace in grants
            refused.append(Refusal(service, _refused_message(app, owner, service, granted)))
    writable = watched is None or owner in watched
    return Membership(owner, tuple(admitted), tuple(refused), tuple(problems), writable)


def parse_patterns(value: str) -> tuple[str, ...]:
    """The app name patterns of a binding annotation (comma-separated, whitespace ignored)."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bound(app: str, namespace: str, bindings: Bindings | None) -> bool:
    if bindings is None:
        return True
    return any(fnmatch.fnmatchcase(app, pattern) for pattern in bindings.get(namespace, ()))


def _recorded_owner(observed: AppState | None) -> str | None:
    """The owner the gateway records; for apps written before owners were recorded, the
    namespace of their stable."""
    if observed is None or not observed.owned:
        return None
    if observed.owner:
        return observed.owner
    upstream = observed.stable or observed.canary
    return upstream.namespace if upstream and upstream.namespace else None


def _first_come(candidates: list[Service]) -> str | None:
    if not candidates:
        return None
    return min(candidates, key=lambda s: (s.created or "~", s.key)).namespace


def _grants(owners: list[Service]) -> tuple[set[str], list[tuple[Service, Problem]]]:
    """The namespaces the owner's Services grant, and the grant values that are invalid."""
    granted: set[str] = set()
    problems = []
    for service in owners:
        value = service.annotations.get(GRANT)
        if value is None:
            continue
        names = parse_patterns(value)
        if all(_NAMESPACE.fullmatch(name) for name in names):
            granted.update(names)
        else:
            accepted = "comma-separated namespace names (DNS-1123 labels)"
            problems.append((service, Problem(GRANT, value, accepted)))
    return granted, problems


def _unbound_message(app: str, namespace: str) -> str:
    return (
        f"namespace {namespace} may not publish application {app}: the annotation {BINDING} on "
        f"Namespace {namespace} does not list it, and this controller requires such bindings"
    )


def _refused_message(app: str, owner: str, service: Service, granted: bool) -> str:
    if granted:
        return (
            f"application {app} belongs to namespace {owner}, which grants {service.namespace}, "
            f"but this gateway backend routes only to Services in the owner namespace "
            f"(cross-namespace backends would need a Gateway API ReferenceGrant)"
        )
    return (
        f"application {app} belongs to namespace {owner}; Services in namespace "
        f"{service.namespace} may join it only when a Service of {owner} lists "
        f"{service.namespace} in {GRANT}"
    )

"""Turn one Service's `api7.cloud/*` annotations into a gateway member, or say exactly what's wrong.

Users type these values by hand with `kubectl annotate`, so every value is checked and every
mistake on a Service is reported at once, each naming the annotation, the value and what is
accepted. Parsing is pure and never raises: a bad Service yields problems, not exceptions.

Decisions where the contract is silent:
- Values may carry surrounding whitespace (YAML block scalars add a trailing newline); it is
  stripped before checking. A value that is only whitespace counts as empty.
- The percentage is a plain decimal integer 0-100; leading zeros are read as decimal
  (`010` is 10, never octal). Signs, decimals and anything else are invalid.
- A canary without a percentage gets 0 %: it is published but receives no traffic until
  asked, the safe default.
- The percentage only matters on a canary, but an invalid one is reported on any member:
  it is a typo waiting for the day the flag is set.
- Only TCP ports are candidates for the upstream: the gateway speaks HTTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from canaryctl.gateway.model import PARENT_FORMAT, MatchTerm, ParentRef, Upstream
from canaryctl.matching import MATCH, parse_match
from canaryctl.objects import Service, ServicePort
from canaryctl.problems import Invalid, Problem

PREFIX = "api7.cloud/"
APP = "api7.cloud/published-service"
CANARY = "api7.cloud/published-canary-service"
PERCENT = "api7.cloud/published-service-canary-percentage"
PORT = "api7.cloud/published-service-port"
STATUS = "api7.cloud/canary-status"  # written by canaryctl itself, never read as input
PARENT = "api7.cloud/gateway-api-parent"  # Gateway API backend: the stable's own Gateway

ROUTABLE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Member:
    """A Service that validly publishes (part of) an application."""

    service: Service
    app: str
    is_canary: bool
    percent: int | None  # the canary's share; None on a Service without the canary flag
    upstream: Upstream
    parent: str = ""  # the Gateway asked for by PARENT, canonical `namespace/name[/section]`
    match: tuple[MatchTerm, ...] = ()  # a canary's request predicate (MATCH)


def is_canaryctl_annotation(key: str) -> bool:
    """Whether canaryctl reads (or writes) the annotation `key`: all its own are under PREFIX."""
    return key.startswith(PREFIX)


def app_of(service: Service) -> str | None:
    """The app a Service asks to join (stripped, maybe invalid), or None if it joins none."""
    value = service.annotations.get(APP)
    return None if value is None else value.strip()


def relevant_fingerprint(service: Service) -> tuple:
    """All of a Service that reconciliation depends on; equal fingerprints need no reconcile."""
    inputs = tuple(
        sorted(
            [
                (key, value)
                for key, value in service.annotations.items()
                if key.startswith(PREFIX) and key != STATUS
            ]
        )
    )
    return inputs, service.ports, service.type


def parse_member(service: Service, cluster_domain: str) -> Member | Invalid:
    """Validate a published Service and describe it as a gateway upstream; all problems at once."""
    app, app_problems = _parse_app(service)
    is_canary, flag_problems = _parse_canary_flag(service.annotations.get(CANARY))
    percent, percent_problems = _parse_percent(service.annotations.get(PERCENT))
    port, port_problems = _choose_port(service)
    parent, parent_problems = _parse_parent(service.annotations.get(PARENT))
    match, match_problems = _parse_match(service.annotations.get(MATCH))
    problems = app_problems + flag_problems + percent_problems + port_problems + parent_problems
    problems += match_problems
    if problems:
        return Invalid(tuple(problems))
    host = f"{service.name}.{service.namespace}.svc.{cluster_domain}"
    upstream = Upstream(service.namespace, service.name, host, port, service.cluster_ip)
    return Member(
        service=service,
        app=app,
        is_canary=is_canary,
        percent=(percent or 0) if is_canary else None,
        upstream=upstream,
        parent=parent,
        match=match if is_canary else (),
    )


def _parse_match(value: str | None) -> tuple[tuple[MatchTerm, ...], list[Problem]]:
    """The canary's request predicate; checked on every member, used only on a canary."""
    if value is None:
        return (), []
    match = parse_match(value)
    return ((), list(match.problems)) if isinstance(match, Invalid) else (match, [])


def parse_percent(value: str) -> int | None:
    """The canary percentage a value means, or None when it is not an integer 0-100."""
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        return None
    significant = text.lstrip("0") or "0"
    if len(significant) > 3:  # also keeps int() clear of its limit on huge digit strings
        return None
    number = int(significant)
    return number if number <= 100 else None


def _parse_app(service: Service) -> tuple[str, list[Problem]]:
    app = app_of(service)
    if app is None:
        return "", [Problem(APP, None, "application names (DNS-1123 subdomains)")]
    if len(app) <= 253 and _DNS_SUBDOMAIN.fullmatch(app):
        return app, []
    accepted = (
        "DNS-1123 subdomains: lowercase letters, digits, '-' and '.', at most 253 characters, "
        "starting and ending with a letter or digit"
    )
    return app, [Problem(APP, service.annotations[APP], accepted)]


def _parse_canary_flag(value: str | None) -> tuple[bool, list[Problem]]:
    if value is None:
        return False, []
    flag = value.strip().lower()
    if flag in ("true", "false"):
        return flag == "true", []
    return False, [Problem(CANARY, value, "true or false")]


def _parse_percent(value: str | None) -> tuple[int | None, list[Problem]]:
    if value is None:
        return None, []
    percent = parse_percent(value)
    if percent is None:
        return None, [Problem(PERCENT, value, "integers 0-100")]
    return percent, []


def _parse_parent(value: str | None) -> tuple[str, list[Problem]]:
    if value is None:
        return "", []
    parent = ParentRef.parse(value)
    if parent is None:
        return "", [Problem(PARENT, value, PARENT_FORMAT)]
    return str(parent), []


def _choose_port(service: Service) -> tuple[int, list[Problem]]:
    """The Service port the gateway should send traffic to (annotation, only port, or `http`)."""
    if service.type not in ROUTABLE_TYPES:
        return 0, [
            Problem(
                APP,
                service.annotations.get(APP),
                _on_routable_services(),
                reason=f"the Service is of type {service.type}",
            )
        ]
    ports = [p for p in service.ports if p.protocol.upper() == "TCP" and p.port > 0]
    if not ports:
        return 0, [
            Problem(
                APP,
                service.annotations.get(APP),
                _on_routable_services(),
                reason="the Service has no TCP ports",
            )
        ]
    requested = service.annotations.get(PORT)
    if requested is not None:
        chosen = [p for p in ports if requested.strip() in (p.name, str(p.port))]
        if chosen:
            return chosen[0].port, []
        return 0, [Problem(PORT, requested, _port_choices(ports))]
    if len(ports) == 1:
        return ports[0].port, []
    named_http = [p for p in ports if p.name == "http"]
    if named_http:
        return named_http[0].port, []
    return 0, [
        Problem(
            PORT,
            None,
            _port_choices(ports),
            reason=f'the Service has {len(ports)} ports and none is named "http"',
        )
    ]


def _on_routable_services() -> str:
    kinds = f"{', '.join(ROUTABLE_TYPES[:-1])} or {ROUTABLE_TYPES[-1]}"
    return f"application names on Services of type {kinds} with at least one TCP port"


def _port_choices(ports: list[ServicePort]) -> str:
    described = [f"{p.name} or {p.port}" if p.name else str(p.port) for p in ports]
    return "this Service's port names or numbers: " + ", ".join(described)

"""What Traefik routes now, read from its own API rather than from the HTTPRoute it was given.

An HTTPRoute says what should happen; Traefik's `/api/rawdata` says what it has loaded. Its
Gateway API provider turns each rule of a route into one router per match — the router's
rule text (e.g. `Host("a") && PathPrefix("/") && Header("x-canary","always")`), and a
priority that puts earlier route rules first — whose service is a weighted round robin
over one service per backendRef. Names (Traefik v3.7, `pkg/provider/kubernetes/gateway`):

    router   httproute-<ns>-<route>-gw-<gateway ns>-<gateway>-ep-<entryPoint>-<rule>-<hash>
    backend  <router>-svc-<backend ns>-<backend Service>-<backendRef index>

with the router part normalized (every run of characters that are not letters or digits
becomes `-`) and `@kubernetesgateway` appended to what the API and the metrics show. The
demo waits on this before it counts requests, so it counts what Traefik routes, and the
analysis queries (docs/gateways/gateway-api.md) select Traefik's series by these names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

PROVIDER = "@kubernetesgateway"


@dataclass(frozen=True)
class RoutedRule:
    """One router Traefik built for a route rule, with the weights it balances by."""

    router: str
    rule: str
    priority: int
    backends: tuple[tuple[str, int], ...]  # ("namespace/service", weight) in backendRef order


def normalize(name: str) -> str:
    """Traefik's `provider.Normalize`: runs of non-alphanumerics become one `-`."""
    return "-".join(part for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def router_prefix(namespace: str, route: str, gateway_namespace: str, gateway: str) -> str:
    """The start of every router name Traefik gives HTTPRoute `namespace/route` on a Gateway."""
    parts = ("httproute", namespace, route, "gw", gateway_namespace, gateway, "ep")
    return normalize("-".join(parts)) + "-"


def rawdata(session: requests.Session, admin_url: str) -> dict[str, Any]:
    """Traefik's whole runtime configuration (`/api/rawdata`)."""
    answer = session.get(f"{admin_url}/api/rawdata", timeout=5)
    answer.raise_for_status()
    return answer.json()


def routed_rules(
    raw: Mapping[str, Any], namespace: str, route: str, gateway: tuple[str, str]
) -> list[RoutedRule]:
    """The routers of HTTPRoute `namespace/route` on Gateway `gateway` (namespace, name),
    highest priority (the route's first rule) first."""
    prefix = router_prefix(namespace, route, *gateway)
    services = raw.get("services") or {}
    found = []
    for name, router in (raw.get("routers") or {}).items():
        if not (name.startswith(prefix) and name.endswith(PROVIDER)):
            continue
        base = name.removesuffix(PROVIDER)
        weighted = (services.get(f"{router.get('service')}{PROVIDER}") or {}).get("weighted")
        children = (weighted or {}).get("services") or []
        backends = tuple(
            (_backend_key(child["name"], base, namespace), int(child.get("weight", 1)))
            for child in children
        )
        found.append(RoutedRule(base, router.get("rule", ""), router.get("priority", 0), backends))
    return sorted(found, key=lambda rule: -rule.priority)


def _backend_key(child: str, router: str, namespace: str) -> str:
    """`namespace/service` of a backendRef's service in `namespace` (else the name as is)."""
    own = f"{router}-svc-{namespace}-"
    if not child.startswith(own):
        return child
    return f"{namespace}/{re.sub(r'-[0-9]+$', '', child.removeprefix(own))}"

"""How APISIX picks among weighted choices: traffic-split's upstreams and an upstream's nodes.

Both use lua-resty-balancer's `resty.roundrobin` (an interleaved weighted round robin:
walk the nodes, take each whose weight reaches the current level, lower the level by the
weights' gcd after each pass, start again at the highest weight). A single node is always
taken, whatever its weight; weight 0 is never taken unless every weight is 0. Over any
sum(weights)/gcd consecutive picks each node is taken exactly weight/gcd times, so 10:90
sends exactly 10 of every 100 requests to the first; the phase depends on the random
node the picker starts after, as in APISIX.

traffic-split (apache/apisix `apisix/plugins/traffic-split.lua`): rules are tried in order;
a rule without `match` applies to every request, a rule with `match` when any entry's
`vars` all hold (an empty `match` list keeps the previous rule's verdict, which starts as
"matched"). The chosen rule's `weighted_upstreams` become one picker per configuration
(cached by the route's version, so editing the route resets the sequence): entries with
`upstream_id` count per id, inline `upstream`s each on their own, and every entry with
only a `weight` shares one slot meaning "the route's own upstream" (the last weight wins).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canaryctl.testing.apisix.expr import evaluate

ROUTE_UPSTREAM = ("route",)  # the slot of weight-only traffic-split entries


class RoundRobin:
    """resty.roundrobin: `find()` returns the next key. Not thread-safe (see `Balancers`)."""

    def __init__(self, weights: Mapping[Hashable, int], start: int = 0):
        if not weights:
            raise ValueError("empty nodes")
        self._keys = list(weights)
        self._weights = [weights[key] for key in self._keys]
        self._gcd = math.gcd(*self._weights)
        self._max = max(self._weights)
        self._level = self._max
        self._last = start % len(self._keys)  # the first pick is the node after this one

    def find(self) -> Hashable:
        if len(self._keys) == 1:
            return self._keys[0]
        after, level = self._last, self._level
        while True:
            for index in range(after + 1, len(self._keys)):
                if self._weights[index] >= level:
                    self._level, self._last = level, index
                    return self._keys[index]
            after = -1
            level -= self._gcd
            if level <= 0:
                level = self._max


class Balancers:
    """One RoundRobin per key, rebuilt when the key's version changes. Thread-safe."""

    def __init__(self, seed: int | None = None):
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._pickers: dict[Hashable, tuple[Hashable, RoundRobin]] = {}

    def pick(self, key: Hashable, version: Hashable, weights: Mapping[Hashable, int]) -> Hashable:
        with self._lock:
            known = self._pickers.get(key)
            if known is None or known[0] != version:
                picker = RoundRobin(weights, self._random.randrange(len(weights)))
                known = self._pickers[key] = (version, picker)
            return known[1].find()


def rule_applies(rule: Mapping[str, Any], previous: bool, variables: Mapping[str, Any]) -> bool:
    """Whether a traffic-split rule takes the request (`previous`: the last rule's verdict)."""
    if "match" not in rule:
        return True
    verdict = previous
    for entry in rule["match"] or []:
        verdict = evaluate(entry.get("vars"), variables)
        if verdict:
            break
    return verdict


def chosen_rule(conf: Mapping[str, Any], variables: Mapping[str, Any]) -> int | None:
    """The index of the traffic-split rule that takes this request, None when none does."""
    verdict = True
    for index, rule in enumerate(conf.get("rules") or []):
        verdict = rule_applies(rule, verdict, variables)
        if verdict:
            return index
    return None


@dataclass(frozen=True)
class SplitChoice:
    """Where traffic-split sends a request: the route's upstream, an upstream id, or inline."""

    upstream_id: Any = None
    upstream: Mapping[str, Any] | None = None
    slot: Hashable = ROUTE_UPSTREAM  # identifies an inline upstream within the plugin


def split_slots(
    entries: Sequence[Mapping[str, Any]], weights: Sequence[int] | None = None
) -> dict[Hashable, tuple[int, SplitChoice]]:
    """The picker's slots: key -> (weight, choice); `weights` overrides the configured ones."""
    slots: dict[Hashable, tuple[int, SplitChoice]] = {}
    for index, entry in enumerate(entries):
        weight = entry.get("weight", 1) if weights is None else weights[index]
        if entry.get("upstream_id") is not None:
            key: Hashable = ("id", entry["upstream_id"])
            slots[key] = (weight, SplitChoice(upstream_id=entry["upstream_id"]))
        elif entry.get("upstream") is not None:
            key = ("inline", index)
            slots[key] = (weight, SplitChoice(upstream=entry["upstream"], slot=key))
        else:
            slots[ROUTE_UPSTREAM] = (weight, SplitChoice())
    return slots


def choose_split(
    conf: Mapping[str, Any],
    variables: Mapping[str, Any],
    balancers: Balancers,
    route_key: Hashable,
    override: Sequence[int] | None = None,
) -> SplitChoice:
    """traffic-split's decision for one request; `route_key` names the route's version."""
    index = chosen_rule(conf, variables)
    if index is None:
        return SplitChoice()
    entries = conf["rules"][index].get("weighted_upstreams") or [{"weight": 1}]
    if override is not None and len(override) != len(entries):
        override = None  # an override for another shape of configuration does not apply
    slots = split_slots(entries, override)
    weights = {key: weight for key, (weight, _) in slots.items()}
    picked = balancers.pick(("split", route_key, index), tuple(override or ()), weights)
    return slots[picked][1]


@dataclass(frozen=True)
class Node:
    host: str
    port: int | None
    weight: int
    priority: int = 0

    def address(self, scheme: str) -> str:
        """`host:port` as the node is configured (the scheme's default port when missing)."""
        return f"{self.host}:{self.port or (443 if scheme in ('https', 'grpcs') else 80)}"


def upstream_nodes(upstream: Mapping[str, Any]) -> list[Node]:
    """The nodes of an upstream, from either the list or the `{"host:port": weight}` form."""
    nodes = upstream.get("nodes") or []
    if isinstance(nodes, dict):
        result = []
        for address, weight in nodes.items():
            host, sep, port = address.rpartition(":")
            if sep and port.isdigit():
                result.append(Node(host, int(port), weight))
            else:
                result.append(Node(address, None, weight))
        return result
    return [Node(n["host"], n.get("port"), n["weight"], n.get("priority", 0)) for n in nodes]


def pick_node(
    upstream: Mapping[str, Any], balancers: Balancers, key: Hashable, version: Hashable
) -> Node | None:
    """The node that serves this request: round robin among the highest-priority nodes."""
    nodes = upstream_nodes(upstream)
    if not nodes:
        return None
    top = max(node.priority for node in nodes)
    scheme = upstream.get("scheme", "http")
    candidates = {node.address(scheme): node for node in nodes if node.priority == top}
    weights: dict[Hashable, int] = {address: node.weight for address, node in candidates.items()}
    return candidates[str(balancers.pick(("nodes", key), version, weights))]

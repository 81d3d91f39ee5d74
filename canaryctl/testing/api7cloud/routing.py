"""How the emulator's data plane picks an application, an API, an upstream and a target.

Pure decisions over the JSON-shaped resources the store holds, so the split can be tested
without sockets. The rules (the spec's "Routing" paragraph, plus our choices):

- App: published (`active == 0`) and one of its `hosts` equals the request's `Host` without
  port (case-insensitive; a host `*.example.com` matches any subdomain).
- API: `active == 0`, method listed (empty/null = all), and a path matching
  `path_prefix + path`: `Exact` compares equal, `Prefix` is a plain string prefix (APISIX's
  `/api*`). The longest matching path wins, `Exact` before `Prefix` on a tie.
- With `strip_path_prefix`, the app's `path_prefix` is removed before proxying.
- Upstream: the app's `default_upstream_version`, except that the `in_progress` canary
  takes `percent` % of requests (smooth weighted round robin per app, so exactly p of any
  100 consecutive requests; its state resets whenever the canary's percent, version or the
  default changes) or, for type `rule`, every request matching all its rules. A canary
  whose version is no longer an upstream of the app takes nothing. A test may make the data
  plane split a percent canary by other weights than configured (`override`: canary and
  default weights), as a data plane that lags behind or ignores its configuration would.
- Rules: `position` is `header` (name case-insensitive), `query` (first value) or `cookie`;
  operators `equal`, `not_equal` (true when absent), `present`, `not_present`,
  `regex_match` (Python `re.search`), `in` / `not_in` (value is a list). Values compare as strings.
- Target: among the upstream's targets with weight > 0, smooth weighted round robin; when
  every weight is 0 the first target.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Json = dict[str, Any]

RULE_POSITIONS = ("header", "query", "cookie")


def _as_strings(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


RULE_OPERATORS: dict[str, Callable[[str | None, Any], bool]] = {
    "equal": lambda actual, value: actual is not None and actual == str(value),
    "not_equal": lambda actual, value: actual != str(value),
    "present": lambda actual, value: actual is not None,
    "not_present": lambda actual, value: actual is None,
    "regex_match": lambda actual, value: (
        actual is not None and re.search(str(value), actual) is not None
    ),
    "in": lambda actual, value: actual is not None and actual in _as_strings(value),
    "not_in": lambda actual, value: actual not in _as_strings(value),
}


@dataclass(frozen=True)
class RequestFacts:
    """What canary rules may look at: header names lower-cased, first query value, cookies."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    cookies: Mapping[str, str]

    def lookup(self, position: str, key: str) -> str | None:
        if position == "header":
            return self.headers.get(key.lower())
        return (self.query if position == "query" else self.cookies).get(key)


def rules_match(rules: list[Json] | None, request: RequestFacts) -> bool:
    """True when the request satisfies every rule (an empty rule list matches everything)."""
    for rule in rules or []:
        actual = request.lookup(rule.get("position", ""), rule.get("key", ""))
        operator = RULE_OPERATORS.get(rule.get("operator", ""))
        if operator is None or not operator(actual, rule.get("value")):
            return False
    return True


def host_matches(app: Json, host: str) -> bool:
    """True when `host` (already without port) is one of the app's hosts."""
    host = host.lower()
    for pattern in app.get("hosts") or []:
        pattern = pattern.lower()
        if pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def _full_path(app: Json, api_path: str) -> str:
    prefix = (app.get("path_prefix") or "").rstrip("/")
    return prefix + (api_path if api_path.startswith("/") else "/" + api_path)


@dataclass(frozen=True)
class ApiMatch:
    api: Json
    matched_uri: str  # as APISIX reports it: "/x" for Exact, "/x*" for Prefix
    forward_path: str


def match_api(app: Json, apis: list[Json], method: str, path: str) -> ApiMatch | None:
    """The API of `app` that serves `method path`, by the longest matching path."""
    best: tuple[tuple[int, int], ApiMatch] | None = None
    for api in apis:
        if api.get("active", 0) != 0 or (api.get("methods") and method not in api["methods"]):
            continue
        for entry in api.get("paths") or []:
            full = _full_path(app, entry.get("path", "/"))
            exact = entry.get("path_type", "Prefix") == "Exact"
            if path == full if exact else path.startswith(full):
                rank = (len(full), 1 if exact else 0)
                if best is None or rank > best[0]:
                    uri = full if exact else full + "*"
                    best = (rank, ApiMatch(api, uri, forwarded_path(app, api, path)))
    return best[1] if best else None


def forwarded_path(app: Json, api: Json, path: str) -> str:
    """The path sent upstream: the app's `path_prefix` removed when the API strips it."""
    prefix = (app.get("path_prefix") or "").rstrip("/")
    if api.get("strip_path_prefix") and prefix and path.startswith(prefix):
        return path[len(prefix) :] or "/"
    return path


Key = TypeVar("Key", bound=Hashable)


class SmoothWeightedRoundRobin(Generic[Key]):
    """nginx's smooth weighted round robin: over any sum(weights) consecutive picks, each
    key is chosen exactly its weight times, spread as evenly as possible."""

    def __init__(self, weights: Mapping[Key, int]):
        self._weights = {key: weight for key, weight in weights.items() if weight > 0}
        self._current = dict.fromkeys(self._weights, 0)
        self._total = sum(self._weights.values())

    def pick(self) -> Key:
        for key, weight in self._weights.items():
            self._current[key] += weight
        chosen = max(self._current, key=self._current.__getitem__)
        self._current[chosen] -= self._total
        return chosen


class Balancers:
    """One SWRR per key, rebuilt whenever the weights under that key change. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[Hashable, tuple[tuple, SmoothWeightedRoundRobin[Any]]] = {}

    def pick(self, key: Hashable, weights: Mapping[Key, int]) -> Key:
        signature = tuple(sorted(weights.items(), key=repr))
        with self._lock:
            known = self._by_key.get(key)
            if known is None or known[0] != signature:
                known = (signature, SmoothWeightedRoundRobin(weights))
                self._by_key[key] = known
            return known[1].pick()


def upstream_by_version(app: Json, version: str) -> Json | None:
    for entry in app.get("upstreams") or []:
        if entry.get("version") == version:
            return entry
    return None


def choose_version(
    app: Json,
    canary: Json | None,
    request: RequestFacts,
    balancers: Balancers,
    override: tuple[int, ...] | None = None,
) -> str:
    """The upstream version that serves this request: default, or the live canary's."""
    default = app.get("default_upstream_version") or ""
    if canary is None or canary.get("state") != "in_progress":
        return default
    version = canary.get("canary_upstream_version", "")
    if upstream_by_version(app, version) is None or version == default:
        return default
    if canary.get("type") == "rule":
        return version if rules_match(canary.get("rules"), request) else default
    percent = canary.get("percent") or 0
    canary_weight, default_weight = override if override else (percent, 100 - percent)
    weights = {("canary", version): canary_weight, ("default", default): default_weight}
    return balancers.pick(("app", app["id"], canary["id"]), weights)[1]


def choose_target(app_id: str, upstream: Json, balancers: Balancers) -> Json | None:
    """One target of the upstream, weighted; None when it has no targets."""
    targets = (upstream.get("upstream") or {}).get("targets") or []
    weights = {index: target.get("weight") or 0 for index, target in enumerate(targets)}
    if not targets:
        return None
    if len(targets) == 1 or not any(weights.values()):
        return targets[0]
    return targets[balancers.pick(("targets", app_id, upstream.get("version")), weights)]

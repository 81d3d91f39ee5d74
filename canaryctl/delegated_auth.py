"""Who may read `/metrics`: Kubernetes decides, as for controller-runtime's secure metrics.

With `run --metrics-secure`, a scrape must carry a bearer token. kube-apiserver checks it
(a TokenReview: which user, groups, uid, extra) and then whether that user may `get` the
non-resource URL `/metrics` (a SubjectAccessReview, so RBAC — `nonResourceURLs` in a
ClusterRole — decides). No token or a token the API server rejects: 401; a known user
without the permission: 403; the API server unreachable: 500 — the same answers as
`filters.WithAuthenticationAndAuthorization`.

Prometheus scrapes every few seconds, so each decision is cached briefly (10 s, at most
1,000 entries, least recently used evicted first). The cache key is a hash of the token,
keyed with a secret made at start, never the token itself; the token goes only into the
review's request body and never into logs, metrics or errors.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client

from canaryctl import metrics
from canaryctl.kube import api_request, describe_error, read_json
from canaryctl.server import Response

log = logging.getLogger(__name__)

CACHE_TTL_SECONDS = 10.0
CACHE_MAX_ENTRIES = 1000
REVIEW_TIMEOUT = (5.0, 10.0)  # (connect, read) seconds, as controller-runtime's 10 s
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
UNAUTHORIZED: Response = (401, "text/plain; charset=utf-8", b"Unauthorized\n")


@dataclass(frozen=True)
class Decision:
    """What to answer a request with (None: serve it) and how to count it."""

    refusal: Response | None
    outcome: str  # one of metrics.METRICS_AUTH_DECISIONS


ALLOWED = Decision(None, "allowed")


class DecisionCache:
    """A small LRU map of key -> Decision whose entries expire `ttl` seconds after they were put."""

    def __init__(
        self,
        ttl: float = CACHE_TTL_SECONDS,
        max_entries: int = CACHE_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl, self.max_entries, self._clock = ttl, max_entries, clock
        self._entries: collections.OrderedDict[bytes, tuple[float, Decision]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: bytes) -> Decision | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= self._clock():
                self._entries.pop(key, None)
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: bytes, decision: Decision) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, decision)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>` (scheme case-insensitive), else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and " " not in token else None


class KubernetesAuthGuard:
    """A `server.Guard`: TokenReview, then SubjectAccessReview, answers cached per token hash."""

    def __init__(self, api_client: client.ApiClient, cache: DecisionCache | None = None):
        self._api = api_client
        self.cache = cache if cache is not None else DecisionCache()
        self._hash_key = secrets.token_bytes(32)
        metrics.initialise_metrics_auth()

    def __call__(self, method: str, path: str, authorization: str | None) -> Response | None:
        token = bearer_token(authorization)
        if token is None:
            metrics.metrics_auth_total.labels("unauthenticated", "request").inc()
            return UNAUTHORIZED
        key = self._cache_key(token, method, path)
        decision = self.cache.get(key)
        source = "cache"
        if decision is None:
            decision, source = self._review(token, method.lower(), path), "apiserver"
            if decision.outcome != "error":  # a failed review is asked again next time
                self.cache.put(key, decision)
        metrics.metrics_auth_total.labels(decision.outcome, source).inc()
        return decision.refusal

    def _cache_key(self, token: str, method: str, path: str) -> bytes:
        text = "\0".join((method, path, token)).encode()
        return hashlib.blake2b(text, key=self._hash_key, digest_size=32).digest()

    def _review(self, token: str, verb: str, path: str) -> Decision:
        try:
            user = self._authenticate(token)
        except Exception as error:  # noqa: BLE001 - any failure is a 500, never a crash
            log.warning("metrics authentication failed: %s", describe_error(error))
            return Decision(_text(500, "Authentication failed"), "error")
        if user is None:
            return Decision(UNAUTHORIZED, "unauthenticated")
        name = str(user.get("username", ""))
        try:
            allowed, reason = self._authorize(user, verb, path)
        except Exception as error:  # noqa: BLE001
            log.warning("metrics authorization for %s failed: %s", name, describe_error(error))
            return Decision(_text(500, f"Authorization for user {name} failed"), "error")
        if not allowed:
            log.debug("metrics access denied", extra={"user": name, "why": reason})
            return Decision(_text(403, f"Authorization denied for user {name}"), "forbidden")
        return ALLOWED

    def _post_review(self, path: str, body: dict) -> dict:
        """POST a review; its `status`. The answer is read raw: it echoes the token in `spec`."""
        answer = read_json(api_request(self._api, "POST", path, body=body, timeout=REVIEW_TIMEOUT))
        return answer.get("status") or {}

    def _authenticate(self, token: str) -> dict | None:
        """The TokenReview's user info if kube-apiserver accepts the token, else None."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        status = self._post_review(TOKEN_REVIEWS, body)
        return (status.get("user") or {}) if status.get("authenticated") else None

    def _authorize(self, user: dict, verb: str, path: str) -> tuple[bool, str]:
        """May `user` do `verb` on the non-resource URL `path`? (allowed, the authorizer's why)"""
        spec = {
            "user": user.get("username"),
            "groups": user.get("groups"),
            "uid": user.get("uid"),
            "extra": user.get("extra"),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {key: value for key, value in spec.items() if value},
        }
        status = self._post_review(ACCESS_REVIEWS, body)
        return bool(status.get("allowed")) and not status.get("denied"), status.get("reason", "")


def _text(status: int, message: str) -> Response:
    return (status, "text/plain; charset=utf-8", f"{message}\n".encode())

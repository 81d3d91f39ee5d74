"""The Admin API resources canaryctl uses — routes and upstreams — as one-call methods.

Every method is one logical call (or one paged list) over `transport.Transport`, which owns
retries, errors and metrics. Lists are filtered on the server and paged by `page` /
`page_size` (10-500; APISIX pages by `createdIndex` and reports the filtered `total`), so a
full read costs a request per 500 objects, not one per application.

Filters are as `apisix/admin/v3_adapter.lua` applies them: `label=K` keeps objects that have
a label *named* K whatever its value (so `label=managed-by` — a `managed-by:canaryctl`
filter would match nothing), `name=RE` keeps objects whose name matches the PCRE RE.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from canaryctl.gateway.apisix.transport import (
    DEFAULT_ADMIN_URL,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    Transport,
)
from canaryctl.gateway.base import TerminalGatewayError

Json = dict[str, Any]
MAX_PAGE_SIZE = 500


class AdminClient:
    """Typed access to one APISIX Admin API with one key."""

    def __init__(
        self,
        key: str | None,
        admin_url: str = DEFAULT_ADMIN_URL,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        ca_bundle: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        page_size: int = MAX_PAGE_SIZE,
        max_pages: int = 1000,
        user_agent: str | None = None,
    ):
        if not 10 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError("page_size must be between 10 and 500 (the Admin API's range)")
        self._transport = Transport(
            key, admin_url, timeout=timeout, ca_bundle=ca_bundle, retry=retry, user_agent=user_agent
        )
        self.page_size = page_size
        self.max_pages = max_pages

    def __repr__(self) -> str:
        return f"AdminClient(admin_url={self._transport.admin_url!r})"

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    def get(self, resource: str, object_id: str) -> Json | None:
        """The stored value of `resource/object_id`, or None when there is none."""
        try:
            node = self._transport.request("GET", f"/{resource}/{object_id}")
        except TerminalGatewayError as error:
            if error.status == 404:
                return None
            raise
        return _value(node)

    def list(self, resource: str, **filters: str) -> list[Json]:
        """Every stored value of `resource` that passes the filters (`label`, `name`, `uri`)."""
        return list(self._pages(resource, filters))

    def put(self, resource: str, object_id: str, body: Json) -> Json:
        """Create (or replace) `resource/object_id`; the stored value."""
        return _value(self._transport.request("PUT", f"/{resource}/{object_id}", body=body))

    def patch(self, resource: str, object_id: str, body: Json) -> Json:
        """Merge `body` into `resource/object_id`; the stored value."""
        return _value(self._transport.request("PATCH", f"/{resource}/{object_id}", body=body))

    def delete(self, resource: str, object_id: str) -> None:
        """Delete `resource/object_id` (a 404 raises `TerminalGatewayError` with status 404)."""
        self._transport.request("DELETE", f"/{resource}/{object_id}")

    def _pages(self, resource: str, filters: dict[str, str]) -> Iterator[Json]:
        seen: set[str] = set()
        for page in range(1, self.max_pages + 1):
            params = {**filters, "page": page, "page_size": self.page_size}
            body = self._transport.request("GET", f"/{resource}", params=params) or {}
            nodes = body.get("list") or []
            for node in nodes:
                key = str(node.get("key"))
                if key not in seen:  # an item may shift pages under concurrent writes
                    seen.add(key)
                    yield _value(node)
            if len(nodes) < self.page_size or len(seen) >= int(body.get("total") or 0):
                return
        raise TerminalGatewayError(
            f"APISIX Admin API GET /{resource}: list did not end after {self.max_pages} pages"
        )


def _value(node: Any) -> Json:
    """The stored value of a `{key, value, ...}` answer."""
    if not isinstance(node, dict) or not isinstance(node.get("value"), dict):
        raise TerminalGatewayError(f"APISIX Admin API: unexpected answer {str(node)[:200]!r}")
    return node["value"]

"""The API7 Cloud Open API resources canaryctl uses: account, clusters, apps, APIs, canaries.

Every method is one logical call (or one paginated list) over `transport.Transport`, which
owns retries, errors and metrics. Creates are made idempotent here by saying how to find
the object a lost attempt may have created: same exact name and carrying every label sent.

Path spelling: the newer `clusters` (`/api/v1/clusters/{cluster_id}/apps`), not the older
`controlplanes`; the API7 Cloud emulator serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canaryctl.gateway.api7.transport import (
    DEFAULT_BASE_URL,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Getter,
    RetryPolicy,
    Transport,
)
from canaryctl.gateway.base import TerminalGatewayError

Json = dict[str, Any]


@dataclass(frozen=True)
class ClusterRef:
    """The organization and cluster canaryctl works in."""

    org_id: str
    org_name: str
    cluster_id: str
    cluster_name: str


class Api7Client:
    """Typed access to one API7 Cloud address with one access token."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        ca_bundle: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        page_size: int = 100,
        max_pages: int = 1000,
        user_agent: str | None = None,
    ):
        self._transport = Transport(
            token,
            base_url,
            timeout=timeout,
            ca_bundle=ca_bundle,
            retry=retry,
            user_agent=user_agent,
        )
        self.page_size = page_size
        self.max_pages = max_pages

    def __repr__(self) -> str:
        return f"Api7Client(base_url={self._transport.base_url!r})"

    def __enter__(self) -> Api7Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    # account and cluster selection

    def me(self) -> Json:
        return self._get("/user/me")

    def get_org(self, org_id: str) -> Json:
        return self._get(f"/orgs/{org_id}")

    def list_clusters(self, org_id: str) -> list[Json]:
        return self._list(f"/orgs/{org_id}/clusters")

    def resolve_cluster(self, org: str | None = None, cluster: str | None = None) -> ClusterRef:
        """The cluster named by id or name (and its organization), else the only one there is."""
        orgs = [self.get_org(org_id) for org_id in self.me().get("org_ids") or []]
        if org is not None:
            orgs = [_choose(orgs, org, "organization")]
        elif cluster is None:
            orgs = [_choose(orgs, None, "organization")]
        pairs = {c["id"]: (o, c) for o in orgs for c in self.list_clusters(o["id"])}
        chosen = _choose([c for _, c in pairs.values()], cluster, "cluster")
        owner = pairs[chosen["id"]][0]
        return ClusterRef(
            org_id=owner["id"],
            org_name=owner.get("name", ""),
            cluster_id=chosen["id"],
            cluster_name=chosen.get("name", ""),
        )

    # applications

    def list_apps(self, cluster_id: str) -> list[Json]:
        return self._list(f"/clusters/{cluster_id}/apps")

    def find_app(self, cluster_id: str, name: str) -> Json | None:
        return self._find(self._get_with_retries, f"/clusters/{cluster_id}/apps", {"name": name})

    def get_app(self, cluster_id: str, app_id: str) -> Json:
        return self._get(f"/clusters/{cluster_id}/apps/{app_id}")

    def create_app(self, cluster_id: str, body: Json) -> Json:
        return self._create(f"/clusters/{cluster_id}/apps", body)

    def replace_app(self, cluster_id: str, app_id: str, body: Json) -> Json:
        return self._transport.request("PUT", f"/clusters/{cluster_id}/apps/{app_id}", body=body)

    def delete_app(self, cluster_id: str, app_id: str) -> None:
        self._transport.request("DELETE", f"/clusters/{cluster_id}/apps/{app_id}")

    # APIs (routes) of an application

    def list_apis(self, app_id: str) -> list[Json]:
        return self._list(f"/apps/{app_id}/apis")

    def create_api(self, app_id: str, body: Json) -> Json:
        return self._create(f"/apps/{app_id}/apis", body)

    def replace_api(self, app_id: str, api_id: str, body: Json) -> Json:
        return self._transport.request("PUT", f"/apps/{app_id}/apis/{api_id}", body=body)

    def delete_api(self, app_id: str, api_id: str) -> None:
        self._transport.request("DELETE", f"/apps/{app_id}/apis/{api_id}")

    # canary releases of an application

    def list_canaries(self, app_id: str) -> list[Json]:
        return self._list(f"/apps/{app_id}/canary_releases")

    def get_canary(self, app_id: str, canary_id: str) -> Json:
        return self._get(f"/apps/{app_id}/canary_releases/{canary_id}")

    def create_canary(self, app_id: str, body: Json) -> Json:
        return self._create(f"/apps/{app_id}/canary_releases", body)

    def replace_canary(self, app_id: str, canary_id: str, body: Json) -> Json:
        return self._transport.request(
            "PUT", f"/apps/{app_id}/canary_releases/{canary_id}", body=body
        )

    def delete_canary(self, app_id: str, canary_id: str) -> None:
        self._transport.request("DELETE", f"/apps/{app_id}/canary_releases/{canary_id}")

    # plumbing

    def _get(self, path: str) -> Json:
        return self._transport.request("GET", path)

    def _get_with_retries(self, path: str, params: dict[str, Any]) -> Any:
        return self._transport.request("GET", path, params=params)

    def _list(self, path: str, get: Getter | None = None, search: str | None = None) -> list[Json]:
        params = {"search": search} if search else {}
        return list(
            self._transport.pages(
                get or self._get_with_retries, path, params, self.page_size, self.max_pages
            )
        )

    def _find(self, get: Getter, path: str, like: Json) -> Json | None:
        """The first object of the list at `path` with `like`'s exact name and all of its labels."""
        wanted_labels = set(like.get("labels") or [])
        for obj in self._list(path, get, search=like["name"]):
            if obj.get("name") == like["name"] and wanted_labels <= set(obj.get("labels") or []):
                return obj
        return None

    def _create(self, path: str, body: Json) -> Json:
        return self._transport.create(path, body, lambda get: self._find(get, path, body))


def _choose(items: list[Json], wanted: str | None, kind: str) -> Json:
    """The item whose id or name is `wanted`, or the only item when nothing is wanted."""
    matches = (
        items if wanted is None else [i for i in items if wanted in (i.get("id"), i.get("name"))]
    )
    if len(matches) == 1:
        return matches[0]
    choices = ", ".join(f"{i.get('name', '?')} (id {i.get('id')})" for i in items) or "none"
    if wanted is None:
        problem = f"no {kind} is available" if not items else f"{len(items)} {kind}s are available"
    elif not matches:
        problem = f"no {kind} has the id or name {wanted!r}"
    else:
        problem = f"{len(matches)} {kind}s have the id or name {wanted!r}"
    raise TerminalGatewayError(
        f"API7 Cloud: {problem}; choose one by id or name. Choices: {choices}"
    )

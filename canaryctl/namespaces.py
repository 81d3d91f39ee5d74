"""Name bindings: the application names each namespace may publish, read from its Namespace.

With `canaryctl run --require-app-binding`, a platform team lists on each Namespace the names
(or patterns) its Services may publish — `api7.cloud/allowed-apps: "shop,shop-*"` — so that no
namespace can squat another team's name (the rules are in `canaryctl.tenancy`). The Namespaces
are watched like the Services, and a change of a binding re-examines the applications of that
namespace's Services.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from canaryctl.cache import ObjectStore
from canaryctl.informer import Informer
from canaryctl.kube import ListRequest, list_request
from canaryctl.tenancy import BINDING, parse_patterns


@dataclass(frozen=True)
class Namespace:
    """What canaryctl needs of a Namespace: its name and the app names it may publish."""

    name: str
    resource_version: str
    allowed_apps: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.name

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Namespace:
        meta = obj.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        return cls(
            meta.get("name", ""),
            meta.get("resourceVersion", ""),
            parse_patterns(annotations.get(BINDING, "")),
        )


def namespace_list_request(api: client.ApiClient) -> ListRequest:
    return list_request(api, "/api/v1/namespaces")


class NamespaceBindings:
    """The bindings of every Namespace, kept current by a watch; `on_change(namespace)` is told
    when one namespace's binding changed."""

    def __init__(self, api: client.ApiClient, on_change: Callable[[str], None]):
        self.store: ObjectStore[Namespace] = ObjectStore()
        self._on_change = on_change
        self.informer: Informer[Namespace] = Informer(
            lambda scope: namespace_list_request(api),
            Namespace.from_dict,
            self.store,
            self._changed,
            kind="namespace",
        )

    def bindings(self) -> dict[str, tuple[str, ...]]:
        """Namespace name -> the app name patterns it may publish."""
        return {namespace.name: namespace.allowed_apps for namespace in self.store.list()}

    def _changed(self, old: Namespace | None, new: Namespace | None) -> None:
        before = old.allowed_apps if old else ()
        after = new.allowed_apps if new else ()
        if before != after:
            self._on_change((new or old).name)  # type: ignore[union-attr]

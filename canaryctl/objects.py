"""Slim, immutable projections of Kubernetes objects, as the cache keeps them.

The informer converts the API's raw JSON into these right away: they are a fraction of the
memory, and nobody can mutate what the cache hands out. With 10,000 Services in a cluster
every byte per Service counts: the classes have slots, the strings many Services repeat
(namespace, type, annotation keys, port names) are interned, Services without annotations
share one empty mapping, and the cache may keep only the annotations it reads.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str | None
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Service:
    """What canaryctl needs of a Service."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    annotations: Mapping[str, str]
    ports: tuple[ServicePort, ...]
    type: str = "ClusterIP"
    created: str = ""  # creationTimestamp (RFC 3339, UTC, sorts as it reads): first come
    cluster_ip: str = ""  # spec.clusterIP: what a Service DNS name resolves to ("None": headless)
    # `<namespace>/<name>`, made once: it is read many times per event and per reconcile, and
    # the cache's dicts key on this very string
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.namespace}/{self.name}")

    @classmethod
    def from_dict(
        cls, obj: Mapping[str, Any], keep_annotation: Callable[[str], bool] | None = None
    ) -> Service:
        """Project a Service as the API returns it (a JSON dict); with `keep_annotation`, only
        the annotations whose key it accepts."""
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        ports = tuple(
            [
                ServicePort(_interned(p.get("name")), int(p.get("port", 0)), _protocol(p))
                for p in spec.get("ports") or ()
            ]
        )
        return cls(
            namespace=sys.intern(meta.get("namespace", "")),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            resource_version=meta.get("resourceVersion", ""),
            annotations=_annotations(meta.get("annotations"), keep_annotation),
            ports=ports,
            type=sys.intern(spec.get("type") or "ClusterIP"),
            created=meta.get("creationTimestamp") or "",
            cluster_ip=spec.get("clusterIP") or "",
        )


def _annotations(
    raw: Mapping[str, str] | None, keep: Callable[[str], bool] | None
) -> Mapping[str, str]:
    kept = {
        sys.intern(key): value for key, value in (raw or {}).items() if keep is None or keep(key)
    }
    return MappingProxyType(kept) if kept else NO_ANNOTATIONS


def _interned(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def _protocol(port: Mapping[str, Any]) -> str:
    return sys.intern(port.get("protocol") or "TCP")

"""Slim, immutable projections of Kubernetes objects, as the cache keeps them.

The informer converts the client's model objects (or raw dicts) into these right away: they
are a fraction of the memory, hashable, and nobody can mutate what the cache hands out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class ServicePort:
    name: str | None
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True)
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

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Service:
        """Project a Service as the API returns it (a JSON dict)."""
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        ports = tuple(
            ServicePort(p.get("name"), int(p.get("port", 0)), p.get("protocol") or "TCP")
            for p in spec.get("ports") or ()
        )
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            resource_version=meta.get("resourceVersion", ""),
            annotations=MappingProxyType(dict(meta.get("annotations") or {})),
            ports=ports,
            type=spec.get("type") or "ClusterIP",
            created=meta.get("creationTimestamp") or "",
            cluster_ip=spec.get("clusterIP") or "",
        )

"""The Service cache: a thread-safe store of `Service`s with named secondary indexes.

The informer writes to it, reconcilers read from it; nothing here does I/O. The store holds
any immutable projection with a `key` and a `resource_version` (`ObjectStore`), so the same
informer machinery can mirror other kinds (the Gateway API backend's HTTPRoutes). Like client-go's
`cache.Indexer`, each index is a function from an object to the index values it files the
object under (e.g. "app" -> the application names a Service belongs to), so a reconcile can
ask "which Services belong to app A?" without scanning the whole cluster. Views are
immutable, and every answer is a fresh list, so nobody can mutate what the store holds.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable
from typing import Generic, NamedTuple, Protocol, TypeVar

from canaryctl.objects import Service


class Keyed(Protocol):
    """What the store needs of a cached object: its key and the version it was read at."""

    @property
    def key(self) -> str: ...

    @property
    def resource_version(self) -> str: ...


K = TypeVar("K", bound=Keyed)
Indexer = Callable[[K], Iterable[str]]
Change = tuple[K | None, K | None]  # (old, new) as event handlers receive it


class Changes(NamedTuple, Generic[K]):
    """What a relist changed, as (old, new) pairs: added (None, new), updated, deleted."""

    added: list[Change[K]]
    updated: list[Change[K]]
    deleted: list[Change[K]]


class ObjectStore(Generic[K]):
    """Objects by key (`namespace/name`), plus one inverted index per named indexer."""

    def __init__(self, indexers: dict[str, Indexer[K]] | None = None):
        self._indexers = dict(indexers or {})
        self._lock = threading.Lock()
        self._items: dict[str, K] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        # key -> the values each indexer filed it under (in indexer order); absent: none at all
        self._filed_under: dict[str, tuple[frozenset[str], ...]] = {}

    # reads ----------------------------------------------------------------------------------

    def get(self, key: str) -> K | None:
        with self._lock:
            return self._items.get(key)

    def list(self) -> list[K]:
        with self._lock:
            return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._items)

    def by_index(self, index_name: str, value: str) -> builtins.list[K]:
        """The objects the indexer `index_name` files under `value` (KeyError: unknown index)."""
        with self._lock:
            keys = self._indexes[index_name].get(value, ())
            return [self._items[key] for key in sorted(keys)]

    def index_values(self, index_name: str) -> builtins.list[str]:
        """Every value the indexer `index_name` currently files at least one Service under."""
        with self._lock:
            return sorted(self._indexes[index_name])

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    # writes ---------------------------------------------------------------------------------

    def upsert(self, service: K) -> K | None:
        """Add or replace one object; return what was stored before (None if new)."""
        with self._lock:
            return self._put(service)

    def delete(self, key: str) -> K | None:
        """Remove one object; return what was stored (None if it was not cached)."""
        with self._lock:
            return self._remove(key)

    def replace(self, services: Iterable[K], namespace: str | None = None) -> Changes[K]:
        """Make the store hold exactly `services` (after a list) and say what that changed.

        With `namespace`, only that namespace's Services are replaced, so one store can be
        shared by per-namespace informers. A Service whose resourceVersion did not change
        counts as unchanged.
        """
        fresh = {service.key: service for service in services}
        changes: Changes[K] = Changes([], [], [])
        with self._lock:
            for key in [
                key for key in self._items if key not in fresh and _in_scope(key, namespace)
            ]:
                changes.deleted.append((self._remove(key), None))
            for key, service in fresh.items():
                old = self._items.get(key)
                if old is None:
                    self._put(service)
                    changes.added.append((None, service))
                elif old.resource_version != service.resource_version:
                    self._put(service)
                    changes.updated.append((old, service))
        return changes

    # internals (lock held) ------------------------------------------------------------------

    def _put(self, service: K) -> K | None:
        values = tuple([frozenset(indexer(service)) for indexer in self._indexers.values()])
        key = service.key
        old = self._remove(key)
        self._items[key] = service
        if any(values):  # most Services of a large cluster are filed under nothing
            self._filed_under[key] = values
        for index, index_values in zip(self._indexes.values(), values, strict=True):
            for value in index_values:
                index.setdefault(value, set()).add(key)
        return old

    def _remove(self, key: str) -> K | None:
        old = self._items.pop(key, None)
        filed_under = self._filed_under.pop(key, ())  # () when filed under nothing
        for index, index_values in zip(self._indexes.values(), filed_under, strict=False):
            for value in index_values:
                index[value].discard(key)
                if not index[value]:
                    del index[value]
        return old


class ServiceStore(ObjectStore[Service]):
    """The Service cache the controller's informer fills and its reconcilers read."""


def _in_scope(key: str, namespace: str | None) -> bool:
    return namespace is None or key.startswith(namespace + "/")

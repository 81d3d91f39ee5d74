"""Keep Events from flooding etcd, as client-go's EventCorrelator does (events_cache.go).

A reconcile that fails on every retry, or a release that moves the weight thousands of
times, must not write thousands of Event objects. Three mechanisms, each bounded in memory
by a least-recently-used map of 4,096 entries:

- *Aggregation*: events on one object with the same type and reason but different messages
  are "similar". Once 10 distinct messages were seen within 600 s of each other, every
  further new message goes to one aggregated Event, "(combined from similar events):
  <latest message>", whose count is bumped instead of creating a new object.
- *Deduplication* (`EventLog`): an event identical to one written in the last 600 s patches
  that Event's count and lastTimestamp instead of creating another.
- *Spam filter*: a token bucket per object and type — a burst of 25, refilled one token per
  300 s — drops what exceeds it, before anything is queued or sent.

Unlike client-go, a dropped event does not bump a count: an Event's count is the number of
occurrences that were accepted and written. Pure: no I/O; the clock is injected.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

LRU_SIZE = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_WINDOW_SECONDS = 600.0
DEDUPE_WINDOW_SECONDS = 600.0
SPAM_BURST = 25
SPAM_REFILL_PER_SECOND = 1.0 / 300.0
AGGREGATE_PREFIX = "(combined from similar events): "

Value = TypeVar("Value")


class LRU(Generic[Value]):
    """A map that forgets its least recently used key beyond `size` entries."""

    def __init__(self, size: int = LRU_SIZE):
        self.size = size
        self._items: collections.OrderedDict[Hashable, Value] = collections.OrderedDict()

    def get(self, key: Hashable) -> Value | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class Involved(NamedTuple):
    """The object an event is about (a tuple: part of every key, hashed and compared in C)."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Admitted:
    """An event to write: the key identical writes share, and the message to show."""

    key: tuple
    message: str
    aggregated: bool


@dataclass
class _Similar:
    messages: set[str]
    last_seen: float


@dataclass
class _Bucket:
    tokens: float
    updated: float


class EventCorrelator:
    """Decides, per recorded event, whether it is written and under which key and message."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_events: int = AGGREGATE_MAX_EVENTS,
        aggregate_window: float = AGGREGATE_WINDOW_SECONDS,
        burst: int = SPAM_BURST,
        refill_per_second: float = SPAM_REFILL_PER_SECOND,
        lru_size: int = LRU_SIZE,
    ):
        self._clock = clock
        self.max_events, self.aggregate_window = max_events, aggregate_window
        self.burst, self.refill_per_second = burst, refill_per_second
        self._similar: LRU[_Similar] = LRU(lru_size)
        self._buckets: LRU[_Bucket] = LRU(lru_size)
        self._lock = threading.Lock()

    def admit(self, involved: Involved, type_: str, reason: str, message: str) -> Admitted | None:
        """The event to write for this occurrence, or None when the spam filter drops it."""
        with self._lock:
            now = self._clock()
            admitted = self._aggregate(involved, type_, reason, message, now)
            return admitted if self._take_token((involved, type_), now) else None

    def _aggregate(
        self, involved: Involved, type_: str, reason: str, message: str, now: float
    ) -> Admitted:
        """client-go's EventAggregator: messages are told apart within (object, type, reason)."""
        group = (involved, type_, reason)
        similar = self._similar.get(group)
        if similar is None or now - similar.last_seen > self.aggregate_window:
            similar = _Similar(set(), now)
        similar.messages.add(message)
        similar.last_seen = now
        self._similar.put(group, similar)
        if len(similar.messages) < self.max_events:
            return Admitted((*group, message), message, aggregated=False)
        similar.messages.pop()  # stay at max_events - 1, so each new message aggregates again
        return Admitted(group, AGGREGATE_PREFIX + message, aggregated=True)

    def _take_token(self, key: tuple, now: float) -> bool:
        """client-go's EventSourceObjectSpamFilter: a token bucket per (object, type)."""
        bucket = self._buckets.get(key) or _Bucket(float(self.burst), now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.refill_per_second)
        bucket.updated = now
        self._buckets.put(key, bucket)
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True


@dataclass
class Written:
    """An Event object written for a key: patch it while it is recent."""

    namespace: str
    name: str
    count: int
    written_at: float


class EventLog:
    """client-go's eventLogger: which Event object each key went to, and its count.

    Only what the API server confirmed is remembered, so a count is never ahead of the
    object; used by the one thread that sends events.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        window: float = DEDUPE_WINDOW_SECONDS,
        lru_size: int = LRU_SIZE,
    ):
        self._clock, self.window = clock, window
        self._written: LRU[Written] = LRU(lru_size)

    def recent(self, key: tuple) -> Written | None:
        """The Event to patch for `key`, if one was written less than `window` seconds ago."""
        written = self._written.get(key)
        if written is None or self._clock() - written.written_at >= self.window:
            return None
        return written

    def remember(self, key: tuple, namespace: str, name: str, count: int) -> None:
        self._written.put(key, Written(namespace, name, count, self._clock()))

    def __len__(self) -> int:
        return len(self._written)

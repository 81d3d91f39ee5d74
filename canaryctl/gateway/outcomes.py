"""Writes whose outcome is unknown: an attempt whose answer was lost may still land later.

A timeout, a dropped connection or a 5xx on a write says nothing about whether the gateway
applied it: the request may be queued behind a slow proxy and land seconds later, over a newer
write. Transports call `note_unknown_outcome()` whenever a write attempt ends that way (even
if a retry then succeeds); the reconciler watches its own writes with `unknown_outcomes()` and
keeps the application *suspect* for the window in which such a write could still land: it reads
the application before the next write and again when the window ends (see
`canaryctl.gateway.cache`). Counting is per thread, as each reconcile runs on one worker thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

_local = threading.local()


@dataclass
class UnknownOutcomes:
    """Write attempts whose outcome is unknown, seen while the block ran."""

    count: int = 0


def note_unknown_outcome() -> None:
    """A write attempt on this thread ended without an answer it could trust."""
    watching: UnknownOutcomes | None = getattr(_local, "watching", None)
    if watching is not None:
        watching.count += 1


@contextlib.contextmanager
def unknown_outcomes() -> Iterator[UnknownOutcomes]:
    """Count the unknown write outcomes of the block (nested blocks count for the outer too)."""
    outer: UnknownOutcomes | None = getattr(_local, "watching", None)
    seen = UnknownOutcomes()
    _local.watching = seen
    try:
        yield seen
    finally:
        _local.watching = outer
        if outer is not None:
            outer.count += seen.count

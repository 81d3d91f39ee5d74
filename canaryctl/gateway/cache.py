"""The gateway cache: what each application name holds in the gateway right now.

Loaded once before workers start and re-read on the resync period; in between it is kept
current from the answers to canaryctl's own writes, so a steady-state change costs no
gateway read.

A write whose outcome is unknown (it failed, or an attempt lost its answer; see
`canaryctl.gateway.outcomes`) leaves the app *suspect* until a deadline: the window in which
such a write could still land. A suspect app is read from the gateway before anything else is
decided about it, and read once more when its window ends, so a write that lands late is
corrected then, not at the next full resync. Thread-safe; values are immutable `AppState`s.
"""

from __future__ import annotations

import threading
from datetime import datetime

from canaryctl.gateway.model import AppState


class GatewayCache:
    """AppState by application name, suspect names, and whether the first full read happened."""

    def __init__(self) -> None:
        self._apps: dict[str, AppState] = {}
        self._lock = threading.Lock()
        self._writes = 0  # counts put/remove calls, to tell full reads apart from newer writes
        self._written_at: dict[str, int] = {}
        self._suspect: set[str] = set()  # read before the next decision
        self._verify_at: dict[str, datetime] = {}  # read again once this moment has passed
        self._loaded = threading.Event()

    def get(self, name: str) -> AppState | None:
        with self._lock:
            return self._apps.get(name)

    def put(self, name: str, state: AppState | None) -> None:
        """What the gateway holds under `name` now (None: nothing), from a write or a read."""
        with self._lock:
            if state is None:
                self._apps.pop(name, None)
            else:
                self._apps[name] = state
            self._suspect.discard(name)
            self._writes += 1
            self._written_at[name] = self._writes

    def mark_suspect(self, name: str, until: datetime) -> None:
        """A write's outcome is unknown: read `name` before deciding, and again at `until`."""
        with self._lock:
            self._suspect.add(name)
            if name not in self._verify_at or self._verify_at[name] < until:
                self._verify_at[name] = until

    def needs_read(self, name: str, now: datetime) -> bool:
        """Whether what the gateway holds under `name` must be read before deciding at `now`."""
        with self._lock:
            due = self._verify_at.get(name)
            return name in self._suspect or (due is not None and now >= due)

    def put_read(self, name: str, state: AppState | None, now: datetime) -> None:
        """What a read at `now` found; it settles the suspicion whose window has ended."""
        self.put(name, state)
        with self._lock:
            if name in self._verify_at and now >= self._verify_at[name]:
                del self._verify_at[name]

    def verify_in(self, name: str, now: datetime) -> float | None:
        """Seconds until `name` must be read again (None: nothing pending)."""
        with self._lock:
            due = self._verify_at.get(name)
        return None if due is None else max(0.0, (due - now).total_seconds())

    def write_mark(self) -> int:
        """Take before a full read; pass to `replace` so it keeps writes made during the read."""
        with self._lock:
            return self._writes

    def owned_names(self) -> list[str]:
        with self._lock:
            return [name for name, state in self._apps.items() if state.owned]

    def replace(self, apps: dict[str, AppState], mark: int = 0) -> list[str]:
        """Swap in a full read taken after `mark`; return the names whose state differs.

        Names canaryctl wrote after `mark` keep the cached state: it is newer than the read.
        """
        with self._lock:
            fresh = {name for name, at in self._written_at.items() if at > mark}
            names = (set(apps) | set(self._apps)) - fresh
            changed = sorted(name for name in names if self._apps.get(name) != apps.get(name))
            self._suspect -= names
            for name in names:
                if name in apps:
                    self._apps[name] = apps[name]
                else:
                    self._apps.pop(name, None)
            self._written_at = {name: at for name, at in self._written_at.items() if at > mark}
        self._loaded.set()
        return changed

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

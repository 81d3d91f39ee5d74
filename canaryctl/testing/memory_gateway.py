"""A gateway held in a dict: the `Gateway` protocol without HTTP, for tests of the control loop.

It routes exactly as asked, unless a test tells it otherwise: `fail_next` makes the next calls
raise (as a flaky gateway would), `skew` makes it apply another canary weight than the one
written (as a gateway with its own ideas would), and every call is logged in `calls` so a test
can assert "one write, zero reads"; `lose_answers` makes the next writes succeed while one of
their attempts lost its answer (as a timed-out request that a retry repeated), so the write may
still land a second time later. Backend-specific behaviour (ids, bodies, retries) belongs
to each backend's own tests against its emulator.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from canaryctl.gateway.base import GatewayError
from canaryctl.gateway.model import AppSpec, AppState
from canaryctl.gateway.outcomes import note_unknown_outcome


class MemoryGateway:
    """Applications by name, as a perfect (or deliberately imperfect) gateway holds them."""

    name = "memory"  # expresses every match with any weight (see canaryctl.matching)

    def __init__(self, apps: dict[str, AppState] | None = None):
        self.apps: dict[str, AppState] = dict(apps or {})
        self.calls: list[tuple[str, str]] = []  # (list | read | apply | delete, app name)
        self.fail_next: list[GatewayError] = []  # raised by the next calls, one each
        self.skew: dict[str, int] = {}  # app -> the canary weight actually applied
        self.lose_answers = 0  # next writes: an attempt lost its answer (outcome unknown)
        self._lock = threading.Lock()

    def list_apps(self) -> dict[str, AppState]:
        self._call("list", "*")
        with self._lock:
            return dict(self.apps)

    def read_app(self, name: str) -> AppState | None:
        self._call("read", name)
        with self._lock:
            return self.apps.get(name)

    def apply(self, current: AppState | None, desired: AppSpec) -> AppState:
        self._call("apply", desired.name)
        weight = self.skew.get(desired.name, desired.weight) if desired.canary else 0
        state = AppState(
            desired.name, True, desired.stable, desired.canary, weight, owner=desired.owner
        )
        with self._lock:
            self.apps[desired.name] = state
        return replace(state, weight=desired.weight if desired.canary else 0)

    def delete(self, current: AppState) -> None:
        self._call("delete", current.name)
        with self._lock:
            self.apps.pop(current.name, None)

    def writes(self) -> list[tuple[str, str]]:
        return [call for call in self.calls if call[0] in ("apply", "delete")]

    def _call(self, verb: str, name: str) -> None:
        with self._lock:
            self.calls.append((verb, name))
            failure = self.fail_next.pop(0) if self.fail_next else None
            lost = verb in ("apply", "delete") and self.lose_answers > 0
            self.lose_answers -= lost
        if lost:
            note_unknown_outcome()
        if failure is not None:
            raise failure

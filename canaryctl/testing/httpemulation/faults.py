"""Injected failures of an emulated API, so tests can prove a client survives a bad gateway.

Shared by every emulator: this module only decides *whether* and *how* a request fails;
each emulator renders the failure in its own service's words. A fault applies to requests
whose method and path (without query) match its fnmatch patterns. It fires always, with a
`probability`, and/or only `times` times (then it is gone). Kinds:

- `status`: answer `status` instead (body in the emulated service's error format);
- `retry_after`: answer 429 with header `Retry-After: <retry_after>`;
- `latency`: wait `latency_ms` first, then serve normally (latencies of all firing faults add up);
- `drop`: close the connection without any response.

Faults are checked in the order they were added; the first firing fault that answers
(status, retry_after, drop) wins; faults after it are not consulted and keep their counts.
Probabilities draw from one `random.Random(seed)`, so a seeded run is reproducible.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import random
import threading
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = ("status", "retry_after", "latency", "drop")


@dataclass
class Fault:
    """One injected failure rule; `fired` counts how often it applied."""

    id: str
    kind: str
    method: str = "*"
    path: str = "*"
    status: int = 503
    probability: float | None = None
    times: int | None = None
    retry_after: int = 1
    latency_ms: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return fnmatch.fnmatchcase(method.upper(), self.method.upper()) and fnmatch.fnmatchcase(
            path, self.path
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(fault: Fault) -> Fault:
    """The fault itself when well-formed, else ValueError naming the bad field."""
    _check(fault.kind in FAULT_KINDS, f"kind must be one of {', '.join(FAULT_KINDS)}")
    _check(
        isinstance(fault.method, str) and isinstance(fault.path, str),
        "method and path must be strings",
    )
    _check(
        _is_int(fault.status) and 100 <= fault.status <= 599, "status must be an HTTP status code"
    )
    _check(
        fault.probability is None
        or (
            isinstance(fault.probability, (int, float))
            and not isinstance(fault.probability, bool)
            and 0.0 <= fault.probability <= 1.0
        ),
        "probability must be within 0-1",
    )
    _check(
        fault.times is None or (_is_int(fault.times) and fault.times >= 1),
        "times must be a positive integer",
    )
    _check(
        _is_int(fault.retry_after) and fault.retry_after >= 0,
        "retry_after must be a non-negative integer",
    )
    _check(
        _is_int(fault.latency_ms) and fault.latency_ms >= 0,
        "latency_ms must be a non-negative integer",
    )
    return fault


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one request: wait `latency_ms`, then answer with `action` (if any)."""

    latency_ms: int = 0
    action: Fault | None = None


class FaultSet:
    """The active faults of one emulator. Thread-safe."""

    def __init__(self, seed: int | None = None):
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._ids = itertools.count(1)
        self._faults: list[Fault] = []

    def add(self, kind: str, **fields: Any) -> str:
        """Add a fault (fields as in `Fault`); returns its id. ValueError when malformed."""
        settable = {f.name for f in dataclasses.fields(Fault)} - {"id", "kind", "fired"}
        unknown = set(fields) - settable
        _check(not unknown, f"unknown fault fields: {', '.join(sorted(unknown))}")
        with self._lock:
            fault = validate(Fault(id=str(next(self._ids)), kind=kind, **fields))
            self._faults.append(fault)
            return fault.id

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [fault for fault in self._faults if fault.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> int:
        with self._lock:
            count, self._faults = len(self._faults), []
            return count

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_dict() for fault in self._faults]

    def decide(self, method: str, path: str) -> FaultDecision:
        """Fire the faults that apply to this request and say what to do."""
        latency_ms, action = 0, None
        with self._lock:
            for fault in list(self._faults):
                answers = fault.kind != "latency"
                if (
                    (answers and action is not None)
                    or not fault.matches(method, path)
                    or not self._fires(fault)
                ):
                    continue
                self._count_firing(fault)
                if answers:
                    action = dataclasses.replace(fault)
                else:
                    latency_ms += fault.latency_ms
        return FaultDecision(latency_ms, action)

    def _fires(self, fault: Fault) -> bool:
        return fault.probability is None or self._random.random() < fault.probability

    def _count_firing(self, fault: Fault) -> None:
        fault.fired += 1
        if fault.times is not None and fault.fired >= fault.times:
            self._faults.remove(fault)

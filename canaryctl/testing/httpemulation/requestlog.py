"""The API calls an emulator received, so tests can count gateway calls per change.

Shared by every emulator. Control calls (`/_emulator/...`) are not recorded. A dropped
connection is recorded with status 0. The User-Agent is kept so a test can tell which
controller replica made a call (canaryctl puts its replica identity there).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # without the query string
    status: int  # 0 when the connection was dropped by a fault
    time: float  # time.time() when the answer was sent
    query: str = ""
    user_agent: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """Append-only list of RequestRecord. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def record(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

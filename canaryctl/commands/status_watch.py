"""`canaryctl status --watch`: the status table kept live from a watch on Services.

The same list-then-watch loop the controller runs (`ServiceInformer`) mirrors the Services
into a local cache; every change the watch brings redraws the output, and nothing polls the
API server. Output:

- table (default): on a terminal the screen is redrawn in place, with a progress line per
  progressing release — a bar over its whole schedule, `step k of n`, and the time left until
  the step's next check (recounted every second from the cached state, not re-read); when
  output is not a terminal (a pipe, a file) the table is printed again after each change,
  followed by a blank line.
- `-o json`: JSON Lines, one object per changed row: `{"type": "ADDED"|"MODIFIED"|"DELETED",
  "row": {...}}` (the row as `status -o json` prints it).
- `-o yaml`: the same events, each a YAML document started with `---`.

Ctrl-C (or SIGTERM) stops it with exit code 0.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from canaryctl.annotations import STATUS
from canaryctl.cache import ServiceStore
from canaryctl.commands.status import Row, format_table, row_to_dict, rows_of
from canaryctl.informer import ServiceInformer
from canaryctl.objects import Service
from canaryctl.release import decide
from canaryctl.release.config import ReleaseConfig, parse_release
from canaryctl.status import MemberStatus
from canaryctl.yamlout import dump_all

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
BAR_WIDTH = 20
TICK_SECONDS = 1.0


def watch(api, namespace: str | None, output: str, out: TextIO = sys.stdout) -> int:
    """Follow the Services of `namespace` (None: all) until interrupted."""
    changed = threading.Event()
    store = ServiceStore()
    informer = ServiceInformer(
        api, store, lambda old, new: changed.set(), None if namespace is None else [namespace]
    )
    stop = threading.Event()
    previous = _on_sigterm(stop.set)
    informer.start()
    try:
        _loop(store, informer, changed, stop, _writer(output, out))
    except KeyboardInterrupt:
        pass
    finally:
        informer.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _on_sigterm(handler: Callable[[], None]) -> Any:
    """Call `handler` on SIGTERM; the previous handler, or None off the main thread."""
    try:
        return signal.signal(signal.SIGTERM, lambda *_: handler())
    except ValueError:  # signals can only be handled on the main thread
        return None


def _loop(store, informer, changed, stop, write: Callable[[list[Service], bool], None]) -> None:
    informer.wait_for_sync()
    changed.set()
    while not stop.is_set():
        if changed.wait(TICK_SECONDS):
            changed.clear()
            write(store.list(), True)
        else:
            write(store.list(), False)  # a tick: only countdowns move


def _writer(output: str, out: TextIO) -> Callable[[list[Service], bool], None]:
    if output in ("json", "yaml"):
        return _EventWriter(output, out)
    return _TableWriter(out, out.isatty())


class _TableWriter:
    """Redraws the table: in place on a terminal (also every tick), else once per change."""

    def __init__(self, out: TextIO, terminal: bool):
        self.out, self.terminal = out, terminal

    def __call__(self, services: list[Service], changed: bool) -> None:
        if not changed and not self.terminal:
            return
        now = datetime.now(UTC)
        rows = rows_of(services)
        text = format_table(rows, now) if rows else f"No Services with a {STATUS} annotation."
        progress = progress_lines(rows, {s.key: s for s in services}, now)
        body = "\n".join([text, *progress])
        self.out.write((CLEAR + body + "\n") if self.terminal else body + "\n\n")
        self.out.flush()


class _EventWriter:
    """Writes the rows that changed since the last call, as JSON Lines or YAML documents."""

    def __init__(self, output: str, out: TextIO):
        self.output, self.out = output, out
        self.shown: dict[tuple[str, str, str], dict[str, Any]] = {}

    def __call__(self, services: list[Service], changed: bool) -> None:
        if not changed:
            return
        events = row_events(self.shown, rows_of(services))
        if not events:
            return
        if self.output == "json":
            text = "".join(json.dumps(event, separators=(",", ":")) + "\n" for event in events)
        else:
            text = dump_all(events)
        self.out.write(text)
        self.out.flush()


def row_events(
    shown: dict[tuple[str, str, str], dict[str, Any]], rows: Iterable[Row]
) -> list[dict[str, Any]]:
    """ADDED/MODIFIED/DELETED events turning `shown` into `rows` (and update `shown`)."""
    current = {(row.namespace, row.app, row.canary or ""): row_to_dict(row) for row in rows}
    events = [
        {"type": "DELETED", "row": shown.pop(key)} for key in sorted(set(shown) - set(current))
    ]
    for key, row in sorted(current.items()):
        if shown.get(key) != row:
            events.append({"type": "MODIFIED" if key in shown else "ADDED", "row": row})
            shown[key] = row
    return events


def progress_lines(rows: Iterable[Row], services: dict[str, Service], now: datetime) -> list[str]:
    """One line per progressing release: bar, step k of n, time left until the next check."""
    lines = []
    for row in rows:
        canary = services.get(row.canary or "")
        if row.phase != "Progressing" or canary is None:
            continue
        line = progress_line(canary, now)
        if line:
            lines.append(f"  {canary.key}  {line}")
    return lines


def progress_line(canary: Service, now: datetime) -> str | None:
    """`[#######.............] step 2 of 3 at 50%, next check in 7s`, or None when unknown."""
    config = parse_release(canary)
    status = MemberStatus.parse(canary.annotations.get(STATUS))
    release = status.release if status else None
    if not isinstance(config, ReleaseConfig) or release is None:
        return None
    count = len(config.steps)
    left = decide.check_due(config, release, now)
    if left is None:
        return None
    elapsed = max(0.0, min(1.0, 1 - left / config.interval_s))
    done = (min(release.step, count - 1) + elapsed) / count
    filled = round(done * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return (
        f"[{bar}] step {release.step + 1} of {count} at {release.weight}%, "
        f"next check in {left:.0f}s"
    )

"""Structured logging for the controller: one JSON object (or one text line) per record.

Fields passed with `extra=` (app, reason, key, ...) become JSON keys. Many values come from
annotations users typed, so the message and every field are cut to `MAX_FIELD` characters (and
say so): one odd Service must not turn into megabyte log lines. Nothing here knows about
tokens: callers never log them, and the gateway client's repr hides its own.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
MAX_FIELD = 2048  # characters of a message or a field; a traceback is left whole


def _cut(value: object) -> object:
    if not isinstance(value, str) or len(value) <= MAX_FIELD:
        return value
    return f"{value[:MAX_FIELD]}... ({len(value) - MAX_FIELD} more characters cut)"


def _extra(record: logging.LogRecord) -> dict[str, object]:
    return {k: _cut(v) for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _cut(record.getMessage()),
        }
        entry.update(_extra(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _extra(record).items())
        line = super().format(record)
        message = record.getMessage()
        if len(message) > MAX_FIELD:
            line = line.replace(message, str(_cut(message)), 1)
        return f"{line} {extra}" if extra else line


def setup(fmt: str = "text", level: str = "info") -> None:
    """Route the root logger to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

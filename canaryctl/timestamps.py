"""The one time format canaryctl writes: whole UTC seconds, `2024-06-01T12:00:05Z`.

Kubernetes writes its own timestamps this way (Events, conditions), and so do the status
annotation and the persisted release state; one helper keeps every writer and reader agreeing.
"""

from __future__ import annotations

from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_utc(moment: datetime) -> str:
    """`moment` (timezone-aware) in UTC, to the second."""
    if moment.tzinfo is None:
        raise ValueError("timestamps need a timezone-aware time")
    return moment.astimezone(UTC).isoformat(timespec="seconds")[:-6] + "Z"  # "+00:00" -> "Z"


def parse_utc(text: str) -> datetime:
    """The aware UTC time `format_utc` wrote; ValueError (or TypeError) for anything else."""
    if not isinstance(text, str):
        raise TypeError(f"expected a timestamp string, got {type(text).__name__}")
    # the exact shape first (fromisoformat alone accepts offsets, fractions, spaces ...);
    # then the C parser, about 20 times cheaper than strptime on every status read
    if len(text) != 20 or text[10] != "T" or text[19] != "Z" or not text[:19].isascii():
        raise ValueError(f"not a {FORMAT} timestamp: {text[:40]!r}")
    return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)

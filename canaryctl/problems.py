"""Invalid input, phrased for people: every problem names the annotation, the value and what
would be accepted instead. Every parser of user input returns `Invalid` rather than raising."""

from __future__ import annotations

import json
from dataclasses import dataclass

_SHOWN_VALUE_LIMIT = 80


@dataclass(frozen=True)
class Problem:
    """One invalid input on a Service, phrased for a Warning Event."""

    annotation: str
    value: str | None  # None: the annotation is not set
    accepted: str  # what would be accepted instead, completing "accepted values are ..."
    reason: str = ""  # why the value does not fit this Service, when the value is not the issue

    @property
    def message(self) -> str:
        shown = " is not set" if self.value is None else f"={_quote(self.value)} is invalid"
        why = f" ({self.reason})" if self.reason else ""
        return f"annotation {self.annotation}{shown}{why}: accepted values are {self.accepted}"


@dataclass(frozen=True)
class Invalid:
    """The result of parsing input that has problems: every one of them, nothing else."""

    problems: tuple[Problem, ...]

    @property
    def message(self) -> str:
        return "; ".join(problem.message for problem in self.problems)


def _quote(value: str) -> str:
    """A value as it appears in messages: JSON-quoted (control characters escaped) and bounded."""
    shown = value if len(value) <= _SHOWN_VALUE_LIMIT else value[:_SHOWN_VALUE_LIMIT] + "..."
    return json.dumps(shown, ensure_ascii=False)

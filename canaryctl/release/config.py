"""Read a canary Service's release-automation annotations, or say exactly what is wrong.

Automation is opt-in: a Service asks canaryctl to run its release by carrying
`api7.cloud/canary-steps`; every other `canary-*` setting has a default. As with the seed's
annotations (`canaryctl.annotations`), values are typed by hand, so every value is checked
and every mistake is reported at once, naming the annotation, the value and what is
accepted. Parsing is pure and never raises.

Decisions where the brief is silent:
- The schedule always ends at 100 %: it is appended when not listed. Reaching 100 % ends
  the release as succeeded; there is no analysis at 100 % (the stable then gets no traffic
  to compare with).
- Durations are Go-style (`30s`, `1m30s`, `500ms`, `1.5m`); a step interval is 1 s-24 h.
- Percentages may carry a trailing `%` (`1%` is read as 1).
- `canary-action` is `VERB` or `VERB@STAMP`. The controller acts once per distinct value, so
  repeating an action means writing a new stamp (`canaryctl retry` does that itself).
- `canary-compare: statistical` tests the canary against the stable (see
  `canaryctl.release.statistics`): `canary-confidence` is a fraction 0.8-0.999 or a percentage
  with `%` (`95%`); `canary-min-effect` is in percentage points of requests, above 0.
- An unknown `api7.cloud/canary-*` annotation is a problem even without `canary-steps`: a
  typo such as `canary-stpes` would otherwise silently leave the release manual.
- The observed split is judged by default (`canary-split-tolerance: 5` percentage points;
  `off` turns it off); a mismatch warns unless `canary-on-split-mismatch: hold`.
- Hook and gate URLs (`canary-pre-hook`, `canary-step-hook`, `canary-promote-gate`,
  `canary-rollback-hook`) are http(s) URLs with a host and nothing that looks like a secret
  (no `user:password@`); they are shown in Events and statuses. `canary-hook-timeout` bounds
  each call, retries included: 100 ms to 60 s, 10 s by default.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from canaryctl.annotations import PREFIX, STATUS, Invalid, Problem, parse_percent
from canaryctl.objects import Service

STEPS = PREFIX + "canary-steps"
STEP_INTERVAL = PREFIX + "canary-step-interval"
MAX_ERROR_RATE = PREFIX + "canary-max-error-rate"
MAX_LATENCY_P99 = PREFIX + "canary-max-latency-p99"
COMPARE = PREFIX + "canary-compare"
ERROR_RATE_MARGIN = PREFIX + "canary-error-rate-margin"
LATENCY_RATIO = PREFIX + "canary-latency-ratio"
MIN_REQUESTS = PREFIX + "canary-min-requests"
FAILURE_LIMIT = PREFIX + "canary-failure-limit"
ERROR_LIMIT = PREFIX + "canary-error-limit"
NODATA_LIMIT = PREFIX + "canary-nodata-limit"
CONFIDENCE = PREFIX + "canary-confidence"
MIN_EFFECT = PREFIX + "canary-min-effect"
ON_FAILURE = PREFIX + "canary-on-failure"
ACTION = PREFIX + "canary-action"
NOTIFY = PREFIX + "canary-notify"  # webhook channel names: read by canaryctl.notify, not here
MATCH = PREFIX + "canary-match"  # the canary's request predicate: read by canaryctl.matching
SPLIT_TOLERANCE = PREFIX + "canary-split-tolerance"
ON_SPLIT_MISMATCH = PREFIX + "canary-on-split-mismatch"
PRE_HOOK = PREFIX + "canary-pre-hook"
STEP_HOOK = PREFIX + "canary-step-hook"
PROMOTE_GATE = PREFIX + "canary-promote-gate"
ROLLBACK_HOOK = PREFIX + "canary-rollback-hook"
HOOK_TIMEOUT = PREFIX + "canary-hook-timeout"

# every release annotation; STATUS shares the `canary-` prefix but is canaryctl's output
RELEASE_ANNOTATIONS = (
    STEPS,
    STEP_INTERVAL,
    MAX_ERROR_RATE,
    MAX_LATENCY_P99,
    COMPARE,
    ERROR_RATE_MARGIN,
    LATENCY_RATIO,
    MIN_REQUESTS,
    FAILURE_LIMIT,
    ERROR_LIMIT,
    NODATA_LIMIT,
    ON_FAILURE,
    ACTION,
    CONFIDENCE,
    MIN_EFFECT,
    SPLIT_TOLERANCE,
    ON_SPLIT_MISMATCH,
    PRE_HOOK,
    STEP_HOOK,
    PROMOTE_GATE,
    ROLLBACK_HOOK,
    HOOK_TIMEOUT,
)
_CANARY_PREFIX = PREFIX + "canary-"

VERBS = ("promote", "abort", "pause", "resume", "retry")
Verb = Literal["promote", "abort", "pause", "resume", "retry"]
Compare = Literal["absolute", "stable", "statistical"]
OnFailure = Literal["rollback", "pause"]
OnSplitMismatch = Literal["warn", "hold"]

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", re.ASCII)
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+", re.ASCII)
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,10}", re.ASCII)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_STAMP = re.compile(r"[A-Za-z0-9._:+-]{1,64}", re.ASCII)
_DAY_S = 86400.0
_MAX_URL = 2048
_OFF = "off"
T = TypeVar("T", int, float)  # a parsed number


@dataclass(frozen=True)
class Action:
    """A manual command: `verb`, and the annotation's whole value (identifying this request)."""

    verb: Verb
    value: str


@dataclass(frozen=True)
class ReleaseConfig:
    """How canaryctl runs one canary's release. Percentages are 0-100, times in s/ms."""

    steps: tuple[int, ...]  # strictly increasing canary weights, always ending with 100
    interval_s: float = 60.0
    max_error_rate: float = 1.0  # percent of the canary's requests answered 5xx
    max_latency_p99_ms: float | None = 500.0  # None: latency is not judged
    compare: Compare = "absolute"
    error_rate_margin: float = (
        1.0  # percentage points above the stable's error rate (compare=stable)
    )
    latency_ratio: float = 1.5  # times the stable's p99 (compare=stable)
    min_requests: int = 20
    failure_limit: int = 2
    error_limit: int = 5
    nodata_limit: int = 5
    on_failure: OnFailure = "rollback"
    action: Action | None = None
    confidence: float = 0.95  # compare=statistical: 1 - the test's significance level
    min_effect: float = 1.0  # compare=statistical: points of bad requests worth failing for
    split_tolerance: float | None = 5.0  # points the observed canary share may be off; None: off
    on_split_mismatch: OnSplitMismatch = "warn"  # hold: a step is not left while it is off
    pre_hook: str | None = None  # asked before the first step; no aborts the release at 0 %
    step_hook: str | None = None  # asked at every check; counts as part of the check
    promote_gate: str | None = None  # must say yes before 100 %; no holds at the last step
    rollback_hook: str | None = None  # told after a rollback or abort, without waiting
    hook_timeout_s: float = 10.0  # each hook call, retries included


def parse_release(service: Service) -> ReleaseConfig | Invalid | None:
    """The Service's release settings; None when it does not ask for automation."""
    annotations = service.annotations
    problems = [
        _unknown(name, annotations[name]) for name in sorted(annotations) if _is_unknown(name)
    ]
    fields: dict[str, Any] = {}  # typed by each parser in _FIELDS
    for annotation, field, parse, accepted in _FIELDS:
        raw = annotations.get(annotation)
        if raw is None:
            continue
        parsed = parse(raw.strip())
        if parsed is None:
            problems.append(Problem(annotation, raw, accepted))
        else:
            fields[field] = None if parsed == _OFF else parsed
    steps = fields.get("steps")
    if isinstance(steps, tuple) and steps[0] == 0 and MATCH not in annotations:
        why = f"a match stage needs {MATCH} on the canary"
        problems.append(Problem(STEPS, annotations[STEPS], _STEPS, reason=why))
    if problems:
        return Invalid(tuple(problems))
    return ReleaseConfig(**fields) if "steps" in fields else None


def _is_unknown(name: str) -> bool:
    known = name in RELEASE_ANNOTATIONS or name in (STATUS, NOTIFY, MATCH)
    return name.startswith(_CANARY_PREFIX) and not known


def _unknown(name: str, value: str) -> Problem:
    guess = difflib.get_close_matches(name, RELEASE_ANNOTATIONS, n=1)
    hint = (
        f"did you mean {guess[0]}?"
        if guess
        else "the release annotations are " + ", ".join(RELEASE_ANNOTATIONS)
    )
    return Problem(name, value, f"none ({hint})", reason="not a canaryctl annotation")


# --- value parsers: each returns the parsed value, or None when the value is invalid ----------


def parse_steps(text: str) -> tuple[int, ...] | None:
    """ "5,10,25" -> (5, 10, 25, 100): strictly increasing integers 1-100, 100 appended if
    missing; a first step `match` is a match-only stage at 0 % ("match,10" -> (0, 10, 100))."""
    steps: list[int] = []
    for index, part in enumerate(text.split(",")):
        if index == 0 and part.strip().lower() == MATCH_STAGE:
            steps.append(0)
            continue
        step = parse_percent(part)
        if step is None or step < 1 or (steps and step <= steps[-1]):
            return None
        steps.append(step)
    if steps[-1] != 100:
        steps.append(100)
    return tuple(steps)


def parse_duration_s(text: str) -> float | None:
    """Seconds in a Go-style duration ("1m30s" -> 90.0, "500ms" -> 0.5); None if malformed."""
    if not _DURATION.fullmatch(text):
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))


def _within(parse: Callable[[str], T | None], low: float, high: float) -> Callable[[str], T | None]:
    def parse_within(text: str) -> T | None:
        value = parse(text)
        return value if value is not None and low <= value <= high else None

    return parse_within


def _decimal(text: str) -> float | None:
    text = text.removesuffix("%").rstrip()
    return float(text) if _DECIMAL.fullmatch(text) else None


def _confidence(text: str) -> float | None:
    """ "0.95" or "95%" -> 0.95, when within 0.8-0.999."""
    percent = text.endswith("%")
    value = _decimal(text)
    if value is not None and percent:
        value /= 100
    return value if value is not None and 0.8 <= value <= 0.999 else None


def _integer(text: str) -> int | None:
    return int(text) if _DIGITS.fullmatch(text) else None


def _latency_ms(text: str) -> float | str | None:
    if text.lower() == _OFF:
        return _OFF
    seconds = parse_duration_s(text)
    return seconds * 1000 if seconds is not None and 0 < seconds <= 3600 else None


def parse_hook_url(text: str) -> str | None:
    """An http(s) URL with a host, no credentials, no fragment; None when it is not one."""
    if not text or len(text) > _MAX_URL or any(ch.isspace() or not ch.isprintable() for ch in text):
        return None
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # a port that is not a number, an unbalanced [ipv6
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        return None
    if parts.username is not None or parts.password is not None or "#" in text:
        return None
    return text


def _hook_timeout_s(text: str) -> float | None:
    seconds = parse_duration_s(text)
    return seconds if seconds is not None and 0.1 <= seconds <= 60 else None


def _split_tolerance(text: str) -> float | str | None:
    if text.lower() == _OFF:
        return _OFF
    return _within(_decimal, 0.1, 100)(text)


def _choice(*choices: str) -> Callable[[str], str | None]:
    def parse_choice(text: str) -> str | None:
        return text.lower() if text.lower() in choices else None

    return parse_choice


def parse_action(text: str) -> Action | None:
    """ "pause" or "pause@STAMP" -> Action; None when the verb is unknown or the stamp malformed."""
    verb, sep, stamp = text.partition("@")
    verb = verb.strip().lower()
    if verb not in VERBS or (sep and not _STAMP.fullmatch(stamp)):
        return None
    return Action(verb, text)  # type: ignore[arg-type]  # checked against VERBS above


_INTERVAL = 'durations from 1s to 24h, e.g. "30s" or "1m30s"'
_HOOK = (
    "http:// or https:// URLs with a host, without user:password@ or #fragment, up to 2048 "
    'characters, e.g. "http://checks.tools.svc:8080/canary"'
)
_LATENCY = 'durations above 0 up to 1h, e.g. "500ms" or "1.5s", or "off"'
_STEPS = (
    'strictly increasing integers 1-100 separated by commas, e.g. "5,10,25,50,100", optionally '
    'after a first match-only stage, e.g. "match,10,30,60"'
)
MATCH_STAGE = "match"
_FIELDS: tuple[
    tuple[str, str, Callable[[str], object], str], ...
] = (  # annotation, field, parser, accepted
    (STEPS, "steps", parse_steps, _STEPS),
    (STEP_INTERVAL, "interval_s", _within(parse_duration_s, 1, _DAY_S), _INTERVAL),
    (
        MAX_ERROR_RATE,
        "max_error_rate",
        _within(_decimal, 0, 100),
        'percentages 0-100, e.g. "1" or "0.5"',
    ),
    (MAX_LATENCY_P99, "max_latency_p99_ms", _latency_ms, _LATENCY),
    (
        COMPARE,
        "compare",
        _choice("absolute", "stable", "statistical"),
        "absolute, stable or statistical",
    ),
    (
        ERROR_RATE_MARGIN,
        "error_rate_margin",
        _within(_decimal, 0, 100),
        'percentage points 0-100, e.g. "1"',
    ),
    (
        LATENCY_RATIO,
        "latency_ratio",
        _within(_decimal, 1, 100),
        'numbers from 1 to 100, e.g. "1.5"',
    ),
    (
        MIN_REQUESTS,
        "min_requests",
        _within(_integer, 1, 1_000_000_000),
        "integers from 1 to 1000000000",
    ),
    (FAILURE_LIMIT, "failure_limit", _within(_integer, 1, 1000), "integers 1-1000"),
    (ERROR_LIMIT, "error_limit", _within(_integer, 1, 1000), "integers 1-1000"),
    (NODATA_LIMIT, "nodata_limit", _within(_integer, 1, 1000), "integers 1-1000"),
    (
        CONFIDENCE,
        "confidence",
        _confidence,
        'fractions from 0.8 to 0.999 or percentages with %, e.g. "0.95" or "99%"',
    ),
    (
        MIN_EFFECT,
        "min_effect",
        _within(_decimal, 0.01, 100),
        'percentage points from 0.01 to 100, e.g. "1" or "0.5"',
    ),
    (ON_FAILURE, "on_failure", _choice("rollback", "pause"), "rollback or pause"),
    (
        ACTION,
        "action",
        parse_action,
        "promote, abort, pause, resume or retry, optionally followed by @STAMP",
    ),
    (
        SPLIT_TOLERANCE,
        "split_tolerance",
        _split_tolerance,
        'percentage points from 0.1 to 100, e.g. "5", or "off"',
    ),
    (ON_SPLIT_MISMATCH, "on_split_mismatch", _choice("warn", "hold"), "warn or hold"),
    (PRE_HOOK, "pre_hook", parse_hook_url, _HOOK),
    (STEP_HOOK, "step_hook", parse_hook_url, _HOOK),
    (PROMOTE_GATE, "promote_gate", parse_hook_url, _HOOK),
    (ROLLBACK_HOOK, "rollback_hook", parse_hook_url, _HOOK),
    (
        HOOK_TIMEOUT,
        "hook_timeout_s",
        _hook_timeout_s,
        'durations from 100ms to 60s, e.g. "10s" or "2.5s"',
    ),
)

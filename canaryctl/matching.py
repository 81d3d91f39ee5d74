"""Predicate canaries: which requests always reach the canary, and which gateways can say so.

A canary Service may carry `api7.cloud/canary-match`: terms joined by commas, all of which must
hold for a request to go to the canary whatever its weight (so a team can send its testers, a
beta cohort or one region first). Each term is `KIND:NAME=VALUE` (exact) or `KIND:NAME~REGEX`
(a regular expression, searched in the value), KIND one of `header`, `cookie`, `query`:

    header:X-Canary=always
    cookie:beta=1,query:region~^eu-

Header names are case-insensitive and kept in lower case. Regular expressions must be RE2
compatible (no look-around, no back-references): every gateway evaluates them its own way, and
RE2 is what they share. A comma inside a value is written `\\,` (so a value cannot end with a
backslash).

Each backend expresses the match natively, or says plainly that it cannot: `unsupported()` is
the one table of what each gateway lacks, so the decision can hold with a Warning instead of
approximating.
"""

from __future__ import annotations

import re
from typing import Literal

from canaryctl.gateway.model import MatchTerm
from canaryctl.problems import Invalid, Problem

MATCH = "api7.cloud/canary-match"
Kind = Literal["header", "cookie", "query"]
KINDS: tuple[Kind, ...] = ("header", "cookie", "query")
ACCEPTED = (
    "terms KIND:NAME=VALUE (exact) or KIND:NAME~REGEX (RE2 regular expression), KIND one of "
    "header, cookie, query, joined by commas; e.g. header:X-Canary=always,cookie:beta=1"
)
_TERM = re.compile(r"(header|cookie|query):([A-Za-z0-9!#$%&'*+.^_`|-]{1,128})(=|~)(.*)", re.S)
_SPLIT = re.compile(r"(?<!\\),")
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=")  # look-around and back-references
_MAX_VALUE = 256


Match = tuple[MatchTerm, ...]  # every term must hold; () means no predicate


def parse_match(text: str) -> Match | Invalid:
    """The terms of a `canary-match` value, or what is wrong with it."""
    terms = []
    for part in _SPLIT.split(text.strip()):
        term = _parse_term(part.strip().replace("\\,", ","))
        if term is None:
            return Invalid((Problem(MATCH, text, ACCEPTED),))
        terms.append(term)
    if len({(t.kind, t.name) for t in terms}) != len(terms):
        return Invalid((Problem(MATCH, text, ACCEPTED, reason="a name is tested twice"),))
    return tuple(terms)


def describe(match: Match) -> str:
    """The match as users wrote it (canonical form)."""
    return ",".join(str(term).replace(",", "\\,") for term in match)


def unsupported(backend: str, match: Match, weight: int) -> str:
    """Why `backend` cannot express `match` together with `weight` exactly ("" when it can)."""
    if not match:
        return ""
    if backend == "api7" and weight > 0:
        return (
            "API7 Cloud runs one canary release per application, by percentage or by rule, not "
            "both: a canary-match needs the canary's weight at 0 % there"
        )
    if backend == "apisix" and any(t.kind == "header" and "_" in t.name for t in match):
        return (
            "APISIX reads headers as nginx variables, where '-' and '_' are the same and headers "
            "with '_' are dropped by default: a header name with '_' cannot be matched exactly"
        )
    if backend == "gateway-api":
        if any(term.kind == "cookie" and term.regex for term in match):
            return (
                "Gateway API matches cookies only through the Cookie header: an exact cookie "
                "value can be expressed that way, a regular expression cannot"
            )
        if any(term.kind == "header" and term.name == "cookie" for term in match) and any(
            term.kind == "cookie" for term in match
        ):
            return "Gateway API cannot test the Cookie header twice in one match"
    return ""


def cookie_header_regex(term: MatchTerm) -> str:
    """A regular expression on the Cookie header that holds exactly when cookie `term` does."""
    return rf"(^|;\s*){re.escape(term.name)}={re.escape(term.value)}(;|$)"


def _parse_term(text: str) -> MatchTerm | None:
    found = _TERM.fullmatch(text)
    if found is None:
        return None
    kind, name, operator, value = found.groups()
    if not value or len(value) > _MAX_VALUE or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    if value.endswith("\\"):  # ambiguous before a separating comma
        return None
    regex = operator == "~"
    if regex and not _valid_regex(value):
        return None
    return MatchTerm(kind, name.lower() if kind == "header" else name, value, regex)  # type: ignore[arg-type]


def _valid_regex(pattern: str) -> bool:
    if _NOT_RE2.search(pattern):
        return False
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True

"""`vars` expressions as APISIX evaluates them (api7/lua-resty-expr `lib/resty/expr/v1.lua`).

Route `vars` and traffic-split `match[].vars` are lists of `[var, op, value]` (or
`[var, "!", op, value]`), all of which must hold; a list may also start with a logical
operator (`AND`, `OR`, `!AND`, `!OR`) and nest. `compile` refuses what `expr.new` refuses,
with its messages; `evaluate` follows its comparison rules:

- `==` / `~=` compare as strings unless the right side is a number (then the variable is
  converted; a non-number variable is unequal);
- `>`, `>=`, `<`, `<=` convert both sides to numbers and are false when either is not one;
- `~~` / `~*` are a (case-insensitive) regex search, false when the variable is missing;
- `in`: the variable equals an element of the right-side list (no conversion);
- `has`: the variable is a list containing the right side (never true for plain variables);
- `ipmatch`: the variable is an IP inside one of the listed addresses or CIDRs;
- `!` negates the operator next to it. An empty list always holds.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LOGICAL = ("AND", "OR", "!AND", "!OR")


class ExprError(ValueError):
    """An expression `expr.new` would refuse; the message is lua-resty-expr's."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
    except ValueError:
        return None


def _equal(left: Any, right: Any) -> bool:
    if isinstance(right, int | float) and not isinstance(right, bool):
        number = _number(left)
        return number is not None and number == right
    return type(left) is type(right) and left == right


def _ordered(test: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        a, b = _number(left), _number(right)
        return a is not None and b is not None and test(a, b)

    return compare


def _regex(flags: int) -> Callable[[Any, Any], bool]:
    def search(left: Any, right: Any) -> bool:
        return isinstance(left, str) and re.search(str(right), left, flags) is not None

    return search


def _ip_match(left: Any, right: Any) -> bool:
    networks = right if isinstance(right, list) else [right]
    try:
        address = ipaddress.ip_address(str(left))
        return any(address in ipaddress.ip_network(str(n), strict=False) for n in networks)
    except ValueError:
        return False


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": _equal,
    "~=": lambda left, right: not _equal(left, right),
    ">": _ordered(lambda a, b: a > b),
    ">=": _ordered(lambda a, b: a >= b),
    "<": _ordered(lambda a, b: a < b),
    "<=": _ordered(lambda a, b: a <= b),
    "~~": _regex(0),
    "~*": _regex(re.IGNORECASE),
    "in": lambda left, right: isinstance(right, list) and any(_same(v, left) for v in right),
    "has": lambda left, right: isinstance(left, list) and any(_same(v, right) for v in left),
    "ipmatch": _ip_match,
}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class Comparison:
    var: str
    op: str
    value: Any
    negated: bool

    def holds(self, variables: Mapping[str, Any]) -> bool:
        return COMPARE[self.op](variables.get(self.var), self.value) != self.negated


@dataclass(frozen=True)
class Logical:
    op: str  # one of LOGICAL
    parts: tuple[Comparison | Logical, ...]

    def holds(self, variables: Mapping[str, Any]) -> bool:
        combine = all if self.op.endswith("AND") else any
        result = combine(part.holds(variables) for part in self.parts)
        return not result if self.op.startswith("!") else result


def _compile_comparison(rule: list[Any]) -> Comparison:
    negated = len(rule) == 4
    if negated and rule[1] != "!":
        raise ExprError("bad 'not' expression")
    var, op, value = (rule[0], rule[2], rule[3]) if negated else [*rule, None, None][:3]
    op = op.lower() if isinstance(op, str) else op
    if value is None and op not in COMPARE:  # ["var", "value"] means equality
        op, value = "==", op
        if value is None:
            raise ExprError("invalid expression")
    if var is None or op is None:
        raise ExprError("invalid expression")
    if op not in COMPARE:
        raise ExprError(f"invalid operator '{op}'")
    return Comparison(var, op, value, negated)


def _compile(rule: list[Any]) -> Comparison | Logical:
    if len(rule) == 0:
        raise ExprError("rule too short")
    if isinstance(rule[0], list):
        return Logical("AND", tuple(_compile_part(part) for part in rule))
    if isinstance(rule[0], str) and rule[0].upper() in LOGICAL:
        if len(rule) <= 2:
            raise ExprError("rule too short")
        return Logical(rule[0].upper(), tuple(_compile_part(part) for part in rule[1:]))
    return _compile_comparison(rule)


def _compile_part(part: Any) -> Comparison | Logical:
    if not isinstance(part, list):
        raise ExprError("rule too short")
    return _compile(part)


def compile_vars(rule: Any) -> Comparison | Logical | None:
    """The compiled expression (None: the empty list, which always holds); ExprError else."""
    if rule is None:
        raise ExprError("missing argument rule")
    if not isinstance(rule, list) or len(rule) == 0:
        return None
    return _compile(rule)


def evaluate(rule: Any, variables: Mapping[str, Any]) -> bool:
    """Whether `rule` holds for the request `variables` (see `request_vars`)."""
    compiled = compile_vars(rule)
    return compiled is None or compiled.holds(variables)

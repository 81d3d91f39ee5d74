"""A tiny YAML emitter for canaryctl's own output (`status -o yaml`), so no YAML library is
needed at run time.

It writes only what `json` could write — dicts with string keys, lists, strings, numbers,
booleans and None — in block style, as kubectl's YAML looks. A string is written plain only
when it cannot be read back as anything else (no spaces, colons, quotes, leading digits, or
words such as `true`, `no`, `null`); every other string is double-quoted with JSON's escapes,
which YAML's double-quoted style reads the same way, plus escapes for the characters YAML
would treat as line breaks or refuse. `yaml.safe_load(dump(x)) == x` for every such `x`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*", re.ASCII)
_RESERVED = frozenset(
    {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf"}
)  # compared lowercased; YAML 1.1 readers take these (and case variants) as non-strings


def dump(data: Any) -> str:
    """`data` as a YAML document (one trailing newline)."""
    return "\n".join(_lines(data, 0)) + "\n"


def dump_all(documents: list[Any]) -> str:
    """Several documents, each started with `---`."""
    return "".join("---\n" + dump(document) for document in documents)


def _lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict) and value:
        lines = []
        for key, item in value.items():
            name = _scalar(str(key))
            if _is_block(item):
                lines.append(f"{pad}{name}:")
                lines += _lines(item, indent + 2)
            else:
                lines.append(f"{pad}{name}: {_scalar(item)}")
        return lines
    if isinstance(value, list) and value:
        lines = []
        for item in value:
            if _is_block(item):
                inner = _lines(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return lines
    return [pad + _scalar(value)]


def _is_block(value: Any) -> bool:
    return isinstance(value, (dict, list)) and bool(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, str):
        return _string(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    mantissa, e, exponent = repr(value).partition("e")  # YAML 1.1 floats need a dot
    return (mantissa if "." in mantissa else mantissa + ".0") + e + exponent


def _string(text: str) -> str:
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return "".join(_escaped(char) for char in json.dumps(text, ensure_ascii=False))


def _escaped(char: str) -> str:
    """JSON already escaped quotes, backslashes and C0 controls; escape what YAML also minds."""
    if char.isprintable() or char in "\t":
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

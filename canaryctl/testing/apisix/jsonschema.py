"""A JSON Schema checker that fails in the words APISIX's validator uses.

APISIX checks configuration with api7/jsonschema (`lib/jsonschema.lua`), which generates Lua
validators; clients see its messages verbatim inside `"invalid configuration: ..."`. A
client that is tested against the emulator must see the same text, so this module follows
that library, not the JSON Schema spec:

- checks run in its order: type, object (properties with their defaults, required,
  patternProperties, additionalProperties, min/maxProperties), array, string, number,
  enum, allOf, anyOf, oneOf, not; the first failure is the answer;
- a missing property with a `default` gets it, so stored values carry the defaults;
- types are named as Lua sees decoded JSON: objects and arrays are `table`, null is
  `userdata`; an empty object also counts as an array, as an empty Lua table does;
- `pattern` is a PCRE search (here Python `re.search`), printed with Lua's `%q` quoting.

Properties are checked in the order the schema lists them (Lua's table order is
unspecified, so with two bad fields APISIX may name either).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from typing import Any

Schema = dict[str, Any]


def lua_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "userdata"
    return "table"


def lua_quote(text: str) -> str:
    """Lua's `%q`: double quotes, with backslashes, quotes and newlines escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\\n")
    return f'"{escaped}"'


def lua_number(value: float) -> str:
    """How LuaJIT prints a number: integral values without a decimal point."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _is_array(value: Any) -> bool:
    return isinstance(value, list) or value == {}


_TYPE_TESTS = {
    "object": _is_object,
    "array": _is_array,
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: lua_type(v) == "number",
    "integer": lambda v: lua_type(v) == "number" and float(v).is_integer(),
    "null": lambda v: v is None,
}


def _check_type(schema: Schema, value: Any) -> str | None:
    wanted = schema.get("type")
    if wanted is None:
        return None
    if isinstance(wanted, list):
        if any(_TYPE_TESTS[t](value) for t in wanted):
            return None
        return f"wrong type: expected one of {', '.join(wanted)}, got {lua_type(value)}"
    if _TYPE_TESTS[wanted](value):
        return None
    return f"wrong type: expected {wanted}, got {lua_type(value)}"


def _check_properties(schema: Schema, value: dict[str, Any]) -> str | None:
    properties: dict[str, Schema] = schema.get("properties", {})
    required = list(schema.get("required", []))
    for name, subschema in properties.items():
        if name in value:
            error = check(subschema, value[name])
            if error:
                return f"property {lua_quote(name)} validation failed: {error}"
        elif name in required:
            return f"property {lua_quote(name)} is required"
        elif "default" in subschema:
            value[name] = copy.deepcopy(subschema["default"])
    for name in required:
        if name not in value:
            return f"property {lua_quote(name)} is required"
    return _check_other_keys(schema, value)


def _check_other_keys(schema: Schema, value: dict[str, Any]) -> str | None:
    properties = schema.get("properties", {})
    patterns: dict[str, Schema] = schema.get("patternProperties", {})
    closed = schema.get("additionalProperties", True) is False
    for name, item in value.items():
        matched = False
        for pattern, subschema in patterns.items():
            if re.search(pattern, name):
                error = check(subschema, item)
                if error:
                    return f"failed to validate {name} (matching {lua_quote(pattern)}): {error}"
                matched = True
        if closed and not matched and name not in properties:
            return f"additional properties forbidden, found {name}"
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        return f"expect object to have at least {schema['minProperties']} properties"
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        return f"expect object to have at most {schema['maxProperties']} properties"
    return None


def _check_array(schema: Schema, value: list[Any]) -> str | None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        return f"expect array to have at least {schema['minItems']} items"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return f"expect array to have at most {schema['maxItems']} items"
    if "items" in schema:
        for index, item in enumerate(value, start=1):
            error = check(schema["items"], item)
            if error:
                return f"failed to validate item {index}: {error}"
    if schema.get("uniqueItems"):
        seen: list[Any] = []
        for index, item in enumerate(value, start=1):
            if item in seen:
                return (
                    f"expected unique items but items {seen.index(item) + 1} and {index} are equal"
                )
            seen.append(item)
    return None


def _check_string(schema: Schema, value: str) -> str | None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        return f"string too short, expected at least {schema['minLength']}, got {len(value)}"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"string too long, expected at most {schema['maxLength']}, got {len(value)}"
    pattern = schema.get("pattern")
    if pattern is not None and not re.search(pattern, value):
        return f"failed to match pattern {lua_quote(pattern)} with {lua_quote(value)}"
    if schema.get("format") in ("ipv4", "ipv6"):
        version = 4 if schema["format"] == "ipv4" else 6
        try:
            if ipaddress.ip_address(value).version == version:
                return None
        except ValueError:
            pass
        return f"expect valid {schema['format']} address but got: {value}"
    return None


_RANGES = (
    ("minimum", lambda v, r: v < r, "at least"),
    ("exclusiveMinimum", lambda v, r: v <= r, "greater than"),
    ("maximum", lambda v, r: v > r, "at most"),
    ("exclusiveMaximum", lambda v, r: v >= r, "smaller than"),
)


def _check_number(schema: Schema, value: float) -> str | None:
    for keyword, fails, words in _RANGES:
        if keyword in schema and fails(value, schema[keyword]):
            return f"expected {lua_number(value)} to be {words} {lua_number(schema[keyword])}"
    return None


def _check_compound(schema: Schema, value: Any) -> str | None:
    if "enum" in schema and not any(
        lua_type(value) == lua_type(option) and value == option for option in schema["enum"]
    ):
        return "matches none of the enum values"
    for index, subschema in enumerate(schema.get("allOf", []), start=1):
        error = check(subschema, value)
        if error:
            return f"allOf {index} failed: {error}"
    if "anyOf" in schema and not any(check(sub, value) is None for sub in schema["anyOf"]):
        requireds = [
            json.dumps(sub["required"], separators=(",", ":"))
            for sub in schema["anyOf"]
            if "required" in sub
        ]
        listed = f": {' or '.join(requireds)}" if requireds else ""
        return f"object matches none of the required{listed}"
    if "oneOf" in schema:
        matched = [i for i, sub in enumerate(schema["oneOf"], start=1) if check(sub, value) is None]
        if not matched:
            return "value should match only one schema, but matches none"
        if len(matched) > 1:
            return (
                "value should match only one schema, "
                f"but matches both schemas {matched[0]} and {matched[1]}"
            )
    if "not" in schema and check(schema["not"], value) is None:
        return "value wasn't supposed to match schema"
    return None


def check(schema: Schema, value: Any) -> str | None:
    """None when `value` fits `schema` (missing defaults filled in), else the error text."""
    error = _check_type(schema, value)
    if error is None and _is_object(value) and _has_object_keywords(schema):
        error = _check_properties(schema, value)
    if error is None and isinstance(value, list):
        error = _check_array(schema, value)
    if error is None and isinstance(value, str):
        error = _check_string(schema, value)
    if error is None and lua_type(value) == "number":
        error = _check_number(schema, value)
    return error or _check_compound(schema, value)


def _has_object_keywords(schema: Schema) -> bool:
    keywords = ("properties", "required", "patternProperties", "additionalProperties")
    return any(k in schema for k in (*keywords, "minProperties", "maxProperties"))

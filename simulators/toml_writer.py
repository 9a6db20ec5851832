"""A minimal TOML writer for generated configs (the tests, the benchmark): scalars, inline arrays and tables,
tables and arrays of tables. Tariff ``periods`` stay an inline array of inline tables, as in config.example.toml."""

from __future__ import annotations

import json
from typing import Any

INLINE_ARRAYS = {"periods"}


def dump_toml(doc: dict[str, Any]) -> str:
    return "\n".join(_lines(doc, ())) + "\n"


def _lines(table: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    lines, nested = [], {}
    for key, value in table.items():
        if isinstance(value, dict) or (key not in INLINE_ARRAYS and _is_table_array(value)):
            nested[key] = value
        else:
            lines.append(f"{key} = {_value(value)}")
    for key, value in nested.items():
        name = ".".join((*path, key))
        items, header = ([value], f"[{name}]") if isinstance(value, dict) else (value, f"[[{name}]]")
        for item in items:
            lines += ["", header, *_lines(item, (*path, key))]
    return lines


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")

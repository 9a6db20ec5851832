"""Shared hypothesis strategies: JSON-like values with the nasty corners a broken or hostile peer sends.

``json_values`` are what ``json.loads`` can produce (plus NaN/Infinity, which Python's parser accepts): ``None``,
booleans, integers up to ~2**80, floats including NaN and infinities, text (any code point but lone surrogates, and
the strings of ``NASTY_TEXT``), lists and objects. ``mutated(seed)`` takes a valid payload and damages it: a field
dropped, retyped, oversized, nested deeper, replaced by a nasty value, or a field added, at any depth.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

NASTY_TEXT = (
    "",
    " ",
    "0",
    "-0",
    "+0",
    "1e309",
    "-1e309",
    "1E-400",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "0x1F",
    "1_000",
    "٣",  # an Arabic-Indic digit: str.isdigit() says yes, int() says yes, the wire says no
    "²",  # a superscript two: str.isdigit() says yes, int() says no
    "--5",
    "9" * 30,
    "9" * 5000,  # over int()'s 4,300-digit limit
    "1." + "0" * 200,
    "true",
    "null",
    "\x00",
    "\ud800",  # a lone surrogate, as json.loads makes from "\\ud800"
    "\u202e",
    "2024-05-01T08:00:00Z",
    "2024-05-01T08:00:00",
    "2024-05-01T08:00:00.123456789123+08:00",
    "2024-02-30T08:00:00Z",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "2024-05-01T24:00:00Z",
    "2024-05-01 08:00:00+0800",
    "1714550400",
    "x" * 70_000,
)
NASTY_NUMBERS = (
    0,
    -1,
    2**31,
    2**63,
    -(2**63) - 1,
    10**100,
    10**400,
    0.1,
    -0.0,
    1e308,
    5e-324,
    float("nan"),
    float("inf"),
    float("-inf"),
)


def encodable(text: str) -> bool:
    """Whether UTF-8 can carry ``text`` (a lone surrogate cannot: no peer can put one on the wire unescaped)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(NASTY_TEXT),
    st.sampled_from(NASTY_NUMBERS),
)


def keys(names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    return st.sampled_from(names) | st.text(max_size=12) if names else st.text(max_size=12)


def json_values(names: tuple[str, ...] = (), max_leaves: int = 25) -> st.SearchStrategy[Any]:
    """Any JSON-like value; object keys are drawn from ``names`` (field names worth hitting) or are random text."""
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=6) | st.dictionaries(keys(names), inner, max_size=6),
        max_leaves=max_leaves,
    )


def deep(depth: int, leaf: Any = 1) -> Any:
    """A value nested ``depth`` levels deep, alternating lists and objects (built without recursion)."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"value": value}
    return value


MAX_PATHS = 300


def paths(
    value: Any, prefix: tuple[Any, ...] = (), found: list[tuple[Any, ...]] | None = None
) -> list[tuple[Any, ...]]:
    """The paths (keys and indexes) into ``value``, the empty path (the value itself) first; at most MAX_PATHS."""
    found = [] if found is None else found
    if len(found) < MAX_PATHS:
        found.append(prefix)
    if len(found) < MAX_PATHS and isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, inner in items:
            paths(inner, (*prefix, key), found)
    return found


DAMAGES = ("drop", "retype", "nest", "nasty", "add")


def _damage(draw: st.DrawFn, value: Any, names: tuple[str, ...], oversize: bool) -> Any:
    """One damage to ``value``, in place where it can be; returns the damaged value. ``oversize``: the damage may
    blow a field up (only the last damage may: blowing up a blown-up field grows without bound)."""
    path = draw(st.sampled_from(paths(value)))
    if not path:
        return draw(json_values(names))
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = draw(st.sampled_from((*DAMAGES, "oversize") if oversize else DAMAGES))
    if action == "add" and isinstance(parent, dict):
        parent[draw(keys(names))] = draw(json_values(names, max_leaves=5))
    elif action == "drop":
        del parent[last]
    elif action == "retype":
        parent[last] = draw(json_values(names, max_leaves=5))
    elif action == "oversize":
        parent[last] = draw(st.sampled_from(("x" * 100_000, 10**300, [parent[last]] * 500, 1e308)))
    elif action == "nest":
        parent[last] = deep(draw(st.integers(1, 60)), parent[last])
    else:
        parent[last] = draw(st.sampled_from(NASTY_TEXT + NASTY_NUMBERS))
    return value


@st.composite
def mutated(draw: st.DrawFn, seed: Any, names: tuple[str, ...] = ()) -> Any:
    """``seed`` with one to three damages, each at a random place."""
    value = copy.deepcopy(seed)
    count = draw(st.integers(1, 3))
    for index in range(count):
        value = _damage(draw, value, names, oversize=index == count - 1)
    return value

"""Fuzz: the config loader (``config.load_config``, the machinery in ``config_load.py``).

Random TOML documents, random bytes, and random damage to config.example.toml (keys removed, values retyped, unknown
keys added, nasty strings such as NUL bytes and lone surrogates in values and in ``*_file`` paths, deep nesting). The
only outcomes are a valid ``Config`` or ``ConfigError`` listing at least one problem, each with a message; never
another exception.

Budgets (fuzz-ci): 100 damaged example configs, 80 random documents, 60 random byte strings, plus the fixed cases.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_bridge.config import Config, load_config_with_warnings
from edge_bridge.errors import ConfigError
from tests.conftest import example_raw
from tests.fuzz.conftest import budget
from tests.fuzz.strategies import json_values, mutated

RAW = example_raw()
NAMES = tuple(
    sorted(
        {key for table in RAW.values() if isinstance(table, dict) for key in table}
        | {key for station in RAW["stations"] for key in station}
        | {f"{name}_file" for name in ("operator_secret", "data_secret", "data_secret_iv", "sig_secret", "password")}
        | {"tls_cert", "tls_key", "allow_from", "user", "password", "credit_code", "connectors", "chargers"}
    )
)


def toml_value(value: Any) -> str | None:
    """A value as inline TOML (None: not representable, the key is left out)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
            if not math.isfinite(value)
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (a lone surrogate's \\ud800 escape is invalid TOML: refused too)
    if isinstance(value, list):
        items = [toml_value(item) for item in value]
        return "[" + ", ".join(item for item in items if item is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(pair for key, inner in value.items() if (pair := toml_pair(key, inner))) + "}"
    return None


def toml_pair(key: Any, value: Any) -> str:
    text = toml_value(value)
    return "" if text is None else f"{json.dumps(str(key))} = {text}"


def toml_document(doc: Any) -> str:
    """Every top-level key as one ``key = <inline value>`` line (inline tables and arrays of inline tables)."""
    if not isinstance(doc, dict):
        return f"value = {toml_value(doc) or '0'}\n"
    return "\n".join(pair for key, value in doc.items() if (pair := toml_pair(key, value))) + "\n"


def outcome(path: Path, text: str | bytes) -> Config | None:
    """Load ``text`` written to ``path``; None for ConfigError (the defined refusal), after checking its problems."""
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        config, warnings = load_config_with_warnings(path)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError lists its problems"
        assert all(problem.message for problem in exc.problems)
        assert str(exc)
        return None
    assert isinstance(config, Config) and all(isinstance(w, str) for w in warnings)
    return config


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config") / "config.toml"


def test_the_example_itself_loads(where: Path) -> None:
    assert outcome(where, toml_document(RAW)) is not None, "the fuzzed documents start from a valid one"


@budget(100)
@given(doc=mutated(RAW, NAMES))
def test_a_damaged_example_config_loads_or_is_refused(where: Path, doc: Any) -> None:
    outcome(where, toml_document(doc))


@budget(80)
@given(doc=st.dictionaries(st.sampled_from((*RAW, *NAMES)) | st.text(max_size=8), json_values(NAMES, 10), max_size=8))
def test_a_random_document_loads_or_is_refused(where: Path, doc: dict[str, Any]) -> None:
    outcome(where, toml_document(doc))


@budget(60)
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bytes_are_refused(where: Path, raw: bytes) -> None:
    assert outcome(where, raw) is None


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 5000 + "]" * 5000,  # deeper than tomllib's stack
        "a = " + "{b = " * 3000 + "1" + "}" * 3000,
        "\ufeff[site]\n",
        '[province]\nsig_secret_file = "\\u0000"\n',
    ],
    ids=["deep-array", "deep-inline-table", "bom", "nul-path"],
)
def test_hostile_documents_are_refused(where: Path, text: str) -> None:
    assert outcome(where, text) is None


@pytest.mark.parametrize("key", ["operator_secret_file", "sig_secret_file"])
@pytest.mark.parametrize("path", ["a\x00b", "x" * 5000, "/", "/proc/self/mem", "\udc80"])
def test_a_hostile_secret_file_path_is_a_config_error(where: Path, key: str, path: str) -> None:
    doc = json.loads(json.dumps(RAW))
    name = key.removesuffix("_file")
    del doc["province"][name]
    doc["province"][key] = path
    assert outcome(where, toml_document(doc)) is None

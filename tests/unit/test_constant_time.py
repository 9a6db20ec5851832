"""Secrets are compared in constant time (issue 8, item 6): no ``==`` or ``!=`` in ``edge_bridge/`` has a password,
secret, signature, token or credential on either side; such comparisons go through ``hmac.compare_digest``.

Checked on the source with ``ast``. An operand is secret material when a word of its name (``snake_case`` and
``CamelCase`` split; the attribute, variable or string subscript key) is one of ``SECRET_WORDS``. Not secret: module
constants in ``UPPER_CASE`` (interface names such as ``RET_TOKEN``), ``len(...)`` of anything (the length is public:
every secret is exactly 16 characters), and literals. Issued tokens are looked up by their SHA-256 digest
(``store/tokens.py``), so a lookup leaks nothing about the token through timing.
"""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO

PACKAGE = REPO / "edge_bridge"
SECRET_WORDS = frozenset(
    {"secret", "secrets", "password", "passwd", "sig", "signature", "token", "credential", "credentials"}
    | {"authorization"}
)
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def words(name: str) -> set[str]:
    """The lower-case words of a snake_case or CamelCase name."""
    return {w.lower() for w in _WORD.findall(name)}


def operand_names(node: ast.expr) -> list[str]:
    """The names an operand is known by: ``a.b.c`` → c, b, a; ``d["Key"]`` → Key, d; calls and literals: none."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr, *operand_names(node.value)]
    if isinstance(node, ast.Subscript):
        key = node.slice
        keys = [key.value] if isinstance(key, ast.Constant) and isinstance(key.value, str) else []
        return keys + operand_names(node.value)
    return []


def is_secret(node: ast.expr) -> bool:
    names = operand_names(node)
    if not names or names[0].isupper():  # a literal, a call (len(...)), or a module constant
        return False
    return bool(words(names[0]) & SECRET_WORDS)


def non_constant_time(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: code`` of every ``==``/``!=`` with secret material on a side."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
            if isinstance(op, ast.Eq | ast.NotEq) and (is_secret(left) or is_secret(right)):
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_secret_is_compared_with_eq_in_edge_bridge() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += non_constant_time(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert found == [], "compare secrets with hmac.compare_digest:\n" + "\n".join(found)


def test_the_check_finds_what_it_is_for() -> None:
    bad = """
if sig == expected: pass
if self._token.value != token: pass
if payload["OperatorSecret"] == self.secrets.operator_secret: pass
if password_hash == stored: pass
ok = a == b == credentials[1]
"""
    assert [line.split(": ", 1)[0] for line in non_constant_time(bad)] == [
        "<source>:2",
        "<source>:3",
        "<source>:4",
        "<source>:5",
        "<source>:6",
    ]


def test_the_check_lets_public_values_and_constant_time_pass() -> None:
    fine = """
if hmac.compare_digest(sig, expected): pass
if interface == TOKEN or response.ret == codec.RET_TOKEN: pass
if len(secret.encode()) != SECRET_LENGTH: pass
if tokens_issued == 3 or signum == 15 or design == "x": pass
if token is None or "Sig" in doc: pass
"""
    assert non_constant_time(fine) == []

"""GB 32100 check characters and the OperatorID rule, on published codes and on every single-character change."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_bridge.cli import main
from edge_bridge.domain.credit_code import CHARSET, WEIGHTS, check_character, parse_credit_code

PUBLISHED = ["91350100M000100Y43", "91110000600037341L"]  # codes printed on public business licences


def test_the_weights_are_those_of_the_standard() -> None:
    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_check(code: str) -> None:
    parsed = parse_credit_code(code)
    assert parsed.check_ok and parsed.operator_id == code[8:17]


def test_the_operator_id_is_the_last_ten_without_the_check_character() -> None:
    parsed = parse_credit_code(" 91370100ma7g5ya248 ")
    assert (parsed.code, parsed.operator_id, parsed.check_ok) == ("91370100MA7G5YA248", "MA7G5YA24", True)


def test_a_wrong_check_character_is_found_and_the_right_one_named() -> None:
    parsed = parse_credit_code("91370100MA7G5YA24X")  # the configuration spec's example
    assert (parsed.check_ok, parsed.expected_check, parsed.operator_id) == (False, "8", "MA7G5YA24")


@pytest.mark.parametrize(
    ("text", "problem"),
    [("9137010", "18 characters, not 7"), ("91370100MA7G5YA2IO", "'IO' cannot appear"), ("", "not 0")],
)
def test_malformed_codes_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_credit_code(text)


@given(st.text(alphabet=CHARSET, min_size=17, max_size=17), st.integers(0, 16), st.sampled_from(CHARSET))
def test_any_single_character_change_breaks_the_check(first17: str, position: int, other: str) -> None:
    """31 is prime and every weight is non-zero mod 31: one changed character always changes the sum mod 31."""
    code = first17 + check_character(first17)
    changed = code[:position] + other + code[position + 1 :]
    assert parse_credit_code(changed).check_ok == (changed == code)


def test_the_command_prints_the_operator_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive-operator-id", "91350100M000100Y43"]) == 0
    assert capsys.readouterr() == ("M000100Y4\n", "")


def test_the_command_says_when_the_check_character_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive-operator-id", "--json", "91370100MA7G5YA24X"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "credit_code": "91370100MA7G5YA24X", "operator_id": "MA7G5YA24", "check_ok": False, "expected_check": "8"
    }  # fmt: skip
    assert "the check character is X, GB 32100 gives 8" in err


def test_the_command_refuses_what_is_not_a_credit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["derive-operator-id", "MA7G5YA24"]) == 2
    assert capsys.readouterr().err == "error: a unified social credit code has 18 characters, not 9\n"

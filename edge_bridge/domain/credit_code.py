"""The unified social credit code (统一社会信用代码, GB 32100-2015) and the OperatorID the province derives from it.

A code is 18 characters of ``0-9`` and ``A-Z`` without I, O, Z, S and V. The 18th is a check character: with each
character's value its index in ``CHARSET`` and the weights ``3^(i-1) mod 31`` of positions 1 to 17, it is the
character of value ``31 - (sum mod 31)``, and ``0`` where that is 31. The province's OperatorID is the last ten
characters minus the check character: characters 9 to 17 (the organisation code without its own check digit).
"""

from __future__ import annotations

from dataclasses import dataclass

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28
LENGTH = 18


@dataclass(frozen=True)
class CreditCode:
    """A checked code: ``operator_id`` the province's 9 characters, ``check_ok`` whether the 18th is right and
    ``expected_check`` what it should be."""

    code: str
    expected_check: str

    @property
    def check_ok(self) -> bool:
        return self.code[-1] == self.expected_check

    @property
    def operator_id(self) -> str:
        return self.code[8:17]


def check_character(first17: str) -> str:
    """The check character of the first 17 characters (which must be in ``CHARSET``)."""
    total = sum(CHARSET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def parse_credit_code(text: str) -> CreditCode:
    """The code, upper-cased and stripped; ValueError naming what is wrong when it is not 18 valid characters."""
    code = text.strip().upper()
    if len(code) != LENGTH:
        raise ValueError(f"a unified social credit code has 18 characters, not {len(code)}")
    wrong = sorted({c for c in code if c not in CHARSET})
    if wrong:
        raise ValueError(f"{''.join(wrong)!r} cannot appear in a unified social credit code (no I, O, Z, S or V)")
    return CreditCode(code, check_character(code[:17]))

"""``edge-bridge derive-operator-id CODE``: the OperatorID of a unified social credit code (GB 32100)."""

from __future__ import annotations

import json

from edge_bridge.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, Subcommands, command, error
from edge_bridge.domain.credit_code import parse_credit_code


def register(commands: Subcommands, exit_codes: str) -> None:
    parser = command(
        commands,
        "derive-operator-id",
        "the 9-character OperatorID of a unified social credit code (the province's rule), its check verified",
        "Exit codes: 0 the code is valid, 1 its check character is wrong, 2 it is not a credit code.",
        config=False,
    )
    parser.add_argument("credit_code", help="the 18-character unified social credit code (统一社会信用代码)")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.set_defaults(plain=lambda args: derive_operator_id(args.credit_code, args.json))


def derive_operator_id(text: str, as_json: bool) -> int:
    """Print the OperatorID of a credit code: the last ten characters minus the check character (GB 32100)."""
    try:
        code = parse_credit_code(text)
    except ValueError as exc:
        return error(str(exc), EXIT_CONFIG)
    if as_json:
        fields = {"credit_code": code.code, "operator_id": code.operator_id, "check_ok": code.check_ok}
        print(json.dumps({**fields, "expected_check": code.expected_check}))
    else:
        print(code.operator_id)
    if not code.check_ok:
        wrong = f"{code.code}: the check character is {code.code[-1]}, GB 32100 gives {code.expected_check}"
        return error(f"{wrong}; check the code on the business licence", EXIT_FAILURE)
    return EXIT_OK

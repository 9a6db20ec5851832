"""``edge-bridge selftest``: the province link and our pull API, checked in order, one line each (``selftest.py``)."""

from __future__ import annotations

import argparse
import sys

from edge_bridge.cli.common import EXIT_FAILURE, EXIT_OK, Subcommands, command, print_json
from edge_bridge.config import Config
from edge_bridge.selftest import CLOCK_TOLERANCE_S, Check, run_selftest

EPILOG = f"""Checks, in order: config; dns and tcp to [province] base_url; query_token (our OperatorID and
OperatorSecret accepted); signature (the answer's Sig, SigSecret); decryption (the answer's Data, DataSecret and
DataSecretIV); token_lifetime; pull_api (query_token on [pull_api] public_url as the province calls it, or on the
listen address when public_url is ""); clock (against the province's HTTP Date, at most {CLOCK_TOLERANCE_S} s off).
A failed check says what to fix; a wrong secret is named by its config key, never shown.

Exit codes: 0 every check passed, 1 a check failed, 2 configuration error."""


def register(commands: Subcommands, exit_codes: str) -> None:
    text = "prove the link to the province and our pull API before go-live: each check, and what to fix"
    parser = command(commands, "selftest", text, EPILOG)
    parser.add_argument("--json", action="store_true", help="print a JSON list of the checks")
    parser.set_defaults(handler=run)


async def run(config: Config, args: argparse.Namespace) -> int:
    checks = await run_selftest(config, args.config)
    if args.json:
        print_json([{"name": c.name, "status": c.status.lower(), "detail": c.detail, "fix": c.fix} for c in checks])
    else:
        for check in checks:
            print_check(check)
    return EXIT_FAILURE if any(c.ok is False for c in checks) else EXIT_OK


def print_check(check: Check) -> None:
    print(f"{check.status:<5} {check.name:<15} {check.detail}")
    if check.fix:
        print(f"{'':<21} fix: {check.fix}")
    sys.stdout.flush()  # a slow check follows: show what is known

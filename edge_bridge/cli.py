"""The ``edge-bridge`` command: ``run``, ``check-config``, ``status``, ``outbox list|requeue``, ``derive-operator-id``.

Exit codes (the systemd unit's RestartPreventExitStatus=2 3 4: restarting cannot fix those):
  0  success (run: stopped by SIGTERM/SIGINT)
  1  runtime failure (systemd restarts the daemon)
  2  configuration error
  3  the database file is damaged, truncated or not an edge-bridge store: restore a backup or move it away
  4  the database was written by a newer edge-bridge: install that version or newer
  141  the output was cut short: its reader went away (`| head`), as for any command killed by SIGPIPE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_bridge import __version__
from edge_bridge.app import App
from edge_bridge.config import DEFAULT_PATH, Config, load_config_with_warnings
from edge_bridge.config_check import EXIT_CONFIG, check_config
from edge_bridge.domain.credit_code import parse_credit_code
from edge_bridge.errors import ConfigError, DatabaseUnusableError, StoreError
from edge_bridge.log import setup_logging
from edge_bridge.status_report import status_report
from edge_bridge.store.db import open_database
from edge_bridge.store.outbox import Outbox
from edge_bridge.timeutil import utc_now

log = logging.getLogger("edge_bridge")

EXIT_OK, EXIT_FAILURE = 0, 1
EXIT_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a command whose pipe closed
EXIT_CODES = (__doc__ or "").split("\n\n", 1)[-1]
RAW = argparse.RawDescriptionHelpFormatter


def main(argv: Sequence[str] | None = None) -> int:
    """The command; quiet when its reader goes away (``edge-bridge outbox list | head``), as ``cat`` is."""
    try:
        code = _command(argv)
        sys.stdout.flush()  # inside the try: a closed pipe must not surface at the interpreter's exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return EXIT_PIPE
    return code


def _command(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "derive-operator-id":
        return derive_operator_id(args.credit_code, args.json)
    if args.command == "check-config":
        return check_config(args.config, sys.stdout, sys.stderr)
    try:
        config, warnings = load_config_with_warnings(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.logging.level, config.logging.format)
    for warning in warnings:
        log.warning("config_warning", extra={"detail": warning})
    try:
        if args.command == "run":
            return asyncio.run(_run(config))
        if args.command == "status":
            return asyncio.run(_status(config))
        return asyncio.run(_outbox(config, args))
    except DatabaseUnusableError as exc:
        return _unusable(exc)
    except StoreError as exc:
        log.error("store_failed", extra={"error": str(exc)})
        return EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-bridge",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"edge-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run the daemon"),
        ("check-config", "validate the configuration file"),
        ("status", "chargers, connectors and open sessions (works while the daemon runs)"),
    ):
        _with_config(commands.add_parser(name, help=text, epilog=EXIT_CODES, formatter_class=RAW))
    derive = commands.add_parser(
        "derive-operator-id",
        help="the 9-character OperatorID of a unified social credit code (the province's rule), its check verified",
        epilog="Exit codes: 0 the code is valid, 1 its check character is wrong, 2 it is not a credit code.",
    )
    derive.add_argument("credit_code", help="the 18-character unified social credit code (统一社会信用代码)")
    derive.add_argument("--json", action="store_true", help="print a JSON object")
    outbox = _with_config(commands.add_parser("outbox", help="inspect or requeue pushes to the province"))
    outbox.add_argument("action", choices=("list", "requeue"))
    outbox.add_argument("--state", choices=("pending", "sent", "dead"), help="list: only rows in this state")
    outbox.add_argument("--limit", type=int, default=50, help="list: at most this many rows (newest first)")
    outbox.add_argument("--id", type=int, action="append", dest="ids", help="requeue: this dead row (repeatable)")
    outbox.add_argument("--all", action="store_true", help="requeue: every dead row")
    return parser


def _with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    return parser


async def _run(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await App(config).run(stop)
    except DatabaseUnusableError as exc:
        return _unusable(exc)
    except StoreError as exc:
        log.error("store_failed", extra={"error": str(exc)})
        return EXIT_FAILURE
    except Exception:  # a dead loop ends the process non-zero; systemd restarts it
        log.exception("crashed")
        return EXIT_FAILURE
    return EXIT_OK


def _unusable(exc: DatabaseUnusableError) -> int:
    """The database may not be used: say what is wrong, where, and what to do, as for a configuration error."""
    print(f"error: {exc}", file=sys.stderr)
    return exc.exit_code


async def _status(config: Config) -> int:
    db = await open_database(config.storage.path)
    try:
        return await status_report(db, config.site_model(), sys.stdout, utc_now())
    finally:
        await db.close()


async def _outbox(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config.storage.path)
    try:
        outbox = Outbox(db)
        if args.action == "requeue":
            return await _requeue(outbox, args)
        for row in await outbox.rows(args.state, args.limit):
            when = (row.sent_at or row.next_attempt_at or row.created_at).isoformat(timespec="seconds")
            reason = f"  {row.last_error}" if row.last_error else ""
            print(f"{row.id:>7} {row.state:8} {row.attempts:>3} {when} {row.interface:28} {row.key}{reason}")
        counts = await outbox.counts()
        print("  ".join(f"{state}={n}" for state, n in sorted(counts.items())))
        return EXIT_OK
    finally:
        await db.close()


async def _requeue(outbox: Outbox, args: argparse.Namespace) -> int:
    if not args.all and not args.ids:
        print("error: outbox requeue needs --id N or --all", file=sys.stderr)
        return EXIT_FAILURE
    count = await outbox.requeue(None if args.all else args.ids, utc_now())
    print(f"requeued {count} row(s); a running daemon picks them up within a minute")
    return EXIT_OK


def derive_operator_id(text: str, as_json: bool) -> int:
    """Print the OperatorID of a credit code: the last ten characters minus the check character (GB 32100)."""
    try:
        code = parse_credit_code(text)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if as_json:
        fields = {"credit_code": code.code, "operator_id": code.operator_id, "check_ok": code.check_ok}
        print(json.dumps({**fields, "expected_check": code.expected_check}))
    else:
        print(code.operator_id)
    if not code.check_ok:
        wrong = f"{code.code}: the check character is {code.code[-1]}, GB 32100 gives {code.expected_check}"
        print(f"error: {wrong}; check the code on the business licence", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK

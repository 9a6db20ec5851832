"""edge-bridge: OCPP chargers to the Shandong provincial charging platform. `edge-bridge COMMAND --help` for more.

Exit codes (the systemd unit's RestartPreventExitStatus=2 3 4: restarting cannot fix those):
  0  success (run: stopped by SIGTERM/SIGINT)
  1  runtime failure (systemd restarts the daemon); for a command: what it checked or asked for failed
  2  configuration error, or wrong arguments
  3  the database file is damaged, truncated or not an edge-bridge store: restore a backup or move it away
  4  the database was written by a newer edge-bridge: install that version or newer
  141  the output was cut short: its reader went away (`| head`), as for any command killed by SIGPIPE
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from edge_bridge import __version__
from edge_bridge.cli import application_form, daemon, decode, operator_id, orders, outbox, selftest, status
from edge_bridge.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_PIPE, RAW
from edge_bridge.config import load_config_with_warnings
from edge_bridge.errors import ConfigError, DatabaseUnusableError, StoreError
from edge_bridge.log import setup_logging

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "EXIT_PIPE", "main"]

log = logging.getLogger("edge_bridge")

EXIT_CODES = (__doc__ or "").split("\n\n", 1)[-1]
# one module per command, each with register(commands, exit_codes)
COMMANDS = (daemon, status, outbox, operator_id, application_form, orders, selftest, decode)


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
    if getattr(args, "plain", None) is not None:  # needs no config (check-config reads it itself)
        code: int = args.plain(args)
        return code
    try:
        # commands that only read the store run while the service (and its credentials) is stopped: secrets=False
        config, warnings = load_config_with_warnings(args.config, secrets=getattr(args, "secrets", True))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.logging.level, config.logging.format)
    for warning in warnings:
        log.warning("config_warning", extra={"detail": warning})
    try:
        code = asyncio.run(args.handler(config, args))
        return code
    except DatabaseUnusableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except StoreError as exc:
        log.error("store_failed", extra={"error": str(exc)})
        return EXIT_FAILURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-bridge",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=EXIT_CODES,
        formatter_class=RAW,
    )
    parser.add_argument("--version", action="version", version=f"edge-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands, EXIT_CODES)
    return parser

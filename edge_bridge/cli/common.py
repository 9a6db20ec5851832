"""What every command shares: exit codes, the ``--config`` option, the store opened for one command, JSON output."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from edge_bridge.config import DEFAULT_PATH, EXIT_CONFIG, Config
from edge_bridge.store.db import Database, open_database

EXIT_OK, EXIT_FAILURE = 0, 1
EXIT_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a command whose pipe closed
__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "EXIT_PIPE"]

RAW = argparse.RawDescriptionHelpFormatter
Subcommands = Any  # argparse's _SubParsersAction (private name); what ``add_subparsers`` returns
Handler = Callable[[Config, argparse.Namespace], Awaitable[int]]  # a command that reads the config
PlainHandler = Callable[[argparse.Namespace], int]  # a command that needs no config


def command(
    commands: Subcommands, name: str, help: str, epilog: str, *, config: bool = True
) -> argparse.ArgumentParser:
    """A subcommand with its help and its exit codes; ``--config`` unless ``config=False``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=help, epilog=epilog, formatter_class=RAW
    )
    if config:
        parser.add_argument("--config", type=Path, default=DEFAULT_PATH, help=f"config file (default {DEFAULT_PATH})")
    return parser


@asynccontextmanager
async def store(config: Config) -> AsyncIterator[Database]:
    """The daemon's database, for one command (safe while the daemon runs: WAL)."""
    db = await open_database(config.storage.path)
    try:
        yield db
    finally:
        await db.close()


def print_json(value: Any) -> None:
    """One JSON document on stdout, UTF-8 as is (Chinese names stay readable), Decimals and times as strings."""
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def error(message: str, code: int = EXIT_FAILURE) -> int:
    """``error: ...`` on stderr; returns ``code`` for the caller to return."""
    print(f"error: {message}", file=sys.stderr)
    return code

"""``edge-bridge run`` (the daemon) and ``edge-bridge check-config``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from edge_bridge.app import App
from edge_bridge.cli.common import EXIT_FAILURE, EXIT_OK, Subcommands, command
from edge_bridge.config import Config, check_config
from edge_bridge.errors import DatabaseUnusableError, StoreError

log = logging.getLogger("edge_bridge")


def register(commands: Subcommands, exit_codes: str) -> None:
    command(commands, "run", "run the daemon", exit_codes).set_defaults(handler=run)
    check = command(commands, "check-config", "validate the configuration file and show what it configures", exit_codes)
    check.set_defaults(plain=lambda args: check_config(args.config, sys.stdout, sys.stderr))


async def run(config: Config, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await App(config).run(stop)
    except DatabaseUnusableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except StoreError as exc:
        log.error("store_failed", extra={"error": str(exc)})
        return EXIT_FAILURE
    except Exception:  # a dead loop ends the process non-zero; systemd restarts it
        log.exception("crashed")
        return EXIT_FAILURE
    return EXIT_OK

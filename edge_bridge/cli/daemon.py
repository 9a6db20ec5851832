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
from edge_bridge.errors import StoreError

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
    app = App(config, config_path=args.config, fresh_second=True)  # a restart never repeats a Seq (D2)
    loop.add_signal_handler(signal.SIGHUP, app.request_reload)  # systemctl reload; before READY=1 it waits
    try:
        await app.run(stop)
    except StoreError:
        raise  # the command's exit code for it (cli/__init__.py): 1, or 3 and 4 for an unusable database
    except Exception:  # a dead loop ends the process non-zero; systemd restarts it
        log.exception("crashed")
        return EXIT_FAILURE
    return EXIT_OK

"""``edge-bridge run`` (the daemon) and ``edge-bridge check-config``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

from edge_bridge.app import App
from edge_bridge.cli.common import EXIT_FAILURE, EXIT_OK, Subcommands, command
from edge_bridge.config import Config, check_config
from edge_bridge.errors import StoreError

log = logging.getLogger("edge_bridge")


def process_started() -> float:
    """When this process started (Unix time), or a little later, never earlier: its predecessor, if any, sent
    nothing after that. From /proc, plus a second and a tick (the boot time there is in whole seconds); now when
    /proc says nothing, or when that sum is later than now."""
    now = time.time()
    try:
        btime = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        hz = os.sysconf("SC_CLK_TCK")
        return min(now, int(btime.split()[1]) + (ticks + 1) / hz + 1.0)
    except (OSError, ValueError, IndexError, StopIteration):
        return now


def register(commands: Subcommands, exit_codes: str) -> None:
    command(commands, "run", "run the daemon", exit_codes).set_defaults(handler=run)
    check = command(commands, "check-config", "validate the configuration file and show what it configures", exit_codes)
    check.set_defaults(plain=lambda args: check_config(args.config, sys.stdout, sys.stderr))


async def run(config: Config, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = App(config, config_path=args.config, started_at=process_started())  # a restart never repeats a Seq (D2)
    loop.add_signal_handler(signal.SIGHUP, app.request_reload)  # systemctl reload; before READY=1 it waits
    try:
        await app.run(stop)
    except StoreError:
        raise  # the command's exit code for it (cli/__init__.py): 1, or 3 and 4 for an unusable database
    except Exception:  # a dead loop ends the process non-zero; systemd restarts it
        log.exception("crashed")
        return EXIT_FAILURE
    return EXIT_OK

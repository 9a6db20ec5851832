"""``edge-bridge status``: what the store says about the chargers, sessions, orders and alarms."""

from __future__ import annotations

import argparse
import sys

from edge_bridge.cli.common import Subcommands, command, store
from edge_bridge.config import Config, site_model
from edge_bridge.status_report import status_report
from edge_bridge.timeutil import utc_now


def register(commands: Subcommands, exit_codes: str) -> None:
    text = "chargers, connectors, open sessions, orders and alarms (works while the daemon runs)"
    command(commands, "status", text, exit_codes).set_defaults(handler=run)


async def run(config: Config, args: argparse.Namespace) -> int:
    async with store(config) as db:
        return await status_report(db, site_model(config), sys.stdout, utc_now())

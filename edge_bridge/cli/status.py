"""``edge-bridge status [--json]``: what the store says about the chargers, sessions, orders and alarms."""

from __future__ import annotations

import argparse
import sys

from edge_bridge.cli.common import Subcommands, command, store
from edge_bridge.config import Config, site_model
from edge_bridge.status_report import status_report
from edge_bridge.timeutil import utc_now

EPILOG = """JSON (--json): one document; "format" is raised only when a field changes meaning or goes away.
  storage {path, free_bytes, disk_full}; chargers [{ocpp_id, configured, connected, offline, ocpp_version,
  last_seen, vendor, model, connectors [{evse, connector, connector_id, ocpp_status, error_code, status_at,
  provincial_status, power_w, soc_percent, current_a, voltage_v}]}]; open_sessions [{id, charger, evse, connector,
  ocpp_version, started_at, energy_kwh, flags}]; orders {counts [{state, outbox_state, count}], problems
  [{session_id, charger, evse, connector, state, start_charge_seq, outbox_state, reason}]}; active_alarms [{charger,
  evse, connector, code, type, level, raised_at, note}]. Times are ISO 8601 UTC ("...Z"), readings and energy
  decimal strings, unknown values null.

"""


def register(commands: Subcommands, exit_codes: str) -> None:
    text = "chargers, connectors, open sessions, orders and alarms (works while the daemon runs)"
    parser = command(commands, "status", text, EPILOG + exit_codes)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.set_defaults(handler=run, secrets=False)


async def run(config: Config, args: argparse.Namespace) -> int:
    async with store(config) as db:
        return await status_report(db, site_model(config), sys.stdout, utc_now(), as_json=args.json)

"""``edge-bridge application-form [--json]``: the fields of the province's application forms that come from the
config (``edge_bridge.application_form``), to copy into them. Never prints a secret's value."""

from __future__ import annotations

import argparse
import sys

from edge_bridge.application_form import Interfaces, application_form, form_document, form_text
from edge_bridge.cli.common import EXIT_OK, Subcommands, command, print_json
from edge_bridge.config import Config
from edge_bridge.domain.pushes import ALARM_REPORT, ORDER_INFO, STATION_INFO, STATION_STATUS
from edge_bridge.provincial.client import QUERY_TOKEN
from edge_bridge.provincial.pull_server import PULL_INTERFACES

INTERFACES = Interfaces(PULL_INTERFACES, (QUERY_TOKEN, STATION_INFO, STATION_STATUS, ORDER_INFO, ALARM_REPORT))
EPILOG = """Prints the operator, its credit code and OperatorID, where each of the four secrets is configured (never
its value), the pull API URL to register ([pull_api] public_url), the interfaces served and pushed, the stations and
the contact fields; a field whose config key is empty is marked 待填写 (to fill in) and listed at the end.

Exit codes: 0 the form was printed (even with fields to fill in), 2 configuration error, 141 its reader went away.
"""


def register(commands: Subcommands, exit_codes: str) -> None:
    text = "the fields of the province's 联调申请表 and 接入申请单 that come from the config (no secret values)"
    parser = command(commands, "application-form", text, EPILOG)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.set_defaults(handler=run, secrets=False)


async def run(config: Config, args: argparse.Namespace) -> int:
    path = args.config.resolve()
    sections = application_form(config, INTERFACES)
    if args.json:
        print_json(form_document(sections, path))
    else:
        sys.stdout.write(form_text(sections, path))
    return EXIT_OK

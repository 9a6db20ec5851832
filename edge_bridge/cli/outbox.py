"""``edge-bridge outbox list|requeue``: the pushes to the province, as the store holds them."""

from __future__ import annotations

import argparse

from edge_bridge.cli.common import EXIT_FAILURE, EXIT_OK, Subcommands, command, error, store
from edge_bridge.config import Config
from edge_bridge.store.outbox import Outbox
from edge_bridge.timeutil import utc_now


def register(commands: Subcommands, exit_codes: str) -> None:
    parser = command(commands, "outbox", "inspect or requeue pushes to the province", exit_codes)
    parser.add_argument("action", choices=("list", "requeue"))
    parser.add_argument("--state", choices=("pending", "sent", "dead"), help="list: only rows in this state")
    parser.add_argument("--limit", type=int, default=50, help="list: at most this many rows (newest first)")
    parser.add_argument("--id", type=int, action="append", dest="ids", help="requeue: this dead row (repeatable)")
    parser.add_argument("--all", action="store_true", help="requeue: every dead row")
    parser.set_defaults(handler=run)


async def run(config: Config, args: argparse.Namespace) -> int:
    async with store(config) as db:
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


async def _requeue(outbox: Outbox, args: argparse.Namespace) -> int:
    if not args.all and not args.ids:
        return error("outbox requeue needs --id N or --all", EXIT_FAILURE)
    count = await outbox.requeue(None if args.all else args.ids, utc_now())
    print(f"requeued {count} row(s); a running daemon picks them up within a minute")
    return EXIT_OK

"""``edge-bridge outbox list|show ID|requeue|purge``: the pushes to the province as the store holds them, and every
answer the province gave each one.

Safe while the daemon runs (SQLite in WAL; a write waits for the daemon's lock). ``show`` prints a row's payload as
it was pushed (stored in clear, encrypted only on the wire) and its answers, oldest first, decrypted. ``purge`` takes
only dead-lettered rows: a pending row is a record not yet delivered, and sent rows go by retention. A purged order
row leaves its session's order queued with no outbox row: that order was not delivered, and the command says so.
Times are ISO 8601 UTC ("...Z").
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from edge_bridge.cli.common import EXIT_OK, Subcommands, command, error, print_json, store
from edge_bridge.config import Config
from edge_bridge.store.outbox import STATES, Answer, DeadPurge, OrderRef, Outbox, OutboxRow, RowDetail
from edge_bridge.timeutil import iso_utc, utc_now

LIST_EPILOG = """JSON (--json): {rows [{id, interface, key, state, attempts, created_at, next_attempt_at, sent_at,
  updated_at, last_error}], counts {pending, sent, dead}}, rows newest first.
Exit codes: 0 listed; 2 wrong arguments or configuration; 3, 4 the database is unusable (see edge-bridge --help).
"""
SHOW_EPILOG = """JSON (--json): {row {id, interface, key, state, attempts, created_at, next_attempt_at, sent_at,
  updated_at, last_error, response}, payload (the pushed Data, as JSON), order {session_id, start_charge_seq} or null,
  answers [{seq, at, outcome (accepted|transient|permanent), ret (null: no answer from the province), reason, data
  (the decrypted answer Data text, or null)}], answers_not_kept}. The first 20 and the last 20 answers of a row are
  kept; seq numbers every answer, so a gap shows the ones not kept.
Exit codes: 0 shown; 1 no outbox row has this ID (purged, or never queued); 2 wrong arguments or configuration;
  3, 4 the database is unusable (see edge-bridge --help).
"""
REQUEUE_EPILOG = """A running daemon sends requeued rows within a minute, each in its key's order.
Exit codes: 0 requeued (the count may be 0); 2 wrong arguments (neither or both of --id and --all) or
  configuration; 3, 4 the database is unusable.
"""
PURGE_EPILOG = """Only dead-lettered rows are purged: a pending row is a record not yet delivered (it goes when the
province takes it), and sent rows are purged by retention ([retention] outbox_days). A purged row's answers go
with it. Purging the row of an order does not deliver it: the session keeps the order as queued with no outbox row,
and `edge-bridge orders repush SEQ` sends it again.
JSON (--json): {purged [id], undelivered_orders [{outbox_id, session_id, start_charge_seq}]}.
Exit codes: 0 purged (the count may be 0); 1 a row given with --id is not dead-lettered or does not exist (then
  nothing is purged); 2 wrong arguments (neither or both of --id and --all-dead) or configuration; 3, 4 the
  database is unusable.
"""


def register(commands: Subcommands, exit_codes: str) -> None:
    parser = command(
        commands, "outbox", "list, show, requeue or purge pushes to the province", exit_codes, config=False
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = command(actions, "list", "the outbox rows, newest first, with the reason of a failure", LIST_EPILOG)
    listing.add_argument("--state", choices=STATES, help="only rows in this state")
    listing.add_argument("--limit", type=_positive, default=50, help="at most this many rows (default 50)")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(handler=list_rows, secrets=False)
    show = command(actions, "show", "one push: its row, payload and every answer the province gave it", SHOW_EPILOG)
    show.add_argument("id", type=_positive, metavar="ID", help="the outbox row (the first column of `outbox list`)")
    show.add_argument("--json", action="store_true", help="print one JSON document")
    show.set_defaults(handler=show_row, secrets=False)
    requeue = command(actions, "requeue", "send dead-lettered pushes again", REQUEUE_EPILOG)
    _which(requeue, "--all", "every dead row")
    requeue.set_defaults(handler=requeue_rows, secrets=False)
    purge = command(actions, "purge", "delete dead-lettered pushes and their answers", PURGE_EPILOG)
    _which(purge, "--all-dead", "every dead row")
    purge.add_argument("--json", action="store_true", help="print one JSON document")
    purge.set_defaults(handler=purge_rows, secrets=False)


def _which(parser: argparse.ArgumentParser, every: str, help: str) -> None:
    """``--id N`` (repeatable) or ``every``: one of them."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--id", type=_positive, action="append", dest="ids", metavar="N", help="this dead row (repeatable)"
    )
    which.add_argument(every, action="store_true", help=help)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value}")
    return value


# ------------------------------------------------------------------------------------------------ list


async def list_rows(config: Config, args: argparse.Namespace) -> int:
    async with store(config) as db:
        outbox = Outbox(db)
        rows, counts = await outbox.rows(args.state, args.limit), await outbox.counts()
    if args.json:
        print_json({"rows": [_row_json(row) for row in rows], "counts": counts})
        return EXIT_OK
    for row in rows:
        print(_list_line(row))
    print("  ".join(f"{state}={n}" for state, n in sorted(counts.items())))
    return EXIT_OK


def _list_line(row: OutboxRow) -> str:
    when = iso_utc(row.sent_at or row.next_attempt_at or row.updated_at or row.created_at)
    reason = f"  {row.last_error}" if row.last_error else ""
    return f"{row.id:>7} {row.state:8} {row.attempts:>3} {when} {row.interface:28} {row.key}{reason}"


def _row_json(row: OutboxRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "interface": row.interface,
        "key": row.key,
        "state": row.state,
        "attempts": row.attempts,
        "created_at": iso_utc(row.created_at),
        "next_attempt_at": iso_utc(row.next_attempt_at),
        "sent_at": iso_utc(row.sent_at),
        "updated_at": iso_utc(row.updated_at),
        "last_error": row.last_error,
    }


# ------------------------------------------------------------------------------------------------ show


async def show_row(config: Config, args: argparse.Namespace) -> int:
    async with store(config) as db:
        detail = await Outbox(db).detail(args.id)
    if detail is None:
        return error(f"no outbox row {args.id} (never queued, or purged)")
    if args.json:
        print_json(_detail_json(detail))
    else:
        print("\n".join(_detail_lines(detail)))
    return EXIT_OK


def _detail_json(detail: RowDetail) -> dict[str, Any]:
    order = detail.order
    return {
        "row": _row_json(detail.row) | {"response": detail.row.response},
        "payload": _payload(detail.row.payload),
        "order": None
        if order is None
        else {"session_id": order.session_id, "start_charge_seq": order.start_charge_seq},
        "answers": [_answer_json(answer) for answer in detail.answers],
        "answers_not_kept": _not_kept(detail.answers),
    }


def _answer_json(answer: Answer) -> dict[str, Any]:
    fields = {"seq": answer.seq, "at": iso_utc(answer.at), "outcome": answer.outcome, "ret": answer.ret}
    return fields | {"reason": answer.reason, "data": answer.data}


def _detail_lines(detail: RowDetail) -> Iterator[str]:
    row = detail.row
    yield f"outbox row {row.id}  {row.interface}  key {row.key}"
    yield f"  state        {row.state} after {row.attempts} attempt(s)"
    for label, moment in (("created", row.created_at), ("next attempt", row.next_attempt_at), ("sent", row.sent_at)):
        yield f"  {label:<12} {iso_utc(moment) or '-'}"
    if row.last_error:
        yield f"  last error   {row.last_error}"
    if detail.order is not None:
        yield f"  order of     session #{detail.order.session_id}, StartChargeSeq {detail.order.start_charge_seq}"
    yield ""
    yield "payload (the Data pushed, before encryption):"
    yield json.dumps(_payload(row.payload), ensure_ascii=False, indent=2)
    yield ""
    yield from _answer_lines(detail)


def _answer_lines(detail: RowDetail) -> Iterator[str]:
    answers = detail.answers
    if not answers:
        kept = f"; the answer stored with the row: {detail.row.response}" if detail.row.response else ""
        yield f"answers: none recorded{kept}"
        return
    yield f"answers ({len(answers)} kept, oldest first):"
    previous = 0
    for answer in answers:
        if answer.seq > previous + 1:
            yield f"  ... {answer.seq - previous - 1} answer(s) not kept ..."
        previous = answer.seq
        yield _answer_line(answer)


def _answer_line(answer: Answer) -> str:
    ret = "no Ret" if answer.ret is None else f"Ret {answer.ret}"
    text = "  ".join(part for part in (answer.reason, "" if answer.data is None else f"Data {answer.data}") if part)
    return f"  {answer.seq:>4}  {iso_utc(answer.at)}  {answer.outcome:<9}  {ret:<9}  {text}".rstrip()


def _not_kept(answers: list[Answer]) -> int:
    return answers[-1].seq - len(answers) if answers else 0


def _payload(text: str) -> Any:
    """The payload as JSON (it is stored as the JSON text pushed); the text itself if it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# ------------------------------------------------------------------------------------------------ requeue, purge


async def requeue_rows(config: Config, args: argparse.Namespace) -> int:
    async with store(config) as db:
        count = await Outbox(db).requeue(None if args.all else args.ids, utc_now())
    print(f"requeued {count} row(s); a running daemon picks them up within a minute")
    return EXIT_OK


async def purge_rows(config: Config, args: argparse.Namespace) -> int:
    async with store(config) as db:
        done = await Outbox(db).purge_dead(None if args.all_dead else args.ids)
    if done.refused:
        return error(f"nothing purged: {_refusals(done.refused)}; only dead-lettered rows can be purged")
    if args.json:
        orders = [_order_json(order) for order in done.orders]
        print_json({"purged": done.purged, "undelivered_orders": orders})
    else:
        print("\n".join(_purge_lines(done)))
    return EXIT_OK


def _refusals(refused: dict[int, str | None]) -> str:
    return ", ".join(
        f"row {id} {'does not exist' if state is None else 'is ' + state}" for id, state in refused.items()
    )


def _purge_lines(done: DeadPurge) -> Iterator[str]:
    listed = f": {', '.join(map(str, done.purged))}" if done.purged and len(done.purged) <= 20 else ""
    yield f"purged {len(done.purged)} dead-lettered row(s){listed}"
    for order in done.orders:
        yield (
            f"row {order.outbox_id} carried the order of session #{order.session_id} (StartChargeSeq "
            f"{order.start_charge_seq}): that order was NOT delivered to the province; "
            f"`edge-bridge orders repush {order.start_charge_seq}` sends it again"
        )


def _order_json(order: OrderRef) -> dict[str, Any]:
    return {"outbox_id": order.outbox_id, "session_id": order.session_id, "start_charge_seq": order.start_charge_seq}

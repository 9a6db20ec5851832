"""``edge-bridge orders list|export|repush``: the orders as pushed to the province, for reconciliation and disputes.

Invariants:
- DATE is a local date of ``[site] timezone`` (the province's records are in local time), ``--to`` inclusive; an
  order belongs to the day of its StartTime (its session's start in local time).
- Money and kWh are printed exactly as pushed: the figures are the pushed JSON text kept with the session
  (``store/orders.py``), never recomputed and never a float.
- The verdict: accepted (ConfirmResult 0), disputed (ConfirmResult 1: dead-lettered with the province's reason),
  dead (another permanent refusal, with its reason), queued (in the outbox), not pushed (its connector is not
  configured, or its energy unknown).
- ``repush`` queues every order named or none: one unknown StartChargeSeq, or one that cannot be sent again, refuses
  the whole command (exit 1). The StartChargeSeq never changes; the content is the stored payload byte for byte,
  or with ``--rebuild`` the daemon's own order builder run again on the stored session (``usecases.orders``).
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from edge_bridge.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, Subcommands, command, error, print_json, store
from edge_bridge.config import Config, site_model
from edge_bridge.domain.stats import day_bounds
from edge_bridge.domain.wiretime import format_datetime
from edge_bridge.store.orders import OrderEntry, order_entries
from edge_bridge.store.outbox import Outbox
from edge_bridge.timeutil import iso_utc, utc_now
from edge_bridge.usecases.context import Context
from edge_bridge.usecases.repush import Plan, Refused, repush
from edge_bridge.verdicts import verdict

log = logging.getLogger(__name__)

DEFAULT_DAYS = 7  # orders list without --from: the last 7 local days, today included
BOM = "\ufeff"  # Excel reads a CSV as UTF-8 only when it starts with one (else as the ANSI code page: GBK in China)
CSV_COLUMNS = (
    "StartChargeSeq",
    "ConnectorID",
    "StartTime",
    "EndTime",
    "TotalPower",
    "TotalElecMoney",
    "TotalSeviceMoney",
    "TotalMoney",
    "StopReason",
    "Verdict",
    "Reason",
    "Charger",
    "EVSE",
    "Connector",
    "SessionID",
)

DATES = """DATE is a local date (YYYY-MM-DD) of [site] timezone, as the province's records are; --to is inclusive. An
order belongs to the day of its StartTime. Verdict: accepted, disputed (ConfirmResult 1, with the province's
reason), dead (refused for good, with the reason), queued (waiting in the outbox), not pushed (connector not
configured, or energy unknown). Orders queued before edge-bridge kept their figures (store version 9) whose outbox
row is purged already show no money; the command says how many.

"""
EXPORT = """CSV (the default): UTF-8 with a byte order mark, so that Excel opens it as UTF-8 (--no-bom for other
tools; Python reads it with encoding="utf-8-sig"), CRLF line ends, a header row: StartChargeSeq, ConnectorID,
StartTime, EndTime (local, as pushed), TotalPower (kWh), TotalElecMoney, TotalSeviceMoney, TotalMoney (yuan),
StopReason, Verdict, Reason, Charger, EVSE, Connector, SessionID. kWh and money are the pushed text, exactly (an
empty cell: not known). In Excel, import StartChargeSeq as Text (Data > From Text/CSV): a long number loses digits.
Oldest StartTime first.

"""
JSON_DOC = """JSON (--json): {"from", "to", "timezone", "orders": [{start_charge_seq, connector_id, start_time,
end_time, total_power_kwh, elec_money, service_money, total_money, stop_reason, verdict, reason, charger, evse,
connector, session_id, started_at}]}: kWh and money decimal strings, started_at ISO 8601 UTC, unknown values null.

"""
REPUSH = """Queues each order again for the province, under the same StartChargeSeq: the content it was pushed
with, byte for byte, or with --rebuild the order built again from the stored session and the tariff of its time by
the daemon's own rules (the changed fields are printed and logged as order_rebuilt). Every order or none: an
unknown StartChargeSeq, an order still waiting in the outbox, or one whose content was not kept (use --rebuild)
refuses the command and queues nothing. A running daemon sends them within a minute (a stopped one when it
starts); `edge-bridge orders list` shows the verdict. A rebuild after [retention] meter_samples_days has no energy
curve left to split by the tariff periods. --json: [{start_charge_seq, outbox_id, rebuilt, changed {field: [old,
new]}}]. Exit 1: refused.

"""


@dataclass(frozen=True)
class Line:
    """One order as the commands print it."""

    entry: OrderEntry
    verdict: str
    reason: str
    start_time: str
    end_time: str


# ---------------------------------------------------------------------------------------------------- register


def register(commands: Subcommands, exit_codes: str) -> None:
    text = "orders as pushed to the province: list, export, repush"
    actions = command(commands, "orders", text, exit_codes, config=False).add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    for add in (_register_list, _register_export, _register_repush):
        add(actions, exit_codes)


def _register_list(actions: Subcommands, exit_codes: str) -> None:
    parser = command(actions, "list", "the orders of some local days, newest first", DATES + JSON_DOC + exit_codes)
    _dates(parser, required=False)
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    parser.set_defaults(handler=run_list, secrets=False)


def _register_export(actions: Subcommands, exit_codes: str) -> None:
    text = "the orders of some local days as CSV (or JSON), for reconciliation"
    parser = command(actions, "export", text, DATES + EXPORT + JSON_DOC + exit_codes)
    _dates(parser, required=True)
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--csv", action="store_true", help="CSV (the default)")
    formats.add_argument("--json", action="store_true", help="one JSON document instead of CSV")
    parser.add_argument("--no-bom", action="store_true", help="CSV without the byte order mark Excel needs")
    parser.set_defaults(handler=run_export, secrets=False)


def _register_repush(actions: Subcommands, exit_codes: str) -> None:
    parser = command(actions, "repush", "push orders again after a dispute, same StartChargeSeq", REPUSH + exit_codes)
    parser.add_argument("seqs", nargs="+", metavar="SEQ", help="StartChargeSeq of an order")
    parser.add_argument("--rebuild", action="store_true", help="rebuild from the stored session instead of resending")
    parser.add_argument("--json", action="store_true", help="print what was queued as JSON")
    parser.set_defaults(handler=run_repush, secrets=False)


def _dates(parser: argparse.ArgumentParser, required: bool) -> None:
    default = "" if required else f" (default: {DEFAULT_DAYS} days up to --to)"
    parser.add_argument("--from", dest="first", type=_date, required=required, metavar="DATE", help=f"first{default}")
    until = "" if required else " (default: today)"
    parser.add_argument("--to", dest="last", type=_date, required=required, metavar="DATE", help=f"last{until}")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


# ---------------------------------------------------------------------------------------------------- list, export


async def run_list(config: Config, args: argparse.Namespace) -> int:
    last = args.last or utc_now().astimezone(config.tz).date()
    first = args.first or last - timedelta(days=DEFAULT_DAYS - 1)
    return await _show(config, first, last, newest_first=True, show=_print_json if args.json else _print_table)


async def run_export(config: Config, args: argparse.Namespace) -> int:
    show = _print_json if args.json else functools.partial(_print_csv, bom=not args.no_bom)
    return await _show(config, args.first, args.last, newest_first=False, show=show)


async def _show(config: Config, first: date, last: date, *, newest_first: bool, show: Callable[..., None]) -> int:
    if last < first:
        return error(f"--to {last} is before --from {first}", EXIT_CONFIG)
    start, end = day_bounds(first, last, config.tz)
    async with store(config) as db:
        entries = await db.read(lambda tx: order_entries(tx, start, end))
    lines = [line_of(entry, config.tz) for entry in (reversed(entries) if newest_first else entries)]
    show(lines, first=first, last=last, tz=config.tz)
    _note_missing(lines)
    return EXIT_OK


def line_of(entry: OrderEntry, tz: ZoneInfo) -> Line:
    """An order with its verdict and its local times (the pushed text, or the session's when it has none)."""
    start = entry.start_time or format_datetime(entry.started_at, tz)
    end = entry.end_time or (format_datetime(entry.ended_at, tz) if entry.ended_at else "")
    return Line(entry, *verdict(entry), start, end)


def _text(value: object | None) -> str:
    return "" if value is None else str(value)


def _print_table(lines: Sequence[Line], **_: Any) -> None:
    print(f"{'StartTime':19}  {'EndTime':19}  {'StartChargeSeq':30} {'ConnectorID':17} {'kWh':>9} {'yuan':>9}  verdict")
    for line in lines:
        e = line.entry
        where = e.connector_id or f"{e.where[0]} {e.where[1]}/{e.where[2]}"
        reason = f" ({line.reason})" if line.reason else ""
        print(
            f"{line.start_time:19}  {line.end_time:19}  {e.start_charge_seq or '-':30} {where:17}"
            f" {_text(e.total_power):>9} {_text(e.total_money):>9}  {line.verdict}{reason}"
        )
    print(_summary(lines))


def _summary(lines: Sequence[Line]) -> str:
    counts = Counter(line.verdict for line in lines)
    accepted = [line.entry for line in lines if line.verdict == "accepted"]
    kwh = sum((e.total_power for e in accepted if e.total_power is not None), Decimal("0.00"))
    money = sum((e.total_money for e in accepted if e.total_money is not None), Decimal("0.00"))
    by_verdict = " ".join(f"{name}={n}" for name, n in sorted(counts.items()))
    return f"{len(lines)} order(s): {by_verdict or 'none'}; accepted: {kwh} kWh, {money} yuan"


def _csv_row(line: Line) -> list[str]:
    e = line.entry
    figures = (e.total_power, e.elec_money, e.service_money, e.total_money, e.stop_reason)
    head = [_text(e.start_charge_seq), _text(e.connector_id), line.start_time, line.end_time]
    return [*head, *map(_text, figures), line.verdict, line.reason, e.where[0], *map(str, (*e.where[1:], e.session_id))]


def _print_csv(lines: Sequence[Line], *, bom: bool, **_: Any) -> None:
    text = io.StringIO()
    writer = csv.writer(text)  # excel dialect: CRLF, quoted only where needed
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_csv_row(line) for line in lines)
    _write_utf8((BOM if bom else "") + text.getvalue())


def _write_utf8(text: str) -> None:
    """UTF-8 whatever the locale says (the file is for Excel and the province's staff, not this terminal)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))


def _json_order(line: Line) -> dict[str, Any]:
    e = line.entry
    figures = (e.total_power, e.elec_money, e.service_money, e.total_money)
    names = ("total_power_kwh", "elec_money", "service_money", "total_money")
    return {
        "start_charge_seq": e.start_charge_seq,
        "connector_id": e.connector_id,
        "start_time": line.start_time,
        "end_time": line.end_time or None,
        **{name: None if value is None else str(value) for name, value in zip(names, figures, strict=True)},
        "stop_reason": e.stop_reason,
        "verdict": line.verdict,
        "reason": line.reason or None,
        "charger": e.where[0],
        "evse": e.where[1],
        "connector": e.where[2],
        "session_id": e.session_id,
        "started_at": iso_utc(e.started_at),
    }


def _print_json(lines: Sequence[Line], *, first: date, last: date, tz: ZoneInfo, **_: Any) -> None:
    orders = [_json_order(line) for line in lines]
    print_json({"from": first.isoformat(), "to": last.isoformat(), "timezone": str(tz), "orders": orders})


def _note_missing(lines: Iterable[Line]) -> None:
    missing = sum(1 for line in lines if line.entry.total_money is None and line.verdict != "not pushed")
    if missing:
        print(
            f"note: {missing} order(s) were queued before edge-bridge kept order figures and their outbox rows are"
            " purged: shown without kWh and money",
            file=sys.stderr,
        )


# ---------------------------------------------------------------------------------------------------- repush


async def run_repush(config: Config, args: argparse.Namespace) -> int:
    seqs = list(dict.fromkeys(args.seqs))  # each once, in the order given
    async with store(config) as db:
        ctx = Context(site_model(config), Outbox(db), config.tz, dict(config.stop_reasons))
        try:
            plans = await db.write(functools.partial(repush, ctx, seqs, args.rebuild, utc_now()))
        except Refused as exc:
            return error(f"{exc}; nothing was queued", EXIT_FAILURE)
    _print_plans(plans, as_json=args.json)
    return EXIT_OK


def _print_plans(queued: Sequence[tuple[Plan, int]], *, as_json: bool) -> None:
    if as_json:
        print_json([_plan_json(plan, row) for plan, row in queued])
        return
    for plan, row in queued:
        how = "the same content" if not plan.rebuilt else f"rebuilt, {_changes(plan.changed)}"
        print(f"queued {plan.entry.start_charge_seq} as outbox row {row} ({how})")
    print("a running daemon sends them within a minute; `edge-bridge orders list` shows the verdict")


def _plan_json(plan: Plan, row: int) -> dict[str, Any]:
    seq = plan.entry.start_charge_seq
    return {"start_charge_seq": seq, "outbox_id": row, "rebuilt": plan.rebuilt, "changed": plan.changed}


def _changes(changed: dict[str, list[str]]) -> str:
    if not changed:
        return "unchanged"
    return "changed: " + ", ".join(f"{k} {old} → {new}" for k, (old, new) in changed.items())

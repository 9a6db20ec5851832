"""``make bench``: edge-bridge beside what a user would otherwise run, in one run, each figure with its target.

``python -m bench.suite [--only ingest,fleet,drain,micro] [--chargers 200] [--seconds 15] ...`` prints a header that
says what machine this is, then one table: each row a figure, edge-bridge's value, the baseline's value (a bare CSMS
on the ``ocpp`` library, or plain signed aiohttp POSTs), their ratio, the target and whether it holds. It asserts
nothing and CI does not run it; bench/README.md explains every row. Exit status 0 whatever the verdicts, 1 when the
benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import shlex
import sqlite3
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench import charger_load, drain, micro, page_poll
from bench.charger_load import BASELINE, EDGE_BRIDGE, Fleet, Ingest, Settings, Window
from bench.procs import BenchError

SECTIONS = ("ingest", "page", "fleet", "drain", "micro")
T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    figure: str
    ours: str
    theirs: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def verdict(holds: bool) -> str:
    return "holds" if holds else "misses"


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "-"


def ms(value: float) -> str:
    return f"{value:.1f} ms" if math.isfinite(value) else "-"


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


# ---------------------------------------------------------------------------------------------------- rows


def ingest_rows(ours: Ingest, theirs: Ingest, settings: Settings) -> list[Row]:
    sat, base = ours.saturated, theirs.saturated
    paced, base_paced = ours.paced, theirs.paced
    n = settings.chargers
    province = ours.province
    accepted = province.get("accepted", {})
    return [
        Row(
            f"msg/s at saturation, {n} chargers, one CALL outstanding each",
            f"{sat.rate:,.0f}",
            f"{base.rate:,.0f}",
            ratio(sat.rate, base.rate),
            ">= 1.0x the bare CSMS",
            verdict(sat.rate >= base.rate),
        ),
        Row(
            f"p50 / p99 at a paced {settings.rate:.0f} msg/s, {n} chargers",
            f"{ms(paced.percentile(50))} / {ms(paced.percentile(99))}",
            f"{ms(base_paced.percentile(50))} / {ms(base_paced.percentile(99))}",
            "",
            "p99 < 25 ms",
            verdict(paced.percentile(99) < 25),
        ),
        Row(
            "  answered in the paced window",
            f"{paced.rate:,.0f}/s",
            f"{base_paced.rate:,.0f}/s",
        ),
        Row(
            "server CPU s per 1,000 messages at saturation",
            f"{sat.cpu_per_1000:.3f}",
            f"{base.cpu_per_1000:.3f}",
            ratio(sat.cpu_per_1000, base.cpu_per_1000),
        ),
        Row("  the same at the paced rate", f"{paced.cpu_per_1000:.3f}", f"{base_paced.cpu_per_1000:.3f}"),
        Row("server peak RSS (VmHWM) after both windows", mib(ours.peak_rss_kib), mib(theirs.peak_rss_kib)),
        Row(
            "CALLERROR answers / dropped connections",
            f"{sat.errors + paced.errors} / {sat.drops + paced.drops}",
            f"{base.errors + base_paced.errors} / {base.drops + base_paced.drops}",
        ),
        Row(
            "load generator CPU, share of one core (saturation)",
            f"{100 * sat.generator_cpu_s / sat.seconds:.0f} %",
            f"{100 * base.generator_cpu_s / base.seconds:.0f} %",
        ),
        Row(
            "province accepted: orders / status pushes / problems",
            f"{accepted.get('notification_orderInfo', 0)} / {accepted.get('notification_stationStatus', 0)} / "
            f"{province.get('problems', '-')}",
        ),
    ]


def page_rows(polled: page_poll.Polled, settings: Settings) -> list[Row]:
    """The saturation figure with the status page open and polled; the baseline column is the same server without."""
    with_page, without = polled.rate_with, polled.rate_without
    routes = " / ".join(polled.served(route) for route, _ in page_poll.POLLS)
    return [
        Row(
            f"msg/s at saturation, {settings.chargers} chargers, status page open (baseline: the same server, not)",
            f"{with_page:,.0f}",
            f"{without:,.0f}",
            ratio(with_page, without),
            "within 5 % of without",
            verdict(with_page >= 0.95 * without),
        ),
        Row(
            "  server CPU s per 1,000 messages, page open / not",
            f"{polled.cpu_per_1000_with:.3f}",
            f"{polled.cpu_per_1000_without:.3f}",
            ratio(polled.cpu_per_1000_with, polled.cpu_per_1000_without),
        ),
        Row(
            "  each window in turn, msg/s: without / with / ... / without",
            " / ".join(f"{w.rate:,.0f}" for pair in _alternate(polled) for w in pair),
        ),
        Row(f"  polls answered 200: {' / '.join(route for route, _ in page_poll.POLLS)}", routes),
    ]


def _alternate(polled: page_poll.Polled) -> list[tuple[Window, ...]]:
    """The windows in the order they ran: without, with, without, ..., without."""
    pairs: list[tuple[Window, ...]] = [(w, p) for w, p in zip(polled.without, polled.polled, strict=False)]
    return [*pairs, (polled.without[-1],)]


def fleet_rows(ours: Fleet, theirs: Fleet, settings: Settings) -> list[Row]:
    n = settings.fleet
    storm_ok = ours.storm_last_s <= 30 and ours.storm_errors == 0 and ours.storm_drops == 0
    return [
        Row(
            f"RSS with {n:,} idle chargers connected",
            mib(ours.idle_rss_kib),
            mib(theirs.idle_rss_kib),
            ratio(ours.idle_rss_kib, theirs.idle_rss_kib),
            "< 150 MB",
            verdict(ours.idle_rss_kib * 1024 < 150e6),
        ),
        Row(
            f"reconnect storm, {n:,} chargers x (Boot + 3 Status + 10 MeterValues): last answer after",
            f"{ours.storm_last_s:.1f} s",
            f"{theirs.storm_last_s:.1f} s",
            ratio(ours.storm_last_s, theirs.storm_last_s),
            "<= 30 s, no CALLERROR, no drop",
            verdict(storm_ok),
        ),
        Row(
            "  CALLERROR answers / dropped connections in the storm",
            f"{ours.storm_errors} / {ours.storm_drops}",
            f"{theirs.storm_errors} / {theirs.storm_drops}",
        ),
        Row(
            "  load generator CPU in the storm",
            f"{ours.storm_generator_cpu_s:.1f} s",
            f"{theirs.storm_generator_cpu_s:.1f} s",
        ),
    ]


def drain_rows(ours: drain.Drain, plain: drain.Drain) -> list[Row]:
    holds = ours.rate >= 1000 and ours.rate >= 0.8 * plain.rate and ours.accepted == ours.pushes
    return [
        Row(
            f"drain of a {ours.pushes:,}-row outbox backlog to the mock province, pushes/s",
            f"{ours.rate:,.0f}",
            f"{plain.rate:,.0f}",
            ratio(ours.rate, plain.rate),
            ">= 1,000/s and >= 0.8x plain POSTs",
            verdict(holds),
        ),
        Row(
            "  CPU s per 1,000 pushes (the mock province's not counted)",
            f"{1000 * ours.cpu_s / ours.pushes:.3f}",
            f"{1000 * plain.cpu_s / plain.pushes:.3f}",
            ratio(ours.cpu_s, plain.cpu_s),
        ),
        Row(
            "  accepted by the province / problems",
            f"{ours.accepted:,} / {ours.problems}",
            f"{plain.accepted:,} / {plain.problems}",
        ),
    ]


def micro_rows(order_ms: float, details: int, ready_s: float, samples: int) -> list[Row]:
    return [
        Row(
            f"order of a 24 h session with {micro.SAMPLES_PER_DAY:,} samples ({details} ChargeDetails), median",
            ms(order_ms),
            target="< 5 ms",
            verdict=verdict(order_ms < 5),
        ),
        Row(
            f"start to READY=1 with {samples:,} meter samples stored",
            f"{ready_s:.2f} s",
            target="< 2 s",
            verdict=verdict(ready_s < 2),
        ),
    ]


# ---------------------------------------------------------------------------------------------------- run


async def run(args: argparse.Namespace) -> list[Row]:
    settings = Settings(args.chargers, args.seconds, args.rate, args.fleet, args.generators)
    rows: list[Row] = []
    if "ingest" in args.only:
        ours = await _step(f"{EDGE_BRIDGE}: ingest", charger_load.measure_ingest(EDGE_BRIDGE, settings))
        theirs = await _step(f"{BASELINE}: ingest", charger_load.measure_ingest(BASELINE, settings))
        rows += ingest_rows(ours, theirs, settings)
    if "page" in args.only:
        rows += page_rows(
            await _step(f"{EDGE_BRIDGE}: ingest with the page open", page_poll.measure(settings)), settings
        )
    if "fleet" in args.only:
        ours_fleet = await _step(f"{EDGE_BRIDGE}: fleet", charger_load.measure_fleet(EDGE_BRIDGE, settings))
        theirs_fleet = await _step(f"{BASELINE}: fleet", charger_load.measure_fleet(BASELINE, settings))
        rows += fleet_rows(ours_fleet, theirs_fleet, settings)
    if "drain" in args.only:
        ours_drain, plain = await _step("drain", drain.measure(args.backlog, args.lanes))
        rows += drain_rows(ours_drain, plain)
    if "micro" in args.only:
        order_ms, details = await _step("order", micro.order_build_ms())
        ready_s = await _step("ready", micro.time_to_ready(args.samples))
        rows += micro_rows(order_ms, details, ready_s, args.samples)
    return rows


async def _step(name: str, work: Awaitable[T]) -> T:
    print(f"... {name}", file=sys.stderr, flush=True)
    return await work


def table(rows: list[Row]) -> str:
    head = Row("figure", "edge-bridge", "baseline", "ratio", "target", "verdict")
    cells = [[r.figure, r.ours, r.theirs, r.ratio, r.target, r.verdict] for r in (head, *rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(6)]
    lines = ["  ".join(_cell(i, c, w) for i, (c, w) in enumerate(zip(cell, widths, strict=True))) for cell in cells]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def _cell(column: int, text: str, width: int) -> str:
    return text.ljust(width) if column == 0 else text.rjust(width)


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (an fsync costs what the filesystem makes it cost)."""
    best, kind = Path("/"), "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            _, mount, fs_type, *_ = line.split()
            point = Path(mount)
            if (point == path or point in path.parents) and len(point.parts) >= len(best.parts):
                best, kind = point, fs_type
    return kind


def header() -> str:
    tmp = Path(tempfile.gettempdir()).resolve()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return "\n".join(
        [
            f"command:  {shlex.join(sys.orig_argv)}",
            f"machine:  nproc {len(os.sched_getaffinity(0))}, load {load} at the start, {platform.machine()}, "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, databases in {tmp} "
            f"({filesystem(tmp)})",
            "baseline: the bare ocpp-library CSMS (charger rows), plain signed aiohttp POSTs (drain rows)",
            "caveat:   one run on a shared machine; compare the two columns of one run, not runs of different days",
        ]
    )


def _bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not between {low:g} and {high:g}")
        return value

    return parse


def _sections(text: str) -> set[str]:
    chosen = {s.strip() for s in text.split(",") if s.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.suite", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--only", type=_sections, default=set(SECTIONS), help=f"sections, of {','.join(SECTIONS)}")
    p.add_argument("--chargers", type=_bounded(int, 1, 2000), default=200, help="chargers for ingest (200)")
    p.add_argument("--seconds", type=_bounded(float, 1, 600), default=15.0, help="each timed window (15)")
    p.add_argument("--rate", type=_bounded(float, 1, 100_000), default=500.0, help="paced msg/s (500)")
    p.add_argument("--fleet", type=_bounded(int, 1, 5000), default=1000, help="idle and storm chargers (1000)")
    p.add_argument("--generators", type=_bounded(int, 1, 16), default=2, help="load-generator processes (2)")
    p.add_argument("--backlog", type=_bounded(int, 1, 10_000_000), default=100_000, help="outbox rows (100000)")
    p.add_argument("--lanes", type=_bounded(int, 1, 5000), default=200, help="connectors of the backlog (200)")
    p.add_argument("--samples", type=_bounded(int, 0, 100_000_000), default=1_000_000, help="stored samples")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    print(header(), end="\n\n", flush=True)
    try:
        rows = asyncio.run(run(args))
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retention bounded (issue 8, item 7): a site of 10 chargers charging every day keeps its database under a
documented size, purges what ``[retention]`` says, and keeps the sessions ``query_station_stats`` needs.

How the month is accelerated, honestly: the whole daemon (``App``) runs in-process on loopback ports with a settable
clock, its pushes going to the strict mock province on the same clock. Ten simulated chargers (five OCPP 1.6 DC at
60 kW, five 2.0.1 AC at 7 kW, one connector each) talk to it over real websockets, in lock-step with simulated time:
every simulated minute the clock moves one minute and each charger does what a real one does in that minute (one
MeterValues while charging, stamped on the minute; plug-in, Authorize, start, stop, unplug at a session's edges; a
Heartbeat after 300 s without a message). Each charger has 6-10 sessions of 30-90 minutes a day (seeded random).
The daemon's own hourly maintenance runs at its interval in simulated time (``App(pause=...)`` waits on the
simulated clock instead of the wall clock). So the store sees the messages, commits and pushes of a real month,
only without the idle wall-clock time in between.

Measured: the database file plus its WAL after every simulated day (the peak; SQLite reuses freed pages, so the file
stays at its high-water mark) and at the end; printed as ``retention NAME: ...`` lines with the size per charger-day.
The 30-day runs (short retention, and the defaults) are marked ``reliability``; a 2-day run with 1-day retention
runs in ``make test``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.app import App
from edge_bridge.config import Config, load_config
from simulators.charger import Sim16, Sim201, SimClock
from simulators.province import MockProvince, pull
from tests.acceptance.conftest import Store
from tests.conftest import Clock, eventually
from tests.reliability.scoring import figure

CHARGERS = 10
MINUTE = timedelta(minutes=1)
DAY_MINUTES = 1440
HEARTBEAT_MINUTES = 5  # [ocpp] heartbeat_interval_s = 300
STATION = "370202000001"
MIB = 1024 * 1024
# The documented bounds (README, "Retention"): the largest file (+ WAL) the runs may reach.
SHORT_BOUND_MIB = 24  # 10 chargers for 30 days, samples 7 d, outbox 3 d, sessions 400 d
SESSIONS_GROWTH_BOUND_KIB = 16  # per charger-day once samples and pushes are purged as fast as they come
PER_CHARGER_DAY_BOUND_KIB = 240  # growth while nothing is purged yet (the defaults' first 30 days)
QUICK_BOUND_MIB = 8


@dataclass(frozen=True)
class Retention:
    outbox_days: int
    meter_samples_days: int
    sessions_days: int


# ------------------------------------------------------------------------------------------------ simulated time


class SimTimer:
    """The daemon's maintenance waits on the simulated clock: ``pause`` returns when ``advance`` has moved the clock
    past its due moment (or the daemon stops)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._due: list[tuple[datetime, asyncio.Future[None]]] = []

    async def pause(self, stop: asyncio.Event, seconds: float) -> None:
        due = asyncio.get_running_loop().create_future()
        self._due.append((self.clock.now + timedelta(seconds=seconds), due))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({due, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()

    def advance(self, now: datetime) -> None:
        self.clock.now = now
        for moment, due in self._due:
            if moment <= now and not due.done():
                due.set_result(None)
        self._due = [(m, d) for m, d in self._due if not d.done()]


def sync(clock: SimClock, now: datetime) -> None:
    if now > clock.now():
        clock.advance(now - clock.now())


# ------------------------------------------------------------------------------------------------ the chargers


def day_plan(rng: random.Random, day: int) -> dict[int, int]:
    """{start minute: duration} for one charger and day: 6-10 sessions of 30-90 minutes, one per equal slot."""
    count = rng.randint(6, 10)
    slot = DAY_MINUTES // count
    plan = {}
    for n in range(count):
        duration = rng.randint(30, 90)
        plan[day * DAY_MINUTES + n * slot + rng.randint(1, slot - duration - 2)] = duration
    return plan


@dataclass
class Charger:
    sim: Sim16 | Sim201
    power_kw: float
    plan: dict[int, int]
    remaining: int = 0
    last_message: int = 0
    sessions: int = 0

    async def minute(self, m: int, now: datetime) -> None:
        """What the charger does in the minute that ends at ``now`` (minute ``m`` of the run)."""
        if self.remaining:
            await self.sim.charge(1, power_kw=self.power_kw, minutes=1, sample_every_s=60)
            self.remaining -= 1
            if not self.remaining:
                await self.sim.stop_charging(1)
                await self.sim.unplug(1)
                self.sessions += 1
        else:
            sync(self.sim.clock, now)
            if m in self.plan:
                await self.start(self.plan[m])
            elif m - self.last_message < HEARTBEAT_MINUTES:
                return
            else:
                await self.sim.heartbeat()
        self.last_message = m

    async def start(self, minutes: int) -> None:
        await self.sim.plug_in(1)
        await self.sim.authorize(1)
        await self.sim.start_charging(1)
        self.remaining = minutes


def charger_ids(count: int) -> list[tuple[str, str]]:
    """Half OCPP 1.6 DC chargers, half 2.0.1 AC chargers."""
    half = count // 2
    return [(f"CP-DC-{n:02d}", "1.6") for n in range(1, half + 1)] + [
        (f"CP-AC-{n:02d}", "2.0.1") for n in range(1, count - half + 1)
    ]


def site_chargers(raw: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Copies of the example's DC and AC charger, one connector each."""
    dc, ac = raw["stations"][0]["chargers"]
    chargers = []
    for n, (ocpp_id, version) in enumerate(charger_ids(count), start=1):
        template = dc if version == "1.6" else ac
        equipment = f"{STATION}{n:03d}"
        connector = {**template["connectors"][0], "connector_id": f"{equipment}A"}
        chargers.append({**template, "ocpp_id": ocpp_id, "equipment_id": equipment, "connectors": [connector]})
    return chargers


# ------------------------------------------------------------------------------------------------ the run


@dataclass
class Month:
    name: str
    chargers: int
    days: int
    retention: Retention
    start: datetime
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (db file, WAL) after each day
    tables: dict[str, int] = field(default_factory=dict)  # bytes of each table with its indexes, at the end
    seconds: float = 0.0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    @property
    def peak(self) -> int:
        return max(db + wal for db, wal in self.sizes)

    def growth(self, first_day: int = 1) -> float:
        """Bytes per charger-day the database file grew from the end of ``first_day`` to the end."""
        grown = self.sizes[-1][0] - self.sizes[first_day - 1][0]
        return grown / max(1, self.days - first_day) / self.chargers

    def lines(self) -> list[str]:
        r, (db, wal) = self.retention, self.sizes[-1]
        charger_days = self.chargers * self.days
        per_table = ", ".join(f"{name} {size / charger_days / 1024:.1f}" for name, size in self.tables.items())
        return [
            f"retention {self.name}: {self.chargers} chargers x {self.days} days (samples {r.meter_samples_days} d, "
            f"outbox {r.outbox_days} d, sessions {r.sessions_days} d) in {self.seconds:.0f} s: db+wal peak "
            f"{self.peak / MIB:.1f} MiB, end db {db / MIB:.1f} MiB + wal {wal / MIB:.1f} MiB, "
            f"growth {self.growth() / 1024:.0f} KiB per charger-day",
            f"retention {self.name}: kept at the end, KiB per charger-day of the run: {per_table}",
        ]


def db_size(path: Path) -> tuple[int, int]:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


TABLE_BYTES = """
SELECT s.tbl_name AS name, SUM(d.pgsize) AS size FROM dbstat AS d JOIN sqlite_schema AS s ON d.name = s.name
GROUP BY s.tbl_name ORDER BY size DESC
"""


@dataclass
class Site:
    config: Config
    app: App
    clock: Clock
    timer: SimTimer
    province: MockProvince
    store: Store

    @property
    def db_path(self) -> Path:
        return Path(self.config.storage.path)


@pytest.fixture
async def month_site(write_config: Callable[..., Path]) -> AsyncIterator[Callable[..., Any]]:
    """start(retention, start) -> Site: the daemon and the mock province on one settable clock."""
    stack: list[tuple[asyncio.Event, asyncio.Task[None], MockProvince]] = []

    async def start(retention: Retention, start: datetime, chargers: int) -> Site:
        clock = Clock(start)
        province = MockProvince.from_config(load_config(write_config()), clock=clock)
        await province.start()

        def mutate(raw: dict[str, Any]) -> None:
            raw["province"].update(base_url=province.url, retry_initial_s=0.05, retry_max_s=0.5)
            raw["ocpp"]["offline_after_s"] = 900  # a charger is silent for at most one heartbeat (300 s) here
            raw["retention"] = vars(retention)
            raw["stations"][0]["chargers"] = site_chargers(raw, chargers)

        config = load_config(write_config(mutate, name="site.toml"))
        timer = SimTimer(clock)
        app = App(config, clock=clock, drain_timeout_s=0.5, pause=timer.pause)
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop))
        stack.append((stop, task, province))
        await eventually(lambda: app.started.is_set() or task.done(), "the daemon to start")
        assert app.started.is_set(), task.result()
        return Site(config, app, clock, timer, province, Store(Path(config.storage.path)))

    yield start
    for stop, task, province in reversed(stack):
        stop.set()
        await asyncio.wait_for(task, 10)
        await province.stop()


async def run_month(site: Site, month: Month, seed: int = 8) -> list[Charger]:
    rng = random.Random(seed)
    base = f"ws://127.0.0.1:{site.app.ocpp_port}{site.config.ocpp.path_prefix}/"
    chargers = []
    for ocpp_id, version in charger_ids(month.chargers):
        clock = SimClock(start=month.start, speed=0)
        sim = (Sim16 if version == "1.6" else Sim201)(base + ocpp_id, clock=clock, response_timeout=30)
        plan = {k: v for day in range(month.days) for k, v in day_plan(rng, day).items()}
        chargers.append(Charger(sim, 60.0 if version == "1.6" else 7.0, plan))
    began = time.monotonic()
    for charger in chargers:
        await charger.sim.connect()
    for m in range(1, month.days * DAY_MINUTES + 1):
        now = month.start + m * MINUTE
        site.timer.advance(now)
        await asyncio.gather(*(c.minute(m, now) for c in chargers))
        if m % DAY_MINUTES == 0:
            month.sizes.append(db_size(site.db_path))
    await eventually(lambda: not site.store.rows("SELECT 1 FROM outbox WHERE state != 'sent'"), "the pushes", 60)
    month.seconds = time.monotonic() - began
    month.tables = {row["name"]: row["size"] for row in site.store.rows(TABLE_BYTES) if row["size"] > 8192}
    for charger in chargers:
        await charger.sim.disconnect()
    return chargers


# ------------------------------------------------------------------------------------------------ the checks


def local_day(text: str) -> str:
    return text[:10]


async def stats_of_day(site: Site, day: str) -> dict[str, Any]:
    p = site.config.province
    base = f"http://127.0.0.1:{site.app.pull_port}{site.config.pull_api.path_prefix}"
    data = {"StationID": STATION, "StartTime": day, "EndTime": day}
    ret, msg, answer = await pull(
        base, "query_station_stats", data, province_id=p.operator_id, secrets=p.secrets(), tz=site.config.tz,
        clock=site.clock,
    )  # fmt: skip
    assert ret == 0 and answer is not None, msg
    return dict(answer["StationStats"])


async def check_stats_kept(site: Site, month: Month) -> int:
    """Every local day whose sessions the retention keeps answers exactly the orders the province accepted for it.
    Returns the number of days checked."""
    orders = site.province.accepted("notification_orderInfo")
    kept_from = (month.end - timedelta(days=month.retention.sessions_days)).astimezone(site.config.tz).date()
    first = max(kept_from + timedelta(days=1), month.start.astimezone(site.config.tz).date())
    last = (month.end - MINUTE).astimezone(site.config.tz).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    for day in days:
        mine = [o for o in orders if local_day(o["EndTime"]) == day.isoformat()]
        stats = await stats_of_day(site, day.isoformat())
        total = sum((Decimal(str(o["TotalPower"])) for o in mine), Decimal("0.00"))
        assert (stats["ConnectorNum"], Decimal(str(stats["StationElectricity"]))) == (len(mine), total), day
    return len(days)


def check_purged(site: Site, month: Month) -> None:
    """Nothing is kept longer than configured (plus the maintenance interval), and nothing more is purged."""
    r, end = month.retention, month.end
    slack = timedelta(hours=1, minutes=5)
    oldest_sample = site.store.rows("SELECT MIN(at) AS at FROM meter_samples")[0]["at"]
    assert from_text(oldest_sample) >= end - timedelta(days=r.meter_samples_days) - slack
    oldest_push = site.store.rows("SELECT MIN(sent_at) AS at FROM outbox WHERE state = 'sent'")[0]["at"]
    assert from_text(oldest_push) >= end - timedelta(days=r.outbox_days) - slack
    if month.days > r.meter_samples_days:  # the purge kept what is younger: samples of the last day are all there
        assert from_text(oldest_sample) <= end - timedelta(days=r.meter_samples_days) + slack


def from_text(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text).astimezone(UTC)


def sessions_completed(chargers: list[Charger]) -> int:
    return sum(c.sessions for c in chargers)


def assert_no_errors(chargers: list[Charger]) -> None:
    failed = [(c.sim.identity, a.action, a.error or a.invalid) for c in chargers for a in c.sim.answers if not a.ok]
    assert failed == []


async def month_run(
    start_site: Callable[..., Any], name: str, days: int, retention: Retention, chargers: int = CHARGERS
) -> Month:
    start = datetime(2025, 3, 1, 16, 0, tzinfo=UTC)  # local midnight in Asia/Shanghai
    site = await start_site(retention, start, chargers)
    month = Month(name, chargers, days, retention, start)
    chargers = await run_month(site, month)
    assert_no_errors(chargers)
    orders = site.province.accepted("notification_orderInfo")
    assert len({o["StartChargeSeq"] for o in orders}) == sessions_completed(chargers) == len(orders)
    check_purged(site, month)
    assert await check_stats_kept(site, month) >= min(days, retention.sessions_days) - 1
    for line in month.lines():
        figure(line)
    return month


# ------------------------------------------------------------------------------------------------ the tests


async def test_two_days_with_one_day_retention_purge_inside_the_run(month_site: Callable[..., Any]) -> None:
    month = await month_run(month_site, "quick", 2, Retention(1, 1, 1), chargers=4)
    assert month.peak < QUICK_BOUND_MIB * MIB


@pytest.mark.reliability
@pytest.mark.timeout(1500)
async def test_thirty_days_short_retention_stays_bounded(month_site: Callable[..., Any]) -> None:
    """Samples kept 7 days, pushes 3 days, sessions (orders) the default 400 days: once the purges keep pace (day
    8), the file grows only by the sessions kept for the statistics."""
    month = await month_run(month_site, "short", 30, Retention(3, 7, 400))
    assert month.peak < SHORT_BOUND_MIB * MIB
    assert month.growth(first_day=10) < SESSIONS_GROWTH_BOUND_KIB * 1024, month.sizes


@pytest.mark.reliability
@pytest.mark.timeout(600)
async def test_default_retention_growth_per_charger_day(month_site: Callable[..., Any]) -> None:
    """The defaults purge nothing in the first 30 days: a week measures the growth per charger-day."""
    month = await month_run(month_site, "defaults", 7, Retention(30, 90, 400))
    assert month.growth() < PER_CHARGER_DAY_BOUND_KIB * 1024, month.sizes


def test_day_plans_are_realistic() -> None:
    rng = random.Random(1)
    for day in range(50):
        plan = sorted(day_plan(rng, day).items())
        assert 6 <= len(plan) <= 10
        assert all(30 <= minutes <= 90 for _, minutes in plan)
        ends = [start + minutes for start, minutes in plan]
        assert all(end < nxt for end, (nxt, _) in zip(ends, plan[1:], strict=False))
        assert day * DAY_MINUTES < plan[0][0] and ends[-1] < (day + 1) * DAY_MINUTES

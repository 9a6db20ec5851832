"""The clock jumps while sessions are open (issue 8): an NTP step of +1 h or -1 h of the gateway's clock (the
``App``'s injected clock) or of the chargers' clocks (the simulators' ``SimClock``), halfway through a 30-minute
session on a 1.6 and a 2.0.1 charger at once.

The chargers' clocks start 40 minutes behind real time, frozen (only the simulators move them), so a gateway clock
that steps back an hour sees the rest of the session dated in its future and replaces those times with its own
(ocpp-bridge §3). Whatever jumps: every order is consistent (no negative duration, every detail inside the order,
details summing to the totals), carries the energy the chargers delivered (15 kWh each), no stored session ends
before it starts, and the province accepts each order exactly once. A gateway jump is logged once as
``clock_jumped`` with its offset; a charger's clock that went back shows as ``end_before_start`` on the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.config import Config, load_config
from edge_bridge.domain.sessions import END_BEFORE_START
from simulators.charger import Sim16, Sim201
from simulators.province import Fault, MockProvince
from tests.conftest import eventually
from tests.reliability.inprocess_site import (
    ORDER,
    JumpingSimClock,
    check_order,
    one_session,
    order_key,
    running,
    store_rows,
    ws_url,
)
from tests.reliability.scoring import record, score

HOUR_S = 3600.0
SESSION_MIN = 30
POWER_KWH = Decimal("15.00")  # 30 kW for 30 minutes


class GatewayClock:
    """The daemon's wall clock: real time plus what NTP stepped it by."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
async def province(config: Config) -> AsyncIterator[MockProvince]:
    """The strict mock province without its TimeStamp skew check: a gateway whose clock is an hour off sends
    TimeStamps an hour off, which is the province's concern, not this scenario's."""
    mock = MockProvince.from_config(config, max_skew_s=None)
    await mock.start()
    yield mock
    await mock.stop()


@pytest.fixture
def site_config(write_config: Callable[..., Path], province: MockProvince) -> Config:
    def to_province(raw: dict[str, Any]) -> None:
        raw["province"].update(base_url=province.url, retry_initial_s=0.05, retry_max_s=0.5)

    return load_config(write_config(to_province, name="site.toml"))


async def charge_across_a_jump(
    sim: Sim16 | Sim201, config: Config, jump: Callable[[], None], midway: asyncio.Barrier
) -> tuple[str, str]:
    async def at_the_jump() -> None:
        if await midway.wait() == 0:  # one of the two chargers steps the clock, once both are halfway
            jump()
        await midway.wait()

    await sim.connect()
    return await one_session(sim, config, minutes=SESSION_MIN, during=at_the_jump)


@pytest.mark.parametrize("whose", ["gateway", "chargers"])
@pytest.mark.parametrize("step_s", [HOUR_S, -HOUR_S])
async def test_orders_stay_consistent_across_a_clock_jump(
    whose: str, step_s: float, site_config: Config, province: MockProvince, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_bridge")
    gateway = GatewayClock()
    start = (datetime.now(UTC) - timedelta(minutes=40)).replace(microsecond=0)
    clocks = [JumpingSimClock(start, speed=0), JumpingSimClock(start, speed=0)]

    def jump() -> None:
        for clock in [gateway] if whose == "gateway" else clocks:
            clock.jump(step_s)

    midway = asyncio.Barrier(2)
    async with running(site_config, clock=gateway, timer_interval_s=0.1) as app:
        dc = Sim16(ws_url(app, "CP-DC-01"), connectors=2, clock=clocks[0])
        ac = Sim201(ws_url(app, "CP-AC-01"), connectors=1, clock=clocks[1])
        async with dc, ac:
            keys = await asyncio.gather(
                charge_across_a_jump(dc, site_config, jump, midway),
                charge_across_a_jump(ac, site_config, jump, midway),
            )
            await eventually(lambda: len(province.accepted(ORDER)) >= 2, "both orders accepted")
            await asyncio.sleep(0.2)  # a watcher look after the jump (every 0.1 s)
    orders = province.accepted(ORDER)
    for order in orders:
        check_order(order)
        assert order["TotalPower"] == POWER_KWH, order
        assert order["StartTime"] < order["EndTime"], order  # a 30-minute session has a duration
    sessions = store_rows(site_config, "SELECT started_at, ended_at, flags FROM sessions ORDER BY id")
    assert len(sessions) == 2 and all(s["ended_at"] >= s["started_at"] for s in sessions), sessions
    jumps = [getattr(r, "offset_s", None) for r in caplog.records if r.getMessage() == "clock_jumped"]
    if whose == "gateway":
        assert len(jumps) == 1 and abs(jumps[0] - step_s) < 5, jumps
    else:
        assert jumps == []
        went_back = [s for s in sessions if END_BEFORE_START in s["flags"]]
        assert len(went_back) == (2 if step_s < 0 else 0), sessions
    assert province.problems() == []
    name = f"clock_{whose}_{'+' if step_s > 0 else '-'}1h"
    assert record(score(name, keys, [order_key(o) for o in orders])).perfect


async def test_a_push_backed_off_before_the_clock_went_back_does_not_wait_the_hour(
    site_config: Config, province: MockProvince
) -> None:
    """A retry is never further away than ``retry_max_s``: a row backed off just before the gateway's clock stepped
    back an hour is retried within seconds, not an hour later."""
    gateway = GatewayClock()
    province.inject(Fault("ret", ORDER, count=10_000, ret=-1))
    async with running(site_config, clock=gateway, timer_interval_s=0.1) as app:
        async with Sim16(ws_url(app, "CP-DC-01"), connectors=2, clock=JumpingSimClock(speed=0)) as sim:
            await sim.connect()
            key = await one_session(sim, site_config)

        def rows() -> list[dict[str, Any]]:
            return store_rows(site_config, "SELECT * FROM outbox WHERE interface = ?", (ORDER,))

        await eventually(lambda: rows() and rows()[0]["attempts"] >= 2, "two failed attempts")
        gateway.jump(-HOUR_S)
        province.clear_faults()
        await eventually(lambda: rows()[0]["state"] == "sent", "the order sent after the clock went back", 5.0)
    orders = province.accepted(ORDER)
    assert record(score("clock_gateway_-1h_during_backoff", [key], [order_key(o) for o in orders])).perfect

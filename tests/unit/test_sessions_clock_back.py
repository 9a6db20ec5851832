"""A session whose stop is dated before its start (a clock went back in between) never ends before it starts, and
its order stays consistent: the end is the start plus the time the bridge saw pass, or the last activity."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from edge_bridge.domain import sessions
from edge_bridge.domain.events import Reading, SessionEvent
from edge_bridge.domain.orders import FinishedSession, build_order
from edge_bridge.domain.sessions import END_BEFORE_START, Session
from edge_bridge.domain.site import Tariff, TariffPeriod

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def opened_16() -> Session:
    start = SessionEvent("CP", "started", at(0), at(0), evse=1, connector=1, id_tag="T", meter_wh=Decimal(1000))
    outcome = sessions.start_16(start, same_start=None, open_here=[])
    assert outcome.session is not None
    sampled = sessions.sampled(outcome.session, (Reading(at(10), energy_wh=Decimal(6000)),), at(10))
    return replace(sampled, id=7, transaction_ref="7")


def stop_16(charger_at: datetime, received_at: datetime) -> SessionEvent:
    return SessionEvent(
        "CP", "ended", charger_at, received_at, transaction_ref="7", meter_wh=Decimal(16000), stop_reason="Local"
    )


def test_a_stop_after_the_start_is_believed() -> None:
    closed = sessions.stop_16(stop_16(at(30), at(30)), opened_16()).session
    assert closed is not None
    assert closed.ended_at == at(30) and END_BEFORE_START not in closed.flags


def test_the_chargers_clock_went_back_an_hour_the_bridge_saw_30_minutes_pass() -> None:
    closed = sessions.stop_16(stop_16(at(30) - HOUR, at(30)), opened_16()).session
    assert closed is not None
    assert closed.ended_at == at(30)
    assert END_BEFORE_START in closed.flags
    assert closed.energy_wh == Decimal(15000)  # the registers, not the clocks


def test_both_clocks_went_back_the_end_is_the_last_activity() -> None:
    """The bridge's clock went back too (it replaced a charger time from the future with its own)."""
    closed = sessions.stop_16(stop_16(at(30) - HOUR, at(30) - HOUR), opened_16()).session
    assert closed is not None
    assert closed.ended_at == at(10)  # the last sample
    assert END_BEFORE_START in closed.flags and closed.energy_wh == Decimal(15000)


def test_a_201_ended_before_its_started() -> None:
    def event(kind: str, seq: int, charger_at: datetime, received_at: datetime) -> SessionEvent:
        reading = (Reading(charger_at, energy_wh=Decimal(1000 + 500 * seq)),)
        return SessionEvent("CP", kind, charger_at, received_at, "tx", seq, readings=reading)  # type: ignore[arg-type]

    opened = sessions.transaction_event(event("started", 0, at(0), at(0)), session=None, open_here=[]).session
    assert opened is not None
    ended = sessions.transaction_event(event("ended", 20, at(20) - HOUR, at(20)), session=opened, open_here=[])
    assert ended.session is not None
    assert ended.session.ended_at == at(20) and END_BEFORE_START in ended.session.flags
    assert ended.session.energy_wh == Decimal(10000)


def test_the_order_of_such_a_session_keeps_its_details_inside() -> None:
    closed = sessions.stop_16(stop_16(at(30) - HOUR, at(30)), opened_16()).session
    assert closed is not None and closed.ended_at is not None and closed.energy_wh is not None
    tariff = Tariff("two", (TariffPeriod(0, 8 * 60 + 20, Decimal("0.35"), Decimal("0.40")),
                     TariffPeriod(8 * 60 + 20, 24 * 60, Decimal("0.72"), Decimal("0.40"))))  # fmt: skip
    samples = ((at(10), Decimal(5000)), (at(20) - HOUR, Decimal(10000)))  # one dated before the start
    finished = FinishedSession(7, "C1", closed.started_at, closed.ended_at, closed.energy_wh, samples)
    order = build_order(finished, tariff, ZoneInfo("UTC"), "OP").data
    assert (order["StartTime"], order["EndTime"]) == ("2024-05-01 08:00:00", "2024-05-01 08:30:00")
    details = order["ChargeDetails"]
    assert [(d["DetailStartTime"], d["DetailEndTime"]) for d in details] == [
        ("2024-05-01 08:00:00", "2024-05-01 08:20:00"),
        ("2024-05-01 08:20:00", "2024-05-01 08:30:00"),
    ]
    assert sum(d["DetailPower"] for d in details) == order["TotalPower"] == Decimal("15.00")

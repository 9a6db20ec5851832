"""Session rules (ocpp-bridge §3, §4 Session energy), pure: starts, stops, orphans, 2.0.1 assembly, energy, zombies."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from edge_bridge.domain import sessions
from edge_bridge.domain.events import MeterSampled, Reading, SessionEvent, SessionKind
from edge_bridge.domain.sessions import Register, Registers, Session, baseline
from edge_bridge.domain.status import ConnectorState

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def start16(minute: float = 0, meter: str | None = "1000", tag: str = "TAG", evse: int = 1) -> SessionEvent:
    return SessionEvent(
        "CP", "started", at(minute), at(minute), evse=evse, connector=1, id_tag=tag,
        meter_wh=None if meter is None else Decimal(meter),
    )  # fmt: skip


def stop16(ref: str, minute: float = 60, meter: str = "21000", readings: tuple[Reading, ...] = ()) -> SessionEvent:
    return SessionEvent(
        "CP", "ended", at(minute), at(minute), transaction_ref=ref, meter_wh=Decimal(meter), readings=readings,
        stop_reason="Local",
    )  # fmt: skip


def ev201(kind: SessionKind, seq: int, minute: float, wh: str | None = None, **kw: object) -> SessionEvent:
    readings = () if wh is None else (Reading(at(minute), energy_wh=Decimal(wh)),)
    return SessionEvent(
        "CP", kind, at(minute), at(minute), transaction_ref="tx-1", seq_no=seq, readings=readings, **kw  # type: ignore[arg-type]
    )  # fmt: skip


def started(event: SessionEvent, session_id: int = 7) -> Session:
    outcome = sessions.start_16(event, same_start=None, open_here=[])
    assert outcome.session is not None
    return replace(outcome.session, id=session_id, transaction_ref=str(session_id))


# ------------------------------------------------------------------------------------------------ 1.6


def test_start_opens_a_session_with_its_key_and_meter_start() -> None:
    outcome = sessions.start_16(start16(), same_start=None, open_here=[])
    s = outcome.session
    assert s is not None and s.id is None and s.is_open
    assert (s.evse, s.connector, s.id_tag, s.meter_start_wh, s.energy_wh) == (1, 1, "TAG", Decimal(1000), 0)
    assert s.start_key == "CP|1|TAG|2024-05-01T08:00:00.000000+00:00|1000"


def test_repeated_start_answers_the_same_id_and_writes_nothing() -> None:
    first = started(start16())
    outcome = sessions.start_16(start16(), same_start=first, open_here=[first])
    assert outcome == sessions.SessionOutcome(reply_id=7, duplicate=True)


@pytest.mark.parametrize(
    "other",
    [start16(tag="OTHER"), start16(minute=1), start16(meter="1001"), start16(evse=2)],
    ids=["idTag", "timestamp", "meterStart", "connector"],
)
def test_the_start_key_tells_starts_apart(other: SessionEvent) -> None:
    assert sessions.start_key(other) != sessions.start_key(start16())


def test_start_key_does_not_depend_on_how_the_meter_was_written() -> None:
    assert sessions.start_key(start16(meter="1000.0")) == sessions.start_key(start16(meter="1000"))


def test_stop_closes_with_meter_stop_minus_meter_start() -> None:
    outcome = sessions.stop_16(stop16("7"), started(start16()))
    s = outcome.session
    assert s is not None
    assert (s.state, s.end_source, s.ended_at, s.energy_wh, s.stop_reason) == (
        "finished", "stop", at(60), Decimal(20000), "Local"
    )  # fmt: skip


def test_repeated_stop_is_ignored() -> None:
    closed = sessions.stop_16(stop16("7"), started(start16())).session
    assert closed is not None
    assert sessions.stop_16(stop16("7", meter="99999"), closed) == sessions.IGNORED


@pytest.mark.parametrize("ref", ["-1", "0", "12345"])
def test_stop_for_an_unknown_id_is_an_orphan_started_at_the_stop_without_readings(ref: str) -> None:
    s = sessions.stop_16(stop16(ref), None).session
    assert s is not None and s.orphan and s.state == "finished"
    assert (s.started_at, s.ended_at, s.energy_wh) == (at(60), at(60), None)
    assert s.flags == ("orphan", "no_meter_start")
    assert s.stop_key == f"{ref}|2024-05-01T09:00:00.000000+00:00|21000"


def test_orphan_starts_at_its_first_transaction_data_reading() -> None:
    readings = (Reading(at(10), energy_wh=Decimal(5000)), Reading(at(5), energy_wh=Decimal(4000)))
    s = sessions.stop_16(stop16("-1", readings=readings), None).session
    assert s is not None
    assert (s.started_at, s.meter_start_wh, s.energy_wh, s.flags) == (at(5), Decimal(4000), Decimal(17000), ("orphan",))


def test_a_repeated_orphan_stop_is_ignored() -> None:
    orphan = sessions.stop_16(stop16("-1"), None).session
    assert orphan is not None
    assert sessions.stop_16(stop16("-1"), replace(orphan, id=3)) == sessions.IGNORED


def test_meter_values_feed_the_register_range_and_last_sample() -> None:
    s = sessions.sampled(started(start16()), (Reading(at(10), energy_wh=Decimal(3000), power_w=Decimal(7)),), at(10))
    assert (s.registers.last, s.last_sample_at, s.energy_wh) == (Register(at(10), Decimal(3000)), at(10), 2000)


def test_untagged_meter_values_belong_to_the_newest_open_16_session_started_before_them() -> None:
    old, new = started(start16(0), 1), started(start16(30, tag="B"), 2)
    event = MeterSampled("CP", 1, 1, (Reading(at(40)),), at(40))
    assert sessions.owner_of_untagged([old, new], event) == new
    early = MeterSampled("CP", 1, 1, (Reading(at(20)),), at(20))
    assert sessions.owner_of_untagged([old, new], early) == old
    assert sessions.owner_of_untagged([], event) is None


# ------------------------------------------------------------------------------------------------ energy


def test_negative_energy_is_clamped_and_flagged() -> None:
    s = sessions.stop_16(stop16("7", meter="999"), started(start16())).session
    assert s is not None
    assert (s.energy_wh, s.flags) == (0, ("negative_energy",))


def test_zero_baseline_followed_by_lifetime_readings_is_not_a_baseline() -> None:
    """meterStart 0, then the lifetime register: 12 345 678 Wh a minute later is 740 MW, not a charge."""
    s = started(start16(meter="0"))
    s = sessions.sampled(s, (Reading(at(1), energy_wh=Decimal(12_345_678)),), at(1))
    s = sessions.stop_16(stop16("7", meter="12365678"), s).session
    assert s is not None
    assert (s.energy_wh, s.flags) == (Decimal(20000), ("zero_baseline_skipped",))


def test_zero_baseline_followed_by_plausible_readings_is_a_baseline() -> None:
    """A session-relative register: 500 Wh a minute after 0 is 30 kW."""
    s = sessions.sampled(started(start16(meter="0")), (Reading(at(1), energy_wh=Decimal(500)),), at(1))
    s = sessions.stop_16(stop16("7", meter="20000"), s).session
    assert s is not None
    assert (s.energy_wh, s.flags) == (Decimal(20000), ())


@pytest.mark.parametrize(
    ("first_wh", "seconds", "skipped"),
    [("277", 1, False), ("278", 1, True), ("16666", 60, False), ("16667", 60, True), ("1", 0, False)],
)
def test_baseline_threshold_is_one_megawatt(first_wh: str, seconds: int, skipped: bool) -> None:
    start = Register(T0, Decimal(0))
    nonzero = Register(T0 + timedelta(seconds=seconds), Decimal(first_wh))
    assert baseline(start, nonzero) == ((nonzero, True) if skipped else (start, False))


def test_non_zero_baseline_is_kept() -> None:
    start = Register(T0, Decimal(5))
    assert baseline(start, Register(T0, Decimal(10**9))) == (start, False)


def test_registers_are_order_independent() -> None:
    readings = [Register(at(m), Decimal(w)) for m, w in [(0, 0), (1, 5000), (2, 7000), (3, 6000), (4, 7000)]]
    results = set()
    for order in itertools.permutations(readings):
        regs = Registers()
        for r in order:
            regs = regs.fold(r)
        results.add(regs)
    # first, first non-zero, last by time, and the highest value (the earliest of equal ones)
    assert results == {Registers(readings[0], readings[1], readings[4], readings[2])}


def test_meter_start_and_stop_are_readings_but_not_samples() -> None:
    regs = Registers().fold(Register(at(0), Decimal(900)), sampled=False).fold(Register(at(1), Decimal(500)))
    assert (regs.first, regs.highest) == (Register(at(0), Decimal(900)), Register(at(1), Decimal(500)))


def assemble(events: list[SessionEvent]) -> Session:
    session = None
    for event in events:
        outcome = sessions.transaction_event(event, session=session, open_here=[])
        assert outcome.session is not None
        session = outcome.session
    assert session is not None
    return session


# ------------------------------------------------------------------------------------------------ final below


def test_a_meter_stop_of_0_below_the_samples_takes_the_highest_sample_as_the_end() -> None:
    """Firmware without a meter hook: meterStop 0 after MeterValues climbed to 617 Wh above meterStart."""
    s = started(start16(meter="1000"))
    for minute, wh in [(1, 1300), (2, 1617)]:
        s = sessions.sampled(s, (Reading(at(minute), energy_wh=Decimal(wh)),), at(minute))
    s = sessions.stop_16(stop16("7", meter="0"), s).session
    assert s is not None
    assert (s.energy_wh, s.flags) == (Decimal(617), ("final_below_samples",))


def test_a_meter_stop_below_its_start_without_samples_is_clamped_not_replaced() -> None:
    s = sessions.stop_16(stop16("7", meter="999"), started(start16(meter="1000"))).session
    assert s is not None
    assert (s.energy_wh, s.flags) == (0, ("negative_energy",))


def test_a_meter_stop_at_or_above_the_samples_is_believed() -> None:
    s = sessions.sampled(started(start16(meter="1000")), (Reading(at(1), energy_wh=Decimal(1500)),), at(1))
    s = sessions.stop_16(stop16("7", meter="1500"), s).session
    assert s is not None
    assert (s.energy_wh, s.flags) == (Decimal(500), ())


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=str)
def test_a_201_ended_whose_final_reading_is_below_an_earlier_one_ends_at_the_highest(order: tuple[int, ...]) -> None:
    events = [ev201("started", 0, 0, "100"), ev201("updated", 1, 30, "4100"), ev201("ended", 2, 60, "0")]
    s = assemble([events[i] for i in order])
    assert not s.is_open
    assert (s.energy_wh, s.flags) == (Decimal(4000), ("final_below_samples",))


# ------------------------------------------------------------------------------------------------ 2.0.1


TX_EVENTS = [
    ev201("started", 0, 0, "100000", id_tag="TAG", evse=1, connector=1, charging_state="Charging"),
    ev201("updated", 1, 20, "107000"),
    ev201("updated", 2, 40, "114000"),
    ev201("ended", 3, 60, "121000", stop_reason="EVDisconnected"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))), ids=str)
def test_201_assembly_does_not_depend_on_arrival_order(order: tuple[int, ...]) -> None:
    s = assemble([TX_EVENTS[i] for i in order])
    assert (s.state, s.started_at, s.ended_at, s.energy_wh, s.id_tag) == (
        "finished", at(0), at(60), Decimal(21000), "TAG"
    )  # fmt: skip
    assert (s.evse, s.connector, s.stop_reason, s.flags, s.transaction_ref) == (
        1, 1, "EVDisconnected", (), "tx-1"
    )  # fmt: skip


def test_201_is_finished_only_when_ended_arrives() -> None:
    assert assemble(TX_EVENTS[:3]).is_open
    assert not assemble(TX_EVENTS).is_open


def test_201_updated_without_started_opens_from_what_it_carries() -> None:
    s = assemble([ev201("updated", 5, 30, "50000", evse=2, connector=1, id_tag="T2")])
    assert (s.is_open, s.started_at, s.evse, s.id_tag, s.flags) == (True, at(30), 2, "T2", ("no_started",))
    s = assemble([ev201("updated", 5, 30, "50000"), ev201("started", 0, 10, "40000")])
    assert (s.started_at, s.energy_wh, s.flags) == (at(10), Decimal(10000), ())


def test_201_charging_state_latest_by_charger_time() -> None:
    s = assemble(
        [ev201("updated", 2, 20, charging_state="SuspendedEV"), ev201("updated", 1, 10, charging_state="Charging")]
    )
    assert s.charging_state == "SuspendedEV"


# ------------------------------------------------------------------------------------------------ zombies


def test_a_new_start_closes_older_open_sessions_on_its_connector_at_their_last_sample() -> None:
    old = sessions.sampled(started(start16(0)), (Reading(at(30), energy_wh=Decimal(9000)),), at(30))
    newer = started(start16(90, tag="LATER"), 9)
    outcome = sessions.start_16(start16(60, tag="NEW"), same_start=None, open_here=[old, newer])
    assert len(outcome.zombies) == 1
    zombie = outcome.zombies[0]
    assert (zombie.id, zombie.state, zombie.end_source, zombie.ended_at) == (7, "finished", "zombie", at(30))
    assert (zombie.energy_wh, zombie.flags, zombie.ended_received_at) == (Decimal(8000), ("zombie",), at(60))


def test_a_real_stop_after_a_zombie_close_replaces_it() -> None:
    zombie = sessions.close_zombie(started(start16()), at(5))
    s = sessions.stop_16(stop16("7"), zombie).session
    assert s is not None
    assert (s.end_source, s.ended_at, s.energy_wh, s.flags) == (
        "stop", at(60), Decimal(20000), ("zombie", "stopped_after_zombie")
    )  # fmt: skip


def available(minute: float, received_minute: float | None = None) -> ConnectorState:
    received = at(minute if received_minute is None else received_minute)
    return ConnectorState("CP", 1, 1, ocpp_status="Available", status_at=at(minute), status_received_at=received)


def due(session: Session, now_minute: float, connector: ConnectorState | None, later: bool = False) -> bool:
    return sessions.zombie_due(session, now=at(now_minute), grace_s=120, later_start=later, connector=connector)


def test_available_for_longer_than_the_grace_makes_a_zombie() -> None:
    s = started(start16(0))
    assert not due(s, 11.9, available(10))
    assert due(s, 12, available(10))


def test_available_before_the_session_started_is_not_a_zombie_sign() -> None:
    assert not due(started(start16(10)), 60, available(5))


def test_activity_after_the_available_is_not_a_zombie() -> None:
    s = sessions.sampled(started(start16(0)), (Reading(at(20), energy_wh=Decimal(2000)),), at(20))
    assert not due(s, 60, available(10))


def test_other_statuses_or_a_finished_session_are_not_zombies() -> None:
    s = started(start16(0))
    assert not due(s, 60, replace(available(10), ocpp_status="Charging"))
    assert not due(s, 60, None)
    assert not due(sessions.close_zombie(s, at(1)), 60, available(10))


def test_a_later_start_on_the_connector_makes_a_quiet_session_a_zombie() -> None:
    s = started(start16(0))
    assert not due(s, 1.9, None, later=True)
    assert due(s, 2, None, later=True)


def test_sweep_session_returns_the_closed_zombie() -> None:
    s = started(start16(0))
    assert sessions.sweep_session(s, now=at(1), grace_s=120, later_start=False, connector=available(0.5)) is None
    outcome = sessions.sweep_session(s, now=at(3), grace_s=120, later_start=False, connector=available(0.5))
    assert outcome is not None and outcome.zombies[0].end_source == "zombie"


def test_charging_state_of_a_connector_is_that_of_its_newest_open_session() -> None:
    assert sessions.charging_state_of([]) == ""
    a = assemble([ev201("started", 0, 0, charging_state="Charging")])
    b = replace(a, started_at=at(5), charging_state="SuspendedEV")
    assert sessions.charging_state_of([a, b]) == "SuspendedEV"


def test_session_version_from_the_charger_or_the_event() -> None:
    assert sessions.session_version(start16(), "2.0.1") == "2.0.1"
    assert sessions.session_version(start16(), "") == "1.6"
    assert sessions.session_version(TX_EVENTS[0], "") == "2.0.1"

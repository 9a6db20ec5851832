"""When a finished session becomes an order, and what the order is built from (D10-D13): a row per order step,
the build inputs (baseline, stop reason), and the built payload against the strict mock province."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from edge_bridge.domain import order_rules
from edge_bridge.domain.order_rules import OrderStep, order_step
from edge_bridge.domain.orders import build_order
from edge_bridge.domain.sessions import FINISHED, OPEN, Register, Registers, Session, energy_baseline, settle
from simulators.province_checks import check_order_info
from tests.unit.test_tou import EXAMPLE

D = Decimal
T0 = datetime(2024, 5, 1, 7, 20, tzinfo=UTC)  # 15:20 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")
CID = "370202000001001A"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def finished(energy: str | None = "80000", **kw: object) -> Session:
    session = Session(
        "CP", "1.6", 1, 1, T0, T0, at(80), id=7, ended_at=at(80), state=FINISHED, end_source="stop",
        meter_start_wh=D(1000), meter_stop_wh=None if energy is None else D(1000) + D(energy),
    )  # fmt: skip
    return replace(settle(session), **kw)  # type: ignore[arg-type]


# (session, order state before, configured) → step
STEPS = [
    ("finished", None, True, OrderStep.BUILD),
    ("finished", None, False, OrderStep.UNCONFIGURED),
    ("unmeasured", None, True, OrderStep.UNMEASURED),
    ("unmeasured", None, False, OrderStep.UNCONFIGURED),  # no connector: nothing to wait for
    ("unmeasured", "unmeasured", True, OrderStep.NOTHING),  # decided at its end, for good
    ("finished", "unmeasured", True, OrderStep.NOTHING),  # later readings give a partial energy: not pushed
    ("finished", "queued", True, OrderStep.LATE),  # immutable once queued
    ("finished", "accepted", True, OrderStep.LATE),
    ("finished", "unconfigured", True, OrderStep.NOTHING),  # decided at its end, for good
    ("open", None, True, OrderStep.NOTHING),
]


@pytest.mark.parametrize(("kind", "before", "configured", "step"), STEPS)
def test_order_step(kind: str, before: str | None, configured: bool, step: OrderStep) -> None:
    session = {
        "finished": finished(),
        "unmeasured": finished(energy=None),
        "open": replace(finished(), state=OPEN, ended_at=None),
    }[kind]
    assert order_step(session, before, configured) is step


def test_a_step_that_is_not_an_order_flags_the_session() -> None:
    assert order_rules.STEP_FLAGS == {
        OrderStep.UNCONFIGURED: "order_unconfigured",
        OrderStep.UNMEASURED: "order_unmeasured",
        OrderStep.LATE: "changed_after_order",
    }


@pytest.mark.parametrize(
    ("reason", "end_source", "expected"),
    [
        ("EVDisconnected", "stop", "EVDisconnected"),
        ("", "stop", ""),
        ("", "zombie", "Other"),
        ("Remote", "zombie", "Remote"),
    ],
)
def test_stop_reason(reason: str, end_source: str, expected: str) -> None:
    assert order_rules.stop_reason(finished(stop_reason=reason, end_source=end_source)) == expected


def test_the_curve_counts_from_the_energy_baseline() -> None:
    session = finished()
    assert energy_baseline(session) == Register(T0, D(1000))
    registers = [(at(10), D(11000)), (at(40), D(41000))]
    assert order_rules.curve(session, registers) == ((at(10), D(10000)), (at(40), D(40000)))


def test_the_curve_skips_a_reset_zero_baseline() -> None:
    regs = Registers().fold(Register(T0, D(0))).fold(Register(at(1), D(5_000_000)))
    session = settle(replace(finished(), meter_start_wh=D(0), meter_stop_wh=D(5_080_000), registers=regs))
    assert energy_baseline(session) == Register(at(1), D(5_000_000))
    assert order_rules.curve(session, [(at(40), D(5_040_000))]) == ((at(40), D(40_000)),)


def test_finished_session_takes_the_charger_times_energy_and_reason() -> None:
    session = finished(stop_reason="Remote")
    built = order_rules.finished_session(session, CID, [(at(40), D(41000))])
    assert (built.session_id, built.connector_id, built.start, built.end) == (7, CID, T0, at(80))
    assert (built.energy_wh, built.samples, built.stop_reason) == (D(80000), ((at(40), D(40000)),), "Remote")


@pytest.mark.parametrize("broken", [{"id": None}, {"ended_at": None}, {"energy_wh": None}])
def test_only_a_stored_finished_measured_session_is_ordered(broken: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="only a stored"):
        order_rules.finished_session(replace(finished(), **broken), CID, [])  # type: ignore[arg-type]


def test_the_order_push_15_20_to_16_40_at_60_kw() -> None:
    built = order_rules.finished_session(finished(), CID, [(at(m), D(1000 + m * 1000)) for m in range(10, 80, 10)])
    push = order_rules.order_push(build_order(built, EXAMPLE, SHANGHAI, "MA7G5YA24"))
    assert (push.interface, push.key) == ("notification_orderInfo", CID)
    details = [(d["DetailStartTime"], d["DetailEndTime"], d["DetailPower"]) for d in push.data["ChargeDetails"]]
    assert details == [
        ("2024-05-01 15:20:00", "2024-05-01 16:00:00", D("40.00")),
        ("2024-05-01 16:00:00", "2024-05-01 16:40:00", D("40.00")),
    ]
    assert (push.data["TotalMoney"], push.data["StartChargeSeq"]) == (D("102.40"), "MA7G5YA2420240501152000000007")
    assert check_order_info(push.data, "MA7G5YA24") == []

"""Orders (D10-D13): hand-computed money, StartChargeSeq, stop reasons, the 32-detail cap, and properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_bridge.domain import stop_reasons
from edge_bridge.domain.orders import MAX_DETAILS, FinishedSession, build_order, start_charge_seq
from edge_bridge.provincial import codec
from simulators.province_checks import check_order_info
from tests.unit.test_tou import EXAMPLE, SHANGHAI, local, tariffs

D = Decimal


def order_of(start: datetime, end: datetime, wh: int, reason: str = "Local", session_id: int = 42) -> dict[str, Any]:
    session = FinishedSession(session_id, "370202000001001A", start, end, D(wh), stop_reason=reason)
    return build_order(session, EXAMPLE, SHANGHAI, "MA7G5YA24").data


def test_15_20_to_16_40_at_60_kw_money_by_hand() -> None:
    order = order_of(local(5, 15, 20), local(5, 16, 40), 80_000)
    assert [
        (d["DetailPower"], d["ElecPrice"], d["DetailElecMoney"], d["DetailSeviceMoney"]) for d in order["ChargeDetails"]
    ] == [
        (D("40.00"), D("0.7200"), D("28.80"), D("16.00")),
        (D("40.00"), D("1.0400"), D("41.60"), D("16.00")),
    ]
    assert (order["TotalPower"], order["TotalElecMoney"], order["TotalSeviceMoney"], order["TotalMoney"]) == (
        D("80.00"),
        D("70.40"),
        D("32.00"),
        D("102.40"),
    )
    assert (order["StartTime"], order["EndTime"], order["SumPeriod"]) == (
        "2026-01-05 15:20:00",
        "2026-01-05 16:40:00",
        2,
    )
    assert (
        order["ChargeDetails"][0]["DetailEndTime"]
        == order["ChargeDetails"][1]["DetailStartTime"]
        == "2026-01-05 16:00:00"
    )


def test_21_00_to_01_00_money_by_hand() -> None:
    order = order_of(local(5, 21), local(6, 1), 240_000)
    assert [d["DetailElecMoney"] for d in order["ChargeDetails"]] == [D("62.40"), D("108.00"), D("21.00")]
    assert order["TotalMoney"] == D("62.40") + D("108.00") + D("21.00") + D("96.00")


def test_start_charge_seq_is_operator_local_start_and_six_digits() -> None:
    seq = start_charge_seq("MA7G5YA24", local(5, 15, 20), SHANGHAI, 1_234_567)
    assert seq == "MA7G5YA2420260105152000234567" and len(seq) == 29


def test_the_order_passes_the_strict_province_checks() -> None:
    order = order_of(local(5, 21, 17), local(6, 3, 2), 123_456)
    assert check_order_info(codec.loads(codec.dumps(order)), "MA7G5YA24") == []


# ocpp-bridge §6, written out by hand (not read from the module under test).
SPEC_STOP_REASONS: dict[str, int] = {
    "Local": 0,
    "EnergyLimitReached": 0,
    "TimeLimitReached": 0,
    "Remote": 1,
    "DeAuthorized": 1,
    "UnlockCommand": 1,
    "MasterPass": 1,
    "LocalOutOfCredit": 1,
    "StoppedByEV": 2,
    "SOCLimitReached": 2,
    "EmergencyStop": 3,
    "PowerLoss": 3,
    "HardReset": 3,
    "SoftReset": 3,
    "Reboot": 3,
    "ImmediateReset": 3,
    "GroundFault": 3,
    "OvercurrentFault": 3,
    "PowerQuality": 3,
    "EVDisconnected": 4,
    "Other": 5,
    "Timeout": 5,
}


@pytest.mark.parametrize(("reason", "code"), sorted(SPEC_STOP_REASONS.items()))
def test_every_stop_reason_row(reason: str, code: int) -> None:
    assert stop_reasons.stop_reason_code(reason) == code
    assert stop_reasons.STOP_REASONS[reason] == code


def test_the_stop_reason_table_has_exactly_the_spec_rows() -> None:
    assert len(SPEC_STOP_REASONS) == 22
    assert set(SPEC_STOP_REASONS) == set(stop_reasons.STOP_REASONS)


@pytest.mark.parametrize(("reason", "code"), [("", 0), ("SomethingNew", 5)])
def test_missing_reason_is_local_and_unknown_is_other(reason: str, code: int) -> None:
    assert stop_reasons.stop_reason_code(reason) == code


def test_config_overrides_a_row() -> None:
    assert stop_reasons.stop_reason_code("EmergencyStop", {"EmergencyStop": 43}) == 43
    assert order_of(local(5, 10), local(5, 11), 1000, reason="EVDisconnected")["StopReason"] == 4


def test_a_ten_day_session_is_capped_at_32_details_that_still_add_up() -> None:
    session = FinishedSession(7, "C1", local(1, 6), local(11, 6), D(2_400_000))
    order = build_order(session, EXAMPLE, SHANGHAI, "MA7G5YA24")
    details = order.data["ChargeDetails"]
    assert order.merged_details == 41 - MAX_DETAILS and len(details) == MAX_DETAILS == order.data["SumPeriod"]
    assert (
        details[0]["DetailStartTime"] == order.data["StartTime"]
        and details[-1]["DetailEndTime"] == order.data["EndTime"]
    )
    assert check_order_info(codec.loads(codec.dumps(order.data)), "MA7G5YA24") == []


# ---------------------------------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
    st.integers(0, 40 * 3600),
    st.decimals(min_value=0, max_value=400_000, places=3),
    tariffs(),
)
def test_detail_money_follows_from_detail_power_and_totals_are_sums(start, seconds, energy, tariff) -> None:
    session = FinishedSession(1, "C1", start, start + timedelta(seconds=seconds), energy)
    order = build_order(session, tariff, SHANGHAI, "MA7G5YA24").data
    details = order["ChargeDetails"]
    for d in details:
        assert d["DetailElecMoney"] == (d["DetailPower"] * d["ElecPrice"]).quantize(D("0.01"), ROUND_HALF_UP)
        assert d["DetailSeviceMoney"] == (d["DetailPower"] * d["SevicePrice"]).quantize(D("0.01"), ROUND_HALF_UP)
    assert (
        order["TotalPower"]
        == sum(d["DetailPower"] for d in details)
        == (energy / 1000).quantize(D("0.01"), ROUND_HALF_UP)
    )
    assert order["TotalElecMoney"] == sum(d["DetailElecMoney"] for d in details)
    assert order["TotalSeviceMoney"] == sum(d["DetailSeviceMoney"] for d in details)
    assert order["TotalMoney"] == order["TotalElecMoney"] + order["TotalSeviceMoney"]
    assert order["SumPeriod"] == len(details) <= MAX_DETAILS

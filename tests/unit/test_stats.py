"""query_station_stats arithmetic (D14): hand-computed sums, minute rounding, zeros, local-day bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from edge_bridge.domain.stats import (
    EARLIEST,
    LATEST,
    FinishedSpan,
    Usage,
    connector_usage,
    day_bounds,
    minutes,
    session_kwh,
    session_seconds,
    total,
)
from edge_bridge.domain.tou import round_kwh

D = Decimal
SHANGHAI = ZoneInfo("Asia/Shanghai")
T = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)


def span(seconds: float, wh: str | None) -> FinishedSpan:
    return FinishedSpan(T, T + timedelta(seconds=seconds), None if wh is None else D(wh))


# ------------------------------------------------------------------------------------------------ one session


@pytest.mark.parametrize(
    ("wh", "kwh"),
    [("0", "0.00"), ("4", "0.00"), ("5", "0.01"), ("12345", "12.35"), ("12344.999", "12.34"), ("1000.5", "1.00")],
)
def test_session_kwh_is_the_orders_round_kwh(wh: str, kwh: str) -> None:
    assert session_kwh(span(60, wh)) == D(kwh) == round_kwh(D(wh))
    assert str(session_kwh(span(60, wh))) == kwh  # always 2 decimals


def test_unknown_energy_counts_zero_kwh() -> None:
    assert session_kwh(span(60, None)) == D("0.00")


def test_session_seconds_are_exact_and_never_negative() -> None:
    assert session_seconds(span(90, "0")) == D(90)
    assert session_seconds(FinishedSpan(T, T + timedelta(seconds=1, microseconds=500_000), None)) == D("1.5")
    assert session_seconds(FinishedSpan(T, T - timedelta(minutes=5), D(100))) == D(0)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [("0", 0), ("29.999", 0), ("30", 1), ("89.999", 1), ("90", 2), ("3600", 60), ("5430", 91), ("5429", 90)],
)
def test_minutes_round_half_up(seconds: str, expected: int) -> None:
    assert minutes(D(seconds)) == expected


# ------------------------------------------------------------------------------------------------ a connector


def test_connector_usage_hand_computed() -> None:
    spans = [span(1800, "15005"), span(2730, "7494.9"), span(45, None)]
    # kWh: 15.01 + 7.49 + 0 = 22.50; seconds 1800 + 2730 + 45 = 4575 = 76.25 min → 76
    assert connector_usage(spans) == Usage(D("22.50"), 3, 76)


def test_minutes_are_rounded_once_from_the_summed_seconds() -> None:
    # each 40 s session alone rounds to 1 min, but 3 × 40 s = 120 s = 2 min
    assert connector_usage([span(40, "0")] * 3).minutes == 2
    # each 20 s session alone rounds to 0 min, but 3 × 20 s = 60 s = 1 min
    assert connector_usage([span(20, "0")] * 3).minutes == 1


def test_electricity_sums_the_rounded_sessions() -> None:
    # each 4.6 Wh rounds to 0.00 kWh (what its order says); the raw sum 13.8 Wh would round to 0.01
    assert connector_usage([span(60, "4.6")] * 3).electricity == D("0.00")
    # each 5 Wh rounds to 0.01 kWh; the raw sum 15 Wh would round to 0.02
    assert connector_usage([span(60, "5")] * 3).electricity == D("0.03")


def test_no_sessions_is_zero() -> None:
    usage = connector_usage([])
    assert usage == Usage(D("0.00"), 0, 0)
    assert str(usage.electricity) == "0.00"


def test_unknown_energy_still_counts_sessions_and_minutes() -> None:
    assert connector_usage([span(600, None), span(1200, None)]) == Usage(D("0.00"), 2, 30)


# ------------------------------------------------------------------------------------------------ the hierarchy


def test_station_is_the_sum_of_equipment_is_the_sum_of_connectors() -> None:
    a = connector_usage([span(1810, "30004"), span(50, "5")])  # 30.00 + 0.01; 1860 s = 31 min
    b = connector_usage([span(29, "994")])  # 0.99; 29 s → 0 min
    c = connector_usage([])
    d = connector_usage([span(3630, "7005")])  # 7.01; 60.5 min → 61
    assert (a, b, c, d) == (Usage(D("30.01"), 2, 31), Usage(D("0.99"), 1, 0), Usage(), Usage(D("7.01"), 1, 61))
    dc, ac = total([a, b]), total([c, d])
    assert dc == Usage(D("31.00"), 3, 31)
    assert ac == Usage(D("7.01"), 1, 61)
    station = total([dc, ac])
    assert station == Usage(D("38.01"), 4, 92) == total([a, b, c, d])


def test_levels_add_the_rounded_connector_values_not_the_raw_ones() -> None:
    # three connectors with 29 s and 4 Wh each: 0 min and 0.00 kWh each, so 0 and 0.00 above them too
    # (rounding the raw 87 s and 12 Wh would say 1 min and 0.01 kWh, which no connector row adds up to)
    one = connector_usage([span(29, "4")])
    assert one == Usage(D("0.00"), 1, 0)
    equipment = total([one, one])
    assert total([equipment, one]) == Usage(D("0.00"), 3, 0)


def test_total_of_nothing_is_zero() -> None:
    assert total([]) == Usage(D("0.00"), 0, 0)


# ------------------------------------------------------------------------------------------------ day bounds


def test_day_bounds_are_local_midnights_in_utc() -> None:
    start, end = day_bounds(date(2024, 3, 1), date(2024, 3, 1), SHANGHAI)
    assert (start, end) == (datetime(2024, 2, 29, 16, tzinfo=UTC), datetime(2024, 3, 1, 16, tzinfo=UTC))


def test_day_bounds_range_is_inclusive() -> None:
    start, end = day_bounds(date(2024, 2, 28), date(2024, 3, 1), SHANGHAI)
    assert (start, end) == (datetime(2024, 2, 27, 16, tzinfo=UTC), datetime(2024, 3, 1, 16, tzinfo=UTC))
    assert end - start == timedelta(days=3)


def test_day_bounds_follow_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # 2024-03-31 has 23 hours there
    start, end = day_bounds(date(2024, 3, 31), date(2024, 3, 31), berlin)
    assert (start, end) == (datetime(2024, 3, 30, 23, tzinfo=UTC), datetime(2024, 3, 31, 22, tzinfo=UTC))


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (date(1, 1, 1), date(1, 1, 1), (EARLIEST, datetime(1, 1, 2, tzinfo=SHANGHAI).astimezone(UTC))),  # LMT +8:05:43
        (date(9999, 12, 31), date(9999, 12, 31), (datetime(9999, 12, 30, 16, tzinfo=UTC), LATEST)),
        (date(1, 1, 1), date(9999, 12, 31), (EARLIEST, LATEST)),
    ],
)
def test_day_bounds_at_the_ends_of_the_calendar_are_clamped(
    first: date, last: date, expected: tuple[datetime, datetime]
) -> None:
    assert day_bounds(first, last, SHANGHAI) == expected

"""The time-of-use splitter: hand-computed cases with the example tariff, and properties (hypothesis)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_bridge.domain.site import Tariff, TariffPeriod
from edge_bridge.domain.tou import apportion, energy_curve, round_kwh, split

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = Decimal
EXAMPLE = Tariff(  # configuration.md's example tariff
    "default",
    (
        TariffPeriod(0, 480, D("0.35"), D("0.4")),
        TariffPeriod(480, 960, D("0.72"), D("0.4")),
        TariffPeriod(960, 1320, D("1.04"), D("0.4")),
        TariffPeriod(1320, 1440, D("0.9"), D("0.4")),
    ),
)


def local(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def constant_power(start: datetime, end: datetime, kw: int, every: timedelta) -> list[tuple[datetime, Decimal]]:
    samples, at = [], start + every
    while at < end:
        samples.append((at, D(kw * 1000) * D((at - start) / timedelta(hours=1))))
        at += every
    return samples


def table(slices: list) -> list[tuple[str, str, Decimal, Decimal]]:
    return [
        (
            s.start.astimezone(SHANGHAI).strftime("%d %H:%M"),
            s.end.astimezone(SHANGHAI).strftime("%d %H:%M"),
            s.period.electricity,
            s.power_kwh,
        )
        for s in slices
    ]


def test_15_20_to_16_40_at_60_kw_gives_two_details_of_40_kwh() -> None:
    start, end = local(5, 15, 20), local(5, 16, 40)
    slices = split(start, end, D(80_000), constant_power(start, end, 60, timedelta(minutes=1)), EXAMPLE, SHANGHAI)
    assert table(slices) == [
        ("05 15:20", "05 16:00", D("0.72"), D("40.00")),
        ("05 16:00", "05 16:40", D("1.04"), D("40.00")),
    ]


def test_21_00_to_01_00_gives_three_details_across_midnight() -> None:
    start, end = local(5, 21), local(6, 1)
    slices = split(start, end, D(240_000), constant_power(start, end, 60, timedelta(minutes=5)), EXAMPLE, SHANGHAI)
    assert table(slices) == [
        ("05 21:00", "05 22:00", D("1.04"), D("60.00")),
        ("05 22:00", "06 00:00", D("0.9"), D("120.00")),
        ("06 00:00", "06 01:00", D("0.35"), D("60.00")),
    ]


def test_without_intermediate_samples_the_energy_splits_linearly_in_time() -> None:
    slices = split(local(5, 15, 30), local(5, 16, 30), D(10_000), [], EXAMPLE, SHANGHAI)
    assert [s.power_kwh for s in slices] == [D("5.00"), D("5.00")]


def test_the_curve_decides_the_split_not_the_clock() -> None:
    start, end = local(5, 15, 30), local(5, 16, 30)
    samples = [(local(5, 16), D(9_000))]  # 9 kWh before the 16:00 edge, 1 kWh after
    assert [s.power_kwh for s in split(start, end, D(10_000), samples, EXAMPLE, SHANGHAI)] == [D("9.00"), D("1.00")]


def test_a_26_hour_session_splits_at_every_boundary() -> None:
    start, end = local(5, 6), local(6, 8)
    slices = split(start, end, D(260_000), [], EXAMPLE, SHANGHAI)
    assert [row[:3] for row in table(slices)] == [
        ("05 06:00", "05 08:00", D("0.35")),
        ("05 08:00", "05 16:00", D("0.72")),
        ("05 16:00", "05 22:00", D("1.04")),
        ("05 22:00", "06 00:00", D("0.9")),
        ("06 00:00", "06 08:00", D("0.35")),
    ]
    assert [s.power_kwh for s in slices] == [D(20), D(80), D(60), D(20), D(80)]


def test_a_session_of_no_length_is_one_slice_with_all_its_energy() -> None:
    at = local(5, 16)
    (only,) = split(at, at, D(1234), [], EXAMPLE, SHANGHAI)
    assert (only.period.electricity, only.power_kwh) == (D("1.04"), D("1.23"))


def test_an_end_before_the_start_is_treated_as_no_length() -> None:
    (only,) = split(local(5, 16), local(5, 15), D(500), [], EXAMPLE, SHANGHAI)
    assert only.start == only.end


def test_samples_outside_the_session_or_going_backwards_are_tamed() -> None:
    start, end = local(5, 10), local(5, 11)
    curve = energy_curve(
        start, end, D(100), [(local(5, 9), D(50)), (local(5, 10, 30), D(500)), (local(5, 10, 40), D(20))]
    )
    assert [wh for _, wh in curve] == [D(0), D(100), D(100), D(100)]


def test_apportion_keeps_the_sum_and_gives_ties_to_the_earlier_part() -> None:
    assert apportion([D(1), D(1), D(1)], D(10)) == [4, 3, 3]
    assert apportion([D(0), D(0)], D(7)) == [7, 0]
    assert apportion([], D(0)) == []


# ---------------------------------------------------------------------------------------------------- properties

MOMENTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
PRICES = st.decimals(min_value=0, max_value=5, places=4)


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    cuts = sorted(draw(st.sets(st.integers(1, 95), max_size=6)))
    edges = [0, *(c * 15 for c in cuts), 1440]
    periods = tuple(TariffPeriod(a, b, draw(PRICES), draw(PRICES)) for a, b in itertools.pairwise(edges))
    return Tariff("t", periods)


@st.composite
def sessions(draw: st.DrawFn) -> tuple[datetime, datetime, Decimal, list[tuple[datetime, Decimal]]]:
    start = draw(MOMENTS)
    end = start + timedelta(seconds=draw(st.integers(0, 3 * 86400)))
    total = draw(st.decimals(min_value=0, max_value=500_000, places=3))
    offsets = draw(st.lists(st.integers(0, max(0, int((end - start).total_seconds()))), max_size=12))
    values = draw(
        st.lists(st.decimals(min_value=0, max_value=500_000, places=1), min_size=len(offsets), max_size=len(offsets))
    )
    return start, end, total, [(start + timedelta(seconds=o), v) for o, v in zip(offsets, values, strict=True)]


ZONES = st.sampled_from([SHANGHAI, ZoneInfo("UTC"), ZoneInfo("Europe/Berlin")])


@settings(max_examples=300, deadline=None)
@given(sessions(), tariffs(), ZONES)
def test_slices_are_contiguous_and_cover_the_session_exactly(session, tariff, tz) -> None:
    start, end, total, samples = session
    slices = split(start, end, total, samples, tariff, tz)
    assert slices[0].start == start and slices[-1].end == end
    assert all(a.end == b.start for a, b in itertools.pairwise(slices))
    assert all(s.start <= s.end for s in slices)


@settings(max_examples=300, deadline=None)
@given(sessions(), tariffs(), ZONES)
def test_energy_is_conserved_and_the_rounded_details_sum_to_the_rounded_total(session, tariff, tz) -> None:
    start, end, total, samples = session
    slices = split(start, end, total, samples, tariff, tz)
    assert abs(sum(s.energy_wh for s in slices) - total) < D("0.001")  # to the Wh, and far better
    assert sum(s.power_kwh for s in slices) == round_kwh(total)
    assert all(s.energy_wh >= 0 and s.power_kwh >= 0 for s in slices)


@settings(max_examples=300, deadline=None)
@given(sessions(), tariffs(), ZONES)
def test_slice_boundaries_fall_only_on_tariff_edges_or_session_ends(session, tariff, tz) -> None:
    start, end, total, samples = session
    edges = {p.start_min for p in tariff.periods}
    for s in split(start, end, total, samples, tariff, tz)[1:]:
        moment = s.start.astimezone(tz)
        assert moment.second == 0 and moment.microsecond == 0
        assert local_minutes(moment) in edges or skipped_edge(moment, edges)


def local_minutes(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


def skipped_edge(moment: datetime, edges: set[int]) -> bool:
    """A boundary where the clock jumped forward over an edge (02:00 does not exist on a spring DST day): the
    wall time just before it is earlier than the edge, the wall time at it later."""
    before = local_minutes((moment - timedelta(microseconds=1)).astimezone(moment.tzinfo)) + 1
    return any(before <= edge < local_minutes(moment) for edge in edges)


@settings(max_examples=200, deadline=None)
@given(sessions(), tariffs(), st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_the_order_samples_arrived_in(session, tariff, rnd) -> None:
    start, end, total, samples = session
    shuffled = list(samples)
    rnd.shuffle(shuffled)
    assert split(start, end, total, samples, tariff, SHANGHAI) == split(start, end, total, shuffled, tariff, SHANGHAI)


@settings(max_examples=200, deadline=None)
@given(sessions(), tariffs())
def test_each_slice_lies_in_one_period(session, tariff) -> None:
    start, end, total, samples = session
    for s in split(start, end, total, samples, tariff, SHANGHAI):
        a = s.start.astimezone(SHANGHAI)
        minute = a.hour * 60 + a.minute
        assert s.period.start_min <= minute < s.period.end_min
        assert (s.end - s.start) <= timedelta(minutes=s.period.end_min - minute)

"""The time-of-use splitter (D13): a session's energy curve cut at every tariff edge.

Pure. A session runs from ``start`` to ``end`` (aware UTC) and delivers ``total_wh``. Its energy curve is the
cumulative energy since the start at the sampled moments, linear between them, 0 at the start and ``total_wh`` at
the end. The tariff's periods are local times of the site's zone; every period start of every local day the session
touches is an edge, so a session is cut at each price change and at every local midnight. With a
:class:`TariffHistory`, it is also cut where one tariff gave way to another (a reload), each stretch priced by the
tariff in force then.

Each slice gets its exact (interpolated) energy, and a ``power_kwh`` rounded to 0.01 kWh by the largest-remainder
method, so that the slices' ``power_kwh`` add up to exactly ``round_half_up(total_wh / 1000, 2)``: the order's
TotalPower is the sum of its DetailPower values, never off by a cent of a kWh.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from edge_bridge.domain.site import Tariff, TariffPeriod
from edge_bridge.domain.tariff_history import TariffHistory


@dataclass(frozen=True)
class Slice:
    """One contiguous stretch of one tariff period inside a session."""

    start: datetime
    end: datetime
    period: TariffPeriod
    energy_wh: Decimal  # exact share of the curve
    power_kwh: Decimal  # apportioned to 0.01 kWh; the slices of a session sum to the rounded total


def round_kwh(energy_wh: Decimal) -> Decimal:
    """Wh → kWh with 2 decimals, half up (D12)."""
    return (energy_wh / 1000).quantize(Decimal("0.01"), ROUND_HALF_UP)


def split(
    start: datetime,
    end: datetime,
    total_wh: Decimal,
    samples: Sequence[tuple[datetime, Decimal]],
    tariff: Tariff | TariffHistory,
    tz: ZoneInfo,
) -> list[Slice]:
    """Cut the session at every tariff edge. ``samples`` are (moment, cumulative Wh since the start), any order.

    A session whose end is not after its start is one slice of zero length, in the period of its start, holding
    all the energy.
    """
    end = max(end, start)
    total_wh = max(total_wh, Decimal(0))
    curve = energy_curve(start, end, total_wh, samples)
    history = tariff if isinstance(tariff, TariffHistory) else TariffHistory.of(tariff)
    stretches = [s for a, b, in_force in history.windows(start, end) for s in _stretches(a, b, in_force, tz)]
    energies = _stretch_energies(curve, stretches) if end > start else [total_wh]
    powers = apportion(energies, round_kwh(total_wh) * 100)
    return [
        Slice(a, b, period, energy, Decimal(units) / 100)
        for (a, b, period), energy, units in zip(stretches, energies, powers, strict=True)
    ]


# ---------------------------------------------------------------------------------------------------- the curve


def energy_curve(
    start: datetime, end: datetime, total_wh: Decimal, samples: Sequence[tuple[datetime, Decimal]]
) -> list[tuple[datetime, Decimal]]:
    """The cumulative energy points from (start, 0) to (end, total): samples inside the session, sorted, made
    non-decreasing and kept within [0, total]. The order in which samples arrived does not matter."""
    inside = sorted((at, wh) for at, wh in samples if start < at < end)
    points, highest = [(start, Decimal(0))], Decimal(0)
    for at, wh in inside:
        highest = min(max(highest, wh), total_wh)
        points.append((at, highest))
    points.append((end, total_wh))
    return points


def _stretch_energies(
    curve: list[tuple[datetime, Decimal]], stretches: list[tuple[datetime, datetime, TariffPeriod]]
) -> list[Decimal]:
    return [_energy_at(curve, b) - _energy_at(curve, a) for a, b, _ in stretches]


def _energy_at(curve: list[tuple[datetime, Decimal]], moment: datetime) -> Decimal:
    times = [at for at, _ in curve]
    index = bisect.bisect_right(times, moment)
    if index == 0:
        return curve[0][1]
    if index == len(curve):
        return curve[-1][1]
    (t0, e0), (t1, e1) = curve[index - 1], curve[index]
    span = Decimal((t1 - t0) / timedelta(microseconds=1))
    if span == 0:
        return e1
    return e0 + (e1 - e0) * Decimal((moment - t0) / timedelta(microseconds=1)) / span


# ---------------------------------------------------------------------------------------------------- the edges


def _stretches(
    start: datetime, end: datetime, tariff: Tariff, tz: ZoneInfo
) -> Iterator[tuple[datetime, datetime, TariffPeriod]]:
    """(from, to, period) for each contiguous stretch of one period between start and end."""
    edges = [(at, period) for at, period in _edges(start, end, tariff, tz) if start < at < end]
    current = _period_at(start, tariff, tz)
    cursor = start
    for at, period in edges:
        yield cursor, at, current
        cursor, current = at, period
    yield cursor, end, current


def _edges(start: datetime, end: datetime, tariff: Tariff, tz: ZoneInfo) -> Iterator[tuple[datetime, TariffPeriod]]:
    """Every period start of every local day from the day of ``start`` to the day of ``end``, in UTC."""
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    while day <= last:
        for period in tariff.periods:
            yield _local_moment(day, period.start_min, tz), period
        day += timedelta(days=1)


def _local_moment(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz).astimezone(UTC)


def _period_at(moment: datetime, tariff: Tariff, tz: ZoneInfo) -> TariffPeriod:
    local = moment.astimezone(tz)
    minute = local.hour * 60 + local.minute
    return next(p for p in tariff.periods if p.start_min <= minute < p.end_min)


# ---------------------------------------------------------------------------------------------------- rounding


def apportion(weights: Sequence[Decimal], units: Decimal) -> list[int]:
    """Split ``units`` (a whole number) in proportion to ``weights`` by the largest-remainder method.

    The parts are whole numbers that add up to ``units`` exactly; ties go to the earlier part. With no weight at
    all, everything goes to the first part.
    """
    whole = int(units)
    if not weights:
        return []
    total = sum(weights, Decimal(0))
    if total <= 0:
        return [whole] + [0] * (len(weights) - 1)
    shares = [w * whole / total for w in weights]
    parts = [int(s.to_integral_value(ROUND_FLOOR)) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in by_remainder[: whole - sum(parts)]:
        parts[i] += 1
    return parts

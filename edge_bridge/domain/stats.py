"""query_station_stats arithmetic (D12, D14): finished sessions → per-connector usage → equipment → station. Pure.

Rules:

- A session counts in the local day (``[site].timezone``) of its EndTime; the requested range of days is inclusive.
  ``day_bounds`` turns it into the UTC half-open interval ``[start, end)`` the store filters on: a local day does
  not begin at UTC midnight (Asia/Shanghai's begins at 16:00 UTC the day before).
- ConnectorNum is the number of sessions.
- ConnectorElectricity is the sum over the sessions of ``round_kwh(energy_wh)``: each session contributes exactly
  its order's TotalPower, so the stats equal the sums of the orders. 2 decimals.
- A session whose energy is unknown (``None``: no baseline or no end reading) counts with 0 kWh, but it does count
  in ConnectorNum and ConnectorDuration: a car was charged there for that long, we just cannot say how much.
- ConnectorDuration is minutes, rounded half up once from the summed seconds of the connector's sessions; a session
  whose end is before its start (bad charger clocks) counts 0 s, never negative.
- Equipment values are sums of its connectors' (already rounded) values and the station's are sums of its
  equipment's, so every level adds up exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from edge_bridge.domain.tou import round_kwh

ZERO_KWH = Decimal("0.00")
SECONDS_PER_MINUTE = 60
_MICROSECOND = timedelta(microseconds=1)
_MICROSECONDS_PER_SECOND = 1_000_000
_LAST_DAY = date.max.toordinal()
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FinishedSpan:
    """What stats need of one finished session: its charger-time start and end, and its energy (None: unknown)."""

    started_at: datetime
    ended_at: datetime
    energy_wh: Decimal | None


@dataclass(frozen=True)
class Usage:
    """Sessions of one connector (or the sum over several) ending in a range of local days (D14)."""

    electricity: Decimal = ZERO_KWH  # kWh, 2 decimals (D12)
    sessions: int = 0
    minutes: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.electricity + other.electricity, self.sessions + other.sessions, self.minutes + other.minutes)


def day_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local days ``first..last`` (inclusive) as aware UTC ``[start, end)``: from the local midnight that opens
    ``first`` to the one that opens the day after ``last``. Bounds beyond what a datetime holds (a local
    0001-01-01 or 9999-12-31) are clamped to the first / last representable moment."""
    return _local_midnight(first.toordinal(), tz), _local_midnight(last.toordinal() + 1, tz)


def _local_midnight(ordinal: int, tz: ZoneInfo) -> datetime:
    if ordinal > _LAST_DAY:
        return LATEST
    try:
        return datetime.combine(date.fromordinal(ordinal), time(), tzinfo=tz).astimezone(UTC)
    except OverflowError:
        return EARLIEST if ordinal == 1 else LATEST


def session_kwh(span: FinishedSpan) -> Decimal:
    """The session's kWh as its order states them (``round_kwh``); 0 when the energy is unknown."""
    return ZERO_KWH if span.energy_wh is None else round_kwh(span.energy_wh)


def session_seconds(span: FinishedSpan) -> Decimal:
    """The session's length in seconds (exact to the microsecond); 0 when it ends before it starts."""
    length = max(span.ended_at - span.started_at, timedelta(0))
    return Decimal(length // _MICROSECOND) / _MICROSECONDS_PER_SECOND


def minutes(seconds: Decimal) -> int:
    """Seconds → whole minutes, rounded half up (89.999 s → 1, 90 s → 2)."""
    return int((seconds / SECONDS_PER_MINUTE).quantize(Decimal(1), ROUND_HALF_UP))


def connector_usage(spans: Iterable[FinishedSpan]) -> Usage:
    """One connector's usage from its finished sessions in the range."""
    spans = list(spans)
    electricity = sum((session_kwh(s) for s in spans), ZERO_KWH)
    seconds = sum((session_seconds(s) for s in spans), Decimal(0))
    return Usage(electricity, len(spans), minutes(seconds))


def total(usages: Iterable[Usage]) -> Usage:
    """The sum of already-rounded usages (equipment = Σ connectors, station = Σ equipment)."""
    return sum(usages, Usage())

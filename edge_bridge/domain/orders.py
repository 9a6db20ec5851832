"""A finished session + its station's tariff → the provincial order (D10-D13). Pure.

Money is ``Decimal`` throughout: each ChargeDetail's money is round-half-up(DetailPower × price, 2) from its rounded
DetailPower, and every total is the sum of its details, so the order always adds up (D12).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from edge_bridge.domain.site import Tariff, TariffPeriod
from edge_bridge.domain.stations import price
from edge_bridge.domain.stop_reasons import stop_reason_code
from edge_bridge.domain.tariff_history import TariffHistory
from edge_bridge.domain.tou import Slice, split
from edge_bridge.domain.wiretime import format_datetime, format_timestamp

MAX_DETAILS = 32  # D13: SumPeriod is at most 32
CENT = Decimal("0.01")


@dataclass(frozen=True)
class FinishedSession:
    """What an order needs to know about a session."""

    session_id: int
    connector_id: str  # the provincial ConnectorID
    start: datetime
    end: datetime
    energy_wh: Decimal
    samples: tuple[tuple[datetime, Decimal], ...] = ()  # (moment, Wh since the start), any order
    stop_reason: str = ""  # the OCPP reason text


@dataclass(frozen=True)
class Order:
    start_charge_seq: str
    data: dict[str, Any]  # the flat notification_orderInfo Data (D10)
    merged_details: int  # how many details were merged to respect MAX_DETAILS (0 normally; log when not)


def money(power_kwh: Decimal, price: Decimal) -> Decimal:
    return (power_kwh * price).quantize(CENT, ROUND_HALF_UP)


def start_charge_seq(prefix: str, start: datetime, tz: ZoneInfo, session_id: int) -> str:
    """D11: prefix (the operator id) + local start ``yyyyMMddHHmmss`` + 6 digits from the session id."""
    return f"{prefix}{format_timestamp(start, tz)}{session_id % 1_000_000:06d}"


def build_order(
    session: FinishedSession,
    tariff: Tariff | TariffHistory,
    tz: ZoneInfo,
    seq_prefix: str,
    stop_overrides: Mapping[str, int] | None = None,
) -> Order:
    slices = split(session.start, session.end, session.energy_wh, session.samples, tariff, tz)
    capped = cap_slices(slices, MAX_DETAILS)
    details = [_detail(s, tz) for s in capped]
    seq = start_charge_seq(seq_prefix, session.start, tz, session.session_id)
    elec = sum((d["DetailElecMoney"] for d in details), Decimal("0.00"))
    service = sum((d["DetailSeviceMoney"] for d in details), Decimal("0.00"))
    data = {
        "StartChargeSeq": seq,
        "ConnectorID": session.connector_id,
        "StartTime": format_datetime(session.start, tz),
        "EndTime": format_datetime(max(session.end, session.start), tz),
        "TotalPower": sum((d["DetailPower"] for d in details), Decimal("0.00")),
        "TotalElecMoney": elec,
        "TotalSeviceMoney": service,
        "TotalMoney": elec + service,
        "StopReason": stop_reason_code(session.stop_reason, stop_overrides),
        "SumPeriod": len(details),
        "ChargeDetails": details,
    }
    return Order(seq, data, len(slices) - len(capped))


def _detail(piece: Slice, tz: ZoneInfo) -> dict[str, Any]:
    power = piece.power_kwh.quantize(CENT)
    elec_price, service_price = price(piece.period.electricity), price(piece.period.service)
    return {
        "DetailStartTime": format_datetime(piece.start, tz),
        "DetailEndTime": format_datetime(piece.end, tz),
        "ElecPrice": elec_price,
        "SevicePrice": service_price,
        "DetailPower": power,
        "DetailElecMoney": money(power, elec_price),
        "DetailSeviceMoney": money(power, service_price),
    }


def cap_slices(slices: Sequence[Slice], limit: int) -> list[Slice]:
    """Merge the oldest slices until at most ``limit`` remain (D13). A merged slice's prices are the
    energy-weighted average of its parts (4 decimals), so its money still follows from its DetailPower."""
    capped = list(slices)
    while len(capped) > limit:
        capped[0:2] = [_merge(capped[0], capped[1])]
    return capped


def _merge(a: Slice, b: Slice) -> Slice:
    period = a.period if _same_prices(a.period, b.period) else _weighted(a, b)
    return replace(
        a, end=b.end, period=period, energy_wh=a.energy_wh + b.energy_wh, power_kwh=a.power_kwh + b.power_kwh
    )


def _same_prices(x: TariffPeriod, y: TariffPeriod) -> bool:
    return (x.electricity, x.service) == (y.electricity, y.service)


def _weighted(a: Slice, b: Slice) -> TariffPeriod:
    total = a.power_kwh + b.power_kwh
    if total == 0:
        return a.period

    def mix(x: Decimal, y: Decimal) -> Decimal:
        return price((x * a.power_kwh + y * b.power_kwh) / total)

    p, q = a.period, b.period
    return TariffPeriod(p.start_min, q.end_min, mix(p.electricity, q.electricity), mix(p.service, q.service))

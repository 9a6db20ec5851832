"""Sampled values → ``Reading`` (ocpp-bridge §4). PURE: values in, values out.

``normalize.py`` reads the OCPP fields of a sampledValue (either version) into a ``Sample``; this module knows what
they mean: which value is the energy register, units and 2.0.1 multipliers, phases, and how a 1.6 string becomes a
``Decimal`` (never a float). Each measurand the bridge keeps is a row of ``MEASURES``; its units are a dict of factors.

Per-phase values, when a measurand has no total (no phase):
- energy and power: the sum over the lines L1, L2, L3 (``L1`` and ``L1-N`` are the same line, counted once);
- current: the largest line current (the connector's line current; a sum of three phases means nothing to a BMS);
- voltage: the mean of the line-to-neutral values, else of the line-to-line ones;
- SoC: the largest (it has no phases; a charger that sends some anyway is not penalised).
A total is always preferred over phases, so a total and its phases are never counted twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from edge_bridge.domain.events import Reading

ENERGY = "Energy.Active.Import.Register"  # also the measurand when none is given
POWER = "Power.Active.Import"
SOC = "SoC"
CURRENT = "Current.Import"
VOLTAGE = "Voltage"
SIGNED_DATA = "SignedData"
DEFAULT_CONTEXT = "Sample.Periodic"
OUTLET = "Outlet"

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?", re.ASCII)
_MAX_TEXT = 100  # longer "numbers" are garbage
_MAX_ADJUSTED = 15  # |value| < 1e16 and not below 1e-15: keeps every later multiplication exact and trap-free
_MAX_MULTIPLIER = 9
_TEN = Decimal(10)


@dataclass(frozen=True)
class Sample:
    """One sampledValue of either version, as read by normalize.py (version-neutral, field names gone)."""

    value: object  # as received: a 1.6 string, a 2.0.1 number, or anything a broken charger sends
    measurand: str = ENERGY
    phase: str = ""
    location: str = ""
    unit: str = ""  # "" = not given: the measurand's own unit (Wh, W, Percent, A, V)
    multiplier: int | None = 0  # 2.0.1 power of ten; None = present but unreadable (the value is then kept raw)
    context: str = ""
    signed: bool = False  # 1.6 format SignedData: kept verbatim, never a number
    signed_data: str = ""  # 2.0.1 signedMeterValue.signedMeterData: kept verbatim beside the number


@dataclass(frozen=True)
class Measure:
    """How one measurand becomes one number of a Reading."""

    units: Mapping[str, Decimal]  # lower-case unit → factor to the Reading's unit; "" = unit not given
    combine: Callable[[Sequence[Decimal]], Decimal]  # per-phase values → one value
    phase_groups: tuple[str, ...] = ("LN",)  # PHASES groups to try in order when there is no total
    any_location: bool = False  # False: only location Outlet or absent counts


def _sum(values: Sequence[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def _max(values: Sequence[Decimal]) -> Decimal:
    return max(values)


def _mean(values: Sequence[Decimal]) -> Decimal:
    return _sum(values) / len(values)


ONE = Decimal(1)
KILO = Decimal(1000)
ENERGY_UNITS: dict[str, Decimal] = {"": ONE, "wh": ONE, "kwh": KILO}
POWER_UNITS: dict[str, Decimal] = {"": ONE, "w": ONE, "kw": KILO}
SOC_UNITS: dict[str, Decimal] = {"": ONE, "percent": ONE, "%": ONE}
CURRENT_UNITS: dict[str, Decimal] = {"": ONE, "a": ONE}
VOLTAGE_UNITS: dict[str, Decimal] = {"": ONE, "v": ONE}

MEASURES: dict[str, Measure] = {
    ENERGY: Measure(ENERGY_UNITS, _sum),
    POWER: Measure(POWER_UNITS, _sum),
    SOC: Measure(SOC_UNITS, _max, any_location=True),
    CURRENT: Measure(CURRENT_UNITS, _max),
    VOLTAGE: Measure(VOLTAGE_UNITS, _mean, phase_groups=("LN", "LL")),
}

# phase → (group, line). "N" (the neutral) is absent on purpose: it is never part of a connector's value.
PHASES: dict[str, tuple[str, str]] = {
    "L1": ("LN", "L1"),
    "L2": ("LN", "L2"),
    "L3": ("LN", "L3"),
    "L1-N": ("LN", "L1"),
    "L2-N": ("LN", "L2"),
    "L3-N": ("LN", "L3"),
    "L1-L2": ("LL", "L1-L2"),
    "L2-L3": ("LL", "L2-L3"),
    "L3-L1": ("LL", "L3-L1"),
}


def parse_decimal(value: object) -> Decimal | None:
    """A 1.6 string ("1500", "30.72", " 42 ", "1.5e3") or a JSON number as a Decimal; None when it is not one.

    A float converts through its repr (30.72 → Decimal("30.72")). Booleans, NaN, infinities and absurd magnitudes
    are not numbers.
    """
    text = _number_text(value)
    if text is None or len(text) > _MAX_TEXT or not _NUMBER.fullmatch(text):
        return None
    number = Decimal(text)
    if number.is_zero():
        return Decimal(0)
    return number if -_MAX_ADJUSTED <= number.adjusted() <= _MAX_ADJUSTED else None


def _number_text(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value) if abs(value) < 10**_MAX_TEXT else None
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` as UTF-8 can hold it: a lone surrogate (JSON ``"\\ud800"``, which no UTF-8 store accepts) becomes
    U+FFFD; everything else is kept as it came."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def verbatim(value: object) -> str:
    """A value as received, for ``raw_skipped``: a string as is (but ``storable``), anything else as its JSON text."""
    if isinstance(value, str):
        return storable(value)
    try:
        return storable(json.dumps(value, ensure_ascii=False, default=repr))
    except (ValueError, RecursionError):  # an integer too long to print, or garbage nested too deep
        return repr(type(value))


def scaled(sample: Sample, measure: Measure) -> Decimal | None:
    """The sample's value in the Reading's unit, or None (not a number, unknown unit, unreadable multiplier)."""
    number = parse_decimal(sample.value)
    factor = measure.units.get(sample.unit.strip().lower())
    multiplier = sample.multiplier
    if number is None or factor is None or multiplier is None or abs(multiplier) > _MAX_MULTIPLIER:
        return None
    return _plain(number * factor * _TEN**multiplier)


def _plain(number: Decimal) -> Decimal:
    """1.5E+3 → 1500: no positive exponents in stored text."""
    return number.quantize(ONE) if int(number.as_tuple().exponent) > 0 else number


def reading(at: datetime, samples: Iterable[Sample]) -> Reading:
    """One MeterValue's sampled values as a Reading taken ``at`` (already through the clock rules)."""
    given = tuple(samples)
    values = {measurand: measure_value(measurand, given) for measurand in MEASURES}
    return Reading(
        at=at,
        energy_wh=values[ENERGY],
        power_w=values[POWER],
        soc=values[SOC],
        current_a=values[CURRENT],
        voltage_v=values[VOLTAGE],
        context=_context(given),
        raw_skipped=raw_skipped(given),
    )


def measure_value(measurand: str, samples: Sequence[Sample]) -> Decimal | None:
    """The measurand's total if one is given, else its phases combined, else None."""
    measure = MEASURES[measurand]
    usable = [
        (sample, value)
        for sample in samples
        if sample.measurand == measurand and not sample.signed and _located(sample, measure)
        if (value := scaled(sample, measure)) is not None
    ]
    totals = [value for sample, value in usable if not sample.phase.strip()]
    if totals:
        return totals[0]
    return _from_phases(usable, measure)


def _located(sample: Sample, measure: Measure) -> bool:
    return measure.any_location or sample.location.strip() in ("", OUTLET)


def _from_phases(usable: Sequence[tuple[Sample, Decimal]], measure: Measure) -> Decimal | None:
    for group in measure.phase_groups:
        by_line: dict[str, Decimal] = {}
        for sample, value in usable:
            found = PHASES.get(sample.phase.strip())
            if found is not None and found[0] == group:
                by_line.setdefault(found[1], value)
        if by_line:
            return measure.combine(list(by_line.values()))
    return None


def raw_skipped(samples: Iterable[Sample]) -> tuple[str, ...]:
    """Verbatim values never used as numbers: SignedData, signed meter data, unparseable values, unknown units."""
    raw: list[str] = []
    for sample in samples:
        if _skipped(sample):
            raw.append(verbatim(sample.value))
        if sample.signed_data:
            raw.append(sample.signed_data)
    return tuple(raw)


def _skipped(sample: Sample) -> bool:
    if sample.signed or parse_decimal(sample.value) is None:
        return True
    measure = MEASURES.get(sample.measurand)
    return measure is not None and scaled(sample, measure) is None


def _context(samples: Sequence[Sample]) -> str:
    """The first context given in the MeterValue (chargers give all its values the same one), else the default."""
    return next((sample.context for sample in samples if sample.context), DEFAULT_CONTEXT)

"""Fuzz: the meter-value parser (``charger/meter.py``), directly and through ``normalize.sample``.

sampledValue lists with random measurands, units, 2.0.1 multipliers, contexts, phases, locations and values
("1e309", "-0", "NaN", "", huge decimals, non-strings). The only outcome is a ``Reading``: every number a finite
Decimal within the parser's bounds (|x| < 1e16 times the unit and multiplier factors), every skipped value kept
verbatim as text; never an exception.

Budgets (fuzz-ci): 150 Sample lists, 150 wire sampledValue lists (1.6 and 2.0.1 shapes), 200 single values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edge_bridge.charger import meter, normalize
from edge_bridge.charger.meter import Sample
from edge_bridge.domain.events import Reading
from tests.fuzz.conftest import budget
from tests.fuzz.strategies import NASTY_NUMBERS, NASTY_TEXT, deep, json_values, scalars

AT = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
MEASURANDS = (*meter.MEASURES, "Energy.Active.Export.Register", "Frequency", "", "energy.active.import.register")
UNITS = ("", "Wh", "kWh", "W", "kW", "A", "V", "Percent", "%", "WH", " kwh ", "varh", "Celsius", "?")
PHASES = ("", *meter.PHASES, "N", "L1-N ", "L4", "l1")
CONTEXTS = ("", "Sample.Periodic", "Transaction.Begin", "Transaction.End", "Sample.Clock", "Trigger", "x" * 300)
LOCATIONS = ("", "Outlet", "Inlet", "EV", "Body", "Cable")
VALUES = st.one_of(
    scalars,
    st.decimals(allow_nan=False).map(str),
    st.sampled_from(("1e309", "-0", "NaN", "", "1" * 400, "0." + "0" * 40 + "1", "1e-16", "9999999999999999")),
    st.builds(lambda digits, exp: f"{digits}e{exp}", st.integers(0, 10**20), st.integers(-400, 400)),
)
samples = st.builds(
    Sample,
    value=VALUES,
    measurand=st.sampled_from(MEASURANDS),
    phase=st.sampled_from(PHASES),
    location=st.sampled_from(LOCATIONS),
    unit=st.sampled_from(UNITS),
    multiplier=st.none() | st.integers(-12, 12) | st.sampled_from((2**63, -(2**63))),
    context=st.sampled_from(CONTEXTS),
    signed=st.booleans(),
    signed_data=st.sampled_from(("", "AB==", "x" * 1000)),
)
wire_fields = st.fixed_dictionaries(
    {},
    optional={
        "value": VALUES,
        "measurand": st.sampled_from(MEASURANDS) | scalars,
        "phase": st.sampled_from(PHASES) | scalars,
        "location": st.sampled_from(LOCATIONS) | scalars,
        "unit": st.sampled_from(UNITS) | scalars,
        "context": st.sampled_from(CONTEXTS) | scalars,
        "format": st.sampled_from(("Raw", "SignedData")) | scalars,
        "unit_of_measure": st.fixed_dictionaries(
            {}, optional={"unit": st.sampled_from(UNITS) | scalars, "multiplier": scalars | st.integers(-12, 12)}
        )
        | json_values(max_leaves=4),
        "signed_meter_value": st.fixed_dictionaries({}, optional={"signed_meter_data": scalars}) | scalars,
    },
)


def check(reading: Reading, given_samples: list[Sample]) -> None:
    assert reading.at == AT
    for number in (reading.energy_wh, reading.power_w, reading.soc, reading.current_a, reading.voltage_v):
        assert number is None or (isinstance(number, Decimal) and number.is_finite()), number
        assert number is None or abs(number) < Decimal(10) ** 30, number  # 1e16 x kilo x 1e9 x three phases
    assert all(isinstance(raw, str) for raw in reading.raw_skipped)
    assert reading.context in {s.context for s in given_samples} | {meter.DEFAULT_CONTEXT}


@budget(150)
@given(st.lists(samples, max_size=12))
def test_any_samples_make_a_reading(given_samples: list[Sample]) -> None:
    check(meter.reading(AT, given_samples), given_samples)


@budget(150)
@given(st.lists(wire_fields | json_values(max_leaves=6), max_size=8))
def test_any_wire_sampled_values_make_a_reading(items: list[Any]) -> None:
    """Through ``normalize.sample``, as a MeterValues or TransactionEvent of either version hands them over."""
    read = [normalize.sample(item) for item in items if isinstance(item, dict)]
    check(meter.reading(AT, read), read)


@budget(200)
@given(st.one_of(VALUES, st.sampled_from(NASTY_TEXT + NASTY_NUMBERS), json_values(max_leaves=4)))
def test_any_value_parses_to_a_bounded_decimal_or_none(value: Any) -> None:
    number = meter.parse_decimal(value)
    assert number is None or (number.is_finite() and (number.is_zero() or -15 <= number.adjusted() <= 15))
    assert isinstance(meter.verbatim(value), str)


def test_a_value_nested_deeper_than_the_stack_is_kept_as_text() -> None:
    reading = meter.reading(AT, [Sample(value=deep(5000))])
    assert reading.energy_wh is None
    assert len(reading.raw_skipped) == 1 and isinstance(reading.raw_skipped[0], str)

"""charger/meter.py: sampled values → Readings (ocpp-bridge §4), a row per case."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from edge_bridge.charger import meter
from edge_bridge.charger.meter import CURRENT, ENERGY, POWER, SOC, VOLTAGE, Sample
from edge_bridge.domain.events import Reading

AT = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
D = Decimal


def energy(*samples: Sample) -> Decimal | None:
    return meter.reading(AT, samples).energy_wh


# ------------------------------------------------------------------------------------------------ parse_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1500", D("1500")),
        ("30.72", D("30.72")),
        (" 42 ", D("42")),
        ("\t42\n", D("42")),
        ("1.5e3", D("1500")),
        ("1.5E+3", D("1500")),
        ("15e-1", D("1.5")),
        ("-3", D("-3")),
        ("+7", D("7")),
        (".5", D("0.5")),
        ("5.", D("5")),
        ("0", D("0")),
        ("0.000", D("0")),
        ("123456789.123", D("123456789.123")),
        (1500, D("1500")),  # a JSON number where a string belongs
        (30.72, D("30.72")),  # a float converts through its repr, not its binary value
        (0.1, D("0.1")),
        (1e3, D("1000")),
        (-0.0, D("0")),
    ],
)
def test_parse_decimal_accepts(value: object, expected: Decimal) -> None:
    parsed = meter.parse_decimal(value)
    assert isinstance(parsed, Decimal)
    assert parsed == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "abc",
        "n/a",
        "1,5",  # a decimal comma is ambiguous: kept raw, never guessed
        "1 000",
        "1_000",  # Decimal() would take it; a meter value must not
        "0x10",
        "١٢٣",  # non-ASCII digits
        "NaN",
        "Infinity",
        "inf",
        "1e",
        "e3",
        "1e99999",  # exponent too long
        "1e999",  # absurd magnitude
        "1" * 200,
        True,
        False,
        None,
        [1500],
        {"value": 1500},
        float("nan"),
        float("inf"),
        10**30,
    ],
)
def test_parse_decimal_rejects(value: object) -> None:
    assert meter.parse_decimal(value) is None


# ------------------------------------------------------------------------------------------- the energy register


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        pytest.param([Sample("1500")], D("1500"), id="1500-default-unit-and-measurand"),
        pytest.param([Sample("1500", unit="Wh")], D("1500"), id="Wh"),
        pytest.param([Sample("30.72", unit="kWh")], D("30720"), id="kWh-decimals-as-string"),
        pytest.param([Sample(" 42 ", unit="Wh")], D("42"), id="spaces"),
        pytest.param([Sample("1.5e3")], D("1500"), id="exponent"),
        pytest.param([Sample("1.5e3", unit="kWh")], D("1500000"), id="exponent-kWh"),
        pytest.param([Sample(1500)], D("1500"), id="number-as-number"),
        pytest.param([Sample(30.72, unit="kWh")], D("30720"), id="float-kWh"),
        pytest.param([Sample("1234.5")], D("1234.5"), id="fraction-of-a-Wh"),
        pytest.param([Sample("2", unit="KWH")], D("2000"), id="unit-case-insensitive"),
        pytest.param([Sample("2", unit=" kWh ")], D("2000"), id="unit-spaces"),
        pytest.param([Sample("1500", location="Outlet")], D("1500"), id="location-Outlet"),
        pytest.param(
            [Sample("999", location="Inlet"), Sample("1500", location="Outlet")], D("1500"), id="Inlet-ignored"
        ),
        pytest.param([Sample("999", location="Inlet")], None, id="only-Inlet"),
        pytest.param([Sample("999", location="Body")], None, id="only-Body"),
        pytest.param(
            [Sample("100", phase="L1"), Sample("200", phase="L2"), Sample("300", phase="L3")],
            D("600"),
            id="per-phase-only-sum",
        ),
        pytest.param(
            [Sample("100", phase="L1-N"), Sample("200", phase="L2-N"), Sample("300", phase="L3-N")],
            D("600"),
            id="per-phase-L-N-sum",
        ),
        pytest.param(
            [Sample("0.1", phase="L1", unit="kWh"), Sample("200", phase="L2", unit="Wh")],
            D("300"),
            id="per-phase-mixed-units",
        ),
        pytest.param(
            [Sample("100", phase="L1"), Sample("100", phase="L1-N"), Sample("200", phase="L2")],
            D("300"),
            id="L1-and-L1-N-counted-once",
        ),
        pytest.param(
            [Sample("600"), Sample("100", phase="L1"), Sample("200", phase="L2"), Sample("300", phase="L3")],
            D("600"),
            id="total-and-phases-not-double-counted",
        ),
        pytest.param(
            [Sample("100", phase="L1"), Sample("200", phase="L2"), Sample("300", phase="L3"), Sample("600")],
            D("600"),
            id="phases-before-total",
        ),
        pytest.param([Sample("100", phase="L1"), Sample("50", phase="N")], D("100"), id="neutral-never-counted"),
        pytest.param([Sample("100", phase="L1-L2")], None, id="line-to-line-energy-ignored"),
        pytest.param([Sample("1500"), Sample("1600")], D("1500"), id="two-totals-first-wins"),
        pytest.param([Sample(12.345, unit="Wh", multiplier=3)], D("12345"), id="201-multiplier-3"),
        pytest.param([Sample(12345, unit="Wh", multiplier=-1)], D("1234.5"), id="201-multiplier-minus-1"),
        pytest.param([Sample(2, unit="kWh", multiplier=1)], D("20000"), id="201-kWh-and-multiplier"),
        pytest.param([Sample("abcd==", signed=True), Sample("1500")], D("1500"), id="SignedData-not-a-number"),
        pytest.param([Sample("1500", signed=True)], None, id="SignedData-numeric-still-not-used"),
        pytest.param([Sample("n/a")], None, id="garbage"),
        pytest.param([Sample("n/a"), Sample("1500")], D("1500"), id="garbage-then-good"),
        pytest.param([Sample("1500", unit="varh")], None, id="unknown-unit"),
        pytest.param([Sample("1500", unit="?")], None, id="unreadable-unit"),
        pytest.param([Sample("1500", multiplier=None)], None, id="unreadable-multiplier"),
        pytest.param([Sample("1500", multiplier=10)], None, id="absurd-multiplier"),
        pytest.param([Sample("5", measurand="Energy.Active.Export.Register")], None, id="export-is-not-the-register"),
        pytest.param([Sample("5", measurand="Energy.Active.Import.Interval")], None, id="interval-not-register"),
        pytest.param([Sample("5", measurand=POWER)], None, id="other-measurand"),
        pytest.param([], None, id="no-samples"),
        pytest.param([Sample("-5")], D("-5"), id="negative-kept-rules-decide"),
    ],
)
def test_energy_register(samples: list[Sample], expected: Decimal | None) -> None:
    assert energy(*samples) == expected


def test_energy_is_plain_decimal_text() -> None:
    """No positive exponents reach the store: 1.5e3 Wh is kept as 1500."""
    assert str(energy(Sample("1.5e3"))) == "1500"
    assert str(energy(Sample("30.72", unit="kWh"))) in ("30720", "30720.00")


# ------------------------------------------------------------------------------- the other measurands (§4)


@pytest.mark.parametrize(
    ("samples", "field", "expected"),
    [
        pytest.param([Sample("7.4", measurand=POWER, unit="kW")], "power_w", D("7400"), id="power-kW"),
        pytest.param([Sample("7400", measurand=POWER, unit="W")], "power_w", D("7400"), id="power-W"),
        pytest.param([Sample("7400", measurand=POWER)], "power_w", D("7400"), id="power-default-W"),
        pytest.param([Sample(7.4, measurand=POWER, unit="W", multiplier=3)], "power_w", D("7400"), id="power-201"),
        pytest.param(
            [Sample("2.4", measurand=POWER, unit="kW", phase=p) for p in ("L1", "L2", "L3")],
            "power_w",
            D("7200"),
            id="power-phases-summed",
        ),
        pytest.param([Sample("7400", measurand=POWER, unit="Wh")], "power_w", None, id="power-energy-unit-skipped"),
        pytest.param([Sample("55", measurand=SOC, unit="Percent", location="EV")], "soc", D("55"), id="soc-EV"),
        pytest.param([Sample("55", measurand=SOC)], "soc", D("55"), id="soc-no-unit"),
        pytest.param([Sample(55.5, measurand=SOC, unit="Percent")], "soc", D("55.5"), id="soc-number"),
        pytest.param([Sample("55", measurand=SOC, unit="%")], "soc", D("55"), id="soc-percent-sign"),
        pytest.param([Sample("16", measurand=CURRENT, unit="A")], "current_a", D("16"), id="current-total"),
        pytest.param(
            [Sample(v, measurand=CURRENT, unit="A", phase=p) for v, p in (("15", "L1"), ("16.5", "L2"), ("14", "L3"))],
            "current_a",
            D("16.5"),
            id="current-phases-max",
        ),
        pytest.param(
            [Sample("80", measurand=CURRENT, unit="A"), Sample("90", measurand=CURRENT, unit="A", phase="L1")],
            "current_a",
            D("80"),
            id="current-total-preferred",
        ),
        pytest.param(
            [Sample("3", measurand=CURRENT, phase="N"), Sample("10", measurand=CURRENT, phase="L1")],
            "current_a",
            D("10"),
            id="current-neutral-ignored",
        ),
        pytest.param([Sample("400.5", measurand=VOLTAGE, unit="V")], "voltage_v", D("400.5"), id="voltage-one"),
        pytest.param(
            [Sample(v, measurand=VOLTAGE, phase=p) for v, p in (("229", "L1-N"), ("231", "L2-N"), ("230", "L3-N"))],
            "voltage_v",
            D("230"),
            id="voltage-phases-mean",
        ),
        pytest.param(
            [Sample(v, measurand=VOLTAGE, phase=p) for v, p in (("399", "L1-L2"), ("401", "L2-L3"))],
            "voltage_v",
            D("400"),
            id="voltage-line-to-line-mean",
        ),
        pytest.param(
            [Sample("230", measurand=VOLTAGE, phase="L1-N"), Sample("400", measurand=VOLTAGE, phase="L1-L2")],
            "voltage_v",
            D("230"),
            id="voltage-line-to-neutral-preferred",
        ),
        pytest.param(
            [Sample("230", measurand=VOLTAGE, location="Inlet")], "voltage_v", None, id="voltage-Inlet-ignored"
        ),
    ],
)
def test_other_measurands(samples: list[Sample], field: str, expected: Decimal | None) -> None:
    assert getattr(meter.reading(AT, samples), field) == expected


def test_a_full_sample_fills_every_field() -> None:
    reading = meter.reading(
        AT,
        [
            Sample("30.72", unit="kWh", context="Sample.Periodic"),
            Sample("7.2", measurand=POWER, unit="kW"),
            Sample("80", measurand=SOC, unit="Percent", location="EV"),
            Sample("32", measurand=CURRENT, unit="A"),
            Sample("230", measurand=VOLTAGE, unit="V"),
            Sample("36.6", measurand="Temperature", unit="Celsius"),
        ],
    )
    assert reading == Reading(
        at=AT,
        energy_wh=D("30720"),
        power_w=D("7200"),
        soc=D("80"),
        current_a=D("32"),
        voltage_v=D("230"),
        context="Sample.Periodic",
    )


# ------------------------------------------------------------------------------------------- tables, a row each

UNIT_ROWS = [
    (ENERGY, "", D(1)),
    (ENERGY, "wh", D(1)),
    (ENERGY, "kwh", D(1000)),
    (POWER, "", D(1)),
    (POWER, "w", D(1)),
    (POWER, "kw", D(1000)),
    (SOC, "", D(1)),
    (SOC, "percent", D(1)),
    (SOC, "%", D(1)),
    (CURRENT, "", D(1)),
    (CURRENT, "a", D(1)),
    (VOLTAGE, "", D(1)),
    (VOLTAGE, "v", D(1)),
]


@pytest.mark.parametrize(("measurand", "unit", "factor"), UNIT_ROWS)
def test_unit_table_row(measurand: str, unit: str, factor: Decimal) -> None:
    sample = Sample("2", measurand=measurand, unit=unit)
    assert meter.measure_value(measurand, [sample]) == 2 * factor


def test_every_unit_row_is_tested() -> None:
    rows = {(m, u) for m, measure in meter.MEASURES.items() for u in measure.units}
    assert rows == {(m, u) for m, u, _ in UNIT_ROWS}


PHASE_ROWS = [
    ("L1", "LN", "L1"),
    ("L2", "LN", "L2"),
    ("L3", "LN", "L3"),
    ("L1-N", "LN", "L1"),
    ("L2-N", "LN", "L2"),
    ("L3-N", "LN", "L3"),
    ("L1-L2", "LL", "L1-L2"),
    ("L2-L3", "LL", "L2-L3"),
    ("L3-L1", "LL", "L3-L1"),
]


@pytest.mark.parametrize(("phase", "group", "line"), PHASE_ROWS)
def test_phase_table_row(phase: str, group: str, line: str) -> None:
    assert meter.PHASES[phase] == (group, line)
    voltage = meter.measure_value(VOLTAGE, [Sample("230", measurand=VOLTAGE, phase=phase)])
    assert voltage == D("230")  # voltage takes both groups
    expected_energy = D("5") if group == "LN" else None
    assert meter.measure_value(ENERGY, [Sample("5", phase=phase)]) == expected_energy


def test_every_phase_row_is_tested() -> None:
    assert set(meter.PHASES) == {row[0] for row in PHASE_ROWS}


@pytest.mark.parametrize(
    ("measurand", "any_location"),
    [(ENERGY, False), (POWER, False), (SOC, True), (CURRENT, False), (VOLTAGE, False)],
)
def test_measure_table_row(measurand: str, any_location: bool) -> None:
    assert meter.MEASURES[measurand].any_location is any_location
    at_ev = meter.measure_value(measurand, [Sample("10", measurand=measurand, location="EV")])
    assert (at_ev == D("10")) is any_location


def test_every_measure_row_is_tested() -> None:
    assert set(meter.MEASURES) == {ENERGY, POWER, SOC, CURRENT, VOLTAGE}


# ------------------------------------------------------------------------------------- raw values and context


@pytest.mark.parametrize(
    ("samples", "raw"),
    [
        pytest.param([Sample("1500")], (), id="good-value-not-raw"),
        pytest.param([Sample("n/a")], ("n/a",), id="garbage-kept-verbatim"),
        pytest.param([Sample(" 1,5 ")], (" 1,5 ",), id="verbatim-with-spaces"),
        pytest.param([Sample("3q2+7w==", signed=True)], ("3q2+7w==",), id="SignedData"),
        pytest.param([Sample("1500", signed=True)], ("1500",), id="numeric-SignedData"),
        pytest.param([Sample("1500", unit="varh")], ("1500",), id="unknown-unit"),
        pytest.param([Sample("1500", multiplier=None)], ("1500",), id="unreadable-multiplier"),
        pytest.param([Sample(None)], ("null",), id="missing-value"),
        pytest.param([Sample(True)], ("true",), id="boolean"),
        pytest.param([Sample({"v": 1})], ('{"v": 1}',), id="object"),
        pytest.param([Sample("oops", measurand="Temperature")], ("oops",), id="garbage-of-any-measurand"),
        pytest.param([Sample("12", measurand="Temperature", unit="K")], (), id="unused-measurand-not-raw"),
        pytest.param([Sample(1500, signed_data="SIGNED-BLOB")], ("SIGNED-BLOB",), id="201-signedMeterValue"),
        pytest.param([Sample("a"), Sample("1"), Sample("b")], ("a", "b"), id="order-kept"),
    ],
)
def test_raw_skipped(samples: list[Sample], raw: tuple[str, ...]) -> None:
    assert meter.reading(AT, samples).raw_skipped == raw


def test_signed_201_value_is_still_used() -> None:
    assert energy(Sample(1500, signed_data="SIGNED-BLOB")) == D("1500")


@pytest.mark.parametrize(
    ("samples", "context"),
    [
        ([Sample("0", context="Transaction.Begin")], "Transaction.Begin"),
        ([Sample("9", context="Transaction.End")], "Transaction.End"),
        ([Sample("9")], "Sample.Periodic"),
        ([], "Sample.Periodic"),
        ([Sample("9"), Sample("1", measurand=POWER, context="Sample.Clock")], "Sample.Clock"),
    ],
)
def test_context(samples: list[Sample], context: str) -> None:
    assert meter.reading(AT, samples).context == context


def test_begin_zero_then_lifetime_readings_are_just_parsed() -> None:
    """§9: a Transaction.Begin of 0 followed by lifetime readings; the baseline is the rules layer's job."""
    begin = meter.reading(AT, [Sample("0", context="Transaction.Begin")])
    later = meter.reading(AT, [Sample("1234567.8", context="Sample.Periodic")])
    assert (begin.energy_wh, begin.context) == (D("0"), "Transaction.Begin")
    assert (later.energy_wh, later.context) == (D("1234567.8"), "Sample.Periodic")


def test_reading_is_frozen_and_keeps_at() -> None:
    reading = meter.reading(AT, [Sample("1")])
    assert reading.at == AT
    with pytest.raises(AttributeError):
        reading.energy_wh = D(2)  # type: ignore[misc]


# ------------------------------------------------------------------------------- found by fuzzing (tests/fuzz)


def test_a_value_nested_deeper_than_the_stack_is_kept_as_its_type() -> None:
    """``verbatim`` raised RecursionError for a sampledValue value nested 5,000 deep."""
    value: object = 1
    for _ in range(5000):
        value = [value]
    assert meter.verbatim(value) == "<class 'list'>"


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    """SQLite cannot store a lone surrogate (JSON "\\ud800"): the StartTransaction carrying one was lost."""
    assert meter.storable("TAG-\ud800") == "TAG-\ufffd"
    assert meter.storable("é😀") == "é😀"
    assert meter.verbatim({"v": "\udfff"}) == '{"v": "\ufffd"}'

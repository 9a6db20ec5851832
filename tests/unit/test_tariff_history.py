"""The tariff history: which tariff was in force when, and a session split where one gave way to another."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_bridge.domain.site import Tariff, TariffPeriod
from edge_bridge.domain.tariff_history import EPOCH, TariffHistory, tariff_from_text, tariff_text
from edge_bridge.domain.tou import split
from tests.unit.test_tou import EXAMPLE, SHANGHAI, local

D = Decimal
DEARER = Tariff(
    "default", tuple(TariffPeriod(p.start_min, p.end_min, p.electricity + 1, p.service) for p in EXAMPLE.periods)
)
CHANGE = local(5, 16, 20)  # inside the example's 16:00-22:00 period (1.04 + 0.4)
HISTORY = TariffHistory(((EPOCH, EXAMPLE), (CHANGE, DEARER)))


def test_the_tariff_in_force_is_the_latest_version_not_after_the_moment() -> None:
    assert HISTORY.at(CHANGE - timedelta(microseconds=1)) is EXAMPLE
    assert HISTORY.at(CHANGE) is DEARER
    assert HISTORY.at(local(1, 0) - timedelta(days=3000)) is EXAMPLE  # before the first: the first
    later = TariffHistory(((CHANGE, DEARER),))
    assert later.at(CHANGE - timedelta(days=1)) is DEARER


def test_windows_cut_only_at_changes_inside_the_session() -> None:
    assert HISTORY.windows(local(5, 15), local(5, 16)) == [(local(5, 15), local(5, 16), EXAMPLE)]
    assert HISTORY.windows(local(5, 16), local(5, 17)) == [
        (local(5, 16), CHANGE, EXAMPLE),
        (CHANGE, local(5, 17), DEARER),
    ]
    assert HISTORY.windows(local(5, 17), local(5, 16)) == [(local(5, 17), local(5, 17), DEARER)]  # end before start


def test_a_session_across_a_change_is_priced_by_each_tariff_for_its_own_time() -> None:
    slices = split(local(5, 16), local(5, 17), D(60_000), [], HISTORY, SHANGHAI)  # 60 kW, linear
    assert [(s.start, s.end) for s in slices] == [(local(5, 16), CHANGE), (CHANGE, local(5, 17))]
    assert [s.period.electricity for s in slices] == [D("1.04"), D("2.04")]
    assert [s.power_kwh for s in slices] == [D("20.00"), D("40.00")]


def test_a_history_of_one_tariff_splits_as_the_tariff_alone() -> None:
    start, end = local(5, 6), local(6, 9)
    assert split(start, end, D(80_000), [], TariffHistory.of(EXAMPLE), SHANGHAI) == split(
        start, end, D(80_000), [], EXAMPLE, SHANGHAI
    )


@given(st.lists(st.tuples(st.integers(0, 1440), st.decimals("0", "99.9999", places=4)), min_size=1, max_size=5))
def test_the_stored_form_gives_back_the_same_tariff(cuts: list[tuple[int, Decimal]]) -> None:
    periods = tuple(TariffPeriod(0, 1440, price, price / 2) for _, price in cuts)
    tariff = Tariff("峰谷", periods)
    assert tariff_from_text(tariff_text(tariff)) == tariff


@pytest.mark.parametrize("text", ["", "[]", '{"name": "x"}', '{"name": "x", "periods": [[0, 1440, "abc", "1"]]}'])
def test_text_it_did_not_write_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a stored tariff"):
        tariff_from_text(text)

"""to_db / from_db: aware UTC ↔ fixed-width, sortable text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_bridge.store.db import from_db, to_db

aware = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
)


def test_known_value() -> None:
    moment = datetime(2024, 3, 1, 8, 5, 9, 7, tzinfo=timezone(timedelta(hours=8)))
    assert to_db(moment) == "2024-03-01T00:05:09.000007Z"


def test_early_years_keep_four_digits() -> None:
    assert to_db(datetime(33, 1, 1, tzinfo=UTC)) == "0033-01-01T00:00:00.000000Z"


@given(aware)
def test_round_trip_is_the_same_instant_in_utc(moment: datetime) -> None:
    back = from_db(to_db(moment))
    assert back == moment
    assert back.utcoffset() == timedelta(0)


@given(st.lists(aware, min_size=2, max_size=20))
def test_text_order_is_time_order(moments: list[datetime]) -> None:
    texts = [to_db(m) for m in moments]
    assert len({len(t) for t in texts}) == 1
    assert sorted(texts) == [to_db(m) for m in sorted(moments)]


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_db(datetime(2024, 1, 1))


@pytest.mark.parametrize("text", ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000000+00:00", "garbage"])
def test_from_db_refuses_other_shapes(text: str) -> None:
    with pytest.raises(ValueError):
        from_db(text)

"""The tariff history in the store: a version when a station's configured tariff changes (start-up or reload),
none when it does not, and a version never dated before the latest even when the clock went back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from edge_bridge.config import Config, site_model
from edge_bridge.domain.site import Site, Tariff
from edge_bridge.store import tariffs as stored
from edge_bridge.store.db import Database
from edge_bridge.usecases import tariffs
from tests.conftest import example_raw

SITE = site_model(Config.model_validate(example_raw()))
STATION = SITE.stations[0].station_id
T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


def dearer(site: Site, more: Decimal) -> Site:
    station = site.stations[0]
    periods = tuple(replace(p, electricity=p.electricity + more) for p in station.tariff.periods)
    return replace(site, stations=(replace(station, tariff=Tariff(station.tariff.name, periods)),))


async def test_a_version_only_when_the_tariff_changes(db: Database) -> None:
    first = await db.write(lambda tx: tariffs.settle(tx, SITE, T0))
    again = await db.write(lambda tx: tariffs.settle(tx, SITE, T0 + timedelta(hours=1)))
    assert first == again and len(first[STATION].versions) == 1
    changed = await db.write(lambda tx: tariffs.settle(tx, dearer(SITE, Decimal(1)), T0 + timedelta(hours=2)))
    versions = changed[STATION].versions
    assert [since for since, _ in versions] == [T0, T0 + timedelta(hours=2)]
    assert versions[-1][1].periods[0].electricity == SITE.stations[0].tariff.periods[0].electricity + 1
    assert await db.read(lambda tx: stored.history(tx, STATION)) == changed[STATION]  # what the store holds


async def test_a_clock_gone_back_dates_the_new_version_just_after_the_latest(db: Database) -> None:
    await db.write(lambda tx: tariffs.settle(tx, SITE, T0))
    back = T0 - timedelta(hours=1)
    history = await db.write(lambda tx: tariffs.settle(tx, dearer(SITE, Decimal(2)), back))
    assert [since for since, _ in history[STATION].versions] == [T0, T0 + tariffs.TICK]
    assert history[STATION].at(T0 + timedelta(seconds=1)).periods[0].electricity > Decimal(2)


async def test_a_name_alone_is_no_new_version(db: Database) -> None:
    await db.write(lambda tx: tariffs.settle(tx, SITE, T0))
    station = SITE.stations[0]
    renamed = replace(SITE, stations=(replace(station, tariff=replace(station.tariff, name="renamed")),))
    history = await db.write(lambda tx: tariffs.settle(tx, renamed, T0 + timedelta(days=1)))
    assert len(history[STATION].versions) == 1
    assert history[STATION].versions[0][1].name == station.tariff.name  # the version from T0, kept

"""When notification_stationInfo is queued (D7): only when the province would otherwise end up holding something
else than the site's current info."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_bridge.config import Config, site_model
from edge_bridge.domain.stations import BootInfo
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox, OutboxRow
from edge_bridge.usecases.station_info import queue_station_info, station_info_accepted

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
STATION = "370202000001"
PLAIN: dict[str, BootInfo] = {}
ACME = {"CP-DC-01": BootInfo(vendor="Acme", model="DC120")}


async def queue(db: Database, outbox: Outbox, config: Config, boot: dict[str, BootInfo]) -> bool:
    return await db.write(lambda tx: queue_station_info(tx, outbox, site_model(config), STATION, T0, boot))


def accept(tx: Tx, row: OutboxRow) -> None:
    Outbox.mark_sent_in(tx, row.id, T0, '{"Status":0}')
    station_info_accepted(tx, row, {"Status": 0})


async def accept_all(db: Database, outbox: Outbox) -> None:
    for row in reversed(await outbox.rows("pending")):
        await db.write(lambda tx, row=row: accept(tx, row))  # type: ignore[misc]


async def pending_vendors(outbox: Outbox) -> list[str]:
    return ["Acme" if "Acme" in row.payload else "-" for row in reversed(await outbox.rows("pending"))]


async def test_the_same_info_is_queued_once(db: Database, config: Config) -> None:
    outbox = Outbox(db)
    assert await queue(db, outbox, config, PLAIN) is True
    assert await queue(db, outbox, config, PLAIN) is False  # queued already
    await accept_all(db, outbox)
    assert await queue(db, outbox, config, PLAIN) is False  # the province holds it


async def test_a_change_and_its_undo_both_go_out_while_the_change_is_still_queued(db: Database, config: Config) -> None:
    outbox = Outbox(db)
    await queue(db, outbox, config, PLAIN)
    await accept_all(db, outbox)  # the province holds the plain info
    assert await queue(db, outbox, config, ACME) is True  # a boot taught a vendor: queued, not yet delivered
    assert await queue(db, outbox, config, PLAIN) is True  # back to plain: the queued Acme push would overwrite it
    assert await pending_vendors(outbox) == ["Acme", "-"]


async def test_a_change_undone_after_delivery_goes_out_again(db: Database, config: Config) -> None:
    outbox = Outbox(db)
    await queue(db, outbox, config, ACME)
    await accept_all(db, outbox)
    assert await queue(db, outbox, config, PLAIN) is True
    assert await queue(db, outbox, config, ACME) is True
    assert await pending_vendors(outbox) == ["-", "Acme"]

"""``status_report``: configured chargers even when never seen, connectors, open sessions; readable beside a writer."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from edge_bridge.config import Config, site_model
from edge_bridge.domain.events import ChargerBooted, ConnectorStatusReported, MeterSampled, Reading, SessionEvent
from edge_bridge.status_report import status_report
from edge_bridge.store.db import Database
from edge_bridge.store.outbox import Outbox
from edge_bridge.usecases.bridge import ChargerBridge
from tests.conftest import Opener

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


async def report(db: Database, config: Config, now: datetime) -> str:
    out = io.StringIO()
    assert await status_report(db, site_model(config), out, now) == 0
    return out.getvalue()


async def test_empty_store_lists_the_configured_chargers_and_connectors(db: Database, config: Config) -> None:
    text = await report(db, config, T0)
    assert "CP-DC-01             connected: no   OCPP -      last seen: never" in text
    assert "CP-AC-01             connected: no   OCPP -      last seen: never" in text
    assert "CP-DC-01 1/1" in text and "370202000001001A" in text and "no status yet" in text
    assert "CP-DC-01 2/1" in text and "370202000001001B" in text
    assert "Open sessions (0)" in text


async def test_live_state(db: Database, config: Config) -> None:
    bridge = ChargerBridge(db, Outbox(db), site_model(config), clock=lambda: T0)
    await bridge.connected("CP-DC-01", "ocpp1.6")
    await bridge.apply([ChargerBooted("CP-DC-01", T0, vendor="ACME", model="DC120")])
    await bridge.apply([ConnectorStatusReported("CP-DC-01", 1, 1, "Charging", T0, T0)])
    await bridge.apply(
        [ConnectorStatusReported("CP-DC-01", 2, 1, "Faulted", T0, T0, error_code="GroundFailure", info="x")]
    )
    start = SessionEvent("CP-DC-01", "started", T0, T0, evse=1, connector=1, id_tag="TAG", meter_wh=Decimal(1000))
    tid = (await bridge.apply([start])).transaction_id
    later = T0 + timedelta(minutes=10)
    sample = Reading(later, energy_wh=Decimal("13345.6"), power_w=Decimal(72000), soc=Decimal(55))
    await bridge.apply([MeterSampled("CP-DC-01", 1, 1, (sample,), later, transaction_ref=str(tid))])
    await bridge.apply([ConnectorStatusReported("CP-XX-99", 1, 1, "Available", T0, T0)])  # not configured
    await bridge.sweep(later)  # persists last_seen

    text = await report(db, config, T0 + timedelta(minutes=11))
    assert "CP-DC-01             connected: yes  OCPP 1.6    last seen: 2024-05-01 08:10:00Z (60 s ago)" in text
    assert "vendor/model: ACME / DC120" in text
    assert "Charging" in text and "provincial 3" in text and "[72000 W, 55 %]" in text
    assert "Faulted (GroundFailure)" in text and "provincial 255" in text
    assert "CP-XX-99" in text
    assert "Open sessions (1)" in text
    assert f"#{tid:<6} CP-DC-01 1/1  OCPP 1.6    started 2024-05-01 08:00:00Z (660 s ago)" in text
    assert "energy so far 12.346 kWh" in text


async def test_readable_while_another_connection_writes(tmp_path: Path, config: Config, opened: Opener) -> None:
    writer = await opened(tmp_path / "edge.db")
    reader = await opened(tmp_path / "edge.db")
    bridge = ChargerBridge(writer, Outbox(writer), site_model(config), clock=lambda: T0)
    await bridge.connected("CP-AC-01", "ocpp2.0.1")
    text = await report(reader, config, T0)
    assert "CP-AC-01             connected: yes  OCPP 2.0.1" in text

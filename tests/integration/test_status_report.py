"""``status_report``: configured chargers even when never seen, connectors, open sessions; readable beside a writer."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.cli import main
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


async def live_state(db: Database, config: Config) -> int:
    """A 1.6 charger booted, charging on connector 1 (72 kW, 55 %), faulted on 2; an unconfigured one seen."""
    bridge = ChargerBridge(db, Outbox(db), site_model(config), clock=lambda: T0)
    await bridge.connected("CP-DC-01", "ocpp1.6")
    await bridge.apply([ChargerBooted("CP-DC-01", T0, vendor="ACME", model="DC120")])
    await bridge.apply([ConnectorStatusReported("CP-DC-01", 1, 1, "Charging", T0, T0)])
    await bridge.apply(
        [ConnectorStatusReported("CP-DC-01", 2, 1, "Faulted", T0, T0, error_code="GroundFailure", info="x")]
    )
    start = SessionEvent("CP-DC-01", "started", T0, T0, evse=1, connector=1, id_tag="TAG", meter_wh=Decimal(1000))
    tid = (await bridge.apply([start])).transaction_id
    assert tid is not None
    later = T0 + timedelta(minutes=10)
    sample = Reading(later, energy_wh=Decimal("13345.6"), power_w=Decimal(72000), soc=Decimal(55))
    await bridge.apply([MeterSampled("CP-DC-01", 1, 1, (sample,), later, transaction_ref=str(tid))])
    await bridge.apply([ConnectorStatusReported("CP-XX-99", 1, 1, "Available", T0, T0)])  # not configured
    await bridge.sweep(later)  # persists last_seen
    return tid


async def test_live_state(db: Database, config: Config) -> None:
    tid = await live_state(db, config)
    text = await report(db, config, T0 + timedelta(minutes=11))
    assert "CP-DC-01             connected: yes  OCPP 1.6    last seen: 2024-05-01 08:10:00Z (60 s ago)" in text
    assert "vendor/model: ACME / DC120" in text
    assert "Charging" in text and "provincial 3" in text and "[72000 W, 55 %]" in text
    assert "Faulted (GroundFailure)" in text and "provincial 255" in text
    assert "CP-XX-99" in text
    assert "Open sessions (1)" in text
    assert f"#{tid:<6} CP-DC-01 1/1  OCPP 1.6    started 2024-05-01 08:00:00Z (660 s ago)" in text
    assert "energy so far 12.346 kWh" in text


async def json_report(db: Database, config: Config, now: datetime) -> dict[str, Any]:
    out = io.StringIO()
    assert await status_report(db, site_model(config), out, now, as_json=True) == 0
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


async def test_json_holds_what_the_text_shows(db: Database, config: Config) -> None:
    tid = await live_state(db, config)
    doc = await json_report(db, config, T0 + timedelta(minutes=11))
    assert doc["format"] == 1 and doc["generated_at"] == "2024-05-01T08:11:00Z"
    assert doc["storage"]["path"] == str(db.path) and doc["storage"]["disk_full"] is False
    assert isinstance(doc["storage"]["free_bytes"], int) and doc["storage"]["free_bytes"] > 0
    assert [c["ocpp_id"] for c in doc["chargers"]] == ["CP-DC-01", "CP-AC-01", "CP-XX-99"]
    dc, ac, unknown = doc["chargers"]
    assert dc | {"connectors": None} == {
        **{"ocpp_id": "CP-DC-01", "configured": True, "connected": True, "offline": False, "ocpp_version": "1.6"},
        **{"last_seen": "2024-05-01T08:10:00Z", "vendor": "ACME", "model": "DC120", "connectors": None},
    }
    charging, faulted = dc["connectors"]
    assert charging == {
        **{"evse": 1, "connector": 1, "connector_id": "370202000001001A", "ocpp_status": "Charging"},
        **{"error_code": "NoError", "status_at": "2024-05-01T08:00:00Z", "provincial_status": 3},
        **{"power_w": "72000", "soc_percent": "55", "current_a": None, "voltage_v": None},
    }
    assert faulted["ocpp_status"] == "Faulted" and faulted["error_code"] == "GroundFailure"
    assert faulted["provincial_status"] == 255 and faulted["connector_id"] == "370202000001001B"
    assert ac["connected"] is False and ac["last_seen"] is None and ac["connectors"][0]["ocpp_status"] is None
    assert unknown["configured"] is False and unknown["connectors"][0]["connector_id"] is None
    assert doc["open_sessions"] == [
        {
            **{"id": tid, "charger": "CP-DC-01", "evse": 1, "connector": 1, "ocpp_version": "1.6"},
            **{"started_at": "2024-05-01T08:00:00Z", "energy_kwh": "12.346", "flags": []},
        }
    ]
    alarms = [(a["charger"], a["evse"], a["code"]) for a in doc["active_alarms"]]
    assert alarms == [("CP-DC-01", 2, 4), ("CP-XX-99", 0, 27)]  # insulation fault; a charger not configured
    assert doc["active_alarms"][0]["raised_at"] == "2024-05-01T08:00:00Z"
    assert doc["orders"] == {"counts": [], "problems": []}


async def test_json_lists_an_order_not_pushed(db: Database, config: Config) -> None:
    """A session on a connector not in the config ends: its order is counted and listed, not pushed."""
    bridge = ChargerBridge(db, Outbox(db), site_model(config), clock=lambda: T0)
    start = SessionEvent("CP-XX-99", "started", T0, T0, evse=1, connector=1, meter_wh=Decimal(0))
    tid = (await bridge.apply([start])).transaction_id
    later = T0 + timedelta(minutes=30)
    stop = SessionEvent("CP-XX-99", "ended", later, later, transaction_ref=str(tid), meter_wh=Decimal(5000))
    await bridge.apply([stop])
    doc = await json_report(db, config, later)
    (problem,) = doc["orders"]["problems"]
    assert problem["session_id"] == tid and problem["charger"] == "CP-XX-99" and problem["outbox_state"] is None
    assert [(c["state"], c["count"]) for c in doc["orders"]["counts"]] == [(problem["state"], 1)]
    text = await report(db, config, later)
    assert f"#{tid:<6} CP-XX-99 1/1" in text and f"not pushed ({problem['state']})" in text


async def test_json_of_an_empty_store(db: Database, config: Config) -> None:
    doc = await json_report(db, config, T0)
    assert [c["ocpp_id"] for c in doc["chargers"]] == ["CP-DC-01", "CP-AC-01"]
    assert all(not c["connected"] and c["last_seen"] is None for c in doc["chargers"])
    assert [len(c["connectors"]) for c in doc["chargers"]] == [2, 1]
    assert doc["open_sessions"] == [] and doc["active_alarms"] == []


async def test_readable_while_another_connection_writes(tmp_path: Path, config: Config, opened: Opener) -> None:
    writer = await opened(tmp_path / "edge.db")
    reader = await opened(tmp_path / "edge.db")
    bridge = ChargerBridge(writer, Outbox(writer), site_model(config), clock=lambda: T0)
    await bridge.connected("CP-AC-01", "ocpp2.0.1")
    text = await report(reader, config, T0)
    assert "CP-AC-01             connected: yes  OCPP 2.0.1" in text


def test_the_command_as_text_and_json(write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    """``edge-bridge status [--json]`` in-process: the same facts, the document alone on stdout."""
    path = write_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert main(["status", "--config", str(path)]) == 0
        text = capsys.readouterr().out
        assert main(["status", "--json", "--config", str(path)]) == 0
        doc = json.loads(capsys.readouterr().out)
    finally:
        root.handlers[:], root.level = handlers, level
    assert text.startswith(f"Storage: {doc['storage']['path']}  ") and "Open sessions (0)" in text
    assert [c["ocpp_id"] for c in doc["chargers"]] == ["CP-DC-01", "CP-AC-01"]


def test_the_console_script(write_config: Callable[..., Path]) -> None:
    script = Path(sys.executable).with_name("edge-bridge")
    helped = subprocess.run([script, "status", "--help"], capture_output=True, text=True, check=True, timeout=60)
    assert "--json" in helped.stdout and "0  success" in helped.stdout
    command = [script, "status", "--json", "--config", str(write_config())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout)["storage"]["disk_full"] is False

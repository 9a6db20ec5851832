"""The configuration a benchmark runs the daemon on: ``config.example.toml`` with generated stations and chargers.

Chargers are ``BENCH-0001``, ``BENCH-0002``, ... with one connector each (ocpp_connector 1), in stations of
``PER_STATION`` chargers, as on a large real site; everything listens on 127.0.0.1 port 0. Because every charger is
configured, statuses and orders really become pushes. The daemon runs exactly as in production (WAL,
``synchronous=FULL``, every state-changing message committed before it is answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import tomllib
from pathlib import Path
from typing import Any

from bench.procs import BenchError, Child
from simulators.toml_writer import dump_toml

REPO = Path(__file__).resolve().parent.parent
PER_STATION = 50
PATH_PREFIX = "/ocpp/"
DRAIN_LIMIT_S = 900.0
POLL_S = 0.5


def charger_id(number: int) -> str:
    return f"BENCH-{number:04d}"


def charger_ids(count: int) -> list[str]:
    return [charger_id(n) for n in range(1, count + 1)]


def site_config(chargers: int, db_path: Path, province_url: str) -> dict[str, Any]:
    """The example config with ``chargers`` generated chargers, local ports, fast retries, a JSON log."""
    with (REPO / "config.example.toml").open("rb") as handle:
        raw = tomllib.load(handle)
    raw["storage"]["path"] = str(db_path)
    raw["ocpp"].update(listen="127.0.0.1:0", allow_unknown_chargers=False, path_prefix=PATH_PREFIX.rstrip("/"))
    # every simulated charger comes from 127.0.0.1, as a whole site behind one NAT address would: such a site sets
    # the per-address caps to its number of chargers (README, "Security"), or a reconnect storm meets 503s
    raw["ocpp"].update(max_connections_per_address=chargers + 200, max_handshakes_per_address=chargers + 200)
    raw["pull_api"]["listen"] = "127.0.0.1:0"
    raw["web"]["listen"] = "127.0.0.1:0"
    raw["province"].update(base_url=province_url, retry_initial_s=0.2, retry_max_s=2.0)
    raw["logging"] = {"level": "info", "format": "json"}
    template = raw["stations"][0]
    numbers = list(range(1, chargers + 1))
    groups = [numbers[i : i + PER_STATION] for i in range(0, len(numbers), PER_STATION)]
    raw["stations"] = [_station(template, index, group) for index, group in enumerate(groups, 1)]
    return raw


def _station(template: dict[str, Any], index: int, numbers: list[int]) -> dict[str, Any]:
    station_id = f"3702029{index:05d}"
    charger = template["chargers"][0]
    chargers = [_charger(charger, station_id, n) for n in numbers]
    return {**template, "station_id": station_id, "name": f"Bench station {index}", "chargers": chargers}


def _charger(template: dict[str, Any], station_id: str, number: int) -> dict[str, Any]:
    equipment = f"{station_id}{number:04d}"
    plug = {**template["connectors"][0], "ocpp_connector": 1, "connector_id": f"{equipment}01"}
    names = {"ocpp_id": charger_id(number), "equipment_id": equipment, "name": f"Bench {number}"}
    return {**template, **names, "connectors": [plug]}


def connector_ids(raw: dict[str, Any]) -> list[str]:
    """Every configured provincial ConnectorID of a generated config."""
    return [c["connector_id"] for s in raw["stations"] for ch in s["chargers"] for c in ch["connectors"]]


def pending(db_path: Path) -> int:
    """Outbox rows the daemon has not delivered yet (read from outside, as ``edge-bridge status`` does)."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0])


async def until_drained(daemon: Child, db_path: Path, limit_s: float = DRAIN_LIMIT_S) -> None:
    """Poll (rarely: a poll is not free on a small machine) until the daemon has nothing pending."""
    give_up = time.monotonic() + limit_s
    while pending(db_path) > 0:
        if daemon.process.returncode is not None or time.monotonic() > give_up:
            raise BenchError(f"the daemon did not drain its outbox (exit code {daemon.process.returncode})")
        await asyncio.sleep(POLL_S)


def write_config(path: Path, raw: dict[str, Any]) -> None:
    path.write_text(dump_toml(raw), encoding="utf-8")
    path.chmod(0o600)  # it holds the (example) secrets inline

"""A second, independent OCPP peer: npm's ocpp-rpc in strict mode (tests/node/peer.mjs) drives the real daemon
through a whole charging session in OCPP 1.6J and 2.0.1, validating every answer against the official OCPP JSON
schemas; then the store must hold the finished session with the right energy.

Needs Node and ``npm ci --prefix tests/node``. Without them these tests skip, unless EDGE_BRIDGE_REQUIRE_NODE_PEER=1
(CI sets it), when they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.app import App
from edge_bridge.config import Config, load_config
from tests.conftest import REPO

NODE_DIR = REPO / "tests" / "node"
PEER = NODE_DIR / "peer.mjs"
REQUIRE = "EDGE_BRIDGE_REQUIRE_NODE_PEER"
INSTALL = "npm ci --prefix tests/node"
DC, AC = "CP-DC-01", "CP-AC-01"  # the example config's 1.6 and 2.0.1 chargers
PEER_TIMEOUT_S = 30.0
REGISTER = "Energy.Active.Import.Register"


def node_peer() -> str:
    """The node executable, when the peer can run; otherwise skip (fail under EDGE_BRIDGE_REQUIRE_NODE_PEER=1)."""
    node = shutil.which("node")
    if node is None:
        missing = "`node` is not on PATH (install Node >= 18, then `" + INSTALL + "`)"
    elif not (NODE_DIR / "node_modules" / "ocpp-rpc" / "package.json").is_file():
        missing = f"tests/node/node_modules/ocpp-rpc is missing (run `{INSTALL}`)"
    else:
        return node
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"the ocpp-rpc peer cannot run: {missing}; {REQUIRE}=1 forbids skipping")
    pytest.skip(f"the ocpp-rpc peer cannot run: {missing}")


@contextlib.asynccontextmanager
async def daemon(config: Config) -> AsyncIterator[App]:
    """The real daemon in-process, serving until the block ends."""
    stop = asyncio.Event()
    app = App(config, drain_timeout_s=1.0)
    running = asyncio.create_task(app.run(stop))
    try:
        async with asyncio.timeout(10):
            await app.started.wait()
        yield app
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await running


async def run_peer(
    node: str, app: App, identity: str, version: str, password: str | None = None, *, passes: bool = True
) -> list[dict[str, Any]]:
    """Run peer.mjs against the daemon (which keeps serving meanwhile) and return its JSON lines; unless
    ``passes`` is False, assert that it passed (exit 0, every call ok), showing the failed calls if not."""
    endpoint = f"ws://127.0.0.1:{app.ocpp_port}{app.config.ocpp.path_prefix}"
    args = [str(PEER), endpoint, identity, version, *([password] if password else [])]
    process = await asyncio.create_subprocess_exec(
        node, *args, cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(PEER_TIMEOUT_S):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    failed = [line for line in lines if not line["ok"]]
    report = "\n".join(json.dumps(line) for line in failed) + "\n" + err.decode()
    if not passes:
        assert process.returncode == 1 and failed, report
        return lines
    assert process.returncode == 0, f"peer exited {process.returncode}:\n{report}"
    assert lines and not failed, report
    return lines


def calls(lines: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["method"] == method]


def sessions_of(config: Config, charger: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(config.storage.path)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM sessions WHERE ocpp_id = ? ORDER BY id", (charger,)).fetchall()
    return [dict(row) for row in rows]


def charger_row(config: Config, charger: str) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(config.storage.path)) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM chargers WHERE ocpp_id = ?", (charger,)).fetchone())


async def test_an_ocpp_16_session_by_ocpp_rpc_gets_schema_valid_answers_and_is_stored(config: Config) -> None:
    node = node_peer()
    async with daemon(config) as app:
        lines = await run_peer(node, app, DC, "1.6")
    methods = [line["method"] for line in lines]
    assert methods.count("StatusNotification") == 5 and "FirmwareStatusNotification" in methods
    [start], [stop] = calls(lines, "StartTransaction"), calls(lines, "StopTransaction")
    transaction_id = start["response"]["transactionId"]
    assert calls(lines, "MeterValues")[0]["params"]["transactionId"] == transaction_id
    assert stop["params"]["transactionId"] == transaction_id
    expected = Decimal(stop["params"]["meterStop"]) - Decimal(start["params"]["meterStart"])

    [session] = sessions_of(config, DC)
    assert (session["id"], session["version"], session["state"]) == (transaction_id, "1.6", "finished")
    assert (session["end_source"], session["stop_reason"]) == ("stop", "Local")
    assert session["energy_wh"] is not None and Decimal(session["energy_wh"]) == expected == Decimal(6000)
    charger = charger_row(config, DC)
    assert (charger["ocpp_version"], charger["vendor"], charger["model"]) == ("1.6", "ocpp-rpc-peer", "PEER-DC")


async def test_an_ocpp_201_session_by_ocpp_rpc_gets_schema_valid_answers_and_is_stored(config: Config) -> None:
    node = node_peer()
    async with daemon(config) as app:
        lines = await run_peer(node, app, AC, "2.0.1")
    events = calls(lines, "TransactionEvent")
    assert [e["params"]["eventType"] for e in events] == ["Started", "Updated", "Updated", "Ended"]
    assert {"NotifyEvent", "NotifyReport", "LogStatusNotification", "MeterValues"} <= {line["method"] for line in lines}
    [transaction_id] = {e["params"]["transactionInfo"]["transactionId"] for e in events}
    readings = sorted(
        (value["timestamp"], Decimal(str(sample["value"])))
        for e in events
        for value in e["params"].get("meterValue", [])
        for sample in value["sampledValue"]
        if sample.get("measurand") == REGISTER
    )
    expected = readings[-1][1] - readings[0][1]

    [session] = sessions_of(config, AC)
    assert (session["transaction_ref"], session["version"], session["state"]) == (transaction_id, "2.0.1", "finished")
    assert (session["end_source"], session["stop_reason"]) == ("ended", "Local")
    assert session["energy_wh"] is not None and Decimal(session["energy_wh"]) == expected == Decimal(350)
    charger = charger_row(config, AC)
    assert (charger["ocpp_version"], charger["vendor"], charger["model"]) == ("2.0.1", "ocpp-rpc-peer", "PEER-AC")


async def test_a_charger_with_a_password_admits_the_peer_only_with_it(
    write_config: Callable[..., Path],
) -> None:
    node = node_peer()
    password = "peer-Pa55word-16"

    def with_password(raw: dict[str, Any]) -> None:
        raw["stations"][0]["chargers"][0]["password"] = password

    config = load_config(write_config(with_password))
    async with daemon(config) as app:
        [refused] = await run_peer(node, app, DC, "1.6", passes=False)
        await run_peer(node, app, DC, "1.6", password)
    assert refused["method"] == "connect" and refused["error"] == "Unauthorized"  # HTTP 401
    assert [s["state"] for s in sessions_of(config, DC)] == ["finished"]


def test_without_node_the_peer_tests_skip_and_under_ci_they_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="npm ci --prefix tests/node"):
        node_peer()
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE}=1 forbids skipping"):
        node_peer()

"""The OCPP server over real sockets (ocpp-bridge §1, §2): handshake rules, keepalive, bad frames, every action.

Peers: websockets clients for the handshake cases, a minimal hand-written websocket client where a peer must
misbehave (ignore pings), and the ``ocpp`` library's client ChargePoint for message flows (it validates our answers
against the OCPP JSON schemas).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import sqlite3
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import OCPPError
from ocpp.v16 import ChargePoint as Client16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as Client201
from ocpp.v201 import call as call201
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from edge_bridge.app import App
from edge_bridge.charger.admission import basic_credentials, identity_from_path
from edge_bridge.charger.server import OcppServer, tls_context
from edge_bridge.config import Config, load_config, site_model
from edge_bridge.domain.events import ChargerBooted, Event, MeterSampled
from edge_bridge.errors import StoreError
from edge_bridge.store.outbox import Outbox
from edge_bridge.usecases.bridge import Applied, ChargerBridge
from tests.conftest import Opener, eventually

DC, AC = "CP-DC-01", "CP-AC-01"  # the example config's 1.6 and 2.0.1 chargers
TS = "2024-05-01T08:00:00Z"
PASSWORD = "s3cret-Pa55word!"


# ------------------------------------------------------------------------------------------------ the bridge


class Spy:
    """The real ChargerBridge on a real SQLite store, seen through what the server hands it; ``fail`` makes
    ``apply`` raise StoreError as a failing store would."""

    def __init__(self, real: ChargerBridge, db_path: Path) -> None:
        self.real, self.db_path = real, db_path
        self.events: list[Event] = []  # committed
        self.touches: list[str] = []
        self.connects: list[tuple[str, str]] = []
        self.disconnects: list[str] = []
        self.fail = False

    async def apply(self, events: tuple[Event, ...]) -> Applied:
        if self.fail:
            raise StoreError("disk I/O error")
        applied = await self.real.apply(events)
        self.events.extend(events)
        return applied

    async def connected(self, charger: str, ocpp_version: str) -> list[tuple[int, int]]:
        self.connects.append((charger, ocpp_version))
        return await self.real.connected(charger, ocpp_version)

    async def disconnected(self, charger: str) -> None:
        self.disconnects.append(charger)
        await self.real.disconnected(charger)

    def touch(self, charger: str, now: datetime) -> None:
        self.touches.append(charger)
        self.real.touch(charger, now)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the store from a second connection: only what was committed is visible."""
        with contextlib.closing(sqlite3.connect(self.db_path)) as conn:
            return conn.execute(sql, params).fetchall()


@pytest.fixture(autouse=True)
def _log_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_bridge")


@pytest.fixture
async def bridge(opened: Opener, tmp_path: Path, config: Config) -> Spy:
    path = tmp_path / "edge.db"
    db = await opened(path)
    real = ChargerBridge(db, Outbox(db), site_model(config), offline_after_s=config.ocpp.offline_after_s)
    return Spy(real, path)


@pytest.fixture
async def server(config: Config, bridge: Spy) -> AsyncIterator[OcppServer]:
    async with running(config, bridge) as started:
        yield started


@contextlib.asynccontextmanager
async def running(config: Config, bridge: Any, **kw: Any) -> AsyncIterator[OcppServer]:
    ocpp_server = OcppServer(config, bridge, **kw)
    await ocpp_server.start()
    try:
        yield ocpp_server
    finally:
        await ocpp_server.close()


def url(server: OcppServer, identity: str = DC, *, scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{server.port}/ocpp/{identity}"


# ------------------------------------------------------------------------------------------------ clients


@contextlib.asynccontextmanager
async def ocpp_client(server: OcppServer, identity: str = DC, version: str = "1.6", **kw: Any) -> AsyncIterator[Any]:
    """The ocpp library's charge point side, connected and receiving."""
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    async with connect(url(server, identity), subprotocols=[subprotocol], **kw) as ws:
        client = (Client16 if version == "1.6" else Client201)(identity, ws)
        receiving = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await receiving


async def call(client: Any, action: str, payload: dict[str, Any]) -> Any:
    """Send ``action`` with its wire payload; the client validates request and answer, and raises on a CALLERROR."""
    module = call16 if isinstance(client, Client16) else call201
    request = getattr(module, action)(**camel_to_snake_case(payload))
    return await client.call(request, suppress=False)


async def exchange(ws: ClientConnection, frame: str) -> list[Any]:
    await ws.send(frame)
    return await reply(ws)


async def reply(ws: ClientConnection) -> list[Any]:
    """The next frame that is not a CALL of the server's: this client, like some firmware, ignores those (the
    server asks a charger for its statuses when it connects)."""
    async with asyncio.timeout(5):
        while True:
            frame: list[Any] = json.loads(await ws.recv())
            if frame[0] != 2:
                return frame


async def until_closed(ws: ClientConnection) -> ConnectionClosed:
    """Read (and ignore the server's CALLs) until the server closes; the close."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(READ_TIMEOUT_S):
            while True:
                await ws.recv()
    return closed.value


READ_TIMEOUT_S = 5.0  # any read that waits for the server: a hang guard


class RawClient:
    """Just enough RFC 6455 to be a charger that never answers pings (websockets' client always does)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int) -> None:
        self.reader, self.writer, self.status = reader, writer, status

    @classmethod
    async def open(cls, port: int, path: str, protocols: str = "ocpp1.6") -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade"]
        lines += [f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Protocol: {protocols}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(READ_TIMEOUT_S):
            head = await reader.readuntil(b"\r\n\r\n")
        return cls(reader, writer, int(head.split()[1]))

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        assert len(payload) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    async def read_frame(self) -> tuple[int, bytes]:
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        return first & 0x0F, await self.reader.readexactly(length)

    async def read_until_text_or_close(self) -> tuple[int, bytes]:
        """The next text frame that is not a CALL of the server's (ignored, as by some firmware), or the close."""
        async with asyncio.timeout(READ_TIMEOUT_S):
            while True:
                opcode, payload = await self.read_frame()
                if opcode == 0x8 or (opcode == 0x1 and not payload.startswith(b"[2,")):  # pings (0x9) unanswered
                    return opcode, payload

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


# ------------------------------------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/ocpp/CP-DC-01", "CP-DC-01"),
        ("/ocpp/CP-DC-01/", "CP-DC-01"),
        ("/ocpp/CP-DC-01?token=1&x=/y", "CP-DC-01"),
        ("/ocpp/CP%2DDC%2D01/?a=b", "CP-DC-01"),
        ("/ocpp/site/CP%20one", "CP one"),
        ("/ocpp/", None),
        ("/ocpp", None),
        ("/ocpp?CP-DC-01", None),
        ("/other/CP-DC-01", None),
        ("/ocppx/CP-DC-01", None),
        ("/", None),
    ],
)
def test_identity_is_the_last_segment_under_the_prefix(path: str, identity: str | None) -> None:
    assert identity_from_path(path, "/ocpp") == identity
    assert identity_from_path(path, "/ocpp/") == identity


def test_an_empty_prefix_takes_the_identity_from_the_root() -> None:
    assert identity_from_path("/CP-DC-01", "") == "CP-DC-01"
    assert identity_from_path("/CP-DC-01", "/") == "CP-DC-01"
    assert identity_from_path("/", "/") is None


@pytest.mark.parametrize(
    ("header", "credentials"),
    [
        ("Basic " + base64.b64encode(b"CP-1:pa:ss").decode(), (b"CP-1", b"pa:ss")),
        ("basic " + base64.b64encode(b"CP-1:").decode(), (b"CP-1", b"")),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic !!!", None),
        ("Bearer abc", None),
        ("", None),
        (None, None),
    ],
)
def test_basic_credentials(header: str | None, credentials: tuple[bytes, bytes] | None) -> None:
    assert basic_credentials(header) == credentials


# ------------------------------------------------------------------------------------------------ handshake


def status_of(error: InvalidStatus) -> int:
    return error.response.status_code


async def test_an_unknown_identity_is_refused_with_404(server: OcppServer, bridge: Spy) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(url(server, "CP-NOBODY"), subprotocols=["ocpp1.6"])
    assert status_of(refused.value) == 404
    assert bridge.connects == []


@pytest.mark.parametrize("path", ["/elsewhere/CP-DC-01", "/ocpp/", "/ocpp"])
async def test_a_path_without_an_identity_under_the_prefix_is_refused_with_404(server: OcppServer, path: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"ws://127.0.0.1:{server.port}{path}", subprotocols=["ocpp1.6"])
    assert status_of(refused.value) == 404


async def test_unknown_chargers_are_served_when_allowed(write_config: Callable[..., Path], bridge: Spy) -> None:
    config = load_config(write_config(lambda raw: raw["ocpp"].update(allow_unknown_chargers=True)))
    async with running(config, bridge) as started, ocpp_client(started, "CP-NEW") as client:
        await call(client, "Heartbeat", {})
    assert bridge.connects == [("CP-NEW", "1.6")]


@pytest.fixture
def protected(write_config: Callable[..., Path]) -> Config:
    def mutate(raw: dict[str, Any]) -> None:
        raw["stations"][0]["chargers"][0]["password"] = PASSWORD

    return load_config(write_config(mutate))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(DC, "wrong"),
        basic("CP-AC-01", PASSWORD),
        basic(DC, PASSWORD + "x"),
        {"Authorization": "Bearer x"},
        [("Authorization", basic(DC, PASSWORD)["Authorization"]), ("Authorization", "Basic eA==")],
    ],
    ids=["missing", "wrong-password", "other-username", "longer-password", "not-basic", "two-headers"],
)
async def test_wrong_or_missing_credentials_are_refused_with_401(
    protected: Config, bridge: Spy, headers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(protected, bridge) as started:
        with pytest.raises(InvalidStatus) as refused:
            await connect(url(started), subprotocols=["ocpp1.6"], additional_headers=headers)
    assert status_of(refused.value) == 401
    assert refused.value.response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert PASSWORD not in caplog.text
    assert any(r.getMessage() == "charger_refused" for r in caplog.records)


async def test_the_right_credentials_are_served(protected: Config, bridge: Spy) -> None:
    async with running(protected, bridge) as started:
        async with ocpp_client(started, DC, additional_headers=basic(DC, PASSWORD)) as client:
            await call(client, "Heartbeat", {})
        async with ocpp_client(started, AC, version="2.0.1") as other:  # no password configured for this one
            await call(other, "Heartbeat", {})
    assert bridge.connects == [(DC, "1.6"), (AC, "2.0.1")]


async def test_a_charger_that_offers_no_subprotocol_is_served_as_16(server: OcppServer, bridge: Spy) -> None:
    async with connect(url(server)) as ws:
        assert ws.subprotocol is None
        answer = await exchange(ws, '[2,"h1","Heartbeat",{}]')
    assert answer[:2] == [3, "h1"] and "currentTime" in answer[2]
    assert bridge.connects == [(DC, "1.6")]


async def test_only_unsupported_subprotocols_complete_the_handshake_without_one_then_close_1002(
    server: OcppServer, bridge: Spy
) -> None:
    raw = await RawClient.open(server.port or 0, "/ocpp/CP-DC-01", protocols="ocpp2.1, ocpp1.5")
    try:
        assert raw.status == 101
        opcode, payload = await raw.read_until_text_or_close()
    finally:
        await raw.close()
    assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 1002
    assert bridge.connects == []


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"),
        (["ocpp1.6", "ocpp2.0.1"], "ocpp1.6"),
        (["ocpp2.1", "ocpp2.0.1"], "ocpp2.0.1"),
        (["ocpp1.6"], "ocpp1.6"),
    ],
)
async def test_the_chargers_first_supported_subprotocol_is_chosen(
    server: OcppServer, bridge: Spy, offered: list[str], chosen: str
) -> None:
    async with connect(url(server, AC), subprotocols=offered) as ws:
        assert ws.subprotocol == chosen
        version = chosen.removeprefix("ocpp")
        if version == "2.0.1":
            boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
        else:
            boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        answer = await exchange(ws, json.dumps([2, "b1", "BootNotification", boot]))
    assert answer[2]["status"] == "Accepted"
    assert bridge.connects == [(AC, version)]


async def test_the_identity_is_percent_decoded_and_slash_and_query_are_ignored(server: OcppServer, bridge: Spy) -> None:
    target = f"ws://127.0.0.1:{server.port}/ocpp/CP%2DDC%2D01/?serial=42"
    async with connect(target, subprotocols=["ocpp1.6"]) as ws:
        await exchange(ws, '[2,"h1","Heartbeat",{}]')
        assert set(server.live) == {DC}
    assert bridge.connects == [(DC, "1.6")]
    assert bridge.touches == [DC]


async def test_a_second_connection_replaces_the_first(server: OcppServer, bridge: Spy) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as first:
        await exchange(first, '[2,"a","Heartbeat",{}]')
        async with connect(url(server), subprotocols=["ocpp1.6"]) as second:
            closed = await until_closed(first)
            assert closed.rcvd is not None and closed.rcvd.code == 1000
            answer = await exchange(second, '[2,"b","Heartbeat",{}]')
            assert answer[:2] == [3, "b"]
            assert server.live[DC].connection.remote_address[1] == second.local_address[1]
            assert bridge.disconnects == []  # the charger never went away
        await eventually(lambda: bridge.disconnects == [DC])
    assert server.live == {}
    assert bridge.connects == [(DC, "1.6"), (DC, "1.6")]


# ------------------------------------------------------------------------------------------------ frames


@pytest.mark.parametrize(
    "garbage",
    ["not json", '[9,"x"]', "{}", "[]", "[2]", '[2,5,"Heartbeat"]', '"text"', '[3,"nobody-asked",{}]'],
)
async def test_a_bad_frame_is_logged_and_the_next_good_frame_is_served(
    server: OcppServer, bridge: Spy, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        await ws.send(garbage)
        answer = await exchange(ws, '[2,"h2","Heartbeat",{}]')
    assert answer[:2] == [3, "h2"]
    assert bridge.touches == [DC, DC]  # the bad frame proved the charger alive too
    if not garbage.startswith("[3"):
        assert any(r.getMessage() == "ocpp_bad_frame" for r in caplog.records)


@pytest.mark.parametrize(
    "call_frame",
    [
        '[2,"c1",["BootNotification"],{}]',
        '[2,"c1","Heartbeat",[1,2]]',
        '[2,"c1","NoSuchAction",{}]',
        '[2,"c1","Heartbeat"]',  # a broken CALL whose unique id can be read: a CALLERROR ProtocolError (fuzzing)
        '[2,"c1","Heartbeat",{',  # broken JSON after a readable id: a CALLERROR FormationViolation
    ],
)
async def test_a_malformed_call_gets_a_callerror_and_the_connection_stays(server: OcppServer, call_frame: str) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        error = await exchange(ws, call_frame)
        answer = await exchange(ws, '[2,"h3","Heartbeat",{}]')
    assert error[:2] == [4, "c1"]
    assert answer[:2] == [3, "h3"]


async def test_a_3_mib_frame_is_accepted(server: OcppServer) -> None:
    frame = json.dumps([2, "big", "DataTransfer", {"vendorId": "X", "data": "x" * (3 * 1024 * 1024)}])
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        answer = await exchange(ws, frame)
    assert answer == [3, "big", {"status": "Accepted"}]


async def test_compression_offered_by_a_charger_is_declined(server: OcppServer) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"], compression="deflate") as ws:
        assert "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        assert (await exchange(ws, '[2,"h1","Heartbeat",{}]'))[:2] == [3, "h1"]


async def test_a_frame_over_4_mib_closes_the_connection_with_1009(server: OcppServer) -> None:
    frame = json.dumps([2, "huge", "DataTransfer", {"vendorId": "X", "data": "x" * (4 * 1024 * 1024)}])
    ws = await connect(url(server), subprotocols=["ocpp1.6"])
    try:
        await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(READ_TIMEOUT_S):
                await ws.recv()
    finally:
        # the server closed while this client was still writing the frame; the websockets client's own close then
        # trips over its already-closed transport (AttributeError in abort): a client-side quirk, not the server's
        with contextlib.suppress(AttributeError):
            await ws.close()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


# ------------------------------------------------------------------------------------------------ answers


async def test_boot_notification_is_accepted_with_the_interval_and_utc_time(
    server: OcppServer, config: Config, bridge: Spy
) -> None:
    async with ocpp_client(server) as client:
        answer = await call(client, "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "DC60"})
    assert answer.status == "Accepted"
    assert answer.interval == config.ocpp.heartbeat_interval_s
    assert answer.current_time.endswith("Z")
    sent = datetime.fromisoformat(answer.current_time.replace("Z", "+00:00"))
    assert abs(sent - datetime.now(UTC)) < timedelta(seconds=5)
    assert [type(e) for e in bridge.events] == [ChargerBooted]


async def test_boot_notification_time_comes_from_the_clock(config: Config, bridge: Spy) -> None:
    fixed = datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)
    async with running(config, bridge, clock=lambda: fixed) as started, ocpp_client(started, AC, "2.0.1") as client:
        boot = {"reason": "PowerUp", "chargingStation": {"model": "AC7", "vendorName": "ACME"}}
        answer = await call(client, "BootNotification", boot)
    assert answer.current_time == "2024-05-01T08:00:00Z"


TX201 = {"transactionId": "tx-1"}
METER201 = [{"timestamp": TS, "sampledValue": [{"value": 1500.0}]}]
SCHEDULE = {"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}]}

V16_ACTIONS: dict[str, dict[str, Any]] = {
    "BootNotification": {"chargePointVendor": "ACME", "chargePointModel": "DC60"},
    "Heartbeat": {},
    "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    "MeterValues": {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": [{"value": "1500"}]}]},
    "StartTransaction": {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": TS},
    "StopTransaction": {"transactionId": 1, "meterStop": 1500, "timestamp": TS},
    "Authorize": {"idTag": "TAG1"},
    "DataTransfer": {"vendorId": "ACME", "messageId": "x", "data": "y"},
    "DiagnosticsStatusNotification": {"status": "Uploaded"},
    "FirmwareStatusNotification": {"status": "Installed"},
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": TS, "techInfo": "boot"},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----"},
    "LogStatusNotification": {"status": "Uploaded", "requestId": 1},
    "SignedFirmwareStatusNotification": {"status": "Installed", "requestId": 1},
}

V201_ACTIONS: dict[str, dict[str, Any]] = {
    "BootNotification": {"reason": "PowerUp", "chargingStation": {"model": "AC7", "vendorName": "ACME"}},
    "Heartbeat": {},
    "StatusNotification": {"timestamp": TS, "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    "MeterValues": {"evseId": 1, "meterValue": METER201},
    "TransactionEvent": {
        "eventType": "Started",
        "timestamp": TS,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": TX201,
        "idToken": {"idToken": "TAG1", "type": "ISO14443"},
        "evse": {"id": 1, "connectorId": 1},
    },
    "Authorize": {"idToken": {"idToken": "TAG1", "type": "ISO14443"}},
    "NotifyEvent": {
        "generatedAt": TS,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": TS,
                "trigger": "Alerting",
                "actualValue": "true",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "Problem"},
            }
        ],
    },
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": TS},
    "FirmwareStatusNotification": {"status": "Installed"},
    "LogStatusNotification": {"status": "Uploaded"},
    "DataTransfer": {"vendorId": "ACME"},
    "NotifyReport": {"requestId": 1, "generatedAt": TS, "seqNo": 0},
    "NotifyMonitoringReport": {"requestId": 1, "generatedAt": TS, "seqNo": 0},
    "ReportChargingProfiles": {
        "requestId": 1,
        "chargingLimitSource": "CSO",
        "evseId": 1,
        "chargingProfile": [
            {
                "id": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [SCHEDULE],
            }
        ],
    },
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----"},
    "NotifyChargingLimit": {"chargingLimit": {"chargingLimitSource": "EMS"}},
    "ClearedChargingLimit": {"chargingLimitSource": "EMS"},
    "NotifyEVChargingNeeds": {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase"}},
    "NotifyEVChargingSchedule": {"timeBase": TS, "evseId": 1, "chargingSchedule": SCHEDULE},
    "NotifyCustomerInformation": {"data": "x", "seqNo": 0, "generatedAt": TS, "requestId": 1},
    "NotifyDisplayMessages": {"requestId": 1},
    "PublishFirmwareStatusNotification": {"status": "Published", "location": ["http://example.invalid/fw"]},
    "ReservationStatusUpdate": {"reservationId": 1, "reservationUpdateStatus": "Expired"},
    "Get15118EVCertificate": {
        "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
        "action": "Install",
        "exiRequest": "AAAA",
    },
    "GetCertificateStatus": {
        "ocspRequestData": {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": "a",
            "issuerKeyHash": "b",
            "serialNumber": "c",
            "responderURL": "http://ocsp.example.invalid",
        }
    },
}


def test_the_tables_cover_every_charger_initiated_action() -> None:
    from ocpp.v16.enums import Action as Action16
    from ocpp.v201.enums import Action as Action201

    from edge_bridge.charger.v16 import V16ChargePoint
    from edge_bridge.charger.v201 import V201ChargePoint

    def handled(kind: Any) -> set[str]:
        return {str(getattr(kind, name)._on_action) for name in dir(kind) if hasattr(getattr(kind, name), "_on_action")}

    assert handled(V16ChargePoint) == set(V16_ACTIONS) and set(V16_ACTIONS) <= {a.value for a in Action16}
    assert handled(V201ChargePoint) == set(V201_ACTIONS) and set(V201_ACTIONS) <= {a.value for a in Action201}
    assert len(V16_ACTIONS) == 14 and len(V201_ACTIONS) == 25


@pytest.mark.parametrize(
    ("version", "action"), [("1.6", a) for a in V16_ACTIONS] + [("2.0.1", a) for a in V201_ACTIONS]
)
async def test_every_charger_initiated_action_is_answered_without_callerror(
    server: OcppServer, version: str, action: str
) -> None:
    payload = (V16_ACTIONS if version == "1.6" else V201_ACTIONS)[action]
    async with ocpp_client(server, DC if version == "1.6" else AC, version) as client:
        try:
            await call(client, action, payload)  # raises on a CALLERROR or a schema-invalid answer
        except OCPPError as error:
            pytest.fail(f"{action}: {error!r}")


async def test_start_transaction_is_answered_with_a_positive_id_once_the_session_is_committed(
    server: OcppServer, bridge: Spy
) -> None:
    start = V16_ACTIONS["StartTransaction"]
    async with ocpp_client(server) as client:
        first = await call(client, "StartTransaction", start)
        committed = bridge.rows("SELECT id, ocpp_id, state, id_tag FROM sessions WHERE id = ?", first.transaction_id)
        repeat = await call(client, "StartTransaction", start)
        other = await call(client, "StartTransaction", {**start, "connectorId": 2, "idTag": "TAG2"})
    assert first.transaction_id > 0 and first.id_tag_info["status"] == "Accepted"
    assert committed == [(first.transaction_id, DC, "open", "TAG1")]  # on disk when the answer arrived
    assert repeat.transaction_id == first.transaction_id  # a repeated start: the same id, no second session
    assert other.transaction_id > first.transaction_id


async def test_transaction_event_answer_carries_id_token_info_only_with_an_id_token(server: OcppServer) -> None:
    without = {**V201_ACTIONS["TransactionEvent"], "eventType": "Updated", "seqNo": 1}
    del without["idToken"]
    async with ocpp_client(server, AC, "2.0.1") as client:
        with_token = await call(client, "TransactionEvent", V201_ACTIONS["TransactionEvent"])
        without_token = await call(client, "TransactionEvent", without)
    assert with_token.id_token_info["status"] == "Accepted"
    assert without_token.id_token_info is None


async def test_a_schema_violating_meter_values_is_still_answered_and_applied(server: OcppServer, bridge: Spy) -> None:
    sample = {"timestamp": TS, "sampledValue": [{"value": 1500}]}  # a number where the schema wants a string
    payload = {"connectorId": 1, "transactionId": 7, "meterValue": [sample], "vendorExtra": {"x": 1}}
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        answer = await exchange(ws, json.dumps([2, "m1", "MeterValues", payload]))
    assert answer == [3, "m1", {}]
    sampled = [e for e in bridge.events if isinstance(e, MeterSampled)]
    assert len(sampled) == 1 and sampled[0].transaction_ref == "7"
    assert bridge.rows("SELECT ocpp_id, evse, energy_wh FROM meter_samples") == [(DC, 1, "1500")]


@pytest.mark.parametrize(
    ("action", "payload", "expected"),
    [
        ("StatusNotification", {"status": "Available"}, {}),
        ("StatusNotification", {"connectorId": "one", "errorCode": "NoError", "status": "Available"}, {}),
    ],
)
async def test_an_unreadable_transaction_message_is_still_answered_positively(
    server: OcppServer, action: str, payload: dict[str, Any], expected: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        answer = await exchange(ws, json.dumps([2, "u1", action, payload]))
    assert answer == [3, "u1", expected]
    assert any(r.getMessage() == "ocpp_unreadable" for r in caplog.records)


async def test_a_start_without_a_connector_is_stored_and_gets_a_transaction_id(server: OcppServer, bridge: Spy) -> None:
    payload = {"idTag": "TAG1", "meterStart": 100, "timestamp": TS}
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        answer = await exchange(ws, json.dumps([2, "s0", "StartTransaction", payload]))
    assert answer[2]["transactionId"] > 0 and answer[2]["idTagInfo"] == {"status": "Accepted"}
    rows = bridge.rows("SELECT id, evse, id_tag, meter_start_wh, state FROM sessions")
    assert rows == [(answer[2]["transactionId"], 0, "TAG1", "100", "open")]


async def test_a_stop_without_a_transaction_id_is_stored_as_an_orphan(server: OcppServer, bridge: Spy) -> None:
    payload = {"meterStop": 10_500, "timestamp": TS, "reason": "EVDisconnected"}
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        answer = await exchange(ws, json.dumps([2, "o1", "StopTransaction", payload]))
    assert answer == [3, "o1", {}]
    assert bridge.rows("SELECT orphan, state, stop_reason, meter_stop_wh FROM sessions") == [
        (1, "finished", "EVDisconnected", "10500")
    ]


async def test_a_store_failure_is_answered_internal_error_and_the_connection_stays(
    server: OcppServer, bridge: Spy
) -> None:
    bridge.fail = True
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        start = json.dumps([2, "s1", "StartTransaction", V16_ACTIONS["StartTransaction"]])
        error = await exchange(ws, start)
        bridge.fail = False
        retried = await exchange(ws, start.replace("s1", "s2"))
    assert error[:3] == [4, "s1", "InternalError"]
    assert retried[:2] == [3, "s2"] and retried[2]["transactionId"] > 0
    assert bridge.rows("SELECT count(*) FROM sessions") == [(1,)]


# ------------------------------------------------------------------------------------------------ liveness, close


async def test_a_charger_that_ignores_pings_but_sends_frames_is_kept(config: Config, bridge: Spy) -> None:
    async with running(config, bridge, ping_interval_s=0.05, ping_timeout_s=1.0) as started:
        raw = await RawClient.open(started.port or 0, "/ocpp/CP-DC-01")
        try:
            for n in range(25):  # 2.5 s: more than twice the pong timeout
                raw.send_text(f'[2,"h{n}","Heartbeat",{{}}]')
                opcode, payload = await raw.read_until_text_or_close()
                assert opcode == 0x1 and json.loads(payload)[1] == f"h{n}"
                await asyncio.sleep(0.1)
            assert DC in started.live
        finally:
            await raw.close()


async def test_a_silent_charger_that_ignores_pings_is_dropped(config: Config, bridge: Spy) -> None:
    async with running(config, bridge, ping_interval_s=0.05, ping_timeout_s=1.0) as started:
        raw = await RawClient.open(started.port or 0, "/ocpp/CP-DC-01")
        try:
            async with asyncio.timeout(5):  # dropped after about 1 s
                opcode, payload = await raw.read_until_text_or_close()
        finally:
            await raw.close()
        assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 1011
        await eventually(lambda: bridge.disconnects == [DC])


async def test_answered_pongs_count_as_signs_of_life(config: Config, bridge: Spy) -> None:
    async with (
        running(config, bridge, ping_interval_s=0.05) as started,
        connect(url(started), subprotocols=["ocpp1.6"]),
    ):
        await eventually(lambda: len(bridge.touches) >= 2)
    assert set(bridge.touches) == {DC}


async def test_close_sends_1001_to_every_charger_and_stops_listening(config: Config, bridge: Spy) -> None:
    started = OcppServer(config, bridge)
    await started.start()
    async with (
        connect(url(started), subprotocols=["ocpp1.6"]) as dc,
        connect(url(started, AC), subprotocols=["ocpp2.0.1"]) as ac,
    ):
        await exchange(dc, '[2,"h","Heartbeat",{}]')
        await started.close()
        for ws in (dc, ac):
            closed = await until_closed(ws)
            assert closed.rcvd is not None and closed.rcvd.code == 1001
    assert sorted(bridge.disconnects) == [AC, DC]
    with pytest.raises(OSError):
        await connect(url(started), subprotocols=["ocpp1.6"], open_timeout=2)


async def test_connect_and_disconnect_are_logged_once_each(
    server: OcppServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        await exchange(ws, '[2,"h","Heartbeat",{}]')
    await eventually(lambda: any(r.getMessage() == "charger_disconnected" for r in caplog.records))
    events = [r.getMessage() for r in caplog.records if r.name == "edge_bridge.charger.server"]
    assert events.count("charger_connected") == 1 and events.count("charger_disconnected") == 1


async def test_the_daemon_serves_chargers_and_closes_their_sockets_first_on_stop(config: Config) -> None:
    stop = asyncio.Event()
    app = App(config, drain_timeout_s=1.0)
    running_app = asyncio.create_task(app.run(stop))
    try:
        async with asyncio.timeout(10):
            await app.started.wait()
        target = f"ws://127.0.0.1:{app.ocpp_port}/ocpp/{DC}"
        async with connect(target, subprotocols=["ocpp1.6"]) as ws:
            boot = {"chargePointVendor": "ACME", "chargePointModel": "DC60"}
            answer = await exchange(ws, json.dumps([2, "b", "BootNotification", boot]))
            assert answer[2]["status"] == "Accepted"
            stop.set()
            closed = await until_closed(ws)
        assert closed.rcvd is not None and closed.rcvd.code == 1001
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await running_app
    with contextlib.closing(sqlite3.connect(config.storage.path)) as conn:
        assert conn.execute("SELECT vendor, connected FROM chargers WHERE ocpp_id = ?", (DC,)).fetchall() == [
            ("ACME", 0)
        ]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    command += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return cert, key


async def test_with_a_certificate_chargers_are_served_over_tls_12_or_newer(
    write_config: Callable[..., Path], bridge: Spy, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    config = load_config(write_config(lambda raw: raw["ocpp"].update(tls_cert=str(cert), tls_key=str(key))))
    assert tls_context(str(cert), str(key)).minimum_version == ssl.TLSVersion.TLSv1_2
    trusting = ssl.create_default_context(cafile=str(cert))
    trusting.check_hostname = False
    async with running(config, bridge) as started:
        async with connect(url(started, scheme="wss"), subprotocols=["ocpp1.6"], ssl=trusting) as ws:
            answer = await exchange(ws, '[2,"h","Heartbeat",{}]')
        assert answer[:2] == [3, "h"]
        with pytest.raises(InvalidMessage):  # plain ws:// to a TLS port is no websocket
            await connect(url(started), subprotocols=["ocpp1.6"], open_timeout=5)


# ------------------------------------------------------------------------------- found by fuzzing (tests/fuzz)


@pytest.mark.parametrize(
    ("frame", "answer_type"),
    [
        # a payload key "self" collided with the handler's own self: TypeError, a traceback and InternalError
        ('[2,"f1","BootNotification",{"self":1,"chargePointVendor":"V","chargePointModel":"M"}]', 3),
        # an integer over 4,300 digits: json raised ValueError past unpack, logged as ocpp_frame_failed
        ('[2,"f1","Heartbeat",{"x":' + "9" * 5000 + "}]", 4),
        # nesting deeper than the parser's stack: RecursionError, likewise
        ('[2,"f1","Heartbeat",' + "[" * 5000 + "]" * 5000 + "]", 4),
        # a lone surrogate in idTag: the store raised UnicodeEncodeError and the transaction was lost
        ('[2,"f1","StartTransaction",{"connectorId":1,"idTag":"\\ud800","meterStart":0,"timestamp":"' + TS + '"}]', 3),
    ],
    ids=["self-key", "5000-digit-int", "5000-deep", "lone-surrogate"],
)
async def test_a_hostile_frame_is_answered_without_a_traceback(
    server: OcppServer, frame: str, answer_type: int, caplog: pytest.LogCaptureFixture
) -> None:
    async with connect(url(server), subprotocols=["ocpp1.6"]) as ws:
        answer = await exchange(ws, frame)
        after = await exchange(ws, '[2,"h9","Heartbeat",{}]')
    assert answer[:2] == [answer_type, "f1"], answer
    assert after[:2] == [3, "h9"]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]

"""Hostile clients against the whole daemon (issue 8, item 4), over real sockets on loopback.

Linux routes all of 127.0.0.0/8 on ``lo``, so an attacker's sockets are bound to 127.0.0.2 and up and look like
other hosts; the configured charger (a simulator) and the province's pull come from 127.0.0.1. A slow client sends
half a request line and then nothing. Over a cap a socket is answered 503 at once; under the caps it is held until
the handshake / header timeout drops it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import resource
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from edge_bridge.app import App
from edge_bridge.config import load_config
from edge_bridge.guard import FORBIDDEN, REFUSAL
from edge_bridge.provincial.pull_listener import start_pull_api
from edge_bridge.store.db import open_database
from simulators.charger import Sim16
from tests.acceptance.conftest import StartDaemon, StartSite, sim_clock
from tests.conftest import eventually

DC, STATION = "CP-DC-01", "370202000001"
OCPP_HALF_LINE = b"GET /ocpp/CP-DC-01 HTTP/1."
PULL_HALF_LINE = b"POST /evcs/v1/query_token HT"
ATTACK_TIMEOUT_S = 3.0  # handshake and header timeouts of the attack run (default 5 s; shorter keeps the test fast)
FD_HEADROOM = 12_000  # 4,000 attack sockets, each end in this process, plus the daemon's own


def ensure_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"needs {wanted} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# ------------------------------------------------------------------------------------------- slow clients


@dataclass
class Slow:
    """One attacking socket: what the server sent it before closing, and when it was closed."""

    address: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    opened_at: float
    answer: bytes = b""
    closed_after_s: float | None = None

    async def wait_closed_by_server(self) -> None:
        chunks = []
        with contextlib.suppress(ConnectionError):
            while chunk := await self.reader.read(4096):
                chunks.append(chunk)
        self.answer = b"".join(chunks)
        self.closed_after_s = asyncio.get_running_loop().time() - self.opened_at
        self.writer.close()

    @property
    def refused(self) -> bool:
        return self.answer == REFUSAL


async def slow_client(port: int, address: str, half_line: bytes, watch: asyncio.TaskGroup | None = None) -> Slow:
    """A socket from ``address`` that sends ``half_line``; with ``watch``, a task of it waits for the server's close
    from the start (so that ``closed_after_s`` is when it happened)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    writer.write(half_line)
    slow = Slow(address, reader, writer, asyncio.get_running_loop().time())
    if watch is not None:
        watch.create_task(slow.wait_closed_by_server())
    return slow


async def slow_clients(
    port: int, addresses: Sequence[str], half_line: bytes, watch: asyncio.TaskGroup | None = None
) -> list[Slow]:
    """One slow client per entry of ``addresses``, opened 100 at a time (the listen backlog is 100)."""
    opened: list[Slow] = []
    for start in range(0, len(addresses), 100):
        chunk = addresses[start : start + 100]
        opened += await asyncio.gather(*(slow_client(port, a, half_line, watch) for a in chunk))
    return opened


def attack_config(raw: dict[str, Any]) -> None:
    raw["ocpp"]["handshake_timeout_s"] = ATTACK_TIMEOUT_S
    raw["pull_api"]["idle_timeout_s"] = ATTACK_TIMEOUT_S
    raw["pull_api"]["max_connections"] = 2100  # the spread half of the attack fits: this run proves the timeout


async def test_2000_slow_clients_per_port_are_capped_and_dropped_while_a_charger_and_the_province_are_served(
    start_site: StartSite,
) -> None:
    ensure_fd_limit(FD_HEADROOM)
    site = await start_site(attack_config)
    ports = {"ocpp": (site.daemon.app.ocpp_port, OCPP_HALF_LINE), "pull": (site.daemon.app.pull_port, PULL_HALF_LINE)}
    one_address = ["127.0.0.2"] * 1000  # meets the per-address caps
    spread = [f"127.0.0.{10 + i % 50}" for i in range(1000)]  # 20 from each of 50 addresses: under every cap
    attack: dict[str, tuple[list[Slow], list[Slow]]] = {}
    async with asyncio.timeout(ATTACK_TIMEOUT_S + 15), asyncio.TaskGroup() as watch:
        for name, (port, line) in ports.items():
            assert port is not None
            attack[name] = (
                await slow_clients(port, one_address, line, watch),
                await slow_clients(port, spread, line, watch),
            )
        assert sum(len(capped + held) for capped, held in attack.values()) == 4000
        async with Sim16(site.daemon.url(DC), connectors=2, clock=sim_clock()) as sim:
            await sim.connect(boot=True)  # answered during the attack
            assert sim.boot_answer is not None and sim.boot_answer["status"] == "Accepted"
            assert await sim.heartbeat() is not None
        statuses = await site.pull("query_station_status", {"StationIDs": [STATION]})
        assert statuses["Total"] == 1
        assert not any(s.closed_after_s for _, held in attack.values() for s in held), "dropped before the timeout"
    for name, cap in (("ocpp", 100), ("pull", 32)):  # the defaults: max_handshakes / max_connections per address
        capped, held = attack[name]
        assert sum(s.refused for s in capped) == len(capped) - cap, name
        assert all(s.closed_after_s is not None and s.closed_after_s < 1.0 for s in capped if s.refused), name
        kept = [s for s in capped if not s.refused] + held
        assert all(s.answer == b"" for s in kept), name  # dropped without an answer ...
        dropped_after = [s.closed_after_s or 0 for s in kept]  # ... by the timeout (slack for a loaded machine)
        assert ATTACK_TIMEOUT_S - 0.5 <= min(dropped_after) <= max(dropped_after) <= ATTACK_TIMEOUT_S + 3, name


# ------------------------------------------------------------------------------------------- caps and idle


async def test_the_pull_api_caps_connections_per_address_and_in_total(start_daemon: StartDaemon) -> None:
    def caps(raw: dict[str, Any]) -> None:
        raw["pull_api"].update(max_connections_per_address=3, max_connections=5)

    daemon = await start_daemon(caps)
    port = daemon.app.pull_port
    assert port is not None
    first = await slow_clients(port, ["127.0.0.2"] * 4, PULL_HALF_LINE)
    second = await slow_clients(port, ["127.0.0.3"] * 3, PULL_HALF_LINE)
    third = await slow_client(port, "127.0.0.4", PULL_HALF_LINE)
    for slow in [first[-1], second[-1], third]:  # over 3 from one address; over 5 in all
        async with asyncio.timeout(5):
            await slow.wait_closed_by_server()
        assert slow.answer == REFUSAL
    first[0].writer.close()
    await eventually(lambda: connects(port, "127.0.0.4"), "a place freed by a close to be given again")
    for slow in first[:3] + second[:2]:
        slow.writer.close()


async def connects(port: int, address: str) -> bool:
    """A complete request from ``address`` gets an HTTP answer other than the refusal."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    return answer.startswith(b"HTTP/1.1 ") and answer != REFUSAL


async def test_an_idle_keep_alive_connection_to_the_pull_api_is_closed(start_daemon: StartDaemon) -> None:
    daemon = await start_daemon(lambda raw: raw["pull_api"].__setitem__("idle_timeout_s", 1.0))
    port = daemon.app.pull_port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /evcs/v1/query_token HTTP/1.1\r\nHost: x\r\n\r\n"  # keep-alive (HTTP/1.1): 405, then idle
    loop = asyncio.get_running_loop()
    for _ in range(2):  # the timer starts again after each answer
        writer.write(request)
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 405")
        await reader.readuntil(b"Method Not Allowed")
    answered = loop.time()
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # closed by the server
    assert loop.time() - answered >= 0.9
    writer.close()


async def test_an_address_outside_allow_from_is_answered_403_before_it_holds_a_place(
    start_site: StartSite,
) -> None:
    site = await start_site(lambda raw: raw["pull_api"].update(allow_from=["127.0.0.1/32"], max_connections=2))
    port = site.daemon.app.pull_port
    assert port is not None
    outsiders = await slow_clients(port, ["127.0.0.7"] * 5, PULL_HALF_LINE)
    for slow in outsiders:
        async with asyncio.timeout(5):
            await slow.wait_closed_by_server()
        assert slow.answer == FORBIDDEN
    assert (await site.pull("query_station_status", {"StationIDs": [STATION]}))["Total"] == 1


async def test_a_request_whose_body_never_comes_is_answered_408_at_the_deadline(
    write_config: Callable[..., Path],
) -> None:
    config = load_config(write_config())
    db = await open_database(config.storage.path)
    pull_api = await start_pull_api(config, db, request_deadline_s=0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", pull_api.port)
        writer.write(b"POST /evcs/v1/query_token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        async with asyncio.timeout(5):
            assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 408")
        writer.close()
    finally:
        await pull_api.close()
        await db.close()


async def test_malformed_requests_are_answered_400_and_logged_once_without_a_traceback(
    write_config: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp answers a bad request line itself, and used to log each at ERROR with its traceback: junk from the
    internet must not fill the journal."""
    caplog.set_level(logging.DEBUG)
    config = load_config(write_config())
    db = await open_database(config.storage.path)
    pull_api = await start_pull_api(config, db)
    junk = [b"GET /\x00 HTTP/1.1\r\n\r\n", b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01junk\r\n\r\n"] * 4
    try:
        for request in junk:
            reader, writer = await asyncio.open_connection("127.0.0.1", pull_api.port)
            writer.write(request)
            async with asyncio.timeout(5):
                assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.0 400")
            writer.close()
    finally:
        await pull_api.close()
        await db.close()
    events = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert events == ["pull_request_malformed", "pull_request_malformed_summary"]
    assert not any(r.exc_info for r in caplog.records) and "Traceback" not in caplog.text
    # aiohttp reports the bad URL as an error (4 of them: the first logged, 3 counted in the summary); a bad method
    # and junk bytes it reports at debug level, which is dropped
    (summary,) = (r for r in caplog.records if r.getMessage() == "pull_request_malformed_summary")
    assert (summary.__dict__["count"], summary.__dict__["reasons"]) == (3, "InvalidURLError=3")


async def test_the_ocpp_port_caps_handshakes_and_connections_per_address(start_daemon: StartDaemon) -> None:
    def caps(raw: dict[str, Any]) -> None:
        raw["ocpp"].update(max_handshakes_per_address=2, max_connections_per_address=2)

    daemon = await start_daemon(caps)
    port = daemon.app.ocpp_port
    assert port is not None
    pending = await slow_clients(port, ["127.0.0.2"] * 3, OCPP_HALF_LINE)
    async with asyncio.timeout(5):
        await pending[-1].wait_closed_by_server()
    assert pending[-1].answer == REFUSAL  # the third handshake from one address
    async with Sim16(daemon.url(DC), connectors=2, clock=sim_clock()) as sim:  # from 127.0.0.1
        await sim.connect(boot=True)
        async with connect(daemon.url("CP-AC-01"), subprotocols=["ocpp2.0.1"]):  # type: ignore[list-item]
            with pytest.raises(InvalidStatus) as refused:  # two established from 127.0.0.1: the third is refused
                await connect(daemon.url(DC), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    assert refused.value.response.status_code == 503
    for slow in pending[:2]:
        slow.writer.close()


# ------------------------------------------------------------------------------------------- brute force

PASSWORD = "the-Real-Pa55word"


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{DC}:{password}".encode()).decode()}


def bound_socket(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((address, 0))
    sock.connect(("127.0.0.1", port))
    return sock


async def attempt(url: str, port: int, password: str, address: str) -> InvalidStatus | None:
    """One login as CP-DC-01 from ``address``: the refusal, or None when admitted."""
    try:
        sock = bound_socket(address, port)
        async with connect(url, sock=sock, additional_headers=basic(password), subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
            return None
    except InvalidStatus as refused:
        return refused


@contextlib.asynccontextmanager
async def running(write_config: Callable[..., Path]) -> AsyncIterator[App]:
    """A daemon whose CP-DC-01 has a password, run here so that the test sees the log lines of its shutdown."""

    def mutate(raw: dict[str, Any]) -> None:
        raw["stations"][0]["chargers"][0]["password"] = PASSWORD

    app, stop = App(load_config(write_config(mutate)), drain_timeout_s=0.5), asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        await eventually(lambda: app.started.is_set() or task.done(), "the daemon to start")
        yield app
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task


async def test_password_guessing_is_locked_out_and_summarized_while_the_real_charger_gets_in(
    write_config: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_bridge.charger.server")
    async with running(write_config) as app:
        port = app.ocpp_port
        assert port is not None
        url = f"ws://127.0.0.1:{port}/ocpp/{DC}"
        answers = [await attempt(url, port, f"guess-{i}", "127.0.0.2") for i in range(30)]
        statuses = [a.response.status_code if a else 200 for a in answers]
        assert statuses[:6] == [401] * 6  # five free failures; the sixth locks for 1 s, doubling with each further
        assert statuses.count(429) >= 20 and set(statuses) == {401, 429}
        locked = next(a for a in answers if a and a.response.status_code == 429)
        assert int(locked.response.headers["Retry-After"]) >= 1
        assert (await attempt(url, port, PASSWORD, "127.0.0.2")) is not None  # locked: not even the right one
        async with Sim16(url, connectors=2, clock=sim_clock(), password=PASSWORD) as sim:  # from 127.0.0.1
            await sim.connect(boot=True)
            assert sim.boot_answer is not None and sim.boot_answer["status"] == "Accepted"
        events = [r.getMessage() for r in caplog.records if r.name == "edge_bridge.charger.server"]
        assert events.count("charger_refused") == 1  # the first of the window, not one line per attempt
        assert events.count("charger_login_locked") == 1
        assert "charger_refused_summary" not in events
    summary = next(r for r in caplog.records if r.getMessage() == "charger_refused_summary")  # logged at the close
    assert summary.__dict__["count"] == 30 and summary.__dict__["busiest"] == "127.0.0.2=30"
    assert "too many failed logins" in summary.__dict__["reasons"]
    assert PASSWORD not in caplog.text and "guess-1" not in caplog.text

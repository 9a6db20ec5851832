"""The status page's server (``edge_bridge/web``) in a whole in-process ``App`` on loopback ports: Basic auth, read
only, ``/healthz`` (the watchdog's components), the JSON document after a real session pushed to the mock province,
one store read per second shared by concurrent viewers, and served files that name no other host."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from edge_bridge.app import App
from edge_bridge.config import load_config
from edge_bridge.web import listener
from edge_bridge.web.server import STATIC, build_web_app, health
from edge_bridge.web.view import CachedView
from simulators.charger import Sim16, SimClock
from simulators.province import MockProvince
from tests.conftest import eventually

PASSWORD = "page-pw-5c2e9f"
DC = "CP-DC-01"
Started = Callable[..., Any]


@pytest.fixture
async def running(write_config: Callable[..., Path]) -> AsyncIterator[Started]:
    """running(mutate=None) -> a started App; all stopped at teardown."""
    apps: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(mutate: Callable[[dict[str, Any]], None] | None = None) -> App:
        app = App(load_config(write_config(mutate, name=f"web-{len(apps)}.toml")), drain_timeout_s=0.5)
        stop = asyncio.Event()
        apps.append((stop, asyncio.create_task(app.run(stop))))
        await asyncio.wait_for(app.started.wait(), 10)
        return app

    yield start
    for stop, task in reversed(apps):
        stop.set()
        await asyncio.wait_for(task, 10)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def _get(app: App, path: str, method: str = "GET", **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    url = f"http://127.0.0.1:{app.web_port}{path}"
    async with aiohttp.ClientSession() as http, http.request(method, url, **kwargs) as response:
        return response.status, dict(response.headers), await response.read()


async def test_basic_auth_guards_everything_but_healthz_and_never_logs_the_password(
    running: Started, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await running(lambda raw: raw["web"].update(user="admin", password=PASSWORD))
    for path in ("/", "/api/status", "/static/app.js", "/metrics"):
        status, headers, _ = await _get(app, path)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic "), path
    for user, password in (("admin", "wrong"), ("root", PASSWORD), ("admin", PASSWORD + "x"), ("", "")):
        assert (await _get(app, "/api/status", headers=_basic(user, password)))[0] == 401
    assert (await _get(app, "/api/status", headers={"Authorization": "Bearer " + PASSWORD}))[0] == 401
    status, _, body = await _get(app, "/api/status", headers=_basic("admin", PASSWORD))
    assert status == 200 and b'"chargers"' in body
    assert (await _get(app, "/healthz"))[0] == 200  # a monitor probes it without the password
    logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert PASSWORD not in logged
    (listening,) = [r for r in caplog.records if r.getMessage() == "web_listening"]
    assert listening.basic_auth is True  # said that auth is on, never with what


async def test_the_page_is_read_only(running: Started) -> None:
    app = await running()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = await _get(app, "/api/status", method=method, data=b"{}")
        assert status == 405 and set(headers["Allow"].split(",")) == {"GET", "HEAD"}, method
    status, _, body = await _get(app, "/", method="HEAD")
    assert status == 200 and body == b""


async def test_healthz_names_the_stopped_component(running: Started) -> None:
    app = await running()
    status, _, body = await _get(app, "/healthz")
    assert status == 200, body
    assert b'"healthy": true' in body and b'"uploader": "alive"' in body and b'"writer": "alive"' in body
    assert app.ocpp_server is not None
    await app.ocpp_server.close()  # as the watchdog test stops a component
    status, _, body = await _get(app, "/healthz")
    assert status == 503 and b'"stopped": ["ocpp_server"]' in body


async def test_healthz_turns_503_naming_the_uploader_when_its_task_stops(running: Started) -> None:
    """In the daemon a finished uploader task stops the daemon at once; this serves the page on the App's own
    components with the uploader's entry built the same way (``not task.done()``) on a task this test stops."""
    app = await running()
    upload = asyncio.create_task(asyncio.Event().wait())
    components = {**app.components, "uploader": lambda: not upload.done()}
    assert health(components)[0] == 200
    runner = web.AppRunner(build_web_app(app.config.web, await _view(app), components))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        upload.cancel()
        await asyncio.gather(upload, return_exceptions=True)
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as response:
            doc = await response.json()
            assert response.status == 503 and doc["stopped"] == ["uploader"] and doc["healthy"] is False
    finally:
        await runner.cleanup()


async def _view(app: App) -> CachedView:
    assert app.web_page is not None
    return app.web_page.view  # the App's own cached document


@pytest.fixture
def to_province(province: MockProvince) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        raw["province"].update(base_url=province.url, retry_initial_s=0.05, retry_max_s=0.5)

    return mutate


async def test_the_json_document_after_a_session_pushed_and_accepted(
    running: Started, to_province: Callable[[dict[str, Any]], None], province: MockProvince
) -> None:
    app = await running(to_province)
    async with Sim16(f"ws://127.0.0.1:{app.ocpp_port}/ocpp/{DC}", connectors=2, clock=_day_ago()) as sim:
        await sim.connect(boot=True)
        await sim.plug_in(1)
        await sim.start_charging(1)
        added = await sim.charge(1, power_kw=30, minutes=30, sample_every_s=60)
        live = await _document_when(app, lambda d: d["live"] and d["live"][0]["energy_kwh"] == _kwh(added))
        points = live["live"][0]["points"]
        assert len(points) >= 30 and points[-1][1] == _kwh(added) and points[-1][2] == "30.000"
        await sim.stop_charging(1)
        doc = await _document_when(app, lambda d: d["orders"] and d["orders"][0]["verdict"] == "accepted")
    (order,) = doc["orders"]
    assert order["start_charge_seq"] == province.accepted("notification_orderInfo")[0]["StartChargeSeq"]
    details = order["charge_details"]
    assert details and sum(Decimal(d["DetailPower"]) for d in details) == Decimal(order["total_power_kwh"])
    charger = next(c for c in doc["status"]["chargers"] if c["ocpp_id"] == DC)
    assert charger["connected"] and charger["ocpp_version"] == "1.6"
    (station,) = doc["daily"]["stations"]
    assert len(station["kwh"]) == 30 and sum(Decimal(k) for k in station["kwh"]) == Decimal(_kwh(added))
    assert doc["outbox"]["last_answer"]["outcome"] == "accepted" and doc["outbox"]["dead_count"] == 0


def _day_ago() -> SimClock:
    """Frozen simulated time a day back: the bridge replaces charger times in the future."""
    return SimClock((datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0), speed=0)


def _kwh(wh: Decimal) -> str:
    return format((wh / 1000).quantize(Decimal("0.001")), "f")


async def _document_when(app: App, holds: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{app.web_port}/api/status") as r:
            seen.update(await r.json())
        return bool(holds(seen))

    await eventually(check, "the document to show it", 15)
    return seen


async def test_concurrent_viewers_share_one_read_a_second(running: Started) -> None:
    app = await running()
    view = await _view(app)
    view.ttl_s = 60.0
    before = view.reads
    async with aiohttp.ClientSession() as http:

        async def one() -> bytes:
            async with http.get(f"http://127.0.0.1:{app.web_port}/api/status") as response:
                return await response.read()

        bodies = await asyncio.gather(*(one() for _ in range(20)))
    assert len(set(bodies)) == 1 and view.reads - before <= 1


async def test_the_served_files_need_no_network(running: Started) -> None:
    """No URL to another host: the page works on a gateway without internet (the SVG namespace is a name)."""
    app = await running()
    for path in ["/", *(f"/static/{name}" for name in STATIC)]:
        status, headers, body = await _get(app, path)
        assert status == 200 and headers["Content-Security-Policy"].startswith("default-src 'self'"), path
        urls = set(re.findall(rb"https?://[^\s\"'`)]+", body)) - {b"http://www.w3.org/2000/svg"}
        assert not urls, f"{path} names {urls}"
    _, _, page = await _get(app, "/static/app.js")
    zh_block, _, rest = page.partition(b"  zh: {")[2].partition(b"  en: {")
    en_block = rest.partition(b"};")[0]
    zh, en = (set(re.findall(rb'"?([a-z_][a-z_ ]*)"?: "', block)) for block in (zh_block, en_block))
    assert len(en) > 50 and zh == en, f"labels without a translation: {zh ^ en}"


async def test_silent_connections_from_one_address_cannot_take_the_page(running: Started) -> None:
    """The port's guard (``web/listener.py``): one address holds at most MAX_PENDING_PER_ADDRESS connections that
    have sent no request; the next gets 503, and the page is served again once they are gone."""
    app = await running()
    silent = [await asyncio.open_connection("127.0.0.1", app.web_port) for _ in range(listener.MAX_PENDING_PER_ADDRESS)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.web_port)
        refused = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert refused.startswith(b"HTTP/1.1 503") and b"too many connections" in refused
    finally:
        for _, silent_writer in silent:
            silent_writer.close()
    await asyncio.sleep(0.2)
    status, _, _ = await _get(app, "/healthz")
    assert status == 200

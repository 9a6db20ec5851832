"""``/metrics``: the Prometheus text parses with prometheus-client's own parser, and its figures move as a charging
scenario runs (an in-process App, a simulated 1.6 charger, the strict mock province, a real SQLite file); the
Grafana dashboard in docs/ queries only metrics the exposition has."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_bridge.app import App
from edge_bridge.config import Config, load_config
from edge_bridge.metrics import Metrics, exposition
from edge_bridge.provincial.client import Outcome, PushResult
from edge_bridge.store.db import Database
from edge_bridge.store.outbox import Outbox
from edge_bridge.store.reader import ReadOnlyStore
from edge_bridge.timeutil import utc_now
from simulators.charger import Sim16, SimClock
from simulators.province import MockProvince
from tests.conftest import REPO, eventually
from tests.reliability.inprocess_site import ORDER, one_session, running, ws_url

DASHBOARD = REPO / "docs" / "grafana" / "edge-bridge.json"
STATUS = "notification_stationStatus"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of the exposition, by (sample name, labels), parsed by prometheus-client's parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in found.items() if n == name and wanted <= have)


async def scrape(app: App) -> tuple[str, str]:
    """GET /metrics from the App's own web server ([web] listen): (text, content type)."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{app.web_port}/metrics") as reply:
        assert reply.status == 200, await reply.text()
        return await reply.text(), reply.headers["Content-Type"]


@pytest.fixture
def site_config(write_config: Callable[..., Path], province: MockProvince) -> Config:
    def to_province(raw: dict[str, Any]) -> None:
        raw["province"].update(base_url=province.url, retry_initial_s=0.05, retry_max_s=0.2)

    return load_config(write_config(to_province, name="site.toml"))


def charger(app: App) -> Sim16:
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    return Sim16(ws_url(app, "CP-DC-01"), connectors=2, clock=SimClock(start, speed=0))


async def test_metrics_move_as_a_session_runs(site_config: Config, province: MockProvince) -> None:
    async with running(site_config) as app:
        before, content_type = await scrape(app)
        assert content_type.startswith("text/plain") and "version=" in content_type
        start = samples(before)
        assert value(start, "edge_bridge_chargers_connected", ocpp_version="1.6") == 0
        assert value(start, "edge_bridge_component_up", component="uploader") == 1
        async with charger(app) as sim:
            await sim.connect(boot=True)
            connected = samples((await scrape(app))[0])
            assert value(connected, "edge_bridge_chargers_connected", ocpp_version="1.6") == 1
            await one_session(sim, site_config)
            await eventually(lambda: len(province.accepted(ORDER)) == 1, "the order accepted")
        await eventually(lambda: not app.ocpp_server or not app.ocpp_server.live, "the charger gone")
        end = samples((await scrape(app))[0])
    assert value(end, "edge_bridge_chargers_connected", ocpp_version="1.6") == 0
    for action in ("BootNotification", "StatusNotification", "StartTransaction", "MeterValues", "StopTransaction"):
        assert value(end, "edge_bridge_ocpp_messages_total", action=action, outcome="result") >= 1, action
    assert total(end, "edge_bridge_ocpp_messages_total", outcome="result") == value(
        end, "edge_bridge_ocpp_answer_seconds_count"
    )
    assert value(end, "edge_bridge_pushes_total", interface=ORDER, ret="0", outcome="accepted") == 1
    assert value(end, "edge_bridge_pushes_total", interface=STATUS, ret="0", outcome="accepted") >= 1
    assert value(end, "edge_bridge_last_accepted_push_timestamp_seconds", interface=ORDER) > 0
    assert value(end, "edge_bridge_token_refreshes_total") == province.tokens_issued >= 1
    assert value(end, "edge_bridge_commit_batch_units_count") > value(start, "edge_bridge_commit_batch_units_count")
    assert value(end, "edge_bridge_database_size_bytes", file="main") > 0
    assert ("edge_bridge_outbox_dead_letters", frozenset()) in end and value(
        end, "edge_bridge_outbox_dead_letters"
    ) == 0
    pending = ("edge_bridge_outbox_pending", frozenset({("interface", ORDER)}))
    assert pending in end and end[pending] == 0  # an interface pushed to stays exposed, at 0, once nothing is pending


def test_labels_stay_bounded_and_histograms_are_cumulative() -> None:
    metrics = Metrics()
    metrics.answered("Heartbeat", "result", 0.0004)
    metrics.answered("Heartbeat", "result", 0.003)
    metrics.answered("other", "NotSupported", 20.0)
    metrics.pushed(STATUS, PushResult(Outcome.PERMANENT, "Ret 4004", ret=4004))
    metrics.pushed(STATUS, PushResult(Outcome.PERMANENT, "unexpected Ret 77", ret=77))
    metrics.pushed(STATUS, PushResult(Outcome.TRANSIENT, "HTTP 503"))
    body, content_type = exposition(metrics.registry)
    found = samples(body.decode())
    assert content_type.startswith("text/plain")
    assert value(found, "edge_bridge_ocpp_messages_total", action="Heartbeat", outcome="result") == 2
    assert value(found, "edge_bridge_ocpp_answer_seconds_bucket", le="0.001") == 1
    assert value(found, "edge_bridge_ocpp_answer_seconds_bucket", le="0.005") == 2
    assert value(found, "edge_bridge_ocpp_answer_seconds_bucket", le="10.0") == 2
    assert value(found, "edge_bridge_ocpp_answer_seconds_bucket", le="+Inf") == 3
    assert value(found, "edge_bridge_ocpp_answer_seconds_sum") == pytest.approx(20.0034)
    assert value(found, "edge_bridge_pushes_total", interface=STATUS, ret="4004", outcome="permanent") == 1
    assert value(found, "edge_bridge_pushes_total", interface=STATUS, ret="other", outcome="permanent") == 1
    assert value(found, "edge_bridge_pushes_total", interface=STATUS, ret="none", outcome="transient") == 1
    assert value(found, "edge_bridge_dead_lettered_total", interface=STATUS) == 2


def test_each_app_counts_in_its_own_registry(config: Config) -> None:
    one, two = App(config), App(config)
    one.metrics.answered("Heartbeat", "result", 0.001)
    assert value(samples(exposition(one.metrics.registry)[0].decode()), "edge_bridge_ocpp_answer_seconds_count") == 1
    assert value(samples(exposition(two.metrics.registry)[0].decode()), "edge_bridge_ocpp_answer_seconds_count") == 0


async def store_metrics(db: Database) -> tuple[Metrics, ReadOnlyStore]:
    """A Metrics bound to a store with two pending pushes of one interface, the older 90 s old."""
    outbox, now = Outbox(db), utc_now()
    await db.write(lambda tx: outbox.enqueue(tx, STATUS, "A", "{}", now - timedelta(seconds=90)))
    await db.write(lambda tx: outbox.enqueue(tx, STATUS, "B", "{}", now))
    metrics, reader = Metrics(), ReadOnlyStore(db.path)
    metrics.sources.store, metrics.sources.database = reader, db.path
    return metrics, reader


async def test_outbox_figures_are_read_from_the_store_when_scraped(db: Database) -> None:
    metrics, reader = await store_metrics(db)
    try:
        found = samples((await metrics.scrape())[0].decode())
    finally:
        await reader.close()
    assert value(found, "edge_bridge_outbox_pending", interface=STATUS) == 2
    assert 90 <= value(found, "edge_bridge_outbox_oldest_pending_age_seconds", interface=STATUS) < 120
    assert value(found, "edge_bridge_database_size_bytes", file="main") == db.path.stat().st_size


async def test_an_unreadable_store_leaves_only_its_figures_out(tmp_path: Path) -> None:
    metrics, reader = Metrics(), ReadOnlyStore(tmp_path / "missing.db")
    metrics.sources.store = reader
    try:
        found = samples((await metrics.scrape())[0].decode())
    finally:
        await reader.close()
    assert not any(name.startswith("edge_bridge_outbox_") for name, _ in found)
    assert ("edge_bridge_ocpp_answer_seconds_count", frozenset()) in found


def dashboard_metric_names() -> set[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    assert exprs, "the dashboard queries nothing"
    return {name for expr in exprs for name in re.findall(r"\bedge_bridge_[a-z0-9_]+", expr)}


async def test_the_dashboard_queries_only_exposed_metrics(db: Database) -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["__inputs"][0]["name"] == "DS_PROMETHEUS" and board["schemaVersion"] >= 36
    metrics, reader = await store_metrics(db)
    metrics.sources.tokens_fetched = lambda: 1
    metrics.sources.components = {"uploader": lambda: True}
    metrics.answered("Heartbeat", "result", 0.002)
    metrics.batch_committed(3)
    metrics.pushed(STATUS, PushResult(Outcome.ACCEPTED, ret=0))
    metrics.pushed(ORDER, PushResult(Outcome.PERMANENT, "disputed", ret=0))
    try:
        exposed = {name for name, _ in samples((await metrics.scrape())[0].decode())}
    finally:
        await reader.close()
    queried = dashboard_metric_names()
    assert queried - exposed == set()
    families = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in exposed}
    plotted = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in queried}
    assert families - plotted == set(), "every metric is plotted"

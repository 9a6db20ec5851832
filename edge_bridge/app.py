"""Composition root: build every part from the Config, run them, and shut down in order.

open store → queue station info → start the pull API and the status page → start the OCPP server → start the
uploader and the charger timers → READY=1 → serve until stopped → STOPPING=1 → stop accepting requests (listeners
close, newest first: charger sockets get 1001, then the status page, then the pull API) → let in-flight pushes finish
(bounded) → close the client and the store.

``request_reload()`` (SIGHUP) makes the running daemon read its config file again (``reloading.py``), between
``RELOADING=1`` and ``READY=1``.

A full disk stops no task: chargers get InternalError, the uploader, the timers and the maintenance write again
later, and ``STATUS=`` (sd_notify, with every watchdog ping, or when it changes without a watchdog) says "disk full"
until a write succeeds again.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from edge_bridge import guard, systemd, timeutil
from edge_bridge.charger.server import OcppServer
from edge_bridge.config import Config, site_model
from edge_bridge.domain.site import Site
from edge_bridge.errors import StoreError, store_failure_level
from edge_bridge.metrics import Metrics
from edge_bridge.provincial.client import Outcome, ProvinceClient, PushResult
from edge_bridge.provincial.pull_listener import start_pull_api
from edge_bridge.provincial.uploader import RetryPolicy, Sender, Uploader, drain
from edge_bridge.reloading import Running
from edge_bridge.store import retention, tokens
from edge_bridge.store.db import Database, open_database
from edge_bridge.store.outbox import Outbox
from edge_bridge.timeutil import utc_now
from edge_bridge.usecases.bridge import ACCEPT_HOOKS, ChargerBridge
from edge_bridge.usecases.clock_watch import ClockWatch
from edge_bridge.usecases.station_info import enqueue_station_info
from edge_bridge.web.listener import WebServer, start_web

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 3.0
MAINTENANCE_INTERVAL_S = 3600.0
MAINTENANCE_RETRY_S = 300.0  # after a failed maintenance (a full disk, a locked store)
STATUS_CHECK_S = 1.0  # without a watchdog: how often the STATUS= line is checked for a change
STATUS_SERVING = "serving"
STATUS_DISK_FULL = "disk full: the database's filesystem has no space left; chargers are refused until it has"
STATUS_STOPPED = "not serving, stopped: "  # + the components that are not alive; no WATCHDOG=1 is sent then
WRITER_STUCK_S = 30.0  # a unit waiting this long past its due time: the writer (or the store under it) is stuck
TIMER_INTERVAL_S = 5.0
GC_YOUNG_THRESHOLD = 10_000
PUSH_OUTCOME_WITHIN_S = 0.005  # a push's outcome may wait this long for company in a commit (a drain: few fsyncs)


class Listener(Protocol):
    """Something that accepts requests until closed (the pull API, the OCPP server)."""

    async def close(self) -> None: ...


Pause = Callable[[asyncio.Event, float], Awaitable[None]]


async def _close_all(listeners: list[Listener]) -> None:
    while listeners:
        await listeners.pop().close()


def _tune_garbage_collection() -> None:
    """Leave what start-up built (modules, config, the ocpp and pydantic machinery: most of the heap) out of every
    later collection, and collect the young generation every GC_YOUNG_THRESHOLD new objects instead of 700: a
    message allocates hundreds of objects that die young, and under load the collections took about 7 % of the CPU
    (0.85 s in 10 s of 200 saturating chargers; 0.08 s with this). Cycles are still collected."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


class App:
    """One daemon. ``run(stop)`` serves until ``stop`` is set; ``started`` is set once everything listens."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], datetime] = utc_now,
        notify: Callable[[str], bool] = systemd.notify,
        drain_timeout_s: float = DRAIN_TIMEOUT_S,
        timer_interval_s: float = TIMER_INTERVAL_S,
        pause: Pause | None = None,
        config_path: Path | None = None,
        started_at: float | None = None,
    ) -> None:
        self.config = config
        self._config_path = config_path  # read again on a reload; None: reloads are refused
        self._reload_wanted = asyncio.Event()
        self._started_at = started_at  # the daemon's process start: no request within that second (ProvinceClient)
        self._pause = pause or timeutil.pause  # the maintenance's wait between passes (a test waits in simulated time)
        self._clock = clock
        self._notify = notify
        self._drain_timeout_s = drain_timeout_s
        self._timer_interval_s = timer_interval_s  # how often the bridge looks for silent chargers and zombies
        self.started = asyncio.Event()
        self.pull_port: int | None = None
        self.web_port: int | None = None
        self.web_page: WebServer | None = None
        self._uploader_now: Uploader | None = None  # the status page shows its last push
        self.ocpp_port: int | None = None
        self.ocpp_server: OcppServer | None = None
        self.components: dict[str, Callable[[], bool]] = {}  # name -> alive?, for the watchdog (and /healthz)
        self.metrics = Metrics(clock=clock)  # its own registry: Apps in one process (tests) count apart

    async def run(self, stop: asyncio.Event) -> None:
        db = await open_database(self.config.storage.path)
        client = self._client()
        listeners: list[Listener] = []  # closed, newest first, before the uploader drains
        try:
            outbox = Outbox(db)
            site = site_model(self.config)
            await enqueue_station_info(db, outbox, site, self._clock())
            guard.raise_fd_limit()  # before the listeners size their connection caps from it
            pull_api = await start_pull_api(self.config, db, clock=self._clock)
            listeners.append(pull_api)
            self.pull_port, self.components["pull_api"] = pull_api.port, pull_api.serving
            page = await start_web(
                self.config, db.path, self.components, self._clock, self._last_push, self.metrics.scrape
            )
            listeners.append(page)  # closed after the OCPP server; not a component: it only observes
            self.web_port, self.web_page = page.port, page
            bridge = self._charger_bridge(db, outbox, site)
            await bridge.reset_connections()
            await bridge.configure(site, self.config.ocpp.offline_after_s, self.config.stop_reasons)  # tariff history
            listeners.append(bridge)  # closed after the OCPP server: what its handlers submitted gets committed
            ocpp = OcppServer(self.config, bridge, clock=self._clock, answered=self.metrics.answered)
            await ocpp.start()
            listeners.append(ocpp)
            self.ocpp_port, self.ocpp_server, self.components["ocpp_server"] = ocpp.port, ocpp, ocpp.serving
            self._measure(db, client, ocpp, bridge)
            running = Running(db, outbox, bridge, ocpp, pull_api, page, client, self._clock)
            await self._serve(running, self.metrics.counting(client.push), stop, listeners)
        finally:
            await _close_all(listeners)
            await client.close()
            await self.metrics.close()
            await db.close()
            log.info("stopped")

    def _last_push(self) -> tuple[datetime, PushResult] | None:
        return self._uploader_now.last if self._uploader_now is not None else None

    def _measure(self, db: Database, client: ProvinceClient, ocpp: OcppServer, bridge: ChargerBridge) -> None:
        """Bind what ``/metrics`` reads when scraped (the hot-path hooks are passed where the parts are built)."""
        sources = self.metrics.sources
        sources.database, sources.components = db.path, self.components
        sources.connected = lambda: [live.version for live in ocpp.live.values()]
        sources.tokens_fetched = lambda: client.tokens_fetched
        bridge.writer.on_batch = self.metrics.batch_committed

    def request_reload(self) -> None:
        """Read the config file again once the daemon serves (SIGHUP)."""
        self._reload_wanted.set()

    async def _serve(self, running: Running, send: Sender, stop: asyncio.Event, listeners: list[Listener]) -> None:
        db, outbox, bridge = running.db, running.outbox, running.bridge
        uploader = self._uploader_now = self._uploader(db, outbox, send, bridge)
        async with asyncio.TaskGroup() as group:
            upload = group.create_task(uploader.run())
            self.components["uploader"] = lambda: not upload.done()
            self.components["writer"] = lambda: bridge.writer.stuck_for() < WRITER_STUCK_S
            group.create_task(self._watchdog(db, stop, functools.partial(self._serving, outbox, uploader)))
            group.create_task(self._maintenance(db, outbox, stop))
            group.create_task(bridge.run_timers(stop, self._timer_interval_s))
            group.create_task(ClockWatch(self._clock).run(stop, self._timer_interval_s))  # logs clock_jumped
            group.create_task(self._reloads(running, stop))
            _tune_garbage_collection()
            self._notify("READY=1")
            self.started.set()
            ports = {"pull_port": self.pull_port, "ocpp_port": self.ocpp_port, "web_port": self.web_port}
            log.info("started", extra={**ports, "stations": len(self.config.stations)})
            stopped = group.create_task(stop.wait())
            await asyncio.wait({stopped, upload}, return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            self._reload_wanted.set()  # wakes the reload task to see the stop
            self._notify("STOPPING=1")
            await _close_all(listeners)
            await drain(uploader, upload, self._drain_timeout_s)
            await bridge.close()  # the outcomes of the last pushes share the writer: committed before the store closes

    async def _reloads(self, running: Running, stop: asyncio.Event) -> None:
        """One reload at a time, each between RELOADING=1 and READY=1 (sd_notify); a SIGHUP during one: one more."""
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            if stop.is_set():
                return
            self._notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
            if self._config_path is None:
                log.error("reload_refused", extra={"problems": "this daemon was not started from a config file"})
            else:
                self.config = await running.reload(self.config, self._config_path)
            self._notify("READY=1")

    def _client(self) -> ProvinceClient:
        p = self.config.province
        return ProvinceClient(
            base_url=p.base_url,
            operator_id=self.config.operator.id,
            secrets=p.secrets(),
            tz=self.config.tz,
            timeout_s=p.request_timeout_s,
            sig_lowercase=p.sig_lowercase,
            ca_file=p.ca_file,
            clock=self._clock,
            trace_wire=p.trace_wire,
            started_at=self._started_at,
        )

    def _charger_bridge(self, db: Database, outbox: Outbox, site: Site) -> ChargerBridge:
        return ChargerBridge(
            db,
            outbox,
            site,
            clock=self._clock,
            offline_after_s=self.config.ocpp.offline_after_s,
            tz=self.config.tz,
            stop_overrides=self.config.stop_reasons,
        )

    def _uploader(self, db: Database, outbox: Outbox, send: Sender, bridge: ChargerBridge) -> Uploader:
        """Its outcomes share the chargers' group commits (one writer for everything)."""
        policy = RetryPolicy(self.config.province.retry_initial_s, self.config.province.retry_max_s)
        write = functools.partial(bridge.writer.submit, within_s=PUSH_OUTCOME_WITHIN_S)
        return Uploader(db, outbox, send, policy=policy, on_accepted=ACCEPT_HOOKS, write=write, clock=self._clock)

    async def _watchdog(self, db: Database, stop: asyncio.Event, serving: Callable[[], Awaitable[str]]) -> None:
        """``WATCHDOG=1`` with the ``STATUS=`` line (and its figures), every half watchdog interval; without a
        watchdog, ``STATUS=`` alone when the state changes (nothing while the daemon serves normally)."""
        interval = systemd.watchdog_interval_s()
        said = STATUS_SERVING
        while not stop.is_set():
            status = self._status(db) or (await serving() if interval is not None else STATUS_SERVING)
            alive = not status.startswith(STATUS_STOPPED)
            if interval is not None and alive:
                self._notify(f"WATCHDOG=1\nSTATUS={status}")
            elif _kind(status) != _kind(said):  # without pings: a change of state, not of the counts
                self._notify(f"STATUS={status}")
            if not alive and status != said:  # systemd restarts the daemon when the pings stay away
                log.error("component_stopped", extra={"status": status})
            said = status
            await timeutil.pause(stop, interval or STATUS_CHECK_S)

    def _status(self, db: Database) -> str | None:
        """The STATUS= line when something is wrong: the components not alive, or a full disk; else None."""
        stopped = [name for name, alive in self.components.items() if not alive()]
        if stopped:
            return STATUS_STOPPED + ", ".join(stopped)
        return STATUS_DISK_FULL if db.full else None

    async def _serving(self, outbox: Outbox, uploader: Uploader) -> str:
        """``serving: 12 chargers connected, 0 pushes queued, last push 06:02:11 UTC accepted``."""
        chargers = len(self.ocpp_server.live) if self.ocpp_server is not None else 0
        queued = await outbox.pending_count()
        parts = [f"{chargers} chargers connected", f"{queued} pushes queued", _last_push(uploader.last)]
        return f"{STATUS_SERVING}: " + ", ".join(parts)

    async def _maintenance(self, db: Database, outbox: Outbox, stop: asyncio.Event) -> None:
        """Hourly: forget what the retention settles (``[retention]``) and expired tokens. A store failure is
        logged and tried again sooner; the daemon serves on."""
        while not stop.is_set():
            interval = MAINTENANCE_INTERVAL_S
            try:
                await self._maintain(db, outbox, self._clock())
            except StoreError as exc:  # a full disk is logged once, by the store
                level = store_failure_level(exc, logging.ERROR)
                log.log(level, "maintenance_failed", extra={"error": str(exc), "retry_s": MAINTENANCE_RETRY_S})
                interval = MAINTENANCE_RETRY_S
            await self._pause(stop, interval)

    async def _maintain(self, db: Database, outbox: Outbox, now: datetime) -> None:
        keep = self.config.retention
        sent = await outbox.purge_sent(now - timedelta(days=keep.outbox_days))
        expired = await db.write(lambda tx: tokens.purge_expired(tx, now))
        samples_before, sessions_before = (
            now - timedelta(days=keep.meter_samples_days),
            now - timedelta(days=keep.sessions_days),
        )
        old = await retention.purge_all(db, samples_before, sessions_before)
        counts = {"outbox": sent, "tokens": expired, "samples": old.samples, "status_reports": old.status_reports}
        if any(counts.values()) or old.sessions:
            log.info("maintenance_purged", extra={**counts, "sessions": old.sessions})


def _kind(status: str) -> str:
    """``serving``, ``disk full`` or ``not serving, stopped``: the STATUS= line without its figures."""
    return status.partition(":")[0]


def _last_push(last: tuple[datetime, PushResult] | None) -> str:
    if last is None:
        return "no push yet"
    at, result = last
    how = "accepted" if result.outcome is Outcome.ACCEPTED else f"failed: {result.reason}"
    return f"last push {at.astimezone(UTC):%H:%M:%S} UTC {how}"

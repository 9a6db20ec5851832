"""``ChargerBridge``: what the charger side (``charger/``) calls. Every message's events go through the group-commit
``BatchWriter``: a handler's ``apply`` returns only once the transaction holding its effect committed, so the
CALLRESULT never leaves before its record is durable (ocpp-bridge §2). The timers (``run_timers``) sweep for silent
chargers and zombie sessions every few seconds.

Writes outside a charger's message survive a failing store (a full disk) and are made later: a disconnect that could
not be recorded is kept in memory and recorded by the next sweep (unless the charger came back first); a sweep that
failed leaves its last-seen times unpersisted for the next one. A full disk is logged once, by the store; these
paths log other store failures as one line each, without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge_bridge.domain import sessions
from edge_bridge.domain.events import Event
from edge_bridge.domain.pushes import ORDER_INFO, STATION_INFO
from edge_bridge.domain.site import Site
from edge_bridge.errors import StoreError, store_failure_level
from edge_bridge.store import chargers
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox, OutboxRow
from edge_bridge.timeutil import pause, utc_now
from edge_bridge.usecases import charger_events, liveness, station_info, tariffs
from edge_bridge.usecases.charger_events import Applied
from edge_bridge.usecases.charger_state import ChargerStates
from edge_bridge.usecases.context import DEFAULT_OFFLINE_AFTER_S, DEFAULT_TZ, Context
from edge_bridge.usecases.orders import order_accepted
from edge_bridge.usecases.writer import DEFAULT_MAX_BATCH, BatchWriter

log = logging.getLogger(__name__)

AcceptHook = Callable[[Tx, OutboxRow, Mapping[str, Any] | None], None]
ACCEPT_HOOKS: Mapping[str, AcceptHook] = {STATION_INFO: station_info.station_info_accepted, ORDER_INFO: order_accepted}


class ChargerBridge:
    """Applies what chargers report, one savepoint per OCPP message in group-committed transactions."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        site: Site,
        *,
        clock: Callable[[], datetime] = utc_now,
        zombie_grace_s: float = sessions.DEFAULT_ZOMBIE_GRACE_S,
        offline_after_s: float = DEFAULT_OFFLINE_AFTER_S,
        tz: ZoneInfo = DEFAULT_TZ,
        stop_overrides: Mapping[str, int] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self._db = db
        self._ctx = Context(site, outbox, tz, dict(stop_overrides or {}), offline_after_s, zombie_grace_s)
        self._clock = clock
        self._seen = liveness.Seen()
        self._gone: dict[str, datetime | None] = {}  # disconnects not yet recorded → the charger's last sign of life
        self.writer = BatchWriter(db, max_batch=max_batch, batch_end=self._batch_end)

    @property
    def state(self) -> ChargerStates:
        """The connected chargers' state (read it only inside a ``Database`` unit)."""
        return self._ctx.state

    def _batch_end(self, tx: Tx) -> None:
        station_info.queue_changed(self._ctx.changed_stations, tx, self._ctx.outbox, self._ctx.site, self._clock())

    async def apply(self, events: Sequence[Event]) -> Applied:
        """Apply the events of one OCPP message; committed when this returns. Raises StoreError when the store
        fails (answer InternalError); never for odd but valid input."""
        now = self._clock()
        for event in events:
            self.touch(event.charger, event.received_at)
        return await self.writer.submit(lambda tx: charger_events.apply(self._ctx, tx, events, now))

    async def connected(self, charger: str, ocpp_version: str) -> list[tuple[int, int]]:
        """A websocket of ``charger`` opened, speaking ``ocpp_version``. Returns the connectors (evse, connector)
        whose current status to ask the charger for (ocpp-bridge §1, "Asking for the truth")."""
        now = self._clock()
        self.touch(charger, now)
        self._gone.pop(charger, None)  # recorded as connected now: an older disconnect is moot
        targets = await self.writer.submit(lambda tx: liveness.connected(self._ctx, tx, charger, ocpp_version, now))
        log.debug("charger_connected", extra={"charger": charger, "ocpp_version": ocpp_version})
        return targets

    async def disconnected(self, charger: str) -> None:
        """The websocket of ``charger`` closed. Never raises: when the store fails, the next sweep records it."""
        seen = self._seen.get(charger)
        try:
            await self.writer.submit(lambda tx: liveness.disconnected(self._ctx, tx, charger, seen))
        except StoreError as exc:
            self._gone[charger] = seen
            _store_failed("disconnect_not_stored", exc, charger=charger)
            return
        log.debug("charger_disconnected", extra={"charger": charger})

    def touch(self, charger: str, now: datetime) -> None:
        """A frame (or pong) from ``charger`` at ``now``: in memory only, persisted by ``sweep``."""
        self._seen.touch(charger, now)

    async def configure(self, site: Site, offline_after_s: float, stop_overrides: Mapping[str, int]) -> None:
        """Take ``site`` (at start-up: the one given; on a reload: the new one): record the tariffs that changed
        (a new version from now) and price orders by the histories. One writer unit: the messages before it see
        the old configuration, those after it the new one."""
        now = self._clock()

        def configure(tx: Tx) -> None:
            self._ctx.reconfigure(site, tariffs.settle(tx, site, now), offline_after_s, stop_overrides)

        await self.writer.submit(configure)

    @property
    def settings(self) -> tuple[float, Mapping[str, int]]:
        """(offline_after_s, stop_overrides) in force."""
        return self._ctx.offline_after_s, self._ctx.stop_overrides

    async def reset_connections(self) -> None:
        """At start-up, before chargers connect: no websocket is open, whatever the store says."""
        await self._db.write(chargers.reset_connected)

    async def sweep(self, now: datetime) -> None:
        """Persist last-seen times, mark silent chargers offline, close zombie sessions whose grace elapsed."""
        pending, gone = self._seen.unpersisted(), dict(self._gone)
        await self.writer.submit(lambda tx: self._sweep(tx, pending, gone, now))
        self._seen.persisted(pending)
        for charger, seen in gone.items():
            if self._gone.get(charger, ...) == seen:  # not reconnected (nor gone again) meanwhile
                del self._gone[charger]

    def _sweep(self, tx: Tx, pending: dict[str, datetime], gone: dict[str, datetime | None], now: datetime) -> None:
        for charger, seen in gone.items():
            liveness.disconnected(self._ctx, tx, charger, seen)
        liveness.sweep(self._ctx, tx, pending, now)

    async def run_timers(self, stop: asyncio.Event, interval_s: float = 5.0) -> None:
        """``sweep`` every ``interval_s`` until ``stop`` is set. A failing store is logged and retried."""
        while not stop.is_set():
            try:
                await self.sweep(self._clock())
            except StoreError as exc:
                _store_failed("sweep_failed", exc)
            await pause(stop, interval_s)

    async def close(self) -> None:
        """Wait for every submitted message to be committed or failed."""
        await self.writer.close()


def _store_failed(event: str, exc: StoreError, **fields: str) -> None:
    """A write the next sweep makes again: a full disk is the store's to log (once); another failure is one line."""
    log.log(store_failure_level(exc, logging.ERROR), event, extra={**fields, "error": str(exc)})

"""The use-case layer: decide with the pure domain, persist with the store, in one transaction.

Station info at start-up and on a BootNotification that changes it (D7), and what happens when the province accepts
one; ``ChargerBridge``: what chargers report (ocpp-bridge §2-§5), with its pushes (§5-§8) decided by the
``reporter.Reporter`` in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge_bridge.domain import sessions, status
from edge_bridge.domain.events import (
    ChargerBooted,
    ConnectorStatusReported,
    Event,
    FaultReported,
    MeterSampled,
    Reading,
    SessionEvent,
)
from edge_bridge.domain.places import Where
from edge_bridge.domain.pushes import ORDER_INFO, STATION_INFO, Pushes
from edge_bridge.domain.site import Site
from edge_bridge.domain.stations import BootInfo, station_info
from edge_bridge.errors import StoreError
from edge_bridge.provincial import codec
from edge_bridge.reporter import DEFAULT_TZ, Reporter, order_accepted
from edge_bridge.store import reports, snapshots, state
from edge_bridge.store.db import Database, Tx
from edge_bridge.store.outbox import Outbox, OutboxRow
from edge_bridge.timeutil import utc_now

log = logging.getLogger(__name__)

DEFAULT_OFFLINE_AFTER_S = 120.0  # [ocpp].offline_after_s


def station_info_payload(site: Site, station_id: str, boot: Mapping[str, BootInfo] | None = None) -> str:
    """The notification_stationInfo Data of one station (D7), as the JSON text the outbox keeps."""
    station = site.station(station_id)
    if station is None:
        raise KeyError(station_id)
    return codec.dumps({"StationInfo": station_info(station, site.operator, boot)}).decode("utf-8")


async def enqueue_station_info(
    db: Database, outbox: Outbox, site: Site, now: datetime, boot: Mapping[str, BootInfo] | None = None
) -> list[str]:
    """Queue notification_stationInfo for each station whose info differs from what the province last accepted
    and from what is already queued. Returns the station ids queued."""
    queued = []
    async with db.transaction() as tx:
        for station in site.stations:
            if await queue_station_info(tx, outbox, site, station.station_id, now, boot):
                queued.append(station.station_id)
    log.info("station_info_checked", extra={"queued": queued, "stations": len(site.stations)})
    return queued


async def queue_station_info(
    tx: Tx, outbox: Outbox, site: Site, station_id: str, now: datetime, boot: Mapping[str, BootInfo] | None
) -> bool:
    """Queue notification_stationInfo of one station in ``tx`` unless the province has it or it is queued."""
    payload = station_info_payload(site, station_id, boot)
    if await _already_known(tx, outbox, station_id, payload):
        return False
    await outbox.enqueue(tx, STATION_INFO, station_id, payload, now)
    return True


async def stored_boot_info(db: Database) -> dict[str, BootInfo]:
    """The boot info already stored (start-up passes it, so a restart does not re-push unchanged info)."""
    async with db.read() as tx:
        return await reports.boot_infos(tx)


async def _already_known(tx: Tx, outbox: Outbox, station_id: str, payload: str) -> bool:
    """The province will hold ``payload`` without a new push: the newest queued push carries it, or, with none
    queued, it is what the province last accepted (a queued push would overwrite that, so it decides first)."""
    queued = await outbox.latest_pending_payload(tx, STATION_INFO, station_id)
    if queued is not None:
        return queued == payload
    return await snapshots.accepted_station_info(tx, station_id) == payload


async def station_info_accepted(tx: Tx, row: OutboxRow, _answer: Mapping[str, Any] | None) -> None:
    """Accept hook: remember what the province now holds for this station."""
    await snapshots.set_accepted_station_info(tx, row.key, row.payload, row.created_at)


ACCEPT_HOOKS = {STATION_INFO: station_info_accepted, ORDER_INFO: order_accepted}


# ------------------------------------------------------------------------------------------------ chargers


@dataclass(frozen=True)
class Applied:
    """What the handler answers with: the transactionId of a 1.6 StartTransaction."""

    transaction_id: int | None = None


class ChargerBridge:
    """Applies what chargers report (ocpp-bridge §2-§5): one store transaction per OCPP message, committed before
    the handler answers. Decisions are the pure domain's (``domain.status``, ``domain.sessions``); each returns
    its pushes, written to the outbox in the same transaction (``_push``). What the stored changes mean for the
    province beyond that (alarms, orders of finished sessions, §7-§8) the ``Reporter`` decides, in the same
    transaction; a BootNotification that changes its station's info queues notification_stationInfo (D7).

    Liveness: ``touch`` records every frame in memory; ``sweep`` (every ``interval_s`` from ``run_timers``)
    persists it, marks chargers silent for ``offline_after_s`` offline (their connectors report 0, alarm 27) and
    closes zombie sessions whose grace elapsed. Any event of an offline charger brings it back at once.
    """

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
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._site = site
        self._reporter = Reporter(outbox, site, tz=tz, stop_overrides=stop_overrides)
        self._clock = clock
        self._grace_s = zombie_grace_s
        self._offline_after_s = offline_after_s
        self._seen: dict[str, datetime] = {}
        self._persisted: dict[str, datetime] = {}

    # -------------------------------------------------------------------------------------------- handler API

    async def apply(self, events: Sequence[Event]) -> Applied:
        """Apply the events of one OCPP message in one transaction; committed when this returns.
        Raises StoreError when the store fails (answer InternalError); never for odd but valid input."""
        now = self._clock()
        transaction_id = None
        async with self._db.transaction() as tx:
            for event in events:
                transaction_id = await self._apply_one(tx, event, now) or transaction_id
        return Applied(transaction_id)

    async def connected(self, charger: str, ocpp_version: str) -> None:
        """A websocket of ``charger`` opened, speaking ``ocpp_version`` (``1.6``/``ocpp1.6``, ``2.0.1``/...)."""
        now = self._clock()
        self.touch(charger, now)
        async with self._db.transaction() as tx:
            row = await state.ensure_charger(tx, charger)
            await state.set_connected(tx, charger, True, status.ocpp_version(ocpp_version))
            await state.seen(tx, charger, now)
            await self._bring_online(tx, row, now, force=row.ocpp_version != status.ocpp_version(ocpp_version))
        log.debug("charger_connected", extra={"charger": charger, "ocpp_version": ocpp_version})

    async def disconnected(self, charger: str) -> None:
        """The websocket of ``charger`` closed (it goes offline only after ``offline_after_s`` of silence)."""
        async with self._db.transaction() as tx:
            await state.ensure_charger(tx, charger)
            await state.set_connected(tx, charger, False)
            if charger in self._seen:
                await state.seen(tx, charger, self._seen[charger])
        log.debug("charger_disconnected", extra={"charger": charger})

    def touch(self, charger: str, now: datetime) -> None:
        """A frame (or pong) from ``charger`` at ``now``: in memory only, persisted by ``sweep``."""
        last = self._seen.get(charger)
        if last is None or now > last:
            self._seen[charger] = now

    async def reset_connections(self) -> None:
        """At start-up, before chargers connect: no websocket is open, whatever the store says."""
        async with self._db.transaction() as tx:
            await state.reset_connected(tx)

    async def sweep(self, now: datetime) -> None:
        """Persist last-seen times, mark silent chargers offline, close zombie sessions whose grace elapsed."""
        pending = {c: at for c, at in self._seen.items() if self._persisted.get(c) != at}
        async with self._db.transaction() as tx:
            for charger, at in pending.items():
                await state.seen(tx, charger, at)
            for row in await state.all_chargers(tx):
                await self._check_offline(tx, row, now)
            for session in await state.open_sessions(tx):
                await self._check_zombie(tx, session, now)
        self._persisted.update(pending)

    async def run_timers(self, stop: asyncio.Event, interval_s: float = 5.0) -> None:
        """``sweep`` every ``interval_s`` until ``stop`` is set. A failing store is logged and retried."""
        while not stop.is_set():
            try:
                await self.sweep(self._clock())
            except StoreError:
                log.exception("sweep_failed")
            with suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await stop.wait()

    # -------------------------------------------------------------------------------------------- events

    async def _apply_one(self, tx: Tx, event: Event, now: datetime) -> int | None:
        self.touch(event.charger, event.received_at)
        charger = await state.ensure_charger(tx, event.charger)
        charger = await self._bring_online(tx, charger, now)
        if isinstance(event, ChargerBooted):
            await self._booted(tx, event, now)
        elif isinstance(event, ConnectorStatusReported):
            await self._status_reported(tx, charger, event, now)
        elif isinstance(event, MeterSampled):
            await self._sampled(tx, charger, event, now)
        elif isinstance(event, SessionEvent):
            return await self._session_event(tx, charger, event, now)
        elif isinstance(event, FaultReported):
            await self._reporter.fault(tx, event, now)
        # ChargerSeen: touch and bring_online are all it does
        return None

    async def _booted(self, tx: Tx, event: ChargerBooted, now: datetime) -> None:
        """Store what the charger says about itself; push its station's info when that changes it (D7)."""
        await state.set_boot(
            tx, event.charger, event.vendor, event.model, event.serial, event.firmware, event.received_at
        )
        place = self._reporter.places.charger(event.charger)
        if place is None:
            return
        boot = await reports.boot_infos(tx)
        station_id = place.station.station_id
        if await queue_station_info(tx, self._outbox, self._site, station_id, now, boot):
            log.info("station_info_queued", extra={"charger": event.charger, "station": station_id})

    async def _status_reported(
        self, tx: Tx, charger: state.ChargerRow, event: ConnectorStatusReported, now: datetime
    ) -> None:
        current = await self._connector(tx, (event.charger, event.evse, event.connector))
        updated = status.apply_report(current, event)
        await state.log_status(tx, event, applied=updated is not None)
        if updated is None:
            log.debug("status_older_ignored", extra={"charger": event.charger, "evse": event.evse})
            return
        await state.put_connector(tx, updated)
        only = None if status.is_charger_level(event.evse) else (event.evse, event.connector)
        await self._restatus(tx, charger, now, only)
        await self._reporter.status_alarms(tx, event, now)

    async def _sampled(self, tx: Tx, charger: state.ChargerRow, event: MeterSampled, now: datetime) -> None:
        where = (event.charger, event.evse, event.connector)
        owner = await self._owner(tx, event)
        if owner is not None:
            owner = sessions.sampled(owner, event.readings, event.received_at, event.flags)
            await state.update_session(tx, owner)
        session_id = None if owner is None else owner.id
        await state.insert_samples(tx, where, session_id, event.readings, event.received_at)
        if owner is not None:
            await self._reporter.session_written(tx, owner, now)
        known = [(c.evse, c.connector) for c in await state.connectors_of(tx, event.charger)]
        for evse, connector in status.live_targets(event.evse, event.connector, known):
            await self._live(tx, charger, (event.charger, evse, connector), event.readings, now)

    async def _owner(self, tx: Tx, event: MeterSampled) -> sessions.Session | None:
        if event.transaction_ref is not None:
            return await state.session_by_ref(tx, event.charger, status.V16, event.transaction_ref)
        here = await state.open_sessions_on(tx, event.charger, event.evse, event.connector)
        return sessions.owner_of_untagged(here, event)

    async def _session_event(self, tx: Tx, charger: state.ChargerRow, event: SessionEvent, now: datetime) -> int | None:
        version = sessions.session_version(event, charger.ocpp_version)
        if version == status.V201:
            outcome = await self._decide_201(tx, event)
        else:
            outcome = await self._decide_16(tx, event)
        if outcome is None:
            return None
        session_id = await self._write(tx, charger, outcome, now)
        if outcome.session is not None:
            where = (event.charger, outcome.session.evse, outcome.session.connector)
            await state.insert_samples(tx, where, session_id, outcome.readings, event.received_at)
            await self._live(tx, charger, where, outcome.readings, now)
            await self._reporter.session_written(tx, replace(outcome.session, id=session_id), now)
        is_start = version == status.V16 and event.kind == "started"
        return (outcome.reply_id or session_id) if is_start else None

    async def _decide_16(self, tx: Tx, event: SessionEvent) -> sessions.SessionOutcome | None:
        if event.kind == "started":
            same = await state.session_by_start_key(tx, sessions.start_key(event))
            return sessions.start_16(event, same_start=same, open_here=await self._open_here(tx, event))
        found = None
        if event.transaction_ref is not None:
            found = await state.session_by_ref(tx, event.charger, status.V16, event.transaction_ref)
        if event.kind == "ended":
            found = found or await state.session_by_stop_key(tx, event.charger, sessions.stop_key(event))
            return sessions.stop_16(event, found)
        if found is None:  # an "updated" for an unknown 1.6 id: nothing to attach it to
            return None
        return sessions.SessionOutcome(session=sessions.sampled(found, event.readings, event.received_at, event.flags))

    async def _decide_201(self, tx: Tx, event: SessionEvent) -> sessions.SessionOutcome | None:
        ref = event.transaction_ref
        if ref is None:
            log.warning("transaction_event_without_id", extra={"charger": event.charger})
            return None
        if event.seq_no is not None and not await state.record_tx_event(
            tx, event.charger, ref, event.seq_no, event.kind, event.received_at
        ):
            return None  # a repeated (transactionId, seqNo)
        found = await state.session_by_ref(tx, event.charger, status.V201, ref)
        here = [] if found is not None else await self._open_here(tx, event)
        return sessions.transaction_event(event, session=found, open_here=here)

    async def _open_here(self, tx: Tx, event: SessionEvent) -> list[sessions.Session]:
        evse, connector = sessions.where(event)
        return await state.open_sessions_on(tx, event.charger, evse, connector)

    async def _write(
        self, tx: Tx, charger: state.ChargerRow, outcome: sessions.SessionOutcome, now: datetime
    ) -> int | None:
        """Store a session decision; returns the id of ``outcome.session`` (inserted when new)."""
        for zombie in outcome.zombies:
            await state.update_session(tx, zombie)
            log.info("session_zombie_closed", extra={"charger": zombie.charger, "session": zombie.id})
            await self._reporter.session_written(tx, zombie, now)
        session_id = None
        if outcome.session is not None:
            session_id = await self._store_session(tx, outcome.session)
        touched = {(s.evse, s.connector) for s in (*outcome.zombies, *filter(None, [outcome.session]))}
        for evse, connector in sorted(touched):
            await self._restatus(tx, charger, now, (evse, connector))
        await self._push(tx, outcome.pushes, now)
        return session_id

    async def _store_session(self, tx: Tx, session: sessions.Session) -> int:
        if session.id is not None:
            await state.update_session(tx, session)
            return session.id
        session_id = await state.insert_session(tx, session)
        if session.transaction_ref is None:
            await state.set_transaction_ref(tx, session_id, str(session_id))
        return session_id

    # -------------------------------------------------------------------------------------------- connectors

    async def _connector(self, tx: Tx, where: Where) -> status.ConnectorState:
        found = await state.get_connector(tx, *where)
        return found if found is not None else status.ConnectorState(*where)

    async def _live(
        self, tx: Tx, charger: state.ChargerRow, where: Where, readings: Sequence[Reading], now: datetime
    ) -> None:
        if not readings:
            return
        current = await state.get_connector(tx, *where)
        base = current if current is not None else status.ConnectorState(*where)
        updated = status.apply_readings(base, tuple(readings))
        if updated != current:
            await state.put_connector(tx, updated)
        if current is None:
            await self._restatus(tx, charger, now, (where[1], where[2]))

    async def _restatus(
        self, tx: Tx, charger: state.ChargerRow, now: datetime, only: tuple[int, int] | None = None
    ) -> None:
        """Decide the provincial Status of the charger's connectors (or of ``only``) again; store changes."""
        rows = await state.connectors_of(tx, charger.ocpp_id)
        level = any(status.is_charger_level(c.evse) and status.is_charger_level_fault(c.ocpp_status) for c in rows)
        for row in rows:
            if only is not None and (row.evse, row.connector) != only:
                continue
            here = []  # only an Occupied connector needs its transaction's chargingState
            if row.ocpp_status == status.REFINED_BY_CHARGING_STATE:
                here = await state.open_sessions_on(tx, row.charger, row.evse, row.connector)
            outcome = status.restatus(
                row,
                version=charger.ocpp_version,
                charger_level_fault=level,
                offline=charger.offline,
                charging_state=sessions.charging_state_of(here),
                connector_id=self._reporter.connector_id((row.charger, row.evse, row.connector)),
            )
            if (change := outcome.change) is not None:
                await state.put_connector(tx, outcome.state)
                where = {"charger": change.charger, "evse": change.evse, "connector": change.connector}
                log.debug("status_changed", extra={**where, "before": change.before, "after": change.after})
            await self._push(tx, outcome.pushes, now)

    async def _bring_online(
        self, tx: Tx, row: state.ChargerRow, now: datetime, force: bool = False
    ) -> state.ChargerRow:
        """Any sign of life ends the offline state at once (its connectors get their own Status back)."""
        if not row.offline and not force:
            return row
        if row.offline:
            await state.set_offline(tx, row.ocpp_id, False)
            log.info("charger_online", extra={"charger": row.ocpp_id})
        fresh = await state.ensure_charger(tx, row.ocpp_id)
        await self._restatus(tx, fresh, now)
        if row.offline:
            await self._reporter.offline(tx, row.ocpp_id, False, now)
        return fresh

    async def _check_offline(self, tx: Tx, row: state.ChargerRow, now: datetime) -> None:
        offline = status.is_offline(row.last_seen, now, self._offline_after_s)
        if offline == row.offline:
            return
        await state.set_offline(tx, row.ocpp_id, offline)
        log.info("charger_offline" if offline else "charger_online", extra={"charger": row.ocpp_id})
        await self._restatus(tx, replace(row, offline=offline), now)
        await self._reporter.offline(tx, row.ocpp_id, offline, now)

    async def _check_zombie(self, tx: Tx, session: sessions.Session, now: datetime) -> None:
        latest = await state.latest_start(tx, session.charger, session.evse, session.connector)
        outcome = sessions.sweep_session(
            session,
            now=now,
            grace_s=self._grace_s,
            later_start=latest is not None and latest > session.started_at,
            connector=await state.get_connector(tx, session.charger, session.evse, session.connector),
        )
        if outcome is not None:
            charger = await state.ensure_charger(tx, session.charger)
            await self._write(tx, charger, outcome, now)

    # -------------------------------------------------------------------------------------------- pushes

    async def _push(self, tx: Tx, pushes: Pushes, now: datetime) -> None:
        """The seam for ocpp-bridge §8: every push a decision returns becomes an outbox row in this transaction."""
        await self._reporter.push(tx, pushes, now)

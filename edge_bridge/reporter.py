"""What the bridge tells the province about what chargers report (ocpp-bridge §5-§8): statuses, alarms, orders.

Part of the use-case layer, beside ``bridge.py``: ``ChargerBridge`` stores what a charger reported and then asks the
``Reporter`` what that means for the province, in the same store transaction. The ``Reporter`` reads the rows it
needs, asks the pure domain (``status.restatus`` for statuses, ``alarm_rules``, ``order_rules`` + ``orders``), and
writes state and outbox rows. Only configured chargers and connectors are pushed (``places``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge_bridge.domain import alarm_rules, order_rules
from edge_bridge.domain.alarm_rules import ActiveAlarm, AlarmChange, AlarmChanges
from edge_bridge.domain.events import ConnectorStatusReported, FaultReported
from edge_bridge.domain.order_rules import OrderStep
from edge_bridge.domain.orders import build_order
from edge_bridge.domain.places import ConnectorPlace, Places, Where
from edge_bridge.domain.pushes import Push, Pushes
from edge_bridge.domain.sessions import Session, add_flags
from edge_bridge.domain.site import Site
from edge_bridge.provincial import codec
from edge_bridge.store import state
from edge_bridge.store.db import Tx
from edge_bridge.store.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")  # [site].timezone


class Reporter:
    """Pushes for the charger side, written in the caller's transaction."""

    def __init__(
        self,
        outbox: Outbox,
        site: Site,
        *,
        tz: ZoneInfo = DEFAULT_TZ,
        stop_overrides: Mapping[str, int] | None = None,
    ) -> None:
        self._outbox = outbox
        self.places = Places(site)
        self._tz = tz
        self._seq_prefix = site.operator.seq_prefix or site.operator.operator_id
        self._stop_overrides = dict(stop_overrides or {})
        self._unknown_logged: set[Where] = set()

    async def push(self, tx: Tx, pushes: Pushes, now: datetime) -> list[int]:
        """Every push becomes an outbox row in this transaction; returns the row ids."""
        return [await self._enqueue(tx, push, now) for push in pushes]

    async def _enqueue(self, tx: Tx, push: Push, now: datetime) -> int:
        payload = codec.dumps(dict(push.data)).decode("utf-8")
        return await self._outbox.enqueue(tx, push.interface, push.key, payload, now)

    # -------------------------------------------------------------------------------------------- statuses

    def connector_id(self, where: Where) -> str | None:
        """The provincial ConnectorID of a configured connector; None (logged once per connector) otherwise."""
        found = self.places.connector_id(where)
        if found is None and self.places.is_unknown_connector(where) and where not in self._unknown_logged:
            self._unknown_logged.add(where)
            charger, evse, connector = where
            log.warning("connector_not_configured", extra={"charger": charger, "evse": evse, "connector": connector})
        return found

    # -------------------------------------------------------------------------------------------- alarms

    async def status_alarms(self, tx: Tx, report: ConnectorStatusReported, now: datetime) -> None:
        """An applied StatusNotification: its errorCode raises, NoError recovers (§7)."""
        await self._alarms(tx, report.charger, lambda active: alarm_rules.on_status(report, active), now)

    async def fault(self, tx: Tx, event: FaultReported, now: datetime) -> None:
        """A 2.0.1 problem variable raised or cleared (§7)."""
        await self._alarms(tx, event.charger, lambda active: alarm_rules.on_fault(event, active), now)

    async def offline(self, tx: Tx, charger: str, offline: bool, now: datetime) -> None:
        """The charger went silent (alarm 27 raised) or came back (recovered)."""
        await self._alarms(tx, charger, lambda active: alarm_rules.on_offline(charger, offline, active, now), now)

    async def _alarms(
        self, tx: Tx, charger: str, decide: Callable[[Sequence[ActiveAlarm]], AlarmChanges], now: datetime
    ) -> None:
        for change in decide(await state.active_alarms(tx, charger)):
            await self._alarm(tx, change, now)

    async def _alarm(self, tx: Tx, change: AlarmChange, now: datetime) -> None:
        a = change.alarm
        if change.raised:
            await state.raise_alarm(tx, a)
        else:
            await state.clear_alarm(tx, a.charger, a.key)
        fields = {"charger": a.charger, "alarm": a.key, "code": a.kind.code}
        log.info("alarm_raised" if change.raised else "alarm_recovered", extra=fields)
        site = self.places.alarm_site((a.charger, a.evse, a.connector))
        if site is not None:
            await self.push(tx, (alarm_rules.alarm_push(change, site, self._tz),), now)

    # -------------------------------------------------------------------------------------------- orders

    async def session_written(self, tx: Tx, session: Session, now: datetime) -> None:
        """A session was just stored: queue its order when it finished (D10), or flag what it cannot have."""
        if session.is_open or session.id is None:
            return
        stored = await state.get_session(tx, session.id)  # as stored: the caller's copy may lack its ref
        if stored is None:
            return
        record = await state.get_order(tx, session.id)
        place = self.places.session_connector((stored.charger, stored.evse, stored.connector))
        step = order_rules.order_step(stored, record.state, place is not None)
        if step is OrderStep.BUILD and place is not None:
            await self._queue_order(tx, session.id, stored, place, now)
        elif step is not OrderStep.NOTHING:
            await self._not_ordered(tx, session.id, stored, step)

    async def _queue_order(
        self, tx: Tx, session_id: int, session: Session, place: ConnectorPlace, now: datetime
    ) -> None:
        registers = await state.session_registers(tx, session_id)
        finished = order_rules.finished_session(session, place.connector_id, registers)
        order = build_order(finished, place.station.tariff, self._tz, self._seq_prefix, self._stop_overrides)
        (outbox_id,) = await self.push(tx, (order_rules.order_push(order),), now)
        await state.set_order(tx, session_id, order_rules.QUEUED, order.start_charge_seq, outbox_id)
        fields = {"charger": session.charger, "session": session_id, "start_charge_seq": order.start_charge_seq}
        if order.merged_details:
            log.warning("order_details_merged", extra={**fields, "merged": order.merged_details})
        log.info("order_queued", extra=fields)

    async def _not_ordered(self, tx: Tx, session_id: int, session: Session, step: OrderStep) -> None:
        """Not an order (unconfigured, unmeasured: decided for good) or news after one (LATE): flag and log."""
        flagged = replace(session, flags=add_flags(session.flags, order_rules.STEP_FLAGS[step]))
        if flagged != session:
            await state.update_session(tx, flagged)
        if step is not OrderStep.LATE:
            await state.set_order(tx, session_id, step.value)
        fields = {"charger": session.charger, "session": session_id, "evse": session.evse}
        log.warning(f"order_{step.value}", extra={**fields, "connector": session.connector})


# ------------------------------------------------------------------------------------------------ accept hooks


async def order_accepted(tx: Tx, row: OutboxRow, _answer: Mapping[str, Any] | None) -> None:
    """Accept hook of notification_orderInfo: the session's order is accepted. The uploader accepts an order only
    with ConfirmResult 0 (D10); anything else is dead-lettered with its reason and never reaches this hook."""
    if await state.accept_order(tx, row.id) == 0:
        log.warning("order_accepted_unknown", extra={"row": row.id})

"""What the use cases read and write about chargers, connectors and open sessions, with the connected chargers'
state kept in memory so that a message costs no re-reads.

The daemon is the only writer of its store, so the state of a charger can live in memory while its websocket is
open: loaded when it connects (``attach``), dropped when it disconnects (``detach``), and kept equal to what is
committed: every write goes to the store and to the copy, and a write undone by its savepoint or transaction is
undone in the copy too (``Tx.on_rollback``). A charger that is not attached (the timers' sweep of an offline one,
a test that applies events directly) is read from the store. Keeping the copy per connected charger, not global,
leaves room for several daemons sharing one store, each owning the chargers connected to it.

Used only inside ``Database`` units, which run one at a time on the event loop, so it needs no lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from edge_bridge.domain.events import ChargerBooted
from edge_bridge.domain.places import Where
from edge_bridge.domain.sessions import Session
from edge_bridge.domain.status import ConnectorState
from edge_bridge.errors import StoreError
from edge_bridge.store import chargers, sessions
from edge_bridge.store.chargers import ChargerRow
from edge_bridge.store.db import Tx

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class _Cached:
    row: ChargerRow
    connectors: dict[tuple[int, int], ConnectorState]
    open: dict[int, Session]  # the charger's open sessions by id
    links: int = 1  # open websockets


class ChargerStates:
    """The state of the attached chargers; every other one is read from the store."""

    def __init__(self) -> None:
        self._cached: dict[str, _Cached] = {}

    # -------------------------------------------------------------------------------------------- attach

    def attach(self, tx: Tx, ocpp_id: str) -> ChargerRow:
        """A websocket of ``ocpp_id`` opened: load its state (once per charger, however many sockets)."""
        found = self._cached.get(ocpp_id)
        if found is not None:
            found.links += 1
            tx.on_rollback(lambda: setattr(found, "links", found.links - 1))
            return found.row
        row = chargers.ensure_charger(tx, ocpp_id)
        here = {(c.evse, c.connector): c for c in chargers.connectors_of(tx, ocpp_id)}
        open_sessions = {s.id: s for s in sessions.open_sessions_of(tx, ocpp_id) if s.id is not None}
        self._cached[ocpp_id] = _Cached(row, here, open_sessions)
        tx.on_rollback(lambda: self._forget(ocpp_id))
        return row

    def detach(self, tx: Tx, ocpp_id: str) -> None:
        """A websocket of ``ocpp_id`` closed: its state is dropped once no socket of it is open."""
        found = self._cached.get(ocpp_id)
        if found is None:
            return
        found.links -= 1
        tx.on_rollback(lambda: setattr(found, "links", found.links + 1))
        if found.links <= 0:
            del self._cached[ocpp_id]
            tx.on_rollback(lambda: self._remember(ocpp_id, found))

    def _forget(self, ocpp_id: str) -> None:
        self._cached.pop(ocpp_id, None)

    def _remember(self, ocpp_id: str, cached: _Cached) -> None:
        self._cached[ocpp_id] = cached

    def is_attached(self, ocpp_id: str) -> bool:
        return ocpp_id in self._cached

    # -------------------------------------------------------------------------------------------- chargers

    def charger(self, tx: Tx, ocpp_id: str) -> ChargerRow:
        """The charger's row, created empty when it has none."""
        found = self._cached.get(ocpp_id)
        return found.row if found is not None else chargers.ensure_charger(tx, ocpp_id)

    def set_boot(self, tx: Tx, event: ChargerBooted) -> None:
        e = event
        chargers.set_boot(tx, e.charger, e.vendor, e.model, e.serial, e.firmware, e.received_at)
        self._change_row(
            tx,
            e.charger,
            lambda row: replace(
                row, vendor=e.vendor, model=e.model, serial=e.serial, firmware=e.firmware, booted_at=e.received_at
            ),
        )

    def set_connected(self, tx: Tx, ocpp_id: str, connected: bool, ocpp_version: str | None = None) -> None:
        chargers.set_connected(tx, ocpp_id, connected, ocpp_version)
        self._change_row(
            tx,
            ocpp_id,
            lambda row: replace(
                row, connected=connected, ocpp_version=row.ocpp_version if ocpp_version is None else ocpp_version
            ),
        )

    def set_offline(self, tx: Tx, ocpp_id: str, offline: bool) -> None:
        chargers.set_offline(tx, ocpp_id, offline)
        self._change_row(tx, ocpp_id, lambda row: replace(row, offline=offline))

    def seen(self, tx: Tx, ocpp_id: str, at: datetime) -> None:
        """Move ``last_seen`` forward to ``at``."""
        chargers.seen(tx, ocpp_id, at)
        self._change_row(tx, ocpp_id, lambda row: replace(row, last_seen=max(at, row.last_seen or at)))

    def _change_row(self, tx: Tx, ocpp_id: str, change: Callable[[ChargerRow], ChargerRow]) -> None:
        found = self._cached.get(ocpp_id)
        if found is None:
            return
        before = found.row
        found.row = change(before)
        tx.on_rollback(lambda: setattr(found, "row", before))

    # -------------------------------------------------------------------------------------------- connectors

    def connectors_of(self, tx: Tx, ocpp_id: str) -> list[ConnectorState]:
        """The charger's stored connectors, by (evse, connector)."""
        found = self._cached.get(ocpp_id)
        if found is None:
            return chargers.connectors_of(tx, ocpp_id)
        return [found.connectors[key] for key in sorted(found.connectors)]

    def connector(self, tx: Tx, where: Where) -> ConnectorState | None:
        found = self._cached.get(where[0])
        if found is None:
            return chargers.get_connector(tx, *where)
        return found.connectors.get((where[1], where[2]))

    def put_connector(self, tx: Tx, state: ConnectorState) -> None:
        chargers.put_connector(tx, state)
        found = self._cached.get(state.charger)
        if found is None:
            return
        key = (state.evse, state.connector)
        before = found.connectors.get(key)
        found.connectors[key] = state
        tx.on_rollback(lambda: _restore(found.connectors, key, before))

    # -------------------------------------------------------------------------------------------- sessions

    def open_sessions_on(self, tx: Tx, charger: str, evse: int, connector: int) -> list[Session]:
        """The open sessions of one connector, oldest first."""
        found = self._cached.get(charger)
        if found is None:
            return sessions.open_sessions_on(tx, charger, evse, connector)
        here = [s for s in found.open.values() if (s.evse, s.connector) == (evse, connector)]
        return sorted(here, key=lambda s: (s.started_at, s.id or 0))

    def session_by_ref(self, tx: Tx, charger: str, version: str, ref: str) -> Session | None:
        """The (not orphan) session of ``charger`` with this transaction reference: an open one first."""
        found = self._cached.get(charger)
        if found is not None:
            for s in sorted(found.open.values(), key=lambda s: s.id or 0):
                if (s.version, s.transaction_ref, s.orphan) == (version, ref, False):
                    return s
        return sessions.session_by_ref(tx, charger, version, ref)

    def insert_session(self, tx: Tx, session: Session) -> Session:
        """Store a new session; returns it as stored (its id, and its id as reference when it had none)."""
        session_id = sessions.insert_session(tx, session)
        ref = session.transaction_ref
        if ref is None:
            ref = str(session_id)
            sessions.set_transaction_ref(tx, session_id, ref)
        stored = replace(session, id=session_id, transaction_ref=ref)
        self._keep(tx, stored)
        return stored

    def update_session(self, tx: Tx, session: Session) -> None:
        sessions.update_session(tx, session)
        self._keep(tx, session)

    def _keep(self, tx: Tx, session: Session) -> None:
        found = self._cached.get(session.charger)
        if found is None:
            return
        session_id = session.id
        if session_id is None:
            raise StoreError("a stored session without an id")
        before = found.open.get(session_id)
        if session.is_open:
            found.open[session_id] = session
        else:
            found.open.pop(session_id, None)
        tx.on_rollback(lambda: _restore(found.open, session_id, before))


def _restore(mapping: dict[K, V], key: K, before: V | None) -> None:
    if before is None:
        mapping.pop(key, None)
    else:
        mapping[key] = before

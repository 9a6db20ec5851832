"""Charging sessions (ocpp-bridge §3 Transactions, §4 Session energy): what each report does to them. Pure.

The bridge loads the session record(s) an event touches, asks one of ``start_16``, ``stop_16``,
``transaction_event`` or ``sampled`` what to write, and stores the answer (a ``SessionOutcome``). Rules:

- 1.6 start: the idempotency key is charger|connector|idTag|timestamp|meterStart (``start_key``); a start whose key
  is known is a repeat: the same transactionId is answered and nothing is written.
- 1.6 stop: the first StopTransaction of a session closes it; a repeat is ignored. A stop for an id we never gave
  this charger (-1, 0, anything unknown) is an *orphan* session, finished at once: it starts at the first
  transactionData reading (whose register is its meterStart) or, without readings, at the stop time; flag
  ``orphan``. A repeated orphan stop (same id, timestamp and meterStop: ``stop_key``) is ignored.
- 2.0.1: events are deduplicated on (charger, transactionId, seqNo) before they get here. The session is
  assembled from every event in any order: an ``Updated``/``Ended`` without ``Started`` opens it (flag
  ``no_started`` until the ``Started`` arrives; the start is then the earliest time it carries), the ``Started``
  sets the start when it comes, and only an ``Ended`` finishes it. Readings that arrive after the ``Ended`` still
  enter the register range and the energy.
- An end before the start is not believed (a clock went back between them: the charger's, or the bridge's when it
  replaced a charger time from the future, ocpp-bridge §3): the end is the start plus the time the bridge saw pass
  between the two messages, or the session's last activity when that is later (or the bridge's clock went back
  too); flag ``end_before_start``. A session never ends before it starts. A 2.0.1 reading dated before the start
  counts at the start for the energy (it is stored as dated).
- A session's end is set once by a real stop (1.6 StopTransaction, 2.0.1 Ended). A zombie close is provisional:
  the real stop arriving later replaces it (flag ``stopped_after_zombie``; ``zombie`` stays as history).
- Energy: ``meterStop - meterStart`` (1.6; the register readings stand in for a missing one, except an orphan's
  missing start) or the last minus the first register reading by time (2.0.1).
- Zero baseline: when the baseline is 0 and the first non-zero register reading would mean an average power above
  ``MAX_PLAUSIBLE_POWER_W`` (1 MW) since the baseline's time (counting at least 1 s), the 0 is not a baseline but
  a reset register before lifetime readings: the first non-zero reading is the baseline (flag
  ``zero_baseline_skipped``). A session-relative register (0, then a few kWh a minute) keeps its 0.
- A final reading (1.6 ``meterStop``, or the last 2.0.1 reading by time) below the highest register *sampled* in the
  session (MeterValues, transactionData, TransactionEvent readings; not meterStart) is not believed: firmware
  without a meter hook sends 0, a register may reset. The highest sample is the end reading (flag
  ``final_below_samples``).
- Negative energy is clamped to 0 (flag ``negative_energy``). No baseline or no end reading: energy unknown (None).
- Zombies: starting a session on a connector closes every open session on it that started earlier, at once. The
  sweep closes an open session after ``grace_s`` of quiet when a later one started on its connector, or when its
  connector's applied status is Available with a charger time not before the session's last activity (1.6
  Available; for 2.0.1 Available is how an EVSE tells it has no transaction) and that Available is ``grace_s``
  old. A zombie ends at its last meter sample (its start without samples), flag ``zombie``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from edge_bridge.domain.events import Flags, MeterSampled, Reading, SessionEvent
from edge_bridge.domain.pushes import Pushes
from edge_bridge.domain.status import V16, V201, ConnectorState

OPEN = "open"
FINISHED = "finished"

END_STOP = "stop"  # 1.6 StopTransaction
END_ENDED = "ended"  # 2.0.1 TransactionEvent Ended
END_ZOMBIE = "zombie"  # closed by the bridge
REAL_ENDS = frozenset({END_STOP, END_ENDED})

ORPHAN = "orphan"
ZOMBIE = "zombie"
STOPPED_AFTER_ZOMBIE = "stopped_after_zombie"
NO_STARTED = "no_started"
NO_METER_START = "no_meter_start"
NEGATIVE_ENERGY = "negative_energy"
ZERO_BASELINE_SKIPPED = "zero_baseline_skipped"
FINAL_BELOW_SAMPLES = "final_below_samples"
END_BEFORE_START = "end_before_start"
ENERGY_FLAGS = (NEGATIVE_ENERGY, ZERO_BASELINE_SKIPPED, FINAL_BELOW_SAMPLES)  # re-derived whenever the energy is

MAX_PLAUSIBLE_POWER_W = Decimal(1_000_000)  # 1 MW: more than any single connector delivers
AVAILABLE = "Available"
DEFAULT_ZOMBIE_GRACE_S = 120.0


@dataclass(frozen=True)
class Register:
    """One reading of the energy register."""

    at: datetime
    wh: Decimal


@dataclass(frozen=True)
class Registers:
    """The register readings of a session that energy needs, kept order-independent (by charger time).
    ``highest`` counts sampled readings only (``fold(..., sampled=True)``), not meterStart or meterStop."""

    first: Register | None = None
    first_nonzero: Register | None = None
    last: Register | None = None
    highest: Register | None = None

    def fold(self, reading: Register, sampled: bool = True) -> Registers:
        key = (reading.at, reading.wh)
        first = reading if self.first is None or key < (self.first.at, self.first.wh) else self.first
        last = reading if self.last is None or key > (self.last.at, self.last.wh) else self.last
        nonzero = self.first_nonzero
        if reading.wh != 0 and (nonzero is None or key < (nonzero.at, nonzero.wh)):
            nonzero = reading
        highest = self.highest
        if sampled and (highest is None or (reading.wh, highest.at) > (highest.wh, reading.at)):
            highest = reading  # the highest value, the earliest of equal ones
        return Registers(first, nonzero, last, highest)


@dataclass(frozen=True)
class Session:
    """One charging session as stored. ``id`` is None until inserted (1.6: the id is its transactionId)."""

    charger: str
    version: str
    evse: int
    connector: int
    started_at: datetime
    started_received_at: datetime
    last_received_at: datetime  # when the bridge last got anything about it (zombie grace)
    id: int | None = None
    transaction_ref: str | None = None  # 2.0.1 transactionId; 1.6: str(id), set once the id exists
    id_tag: str = ""
    ended_at: datetime | None = None
    ended_received_at: datetime | None = None
    meter_start_wh: Decimal | None = None
    meter_stop_wh: Decimal | None = None
    registers: Registers = field(default_factory=Registers)
    last_sample_at: datetime | None = None
    energy_wh: Decimal | None = None
    stop_reason: str = ""
    state: str = OPEN
    end_source: str = ""
    orphan: bool = False
    flags: Flags = ()
    start_key: str | None = None
    stop_key: str | None = None
    charging_state: str = ""  # 2.0.1 chargingState, the latest by charger time
    charging_state_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.state == OPEN

    @property
    def last_activity_at(self) -> datetime:
        """Charger time of the latest thing known about it: its start or its latest sample."""
        return max(self.started_at, self.last_sample_at or self.started_at)


@dataclass(frozen=True)
class SessionOutcome:
    """What one event does: the session to write (insert when its id is None) with the readings to store for it,
    other sessions closed as zombies, the transactionId to answer a repeated 1.6 start with, and what to push."""

    session: Session | None = None
    readings: tuple[Reading, ...] = ()
    zombies: tuple[Session, ...] = ()
    reply_id: int | None = None
    duplicate: bool = False
    pushes: Pushes = ()  # orders are built by the bridge once the session is stored (``order_rules``)


IGNORED = SessionOutcome(duplicate=True)


# ------------------------------------------------------------------------------------------------ helpers


def add_flags(flags: Flags, *more: str) -> Flags:
    """``flags`` then each new one of ``more``, in order, without repeats."""
    out = list(flags)
    out.extend(flag for flag in dict.fromkeys(more) if flag not in out)
    return tuple(out)


def drop_flags(flags: Flags, *gone: str) -> Flags:
    return tuple(flag for flag in flags if flag not in gone)


def session_version(event: SessionEvent, charger_version: str) -> str:
    """The charger's OCPP version; unknown (never connected): 2.0.1 when the event has a seqNo, else 1.6."""
    if charger_version in (V16, V201):
        return charger_version
    return V201 if event.seq_no is not None else V16


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _number(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def where(event: SessionEvent) -> tuple[int, int]:
    """(evse, connector) of an event; unknown evse is 0 (the charger), unknown connector 1."""
    return (0 if event.evse is None else event.evse, 1 if event.connector is None else event.connector)


def start_key(event: SessionEvent) -> str:
    """The 1.6 StartTransaction idempotency key: charger|connector|idTag|timestamp|meterStart."""
    return "|".join((event.charger, str(where(event)[0]), event.id_tag, _iso(event.at), _number(event.meter_wh)))


def stop_key(event: SessionEvent) -> str:
    """The idempotency key of an orphan StopTransaction (per charger): transactionId|timestamp|meterStop."""
    return "|".join((event.transaction_ref or "", _iso(event.at), _number(event.meter_wh)))


def _earliest(event: SessionEvent) -> datetime:
    return min([event.at, *(r.at for r in event.readings)])


def believed_end(session: Session, event: SessionEvent) -> tuple[datetime, Flags]:
    """When ``session`` ended by a stop ``event``, and the flag when its time was before the start (docstring)."""
    if event.at >= session.started_at:
        return event.at, ()
    seen = session.started_at + (event.received_at - session.started_received_at)
    return max(seen, session.last_activity_at), (END_BEFORE_START,)


# ------------------------------------------------------------------------------------------------ energy


def baseline(start: Register, first_nonzero: Register | None) -> tuple[Register, bool]:
    """The energy baseline, and whether a zero start was skipped as a reset register (module docstring)."""
    if start.wh != 0 or first_nonzero is None:
        return start, False
    elapsed_s = max(Decimal((first_nonzero.at - start.at).total_seconds()), Decimal(1))
    if first_nonzero.wh * 3600 / elapsed_s > MAX_PLAUSIBLE_POWER_W:
        return first_nonzero, True
    return start, False


def _endpoints(session: Session) -> tuple[Register | None, Register | None]:
    regs = session.registers
    if session.version == V201:
        return regs.first, regs.last
    start = None if session.orphan else regs.first  # an orphan's start is its first transactionData reading
    if session.meter_start_wh is not None:
        start = Register(session.started_at, session.meter_start_wh)
    stop = regs.last
    if session.meter_stop_wh is not None:
        stop = Register(session.ended_at or session.last_activity_at, session.meter_stop_wh)
    return start, stop


def _believed_end(session: Session, stop: Register) -> tuple[Register, bool]:
    """The end reading, and whether the reported one was below the highest sample and replaced by it."""
    highest = session.registers.highest
    if highest is not None and highest.wh > stop.wh:
        return highest, True
    return stop, False


def energy_baseline(session: Session) -> Register | None:
    """The register reading the session's energy counts from (``settle``'s baseline); None when unknown."""
    start, _ = _endpoints(session)
    return None if start is None else baseline(start, session.registers.first_nonzero)[0]


def settle(session: Session) -> Session:
    """The session with its energy (and the energy flags) derived again from its record."""
    start, stop = _endpoints(session)
    flags = drop_flags(session.flags, *ENERGY_FLAGS)
    if start is None or stop is None:
        return replace(session, energy_wh=None, flags=flags)
    base, skipped = baseline(start, session.registers.first_nonzero)
    end, below = _believed_end(session, stop)
    energy = end.wh - base.wh
    flags = add_flags(flags, *((ZERO_BASELINE_SKIPPED,) if skipped else ()), *((FINAL_BELOW_SAMPLES,) if below else ()))
    if energy < 0:
        energy, flags = Decimal(0), add_flags(flags, NEGATIVE_ENERGY)
    return replace(session, energy_wh=energy, flags=flags)


def fold_readings(session: Session, readings: Iterable[Reading]) -> Session:
    """Register range and last sample time with ``readings`` added."""
    regs, last = session.registers, session.last_sample_at
    for reading in readings:
        last = reading.at if last is None else max(last, reading.at)
        if reading.energy_wh is not None:
            regs = regs.fold(Register(reading.at, reading.energy_wh))
    return replace(session, registers=regs, last_sample_at=last)


def _fold_meter(session: Session, at: datetime, wh: Decimal | None) -> Session:
    """A 1.6 meterStart or meterStop: a register reading, not a sample."""
    if wh is None:
        return session
    return replace(session, registers=session.registers.fold(Register(at, wh), sampled=False))


def _heard(session: Session, received_at: datetime, flags: Flags) -> Session:
    return replace(
        session, last_received_at=max(session.last_received_at, received_at), flags=add_flags(session.flags, *flags)
    )


# ------------------------------------------------------------------------------------------------ zombies


def close_zombie(session: Session, now: datetime) -> Session:
    """Close an abandoned session at its last meter sample (its start without samples), flag ``zombie``."""
    closed = replace(
        session,
        ended_at=session.last_activity_at,
        ended_received_at=now,
        state=FINISHED,
        end_source=END_ZOMBIE,
        flags=add_flags(session.flags, ZOMBIE),
    )
    return settle(closed)


def zombies_of_start(open_here: Sequence[Session], started_at: datetime, now: datetime) -> tuple[Session, ...]:
    """Open sessions on the connector of a new session that started before it: closed now."""
    return tuple(close_zombie(s, now) for s in open_here if s.is_open and s.started_at < started_at)


def zombie_due(
    session: Session, *, now: datetime, grace_s: float, later_start: bool, connector: ConnectorState | None
) -> bool:
    """Whether the sweep closes ``session`` as a zombie (module docstring)."""
    if not session.is_open:
        return False
    if later_start and _quiet_for(now, session.last_received_at) >= grace_s:
        return True
    return connector is not None and _available_since(session, connector, now) >= grace_s


def _available_since(session: Session, connector: ConnectorState, now: datetime) -> float:
    at, received = connector.status_at, connector.status_received_at
    if connector.ocpp_status != AVAILABLE or at is None or received is None or at < session.last_activity_at:
        return -1.0
    return _quiet_for(now, max(received, session.last_received_at))


def _quiet_for(now: datetime, since: datetime) -> float:
    return (now - since).total_seconds()


# ------------------------------------------------------------------------------------------------ 1.6


def start_16(event: SessionEvent, *, same_start: Session | None, open_here: Sequence[Session]) -> SessionOutcome:
    """1.6 StartTransaction. ``same_start``: the session with this start's ``start_key``, if any."""
    if same_start is not None:
        return SessionOutcome(reply_id=same_start.id, duplicate=True)
    evse, connector = where(event)
    missing = () if event.meter_wh is not None else (NO_METER_START,)
    session = Session(
        charger=event.charger,
        version=V16,
        evse=evse,
        connector=connector,
        started_at=event.at,
        started_received_at=event.received_at,
        last_received_at=event.received_at,
        id_tag=event.id_tag,
        meter_start_wh=event.meter_wh,
        flags=add_flags(event.flags, *missing),
        start_key=start_key(event),
    )
    session = fold_readings(_fold_meter(session, event.at, event.meter_wh), event.readings)
    zombies = zombies_of_start(open_here, session.started_at, event.received_at)
    return SessionOutcome(session=settle(session), readings=event.readings, zombies=zombies)


def stop_16(event: SessionEvent, found: Session | None) -> SessionOutcome:
    """1.6 StopTransaction. ``found``: our session with this transactionId, else the orphan with its ``stop_key``."""
    if found is None:
        return SessionOutcome(session=orphan(event), readings=event.readings)
    if found.orphan or found.end_source in REAL_ENDS:
        return IGNORED
    late = (STOPPED_AFTER_ZOMBIE,) if found.end_source == END_ZOMBIE else ()
    ended_at, odd = believed_end(found, event)
    closed = replace(
        _heard(found, event.received_at, (*event.flags, *late, *odd)),
        ended_at=ended_at,
        ended_received_at=event.received_at,
        meter_stop_wh=event.meter_wh,
        stop_reason=event.stop_reason,
        state=FINISHED,
        end_source=END_STOP,
        id_tag=found.id_tag or event.id_tag,
    )
    closed = fold_readings(_fold_meter(closed, ended_at, event.meter_wh), event.readings)
    return SessionOutcome(session=settle(closed), readings=event.readings)


def orphan(event: SessionEvent) -> Session:
    """A finished session from a StopTransaction with an unknown transactionId (module docstring)."""
    evse, connector = where(event)
    data = fold_readings(
        Session(event.charger, V16, evse, connector, event.at, event.received_at, event.received_at), event.readings
    )
    first = data.registers.first
    missing = () if first is not None else (NO_METER_START,)
    session = replace(
        data,
        started_at=_earliest(event),
        id_tag=event.id_tag,
        ended_at=event.at,
        ended_received_at=event.received_at,
        meter_start_wh=None if first is None else first.wh,
        meter_stop_wh=event.meter_wh,
        stop_reason=event.stop_reason,
        state=FINISHED,
        end_source=END_STOP,
        orphan=True,
        flags=add_flags(event.flags, ORPHAN, *missing),
        stop_key=stop_key(event),
    )
    return settle(_fold_meter(session, event.at, event.meter_wh))


def sampled(session: Session, readings: tuple[Reading, ...], received_at: datetime, flags: Flags = ()) -> Session:
    """A session with readings of a MeterValues (or a 1.6 ``updated``) added."""
    return settle(fold_readings(_heard(session, received_at, flags), readings))


def owner_of_untagged(open_here: Sequence[Session], event: MeterSampled) -> Session | None:
    """The session 1.6 MeterValues without a transactionId belong to: the connector's newest open 1.6 session
    that started at or before its earliest reading. None: readings outside any session."""
    if not event.readings:
        return None
    earliest = min(r.at for r in event.readings)
    candidates = [s for s in open_here if s.is_open and s.version == V16 and s.started_at <= earliest]
    return max(candidates, key=lambda s: s.started_at, default=None)


# ------------------------------------------------------------------------------------------------ 2.0.1


def transaction_event(event: SessionEvent, *, session: Session | None, open_here: Sequence[Session]) -> SessionOutcome:
    """A (deduplicated) 2.0.1 TransactionEvent. ``session``: the one with its transactionId, if any;
    ``open_here``: the open sessions on its connector (to close as zombies when this one is new)."""
    if session is not None:
        return SessionOutcome(session=_fold_201(session, event), readings=event.readings)
    opened = _fold_201(_open_201(event), event)
    zombies = zombies_of_start(open_here, opened.started_at, event.received_at)
    return SessionOutcome(session=opened, readings=event.readings, zombies=zombies)


def _open_201(event: SessionEvent) -> Session:
    evse, connector = where(event)
    return Session(
        charger=event.charger,
        version=V201,
        evse=evse,
        connector=connector,
        started_at=_earliest(event),
        started_received_at=event.received_at,
        last_received_at=event.received_at,
        transaction_ref=event.transaction_ref,
        flags=() if event.kind == "started" else (NO_STARTED,),
    )


def _fold_201(session: Session, event: SessionEvent) -> Session:
    session = _charging_state(_locate(_heard(session, event.received_at, event.flags), event), event)
    started = event.kind == "started"
    tag = event.id_tag if started and event.id_tag else session.id_tag or event.id_tag
    session = replace(session, id_tag=tag)
    if started:
        session = replace(
            session,
            started_at=event.at,
            started_received_at=event.received_at,
            flags=drop_flags(session.flags, NO_STARTED),
        )
    elif NO_STARTED in session.flags:
        session = replace(session, started_at=min(session.started_at, _earliest(event)))
    if event.kind == "ended":
        session = _end_201(session, event)
    return settle(fold_readings(session, _from_start(session, event.readings)))


def _from_start(session: Session, readings: tuple[Reading, ...]) -> tuple[Reading, ...]:
    """Readings dated before the session's start (the charger's clock went back) count at the start: never before
    the start's own reading, so the energy (last minus first by time) stays the register's growth."""
    return tuple(r if r.at >= session.started_at else replace(r, at=session.started_at) for r in readings)


def _locate(session: Session, event: SessionEvent) -> Session:
    evse = session.evse if event.evse is None else event.evse
    connector = session.connector if event.connector is None else event.connector
    return replace(session, evse=evse, connector=connector)


def _charging_state(session: Session, event: SessionEvent) -> Session:
    if not event.charging_state:
        return session
    if session.charging_state_at is not None and event.at < session.charging_state_at:
        return session
    return replace(session, charging_state=event.charging_state, charging_state_at=event.at)


def _end_201(session: Session, event: SessionEvent) -> Session:
    if session.end_source in REAL_ENDS:
        return session
    late = (STOPPED_AFTER_ZOMBIE,) if session.end_source == END_ZOMBIE else ()
    ended_at, odd = believed_end(session, event)
    return replace(
        session,
        ended_at=ended_at,
        ended_received_at=event.received_at,
        stop_reason=event.stop_reason or session.stop_reason,
        state=FINISHED,
        end_source=END_ENDED,
        flags=add_flags(session.flags, *late, *odd),
    )


# ------------------------------------------------------------------------------------------------ connector


def charging_state_of(open_here: Sequence[Session]) -> str:
    """The 2.0.1 chargingState of the connector: that of its newest open session ("" without one)."""
    newest = max((s for s in open_here if s.is_open), key=lambda s: s.started_at, default=None)
    return "" if newest is None else newest.charging_state


def sweep_session(
    session: Session, *, now: datetime, grace_s: float, later_start: bool, connector: ConnectorState | None
) -> SessionOutcome | None:
    """The sweep's decision on one open session: closed as a zombie, or None (left alone)."""
    if not zombie_due(session, now=now, grace_s=grace_s, later_start=later_start, connector=connector):
        return None
    return SessionOutcome(zombies=(close_zombie(session, now),))

"""What the charger simulators keep and report: ``Quirks``, ``Sent``, ``Answer``, transactions, connectors,
``SimError``, and the Wh helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any


class SimError(Exception):
    """A scenario step cannot go on: unknown connector, no transaction, the CSMS refused an answer it needs."""


@dataclass(frozen=True)
class Quirks:
    """What real chargers get wrong (charger spec §9), switched on per simulator."""

    energy_kwh: bool = False  # energy register in kWh with decimals ("1004.500", unit kWh)
    numbers_not_strings: bool = False  # 1.6: sampled values as JSON numbers
    zero_begin: bool = False  # a Transaction.Begin reading of 0 (1.6: meterStart 0 too), then lifetime readings
    stop_below_start: bool = False  # meterStop / the final reading one Wh below the start
    final_zero: bool = False  # meterStop / the final reading 0 (firmware without a meter hook), samples climbed
    double_stop: bool = False  # StopTransaction / TransactionEvent Ended sent twice
    stop_transaction_id: int | None = None  # 1.6: StopTransaction carries this id (-1, 0) instead of the real one
    ended_first: int = 0  # 2.0.1: hold back the last N meter Updated events, send them after Ended (all offline)
    drop_queued_statuses: bool = False  # after an outage, replay the queue without its StatusNotifications


@dataclass(frozen=True)
class Sent:
    """One frame that went out: a CALL (``action`` and its payload) or a raw frame (``action`` None, the text)."""

    action: str | None
    payload: Any
    at: datetime  # simulated time when it went out
    replay: bool = False  # sent from the offline queue


@dataclass(frozen=True)
class Answer:
    """One CALL and what came back: the CALLRESULT payload, or an error (CALLERROR text, "timeout", "connection
    closed"). ``invalid`` says why a CALLRESULT does not match the action's response schema."""

    action: str
    payload: Any
    answer: dict[str, Any] | None = None
    error: str | None = None
    invalid: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.invalid is None


@dataclass
class Tx:
    """A transaction as the charger knows it. ``id``: 1.6 the CSMS's integer (None until answered), 2.0.1 our uuid."""

    id: int | str | None
    id_tag: str | None
    started_at: datetime
    begin_wh: Decimal
    meter_start: int = 0
    seq: int = 0
    token_sent: bool = False
    held: list[dict[str, Any]] = field(default_factory=list)  # 2.0.1 events kept back (Quirks.ended_first)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq - 1


@dataclass
class Connector:
    id: int
    register: Decimal  # lifetime energy register, Wh
    tx: Tx | None = None  # the open transaction
    last_tx: Tx | None = None
    before_fault: str = "Available"


@dataclass
class _Pending:
    action: str
    payload: dict[str, Any]
    validate: bool = True
    tx: Tx | None = None


def wh(register: Decimal) -> int:
    """Integral Wh, as a meter display truncates."""
    return int(register.to_integral_value(rounding=ROUND_FLOOR))


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)

"""The province's verdict on an order, from the order's state and its outbox row's: one rule for every view
(``edge-bridge orders``, the status page).

accepted (ConfirmResult 0, or its row sent), disputed (ConfirmResult 1: dead-lettered with the province's reason),
dead (another permanent refusal, with its reason; or its row purged), queued (pending in the outbox, with the reason
of the last failed attempt), not pushed (its connector is not configured, or its energy unknown).
"""

from __future__ import annotations

from edge_bridge.domain import order_rules
from edge_bridge.store.orders import OrderEntry

NOT_PUSHED = {order_rules.UNCONFIGURED: "connector not configured", order_rules.UNMEASURED: "energy unknown"}
DISPUTED = "disputed ("  # provincial/client.py: the dead-letter reason of ConfirmResult 1, "disputed (...)"


def verdict(entry: OrderEntry) -> tuple[str, str]:
    """(verdict, reason) of an order, from its state and its outbox row's."""
    if entry.state in NOT_PUSHED:
        return "not pushed", NOT_PUSHED[entry.state]
    if entry.state == order_rules.ACCEPTED or entry.outbox_state == "sent":
        return "accepted", ""
    reason = entry.reason or ""
    if entry.outbox_state == "dead" and reason.startswith(DISPUTED):
        return "disputed", reason.removeprefix(DISPUTED).removesuffix(")")  # "ConfirmResult 1"
    if entry.outbox_state == "dead":
        return "dead", reason
    if entry.outbox_state is None:
        return "dead", f"outbox row {entry.outbox_id} no longer exists"
    return "queued", reason  # pending: the reason of the last failed attempt, if any

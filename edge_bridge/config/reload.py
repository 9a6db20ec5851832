"""What a changed configuration means for a running daemon (SIGHUP, ``systemctl reload``): ``plan(old, new)``.

A reload applies what a running daemon can take without dropping a charger: the stations, their chargers and
connectors, the tariffs, the stop reasons, the retention, the log level, the operator's name and contacts,
``[province] trace_wire``, and the OCPP settings that are read per connection or per sweep (heartbeat interval,
offline delay, unknown chargers). Every other key (listen addresses, TLS files and limits of the listeners, the
database path, the province's address and secrets, the time zone, the operator's id, the status page) is read once,
at start-up: a changed value there is listed in ``Plan.restart`` and keeps its old value until the next restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from edge_bridge.config.models import Config

# section -> the keys a reload applies; "*" the whole section
APPLIED: dict[str, tuple[str, ...]] = {
    "stations": ("*",),
    "tariffs": ("*",),
    "stop_reasons": ("*",),
    "retention": ("*",),
    "logging": ("level",),
    "operator": ("name", "contact_name", "contact_phone", "contact_email"),
    "ocpp": ("heartbeat_interval_s", "offline_after_s", "allow_unknown_chargers"),
    "pull_api": ("public_url",),
    "province": ("trace_wire",),  # the joint test turns it on and off without dropping a charger
}


@dataclass(frozen=True)
class Plan:
    config: Config  # what the daemon runs with after the reload: the new values a reload applies, the old others
    applied: list[str]  # key paths that changed and take effect now (sections, or section.key)
    restart: list[str]  # key paths that changed and wait for a restart


def plan(old: Config, new: Config) -> Plan:
    """Split the differences between ``old`` and ``new`` into what a reload applies and what needs a restart."""
    update: dict[str, Any] = {}
    applied: list[str] = []
    restart: list[str] = []
    for section in Config.model_fields:
        before, after = getattr(old, section), getattr(new, section)
        if before == after:
            continue
        keys = APPLIED.get(section, ())
        if "*" in keys or not isinstance(before, BaseModel):
            (applied if "*" in keys else restart).append(section)
            update[section] = after if "*" in keys else before
            continue
        changed = [k for k in type(before).model_fields if getattr(before, k) != getattr(after, k)]
        taken = {k: getattr(after, k) for k in changed if k in keys}
        applied += [f"{section}.{k}" for k in taken]
        restart += [f"{section}.{k}" for k in changed if k not in keys]
        update[section] = before.model_copy(update=taken)
    return Plan(old.model_copy(update=update), applied, restart)

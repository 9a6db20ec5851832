"""SIGHUP (``systemctl reload``): read the config file again and apply what a running daemon can take.

``Running.reload(old, path)`` returns the config in force afterwards. A new file that does not load is refused with
one log line (``reload_refused``, naming every problem) and the old config runs on. Keys that need a restart
(``config.reload``: listen addresses, the database path, ...) keep their old values and are named in one line
(``reload_needs_restart``). The rest is applied in this order, each step only after the previous one succeeded:
the bridge (a new tariff version from now, for the orders), the OCPP server (chargers no longer configured are
closed with 1008; the others stay connected), the pull API (stations and tariffs it answers), the status page, then
the StationInfo of each station whose info changed is queued for the province.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from edge_bridge import log as logs
from edge_bridge.charger.server import OcppServer
from edge_bridge.config import Config, load_config_with_warnings, plan, site_model
from edge_bridge.errors import ConfigError, StoreError, store_failure_level
from edge_bridge.provincial.client import ProvinceClient
from edge_bridge.provincial.pull_listener import PullApi
from edge_bridge.store.db import Database
from edge_bridge.store.outbox import Outbox
from edge_bridge.usecases.bridge import ChargerBridge
from edge_bridge.usecases.station_info import enqueue_station_info
from edge_bridge.web.listener import WebServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Running:
    """The parts of a running daemon that a reload reconfigures."""

    db: Database
    outbox: Outbox
    bridge: ChargerBridge
    ocpp: OcppServer
    pull_api: PullApi
    page: WebServer
    client: ProvinceClient
    clock: Callable[[], datetime]

    async def reload(self, old: Config, path: Path) -> Config:
        """The config in force after reading ``path`` again: the new one where it can apply, else ``old``."""
        try:
            new, warnings = load_config_with_warnings(path)
        except ConfigError as exc:
            problems = "; ".join(str(problem) for problem in exc.problems)
            log.error("reload_refused", extra={"config": str(path), "problems": problems, "running": "old config"})
            return old
        for warning in warnings:
            log.warning("config_warning", extra={"detail": warning})
        try:
            return await self._apply(old, new)
        except StoreError as exc:  # before anything was applied: the bridge's unit is the first step
            log.log(store_failure_level(exc, logging.ERROR), "reload_failed", extra={"error": str(exc)})
            return old

    async def _apply(self, old: Config, new: Config) -> Config:
        changes = plan(old, new)
        if changes.restart:
            log.warning("reload_needs_restart", extra={"keys": ", ".join(changes.restart)})
        if not changes.applied:
            log.info("reloaded", extra={"applied": "nothing changed"})
            return old
        config, site = changes.config, site_model(changes.config)
        await self.bridge.configure(site, config.ocpp.offline_after_s, config.stop_reasons)
        closed = await self.ocpp.reconfigure(config)
        self.pull_api.reconfigure(config)
        self.page.view.reconfigure(site)
        self.client.trace_wire = config.province.trace_wire
        if "province.trace_wire" in changes.applied and config.province.trace_wire:
            log.warning("trace_wire_on", extra={"detail": "every push and pull is logged decrypted (secrets masked)"})
        logs.set_level(config.logging.level)
        queued = await enqueue_station_info(self.db, self.outbox, site, self.clock())
        fields = {"applied": ", ".join(changes.applied), "chargers_closed": closed, "station_info_queued": queued}
        log.info("reloaded", extra=fields)
        return config

"""Starting and stopping the status page (``web/server.py``) on ``[web] listen``.

Invariants: the page reads the store through its own read-only connection on its own thread (``store/reader.py``),
so an open page never waits for, nor delays, the chargers' writes; it holds no state of its own besides a cached
document (``web/view.py``). A port already in use stops the start, as any other listener's would. The page is not
one of ``App.components``: it only observes, and the watchdog must not restart the chargers' daemon for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from aiohttp import web

from edge_bridge.config import Config, site_model
from edge_bridge.store.reader import ReadOnlyStore
from edge_bridge.web.server import Components, Scrape, build_web_app, credentials_of
from edge_bridge.web.view import CachedView, LastPush

log = logging.getLogger(__name__)


class WebServer:
    """The page listening; ``port`` is the bound port (useful with port 0)."""

    def __init__(self, runner: web.AppRunner, reader: ReadOnlyStore, view: CachedView, port: int) -> None:
        self._runner, self.reader, self.view, self.port = runner, reader, view, port

    async def close(self) -> None:
        """Stop serving (requests in progress get up to a second), then close the read-only connection."""
        await self._runner.cleanup()
        await self.reader.close()


async def start_web(
    config: Config,
    db_path: Path,
    components: Components,
    clock: Callable[[], datetime],
    last_push: LastPush,
    scrape: Scrape | None = None,
) -> WebServer:
    """Listen on ``config.web.listen`` and serve the page."""
    reader = ReadOnlyStore(db_path)
    view = CachedView(reader, site_model(config), config.tz, clock, last_push)
    runner = web.AppRunner(build_web_app(config.web, view, components, scrape), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    host, port = config.web.host_port
    try:
        site = web.TCPSite(runner, host or None, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        await reader.close()
        raise
    bound = int(runner.addresses[0][1])
    auth = credentials_of(config.web) is not None
    log.info("web_listening", extra={"port": bound, "basic_auth": auth})
    return WebServer(runner, reader, view, bound)

"""Starting and stopping the status page (``web/server.py``) on ``[web] listen``.

Invariants: the page reads the store through its own read-only connection on its own thread (``store/reader.py``),
so an open page never waits for, nor delays, the chargers' writes; it holds no state of its own besides a cached
document (``web/view.py``). A port already in use stops the start, as any other listener's would. The page is not
one of ``App.components``: it only observes, and the watchdog must not restart the chargers' daemon for it.
Its port has the pull API's defences (``guard.py``), with small caps: at most ``MAX_CONNECTIONS`` sockets, of which
``MAX_PENDING_PER_ADDRESS`` from one address without a complete request yet (503 over a cap), and a connection
without a complete request for ``IDLE_TIMEOUT_S`` is closed; a browser or a Prometheus needs a few.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from aiohttp import web

from edge_bridge.config import Config, site_model
from edge_bridge.guard import ConnectionGuard, Limits, Summary, fd_share
from edge_bridge.store.reader import ReadOnlyStore
from edge_bridge.web.server import Components, Scrape, build_web_app, credentials_of
from edge_bridge.web.view import CachedView, LastPush

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
MAX_PENDING_PER_ADDRESS = 32  # without a request yet; half the total: one address never holds every place
IDLE_TIMEOUT_S = 5.0
WEB_FD_SHARE = 0.05  # of the open files left after guard.RESERVED_FDS (the OCPP port 3/4, the pull API 1/8)


class WebServer:
    """The page listening; ``port`` is the bound port (useful with port 0)."""

    def __init__(
        self, runner: web.AppRunner, listener: asyncio.Server, guard: ConnectionGuard, reader: ReadOnlyStore,
        view: CachedView,
    ) -> None:  # fmt: skip
        self._runner, self._listener, self._guard, self.reader, self.view = runner, listener, guard, reader, view
        self.port = int(listener.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop serving (requests in progress get up to a second), then close the read-only connection."""
        self._listener.close()
        await self._runner.cleanup()
        await self._listener.wait_closed()
        self._guard.refusals.close()
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
    app = build_web_app(config.web, view, components, scrape)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, keepalive_timeout=IDLE_TIMEOUT_S)
    await runner.setup()
    assert runner.server is not None  # set by setup()
    total = fd_share(MAX_CONNECTIONS, WEB_FD_SHARE)
    limits = Limits(total, total, MAX_PENDING_PER_ADDRESS)
    guard = ConnectionGuard(limits, Summary("web_connection_refused", logger=log))
    host, port = config.web.host_port
    try:
        listener = await asyncio.get_running_loop().create_server(
            guard.protocol_factory(runner.server), host or None, port
        )
    except BaseException:
        await runner.cleanup()
        await reader.close()
        raise
    page = WebServer(runner, listener, guard, reader, view)
    auth = credentials_of(config.web) is not None
    log.info("web_listening", extra={"port": page.port, "basic_auth": auth, "max_connections": limits.total})
    return page

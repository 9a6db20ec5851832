"""The pull API's listener: the socket the province connects to, and what keeps hostile clients out of it.

Every socket passes a ``ConnectionGuard`` first (per-address and total caps below the open-file limit, 503 over
them, 403 at once for an address outside ``allow_from``). aiohttp's keep-alive timer (``idle_timeout_s``) starts when
the socket opens and runs while no complete request is there, so it is the header timeout as well as the idle
timeout; ``REQUEST_DEADLINE_S`` bounds a request's body and its answer (408). aiohttp's own log of a malformed request
(a bad request line or header, answered 400 by aiohttp) becomes one rate-limited line without a traceback, so that
nobody can fill the journal by sending junk. The five interfaces themselves are ``pull_server.py``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from edge_bridge.config import Config
from edge_bridge.guard import ConnectionGuard, Limits, Summary, fd_share
from edge_bridge.provincial.pull_server import PULL_SERVER, address_allowed, build_pull_app
from edge_bridge.store.db import Database
from edge_bridge.timeutil import utc_now

log = logging.getLogger(__name__)

REQUEST_DEADLINE_S = 30.0  # body and answer of one request (a slow body must not hold a connection for ever)
PULL_FD_SHARE = 0.125  # of the open files left after guard.RESERVED_FDS; the OCPP port gets 3/4


class PullApi:
    """The pull API listening on ``config.pull_api.listen``; ``port`` is the bound port (useful with port 0)."""

    def __init__(
        self, runner: web.AppRunner, listener: asyncio.Server, guard: ConnectionGuard, summaries: tuple[Summary, ...]
    ) -> None:
        self._runner, self._listener, self.guard, self._summaries = runner, listener, guard, summaries
        self.port = int(listener.sockets[0].getsockname()[1])

    def reconfigure(self, config: Config) -> None:
        """A reload: the pulls are answered from ``config`` from now on (its listener settings are the old ones)."""
        assert self._runner.app is not None  # set up in start_pull_api
        self._runner.app[PULL_SERVER].reconfigure(config)

    def serving(self) -> bool:
        """The listening socket accepts connections (the watchdog's check)."""
        return self._listener.is_serving()

    async def close(self) -> None:
        """Stop accepting requests; requests in progress get up to a second to finish."""
        self._listener.close()
        await self._runner.cleanup()
        await self._listener.wait_closed()
        self.guard.refusals.close()
        for summary in self._summaries:
            summary.close()


async def start_pull_api(
    config: Config,
    db: Database,
    *,
    clock: Callable[[], datetime] = utc_now,
    request_deadline_s: float = REQUEST_DEADLINE_S,
) -> PullApi:
    settings, late = config.pull_api, Summary("pull_request_timed_out", logger=log)
    malformed = Summary("pull_request_malformed", logger=log)
    app = build_pull_app(config, db, clock=clock)
    app.middlewares.insert(0, _deadline(request_deadline_s, late))
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=1.0,
        keepalive_timeout=settings.idle_timeout_s,
        logger=_MalformedRequests(malformed),
    )
    await runner.setup()
    assert runner.server is not None  # set by setup()
    per_address = settings.max_connections_per_address  # an HTTP connection counts as pending while it lives
    limits = Limits(fd_share(settings.max_connections, PULL_FD_SHARE), per_address, per_address)
    # outside allow_from: 403 at once, before anything is read or a place is taken
    allowed = functools.partial(address_allowed, networks=settings.allow_from) if settings.allow_from else None
    guard = ConnectionGuard(limits, Summary("pull_connection_refused", logger=log), allowed)
    host, port = settings.host_port
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(guard.protocol_factory(runner.server), host or None, port)
    caps = {"max_connections": limits.total, "idle_timeout_s": settings.idle_timeout_s}
    log.info("pull_listening", extra={"port": listener.sockets[0].getsockname()[1], **caps})
    return PullApi(runner, listener, guard, (late, malformed))


def _deadline(seconds: float, timeouts: Summary) -> Middleware:
    @web.middleware
    async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            async with asyncio.timeout(seconds):
                return await handler(request)
        except TimeoutError:
            timeouts.note(request.remote or "", "request_deadline", path=request.path, deadline_s=seconds)
            raise web.HTTPRequestTimeout() from None

    return deadline


class _MalformedRequests(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's request-handling logger: a malformed request (answered 400 by aiohttp) is noted in ``summary`` by
    the exception's name, without a traceback; aiohttp's debug lines are dropped."""

    def __init__(self, summary: Summary) -> None:
        super().__init__(log, {})
        self._summary = summary

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level < logging.WARNING:
            return
        given = kwargs.get("exc_info")
        error = given if isinstance(given, BaseException) else sys.exc_info()[1]
        self._summary.note(str(args[0]) if args else "", type(error).__name__ if error else "http_error")

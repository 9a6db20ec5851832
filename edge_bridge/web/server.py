"""The local status page, its JSON, ``/healthz`` and ``/metrics``, served on ``[web] listen`` (aiohttp).

Routes (GET, and HEAD for each; any other method is refused with 405: the page can change nothing):
- ``/``: the page (``static/index.html``); ``/static/{name}``: its script and style, served from the package (no
  CDN, no build step: it works on a gateway without internet).
- ``/api/status``: one JSON document (``web/view.py``), at most a second old, that the page polls every few seconds:
  ``format``, ``generated_at``, ``timezone``; ``status``: the ``edge-bridge status --json`` document (storage,
  chargers with their connectors, open sessions, order counts and problems, active alarms); ``live`` [{session_id,
  charger, evse, connector, started_at, energy_kwh, points [[at, kWh so far, power_kw]]}]; ``daily`` {days [local
  dates, today last], stations [{station_id, name, kwh [per day]}]}; ``orders`` (newest first) [{session_id,
  start_charge_seq, charger, evse, connector, connector_id, started_at, start_time, end_time, total_power_kwh,
  total_money, stop_reason, verdict (accepted / disputed / dead / queued / not pushed), reason, charge_details
  [as pushed]}]; ``outbox`` {pending [{interface, count, oldest, oldest_age_s}], dead_count, dead [{id, interface,
  key, reason, at}], last_answer {at, outcome, ret, reason} or null}; ``alarm_history`` [{id, outbox_state,
  queued_at, ConnectorID, EquipmentID, AlarmStatus, AlarmCode, AlarmLevel, AlarmTime, NoteString}]. Times ISO 8601
  UTC, energy / power / money exact decimal strings, unknown values null.
- ``/healthz``: ``{"healthy": bool, "components": {name: "alive" | "stopped"}, "stopped": [names]}``, 200 when every
  component of ``App.components`` (the systemd watchdog's check) is alive, else 503. Not behind the password, so
  that a monitor can probe it; it tells nothing but component names.
- ``/metrics``: the Prometheus text (``edge_bridge.metrics``: ``Metrics.scrape``).

Basic auth (``[web] user`` with ``password`` / ``password_file``): when set, every route but ``/healthz`` needs it;
user and password are compared in constant time, both always (``hmac.compare_digest``), and neither is ever logged.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from edge_bridge.charger.admission import basic_credentials
from edge_bridge.config.models import WebConfig
from edge_bridge.web.view import CachedView

log = logging.getLogger(__name__)

VIEW = web.AppKey("view", CachedView)
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
REALM = 'Basic realm="edge-bridge", charset="UTF-8"'
OPEN_PATHS = {"/healthz"}
READ_METHODS = {"GET", "HEAD"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
}
Components = Mapping[str, Callable[[], bool]]
Scrape = Callable[[], Awaitable[tuple[bytes, str]]]  # the Prometheus text and its content type


def _static_files() -> dict[str, bytes]:
    folder = resources.files("edge_bridge.web").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC}


def credentials_of(settings: WebConfig) -> tuple[bytes, bytes] | None:
    """(user, password) the page asks for, or None when it asks for none."""
    if settings.user is None and settings.password is None:
        return None
    password = settings.password.get_secret_value() if settings.password is not None else ""
    return (settings.user or "").encode("utf-8"), password.encode("utf-8")


def authorized(header: str | None, expected: tuple[bytes, bytes]) -> bool:
    """The Authorization header carries ``expected``: both parts compared in constant time, always both."""
    given = basic_credentials(header) or (b"", b"")
    user_ok = hmac.compare_digest(given[0], expected[0])
    password_ok = hmac.compare_digest(given[1], expected[1])
    return bool(header) and user_ok & password_ok


def _guard(expected: tuple[bytes, bytes] | None) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in READ_METHODS:
            raise web.HTTPMethodNotAllowed(request.method, sorted(READ_METHODS))
        if expected is not None and request.path not in OPEN_PATHS:
            headers = request.headers.getall("Authorization", [])
            if len(headers) != 1 or not authorized(headers[0], expected):
                raise web.HTTPUnauthorized(headers={"WWW-Authenticate": REALM})
        response = await handler(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    return guard


def build_web_app(
    settings: WebConfig, view: CachedView, components: Components, scrape: Scrape | None = None
) -> web.Application:
    """The page's application: routes, the read-only and auth guard, the static files read once."""
    app = web.Application(middlewares=[_guard(credentials_of(settings))])
    app[VIEW] = view
    files = _static_files()
    app.router.add_get("/", _file_handler(files, "index.html"))
    for name in STATIC:
        app.router.add_get(f"/static/{name}", _file_handler(files, name))
    app.router.add_get("/api/status", _status)
    app.router.add_get("/healthz", _healthz_handler(components))
    app.router.add_get("/metrics", _metrics_handler(scrape))
    return app


def _file_handler(files: dict[str, bytes], name: str) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        return web.Response(body=files[name], content_type=STATIC[name], charset="utf-8")

    return serve


async def _status(request: web.Request) -> web.StreamResponse:
    body = await request.app[VIEW].document()
    response = web.Response(body=body, content_type="application/json", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def health(components: Components) -> tuple[int, dict[str, object]]:
    """(HTTP status, document) of ``/healthz``: 200 when every component is alive, else 503 naming the others."""
    states = {name: ("alive" if alive() else "stopped") for name, alive in components.items()}
    stopped = [name for name, state in states.items() if state != "alive"]
    return (503 if stopped else 200), {"healthy": not stopped, "components": states, "stopped": stopped}


def _healthz_handler(components: Components) -> Handler:
    async def healthz(request: web.Request) -> web.StreamResponse:
        status, doc = health(components)
        response = web.json_response(doc, status=status, dumps=json.dumps)
        response.headers["Cache-Control"] = "no-store"
        return response

    return healthz


def _metrics_handler(scrape: Scrape | None) -> Handler:
    async def metrics(request: web.Request) -> web.StreamResponse:
        if scrape is None:
            raise web.HTTPNotFound(text="no metrics are collected here")
        body, content_type = await scrape()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type  # with its version parameter, as prometheus-client says
        return response

    return metrics

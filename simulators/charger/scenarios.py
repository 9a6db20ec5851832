"""Scripted scenarios for the simulated chargers, and the ``edge-bridge-sim-charger`` command.

    edge-bridge-sim-charger --url ws://127.0.0.1:9000/ocpp --id CP-DC-01 --version 1.6 --connectors 2 \\
        --scenario session --power-kw 60 --minutes 80 --speed 3600 [--start 2026-01-05T07:20:00Z] [--password P]

Scenarios: ``session`` (plug in, authorize, start, charge, stop, unplug), ``fault`` (fault, ``--minutes`` later
recover), ``offline-replay`` (start, lose the connection, charge and stop offline, come back without a
BootNotification and replay), ``idle`` (boot, then heartbeat until Ctrl-C, reconnecting when the CSMS goes away).
Every message sent or received is one log line. Exit status: 0 when every call was answered, 1 when a call failed
or the CSMS could not be reached, 2 on bad arguments, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from websockets.exceptions import InvalidHandshake

from simulators.charger.clock import SimClock
from simulators.charger.records import Quirks, SimError
from simulators.charger.v16 import Sim16
from simulators.charger.v201 import Sim201

log = logging.getLogger("simulators.charger")

Sim = Sim16 | Sim201


@dataclass(frozen=True)
class Plan:
    """The knobs of a scenario."""

    connector: int = 1
    id_tag: str = "TAG-001"
    power_kw: float = 60.0
    minutes: float = 80.0
    sample_every_s: float = 60.0
    reason: str = "Local"
    error_code: str = "GroundFailure"
    heartbeat_s: float | None = None  # idle: None = the interval the BootNotification answer gave


async def _begin(sim: Sim, plan: Plan) -> None:
    await sim.plug_in(plan.connector)
    await sim.authorize(plan.connector, plan.id_tag)
    await sim.start_charging(plan.connector, plan.id_tag)


async def _end(sim: Sim, plan: Plan) -> None:
    await sim.charge(plan.connector, plan.power_kw, plan.minutes, plan.sample_every_s)
    await sim.stop_charging(plan.connector, plan.reason)
    await sim.unplug(plan.connector)


async def session(sim: Sim, plan: Plan, stop: asyncio.Event) -> None:
    """Plug in, authorize, start, charge, stop, unplug."""
    await _begin(sim, plan)
    await _end(sim, plan)


async def fault(sim: Sim, plan: Plan, stop: asyncio.Event) -> None:
    """Fault with ``error_code``, recover ``minutes`` of simulated time later."""
    await sim.fault(plan.connector, plan.error_code)
    await sim.clock.sleep(plan.minutes * 60)
    await sim.recover(plan.connector)


async def offline_replay(sim: Sim, plan: Plan, stop: asyncio.Event) -> None:
    """Start online, lose the connection, charge/stop/unplug offline, come back without a boot and replay."""
    await _begin(sim, plan)
    await sim.go_offline()
    await _end(sim, plan)
    await sim.come_back(boot=False)


async def idle(sim: Sim, plan: Plan, stop: asyncio.Event) -> None:
    """Heartbeat until ``stop`` is set; reconnect (with a boot) when the connection is gone."""
    interval = plan.heartbeat_s or float((sim.boot_answer or {}).get("interval") or 60)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(interval, 0.01))
            return
        if sim.online:
            await sim.heartbeat()
            continue
        try:
            await sim.come_back(boot=True)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            log.warning("%s: reconnect failed: %s", sim.identity, exc)


SCENARIOS: dict[str, Callable[[Sim, Plan, asyncio.Event], Awaitable[None]]] = {
    "session": session,
    "fault": fault,
    "offline-replay": offline_replay,
    "idle": idle,
}


async def run_scenario(sim: Sim, name: str, plan: Plan | None = None, stop: asyncio.Event | None = None) -> None:
    """Connect (with a BootNotification unless told otherwise), run the scenario, disconnect."""
    scenario = SCENARIOS[name]
    await sim.connect(boot=True)
    try:
        await scenario(sim, plan or Plan(), stop or asyncio.Event())
    finally:
        await sim.disconnect()


# ------------------------------------------------------------------------------------------------------ CLI

QUIRKS: dict[str, dict[str, object]] = {
    "energy-kwh": {"energy_kwh": True},
    "numbers-not-strings": {"numbers_not_strings": True},
    "zero-begin": {"zero_begin": True},
    "stop-below-start": {"stop_below_start": True},
    "final-zero": {"final_zero": True},
    "double-stop": {"double_stop": True},
    "stop-tx-minus-one": {"stop_transaction_id": -1},
    "ended-first": {"ended_first": 2},
    "drop-queued-statuses": {"drop_queued_statuses": True},
}


def _start_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-bridge-sim-charger", description="Simulated OCPP 1.6J / 2.0.1 charger.")
    p.add_argument("--url", required=True, help="the CSMS URL prefix, e.g. ws://127.0.0.1:9000/ocpp")
    p.add_argument("--id", help="charge point id, appended to --url (default: the last segment of --url)")
    p.add_argument("--version", choices=("1.6", "2.0.1"), default="1.6")
    p.add_argument("--connectors", type=int, default=2)
    p.add_argument("--scenario", choices=tuple(SCENARIOS), default="session")
    p.add_argument("--connector", type=int, default=1, help="the connector (2.0.1: EVSE) the scenario uses")
    p.add_argument("--id-tag", default="TAG-001")
    p.add_argument("--power-kw", type=float, default=60.0)
    p.add_argument("--minutes", type=float, default=80.0)
    p.add_argument("--sample-every", type=float, default=60.0, help="simulated seconds between meter samples")
    p.add_argument("--reason", default="Local", help="stop reason")
    p.add_argument("--error-code", default="GroundFailure", help="fault scenario: the 1.6 errorCode / techCode")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--start", type=_start_time, help="simulated start time, ISO 8601 (default: now)")
    p.add_argument("--password", help="HTTP Basic password (the username is the charge point id)")
    p.add_argument("--no-subprotocol", action="store_true", help="offer no websocket subprotocol at all")
    p.add_argument("--heartbeat", type=float, help="idle: heartbeat every S real seconds (default: as booted)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer")
    p.add_argument("--quirk", action="append", choices=tuple(QUIRKS), default=[], help="misbehave (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    return p


def build_sim(args: argparse.Namespace) -> Sim:
    url = f"{args.url.rstrip('/')}/{quote(args.id, safe='')}" if args.id else args.url
    flags: dict[str, object] = {}
    for name in args.quirk:
        flags.update(QUIRKS[name])
    cls = Sim16 if args.version == "1.6" else Sim201
    return cls(
        url,
        connectors=args.connectors,
        clock=SimClock(start=args.start, speed=args.speed),
        password=args.password,
        subprotocols=[] if args.no_subprotocol else None,
        quirks=Quirks(**flags),  # type: ignore[arg-type]
        response_timeout=args.timeout,
    )


def _plan(args: argparse.Namespace) -> Plan:
    return Plan(
        connector=args.connector,
        id_tag=args.id_tag,
        power_kw=args.power_kw,
        minutes=args.minutes,
        sample_every_s=args.sample_every,
        reason=args.reason,
        error_code=args.error_code,
        heartbeat_s=args.heartbeat,
    )


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)


async def _run(sim: Sim, name: str, plan: Plan) -> int:
    stop = asyncio.Event()
    _on_signals(stop)
    task = asyncio.create_task(run_scenario(sim, name, plan, stop))
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if stop.is_set() and name != "idle":
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        log.info("%s: interrupted", sim.identity)
        return 130
    failed = [a for a in sim.answers if not a.ok]
    log.info(
        "%s: %d messages sent, %d answered, %d failed, %d still queued",
        sim.identity,
        len(sim.sent),
        len(sim.answers) - len(failed),
        len(failed),
        len(sim.queue),
    )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s")
    try:
        sim = build_sim(args)
    except ValueError as exc:
        print(f"edge-bridge-sim-charger: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(sim, args.scenario, _plan(args)))
    except (OSError, TimeoutError, InvalidHandshake, SimError) as exc:
        print(f"edge-bridge-sim-charger: {sim.url}: {exc}", file=sys.stderr)
        return 1

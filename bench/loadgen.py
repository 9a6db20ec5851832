"""One load-generator process: OCPP 1.6J chargers on raw websockets, one outstanding CALL each, as firmware does.

``python -m bench.loadgen JOB_JSON`` drives the chargers of one job and prints one JSON line with what it measured
(``bench.suite`` starts several, so that the generator never limits the server it measures). Modes:

- ``saturate``: each charger sends its next CALL as soon as the previous is answered, for ``seconds``;
- ``paced``: together the chargers offer ``rate`` CALLs per second (each on its own fixed schedule);
- ``storm``: every charger connects at once and sends Boot, 3 StatusNotification and 10 queued MeterValues;
- ``idle``: every charger connects and boots, prints ``ready``, then stays connected for ``seconds``.

The mix of ``saturate`` and ``paced`` is a charging cycle of 20 CALLs: StatusNotification Preparing,
StartTransaction, Charging, 12 MeterValues with four measurands (60 %), Heartbeat, StopTransaction, Finishing and
Available. Everything is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CALL_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 60.0
BOOT = {"chargePointVendor": "edge-bridge bench", "chargePointModel": "BENCH-DC", "firmwareVersion": "1.0"}
MV_PER_CYCLE = 12


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    drops: int = 0
    answered: int = 0


class Charger:
    """One charger: ``call`` sends one CALL and waits for its answer (latency recorded in the window)."""

    def __init__(self, ws: ClientConnection, tally: Tally) -> None:
        self.ws, self.tally = ws, tally
        self.ids = itertools.count(1)
        self.register_wh = 1_000_000
        self.transaction_id = 0
        self.window: tuple[float, float] = (math.inf, math.inf)  # counted only inside a window

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        unique = str(next(self.ids))
        started = time.monotonic()
        await self.ws.send(json.dumps([2, unique, action, payload]))
        async with asyncio.timeout(CALL_TIMEOUT_S):
            while True:
                reply = json.loads(await self.ws.recv())
                if reply[1] == unique:
                    break
        if self.window[0] <= started < self.window[1]:
            self.tally.answered += 1
            self.tally.latencies_ms.append((time.monotonic() - started) * 1000)
        if reply[0] != 3:
            self.tally.errors += 1
            return {}
        answer: dict[str, Any] = reply[2]
        return answer

    async def status(self, connector: int, status: str) -> None:
        payload = {"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": now_iso()}
        await self.call("StatusNotification", payload)

    async def meter_values(self) -> None:
        self.register_wh += 250
        sampled = [
            {"value": str(self.register_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "60000", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "150.0", "measurand": "Current.Import", "unit": "A"},
            {"value": "400.0", "measurand": "Voltage", "unit": "V"},
        ]
        meter = [{"timestamp": now_iso(), "sampledValue": sampled}]
        await self.call("MeterValues", {"connectorId": 1, "transactionId": self.transaction_id, "meterValue": meter})

    def cycle(self) -> list[tuple[str, Any]]:
        """The 20 steps of one charging cycle, as (kind, argument)."""
        return [
            ("status", "Preparing"),
            ("start", None),
            ("status", "Charging"),
            *[("meter", None)] * MV_PER_CYCLE,
            ("heartbeat", None),
            ("stop", None),
            ("status", "Finishing"),
            ("status", "Available"),
        ]

    async def step(self, kind: str, arg: Any) -> None:
        if kind == "status":
            await self.status(1, arg)
        elif kind == "meter":
            await self.meter_values()
        elif kind == "heartbeat":
            await self.call("Heartbeat", {})
        elif kind == "start":
            start = {"connectorId": 1, "idTag": "BENCH", "meterStart": self.register_wh, "timestamp": now_iso()}
            self.transaction_id = int((await self.call("StartTransaction", start)).get("transactionId", 0))
        else:
            stop = {"transactionId": self.transaction_id, "meterStop": self.register_wh, "timestamp": now_iso()}
            await self.call("StopTransaction", {**stop, "reason": "Local"})


async def open_charger(url: str, tally: Tally) -> Charger:
    ws = await connect(url, subprotocols=["ocpp1.6"], open_timeout=CONNECT_TIMEOUT_S, ping_interval=None)
    return Charger(ws, tally)


async def booted(url: str, tally: Tally) -> Charger:
    charger = await open_charger(url, tally)
    await charger.call("BootNotification", BOOT)
    await charger.status(1, "Available")
    return charger


async def saturate(charger: Charger, deadline: float) -> None:
    while time.monotonic() < deadline:
        for kind, arg in charger.cycle():
            if time.monotonic() >= deadline:
                return
            await charger.step(kind, arg)


async def paced(charger: Charger, first: float, interval: float, deadline: float) -> None:
    moments = itertools.count()
    while True:
        for kind, arg in charger.cycle():
            due = first + next(moments) * interval
            if due >= deadline:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await charger.step(kind, arg)


async def storm_one(url: str, tally: Tally, start: float) -> float:
    """Boot + 3 StatusNotification + 10 MeterValues; the time of the last answer since ``start`` (-1: dropped)."""
    try:
        charger = await open_charger(url, tally)
        await charger.call("BootNotification", BOOT)
        for connector, status in ((0, "Available"), (1, "Available"), (1, "Preparing")):
            await charger.status(connector, status)
        for _ in range(10):
            await charger.meter_values()
        await charger.ws.close()
    except Exception:
        tally.drops += 1
        return -1.0
    return time.monotonic() - start


async def run(job: dict[str, Any]) -> dict[str, Any]:
    tally = Tally()
    urls = [job["url"] + name for name in job["ids"]]
    mode, seconds = job["mode"], float(job["seconds"])
    result: dict[str, Any] = {"mode": mode}
    if mode == "storm":
        await asyncio.sleep(max(0.0, job["start_at"] - time.time()))
        start = time.monotonic()
        finished = await asyncio.gather(*(storm_one(url, tally, start) for url in urls))
        result["last_answer_s"] = max(finished)
    else:
        chargers = await asyncio.gather(*(booted(url, tally) for url in urls))
        if mode == "idle":
            print("ready", flush=True)
            await asyncio.sleep(seconds)
        else:
            await drive(mode, chargers, job, seconds)
            result["window_s"] = seconds
        await asyncio.gather(*(c.ws.close() for c in chargers))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {**result, **tally.__dict__, "cpu_s": usage.ru_utime + usage.ru_stime}


async def drive(mode: str, chargers: list[Charger], job: dict[str, Any], seconds: float) -> None:
    await asyncio.sleep(max(0.0, job["start_at"] - time.time()))
    begin = time.monotonic()
    deadline = begin + seconds
    for charger in chargers:
        charger.window = (begin, deadline)
    if mode == "saturate":
        await asyncio.gather(*(saturate(c, deadline) for c in chargers))
        return
    interval = len(chargers) / float(job["rate"])  # each charger's own period
    starts = [begin + interval * n / len(chargers) for n in range(len(chargers))]
    await asyncio.gather(*(paced(c, s, interval, deadline) for c, s in zip(chargers, starts, strict=True)))


def main() -> None:
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))), flush=True)


if __name__ == "__main__":
    main()

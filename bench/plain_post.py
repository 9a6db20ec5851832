"""The drain baseline: plain signed, encrypted aiohttp POSTs, as a user without an outbox would send them.

``python -m bench.plain_post JOB_FILE`` fetches one token, then POSTs the job's notification_stationStatus pushes
with ``concurrency`` in flight (one connector's pushes in order, as the daemon must), checks each answer (signature,
decryption, ``Ret`` and ``Status``) and prints one JSON line: pushes accepted, and the seconds and CPU seconds of the
drain (its start-up not counted). Nothing is stored. The envelope comes from the project's codec, the one piece such
a user would need as well.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from edge_bridge.config import load_config
from edge_bridge.domain.wiretime import format_timestamp
from edge_bridge.provincial import codec
from edge_bridge.timeutil import utc_now

HEADERS = {"Content-Type": "application/json;charset=utf-8"}


class Poster:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, config_path: Path) -> None:
        config = load_config(config_path)
        self.session, self.base_url = session, base_url
        self.operator_id, self.secrets, self.tz = config.operator.id, config.province.secrets(), config.tz
        self.seq = codec.SeqCounter()
        self.token = ""

    async def post(self, interface: str, payload: bytes) -> dict[str, Any] | None:
        now = utc_now()
        envelope = codec.encode_request_json(
            payload,
            operator_id=self.operator_id,
            secrets=self.secrets,
            timestamp=format_timestamp(now, self.tz),
            seq=self.seq.next(now),
        )
        headers = {**HEADERS, "Authorization": f"Bearer {self.token}"} if self.token else HEADERS
        body = envelope.to_json()
        async with self.session.post(self.base_url + interface, data=body, headers=headers) as reply:
            answer = codec.parse_response(await reply.read())
        return codec.open_response(answer, self.secrets) if answer.ret == codec.RET_OK else None

    async def fetch_token(self) -> None:
        payload = {"OperatorID": self.operator_id, "OperatorSecret": self.secrets.operator_secret}
        data = await self.post("query_token", codec.dumps(payload))
        self.token = str((data or {})["AccessToken"])


def lanes(job: dict[str, Any]) -> Iterator[list[bytes]]:
    """Per connector, its pushes in order (the same payloads the daemon's backlog holds)."""
    for lane in job["lanes"]:
        yield [payload.encode("utf-8") for payload in lane]


async def run(job: dict[str, Any]) -> dict[str, Any]:
    queue = list(lanes(job))
    accepted = 0

    async def worker(poster: Poster) -> None:
        nonlocal accepted
        while queue:
            for payload in queue.pop():
                data = await poster.post("notification_stationStatus", payload)
                accepted += data is not None and data.get("Status") == 0

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        poster = Poster(session, job["url"], Path(job["config"]))
        await poster.fetch_token()
        started, cpu_before = time.monotonic(), cpu_seconds()
        await asyncio.gather(*(worker(poster) for _ in range(job["concurrency"])))
        seconds, cpu = time.monotonic() - started, cpu_seconds() - cpu_before
    return {"accepted": accepted, "seconds": seconds, "cpu_s": cpu}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    print(json.dumps(asyncio.run(run(job))), flush=True)


if __name__ == "__main__":
    main()

"""The mock province as a process of its own for the benchmark: quiet (no line per request), and on SIGTERM one
JSON line with what it accepted per interface, how many problems it saw and when the last accepted request came.

``python -m bench.province_proc --config PATH`` prints ``listening URL`` once it listens on 127.0.0.1 port 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

from edge_bridge.config import load_config
from simulators.province import MockProvince


async def serve(config_path: Path) -> None:
    province = MockProvince.from_config(load_config(config_path), max_skew_s=None)
    print(f"listening {await province.start()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await province.stop()
    accepted = Counter(r.interface for r in province.received if r.accepted)
    arrivals = [r.at.timestamp() for r in province.received if r.accepted]
    summary = {
        "accepted": dict(accepted),
        "received": len(province.received),
        "problems": len(province.problems()),
        "last_accepted_at": max(arrivals, default=0.0),  # when the last accepted request arrived (Unix time)
    }
    print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    asyncio.run(serve(parser.parse_args().config))


if __name__ == "__main__":
    main()

"""``make demo``: the daemon and the mock province together on one machine, and a summary of what crossed the wire.

Everything runs in this process on 127.0.0.1 with ephemeral ports and a throw-away database, so the demo never
touches ``var/`` or a daemon that is already running. The province first goes down for a moment (the daemon
retries), then comes back and accepts the station info; then the province pulls all five queries.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_bridge.app import App
from edge_bridge.config import Config, load_config
from edge_bridge.errors import ConfigError
from edge_bridge.log import setup_logging
from edge_bridge.timeutil import utc_now
from simulators.province import Fault, MockProvince, pretty_json, pull

OUTAGE_S = 1.5


def demo_config(config: Config, province_url: str, storage: Path) -> Config:
    """The operator's config, pointed at the mock province, with local ports and a temporary store."""
    province = config.province.model_copy(update={"base_url": province_url, "retry_initial_s": 0.2, "retry_max_s": 1})
    return config.model_copy(
        update={
            "province": province,
            "storage": config.storage.model_copy(update={"path": storage}),
            "pull_api": config.pull_api.model_copy(update={"listen": "127.0.0.1:0"}),
            "ocpp": config.ocpp.model_copy(update={"listen": "127.0.0.1:0"}),
        }
    )


def queries(config: Config) -> list[tuple[str, dict[str, Any]]]:
    station = config.stations[0]
    connector = station.chargers[0].connectors[0].connector_id
    today = utc_now().astimezone(config.tz).strftime("%Y-%m-%d")
    return [
        ("query_stations_info", {"PageNo": 1, "PageSize": 10}),
        ("query_station_status", {"StationIDs": [s.station_id for s in config.stations]}),
        ("query_station_stats", {"StationID": station.station_id, "StartTime": today, "EndTime": today}),
        (
            "query_equip_business_policy",
            {"EquipBizSeq": config.province.operator_id + "0" * 18, "ConnectorID": connector},
        ),
    ]


async def run_demo(config: Config, out: Any) -> int:
    province = MockProvince.from_config(config)
    with tempfile.TemporaryDirectory(prefix="edge-bridge-demo-") as tmp:
        url = await province.start()
        province.inject(Fault("down", seconds=OUTAGE_S))
        local = demo_config(config, url, Path(tmp) / "demo.db")
        stop, app = asyncio.Event(), App(local)
        task = asyncio.create_task(app.run(stop))
        try:
            await asyncio.wait_for(_pushes_accepted(app, province, len(local.stations)), 30)
            answers = await _pull_all(local, app.pull_port)
        finally:
            stop.set()
            await task
            await province.stop()
    _summary(out, province, answers)
    return 0 if not province.problems() else 1


async def _pushes_accepted(app: App, province: MockProvince, stations: int) -> None:
    await app.started.wait()
    while len(province.accepted("notification_stationInfo")) < stations:  # noqa: ASYNC110 - the mock has no event
        await asyncio.sleep(0.1)


async def _pull_all(config: Config, port: int | None) -> list[tuple[str, int, Any]]:
    base = f"http://127.0.0.1:{port}{config.pull_api.path_prefix}"
    results = []
    for interface, data in queries(config):
        ret, _msg, answer = await pull(
            base,
            interface,
            data,
            province_id=config.province.operator_id,
            secrets=config.province.secrets(),
            tz=config.tz,
        )
        results.append((interface, ret, answer))
    return results


def _summary(out: Any, province: MockProvince, answers: list[tuple[str, int, Any]]) -> None:
    print("\n== what the province received (mock province verdicts)", file=out)
    for r in province.received:
        verdict = "accepted" if r.accepted else f"refused (Ret {r.ret}, HTTP {r.http_status})"
        print(
            f"  {r.at:%H:%M:%S} {r.interface:28} {verdict}{'  ' + '; '.join(r.problems) if r.problems else ''}",
            file=out,
        )
    print(f"  tokens issued: {province.tokens_issued}", file=out)
    for interface, ret, answer in answers:
        print(f"\n== pull {interface}: Ret {ret}", file=out)
        print(pretty_json(answer), file=out)
    problems = province.problems()
    print(f"\n== validation problems found by the mock province: {len(problems)}", file=out)
    for problem in problems:
        print(f"  {problem}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-bridge-demo", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=Path("config.example.toml"))
    args = parser.parse_args(argv)
    setup_logging("warning", "text")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_demo(config, sys.stdout))


if __name__ == "__main__":
    sys.exit(main())

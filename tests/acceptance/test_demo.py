"""``make demo`` keeps working: it runs the whole site in-process and its summary shows what it promises."""

from __future__ import annotations

import io
import re

from edge_bridge.config import load_config
from simulators.demo import run_demo
from tests.conftest import REPO


async def test_the_demo_ends_with_accepted_orders_pushes_pulls_and_no_problems() -> None:
    out = io.StringIO()
    assert await run_demo(load_config(REPO / "config.example.toml"), out) == 0
    summary = out.getvalue()
    assert "== orders accepted by the province: 3" in summary
    assert re.search(r"80\.00 kWh .* = 102\.40 yuan {2}StopReason 0", summary)  # 15:20-16:40 at 60 kW
    assert re.search(r"28\.00 kWh .* = 33\.53 yuan {2}StopReason 0", summary)  # 21:00-01:00 at 7 kW
    assert re.search(r"30\.00 kWh .* = 33\.60 yuan {2}StopReason 4", summary)  # EVDisconnected
    assert "370202000001001B: 1 → 255 → 1" in summary
    assert "code 4 raised" in summary and "code 4 recovered" in summary
    for interface in (
        "query_stations_info",
        "query_station_status",
        "query_station_stats",
        "query_equip_business_policy",
    ):
        assert f"== pull {interface}: Ret 0" in summary
    assert summary.rstrip().endswith("== validation problems found by the mock province: 0")

"""Issue 9 acceptance: ``orders export`` of a demo run lists every order the mock province accepted, with the same
money; ``orders repush`` of one of them is accepted again with the identical StartChargeSeq.

The demo's chargers (``simulators/demo.py``: a 1.6 DC session across the 16:00 tariff edge, a 2.0.1 AC session
across midnight, one more DC session) charge against the daemon. While it runs, ``orders repush`` runs as the real
``edge-bridge`` console script, in another process, and ``orders export`` in-process (in a thread), for speed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.cli import main
from edge_bridge.provincial import uploader as uploader_module
from simulators.demo import Timeline, ac_charger, dc_charger
from simulators.province import ORDER, MockProvince
from tests.acceptance.conftest import StartSite
from tests.conftest import eventually

SCRIPT = Path(sys.executable).with_name("edge-bridge")


async def edge_bridge(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT), *args]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done


async def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """``edge-bridge ARGS`` by ``main`` in a thread (it runs its own event loop); its stdout. The root logger is
    put back afterwards (the command sets it up as a process would)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        capsys.readouterr()
        assert await asyncio.to_thread(main, list(args)) == 0
        return capsys.readouterr().out
    finally:
        root.handlers[:], root.level = handlers, level


async def test_export_lists_every_accepted_order_and_a_repush_is_accepted_again(
    start_site: StartSite,
    province: MockProvince,
    write_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(uploader_module, "IDLE_RECHECK_S", 0.2)  # in service: rows of other processes within 60 s
    site = await start_site()
    when = Timeline(site.config.tz)
    base = f"ws://127.0.0.1:{site.daemon.app.ocpp_port}{site.config.ocpp.path_prefix}"
    await asyncio.gather(dc_charger(base, when), ac_charger(base, when))
    await site.delivered()
    accepted = province.accepted(ORDER)
    assert len(accepted) == 3

    config = write_config(lambda raw: raw["province"].update(base_url=province.url), name="cli.toml")
    seq = accepted[0]["StartChargeSeq"]
    repushed = await edge_bridge("orders", "repush", seq, "--config", str(config))
    assert f"queued {seq}" in repushed.stdout
    resent = lambda: [r for r in province.received if r.interface == ORDER and r.data["StartChargeSeq"] == seq]  # noqa: E731
    await eventually(lambda: len(resent()) == 2, "the repushed order to reach the province")
    again = resent()[1]
    assert again.accepted and again.duplicate and again.data == resent()[0].data  # same seq, same content
    await site.delivered()

    # In-process only now: opening the store here (db_file.vet_header opens and closes the file) drops this
    # process's POSIX locks on it, and a later command in another process could then take the WAL from the daemon.
    first, last = (str(day) for day in when.days())
    exported = await in_process(capsys, "orders", "export", "--from", first, "--to", last, "--config", str(config))
    rows = list(csv.DictReader(io.StringIO(exported.removeprefix("\ufeff"), newline="")))
    assert sorted(_figures(r) for r in rows) == sorted(_figures(o) for o in accepted)
    assert {r["TotalMoney"] for r in rows} == {"102.40", "33.53", "33.60"}  # test_demo.py's figures
    assert {r["Verdict"] for r in rows} == {"accepted"}  # the repushed one accepted again
    assert province.problems() == []


def _figures(order: dict[str, Any]) -> tuple[str, str, Decimal, Decimal]:
    """What reconciliation matches: the order, its connector, its energy and its money (Decimal: CSV text or JSON)."""
    return order["StartChargeSeq"], order["ConnectorID"], Decimal(order["TotalPower"]), Decimal(order["TotalMoney"])

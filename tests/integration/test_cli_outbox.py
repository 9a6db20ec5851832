"""``edge-bridge outbox list|show ID|requeue|purge``: the command in-process (``main`` on a thread, as the shell runs
it, on the config's real SQLite file) and once as the console script.

Rows get their answers from the real uploader and client against the mock province, or from the outbox's marks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.cli import main
from edge_bridge.config import Config, load_config
from edge_bridge.provincial.client import ProvinceClient
from edge_bridge.provincial.uploader import RetryPolicy, Uploader, drain
from edge_bridge.store.db import Database, to_db
from edge_bridge.store.outbox import Outbox
from simulators.province import Fault, MockProvince
from tests.conftest import Opener, eventually, insert, query

STATUS = "notification_stationStatus"
CONNECTOR = "370202000001001A"
PAYLOAD = {"ConnectorStatusInfo": {"ConnectorID": CONNECTOR, "Status": 3, "ParkStatus": 0, "LockStatus": 0}}
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        doc = json.loads(self.out)
        assert isinstance(doc, dict)
        return doc


Cli = Callable[..., Awaitable[Ran]]


@pytest.fixture
def path(write_config: Callable[..., Path]) -> Path:
    return write_config()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``main`` sets the root logger up as the daemon's; put pytest's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def cli(path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None) -> Cli:
    """``await cli("outbox", "show", "1")``: ``edge-bridge ... --config PATH`` on a thread (``main`` runs its own
    event loop), with what it printed."""

    async def run(*args: str) -> Ran:
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*args, "--config", str(path)])
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


async def deliver(config: Config, db: Database, province: MockProvince) -> int:
    """One status push through the real uploader and client to ``province`` until it is sent or dead; its row."""
    outbox = Outbox(db)
    text = json.dumps(PAYLOAD, ensure_ascii=False)
    row_id = await db.write(lambda tx: outbox.enqueue(tx, STATUS, CONNECTOR, text, T0))
    secrets = config.province.secrets()
    client = ProvinceClient(base_url=province.url, operator_id=config.operator.id, secrets=secrets, tz=config.tz)
    uploader = Uploader(db, outbox, client.push, policy=RetryPolicy(initial_s=0.02, max_s=0.1, jitter=0.0))

    async def settled() -> bool:
        counts = await outbox.counts()
        return counts["sent"] + counts["dead"] == 1

    task = asyncio.create_task(uploader.run())
    try:
        await eventually(settled, "the push sent or dead-lettered", timeout_s=10)
    finally:
        await drain(uploader, task, 2.0)
        await client.close()
    return row_id


async def test_show_prints_the_payload_and_every_answer_in_order(
    path: Path, province: MockProvince, opened: Opener, cli: Cli
) -> None:
    config = load_config(path)
    province.inject(Fault("ret", STATUS, count=1, ret=-1))
    row_id = await deliver(config, await opened(config.storage.path), province)
    ran = await cli("outbox", "show", str(row_id))
    assert (ran.code, ran.err) == (0, "")
    lines = ran.out.splitlines()
    assert lines[0] == f"outbox row {row_id}  {STATUS}  key {CONNECTOR}"
    assert "  state        sent after 2 attempt(s)" in lines
    payload_at = lines.index("payload (the Data pushed, before encryption):")
    assert json.loads("\n".join(lines[payload_at + 1 : lines.index("", payload_at)])) == PAYLOAD
    answers = lines[lines.index("answers (2 kept, oldest first):") + 1 :]
    assert len(answers) == 2
    assert answers[0].split()[:5] == ["1", answers[0].split()[1], "transient", "Ret", "-1"]
    assert "Ret -1 (系统繁忙" in answers[0]  # the province's Msg, as it gave it
    assert answers[1].split()[2:] == ["accepted", "Ret", "0", "Data", '{"Status":0}']


async def test_show_json(path: Path, province: MockProvince, opened: Opener, cli: Cli) -> None:
    config = load_config(path)
    province.inject(Fault("http", STATUS, count=1, status=502))
    row_id = await deliver(config, await opened(config.storage.path), province)
    ran = await cli("outbox", "show", str(row_id), "--json")
    assert ran.code == 0
    doc = ran.json()
    assert doc["payload"] == PAYLOAD and doc["order"] is None and doc["answers_not_kept"] == 0
    row = doc["row"]
    assert (row["id"], row["state"], row["attempts"], row["response"]) == (row_id, "sent", 2, '{"Status":0}')
    assert row["created_at"] == "2026-01-01T08:00:00Z"
    assert [(a["seq"], a["outcome"], a["ret"], a["reason"], a["data"]) for a in doc["answers"]] == [
        (1, "transient", None, "HTTP 502", None),
        (2, "accepted", 0, "", '{"Status":0}'),
    ]


async def test_show_of_an_unknown_row_names_it(path: Path, cli: Cli) -> None:
    ran = await cli("outbox", "show", "4711")
    assert (ran.code, ran.out, ran.err) == (1, "", "error: no outbox row 4711 (never queued, or purged)\n")


async def test_show_marks_the_answers_not_kept(path: Path, opened: Opener, cli: Cli) -> None:
    db = await opened(load_config(path).storage.path)
    outbox = Outbox(db)
    row_id = await db.write(lambda tx: outbox.enqueue(tx, STATUS, CONNECTOR, "{}", T0))
    for n in range(45):
        await outbox.mark_retry(row_id, T0 + timedelta(seconds=n), T0, f"HTTP 503 #{n + 1}")
    ran = await cli("outbox", "show", str(row_id))
    assert ran.code == 0
    assert "answers (40 kept, oldest first):" in ran.out and "  ... 5 answer(s) not kept ...\n" in ran.out
    assert ran.out.index("HTTP 503 #20") < ran.out.index("not kept") < ran.out.index("HTTP 503 #26")
    ran = await cli("outbox", "show", str(row_id), "--json")
    assert ran.json()["answers_not_kept"] == 5


async def test_list_json(path: Path, opened: Opener, cli: Cli) -> None:
    db = await opened(load_config(path).storage.path)
    outbox = Outbox(db)
    ids = await db.write(lambda tx: [outbox.enqueue(tx, STATUS, key, "{}", T0) for key in "ABC"])
    await outbox.mark_dead(ids[0], T0, "Ret 4004 (数据错误)", ret=4004)
    await outbox.mark_sent(ids[1], T0 + timedelta(seconds=1), None)
    ran = await cli("outbox", "list", "--json")
    assert ran.code == 0
    doc = ran.json()
    assert doc["counts"] == {"pending": 1, "sent": 1, "dead": 1}
    rows = doc["rows"]
    assert [r["id"] for r in rows] == ids[::-1]
    assert rows[2] | {"updated_at": None} == {
        "id": ids[0],
        "interface": STATUS,
        "key": "A",
        "state": "dead",
        "attempts": 1,
        "created_at": "2026-01-01T08:00:00Z",
        "next_attempt_at": None,
        "sent_at": None,
        "updated_at": None,
        "last_error": "Ret 4004 (数据错误)",
    }
    ran = await cli("outbox", "list", "--state", "dead", "--json")
    assert [r["id"] for r in ran.json()["rows"]] == [ids[0]]


async def dead_order(db: Database, seq: str) -> tuple[int, int]:
    """A finished session whose order (StartChargeSeq ``seq``) the province refused: (session, outbox row)."""
    outbox = Outbox(db)
    row_id = await db.write(lambda tx: outbox.enqueue(tx, "notification_orderInfo", "C1", '{"TotalMoney": 1}', T0))
    session_id = await insert(
        db,
        "INSERT INTO sessions (ocpp_id, evse, connector, version, transaction_ref, state, started_at,"
        " started_received_at, last_received_at, ended_at, order_state, start_charge_seq, order_outbox_id)"
        " VALUES ('CP-DC-01', 1, 1, '1.6', ?1, 'finished', ?2, ?2, ?2, ?2, 'queued', ?1, ?3)",
        (seq, to_db(T0), row_id),
    )
    await outbox.mark_dead(row_id, T0, "disputed (ConfirmResult 1)", ret=0, data='{"ConfirmResult":1}')
    return session_id, row_id


async def test_purge_of_a_dead_order_says_it_was_not_delivered_and_status_still_reads(
    path: Path, opened: Opener, cli: Cli
) -> None:
    db = await opened(load_config(path).storage.path)
    session_id, row_id = await dead_order(db, "SEQ0001")
    ran = await cli("outbox", "purge", "--id", str(row_id))
    assert (ran.code, ran.err) == (0, "")
    assert ran.out.splitlines() == [
        f"purged 1 dead-lettered row(s): {row_id}",
        f"row {row_id} carried the order of session #{session_id} (StartChargeSeq SEQ0001): that order was NOT "
        "delivered to the province; `edge-bridge orders repush SEQ0001` sends it again",
    ]
    assert await query(db, "SELECT * FROM push_answers") == [] and await Outbox(db).rows() == []
    for command in (("status",), ("status", "--json"), ("outbox", "show", str(row_id))):
        ran = await cli(*command)
        assert ran.code == (1 if command[0] == "outbox" else 0), command
    status = json.loads((await cli("status", "--json")).out)["orders"]
    assert {"state": "queued", "outbox_state": "purged", "count": 1} in status["counts"]
    (problem,) = status["problems"]  # still a problem to look at: it never reached the province
    assert (problem["start_charge_seq"], problem["reason"]) == ("SEQ0001", "its dead letter was purged: not delivered")


async def test_purge_all_dead_json(path: Path, opened: Opener, cli: Cli) -> None:
    db = await opened(load_config(path).storage.path)
    session_id, row_id = await dead_order(db, "SEQ0002")
    outbox = Outbox(db)
    dead, pending = await db.write(lambda tx: [outbox.enqueue(tx, STATUS, key, "{}", T0) for key in "AB"])
    await outbox.mark_dead(dead, T0, "Ret 4004", ret=4004)
    ran = await cli("outbox", "purge", "--all-dead", "--json")
    assert ran.code == 0
    assert ran.json() == {
        "purged": [row_id, dead],
        "undelivered_orders": [{"outbox_id": row_id, "session_id": session_id, "start_charge_seq": "SEQ0002"}],
    }
    assert [row.id for row in await outbox.rows()] == [pending]


async def test_purge_refuses_rows_that_are_not_dead_and_purges_nothing(path: Path, opened: Opener, cli: Cli) -> None:
    db = await opened(load_config(path).storage.path)
    outbox = Outbox(db)
    dead, pending = await db.write(lambda tx: [outbox.enqueue(tx, STATUS, key, "{}", T0) for key in "AB"])
    await outbox.mark_dead(dead, T0, "Ret 4004", ret=4004)
    ran = await cli("outbox", "purge", "--id", str(dead), "--id", str(pending), "--id", "999")
    assert (ran.code, ran.out) == (1, "")
    assert ran.err == (
        f"error: nothing purged: row {pending} is pending, row 999 does not exist; "
        "only dead-lettered rows can be purged\n"
    )
    assert sorted(row.id for row in await outbox.rows()) == [dead, pending]


@pytest.mark.parametrize(
    "args",
    [["purge"], ["purge", "--id", "1", "--all-dead"], ["requeue"], ["show"], ["show", "0"], ["list", "--limit", "x"]],
)
def test_wrong_arguments_exit_2(args: list[str], path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["outbox", *args, "--config", str(path)])
    assert exited.value.code == 2 and "usage: edge-bridge outbox" in capsys.readouterr().err


async def test_requeue_then_list(path: Path, opened: Opener, cli: Cli) -> None:
    db = await opened(load_config(path).storage.path)
    outbox = Outbox(db)
    (dead,) = await db.write(lambda tx: [outbox.enqueue(tx, STATUS, "A", "{}", T0)])
    await outbox.mark_dead(dead, T0, "Ret 4004", ret=4004)
    ran = await cli("outbox", "requeue", "--id", str(dead))
    assert ran.code == 0 and ran.out.startswith("requeued 1 row(s)")
    ran = await cli("outbox", "list")
    assert ran.out.splitlines()[-1] == "dead=0  pending=1  sent=0"


def test_the_console_script(path: Path) -> None:
    script = Path(sys.executable).with_name("edge-bridge")
    helped = subprocess.run([script, "outbox", "purge", "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--all-dead" in helped.stdout and "Exit codes: 0 purged" in helped.stdout
    done = subprocess.run(
        [script, "outbox", "show", "7", "--json", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "error: no outbox row 7 (never queued, or purged)\n")
    done = subprocess.run(
        [script, "outbox", "list", "--json", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and json.loads(done.stdout) == {
        "rows": [],
        "counts": {"pending": 0, "sent": 0, "dead": 0},
    }


@pytest.mark.parametrize("action", ["list", "show", "requeue", "purge"])
def test_each_action_documents_its_exit_codes(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["outbox", action, "--help"])
    assert exited.value.code == 0 and "Exit codes: 0 " in capsys.readouterr().out

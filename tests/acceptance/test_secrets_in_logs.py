"""Acceptance: no secret leaves the daemon (issue 8, item 6).

The daemon runs as a real child process at debug level with JSON logs and ``[province] trace_wire`` on (every push and
pull logged decrypted), its pushes going to the strict mock province.
A 1.6 and a 2.0.1 simulated charger authenticate with Basic passwords and charge; pushes fail (HTTP 503, Ret -1, a
permanent Ret 4004, a forged answer with a wrong Sig); the province expires its tokens, so the daemon fetches a new
one; the province pulls every interface with a token we issued; someone tries a wrong charger password, no password,
a wrong OperatorSecret, a wrong pull token and a wrong signature. Then every log line, the output of every CLI command
(``check-config``, ``status``, ``outbox list``), every frame the chargers received (CALLERRORs included), every HTTP
answer of the pull API (raw and decrypted) and of the refused handshakes, and the database file itself are searched
for the four provincial secrets, both charger passwords and every token issued by either side, as text, Base64 and
hex (and the Basic credentials as Base64). Any hit fails the test and names where it was found.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets as random_secrets
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from websockets.exceptions import InvalidStatus

from edge_bridge.domain.wiretime import format_timestamp
from edge_bridge.provincial.codec import (
    SeqCounter,
    encode_request,
    open_response,
    open_response_text,
    parse_response,
)
from edge_bridge.provincial.crypto import Secrets
from edge_bridge.timeutil import utc_now
from simulators.charger import Sim16, Sim201
from simulators.province import Fault, MockProvince
from tests.acceptance.conftest import Store, sim_clock
from tests.conftest import eventually, example_raw
from tests.daemon_process import DaemonProcess, daemon_on_fixed_ports

DC, AC = "CP-DC-01", "CP-AC-01"
SECRET_KEYS = ("operator_secret", "data_secret", "data_secret_iv", "sig_secret")
PULLS = ("query_stations_info", "query_station_status", "query_station_stats", "query_equip_business_policy")
CLI_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 30.0


def random_secret() -> str:
    """16 characters, as the protocol wants, different in every run (so no hit is a coincidence)."""
    return random_secrets.token_urlsafe(12)


@dataclass
class Haystack:
    """Everything the daemon showed to anyone, by where it was seen."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, text: str | bytes | bytearray) -> None:
        self.texts[where] = text if isinstance(text, str) else bytes(text).decode("utf-8", "replace")

    def hits(self, needles: dict[str, str]) -> list[str]:
        return [
            f"{what} found in {where}: {line.strip()[:300]}"
            for what, needle in needles.items()
            for where, text in self.texts.items()
            for line in text.splitlines()
            if needle in line
        ]


def encodings(name: str, value: str) -> dict[str, str]:
    """The forms in which ``value`` could leak: as is, Base64 (both alphabets), hex (both cases)."""
    raw = value.encode("utf-8")
    return {
        name: value,
        f"{name} (base64)": base64.b64encode(raw).decode().rstrip("="),
        f"{name} (urlsafe base64)": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        f"{name} (hex)": raw.hex(),
        f"{name} (HEX)": raw.hex().upper(),
    }


@dataclass
class Puller:
    """The province's side of the pull API, keeping every raw answer body and its decrypted Data."""

    base: str
    province_id: str
    secrets: Secrets
    tz: ZoneInfo
    seen: Haystack
    seq: SeqCounter = field(default_factory=SeqCounter)

    def envelope(self, data: Any, sig: Callable[[str], str] = str) -> bytes:
        now = utc_now()
        envelope = encode_request(
            data,
            operator_id=self.province_id,
            secrets=self.secrets,
            timestamp=format_timestamp(now, self.tz),
            seq=self.seq.next(now),
        ).as_body()
        envelope["Sig"] = sig(envelope["Sig"])
        return json.dumps(envelope).encode()

    async def post(
        self, interface: str, data: Any, token: str | None = None, *, sig: Callable[[str], str] = str
    ) -> tuple[int, dict[str, Any] | None]:
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.base + interface, data=self.envelope(data, sig), headers=headers) as resp,
        ):
            return self.answer(interface, await resp.read())

    async def post_raw_token(self, interface: str, data: Any, token: bytes) -> tuple[int, dict[str, Any] | None]:
        """A Bearer token of any bytes (not UTF-8, say), over a plain socket."""
        url = urlsplit(self.base + interface)
        body = self.envelope(data)
        head = f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(head.encode() + b"Authorization: Bearer " + token + b"\r\n\r\n" + body)
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        return self.answer(interface, answer.split(b"\r\n\r\n", 1)[1])

    def answer(self, interface: str, raw: bytes) -> tuple[int, dict[str, Any] | None]:
        where = f"pull answer {len(self.seen.texts)} ({interface})"
        self.seen.add(where, raw)
        response = parse_response(raw)
        answer = open_response(response, self.secrets)
        text = open_response_text(response, self.secrets) or ""
        if interface == "query_token" and answer and answer.get("AccessToken"):  # where a token is meant to be
            text = text.replace(answer["AccessToken"], "<the token issued>")
        self.seen.add(where + " decrypted", f"{response.msg}\n{text}")
        return response.ret, answer


def recording_tokens(issued: list[str]) -> Callable[[], str]:
    def new_token() -> str:
        issued.append(random_secrets.token_urlsafe(32))
        return issued[-1]

    return new_token


@pytest.fixture
async def province_tokens() -> list[str]:
    return []


@pytest.fixture
async def strict_province(province_tokens: list[str]) -> Any:
    """The mock province with secrets of this run only, recording every token it issues."""
    raw = example_raw()
    secrets = Secrets(*(random_secret() for _ in SECRET_KEYS))
    mock = MockProvince(
        province_id=raw["province"]["operator_id"],
        operator_id=raw["operator"]["operator_id"],
        secrets=secrets,
        tz=ZoneInfo(raw["site"]["timezone"]),
        path_prefix="/evcsV2/trade/",
        new_token=recording_tokens(province_tokens),
    )
    await mock.start()
    yield mock
    await mock.stop()


@pytest.fixture
def passwords() -> dict[str, str]:
    return {DC: random_secret() + "dc", AC: random_secret() + "ac"}


@pytest.fixture
def running(
    write_config: Callable[..., Path], tmp_path: Path, strict_province: MockProvince, passwords: dict[str, str]
) -> Iterator[tuple[DaemonProcess, str]]:
    def mutate(raw: dict[str, Any]) -> None:
        s = strict_province.secrets
        raw["province"].update(
            base_url=strict_province.url,
            retry_initial_s=0.05,
            retry_max_s=0.3,
            operator_secret=s.operator_secret,
            data_secret=s.data_secret,
            data_secret_iv=s.data_secret_iv,
            sig_secret=s.sig_secret,
        )
        raw["province"]["trace_wire"] = True  # every push and pull logged decrypted, secrets and tokens masked
        raw["logging"].update(level="debug", format="json")
        for charger in raw["stations"][0]["chargers"]:
            charger["password"] = passwords[charger["ocpp_id"]]

    with daemon_on_fixed_ports(write_config, tmp_path, mutate) as (process, prefix):
        yield process, prefix


def inject_push_failures(province: MockProvince) -> None:
    province.inject(Fault("ret", interface="notification_stationInfo", ret=4004))  # permanent: dead-lettered
    province.inject(Fault("http", interface="notification_stationStatus", status=503, count=2))
    province.inject(Fault("ret", interface="notification_stationStatus", ret=-1, count=2))
    province.inject(Fault("bad_sig", interface="notification_orderInfo"))  # a forged acceptance: retried


async def refused_handshakes(prefix: str, passwords: dict[str, str], seen: Haystack) -> None:
    attempts = [Sim16(prefix + DC, password="not-" + passwords[DC]), Sim201(prefix + AC), Sim16(prefix + DC)]
    for n, sim in enumerate(attempts):
        with pytest.raises(InvalidStatus) as refused:
            await sim.connect()
        assert refused.value.response.status_code == 401
        seen.add(f"refused handshake {n} (exception)", str(refused.value))
        seen.add(f"refused handshake {n} (HTTP body)", refused.value.response.body or b"")


def frames_of(sim: Sim16 | Sim201, seen: Haystack) -> None:
    """Every answer and CSMS-initiated call the charger received, CALLERROR descriptions included."""
    answers = [(a.action, a.answer, a.error, a.invalid) for a in sim.answers]
    seen.add(f"frames to {sim.identity}", json.dumps([answers, sim.received], default=str, ensure_ascii=False))


async def charge_once(sim: Sim16 | Sim201) -> None:
    await sim.plug_in(1)
    await sim.authorize(1)
    await sim.start_charging(1)
    await sim.charge(1, power_kw=7, minutes=5, sample_every_s=60)
    await sim.stop_charging(1)
    await sim.unplug(1)


async def drained(store: Store) -> None:
    def done() -> bool:
        return not store.rows("SELECT 1 FROM outbox WHERE state = 'pending' LIMIT 1")

    await eventually(done, "the outbox to drain", DRAIN_TIMEOUT_S)


async def pull_everything(puller: Puller, operator_secret: str, operator_id: str) -> list[str]:
    """Every interface with a good token, and each kind of refusal. Returns the tokens we issued."""
    ours = []
    good = {"OperatorID": puller.province_id, "OperatorSecret": operator_secret}
    for _ in range(2):
        ret, answer = await puller.post("query_token", good)
        assert ret == 0 and answer is not None and answer["SuccStat"] == 0, answer
        ours.append(str(answer["AccessToken"]))
    ret, answer = await puller.post("query_token", {"OperatorID": puller.province_id, "OperatorSecret": "x" * 16})
    assert (ret, (answer or {}).get("FailReason")) == (0, 2)
    day = utc_now().astimezone(puller.tz).strftime("%Y-%m-%d")
    queries = {
        "query_stations_info": {"PageNo": 1, "PageSize": 10},
        "query_station_status": {"StationIDs": ["370202000001"]},
        "query_station_stats": {"StationID": "370202000001", "StartTime": day, "EndTime": day},
        "query_equip_business_policy": {"EquipBizSeq": operator_id + "0" * 18, "ConnectorID": "370202000001001A"},
    }
    for interface, data in queries.items():
        assert (await puller.post(interface, data, ours[-1]))[0] == 0, interface
    assert (await puller.post(PULLS[1], queries[PULLS[1]], "forged-" + ours[-1]))[0] == 4002
    assert (await puller.post(PULLS[1], queries[PULLS[1]], None))[0] == 4002
    assert (await puller.post_raw_token(PULLS[1], queries[PULLS[1]], b"\xff\xfe" + ours[-1].encode()))[0] == 4002
    assert (await puller.post(PULLS[1], queries[PULLS[1]], ours[-1], sig=lambda s: s[::-1]))[0] == 4001
    return ours


def database_files(directory: Path) -> list[tuple[str, str]]:
    """The database and its WAL, bytes as latin-1 text (so a needle is found wherever its bytes are)."""
    return [(p.name, p.read_bytes().decode("latin-1")) for p in sorted(directory.glob("edge-bridge.db*"))]


def cli(config: Path, *args: str) -> str:
    command = [sys.executable, "-m", "edge_bridge", *args, "--config", str(config)]
    done = subprocess.run(command, capture_output=True, timeout=CLI_TIMEOUT_S, check=False)
    assert done.returncode == 0, done
    return done.stdout.decode() + done.stderr.decode()


def cli_outputs(config: Path, seen: Haystack) -> None:
    for args in (["check-config"], ["status"], ["outbox", "list"], ["outbox", "list", "--state", "dead"]):
        seen.add("edge-bridge " + " ".join(args), cli(config, *args))
    assert "4004" in seen.texts["edge-bridge outbox list --state dead"]  # the dead letter is shown with its reason


async def test_no_secret_password_or_token_in_any_log_output_or_answer(
    running: tuple[DaemonProcess, str],
    strict_province: MockProvince,
    province_tokens: list[str],
    passwords: dict[str, str],
    tmp_path: Path,
) -> None:
    process, prefix = running
    inject_push_failures(strict_province)
    await asyncio.to_thread(process.start)
    seen = Haystack()
    store = Store(tmp_path / "edge-bridge.db")
    raw = tomllib.loads(process.config.read_text())

    await refused_handshakes(prefix, passwords, seen)
    dc = Sim16(prefix + DC, clock=sim_clock(), password=passwords[DC])
    ac = Sim201(prefix + AC, clock=sim_clock(), password=passwords[AC])
    async with dc, ac:
        await dc.connect()
        await ac.connect()
        await asyncio.gather(charge_once(dc), charge_once(ac))
        await drained(store)
        strict_province.expire_tokens()  # the next push gets Ret 4002: the daemon fetches a new token
        await asyncio.gather(charge_once(dc), charge_once(ac))
        await drained(store)
        await dc.send_raw('[2,"bad-1","MeterValues",{"connectorId":"one","meterValue":[]}]')
        await ac.send_raw('[2,"bad-2","NoSuchAction",{}]')
        frames_of(dc, seen)
        frames_of(ac, seen)
    pull_base = f"http://{raw['pull_api']['listen']}{raw['pull_api']['path_prefix']}/"
    tz = ZoneInfo(raw["site"]["timezone"])
    puller = Puller(pull_base, raw["province"]["operator_id"], strict_province.secrets, tz, seen)
    ours = await pull_everything(puller, strict_province.secrets.operator_secret, raw["operator"]["operator_id"])
    cli_outputs(process.config, seen)
    await asyncio.to_thread(process.stop)
    log = process.log_path.read_text(encoding="utf-8", errors="replace")
    seen.add("daemon log", log)
    for name, content in await asyncio.to_thread(database_files, tmp_path):
        seen.add(f"database file {name}", content)

    # the scenario did what it says: debug logging, refusals, failed pushes, a token refresh, CALLERRORs
    assert '"level": "debug"' in log and '"charger_refused"' in log
    assert (
        '"trace_wire_on"' in log
        and '"wire_pull"' in log
        and '"wire_push"' in log
        and r"\"OperatorSecret\":\"***\"" in log
    )
    assert "Traceback" not in log and '"pull_error"' not in log  # every hostile request got a defined answer
    faults = {r.fault for r in strict_province.received if r.fault}
    assert faults == {"ret", "http", "bad_sig"}, faults
    assert len(province_tokens) >= 2, province_tokens
    assert [a.error for a in dc.answers + ac.answers if a.error]  # the two CALLERRORs
    config_text = Haystack({"the config file": process.config.read_text()})
    plain = {key: getattr(strict_province.secrets, key) for key in SECRET_KEYS} | passwords
    assert {hit.split(" found in ")[0] for hit in config_text.hits(plain)} == set(plain)  # the daemon used them

    needles: dict[str, str] = {}
    for key in SECRET_KEYS:
        needles |= encodings(key, getattr(strict_province.secrets, key))
    for charger, password in passwords.items():
        needles |= encodings(f"password of {charger}", password)
        needles[f"Basic credentials of {charger}"] = base64.b64encode(f"{charger}:{password}".encode()).decode()
    for n, token in enumerate(province_tokens):
        needles |= encodings(f"province token {n}", token)
    for n, token in enumerate(ours):
        needles |= encodings(f"our token {n}", token)
    assert seen.hits(needles) == []

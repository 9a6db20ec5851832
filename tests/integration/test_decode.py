"""``edge-bridge decode``: the known-answer vectors of tests/data/vectors.json (requests and responses), a live
exchange captured from the strict mock province, a wrong key told from a wrong IV, stdin, and input that is not an
envelope. Secrets and tokens in a decrypted Data are masked."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge_bridge.cli import main
from edge_bridge.cli.decode import pretty
from edge_bridge.config import Config
from edge_bridge.domain.wiretime import format_timestamp
from edge_bridge.provincial.codec import encode_request, encode_response, loads
from edge_bridge.provincial.crypto import Secrets
from edge_bridge.timeutil import utc_now
from simulators.province import MockProvince
from tests.conftest import DATA

VECTORS = {v["name"].split()[0]: v for v in json.loads((DATA / "vectors.json").read_text(encoding="utf-8"))}
V2 = VECTORS["V2"]  # V2..V6 share their secrets


def with_secrets(vector: dict[str, Any], **wrong: str) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        for key in ("data_secret", "data_secret_iv", "sig_secret"):
            raw["province"][key] = wrong.get(key, vector[key])

    return mutate


def request_of(vector: dict[str, Any]) -> str:
    fields = ("operator_id", "data", "timestamp", "seq", "request_sig")
    names = ("OperatorID", "Data", "TimeStamp", "Seq", "Sig")
    return json.dumps({name: vector[field] for name, field in zip(names, fields, strict=True)})


def decode(capsys: pytest.CaptureFixture[str], config: Path, envelope: str, *extra: str) -> tuple[int, str]:
    code = main(["decode", envelope, "--config", str(config), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_request_vectors_verify_and_decrypt(
    write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(with_secrets(V2))
    code, out = decode(capsys, path, request_of(VECTORS["V5"]))
    assert code == 0, out
    assert out.startswith("request: OperatorID MA6DE1HK0, TimeStamp 20240101120005, Seq 0002\n")
    assert "signature: verifies with our SigSecret" in out
    shown = json.loads(out.split("data:\n", 1)[1])
    assert shown == json.loads(VECTORS["V5"]["plaintext"])

    code, out = decode(capsys, path, request_of(V2))  # query_token: the OperatorSecret is masked
    assert code == 0 and '"OperatorSecret": "***"' in out and V2["operator_secret"] not in out, out


def test_v1_verifies_but_is_not_json(write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The standard's own example has a trailing comma: it decrypts, but no province could parse it."""
    v1 = VECTORS["V1"]
    code, out = decode(capsys, write_config(with_secrets(v1)), request_of(v1))
    assert code == 1
    assert "signature: verifies" in out and "problem: the Data decrypts, but not to a JSON object" in out
    assert '"soc":10,}}}' in out


def test_response_vector_masks_the_token(write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    v3 = VECTORS["V3"]
    envelope = {"Ret": 0, "Msg": "请求成功", "Data": v3["data"], "Sig": v3["response_sig_ret0_msg_chinese"]}
    code, out = decode(capsys, write_config(with_secrets(v3)), json.dumps(envelope, ensure_ascii=False), "--json")
    assert code == 0, out
    doc = json.loads(out)
    token = json.loads(v3["plaintext"])["AccessToken"]
    assert doc["kind"] == "response" and doc["verification"] == "ok" and doc["good"] is True
    assert doc["data"] == {**json.loads(v3["plaintext"]), "AccessToken": "***"} and token not in out


@pytest.mark.parametrize(("wrong", "named"), [("data_secret", "data_secret "), ("data_secret_iv", "data_secret_iv ")])
def test_a_wrong_key_is_told_from_a_wrong_iv(
    wrong: str, named: str, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """V5's Data has several blocks: with the right key and a wrong IV all but the first decrypt."""
    path = write_config(with_secrets(V2, **{wrong: "Wrong16CharsXYZ!"}))
    code, out = decode(capsys, path, request_of(VECTORS["V5"]))
    assert code == 1
    assert "signature: verifies" in out and "problem: the Data does not decrypt" in out
    assert f"fix: province.{named}" in out, out


def test_an_error_answer_of_one_block_tells_key_from_iv(
    write_config: Callable[..., Path], config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ret 4004 answer carries an encrypted ``{}``: one block, read through the IV the province used."""
    theirs = config.province.secrets()
    answer = json.dumps(encode_response(4004, "数据错误", None, theirs).as_body(), ensure_ascii=False)
    for wrong in ("data_secret", "data_secret_iv"):

        def mutate(raw: dict[str, Any], wrong: str = wrong) -> None:
            raw["province"][wrong] = "Wrong16CharsXYZ!"

        code, out = decode(capsys, write_config(mutate, name=f"{wrong}.toml"), answer)
        assert code == 1 and "response: Ret 4004, Msg 数据错误" in out
        assert f"fix: province.{wrong} (or {wrong}_file)" in out, out


async def test_a_captured_live_exchange(
    province: MockProvince, config: Config, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A query_token request as sent on the wire to the mock province, and its answer as received."""
    secrets: Secrets = config.province.secrets()
    payload = {"OperatorID": config.operator.id, "OperatorSecret": secrets.operator_secret}
    now = utc_now()
    envelope = encode_request(
        payload, operator_id=config.operator.id, secrets=secrets, timestamp=format_timestamp(now, config.tz), seq="0001"
    )
    request = envelope.to_json().decode()
    headers = {"Content-Type": "application/json;charset=utf-8"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(province.url + "query_token", data=request, headers=headers) as reply,
    ):
        answer = (await reply.read()).decode()
    path = write_config()
    code, out = await asyncio.to_thread(decode, capsys, path, request)
    assert code == 0 and '"OperatorSecret": "***"' in out and secrets.operator_secret not in out, out
    code, out = await asyncio.to_thread(decode, capsys, path, answer)
    assert code == 0 and "response: Ret 0, Msg 请求成功" in out and '"AccessToken": "***"' in out, out
    issued = loads(answer.encode())  # the token itself never shows: it is only in the encrypted Data
    assert issued["Ret"] == 0 and '"SuccStat": 0' in out and '"TokenAvailableTime": 7200' in out


def test_not_an_envelope_is_exit_2(write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config()
    for text, why in [("{", "not JSON"), ('{"a": 1}', "neither a request"), ('{"OperatorID": "X"}', "Data")]:
        code, out = decode(capsys, path, text)
        assert code == 2 and "error: not a provincial envelope: " in out and why in out, out


def test_pretty_keeps_numbers_as_received() -> None:
    value = loads(b'{"TotalMoney":16.50,"Details":[{"Price":0.3000}],"Empty":[],"Name":"\xe7\xab\x99"}')
    assert pretty(value) == (
        '{\n  "TotalMoney": 16.50,\n  "Details": [\n    {\n      "Price": 0.3000\n    }\n  ],\n'
        '  "Empty": [],\n  "Name": "站"\n}'
    )


def test_the_console_script_reads_stdin(write_config: Callable[..., Path]) -> None:
    path = write_config(with_secrets(V2))
    script = str(Path(sys.executable).with_name("edge-bridge"))
    done = subprocess.run(
        [script, "decode", "--config", str(path)],
        input=request_of(VECTORS["V5"]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done
    assert done.stdout.startswith("request: OperatorID MA6DE1HK0") and "Traceback" not in done.stderr
    assert json.loads(done.stdout.split("data:\n", 1)[1]) == json.loads(VECTORS["V5"]["plaintext"])

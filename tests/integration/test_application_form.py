"""``edge-bridge application-form``: every field the province's forms take from the config is printed, the empty ones
are named with the key to set, and no secret value appears in any form (text, JSON; inline or ``*_file`` secrets)."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.cli import main
from tests.conftest import example_raw

SECRETS = ("operator_secret", "data_secret", "data_secret_iv", "sig_secret")
FILE_SECRETS = {  # other values than the example's, so that a leak of either set is seen
    "operator_secret": "FileOpSecret16ch",
    "data_secret": "FileDataSecret16",
    "data_secret_iv": "FileDataIV16char",
    "sig_secret": "FileSigSecret16c",
}
Run = Callable[..., str]


@pytest.fixture
def form(capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    """form(path, *options) -> stdout of ``edge-bridge application-form``, exit code 0 asserted; the root logger
    (which the command configures for the process) restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def run(path: Path, *options: str) -> str:
        assert main(["application-form", "--config", str(path), *options]) == 0
        return capsys.readouterr().out

    yield run
    root.handlers[:], root.level = handlers, level


def leaks(text: str, values: list[str]) -> list[str]:
    """The secret values found in ``text`` as they are, or as their hex or base64."""
    forms = {v: (v, v.encode().hex(), v.encode().hex().upper(), base64.b64encode(v.encode()).decode()) for v in values}
    return [v for v, shapes in forms.items() if any(shape in text for shape in shapes)]


def test_every_field_of_the_example_config(form: Run, write_config: Callable[..., Path]) -> None:
    path = write_config()
    text = form(path)
    assert text.startswith("接口服务联调申请表 / 平台接入申请单") and f"from {path}" in text
    for line in (
        "运营商名称 (operator name): Example Charging Co.",
        "运营商ID (OperatorID): MA7G5YA24",
        "省平台运营商ID (the province's OperatorID): MJD634356",
        "充电站ID (StationID): 370202000001",
        "充电站名称 (station name): Example Station",
        "地址 (address): 1 Example Road, Shinan District, Qingdao",
        "行政区划代码 (area code): 370202",
        "充电桩/充电接口 (chargers / connectors): 2 / 3",
        "省平台接口地址 (the province's URL): http://127.0.0.1:18093/evcsV2/trade/",
    ):
        assert f"  {line}\n" in text, line
    for name, wire in zip(SECRETS, ("OperatorSecret", "DataSecret", "DataSecretIV", "SigSecret"), strict=True):
        assert f"({wire}): inline in the config file ([province] {name})\n" in text
    assert text.count("16 characters as required; the value is not printed") == 4
    for interface in ("query_token", "query_stations_info", "query_station_status", "query_station_stats"):
        assert f"我方提供 (we serve) {interface}: <public_url>{interface}" in text
    for interface in ("notification_stationInfo", "notification_stationStatus", "notification_orderInfo"):
        assert f"我方推送 (we push) {interface}: http://127.0.0.1:18093/evcsV2/trade/{interface}" in text
    assert "我方提供 (we serve) query_equip_business_policy" in text and "我方推送 (we push) alarm_report" in text


def test_empty_fields_are_named_with_the_key_to_set(form: Run, write_config: Callable[..., Path]) -> None:
    text = form(write_config())
    assert "我方接口地址 (our pull API URL, to register): 待填写 (to fill in)" in text
    # the example listens on 127.0.0.1:0 in tests: the URL to register still needs the public address
    assert "set [pull_api] public_url; it would be http://<public address of the gateway>:0/evcs/v1/" in text
    for key in ("contact_name", "contact_phone", "contact_email"):
        assert f"empty: set [operator] {key}" in text
    assert "not configured: [operator] credit_code" in text
    assert text.rstrip().split("\n\n")[-1].startswith("待填写 (to fill in): 5")


def test_filled_in_fields(form: Run, write_config: Callable[..., Path]) -> None:
    def filled(raw: dict[str, Any]) -> None:
        raw["operator"] |= {"contact_name": "张工", "contact_phone": "13800000000", "contact_email": "ops@example.cn"}
        raw["operator"]["credit_code"] = "91370100MA7G5YA248"  # its GB 32100 check character
        raw["pull_api"] |= {"public_url": "http://203.0.113.10:8093/evcs/v1", "listen": "0.0.0.0:8093"}

    text = form(write_config(filled))
    assert "技术联系人 (technical contact): 张工" in text and "联系电话 (contact phone): 13800000000" in text
    assert "电子邮箱 (contact e-mail): ops@example.cn" in text
    assert "统一社会信用代码 (unified social credit code): 91370100MA7G5YA248\n      check character verified" in text
    assert "运营商ID (OperatorID): MA7G5YA24\n      characters 9-17 of the credit code" in text
    assert "我方接口地址 (our pull API URL, to register): http://203.0.113.10:8093/evcs/v1/\n" in text
    assert "我方提供 (we serve) query_token: http://203.0.113.10:8093/evcs/v1/query_token" in text
    assert "待填写 (to fill in): 0" in text and "待填写 (to fill in)\n" not in text


def test_a_wrong_check_character_is_shown(form: Run, write_config: Callable[..., Path]) -> None:
    path = write_config(lambda raw: raw["operator"].update(credit_code="91370100MA7G5YA24X"))
    assert "WRONG check character: GB 32100 gives 8" in form(path)


def test_no_inline_secret_in_text_or_json(form: Run, write_config: Callable[..., Path]) -> None:
    path = write_config()
    values = [example_raw()["province"][name] for name in SECRETS]
    text, document = form(path), form(path, "--json")
    assert leaks(text, values) == [] and leaks(document, values) == []


def test_secret_files_are_named_and_never_read_out(
    form: Run, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    files = {}
    for name, value in FILE_SECRETS.items():
        files[name] = tmp_path / "secrets" / name
        files[name].parent.mkdir(exist_ok=True)
        files[name].write_text(value + "\n", encoding="utf-8")

    def from_files(raw: dict[str, Any]) -> None:
        for name in SECRETS:
            del raw["province"][name]
            raw["province"][f"{name}_file"] = str(files[name])

    path = write_config(from_files)
    text, document = form(path), form(path, "--json")
    for name in SECRETS:
        assert f"in the file {files[name]} ([province] {name}_file)" in text
    values = list(FILE_SECRETS.values()) + [example_raw()["province"][name] for name in SECRETS]
    assert leaks(text, values) == [] and leaks(document, values) == []


def test_json_document(form: Run, write_config: Callable[..., Path]) -> None:
    document = json.loads(form(write_config(), "--json"))
    assert document["format"] == 1
    sections = {s["key"]: {f["key"]: f for f in s["fields"]} for s in document["sections"]}
    assert list(sections) == ["operator", "secrets", "urls", "station.370202000001", "contact"]
    assert sections["operator"]["operator_id"]["value"] == "MA7G5YA24"
    assert sections["secrets"]["sig_secret"]["value"] == "inline in the config file ([province] sig_secret)"
    assert sections["urls"]["push.notification_orderInfo"]["value"].endswith("/evcsV2/trade/notification_orderInfo")
    assert sections["station.370202000001"]["name"]["value"] == "Example Station"
    assert document["to_fill_in"] == [
        "operator.credit_code",
        "urls.public_url",
        "contact.contact_name",
        "contact.contact_phone",
        "contact.contact_email",
    ]


def test_the_console_script(write_config: Callable[..., Path]) -> None:
    """The installed command, as an operator runs it: help with its exit codes, then the form."""
    script = Path(sys.executable).with_name("edge-bridge")
    helped = subprocess.run([script, "application-form", "--help"], capture_output=True, text=True, check=True)
    assert "Exit codes: 0 the form was printed" in helped.stdout
    done = subprocess.run(
        [script, "application-form", "--config", str(write_config())], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stderr == ""
    assert "运营商ID (OperatorID): MA7G5YA24" in done.stdout
    assert leaks(done.stdout, [example_raw()["province"][name] for name in SECRETS]) == []

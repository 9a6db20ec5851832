"""check_config: the summary of a valid file (exit 0) and one line per problem, each naming its key (exit 2)."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_bridge.config import EXIT_CONFIG, check_config
from tests.conftest import REPO

Mutate = Callable[[dict[str, Any]], None]
WriteConfig = Callable[..., Path]


def run(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check_config(path, out, err)
    return code, out.getvalue(), err.getvalue()


def problem_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("  ")]


def has_problem(err: str, key: str, fragment: str) -> bool:
    prefix = f"  {key}: " if key else "  "
    return any(line.startswith(prefix) and fragment in line for line in problem_lines(err))


def connector(raw: dict[str, Any], charger: int = 0, index: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = raw["stations"][0]["chargers"][charger]["connectors"][index]
    return result


def periods(raw: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = raw["tariffs"]["default"]["periods"]
    return result


# ---------------------------------------------------------------------------------------------------- success


def test_the_repository_example_passes_with_its_summary() -> None:
    code, out, err = run(REPO / "config.example.toml")

    assert code == 0, err
    assert err == ""
    assert "totals: 1 station, 2 chargers, 3 connectors, 4 tariff periods" in out.splitlines()


def test_the_summary_shows_operator_province_listeners_database_and_each_charger(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    code, out, _ = run(write_config())
    lines = out.splitlines()

    assert code == 0
    assert "operator: MA7G5YA24 Example Charging Co." in lines
    assert any(line.startswith("province: http://127.0.0.1:18093/evcsV2/trade/") for line in lines)
    assert any(line.startswith("ocpp listen: 127.0.0.1:0 ") for line in lines)
    assert any(line.startswith("pull api listen: 127.0.0.1:0 ") for line in lines)
    assert f"database: {tmp_path / 'edge-bridge.db'}" in lines
    assert "station 370202000001 'Example Station' tariff default" in lines
    assert (
        "  charger CP-DC-01 -> 370202000001001 (DC): connectors 370202000001001A (ocpp 1), 370202000001001B (ocpp 2)"
        in lines
    )
    assert "  charger CP-AC-01 -> 370202000001002 (AC): connectors 370202000001002A (ocpp 1)" in lines
    assert (
        "tariff default: 00:00-08:00 0.35+0.4, 08:00-16:00 0.72+0.4, 16:00-22:00 1.04+0.4, 22:00-24:00 0.9+0.4" in lines
    )
    assert not any(line.startswith("warning:") for line in lines)


def test_the_summary_lists_tariff_periods_in_time_order(write_config: WriteConfig) -> None:
    code, out, _ = run(write_config(lambda raw: periods(raw).reverse()))

    assert code == 0
    assert "tariff default: 00:00-08:00 0.35+0.4, 08:00-16:00 " in out


def test_a_credit_code_alone_gives_the_operator_id(write_config: WriteConfig) -> None:
    def credit_code_only(raw: dict[str, Any]) -> None:
        del raw["operator"]["operator_id"]
        raw["operator"]["credit_code"] = "91370100MA7G5YA24X"

    code, out, err = run(write_config(credit_code_only))

    assert code == 0, err
    assert "operator: MA7G5YA24 Example Charging Co." in out.splitlines()


SECRETS = {
    "operator_secret": "Zq7#Kp2!Wm9$Lx4&",
    "data_secret": "Hv3*Nb8^Rt1@Yc6%",
    "data_secret_iv": "Uj5(Ge0)Fs2_Dk9+",
    "sig_secret": "Qa4=Wz7~Ex1;Pl3?",
}


def _fragments(secret: str) -> set[str]:
    return {secret[i : i + 4] for i in range(len(secret) - 3)}


def test_no_secret_value_is_printed_not_even_in_part(write_config: WriteConfig) -> None:
    def distinctive_secrets(raw: dict[str, Any]) -> None:
        raw["province"].update(SECRETS)
        raw["stations"][0]["chargers"][0]["password"] = "Xb8&Mn4!Tc2%Vr"

    path = write_config(distinctive_secrets)
    path.chmod(0o644)  # also the warning path

    code, out, err = run(path)

    assert code == 0
    assert "warning:" in out
    for secret in [*SECRETS.values(), "Xb8&Mn4!Tc2%Vr"]:
        assert not any(fragment in out + err for fragment in _fragments(secret)), secret


def test_secrets_from_files_are_not_printed_and_are_reported_as_such(write_config: WriteConfig, tmp_path: Path) -> None:
    def from_files(raw: dict[str, Any]) -> None:
        for name, value in SECRETS.items():
            (tmp_path / name).write_text(value + "\n", encoding="utf-8")
            del raw["province"][name]
            raw["province"][f"{name}_file"] = name

    code, out, _ = run(write_config(from_files))

    assert code == 0
    assert "(secrets from files)" in out
    for secret in SECRETS.values():
        assert not any(fragment in out for fragment in _fragments(secret))


# ---------------------------------------------------------------------------------------------------- warnings


def test_inline_secrets_in_a_group_readable_file_print_a_warning_and_still_pass(write_config: WriteConfig) -> None:
    path = write_config()
    path.chmod(0o640)

    code, out, _ = run(path)

    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert "province.sig_secret" in warnings[0]
    assert "readable by group or others" in warnings[0]


def test_a_private_file_prints_no_warning(write_config: WriteConfig) -> None:
    code, out, _ = run(write_config())  # written 0600

    assert code == 0
    assert "warning" not in out


# ---------------------------------------------------------------------------------------------------- problems


def _set(*path: str | int, value: Any) -> Mutate:
    def mutate(raw: dict[str, Any]) -> None:
        target: Any = raw
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


def _delete(*path: str) -> Mutate:
    def mutate(raw: dict[str, Any]) -> None:
        target: Any = raw
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return mutate


def _rename_connector_key(raw: dict[str, Any]) -> None:
    conn = connector(raw, 0, 1)
    conn["conector_id"] = conn.pop("connector_id")


def _misspell_retention(raw: dict[str, Any]) -> None:
    raw["retension"] = raw.pop("retention")


def _second_station(raw: dict[str, Any]) -> None:
    station = copy.deepcopy(raw["stations"][0])
    for index, charger in enumerate(station["chargers"]):
        charger["ocpp_id"] += "-B"
        charger["equipment_id"] = f"37020200000200{index}"
        for k_index, conn in enumerate(charger["connectors"]):
            conn["connector_id"] = f"37020200000200{index}{k_index}"
    raw["stations"].append(station)


def _sig_secret_file(name: str, keep_inline: bool = False) -> Mutate:
    """sig_secret_file = name (relative to the config's directory, where the test puts 'sig' and 'creds/')."""

    def mutate(raw: dict[str, Any]) -> None:
        if not keep_inline:
            del raw["province"]["sig_secret"]
        raw["province"]["sig_secret_file"] = name

    return mutate


CC = "stations[0].chargers"

# (id, mutate, key, a fragment of the message)
CASES: list[tuple[str, Mutate, str, str]] = [
    (
        "secret-15-chars",
        _set("province", "sig_secret", value="x" * 15),
        "province.sig_secret",
        "must be exactly 16 characters, not 15",
    ),
    (
        "duplicate-connector-id",
        _set("stations", 0, "chargers", 1, "connectors", 0, "connector_id", value="370202000001001A"),
        f"{CC}[1].connectors[0].connector_id",
        "duplicate value '370202000001001A'",
    ),
    (
        "tariff-gap",
        _set("tariffs", "default", "periods", 1, "start", value="09:00"),
        "tariffs.default.periods[1].start",
        "gap: 08:00-09:00 is in no period",
    ),
    (
        "tariff-overlap",
        _set("tariffs", "default", "periods", 2, "start", value="15:00"),
        "tariffs.default.periods[2].start",
        "overlap: 15:00-16:00 is also in an earlier period",
    ),
    (
        "tariff-not-to-midnight",
        _set("tariffs", "default", "periods", 3, "end", value="23:45"),
        "tariffs.default.periods",
        "periods end at 23:45, not 24:00",
    ),
    (
        "tariff-past-midnight",
        _set("tariffs", "default", "periods", 3, "end", value="24:30"),
        "tariffs.default.periods[3].end",
        "24:30 must be after 22:00 and <= 24:00",
    ),
    ("unknown-top-level-key", _set("extra", value=1), "extra", "unknown key"),
    (
        "misspelt-section",
        _misspell_retention,
        "retension",
        "unknown key (did you mean 'retention'?)",
    ),
    (
        "unknown-key-in-section",
        _set("ocpp", "heartbeat_interval", value=60),
        "ocpp.heartbeat_interval",
        "unknown key (did you mean 'heartbeat_interval_s'?)",
    ),
    (
        "misspelt-connector-key",
        _rename_connector_key,
        f"{CC}[0].connectors[1].conector_id",
        "unknown key (did you mean 'connector_id'?)",
    ),
    (
        "invalid-timezone",
        _set("site", "timezone", value="Asia/Shanghia"),
        "site.timezone",
        "'Asia/Shanghia' is not an IANA time zone",
    ),
    (
        "operator-id-8-chars",
        _set("operator", "operator_id", value="MA7G5YA2"),
        "operator.operator_id",
        "must be 9 characters of 0-9 and A-Z",
    ),
    (
        "operator-id-lowercase",
        _set("operator", "operator_id", value="ma7g5ya24"),
        "operator.operator_id",
        "must be 9 characters of 0-9 and A-Z",
    ),
    (
        "credit-code-disagrees",
        _set("operator", "credit_code", value="91370100MA7G5YA25X"),
        "operator.credit_code",
        "derives operator_id MA7G5YA25, which does not agree with operator_id MA7G5YA24",
    ),
    (
        "unknown-tariff",
        _set("stations", 0, "tariff", value="night"),
        "stations[0].tariff",
        "no tariff 'night' (known: default)",
    ),
    (
        "price-5-decimals",
        _set("tariffs", "default", "periods", 0, "electricity", value=0.35001),
        "tariffs.default.periods[0].electricity",
        "0.35001 has more than 4 decimals",
    ),
    (
        "negative-price",
        _set("tariffs", "default", "periods", 2, "service", value=-0.1),
        "tariffs.default.periods[2].service",
        "greater than or equal to 0",
    ),
    (
        "duplicate-station-id",
        _second_station,
        "stations[1].station_id",
        "duplicate value '370202000001'",
    ),
    (
        "duplicate-equipment-id",
        _set("stations", 0, "chargers", 1, "equipment_id", value="370202000001001"),
        f"{CC}[1].equipment_id",
        "duplicate value '370202000001001'",
    ),
    (
        "duplicate-ocpp-id",
        _set("stations", 0, "chargers", 1, "ocpp_id", value="CP-DC-01"),
        f"{CC}[1].ocpp_id",
        "duplicate value 'CP-DC-01'",
    ),
    (
        "duplicate-ocpp-connector",
        _set("stations", 0, "chargers", 0, "connectors", 1, "ocpp_connector", value=1),
        f"{CC}[0].connectors[1].ocpp_connector",
        "duplicate value 'CP-DC-01/1/1'",
    ),
    (
        "tls-cert-without-key",
        _set("ocpp", "tls_cert", value="/etc/edge-bridge/tls/cert.pem"),
        "ocpp.tls_key",
        "missing: tls_cert is given",
    ),
    (
        "tls-key-without-cert",
        _set("ocpp", "tls_key", value="/etc/edge-bridge/tls/key.pem"),
        "ocpp.tls_key",
        "without tls_cert",
    ),
    ("listen-without-port", _set("pull_api", "listen", value="8093"), "pull_api.listen", "'8093' is not HOST:PORT"),
    (
        "listen-port-out-of-range",
        _set("ocpp", "listen", value="0.0.0.0:70000"),
        "ocpp.listen",
        "'0.0.0.0:70000' is not HOST:PORT",
    ),
    (
        "missing-secret",
        _delete("province", "data_secret"),
        "province.data_secret",
        "missing (give data_secret or data_secret_file)",
    ),
    (
        "secret-inline-and-file",
        _sig_secret_file("sig", keep_inline=True),
        "province.sig_secret",
        "give sig_secret or sig_secret_file, not both",
    ),
    (
        "secret-file-missing",
        _sig_secret_file("credentials/sig_secret"),
        "province.sig_secret_file",
        "credentials/sig_secret: No such file or directory",
    ),
    (
        "secret-file-is-a-directory",
        _sig_secret_file("creds"),
        "province.sig_secret_file",
        "Is a directory",
    ),
]


@pytest.mark.parametrize(("mutate", "key", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_exits_2_naming_its_key(
    write_config: WriteConfig, tmp_path: Path, mutate: Mutate, key: str, fragment: str
) -> None:
    (tmp_path / "sig").write_text("SigSecret16Chars\n", encoding="utf-8")
    (tmp_path / "creds").mkdir()
    path = write_config(mutate)

    code, out, err = run(path)

    assert code == EXIT_CONFIG == 2
    assert out == ""
    assert err.splitlines()[0].startswith(f"error: {path}: ")
    assert has_problem(err, key, fragment), err


def test_the_header_counts_the_problems(write_config: WriteConfig) -> None:
    path = write_config(_set("province", "sig_secret", value="short"))

    _, _, err = run(path)

    assert err.splitlines() == [
        f"error: {path}: 1 problem(s)",
        "  province.sig_secret: must be exactly 16 characters, not 5",
    ]


def test_a_wrong_length_secret_is_named_but_never_shown(write_config: WriteConfig) -> None:
    path = write_config(_set("province", "data_secret_iv", value="NeverShowThis-17c"))

    code, out, err = run(path)

    assert code == 2
    assert has_problem(err, "province.data_secret_iv", "not 17")
    assert "NeverShow" not in out + err


def test_a_file_that_is_not_toml_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[operator\nname = 'x'\n", encoding="utf-8")

    code, _, err = run(path)

    assert code == 2
    assert err.splitlines()[0] == f"error: {path}: 1 problem(s)"
    assert err.splitlines()[1].startswith("  not valid TOML: ")


def test_a_binary_file_exits_2_as_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xff\xfe\x00binary")

    code, _, err = run(path)

    assert code == 2
    assert has_problem(err, "", "not valid TOML: not UTF-8")


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    code, out, err = run(path)

    assert code == 2
    assert out == ""
    assert err.splitlines() == [f"error: {path}: 1 problem(s)", "  cannot read the file: No such file or directory"]


def test_several_problems_are_all_listed(write_config: WriteConfig) -> None:
    def three_problems(raw: dict[str, Any]) -> None:
        raw["province"]["sig_secret"] = "x" * 15
        raw["site"]["timezone"] = "Nowhere/Town"
        _rename_connector_key(raw)

    path = write_config(three_problems)

    code, _, err = run(path)

    assert code == 2
    assert err.splitlines()[0] == f"error: {path}: 4 problem(s)"
    assert has_problem(err, "province.sig_secret", "not 15")
    assert has_problem(err, "site.timezone", "'Nowhere/Town' is not an IANA time zone")
    assert has_problem(err, f"{CC}[0].connectors[1].conector_id", "did you mean 'connector_id'?")
    assert has_problem(err, f"{CC}[0].connectors[1].connector_id", "Field required")
    assert len(problem_lines(err)) == 4


def test_several_cross_field_problems_are_all_listed(write_config: WriteConfig) -> None:
    def three_problems(raw: dict[str, Any]) -> None:
        raw["province"]["operator_secret"] = "y" * 17
        connector(raw, 1, 0)["connector_id"] = "370202000001001B"
        periods(raw)[1]["start"] = "09:00"
        raw["stations"][0]["tariff"] = "night"

    code, _, err = run(write_config(three_problems))

    assert code == 2
    assert has_problem(err, "province.operator_secret", "not 17")
    assert has_problem(err, f"{CC}[1].connectors[0].connector_id", "duplicate value")
    assert has_problem(err, "tariffs.default.periods[1].start", "gap")
    assert has_problem(err, "stations[0].tariff", "no tariff 'night'")
    assert len(problem_lines(err)) == 4

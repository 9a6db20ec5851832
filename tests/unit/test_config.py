"""load_config: the TOML contract (spec/configuration.md) becomes frozen, exact values, or a ConfigError naming keys."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trustme

from edge_bridge.config import Config, load_config, load_config_with_warnings, site_model
from edge_bridge.domain.site import TariffPeriod
from edge_bridge.errors import ConfigError, ConfigProblem
from tests.conftest import REPO

WriteConfig = Callable[..., Path]


def problems_of(path: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def keys_of(path: Path) -> list[str]:
    return [p.key for p in problems_of(path)]


# ---------------------------------------------------------------------------------------------------- the example


def test_the_repository_example_loads_as_documented(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # paths are relative to the file, not the working directory

    config = load_config(REPO / "config.example.toml")

    assert config.operator.id == "MA7G5YA24"
    assert config.province.base_url == "http://127.0.0.1:18093/evcsV2/trade/"
    assert config.province.secret("sig_secret") == "SigSecret16Chars"
    assert config.ocpp.host_port == ("0.0.0.0", 9000)
    assert config.pull_api.host_port == ("0.0.0.0", 8093)
    assert config.tz == ZoneInfo("Asia/Shanghai")
    assert config.storage.path == REPO / "var" / "edge-bridge.db"
    assert [(s.station_id, c.ocpp_id) for s, c in config.chargers()] == [
        ("370202000001", "CP-DC-01"),
        ("370202000001", "CP-AC-01"),
    ]


def test_the_config_is_frozen(config: Config) -> None:
    with pytest.raises(ValueError, match="frozen"):
        config.ocpp.listen = "0.0.0.0:1"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------- operator


def test_a_credit_code_alone_derives_the_operator_id(write_config: WriteConfig) -> None:
    def credit_code_only(raw: dict[str, Any]) -> None:
        del raw["operator"]["operator_id"]
        raw["operator"]["credit_code"] = "91370100MA7G5YA24X"

    config = load_config(write_config(credit_code_only))

    assert config.operator.id == "MA7G5YA24"
    assert site_model(config).operator.operator_id == "MA7G5YA24"


def test_a_credit_code_that_agrees_with_the_operator_id_is_accepted(write_config: WriteConfig) -> None:
    config = load_config(write_config(lambda raw: raw["operator"].update(credit_code="91370100MA7G5YA24X")))

    assert config.operator.id == "MA7G5YA24"


@pytest.mark.parametrize("code", ["91370100MA7G5YA24", "91370100ma7g5ya24x", "91370100MA7G5YA24XX"])
def test_a_malformed_credit_code_is_refused(write_config: WriteConfig, code: str) -> None:
    def credit_code_only(raw: dict[str, Any]) -> None:
        del raw["operator"]["operator_id"]
        raw["operator"]["credit_code"] = code

    assert "operator.credit_code" in keys_of(write_config(credit_code_only))


def test_neither_operator_id_nor_credit_code_is_refused(write_config: WriteConfig) -> None:
    problems = problems_of(write_config(lambda raw: raw["operator"].pop("operator_id")))

    assert problems == [ConfigProblem("operator", "give operator_id or credit_code")]


# ---------------------------------------------------------------------------------------------------- values


def test_prices_and_coordinates_are_exact_decimals(write_config: WriteConfig) -> None:
    def prices(raw: dict[str, Any]) -> None:
        periods = raw["tariffs"]["default"]["periods"]
        periods[1]["electricity"] = 0.1
        periods[2]["electricity"] = 1  # an integer is a price too
        periods[3]["service"] = 0.0001

    config = load_config(write_config(prices))
    periods = config.tariffs["default"].periods

    assert periods[0].electricity == Decimal("0.35")
    assert str(periods[0].electricity) == "0.35"  # not 0.34999999999999997779553950749686919152736663818359375
    assert str(periods[1].electricity) == "0.1"
    assert periods[2].electricity == Decimal(1)
    assert str(periods[3].service) == "0.0001"
    assert str(config.stations[0].lng) == "120.38"
    assert str(config.stations[0].chargers[0].power_kw) == "120.0"


def test_site_model_orders_tariff_periods_in_minutes(write_config: WriteConfig) -> None:
    config = load_config(write_config(lambda raw: raw["tariffs"]["default"]["periods"].reverse()))

    tariff = site_model(config).stations[0].tariff

    assert tariff.name == "default"
    assert tariff.periods == (
        TariffPeriod(0, 480, Decimal("0.35"), Decimal("0.4")),
        TariffPeriod(480, 960, Decimal("0.72"), Decimal("0.4")),
        TariffPeriod(960, 1320, Decimal("1.04"), Decimal("0.4")),
        TariffPeriod(1320, 1440, Decimal("0.9"), Decimal("0.4")),
    )


def test_site_model_describes_stations_chargers_and_connectors(config: Config) -> None:
    site = site_model(config)

    station = site.station("370202000001")
    assert station is not None
    assert station.name == "Example Station"
    assert [c.equipment_id for c in station.chargers] == ["370202000001001", "370202000001002"]
    assert [c.connector_id for c in station.chargers[0].connectors] == ["370202000001001A", "370202000001001B"]
    assert station.chargers[0].has_password is False
    assert site.operator.name == "Example Charging Co."


def test_the_storage_path_is_relative_to_the_config_directory(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config(write_config(lambda raw: raw["storage"].update(path="var/bridge.db"), name="etc/c.toml"))

    assert config.storage.path == tmp_path / "etc" / "var" / "bridge.db"


def test_an_absolute_storage_path_is_kept(write_config: WriteConfig) -> None:
    config = load_config(write_config(lambda raw: raw["storage"].update(path="/srv/bridge.db")))

    assert config.storage.path == Path("/srv/bridge.db")


def test_listen_addresses_split_into_host_and_port(write_config: WriteConfig) -> None:
    def listeners(raw: dict[str, Any]) -> None:
        raw["ocpp"]["listen"] = "[::]:9000"
        raw["pull_api"]["listen"] = "192.0.2.10:8093"

    config = load_config(write_config(listeners))

    assert config.ocpp.host_port == ("::", 9000)
    assert config.pull_api.host_port == ("192.0.2.10", 8093)


def test_allow_from_holds_networks(write_config: WriteConfig) -> None:
    allow = ["120.221.154.213/32", "2001:db8::/32"]
    config = load_config(write_config(lambda raw: raw["pull_api"].update(allow_from=allow)))

    assert config.pull_api.allow_from == (
        ipaddress.ip_network("120.221.154.213/32"),
        ipaddress.ip_network("2001:db8::/32"),
    )


def test_each_bad_allow_from_entry_is_one_problem_with_a_plain_key(write_config: WriteConfig) -> None:
    allow = ["10.0.0.0/8", "1.2.3.4/40", "nowhere"]
    problems = problems_of(write_config(lambda raw: raw["pull_api"].update(allow_from=allow)))

    assert problems == [
        ConfigProblem("pull_api.allow_from[1]", "'1.2.3.4/40' is not an IP network such as '203.0.113.7/32'"),
        ConfigProblem("pull_api.allow_from[2]", "'nowhere' is not an IP network such as '203.0.113.7/32'"),
    ]


def test_tls_cert_and_key_together_are_accepted(write_config: WriteConfig, tmp_path: Path) -> None:
    leaf = trustme.CA().issue_cert("127.0.0.1")  # the files must exist and load (tests/unit/test_config_tls.py)
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    config = load_config(write_config(lambda raw: raw["ocpp"].update(tls_cert=str(cert), tls_key=str(key))))

    assert (config.ocpp.tls_cert, config.ocpp.tls_key) == (cert, key)


def test_ocpp_201_connectors_of_one_evse_may_share_the_evse_id(write_config: WriteConfig) -> None:
    def two_connectors_on_evse_1(raw: dict[str, Any]) -> None:
        connectors = raw["stations"][0]["chargers"][0]["connectors"]
        connectors[1]["ocpp_connector"] = 1
        connectors[1]["ocpp_evse_connector"] = 2

    config = load_config(write_config(two_connectors_on_evse_1))

    assert [c.ocpp_evse_connector for c in config.stations[0].chargers[0].connectors] == [1, 2]


def test_a_tariff_on_a_finer_grid_than_15_minutes_is_accepted(write_config: WriteConfig) -> None:
    def finer(raw: dict[str, Any]) -> None:
        periods = raw["tariffs"]["default"]["periods"]
        periods[0]["end"] = periods[1]["start"] = "07:50"

    config = load_config(write_config(finer))

    assert site_model(config).stations[0].tariff.periods[0].end_min == 470


# ---------------------------------------------------------------------------------------------------- problems


def test_a_malformed_time_names_the_period_key(write_config: WriteConfig) -> None:
    problems = problems_of(write_config(lambda raw: raw["tariffs"]["default"]["periods"][1].update(start="8:00")))

    assert [p.key for p in problems] == ["tariffs.default.periods[1].start"]
    assert "should match pattern" in problems[0].message


def test_a_misspelt_period_key_gets_a_suggestion(write_config: WriteConfig) -> None:
    def misspelt(raw: dict[str, Any]) -> None:
        period = raw["tariffs"]["default"]["periods"][0]
        period["strat"] = period.pop("start")

    problems = problems_of(write_config(misspelt))

    assert ConfigProblem("tariffs.default.periods[0].strat", "unknown key (did you mean 'start'?)") in problems


def test_a_bad_connector_is_reported_once_without_an_echo_on_its_parents(write_config: WriteConfig) -> None:
    problems = problems_of(
        write_config(lambda raw: raw["stations"][0]["chargers"][0]["connectors"][0].update(connector_type=9))
    )

    assert [p.key for p in problems] == ["stations[0].chargers[0].connectors[0].connector_type"]


def test_an_empty_charger_list_is_refused_once(write_config: WriteConfig) -> None:
    problems = problems_of(write_config(lambda raw: raw["stations"][0].update(chargers=[])))

    assert [p.key for p in problems] == ["stations[0].chargers"]
    assert "at least 1 item" in problems[0].message


def test_a_stop_reason_out_of_range_is_refused(write_config: WriteConfig) -> None:
    problems = problems_of(write_config(lambda raw: raw.update(stop_reasons={"EmergencyStop": 100})))

    assert [p.key for p in problems] == ["stop_reasons.EmergencyStop"]


def test_secret_problems_are_listed_with_schema_problems(write_config: WriteConfig) -> None:
    def both(raw: dict[str, Any]) -> None:
        raw["province"]["sig_secret"] = "x" * 15
        raw["logging"]["level"] = "verbose"

    assert keys_of(write_config(both)) == ["province.sig_secret", "logging.level"]


def test_a_secret_of_16_non_ascii_characters_is_refused(write_config: WriteConfig) -> None:
    problems = problems_of(write_config(lambda raw: raw["province"].update(data_secret="密" * 16)))

    assert problems == [
        ConfigProblem("province.data_secret", "must be 16 ASCII characters (the key is its 16 UTF-8 bytes)")
    ]


def test_the_error_names_the_file_and_counts_its_problems(write_config: WriteConfig) -> None:
    path = write_config(lambda raw: raw["site"].update(timezone="Mars/Olympus"))

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.source == str(path)
    assert str(caught.value) == (
        f"{path}: 1 configuration problem(s)\n  site.timezone: 'Mars/Olympus' is not an IANA time zone"
    )


# ---------------------------------------------------------------------------------------------------- secret files


def _secrets_from_files(directory: str, *names: str) -> Callable[[dict[str, Any]], None]:
    """Replace each named inline secret by <name>_file = "<directory>/<name>"."""

    def mutate(raw: dict[str, Any]) -> None:
        for name in names:
            del raw["province"][name]
            raw["province"][f"{name}_file"] = f"{directory}/{name}"

    return mutate


def test_secret_files_are_read_relative_to_the_config_directory_without_the_trailing_newline(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "sig_secret").write_text("FileSigSecret16!\n", encoding="utf-8")
    (tmp_path / "credentials" / "data_secret").write_bytes(b"FileDataSecret16\r\n")
    monkeypatch.chdir(tmp_path / "credentials")  # not the directory the paths are relative to

    config = load_config(write_config(_secrets_from_files("credentials", "sig_secret", "data_secret")))

    assert config.province.secret("sig_secret") == "FileSigSecret16!"
    assert config.province.secret("data_secret") == "FileDataSecret16"
    assert config.province.sig_secret_file == tmp_path / "credentials" / "sig_secret"
    assert config.province.secret("operator_secret") == "OpSecret16Chars!"  # inline ones still work


def test_an_absolute_secret_file_path_is_used_as_is(write_config: WriteConfig, tmp_path: Path) -> None:
    secret = tmp_path / "abs" / "sig"
    secret.parent.mkdir()
    secret.write_text("AbsoluteSecret16", encoding="utf-8")

    def absolute(raw: dict[str, Any]) -> None:
        del raw["province"]["sig_secret"]
        raw["province"]["sig_secret_file"] = str(secret)

    config = load_config(write_config(absolute, name="config.toml"))

    assert config.province.secret("sig_secret") == "AbsoluteSecret16"


def test_a_charger_password_file_is_read(write_config: WriteConfig, tmp_path: Path) -> None:
    (tmp_path / "cp-pass").write_text("hunter2-charger\n", encoding="utf-8")

    config = load_config(write_config(lambda raw: raw["stations"][0]["chargers"][0].update(password_file="cp-pass")))

    password = config.stations[0].chargers[0].password
    assert password is not None
    assert password.get_secret_value() == "hunter2-charger"
    assert site_model(config).stations[0].chargers[0].has_password is True


def test_a_wrong_length_secret_from_a_file_is_named_but_never_shown(write_config: WriteConfig, tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "sig_secret").write_text("Do-Not-Leak-This-Value\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(write_config(_secrets_from_files("creds", "sig_secret")))

    assert caught.value.problems == [ConfigProblem("province.sig_secret", "must be exactly 16 characters, not 22")]
    assert "Leak" not in str(caught.value)
    assert "Leak" not in repr(caught.value.problems)


def test_a_wrong_length_inline_secret_is_never_shown(write_config: WriteConfig) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(lambda raw: raw["province"].update(operator_secret="Inline-Secret-Oops")))

    assert "province.operator_secret: must be exactly 16 characters, not 18" in str(caught.value)
    assert "Oops" not in str(caught.value)


def test_a_secret_file_that_is_not_text_is_refused_without_quoting_it(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "sig_secret").write_bytes(b"\xfe\xedSECRETBYTES12345")

    with pytest.raises(ConfigError) as caught:
        load_config(write_config(_secrets_from_files("creds", "sig_secret")))

    assert [p.key for p in caught.value.problems] == ["province.sig_secret_file"]
    assert "is not UTF-8 text" in caught.value.problems[0].message
    assert "SECRETBYTES" not in str(caught.value)
    assert "\\xfe" not in str(caught.value)


def test_an_unreadable_secret_file_is_one_problem_not_also_a_missing_secret(write_config: WriteConfig) -> None:
    problems = problems_of(write_config(_secrets_from_files("nowhere", "data_secret_iv")))

    assert [p.key for p in problems] == ["province.data_secret_iv_file"]
    assert problems[0].message.endswith("nowhere/data_secret_iv: No such file or directory")


# ---------------------------------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_inline_secrets_in_a_file_others_can_read_warn(write_config: WriteConfig, mode: int) -> None:
    path = write_config()
    path.chmod(mode)

    _, warnings = load_config_with_warnings(path)

    assert len(warnings) == 1
    assert "province.operator_secret" in warnings[0]
    assert "readable by group or others" in warnings[0]


def test_a_private_file_with_inline_secrets_does_not_warn(write_config: WriteConfig) -> None:
    _, warnings = load_config_with_warnings(write_config())  # 0600

    assert warnings == []


def test_secrets_from_files_do_not_warn_however_readable_the_config_is(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    names = ("operator_secret", "data_secret", "data_secret_iv", "sig_secret")
    (tmp_path / "creds").mkdir()
    for name in names:
        (tmp_path / "creds" / name).write_text("0123456789abcdef", encoding="utf-8")
    path = write_config(_secrets_from_files("creds", *names))
    path.chmod(0o644)

    _, warnings = load_config_with_warnings(path)

    assert warnings == []


def test_an_inline_charger_password_warns_too(write_config: WriteConfig, tmp_path: Path) -> None:
    names = ("operator_secret", "data_secret", "data_secret_iv", "sig_secret")
    (tmp_path / "creds").mkdir()
    for name in names:
        (tmp_path / "creds" / name).write_text("0123456789abcdef", encoding="utf-8")

    def charger_password(raw: dict[str, Any]) -> None:
        _secrets_from_files("creds", *names)(raw)
        raw["stations"][0]["chargers"][1]["password"] = "cp-password"

    path = write_config(charger_password)
    path.chmod(0o644)

    _, warnings = load_config_with_warnings(path)

    assert len(warnings) == 1
    assert "stations[0].chargers[1].password" in warnings[0]
    assert "province." not in warnings[0]
    assert "cp-password" not in warnings[0]


def test_load_config_logs_the_warnings(write_config: WriteConfig, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config()
    path.chmod(0o644)

    with caplog.at_level(logging.WARNING, logger="edge_bridge.config"):
        load_config(path)

    assert [r.getMessage() for r in caplog.records] == ["config_warning"]


# ------------------------------------------------------------------------------- found by fuzzing (tests/fuzz)


def test_toml_nested_deeper_than_the_stack_is_a_config_error(tmp_path: Path) -> None:
    """tomllib parses arrays recursively: ``a = [[[...]]]`` 5,000 deep raised RecursionError out of load_config."""
    path = tmp_path / "config.toml"
    path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    assert [p.message for p in problems_of(path)] == ["not valid TOML: nested too deeply"]


def test_a_secret_file_path_with_a_nul_byte_is_a_config_error(write_config: WriteConfig) -> None:
    """``sig_secret_file = "\\u0000"`` raised ValueError (embedded null byte) out of load_config."""

    def nul_path(raw: dict[str, Any]) -> None:
        del raw["province"]["sig_secret"]
        raw["province"]["sig_secret_file"] = "a\x00b"

    assert "province.sig_secret_file" in keys_of(write_config(nul_path))


@pytest.mark.parametrize("web", [{"user": "admin"}, {"password": "a-long-password"}])
def test_the_status_page_takes_user_and_password_together(write_config: WriteConfig, web: dict[str, str]) -> None:
    def page(raw: dict[str, Any]) -> None:
        raw["web"].update(web)

    (problem,) = problems_of(write_config(page))
    assert problem.key == "web" and "user and password" in problem.message

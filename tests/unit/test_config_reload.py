"""``config.plan(old, new)``: what a reload applies now, and what waits for a restart (keeping its old value)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge_bridge.config import Config, plan
from tests.conftest import example_raw


def changed(change: Callable[[dict[str, Any]], None]) -> Config:
    raw = example_raw()
    change(raw)
    return Config.model_validate(raw)


OLD = changed(lambda raw: None)


def test_the_same_config_changes_nothing() -> None:
    result = plan(OLD, changed(lambda raw: None))
    assert (result.applied, result.restart, result.config) == ([], [], OLD)


def test_stations_tariffs_and_per_connection_settings_apply_now() -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["tariffs"]["default"]["periods"][0]["electricity"] = 9.5
        raw["stations"][0]["name"] = "新站名"
        raw["ocpp"]["heartbeat_interval_s"] = 60
        raw["logging"] = {"level": "debug"}
        raw["province"]["trace_wire"] = True  # the joint test turns it on without dropping a charger

    new = changed(change)
    result = plan(OLD, new)
    assert sorted(result.applied) == [
        "logging.level",
        "ocpp.heartbeat_interval_s",
        "province.trace_wire",
        "stations",
        "tariffs",
    ]
    assert result.restart == []
    assert result.config == new


def test_listeners_the_database_and_the_province_wait_for_a_restart_with_their_old_values() -> None:
    def change(raw: dict[str, Any]) -> None:
        raw["ocpp"]["listen"] = "0.0.0.0:9100"
        raw["ocpp"]["offline_after_s"] = 30
        raw["pull_api"]["listen"] = "0.0.0.0:8100"
        raw["storage"] = {"path": "/elsewhere.db"}
        raw["province"]["sig_secret"] = "AnotherSecret16!"
        raw["site"] = {"timezone": "Asia/Urumqi"}

    result = plan(OLD, changed(change))
    assert result.applied == ["ocpp.offline_after_s"]
    assert sorted(result.restart) == [
        "ocpp.listen",
        "province.sig_secret",
        "pull_api.listen",
        "site.timezone",
        "storage.path",
    ]
    kept = result.config
    assert (kept.ocpp.listen, kept.pull_api.listen, kept.storage.path) == (
        OLD.ocpp.listen,
        OLD.pull_api.listen,
        OLD.storage.path,
    )
    assert kept.province == OLD.province and kept.site == OLD.site
    assert kept.ocpp.offline_after_s == 30


def test_the_restart_list_names_keys_never_values() -> None:
    result = plan(OLD, changed(lambda raw: raw["province"].update(operator_secret="Leaked-Secret-16")))
    assert result.restart == ["province.operator_secret"]
    assert "Leaked" not in repr(result.restart)

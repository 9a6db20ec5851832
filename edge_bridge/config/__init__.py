"""The configuration: the TOML contract (spec/configuration.md), read, checked and turned into domain values.

Modules, importing one way only (``tests/unit/test_architecture.py`` holds them to it):
  models  the frozen pydantic models: one value's type and checks; imports no sibling
  site    ``site_model(config)``: the domain values (stations, chargers, tariffs) the rest of the program reads
  load    ``load_config(path)``: the file read, secrets and relative paths resolved, cross checks, TLS files loaded
  check   ``edge-bridge check-config``: the summary of a config for a human
  reload  ``plan(old, new)``: what a reload applies now, and what waits for a restart
"""

from edge_bridge.config.check import EXIT_CONFIG, check_config
from edge_bridge.config.load import load_config, load_config_with_warnings
from edge_bridge.config.models import DEFAULT_PATH, SECRET_NAMES, Config
from edge_bridge.config.reload import Plan, plan
from edge_bridge.config.site import site_model

__all__ = [
    "DEFAULT_PATH",
    "EXIT_CONFIG",
    "SECRET_NAMES",
    "Config",
    "Plan",
    "check_config",
    "load_config",
    "load_config_with_warnings",
    "plan",
    "site_model",
]

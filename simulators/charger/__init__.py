"""Simulated chargers for edge-bridge: ``Sim16`` (OCPP 1.6J, DC) and ``Sim201`` (OCPP 2.0.1, AC).

Each simulator is a real websocket client built on the ``ocpp`` library's ChargePoint. It sends what a charger sends
(boot, statuses, a session's messages with meter samples), answers what a CSMS may ask, queues while offline and
replays the queue in order with the original timestamps. Every timestamp it sends is ``SimClock`` time, so hours of
charging run in seconds. The real-world oddities of the charger spec (§9) are ``Quirks`` flags, methods (``flap``,
``security_event``, ``firmware_status``, ``data_transfer``, ``send_raw``) or arguments (``connect(boot=False)``,
``subprotocols=[]``).

Modules: ``clock`` (``SimClock``, ``iso``), ``records`` (``Quirks``, ``Sent``, ``Answer``, ``Tx``, ``Connector``,
``SimError``), ``link`` (the ocpp ChargePoint side), ``base`` (what both versions share), ``v16`` (``Sim16``),
``v201`` (``Sim201``), ``scenarios`` (the scripted scenarios and the ``edge-bridge-sim-charger`` command, ``main``).
Everything public is re-exported here.
"""

from simulators.charger.base import CLOSED, MAX_FRAME, MILLI_WH, POWER, TAG_TYPE, TIMEOUT, log
from simulators.charger.clock import SimClock, iso
from simulators.charger.records import Answer, Connector, Quirks, Sent, SimError, Tx, number, wh
from simulators.charger.scenarios import (
    QUIRKS,
    SCENARIOS,
    Plan,
    Sim,
    build_sim,
    fault,
    idle,
    main,
    offline_replay,
    run_scenario,
    session,
)
from simulators.charger.v16 import CONFIG16, Sim16
from simulators.charger.v201 import TRIGGER_REASONS, VARIABLES201, Sim201

__all__ = [
    "CLOSED",
    "CONFIG16",
    "MAX_FRAME",
    "MILLI_WH",
    "POWER",
    "QUIRKS",
    "SCENARIOS",
    "TAG_TYPE",
    "TIMEOUT",
    "TRIGGER_REASONS",
    "VARIABLES201",
    "Answer",
    "Connector",
    "Plan",
    "Quirks",
    "Sent",
    "Sim",
    "Sim16",
    "Sim201",
    "SimClock",
    "SimError",
    "Tx",
    "build_sim",
    "fault",
    "idle",
    "iso",
    "log",
    "main",
    "number",
    "offline_replay",
    "run_scenario",
    "session",
    "wh",
]

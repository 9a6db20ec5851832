"""The use-case layer: what happens when a charger reports, when time passes, and when the province accepts a push.

Each room loads what its decision needs, asks the pure domain for an outcome (state + pushes + order) and writes it,
all in the caller's store transaction (a plain function of a ``Tx``, run inside a ``Database`` unit):

- ``charger_events``: what chargers report (boot, statuses, meter values, transactions, faults), ocpp-bridge §2-§5;
- ``sessions``: writing a session decision (zombies closed, connectors restatused, pushes queued);
- ``connectors``: the provincial Status and live readings of connectors (§5);
- ``liveness``: chargers connecting, going silent and coming back, and zombie sessions (§4, §5);
- ``alarms``: raise/recover pairs (§7); ``orders``: the order of a finished session and its accept hook (§6, D10);
- ``station_info``: notification_stationInfo at start-up and on a changed BootNotification, and its accept hook (D7);
- ``writer``: group commit: many messages in one transaction, each answered only after its COMMIT;
- ``bridge``: ``ChargerBridge``, what the charger side (``charger/``) calls.
"""

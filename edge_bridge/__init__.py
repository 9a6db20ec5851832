"""edge-bridge: OCPP Central System that reports to the Shandong provincial charging platform."""

__version__ = "0.1.0"

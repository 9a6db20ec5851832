"""``python -m simulators.charger`` is the ``edge-bridge-sim-charger`` command."""

import sys

from simulators.charger.scenarios import main

sys.exit(main())

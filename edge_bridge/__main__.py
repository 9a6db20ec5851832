"""``python -m edge_bridge`` is the ``edge-bridge`` command."""

import sys

from edge_bridge.cli import main

sys.exit(main())

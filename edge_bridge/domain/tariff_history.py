"""A station's tariffs over time: which prices were in force at each moment (a reload or a restart changes them).

Pure. A :class:`TariffHistory` is a list of versions, each in force from its ``since`` (aware UTC) until the next
one's; the first is also in force before its ``since`` (a session that a charger replays from before the first
start of the bridge is priced by the first tariff the bridge knew). A session that spans a change is priced by the
old tariff up to the change and by the new one after it (D13 cuts it there, as at a period edge).

``tariff_text`` / ``tariff_from_text`` are the stored form: the periods as JSON, prices as decimal strings.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from edge_bridge.domain.site import Tariff, TariffPeriod

EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")  # the since of a tariff in force at every moment


@dataclass(frozen=True)
class TariffHistory:
    versions: tuple[tuple[datetime, Tariff], ...]  # (since, tariff), oldest first; never empty

    @classmethod
    def of(cls, tariff: Tariff) -> TariffHistory:
        """One tariff, in force at every moment."""
        return cls(((EPOCH, tariff),))

    def at(self, moment: datetime) -> Tariff:
        """The tariff in force at ``moment``."""
        current = self.versions[0][1]
        for since, tariff in self.versions[1:]:
            if since > moment:
                break
            current = tariff
        return current

    def windows(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime, Tariff]]:
        """(from, to, tariff) covering start..end, cut at each change inside it; one window when end <= start."""
        cuts = [since for since, _ in self.versions[1:] if start < since < end]
        edges = [start, *cuts, max(start, end)]
        return [(a, b, self.at(a)) for a, b in itertools.pairwise(edges)]


def tariff_text(tariff: Tariff) -> str:
    """The stored form of a tariff: its name and periods, prices as decimal strings (exact)."""
    periods = [[p.start_min, p.end_min, str(p.electricity), str(p.service)] for p in tariff.periods]
    return json.dumps({"name": tariff.name, "periods": periods}, separators=(",", ":"))


def tariff_from_text(text: str) -> Tariff:
    """The tariff of :func:`tariff_text`; raises ValueError for text it did not write."""
    try:
        raw = json.loads(text)
        periods = tuple(TariffPeriod(int(a), int(b), Decimal(e), Decimal(s)) for a, b, e, s in raw["periods"])
        return Tariff(str(raw["name"]), periods)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ValueError(f"not a stored tariff: {type(exc).__name__}") from None

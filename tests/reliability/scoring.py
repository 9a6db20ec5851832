"""The one line every fault-injection scenario prints, and how it is counted.

A scenario knows which charging sessions the chargers completed (a key per session: the connector and the start time
the charger reported, or any key that names one session) and which orders the mock province accepted (the same key for
each accepted order, repeats included). ``score`` turns them into a ``Scenario``; ``record`` keeps it for the end of
the run, where ``tests/conftest.py`` prints every line:

    scenario NAME: sessions S, orders accepted A, lost L, duplicated D

The province keeps orders by StartChargeSeq, as the real one does: a resend identical to an order it already accepted
(the daemon died, or the answer was lost, after the province kept it and before the daemon stored the answer) is
de-duplicated there and is not a new acceptance. Scenarios leave such resends out of ``accepted`` and report their
number on a line of their own (``tests/reliability/conftest.py``, ``province_orders``); at-least-once delivery makes
them unavoidable, and the identical StartChargeSeq is what makes them harmless. A changed resend under the same
StartChargeSeq is refused by the mock province (ConfirmResult 1) and fails the scenario through its problems.

lost: completed sessions with no accepted order. duplicated: accepted orders beyond the first of their session (the
same session accepted as a second order, under another StartChargeSeq). An accepted order of no completed session is
a phantom: the scenario fails on it (``Scenario.phantoms``), as it fails on any loss or duplicate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

RECORDED: list[Scenario] = []
FIGURES: list[str] = []  # other lines a run prints at its end (sizes, seeds, resends)


@dataclass(frozen=True)
class Scenario:
    name: str
    sessions: int
    accepted: int
    lost: int
    duplicated: int
    phantoms: int = 0

    def line(self) -> str:
        return (
            f"scenario {self.name}: sessions {self.sessions}, orders accepted {self.accepted}, "
            f"lost {self.lost}, duplicated {self.duplicated}"
        )

    @property
    def perfect(self) -> bool:
        return self.lost == self.duplicated == self.phantoms == 0


def score(name: str, completed: Iterable[Hashable], accepted: Iterable[Hashable]) -> Scenario:
    sessions = set(completed)
    counts = Counter(accepted)
    return Scenario(
        name=name,
        sessions=len(sessions),
        accepted=sum(counts.values()),
        lost=len(sessions - counts.keys()),
        duplicated=sum(n - 1 for n in counts.values()),
        phantoms=len(counts.keys() - sessions),
    )


def record(scenario: Scenario) -> Scenario:
    """Keep the line for the run's summary and return the scenario (assert ``.perfect`` on it)."""
    RECORDED.append(scenario)
    print(scenario.line())
    return scenario


def figure(line: str) -> None:
    """A line of figures (a size, a seed to rerun with) for the run's summary, after the scenario lines."""
    FIGURES.append(line)
    print(line)

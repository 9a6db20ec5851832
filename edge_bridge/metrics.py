"""Prometheus metrics for ``/metrics`` (the only module that imports ``prometheus_client``).

``Metrics`` holds one daemon's figures in its own ``CollectorRegistry``, never the process's global one: tests run
several Apps in one process, and each App's counts start at zero. The web server's ``/metrics`` route answers with
``await metrics.scrape()`` (the store figures read, then ``exposition(registry)``).

Invariants:
- The hot path (an OCPP answer, a group commit, a push) only adds to plain ints, dicts and lists on the event loop:
  no ``prometheus_client`` value objects there (each takes a ``threading.Lock`` per increment), no allocation
  beyond the increment, no I/O. Everything becomes metric families at scrape time, in ``_Collector.collect``.
- Label values are bounded: the caller maps an OCPP action outside its version's list to ``other`` and a frame that
  is no message to ``invalid``; a Ret the protocol does not define counts as ``other``, no Ret (HTTP error,
  timeout) as ``none``.
- What the store holds (pending pushes and the age of the oldest, by interface; dead letters) is read at scrape
  time, once per scrape, through a read-only connection on its own thread (``store/reader.py``): the one bound in
  ``Sources.store`` (the page's), else one of its own on ``Sources.database``, opened at the first scrape and
  closed by ``close()``. A scrape never waits for a group commit nor delays one. A failed read leaves those
  figures out of that scrape (logged once per streak); the other figures are still answered.
- Connected chargers, token refreshes, component liveness and the database's size are read from their owners when
  scraped (``Sources``), never copied on a timer.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from edge_bridge.errors import StoreError
from edge_bridge.provincial import codec
from edge_bridge.provincial.client import Outcome, PushResult
from edge_bridge.store import overview
from edge_bridge.store.db import Tx
from edge_bridge.store.reader import ReadOnlyStore
from edge_bridge.timeutil import utc_now

log = logging.getLogger(__name__)

T = TypeVar("T")
PREFIX = "edge_bridge_"
OCPP_VERSIONS = ("1.6", "2.0.1")  # always exposed, 0 when none is connected
ANSWER_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)  # the writer's max_batch is 256
KNOWN_RETS = frozenset(
    (
        codec.RET_OK,
        codec.RET_BUSY,
        codec.RET_SIGNATURE,
        codec.RET_TOKEN,
        codec.RET_ENVELOPE,
        codec.RET_DATA,
        codec.RET_SYSTEM,
    )
)
Sender = Callable[[str, bytes], Awaitable[PushResult]]


class Reads(Protocol):
    """A store reader (``store.reader.ReadOnlyStore``, or ``store.db.Database``)."""

    async def read(self, work: Callable[[Tx], T]) -> T: ...


class Histogram:
    """Bucket counts kept as plain ints (``observe`` is a bisect and two additions); cumulative at scrape time."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf only)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le is inclusive: value <= bound
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


@dataclass
class Sources:
    """What a scrape reads from the running parts, bound by ``App.run`` as they start; unbound ones are left out."""

    store: Reads | None = None
    database: Path | None = None
    connected: Callable[[], Iterable[str]] = tuple  # the OCPP version of each connected charger
    tokens_fetched: Callable[[], int] | None = None
    components: Mapping[str, Callable[[], bool]] = field(default_factory=dict)


@dataclass(frozen=True)
class _StoreFigures:
    depths: list[overview.Depth]
    dead: int


def _store_figures(tx: Tx) -> _StoreFigures:
    dead, _ = overview.dead_letters(tx, 0)
    return _StoreFigures(overview.pending_depths(tx), dead)


class Metrics:
    """One daemon's figures and its registry. Hooks: ``answered`` (OCPP), ``batch_committed`` (the writer),
    ``counting(send)`` (pushes); ``await scrape()`` for ``/metrics``."""

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self.sources = Sources()
        self.messages: defaultdict[str, Counter[str]] = defaultdict(Counter)  # action → outcome → count
        self.answer_seconds = Histogram(ANSWER_BUCKETS_S)
        self.batch_units = Histogram(BATCH_BUCKETS)
        self.pushes: Counter[tuple[str, str, str]] = Counter()  # (interface, ret, outcome) → count
        self.dead_lettered: Counter[str] = Counter()  # interface → pushes dead-lettered by this daemon
        self.last_accepted: dict[str, float] = {}  # interface → Unix time of its last accepted push
        self._store: _StoreFigures | None = None
        self._reader: ReadOnlyStore | None = None  # our own, when no reader is bound
        self._store_failing = False
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    # -------------------------------------------------------------------------------------------- hooks (hot)

    def answered(self, action: str, outcome: str, seconds: float) -> None:
        """One CALL answered: ``outcome`` is ``result`` or the CALLERROR's code; ``seconds`` from frame to answer."""
        self.messages[action][outcome] += 1
        self.answer_seconds.observe(seconds)

    def batch_committed(self, units: int) -> None:
        self.batch_units.observe(units)

    def counting(self, send: Sender) -> Sender:
        """``send`` (the uploader's Sender), each answer counted by interface, Ret and outcome."""

        async def counted(interface: str, payload: bytes) -> PushResult:
            result = await send(interface, payload)
            self.pushed(interface, result)
            return result

        return counted

    def pushed(self, interface: str, result: PushResult) -> None:
        ret = "none" if result.ret is None else str(result.ret) if result.ret in KNOWN_RETS else "other"
        self.pushes[(interface, ret, result.outcome.value)] += 1
        if result.outcome is Outcome.ACCEPTED:
            self.last_accepted[interface] = self._clock().timestamp()
        elif result.outcome is Outcome.PERMANENT:
            self.dead_lettered[interface] += 1

    # -------------------------------------------------------------------------------------------- scrape

    async def scrape(self) -> tuple[bytes, str]:
        """Read the store's figures, then the text exposition: ``(body, content type)``."""
        await self.refresh()
        return exposition(self.registry)

    async def refresh(self) -> None:
        """Read the outbox figures from the store (one read transaction)."""
        store = self.sources.store or self._own_reader()
        if store is None:
            return
        try:
            self._store = await store.read(_store_figures)
        except StoreError as exc:
            self._store = None
            if not self._store_failing:
                log.warning("metrics_store_unreadable", extra={"error": str(exc)})
            self._store_failing = True
            return
        self._store_failing = False

    def _own_reader(self) -> ReadOnlyStore | None:
        if self._reader is None and self.sources.database is not None:
            self._reader = ReadOnlyStore(self.sources.database)
        return self._reader

    async def close(self) -> None:
        """Close our own reader, if a scrape opened one."""
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    def store_families(self) -> Iterator[Metric]:
        figures = self._store
        if figures is None:
            return
        now = self._clock()
        pending = GaugeMetricFamily(
            PREFIX + "outbox_pending", "Pushes waiting to go, by interface", labels=["interface"]
        )
        age = GaugeMetricFamily(
            PREFIX + "outbox_oldest_pending_age_seconds", "Age of the oldest pending push", labels=["interface"]
        )
        ages = dict.fromkeys(sorted({interface for interface, _, _ in self.pushes}), 0.0)  # 0 when none pending
        depths = dict.fromkeys(ages, 0)
        for depth in figures.depths:
            depths[depth.interface] = depth.pending
            ages[depth.interface] = max(0.0, (now - depth.oldest).total_seconds())
        for interface, count in depths.items():
            pending.add_metric([interface], count)
            age.add_metric([interface], ages[interface])
        yield pending
        yield age
        yield GaugeMetricFamily(PREFIX + "outbox_dead_letters", "Dead letters held in the outbox", value=figures.dead)


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Collector:
    """Turns the plain counts of a ``Metrics`` into metric families when the registry is collected."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        yield _connected(m.sources.connected())
        yield _messages(m.messages)
        yield _histogram("ocpp_answer_seconds", "OCPP CALL received to its answer sent", m.answer_seconds)
        yield _histogram("commit_batch_units", "Units of work per group commit", m.batch_units)
        yield _pushes(m.pushes)
        yield _by_interface(CounterMetricFamily, "dead_lettered", "Pushes dead-lettered", m.dead_lettered)
        yield _by_interface(
            GaugeMetricFamily, "last_accepted_push_timestamp_seconds", "Last accepted push", m.last_accepted
        )
        yield from _source_families(m.sources)
        yield from m.store_families()


def _connected(versions: Iterable[str]) -> Metric:
    counts = Counter(dict.fromkeys(OCPP_VERSIONS, 0))
    counts.update(versions)
    family = GaugeMetricFamily(PREFIX + "chargers_connected", "Chargers connected", labels=["ocpp_version"])
    for version, n in sorted(counts.items()):
        family.add_metric([version], n)
    return family


def _messages(messages: Mapping[str, Counter[str]]) -> Metric:
    family = CounterMetricFamily(
        PREFIX + "ocpp_messages", "OCPP CALLs answered, by action and outcome", labels=["action", "outcome"]
    )
    for action, outcomes in sorted(messages.items()):
        for outcome, n in sorted(outcomes.items()):
            family.add_metric([action, outcome], n)
    return family


def _histogram(name: str, documentation: str, histogram: Histogram) -> Metric:
    family = HistogramMetricFamily(PREFIX + name, documentation)
    family.add_metric([], histogram.buckets(), histogram.total)
    return family


def _pushes(pushes: Mapping[tuple[str, str, str], int]) -> Metric:
    family = CounterMetricFamily(
        PREFIX + "pushes",
        "Pushes to the province by interface, Ret and outcome",
        labels=["interface", "ret", "outcome"],
    )
    for labels, n in sorted(pushes.items()):
        family.add_metric(list(labels), n)
    return family


def _by_interface(
    kind: type[CounterMetricFamily | GaugeMetricFamily], name: str, documentation: str, values: Mapping[str, float]
) -> Metric:
    family = kind(PREFIX + name, documentation, labels=["interface"])
    for interface, value in sorted(values.items()):
        family.add_metric([interface], value)
    return family


def _source_families(sources: Sources) -> Iterator[Metric]:
    if sources.tokens_fetched is not None:
        yield CounterMetricFamily(
            PREFIX + "token_refreshes", "Access tokens fetched from the province", value=sources.tokens_fetched()
        )
    up = GaugeMetricFamily(PREFIX + "component_up", "1 while the component is alive", labels=["component"])
    for name, alive in sorted(sources.components.items()):
        up.add_metric([name], 1 if alive() else 0)
    yield up
    if sources.database is not None:
        size = GaugeMetricFamily(PREFIX + "database_size_bytes", "The SQLite database, by file", labels=["file"])
        for name, path in (("main", sources.database), ("wal", Path(f"{sources.database}-wal"))):
            size.add_metric([name], _size(path))
        yield size


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:  # no WAL file between checkpoints, or the file went away
        return 0

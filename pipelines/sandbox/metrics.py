"""The router's per-version counters, their history, and their Prometheus exposition.

A shadow's answers to mirrored copies are counted apart from the traffic routed to its version
(``VersionCounters.shadow``, exposed with ``variant="shadow"``), as CloudWatch reports a shadow
variant under its own ``VariantName``: the copies were never a client's requests.

Counters only ever grow. Once a second the book takes a snapshot, and ``/metrics?at=T``
serves the snapshot at or before ``T``; the difference of two readings is an exact window,
which is how ``LocalMetricsSource`` asks for any ``[start, end)`` from any process.
"""

from __future__ import annotations

import bisect
import copy
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from pipelines.metrics import exposition as expo
from pipelines.serving.series import LATENCY_BUCKETS_MS, PREDICTION_BINS

HISTORY_SECONDS = 2 * 3600
"""How far back ``/metrics?at=`` can look; older windows read the oldest snapshot kept."""


@dataclass
class Traffic:
    """Requests answered by one variant of a version: statuses, model latency and predictions."""

    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    latency_sum_ms: float = 0.0
    predictions: list[int] = field(default_factory=lambda: [0] * PREDICTION_BINS)

    def count(self, status: int, latency_ms: float | None, bins: list[int]) -> None:
        self.invocations += 1
        if 400 <= status < 500:
            self.errors_4xx += 1
        elif status >= 500:
            self.errors_5xx += 1
        if latency_ms is not None:
            self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
            self.latency_sum_ms += latency_ms
        for index in bins:
            self.predictions[index] += 1


@dataclass
class VersionCounters(Traffic):
    """Everything counted for one version of one service: its own fields are the traffic routed to
    it (what clients were answered), ``shadow`` its answers to mirrored copies as a shadow."""

    labelled: int = 0
    correct: int = 0
    restarts: int = 0
    agreed: int = 0
    """As a shadow: its predictions that agreed with production's on the same mirrored request."""
    disagreed: int = 0
    mirrors_dropped: int = 0
    """As a shadow: production requests drawn for mirroring that found its queue full."""
    shadow: Traffic = field(default_factory=Traffic)
    """As a shadow: its answers to mirrored copies, which no client saw. Counted apart from the
    version's own traffic (exposed with ``variant="shadow"``), so a candidate that was the shadow
    and then is the canary never has the copies counted as the canary's requests."""

    @property
    def shadowed(self) -> bool:
        """Whether anything was counted for this version as a shadow."""
        return bool(self.agreed or self.disagreed or self.mirrors_dropped or self.shadow.invocations)


@dataclass
class Reading:
    """The book at one moment: counters, plus each service's roles, weights and alarms."""

    at: float
    counters: dict[tuple[str, str], VersionCounters]
    roles: dict[str, dict[str, str]]
    weights: dict[str, dict[str, float]]
    alarms: dict[str, dict[str, str]]


class MetricsBook:
    """Thread-safe counters for every (service, version) the router has served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], VersionCounters] = {}
        self._roles: dict[str, dict[str, str]] = {}
        self._weights: dict[str, dict[str, float]] = {}
        self._alarms: dict[str, dict[str, str]] = {}
        self._history: deque[Reading] = deque(maxlen=HISTORY_SECONDS)

    def _version(self, service: str, version: str) -> VersionCounters:
        return self._counters.setdefault((service, version), VersionCounters())

    def invocation(
        self,
        service: str,
        version: str,
        status: int,
        latency_ms: float | None,
        bins: list[int],
        *,
        shadow: bool = False,
    ) -> None:
        """One request: its status, its model latency when the server answered, and the histogram
        bin of each of its predictions (``ServedOutput.read_predictions``). ``shadow``: the answer of
        the shadow ``version`` to a mirrored copy, counted apart from the requests routed to it."""
        with self._lock:
            counters = self._version(service, version)
            (counters.shadow if shadow else counters).count(status, latency_ms, bins)

    def label(self, service: str, version: str, correct: bool) -> None:
        with self._lock:
            counters = self._version(service, version)
            counters.labelled += 1
            counters.correct += int(correct)

    def comparison(self, service: str, version: str, paired: int, agreed: int) -> None:
        """The shadow ``version``'s answer to one mirrored request, compared with production's:
        ``paired`` predictions, ``agreed`` of them the same (``ServedOutput.agreement``)."""
        with self._lock:
            counters = self._version(service, version)
            counters.agreed += agreed
            counters.disagreed += paired - agreed

    def mirror_dropped(self, service: str, version: str) -> None:
        with self._lock:
            self._version(service, version).mirrors_dropped += 1

    def restart(self, service: str, version: str) -> None:
        with self._lock:
            self._version(service, version).restarts += 1

    def set_service(
        self, service: str, roles: dict[str, str], weights: dict[str, float], alarms: dict[str, str]
    ) -> None:
        """The service's live versions with their roles and weights, and its alarms in ALARM."""
        with self._lock:
            for version in roles:
                self._version(service, version)
            self._roles[service] = dict(roles)
            self._weights[service] = dict(weights)
            self._alarms[service] = dict(alarms)

    def snapshot(self, now: float | None = None) -> None:
        """Remember the current reading (called once a second)."""
        reading = self._read(time.time() if now is None else now)
        with self._lock:
            self._history.append(reading)

    def _read(self, at: float) -> Reading:
        with self._lock:
            return Reading(
                at=at,
                counters=copy.deepcopy(self._counters),
                roles=copy.deepcopy(self._roles),
                weights=copy.deepcopy(self._weights),
                alarms=copy.deepcopy(self._alarms),
            )

    def reading(self, at: float | None = None) -> Reading:
        """The live reading, or the last snapshot taken at or before ``at`` (zeros before the first)."""
        now = time.time()
        if at is None or at >= now:
            return self._read(now)
        with self._lock:
            history = list(self._history)
        times = [reading.at for reading in history]
        index = bisect.bisect_right(times, at) - 1
        if index >= 0:
            return history[index]
        if history and len(history) == self._history.maxlen:
            return history[0]
        return Reading(at=at, counters={}, roles={}, weights={}, alarms={})

    def exposition(self, at: float | None = None) -> str:
        """Prometheus text for the reading at ``at`` (now by default)."""
        return expo.render(samples(self.reading(at)))


def _traffic(families: dict[str, list[expo.Sample]], labels: dict[str, str], traffic: Traffic) -> None:
    """The request, error, latency and prediction samples of one variant of one version."""
    families[expo.INVOCATIONS].append(expo.Sample(expo.INVOCATIONS, labels, traffic.invocations))
    for code_class, count in (("4xx", traffic.errors_4xx), ("5xx", traffic.errors_5xx)):
        families[expo.ERRORS].append(expo.Sample(expo.ERRORS, {**labels, "code_class": code_class}, count))
    cumulative = 0
    for bound, count in zip((*LATENCY_BUCKETS_MS, float("inf")), traffic.latency_counts, strict=True):
        cumulative += count
        families[expo.LATENCY].append(
            expo.Sample(f"{expo.LATENCY}_bucket", {**labels, "le": expo.latency_le(bound)}, cumulative)
        )
    families[expo.LATENCY].append(
        expo.Sample(f"{expo.LATENCY}_sum", labels, round(traffic.latency_sum_ms / 1000, 6))
    )
    families[expo.LATENCY].append(expo.Sample(f"{expo.LATENCY}_count", labels, cumulative))
    for index, count in enumerate(traffic.predictions):
        families[expo.PREDICTIONS].append(expo.Sample(expo.PREDICTIONS, {**labels, "bin": str(index)}, count))


def samples(reading: Reading) -> list[expo.Sample]:
    """Every sample of a reading, grouped by metric family as the exposition format wants.

    A version's traffic has the labels ``service`` and ``version``; a shadow's answers to mirrored
    copies are the same families with ``variant="shadow"`` besides, written for a version that is
    or was a shadow."""
    families: dict[str, list[expo.Sample]] = {name: [] for name in expo.HELP}
    for (service, version), c in sorted(reading.counters.items()):
        labels = {"service": service, "version": version}
        shadowed = c.shadowed or reading.roles.get(service, {}).get(version) == "shadow"
        _traffic(families, labels, c)
        if shadowed:
            _traffic(families, {**labels, expo.VARIANT_LABEL: expo.SHADOW_VARIANT}, c.shadow)
        families[expo.LABELS].append(expo.Sample(expo.LABELS, labels, c.labelled))
        families[expo.LABELS_CORRECT].append(expo.Sample(expo.LABELS_CORRECT, labels, c.correct))
        families[expo.RESTARTS].append(expo.Sample(expo.RESTARTS, labels, c.restarts))
        if shadowed:
            for result, count in (("agreed", c.agreed), ("disagreed", c.disagreed)):
                families[expo.SHADOW_COMPARISONS].append(
                    expo.Sample(expo.SHADOW_COMPARISONS, {**labels, "result": result}, count)
                )
            families[expo.SHADOW_MIRRORS_DROPPED].append(
                expo.Sample(expo.SHADOW_MIRRORS_DROPPED, labels, c.mirrors_dropped)
            )
    for service, weights in sorted(reading.weights.items()):
        for version, weight in sorted(weights.items()):
            families[expo.WEIGHT].append(
                expo.Sample(expo.WEIGHT, {"service": service, "version": version}, weight)
            )
    for service, roles in sorted(reading.roles.items()):
        for version, role in sorted(roles.items()):
            labels = {"service": service, "version": version, "role": role}
            families[expo.VARIANT_INFO].append(expo.Sample(expo.VARIANT_INFO, labels, 1))
    for service, alarms in sorted(reading.alarms.items()):
        for guardrail in sorted(alarms):
            labels = {"service": service, "guardrail": guardrail}
            families[expo.ALARM].append(expo.Sample(expo.ALARM, labels, 1))
    return [sample for family in families.values() for sample in family]

"""``LocalMetricsSource``: windows from the sandbox router's ``/metrics``, alarms through its control API.

The router keeps a reading of its counters every second and serves any of them with
``/metrics?at=T``, so a window is the difference between the readings at ``end`` and at
``start``, exact to a second and independent of who asked before. Which version is the
baseline and which the canary comes from the ``modelrail_variant_info`` roles at ``end``
(or at ``start`` if the canary was already gone by ``end``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pipelines.metrics import prometheus as prom
from pipelines.metrics.stats import (
    LATENCY_BUCKETS_MS,
    PREDICTION_BINS,
    CanaryWindow,
    LatencyHistogram,
    VariantStats,
)


class SandboxMetrics(Protocol):
    """What the source needs from ``SandboxClient``."""

    def metrics_text(self, at: float | None = None) -> str: ...

    def trip_alarm(self, service: str, guardrail: str, reason: str) -> None: ...


@dataclass
class _Counters:
    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency_cumulative: dict[float, int] = field(default_factory=dict)
    predictions: list[int] = field(default_factory=lambda: [0] * PREDICTION_BINS)
    labelled: int = 0
    correct: int = 0


@dataclass(frozen=True)
class ServiceReading:
    """One service at one moment: cumulative counters per version, and the versions' roles."""

    counters: dict[str, VariantStats]
    roles: dict[str, str]


def read_service(samples: Sequence[prom.Sample], service: str) -> ServiceReading:
    """Cumulative ``VariantStats`` per version of ``service`` from parsed exposition."""
    by_version: dict[str, _Counters] = {}
    roles: dict[str, str] = {}
    for sample in samples:
        labels = sample.labels
        if labels.get("service") != service or "version" not in labels:
            continue
        version = labels["version"]
        if sample.name == prom.VARIANT_INFO:
            roles[version] = labels.get("role", "")
            continue
        c = by_version.setdefault(version, _Counters())
        value = int(sample.value) if sample.value != float("inf") else 0
        if sample.name == prom.INVOCATIONS:
            c.invocations = value
        elif sample.name == prom.ERRORS:
            if labels.get("code_class") == "4xx":
                c.errors_4xx = value
            elif labels.get("code_class") == "5xx":
                c.errors_5xx = value
        elif sample.name == f"{prom.LATENCY}_bucket":
            c.latency_cumulative[float(labels["le"].replace("Inf", "inf"))] = value
        elif sample.name == prom.PREDICTIONS:
            index = int(labels["bin"])
            if 0 <= index < PREDICTION_BINS:
                c.predictions[index] = value
        elif sample.name == prom.LABELS:
            c.labelled = value
        elif sample.name == prom.LABELS_CORRECT:
            c.correct = value
    return ServiceReading({version: _stats(version, c) for version, c in by_version.items()}, roles)


def _stats(version: str, c: _Counters) -> VariantStats:
    cumulative = [c.latency_cumulative.get(bound, 0) for bound in (*LATENCY_BUCKETS_MS, float("inf"))]
    counts = tuple(max(b - a, 0) for a, b in zip([0, *cumulative[:-1]], cumulative, strict=True))
    return VariantStats.from_histogram(
        invocations=c.invocations,
        errors_4xx=c.errors_4xx,
        errors_5xx=c.errors_5xx,
        latency=LatencyHistogram(LATENCY_BUCKETS_MS, counts),
        predictions=tuple(c.predictions),
        labelled=c.labelled,
        correct=min(c.correct, c.labelled),
        version=version,
    )


def difference(after: VariantStats, before: VariantStats | None) -> VariantStats:
    """What happened between two cumulative readings of one version."""
    if before is None:
        return after
    latency_after = after.latency_histogram or LatencyHistogram()
    latency_before = before.latency_histogram or LatencyHistogram()
    labelled = max(after.labelled - before.labelled, 0)
    return VariantStats.from_histogram(
        invocations=max(after.invocations - before.invocations, 0),
        errors_4xx=max(after.errors_4xx - before.errors_4xx, 0),
        errors_5xx=max(after.errors_5xx - before.errors_5xx, 0),
        latency=latency_after.minus(latency_before),
        predictions=tuple(
            max(a - b, 0)
            for a, b in zip(after.prediction_histogram, before.prediction_histogram, strict=True)
        ),
        labelled=labelled,
        correct=min(max(after.correct - before.correct, 0), labelled),
        version=after.version,
    )


class LocalMetricsSource:
    """The ``MetricsSource`` of the local sandbox."""

    READINGS_KEPT = 8

    def __init__(self, client: SandboxMetrics) -> None:
        self.client = client
        self._readings: dict[float, str] = {}
        """Recent readings by time, so back-to-back windows share their boundary reading exactly."""

    def _reading(self, service: str, at: float) -> ServiceReading:
        text = self._readings.get(at)
        if text is None:
            text = self.client.metrics_text(at=at)
            self._readings[at] = text
            while len(self._readings) > self.READINGS_KEPT:
                del self._readings[min(self._readings)]
        return read_service(prom.parse(text), service)

    def window(
        self, service: str, start: float, end: float, *, rollout_start: float | None = None
    ) -> CanaryWindow:
        """Both fleets side by side over ``[start, end)``: the rollout's start does not matter here."""
        if end < start:
            raise ValueError(f"a window ends after it starts: start={start}, end={end}")
        before = self._reading(service, start)
        after = self._reading(service, end)
        roles = after.roles if "canary" in after.roles.values() else {**after.roles, **before.roles}
        baseline = canary = None
        for version, role in roles.items():
            stats = difference(
                after.counters.get(version, VariantStats(version=version)), before.counters.get(version)
            )
            if role == "baseline":
                baseline = stats
            elif role == "canary":
                canary = stats
        return CanaryWindow(start=start, end=end, baseline=baseline or VariantStats(), canary=canary)

    def breach(self, service: str, guardrail: str, value: float, reason: str) -> None:
        """Trip the sandbox's alarm; a deployment in flight rolls back to the old version at once."""
        self.client.trip_alarm(service, guardrail, f"{reason} (observed {value:g})")

"""Per-version stats from exposition samples, and the window they make: what both the sandbox's
own source (``LocalMetricsSource``, cumulative readings) and the PromQL source
(``PrometheusMetricsSource``, increases over the window) assemble, written once.

Both hand over samples named and labelled as the router exposes them
(``pipelines.metrics.exposition``): ``service`` and ``version`` on every series, ``code_class``
on errors, ``le`` on latency buckets, ``bin`` on predictions, ``role`` on the variant info.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipelines.metrics import exposition as expo
from pipelines.metrics.stats import CanaryWindow, LatencyHistogram, VariantStats
from pipelines.serving.series import LATENCY_BUCKETS_MS, PREDICTION_BINS


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
    """One service: counters per version (cumulative, or over a window), and the versions' roles."""

    counters: dict[str, VariantStats]
    roles: dict[str, str]


def read_service(samples: Sequence[expo.Sample], service: str) -> ServiceReading:
    """``VariantStats`` per version of ``service`` from samples in the router's exposition shape.

    Values are read as whole counts (``int``): a source whose numbers are not whole, such as
    Prometheus' extrapolated ``increase``, rounds them before.
    """
    by_version: dict[str, _Counters] = {}
    roles: dict[str, str] = {}
    for sample in samples:
        labels = sample.labels
        if labels.get("service") != service or "version" not in labels:
            continue
        version = labels["version"]
        if sample.name == expo.VARIANT_INFO:
            roles[version] = labels.get("role", "")
            continue
        c = by_version.setdefault(version, _Counters())
        value = int(sample.value) if sample.value != float("inf") else 0
        if sample.name == expo.INVOCATIONS:
            c.invocations = value
        elif sample.name == expo.ERRORS:
            if labels.get("code_class") == "4xx":
                c.errors_4xx = value
            elif labels.get("code_class") == "5xx":
                c.errors_5xx = value
        elif sample.name == f"{expo.LATENCY}_bucket":
            c.latency_cumulative[expo.latency_bound_ms(labels["le"])] = value
        elif sample.name == expo.PREDICTIONS:
            index = int(labels["bin"])
            if 0 <= index < PREDICTION_BINS:
                c.predictions[index] = value
        elif sample.name == expo.LABELS:
            c.labelled = value
        elif sample.name == expo.LABELS_CORRECT:
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


def window_roles(at_start: Mapping[str, str], at_end: Mapping[str, str]) -> dict[str, str]:
    """Which version was baseline and which canary over a window.

    The roles at ``end``, unless the canary was gone by then (promoted or rolled back during the
    window): then the roles at ``start`` fill in, so the window still judges the canary it saw.
    """
    if "canary" in at_end.values():
        return dict(at_end)
    return {**at_end, **at_start}


def canary_window(
    start: float, end: float, roles: Mapping[str, str], stats: Mapping[str, VariantStats]
) -> CanaryWindow:
    """The window of the versions with a role; a version with a role but no stats had no traffic."""
    baseline = canary = None
    for version, role in roles.items():
        variant = stats.get(version, VariantStats(version=version))
        if role == "baseline":
            baseline = variant
        elif role == "canary":
            canary = variant
    return CanaryWindow(start=start, end=end, baseline=baseline or VariantStats(), canary=canary)

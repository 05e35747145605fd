"""What a metrics source reports about one variant over one time window.

Everything here is a count or a histogram, never a precomputed rate, so that windows can be
added together (``VariantStats.merged``) and the canary analysis can run proper statistical
tests on the raw numbers instead of comparing noisy ratios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pipelines.serving.series import LATENCY_BUCKETS_MS, PREDICTION_BINS

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


@dataclass(frozen=True)
class LatencyHistogram:
    """Request counts per latency bucket: ``counts[i]`` are requests ≤ ``bounds[i]`` and > the previous bound.

    ``counts`` has one more entry than ``bounds``: the overflow bucket above the last bound.
    """

    bounds: tuple[float, ...] = LATENCY_BUCKETS_MS
    counts: tuple[int, ...] = field(default_factory=lambda: (0,) * (len(LATENCY_BUCKETS_MS) + 1))

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError(
                f"a latency histogram needs {len(self.bounds) + 1} counts for {len(self.bounds)} bounds, "
                f"got {len(self.counts)}"
            )
        if any(b <= a for a, b in zip(self.bounds, self.bounds[1:], strict=False)):
            raise ValueError(f"latency bucket bounds must increase: {self.bounds}")

    @classmethod
    def of(cls, latencies_ms: ArrayLike, bounds: tuple[float, ...] = LATENCY_BUCKETS_MS) -> LatencyHistogram:
        """Bucket raw latencies (used by simulations and tests)."""
        import numpy as np

        edges = np.asarray(bounds, dtype=float)
        index = np.searchsorted(edges, np.asarray(latencies_ms, dtype=float), side="left")
        counts = np.bincount(index, minlength=len(bounds) + 1)
        return cls(bounds, tuple(int(c) for c in counts))

    @property
    def total(self) -> int:
        return sum(self.counts)

    def merged(self, other: LatencyHistogram) -> LatencyHistogram:
        """The histogram of both sets of requests; the bounds must agree."""
        if other.bounds != self.bounds:
            raise ValueError("cannot merge latency histograms with different bucket bounds")
        return LatencyHistogram(
            self.bounds, tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        )

    def minus(self, earlier: LatencyHistogram) -> LatencyHistogram:
        """The requests recorded since ``earlier`` (both cumulative readings of one counter)."""
        if earlier.bounds != self.bounds:
            raise ValueError("cannot subtract latency histograms with different bucket bounds")
        return LatencyHistogram(
            self.bounds, tuple(max(a - b, 0) for a, b in zip(self.counts, earlier.counts, strict=True))
        )

    def quantile(self, q: float) -> float | None:
        """The q-quantile in ms, interpolated linearly inside its bucket (as Prometheus does).

        ``None`` without data. A quantile in the overflow bucket reports the last bound, which
        understates it; the buckets reach 10 s so that only matters for broken servers.
        """
        total = self.total
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index, count in enumerate(self.counts):
            if count and seen + count >= rank:
                if index == len(self.bounds):
                    return self.bounds[-1]
                lower = self.bounds[index - 1] if index else 0.0
                upper = self.bounds[index]
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
        return self.bounds[-1]

    def count_above(self, threshold_ms: float) -> int:
        """Requests in buckets that lie entirely above ``threshold_ms``.

        Counting whole buckets keeps this exact: a request is only counted when its bucket's
        lower bound is at least the threshold.
        """
        above = 0
        for index, count in enumerate(self.counts):
            lower = self.bounds[index - 1] if index else 0.0
            if lower >= threshold_ms:
                above += count
        return above

    def bound_at_or_above(self, value_ms: float) -> float:
        """The smallest bucket bound that is ≥ ``value_ms`` (the last bound if none is)."""
        for bound in self.bounds:
            if bound >= value_ms:
                return bound
        return self.bounds[-1]


def _empty_predictions() -> tuple[int, ...]:
    return (0,) * PREDICTION_BINS


@dataclass(frozen=True)
class VariantStats:
    """One variant (one model version's fleet) over one window.

    ``invocations`` counts every request, including the ones that failed. Latency and the
    prediction histogram cover the requests the model answered. ``labelled`` and ``correct``
    count delayed labels that arrived in the window, joined to the prediction made for them.
    """

    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_histogram: LatencyHistogram | None = None
    """Per-bucket counts when the source has them (the sandbox does, CloudWatch does not)."""
    prediction_histogram: tuple[int, ...] = field(default_factory=_empty_predictions)
    labelled: int = 0
    correct: int = 0
    version: str | None = None
    """The model version serving this variant, when the source knows it."""

    def __post_init__(self) -> None:
        if len(self.prediction_histogram) != PREDICTION_BINS:
            raise ValueError(
                f"a prediction histogram has {PREDICTION_BINS} bins, got {len(self.prediction_histogram)}"
            )
        if min(self.invocations, self.errors_4xx, self.errors_5xx, self.labelled, self.correct) < 0:
            raise ValueError("variant counts cannot be negative")
        if self.correct > self.labelled:
            raise ValueError(f"correct ({self.correct}) cannot exceed labelled ({self.labelled})")

    @classmethod
    def from_histogram(
        cls,
        *,
        invocations: int,
        errors_4xx: int,
        errors_5xx: int,
        latency: LatencyHistogram,
        predictions: tuple[int, ...],
        labelled: int,
        correct: int,
        version: str | None = None,
    ) -> VariantStats:
        """Stats whose p50/p99 are read from the latency histogram."""
        return cls(
            invocations=invocations,
            errors_4xx=errors_4xx,
            errors_5xx=errors_5xx,
            latency_p50_ms=latency.quantile(0.50),
            latency_p99_ms=latency.quantile(0.99),
            latency_histogram=latency,
            prediction_histogram=predictions,
            labelled=labelled,
            correct=correct,
            version=version,
        )

    @property
    def error_rate(self) -> float | None:
        """Share of invocations that failed with a 5xx; ``None`` without traffic."""
        return self.errors_5xx / self.invocations if self.invocations else None

    @property
    def accuracy(self) -> float | None:
        """Live accuracy on the labels that came back; ``None`` before any did."""
        return self.correct / self.labelled if self.labelled else None

    @property
    def is_empty(self) -> bool:
        return self.invocations == 0 and self.labelled == 0 and self.predictions == 0

    @property
    def predictions(self) -> int:
        return sum(self.prediction_histogram)

    def merged(self, other: VariantStats) -> VariantStats:
        """Both windows together.

        Quantiles are re-read from the merged histogram when both sides have one; otherwise the
        busier window's quantiles are kept, since quantiles do not add. An empty side (no
        requests, no labels) contributes nothing, not even its missing histogram.
        """
        if self.is_empty:
            return other if other.version or not self.version else replace(other, version=self.version)
        if other.is_empty:
            return self
        latency: LatencyHistogram | None
        if self.latency_histogram is not None and other.latency_histogram is not None:
            latency = self.latency_histogram.merged(other.latency_histogram)
            p50, p99 = latency.quantile(0.50), latency.quantile(0.99)
        else:
            latency = None
            larger, smaller = (self, other) if self.invocations >= other.invocations else (other, self)
            p50 = larger.latency_p50_ms if larger.latency_p50_ms is not None else smaller.latency_p50_ms
            p99 = larger.latency_p99_ms if larger.latency_p99_ms is not None else smaller.latency_p99_ms
        return VariantStats(
            invocations=self.invocations + other.invocations,
            errors_4xx=self.errors_4xx + other.errors_4xx,
            errors_5xx=self.errors_5xx + other.errors_5xx,
            latency_p50_ms=p50,
            latency_p99_ms=p99,
            latency_histogram=latency,
            prediction_histogram=tuple(
                a + b for a, b in zip(self.prediction_histogram, other.prediction_histogram, strict=True)
            ),
            labelled=self.labelled + other.labelled,
            correct=self.correct + other.correct,
            version=other.version or self.version,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "invocations": self.invocations,
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "error_rate": _rounded(self.error_rate),
            "latency_p50_ms": _rounded(self.latency_p50_ms),
            "latency_p99_ms": _rounded(self.latency_p99_ms),
            "prediction_histogram": list(self.prediction_histogram),
            "labelled": self.labelled,
            "correct": self.correct,
            "accuracy": _rounded(self.accuracy),
        }

    def to_record(self) -> dict[str, object]:
        """Every field, losslessly (``from_record`` reads it back): what the journal keeps."""
        histogram = self.latency_histogram
        return {
            "invocations": self.invocations,
            "errors_4xx": self.errors_4xx,
            "errors_5xx": self.errors_5xx,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "latency_bounds": None if histogram is None else list(histogram.bounds),
            "latency_counts": None if histogram is None else list(histogram.counts),
            "prediction_histogram": list(self.prediction_histogram),
            "labelled": self.labelled,
            "correct": self.correct,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> VariantStats:
        bounds, counts = record.get("latency_bounds"), record.get("latency_counts")
        histogram = None
        if bounds is not None and counts is not None:
            histogram = LatencyHistogram(tuple(float(b) for b in bounds), tuple(int(c) for c in counts))
        return cls(
            invocations=int(record["invocations"]),
            errors_4xx=int(record["errors_4xx"]),
            errors_5xx=int(record["errors_5xx"]),
            latency_p50_ms=record.get("latency_p50_ms"),
            latency_p99_ms=record.get("latency_p99_ms"),
            latency_histogram=histogram,
            prediction_histogram=tuple(int(n) for n in record["prediction_histogram"]),
            labelled=int(record["labelled"]),
            correct=int(record["correct"]),
            version=record.get("version"),
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 6)


@dataclass(frozen=True)
class Agreement:
    """Predictions of mirrored requests that both production and the shadow answered, and how many
    of them agreed (one per request when a request carries one row, as a replay does).

    Agreeing means the same label for a classifier, and a prediction within the service's live
    tolerance of production's for a regression. Counts, so that windows add up.
    """

    paired: int = 0
    agreed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.agreed <= self.paired:
            raise ValueError(f"agreed ({self.agreed}) must be between 0 and paired ({self.paired})")

    @property
    def rate(self) -> float | None:
        return self.agreed / self.paired if self.paired else None

    def merged(self, other: Agreement) -> Agreement:
        return Agreement(self.paired + other.paired, self.agreed + other.agreed)

    def to_record(self) -> dict[str, int]:
        return {"paired": self.paired, "agreed": self.agreed}


@dataclass(frozen=True)
class CanaryWindow:
    """Baseline (the old, stable version) and canary (the new version) over ``[start, end)``.

    ``canary`` is ``None`` when only one version serves, e.g. outside a deployment. In a shadow
    phase ``baseline`` is production, ``canary`` the shadow on the mirrored requests, and
    ``agreement`` how their answers to the same requests compare (``None`` where the source cannot
    pair them, e.g. CloudWatch).
    """

    start: float
    end: float
    baseline: VariantStats
    canary: VariantStats | None
    agreement: Agreement | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a window ends after it starts: start={self.start}, end={self.end}")

    def to_json(self) -> dict[str, object]:
        return {
            "start": self.start,
            "end": self.end,
            "baseline": self.baseline.to_json(),
            "canary": None if self.canary is None else self.canary.to_json(),
            "agreement": None
            if self.agreement is None
            else {**self.agreement.to_record(), "rate": _rounded(self.agreement.rate)},
        }

    def to_record(self) -> dict[str, object]:
        """The window losslessly, so a resumed analysis can re-judge exactly what was judged."""
        return {
            "start": self.start,
            "end": self.end,
            "baseline": self.baseline.to_record(),
            "canary": None if self.canary is None else self.canary.to_record(),
            "agreement": None if self.agreement is None else self.agreement.to_record(),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CanaryWindow:
        canary, agreement = record.get("canary"), record.get("agreement")
        return cls(
            start=float(record["start"]),
            end=float(record["end"]),
            baseline=VariantStats.from_record(record["baseline"]),
            canary=None if canary is None else VariantStats.from_record(canary),
            agreement=None
            if agreement is None
            else Agreement(int(agreement["paired"]), int(agreement["agreed"])),
        )

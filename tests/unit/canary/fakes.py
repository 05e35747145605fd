"""Windows for stepping the canary judge: fixed ones built from a few knobs, and simulated bakes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipelines.metrics import PREDICTION_BINS, Agreement, CanaryWindow, LatencyHistogram, VariantStats


def variant(
    requests: int = 2000,
    *,
    error_rate: float = 0.005,
    latency_median_ms: float = 50.0,
    accuracy: float | None = 0.85,
    positive_share: float = 0.3,
    seed: int = 0,
) -> VariantStats:
    """One variant's interval: lognormal latency, exact error and label counts, a fixed score mix."""
    rng = np.random.default_rng(seed)
    errors = round(requests * error_rate)
    answered = requests - errors
    latency = LatencyHistogram.of(rng.lognormal(np.log(latency_median_ms), 0.4, answered))
    positives = round(answered * positive_share)
    predictions = [0] * PREDICTION_BINS
    predictions[1] = answered - positives
    predictions[8] = positives
    labelled = answered if accuracy is not None else 0
    return VariantStats.from_histogram(
        invocations=requests,
        errors_4xx=0,
        errors_5xx=errors,
        latency=latency,
        predictions=tuple(predictions),
        labelled=labelled,
        correct=round(labelled * (accuracy or 0.0)),
    )


def window(
    canary: VariantStats | None,
    baseline: VariantStats | None = None,
    index: int = 0,
    agreement: Agreement | None = None,
) -> CanaryWindow:
    return CanaryWindow(
        start=60.0 * index,
        end=60.0 * (index + 1),
        baseline=baseline if baseline is not None else variant(6000, seed=1000 + index),
        canary=canary,
        agreement=agreement,
    )


@dataclass(frozen=True)
class Fleet:
    """How one simulated fleet behaves: the knobs a regression turns."""

    error_rate: float = 0.005
    latency_median_ms: float = 60.0
    accuracy: float = 0.85


def simulated_bake(
    seed: int, canary: Fleet | None = None, *, intervals: int = 5, rps: float = 100.0
) -> Iterator[CanaryWindow]:
    """A bake's windows with per-request noise, as ``benchmarks/canary_bench.py`` simulates them, smaller.

    Traffic wanders ±40% between intervals, a quarter goes to the canary; one interval in five
    carries a shared incident (slower requests or extra errors on both fleets), the noise a canary
    must not be blamed for. Labels come back for three quarters of an interval's answers within
    it, the rest in the next one. The baseline is a default ``Fleet``; ``canary=None``: its twin
    (an A/A run).
    """
    rng = np.random.default_rng(seed)
    baseline = Fleet()
    twin = canary or baseline
    pending = {"baseline": (0, 0), "canary": (0, 0)}
    for index in range(intervals):
        total = int(rng.poisson(rps * 60 * rng.uniform(0.6, 1.4)))
        to_canary = int(rng.binomial(total, 0.25))
        roll = rng.random()
        slow = rng.uniform(1.3, 1.6) if roll < 0.1 else 1.0
        extra_errors = rng.uniform(0.015, 0.03) if 0.1 <= roll < 0.2 else 0.0
        sides = {}
        for role, fleet, requests in (("baseline", baseline, total - to_canary), ("canary", twin, to_canary)):
            errors = int(rng.binomial(requests, min(1.0, fleet.error_rate + extra_errors)))
            answered = requests - errors
            latencies = rng.lognormal(np.log(fleet.latency_median_ms), 0.4, answered) * slow
            right = int(rng.binomial(answered, fleet.accuracy))
            positives = int(rng.binomial(answered, 0.24 * fleet.accuracy + 0.76 * (1 - fleet.accuracy)))
            scores = np.bincount(
                np.r_[rng.integers(5, 10, positives), rng.integers(0, 5, answered - positives)],
                minlength=PREDICTION_BINS,
            )
            late_labels, late_right = pending[role]
            now = int(rng.binomial(answered, 0.75))
            now_right = int(rng.hypergeometric(right, answered - right, now)) if now else 0
            pending[role] = (answered - now, right - now_right)
            sides[role] = VariantStats.from_histogram(
                invocations=requests,
                errors_4xx=0,
                errors_5xx=errors,
                latency=LatencyHistogram.of(latencies),
                predictions=tuple(int(c) for c in scores),
                labelled=now + late_labels,
                correct=now_right + late_right,
            )
        yield CanaryWindow(
            start=60.0 * index, end=60.0 * (index + 1), baseline=sides["baseline"], canary=sides["canary"]
        )

"""Fake windows for stepping the canary analysis: deterministic, built from a few knobs."""

from __future__ import annotations

import numpy as np

from pipelines.metrics import PREDICTION_BINS, CanaryWindow, LatencyHistogram, VariantStats


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


def window(canary: VariantStats | None, baseline: VariantStats | None = None, index: int = 0) -> CanaryWindow:
    return CanaryWindow(
        start=60.0 * index,
        end=60.0 * (index + 1),
        baseline=baseline if baseline is not None else variant(6000, seed=1000 + index),
        canary=canary,
    )

"""A Kayenta-style judge: Netflix's ACA judge (``NetflixACAJudge-v1.0``) re-done on numpy and scipy.

The canary benchmark's third judge. What it does, and where each number comes from (Spinnaker's
Kayenta, ``kayenta/kayenta-judge/src/main/scala/com/netflix/kayenta/judge/`` in spinnaker/spinnaker):

* **Per metric, a Mann–Whitney U test of canary against baseline samples**
  (``classifiers/metric/MannWhitneyClassifier.scala``): the Hodges–Lehmann estimate of the shift
  (canary − baseline) and its confidence interval at ``confLevel``; the metric is *High* when the
  interval's lower end lies above ``tolerance × |estimate|`` and the effect size (the mean ratio
  canary/baseline) is at least ``allowedIncrease``, *Low* mirror-wise, else *Pass*. Empty samples
  are *Nodata*; identical samples, or one value throughout, *Pass*.
* **Its settings as the judge calls it** (``NetflixACAJudge.scala``): ``tolerance = 0.25``,
  ``confLevel = 0.98``; effect size ``meanRatio`` with ``allowedIncrease = allowedDecrease = 1.0``
  (the metric config's defaults, ``docs/canary-config.md`` in spinnaker/kayenta); direction per
  metric (``increase`` for error rate and latency, ``decrease`` for accuracy, as that document
  recommends for error counts and success counts); NaNs removed; no outlier removal.
* **The score** (``scorers/WeightedSumScorer.scala``): the share of *Pass* among the classified
  metrics, in percent (one group, so no weights); 0 when half or more of the metrics are *Nodata*.
* **The verdict over a bake** (orca's ``MonitorKayentaCanaryTask`` and ``AggregateCanaryResultsTask``,
  Spinnaker's canary stage): every interval judges all data since the canary started (a stage
  without a lookback window); a score at or below ``marginal`` fails the canary at once; after
  the last interval a score below ``pass`` fails it, else it passes. ``marginal = 75`` and
  ``pass = 95`` are the scoreThresholds of Kayenta's example configs (its ``json-formats.md``).

The interval is computed by inverting the test (a shift ``d`` lies below the interval's lower end
when ``mannwhitneyu(canary - d, baseline, alternative="greater")`` rejects at ``(1 - confLevel) / 2``),
which is how R's ``wilcox.test`` (Kayenta's original backend) finds it, with the normal
approximation and continuity correction. With three metrics one *High* gives a score of 66.7, so
any classified metric fails the canary; nothing in the method accounts for looking every interval.
Kayenta wants a baseline fleet as large as the canary (spinnaker/kayenta's
``docs/instrumenting-application-metrics-for-kayenta.md``); here, as for the other judges, the
baseline is production with three times the canary's traffic, so rates rather than counts are
compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu

TOLERANCE = 0.25
CONFIDENCE = 0.98
MARGINAL_SCORE = 75.0
PASS_SCORE = 95.0
NODATA_THRESHOLD = 50.0
"""Percent of metrics without data at which the scorer fails the canary."""

Direction = Literal["increase", "decrease", "either"]
Classification = Literal["Pass", "High", "Low", "Nodata"]


@dataclass(frozen=True)
class Metric:
    """One metric's canary config: its direction and effect-size thresholds (mean ratios)."""

    name: str
    direction: Direction
    allowed_increase: float = 1.0
    allowed_decrease: float = 1.0


def hodges_lehmann(experiment: np.ndarray, control: np.ndarray) -> float:
    """The median of all pairwise differences experiment − control.

    Small samples enumerate the pairs; large ones (per-request latencies: tens of thousands a
    side) bisect on the shift ``d``, counting the pairs above it with one sorted search per try.
    """
    if experiment.size * control.size <= 4_000_000:
        return float(np.median(np.subtract.outer(experiment, control)))
    ordered = np.sort(control)
    half = experiment.size * control.size / 2
    low, high = float(experiment.min() - ordered[-1]), float(experiment.max() - ordered[0])
    for _ in range(60):
        middle = (low + high) / 2
        above = np.searchsorted(ordered, experiment - middle, "left").sum()
        low, high = (middle, high) if above > half else (low, middle)
        if high - low <= 1e-9 * max(1.0, abs(middle)):
            break
    return (low + high) / 2


def _beyond(
    experiment: np.ndarray, control: np.ndarray, shift: float, side: Literal["greater", "less"]
) -> bool:
    """Whether the confidence interval of the shift lies entirely above (``greater``) or below ``shift``."""
    alpha = (1 - CONFIDENCE) / 2
    p = mannwhitneyu(experiment - shift, control, alternative=side, method="asymptotic").pvalue
    return bool(p < alpha)


def classify(control: np.ndarray, experiment: np.ndarray, metric: Metric) -> Classification:
    """``MannWhitneyClassifier.classify`` for a metric that is neither critical nor required."""
    control, experiment = control[~np.isnan(control)], experiment[~np.isnan(experiment)]
    if experiment.size == 0 or control.size == 0:
        return "Nodata"
    if experiment.size == control.size and np.array_equal(np.sort(experiment), np.sort(control)):
        return "Pass"
    if np.unique(np.concatenate([experiment, control])).size == 1:
        return "Pass"
    means = float(control.mean()), float(experiment.mean())
    ratio = float("nan") if 0.0 in means else means[1] / means[0]
    up = metric.direction in ("increase", "either") and (np.isnan(ratio) or ratio >= metric.allowed_increase)
    down = metric.direction in ("decrease", "either") and (
        np.isnan(ratio) or ratio <= metric.allowed_decrease
    )
    # The bound 0.25·|estimate| is never below 0, so an interval not clear of 0 cannot clear it:
    # the estimate is computed only for a shift the test already sees.
    if up and _beyond(experiment, control, 0.0, "greater"):
        bound = TOLERANCE * abs(hodges_lehmann(experiment, control))
        if _beyond(experiment, control, bound, "greater"):
            return "High"
    if down and _beyond(experiment, control, 0.0, "less"):
        bound = TOLERANCE * abs(hodges_lehmann(experiment, control))
        if _beyond(experiment, control, -bound, "less"):
            return "Low"
    return "Pass"


def score(classifications: Mapping[str, Classification]) -> float:
    """``WeightedSumScorer`` with one group: percent of classified metrics that pass."""
    labels = list(classifications.values())
    if labels.count("Nodata") * 100 / len(labels) >= NODATA_THRESHOLD:
        return 0.0
    judged = [label for label in labels if label != "Nodata"]
    return 100.0 * judged.count("Pass") / len(judged)


@dataclass
class KayentaAnalysis:
    """One canary stage: ``step`` adds an interval's samples per metric and judges everything so far.

    ``step`` takes, per metric name, ``(baseline, canary)`` sample arrays for the interval and
    returns ``"continue"``, ``"promote"`` (after ``iterations`` intervals) or ``"rollback"``.
    """

    metrics: tuple[Metric, ...]
    iterations: int
    interval: int = 0
    verdict: str = "continue"
    breached: str | None = None
    """The first metric classified High or Low in the failing interval."""
    scores: list[float] = field(default_factory=list)
    _samples: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = field(default_factory=dict)

    def step(self, samples: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> str:
        if self.verdict != "continue":
            return self.verdict
        self.interval += 1
        classifications: dict[str, Classification] = {}
        for metric in self.metrics:
            baseline, canary = self._samples.setdefault(metric.name, ([], []))
            baseline.append(samples[metric.name][0])
            canary.append(samples[metric.name][1])
            classifications[metric.name] = classify(np.concatenate(baseline), np.concatenate(canary), metric)
        self.scores.append(score(classifications))
        last = self.interval >= self.iterations
        if self.scores[-1] <= MARGINAL_SCORE or (last and self.scores[-1] < PASS_SCORE):
            self.verdict = "rollback"
            self.breached = next(
                (name for name, label in classifications.items() if label in ("High", "Low")), None
            )
        elif last:
            self.verdict = "promote"
        return self.verdict

"""Canary judges on simulated traffic: false rollbacks, regressions caught and time to catch them.

Simulates per-request traffic for a baseline (production) and a canary fleet, interval by
interval: Poisson arrivals whose rate wanders between intervals, lognormal model latency with rare
GC pauses, Bernoulli 5xx errors, model scores drawn around each request's true class, and labels
that come back after an exponential delay. Some intervals carry a shared incident that hits both
fleets (a slow host, a flaky dependency): noise a canary must not be blamed for.

Populations: at least 1,000 A/A runs (the canary is the baseline's twin) and 200 runs for each of
nine regressions, three sizes per metric: the canary's own error rate ×2, ×3, ×5; its latency
(every request, so its p99) ×1.25, ×1.5, ×2; its accuracy −1, −2.5, −5 points. The last of each
is the clear one the goals speak of.

Three judges see the same traffic in the same run, each baking ``BAKE_INTERVALS`` intervals:

* **new**: ``pipelines.canary.CanaryAnalysis``, the anytime-valid judge, at α = 1% over the bake;
* **current**: the fixed-horizon judge modelrail shipped before (``benchmarks/peers/fixed_horizon.py``):
  z-test, binomial and chi-square at α = 0.0005 on the running totals after every interval,
  failure threshold 1;
* **kayenta**: Netflix's ACA judge, Mann–Whitney per metric (``benchmarks/peers/kayenta.py``), fed
  the raw per-request latencies and, for errors and accuracy, the 10-second series a metrics store
  would hand it (a Mann–Whitney test of 0/1 samples sees a median shift of 0 and never fires).

For each judge: the false-rollback rate over the A/A runs and the detection rate of each
regression, both with 95% Clopper–Pearson intervals, and the median intervals to detection.

    .venv/bin/python benchmarks/canary_bench.py [--runs-scale 1.0] [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.peers.fixed_horizon import FixedHorizonAnalysis, FixedHorizonPolicy  # noqa: E402
from benchmarks.peers.kayenta import KayentaAnalysis, Metric  # noqa: E402
from infra.config import Guardrails  # noqa: E402
from pipelines.canary import AnalysisPolicy, CanaryAnalysis  # noqa: E402
from pipelines.metrics import PREDICTION_BINS, CanaryWindow, LatencyHistogram, VariantStats  # noqa: E402

INTERVAL_SECONDS = 60.0
RPS = 100.0
"""Mean requests per second across both fleets."""
CANARY_SHARE = 0.25
BAKE_INTERVALS = 10
MAX_INTERVALS = BAKE_INTERVALS + 2
"""Room for intervals a judge pauses on; a judge still baking after these is undecided."""
POSITIVE_RATE = 0.24
"""Share of positive labels (as in UCI Adult)."""
LABEL_DELAY_SECONDS = 15.0
"""Mean delay before a request's true label comes back."""
SERIES_STEP_SECONDS = 10.0
"""Step of the error-rate and accuracy series the Kayenta judge reads (a Prometheus query's step)."""
BASELINE_ERROR_RATES = (0.002, 0.008)
"""A run's baseline 5xx rate is drawn uniformly from this range."""
AA_RUNS, REGRESSION_RUNS = 1000, 200

GUARDRAILS = Guardrails(
    max_5xx_rate=0.02,
    p99_latency_ms=200.0,
    min_live_accuracy=0.825,
    max_prediction_drift=0.1,
    error_rate_tolerance=0.005,
    latency_tolerance=0.25,
    accuracy_tolerance=0.02,
)
"""Set the way an operator would: the absolute bounds comfortably above normal noise, the tolerances
(how much worse than the baseline is still acceptable) below the clear regressions: +0.5 points of
5xx (the clear ×5 adds 0.8 to 3.2), 25% on p99 (the clear one doubles it), 2 points of accuracy."""
ALPHA = 0.01
POLICY = AnalysisPolicy(
    interval_seconds=INTERVAL_SECONDS,
    iterations=BAKE_INTERVALS,
    min_requests=100,
    min_labels=100,
    alpha=ALPHA,
)
CURRENT_POLICY = FixedHorizonPolicy(
    interval_seconds=INTERVAL_SECONDS, iterations=BAKE_INTERVALS, failure_threshold=1, alpha=0.0005
)
KAYENTA_METRICS = (
    Metric("error-rate", "increase"),
    Metric("p99-latency", "increase"),
    Metric("live-accuracy", "decrease"),
)
"""Named after the checks they stand in for: 5xx share per series step, every request's latency (so
the test compares whole distributions, not p99s), accuracy of the labels back per series step."""


@dataclass(frozen=True)
class Fleet:
    """How one fleet behaves: the knobs a regression turns."""

    latency_median_ms: float = 60.0
    latency_sigma: float = 0.4
    latency_factor: float = 1.0
    """Multiplies every request's latency (GC pauses included), so every quantile."""
    error_rate: float = 0.005
    accuracy: float = 0.85


@dataclass(frozen=True)
class Scenario:
    name: str
    metric: str | None
    """The check a regression should trip; ``None`` for the A/A runs."""
    errors: float = 1.0
    latency: float = 1.0
    accuracy: float = 0.0
    clear: bool = False
    """One of the regressions the goals require catching."""

    @property
    def size(self) -> str:
        """How much worse than the baseline the canary is, in the units of its tolerance."""
        if self.errors != 1.0:
            low, high = BASELINE_ERROR_RATES
            return f"5xx +{(self.errors - 1) * low * 100:.1f} to +{(self.errors - 1) * high * 100:.1f} pts"
        if self.latency != 1.0:
            return f"p99 +{self.latency - 1:.0%}"
        return f"accuracy −{-self.accuracy * 100:g} pts"

    def canary(self, baseline: Fleet) -> Fleet:
        return Fleet(
            baseline.latency_median_ms,
            baseline.latency_sigma,
            baseline.latency_factor * self.latency,
            baseline.error_rate * self.errors,
            baseline.accuracy + self.accuracy,
        )


SCENARIOS = (
    Scenario("A/A", None),
    Scenario("errors ×2", "error-rate", errors=2.0),
    Scenario("errors ×3", "error-rate", errors=3.0),
    Scenario("errors ×5", "error-rate", errors=5.0, clear=True),
    Scenario("p99 ×1.25", "p99-latency", latency=1.25),
    Scenario("p99 ×1.5", "p99-latency", latency=1.5),
    Scenario("p99 ×2", "p99-latency", latency=2.0, clear=True),
    Scenario("accuracy −1 pt", "live-accuracy", accuracy=-0.01),
    Scenario("accuracy −2.5 pts", "live-accuracy", accuracy=-0.025),
    Scenario("accuracy −5 pts", "live-accuracy", accuracy=-0.05, clear=True),
)
JUDGES = {
    "new": "CanaryAnalysis (anytime-valid, α=1%)",
    "current": "fixed horizon (α=0.0005 per look, threshold 1)",
    "kayenta": "Kayenta Mann–Whitney (98%, tolerance 0.25)",
}


@dataclass
class _Pending:
    """Labels on their way back: arrival time and whether the prediction was right."""

    arrival: np.ndarray = field(default_factory=lambda: np.empty(0))
    correct: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))

    def add(self, arrival: np.ndarray, correct: np.ndarray) -> None:
        self.arrival, self.correct = (
            np.concatenate([self.arrival, arrival]),
            np.concatenate([self.correct, correct]),
        )

    def take_until(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Arrival times and correctness of the labels that came back before ``t``."""
        due = self.arrival < t
        taken = self.arrival[due], self.correct[due]
        self.arrival, self.correct = self.arrival[~due], self.correct[~due]
        return taken


@dataclass(frozen=True)
class FleetInterval:
    """One fleet over one interval: what a metrics source reports, and the raw samples behind it."""

    stats: VariantStats
    latencies: np.ndarray
    """Per answered request, in ms."""
    error_series: np.ndarray
    """5xx share per series step (NaN for a step without requests)."""
    accuracy_series: np.ndarray
    """Accuracy of the labels that came back in each series step (NaN without labels)."""


def _per_step(values: np.ndarray, times: np.ndarray, start: float) -> np.ndarray:
    steps = int(INTERVAL_SECONDS // SERIES_STEP_SECONDS)
    index = np.minimum(((times - start) // SERIES_STEP_SECONDS).astype(int), steps - 1)
    counts = np.bincount(index, minlength=steps)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(index, weights=values.astype(float), minlength=steps) / counts


def _fleet_interval(
    rng: np.random.Generator,
    fleet: Fleet,
    requests: int,
    start: float,
    incident: dict[str, float],
    pending: _Pending,
) -> FleetInterval:
    """Simulate one fleet's requests over one interval."""
    times = start + rng.uniform(0, INTERVAL_SECONDS, requests)
    failed = rng.random(requests) < fleet.error_rate + incident.get("errors", 0.0)
    latency = rng.lognormal(np.log(fleet.latency_median_ms), fleet.latency_sigma, requests)
    gc_pause = rng.random(requests) < 0.003
    latency[gc_pause] += rng.uniform(50, 250, int(gc_pause.sum()))
    latency *= fleet.latency_factor * incident.get("slow", 1.0)
    ok = ~failed
    truth = rng.random(requests) < POSITIVE_RATE
    right = rng.random(requests) < fleet.accuracy
    predicted = np.where(right, truth, ~truth)
    score = np.where(predicted, 0.5 + 0.5 * rng.beta(2, 2, requests), 0.5 * rng.beta(2, 3, requests))
    bins = np.minimum((score[ok] * PREDICTION_BINS).astype(int), PREDICTION_BINS - 1)
    pending.add(times[ok] + rng.exponential(LABEL_DELAY_SECONDS, int(ok.sum())), right[ok])
    arrived, correct = pending.take_until(start + INTERVAL_SECONDS)
    stats = VariantStats.from_histogram(
        invocations=requests,
        errors_4xx=0,
        errors_5xx=int(failed.sum()),
        latency=LatencyHistogram.of(latency[ok]),
        predictions=tuple(int(c) for c in np.bincount(bins, minlength=PREDICTION_BINS)),
        labelled=int(arrived.size),
        correct=int(correct.sum()),
    )
    return FleetInterval(
        stats, latency[ok], _per_step(failed, times, start), _per_step(correct, arrived, start)
    )


def simulate(scenario: Scenario, seed: int) -> Iterator[tuple[FleetInterval, FleetInterval]]:
    """Baseline and canary, interval by interval, for one run."""
    rng = np.random.default_rng([seed, SCENARIOS.index(scenario)])
    baseline = Fleet(latency_median_ms=rng.uniform(50, 65), error_rate=rng.uniform(*BASELINE_ERROR_RATES))
    canary = scenario.canary(baseline)
    pending_baseline, pending_canary = _Pending(), _Pending()
    for index in range(MAX_INTERVALS):
        start = index * INTERVAL_SECONDS
        total = rng.poisson(RPS * INTERVAL_SECONDS * rng.uniform(0.6, 1.4))
        to_canary = rng.binomial(total, CANARY_SHARE)
        incident: dict[str, float] = {}
        roll = rng.random()
        if roll < 0.10:
            incident["slow"] = rng.uniform(1.3, 1.6)
        elif roll < 0.20:
            incident["errors"] = rng.uniform(0.015, 0.03)
        yield (
            _fleet_interval(rng, baseline, total - to_canary, start, incident, pending_baseline),
            _fleet_interval(rng, canary, to_canary, start, incident, pending_canary),
        )


@dataclass(frozen=True)
class Outcome:
    verdict: str
    """``rollback``, ``promote`` or ``undecided`` (still baking after ``MAX_INTERVALS``)."""
    interval: int
    breached: str | None = None


def run(task: tuple[int, int]) -> tuple[int, dict[str, Outcome]]:
    """One run of one scenario through all three judges, interval by interval."""
    scenario_index, seed = task
    new, current = CanaryAnalysis(POLICY, GUARDRAILS), FixedHorizonAnalysis(CURRENT_POLICY, GUARDRAILS)
    kayenta = KayentaAnalysis(KAYENTA_METRICS, iterations=BAKE_INTERVALS)
    outcomes: dict[str, Outcome] = {}
    for interval, (baseline, canary) in enumerate(simulate(SCENARIOS[scenario_index], seed), start=1):
        window = CanaryWindow(
            start=(interval - 1) * INTERVAL_SECONDS,
            end=interval * INTERVAL_SECONDS,
            baseline=baseline.stats,
            canary=canary.stats,
        )
        if "new" not in outcomes:
            decision = new.step(window)
            if decision.verdict.value in ("promote", "rollback"):
                breached = decision.breached
                outcomes["new"] = Outcome(
                    decision.verdict.value, interval, breached.name if breached else None
                )
        if "current" not in outcomes:
            old = current.step(window)
            if old.verdict != "continue":
                breached_old = old.breached
                outcomes["current"] = Outcome(
                    old.verdict, interval, breached_old.name if breached_old else None
                )
        if "kayenta" not in outcomes:
            verdict = kayenta.step(
                {
                    "error-rate": (baseline.error_series, canary.error_series),
                    "p99-latency": (baseline.latencies, canary.latencies),
                    "live-accuracy": (baseline.accuracy_series, canary.accuracy_series),
                }
            )
            if verdict != "continue":
                outcomes["kayenta"] = Outcome(verdict, interval, kayenta.breached)
        if len(outcomes) == len(JUDGES):
            break
    for judge in JUDGES:
        outcomes.setdefault(judge, Outcome("undecided", MAX_INTERVALS))
    return scenario_index, outcomes


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    """The exact (Clopper–Pearson) 95% interval of a binomial share."""
    from scipy.stats import binomtest

    interval = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(interval.low), float(interval.high)


def _rate(outcomes: list[Outcome]) -> dict[str, Any]:
    rolled = [o for o in outcomes if o.verdict == "rollback"]
    low, high = clopper_pearson(len(rolled), len(outcomes))
    intervals = [o.interval for o in rolled]
    return {
        "runs": len(outcomes),
        "rollbacks": len(rolled),
        "rate": len(rolled) / len(outcomes),
        "ci95": [low, high],
        "median_intervals": statistics.median(intervals) if intervals else None,
        "promoted": sum(o.verdict == "promote" for o in outcomes),
        "undecided": sum(o.verdict == "undecided" for o in outcomes),
        "breached": dict(Counter(o.breached or "score" for o in rolled)),
    }


def summarise(outcomes: dict[str, list[Outcome]]) -> dict[str, Any]:
    """One judge: its false rollbacks, its detections per regression, and the goals against them."""
    figures = {name: _rate(runs) for name, runs in outcomes.items()}
    aa = figures["A/A"]
    clear = [s.name for s in SCENARIOS if s.clear]
    goals = {
        "false_rollbacks_at_most_alpha": aa["rate"] <= ALPHA,
        "clear_regressions_caught_95pct": all(figures[name]["rate"] >= 0.95 for name in clear),
        "median_detection_within_3_intervals": all(
            figures[name]["median_intervals"] is not None and figures[name]["median_intervals"] <= 3
            for name in clear
        ),
    }
    detection = {
        s.name: {**figures[s.name], "on_the_regressed_check": figures[s.name]["breached"].get(s.metric, 0)}
        for s in SCENARIOS
        if s.metric is not None
    }
    return {"false_rollbacks": aa, "detection": detection, "goals": goals}


def measure(runs_scale: float, workers: int) -> dict[str, Any]:
    aa_runs, regression_runs = (
        max(1, math.ceil(AA_RUNS * runs_scale)),
        max(1, math.ceil(REGRESSION_RUNS * runs_scale)),
    )
    tasks = [
        (index, seed)
        for index, scenario in enumerate(SCENARIOS)
        for seed in range(aa_runs if scenario.metric is None else regression_runs)
    ]
    outcomes: dict[str, dict[str, list[Outcome]]] = {
        judge: {s.name: [] for s in SCENARIOS} for judge in JUDGES
    }
    started = time.perf_counter()
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = list(pool.imap_unordered(run, tasks, chunksize=8))
    else:
        results = [run(task) for task in tasks]
    for scenario_index, by_judge in sorted(results, key=lambda r: r[0]):
        for judge, outcome in by_judge.items():
            outcomes[judge][SCENARIOS[scenario_index].name].append(outcome)
    seconds = time.perf_counter() - started
    judges = {judge: summarise(runs) for judge, runs in outcomes.items()}
    new = judges["new"]
    for judge in ("current", "kayenta"):
        judges[judge]["versus_new"] = _versus(judges[judge], new)
    return {
        "setup": {
            "aa_runs": aa_runs,
            "regression_runs": regression_runs,
            "interval_seconds": INTERVAL_SECONDS,
            "bake_intervals": BAKE_INTERVALS,
            "max_intervals": MAX_INTERVALS,
            "rps": RPS,
            "canary_share": CANARY_SHARE,
            "label_delay_seconds": LABEL_DELAY_SECONDS,
            "alpha": ALPHA,
            "guardrails": GUARDRAILS.model_dump(),
            "policy": {
                "new": asdict(POLICY),
                "current": asdict(CURRENT_POLICY),
                "kayenta": {"confidence": 0.98, "tolerance": 0.25, "marginal": 75, "pass": 95, "step": 10},
            },
            "judges": JUDGES,
            "seconds": round(seconds, 1),
            "workers": workers,
        },
        "judges": judges,
    }


def _versus(peer: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A peer's figures as ratios over the new judge's (``None`` where the new one's is 0)."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    clear = [s.name for s in SCENARIOS if s.clear]
    return {
        "false_rollback_rate_ratio": ratio(peer["false_rollbacks"]["rate"], new["false_rollbacks"]["rate"]),
        "clear_median_intervals_ratio": {
            name: ratio(
                peer["detection"][name]["median_intervals"], new["detection"][name]["median_intervals"]
            )
            for name in clear
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs-scale",
        type=float,
        default=1.0,
        help=f"Scale the run counts ({AA_RUNS} A/A, {REGRESSION_RUNS} per regression at 1.0); 0.1 for a quick look.",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Processes to run the simulations in (default 2)."
    )
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)
    if args.runs_scale <= 0 or args.workers < 1:
        parser.error("--runs-scale must be positive and --workers at least 1")
    report = measure(args.runs_scale, args.workers)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    else:
        _print_report(report)
    return 0


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _cell(figures: dict[str, Any]) -> str:
    low, high = figures["ci95"]
    median = figures["median_intervals"]
    when = "" if median is None else f" · {median:g}"
    return f"{_pct(figures['rate'])} [{_pct(low)}–{_pct(high)}]{when}"


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    setup, judges = report["setup"], report["judges"]
    g = setup["guardrails"]
    console = Console(width=170)
    console.print(
        f"{setup['aa_runs']} A/A runs, {setup['regression_runs']} per regression; {setup['rps']:g} rps, canary "
        f"{setup['canary_share']:.0%}, {setup['interval_seconds']:g} s intervals, bake {setup['bake_intervals']} "
        f"intervals; {setup['seconds']:g} s on {setup['workers']} worker(s)"
    )
    console.print(
        f"guardrails: 5xx ≤ {g['max_5xx_rate']:.1%}, p99 ≤ {g['p99_latency_ms']:g} ms, accuracy ≥ "
        f"{g['min_live_accuracy']:.1%}, drift ≤ {g['max_prediction_drift']:g}; tolerances over the baseline: "
        f"5xx +{g['error_rate_tolerance'] * 100:g} pts, p99 +{g['latency_tolerance']:.0%}, accuracy "
        f"−{g['accuracy_tolerance'] * 100:g} pts"
    )
    table = Table(title="rollback rate [95% Clopper–Pearson] · median intervals to rollback")
    table.add_column("canary")
    table.add_column("worse than the baseline by")
    for judge, label in JUDGES.items():
        table.add_column(f"{judge}: {label}", justify="right")
    table.add_row("A/A (false rollbacks)", "none", *(_cell(judges[j]["false_rollbacks"]) for j in JUDGES))
    for scenario in SCENARIOS[1:]:
        name = scenario.name + (" (clear)" if scenario.clear else "")
        table.add_row(name, scenario.size, *(_cell(judges[j]["detection"][scenario.name]) for j in JUDGES))
    console.print(table)
    goals = (
        ("false_rollbacks_at_most_alpha", f"false rollbacks ≤ α = {setup['alpha']:.0%}"),
        ("clear_regressions_caught_95pct", "≥ 95% of each clear regression caught"),
        ("median_detection_within_3_intervals", "median detection ≤ 3 intervals"),
    )
    for key, text in goals:
        marks = ", ".join(f"{j} {'✓' if judges[j]['goals'][key] else '✗'}" for j in JUDGES)
        console.print(f"goal: {text}: {marks}")
    for judge in ("current", "kayenta"):
        versus = judges[judge]["versus_new"]
        ratio = versus["false_rollback_rate_ratio"]
        medians = ", ".join(
            f"{name} ×{value:.2f}" if value is not None else f"{name} n/a"
            for name, value in (
                (s.name, versus["clear_median_intervals_ratio"][s.name]) for s in SCENARIOS if s.clear
            )
        )
        false_rollbacks = f"×{ratio:.1f}" if ratio is not None else "n/a (new judge: none)"
        console.print(
            f"{judge} vs new: false rollback rate {false_rollbacks}; median intervals to catch {medians}"
        )
    breakdown = "; ".join(
        f"{j}: "
        + (", ".join(f"{k} {v}" for k, v in judges[j]["false_rollbacks"]["breached"].items()) or "none")
        for j in JUDGES
    )
    console.print(f"false rollbacks by check: {breakdown}")


if __name__ == "__main__":
    sys.exit(main())

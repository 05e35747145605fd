"""Canary-analysis quality: false rollbacks, missed regressions and time to decision.

Simulates per-request traffic for a baseline and a canary fleet, interval by interval:
Poisson arrivals whose rate wanders between intervals, lognormal model latency with rare GC
pauses, Bernoulli 5xx errors, model scores drawn around each request's true class, and labels
that come back after an exponential delay. Some intervals carry a shared incident that hits
both fleets (a slow host, a flaky dependency), which is the noise a canary must not be blamed
for. Four populations of 20 seeds each:

* healthy: the canary is the baseline's twin (noisy, but not worse);
* latency-2x: the canary's model latency doubles (so does its p99);
* errors+5pp: the canary fails 5 percentage points more requests;
* accuracy-5pp: the canary is right 5 points less often.

Ours is ``CanaryAnalysis`` (guardrail breach AND significant against the baseline, on the
running totals). The peer, measured in the same run on the same traffic, is a naive
Flagger-default-style analysis: each interval's raw canary values against the same fixed
thresholds, with a failure threshold of 1 (fast) and of 5 (Flagger's usual setting).

    uv run python benchmarks/canary_bench.py [--seeds 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.config import Guardrails  # noqa: E402
from pipelines.canary import AnalysisPolicy, CanaryAnalysis, Verdict  # noqa: E402
from pipelines.canary.significance import js_distance  # noqa: E402
from pipelines.metrics import PREDICTION_BINS, CanaryWindow, LatencyHistogram, VariantStats  # noqa: E402

INTERVAL_SECONDS = 60.0
RPS = 100.0
"""Mean requests per second across both fleets."""
CANARY_SHARE = 0.25
MAX_INTERVALS = 12
POSITIVE_RATE = 0.24
"""Share of positive labels (as in UCI Adult)."""
LABEL_DELAY_SECONDS = 15.0
"""Mean delay before a request's true label comes back."""

GUARDRAILS = Guardrails(
    max_5xx_rate=0.02, p99_latency_ms=200.0, min_live_accuracy=0.825, max_prediction_drift=0.1
)
"""Set the way an operator would: comfortably above normal noise, below a real regression."""

POLICY = AnalysisPolicy(interval_seconds=INTERVAL_SECONDS, iterations=5, failure_threshold=1)


@dataclass(frozen=True)
class Fleet:
    """How one fleet behaves: the knobs a regression turns."""

    latency_median_ms: float = 60.0
    latency_sigma: float = 0.4
    error_rate: float = 0.005
    accuracy: float = 0.85

    def scaled(self, latency: float = 1.0, errors: float = 0.0, accuracy: float = 0.0) -> Fleet:
        return Fleet(
            self.latency_median_ms * latency,
            self.latency_sigma,
            self.error_rate + errors,
            self.accuracy + accuracy,
        )


SCENARIOS: dict[str, Callable[[Fleet], Fleet]] = {
    "healthy": lambda fleet: fleet,
    "latency-2x": lambda fleet: fleet.scaled(latency=2.0),
    "errors+5pp": lambda fleet: fleet.scaled(errors=0.05),
    "accuracy-5pp": lambda fleet: fleet.scaled(accuracy=-0.05),
}


@dataclass
class _Pending:
    """Labels on their way back: arrival time and whether the prediction was right."""

    arrival: list[np.ndarray] = field(default_factory=list)
    correct: list[np.ndarray] = field(default_factory=list)

    def add(self, arrival: np.ndarray, correct: np.ndarray) -> None:
        self.arrival.append(arrival)
        self.correct.append(correct)

    def take_until(self, t: float) -> tuple[int, int]:
        if not self.arrival:
            return 0, 0
        arrival, correct = np.concatenate(self.arrival), np.concatenate(self.correct)
        due = arrival < t
        self.arrival, self.correct = [arrival[~due]], [correct[~due]]
        return int(due.sum()), int(correct[due].sum())


def _fleet_interval(
    rng: np.random.Generator,
    fleet: Fleet,
    requests: int,
    start: float,
    incident: dict[str, float],
    pending: _Pending,
) -> VariantStats:
    """Simulate one fleet's requests over one interval and what a metrics source would report."""
    times = start + rng.uniform(0, INTERVAL_SECONDS, requests)
    failed = rng.random(requests) < fleet.error_rate + incident.get("errors", 0.0)
    latency = rng.lognormal(np.log(fleet.latency_median_ms), fleet.latency_sigma, requests)
    latency *= incident.get("slow", 1.0)
    gc_pause = rng.random(requests) < 0.003
    latency[gc_pause] += rng.uniform(50, 250, int(gc_pause.sum()))
    ok = ~failed
    truth = rng.random(requests) < POSITIVE_RATE
    right = rng.random(requests) < fleet.accuracy
    predicted = np.where(right, truth, ~truth)
    score = np.where(predicted, 0.5 + 0.5 * rng.beta(2, 2, requests), 0.5 * rng.beta(2, 3, requests))
    bins = np.minimum((score[ok] * PREDICTION_BINS).astype(int), PREDICTION_BINS - 1)
    pending.add(times[ok] + rng.exponential(LABEL_DELAY_SECONDS, int(ok.sum())), right[ok])
    labelled, correct = pending.take_until(start + INTERVAL_SECONDS)
    return VariantStats.from_histogram(
        invocations=requests,
        errors_4xx=0,
        errors_5xx=int(failed.sum()),
        latency=LatencyHistogram.of(latency[ok]),
        predictions=tuple(int(c) for c in np.bincount(bins, minlength=PREDICTION_BINS)),
        labelled=labelled,
        correct=correct,
    )


def simulate(scenario: str, seed: int) -> list[CanaryWindow]:
    """The windows a metrics source would report, interval by interval, for one canary."""
    rng = np.random.default_rng([seed, list(SCENARIOS).index(scenario)])
    baseline = Fleet(latency_median_ms=rng.uniform(50, 65), error_rate=rng.uniform(0.002, 0.008))
    canary = SCENARIOS[scenario](baseline)
    pending_baseline, pending_canary = _Pending(), _Pending()
    windows = []
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
        windows.append(
            CanaryWindow(
                start=start,
                end=start + INTERVAL_SECONDS,
                baseline=_fleet_interval(rng, baseline, total - to_canary, start, incident, pending_baseline),
                canary=_fleet_interval(rng, canary, to_canary, start, incident, pending_canary),
            )
        )
    return windows


class NaivePeer:
    """Flagger's built-in style: the interval's raw canary values against fixed thresholds."""

    def __init__(self, guardrails: Guardrails, iterations: int, failure_threshold: int) -> None:
        self.guardrails, self.iterations, self.failure_threshold = guardrails, iterations, failure_threshold
        self.passed = self.failed = 0
        self.breached: str | None = None

    def step(self, window: CanaryWindow) -> Verdict:
        canary, g = window.canary, self.guardrails
        assert canary is not None
        failures = []
        if (canary.error_rate or 0.0) > g.max_5xx_rate:
            failures.append("error-rate")
        if (canary.latency_p99_ms or 0.0) > g.p99_latency_ms:
            failures.append("p99-latency")
        if (
            g.min_live_accuracy is not None
            and canary.accuracy is not None
            and canary.accuracy < g.min_live_accuracy
        ):
            failures.append("live-accuracy")
        drift = js_distance(canary.prediction_histogram, window.baseline.prediction_histogram)
        if drift is not None and drift > g.max_prediction_drift:
            failures.append("prediction-drift")
        if failures:
            self.failed += 1
            if self.failed >= self.failure_threshold:
                self.breached = failures[0]
                return Verdict.ROLLBACK
            return Verdict.CONTINUE
        self.passed += 1
        return Verdict.PROMOTE if self.passed >= self.iterations else Verdict.CONTINUE


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    intervals: int
    breached: str | None


def run_ours(windows: list[CanaryWindow]) -> Outcome:
    analysis = CanaryAnalysis(POLICY, GUARDRAILS)
    for window in windows:
        decision = analysis.step(window)
        if decision.verdict is not Verdict.CONTINUE:
            breached = decision.breached
            return Outcome(decision.verdict, decision.interval, breached.name if breached else None)
    return Outcome(Verdict.CONTINUE, len(windows), None)


def run_peer(windows: list[CanaryWindow], failure_threshold: int) -> Outcome:
    peer = NaivePeer(GUARDRAILS, POLICY.iterations, failure_threshold)
    for index, window in enumerate(windows, start=1):
        verdict = peer.step(window)
        if verdict is not Verdict.CONTINUE:
            return Outcome(verdict, index, peer.breached)
    return Outcome(Verdict.CONTINUE, len(windows), None)


ANALYSES: dict[str, Callable[[list[CanaryWindow]], Outcome]] = {
    "modelrail": run_ours,
    "naive, threshold 1": lambda windows: run_peer(windows, 1),
    "naive, threshold 5": lambda windows: run_peer(windows, 5),
}


def summarise(outcomes: dict[str, list[Outcome]]) -> dict[str, Any]:
    """False rollbacks, misses and decision times of one analysis over every scenario."""
    healthy = outcomes["healthy"]
    regressions = [o for name, runs in outcomes.items() if name != "healthy" for o in runs]
    rolled = [o.intervals for o in regressions if o.verdict is Verdict.ROLLBACK]
    per_scenario = {}
    for name, runs in outcomes.items():
        decided = [o.intervals for o in runs if o.verdict is not Verdict.CONTINUE]
        per_scenario[name] = {
            "rolled_back": sum(o.verdict is Verdict.ROLLBACK for o in runs),
            "promoted": sum(o.verdict is Verdict.PROMOTE for o in runs),
            "undecided": sum(o.verdict is Verdict.CONTINUE for o in runs),
            "median_intervals": statistics.median(decided) if decided else None,
            "max_intervals": max(decided) if decided else None,
        }
    return {
        "false_rollbacks": sum(o.verdict is Verdict.ROLLBACK for o in healthy),
        "healthy_runs": len(healthy),
        "missed_regressions": sum(o.verdict is not Verdict.ROLLBACK for o in regressions),
        "regression_runs": len(regressions),
        "rollback_intervals_median": statistics.median(rolled) if rolled else None,
        "rollback_intervals_max": max(rolled) if rolled else None,
        "scenarios": per_scenario,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="Seeds per scenario (default 20).")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args()

    outcomes: dict[str, dict[str, list[Outcome]]] = {name: {} for name in ANALYSES}
    for scenario in SCENARIOS:
        for seed in range(args.seeds):
            windows = simulate(scenario, seed)
            for name, analyse in ANALYSES.items():
                outcomes[name].setdefault(scenario, []).append(analyse(windows))
    report = {
        "setup": {
            "seeds_per_scenario": args.seeds,
            "interval_seconds": INTERVAL_SECONDS,
            "rps": RPS,
            "canary_share": CANARY_SHARE,
            "iterations": POLICY.iterations,
            "alpha": POLICY.alpha,
            "guardrails": GUARDRAILS.model_dump(),
        },
        "analyses": {name: summarise(runs) for name, runs in outcomes.items()},
    }
    ours = report["analyses"]["modelrail"]
    for name in ANALYSES:
        if name == "modelrail":
            continue
        peer = report["analyses"][name]
        report["analyses"][name]["versus_modelrail"] = {
            "false_rollbacks_difference": peer["false_rollbacks"] - ours["false_rollbacks"],
            "missed_regressions_difference": peer["missed_regressions"] - ours["missed_regressions"],
            "rollback_intervals_median_ratio": (
                peer["rollback_intervals_median"] / ours["rollback_intervals_median"]
                if peer["rollback_intervals_median"] and ours["rollback_intervals_median"]
                else None
            ),
        }
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    else:
        _print_table(report)
    return 0


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    setup = report["setup"]
    table = Table(
        title=(
            f"Canary analysis over {setup['seeds_per_scenario']} seeds per scenario "
            f"({setup['rps']:g} rps, canary {setup['canary_share']:.0%}, "
            f"{setup['interval_seconds']:g} s intervals)"
        )
    )
    table.add_column("analysis")
    table.add_column("false rollbacks", justify="right")
    table.add_column("missed regressions", justify="right")
    table.add_column("intervals to rollback (median / max)", justify="right")
    for scenario in SCENARIOS:
        table.add_column(scenario, justify="right")
    for name, figures in report["analyses"].items():
        cells = [
            name,
            f"{figures['false_rollbacks']}/{figures['healthy_runs']}",
            f"{figures['missed_regressions']}/{figures['regression_runs']}",
            f"{figures['rollback_intervals_median']} / {figures['rollback_intervals_max']}",
        ]
        for scenario in SCENARIOS:
            s = figures["scenarios"][scenario]
            cells.append(f"↩{s['rolled_back']} ✓{s['promoted']} ?{s['undecided']}")
        table.add_row(*cells)
    console = Console(width=160)
    console.print(table)
    console.print(f"per scenario: ↩ rolled back, ✓ promoted, ? undecided after {MAX_INTERVALS} intervals")
    ours = report["analyses"]["modelrail"]
    for name, figures in report["analyses"].items():
        versus = figures.get("versus_modelrail")
        if versus is None:
            continue
        ratio = versus["rollback_intervals_median_ratio"]
        console.print(
            f"{name} vs modelrail: false rollbacks {figures['false_rollbacks']} vs {ours['false_rollbacks']} "
            f"({versus['false_rollbacks_difference']:+d}), misses {figures['missed_regressions']} vs "
            f"{ours['missed_regressions']} ({versus['missed_regressions_difference']:+d}), median intervals "
            f"to rollback ×{ratio:.2f}"
            if ratio is not None
            else f"{name}: no rollbacks to compare"
        )


if __name__ == "__main__":
    sys.exit(main())

"""``modelrail canary judge`` as a black box: generated request logs in, verdicts and exit codes out.

Each test writes JSON-lines telemetry from a seeded generator, runs the command as its own
process and reads its ``--json`` report, so what is checked is the judge as a team replaying its
own logs would meet it: A/A runs roll back no more often than the error budget allows, an
interval without canary traffic pauses, a clear regression rolls back with exit 1, a malformed
line is named by file and line with exit 2, and each run is judged on its own.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infra.config import load_stack_file

from .conftest import REPO

pytestmark = pytest.mark.integration

INTERVAL = 10.0
CLASSES = ("<=50K", ">50K")


@dataclass(frozen=True)
class Traffic:
    """One side of one run: requests per interval, and how they behave."""

    per_interval: int = 150
    latency_median_ms: float = 40.0
    error_rate: float = 0.002
    accuracy: float = 0.85
    positive_share: float = 0.25
    label_delay_seconds: float = 5.0
    silent_intervals: tuple[int, ...] = ()
    """0-based intervals in which this side serves nothing."""


def requests(
    run: str, traffic: Traffic, intervals: int, rng: np.random.Generator, interval: float = INTERVAL
) -> Iterator[dict[str, Any]]:
    """A run's requests on one side, in time order, as the judge reads them."""
    for index in range(intervals):
        if index in traffic.silent_intervals:
            continue
        n = traffic.per_interval
        t = np.sort(rng.uniform(index * interval, (index + 1) * interval, n))
        latency = rng.lognormal(math.log(traffic.latency_median_ms), 0.3, n)
        failed = rng.random(n) < traffic.error_rate
        truth = rng.random(n) < traffic.positive_share
        right = rng.random(n) < traffic.accuracy
        for i in range(n):
            # t unrounded: rounding could carry a request into the next interval
            record: dict[str, Any] = {"run": run, "t": float(t[i]), "latency_ms": round(float(latency[i]), 2)}
            if failed[i]:
                record["status"] = 500
            else:
                label = CLASSES[int(truth[i])]
                record.update(
                    status=200,
                    prediction=label if right[i] else CLASSES[1 - int(truth[i])],
                    label=label,
                    label_t=float(t[i]) + traffic.label_delay_seconds,
                )
            yield record


def runs_of(
    traffic: Traffic, runs: int, intervals: int, rng: np.random.Generator
) -> Iterator[dict[str, Any]]:
    """Runs ``"0"`` to ``runs - 1`` of the same traffic, one after the other."""
    for run in range(runs):
        yield from requests(str(run), traffic, intervals, rng)


def write(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return path


def policy(tmp_path: Path, *, alpha: float = 0.01, bake_seconds: int = 60, **guardrails: Any) -> Path:
    """A judge policy file: six intervals of ``INTERVAL`` seconds, the given budget and guardrails."""
    document = {
        "guardrails": {"p99LatencyMs": 500, "minLiveAccuracy": 0.7, **guardrails},
        "deployment": {"bakeSeconds": bake_seconds, "analysis": {"alpha": alpha}},
        "prediction": {"kind": "classification", "classes": list(CLASSES)},
    }
    path = tmp_path / "judge.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def judge(*args: str | Path, expect: int | set[int]) -> dict[str, Any]:
    """Run ``modelrail canary judge ARGS --json``; the exit code must be ``expect`` (or one of them)."""
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "canary", "judge", *map(str, args), "--json"],
        check=False, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert result.returncode in (expect if isinstance(expect, set) else {expect}), (
        f"exit {result.returncode}\n{result.stderr}{result.stdout[-3000:]}"
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def common(tmp_path: Path, baseline: Path, canary: Path, **policy_args: Any) -> list[str | Path]:
    return ["--baseline", baseline, "--canary", canary, "--policy", policy(tmp_path, **policy_args),
            "--interval-seconds", str(INTERVAL), "--min-requests", "100", "--min-labels", "100"]  # fmt: skip


def test_aa_runs_roll_back_no_more_often_than_alpha_and_quiet_intervals_pause(tmp_path: Path) -> None:
    """100 A/A runs (the canary is the baseline's twin), one interval of each without canary traffic.

    Each run looks six times per check; the share of runs that roll back anyway must stay within
    α plus three binomial standard deviations of 100 runs (at most 11 of them for α = 0.05, large
    enough for 100 runs to tell apart from a judge whose error grows with every look).
    """
    runs, intervals, alpha = 100, 7, 0.05
    rng = np.random.default_rng(15)
    steady, quiet = Traffic(per_interval=120), Traffic(per_interval=120, silent_intervals=(2,))
    baseline = write(tmp_path / "baseline.jsonl", runs_of(steady, runs, intervals, rng))
    canary = write(tmp_path / "canary.jsonl", runs_of(quiet, runs, intervals, rng))
    report = judge(*common(tmp_path, baseline, canary, alpha=alpha), expect={0, 1})
    assert [run["run"] for run in report["runs"]] == [str(run) for run in range(runs)]
    rollbacks = sum(run["final"]["verdict"] == "rollback" for run in report["runs"])
    assert report["exit_code"] == (1 if rollbacks else 0)
    assert rollbacks <= alpha * runs + 3 * math.sqrt(runs * alpha * (1 - alpha)), report["summary"]
    assert report["summary"]["promote"] + rollbacks == runs  # six counted intervals fit in seven
    for run in report["runs"]:
        third = next((d for d in run["decisions"] if d["interval"] == 3), None)
        if third is not None:  # a run may have rolled back before it
            assert third["verdict"] == "pause", third
            assert third["window"]["canary_requests"] == 0
        assert all(d["verdict"] != "pause" for d in run["decisions"] if d["interval"] != 3)


def test_regressions_roll_back_with_exit_1_and_each_run_is_judged_on_its_own(tmp_path: Path) -> None:
    """A healthy run beside a slow one and an erring one: the slow and the erring roll back on their
    own guardrails, and the healthy run's decisions are exactly those it gets when judged alone."""
    rng = np.random.default_rng(1)
    runs = {"healthy": Traffic(), "slow": Traffic(latency_median_ms=400.0), "erring": Traffic(error_rate=0.2)}
    baseline = {run: list(requests(run, Traffic(), 7, rng)) for run in runs}
    canary = {run: list(requests(run, traffic, 7, rng)) for run, traffic in runs.items()}
    both = [write(tmp_path / f"{side}.jsonl", (r for run in records.values() for r in run))
            for side, records in (("baseline", baseline), ("canary", canary))]  # fmt: skip
    together = judge(*common(tmp_path, *both), expect=1)
    healthy = [write(tmp_path / f"healthy-{side}.jsonl", records["healthy"])
               for side, records in (("baseline", baseline), ("canary", canary))]  # fmt: skip
    alone = judge(*common(tmp_path, *healthy), expect=0)
    by_run = {run["run"]: run for run in together["runs"]}
    assert together["exit_code"] == 1
    assert together["summary"] == {"runs": 3, "promote": 1, "rollback": 2, "undecided": 0}
    assert by_run["healthy"] == alone["runs"][0]
    assert by_run["healthy"]["final"]["verdict"] == "promote"
    for run, check in (("slow", "p99-latency"), ("erring", "error-rate")):
        final = by_run[run]["final"]
        assert (final["verdict"], final["breached"]) == ("rollback", check), final
        assert final["interval"] <= 3  # clear regressions are caught within three intervals
        (breached,) = (c for c in by_run[run]["decisions"][-1]["checks"] if c["name"] == check)
        assert breached["passed"] is False
        assert breached["samples"]["canary"] > 0 and breached["samples"]["baseline"] > 0


def test_telemetry_that_ends_before_the_bake_is_undecided_with_exit_6(tmp_path: Path) -> None:
    rng, traffic = np.random.default_rng(3), Traffic(label_delay_seconds=0.0)
    baseline = write(tmp_path / "baseline.jsonl", requests("0", traffic, 2, rng))
    canary = write(tmp_path / "canary.jsonl", requests("0", traffic, 2, rng))
    report = judge(*common(tmp_path, baseline, canary), expect=6)
    final = report["runs"][0]["final"]
    assert (final["verdict"], final["decided"], final["interval"]) == ("continue", False, 2)
    assert report["summary"]["undecided"] == 1


def test_a_malformed_line_is_named_by_file_and_line_with_exit_2(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    baseline = write(tmp_path / "baseline.jsonl", requests("0", Traffic(), 1, rng))
    lines = [json.dumps(record) for record in requests("0", Traffic(), 1, rng)]
    lines[41] = json.dumps({"t": 3.0, "latency_ms": 12.0, "status": 700})
    lines[76] = '{"t": 4.0, "latency_ms": NaN, "status": 200}'
    canary = tmp_path / "canary.jsonl"
    canary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = judge(*common(tmp_path, baseline, canary), expect=2)
    assert report["error"] == "TelemetryError"
    assert f"{canary}:42: status = 700" in report["message"]
    assert report["details"] == [
        f"{canary}:42: status = 700: an HTTP status: a whole number from 100 to 599",
        f"{canary}:77: latency_ms = NaN: a finite number of milliseconds ≥ 0, or null for no answer",
    ]


def test_a_bad_policy_file_names_the_key_the_value_and_what_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "judge.yaml"
    path.write_text(
        "guardrails: {p99LatencyMs: -5}\ndeployment: {analysis: {alpha: 2}}\nprediction: {kind: ranking}\n",
        encoding="utf-8",
    )
    empty = write(tmp_path / "empty.jsonl", [])
    report = judge("--baseline", empty, "--canary", empty, "--policy", path, expect=2)
    details = "\n".join(report["details"])
    assert f"{path}: guardrails.p99LatencyMs = -5: " in details
    assert f"{path}: deployment.analysis.alpha = 2: " in details
    assert f'{path}: prediction.kind = "ranking": one of classification, regression' in details


def test_a_stack_service_judges_with_its_guardrails_its_bake_and_its_contract(tmp_path: Path) -> None:
    """adult-income on the local stack, as a rollout there is judged: intervals of a quarter of the bake."""
    declared = load_stack_file(REPO / "stacks" / "Pulumi.local.yaml").service("adult-income")
    interval = max(1.0, min(60.0, declared.deployment.bake_seconds / 4))
    intervals = max(1, int(declared.deployment.bake_seconds // interval))
    rng, traffic = np.random.default_rng(6), Traffic(per_interval=60, label_delay_seconds=0.0)
    baseline = write(tmp_path / "baseline.jsonl", requests("0", traffic, intervals, rng, interval))
    canary = write(tmp_path / "canary.jsonl", requests("0", traffic, intervals, rng, interval))
    report = judge("--baseline", baseline, "--canary", canary, "--stack", "local", "--service", "adult-income",
                   "--min-requests", "20", "--min-labels", "20", expect=0)  # fmt: skip
    assert report["judged_as"] == {"stack": "local", "service": "adult-income"}
    assert report["guardrails"] == declared.guardrails.model_dump(mode="json", by_alias=True)
    assert (report["policy"]["interval_seconds"], report["policy"]["iterations"]) == (interval, intervals)
    assert report["policy"]["alpha"] == declared.deployment.analysis.alpha
    assert report["prediction"] == {"kind": "classification", "classes": list(CLASSES), "bins": None,
                                    "tolerance": None}  # fmt: skip
    final = report["runs"][0]["final"]
    assert (final["verdict"], final["interval"]) == ("promote", intervals)


def test_a_regression_service_judges_its_labels_within_its_live_tolerance(tmp_path: Path) -> None:
    """diabetes (a regression, liveTolerance 60): a canary off by twice the tolerance rolls back on
    live accuracy, read as the share of predictions within the tolerance of their labels."""
    declared = load_stack_file(REPO / "stacks" / "Pulumi.local.yaml").service("diabetes")
    interval = max(1.0, min(60.0, declared.deployment.bake_seconds / 4))
    rng = np.random.default_rng(7)

    def side(name: str, bias: float) -> Path:
        records = []
        for t in np.sort(rng.uniform(0, 4 * interval, 320)):
            truth = float(rng.normal(150, 50))
            records.append({"t": float(t), "latency_ms": 20.0, "status": 200, "label": truth,
                            "prediction": truth + bias + float(rng.normal(0, 20))})  # fmt: skip
        return write(tmp_path / f"{name}.jsonl", records)

    report = judge("--baseline", side("baseline", 0.0), "--canary", side("canary", 120.0), "--stack", "local",
                   "--service", "diabetes", "--min-requests", "50", "--min-labels", "50", expect=1)  # fmt: skip
    assert report["prediction"] == {"kind": "regression", "classes": None, "bins": None, "tolerance": 60.0}
    final = report["runs"][0]["final"]
    assert (final["verdict"], final["breached"], final["interval"]) == ("rollback", "live-accuracy", 1)

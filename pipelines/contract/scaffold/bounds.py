"""The baseline fit of a new service's model, and the metric bounds it sets in the contract."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contract.scaffold.infer import round_significant
from pipelines.contract.tasks import DEFAULT_RULES, METRIC_DIRECTIONS, Task

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.contract.model import ServiceContract

MARGIN = 0.05
"""An absolute bound sits this share of the baseline's value below (or above) what it reached."""
CALIBRATION_MARGIN = 0.5
"""Calibration error is noisy on a few hundred rows: its bound leaves half its value again."""


@dataclass(frozen=True)
class Baseline:
    """How the generated model did when it was fitted once, seed 0, on the snapshot."""

    held_out: dict[str, float | None]
    """The model gate's metrics on the rows the trainer held out of fitting."""
    snapshot: dict[str, float | None]
    """The model gate's metrics on the whole snapshot (what ``gate model --data SNAPSHOT`` sees)."""
    live_accuracy: float
    """What the canary's live-accuracy check would count on the held-out rows: accuracy, or for
    regression the share of predictions within the live tolerance."""

    def worst(self, metric: str, direction: str) -> float | None:
        values = [
            value
            for value in (self.held_out.get(metric), self.snapshot.get(metric))
            if value is not None and math.isfinite(value)
        ]
        if not values:
            return None
        return min(values) if direction == "higher_is_better" else max(values)


def metric_bounds(task: Task, baseline: Baseline) -> dict[str, dict[str, float | bool]]:
    """Per metric: the task's default rule with an absolute bound a little on the safe side of the
    worse of the baseline's two scores (a calibration bound never tighter than the default)."""
    rules: dict[str, dict[str, float | bool]] = {}
    for metric, direction in METRIC_DIRECTIONS[task].items():
        rule: dict[str, float | bool] = dict(DEFAULT_RULES[task].get(metric, {}))
        worst = baseline.worst(metric, direction)
        if worst is None:
            continue
        if direction == "higher_is_better":
            rule["min"] = round_significant(worst - MARGIN * abs(worst), "down")
        else:
            margin = CALIBRATION_MARGIN if metric == "ece" else MARGIN
            bound = round_significant(worst + margin * abs(worst), "up")
            default = DEFAULT_RULES[task].get(metric, {}).get("max")
            rule["max"] = max(bound, float(default)) if metric == "ece" and default is not None else bound
        rules[metric] = {key: rule[key] for key in ("min", "max", "maxRegression", "relative") if key in rule}
    return rules


def live_accuracy_floor(baseline: Baseline) -> float:
    """``guardrails.minLiveAccuracy`` for a new stack entry: a tenth below the baseline's count on
    rows it never saw, so live traffic of the quality the model showed does not trip the canary."""
    return round_significant(baseline.live_accuracy * 0.9, "down")


def fit_baseline(contract: ServiceContract, data_file: Path, root: Path, scratch: Path) -> Baseline:
    """Train, package and gate the service once, as the platform's commands would.

    The model is trained on the whole snapshot, as ``modelrail train`` trains it; the model gate
    then scores it on the snapshot and on the rows the trainer held out from fitting.
    """
    import numpy as np

    from pipelines.gates.policy import load_policy
    from pipelines.gates.versions import model_gate, predictions, read_evaluation_data
    from pipelines.packaging.build import build_package
    from pipelines.packaging.load import load_package
    from pipelines.training.manifest import TrainingManifest
    from pipelines.training.trainer import train

    snapshot = contract.latest_snapshot
    manifest = TrainingManifest(
        service=contract.name, data_uri=snapshot.path, data_sha256=snapshot.sha256, code_git_sha="unknown"
    )
    train(manifest, scratch / "model", root=root, data_path=data_file)
    built = build_package(contract.name, scratch / "model", scratch / "model.tar.gz", root=root)
    package = load_package(built.path)
    policy = load_policy(stage="candidate")
    held = held_out_rows(contract, data_file, root, manifest)

    def metrics(rows: pd.DataFrame) -> dict[str, float | None]:
        return dict(model_gate(contract, package, None, rows, policy).subject["metrics"]["candidate"])

    held_out = metrics(held)
    if contract.task is Task.regression:
        assert contract.live_tolerance is not None  # the loader requires it for regression
        errors = np.abs(predictions(package, held) - held[contract.label].to_numpy(dtype=float))
        live = float(np.mean(errors <= contract.live_tolerance))
    else:
        live = float(held_out["accuracy"] or 0.0)
    return Baseline(
        held_out=held_out,
        snapshot=metrics(read_evaluation_data(contract, data_file, root)),
        live_accuracy=live,
    )


def held_out_rows(contract: ServiceContract, data_file: Path, root: Path, manifest: Any) -> pd.DataFrame:
    """The rows the trainer held out of fitting: its split, with the manifest's fraction and seed."""
    from sklearn.model_selection import train_test_split

    from pipelines.contract.data import read_data

    frame = read_data(contract, data_file, root)
    labels = frame[contract.label]
    stratify = labels if contract.task.is_classification and labels.value_counts().min() >= 2 else None
    _, held = train_test_split(
        frame,
        test_size=manifest.hyperparameters.test_fraction,
        stratify=stratify,
        random_state=manifest.seed,
    )
    rows: pd.DataFrame = held.reset_index(drop=True)
    return rows


def failing_metric_checks(contract: ServiceContract, data_file: Path, root: Path, scratch: Path) -> list[str]:
    """The model gate's failing metric checks, per stage, of the model ``fit_baseline`` packaged."""
    from pipelines.gates.policy import load_policy
    from pipelines.gates.versions import model_gate, read_evaluation_data
    from pipelines.packaging.load import load_package

    package = load_package(scratch / "model.tar.gz")
    rows = read_evaluation_data(contract, data_file, root)
    failed = []
    for stage in ("candidate", "production"):
        report = model_gate(contract, package, None, rows, load_policy(stage=stage))
        failed += [f"{stage}: {check.detail}" for check in report.checks if check.failed]
    return failed

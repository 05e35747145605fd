"""The gates that need a model: model versus baseline, reproducibility, latency.

These are thin glue around the contract, packaging, training and serving code: read the data as
the service's contract describes it, load or retrain a package, score rows with it, or serve it
and measure. The numbers themselves come from ``pipelines.gates.metrics`` and
``pipelines.gates.model_gate``; what a package predicts (its task, classes and positive class)
comes from its own ``schema.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contract.tasks import Task
from pipelines.errors import BadInputError
from pipelines.gates.checks import Check, at_least, at_most
from pipelines.gates.model_gate import ModelOutput, evaluate_model
from pipelines.gates.policy import GatePolicy, LatencyPolicy, ReproPolicy, stage_rules
from pipelines.gates.report import GateReport

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipelines.contract.model import ServiceContract
    from pipelines.serving.model import LoadedPackage

TRAINING_MANIFEST = "training-manifest.json"


def predictions(package: LoadedPackage, frame: pd.DataFrame, output: ModelOutput | None = None) -> np.ndarray:
    """What the gates judge a package by, for every row of ``frame``.

    Binary: the positive class's probability; multiclass: the probability matrix, columns in the
    schema's class order; regression: the predictions. They come from ``LoadedPackage.scores``,
    the code the endpoint answers with (a contract's own ``predict`` included), so the gates judge
    what is served, not the estimator beside it.
    """
    import numpy as np

    output = output or ModelOutput.from_schema(package.schema["output"])
    scores = np.asarray(package.scores(frame), dtype=np.float64)
    if output.task is Task.regression:
        return scores.reshape(-1)
    if output.task is Task.binary:
        assert output.positive_class is not None  # ModelOutput.from_schema requires it
        return scores[:, output.classes.index(output.positive_class)]
    return scores


def read_evaluation_data(contract: ServiceContract, path: Path, root: Path | None = None) -> pd.DataFrame:
    """Labelled rows typed as training typed them: CSV or Parquet with a header, or the contract's format.

    A table is checked and typed by the contract (numbers as floats, categories as strings, the
    label as a class or a number, unlabelled rows left out), so the model sees what it was
    trained on. Any other file is read in the contract's own format (e.g. ``adult.data``),
    which refuses ragged rows naming the line.
    """
    from pipelines.contract.data import coerce, read_data
    from pipelines.gates.frames import SUFFIXES, read_frame

    if path.suffix.lower() in SUFFIXES:
        return coerce(contract, read_frame(path, role="data").to_pandas(), source=f"data file {path}")
    if not path.is_file():
        raise BadInputError(f"data file {path} does not exist")
    return read_data(contract, path, root)


def model_gate(
    contract: ServiceContract,
    candidate: LoadedPackage,
    baseline: LoadedPackage | None,
    data: pd.DataFrame,
    policy: GatePolicy,
) -> GateReport:
    """Score ``data`` with both packages and run the model checks (no baseline: first version).

    The task, label and classes are the candidate's schema's; the rules are the contract's for
    the policy's stage, overridden by the policy's ``model.metrics``. Both packages score the
    same rows; a baseline that predicts something else (another task, other classes, another
    positive class) cannot be compared and is refused.
    """
    output = ModelOutput.from_schema(candidate.schema["output"])
    if output.task is not contract.task:
        raise BadInputError(
            f"candidate {candidate.package_id[:12]}: its schema says {output.task.value}, but the "
            f"contract of {contract.name} says {contract.task.value}"
        )
    theirs = None if baseline is None else _comparable(output, baseline, "baseline")
    rules = stage_rules(policy, output.task, contract.metric_rules(policy.stage))
    label = output.label or contract.label
    if label not in data.columns:
        raise BadInputError(
            f"the evaluation data has no label column {label!r} (columns: {', '.join(data.columns)})"
        )
    for role, package in (("candidate", candidate), ("baseline", baseline)):
        missing = [] if package is None else [c for c in package.columns if c not in data.columns]
        if missing:
            raise BadInputError(f"the evaluation data lacks the {role}'s input columns: {', '.join(missing)}")
    data = data[data[label].notna()]
    truth = _truth(output, data[label])
    baseline_predictions = None
    if baseline is not None and theirs is not None:
        baseline_predictions = _in_order(output, theirs, predictions(baseline, data, theirs))
    fairness = policy.model.fairness
    columns = contract.sensitive if fairness.sensitive_columns is None else fairness.sensitive_columns
    sensitive = {
        column: data[column].astype(object).where(data[column].notna(), None).tolist()
        for column in columns
        if column in data.columns
    }
    return evaluate_model(
        truth,
        predictions(candidate, data, output),
        rules,
        policy.model,
        output=output,
        sensitive=sensitive,
        sensitive_columns=columns,
        baseline=baseline_predictions,
        subject={
            "service": contract.name,
            "candidate": candidate.package_id,
            "baseline": None if baseline is None else baseline.package_id,
            "rows": len(data),
            "rules": {name: rule.model_dump(mode="json", by_alias=True) for name, rule in rules.items()},
            "sensitive_columns": list(columns),
        },
    )


def _truth(output: ModelOutput, labels: pd.Series) -> np.ndarray:
    """The labels as ``evaluate_model`` takes them for the task; unknown classes are bad input."""
    import numpy as np
    import pandas as pd

    if output.task is Task.regression:
        numbers = pd.to_numeric(labels, errors="coerce")
        if numbers.isna().any():
            bad = labels[numbers.isna()].iloc[0]
            raise BadInputError(f"label column {labels.name!r} has non-numeric value {bad!r}")
        return numbers.to_numpy(dtype=np.float64)
    values: np.ndarray = labels.astype(str).str.strip().to_numpy()
    unknown = sorted(set(values.tolist()) - set(output.classes))
    if unknown:
        raise BadInputError(
            f"label column {labels.name!r} has values {unknown[:5]}; the candidate predicts "
            f"{', '.join(output.classes)}"
        )
    if output.task is Task.binary:
        return np.asarray(values == output.positive_class, dtype=np.int64)
    return values


def _comparable(output: ModelOutput, other: LoadedPackage, role: str) -> ModelOutput:
    """What ``other`` predicts, if it can be compared with the candidate (same task, same classes,
    same positive class); ``BadInputError`` naming the difference otherwise."""
    theirs = ModelOutput.from_schema(other.schema["output"])
    problem = None
    if theirs.task is not output.task:
        problem = f"it is a {theirs.task.value} model, the candidate a {output.task.value} one"
    elif theirs.task is Task.binary and theirs.positive_class != output.positive_class:
        problem = (
            f"its positive class is {theirs.positive_class!r}, the candidate's {output.positive_class!r}"
        )
    elif sorted(theirs.classes) != sorted(output.classes):
        problem = f"it predicts {', '.join(theirs.classes)}, the candidate {', '.join(output.classes)}"
    if problem:
        raise BadInputError(
            f"{role} {other.package_id[:12]} cannot be compared with the candidate: {problem}"
        )
    return theirs


def _in_order(output: ModelOutput, theirs: ModelOutput, scores: np.ndarray) -> np.ndarray:
    """Another package's predictions with a multiclass model's columns in the candidate's class order."""
    if output.task is Task.multiclass:
        return scores[:, [theirs.classes.index(name) for name in output.classes]]
    return scores


def repro_gate(service: str, package: Path, policy: ReproPolicy, *, root: Path) -> GateReport:
    """Retrain from the package's own training manifest, repackage, and compare.

    Identical file hashes pass outright. Otherwise every differing file is listed, and the
    verdict falls to the predictions of both packages on the manifest's data, which must agree
    within the policy's tolerance (``prediction_gap``).
    """
    import tempfile

    from pipelines.contract.data import read_data
    from pipelines.contract.load import load_contract
    from pipelines.packaging.build import build_package
    from pipelines.packaging.compare import compare
    from pipelines.packaging.load import load_package
    from pipelines.training.manifest import parse_manifest
    from pipelines.training.trainer import resolve_data, train

    contract = load_contract(service, root)
    original = load_package(package)
    manifest = parse_manifest(
        original.manifest.get("training") or _training_manifest(package), source=str(package)
    )
    with tempfile.TemporaryDirectory(prefix="modelrail-repro-") as scratch:
        model_dir = Path(scratch) / "model"
        train(manifest, model_dir, root=root)
        rebuilt = Path(scratch) / "model.tar.gz"
        build_package(service, model_dir, rebuilt, root=root)
        differences = compare(package, rebuilt)
        retrained = load_package(rebuilt)
    subject = {"service": service, "candidate": original.package_id, "retrained": retrained.package_id}
    if not differences:
        check = Check(
            "repro.files",
            None,
            "sha256",
            0.0,
            None,
            0.0,
            True,
            "retraining from the manifest gave a byte-identical package (every file hash equal)",
        )
        return GateReport(gate="repro", checks=(check,), subject=subject)
    listed = "; ".join(f"{d.path}: {', '.join(d.reasons[:2])}" for d in differences)
    checks = [
        Check(
            "repro.files",
            None,
            "sha256",
            float(len(differences)),
            None,
            None,
            None,
            f"{len(differences)} file(s) differ: {listed}",
        )
    ]
    data = read_data(contract, resolve_data(manifest, root), root).head(policy.rows)
    gap, what = prediction_gap(original, retrained, data, contract.label)
    checks.append(
        at_most(
            "repro.predictions",
            None,
            "max_abs_difference",
            gap,
            policy.prediction_tolerance,
            f"{what} over {len(data)} rows",
        )
    )
    return GateReport(gate="repro", checks=tuple(checks), subject=subject)


def prediction_gap(
    original: LoadedPackage, retrained: LoadedPackage, data: pd.DataFrame, label: str
) -> tuple[float, str]:
    """The largest difference between two packages' predictions on ``data``, and what it measures.

    A classifier's is in probability, over every class (the positive one for a binary model); a
    regression model's is divided by the standard deviation of the label over the rows, so one
    tolerance means the same for a label in dollars as for one in millimetres (a constant label
    leaves the difference as it is).
    """
    import numpy as np

    output = ModelOutput.from_schema(original.schema["output"])
    before = predictions(original, data, output)
    theirs = _comparable(output, retrained, "the retrained package")
    after = _in_order(output, theirs, predictions(retrained, data, theirs))
    gap = float(np.abs(before - after).max()) if len(data) else 0.0
    if output.task is not Task.regression:
        return gap, "largest difference in predicted probability"
    spread = float(np.std(data[label].to_numpy(dtype=np.float64)))
    if not np.isfinite(spread) or spread == 0:
        return gap, "largest difference in prediction (the label is constant: not scaled)"
    return (
        gap / spread,
        f"largest difference in prediction, in standard deviations of {label!r} ({spread:.4g})",
    )


def _training_manifest(package: Path) -> Any:
    """The training manifest stored inside a package (tarball or directory)."""
    import json

    from pipelines.packaging.tarball import read_member

    if package.is_dir():
        return json.loads((package / TRAINING_MANIFEST).read_text(encoding="utf-8"))
    data = read_member(package, TRAINING_MANIFEST)
    if data is None:
        raise BadInputError(f"{package}: no {TRAINING_MANIFEST} inside; cannot retrain it")
    return json.loads(data)


def latency_gate(
    package: Path,
    rows: list[dict[str, Any]],
    policy: LatencyPolicy,
    *,
    p99_budget_ms: float,
    serving_threads: int = 1,
    subject: dict[str, Any] | None = None,
) -> GateReport:
    """Serve the package with its own serving code and drive concurrent requests of real rows.

    ``serving_threads`` is the service's ``servingThreads``: the gate measures the server as the
    endpoint will run it.
    """
    import tempfile

    from pipelines.gates.load import drive
    from pipelines.packaging.load import extract_package

    if not rows:
        raise BadInputError("the latency gate needs at least one row to send")
    with tempfile.TemporaryDirectory(prefix="modelrail-latency-") as scratch:
        model_dir = package if package.is_dir() else extract_package(package, Path(scratch) / "model")
        result = drive(model_dir, rows, policy, serving_threads=serving_threads)
    p99_ms = policy.p99_ms or p99_budget_ms
    sent = f"{result.requests} requests of {policy.rows_per_request} row(s), concurrency {policy.concurrency}"
    checks = [
        Check(
            "latency.p50",
            None,
            "milliseconds",
            result.p50_ms,
            None,
            policy.p50_ms,
            None if policy.p50_ms is None else result.p50_ms <= policy.p50_ms,
            f"median latency over {sent}" + ("" if policy.p50_ms else " (no median budget set)"),
        ),
        at_most("latency.p99", None, "milliseconds", result.p99_ms, p99_ms, f"99th percentile over {sent}"),
        at_most(
            "latency.errors",
            None,
            "count",
            float(result.errors),
            0.0,
            f"{result.errors} of {result.requests} requests did not return 200",
        ),
    ]
    if policy.min_throughput_rps is not None:
        checks.append(
            at_least(
                "latency.throughput",
                None,
                "requests_per_second",
                result.throughput_rps,
                policy.min_throughput_rps,
                f"{result.throughput_rps:.1f} requests/s",
            )
        )
    else:
        checks.append(
            Check(
                "latency.throughput",
                None,
                "requests_per_second",
                result.throughput_rps,
                None,
                None,
                None,
                f"{result.throughput_rps:.1f} requests/s (no minimum set)",
            )
        )
    checks.append(
        at_most(
            "latency.memory",
            None,
            "peak_rss_mb",
            result.peak_rss_mb,
            policy.max_memory_mb,
            "peak resident memory of the serving process",
        )
    )
    return GateReport(gate="latency", checks=tuple(checks), subject=subject or {})

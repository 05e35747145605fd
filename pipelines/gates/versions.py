"""The gates that need a model: model versus baseline, reproducibility, latency.

These are thin glue around the packaging, training and serving code: load or retrain a package,
score rows with it, or serve it and measure. The numbers themselves come from
``pipelines.gates.metrics`` and ``pipelines.gates.model_gate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import BadInputError
from pipelines.gates.checks import Check, at_least, at_most
from pipelines.gates.model_gate import evaluate_model
from pipelines.gates.policy import LatencyPolicy, ModelPolicy, ReproPolicy
from pipelines.gates.report import GateReport

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipelines.serving.model import LoadedPackage

TRAINING_MANIFEST = "training-manifest.json"


def positive_scores(package: LoadedPackage, frame: pd.DataFrame) -> np.ndarray:
    """The package's probability of its positive class for every row."""
    positive = package.classes.index(package.schema["output"]["positive_class"])
    return package.predict_proba(frame)[:, positive]


def read_evaluation_data(service: str, path: Path) -> pd.DataFrame:
    """CSV or Parquet with a header, or the service's own raw format (e.g. ``adult.data``)."""

    from pipelines.gates.frames import read_frame

    if path.suffix.lower() in (".csv", ".parquet", ".pq"):
        frame: pd.DataFrame = read_frame(path, role="data").to_pandas()
        return frame
    if not path.is_file():
        raise BadInputError(f"data file {path} does not exist")
    return read_raw_data(service, path)


def read_raw_data(service: str, path: Path) -> pd.DataFrame:
    """The service's raw file (e.g. ``adult.data``) through its reader, refusing ragged rows first.

    The raw format is headerless CSV with the module's ``COLUMNS`` in file order. pandas pads a
    row cut short with NaN, and the Adult reader then drops it for its missing label, so a
    truncated file would be judged silently without its last rows; ``BadInputError`` names the
    line instead. Blank lines are skipped, as the reader skips them.
    """
    from pipelines.gates.frames import check_field_counts
    from pipelines.training.trainer import service_module

    module = service_module(service)
    columns = getattr(module, "COLUMNS", None)
    if columns and path.is_file():
        check_field_counts(
            path,
            role="data",
            fields=len(columns),
            layout=f"the {service} raw format ({columns[0]}, ..., {columns[-1]}) has",
            skip_blank=True,
            skipinitialspace=True,
        )
    raw: pd.DataFrame = module.read_data(path)
    return raw


def model_gate(
    service: str,
    candidate: LoadedPackage,
    baseline: LoadedPackage | None,
    data: pd.DataFrame,
    policy: ModelPolicy,
) -> GateReport:
    """Score ``data`` with both packages and run the model checks (no baseline: first version)."""
    from pipelines.training.trainer import service_module

    label = service_module(service).LABEL
    if label not in data.columns:
        raise BadInputError(
            f"the evaluation data has no label column {label!r} (columns: {', '.join(data.columns)})"
        )
    missing = [column for column in candidate.columns if column not in data.columns]
    if missing:
        raise BadInputError(f"the evaluation data lacks the model's input columns: {', '.join(missing)}")
    positive = candidate.schema["output"]["positive_class"]
    truth = (data[label] == positive).to_numpy().astype(int)
    sensitive = {
        column: data[column].astype(object).where(data[column].notna(), None).tolist()
        for column in policy.fairness.sensitive_columns
        if column in data.columns
    }
    return evaluate_model(
        truth,
        positive_scores(candidate, data),
        policy,
        sensitive=sensitive,
        baseline_scores=None if baseline is None else positive_scores(baseline, data),
        subject={
            "service": service,
            "candidate": candidate.package_id,
            "baseline": None if baseline is None else baseline.package_id,
            "rows": len(data),
        },
    )


def repro_gate(service: str, package: Path, policy: ReproPolicy, *, root: Path) -> GateReport:
    """Retrain from the package's own training manifest, repackage, and compare.

    Identical file hashes pass outright. Otherwise every differing file is listed, and the
    verdict falls to the predictions of both packages on the manifest's data, which must agree
    within the policy's tolerance.
    """
    import tempfile

    from pipelines.packaging.build import build_package
    from pipelines.packaging.compare import compare
    from pipelines.packaging.load import load_package
    from pipelines.training.manifest import parse_manifest
    from pipelines.training.trainer import resolve_data, train

    original = load_package(package)
    manifest = parse_manifest(
        original.manifest.get("training") or _training_manifest(package), source=str(package)
    )
    with tempfile.TemporaryDirectory(prefix="modelrail-repro-") as scratch:
        model_dir = Path(scratch) / "model"
        train(manifest, model_dir, root=root)
        rebuilt = Path(scratch) / "model.tar.gz"
        build_package(service, model_dir, rebuilt)
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
    data = read_raw_data(service, resolve_data(manifest, root)).head(policy.rows)
    gap = float(abs(positive_scores(original, data) - positive_scores(retrained, data)).max())
    checks.append(
        at_most(
            "repro.predictions",
            None,
            "max_abs_difference",
            gap,
            policy.prediction_tolerance,
            f"largest difference in predicted probability over {len(data)} rows",
        )
    )
    return GateReport(gate="repro", checks=tuple(checks), subject=subject)


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

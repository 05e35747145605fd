"""The model, reproducibility and latency gates on a small real package (no registry needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipelines.contract.load import load_contract
from pipelines.gates.policy import load_policy
from pipelines.gates.versions import latency_gate, model_gate, read_evaluation_data, repro_gate

REPO = Path(__file__).resolve().parents[3]
SERVICE = "adult-income"
CONTRACT = load_contract(SERVICE, REPO)
POLICY = load_policy(stage="candidate")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A quickly trained Adult model, packaged as the registry would store it."""
    from pipelines.packaging.build import build_package
    from pipelines.training.manifest import Hyperparameters
    from pipelines.training.trainer import default_manifest, train

    scratch = tmp_path_factory.mktemp("package")
    manifest = default_manifest(SERVICE, REPO).model_copy(
        update={"hyperparameters": Hyperparameters(sample_rows=3000, max_iter=20)}
    )
    train(manifest, scratch / "model", root=REPO)
    build_package(SERVICE, scratch / "model", scratch / "model.tar.gz")
    yield scratch / "model.tar.gz"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return read_evaluation_data(CONTRACT, REPO / "data" / "adult" / "adult.data", REPO)


def test_retraining_from_the_manifest_reproduces_the_package(package: Path) -> None:
    report = repro_gate(SERVICE, package, POLICY.repro, root=REPO)
    assert report.passed
    assert [(c.name, c.statistic) for c in report.checks] == [("repro.files", 0.0)]


def test_the_first_version_is_gated_without_a_baseline_and_says_so(package: Path, data: pd.DataFrame) -> None:
    from pipelines.packaging.load import load_package

    candidate = load_package(package)
    report = model_gate(CONTRACT, candidate, None, data, POLICY)
    assert any("first version" in note for note in report.notes)
    # The policy names no sensitive columns: the contract's are compared.
    assert {c.column for c in report.checks if c.name == "model.fairness"} == set(CONTRACT.sensitive)
    assert {c.method for c in report.checks if c.name == "model.metric"} == set(
        CONTRACT.metric_rules("candidate")
    )
    same = model_gate(CONTRACT, candidate, candidate, data, POLICY)
    regressions = [c for c in same.checks if c.name == "model.regression"]
    assert regressions and all(c.statistic == 0.0 and c.passed for c in regressions)


def test_latency_is_measured_against_the_serving_code(package: Path, data: pd.DataFrame) -> None:
    head = data.head(50)
    rows = [
        {str(k): v for k, v in row.items()}
        for row in head.astype(object).where(head.notna(), None).to_dict("records")
    ]
    policy = POLICY.latency.model_copy(update={"requests": 40, "warmup_requests": 5, "concurrency": 2})
    report = latency_gate(package, rows, policy, p99_budget_ms=60_000)
    by_name = {c.name: c for c in report.checks}
    assert by_name["latency.errors"].statistic == 0.0
    assert by_name["latency.p99"].threshold == 60_000 and by_name["latency.p99"].passed
    assert by_name["latency.memory"].statistic is not None and by_name["latency.memory"].statistic > 10
    tight = latency_gate(
        package, rows, policy.model_copy(update={"max_memory_mb": 1.0}), p99_budget_ms=60_000
    )
    assert [(c.name, c.passed) for c in tight.failures] == [("latency.memory", False)]


def test_the_latency_gate_serves_with_the_services_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.gates.load import LoadResult

    asked: list[int] = []

    def drive(model_dir: Path, rows: object, policy: object, *, serving_threads: int) -> LoadResult:
        asked.append(serving_threads)
        return LoadResult(10, 0, 5.0, 9.0, 100.0, 200.0)

    monkeypatch.setattr("pipelines.gates.load.drive", drive)
    report = latency_gate(tmp_path, [{"age": 30}], POLICY.latency, p99_budget_ms=400, serving_threads=3)
    assert asked == [3] and report.passed

"""``modelrail service new``: a contract, a training module and a test that pass as written, or nothing.

Each case runs in a project of its own (a copy of the stack files, the real infra program) with
a small generated CSV, so a scaffold trains in a second or two.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infra.config import load_stack_file
from pipelines.cli import main
from pipelines.contract.data import snapshot_path
from pipelines.contract.load import ContractError, load_contract, read_contract
from pipelines.contract.scaffold import install
from pipelines.contract.scaffold.bounds import Baseline, live_accuracy_floor
from pipelines.contract.scaffold.code_templates import render_model, render_test
from pipelines.contract.scaffold.infer import infer_data, round_significant
from pipelines.contract.scaffold.names import PLACEHOLDER
from pipelines.contract.tasks import Task
from pipelines.gates.policy import load_policy
from pipelines.gates.versions import model_gate, read_evaluation_data
from pipelines.packaging.build import build_package
from pipelines.packaging.load import load_package
from pipelines.training.manifest import Hyperparameters
from pipelines.training.trainer import default_manifest, train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with the repository's stack files and a private temporary directory."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(REPO / "stacks", root / "stacks")
    (root / "infra").symlink_to(REPO / "infra")
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(root))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return root


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder of the project (the linked infra program left out)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
        if path.relative_to(root).parts[0] != "infra"
    }


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _regression_csv(path: Path, rows: int = 160) -> Path:
    rng = np.random.default_rng(7)
    data = []
    for _ in range(rows):
        x1, x2 = rng.normal(10, 3), rng.uniform(0, 5)
        group = rng.choice(["a", "b", "c"])
        y = 3 * x1 - 2 * x2 + {"a": 0, "b": 5, "c": -5}[group] + rng.normal(0, 2)
        data.append([f"{x1:.3f}", f"{x2:.3f}", "" if rng.random() < 0.05 else group, f"{y:.2f}"])
    return _write_csv(path, ["x1", "x2", "group", "demand"], data)


def _binary_csv(path: Path, rows: int = 200) -> Path:
    rng = np.random.default_rng(11)
    data = []
    for _ in range(rows):
        tenure, plan = rng.uniform(0, 48), rng.choice(["basic", "pro"])
        score = -0.1 * tenure + (1.5 if plan == "basic" else 0) + rng.normal(0, 1)
        data.append([f"{tenure:.1f}", plan, "stay" if score < -1 else "churn"])
    return _write_csv(path, ["tenure", "plan", "outcome"], data)


def _new(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(["service", "new", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def _gate(root: Path, service: str, package: Path, stage: str) -> list[Any]:
    contract = load_contract(service, root)
    rows = read_evaluation_data(contract, snapshot_path(contract.latest_snapshot, root), root)
    report = model_gate(contract, load_package(package), None, rows, load_policy(stage=stage))
    return [check for check in report.checks if check.name == "model.metric"]


def test_a_regression_service_is_read_off_its_csv_trains_and_passes_its_own_rules(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _regression_csv(project / "data" / "demand.csv")
    local = project / "stacks" / "Pulumi.local.yaml"
    before_local = local.read_text(encoding="utf-8")
    code, report = _new(
        capsys, "demand", "--task", "regression", "--data", str(data), "--label", "demand", "--stack", "local"
    )
    assert code == 0, report

    contract = load_contract("demand", project)
    assert [(f.name, f.type) for f in contract.features] == [
        ("x1", "number"),
        ("x2", "number"),
        ("group", "category"),
    ]
    assert contract.label == "demand"
    assert contract.latest_snapshot.path == "data/demand.csv"  # inside the project: relative
    assert contract.latest_snapshot.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    import pandas as pd

    spread = float(pd.read_csv(data)["demand"].std())
    assert contract.live_tolerance == float(f"{spread / 2:.2g}")
    rules = contract.metric_rules("candidate")
    assert rules["r2"].min is not None and rules["r2"].min > 0.5  # an absolute bound from the fit
    assert rules["rmse"].max is not None and rules["mae"].max is not None
    assert rules["r2"].max_regression == 0.02  # the task's defaults stay

    after_local = local.read_text(encoding="utf-8")
    assert after_local.startswith(before_local)
    entry = load_stack_file(local).service("demand")
    assert entry.model_version is None
    assert entry.guardrails.min_live_accuracy == live_accuracy_floor(
        Baseline(
            held_out=report["baseline"]["held_out"],
            snapshot=report["baseline"]["snapshot"],
            live_accuracy=report["baseline"]["live_accuracy"],
        )
    )
    assert report["written"][-1] == str(local)
    assert report["next"][0] == "pytest tests/services/test_demand.py"
    assert "modelrail qualify  --service demand" in " ".join(report["next"])
    assert (project / "tests" / "services" / "__init__.py").is_file()
    assert not list((tmp_path / "tmp").iterdir()), "the scratch project is removed"

    out = tmp_path / "out"
    train(default_manifest("demand", project), out / "model", root=project)
    package = build_package("demand", out / "model", out / "model.tar.gz", root=project).path
    for stage in ("candidate", "production"):
        checks = _gate(project, "demand", package, stage)
        assert {check.method for check in checks} == {"rmse", "mae", "r2"}
        assert not [check.detail for check in checks if check.failed]

    noisy = default_manifest("demand", project)
    noisy = noisy.model_copy(update={"hyperparameters": Hyperparameters(label_noise=1.0)})
    train(noisy, out / "noisy", root=project)
    shuffled = build_package("demand", out / "noisy", out / "noisy.tar.gz", root=project).path
    assert [check for check in _gate(project, "demand", shuffled, "candidate") if check.failed], (
        "a model fitted on shuffled labels fails the bounds"
    )


def test_a_binary_service_passes_its_generated_test(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _binary_csv(project / "data" / "churn.csv")
    monkeypatch.chdir(project)  # --data relative to where the command runs, as a user types it
    stacks = {path.name: path.read_bytes() for path in (project / "stacks").iterdir()}
    code, report = _new(
        capsys, "churn", "--task", "binary_classification", "--data", "data/churn.csv", "--label", "outcome"
    )
    assert code == 0, report
    contract = load_contract("churn", project)
    assert contract.classes == ("churn", "stay")
    assert contract.positive_class == "stay", "the later of the two sorted classes"
    assert contract.sensitive == ()
    assert {path.name: path.read_bytes() for path in (project / "stacks").iterdir()} == stacks
    assert report["stacks"] == []
    assert report["next"][0] == "modelrail service add churn --stack local"
    assert data.is_file()

    test = project / "tests" / "services" / "test_churn.py"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_without_data_the_contract_is_a_placeholder_the_loader_refuses(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _new(capsys, "kinds", "--task", "multiclass_classification")
    assert code == 0, report
    assert report["placeholder"] is True and report["baseline"] is None
    path = project / "services" / "kinds" / "service.yaml"
    with pytest.raises(ContractError) as refused:
        read_contract(path)
    problems = {issue.path for issue in refused.value.issues}
    assert "data.snapshots.0.sha256" in problems
    assert all(PLACEHOLDER in str(issue.value) for issue in refused.value.issues)
    assert (project / "services" / "kinds" / "model.py").is_file()
    assert (project / "tests" / "services" / "test_kinds.py").is_file()


@pytest.mark.parametrize(
    ("name", "args", "code", "expected"),
    [
        ("adult-income", ["--task", "regression"], 1, "already exists"),
        (
            "fraud-score",
            ["--task", "regression"],
            1,
            "Pulumi.prod.yaml: config.modelrail:services.fraud-score",
        ),
        ("taken", ["--task", "regression"], 1, "services/taken"),
        ("tested", ["--task", "regression"], 1, "tests/services/test_tested.py"),
        ("Bad_Name", ["--task", "regression"], 1, "is invalid"),
        ("trailing-", ["--task", "regression"], 1, "is invalid"),
        ("fine", ["--task", "classification"], 1, "unknown task; allowed: binary_classification"),
        (
            "fine",
            ["--task", "binary_classification", "--label", "kind"],
            1,
            "a binary classifier needs exactly 2",
        ),
        ("fine", ["--task", "multiclass_classification", "--label", "two"], 1, "needs at least 3"),
        ("fine", ["--task", "regression", "--label", "kind"], 1, "a regression label is a number"),
        (
            "fine",
            ["--task", "binary_classification", "--label", "two", "--positive-class", "maybe"],
            1,
            "its values are no, yes",
        ),
        ("fine", ["--task", "regression", "--label", "missing"], 2, "not a column"),
        ("fine", ["--task", "regression", "--stack", "qa"], 2, "no such stack file"),
        ("fine", ["--task", "regression", "--positive-class", "yes"], 2, "needs --data"),
    ],
)
def test_refusals_write_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], name: str, args: list[str], code: int, expected: str
) -> None:
    (project / "services" / "taken").mkdir(parents=True)
    (project / "tests" / "services").mkdir(parents=True)
    (project / "tests" / "services" / "test_tested.py").write_text("", encoding="utf-8")
    rows = [[index, ["a", "b", "c"][index % 3], ["no", "yes"][index % 2]] for index in range(30)]
    data = _write_csv(project / "data" / "kinds.csv", ["x", "kind", "two"], rows)
    if "--label" in args:
        args = [*args, "--data", str(data)]
    before = _tree(project)
    got, report = _new(capsys, name, *args)
    assert got == code, report
    assert expected in report["message"] + " ".join(report["details"])
    assert _tree(project) == before
    assert not list(Path(tempfile.gettempdir()).iterdir())


@pytest.mark.parametrize("tests_folder", [False, True], ids=["new-tests-folder", "existing-tests-folder"])
def test_a_failure_while_writing_the_stacks_undoes_everything(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tests_folder: bool
) -> None:
    from pipelines.promotion import stackfile

    if tests_folder:
        (project / "tests" / "services").mkdir(parents=True)
        (project / "tests" / "services" / "test_other.py").write_text("", encoding="utf-8")

    original = stackfile.restore
    dev = project / "stacks" / "Pulumi.dev.yaml"
    failed: list[Path] = []

    def full_disk(path: Path, text: str) -> None:
        if path == dev and not failed:
            failed.append(path)
            raise OSError(28, "No space left on device")
        original(path, text)

    monkeypatch.setattr(stackfile, "restore", full_disk)
    before = _tree(project)
    code, _report = _new(capsys, "late", "--task", "regression", "--stack", "local", "--stack", "dev")
    assert code == 1 and failed == [dev]  # an unexpected error: reported, not a traceback
    assert _tree(project) == before, "local restored, the service's folder and test removed"


def test_a_scaffold_whose_model_misses_its_own_bounds_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _regression_csv(project / "data" / "demand.csv", rows=120)
    monkeypatch.setattr(install, "metric_bounds", lambda task, baseline: {"r2": {"min": 0.9999}})
    before = _tree(project)
    code, report = _new(capsys, "demand", "--task", "regression", "--data", str(data), "--label", "demand")
    assert code == 1
    assert "does not pass the model gate" in report["message"]
    assert any("at least 0.9999 required" in detail for detail in report["details"])
    assert _tree(project) == before


def test_snapshot_facts_are_read_off_the_file(tmp_path: Path) -> None:
    rows = [[str(index) if index % 7 else "?", f"id-{index}", ["x", "y"][index % 2]] for index in range(40)]
    path = _write_csv(tmp_path / "odd.csv", ["count", "ref", "flag"], rows)
    facts = infer_data(path, label="flag", task=Task.binary, root=REPO, positive_class="x")
    assert facts.features == (("count", "number"), ("ref", "category"))
    assert facts.na_values == ("?",)
    assert facts.positive_class == "x" and facts.classes == ("x", "y")
    assert facts.path == path.resolve().as_posix(), "outside the project: absolute"
    assert [warning.split(":")[0] for warning in facts.warnings] == ["ref"]


@pytest.mark.parametrize(
    ("value", "way", "expected"),
    [
        (0.4275, "down", 0.42),
        (57.015, "up", 58.0),
        (38.546, "nearest", 39.0),
        (0.0315, "up", 0.032),
        (0, "up", 0),
    ],
)
def test_bounds_round_outward_to_two_significant_digits(value: float, way: str, expected: float) -> None:
    assert round_significant(value, way) == expected


def test_the_generated_code_passes_the_projects_linters(tmp_path: Path) -> None:
    """`make lint` runs over services/ and tests/: a scaffold must not be the change that breaks it."""
    for task in Task:
        (tmp_path / f"model_{task.name}.py").write_text(render_model("x", task), encoding="utf-8")
    (tmp_path / "test_x.py").write_text(render_test("a-service"), encoding="utf-8")
    ruff = Path(sys.executable).with_name("ruff")
    config = ["--config", str(REPO / "pyproject.toml")]
    for command in (["check", *config], ["format", "--check", *config]):
        done = subprocess.run(
            [str(ruff), *command, str(tmp_path)], capture_output=True, text=True, check=False, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr

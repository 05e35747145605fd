"""The model and repro gates on real packages of every task: diabetes (regression) and a tiny
iris service (multiclass) written into a temporary project, as a team would write one."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.contract.load import load_contract
from pipelines.contract.model import ServiceContract
from pipelines.gates.policy import GatePolicy, PolicyError, load_policy
from pipelines.gates.versions import model_gate, prediction_gap, predictions, read_evaluation_data, repro_gate
from pipelines.serving.model import LoadedPackage
from tests.unit.gates.conftest import REPO

POLICY = load_policy(stage="candidate")

IRIS_CONTRACT = """\
name: iris
task: multiclass_classification
label: species
classes: [setosa, versicolor, virginica]
features:
  - {name: sepal_length, type: number}
  - {name: sepal_width, type: number}
  - {name: petal_length, type: number}
  - {name: petal_width, type: number}
  - {name: garden, type: category}
sensitive: [garden]
data:
  snapshots:
    - {path: data/iris.csv, sha256: SHA256}
train: model:train
hyperparameters:
  c: 10.0
metrics:
  candidate:
    accuracy: {min: 0.9}
"""

IRIS_MODEL = '''\
"""Scaled measurements and the garden one-hot encoded, then a logistic regression."""

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def train(frame, hyperparameters):
    label, features = frame.attrs["label"], frame.attrs["features"]
    numeric = [column for column in features if column != "garden"]
    preprocess = ColumnTransformer(
        [("numeric", StandardScaler(), numeric), ("garden", OneHotEncoder(handle_unknown="ignore"), ["garden"])]
    )
    model = Pipeline([("preprocess", preprocess), ("classify", LogisticRegression(C=hyperparameters["c"]))])
    return model.fit(frame[features], frame[label])
'''

Train = Callable[..., tuple[Path, LoadedPackage]]


def trainer(root: Path, scratch: Path) -> Train:
    """Train and package a service of ``root`` with the platform's trainer: the package's path
    and the loaded package. Keyword arguments are platform hyperparameters (``label_noise``, ...)."""
    from pipelines.packaging.build import build_package
    from pipelines.packaging.load import load_package
    from pipelines.training.manifest import Hyperparameters
    from pipelines.training.trainer import default_manifest, train

    def run(service: str, **hyperparameters: Any) -> tuple[Path, LoadedPackage]:
        name = f"{service}-{len(list(scratch.iterdir()))}"
        manifest = default_manifest(service, root).model_copy(
            update={"hyperparameters": Hyperparameters(**hyperparameters)}
        )
        train(manifest, scratch / name, root=root)
        built = build_package(service, scratch / name, scratch / f"{name}.tar.gz", root=root)
        return built.path, load_package(built.path)

    return run


@pytest.fixture(scope="module")
def iris_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project holding one service, iris, with a seeded ``garden`` column to slice by."""
    from sklearn.datasets import load_iris

    root = tmp_path_factory.mktemp("project")
    iris = load_iris(as_frame=True)
    frame = iris.data.set_axis(["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1)
    frame["garden"] = np.random.default_rng(0).choice(["north", "south"], len(frame))
    frame["species"] = iris.target_names[iris.target]
    (root / "data").mkdir()
    frame.to_csv(root / "data" / "iris.csv", index=False)
    digest = hashlib.sha256((root / "data" / "iris.csv").read_bytes()).hexdigest()
    service = root / "services" / "iris"
    service.mkdir(parents=True)
    (service / "service.yaml").write_text(IRIS_CONTRACT.replace("SHA256", digest), encoding="utf-8")
    (service / "model.py").write_text(IRIS_MODEL, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def iris(iris_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = trainer(iris_root, tmp_path_factory.mktemp("iris"))
    contract = load_contract("iris", iris_root)
    good_path, good = run("iris")
    return {
        "contract": contract,
        "data": read_evaluation_data(contract, iris_root / "data" / "iris.csv", iris_root),
        "good": good,
        "good_path": good_path,
        "noisy": run("iris", label_noise=0.6)[1],
    }


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = trainer(REPO, tmp_path_factory.mktemp("diabetes"))
    contract = load_contract("diabetes", REPO)
    return {
        "contract": contract,
        "data": read_evaluation_data(contract, REPO / "data" / "diabetes" / "diabetes.csv", REPO),
        "good": run("diabetes")[1],
        "noisy": run("diabetes", label_noise=0.8)[1],
    }


def policy_file(tmp_path: Path, model: str, stage: str = "candidate") -> GatePolicy:
    path = tmp_path / "policy.yaml"
    path.write_text(f"stage: {stage}\nmodel:\n{model}\n", encoding="utf-8")
    return load_policy(path)


def by_method(report: Any, name: str) -> dict[str, Any]:
    return {c.method: c for c in report.checks if c.name == name}


def test_a_regression_package_is_held_to_its_contracts_rules(diabetes: dict[str, Any]) -> None:
    contract: ServiceContract = diabetes["contract"]
    report = model_gate(contract, diabetes["good"], None, diabetes["data"], POLICY)
    assert report.passed, [c.to_json() for c in report.failures]
    assert report.subject["task"] == "regression"
    assert set(report.subject["metrics"]["candidate"]) == {"rmse", "mae", "r2"}
    metric = by_method(report, "model.metric")
    assert metric["r2"].threshold == contract.metric_rules("candidate")["r2"].min == 0.3
    assert metric["mae"].threshold == 50
    # The slices of the contract's sensitive column are compared on MAE, reported only by default.
    [fairness] = [c for c in report.checks if c.name == "model.fairness"]
    assert (fairness.column, fairness.method, fairness.passed) == ("sex", "mae_difference", None)
    same = model_gate(contract, diabetes["good"], diabetes["good"], diabetes["data"], POLICY)
    regressions = by_method(same, "model.regression")
    assert set(regressions) == {"rmse", "mae", "r2"}
    assert all(c.statistic == 0.0 and c.passed for c in regressions.values())


def test_a_worse_regression_candidate_fails_against_its_baseline(diabetes: dict[str, Any]) -> None:
    report = model_gate(diabetes["contract"], diabetes["noisy"], diabetes["good"], diabetes["data"], POLICY)
    failed = {c.method for c in report.failures if c.name == "model.regression"}
    assert {"rmse", "mae", "r2"} <= failed
    # Lower is better for the errors, higher for r2: each is "worse by" a positive amount.
    assert all(
        c.statistic is not None and c.statistic > 0 for c in by_method(report, "model.regression").values()
    )


def test_a_policy_overrides_the_services_rule_field_by_field(
    diabetes: dict[str, Any], tmp_path: Path
) -> None:
    policy = policy_file(tmp_path, "  metrics:\n    r2: {min: 0.99}")
    report = model_gate(diabetes["contract"], diabetes["good"], diabetes["good"], diabetes["data"], policy)
    assert [(c.name, c.method, c.threshold) for c in report.failures] == [("model.metric", "r2", 0.99)]
    # maxRegression still comes from the contract.
    assert report.subject["rules"]["r2"] == {"min": 0.99, "max": None, "maxRegression": 0.02, "relative": False,
                                             "direction": None}  # fmt: skip


@pytest.mark.parametrize(("service", "metric"), [("diabetes", "roc_auc"), ("iris", "brier")])
def test_a_policy_naming_a_metric_of_another_task_is_refused_naming_the_key(
    service: str, metric: str, diabetes: dict[str, Any], iris: dict[str, Any], tmp_path: Path
) -> None:
    case = {"diabetes": diabetes, "iris": iris}[service]
    policy = policy_file(tmp_path, f"  metrics:\n    {metric}: {{min: 0.5}}")
    with pytest.raises(PolicyError) as refused:
        model_gate(case["contract"], case["good"], None, case["data"], policy)
    [issue] = refused.value.issues
    assert issue.source == str(tmp_path / "policy.yaml") and issue.path == f"model.metrics.{metric}"
    task = case["contract"].task.value
    assert f"not a metric of {task}" in issue.allowed
    from pipelines.contract.tasks import METRIC_DIRECTIONS

    assert issue.allowed.endswith(", ".join(METRIC_DIRECTIONS[case["contract"].task]))
    assert refused.value.exit_code == 2


def test_a_multiclass_package_passes_and_a_noisy_one_fails(iris: dict[str, Any]) -> None:
    policy = POLICY.model_copy(
        update={"model": POLICY.model.model_copy(update={"fairness": POLICY.model.fairness.model_copy(
            update={"min_slice_size": 50})})}
    )  # fmt: skip
    report = model_gate(iris["contract"], iris["good"], None, iris["data"], policy)
    assert report.passed, [c.to_json() for c in report.failures]
    assert report.subject["task"] == "multiclass_classification"
    assert set(report.subject["metrics"]["candidate"]) == {"accuracy", "macro_f1", "log_loss", "ece"}
    by_class = report.subject["calibration_by_class"]["candidate"]
    assert set(by_class) == {"setosa", "versicolor", "virginica"}
    assert report.subject["metrics"]["candidate"]["ece"] == max(by_class.values())
    [fairness] = [c for c in report.checks if c.name == "model.fairness"]
    assert (fairness.column, fairness.method) == ("garden", "accuracy_difference") and fairness.passed
    worse = model_gate(iris["contract"], iris["noisy"], iris["good"], iris["data"], policy)
    failed = {(c.name, c.method) for c in worse.failures}
    assert {("model.metric", "accuracy"), ("model.regression", "accuracy")} <= failed
    assert ("model.regression", "macro_f1") in failed


def test_a_baseline_with_its_classes_in_another_order_is_compared_class_by_class(
    iris: dict[str, Any],
) -> None:
    good: LoadedPackage = iris["good"]

    class Reversed:
        """The same model with its probability columns (and schema classes) in reverse order."""

        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            return np.asarray(good.pipeline.predict_proba(frame))[:, ::-1]

    output = {**good.schema["output"], "classes": good.classes[::-1]}
    reversed_package = dataclasses.replace(
        good, package_id="f" * 64, schema={**good.schema, "output": output}, pipeline=Reversed()
    )
    report = model_gate(iris["contract"], good, reversed_package, iris["data"], POLICY)
    regressions = by_method(report, "model.regression")
    assert regressions and all(c.statistic == 0.0 for c in regressions.values())
    assert report.subject["metrics"]["candidate"] == report.subject["metrics"]["baseline"]


def test_a_baseline_of_another_task_is_refused_before_anything_is_scored(
    iris: dict[str, Any], diabetes: dict[str, Any]
) -> None:
    from pipelines.errors import BadInputError

    with pytest.raises(
        BadInputError, match="cannot be compared with the candidate: it is a regression model"
    ):
        model_gate(iris["contract"], iris["good"], diabetes["good"], iris["data"], POLICY)


def test_repro_predictions_of_a_regression_model_are_compared_in_label_units(
    diabetes: dict[str, Any],
) -> None:
    data = diabetes["data"]
    gap, what = prediction_gap(diabetes["good"], diabetes["noisy"], data, "progression")
    raw = np.abs(predictions(diabetes["good"], data) - predictions(diabetes["noisy"], data)).max()
    assert gap == pytest.approx(raw / data["progression"].std(ddof=0)) and gap > 0
    assert "standard deviations of 'progression'" in what
    assert prediction_gap(diabetes["good"], diabetes["good"], data, "progression")[0] == 0.0


def test_retraining_the_multiclass_package_reproduces_it(iris: dict[str, Any], iris_root: Path) -> None:
    report = repro_gate("iris", iris["good_path"], POLICY.repro, root=iris_root)
    assert report.passed and [(c.name, c.statistic) for c in report.checks] == [("repro.files", 0.0)]

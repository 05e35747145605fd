"""A new service's ``model.py`` and its test under ``tests/services/``, as text."""

from __future__ import annotations

from pipelines.contract.model import slug
from pipelines.contract.tasks import Task

MODEL_DOCSTRING = '''"""The training function of {name}: one scikit-learn pipeline, preprocessing included.

Written by `modelrail service new`; it is the team's to change. The served artifact takes raw
rows: median-impute and scale the numbers, constant-impute and one-hot encode the categories
(the rarest values pooled; a value unseen in training never fails a prediction), then
{what}. Every type in it is one the serving loader trusts, and every random choice is
seeded, so fitting is deterministic.
"""
'''

MODEL_COMMON = '''
from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field


def preprocess(frame: pd.DataFrame, max_categories: int) -> Any:
    """Numbers imputed and scaled, categories imputed and one-hot encoded (the contract's reader
    gives numbers as floats and categories as strings)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [column for column in frame.columns if pd.api.types.is_float_dtype(frame[column])]
    categorical = [column for column in frame.columns if column not in numeric]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            )
        )
    if categorical:
        encode = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=max_categories, sparse_output=False
        )
        parts.append(
            (
                "categorical",
                Pipeline(
                    [("impute", SimpleImputer(strategy="constant", fill_value="missing")), ("onehot", encode)]
                ),
                categorical,
            )
        )
    return ColumnTransformer(parts)
'''

MODEL_TRAIN = '''

class Parameters(BaseModel):
    """This service's hyperparameters (the contract's defaults, overridden by a manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    {step}: Literal["{linear}", "hist_gradient_boosting"]
{fields}    max_categories: int = Field(ge=2)
    seed: int


def train(frame: pd.DataFrame, hyperparameters: dict[str, Any]) -> Any:
    """Fit the pipeline on the training rows (``frame.attrs`` names the label and the features)."""
    from sklearn.ensemble import HistGradientBoosting{kind}
    from sklearn.linear_model import {linear_class}
    from sklearn.pipeline import Pipeline

    hp = Parameters.model_validate(hyperparameters)
    label, features = frame.attrs["label"], frame.attrs["features"]
    x = frame[features]
    model: Any
    if hp.{step} == "{linear}":
        model = {linear_class}({linear_arguments})
    else:
        model = HistGradientBoosting{kind}(
            learning_rate=hp.learning_rate,
            max_iter=hp.max_iter,
            max_leaf_nodes=hp.max_leaf_nodes,
            l2_regularization=hp.l2_regularization,
            early_stopping=False,
            random_state=hp.seed,
        )
    pipeline = Pipeline([("preprocess", preprocess(x, hp.max_categories)), ("{step}", model)])
    return pipeline.fit(x, frame[label])
'''
"""``Parameters`` and ``train`` of both task families, one text so they cannot drift apart: a
linear model or gradient boosting, chosen by a hyperparameter. A family (``CLASSIFIER``,
``REGRESSOR``) fills in its estimators and its linear model's own hyperparameter."""

BOOSTING_FIELDS = """\
    learning_rate: float = Field(gt=0, le=1)
    max_iter: int = Field(ge=1, le=10000)
    max_leaf_nodes: int = Field(ge=2, le=1024)
    l2_regularization: float = Field(ge=0)
"""
"""The gradient boosting's hyperparameters, which both families have."""

CLASSIFIER = {
    "step": "classifier",
    "kind": "Classifier",
    "linear": "logistic_regression",
    "linear_class": "LogisticRegression",
    "linear_arguments": "C=hp.c, max_iter=hp.max_iter, random_state=hp.seed",
    "fields": BOOSTING_FIELDS + "    c: float = Field(gt=0)\n",
}
REGRESSOR = {
    "step": "regressor",
    "kind": "Regressor",
    "linear": "ridge",
    "linear_class": "Ridge",
    "linear_arguments": "alpha=hp.alpha",
    "fields": "    alpha: float = Field(ge=0)\n" + BOOSTING_FIELDS,
}


def render_model(name: str, task: Task) -> str:
    """``model.py``: the training function the contract names."""
    what = "a classifier" if task.is_classification else "a regressor"
    family = CLASSIFIER if task.is_classification else REGRESSOR
    return MODEL_DOCSTRING.format(name=name, what=what) + MODEL_COMMON + MODEL_TRAIN.format(**family)


TEST_TEMPLATE = '''"""{name} trains on its contract's latest snapshot and meets its contract's metric rules.

Written by `modelrail service new`. The model is trained, packaged and judged by the model gate
on the snapshot as `modelrail gate model --data SNAPSHOT --stage STAGE` judges it, for both
stages; a change to model.py, its hyperparameters or the data that breaks a rule fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.contract.data import snapshot_path
from pipelines.contract.load import load_contract
from pipelines.gates.policy import load_policy
from pipelines.gates.versions import model_gate, read_evaluation_data
from pipelines.packaging.build import build_package
from pipelines.packaging.load import load_package
from pipelines.training.trainer import default_manifest, train

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "{name}"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("{slug}")
    train(default_manifest(SERVICE, ROOT), out / "model", root=ROOT)
    return build_package(SERVICE, out / "model", out / "model.tar.gz", root=ROOT).path


@pytest.mark.parametrize("stage", ["candidate", "production"])
def test_the_model_meets_its_metric_rules(package: Path, stage: str) -> None:
    contract = load_contract(SERVICE, ROOT)
    rows = read_evaluation_data(contract, snapshot_path(contract.latest_snapshot, ROOT), ROOT)
    report = model_gate(contract, load_package(package), None, rows, load_policy(stage=stage))
    metrics = [check for check in report.checks if check.name == "model.metric"]
    assert metrics, "the contract's rules judged no metric"
    assert not [check.detail for check in metrics if check.failed]
'''


def render_test(name: str) -> str:
    """``tests/services/test_<name>.py``: the service's own test."""
    return TEST_TEMPLATE.format(name=name, slug=slug(name))

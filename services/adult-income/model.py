"""The training function of adult-income: one scikit-learn pipeline, preprocessing included.

The served artifact takes raw rows: median-impute and scale the numbers, constant-impute and
one-hot encode the categories (unknown categories are ignored at prediction time), then a
classifier. Every random choice is seeded, so fitting is deterministic.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field


class Parameters(BaseModel):
    """This service's hyperparameters (the contract's defaults, overridden by a manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classifier: Literal["hist_gradient_boosting", "logistic_regression"]
    learning_rate: float = Field(gt=0, le=1)
    max_iter: int = Field(ge=1, le=10000)
    max_leaf_nodes: int = Field(ge=2, le=1024)
    l2_regularization: float = Field(ge=0)
    c: float = Field(gt=0)
    seed: int


def train(frame: pd.DataFrame, hyperparameters: dict[str, Any]) -> Any:
    """Fit the pipeline on the training rows (``frame.attrs`` names the label and the features)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    hp = Parameters.model_validate(hyperparameters)
    label, features = frame.attrs["label"], frame.attrs["features"]
    x = frame[features]
    numeric = [column for column in features if pd.api.types.is_float_dtype(x[column])]
    categorical = [column for column in features if column not in numeric]
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ]
    )
    classifier: Any
    if hp.classifier == "logistic_regression":
        classifier = LogisticRegression(C=hp.c, max_iter=hp.max_iter, random_state=hp.seed)
    else:
        classifier = HistGradientBoostingClassifier(
            learning_rate=hp.learning_rate,
            max_iter=hp.max_iter,
            max_leaf_nodes=hp.max_leaf_nodes,
            l2_regularization=hp.l2_regularization,
            early_stopping=False,
            random_state=hp.seed,
        )
    pipeline = Pipeline([("preprocess", preprocess), ("classifier", classifier)])
    return pipeline.fit(x, frame[label])

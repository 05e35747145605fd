"""The training function of diabetes: scaled measurements, sex one-hot encoded, ridge regression."""

from __future__ import annotations

from typing import Any

import pandas as pd


def train(frame: pd.DataFrame, hyperparameters: dict[str, Any]) -> Any:
    """Fit on the training rows (``frame.attrs`` names the label and the features)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    label, features = frame.attrs["label"], frame.attrs["features"]
    numeric = [column for column in features if column != "sex"]
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            ),
            ("sex", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["sex"]),
        ]
    )
    model = Pipeline([("preprocess", preprocess), ("ridge", Ridge(alpha=float(hyperparameters["alpha"])))])
    return model.fit(frame[features], frame[label])

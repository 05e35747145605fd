"""The example service ``adult-income``: will a person earn more than $50K a year (UCI Adult)?

The model is one scikit-learn pipeline, preprocessing included, so the served artifact takes
raw rows: median-impute and scale the numbers, constant-impute and one-hot encode the
categories (unknown categories are ignored at prediction time), then a classifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import BadInputError
from pipelines.training.manifest import Hyperparameters

if TYPE_CHECKING:
    import pandas as pd

SERVICE = "adult-income"
DEFAULT_DATA = "data/adult/adult.data"
"""The snapshot a default manifest points at, relative to the project root."""

COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
)
"""The columns of ``adult.data``, in file order (the file has no header)."""

NUMERIC_FEATURES = ("age", "education-num", "capital-gain", "capital-loss", "hours-per-week")
CATEGORICAL_FEATURES = (
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native-country",
)
FEATURES = tuple(column for column in COLUMNS if column in NUMERIC_FEATURES + CATEGORICAL_FEATURES)
"""What the model reads, in file order (the order of positional CSV rows). ``fnlwgt`` is a census
sampling weight, not a property of the person."""

LABEL = "income"
CLASSES = ("<=50K", ">50K")
POSITIVE_CLASS = ">50K"


def read_data(path: Path) -> pd.DataFrame:
    """The Adult file as a frame: ``?`` as missing, labels without the test file's trailing dot."""
    import pandas as pd

    try:
        frame = pd.read_csv(
            path, header=None, names=list(COLUMNS), skipinitialspace=True, na_values="?", dtype=str
        )
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise BadInputError(f"{path}: cannot read the Adult data: {error}") from None
    frame = frame.dropna(subset=[LABEL])
    frame[LABEL] = frame[LABEL].str.rstrip(".")
    bad = sorted(set(frame[LABEL]) - set(CLASSES))
    if bad:
        raise BadInputError(f"{path}: column {LABEL!r} has values {bad[:5]}; allowed: {', '.join(CLASSES)}")
    for column in NUMERIC_FEATURES:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        unparsable = frame[column][numbers.isna() & frame[column].notna()]
        if not unparsable.empty:
            raise BadInputError(
                f"{path}: column {column!r} has non-numeric value {unparsable.iloc[0]!r} "
                f"(row {int(unparsable.index[0]) + 1})"
            )
        frame[column] = numbers.astype("float64")
    return frame.reset_index(drop=True)


def build_pipeline(hyperparameters: Hyperparameters, seed: int) -> Any:
    """The unfitted pipeline; every random choice is seeded, so fitting is deterministic."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from pipelines.serving.transformers import SlowLookup

    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                list(NUMERIC_FEATURES),
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                list(CATEGORICAL_FEATURES),
            ),
        ]
    )
    classifier: Any
    if hyperparameters.classifier == "logistic_regression":
        classifier = LogisticRegression(
            C=hyperparameters.c, max_iter=hyperparameters.max_iter, random_state=seed
        )
    else:
        classifier = HistGradientBoostingClassifier(
            learning_rate=hyperparameters.learning_rate,
            max_iter=hyperparameters.max_iter,
            max_leaf_nodes=hyperparameters.max_leaf_nodes,
            l2_regularization=hyperparameters.l2_regularization,
            early_stopping=False,
            random_state=seed,
        )
    steps: list[tuple[str, Any]] = []
    if hyperparameters.slow_preprocessing_ms > 0:
        steps.append(("delay", SlowLookup(ms_per_call=hyperparameters.slow_preprocessing_ms)))
    steps += [("preprocess", preprocess), ("classifier", classifier)]
    return Pipeline(steps)


def input_schema(frame: pd.DataFrame) -> dict[str, Any]:
    """The served input/output contract: columns in order, with their types and known categories."""
    columns: list[dict[str, Any]] = []
    for name in FEATURES:
        if name in NUMERIC_FEATURES:
            columns.append({"name": name, "type": "number"})
        else:
            categories = sorted(str(value) for value in frame[name].dropna().unique())
            columns.append({"name": name, "type": "string", "categories": categories})
    return {
        "input": {"columns": columns, "missing": "null, empty or '?'"},
        "output": {
            "classes": list(CLASSES),
            "positive_class": POSITIVE_CLASS,
            "fields": {"probability": f"P({LABEL} = {POSITIVE_CLASS})", "label": "the more likely class"},
        },
        "sensitive_attributes": ["race", "sex"],
    }

"""Small real packages of every task, for the serving, sandbox and packaging tests.

Each is trained by the platform's trainer from a contract and packaged by ``build_package``:
diabetes (regression, the repository's own contract), iris (multiclass, a contract written into
a temporary project root) and a regression service whose contract names its own ``predict``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipelines.packaging.build import PackageResult, build_package
from pipelines.training.manifest import TrainingManifest, fingerprint
from pipelines.training.trainer import train

REPO = Path(__file__).resolve().parents[3]
DIABETES_DATA = REPO / "data" / "diabetes" / "diabetes.csv"
IRIS_CLASSES = ("setosa", "versicolor", "virginica")
IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

IRIS_MODEL = '''\
"""Iris species from the four measurements: a scaled multinomial logistic regression."""

from typing import Any


def train(frame: Any, hyperparameters: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    label, features = frame.attrs["label"], frame.attrs["features"]
    model = Pipeline([("scale", StandardScaler()), ("logistic", LogisticRegression(max_iter=200))])
    return model.fit(frame[features], frame[label])
'''

CLIP_LOW, CLIP_HIGH = 100.0, 200.0
"""The custom ``predict`` serves the ridge's predictions clipped to this range."""

CUSTOM_MODEL = '''\
"""Ridge on the diabetes measurements (numbers only)."""

from typing import Any


def train(frame: Any, hyperparameters: dict[str, Any]) -> Any:
    from sklearn.linear_model import Ridge

    label, features = frame.attrs["label"], frame.attrs["features"]
    return Ridge(alpha=1.0).fit(frame[features], frame[label])
'''

CUSTOM_SERVE = '''\
"""The served predictions: the ridge's, kept inside the range the clinic acts on."""

from typing import Any

from .limits import clipped


def predict(estimator: Any, frame: Any) -> Any:
    return clipped(estimator.predict(frame))
'''

CUSTOM_LIMITS = f'''\
"""A sibling module, imported relatively by serve.py: it must travel in the package too."""

from typing import Any

LOW, HIGH = {CLIP_LOW}, {CLIP_HIGH}


def clipped(values: Any) -> Any:
    import numpy as np

    return np.clip(np.asarray(values, dtype=float), LOW, HIGH)
'''


def _manifest(service: str, data: Path, uri: str) -> TrainingManifest:
    return TrainingManifest(
        service=service, data_uri=uri, data_sha256=fingerprint(data), seed=0, code_git_sha="1" * 40
    )


def diabetes_package(work: Path) -> PackageResult:
    """The repository's diabetes service (regression), trained on all 442 rows."""
    model_dir = train(
        _manifest("diabetes", DIABETES_DATA, "data/diabetes/diabetes.csv"), work / "model", root=REPO
    ).out_dir
    return build_package("diabetes", model_dir, work / "model.tar.gz", root=REPO)


def iris_root(root: Path) -> Path:
    """A project root holding an ``iris`` contract (multiclass) and its data."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    lines = [",".join((*IRIS_FEATURES, "species"))]
    lines += [
        ",".join([*(f"{value:g}" for value in row), IRIS_CLASSES[target]])
        for row, target in zip(bunch.data, bunch.target, strict=True)
    ]
    data = root / "data" / "iris.csv"
    data.parent.mkdir(parents=True)
    data.write_text("\n".join(lines) + "\n")
    folder = root / "services" / "iris"
    folder.mkdir(parents=True)
    features = "\n".join(f"  - {{name: {name}, type: number}}" for name in IRIS_FEATURES)
    (folder / "service.yaml").write_text(
        f"""name: iris
task: multiclass_classification
label: species
classes: [{", ".join(IRIS_CLASSES)}]
features:
{features}
data:
  snapshots:
    - path: data/iris.csv
      sha256: {hashlib.sha256(data.read_bytes()).hexdigest()}
train: model:train
"""
    )
    (folder / "model.py").write_text(IRIS_MODEL)
    return root


def iris_package(work: Path) -> PackageResult:
    root = iris_root(work / "project")
    model_dir = train(
        _manifest("iris", root / "data" / "iris.csv", "data/iris.csv"), work / "model", root=root
    ).out_dir
    return build_package("iris", model_dir, work / "model.tar.gz", root=root)


def custom_root(root: Path) -> Path:
    """A project root holding ``clinic``: diabetes' numbers, with its own ``predict`` in serve.py."""
    folder = root / "services" / "clinic"
    folder.mkdir(parents=True)
    features = "\n".join(
        f"  - {{name: {name}, type: number}}"
        for name in ("age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
    )
    (folder / "service.yaml").write_text(
        f"""name: clinic
task: regression
label: progression
features:
{features}
data:
  snapshots:
    - path: {DIABETES_DATA}
      sha256: {fingerprint(DIABETES_DATA)}
train: model:train
predict: serve:predict
liveTolerance: 60
"""
    )
    (folder / "model.py").write_text(CUSTOM_MODEL)
    (folder / "serve.py").write_text(CUSTOM_SERVE)
    (folder / "limits.py").write_text(CUSTOM_LIMITS)
    return root


def custom_package(work: Path) -> PackageResult:
    root = custom_root(work / "project")
    model_dir = train(
        _manifest("clinic", DIABETES_DATA, str(DIABETES_DATA)), work / "model", root=root
    ).out_dir
    return build_package("clinic", model_dir, work / "model.tar.gz", root=root)

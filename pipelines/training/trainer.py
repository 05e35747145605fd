"""``train``: run a training manifest and write the model directory.

The model directory holds exactly four files, all reproducible from the manifest:

- ``model.skops``: the fitted pipeline (``serialize.dumps_deterministic``);
- ``schema.json``: the served input/output contract;
- ``evaluation.json``: held-out metrics (``evaluation.evaluate``);
- ``training-manifest.json``: the manifest, with every default spelled out.

Fitting runs on one thread (BLAS and OpenMP pools limited to 1), because parallel reductions
may add floating-point numbers in a different order from run to run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import BadInputError, RefusedError
from pipelines.training.evaluation import evaluate, served
from pipelines.training.manifest import TrainingManifest, fingerprint, git_sha
from pipelines.training.serialize import dumps_deterministic

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.contract.model import ServiceContract

MODEL_FILE = "model.skops"
SCHEMA_FILE = "schema.json"
EVALUATION_FILE = "evaluation.json"
TRAINING_MANIFEST_FILE = "training-manifest.json"
MODEL_DIR_FILES = (MODEL_FILE, SCHEMA_FILE, EVALUATION_FILE, TRAINING_MANIFEST_FILE)

Progress = Callable[[str], None]


class FingerprintMismatchError(RefusedError):
    """The data's sha256 is not the fingerprint the manifest pins."""


class UntrainableError(BadInputError):
    """The service's training function did not give a model the platform can package and serve."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    out_dir: Path
    files: dict[str, str]
    """sha256 of each file in the model directory."""
    evaluation: dict[str, Any]
    data_path: Path
    seconds: float


def default_manifest(service: str, root: Path, data_path: Path | None = None) -> TrainingManifest:
    """A manifest for ``service`` on its latest snapshot (or ``data_path``), seed 0, default parameters.

    On the snapshot, the fingerprint is the contract's (training refuses a file that no longer
    matches it); on ``data_path`` it is computed from the file as it is now. The git sha is
    ``root``'s.
    """
    from pipelines.contract.data import snapshot_path
    from pipelines.contract.load import load_contract

    contract = load_contract(service, root)
    snapshot = contract.latest_snapshot
    path = data_path if data_path is not None else snapshot_path(snapshot, root)
    if not path.is_file():
        raise BadInputError(f"{path}: no such data file")
    resolved = path.resolve()
    if data_path is None:
        return TrainingManifest(
            service=service, data_uri=snapshot.path, data_sha256=snapshot.sha256, code_git_sha=git_sha(root)
        )
    try:
        uri = resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        uri = resolved.as_uri()
    return TrainingManifest(
        service=service, data_uri=uri, data_sha256=fingerprint(resolved), code_git_sha=git_sha(root)
    )


def resolve_data(manifest: TrainingManifest, root: Path, override: Path | None = None) -> Path:
    """Where the manifest's data snapshot is on this machine (``override`` wins)."""
    from pipelines.contract.data import snapshot_path

    if override is not None:
        return override
    return snapshot_path(manifest.data_uri, root)


def check_fingerprint(manifest: TrainingManifest, data_path: Path) -> None:
    """Refuse data whose sha256 is not the manifest's ``data_sha256``."""
    if not data_path.is_file():
        raise BadInputError(f"{data_path}: no such data file (data_uri = {manifest.data_uri!r})")
    actual = fingerprint(data_path)
    if actual != manifest.data_sha256:
        raise FingerprintMismatchError(
            f"{data_path}: sha256 {actual} does not match the manifest's data_sha256 "
            f"{manifest.data_sha256}; refusing to train on different data",
            details=[
                f"manifest data_sha256: {manifest.data_sha256}",
                f"actual sha256 of {data_path}: {actual}",
                "train on the snapshot the manifest pins, or write a new manifest for this data",
            ],
        )


def train(
    manifest: TrainingManifest,
    out_dir: Path,
    *,
    root: Path,
    data_path: Path | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``manifest`` into ``out_dir`` (which must be new or empty); all files appear at once.

    The service's contract says how to read the data and which function fits the model; the
    platform splits the rows, calls that function, evaluates the result on the held-out rows and
    writes the served schema, so every service's model directory has the same four files.
    """
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    from pipelines.contract.data import read_data
    from pipelines.contract.load import RESERVED_HYPERPARAMETERS, entry_point, load_contract

    report = progress or (lambda _message: None)
    started = time.perf_counter()
    contract = load_contract(manifest.service, root)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BadInputError(f"--out {out_dir}: exists and is not an empty directory; choose a new one")
    path = resolve_data(manifest, root, data_path)
    report("checking the data fingerprint")
    check_fingerprint(manifest, path)
    report("reading the data")
    unknown = sorted(set(manifest.hyperparameters.service_parameters) - set(contract.hyperparameters))
    if unknown:
        raise BadInputError(
            f"hyperparameters.{unknown[0]}: {manifest.service} has no hyperparameter {unknown[0]!r}; "
            f"its contract declares: {', '.join(sorted(contract.hyperparameters)) or 'none'} "
            f"(and the platform's: {', '.join(RESERVED_HYPERPARAMETERS)})"
        )
    frame = read_data(contract, path, root)
    manifest = manifest.model_copy(
        update={"hyperparameters": manifest.hyperparameters.with_defaults(contract.hyperparameters)}
    )
    hp = manifest.hyperparameters
    if hp.sample_rows is not None and hp.sample_rows < len(frame):
        frame = frame.sample(n=hp.sample_rows, random_state=manifest.seed).reset_index(drop=True)
    if len(frame) < 10:
        raise BadInputError(f"{path}: {len(frame)} labelled rows; training needs at least 10")
    features, labels = frame[list(contract.feature_names)], frame[contract.label]
    stratify = labels if contract.task.is_classification and labels.value_counts().min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=hp.test_fraction, stratify=stratify, random_state=manifest.seed
    )
    y_train = _shuffle_labels(y_train, hp.label_noise, manifest.seed)
    fit = entry_point(contract, contract.train, root)
    training = x_train.assign(**{contract.label: y_train})
    training.attrs.update({"label": contract.label, "features": list(contract.feature_names)})
    with threadpool_limits(limits=1):
        report(f"fitting on {len(x_train)} rows")
        estimator = fit(training, {**hp.service_parameters, "seed": manifest.seed})
        output = output_schema(contract, estimator, y_train)
        report(f"evaluating on {len(x_test)} held-out rows")
        predict = None if contract.predict is None else entry_point(contract, contract.predict, root)
        judged = served(estimator, predict)
        evaluation = evaluate(judged, x_test, y_test, output=output, group_by=contract.sensitive)
    evaluation["train_rows"] = len(x_train)
    model = _with_lookup(estimator, hp.slow_preprocessing_ms)
    contents = {
        MODEL_FILE: _serialise(model, contract),
        SCHEMA_FILE: _json_bytes(served_schema(contract, features, output)),
        EVALUATION_FILE: _json_bytes(evaluation),
        TRAINING_MANIFEST_FILE: manifest.canonical_json(),
    }
    files = _write_all(out_dir, contents)
    return TrainResult(
        out_dir=out_dir,
        files=files,
        evaluation=evaluation,
        data_path=path,
        seconds=time.perf_counter() - started,
    )


def output_schema(contract: ServiceContract, estimator: Any, y_train: pd.Series) -> dict[str, Any]:
    """What the served model answers, per the task: the ``output`` section of ``schema.json``."""
    import numpy as np

    from pipelines.contract.tasks import Task
    from pipelines.serving.series import PREDICTION_BINS

    label = contract.label
    if contract.task is Task.regression:
        if not callable(getattr(estimator, "predict", None)):
            raise UntrainableError(f"{contract.train}: the returned object has no predict method")
        # The canary's drift check bins regression predictions at the deciles of the training
        # labels, so each bin holds a tenth of the training distribution.
        quantiles = np.quantile(y_train.to_numpy(dtype=float), np.linspace(0, 1, PREDICTION_BINS + 1)[1:-1])
        return {
            "task": contract.task.value,
            "label": label,
            "bins": [round(float(edge), 6) for edge in quantiles],
            "tolerance": contract.live_tolerance,
            "fields": {"prediction": f"the predicted {label}"},
        }
    if not callable(getattr(estimator, "predict_proba", None)):
        raise UntrainableError(
            f"{contract.train}: a {contract.task.value} model needs predict_proba; the returned "
            f"{type(estimator).__name__} has none"
        )
    classes = [str(value) for value in getattr(estimator, "classes_", [])]
    declared = list(contract.classes or ())
    if sorted(classes) != sorted(declared):
        raise UntrainableError(
            f"{contract.train}: the fitted model knows the classes {classes}; the contract declares {declared}",
            details=["every declared class needs rows in the training data"],
        )
    output: dict[str, Any] = {"task": contract.task.value, "label": label, "classes": classes}
    if contract.task is Task.binary:
        positive = contract.positive_class
        output["positive_class"] = positive
        output["fields"] = {"probability": f"P({label} = {positive})", "label": "the more likely class"}
    else:
        output["fields"] = {
            "probability": "the probability of the predicted class",
            "label": "the most likely class",
            "probabilities": "every class's probability, by class",
        }
    return output


def served_schema(
    contract: ServiceContract, features: pd.DataFrame, output: dict[str, Any]
) -> dict[str, Any]:
    """The served input/output contract: columns in order, with their types and known categories."""
    columns: list[dict[str, Any]] = []
    for feature in contract.features:
        if feature.type == "number":
            columns.append({"name": feature.name, "type": "number"})
        else:
            categories = sorted(str(value) for value in features[feature.name].dropna().unique())
            columns.append({"name": feature.name, "type": "string", "categories": categories})
    return {
        "input": {"columns": columns, "missing": "null, empty or '?'"},
        "output": output,
        "sensitive_attributes": list(contract.sensitive),
    }


def _with_lookup(estimator: Any, ms_per_call: float) -> Any:
    """The estimator behind a ``SlowLookup`` step when the manifest asks for one (the demo's slow model)."""
    if ms_per_call <= 0:
        return estimator
    from sklearn.pipeline import Pipeline

    from pipelines.serving.transformers import SlowLookup

    steps = list(estimator.steps) if isinstance(estimator, Pipeline) else [("model", estimator)]
    return Pipeline([("delay", SlowLookup(ms_per_call=ms_per_call)), *steps])


def _serialise(model: Any, contract: ServiceContract) -> bytes:
    """The model's skops bytes, refused here (not at serving time) if they need an untrusted type."""
    import tempfile

    from pipelines.serving.model import TRUSTED_TYPES, import_skops

    data = dumps_deterministic(model)
    sio = import_skops()
    with tempfile.NamedTemporaryFile(suffix=".skops") as handle:
        handle.write(data)
        handle.flush()
        untrusted = sorted(set(sio.get_untrusted_types(file=handle.name)) - set(TRUSTED_TYPES))
    if untrusted:
        raise UntrainableError(
            f"{contract.train}: the model needs types the serving loader does not trust: {', '.join(untrusted)}",
            details=[
                "build the model from scikit-learn's own estimators and transformers",
                f"trusted beyond skops' defaults: {', '.join(TRUSTED_TYPES)}",
            ],
        )
    return data


def _shuffle_labels(labels: Any, fraction: float, seed: int) -> Any:
    """Shuffle a seeded ``fraction`` of the labels among themselves (label noise)."""
    if fraction <= 0:
        return labels
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    values = labels.to_numpy().copy()
    chosen = rng.choice(len(values), size=round(fraction * len(values)), replace=False)
    values[chosen] = values[rng.permutation(chosen)]
    return pd.Series(values, index=labels.index, name=labels.name)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _write_all(out_dir: Path, contents: dict[str, bytes]) -> dict[str, str]:
    """Write every file into a sibling temporary directory, then move it into place in one step."""
    import hashlib

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, data in contents.items():
            (staging / name).write_bytes(data)
            os.chmod(staging / name, 0o644)
        os.chmod(staging, 0o755)
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {name: hashlib.sha256(data).hexdigest() for name, data in sorted(contents.items())}

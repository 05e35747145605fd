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
from typing import Any
from urllib.parse import unquote, urlparse

from pipelines.errors import BadInputError, RefusedError
from pipelines.training import adult
from pipelines.training.evaluation import evaluate
from pipelines.training.manifest import TrainingManifest, fingerprint, git_sha
from pipelines.training.serialize import dumps_deterministic

MODEL_FILE = "model.skops"
SCHEMA_FILE = "schema.json"
EVALUATION_FILE = "evaluation.json"
TRAINING_MANIFEST_FILE = "training-manifest.json"
MODEL_DIR_FILES = (MODEL_FILE, SCHEMA_FILE, EVALUATION_FILE, TRAINING_MANIFEST_FILE)

SERVICES = {adult.SERVICE: adult}
"""Trainable services by name; each module offers ``read_data``, ``build_pipeline``, ``input_schema``."""

Progress = Callable[[str], None]


class FingerprintMismatchError(RefusedError):
    """The data's sha256 is not the fingerprint the manifest pins."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    out_dir: Path
    files: dict[str, str]
    """sha256 of each file in the model directory."""
    evaluation: dict[str, Any]
    data_path: Path
    seconds: float


def service_module(service: str) -> Any:
    """The training module of a service; ``BadInputError`` listing the known ones."""
    try:
        return SERVICES[service]
    except KeyError:
        raise BadInputError(
            f"--service {service!r}: no trainer for this service; known: {', '.join(sorted(SERVICES))}"
        ) from None


def default_manifest(service: str, root: Path, data_path: Path | None = None) -> TrainingManifest:
    """A manifest for ``service`` on its default data (or ``data_path``), seed 0, default parameters.

    The fingerprint is computed from the data as it is now and the git sha from ``root``.
    """
    module = service_module(service)
    path = data_path if data_path is not None else root / module.DEFAULT_DATA
    if not path.is_file():
        raise BadInputError(f"{path}: no such data file")
    resolved = path.resolve()
    try:
        uri = resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        uri = resolved.as_uri()
    return TrainingManifest(
        service=service, data_uri=uri, data_sha256=fingerprint(resolved), code_git_sha=git_sha(root)
    )


def resolve_data(manifest: TrainingManifest, root: Path, override: Path | None = None) -> Path:
    """Where the manifest's data snapshot is on this machine (``override`` wins)."""
    if override is not None:
        return override
    parsed = urlparse(manifest.data_uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme:
        raise BadInputError(
            f"data_uri = {manifest.data_uri!r}: only local snapshots (a relative path or file:// URI) "
            "can be trained on here; pass --data PATH to a local copy"
        )
    return root / manifest.data_uri


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
    """Train ``manifest`` into ``out_dir`` (which must be new or empty); all files appear at once."""
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    report = progress or (lambda _message: None)
    started = time.perf_counter()
    module = service_module(manifest.service)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BadInputError(f"--out {out_dir}: exists and is not an empty directory; choose a new one")
    path = resolve_data(manifest, root, data_path)
    report("checking the data fingerprint")
    check_fingerprint(manifest, path)
    report("reading the data")
    frame = module.read_data(path)
    hp = manifest.hyperparameters
    if hp.sample_rows is not None and hp.sample_rows < len(frame):
        frame = frame.sample(n=hp.sample_rows, random_state=manifest.seed).reset_index(drop=True)
    features, labels = frame[list(module.FEATURES)], frame[module.LABEL]
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=hp.test_fraction, stratify=labels, random_state=manifest.seed
    )
    y_train = _shuffle_labels(y_train, hp.label_noise, manifest.seed)
    pipeline = module.build_pipeline(hp, manifest.seed)
    with threadpool_limits(limits=1):
        report(f"fitting on {len(x_train)} rows")
        pipeline.fit(x_train, y_train)
        report(f"evaluating on {len(x_test)} held-out rows")
        evaluation = _evaluate_without_delay(pipeline, x_test, y_test, module)
    evaluation["train_rows"] = len(x_train)
    contents = {
        MODEL_FILE: dumps_deterministic(pipeline),
        SCHEMA_FILE: _json_bytes(module.input_schema(features)),
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


def _evaluate_without_delay(pipeline: Any, features: Any, labels: Any, module: Any) -> dict[str, Any]:
    """Evaluate quality with any ``SlowLookup`` set to zero: the report measures accuracy, not latency."""
    delay = pipeline.named_steps.get("delay")
    saved = delay.ms_per_call if delay is not None else None
    if delay is not None:
        delay.ms_per_call = 0.0
    try:
        return evaluate(
            pipeline,
            features,
            labels,
            positive_class=module.POSITIVE_CLASS,
            group_by=tuple(module.input_schema(features)["sensitive_attributes"]),
        )
    finally:
        if delay is not None:
            delay.ms_per_call = saved


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

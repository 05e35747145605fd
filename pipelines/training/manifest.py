"""The training manifest: what to train, from which data, with which parameters and seed."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.errors import BadInputError

SHA256_PATTERN = r"^[0-9a-f]{64}$"
GIT_SHA_PATTERN = r"^([0-9a-f]{40}(-dirty)?|unknown)$"
_CHUNK = 1 << 20


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Hyperparameters(_Frozen):
    """How the model is fitted. Every field has a default, so a manifest lists only what it changes."""

    classifier: Literal["hist_gradient_boosting", "logistic_regression"] = "hist_gradient_boosting"
    """The final estimator of the pipeline."""
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.1
    """Gradient boosting: shrinkage per iteration."""
    max_iter: Annotated[int, Field(ge=1, le=10000)] = 200
    """Gradient boosting: boosting iterations; logistic regression: solver iterations."""
    max_leaf_nodes: Annotated[int, Field(ge=2, le=1024)] = 31
    """Gradient boosting: leaves per tree."""
    l2_regularization: Annotated[float, Field(ge=0)] = 0.0
    """Gradient boosting: L2 penalty on leaf values."""
    c: Annotated[float, Field(gt=0)] = 1.0
    """Logistic regression: inverse regularisation strength."""
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """Share of rows held out (stratified, seeded) for the evaluation report."""
    sample_rows: Annotated[int, Field(ge=100)] | None = None
    """Train and evaluate on a seeded sample of this many rows (quick runs); ``null`` uses all rows."""
    label_noise: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Share of training labels shuffled among themselves (seeded); degrades the model on purpose."""
    slow_preprocessing_ms: Annotated[float, Field(ge=0, le=1000)] = 0.0
    """Milliseconds of an online lookup per prediction call (a ``SlowLookup`` step); 0 adds no step."""


class TrainingManifest(_Frozen):
    """Everything that decides a model's bytes. Two runs of the same manifest give the same files."""

    schema_version: Literal[1] = 1
    service: Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")]
    """The model service this trains, e.g. ``adult-income``."""
    data_uri: Annotated[str, Field(min_length=1)]
    """Where the data snapshot lives: a path relative to the project root, or a ``file://`` URI."""
    data_sha256: Annotated[str, Field(pattern=SHA256_PATTERN)]
    """The snapshot's fingerprint: sha256 of its bytes. Training refuses data that does not match."""
    hyperparameters: Hyperparameters = Hyperparameters()
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    """Seeds the split, the sampling, the label noise and the estimator."""
    code_git_sha: Annotated[str, Field(pattern=GIT_SHA_PATTERN)]
    """The commit of the training code (``-dirty`` when the tree had uncommitted changes)."""

    def canonical_json(self) -> bytes:
        """Sorted-key JSON with every default spelled out: the bytes written next to the model."""
        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode("utf-8")


def fingerprint(path: Path) -> str:
    """The sha256 of a data file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(path: Path) -> TrainingManifest:
    """Read a manifest file; ``BadInputError`` naming the file, key path, value and what is allowed."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such training manifest") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: cannot read the training manifest: {error}") from None
    except json.JSONDecodeError as error:
        raise BadInputError(f"{path}: not JSON: {error}") from None
    return parse_manifest(raw, source=str(path))


def parse_manifest(raw: Any, *, source: str) -> TrainingManifest:
    """Validate a manifest's parsed JSON, reporting every problem at once."""
    if not isinstance(raw, dict):
        raise BadInputError(f"{source}: a training manifest is a JSON object, not {type(raw).__name__}")
    try:
        return TrainingManifest.model_validate(raw)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "<document>"
            if item["type"] == "missing":
                problems.append(f"{where}: required key is missing")
            elif item["type"] == "extra_forbidden":
                problems.append(f"{where} = {item['input']!r}: unknown key")
            else:
                problems.append(f"{where} = {item['input']!r}: {item['msg']}")
        raise BadInputError(
            f"{source}: {len(problems)} problem(s) in the training manifest", details=problems
        ) from None


def git_sha(root: Path) -> str:
    """The commit checked out at ``root``, ``-dirty`` if anything differs from it, or ``unknown``."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if status.strip() else head

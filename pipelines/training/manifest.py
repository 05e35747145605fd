"""The training manifest: what to train, from which data, with which parameters and seed."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.errors import BadInputError

SHA256_PATTERN = r"^[0-9a-f]{64}$"
GIT_SHA_PATTERN = r"^([0-9a-f]{40}(-dirty)?|unknown)$"
_CHUNK = 1 << 20


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class Hyperparameters(BaseModel):
    """How the model is fitted: the platform's own keys, plus the service's keys for its training function.

    The platform's keys (below) have defaults, so a manifest lists only what it changes. Every
    other key is the service's: a JSON scalar handed to the contract's training function over the
    contract's ``hyperparameters`` defaults. The trainer writes the merged set into the model
    directory's ``training-manifest.json``, so a retrain sees exactly what the first run saw.
    """

    model_config = ConfigDict(frozen=True, extra="allow", use_attribute_docstrings=True)

    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """Share of rows held out (seeded; stratified for classification) for the evaluation report."""
    sample_rows: Annotated[int, Field(ge=100)] | None = None
    """Train and evaluate on a seeded sample of this many rows (quick runs); ``null`` uses all rows."""
    label_noise: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Share of training labels shuffled among themselves (seeded); degrades the model on purpose."""
    slow_preprocessing_ms: Annotated[float, Field(ge=0, le=1000)] = 0.0
    """Milliseconds of an online lookup per prediction call (a ``SlowLookup`` step); 0 adds no step."""

    @model_validator(mode="after")
    def _service_keys_are_scalars(self) -> Hyperparameters:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str | int | float | bool | None):
                raise ValueError(
                    f"hyperparameter {key!r} = {value!r}: a service's hyperparameter is a string, "
                    "number, boolean or null"
                )
            if key == "seed":
                raise ValueError("`seed` is the manifest's own key, not a hyperparameter")
        return self

    @property
    def service_parameters(self) -> dict[str, str | int | float | bool | None]:
        """The keys for the service's training function (everything but the platform's)."""
        return dict(self.model_extra or {})

    def with_defaults(self, defaults: dict[str, str | int | float | bool | None]) -> Hyperparameters:
        """These parameters over a contract's defaults: every key the training function sees."""
        return Hyperparameters.model_validate({**defaults, **self.model_dump()})


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

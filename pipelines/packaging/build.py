"""``build_package``: a model directory plus serving code becomes ``model.tar.gz``.

Layout (the tarball's root is SageMaker's ``/opt/ml/model``)::

    manifest.json             sha256 of every other file, and where the model came from
    model.skops               the fitted pipeline, preprocessing included
    schema.json               input/output contract
    evaluation.json           held-out metrics (the registry's ModelMetrics)
    training-manifest.json    the training manifest, every default spelled out
    requirements.lock         the serving environment
    code/pipelines/...        the serving code (``python -m pipelines.serving``)
    code/service/...          only when the contract names ``predict``: the service's modules

The package id is the sha256 of ``manifest.json``, written as canonical JSON (sorted keys,
fixed indentation), so identical inputs give an identical id and byte-identical tarball.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import BadInputError
from pipelines.packaging.environment import locked_versions, python_environment, requirements_lock
from pipelines.packaging.tarball import write_tarball
from pipelines.serving.verify import (
    CODE_DIR,
    MANIFEST,
    PACKAGE_FORMAT,
    SERVICE_CODE_DIR,
    module_file,
    platform_serving_code,
)
from pipelines.training.manifest import parse_manifest
from pipelines.training.trainer import (
    EVALUATION_FILE,
    MODEL_DIR_FILES,
    MODEL_FILE,
    SCHEMA_FILE,
    TRAINING_MANIFEST_FILE,
)

LOCK_FILE = "requirements.lock"
SERVING_COMMAND = "python -m pipelines.serving"


@dataclass(frozen=True)
class PackageResult:
    """A written package: where, its id, its manifest and its tarball's own sha256."""

    path: Path
    package_id: str
    manifest: dict[str, Any]
    tarball_sha256: str


def canonical_json(value: Any) -> bytes:
    """The one JSON spelling of ``value``: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def serving_code() -> dict[str, bytes]:
    """The serving package and what it imports from ``pipelines``, keyed by path under ``code/``.

    The file list is ``platform_serving_code``'s, the same list every verifier compares a
    package's ``code/`` against, so what is packaged and what is accepted cannot drift apart.
    """
    return {name: source.read_bytes() for name, source in platform_serving_code().items()}


def service_code(service: str, root: Path | None = None) -> tuple[dict[str, bytes], dict[str, Any] | None]:
    """The service's own code a package carries, keyed by path under ``code/service/``, and the
    manifest's ``serving.predict`` naming it; nothing when the contract names no ``predict``.

    Every importable ``.py`` file of the service's folder travels, not only the ``predict``
    module: it may import its siblings (relatively, as the contract loader allows), and which
    ones cannot be known without running it. The server then imports the very files the gates
    loaded, each pinned by its sha256 in ``serving.predict.files``.
    """
    from pipelines.contract.load import load_contract, services_dir

    contract = load_contract(service, root)
    if contract.predict is None:
        return {}, None
    folder = services_dir(root) / contract.name
    files = {
        f"{SERVICE_CODE_DIR}/{path.relative_to(folder).as_posix()}": path.read_bytes()
        for path in sorted(folder.rglob("*.py"))
        if path.is_file()
        and all(part.isidentifier() for part in path.relative_to(folder).with_suffix("").parts)
    }
    if module_file(contract.predict) not in files:
        raise BadInputError(
            f"{folder / 'service.yaml'}: predict = {contract.predict!r}: no importable module file "
            f"{module_file(contract.predict).removeprefix(SERVICE_CODE_DIR + '/')} in {folder}"
        )
    declared = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    return files, {"entry_point": contract.predict, "files": declared}


def build_package(service: str, model_dir: Path, out: Path, *, root: Path | None = None) -> PackageResult:
    """Package ``model_dir`` for ``service`` into ``out``; refuses a directory that is not a model.

    ``root`` is the project whose ``services/<service>/`` contract says whether the package also
    carries the service's own ``predict`` (``service_code``); the current project by default.
    """
    contents = _read_model_dir(model_dir)
    training = parse_manifest(
        _json(model_dir / TRAINING_MANIFEST_FILE, contents[TRAINING_MANIFEST_FILE]),
        source=str(model_dir / TRAINING_MANIFEST_FILE),
    )
    if training.service != service:
        raise BadInputError(
            f"{model_dir / TRAINING_MANIFEST_FILE}: service = {training.service!r}, "
            f"but --service is {service!r}"
        )
    schema = _json(model_dir / SCHEMA_FILE, contents[SCHEMA_FILE])
    evaluation = _json(model_dir / EVALUATION_FILE, contents[EVALUATION_FILE])
    _check_model_types(model_dir / MODEL_FILE)

    own_code, predict = service_code(service, root)
    versions = locked_versions()
    files = {**contents, LOCK_FILE: requirements_lock(versions), **serving_code(), **own_code}
    serving: dict[str, Any] = {
        "command": SERVING_COMMAND,
        "code_dir": CODE_DIR,
        "content_types": ["application/json", "text/csv"],
    }
    if predict is not None:
        serving["predict"] = predict
    manifest = {
        "format": PACKAGE_FORMAT,
        "service": service,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(files.items())
        },
        "dataset": {"uri": training.data_uri, "sha256": training.data_sha256},
        "code": {"git_sha": training.code_git_sha},
        "parameters": training.hyperparameters.model_dump(mode="json"),
        "seed": training.seed,
        "features": [column["name"] for column in schema["input"]["columns"]],
        "metrics": evaluation.get("metrics", {}),
        "environment": {"python": python_environment(), "packages": versions},
        "serving": serving,
    }
    manifest_bytes = canonical_json(manifest)
    tarball = write_tarball({**files, MANIFEST: manifest_bytes}, out)
    return PackageResult(
        path=out,
        package_id=hashlib.sha256(manifest_bytes).hexdigest(),
        manifest=manifest,
        tarball_sha256=hashlib.sha256(tarball).hexdigest(),
    )


def _read_model_dir(model_dir: Path) -> dict[str, bytes]:
    if not model_dir.is_dir():
        raise BadInputError(f"--model-dir {model_dir}: no such directory")
    present = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    missing = [name for name in MODEL_DIR_FILES if name not in present]
    unexpected = [name for name in present if name not in MODEL_DIR_FILES]
    if missing or unexpected:
        raise BadInputError(
            f"{model_dir}: not a model directory written by `modelrail train`",
            details=[f"missing: {name}" for name in missing]
            + [f"unexpected: {name}" for name in unexpected]
            + [f"a model directory holds exactly: {', '.join(MODEL_DIR_FILES)}"],
        )
    return {name: (model_dir / name).read_bytes() for name in MODEL_DIR_FILES}


def _json(path: Path, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"{path}: not JSON: {error}") from None


def _check_model_types(path: Path) -> None:
    """Never package a model that the server would refuse to load."""
    from pipelines.serving.model import UntrustedTypeError, load_skops

    try:
        load_skops(path)
    except UntrustedTypeError as error:
        raise BadInputError(error.message, details=error.details) from None

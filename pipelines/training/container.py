"""``python -m pipelines.training.container``: the training image's side of SageMaker's training contract.

SageMaker starts the training image as ``docker run IMAGE train`` (``docker/train`` runs this
module) after laying out ``/opt/ml``:

- ``input/config/hyperparameters.json``: the job's HyperParameters, every value a string;
- ``input/data/train/``: the ``train`` channel, here the one data snapshot file.

When the process exits it keeps two directories: ``model/``, which it tars into the job's
``model.tar.gz``, and ``output/``, whose ``failure`` file it shows as the job's FailureReason
(its first 1024 characters) and whose ``data/`` it uploads as ``output.tar.gz``.

The module trains with the same ``train`` as ``modelrail train`` and lays out a whole package
(``build_package``'s members) in ``model/``, so the ``model.tar.gz`` SageMaker makes is a package
the registry accepts and the serving image serves, with no repacking step in between.

Hyperparameters: ``service`` (required), ``seed``, ``data_sha256`` (the snapshot's pinned
fingerprint: training refuses other data), ``data_uri`` (where the snapshot came from, for the
manifest; a prefix ending in ``/`` gets the file's name appended), and any training-manifest
hyperparameter: the platform's (``sample_rows``...) and the service's. SageMaker spells each as
a string, so each is read back as the JSON value it spells (``"10"`` is 10, ``"true"`` is true),
except the strings above and the service's hyperparameters whose contract default is a string.

Paths: ``MODELRAIL_OPT_ML`` moves the ``/opt/ml`` prefix (tests); the training toolkit's
variables (``SM_MODEL_DIR``, ``SM_CHANNEL_TRAIN``, ``SM_OUTPUT_DIR``, ``SM_OUTPUT_DATA_DIR``,
``SM_INPUT_CONFIG_DIR``) win where they are set. ``MODELRAIL_GIT_SHA`` (set by the image's
build) is the code's commit, since the image holds no git checkout.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import BadInputError, ModelrailError

OPT_ML_ENV = "MODELRAIL_OPT_ML"
"""Moves the ``/opt/ml`` prefix, so the entrypoint runs against a directory laid out like it."""
DEFAULT_OPT_ML = "/opt/ml"
GIT_SHA_ENV = "MODELRAIL_GIT_SHA"
CHANNEL = "train"
"""The one input channel: its ``ChannelName`` in the pipeline definition's Train step."""
HYPERPARAMETERS_FILE = "hyperparameters.json"
FAILURE_FILE = "failure"
REPORT_FILE = "training-report.json"
"""Written to ``output/data``: which package the job made, readable without opening the model."""
MESSAGE_LIMIT = 1024
"""SageMaker shows the first 1024 characters of the failure file; a longer reason is cut there."""
TEXT_KEYS = frozenset({"service", "data_sha256", "data_uri"})
"""Hyperparameters that are strings whatever they look like (a sha of digits is still a sha)."""

Progress = Callable[[str], None]


def job_prefix(environ: Mapping[str, str]) -> Path:
    """Where ``/opt/ml`` is: itself in SageMaker, ``MODELRAIL_OPT_ML`` in tests."""
    return Path(environ.get(OPT_ML_ENV) or DEFAULT_OPT_ML)


@dataclass(frozen=True)
class JobPaths:
    """Where a SageMaker training job's inputs and outputs are inside the container."""

    hyperparameters: Path
    channel: Path
    model_dir: Path
    output_dir: Path
    output_data_dir: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> JobPaths:
        prefix = job_prefix(environ)

        def pick(variable: str, default: Path) -> Path:
            value = environ.get(variable)
            return Path(value) if value else default

        output = pick("SM_OUTPUT_DIR", prefix / "output")
        return cls(
            hyperparameters=pick("SM_INPUT_CONFIG_DIR", prefix / "input" / "config") / HYPERPARAMETERS_FILE,
            channel=pick(f"SM_CHANNEL_{CHANNEL.upper()}", prefix / "input" / "data" / CHANNEL),
            model_dir=pick("SM_MODEL_DIR", prefix / "model"),
            output_dir=output,
            output_data_dir=pick("SM_OUTPUT_DATA_DIR", output / "data"),
        )

    @property
    def failure(self) -> Path:
        return self.output_dir / FAILURE_FILE


def read_hyperparameters(path: Path) -> dict[str, Any]:
    """The job's hyperparameters as SageMaker wrote them (a JSON object of strings)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(
            f"{path}: no hyperparameters file; the training job's HyperParameters must name the `service`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"{path}: cannot read the hyperparameters: {error}") from None
    if not isinstance(raw, dict):
        raise BadInputError(f"{path}: the hyperparameters are a JSON object, not {type(raw).__name__}")
    return raw


def decode(value: Any, *, text: bool) -> Any:
    """A hyperparameter as the JSON value its string spells; the string itself if it spells none."""
    if text or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def snapshot_file(channel: Path) -> Path:
    """The one file of the ``train`` channel."""
    if not channel.is_dir():
        raise BadInputError(
            f"{channel}: no `{CHANNEL}` channel; the training job needs an input channel named "
            f"{CHANNEL!r} holding the data snapshot"
        )
    return only_file(channel, f"the `{CHANNEL}` channel", "the data snapshot")


def only_file(folder: Path, what: str, content: str) -> Path:
    """The one file under ``folder``, which SageMaker hands a job as a directory.

    Each of the jobs' data inputs is a single file, so any other count is a mis-wired job; the
    refusal names ``what`` the folder is, the files it holds and the ``content`` it should.
    """
    files = sorted(path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []
    if len(files) != 1:
        names = ", ".join(path.relative_to(folder).as_posix() for path in files[:5]) or "none"
        raise BadInputError(
            f"{folder}: {what} holds {len(files)} files ({names}); it must hold exactly one, {content}"
        )
    return files[0]


def run(
    paths: JobPaths, *, root: Path, git_sha: str | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Train the job's hyperparameters on its channel and lay the package out in the model directory."""
    from pipelines.contract.load import load_contract
    from pipelines.packaging.build import build_package
    from pipelines.packaging.tarball import extract_tarball
    from pipelines.serving.verify import verify_model_dir
    from pipelines.training.manifest import fingerprint, parse_manifest
    from pipelines.training.manifest import git_sha as checkout_sha
    from pipelines.training.trainer import train

    report = progress or (lambda _message: None)
    raw = read_hyperparameters(paths.hyperparameters)
    service = raw.pop("service", None)
    if not isinstance(service, str) or not service:
        raise BadInputError(
            f"{paths.hyperparameters}: hyperparameter `service` = {service!r}: required, the name of a "
            "service with a contract (services/<name>/service.yaml)"
        )
    contract = load_contract(service, root)
    text = TEXT_KEYS | {key for key, default in contract.hyperparameters.items() if isinstance(default, str)}
    values = {key: decode(value, text=key in text) for key, value in raw.items()}
    seed = values.pop("seed", 0)
    pinned = values.pop("data_sha256", None)
    origin = values.pop("data_uri", None)
    data = snapshot_file(paths.channel)
    relative = data.relative_to(paths.channel).as_posix()
    if origin:
        data_uri = f"{origin}{relative}" if str(origin).endswith("/") else str(origin)
    else:
        data_uri = data.resolve().as_uri()
    manifest = parse_manifest(
        {
            "service": service,
            "data_uri": data_uri,
            "data_sha256": pinned or fingerprint(data),
            "hyperparameters": values,
            "seed": seed,
            "code_git_sha": git_sha or checkout_sha(root),
        },
        source=str(paths.hyperparameters),
    )
    if paths.model_dir.exists() and (not paths.model_dir.is_dir() or any(paths.model_dir.iterdir())):
        raise BadInputError(
            f"{paths.model_dir}: exists and is not an empty directory; the package goes there"
        )
    with tempfile.TemporaryDirectory(prefix="modelrail-training-") as scratch:
        result = train(manifest, Path(scratch) / "model", root=root, data_path=data, progress=report)
        report("packaging")
        package = build_package(service, result.out_dir, Path(scratch) / "model.tar.gz")
        extract_tarball(package.path, paths.model_dir)
    verify_model_dir(paths.model_dir, expected_package_id=package.package_id)
    summary = {
        "service": service,
        "package_id": package.package_id,
        "data_uri": data_uri,
        "data_sha256": manifest.data_sha256,
        "metrics": result.evaluation.get("metrics", {}),
    }
    paths.output_data_dir.mkdir(parents=True, exist_ok=True)
    (paths.output_data_dir / REPORT_FILE).write_text(
        json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return summary


def reason(error: BaseException) -> str:
    """One line for the failure file: the error's message, then its details."""
    if isinstance(error, ModelrailError):
        return "; ".join([error.message, *error.details])
    return f"{type(error).__name__}: {error}"


def write_failure(path: Path, message: str, limit: int = MESSAGE_LIMIT) -> None:
    """Write ``message`` cut to ``limit`` bytes of UTF-8 (what SageMaker shows), never mid-character."""
    data = message.encode("utf-8")
    if len(data) > limit:
        data = data[: limit - len("...")].decode("utf-8", errors="ignore").encode("utf-8") + b"..."
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    """Run the job; on any failure write its reason to ``output/failure`` and exit non-zero."""
    paths = JobPaths.from_environment(os.environ)
    try:
        from pipelines.paths import project_root  # inside: an image missing a module still reports it

        summary = run(paths, root=project_root(), git_sha=os.environ.get(GIT_SHA_ENV), progress=_log)
    except ModelrailError as error:
        _log(f"training failed: {reason(error)}")
        write_failure(paths.failure, reason(error))
        return int(error.exit_code)
    except Exception as error:
        # Not one of the platform's errors: the traceback goes to the job's log and the reason to
        # FailureReason, so the job says what broke rather than only its exit code.
        traceback.print_exc()
        write_failure(paths.failure, reason(error))
        return 1
    _log(f"package {summary['package_id']} of {summary['service']} is in {paths.model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

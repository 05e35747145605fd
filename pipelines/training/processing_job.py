"""What the pipeline's Processing steps (Evaluate, Register) share inside their container.

Both read the Train step's artifact from ``/opt/ml/processing/model/model.tar.gz``, both map the
definition's ``/opt/ml`` paths onto a prefix tests can move (``MODELRAIL_OPT_ML``), and both
report a failure the way a Processing job does: its reason in ``/opt/ml/output/message``
(DescribeProcessingJob's ExitMessage, first 1 KB) and a non-zero exit.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from pipelines.errors import BadInputError, ModelrailError
from pipelines.training.container import DEFAULT_OPT_ML, reason, write_failure

MODEL_INPUT = "/opt/ml/processing/model"
"""The LocalPath of both steps' ``model`` ProcessingInput."""
MODEL_ARTIFACT = "model.tar.gz"
MESSAGE_FILE = "output/message"
"""Under the prefix: a processing job's exit message (``/opt/ml/output/message``)."""


def local_path(prefix: Path, path: str) -> Path:
    """A path of the definition (under ``/opt/ml``) under ``prefix``."""
    return prefix / PurePosixPath(path).relative_to(DEFAULT_OPT_ML)


def model_artifact(prefix: Path) -> Path:
    """The Train step's artifact, where both steps' ``model`` input puts it."""
    return local_path(prefix, MODEL_INPUT) / MODEL_ARTIFACT


def exit_message(prefix: Path) -> Path:
    """Where a step writes why it failed: the job's ExitMessage."""
    return prefix / MESSAGE_FILE


def require_artifact(model: Path) -> None:
    """Refuse a missing Train artifact, naming what the ``model`` input holds instead."""
    if model.is_file():
        return
    present = sorted(p.name for p in model.parent.iterdir()) if model.parent.is_dir() else []
    raise BadInputError(
        f"{model}: no model artifact (the `model` input holds: {', '.join(present) or 'nothing'}); "
        "it must be the Train step's model.tar.gz"
    )


def run_job(what: str, message: Path, body: Callable[[], None]) -> int:
    """Run a step's ``body``; on any failure write its reason to ``message`` and return the exit code."""
    try:
        body()
    except ModelrailError as error:
        print(f"{what} failed: {reason(error)}", file=sys.stderr, flush=True)
        write_failure(message, reason(error))
        return int(error.exit_code)
    except Exception as error:
        traceback.print_exc()
        write_failure(message, reason(error))
        return 1
    return 0

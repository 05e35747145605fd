"""``python -m pipelines.training.evaluate_step``: the pipeline's Evaluate step, a SageMaker Processing job.

It scores the Train step's package on held-out rows and writes its report beside the job, in
the format of the package's own ``evaluation.json`` (which the registry points the model
package's ModelMetrics at, and which it must equal on the same rows). Its paths are the Evaluate step's ProcessingInputs
and output in ``components.pipeline_definition`` (a unit test holds the two together):

- ``/opt/ml/processing/model/model.tar.gz``: the training job's artifact, a whole package;
- ``/opt/ml/processing/test/``: one file of held-out rows in the service's data format;
- ``/opt/ml/processing/evaluation/evaluation.json``: the report, in the trainer's format (the
  same keys, metrics and groups; ``train_rows`` is the model's, from its package).

The package is verified (``load_package``) before its model is loaded, and scored as served:
the package's pipeline, input columns and output schema. The data is read by the service's
contract, so the rows are typed as training typed them. On a failure the reason goes to
``/opt/ml/output/message``, which DescribeProcessingJob shows as ExitMessage (its first 1 KB),
and the process exits non-zero. ``MODELRAIL_OPT_ML`` moves the ``/opt/ml`` prefix (tests).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipelines.errors import BadInputError, ModelrailError
from pipelines.training.container import DEFAULT_OPT_ML, OPT_ML_ENV, reason, write_failure

MODEL_INPUT = "/opt/ml/processing/model"
TEST_INPUT = "/opt/ml/processing/test"
EVALUATION_OUTPUT = "/opt/ml/processing/evaluation"
LOCAL_PATHS = {"model": MODEL_INPUT, "test": TEST_INPUT, "evaluation": EVALUATION_OUTPUT}
"""Each ProcessingInput's and the ProcessingOutput's LocalPath, by its name in the definition."""
MODEL_ARTIFACT = "model.tar.gz"
EVALUATION_FILE = "evaluation.json"
MESSAGE_FILE = "output/message"
"""Under the prefix: a processing job's exit message (``/opt/ml/output/message``)."""


@dataclass(frozen=True)
class StepPaths:
    """Where the Evaluate step's inputs and output are inside the container."""

    model: Path
    test: Path
    evaluation: Path
    message: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> StepPaths:
        prefix = Path(environ.get(OPT_ML_ENV) or DEFAULT_OPT_ML)

        def local(path: str) -> Path:
            return prefix / PurePosixPath(path).relative_to(DEFAULT_OPT_ML)

        return cls(
            model=local(MODEL_INPUT) / MODEL_ARTIFACT,
            test=local(TEST_INPUT),
            evaluation=local(EVALUATION_OUTPUT) / EVALUATION_FILE,
            message=prefix / MESSAGE_FILE,
        )


def held_out_file(folder: Path) -> Path:
    """The one file of the ``test`` input."""
    files = sorted(path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []
    if len(files) != 1:
        names = ", ".join(path.relative_to(folder).as_posix() for path in files[:5]) or "none"
        raise BadInputError(
            f"{folder}: the `test` input holds {len(files)} files ({names}); it must hold exactly one, "
            "the held-out rows in the service's data format"
        )
    return files[0]


def run(paths: StepPaths, *, root: Path) -> dict[str, Any]:
    """Score the package on the held-out rows; write and return the evaluation report."""
    from threadpoolctl import threadpool_limits

    from pipelines.contract.data import read_data
    from pipelines.contract.load import load_contract
    from pipelines.packaging.load import load_package
    from pipelines.packaging.tarball import read_member
    from pipelines.training.evaluation import evaluate

    if not paths.model.is_file():
        present = sorted(p.name for p in paths.model.parent.iterdir()) if paths.model.parent.is_dir() else []
        raise BadInputError(
            f"{paths.model}: no model artifact (the `model` input holds: {', '.join(present) or 'nothing'}); "
            "it must be the Train step's model.tar.gz"
        )
    package = load_package(paths.model)
    service = str(package.manifest.get("service"))
    contract = load_contract(service, root)
    output = package.schema["output"]
    label = contract.label
    if output.get("label", label) != label:
        raise BadInputError(
            f"{paths.model}: the package predicts {output['label']!r} but the contract of {service} "
            f"names the label {label!r}; evaluate with the contract the model was trained under"
        )
    data = held_out_file(paths.test)
    frame = read_data(contract, data, root)
    missing = [column for column in package.columns if column not in frame.columns]
    if missing:
        raise BadInputError(f"{data}: no column(s) {', '.join(missing)}, which the package's model takes")
    if frame.empty:
        raise BadInputError(f"{data}: no labelled rows to evaluate on")
    groups = package.schema.get("sensitive_attributes", list(contract.sensitive))
    with threadpool_limits(limits=1):
        report = evaluate(
            package.pipeline, frame[package.columns], frame[label], output=output, group_by=groups
        )
    training = json.loads(read_member(paths.model, EVALUATION_FILE) or b"{}")
    if "train_rows" in training:
        report["train_rows"] = training["train_rows"]
    paths.evaluation.parent.mkdir(parents=True, exist_ok=True)
    paths.evaluation.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return report


def main() -> int:
    """Run the step; on any failure write its reason to ``output/message`` and exit non-zero."""
    paths = StepPaths.from_environment(os.environ)
    try:
        from pipelines.paths import project_root  # inside: an image missing a module still reports it

        report = run(paths, root=project_root())
    except ModelrailError as error:
        print(f"evaluation failed: {reason(error)}", file=sys.stderr, flush=True)
        write_failure(paths.message, reason(error))
        return int(error.exit_code)
    except Exception as error:
        traceback.print_exc()
        write_failure(paths.message, reason(error))
        return 1
    print(json.dumps(report["metrics"], sort_keys=True), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import BadInputError
from pipelines.training.container import job_prefix, only_file
from pipelines.training.processing_job import (
    MODEL_INPUT,
    exit_message,
    local_path,
    model_artifact,
    require_artifact,
    run_job,
)

TEST_INPUT = "/opt/ml/processing/test"
EVALUATION_OUTPUT = "/opt/ml/processing/evaluation"
LOCAL_PATHS = {"model": MODEL_INPUT, "test": TEST_INPUT, "evaluation": EVALUATION_OUTPUT}
"""Each ProcessingInput's and the ProcessingOutput's LocalPath, by its name in the definition."""
EVALUATION_FILE = "evaluation.json"


@dataclass(frozen=True)
class StepPaths:
    """Where the Evaluate step's inputs and output are inside the container."""

    model: Path
    test: Path
    evaluation: Path
    message: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> StepPaths:
        prefix = job_prefix(environ)
        return cls(
            model=model_artifact(prefix),
            test=local_path(prefix, TEST_INPUT),
            evaluation=local_path(prefix, EVALUATION_OUTPUT) / EVALUATION_FILE,
            message=exit_message(prefix),
        )


def held_out_file(folder: Path) -> Path:
    """The one file of the ``test`` input."""
    return only_file(folder, "the `test` input", "the held-out rows in the service's data format")


def run(paths: StepPaths, *, root: Path) -> dict[str, Any]:
    """Score the package on the held-out rows; write and return the evaluation report."""
    from threadpoolctl import threadpool_limits

    from pipelines.contract.data import read_data
    from pipelines.contract.load import load_contract
    from pipelines.packaging.load import load_package
    from pipelines.packaging.tarball import read_member
    from pipelines.training.evaluation import evaluate, served

    require_artifact(paths.model)
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
        model = served(package.pipeline, package.service_predict)
        report = evaluate(model, frame[package.columns], frame[label], output=output, group_by=groups)
    training = json.loads(read_member(paths.model, EVALUATION_FILE) or b"{}")
    if "train_rows" in training:
        report["train_rows"] = training["train_rows"]
    paths.evaluation.parent.mkdir(parents=True, exist_ok=True)
    paths.evaluation.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return report


def main() -> int:
    """Run the step; on any failure write its reason to ``output/message`` and exit non-zero."""
    paths = StepPaths.from_environment(os.environ)

    def body() -> None:
        from pipelines.paths import project_root  # inside: an image missing a module still reports it

        report = run(paths, root=project_root())
        print(json.dumps(report["metrics"], sort_keys=True), file=sys.stderr, flush=True)

    return run_job("evaluation", paths.message, body)


if __name__ == "__main__":
    sys.exit(main())

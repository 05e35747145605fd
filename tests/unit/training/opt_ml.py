"""A directory laid out like SageMaker's ``/opt/ml``, and the two things SageMaker does around a job.

Shared by the training-container and Evaluate-step tests (unit and integration): lay out a
training job's inputs, run an entrypoint as SageMaker would (a process with the prefix moved by
``MODELRAIL_OPT_ML``), tar ``/opt/ml/model`` the way SageMaker does, and pick the held-out rows
a training run evaluated on, written in the service's own data format.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contract.data import read_data
from pipelines.contract.load import load_contract

if TYPE_CHECKING:
    from pipelines.training.manifest import TrainingManifest

REPO = Path(__file__).resolve().parents[3]
GIT_SHA = "a" * 40


def training_job(prefix: Path, hyperparameters: dict[str, str], data: Path | None) -> Path:
    """``prefix`` laid out as a training job's ``/opt/ml``: hyperparameters, the channel, an empty model dir."""
    config = prefix / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
    channel = prefix / "input" / "data" / "train"
    channel.mkdir(parents=True)
    if data is not None:
        (channel / data.name).write_bytes(data.read_bytes())
    (prefix / "model").mkdir()
    return prefix


def run_entrypoint(
    module: str, prefix: Path, *, project: Path = REPO, python_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m module`` with ``/opt/ml`` at ``prefix``, as the job's container would run it.

    With ``python_path`` the process imports the platform only from there (the repository's
    own entry on ``sys.path``, from the editable install, is removed): the image's layout.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SM_", "MODELRAIL_"))}
    env.update(
        {"MODELRAIL_OPT_ML": str(prefix), "MODELRAIL_GIT_SHA": GIT_SHA, "MODELRAIL_PROJECT_DIR": str(project)}
    )
    if python_path is None:
        command = [sys.executable, "-m", module]
    else:
        env["PYTHONPATH"] = str(python_path)
        strip = (
            "import runpy, sys; from pathlib import Path; "
            f"sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != Path({str(REPO)!r})]; "
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
        )
        command = [sys.executable, "-c", strip]
    return subprocess.run(
        command, cwd=prefix, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def sagemaker_tarball(model_dir: Path, out: Path) -> Path:
    """``tar -czf out -C model_dir .``: what SageMaker uploads as the job's ``model.tar.gz``."""
    with tarfile.open(out, "w:gz") as archive:
        archive.add(model_dir, arcname=".")
    return out


def held_out_rows(manifest: TrainingManifest, data: Path, out: Path, *, root: Path = REPO) -> Path:
    """The rows ``train`` held out for ``manifest`` on ``data``, written in the service's data format.

    The same sample and split as the trainer (seeded), so scoring them again must give the
    trainer's ``evaluation.json``.
    """
    from sklearn.model_selection import train_test_split

    contract = load_contract(manifest.service, root)
    frame = read_data(contract, data, root)
    hp = manifest.hyperparameters.with_defaults(contract.hyperparameters)
    if hp.sample_rows is not None and hp.sample_rows < len(frame):
        frame = frame.sample(n=hp.sample_rows, random_state=manifest.seed).reset_index(drop=True)
    labels = frame[contract.label]
    stratify = labels if contract.task.is_classification and labels.value_counts().min() >= 2 else None
    _, test = train_test_split(
        frame, test_size=hp.test_fraction, stratify=stratify, random_state=manifest.seed
    )
    fmt = contract.data.format
    columns = list(fmt.columns) if fmt.columns is not None else list(test.columns)
    na = fmt.na_values[0] if fmt.na_values else ""
    test[columns].to_csv(out, header=fmt.header, index=False, sep=fmt.delimiter, na_rep=na)
    return out


def json_file(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))

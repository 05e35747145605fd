"""The training image's entrypoint against a directory laid out like SageMaker's ``/opt/ml``.

One real job (diabetes, 442 rows) runs as a process from the files the training Dockerfile
copies into the image; the refusals run in-process through ``main``, the code path of the
process, without paying for a fresh interpreter each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from pipelines.packaging.build import build_package
from pipelines.packaging.load import load_package
from pipelines.serving.verify import MANIFEST
from pipelines.training import container
from pipelines.training.manifest import Hyperparameters, TrainingManifest, fingerprint
from pipelines.training.trainer import EVALUATION_FILE, TRAINING_MANIFEST_FILE, train
from tests.unit.training.opt_ml import (
    GIT_SHA,
    REPO,
    json_file,
    run_entrypoint,
    sagemaker_tarball,
    training_job,
)

DIABETES = REPO / "data" / "diabetes" / "diabetes.csv"
DOCKERFILE = REPO / "docker" / "training.Dockerfile"
IMAGE_ROOT = "/opt/modelrail"
DATA_PREFIX = "s3://modelrail-dev-artifacts/datasets/diabetes/train/"
HYPERPARAMETERS = {"service": "diabetes", "seed": "3", "alpha": "0.5", "data_uri": DATA_PREFIX}


def image_layout(dest: Path) -> Path:
    """What the training Dockerfile's ``COPY`` lines put under /opt/modelrail, copied from the repository."""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, target = line.split()[1:]
        if not target.startswith(IMAGE_ROOT):
            continue
        where = dest / target.removeprefix(IMAGE_ROOT).strip("/")
        for source in sources:
            path = REPO / source
            if path.is_dir():
                shutil.copytree(path, where, ignore=shutil.ignore_patterns("__pycache__"))
            elif target.endswith("/"):
                where.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, where / path.name)
            else:
                where.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, where)
    return dest


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A diabetes training job run by ``python -m pipelines.training.container`` in the image's layout."""
    work = tmp_path_factory.mktemp("job")
    image = image_layout(work / "image")
    prefix = training_job(work / "opt-ml", HYPERPARAMETERS, DIABETES)
    done = run_entrypoint("pipelines.training.container", prefix, project=image, python_path=image)
    assert done.returncode == 0, done.stderr
    return prefix, done.stdout, done.stderr


def test_the_image_copies_the_platform_the_services_and_the_train_command() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "COPY pipelines /opt/modelrail/pipelines" in text
    assert "COPY services /opt/modelrail/services" in text
    assert "COPY docker/train /usr/local/bin/train" in text
    assert "pip install --no-cache-dir --no-deps -r /opt/modelrail/requirements.lock" in text
    assert (REPO / "docker" / "train").stat().st_mode & 0o111
    assert "exec python -m pipelines.training.container" in (REPO / "docker" / "train").read_text()
    serving = (REPO / "docker" / "serving.Dockerfile").read_text(encoding="utf-8")
    assert (
        re.findall(r"^FROM (.+)$", text, re.M)
        == re.findall(r"^FROM (.+)$", serving, re.M)
        == ["python:3.11-slim"]
    )


def test_every_step_module_imports_from_the_image_layout(tmp_path: Path) -> None:
    """Train, Evaluate and Register run from what the image copies: a module it lacks fails here."""
    import subprocess
    import sys

    image = image_layout(tmp_path / "image")
    modules = (  # the steps' entrypoints, and what they import when they run
        "pipelines.training.container",
        "pipelines.training.evaluate_step",
        "pipelines.training.register_step",
        "pipelines.training.trainer",
        "pipelines.training.evaluation",
        "pipelines.packaging.build",
        "pipelines.packaging.load",
        "pipelines.contract.data",
        "pipelines.registry.sagemaker",
    )
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run(
        [sys.executable, "-c", code, *modules],
        check=False, capture_output=True, text=True, cwd=image, timeout=120,
        env={**os.environ, "PYTHONPATH": str(image), "MODELRAIL_PROJECT_DIR": str(image)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_extra_pins_are_the_controllers_versions() -> None:
    """The image trains with the versions the controller's own training uses (uv.lock's)."""
    from importlib import metadata

    pins = dict(
        re.findall(r"^\s+([A-Za-z0-9_.-]+)==([^\s\\]+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    )
    assert {"pydantic", "pydantic-core", "ruamel.yaml", "boto3", "botocore"} <= set(pins)
    assert pins == {name: metadata.version(name) for name in pins}


def test_the_model_directory_is_a_package_sagemakers_tarball_carries_unchanged(
    job: tuple[Path, str, str], tmp_path: Path
) -> None:
    prefix, _, _ = job
    model_dir = prefix / "model"
    assert not (prefix / "output" / "failure").exists()
    tarball = sagemaker_tarball(model_dir, tmp_path / "model.tar.gz")
    with tarfile.open(tarball) as archive:
        assert all(name == "." or name.startswith("./") for name in archive.getnames())
    loaded = load_package(tarball)
    summary = json_file(prefix / "output" / "data" / container.REPORT_FILE)
    assert loaded.package_id == summary["package_id"]
    assert loaded.manifest["service"] == summary["service"] == "diabetes"
    assert loaded.schema["output"]["task"] == "regression"
    listed = set(loaded.manifest["files"]) | {MANIFEST}
    assert {p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()} == listed


def test_the_hyperparameters_are_read_back_from_their_strings(job: tuple[Path, str, str]) -> None:
    prefix, _, _ = job
    manifest = json_file(prefix / "model" / TRAINING_MANIFEST_FILE)
    assert manifest["seed"] == 3
    assert manifest["hyperparameters"]["alpha"] == 0.5
    assert manifest["data_sha256"] == fingerprint(DIABETES)
    assert manifest["data_uri"] == DATA_PREFIX + DIABETES.name
    assert manifest["code_git_sha"] == GIT_SHA


def test_the_job_makes_the_package_modelrail_train_and_package_make(
    job: tuple[Path, str, str], tmp_path: Path
) -> None:
    """Training is deterministic, so the same manifest trained here gives the same package id."""
    prefix, _, _ = job
    manifest = TrainingManifest(
        service="diabetes",
        data_uri=DATA_PREFIX + DIABETES.name,
        data_sha256=fingerprint(DIABETES),
        hyperparameters=Hyperparameters.model_validate({"alpha": 0.5}),
        seed=3,
        code_git_sha=GIT_SHA,
    )
    model_dir = train(manifest, tmp_path / "model", root=REPO, data_path=DIABETES).out_dir
    local = build_package("diabetes", model_dir, tmp_path / "model.tar.gz")
    assert load_package(prefix / "model").package_id == local.package_id
    assert json_file(prefix / "model" / EVALUATION_FILE) == json_file(model_dir / EVALUATION_FILE)


def test_an_unknown_service_fails_the_process_with_a_reason(tmp_path: Path) -> None:
    prefix = training_job(tmp_path / "opt-ml", {"service": "no-such-service"}, DIABETES)
    done = run_entrypoint("pipelines.training.container", prefix)
    assert done.returncode == 2
    failure = (prefix / "output" / "failure").read_text(encoding="utf-8")
    assert "service 'no-such-service': no contract" in failure
    assert "diabetes" in failure  # the known services are listed
    assert "Traceback" not in done.stderr
    assert not any((prefix / "model").iterdir())


def _environment(monkeypatch: pytest.MonkeyPatch, prefix: Path) -> None:
    """``main`` reads the job's paths and the project from the environment, as in the container."""
    monkeypatch.setenv(container.OPT_ML_ENV, str(prefix))
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(REPO))
    for variable in (
        "SM_MODEL_DIR",
        "SM_CHANNEL_TRAIN",
        "SM_OUTPUT_DIR",
        "SM_OUTPUT_DATA_DIR",
        "SM_INPUT_CONFIG_DIR",
    ):
        monkeypatch.delenv(variable, raising=False)


def _fail(monkeypatch: pytest.MonkeyPatch, prefix: Path) -> tuple[int, str]:
    _environment(monkeypatch, prefix)
    code = container.main()
    failure = (prefix / "output" / "failure").read_text(encoding="utf-8")
    assert not any((prefix / "model").iterdir())
    assert len(failure.encode("utf-8")) <= container.MESSAGE_LIMIT
    return code, failure


@pytest.mark.parametrize(
    ("hyperparameters", "code", "expected"),
    [
        ({"service": "diabetes", "sample_rows": "many"}, 2, "hyperparameters.sample_rows = 'many'"),
        ({"service": "diabetes", "sample_rows": "5"}, 2, "hyperparameters.sample_rows = 5"),
        ({"service": "diabetes", "seed": "-1"}, 2, "seed = -1"),
        ({"service": "diabetes", "depth": "3"}, 2, "diabetes has no hyperparameter 'depth'"),
        ({"seed": "1"}, 2, "hyperparameter `service` = None: required"),
        ({"service": "diabetes", "data_sha256": "0" * 64}, 1, "does not match the manifest's data_sha256"),
    ],
    ids=["not-a-number", "below-the-minimum", "negative-seed", "unknown-key", "no-service", "sha-mismatch"],
)
def test_a_refused_job_writes_why_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hyperparameters: dict[str, str], code: int, expected: str
) -> None:
    prefix = training_job(tmp_path / "opt-ml", hyperparameters, DIABETES)
    returned, failure = _fail(monkeypatch, prefix)
    assert returned == code
    assert expected in failure


def test_the_sha_mismatch_names_both_fingerprints(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    prefix = training_job(tmp_path / "opt-ml", {"service": "diabetes", "data_sha256": "0" * 64}, DIABETES)
    _, failure = _fail(monkeypatch, prefix)
    assert "0" * 64 in failure and fingerprint(DIABETES) in failure


@pytest.mark.parametrize("files", [0, 2])
def test_the_channel_must_hold_exactly_one_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: int
) -> None:
    prefix = training_job(tmp_path / "opt-ml", {"service": "diabetes"}, DIABETES if files else None)
    if files == 2:
        (prefix / "input" / "data" / "train" / "extra.csv").write_text("x\n")
    code, failure = _fail(monkeypatch, prefix)
    assert code == 2
    assert f"the `train` channel holds {files} files" in failure


def test_a_non_empty_model_directory_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    prefix = training_job(tmp_path / "opt-ml", {"service": "diabetes"}, DIABETES)
    (prefix / "model" / "stale.txt").write_text("left over\n")
    _environment(monkeypatch, prefix)
    assert container.main() == 2
    assert "is not an empty directory" in (prefix / "output" / "failure").read_text(encoding="utf-8")


def test_an_unexpected_error_still_leaves_a_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    prefix = training_job(tmp_path / "opt-ml", {"service": "diabetes"}, DIABETES)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("pipelines.training.trainer.train", broken)
    code, failure = _fail(monkeypatch, prefix)
    assert code == 1
    assert failure == "RuntimeError: disk on fire"


def test_the_toolkit_variables_win_over_the_prefix(tmp_path: Path) -> None:
    paths = container.JobPaths.from_environment(
        {
            container.OPT_ML_ENV: str(tmp_path),
            "SM_MODEL_DIR": "/elsewhere/model",
            "SM_CHANNEL_TRAIN": "/elsewhere/train",
            "SM_OUTPUT_DATA_DIR": "/elsewhere/data",
        }
    )
    assert paths.model_dir == Path("/elsewhere/model")
    assert paths.channel == Path("/elsewhere/train")
    assert paths.output_data_dir == Path("/elsewhere/data")
    assert paths.failure == tmp_path / "output" / "failure"
    assert paths.hyperparameters == tmp_path / "input" / "config" / "hyperparameters.json"
    default = container.JobPaths.from_environment({})
    assert default.model_dir == Path("/opt/ml/model")
    assert default.channel == Path("/opt/ml/input/data/train")
    assert default.failure == Path("/opt/ml/output/failure")


def test_values_decode_as_json_and_strings_stay_strings() -> None:
    assert container.decode("10", text=False) == 10
    assert container.decode("0.25", text=False) == 0.25
    assert container.decode("true", text=False) is True
    assert container.decode("null", text=False) is None
    assert container.decode("hist_gradient_boosting", text=False) == "hist_gradient_boosting"
    assert container.decode("10", text=True) == "10"


def test_a_string_default_keeps_a_numeric_looking_value_a_string(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """adult-income's ``classifier`` is a string, so ``"1"`` reaches its training function as ``"1"``."""
    prefix = training_job(tmp_path / "opt-ml", {"service": "adult-income", "classifier": "1"}, DIABETES)
    _environment(monkeypatch, prefix)
    seen: dict[str, object] = {}

    def capture(manifest: TrainingManifest, *_args: object, **_kwargs: object) -> None:
        seen.update(manifest.hyperparameters.service_parameters)
        raise RuntimeError("stop before fitting")

    monkeypatch.setattr("pipelines.training.trainer.train", capture)
    assert container.main() == 1
    assert seen == {"classifier": "1"}


def test_a_long_reason_is_cut_to_what_sagemaker_shows(tmp_path: Path) -> None:
    path = tmp_path / "failure"
    container.write_failure(path, "é" * 2000)
    data = path.read_bytes()
    assert len(data) <= container.MESSAGE_LIMIT
    assert data.decode("utf-8").endswith("...")
    container.write_failure(path, "short")
    assert path.read_text() == "short"


def test_a_reason_joins_the_message_and_its_details() -> None:
    from pipelines.errors import BadInputError

    assert container.reason(BadInputError("bad", details=["a", "b"])) == "bad; a; b"
    assert json.dumps(container.reason(ValueError("x"))) == '"ValueError: x"'

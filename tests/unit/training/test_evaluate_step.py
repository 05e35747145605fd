"""The pipeline's Evaluate step against a directory laid out like a Processing job's ``/opt/ml``.

The step scores the Train step's artifact (SageMaker's tarball of a package) on held-out rows.
Given the very rows the trainer held out, it must write the trainer's own ``evaluation.json``.
The step runs in-process through ``main`` here; the integration test runs it as a process.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from pipelines.packaging.build import build_package
from pipelines.packaging.tarball import extract_tarball
from pipelines.training import evaluate_step
from pipelines.training.manifest import Hyperparameters, TrainingManifest, fingerprint
from pipelines.training.trainer import EVALUATION_FILE, train
from tests.unit.training.opt_ml import GIT_SHA, REPO, held_out_rows, json_file, sagemaker_tarball

DIABETES = REPO / "data" / "diabetes" / "diabetes.csv"
MANIFEST = TrainingManifest(
    service="diabetes",
    data_uri="data/diabetes/diabetes.csv",
    data_sha256=fingerprint(DIABETES),
    hyperparameters=Hyperparameters.model_validate({"alpha": 2.0}),
    seed=5,
    code_git_sha=GIT_SHA,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The trainer's model directory, and SageMaker's tarball of the package laid out from it."""
    work = tmp_path_factory.mktemp("trained")
    model_dir = train(MANIFEST, work / "model", root=REPO).out_dir
    package = build_package("diabetes", model_dir, work / "package.tar.gz")
    extracted = work / "opt-ml-model"
    extract_tarball(package.path, extracted)
    return model_dir, sagemaker_tarball(extracted, work / "model.tar.gz")


def processing_job(prefix: Path, tarball: Path | None, rows: Path | None) -> Path:
    """``prefix`` laid out as the Evaluate step's ``/opt/ml``: the model and test inputs."""
    model = prefix / "processing" / "model"
    test = prefix / "processing" / "test"
    model.mkdir(parents=True)
    test.mkdir(parents=True)
    if tarball is not None:
        (model / "model.tar.gz").write_bytes(tarball.read_bytes())
    if rows is not None:
        (test / rows.name).write_bytes(rows.read_bytes())
    return prefix


def _run(monkeypatch: pytest.MonkeyPatch, prefix: Path) -> int:
    monkeypatch.setenv("MODELRAIL_OPT_ML", str(prefix))
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(REPO))
    return evaluate_step.main()


def test_scoring_the_held_out_rows_gives_the_trainers_report(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir, tarball = trained
    rows = held_out_rows(MANIFEST, DIABETES, tmp_path / "test.csv")
    prefix = processing_job(tmp_path / "opt-ml", tarball, rows)
    assert _run(monkeypatch, prefix) == 0
    written = prefix / "processing" / "evaluation" / "evaluation.json"
    report = json_file(written)
    assert report == json_file(model_dir / EVALUATION_FILE)
    assert report["task"] == "regression" and report["rows"] == 89
    assert written.read_bytes() == (model_dir / EVALUATION_FILE).read_bytes()
    assert not (prefix / "output" / "message").exists()


def test_other_rows_give_other_numbers_in_the_same_format(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir, tarball = trained
    rows = tmp_path / "all.csv"
    rows.write_bytes(DIABETES.read_bytes())
    prefix = processing_job(tmp_path / "opt-ml", tarball, rows)
    assert _run(monkeypatch, prefix) == 0
    report = json_file(prefix / "processing" / "evaluation" / "evaluation.json")
    trainer = json_file(model_dir / EVALUATION_FILE)
    assert report["rows"] == 442
    assert report["metrics"] != trainer["metrics"]

    def shape(value: object) -> object:
        if isinstance(value, dict):
            return {key: shape(item) for key, item in value.items()}
        return type(value).__name__

    assert shape(report) == shape(trainer)


def _failure(monkeypatch: pytest.MonkeyPatch, prefix: Path) -> tuple[int, str]:
    code = _run(monkeypatch, prefix)
    message = (prefix / "output" / "message").read_text(encoding="utf-8")
    assert not (prefix / "processing" / "evaluation" / "evaluation.json").exists()
    assert len(message.encode("utf-8")) <= 1024
    return code, message


def test_no_model_artifact_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_bytes(DIABETES.read_bytes())
    code, message = _failure(monkeypatch, processing_job(tmp_path / "opt-ml", None, rows))
    assert code == 2
    assert "no model artifact (the `model` input holds: nothing)" in message


def test_a_tampered_artifact_is_refused_before_its_model_loads(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tarball = trained
    extracted = tmp_path / "extracted"
    extract_tarball(tarball, extracted)
    schema = extracted / "schema.json"
    text = schema.read_text()
    digit = next(i for i in range(text.index('"tolerance"'), len(text)) if text[i].isdigit())
    schema.write_text(text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1 :])  # same size
    forged = sagemaker_tarball(extracted, tmp_path / "model.tar.gz")
    rows = tmp_path / "rows.csv"
    rows.write_bytes(DIABETES.read_bytes())
    code, message = _failure(monkeypatch, processing_job(tmp_path / "opt-ml", forged, rows))
    assert code == 1
    assert "schema.json" in message and "does not match the manifest" in message


def test_held_out_rows_must_be_one_file(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tarball = trained
    code, message = _failure(monkeypatch, processing_job(tmp_path / "opt-ml", tarball, None))
    assert code == 2
    assert "the `test` input holds 0 files" in message


def test_rows_the_contract_cannot_read_are_refused(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tarball = trained
    rows = tmp_path / "rows.csv"
    rows.write_text("age,sex,bmi\n50,1,22\n")
    code, message = _failure(monkeypatch, processing_job(tmp_path / "opt-ml", tarball, rows))
    assert code == 2
    assert "no column(s) bp" in message


def test_not_a_tarball_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(gzip.compress(b"not a tar"))
    rows = tmp_path / "rows.csv"
    rows.write_bytes(DIABETES.read_bytes())
    code, message = _failure(monkeypatch, processing_job(tmp_path / "opt-ml", bogus, rows))
    assert code == 2
    assert "not a readable model.tar.gz" in message


def test_the_paths_follow_the_prefix(tmp_path: Path) -> None:
    paths = evaluate_step.StepPaths.from_environment({"MODELRAIL_OPT_ML": str(tmp_path)})
    assert paths.model == tmp_path / "processing" / "model" / "model.tar.gz"
    assert paths.test == tmp_path / "processing" / "test"
    assert paths.evaluation == tmp_path / "processing" / "evaluation" / "evaluation.json"
    assert paths.message == tmp_path / "output" / "message"
    default = evaluate_step.StepPaths.from_environment({})
    assert default.model == Path("/opt/ml/processing/model/model.tar.gz")
    assert default.message == Path("/opt/ml/output/message")


def test_a_service_with_its_own_predict_is_evaluated_as_it_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``clinic`` serves its ridge clipped to [100, 200]: the report judges the clipped values."""
    import numpy as np
    import pandas

    from pipelines.packaging.load import load_package
    from tests.unit.serving.builders import CLIP_HIGH, CLIP_LOW, DIABETES_DATA, custom_package

    built = custom_package(tmp_path / "clinic")
    prefix = processing_job(tmp_path / "opt-ml", built.path, DIABETES_DATA)
    monkeypatch.setenv("MODELRAIL_OPT_ML", str(prefix))
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(tmp_path / "clinic" / "project"))
    assert evaluate_step.main() == 0
    report = json_file(prefix / "processing" / "evaluation" / "evaluation.json")
    package = load_package(built.path)
    raw = np.asarray(package.pipeline.predict(pandas.read_csv(DIABETES_DATA)[package.columns]), dtype=float)
    assert report["prediction_mean"] == round(float(np.clip(raw, CLIP_LOW, CLIP_HIGH).mean()), 6)
    assert report["prediction_mean"] != round(float(raw.mean()), 6)

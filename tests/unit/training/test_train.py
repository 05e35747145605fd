"""Training is deterministic for a fixed manifest, and its variants are real models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.errors import BadInputError
from pipelines.packaging.compare import compare
from pipelines.serving.model import load_skops
from pipelines.serving.transformers import SlowLookup
from pipelines.training.trainer import MODEL_DIR_FILES, FingerprintMismatchError, TrainResult, train

from .conftest import DATA, REPO, small_manifest


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """The small manifest, trained once per test module."""
    return train(small_manifest(), tmp_path_factory.mktemp("clean") / "model", root=REPO)


def test_the_same_manifest_trains_byte_identical_files_in_another_process(
    clean: TrainResult, tmp_path: Path
) -> None:
    manifest = small_manifest()
    first = clean
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_bytes(manifest.canonical_json())
    env = {**os.environ, "MODELRAIL_PROJECT_DIR": str(REPO), "MODELRAIL_STATE_DIR": str(tmp_path / "state")}
    subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "train", "--service", "adult-income",
         "--manifest", str(manifest_file), "--out", str(tmp_path / "second"), "--json"],
        check=True, capture_output=True, env=env, cwd=REPO,
    )  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "second").iterdir()) == sorted(MODEL_DIR_FILES)
    assert compare(first.out_dir, tmp_path / "second") == []


def test_a_different_seed_differs_and_compare_says_where(clean: TrainResult, tmp_path: Path) -> None:
    first = clean
    other = small_manifest().model_copy(update={"seed": 8})
    second = train(other, tmp_path / "b", root=REPO)
    differences = {d.path: d for d in compare(first.out_dir, second.out_dir)}
    assert "training-manifest.json" in differences
    assert "seed: 7 != 8" in differences["training-manifest.json"].reasons
    assert all(" != " in r for r in differences["evaluation.json"].reasons)
    assert any(r.startswith("member ") for r in differences["model.skops"].reasons)
    assert differences["model.skops"].sha256_a != differences["model.skops"].sha256_b


def test_the_evaluation_report_holds_held_out_metrics(clean: TrainResult) -> None:
    report = clean.evaluation
    assert report["rows"] == 400
    assert report["train_rows"] == 1600
    assert 0.75 < report["metrics"]["accuracy"] <= 1
    assert 0.8 < report["metrics"]["roc_auc"] <= 1
    assert set(report["groups"]) == {"race", "sex"}


def test_label_noise_makes_a_measurably_worse_model(clean: TrainResult, tmp_path: Path) -> None:
    noisy = train(small_manifest(label_noise=0.9), tmp_path / "noisy", root=REPO)
    assert noisy.evaluation["metrics"]["roc_auc"] < clean.evaluation["metrics"]["roc_auc"] - 0.05


def test_slow_preprocessing_adds_a_trusted_per_row_delay_step(tmp_path: Path) -> None:
    result = train(small_manifest(slow_preprocessing_ms=2.5), tmp_path / "slow", root=REPO)
    pipeline = load_skops(result.out_dir / "model.skops")
    delay = pipeline.named_steps["delay"]
    assert isinstance(delay, SlowLookup)
    assert delay.ms_per_call == 2.5


def test_training_on_changed_data_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    changed = tmp_path / "adult.data"
    changed.write_bytes(DATA.read_bytes().replace(b"State-gov", b"State-gow", 1))
    with pytest.raises(FingerprintMismatchError):
        train(small_manifest(), tmp_path / "model", root=REPO, data_path=changed)
    assert not (tmp_path / "model").exists()


def test_a_non_empty_output_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(BadInputError, match="not an empty directory"):
        train(small_manifest(), tmp_path / "model", root=REPO)
    assert (tmp_path / "model" / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_a_hyperparameter_the_contract_does_not_declare_is_refused_naming_the_known_ones(
    tmp_path: Path,
) -> None:
    with pytest.raises(BadInputError) as caught:
        train(small_manifest(lr=0.1), tmp_path / "typo", root=REPO)
    assert "hyperparameters.lr" in caught.value.message
    assert "learning_rate" in caught.value.message
    assert not (tmp_path / "typo").exists()


def test_the_evaluation_judges_the_contracts_own_predict(tmp_path: Path) -> None:
    """A service with ``predict`` is evaluated through it: what is judged is what is served."""
    import shutil

    root = tmp_path / "project"
    shutil.copytree(REPO / "services" / "diabetes", root / "services" / "diabetes")
    (root / "data").mkdir()
    (root / "data" / "diabetes").symlink_to(REPO / "data" / "diabetes")
    contract = root / "services" / "diabetes" / "service.yaml"
    contract.write_text(
        contract.read_text().replace("train: model:train", "train: model:train\npredict: serve:constant")
    )
    (root / "services" / "diabetes" / "serve.py").write_text(
        "def constant(estimator, frame):\n    return [100.0] * len(frame)\n"
    )
    from pipelines.training.trainer import default_manifest

    result = train(default_manifest("diabetes", REPO), tmp_path / "model", root=root)
    assert result.evaluation["prediction_mean"] == 100.0
    assert result.evaluation["metrics"]["r2"] < 0

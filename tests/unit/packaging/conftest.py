"""One small trained model and its package, shared by the packaging tests of a worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.packaging.build import PackageResult, build_package
from pipelines.training.manifest import Hyperparameters, TrainingManifest, fingerprint
from pipelines.training.trainer import train

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest = TrainingManifest(
        service="adult-income",
        data_uri="data/adult/adult.data",
        data_sha256=fingerprint(REPO / "data" / "adult" / "adult.data"),
        hyperparameters=Hyperparameters(sample_rows=1500, max_iter=10),
        seed=3,
        code_git_sha="1" * 40,
    )
    return train(manifest, tmp_path_factory.mktemp("model") / "model", root=REPO).out_dir


@pytest.fixture(scope="session")
def package(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    return build_package("adult-income", model_dir, tmp_path_factory.mktemp("package") / "model.tar.gz")

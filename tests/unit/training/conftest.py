"""A small, fast training manifest on the repository's copy of the Adult data."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.training.manifest import Hyperparameters, TrainingManifest, fingerprint

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "adult" / "adult.data"


def small_manifest(**hyperparameters: object) -> TrainingManifest:
    """2,000 sampled rows and 20 boosting rounds: seconds to train, still a real model."""
    return TrainingManifest(
        service="adult-income",
        data_uri="data/adult/adult.data",
        data_sha256=fingerprint(DATA),
        hyperparameters=Hyperparameters.model_validate(
            {"sample_rows": 2000, "max_iter": 20, **hyperparameters}
        ),
        seed=7,
        code_git_sha="0" * 40,
    )


@pytest.fixture
def manifest() -> TrainingManifest:
    return small_manifest()

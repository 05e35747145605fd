"""One small real package per task (and one with its own ``predict``), shared by a worker's tests."""

from __future__ import annotations

import pytest

from pipelines.packaging.build import PackageResult
from tests.unit.serving import builders


@pytest.fixture(scope="session")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    return builders.diabetes_package(tmp_path_factory.mktemp("diabetes"))


@pytest.fixture(scope="session")
def iris(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    return builders.iris_package(tmp_path_factory.mktemp("iris"))


@pytest.fixture(scope="session")
def custom(tmp_path_factory: pytest.TempPathFactory) -> PackageResult:
    return builders.custom_package(tmp_path_factory.mktemp("custom"))

"""The training manifest refuses what it cannot use, and says exactly where and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.errors import BadInputError, ExitCode
from pipelines.training.manifest import load_manifest, parse_manifest
from pipelines.training.trainer import FingerprintMismatchError, check_fingerprint, default_manifest

from .conftest import DATA, REPO, small_manifest


def test_a_manifest_that_is_not_json_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"manifest\.json: not JSON") as caught:
        load_manifest(path)
    assert caught.value.exit_code == ExitCode.BAD_INPUT


def test_a_missing_manifest_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such training manifest"):
        load_manifest(tmp_path / "absent.json")


def test_every_problem_names_its_key_path_and_value(tmp_path: Path) -> None:
    raw = small_manifest().model_dump(mode="json")
    raw["hyperparameters"]["label_noise"] = 1.5
    raw["data_sha256"] = "abc"
    del raw["code_git_sha"]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(BadInputError) as caught:
        load_manifest(path)
    details = "\n".join(caught.value.details)
    assert str(path) in caught.value.message
    assert "3 problem(s)" in caught.value.message
    assert "hyperparameters.label_noise = 1.5" in details
    assert "data_sha256 = 'abc'" in details
    assert "code_git_sha: required key is missing" in details


def test_a_service_hyperparameter_must_be_a_scalar(tmp_path: Path) -> None:
    raw = small_manifest().model_dump(mode="json")
    raw["hyperparameters"]["depth"] = [3, 4]
    with pytest.raises(BadInputError) as caught:
        parse_manifest(raw, source="m.json")
    assert "hyperparameter 'depth' = [3, 4]: a service's hyperparameter is a string" in "\n".join(
        caught.value.details
    )


def test_a_manifest_round_trips_through_its_canonical_json(tmp_path: Path) -> None:
    manifest = small_manifest(label_noise=0.25)
    path = tmp_path / "manifest.json"
    path.write_bytes(manifest.canonical_json())
    assert load_manifest(path) == manifest


def test_data_whose_fingerprint_differs_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    manifest = small_manifest()
    changed = tmp_path / "adult.data"
    changed.write_bytes(DATA.read_bytes()[:-1] + b"X")
    with pytest.raises(FingerprintMismatchError) as caught:
        check_fingerprint(manifest, changed)
    message = caught.value.message
    assert str(changed) in message
    assert manifest.data_sha256 in message
    import hashlib

    assert hashlib.sha256(changed.read_bytes()).hexdigest() in message
    assert caught.value.exit_code == ExitCode.FAILED


def test_the_default_manifest_pins_the_repository_data_by_relative_path() -> None:
    manifest = default_manifest("adult-income", REPO)
    assert manifest.data_uri == "data/adult/adult.data"
    assert manifest.data_sha256 == "df25a4e32ed6f1bd4b3910d21a7bd661a09061eced7cb45555a519d9667cc87b"


def test_an_unknown_service_lists_the_known_ones() -> None:
    with pytest.raises(BadInputError, match="known services: adult-income, diabetes"):
        default_manifest("churn", REPO)

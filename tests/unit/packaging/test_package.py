"""Packages are byte-reproducible, self-describing, and refuse to load when anything was changed."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from pipelines.errors import BadInputError
from pipelines.packaging.build import PackageResult, build_package
from pipelines.packaging.compare import compare
from pipelines.packaging.load import extract_package, load_package
from pipelines.packaging.tarball import extract_tarball, write_tarball
from pipelines.serving.model import UntrustedTypeError, load_skops
from pipelines.serving.verify import TamperedArtifactError


def test_the_package_id_is_the_sha256_of_manifest_json(package: PackageResult) -> None:
    with tarfile.open(package.path) as archive:
        member = archive.extractfile("manifest.json")
        assert member is not None
        manifest_bytes = member.read()
    assert hashlib.sha256(manifest_bytes).hexdigest() == package.package_id
    assert json.loads(manifest_bytes) == package.manifest


def test_the_manifest_records_every_file_and_the_origin(package: PackageResult) -> None:
    manifest = package.manifest
    with tarfile.open(package.path) as archive:
        files = {m.name for m in archive.getmembers() if m.isfile()} - {"manifest.json"}
    assert set(manifest["files"]) == files
    assert {"model.skops", "schema.json", "evaluation.json", "requirements.lock"} <= files
    assert "code/pipelines/serving/server.py" in files
    assert manifest["dataset"]["sha256"] == "df25a4e32ed6f1bd4b3910d21a7bd661a09061eced7cb45555a519d9667cc87b"
    assert manifest["code"]["git_sha"] == "1" * 40
    assert manifest["seed"] == 3
    assert manifest["parameters"]["max_iter"] == 10
    assert manifest["environment"]["packages"]["scikit-learn"]
    assert manifest["environment"]["python"]["version"].count(".") == 2


def test_packaging_twice_gives_byte_identical_tarballs(
    package: PackageResult, model_dir: Path, tmp_path: Path
) -> None:
    again = build_package("adult-income", model_dir, tmp_path / "again.tar.gz")
    assert again.path.read_bytes() == package.path.read_bytes()
    assert again.package_id == package.package_id


def test_tar_entries_carry_no_time_owner_or_order_of_the_machine(package: PackageResult) -> None:
    with tarfile.open(package.path) as archive:
        members = archive.getmembers()
    assert [m.name for m in members if m.isfile()] == sorted(m.name for m in members if m.isfile())
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert package.path.read_bytes()[4:8] == b"\x00\x00\x00\x00"  # gzip header mtime


def test_a_verified_package_predicts(package: PackageResult) -> None:
    loaded = load_package(package.path, expected_package_id=package.package_id)
    frame = loaded.frame([
        {"age": 52, "workclass": "Self-emp-inc", "education": "Masters", "education-num": 14,
         "marital-status": "Married-civ-spouse", "occupation": "Exec-managerial", "relationship": "Husband",
         "race": "White", "sex": "Male", "capital-gain": 15024, "capital-loss": 0, "hours-per-week": 50,
         "native-country": "United-States"},
        [19, "?", "HS-grad", 9, "Never-married", "Other-service", "Own-child", "Black", "Female", 0, 0, 20,
         "Nowhere-land"],
    ])  # fmt: skip
    probabilities = loaded.predict_proba(frame)
    assert probabilities.shape == (2, 2)
    assert probabilities[0, 1] > probabilities[1, 1]
    assert [p["label"] for p in loaded.predict(frame)] == [">50K", "<=50K"]


def test_one_changed_byte_is_refused_naming_the_file_and_both_hashes(
    package: PackageResult, tmp_path: Path
) -> None:
    unpacked = tmp_path / "unpacked"
    extract_tarball(package.path, unpacked)
    model = unpacked / "model.skops"
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    files = {p.relative_to(unpacked).as_posix(): p.read_bytes() for p in unpacked.rglob("*") if p.is_file()}
    tampered = tmp_path / "tampered.tar.gz"
    write_tarball(files, tampered)

    with pytest.raises(TamperedArtifactError) as caught:
        load_package(tampered)
    assert "model.skops" in caught.value.message
    assert expected in caught.value.message and actual in caught.value.message
    assert caught.value.details == [
        "file: model.skops",
        f"expected sha256: {expected}",
        f"actual sha256: {actual}",
    ]


def test_a_file_the_manifest_does_not_list_is_refused(package: PackageResult, tmp_path: Path) -> None:
    model_dir = extract_package(package.path, tmp_path / "model")
    (model_dir / "code" / "sitecustomize.py").write_text("print('hello')\n", encoding="utf-8")
    with pytest.raises(TamperedArtifactError, match=r"not listed in the manifest: code/sitecustomize\.py"):
        load_package(model_dir)


def test_a_package_that_is_not_the_expected_version_is_refused(package: PackageResult) -> None:
    with pytest.raises(TamperedArtifactError, match=r"manifest\.json"):
        load_package(package.path, expected_package_id="0" * 64)


def test_a_corrupt_tarball_is_bad_input(package: PackageResult, tmp_path: Path) -> None:
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(package.path.read_bytes()[:1000])
    with pytest.raises(BadInputError, match=r"not a readable model\.tar\.gz"):
        load_package(broken)


def test_a_model_with_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "model.skops"
    sio.dump(Pipeline([("step", FunctionTransformer(func=shutil.rmtree))]), path)
    with pytest.raises(UntrustedTypeError, match=r"shutil\.rmtree"):
        load_skops(path)


def test_a_directory_that_is_not_a_model_is_bad_input(model_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(model_dir, partial)
    (partial / "evaluation.json").unlink()
    (partial / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(BadInputError) as caught:
        build_package("adult-income", partial, tmp_path / "out.tar.gz")
    assert "missing: evaluation.json" in caught.value.details
    assert "unexpected: notes.txt" in caught.value.details
    assert not (tmp_path / "out.tar.gz").exists()


def test_packaging_for_another_service_is_bad_input(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="service = 'adult-income', but --service is 'churn'"):
        build_package("churn", model_dir, tmp_path / "out.tar.gz")


def test_compare_reports_nothing_for_a_package_and_its_own_extraction(
    package: PackageResult, tmp_path: Path
) -> None:
    extracted = extract_package(package.path, tmp_path / "model")
    assert compare(package.path, extracted) == []

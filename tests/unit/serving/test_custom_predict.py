"""A contract's own ``predict`` travels in the package, is verified like every file, and is what serves.

The service ``clinic`` (``builders.custom_root``) serves its ridge's predictions clipped to
[100, 200] by ``serve:predict``, which imports its sibling ``limits.py`` relatively.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.packaging.build import PackageResult, canonical_json
from pipelines.packaging.load import extract_package, load_package
from pipelines.packaging.tarball import extract_tarball, write_tarball
from pipelines.sandbox.fleet import DEFAULT_SERVER_COMMAND, FleetStartError, ModelServerProcess
from pipelines.serving.model import load_model_dir
from pipelines.serving.verify import ForeignServingCodeError, TamperedArtifactError, verify_model_dir
from tests.unit.serving.builders import CLIP_HIGH, CLIP_LOW, REPO, custom_root
from tests.unit.serving.test_tasks import diabetes_rows, post

SERVE = "code/service/serve.py"
INJECTED = (
    b"import pathlib\npathlib.Path('INJECTED').write_text('ran')\n"
    b"def predict(e, f):\n    return [0.0] * len(f)\n"
)

Edit = Callable[[dict[str, bytes], dict[str, Any]], None]


def forged(package: PackageResult, tmp_path: Path, edit: Edit, *, rehash: bool = True) -> Path:
    """``package`` with ``edit`` applied to its files and manifest; ``rehash`` rewrites ``files`` to match."""
    unpacked = tmp_path / "unpacked"
    extract_tarball(package.path, unpacked)
    files = {p.relative_to(unpacked).as_posix(): p.read_bytes() for p in unpacked.rglob("*") if p.is_file()}
    manifest: dict[str, Any] = json.loads(files.pop("manifest.json"))
    edit(files, manifest)
    if rehash:
        manifest["files"] = {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(files.items())
        }
    out = tmp_path / "forged.tar.gz"
    write_tarball({**files, "manifest.json": canonical_json(manifest)}, out)
    return out


def raw_predictions(package: PackageResult, rows: list[dict[str, Any]]) -> np.ndarray:
    model = load_package(package.path)
    return np.asarray(model.pipeline.predict(model.frame(rows)[model.columns]))


def test_the_package_carries_the_services_modules_pinned_by_sha256(
    custom: PackageResult, tmp_path: Path
) -> None:
    folder = custom_root(tmp_path / "same") / "services" / "clinic"
    declared = custom.manifest["serving"]["predict"]
    expected = {
        f"code/service/{name}": hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("limits.py", "model.py", "serve.py")
    }
    assert declared == {"entry_point": "serve:predict", "files": expected}
    for name, digest in expected.items():
        assert custom.manifest["files"][name]["sha256"] == digest


def test_a_package_without_predict_carries_no_service_code(diabetes: PackageResult) -> None:
    assert "predict" not in diabetes.manifest["serving"]
    assert not [name for name in diabetes.manifest["files"] if name.startswith("code/service/")]


def test_loading_imports_the_packaged_predict_and_writes_no_bytecode(
    custom: PackageResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    model_dir = extract_package(custom.path, tmp_path / "model")
    model = load_model_dir(model_dir)
    rows = diabetes_rows(40)
    raw = raw_predictions(custom, rows)
    assert raw.min() < CLIP_LOW and raw.max() > CLIP_HIGH, "the clip must change some predictions"
    assert model.scores(model.frame(rows)) == pytest.approx(np.clip(raw, CLIP_LOW, CLIP_HIGH))
    assert not sys.dont_write_bytecode
    verify_model_dir(model_dir, expected_package_id=custom.package_id)  # no __pycache__ left behind


def test_the_isolated_server_serves_the_packaged_predict(
    custom: PackageResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    served = extract_package(custom.path, tmp_path / "model")
    (tmp_path / "logs").mkdir()
    server = ModelServerProcess(
        "clinic", custom.package_id, served, DEFAULT_SERVER_COMMAND, tmp_path / "logs"
    )
    rows = diabetes_rows(40)
    try:
        server.start()
        status, body = post(f"http://127.0.0.1:{server.port}", rows)
    finally:
        server.stop()
    assert status == 200, body
    served_values = [row["prediction"] for row in json.loads(body)["predictions"]]
    assert served_values == pytest.approx(list(np.clip(raw_predictions(custom, rows), CLIP_LOW, CLIP_HIGH)))
    assert server.output.task == "regression" and server.output.tolerance == 60


def test_a_tampered_module_is_refused_naming_it(custom: PackageResult, tmp_path: Path) -> None:
    def inject(files: dict[str, bytes], manifest: dict[str, Any]) -> None:
        # Same size, so it passes extraction's size check and meets the sha256 check.
        files[SERVE] = files[SERVE].replace(b"the ridge's", b"THE RIDGE'S")

    with pytest.raises(TamperedArtifactError, match=r"code/service/serve\.py: sha256 \w+ does not match"):
        load_package(forged(custom, tmp_path, inject, rehash=False))


def test_a_module_rehashed_in_files_but_not_in_serving_predict_is_foreign_code(
    custom: PackageResult, tmp_path: Path
) -> None:
    def inject(files: dict[str, bytes], manifest: dict[str, Any]) -> None:
        files[SERVE] = INJECTED

    with pytest.raises(ForeignServingCodeError) as caught:
        load_package(forged(custom, tmp_path, inject))
    actual = hashlib.sha256(INJECTED).hexdigest()
    declared = custom.manifest["serving"]["predict"]["files"][SERVE]
    assert (
        f"serving.predict.files.{SERVE}: sha256 {declared}, but the file's is {actual}"
        in caught.value.details
    )


def test_a_wholly_consistent_forgery_is_another_package_and_never_runs(
    custom: PackageResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def inject(files: dict[str, bytes], manifest: dict[str, Any]) -> None:
        files[SERVE] = INJECTED
        manifest["serving"]["predict"]["files"][SERVE] = hashlib.sha256(INJECTED).hexdigest()

    path = forged(custom, tmp_path, inject)
    with pytest.raises(TamperedArtifactError, match="but the package id is"):
        load_package(path, expected_package_id=custom.package_id)
    model_dir = tmp_path / "model"
    extract_tarball(path, model_dir)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    server = ModelServerProcess(
        "clinic", custom.package_id, model_dir, DEFAULT_SERVER_COMMAND, tmp_path / "logs"
    )
    with pytest.raises(FleetStartError, match="exited with code 1"):
        server.start()
    assert not (model_dir / "INJECTED").exists() and not (tmp_path / "INJECTED").exists()


@pytest.mark.parametrize(
    ("edit", "detail"),
    [
        (
            lambda files, manifest: files.update({"code/service/extra.py": b"print('hi')\n"}),
            "code/service/extra.py: not part of the platform's serving code",
        ),
        (
            lambda files, manifest: manifest["serving"].pop("predict"),
            "code/service/serve.py: not part of the platform's serving code",
        ),
        (
            lambda files, manifest: manifest["serving"]["predict"]["files"].update(
                {"code/pipelines/serving/evil.py": "0" * 64}
            ),
            "serving.predict.files: 'code/pipelines/serving/evil.py' is not a module file under code/service/ "
            "(folders and file names that Python can import, ending in .py)",
        ),
        (
            lambda files, manifest: manifest["serving"]["predict"].update(
                {"entry_point": "elsewhere:predict"}
            ),
            "serving.predict.entry_point: 'elsewhere:predict' needs code/service/elsewhere.py, which is not listed",
        ),
    ],
    ids=["undeclared-file", "undeclared-predict", "declared-outside", "entry-point-unlisted"],
)
def test_service_code_beyond_the_declared_files_is_refused(
    custom: PackageResult, tmp_path: Path, edit: Edit, detail: str
) -> None:
    with pytest.raises(ForeignServingCodeError) as caught:
        load_package(forged(custom, tmp_path, edit))
    assert detail in caught.value.details


def test_a_predict_in_the_wrong_shape_is_a_500_naming_the_entry_point(custom: PackageResult) -> None:
    from tests.unit.serving.test_tasks import serving

    model = load_package(custom.path)
    broken = type(model)(
        model.package_id, model.manifest, model.schema, model.pipeline, lambda e, f: [[1.0, 2.0]]
    )
    with serving(broken) as url:
        status, body = post(url, diabetes_rows(2))
    assert status == 500
    assert json.loads(body)["error"] == (
        "the model failed to predict: the service's predict serve:predict: returned shape (1, 2) "
        "for 2 row(s); expected (2,), one number per row"
    )

"""A package runs only the serving code the platform builds packages with, even with a consistent manifest.

Whoever builds a package writes its manifest, so a manifest that matches its files proves
nothing about the code in ``code/``. These tests alter that code and rewrite the manifest to
match, the way an attacker with a build machine would, and check every door refuses it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import ExitCode, RefusedError
from pipelines.packaging.build import PackageResult, canonical_json, serving_code
from pipelines.packaging.load import extract_package, load_package
from pipelines.packaging.tarball import extract_tarball, write_tarball
from pipelines.serving.verify import ForeignServingCodeError, platform_serving_code

MAIN = "code/pipelines/serving/__main__.py"
INJECTED = b"import pathlib\npathlib.Path('INJECTED').write_text('the injected code ran')\n"


def consistent_package(package: PackageResult, tmp_path: Path, edits: dict[str, bytes | None]) -> Path:
    """``package`` with files replaced, added or (``None``) removed, and a manifest that matches."""
    unpacked = tmp_path / "unpacked"
    extract_tarball(package.path, unpacked)
    files = {p.relative_to(unpacked).as_posix(): p.read_bytes() for p in unpacked.rglob("*") if p.is_file()}
    manifest: dict[str, Any] = json.loads(files.pop("manifest.json"))
    for name, data in edits.items():
        if data is None:
            files.pop(name)
        else:
            files[name] = data
    manifest["files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in sorted(files.items())
    }
    out = tmp_path / "forged.tar.gz"
    write_tarball({**files, "manifest.json": canonical_json(manifest)}, out)
    return out


class Untouchable:
    """A boto3 client stand-in that fails the test if registration calls it at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"registration touched AWS ({name}) before refusing the package")


def test_the_packaged_code_is_exactly_the_platforms_serving_code(package: PackageResult) -> None:
    packaged = {name for name in package.manifest["files"] if name.startswith("code/")}
    assert packaged == set(platform_serving_code()) == set(serving_code())
    assert MAIN in packaged and "code/pipelines/errors.py" in packaged


def test_a_tampered_main_with_a_consistent_manifest_is_refused_naming_the_file(
    package: PackageResult, tmp_path: Path
) -> None:
    forged = consistent_package(package, tmp_path, {MAIN: INJECTED})
    with pytest.raises(ForeignServingCodeError) as caught:
        load_package(forged)
    assert MAIN in caught.value.message
    expected = hashlib.sha256(platform_serving_code()[MAIN].read_bytes()).hexdigest()
    actual = hashlib.sha256(INJECTED).hexdigest()
    assert f"{MAIN}: sha256 {actual}, the platform's is {expected}" in caught.value.details
    assert caught.value.exit_code == ExitCode.FAILED


def test_registration_refuses_it_before_writing_anything(package: PackageResult, tmp_path: Path) -> None:
    from pipelines.registry.sagemaker import SageMakerRegistry

    forged = consistent_package(package, tmp_path, {MAIN: INJECTED})
    registry = SageMakerRegistry(
        s3=Untouchable(),
        sagemaker=Untouchable(),
        bucket="modelrail-local-artifacts",
        environment="local",
        stack="local",
        serving_image="modelrail-serving:latest",
    )
    with pytest.raises(
        RefusedError, match=r"code/pipelines/serving/__main__\.py: the package's serving code"
    ):
        registry.register("adult-income", forged, "mallory@example.com")


def test_extra_and_missing_serving_files_are_refused_all_at_once(
    package: PackageResult, tmp_path: Path
) -> None:
    forged = consistent_package(
        package,
        tmp_path,
        {"code/pipelines/serving/extra.py": b"print('hi')\n", "code/pipelines/serving/server.py": None},
    )
    with pytest.raises(ForeignServingCodeError) as caught:
        load_package(forged)
    assert "code/pipelines/serving/extra.py: not part of the platform's serving code" in caught.value.details
    assert (
        "code/pipelines/serving/server.py: missing; the platform's serving code has it"
        in caught.value.details
    )


def test_the_serving_entrypoint_refuses_it_and_the_injected_code_never_runs(
    package: PackageResult, tmp_path: Path
) -> None:
    genuine = extract_package(package.path, tmp_path / "genuine")
    model_dir = tmp_path / "model"
    extract_tarball(consistent_package(package, tmp_path, {MAIN: INJECTED}), model_dir)
    # How every model server starts: docker/serve, the latency gate and the sandbox's fleets.
    launched = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "pipelines.serving.launch",
            "--model-dir",
            str(model_dir),
            "--port",
            "0",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=genuine,
    )
    assert launched.returncode == 1
    assert f"refusing to serve {model_dir}: {model_dir / MAIN}: the package's serving code" in launched.stderr
    assert "Traceback" not in launched.stderr
    assert not (model_dir / "INJECTED").exists() and not (genuine / "INJECTED").exists()


def test_the_server_module_itself_refuses_it(package: PackageResult, tmp_path: Path) -> None:
    from pipelines.serving.__main__ import main

    model_dir = tmp_path / "model"
    extract_tarball(consistent_package(package, tmp_path, {MAIN: INJECTED}), model_dir)
    assert main(["--model-dir", str(model_dir), "--port", "0"]) == 1

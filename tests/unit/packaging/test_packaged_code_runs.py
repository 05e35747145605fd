"""The latency gate and the sandbox serve a package with the package's own code, isolated from the repository.

Before, both started ``python -m pipelines.serving`` from the controller's working directory
(the repository), so the repository's copy of the serving code ran, whatever the package held.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipelines.gates.load import drive
from pipelines.gates.policy import LatencyPolicy
from pipelines.packaging.build import PackageResult
from pipelines.packaging.load import extract_package
from pipelines.sandbox.fleet import DEFAULT_SERVER_COMMAND, FleetStartError, ModelServerProcess
from pipelines.serving.launch import isolated_command
from tests.unit.packaging.conftest import REPO
from tests.unit.packaging.test_serving_code import MAIN, consistent_package

ROW = dict(
    zip(
        ["age", "workclass", "education", "education-num", "marital-status", "occupation", "relationship",
         "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country"],
        [39, "State-gov", "Bachelors", 13, "Never-married", "Adm-clerical", "Not-in-family", "White", "Male",
         2174, 0, 40, "United-States"],
        strict=True,
    )
)  # fmt: skip

PROBE = """\
import importlib.util, json, os, sys
print("MARKER " + json.dumps({
    "main": __file__,
    "cwd": os.getcwd(),
    "path": sys.path,
    "args": sys.argv[1:],
    "importable": {name: importlib.util.find_spec(name) is not None
                   for name in ("infra", "components", "policies", "numpy")},
}))
"""


@pytest.fixture
def served_dir(package: PackageResult, tmp_path: Path) -> Path:
    """The package extracted and verified, as the gate and the sandbox get it."""
    return extract_package(package.path, tmp_path / "model")


@pytest.fixture
def fleet(
    package: PackageResult, served_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModelServerProcess]:
    # The sandbox daemon runs from the repository; so does this test, where the old command
    # let the repository's copy of pipelines/ shadow the package's.
    monkeypatch.chdir(REPO)
    (tmp_path / "logs").mkdir()
    server = ModelServerProcess(
        "adult-income",
        package.package_id,
        served_dir,
        DEFAULT_SERVER_COMMAND,
        tmp_path / "logs",
        serving_threads=3,
    )
    try:
        yield server
    finally:
        server.stop()


def test_the_isolated_command_runs_the_given_code_and_nothing_of_the_repository(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "pipelines" / "serving").mkdir(parents=True)
    (code / "pipelines" / "__init__.py").write_text("")
    (code / "pipelines" / "serving" / "__init__.py").write_text("")
    (code / "pipelines" / "serving" / "__main__.py").write_text(PROBE)
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PYTHONSTARTUP": str(REPO / "x.py")}
    ran = subprocess.run(
        isolated_command(code, ["--port", "0"]),
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
    )
    assert ran.returncode == 0, ran.stderr
    probe = json.loads(ran.stdout.split("MARKER ", 1)[1])
    assert probe["main"] == str(code / "pipelines" / "serving" / "__main__.py")
    assert probe["args"] == ["--port", "0"]
    assert probe["path"][0] == str(code)
    assert not any(Path(entry) == REPO for entry in probe["path"])
    assert probe["importable"] == {"infra": False, "components": False, "policies": False, "numpy": True}
    assert not list(code.rglob("__pycache__")), "no bytecode written into the package"


def test_the_latency_gate_measures_the_packaged_code(
    served_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    result = drive(served_dir, [ROW], LatencyPolicy(requests=10, concurrency=1, warmup_requests=1))
    assert result.errors == 0 and result.requests == 10
    assert result.served_from == str(served_dir.resolve() / "code" / "pipelines" / "serving")


def test_the_latency_gate_never_starts_foreign_serving_code(
    package: PackageResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.errors import RefusedError
    from pipelines.packaging.tarball import extract_tarball

    monkeypatch.chdir(REPO)
    forged = tmp_path / "forged"
    extract_tarball(consistent_package(package, tmp_path, {MAIN: b"raise SystemExit('injected')\n"}), forged)
    with pytest.raises(RefusedError, match="the model server did not start") as caught:
        drive(forged, [ROW], LatencyPolicy(requests=10, concurrency=1, warmup_requests=0))
    assert any("the package's serving code is not the code" in line for line in caught.value.details)


def test_a_sandbox_fleet_runs_the_packaged_code_from_the_model_dir(
    fleet: ModelServerProcess, served_dir: Path
) -> None:
    fleet.start()
    assert fleet.pid is not None
    process = psutil.Process(fleet.pid)
    code = served_dir.resolve() / "code"
    assert process.cwd() == str(served_dir.resolve())
    assert process.cmdline()[:3] == [sys.executable, "-I", "-B"] and str(code) in process.cmdline()
    assert process.environ()["MODELRAIL_SERVING_THREADS"] == "3"
    assert process.environ()["MODELRAIL_MODEL_VERSION"] == fleet.version
    log = fleet.log_path.read_text(encoding="utf-8")
    assert f"3 OpenMP/BLAS thread(s) per request; code from {code / 'pipelines' / 'serving'}" in log


def test_a_sandbox_fleet_refuses_foreign_serving_code(
    package: PackageResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.packaging.tarball import extract_tarball

    monkeypatch.chdir(REPO)
    forged = tmp_path / "forged"
    extract_tarball(consistent_package(package, tmp_path, {MAIN: b"raise SystemExit('injected')\n"}), forged)
    (tmp_path / "logs").mkdir()
    version = hashlib.sha256((forged / "manifest.json").read_bytes()).hexdigest()
    server = ModelServerProcess("adult-income", version, forged, DEFAULT_SERVER_COMMAND, tmp_path / "logs")
    with pytest.raises(FleetStartError, match=r"__main__\.py: the package's serving code"):
        server.start(timeout=30)


def test_a_sandbox_fleet_refuses_a_directory_holding_another_version(
    served_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    (tmp_path / "logs").mkdir()
    server = ModelServerProcess(
        "adult-income", "0" * 64, served_dir, DEFAULT_SERVER_COMMAND, tmp_path / "logs"
    )
    with pytest.raises(
        FleetStartError, match=r"manifest\.json: sha256 [0-9a-f]{64} but the package id is 0{64}"
    ):
        server.start(timeout=30)

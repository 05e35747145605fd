"""Gate evidence binds the data it judged by content: the sha256 of each file, not only its path.

The gates themselves are stubbed (what they conclude is not the point here): these tests look at
the subject ``run_stage`` reports and at the evidence ``qualify`` stores with the version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from pipelines.gates.checks import Check
from pipelines.gates.report import GateReport
from pipelines.gates.stage import StageInputs, run_stage
from tests.unit.promotion.fakes import V2, FakeRegistry, World, make_world

SERVICE = "adult-income"


class _Versions:
    """``RegisteredVersions`` without a registry: every version is its own full sha."""

    def __init__(self, registry: object, stack: str, service: str, scratch: Path) -> None:
        self.stack, self.service = stack, service

    def resolve(self, version: str) -> str:
        return version


def _refusal() -> Check:
    return Check("data.missing", "age", "share", 0.5, None, 0.1, False, "half of age is missing")


@pytest.fixture
def stubbed_gates(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Gates that pass without reading anything; set ``["refuse"] = True`` to fail the data gate."""
    control: dict[str, Any] = {"refuse": False, "model_gates_run": 0}

    def data_and_drift(inputs: StageInputs, policy: Any, root: Path) -> dict[str, GateReport]:
        checks = (_refusal(),) if control["refuse"] else ()
        return {"data": GateReport("data", checks), "drift": GateReport("drift", ())}

    def run_gate(gate: str, *args: Any) -> GateReport:
        control["model_gates_run"] += 1
        return GateReport(gate, ())

    monkeypatch.setattr("pipelines.gates.stage.RegisteredVersions", _Versions)
    monkeypatch.setattr("pipelines.gates.stage._data_and_drift", data_and_drift)
    monkeypatch.setattr("pipelines.gates.stage._run_gate", run_gate)
    return control


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, text in {
        "reference": "age,income\n39,<=50K\n50,>50K\n",
        "training": "age,income\n38,<=50K\n53,>50K\n",
        "holdout": "age,income\n28,<=50K\n37,>50K\n",
    }.items():
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01  # the last character before the final newline
    path.write_bytes(bytes(data))


def _stage(files: dict[str, Path]) -> GateReport:
    inputs = StageInputs(
        service=SERVICE,
        candidate=V2,
        stack="dev",
        registry=FakeRegistry(),
        reference=files["reference"],
        current=files["training"],
    )
    return run_stage("candidate", inputs, root=files["reference"].parent)


def test_the_stage_report_names_the_sha256_of_the_data_it_judged(
    stubbed_gates: dict[str, Any], files: dict[str, Path]
) -> None:
    report = _stage(files)
    subject = report.to_json()["subject"]
    assert subject["reference"] == str(files["reference"])
    assert subject["reference_sha256"] == _sha256(files["reference"])
    assert subject["current"] == str(files["training"])
    assert subject["current_sha256"] == _sha256(files["training"])


def test_one_changed_byte_changes_the_sha256_and_the_evidence_digest(
    stubbed_gates: dict[str, Any], files: dict[str, Path]
) -> None:
    before = _stage(files)
    _flip_one_byte(files["training"])
    after = _stage(files)
    assert after.subject["current_sha256"] != before.subject["current_sha256"]
    assert after.subject["current_sha256"] == _sha256(files["training"])
    assert after.subject["reference_sha256"] == before.subject["reference_sha256"]
    assert after.subject["current"] == before.subject["current"], "same path, other bytes"
    assert after.digest() != before.digest(), "an approval of the old data does not cover the new"


@pytest.fixture
def world(tmp_path: Path, repo: Path) -> World:
    return make_world(tmp_path, repo, stack="dev")


def _qualify(world: World, files: dict[str, Path]) -> tuple[bool, GateReport]:
    from pipelines.promotion.qualify import qualify

    return qualify(
        world.controller,
        service=SERVICE,
        version=V2[:12],
        stage="candidate",
        reference=files["reference"],
        holdout=files["holdout"],
        baseline=None,
        actor="ci@example.com",
        training=files["training"],
    )


def test_the_stored_evidence_carries_the_sha256_of_every_data_file(
    stubbed_gates: dict[str, Any], files: dict[str, Path], world: World
) -> None:
    passed, report = _qualify(world, files)
    assert passed and stubbed_gates["model_gates_run"] == 3
    evidence = world.controller.evidence.load(SERVICE, V2, "candidate")
    assert evidence is not None and evidence.digest == report.digest()
    subject = evidence.report["subject"]
    for name in ("reference", "training", "holdout"):
        assert subject[name] == str(files[name])
        assert subject[f"{name}_sha256"] == _sha256(files[name]), name
    [entry] = [e for e in world.controller.audit.entries() if e["action"] == "gates:passed"]
    assert entry["evidence"] == evidence.digest, "the audit entry binds the evidence, hashes and all"


def test_the_holdout_no_gate_read_is_still_bound_by_its_sha256(
    stubbed_gates: dict[str, Any], files: dict[str, Path], world: World
) -> None:
    stubbed_gates["refuse"] = True
    passed, report = _qualify(world, files)
    assert not passed and stubbed_gates["model_gates_run"] == 0
    assert report.subject["training_sha256"] == _sha256(files["training"])
    assert report.subject["holdout_sha256"] == _sha256(files["holdout"])

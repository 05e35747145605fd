"""The changelog shows the data a version was trained on and the data its gates judged, by sha256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

SERVICE = "adult-income"
V1 = "a1" * 32
V2 = "b2" * 32


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(path))
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> str:
    """The sha256 of a data snapshot's bytes, as the manifest records it."""
    snapshot = tmp_path / "adult.data"
    snapshot.write_bytes(b"39, State-gov, 77516, Bachelors, 13, <=50K\n")
    return hashlib.sha256(snapshot.read_bytes()).hexdigest()


def _manifest(dataset_sha256: str) -> dict[str, Any]:
    return {
        "service": SERVICE,
        "dataset": {"uri": "data/adult/adult.data", "sha256": dataset_sha256},
        "code": {"git_sha": "0" * 40},
        "parameters": {"seed": 0},
        "seed": 0,
        "environment": {"python": {"version": "3.12"}, "packages": {}},
        "metrics": {},
        "features": ["age"],
    }


def _audit(state: Path) -> Any:
    from pipelines.promotion.audit import AuditLog

    return AuditLog(state / "audit", "dev")


def _register(state: Path, version: str, dataset_sha256: str) -> None:
    _audit(state).append(
        "register",
        actor="rita@example.com",
        service=SERVICE,
        stack="dev",
        version=version,
        dataset=dataset_sha256,
        git_sha="0" * 40,
    )


def _gates(state: Path, version: str, judged: dict[str, str]) -> str:
    """Candidate evidence whose subject names ``judged`` sha256s, and its ``gates:passed`` entry."""
    from pipelines.promotion.evidence import EvidenceStore

    subject: dict[str, Any] = {"stage": "candidate", "service": SERVICE, "candidate": version}
    for name, sha in judged.items():
        subject[name] = f"/data/{name}.csv"
        subject[f"{name}_sha256"] = sha
    report = {"gate": "stage:candidate", "passed": True, "subject": subject, "checks": []}
    evidence = EvidenceStore(state / "evidence").save(
        SERVICE, version, "candidate", True, "all checks passed", report
    )
    _audit(state).append(
        "gates:passed",
        actor="ci@example.com",
        service=SERVICE,
        stack="dev",
        version=version,
        stage="candidate",
        evidence=evidence.digest,
        reason="",
    )
    return evidence.digest


def _changelog() -> str:
    from pipelines.promotion.records import changelog_markdown

    return changelog_markdown(SERVICE)


def test_the_changelog_shows_the_catalogs_dataset_sha256(state: Path, dataset: str) -> None:
    from pipelines.lineage.record import open_catalog

    open_catalog().record_model(V2, _manifest(dataset), "training-run")
    _register(state, V2, dataset)
    text = _changelog()
    assert f"`{V2[:12]}` · registered (experimental)" in text
    assert f"data: sha256 `{dataset}`" in text


def test_the_catalog_is_what_the_changelog_believes(state: Path, dataset: str) -> None:
    from pipelines.lineage.record import open_catalog

    open_catalog().record_model(V2, _manifest(dataset), "training-run")
    _register(state, V2, "f" * 64)  # an entry that disagrees loses to the catalog
    text = _changelog()
    assert dataset in text and "f" * 64 not in text


def test_a_version_the_catalog_does_not_know_shows_the_dataset_its_registration_recorded(
    state: Path, dataset: str
) -> None:
    _register(state, V1, dataset)
    assert f"data: sha256 `{dataset}`" in _changelog()


def test_the_changelog_shows_the_sha256s_of_the_data_the_gates_judged(state: Path, dataset: str) -> None:
    from pipelines.lineage.record import open_catalog

    judged = {"reference": "1" * 64, "training": dataset, "holdout": "3" * 64}
    open_catalog().record_model(V2, _manifest(dataset), "training-run")
    _register(state, V2, dataset)
    _gates(state, V2, judged)
    text = _changelog()
    line = next(line for line in text.splitlines() if "gates judged" in line)
    assert line == (
        f"  - gates judged (sha256): reference `{'1' * 64}`, training `{dataset}`, holdout `{'3' * 64}`"
    )


def test_evidence_replaced_after_the_entry_is_not_shown_as_what_that_entry_judged(
    state: Path, dataset: str
) -> None:
    first = _gates(state, V2, {"reference": "1" * 64, "training": dataset})
    second = _gates(state, V2, {"reference": "4" * 64, "training": dataset})
    assert first != second
    text = _changelog()
    assert text.count("gates judged") == 1, "only the entry whose evidence is still stored"
    assert "4" * 64 in text and "1" * 64 not in text


def test_changelog_json_carries_the_real_dataset_sha256(
    state: Path, dataset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.cli import main
    from pipelines.lineage.record import open_catalog

    open_catalog().record_model(V2, _manifest(dataset), "training-run")
    _register(state, V2, dataset)
    code = main(["changelog", "--service", SERVICE, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert dataset in json.loads(out)["markdown"]

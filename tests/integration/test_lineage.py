"""The lineage catalog's queries, and the OpenLineage events a registration emits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.errors import BadInputError, RefusedError
from pipelines.lineage import Catalog, parse_timestamp
from pipelines.lineage.runs import RunEmitter, training_run_id
from pipelines.packaging.build import PackageResult

pytestmark = pytest.mark.integration

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog(tmp_path: Path, package: PackageResult) -> Catalog:
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.record_model(package.package_id, package.manifest, training_run_id(package.manifest))
    catalog.record_event(
        "register", "adult-income", package.package_id, "local", "alice", {}, run_id="r1", at=T0
    )
    return catalog


def test_a_model_answers_with_its_dataset_code_parameters_environment_and_parent_runs(
    catalog: Catalog, package: PackageResult
) -> None:
    found = catalog.model(package.package_id[:10])
    assert found["version"] == package.package_id
    assert found["dataset"] == package.manifest["dataset"]
    assert found["code"] == {"git_sha": "2" * 40}
    assert found["parameters"]["sample_rows"] == 1500
    assert found["seed"] == 11
    assert found["environment"]["packages"]["skops"]
    assert [run["kind"] for run in found["parent_runs"]] == ["training", "register"]
    assert found["parent_runs"][0]["run_id"] == training_run_id(package.manifest)


def test_datasets_and_features_find_their_models(
    catalog: Catalog, package: PackageResult, other_package: PackageResult
) -> None:
    catalog.record_model(
        other_package.package_id, other_package.manifest, training_run_id(other_package.manifest)
    )
    fingerprint = package.manifest["dataset"]["sha256"]
    assert {m["version"] for m in catalog.models_for_dataset(fingerprint[:12])} == {
        package.package_id,
        other_package.package_id,
    }
    assert catalog.models_for_dataset("0" * 64) == []
    assert len(catalog.models_for_feature("hours-per-week")) == 2
    assert catalog.models_for_feature("fnlwgt") == []
    with pytest.raises(BadInputError, match="at least 8"):
        catalog.models_for_dataset("df25")


def test_production_at_follows_promotions_and_rollbacks(catalog: Catalog, package: PackageResult) -> None:
    old, new = package.package_id, "b" * 64
    catalog.record_event("promotion", "adult-income", old, "local", "bob", {"stage": "production"}, run_id="p1",
                         at=T0 + timedelta(hours=1))  # fmt: skip
    catalog.record_event("promotion", "adult-income", new, "local", "bob", {"stage": "candidate"}, run_id="p2",
                         at=T0 + timedelta(hours=2))  # fmt: skip
    catalog.record_event("promotion", "adult-income", new, "local", "bob", {"stage": "production"}, run_id="p3",
                         at=T0 + timedelta(hours=3))  # fmt: skip
    catalog.record_event("rollback", "adult-income", old, "local", "controller", {}, run_id="p4",
                         at=T0 + timedelta(hours=4))  # fmt: skip

    def serving(hours: float, stack: str = "local") -> str | None:
        answer = catalog.production_at("adult-income", stack, T0 + timedelta(hours=hours))
        return answer["version"]  # type: ignore[no-any-return]

    assert serving(0.5) is None
    assert serving(1) == old
    assert serving(2.5) == old
    assert serving(3.5) == new
    assert serving(5) == old
    assert serving(5, stack="prod") is None


def test_unknown_versions_kinds_and_timestamps_are_refused(catalog: Catalog) -> None:
    with pytest.raises(RefusedError, match="no model ffffffff"):
        catalog.model("ffffffff")
    with pytest.raises(BadInputError, match="allowed: register, gate, approval, promotion, rollback"):
        catalog.record_event("deploy", "adult-income", "x", "local", "bob", run_id="r")
    with pytest.raises(BadInputError, match="not an ISO 8601 timestamp"):
        parse_timestamp("yesterday")
    assert parse_timestamp("2025-06-01T12:00:00Z") == T0


def test_a_registration_emits_openlineage_runs_linked_by_the_parent_facet(
    tmp_path: Path, package: PackageResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    monkeypatch.delenv("OPENLINEAGE_CONFIG", raising=False)
    emitter = RunEmitter(tmp_path)
    emitter.registration(
        manifest=package.manifest,
        package_sha=package.package_id,
        stack="local",
        artifact_uri=f"s3://bucket/models/adult-income/{package.package_id}/model.tar.gz",
        run_id="01900000-0000-7000-8000-000000000001",
    )
    events = [
        json.loads(line) for line in (tmp_path / "openlineage" / "events.jsonl").read_text().splitlines()
    ]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("adult-income.train", "COMPLETE"),
        ("adult-income.register", "START"),
        ("adult-income.register", "COMPLETE"),
    ]
    training = events[0]
    assert (
        training["inputs"][0]["facets"]["version"]["datasetVersion"] == package.manifest["dataset"]["sha256"]
    )
    assert training["outputs"][0]["facets"]["version"]["datasetVersion"] == package.package_id
    assert events[2]["run"]["facets"]["parent"]["run"]["runId"] == training["run"]["runId"]

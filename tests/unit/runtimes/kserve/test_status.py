"""InferenceService status documents, from KServe's docs and controller, read as the controller needs.

Fixtures: ``tests/fixtures/kserve/status`` (its README cites the KServe docs page, commit and
controller code each one comes from).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from infra.naming import MODEL_VERSION_ANNOTATION, version_config_name
from pipelines.runtimes.kserve.status import (
    CANARY,
    CANARY_ABORTED,
    FAILED,
    IN_SERVICE,
    NOT_FOUND,
    UNVERSIONED,
    UPDATING,
    RevisionStatus,
    endpoint_state,
)
from tests.unit.runtimes.kserve.conftest import STATUS_FIXTURES, status_document

SERVICE = "sklearn-iris"
V2 = "bc2214f33e738ba98d0592c77f5ed4930cca46a1226a31c5b5eeb5f415e64994"
"""The annotation of the fixtures' second model (``model-2`` in KServe's example)."""
REVISION = "sklearn-iris-predictor-default-{:05d}".format


def test_a_revision_is_checked_against_the_sandbox_endpoints_configuration_name() -> None:
    assert version_config_name(SERVICE, V2) == f"{SERVICE}-{V2[:12]}"


def test_a_promoted_revision_with_all_the_traffic_is_in_service_on_its_versions_config() -> None:
    state = endpoint_state(SERVICE, status_document("ready"))
    assert (state.status, state.config_name, state.failure_reason) == (
        IN_SERVICE,
        version_config_name(SERVICE, V2),
        "",
    )


def test_a_canary_split_is_settled_but_not_in_service_and_says_the_split() -> None:
    state = endpoint_state(SERVICE, status_document("canary"))
    assert state.status == CANARY
    assert state.config_name == version_config_name(SERVICE, V2)
    assert state.failure_reason == (
        f"the latest revision {REVISION(3)} carries 10% ({REVISION(1)} 90%, {REVISION(3)} 10%)"
    )


def test_canary_traffic_percent_zero_pins_the_previous_revision_and_is_an_aborted_canary() -> None:
    state = endpoint_state(SERVICE, status_document("canary-aborted"))
    assert (state.status, state.config_name) == (CANARY_ABORTED, "")
    assert f"{REVISION(2)} carries 0%" in state.failure_reason
    assert f"{REVISION(1)} 100%" in state.failure_reason


def test_a_failed_new_revision_is_failed_with_kserves_reason_and_message() -> None:
    state = endpoint_state(SERVICE, status_document("new-revision-failed"))
    assert state.status == FAILED
    assert state.failure_reason.startswith(f'RevisionFailed: Revision "{REVISION(2)}" failed with message:')


def test_a_spec_kserve_has_not_observed_is_updating_whatever_the_old_status_says() -> None:
    document = status_document("not-observed")
    assert document["status"]["conditions"] == status_document("ready")["status"]["conditions"]
    state = endpoint_state(SERVICE, document)
    assert state.status == UPDATING
    assert (
        state.failure_reason
        == "KServe has not observed generation 4 of the InferenceService yet (observed: 3)"
    )


def test_a_revision_whose_pods_are_starting_is_updating() -> None:
    state = endpoint_state(SERVICE, status_document("first-revision-starting"))
    assert state.status == UPDATING
    assert "is not ready (latest ready: none; RevisionMissing: Configuration" in state.failure_reason


def test_no_document_is_not_found() -> None:
    assert endpoint_state(SERVICE, None).status == NOT_FOUND


def test_a_ready_revision_that_is_newer_than_the_ready_condition_is_still_updating() -> None:
    document = status_document("ready")
    for condition in document["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition.update(status="Unknown", reason="IngressNotConfigured")
    assert endpoint_state(SERVICE, document).status == UPDATING


def test_all_traffic_on_a_revision_kserve_has_not_recorded_as_rolled_out_is_still_updating() -> None:
    document = status_document("ready")
    document["status"]["components"]["predictor"]["latestRolledoutRevision"] = REVISION(1)
    assert endpoint_state(SERVICE, document).status == UPDATING


def test_an_inference_service_without_the_version_annotation_is_unversioned() -> None:
    document = status_document("ready")
    del document["metadata"]["annotations"][MODEL_VERSION_ANNOTATION]
    state = endpoint_state(SERVICE, document)
    assert (state.status, state.config_name) == (UNVERSIONED, "")
    assert MODEL_VERSION_ANNOTATION in state.failure_reason


def test_traffic_targets_naming_one_revision_are_summed() -> None:
    """Knative routes ``latestRevision: true`` to the last ready revision: both targets of a failed
    canary name the old one."""
    status = RevisionStatus.of(status_document("new-revision-failed"))
    assert status.traffic == {REVISION(1): 100}
    assert status.latest_percent == 0


def test_the_revision_fields_come_from_the_predictors_component_status() -> None:
    status = RevisionStatus.of(status_document("canary"))
    assert (
        status.latest_created,
        status.latest_ready,
        status.latest_rolled_out,
        status.previous_rolled_out,
    ) == (
        REVISION(3),
        REVISION(3),
        REVISION(1),
        REVISION(1),
    )
    assert (status.observed, status.version, status.ready.status) == (True, V2, "True")


@pytest.mark.parametrize(
    ("fixture", "percent", "failure"),
    [
        ("canary", 10, ""),
        ("canary", 20, f"carries 10%, not 20% ({REVISION(1)} 90%, {REVISION(3)} 10%)"),
        ("canary", None, "carries 10%, not 100%"),
        ("ready", None, ""),
        ("ready", 10, "carries 100%, not 10%"),
        ("canary-aborted", 0, ""),
        ("canary-aborted", 10, "carries 0%, not 10%"),
        (
            "new-revision-failed",
            10,
            f"the latest revision {REVISION(2)} is not ready (latest ready: {REVISION(1)}",
        ),
        ("not-observed", None, "has not observed generation 4"),
        ("first-revision-starting", None, "is not ready"),
    ],
)
def test_a_rollout_step_is_done_only_when_the_latest_revision_is_ready_with_exactly_its_share(
    fixture: str, percent: int | None, failure: str
) -> None:
    found = RevisionStatus.of(status_document(fixture)).step_failure(percent)
    assert (found == "") if not failure else (failure in found), found


def test_the_full_step_needs_the_latest_revision_rolled_out_not_only_at_100_percent() -> None:
    document = status_document("ready")
    document["status"]["components"]["predictor"]["latestRolledoutRevision"] = REVISION(1)
    assert RevisionStatus.of(document).step_failure(None) == (
        f"the latest revision {REVISION(2)} is not the rolled-out one ({REVISION(1)})"
    )


def test_a_new_inference_service_with_no_status_yet_is_updating() -> None:
    document = copy.deepcopy(status_document("ready"))
    del document["status"]
    assert endpoint_state(SERVICE, document).status == UPDATING


@pytest.fixture(scope="module")
def status_validator() -> Any:
    """The CRD's ``status`` schema with unknown fields refused."""
    from tests.kserve_schema import validator

    return validator("properties", "status")


@pytest.mark.parametrize("path", sorted(STATUS_FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_every_status_fixture_has_the_shape_of_kserves_crd(path: Path, status_validator: Any) -> None:
    """The status block is what the CRD's schema allows, unknown fields refused."""
    document = json.loads(path.read_text(encoding="utf-8"))
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in status_validator.iter_errors(document["status"])
    ]
    assert errors == []


def test_the_crd_check_refuses_a_field_kserve_does_not_have(status_validator: Any) -> None:
    status = status_document("canary")["status"]
    status["components"]["predictor"]["rolledOutRevision"] = REVISION(1)
    assert [error.message for error in status_validator.iter_errors(status)] != []

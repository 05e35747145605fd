"""The sandbox's KServe state machine, one transition at a time, without processes.

The document's shape follows KServe's ``InferenceServiceStatus`` (``pkg/apis/serving/v1beta1/
inference_service_status.go``: ``components.predictor`` with ``latestCreatedRevision``,
``latestReadyRevision``, ``latestRolledoutRevision``, ``previousRolledoutRevision`` and Knative
``traffic`` targets) and the canary split of its rollout docs (``tag: latest`` / ``tag: prev``).
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.naming import MODEL_VERSION_ANNOTATION
from pipelines.sandbox.endpoint import DeploymentInProgressError
from pipelines.sandbox.revisions import (
    ABORT_ANNOTATION,
    InferenceServiceState,
    settled,
)

V1, V2, V3 = "1" * 64, "2" * 64, "3" * 64
R1, R2, R3 = (f"local-svc-predictor-0000{n}" for n in (1, 2, 3))


def fresh() -> InferenceServiceState:
    return InferenceServiceState(
        name="local-svc", service="svc", namespace="modelrail", url="http://127.0.0.1:9/endpoints/svc",
        environment="local",
    )  # fmt: skip


def started(state: InferenceServiceState, version: str, percent: int | None) -> str:
    """Apply a spec that needs a new revision and report it ready; its name."""
    revision = state.apply(version, f"/models/{version[:4]}", percent)
    assert revision is not None
    state.ready(revision.name)
    return revision.name


def serving_v1() -> InferenceServiceState:
    state = fresh()
    started(state, V1, None)
    return state


def predictor(state: InferenceServiceState) -> dict[str, Any]:
    component: dict[str, Any] = state.document()["status"]["components"]["predictor"]
    return component


def split(state: InferenceServiceState) -> dict[str, int]:
    return {target["revisionName"]: target["percent"] for target in predictor(state)["traffic"]}


def condition(state: InferenceServiceState, kind: str) -> dict[str, Any]:
    return next(c for c in state.document()["status"]["conditions"] if c["type"] == kind)


def test_the_first_revision_takes_all_traffic_and_is_rolled_out() -> None:
    state = serving_v1()
    assert predictor(state) == {
        "latestCreatedRevision": R1,
        "latestReadyRevision": R1,
        "latestRolledoutRevision": R1,
        "traffic": [{"revisionName": R1, "percent": 100, "latestRevision": True}],
        "url": state.url,
    }
    assert state.roles() == {V1: "baseline"}


def test_a_canary_percent_splits_between_the_latest_and_the_rolled_out_revision() -> None:
    state = serving_v1()
    started(state, V2, 50)
    assert predictor(state)["traffic"] == [
        {"revisionName": R2, "percent": 50, "latestRevision": True, "tag": "latest"},
        {"revisionName": R1, "percent": 50, "latestRevision": False, "tag": "prev"},
    ]
    assert predictor(state)["latestRolledoutRevision"] == R1
    assert state.roles() == {V1: "baseline", V2: "canary"}
    assert state.document()["spec"]["predictor"]["canaryTrafficPercent"] == 50


def test_a_starting_revision_takes_no_traffic_and_the_spec_is_not_yet_observed() -> None:
    state = serving_v1()
    assert state.apply(V2, "/models/2", 50) is not None
    document = state.document()
    assert split(state) == {R1: 100}
    assert (document["metadata"]["generation"], document["status"]["observedGeneration"]) == (2, 1)
    assert not settled(document)
    assert condition(state, "Ready")["status"] == "Unknown"
    assert predictor(state)["latestCreatedRevision"] == R2 and predictor(state)["latestReadyRevision"] == R1
    with pytest.raises(DeploymentInProgressError, match="still starting revision local-svc-predictor-00002"):
        state.apply(V3, "/models/3", None)


def test_the_same_version_with_another_share_only_resplits() -> None:
    state = serving_v1()
    started(state, V2, 10)
    assert state.apply(V2, "/models/2", 40) is None
    assert split(state) == {R2: 40, R1: 60}
    assert settled(state.document()) and state.generation == 3
    assert len(state.revisions) == 2


def test_the_same_spec_again_is_no_new_generation() -> None:
    state = serving_v1()
    assert state.apply(V1, "/elsewhere", None) is None
    assert (state.generation, state.observed_generation) == (1, 1)


def test_no_canary_percent_promotes_the_latest_and_remembers_the_previous_rollout() -> None:
    state = serving_v1()
    started(state, V2, 50)
    assert state.apply(V2, "/models/2", None) is None
    assert split(state) == {R2: 100}
    assert predictor(state)["latestRolledoutRevision"] == R2
    assert predictor(state)["previousRolledoutRevision"] == R1
    assert state.serving() == {R2}, "the old revision leaves the traffic and can scale down"
    assert state.roles() == {V2: "baseline"}
    assert "canaryTrafficPercent" not in state.document()["spec"]["predictor"]


def test_abort_takes_the_canary_share_to_zero_at_once() -> None:
    state = serving_v1()
    started(state, V2, 50)
    assert state.abort("canary p99 412 ms > 250 ms")
    document = state.document()
    assert split(state) == {R2: 0, R1: 100}
    assert document["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert document["metadata"]["annotations"][ABORT_ANNOTATION] == "canary p99 412 ms > 250 ms"
    assert document["metadata"]["generation"] == document["status"]["observedGeneration"] == 3
    assert state.roles() == {V1: "baseline", V2: "canary"}, "the 0% canary still runs, as in KServe"
    assert not state.abort("again"), "aborting twice changes nothing"
    assert state.generation == 3


def test_abort_without_a_canary_changes_nothing() -> None:
    state = serving_v1()
    assert not state.abort("nothing to abort")
    assert state.generation == 1 and split(state) == {R1: 100}


def test_after_an_abort_the_stack_can_roll_the_canary_out_or_back() -> None:
    forward = serving_v1()
    started(forward, V2, 50)
    forward.abort("breach")
    assert forward.apply(V2, "/models/2", None) is None, "same version: the split changes, no new revision"
    assert (
        split(forward) == {R2: 100} and ABORT_ANNOTATION not in forward.document()["metadata"]["annotations"]
    )

    back = serving_v1()
    started(back, V2, 50)
    back.abort("breach")
    name = started(back, V1, None)  # the previous storageUri: a new revision, as Knative makes one
    assert name == R3 and split(back) == {R3: 100}
    assert back.roles() == {V1: "baseline"}


def test_a_failed_revision_leaves_traffic_and_the_service_not_ready() -> None:
    state = serving_v1()
    revision = state.apply(V2, "/models/2", 50)
    assert revision is not None
    state.failed(revision.name, "model server for 222222222222 exited with code 1")
    document = state.document()
    assert split(state) == {R1: 100}
    assert settled(document)
    ready = condition(state, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RevisionFailed")
    assert R2 in ready["message"] and "exited with code 1" in ready["message"]
    assert condition(state, "PredictorReady")["status"] == "False"
    assert predictor(state)["latestCreatedRevision"] == R2
    assert predictor(state)["latestReadyRevision"] == predictor(state)["latestRolledoutRevision"] == R1
    assert state.roles() == {V1: "baseline"}
    assert state.apply(V2, "/models/2", 50) is None, "the same spec again is no change"
    assert state.apply(V2, "/models/2", 20) is not None, "another spec starts a fresh revision"


def test_a_revision_started_during_an_abort_comes_up_at_zero() -> None:
    state = serving_v1()
    revision = state.apply(V2, "/models/2", 50)
    assert revision is not None and state.abort("breach while starting")
    assert not settled(state.document())
    state.ready(revision.name)
    assert split(state) == {R2: 0, R1: 100} and settled(state.document())


def test_a_canary_percent_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"canaryTrafficPercent = 101; allowed: 0..100 or none"):
        fresh().apply(V1, "/models/1", 101)


def test_the_document_is_shaped_like_kserves() -> None:
    state = serving_v1()
    started(state, V2, 10)
    document = state.document()
    assert (document["apiVersion"], document["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert set(document) == {"apiVersion", "kind", "metadata", "spec", "status"}
    metadata = document["metadata"]
    assert (metadata["name"], metadata["namespace"], metadata["generation"]) == ("local-svc", "modelrail", 2)
    assert metadata["annotations"] == {MODEL_VERSION_ANNOTATION: V2}
    assert metadata["labels"] == {"modelrail.io/service": "svc", "modelrail.io/environment": "local"}
    container = document["spec"]["predictor"]["containers"][0]
    assert container["name"] == "kserve-container"
    assert {"name": "MODELRAIL_MODEL_VERSION", "value": V2} in container["env"]
    status = document["status"]
    assert set(status) == {"observedGeneration", "url", "conditions", "components"}
    assert [c["type"] for c in status["conditions"]] == ["PredictorReady", "Ready"]
    assert set(status["components"]) == {"predictor"}
    allowed = {"latestCreatedRevision", "latestReadyRevision", "latestRolledoutRevision",
               "previousRolledoutRevision", "traffic", "url"}  # fmt: skip
    assert set(status["components"]["predictor"]) <= allowed
    assert all(
        set(target) <= {"revisionName", "percent", "latestRevision", "tag"}
        for target in status["components"]["predictor"]["traffic"]
    )


def test_every_document_of_a_rollout_validates_against_kserves_crd() -> None:
    from tests.kserve_schema import errors, validator

    check = validator()
    state = serving_v1()
    documents = [state.document()]
    revision = state.apply(V2, "/models/2", 30)
    assert revision is not None
    documents.append(state.document())  # starting
    state.ready(revision.name)
    documents.append(state.document())  # split
    state.abort("breach")
    documents.append(state.document())  # aborted
    failing = state.apply(V3, "/models/3", 30)
    assert failing is not None
    state.failed(failing.name, "never answered /ping")
    documents.append(state.document())  # failed
    for document in documents:
        assert errors(check, document) == []


def test_a_first_revision_applied_with_a_canary_percent_takes_all_traffic_and_cannot_be_aborted() -> None:
    state = fresh()
    revision = state.apply(V1, "/models/1", 10)
    assert revision is not None
    assert not state.abort("breach while the first revision starts"), "there is nothing to go back to"
    assert state.generation == 1 and ABORT_ANNOTATION not in state.document()["metadata"]["annotations"]
    state.ready(revision.name)
    assert split(state) == {R1: 100}, "KServe gives a first revision 100% whatever canaryTrafficPercent says"
    assert predictor(state)["latestRolledoutRevision"] == R1 and state.roles() == {V1: "baseline"}
    assert state.document()["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert not state.abort("breach"), "the latest revision is the rolled-out one"


def test_abort_while_a_newer_revision_starts_takes_the_canary_in_traffic_to_zero_at_once() -> None:
    state = serving_v1()
    started(state, V2, 50)
    starting = state.apply(V3, "/models/3", 50)
    assert starting is not None and split(state) == {R2: 50, R1: 50}, "the older canary still takes traffic"
    assert state.abort("canary 5xx rate 0.2 > 0.01")
    assert split(state) == {R2: 0, R1: 100}
    assert not settled(state.document()), "the starting revision is not observed yet"
    state.failed(starting.name, "never answered /ping")
    assert split(state) == {R2: 0, R1: 100} and settled(state.document())


def test_abort_after_the_latest_revision_failed_takes_the_canary_in_traffic_to_zero() -> None:
    state = serving_v1()
    started(state, V2, 50)
    failing = state.apply(V3, "/models/3", 50)
    assert failing is not None
    state.failed(failing.name, "exited with code 1")
    assert split(state) == {R2: 50, R1: 50}
    assert state.abort("breach")
    assert split(state) == {R2: 0, R1: 100} and settled(state.document())
    assert predictor(state)["latestRolledoutRevision"] == R1


def test_the_summary_lists_every_revision_the_split_and_readiness() -> None:
    state = serving_v1()
    started(state, V2, 30)
    failing = state.apply(V3, "/models/3", 30)
    assert failing is not None
    state.failed(failing.name, "exited with code 1")
    assert state.summary() == {
        "service": "svc",
        "name": "local-svc",
        "namespace": "modelrail",
        "url": "http://127.0.0.1:9/endpoints/svc",
        "ready": "False",
        "reason": f'Revision "{R3}" failed with message: exited with code 1.',
        "generation": 3,
        "observed_generation": 3,
        "revisions": [
            {"name": R1, "version": V1, "phase": "ready", "message": None},
            {"name": R2, "version": V2, "phase": "ready", "message": None},
            {"name": R3, "version": V3, "phase": "failed", "message": "exited with code 1"},
        ],
        "traffic": {R2: 30, R1: 70},
        "rolled_out": R1,
    }

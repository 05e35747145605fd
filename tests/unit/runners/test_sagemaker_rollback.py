"""The real adapters together: the controller decides by what the endpoint runs, not by `pulumi up`.

The stack update goes through the Automation API to a stand-in ``pulumi``; DescribeEndpoint (and
DescribeEndpointConfig/DescribeModel, which say what version a configuration serves) are
stubbed with botocore's Stubber. An update SageMaker silently undid is caught and reverted; an
update that timed out (the provider waits 60 minutes) while the rollout went on is recorded once
the endpoint runs it, and one whose outputs still name the old configuration is not believed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.stub import Stubber

from pipelines.errors import RolledBackError
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.journal import Journal, Step, unfinished
from pipelines.promotion.stackfile import pinned_version, write_pin
from tests.unit.promotion.fakes import V1, V2
from tests.unit.runners.sagemaker_world import (
    CONFIG_NEW,
    CONFIG_OLD,
    SERVICE,
    controller,
    expect_config_lookup,
    expect_describe,
    expect_no_shadow,
    expect_restored,
    pulumi_calls,
    sagemaker_client,
)


def test_an_update_sagemaker_rolled_back_is_failed_and_the_stack_file_reverted(
    project: Path, tmp_path: Path
) -> None:
    sagemaker = sagemaker_client()
    stubber = Stubber(sagemaker)
    expect_describe(stubber, CONFIG_OLD)  # the instance count, before the pin
    expect_describe(stubber, CONFIG_NEW, "RollingBack")
    expect_describe(stubber, CONFIG_OLD, reason="Alarm modelrail-dev-adult-income-5xx-rate in ALARM")
    expect_restored(stubber, CONFIG_OLD)  # it serves V1, mirrors nothing: nothing to deploy again
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    with stubber, pytest.raises(RolledBackError, match=f"InService on {CONFIG_OLD}") as caught:
        controller(project, tmp_path / "state", sagemaker).promote(SERVICE, V2, "carol@example.com")
    assert "5xx-rate in ALARM" in caught.value.message
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before
    assert pinned_version(project / "stacks" / "Pulumi.dev.yaml", SERVICE) == V1
    calls = pulumi_calls(tmp_path / "calls.jsonl")
    assert calls.count("up") == 1 and calls.index("refresh") > calls.index("up"), "refreshed after the revert"
    (entry,) = AuditLog(tmp_path / "state" / "audit", "dev").entries()
    assert entry["action"] == "promote:failed"
    stubber.assert_no_pending_responses()


def test_an_update_that_holds_is_verified_against_the_new_configuration(
    project: Path, tmp_path: Path
) -> None:
    sagemaker = sagemaker_client()
    stubber = Stubber(sagemaker)
    expect_describe(stubber, CONFIG_OLD)
    expect_describe(stubber, CONFIG_NEW)
    with stubber:
        outcome = controller(project, tmp_path / "state", sagemaker).promote(SERVICE, V2, "carol@example.com")
    assert outcome.outcome == "promoted"
    assert outcome.endpoint is not None and outcome.endpoint.config_name == CONFIG_NEW
    assert pinned_version(project / "stacks" / "Pulumi.dev.yaml", SERVICE) == V2
    stubber.assert_no_pending_responses()


def test_a_rollout_that_outlives_the_timed_out_update_is_recorded_once_it_runs_not_reverted(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PULUMI_SCENARIO", "up-times-out-once")
    sagemaker = sagemaker_client()
    stubber = Stubber(sagemaker)
    expect_describe(stubber, CONFIG_OLD)
    expect_describe(stubber, CONFIG_NEW, "Updating")  # `up` gave up; SageMaker still deploys
    expect_describe(stubber, CONFIG_NEW, "Updating")
    expect_describe(stubber, CONFIG_NEW)  # done: InService on the new configuration
    expect_config_lookup(stubber, CONFIG_NEW)  # its Model serves V2
    expect_describe(stubber, CONFIG_NEW)  # after the update that records it in the stack
    with stubber:
        outcome = controller(project, tmp_path / "state", sagemaker).promote(SERVICE, V2, "carol@example.com")
    stubber.assert_no_pending_responses()

    assert outcome.outcome == "promoted"
    assert "timeout while waiting for state to become 'InService'" in outcome.reason
    assert f"the endpoint runs {V2[:12]} InService" in outcome.reason
    assert pinned_version(project / "stacks" / "Pulumi.dev.yaml", SERVICE) == V2
    calls = pulumi_calls(tmp_path / "calls.jsonl")
    assert [call for call in calls if call in ("up", "refresh")] == ["up", "refresh", "up"], (
        "a refresh and a second update bring the stack's state and outputs in line; nothing reverted"
    )
    (entry,) = AuditLog(tmp_path / "state" / "audit", "dev").entries()
    assert entry["action"] == "promote:promoted"


def test_a_timed_out_update_whose_outputs_still_name_the_old_configuration_is_judged_by_the_endpoint(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pulumi keeps the outputs of the last successful update when one fails: they name the OLD
    # configuration, which the endpoint is back on after SageMaker rolled the deployment back.
    # Compared with those outputs, the rollback would look like a promotion that held.
    monkeypatch.setenv("FAKE_PULUMI_SCENARIO", "up-times-out-once")
    outputs = {"services": {SERVICE: {"endpointConfigName": CONFIG_OLD}}}
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    sagemaker = sagemaker_client()
    stubber = Stubber(sagemaker)
    expect_describe(stubber, CONFIG_OLD)
    expect_describe(stubber, CONFIG_NEW, "RollingBack")
    expect_describe(stubber, CONFIG_OLD, reason="Alarm modelrail-dev-adult-income-p99-latency in ALARM")
    expect_config_lookup(stubber, CONFIG_OLD)  # V1's, not V2's: the rollout did not hold
    expect_restored(stubber, CONFIG_OLD)  # restoring: it serves V1 already
    with stubber, pytest.raises(RolledBackError, match=f"which does not serve {V2[:12]}") as caught:
        controller(project, tmp_path / "state", sagemaker).promote(SERVICE, V2, "carol@example.com")
    stubber.assert_no_pending_responses()

    assert (
        "the stack update failed" in caught.value.message and "p99-latency in ALARM" in caught.value.message
    )
    assert pinned_version(project / "stacks" / "Pulumi.dev.yaml", SERVICE) == V1
    assert pulumi_calls(tmp_path / "calls.jsonl").count("up") == 1, "V1 serves: no update to restore it"
    (entry,) = AuditLog(tmp_path / "state" / "audit", "dev").entries()
    assert entry["action"] == "promote:failed"


def test_resume_after_a_crash_mid_update_does_not_trust_outputs_that_may_be_stale(
    project: Path, tmp_path: Path
) -> None:
    # The controller died while `pulumi up` ran (all_at_once on dev: no canary to judge). The
    # stack's outputs still name the old configuration, which the endpoint still runs.
    stack_path = project / "stacks" / "Pulumi.dev.yaml"
    previous_text = write_pin(stack_path, SERVICE, V2)
    state = tmp_path / "state"
    journal = Journal.begin(
        state / "journal" / "dev", kind="promote", service=SERVICE, stack="dev", version=V2, previous=V1,
        actor="carol@example.com", message=f"modelrail: promote {SERVICE} {V2[:12]} by carol@example.com",
        reconcile="",
    )  # fmt: skip
    journal.write(Step.PINNED, previous_text=previous_text)
    journal.write(Step.UPDATE_STARTED, analysis=None, analysis_from=0.0)
    (tmp_path / "outputs.json").write_text(
        json.dumps({"services": {SERVICE: {"endpointConfigName": CONFIG_OLD}}})
    )
    sagemaker = sagemaker_client()
    stubber = Stubber(sagemaker)
    expect_describe(stubber, CONFIG_OLD)  # not transitional: nothing to watch
    expect_describe(stubber, CONFIG_OLD)  # settled
    expect_config_lookup(stubber, CONFIG_OLD)  # V1's configuration
    expect_restored(stubber, CONFIG_OLD)  # restoring: V1 serves already
    expect_describe(stubber, CONFIG_OLD)  # every pinned version serves: nothing to reconcile
    expect_no_shadow(stubber, CONFIG_OLD)  # and no shadow is left mirroring
    with stubber:
        (outcome,) = controller(project, state, sagemaker).resume("carol@example.com")
    stubber.assert_no_pending_responses()

    assert outcome.outcome == "failed", outcome.reason
    assert f"which does not serve {V2[:12]}" in outcome.reason
    assert pinned_version(stack_path, SERVICE) == V1
    assert not unfinished(state / "journal" / "dev")

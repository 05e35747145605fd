"""The real adapters together: a stack update that SageMaker silently undid is caught and reverted.

The stack update goes through the Automation API to a stand-in ``pulumi`` (which reports success
and the new endpoint configuration in its outputs); DescribeEndpoint, stubbed with botocore's
Stubber, says the endpoint is InService on the *old* configuration, as after an auto-rollback.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipelines.errors import RolledBackError
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.controller import Controller, Timeouts
from pipelines.promotion.evidence import EvidenceStore
from pipelines.promotion.stackfile import pinned_version, write_pin
from pipelines.runners.pulumi_runner import PulumiStackRunner
from pipelines.runners.sagemaker_endpoints import SageMakerEndpoints
from tests.unit.promotion.fakes import V1, V2, FakeLineage, FakeRegistry

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _describe(config: str, status: str = "InService", reason: str = "") -> dict[str, Any]:
    response = {
        "EndpointName": "dev-adult-income",
        "EndpointArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/dev-adult-income",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
    }
    if reason:
        response["FailureReason"] = reason
    return response


@pytest.fixture
def project(tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(repo / "Pulumi.yaml", project)
    shutil.copytree(repo / "stacks", project / "stacks")
    write_pin(project / "stacks" / "Pulumi.dev.yaml", "adult-income", V1)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FIXTURES / "pulumi", bin_dir / "pulumi")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps({"services": {"adult-income": {"endpointConfigName": "adult-income-config-new"}}})
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", str(outputs))
    monkeypatch.setenv("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", "true")
    return project


def _controller(project: Path, tmp_path: Path, sagemaker: Any) -> Controller:
    registry = FakeRegistry()
    registry.add(V2)
    evidence = EvidenceStore(tmp_path / "state" / "evidence")
    evidence.save("adult-income", V2, "candidate", True, "ok", {"checks": []})
    return Controller(
        stack="dev",
        stack_path=project / "stacks" / "Pulumi.dev.yaml",
        project_dir=project,
        runner=PulumiStackRunner("dev", project),
        endpoints=SageMakerEndpoints(sagemaker, "dev"),
        registry=registry,
        evidence=evidence,
        audit=AuditLog(tmp_path / "state" / "audit", "dev"),
        lineage=FakeLineage(),
        state_dir=tmp_path / "state",
        timeouts=Timeouts(verify_seconds=5, poll_seconds=0.01),
    )


def test_an_update_sagemaker_rolled_back_is_failed_and_the_stack_file_reverted(
    project: Path, tmp_path: Path
) -> None:
    sagemaker = boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(sagemaker)
    stubber.add_response("describe_endpoint", _describe("adult-income-config-new", status="RollingBack"))
    stubber.add_response(
        "describe_endpoint",
        _describe("adult-income-config-old", reason="Alarm modelrail-dev-adult-income-5xx-rate in ALARM"),
    )
    before = (project / "stacks" / "Pulumi.dev.yaml").read_text()
    with stubber, pytest.raises(RolledBackError, match="InService on adult-income-config-old") as caught:
        _controller(project, tmp_path, sagemaker).promote("adult-income", V2, "carol@example.com")
    assert "5xx-rate in ALARM" in caught.value.message
    assert (project / "stacks" / "Pulumi.dev.yaml").read_text() == before
    assert pinned_version(project / "stacks" / "Pulumi.dev.yaml", "adult-income") == V1
    calls = [json.loads(line)["args"][0] for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert calls.count("up") == 1 and calls.index("refresh") > calls.index("up"), "refreshed after the revert"
    (entry,) = AuditLog(tmp_path / "state" / "audit", "dev").entries()
    assert entry["action"] == "promote:failed"
    stubber.assert_no_pending_responses()


def test_an_update_that_holds_is_verified_against_the_new_configuration(
    project: Path, tmp_path: Path
) -> None:
    sagemaker = boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(sagemaker)
    stubber.add_response("describe_endpoint", _describe("adult-income-config-new"))
    with stubber:
        outcome = _controller(project, tmp_path, sagemaker).promote("adult-income", V2, "carol@example.com")
    assert outcome.outcome == "promoted"
    assert outcome.endpoint is not None and outcome.endpoint.config_name == "adult-income-config-new"
    assert pinned_version(project / "stacks" / "Pulumi.dev.yaml", "adult-income") == V2

"""The real SageMaker adapters behind the controller: a project copy, the stand-in ``pulumi`` on PATH,
and Stubber responses shaped as SageMaker's DescribeEndpoint, DescribeEndpointConfig and DescribeModel.

``project`` (in this folder's ``conftest.py``) copies the stack files and pins V1 on ``dev``; the
stand-in's ``stack output`` answers ``outputs.json``, which names ``CONFIG_NEW`` unless a test
writes something else there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber

from pipelines.promotion.audit import AuditLog
from pipelines.promotion.controller import Controller, Timeouts
from pipelines.promotion.evidence import EvidenceStore
from pipelines.runners.pulumi_runner import PulumiStackRunner
from pipelines.runners.sagemaker_endpoints import SageMakerEndpoints
from pipelines.runtimes.ports import RuntimeAdapters
from tests.unit.promotion.fakes import V1, V2, FakeLineage, FakeRegistry

SERVICE = "adult-income"
ENDPOINT = "dev-adult-income"
CONFIG_OLD, CONFIG_NEW = "adult-income-config-old", "adult-income-config-new"
MODELS = {CONFIG_OLD: ("adult-income-model-old", V1), CONFIG_NEW: ("adult-income-model-new", V2)}


def sagemaker_client() -> Any:
    return boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def describe(
    config: str,
    status: str = "InService",
    reason: str = "",
    *,
    desired: int | None = None,
    current: int | None = None,
) -> dict[str, Any]:
    """A DescribeEndpoint response; ``desired``/``current`` give the production variant's counts."""
    response: dict[str, Any] = {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
    }
    if reason:
        response["FailureReason"] = reason
    if desired is not None or current is not None:
        variant: dict[str, Any] = {"VariantName": "primary"}
        if desired is not None:
            variant["DesiredInstanceCount"] = desired
        if current is not None:
            variant["CurrentInstanceCount"] = current
        response["ProductionVariants"] = [variant]
    return response


def expect_describe(stubber: Stubber, config: str, status: str = "InService", **fields: Any) -> None:
    stubber.add_response("describe_endpoint", describe(config, status, **fields), {"EndpointName": ENDPOINT})


def _expect_config(stubber: Stubber, config: str) -> None:
    """DescribeEndpointConfig of ``config``: its production variant, and no shadow variant."""
    stubber.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": config,
            "EndpointConfigArn": f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/{config}",
            "ProductionVariants": [{"VariantName": "primary", "ModelName": MODELS[config][0]}],
            "CreationTime": "2026-01-01T00:00:00Z",
        },
        {"EndpointConfigName": config},
    )


def expect_config_lookup(stubber: Stubber, config: str) -> None:
    """DescribeEndpointConfig and DescribeModel of ``config``: which version its Model serves."""
    model, version = MODELS[config]
    _expect_config(stubber, config)
    stubber.add_response(
        "describe_model",
        {
            "ModelName": model,
            "ModelArn": f"arn:aws:sagemaker:eu-west-1:123456789012:model/{model}",
            "CreationTime": "2026-01-01T00:00:00Z",
            "PrimaryContainer": {
                "Image": "serving:latest",
                "Environment": {"MODELRAIL_MODEL_VERSION": version},
            },
        },
        {"ModelName": model},
    )


def expect_no_shadow(stubber: Stubber, config: str) -> None:
    """DescribeEndpointConfig of ``config`` showing no shadow variant (then nothing: no shadow Model)."""
    _expect_config(stubber, config)


def expect_restored(stubber: Stubber, config: str) -> None:
    """What shows ``config`` needs no update to restore: its Model serves the previous version, and it
    has no shadow variant left."""
    expect_config_lookup(stubber, config)
    expect_no_shadow(stubber, config)


class _NoCanary:
    """The router of a world without metrics: no canary is analysed, so none is ever aborted."""

    def abort(self, service: str, guardrail: str, value: float, reason: str) -> None:
        raise AssertionError(f"no canary analysis runs here, yet {service} was aborted: {reason}")


def controller(project: Path, state: Path, sagemaker: Any, timeouts: Timeouts | None = None) -> Controller:
    """A controller on ``dev`` over the Automation API (the stand-in) and ``sagemaker``; V2 is gated."""
    registry = FakeRegistry()
    registry.add(V2)
    evidence = EvidenceStore(state / "evidence")
    evidence.save(SERVICE, V2, "candidate", True, "ok", {"checks": []})
    return Controller(
        stack="dev",
        stack_path=project / "stacks" / "Pulumi.dev.yaml",
        project_dir=project,
        runner=PulumiStackRunner("dev", project),
        adapters={
            "sagemaker": RuntimeAdapters("sagemaker", SageMakerEndpoints(sagemaker, "dev"), None, _NoCanary())
        },
        registry=registry,
        evidence=evidence,
        audit=AuditLog(state / "audit", "dev"),
        lineage=FakeLineage(),
        state_dir=state,
        timeouts=timeouts or Timeouts(verify_seconds=5, poll_seconds=0.01),
    )


def pulumi_calls(log: Path) -> list[str]:
    """The stand-in's subcommands, in order (``up``, ``refresh``, ``preview``…)."""
    return [json.loads(line)["args"][0] for line in log.read_text().splitlines()]

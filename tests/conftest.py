"""Shared fixtures. Pulumi's mock runtime is process-global, so every test starts from a clean one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_pulumi_runtime() -> Iterator[None]:
    """Reset Pulumi's global settings around each test that has imported the SDK."""
    yield
    if "pulumi" in sys.modules:
        from pulumi.runtime import settings
        from pulumi.runtime.config import set_all_config

        set_all_config({}, [])
        settings.reset_options()


@pytest.fixture
def pulumi_mocks() -> Iterator[object]:
    """Install the plan's deterministic mocks and recording monitor; yields the monitor.

    Tests that create resources must also carry ``@pulumi.runtime.test``, or assertions inside
    ``apply`` never run.
    """
    import pulumi
    from pulumi.runtime import settings

    from pipelines.plan.mocks import PlanMocks, PlanMonitor

    settings.reset_options(project="modelrail", stack="test", preview=True)
    mocks = PlanMocks(region="us-east-1")
    monitor = PlanMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="modelrail", stack="test", preview=True, monitor=monitor)
    yield monitor


@pytest.fixture
def repo() -> Path:
    """The repository root (stack files, data, the infra program)."""
    return REPO


@pytest.fixture
def cloudwatch() -> Iterator[tuple[Any, Any]]:
    """A CloudWatch client and its botocore Stubber; every expected call must have been made by the end."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "cloudwatch", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()

"""A promotion starts the new fleet at the instances autoscaling runs, not at ``instanceCount``.

The provider's UpdateEndpoint never sets ``RetainAllVariantProperties``, so the new fleet of a
blue/green update starts at the configuration's ``initialInstanceCount``. The controller reads
the production variant's counts from DescribeEndpoint (Stubber) before it pins the version,
writes the floor into the stack file beside the pin, and the program (its offline plan here)
declares the new configuration with that many instances, never more than ``maxInstances``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from infra.config import load_stack_file
from pipelines.errors import RolledBackError
from pipelines.plan import build_plan
from pipelines.promotion.stackfile import pinned_version
from tests.unit.promotion.fakes import V2
from tests.unit.runners.sagemaker_world import (
    CONFIG_NEW,
    CONFIG_OLD,
    SERVICE,
    controller,
    expect_describe,
    expect_restored,
    sagemaker_client,
)

CONFIGURATION = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


def _initial_instances(project: Path, repo: Path) -> int:
    plan = build_plan("dev", project_dir=project, program=repo / "infra" / "__main__.py")
    (step,) = [
        step for step in plan["steps"] if step["newState"]["type"] == CONFIGURATION and SERVICE in step["urn"]
    ]
    variants: list[dict[str, Any]] = step["newState"]["inputs"]["productionVariants"]
    return int(variants[0]["initialInstanceCount"])


@pytest.mark.parametrize(
    ("desired", "current", "floor", "instances"),
    [
        (12, 10, 12, 12),  # autoscaling asked for 12: the new fleet starts at 12, not instanceCount 1
        (9, 11, 11, 11),  # a scale-in under way: the instances that still take the traffic
        (40, 40, 16, 16),  # never above autoscaling.maxInstances
        (1, 1, None, 1),  # instanceCount is enough: no floor is written
    ],
)
def test_the_new_configuration_starts_at_the_running_count_within_the_autoscaling_max(
    project: Path, tmp_path: Path, repo: Path, desired: int, current: int, floor: int | None, instances: int
) -> None:
    stack_path = project / "stacks" / "Pulumi.dev.yaml"
    stack_path.write_text(stack_path.read_text().replace("maxInstances: 2", "maxInstances: 16"))
    before = load_stack_file(stack_path).service(SERVICE)
    assert (before.instance_count, before.autoscaling.max_instances) == (1, 16)
    sagemaker = sagemaker_client()
    stubber = Stubber(sagemaker)
    expect_describe(stubber, CONFIG_OLD, desired=desired, current=current)
    expect_describe(stubber, CONFIG_NEW)
    with stubber:
        outcome = controller(project, tmp_path / "state", sagemaker).promote(SERVICE, V2, "carol@example.com")
    stubber.assert_no_pending_responses()

    assert outcome.outcome == "promoted"
    assert pinned_version(stack_path, SERVICE) == V2
    assert load_stack_file(stack_path).service(SERVICE).instance_count_floor == floor
    text = stack_path.read_text()
    if floor is not None:
        assert f"modelVersion: {V2}\n      instanceCountFloor: {floor}\n" in text, "written beside the pin"
    else:
        assert "instanceCountFloor" not in text
    assert _initial_instances(project, repo) == instances


def test_a_promotion_that_does_not_hold_takes_its_floor_back_with_the_pin(
    project: Path, tmp_path: Path
) -> None:
    stack_path = project / "stacks" / "Pulumi.dev.yaml"
    before = stack_path.read_text()
    sagemaker = sagemaker_client()
    stubber = Stubber(sagemaker)
    expect_describe(stubber, CONFIG_OLD, desired=2, current=2)
    expect_describe(stubber, CONFIG_OLD, reason="Alarm modelrail-dev-adult-income-5xx-rate in ALARM")
    expect_restored(stubber, CONFIG_OLD)
    promoting = controller(project, tmp_path / "state", sagemaker)
    pinned: list[dict[str, Any]] = []
    promoting.progress = lambda event, fields: pinned.append(fields) if event == "pinned" else None
    with stubber, pytest.raises(RolledBackError):
        promoting.promote(SERVICE, V2, "carol@example.com")
    assert [fields["instance_count_floor"] for fields in pinned] == [2], "the rollout carried a floor"
    assert stack_path.read_text() == before, "pin and floor went back together"

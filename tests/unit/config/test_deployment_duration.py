"""A rollout must fit in what the provider waits for an endpoint update, and under its own timeout.

terraform-provider-aws (which pulumi-aws runs) waits 60 minutes for an endpoint to be InService
again; a rollout that takes longer outlives ``pulumi up``. SageMaker runs every bake (a canary's
two, one per linear step, one for all at once) and then the termination wait.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from infra.config import (
    FLEET_START_SECONDS,
    PROVIDER_ENDPOINT_WAIT_SECONDS,
    DeploymentPolicy,
    StackConfigError,
    load_stack_file,
    parse_stack_text,
)

FRAUD = "config.modelrail:services.fraud-score.deployment"


def _prod(repo: Path, **deployment: Any) -> str:
    """The committed prod stack with fraud-score's deployment policy changed."""
    yaml = YAML(typ="rt")
    document = yaml.load((repo / "stacks" / "Pulumi.prod.yaml").read_text(encoding="utf-8"))
    document["config"]["modelrail:services"]["fraud-score"]["deployment"].update(deployment)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _issues(repo: Path, **deployment: Any) -> dict[str, str]:
    try:
        parse_stack_text(_prod(repo, **deployment), repo / "stacks" / "Pulumi.prod.yaml")
    except StackConfigError as error:
        return {issue.path: str(issue) for issue in error.issues}
    return {}


def test_the_committed_prod_stack_fits_in_the_providers_wait(repo: Path) -> None:
    config = load_stack_file(repo / "stacks" / "Pulumi.prod.yaml")
    for service in config.services.values():
        assert service.deployment.wait_seconds + FLEET_START_SECONDS <= PROVIDER_ENDPOINT_WAIT_SECONDS


def test_five_linear_bakes_of_600_s_and_600_s_termination_wait_outlive_the_provider(repo: Path) -> None:
    """fraud-score as it was: 5 × 600 s + 600 s = 3600 s of waits, before the new fleet even starts."""
    issues = _issues(
        repo, strategy="linear", linearStepPercent=20, bakeSeconds=600, terminationWaitSeconds=600
    )
    message = issues[FRAUD]
    assert f"{FRAUD} = 3600" in message
    assert "5 bake(s) × 600 s + 600 s termination wait" in message
    assert "takes 4200 s" in message
    assert "more than the 3600 s the provider waits for an endpoint update" in message


@pytest.mark.parametrize(
    ("deployment", "waits"),
    [
        (
            {"strategy": "canary", "canaryPercent": 25, "bakeSeconds": 1200, "terminationWaitSeconds": 600},
            3000,
        ),
        (
            {
                "strategy": "linear",
                "linearStepPercent": 25,
                "bakeSeconds": 600,
                "terminationWaitSeconds": 600,
            },
            3000,
        ),
        (
            {
                "strategy": "linear",
                "linearStepPercent": 33,
                "bakeSeconds": 600,
                "terminationWaitSeconds": 600,
            },
            3000,
        ),
        (
            {
                "strategy": "linear",
                "linearStepPercent": 10,
                "bakeSeconds": 240,
                "terminationWaitSeconds": 600,
            },
            3000,
        ),
    ],
)
def test_waits_up_to_the_limit_pass_and_one_second_more_fails(
    repo: Path, deployment: dict[str, Any], waits: int
) -> None:
    policy = DeploymentPolicy.model_validate(deployment)
    assert policy.wait_seconds == waits == PROVIDER_ENDPOINT_WAIT_SECONDS - FLEET_START_SECONDS
    assert _issues(repo, **deployment) == {}
    longer = {**deployment, "terminationWaitSeconds": deployment["terminationWaitSeconds"] + 1}
    assert FRAUD in _issues(repo, **longer)


@pytest.mark.parametrize(("strategy", "bakes"), [("all_at_once", 1), ("canary", 2), ("linear", 5)])
def test_sagemaker_bakes_once_per_step_and_a_canary_twice(strategy: str, bakes: int) -> None:
    assert DeploymentPolicy(strategy=strategy, linear_step_percent=20).bakes == bakes  # type: ignore[arg-type]


def test_the_timeout_must_exceed_the_waits_or_sagemaker_stops_the_rollout(repo: Path) -> None:
    issues = _issues(repo, bakeSeconds=300, terminationWaitSeconds=600, maxExecutionSeconds=2100)
    message = issues[f"{FRAUD}.maxExecutionSeconds"]
    assert "more than the rollout's waits, 2100 s (5 bake(s) × 300 s + 600 s termination wait)" in message
    assert _issues(repo, bakeSeconds=300, terminationWaitSeconds=600, maxExecutionSeconds=2101) == {}


@pytest.mark.parametrize(("seconds", "valid"), [(14400, True), (14401, False), (28800, False)])
def test_the_timeout_is_bounded_by_what_the_provider_accepts_not_the_api(
    repo: Path, seconds: int, valid: bool
) -> None:
    """SageMaker's API takes up to 28800 s; the provider's validator refuses more than 14400 s."""
    assert (f"{FRAUD}.maxExecutionSeconds" not in _issues(repo, maxExecutionSeconds=seconds)) is valid

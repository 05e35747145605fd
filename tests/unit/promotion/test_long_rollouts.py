"""Rollouts that outlive `pulumi up`: decided by what the endpoint runs once it settles, never before.

The provider waits 60 minutes for an endpoint update and fails at once on ``RollingBack``, which
it does not count as pending; SageMaker goes on deploying either way. A failed update therefore
decides nothing: the canary is analysed until the endpoint settles, and an endpoint still
transitional when the controller's wait is over is left, journal and all, for ``resume``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import ExitCode, RolledBackError, RolloutInProgressError
from pipelines.promotion.controller import Timeouts
from pipelines.promotion.journal import Step, unfinished
from pipelines.promotion.stackfile import pinned_version
from pipelines.runners.base import StackUpdateError
from tests.unit.promotion.fakes import V1, V2, make_world
from tests.unit.promotion.rolling_fakes import SERVICE, make_rolling_world

TIMED_OUT = StackUpdateError(
    "pulumi failed on stack dev",
    details=["waiting for SageMaker Endpoint (dev-adult-income) to be in service: timeout while waiting"],
)


def test_an_endpoint_still_updating_when_the_wait_is_over_is_left_to_resume_never_reverted(
    tmp_path: Path, repo: Path
) -> None:
    world = make_world(tmp_path, repo)
    world.controller.evidence.save(SERVICE, V2, "candidate", True, "ok", {"checks": []})
    world.controller.timeouts = Timeouts(verify_seconds=0.2, poll_seconds=0.01, rollout_seconds=0.0)
    up = world.runner.up

    def times_out_mid_rollout(message: str) -> dict[str, Any]:
        world.runner.messages.append(message)
        world.endpoint.status = "Updating"  # SageMaker deploys on after the provider gave up
        raise TIMED_OUT

    world.runner.up = times_out_mid_rollout  # type: ignore[method-assign]
    with pytest.raises(RolloutInProgressError, match="still Updating") as caught:
        world.controller.promote(SERVICE, V2, "carol@example.com")

    assert caught.value.exit_code == ExitCode.IN_PROGRESS
    assert "modelrail resume --stack dev" in caught.value.details[0]
    assert pinned_version(world.stack_path, SERVICE) == V2, "the pin stays while the rollout runs"
    assert len(world.runner.messages) == 1, "no second update on an endpoint SageMaker still deploys"
    (journal,) = unfinished(world.controller.journal_dir)
    assert (
        journal.last_step == Step.UPDATE_FINISHED and "timeout" in journal.get(Step.UPDATE_FINISHED)["error"]
    )
    assert list(world.controller.audit.entries()) == [], "nothing decided, nothing recorded"

    with pytest.raises(RolloutInProgressError):
        world.controller.resume("carol@example.com")  # still Updating: resume leaves it too
    assert pinned_version(world.stack_path, SERVICE) == V2

    world.endpoint.serving, world.endpoint.status = V2, "InService"  # the rollout completes
    world.runner.up = up  # type: ignore[method-assign]
    (outcome,) = world.controller.resume("carol@example.com")

    assert outcome.outcome == "promoted", outcome.reason
    assert "the stack update failed" in outcome.reason and "timeout" in outcome.reason
    assert "recording a rollout that outlived its update" in world.runner.messages[-1]
    assert pinned_version(world.stack_path, SERVICE) == V2
    assert [entry["action"] for entry in world.controller.audit.entries()] == ["promote:promoted"]


def test_a_canary_whose_update_failed_is_still_analysed_until_the_endpoint_settles(
    tmp_path: Path, repo: Path
) -> None:
    # `up` fails as soon as the rollout has started (the provider's wait ended, or it saw
    # RollingBack): the canary bakes on, and its third interval breaches.
    world = make_rolling_world(tmp_path, repo)
    up = world.runner.up

    def fails_once_started(message: str) -> dict[str, Any]:
        world.runner.returns_early = True
        up(message)
        raise TIMED_OUT

    world.runner.up = fails_once_started  # type: ignore[method-assign]
    with pytest.raises(RolledBackError, match="canary analysis: interval 3"):
        world.controller.promote(SERVICE, V2, "carol@example.com")

    assert world.endpoint.served == [V1], "the alarm stopped the canary: V2 never owned the endpoint"
    assert pinned_version(world.stack_path, SERVICE) == V1
    (entry,) = world.controller.audit.entries()
    assert entry["action"] == "promote:rolled_back" and len(entry["analysis"]) == 3

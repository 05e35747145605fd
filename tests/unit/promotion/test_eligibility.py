"""One eligibility rule for every deployment: promote and rollback refuse the same stages."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import RefusedError
from pipelines.promotion.stackfile import pinned_version
from tests.unit.promotion.fakes import V2, V3, World, make_world


@pytest.fixture
def world(tmp_path: Path, repo: Path) -> World:
    world = make_world(tmp_path, repo, stack="dev")
    for sha in (V2, V3):
        world.controller.evidence.save("adult-income", sha, "candidate", True, "ok", {"checks": []})
    world.controller.promote("adult-income", V2, "carol@example.com")
    world.controller.promote("adult-income", V3, "carol@example.com")
    return world


def _actions(world: World) -> list[str]:
    return [entry["action"] for entry in world.controller.audit.entries()]


@pytest.mark.parametrize("to", [None, V2[:12]], ids=["last-stable", "explicit"])
def test_a_rollback_to_an_archived_version_is_refused(world: World, to: str | None) -> None:
    world.registry.set_stage("adult-income", V2, "archived", "erin@example.com")
    with pytest.raises(RefusedError, match=r"is archived; .*refused the rollback") as caught:
        world.controller.rollback("adult-income", "erin@example.com", to=to)
    assert "deploy a current version" in caught.value.details[0]
    assert pinned_version(world.stack_path, "adult-income") == V3
    assert world.endpoint.serving == V3
    assert _actions(world) == ["promote:promoted", "promote:promoted"]


def test_promote_and_rollback_refuse_an_archived_version_alike(world: World) -> None:
    world.registry.set_stage("adult-income", V2, "archived", "erin@example.com")
    with pytest.raises(RefusedError) as promoted:
        world.controller.promote("adult-income", V2, "carol@example.com")
    with pytest.raises(RefusedError) as rolled:
        world.controller.rollback("adult-income", "erin@example.com")
    assert promoted.value.message.split(";")[0] == rolled.value.message.split(";")[0]
    assert promoted.value.details == rolled.value.details


def test_a_rollback_to_a_current_stable_version_still_goes_through(world: World) -> None:
    outcome = world.controller.rollback("adult-income", "erin@example.com")
    assert (outcome.outcome, outcome.version) == ("rolled_back", V2)
    assert world.endpoint.serving == V2

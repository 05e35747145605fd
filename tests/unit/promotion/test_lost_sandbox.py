"""The sandbox daemon dies mid-canary: the promotion says it did not hold (exit 5) only once the
previous version serves again; promoting the pinned version reconciles an endpoint that lost it;
and no canary starts against a baseline the endpoint does not serve.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import ExitCode, RefusedError, RolledBackError
from pipelines.promotion.journal import unfinished
from pipelines.promotion.stackfile import pinned_version
from tests.unit.promotion.fakes import V1, V2
from tests.unit.promotion.rolling_fakes import SERVICE, RollingWorld, make_rolling_world


def _actions(world: RollingWorld) -> list[str]:
    return [entry["action"] for entry in world.controller.audit.entries()]


def test_a_daemon_that_dies_mid_canary_is_rolled_back_onto_a_new_one_exit_5(
    tmp_path: Path, repo: Path
) -> None:
    world = make_rolling_world(tmp_path, repo)
    world.metrics.dies_at = 2
    with pytest.raises(RolledBackError, match="did not hold: the sandbox daemon is gone") as caught:
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert caught.value.exit_code == ExitCode.ROLLED_BACK
    assert pinned_version(world.stack_path, SERVICE) == V1
    assert world.endpoint.serving == V1, "the previous version serves again, on a new sandbox"
    assert world.endpoint.served == [V1, V1], "V2 never owned the endpoint"
    (entry,) = world.controller.audit.entries()
    assert entry["action"] == "promote:failed" and "sandbox daemon is gone" in entry["reason"]
    assert not unfinished(world.controller.journal_dir)


def test_promoting_the_pinned_version_reconciles_an_endpoint_that_does_not_serve_it(
    tmp_path: Path, repo: Path
) -> None:
    world = make_rolling_world(tmp_path, repo)
    world.endpoint.lose()
    world.endpoint.revive()  # a new, empty sandbox
    outcome = world.controller.promote(SERVICE, V1, "carol@example.com")
    assert (outcome.outcome, outcome.version) == ("promoted", V1)
    assert outcome.reason.startswith("reconciled: the endpoint is NotFound")
    assert world.endpoint.serving == V1
    assert world.controller.promote(SERVICE, V1, "carol@example.com").outcome == "unchanged"
    assert _actions(world) == ["promote:promoted"]


def test_no_canary_starts_while_the_endpoint_does_not_serve_the_pinned_baseline(
    tmp_path: Path, repo: Path
) -> None:
    world = make_rolling_world(tmp_path, repo)
    world.endpoint.lose()
    world.endpoint.revive()
    with pytest.raises(RefusedError, match=f"does not serve the pinned {V1[:12]}") as caught:
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert f"--version {V1[:12]}" in caught.value.details[0]
    assert world.endpoint.serving is None and _actions(world) == []


def test_resume_reconciles_an_endpoint_lost_after_its_promotion_finished(tmp_path: Path, repo: Path) -> None:
    world = make_rolling_world(tmp_path, repo, rollout_seconds=0.3)
    world.metrics.quiet_windows = 10**6  # a canary too quiet to judge, watched to the end of its rollout
    world.controller.promote(SERVICE, V2, "carol@example.com")
    world.endpoint.lose()
    world.runner.refresh()  # the next command starts a new, empty sandbox
    (outcome,) = world.controller.resume("carol@example.com")
    assert (outcome.outcome, outcome.version) == ("promoted", V2)
    assert world.endpoint.serving == V2 == pinned_version(world.stack_path, SERVICE)
    assert world.controller.resume("carol@example.com") == []

"""A rollout on a runtime the controller shifts step by step (KServe), stepped through its phases.

Each traffic step is its own stack update: the first pins the new version with
``canaryTrafficPercent``, the canary bakes under analysis, the last drops the share (all
traffic). A breach or a canary that does not carry its share goes through the one revert path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.config import load_stack_file
from pipelines.errors import RolledBackError
from pipelines.promotion.journal import Step, finished
from pipelines.promotion.phases import Phase, Result
from pipelines.runtimes.ports import RuntimeAdapters
from tests.unit.promotion.fakes import V1, V2, World
from tests.unit.promotion.stepped_fakes import SERVICE, Checks, SteppedRunner, make_stepped_world


@pytest.fixture
def world(tmp_path: Path, repo: Path) -> tuple[World, SteppedRunner, Checks]:
    return make_stepped_world(tmp_path, repo)


def test_the_canary_share_is_one_update_and_all_traffic_the_next(
    world: tuple[World, SteppedRunner, Checks],
) -> None:
    w, runner, checks = world
    outcome = w.controller.promote(SERVICE, V2, "carol@example.com")
    assert outcome.outcome == Result.PROMOTED
    assert runner.shares == [25, None], "the canary's share first, then all traffic"
    assert checks.asked == [(V2, 25)], "the canary step was checked to carry its share"
    assert w.endpoint.serving == V2
    service = load_stack_file(w.stack_path).services[SERVICE]
    assert service.model_version == V2 and service.canary_traffic_percent is None
    (journal,) = finished(w.controller.journal_dir)
    steps = [record["step"] for record in journal.records]
    assert steps[:3] == ["begun", "pinned", "update_started"]
    assert "analysed" in steps, "the canary was analysed while it baked"
    assert [record["percent"] for record in journal.all(Step.SHIFTED)] == [None]
    assert steps[-4:] == ["update_finished", "verified", "recorded", "done"]


def test_a_breach_while_the_canary_bakes_aborts_it_and_reverts(
    world: tuple[World, SteppedRunner, Checks],
) -> None:
    w, runner, _ = world
    w.metrics.canary_error_rate = 0.10
    with pytest.raises(RolledBackError, match="did not hold"):
        w.controller.promote(SERVICE, V2, "carol@example.com")
    (guardrail, _reason), *_ = w.metrics.breaches
    assert guardrail == "5xx-rate", "the router took the canary's traffic away"
    assert runner.shares[0] == 25 and runner.shares[-1] is None, "the revert's update drops the share"
    service = load_stack_file(w.stack_path).services[SERVICE]
    assert service.model_version == V1 and service.canary_traffic_percent is None
    assert w.endpoint.serving == V1
    actions = [entry["action"] for entry in w.controller.audit.entries()]
    assert actions == ["promote:rolled_back"]


def test_a_canary_that_does_not_carry_its_share_fails_before_any_analysis(
    world: tuple[World, SteppedRunner, Checks],
) -> None:
    w, _runner, checks = world
    checks.problem = "the latest revision carries 0%, not 25%"
    with pytest.raises(RolledBackError, match="carries 0%, not 25%"):
        w.controller.promote(SERVICE, V2, "carol@example.com")
    assert w.metrics.breaches == []
    assert load_stack_file(w.stack_path).services[SERVICE].model_version == V1
    (journal,) = finished(w.controller.journal_dir)
    assert journal.records[-1]["outcome"] == Result.FAILED


def test_every_phase_and_result_is_documented() -> None:
    from tests.documented import documented_members

    for enum in (Phase, Result):
        assert documented_members(enum) == {member.name for member in enum}, enum


def test_a_canary_nobody_can_judge_never_takes_all_traffic(
    world: tuple[World, SteppedRunner, Checks],
) -> None:
    """No runtime rollback stands behind a stepped canary: without a verdict it is reverted."""
    from dataclasses import replace

    from pipelines.metrics.stats import VariantStats

    w, runner, _ = world
    quiet = w.metrics.window

    def no_canary_traffic(
        service: str, start: float, end: float, *, rollout_start: float, shadow: bool = False
    ) -> Any:
        return replace(quiet(service, start, end, rollout_start=rollout_start), canary=VariantStats())

    w.metrics.window = no_canary_traffic  # type: ignore[method-assign]
    w.controller.timeouts = replace(w.controller.timeouts, rollout_seconds=1.5)
    with pytest.raises(RolledBackError, match=r"no verdict within the rollout's 1\.5 s"):
        w.controller.promote(SERVICE, V2, "carol@example.com")
    assert runner.shares == [25, None], "the canary's share, then the revert's update (v1, all traffic)"
    assert load_stack_file(w.stack_path).services[SERVICE].model_version == V1
    assert w.endpoint.serving == V1
    (journal,) = finished(w.controller.journal_dir)
    assert journal.records[-1]["outcome"] == Result.FAILED


def test_each_linear_share_is_judged_on_its_own(world: tuple[World, SteppedRunner, Checks]) -> None:
    """A breach at the second share is found, though the first share's analysis passed."""
    w, runner, _ = world
    w.controller.adapters = {"kserve": RuntimeAdapters(
        "kserve", w.endpoint, w.metrics, w.metrics, traffic_steps=lambda s: (25, 50, None),
        step_check=lambda service, version, percent: "",
    )}  # fmt: skip
    original = runner.up

    def up(message: str) -> dict[str, Any]:
        outputs = original(message)
        if runner.shares[-1] == 50:
            w.metrics.canary_error_rate = 0.10  # the canary fails once it takes half the traffic
        return outputs

    runner.up = up  # type: ignore[method-assign]
    with pytest.raises(RolledBackError, match="did not hold"):
        w.controller.promote(SERVICE, V2, "carol@example.com")
    assert runner.shares[:2] == [25, 50]
    assert [guardrail for guardrail, _ in w.metrics.breaches] == ["5xx-rate"]
    assert load_stack_file(w.stack_path).services[SERVICE].model_version == V1

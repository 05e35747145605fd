"""A crash mid-bake never skips the guardrail: the analysis resumes from the journal, or rolls back.

The canary fails its third analysis interval (the first two carry too little traffic to count).
``promote`` is SIGKILLed right after each interval is journaled; the endpoint keeps rolling out
on its own, as SageMaker and the sandbox do. ``resume`` then either resumes the analysis for
the rest of the bake or, once the rollout completed unwatched, rolls it back. The canary never
ends up serving, and the audit entry carries the analysis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import InterruptedByUserError, RolledBackError
from pipelines.promotion.journal import CRASH_AFTER_ENV, Step, finished, unfinished
from pipelines.promotion.stackfile import pinned_version
from tests.unit.promotion.fakes import V1, V2
from tests.unit.promotion.rolling_fakes import SERVICE, RollingWorld, make_rolling_world


def _crash_mid_bake(tmp_path: Path, repo: Path, interval: int, rollout_seconds: float) -> None:
    make_rolling_world(tmp_path, repo, rollout_seconds=rollout_seconds)
    child = subprocess.run(
        [sys.executable, "-m", "tests.unit.promotion.bake_child", str(tmp_path), str(repo), str(rollout_seconds)],
        cwd=repo, env={**os.environ, CRASH_AFTER_ENV: f"{Step.ANALYSED}:{interval}"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr


def _assert_rolled_back_with_the_analysis(world: RollingWorld, intervals: int) -> None:
    assert pinned_version(world.stack_path, SERVICE) == V1
    assert world.endpoint.serving == V1
    assert not unfinished(world.controller.journal_dir)
    (entry,) = world.controller.audit.entries()
    assert entry["action"] == "promote:rolled_back"
    assert len(entry["analysis"]) == intervals, entry["analysis"]
    assert entry["reason"]
    assert world.controller.audit.verify().ok


@pytest.mark.parametrize("interval", [1, 2, 3])
def test_resume_after_a_crash_at_each_interval_resumes_the_analysis_and_rolls_back(
    tmp_path: Path, repo: Path, interval: int
) -> None:
    _crash_mid_bake(tmp_path, repo, interval, rollout_seconds=30.0)
    world = make_rolling_world(tmp_path, repo, fresh=False, rollout_seconds=30.0)
    assert world.endpoint.describe(SERVICE).status == "Updating", "the canary bakes on, unwatched"

    (outcome,) = world.controller.resume("carol@example.com")

    assert outcome.outcome == "rolled_back"
    assert "canary analysis: interval 3: max_5xx_rate breached" in outcome.reason
    assert world.endpoint.served == [V1], "the canary never owned the endpoint"
    _assert_rolled_back_with_the_analysis(world, intervals=3)
    (journal,) = finished(world.controller.journal_dir)
    assert len(journal.all(Step.ANALYSED)) == 3, "each interval journaled once, resumed ones included"


@pytest.mark.parametrize("interval", [1, 3])
def test_resume_after_the_rollout_completed_unwatched_rolls_it_back(
    tmp_path: Path, repo: Path, interval: int
) -> None:
    _crash_mid_bake(tmp_path, repo, interval, rollout_seconds=3.0)
    world = make_rolling_world(tmp_path, repo, fresh=False, rollout_seconds=3.0)
    deadline = time.monotonic() + 30
    while world.endpoint.serving != V2:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    (outcome,) = world.controller.resume("carol@example.com")

    assert outcome.outcome == "rolled_back"
    if interval < 3:
        assert "completed while nobody watched its canary" in outcome.reason
    else:
        assert "canary analysis: interval 3" in outcome.reason, "the journaled verdict stands"
    assert world.endpoint.served == [V1, V2, V1], "the stack update put V1 back"
    _assert_rolled_back_with_the_analysis(world, intervals=min(interval, 3))


def test_every_decision_is_journaled_before_the_alarm_is_tripped(tmp_path: Path, repo: Path) -> None:
    world = make_rolling_world(tmp_path, repo)
    with pytest.raises(RolledBackError, match="canary analysis: interval 3"):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert world.metrics.journaled_before_breach == [True]
    _assert_rolled_back_with_the_analysis(world, intervals=3)


def test_a_rollout_that_outlives_the_stack_update_is_still_analysed_to_its_end(
    tmp_path: Path, repo: Path
) -> None:
    # The provider stops waiting while the endpoint still rolls (Pulumi's waits 60 minutes):
    # the analysis must keep watching until DescribeEndpoint settles, not stop when `up` returns.
    world = make_rolling_world(tmp_path, repo, returns_early=True)
    with pytest.raises(RolledBackError, match="canary analysis: interval 3"):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert world.endpoint.served == [V1]
    _assert_rolled_back_with_the_analysis(world, intervals=3)


def test_ctrl_c_mid_bake_leaves_the_rollout_to_resume_instead_of_reverting_the_file_only(
    tmp_path: Path, repo: Path
) -> None:
    world = make_rolling_world(tmp_path, repo)
    window = world.metrics.window

    def interrupted_at_the_second_interval(
        service: str, start: float, end: float, *, rollout_start: float, shadow: bool = False
    ) -> Any:
        if world.metrics.calls_path.exists() and world.metrics.calls_path.read_text() == "1":
            raise InterruptedByUserError("interrupted by Ctrl-C")
        return window(service, start, end, rollout_start=rollout_start)

    world.metrics.window = interrupted_at_the_second_interval  # type: ignore[method-assign]
    with pytest.raises(InterruptedByUserError):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    (journal,) = unfinished(world.controller.journal_dir)
    assert journal.last_step == Step.ANALYSED and world.endpoint.describe(SERVICE).status == "Updating"

    world.metrics.window = window  # type: ignore[method-assign]
    (outcome,) = world.controller.resume("carol@example.com")
    assert outcome.outcome == "rolled_back"
    assert world.endpoint.served == [V1]
    _assert_rolled_back_with_the_analysis(world, intervals=3)


def test_ctrl_c_before_the_update_puts_the_stack_file_back_at_once(tmp_path: Path, repo: Path) -> None:
    world = make_rolling_world(tmp_path, repo)

    def interrupted_preview() -> Any:
        raise InterruptedByUserError("interrupted by Ctrl-C")

    world.runner.preview = interrupted_preview  # type: ignore[method-assign]
    with pytest.raises(InterruptedByUserError):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert pinned_version(world.stack_path, SERVICE) == V1
    assert not unfinished(world.controller.journal_dir)
    assert [e["action"] for e in world.controller.audit.entries()] == ["promote:aborted"]

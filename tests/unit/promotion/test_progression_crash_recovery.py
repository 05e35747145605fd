"""SIGKILL a promotion through ``[shadow, canary, full]`` right after each journaled step, then
resume: it converges to one story.

Until the candidate's own update has returned, resume reverts: the previous version serves, the
stack file is back as it was and the shadow variant is gone (a shadow nobody watched to its
verdict must not lead on to user traffic). Once that update has returned under a watching
controller the canary was judged and the candidate serves, so it is recorded as promoted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.promotion.journal import Step, finished, unfinished
from pipelines.promotion.lock import held_locks
from tests.unit.promotion.crash import run_killed_after
from tests.unit.promotion.fakes import V1, V2, declare_progression, make_world

SERVICE = "adult-income"
SHADOW_WINDOWS = 20
"""The shadow bake's windows in these fakes: 1 s of 0.05 s intervals, none of them quiet."""
EXPECTED = {
    Step.BEGUN: ("aborted", V1),
    Step.PINNED: ("aborted", V1),
    f"{Step.UPDATE_STARTED}:1": ("failed", V1),
    f"{Step.ANALYSED}:1": ("failed", V1),
    Step.SHADOW_PASSED: ("failed", V1),
    f"{Step.UPDATE_STARTED}:2": ("failed", V1),
    f"{Step.ANALYSED}:{SHADOW_WINDOWS + 1}": ("failed", V1),  # the canary's first window
    Step.UPDATE_FINISHED: ("promoted", V2),
    Step.VERIFIED: ("promoted", V2),
    Step.RECORDED: ("promoted", V2),
}


@pytest.mark.parametrize("step", list(EXPECTED), ids=str)
def test_sigkill_after_each_step_then_resume_converges(tmp_path: Path, repo: Path, step: str) -> None:
    world = make_world(tmp_path, repo, stack="staging")
    world.controller.evidence.save(SERVICE, V2, "candidate", True, "all checks passed", {"checks": []})
    declare_progression(world.stack_path)
    before = world.stack_path.read_text()
    run_killed_after(str(step), "progression_crash_child", tmp_path, repo)

    world = make_world(tmp_path, repo, stack="staging", fresh=False)
    (outcome,) = world.controller.resume("carol@example.com")
    expected_outcome, expected_version = EXPECTED[step]
    assert outcome.outcome == expected_outcome, outcome.reason
    service = world.controller.service_config(SERVICE)
    assert (service.model_version, service.shadow_version) == (expected_version, None)
    if expected_version == V1:
        assert world.stack_path.read_text() == before, "the stack file is back, byte for byte"
    assert world.endpoint.serving == expected_version, "stack file and endpoint agree"
    assert world.endpoint.shadowing is None, "no shadow is left running"
    assert not unfinished(world.controller.journal_dir)
    (journal,) = finished(world.controller.journal_dir)
    if step == f"{Step.ANALYSED}:{SHADOW_WINDOWS + 1}":
        assert journal.has(Step.SHADOW_PASSED), "the kill came in the canary phase, after the shadow's"
    assert not held_locks(world.controller.lock_dir, "staging")
    assert [entry["action"] for entry in world.controller.audit.entries()] == [f"promote:{expected_outcome}"]
    assert world.controller.audit.verify().ok
    assert world.controller.resume("carol@example.com") == []

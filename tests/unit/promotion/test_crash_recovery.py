"""SIGKILL the controller right after each journaled step, then resume: it converges, nothing lost.

The promotion runs in a child process over file-backed fakes; ``MODELRAIL_CRASH_AFTER`` makes
the child kill itself with SIGKILL the moment a step is journaled, exactly as a crash would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.promotion.journal import Step, finished, unfinished
from pipelines.promotion.lock import held_locks
from pipelines.promotion.stackfile import pinned_version
from tests.unit.promotion.crash import run_killed_after
from tests.unit.promotion.fakes import V1, V2, make_world

EXPECTED = {
    Step.BEGUN: ("aborted", V1),
    Step.PINNED: ("aborted", V1),
    Step.UPDATE_STARTED: ("failed", V1),
    Step.UPDATE_FINISHED: ("promoted", V2),
    Step.VERIFIED: ("promoted", V2),
    Step.RECORDED: ("promoted", V2),
}


@pytest.mark.parametrize("step", list(EXPECTED), ids=str)
def test_sigkill_after_each_step_then_resume_converges(tmp_path: Path, repo: Path, step: Step) -> None:
    world = make_world(tmp_path, repo, stack="dev")
    world.controller.evidence.save("adult-income", V2, "candidate", True, "ok", {"checks": []})
    run_killed_after(str(step), "crash_child", tmp_path, repo)
    (journal,) = unfinished(world.controller.journal_dir)
    assert journal.last_step == step

    reopened = make_world(tmp_path, repo, stack="dev", fresh=False)
    (outcome,) = reopened.controller.resume("carol@example.com")
    expected_outcome, expected_version = EXPECTED[step]
    assert outcome.outcome == expected_outcome
    assert pinned_version(reopened.stack_path, "adult-income") == expected_version
    assert reopened.endpoint.serving == expected_version, "stack file and endpoint agree"
    assert not unfinished(reopened.controller.journal_dir)
    assert len(finished(reopened.controller.journal_dir)) == 1
    assert not held_locks(reopened.controller.lock_dir, "dev"), "the dead process's lock was recovered"
    entries = list(reopened.controller.audit.entries())
    assert [entry["action"] for entry in entries] == [f"promote:{expected_outcome}"]
    assert reopened.controller.audit.verify().ok
    assert reopened.controller.resume("carol@example.com") == []

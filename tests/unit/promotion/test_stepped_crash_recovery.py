"""SIGKILL a stepped (KServe) promotion right after each journaled step, then resume: it converges.

Between its steps a stepped rollout is reverted, never carried forward: a canary share nobody
watched to its verdict must not take all traffic. Once the last step's update has returned
(``update_finished``) the canary was judged and the target serves, so it is recorded as promoted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.promotion.journal import Step, finished, unfinished
from pipelines.promotion.lock import held_locks
from tests.unit.promotion.crash import run_killed_after
from tests.unit.promotion.fakes import V1, V2
from tests.unit.promotion.stepped_fakes import SERVICE, make_stepped_world

EXPECTED = {
    Step.BEGUN: ("aborted", V1),
    Step.PINNED: ("aborted", V1),
    Step.UPDATE_STARTED: ("failed", V1),
    f"{Step.ANALYSED}:1": ("failed", V1),
    Step.SHIFTED: ("failed", V1),
    Step.UPDATE_FINISHED: ("promoted", V2),
    Step.VERIFIED: ("promoted", V2),
    Step.RECORDED: ("promoted", V2),
}


@pytest.mark.parametrize("step", list(EXPECTED), ids=str)
def test_sigkill_after_each_step_then_resume_converges(tmp_path: Path, repo: Path, step: str) -> None:
    make_stepped_world(tmp_path, repo)
    run_killed_after(str(step), "stepped_crash_child", tmp_path, repo)

    world = make_stepped_world(tmp_path, repo, fresh=False)[0]
    (outcome,) = world.controller.resume("carol@example.com")
    expected_outcome, expected_version = EXPECTED[step]
    assert outcome.outcome == expected_outcome, outcome.reason
    service = world.controller.service_config(SERVICE)
    assert (service.model_version, service.canary_traffic_percent) == (expected_version, None)
    assert world.endpoint.serving == expected_version, "stack file and endpoint agree"
    assert world.endpoint.describe(SERVICE).status == "InService", "no share is left split"
    assert not unfinished(world.controller.journal_dir)
    assert len(finished(world.controller.journal_dir)) == 1
    assert not held_locks(world.controller.lock_dir, "dev")
    assert [entry["action"] for entry in world.controller.audit.entries()] == [f"promote:{expected_outcome}"]
    assert world.controller.audit.verify().ok
    assert world.controller.resume("carol@example.com") == []

"""A crash between writing the pin and journaling ``pinned``: ``resume`` puts the text back.

The stack file's previous text is journaled with ``begun``, before the pin is written, so the one
window the journal could not see before (pin written, ``pinned`` not yet journaled) converges to
the stack file as it was, instead of leaving the target pinned for ``reconcile`` to deploy
without a canary.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.promotion.journal import Journal, finished
from pipelines.promotion.stackfile import pinned_version, write_pin
from tests.unit.promotion.fakes import V1, V2, make_world


def test_a_pin_written_but_not_journaled_is_undone_by_resume(tmp_path: Path, repo: Path) -> None:
    world = make_world(tmp_path, repo, stack="dev")
    before = world.stack_path.read_text()
    Journal.begin(
        world.controller.journal_dir, kind="promote", service="adult-income", stack="dev", version=V2,
        previous=V1, actor="carol@example.com", message="modelrail: promote", reconcile="",
        previous_text=before,
    )  # fmt: skip
    write_pin(world.stack_path, "adult-income", V2)  # the crash comes right after this
    assert pinned_version(world.stack_path, "adult-income") == V2

    (outcome,) = world.controller.resume("ops@example.com")

    assert outcome.outcome == "aborted"
    assert world.stack_path.read_text() == before
    assert world.runner.messages == [], "nothing was deployed, by the resume either"
    (journal,) = finished(world.controller.journal_dir)
    assert journal.records[-1]["outcome"] == "aborted"

"""A declared progression ``[shadow, canary, full]``: each phase its own stack update and bake.

The shadow phase pins the previous version for users and the candidate as the shadow; a shadow
that fails its analysis ends the progression before any user traffic reaches the candidate, and
the one revert path takes the shadow off again. A healthy one goes on to the canary and then all
traffic. A crash in the shadow phase resumes to the previous version, shadow removed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import RolledBackError
from pipelines.promotion.journal import Journal, Step, finished, unfinished
from tests.unit.promotion.fakes import V1, V2, V3, World, declare_progression, make_world

SERVICE = "adult-income"


@pytest.fixture
def world(tmp_path: Path, repo: Path) -> World:
    world = make_world(tmp_path, repo, stack="staging")
    world.controller.evidence.save(SERVICE, V2, "candidate", True, "all checks passed", {"checks": []})
    declare_progression(world.stack_path)
    world.runner.update_seconds = 0.3
    return world


def _steps(journal: Journal) -> list[str]:
    return [str(record["step"]) for record in journal.records]


def test_a_healthy_candidate_goes_through_shadow_canary_and_full(world: World) -> None:
    before = world.stack_path.read_text()
    outcome = world.controller.promote(SERVICE, V2, "carol@example.com")
    assert outcome.outcome == "promoted"
    assert world.endpoint.serving == V2 and world.endpoint.shadowing is None
    assert world.endpoint.users_saw == [V1, V2]
    assert world.metrics.shadow_windows >= 1, "the shadow was judged on its own windows"
    modes = [decision["mode"] for decision in outcome.decisions]
    assert modes[0] == "shadow" and "canary" in modes, modes
    assert modes == sorted(modes, key=["shadow", "canary"].index), "the shadow is judged before the canary"
    shadow_verdicts = [d["verdict"] for d in outcome.decisions if d["mode"] == "shadow"]
    assert shadow_verdicts[-1] == "promote"
    # Two stack updates: the shadow's, then the candidate's; the stack file ends with the pin alone.
    assert len(world.runner.messages) == 2
    text = world.stack_path.read_text()
    assert "shadowVersion" not in text and f"modelVersion: {V2}" in text
    changed = [
        (old, new) for old, new in zip(before.splitlines(), text.splitlines(), strict=True) if old != new
    ]
    assert changed == [(f"      modelVersion: {V1}", f"      modelVersion: {V2}")]
    (journal,) = finished(world.controller.journal_dir)
    steps = _steps(journal)
    assert steps.count("update_started") == 2
    assert steps.index("shadow_passed") < steps.index("update_started", steps.index("shadow_passed"))


def test_a_failing_shadow_ends_the_progression_before_users_see_the_candidate(world: World) -> None:
    world.metrics.shadow_error_rate = 0.2
    with pytest.raises(RolledBackError, match="shadow analysis"):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert world.endpoint.users_saw == [V1], "no user request was answered by the candidate"
    assert world.endpoint.shadowing is None, "the revert's update took the shadow off"
    assert world.metrics.breaches == [], "nothing to abort: no user traffic was on the shadow"
    text = world.stack_path.read_text()
    assert "shadowVersion" not in text and f"modelVersion: {V1}" in text
    (entry,) = world.controller.audit.entries()
    assert entry["action"] == "promote:rolled_back"
    assert "shadow analysis" in entry["reason"] and "error" in entry["reason"]
    (journal,) = finished(world.controller.journal_dir)
    assert "shadow_passed" not in _steps(journal)
    assert journal.get(Step.DECIDED)["outcome"] == "rolled_back"


def test_a_shadow_the_endpoint_does_not_run_fails_the_phase(world: World) -> None:
    world.endpoint.next_update = "silently-undone"  # the update returns; no shadow variant appears
    real_up = world.runner.up

    def up_without_shadow(message: str) -> dict[str, object]:
        outputs = real_up(message)
        world.endpoint.shadowing = None
        return outputs

    world.runner.up = up_without_shadow  # type: ignore[method-assign]
    with pytest.raises(RolledBackError, match="shadow phase did not hold"):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert world.endpoint.users_saw == [V1]
    assert world.metrics.shadow_windows == 0, "a shadow that is not there is not judged"


def test_a_crash_in_the_shadow_phase_resumes_to_the_previous_version(world: World) -> None:
    calls = {"n": 0}
    real_window = world.metrics.window

    def window_then_crash(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the controller dies mid-bake, the shadow still running
        return real_window(*args, **kwargs)  # type: ignore[arg-type]

    world.metrics.window = window_then_crash  # type: ignore[assignment, method-assign]
    with pytest.raises(KeyboardInterrupt):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert world.endpoint.shadowing == V2 and world.endpoint.serving == V1
    (journal,) = unfinished(world.controller.journal_dir)
    assert journal.last(Step.UPDATE_STARTED)["shadow"] is True

    world.metrics.window = real_window  # type: ignore[method-assign]
    (outcome,) = world.controller.resume("carol@example.com")
    assert outcome.outcome == "failed"
    assert "shadow phase" in outcome.reason
    assert world.endpoint.serving == V1 and world.endpoint.shadowing is None
    assert world.endpoint.users_saw == [V1]
    assert "shadowVersion" not in world.stack_path.read_text()
    assert unfinished(world.controller.journal_dir) == []
    assert world.controller.audit.verify().ok


def test_a_rollback_takes_all_traffic_at_once_without_a_shadow(world: World) -> None:
    world.controller.evidence.save(SERVICE, V3, "candidate", True, "all checks passed", {"checks": []})
    world.controller.promote(SERVICE, V2, "carol@example.com")
    world.controller.promote(SERVICE, V3, "carol@example.com")
    judged, updates = world.metrics.shadow_windows, len(world.runner.messages)
    outcome = world.controller.rollback(SERVICE, "carol@example.com")
    assert outcome.outcome == "rolled_back" and outcome.version == V2
    assert world.metrics.shadow_windows == judged, "a rollback goes to a version that served here"
    assert len(world.runner.messages) == updates + 1
    assert world.endpoint.serving == V2 and world.endpoint.shadowing is None


def test_a_shadow_before_all_traffic_at_once_is_judged_too(world: World) -> None:
    declare_progression(world.stack_path, ("shadow", "full"), strategy="all_at_once")
    assert world.controller.service_config(SERVICE).deployment.phases == ("shadow", "full")
    world.metrics.shadow_error_rate = 0.2
    with pytest.raises(RolledBackError, match="shadow analysis"):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert world.endpoint.users_saw == [V1]
    world.metrics.shadow_error_rate = 0.0
    outcome = world.controller.promote(SERVICE, V2, "carol@example.com")
    assert outcome.outcome == "promoted"
    assert {decision["mode"] for decision in outcome.decisions} == {"shadow"}


def test_a_failed_shadow_update_is_named_and_reverted(world: World) -> None:
    from pipelines.errors import ModelrailError

    real_up = world.runner.up

    def up(message: str) -> dict[str, object]:
        if "restore" not in message and world.runner.messages == []:
            world.runner.messages.append(message)
            raise ModelrailError("the stack update failed", details=["ResourceLimitExceeded: ml.m5.large"])
        return real_up(message)

    world.runner.up = up  # type: ignore[method-assign]
    with pytest.raises(RolledBackError, match="shadow phase's update failed"):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    assert world.endpoint.users_saw == [V1] and world.endpoint.shadowing is None
    assert world.metrics.shadow_windows == 0
    (entry,) = world.controller.audit.entries()
    assert entry["action"] == "promote:failed" and "ResourceLimitExceeded" in entry["reason"]


def test_a_leftover_shadow_is_reconciled_away(world: World) -> None:
    world.controller.evidence.save(SERVICE, V1, "candidate", True, "all checks passed", {"checks": []})
    world.endpoint.shadowing = V2  # e.g. a revert whose update failed left it mirroring
    (outcome,) = world.controller.resume("carol@example.com")
    assert outcome.outcome == "promoted" and outcome.version == V1
    assert "shadow" in outcome.reason
    assert world.endpoint.shadowing is None and world.endpoint.serving == V1


def test_a_progression_with_a_shadow_is_never_emitted_as_one_patch(world: World, tmp_path: Path) -> None:
    from pipelines.errors import RefusedError

    patch = tmp_path / "promote.patch"
    with pytest.raises(RefusedError, match="shadow phase"):
        world.controller.emit_patch(SERVICE, V2, "carol@example.com", patch)
    assert not patch.exists()
    assert list(world.controller.audit.entries()) == []


def test_a_resumed_canary_still_reports_its_passed_shadow(world: World) -> None:
    calls = {"canary": 0}
    real_window = world.metrics.window

    def crash_in_the_canary(*args: object, **kwargs: object) -> object:
        if not kwargs.get("shadow"):
            calls["canary"] += 1
            if calls["canary"] == 2:
                raise KeyboardInterrupt
        return real_window(*args, **kwargs)  # type: ignore[arg-type]

    world.metrics.window = crash_in_the_canary  # type: ignore[assignment, method-assign]
    world.runner.update_seconds = 5.0
    with pytest.raises(KeyboardInterrupt):
        world.controller.promote(SERVICE, V2, "carol@example.com")
    world.metrics.window = real_window  # type: ignore[method-assign]
    world.runner.update_seconds = 0.0
    (outcome,) = world.controller.resume("carol@example.com")
    modes = [decision.get("mode") for decision in outcome.decisions]
    assert "shadow" in modes and modes.index("shadow") == 0, modes

"""The promotion controller stepped through each path against fakes of its ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.errors import LockedError, RefusedError, RolledBackError
from pipelines.promotion.journal import finished, unfinished
from pipelines.promotion.lock import PromotionLock
from tests.unit.promotion.fakes import V1, V2, V3, World, config_name, make_world


def _pinned(world: World) -> str | None:
    from pipelines.promotion.stackfile import pinned_version

    return pinned_version(world.stack_path, "adult-income")


def _pass_candidate_gates(world: World, sha: str) -> None:
    world.controller.evidence.save(
        "adult-income", sha, "candidate", True, "all checks passed", {"checks": []}
    )


def _actions(world: World) -> list[str]:
    return [entry["action"] for entry in world.controller.audit.entries()]


@pytest.fixture
def world(tmp_path: Path, repo: Path) -> World:
    world = make_world(tmp_path, repo, stack="dev")
    for sha in (V2, V3):
        _pass_candidate_gates(world, sha)
    return world


def test_a_promotion_that_holds_is_pinned_verified_and_recorded(world: World) -> None:
    before = world.stack_path.read_text()
    outcome = world.controller.promote("adult-income", V2[:12], "carol@example.com")
    assert outcome.outcome == "promoted"
    assert _pinned(world) == V2
    changed = [
        (old, new)
        for old, new in zip(before.splitlines(), world.stack_path.read_text().splitlines(), strict=True)
        if old != new
    ]
    assert changed == [(f"      modelVersion: {V1}", f"      modelVersion: {V2}")], "only the pin changes"
    assert world.runner.messages == [f"modelrail: promote adult-income {V2[:12]} by carol@example.com"]
    assert world.endpoint.serving == V2
    assert _actions(world) == ["promote:promoted"]
    assert world.controller.audit.verify().ok
    (journal,) = finished(world.controller.journal_dir)
    assert [record["step"] for record in journal.records] == [
        "begun",
        "pinned",
        "update_started",
        "update_finished",
        "verified",
        "recorded",
        "done",
    ]
    assert world.lineage.events == [("promote:promoted", V2, "carol@example.com")]


def test_promoting_the_serving_version_again_changes_nothing(world: World) -> None:
    world.controller.promote("adult-income", V2, "carol@example.com")
    again = world.controller.promote("adult-income", V2, "carol@example.com")
    assert again.outcome == "unchanged"
    assert len(world.runner.messages) == 1
    assert _actions(world) == ["promote:promoted"]


def test_a_rollout_sagemaker_undid_silently_is_failed_and_the_stack_file_reverted(world: World) -> None:
    before = world.stack_path.read_text()
    world.endpoint.next_update = "silently-undone"
    with pytest.raises(RolledBackError, match=f"InService on {config_name(V1)}, not {config_name(V2)}"):
        world.controller.promote("adult-income", V2, "carol@example.com")
    assert world.stack_path.read_text() == before
    assert world.runner.refreshes == 1
    assert _actions(world) == ["promote:failed"]
    assert world.controller.stable_versions("adult-income") == []
    assert not unfinished(world.controller.journal_dir)


def test_a_failed_endpoint_reports_its_reason(world: World) -> None:
    world.endpoint.next_update = "fails"
    with pytest.raises(RolledBackError, match="the endpoint is Failed: ResourceLimitExceeded") as caught:
        world.controller.promote("adult-income", V2, "carol@example.com")
    assert caught.value.exit_code == 5
    assert _pinned(world) == V1


def test_a_canary_breach_trips_the_alarm_and_rolls_back(tmp_path: Path, repo: Path) -> None:
    world = make_world(tmp_path, repo, stack="staging")
    _pass_candidate_gates(world, V2)
    world.runner.update_seconds = 60.0  # ends early: the breach trips the alarm
    world.metrics.canary_error_rate = 0.10
    with pytest.raises(RolledBackError, match="canary analysis"):
        world.controller.promote("adult-income", V2, "carol@example.com")
    (breach,) = world.metrics.breaches
    assert breach[0] == "5xx-rate"
    assert "error" in breach[1].lower()
    assert _pinned(world) == V1
    assert world.endpoint.serving == V1
    (entry,) = world.controller.audit.entries()
    assert entry["action"] == "promote:rolled_back"
    assert "5xx" in entry["reason"] or "error" in entry["reason"].lower()


def test_a_healthy_canary_bakes_and_is_promoted(tmp_path: Path, repo: Path) -> None:
    world = make_world(tmp_path, repo, stack="staging")
    _pass_candidate_gates(world, V2)
    world.runner.update_seconds = 0.3
    outcome = world.controller.promote("adult-income", V2, "carol@example.com")
    assert outcome.outcome == "promoted"
    assert outcome.decisions, "the canary was analysed while the update baked"
    assert all(decision["verdict"] != "rollback" for decision in outcome.decisions)
    assert world.metrics.breaches == []


def test_experimental_versions_are_refused_with_the_way_forward(world: World) -> None:
    world.registry.add(V3, stage="experimental")
    with pytest.raises(RefusedError, match="is experimental") as caught:
        world.controller.promote("adult-income", V3, "carol@example.com")
    assert "qualify --stage candidate" in caught.value.details[0]
    assert _pinned(world) == V1
    assert _actions(world) == []


def test_production_stacks_need_production_gates_and_a_valid_approval(tmp_path: Path, repo: Path) -> None:
    world = make_world(tmp_path, repo, stack="local")
    evidence = world.controller.evidence
    with pytest.raises(RefusedError, match="needs passing production-stage gates"):
        world.controller.promote("adult-income", V2, "carol@example.com")
    passed = evidence.save("adult-income", V2, "production", True, "ok", {"checks": ["a"]})
    with pytest.raises(RefusedError, match="needs a second person's approval"):
        world.controller.promote("adult-income", V2, "carol@example.com")
    evidence.approve("adult-income", V2, "local", "alice@example.com", passed, "looks good")
    evidence.save("adult-income", V2, "production", True, "ok", {"checks": ["a", "b"]})
    with pytest.raises(RefusedError, match=r"approval of .* by alice@example\.com is void"):
        world.controller.promote("adult-income", V2, "carol@example.com")
    current = evidence.load("adult-income", V2, "production")
    assert current is not None
    evidence.approve("adult-income", V2, "local", "alice@example.com", current, "again")
    assert world.controller.promote("adult-income", V2, "carol@example.com").outcome == "promoted"
    assert world.registry.versions[V2].stage == "production"


def test_only_one_promotion_per_service_and_stack_at_a_time(world: World) -> None:
    lock = PromotionLock(
        world.controller.lock_dir,
        service="adult-income",
        stack="dev",
        owner="dave@example.com",
        operation="promote",
    )
    with lock, pytest.raises(LockedError, match=r"locked by dave@example\.com"):
        world.controller.promote("adult-income", V2, "carol@example.com")
    assert _pinned(world) == V1
    assert world.controller.promote("adult-income", V2, "carol@example.com").outcome == "promoted"


def test_rollback_returns_to_the_last_stable_version(world: World) -> None:
    world.controller.promote("adult-income", V2, "carol@example.com")
    world.controller.promote("adult-income", V3, "carol@example.com")
    outcome = world.controller.rollback("adult-income", "erin@example.com")
    assert (outcome.version, outcome.outcome) == (V2, "rolled_back")
    assert _pinned(world) == V2
    assert world.runner.messages[-1] == f"modelrail: rollback adult-income to {V2[:12]} by erin@example.com"
    with pytest.raises(RefusedError, match="never served adult-income stably"):
        world.controller.rollback("adult-income", "erin@example.com", to=V1)


def test_rollback_without_history_is_refused(world: World) -> None:
    with pytest.raises(RefusedError, match="no earlier stable version"):
        world.controller.rollback("adult-income", "erin@example.com")


def test_declining_the_preview_changes_nothing_but_is_recorded(world: World) -> None:
    before = world.stack_path.read_text()
    outcome = world.controller.promote("adult-income", V2, "carol@example.com", confirm=lambda preview: False)
    assert outcome.outcome == "aborted"
    assert world.stack_path.read_text() == before
    assert world.runner.messages == []
    assert _actions(world) == ["promote:aborted"]


def test_approving_a_version_you_registered_is_refused(tmp_path: Path, repo: Path) -> None:
    world = make_world(tmp_path, repo, stack="local")
    world.controller.evidence.save("adult-income", V2, "production", True, "ok", {"checks": []})
    with pytest.raises(
        RefusedError, match=r"RITA@example\.com  registered .* cannot approve it \(four eyes\)"
    ):
        world.controller.approve("adult-income", V2, " RITA@example.com ")
    assert world.controller.evidence.approval("adult-income", V2, "local") is None
    approval = world.controller.approve(
        "adult-income", V2, "alice@example.com", "reviewed the fairness slices"
    )
    assert approval.evidence_digest == world.controller.evidence.load("adult-income", V2, "production").digest  # type: ignore[union-attr]
    assert world.registry.versions[V2].metadata["approved_by"] == "alice@example.com"
    assert _actions(world) == ["approve"]


def test_approval_needs_passing_production_evidence(tmp_path: Path, repo: Path) -> None:
    world = make_world(tmp_path, repo, stack="local")
    world.controller.evidence.save(
        "adult-income", V2, "production", False, "accuracy regressed", {"checks": []}
    )
    with pytest.raises(RefusedError, match="no passing production-stage gate report"):
        world.controller.approve("adult-income", V2, "alice@example.com")


def test_a_passing_candidate_gate_makes_an_experimental_version_a_candidate(world: World) -> None:
    world.registry.add(V3, stage="experimental")
    info = world.controller.record_gates(
        "adult-income",
        V3,
        "candidate",
        passed=True,
        summary="12 checks passed",
        report={"checks": []},
        actor="ci",
    )
    assert info.stage == "candidate"
    world.registry.add(V2, stage="experimental")
    refused = world.controller.record_gates(
        "adult-income",
        V2,
        "candidate",
        passed=False,
        summary="drift: age",
        report={"checks": [1]},
        actor="ci",
    )
    assert refused.stage == "experimental"
    assert _actions(world) == ["gates:passed", "gates:refused"]
    assert list(world.controller.audit.entries())[1]["reason"] == "drift: age"


def test_an_unexpected_error_after_the_pin_reverts_the_stack_file(world: World) -> None:
    before = world.stack_path.read_text()

    def broken_preview() -> None:
        raise ConnectionError("backend unreachable")

    world.runner.preview = broken_preview  # type: ignore[method-assign,assignment]
    with pytest.raises(ConnectionError):
        world.controller.promote("adult-income", V2, "carol@example.com")
    assert world.stack_path.read_text() == before
    (entry,) = world.controller.audit.entries()
    assert entry["action"] == "promote:failed"
    assert entry["reason"] == "ConnectionError: backend unreachable"
    assert not unfinished(world.controller.journal_dir)


def test_of_two_concurrent_promotions_of_one_service_exactly_one_proceeds(world: World) -> None:
    import threading

    world.runner.update_seconds = 0.5
    results: dict[str, str] = {}
    start = threading.Barrier(2)

    def promote(version: str) -> None:
        start.wait()
        try:
            results[version] = world.controller.promote("adult-income", version, "carol@example.com").outcome
        except LockedError:
            results[version] = "locked"

    threads = [threading.Thread(target=promote, args=(version,)) for version in (V2, V3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == ["locked", "promoted"]
    winner = next(version for version, outcome in results.items() if outcome == "promoted")
    assert _pinned(world) == winner
    assert _actions(world) == ["promote:promoted"]


def test_an_unknown_service_is_refused_naming_the_services_there_are(world: World) -> None:
    before = world.stack_path.read_text()
    with pytest.raises(
        RefusedError, match=r"no service 'adult-incme' in stack 'dev' \(services: adult-income, diabetes\)"
    ):
        world.controller.promote("adult-incme", V2, "carol@example.com")
    with pytest.raises(RefusedError, match="no service 'adult-incme'"):
        world.controller.rollback("adult-incme", "carol@example.com")
    assert world.stack_path.read_text() == before
    assert _actions(world) == []

"""The promotion lock and stack-file pinning (stage transitions: ``tests/unit/registry/test_stages.py``)."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest

from infra.config import load_stack_file
from pipelines.errors import LockedError, RefusedError
from pipelines.promotion.lock import PromotionLock, read_lock
from pipelines.promotion.stackfile import git_patch, pinned_version, write_pin

SHA = "ab" * 32


def _hold_lock(
    directory: str, ready: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event
) -> None:
    with PromotionLock(Path(directory), service="svc", stack="dev", owner="other", operation="promote"):
        ready.set()
        release.wait(10)


def test_a_held_lock_refuses_a_second_promotion(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(20)
        with (
            pytest.raises(LockedError, match="locked by other"),
            PromotionLock(tmp_path, service="svc", stack="dev", owner="me", operation="promote"),
        ):
            pass
    finally:
        release.set()
        holder.join(10)
    with PromotionLock(tmp_path, service="svc", stack="dev", owner="me", operation="promote") as lock:
        assert read_lock(lock.path) is not None
    assert not lock.path.exists(), "released on exit"


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "dev--svc.lock"
    dead = multiprocessing.get_context("spawn").Process(target=os.getpid)
    dead.start()
    dead.join()
    path.write_text(
        json.dumps(
            {
                "service": "svc",
                "stack": "dev",
                "owner": "crashed",
                "pid": dead.pid,
                "host": __import__("socket").gethostname(),
                "acquired_at": 0,
                "expires_at": 9e12,
                "operation": "promote",
            }
        )
    )
    with PromotionLock(tmp_path, service="svc", stack="dev", owner="me", operation="resume") as lock:
        assert lock.took_over is not None
        assert lock.took_over.owner == "crashed"


def test_an_expired_lock_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "dev--svc.lock"
    path.write_text(
        json.dumps(
            {
                "service": "svc",
                "stack": "dev",
                "owner": "slow",
                "pid": os.getpid(),
                "host": "elsewhere",
                "acquired_at": 0,
                "expires_at": 1,
                "operation": "promote",
            }
        )
    )
    with PromotionLock(tmp_path, service="svc", stack="dev", owner="me", operation="promote") as lock:
        assert lock.took_over is not None


@pytest.fixture
def stack_file(tmp_path: Path, repo: Path) -> Path:
    target = tmp_path / "stacks" / "Pulumi.prod.yaml"
    target.parent.mkdir()
    shutil.copy(repo / "stacks" / "Pulumi.prod.yaml", target)
    return target


def test_pinning_changes_only_the_version_line_and_keeps_comments(stack_file: Path) -> None:
    before = stack_file.read_text()
    previous = write_pin(stack_file, "fraud-score", SHA)
    after = stack_file.read_text()
    assert previous == before
    diff = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert len(diff) == 1
    assert diff[0][1] == f"      modelVersion: {SHA}"
    assert "# Pinned by `modelrail promote`; never edit by hand." in after
    assert pinned_version(stack_file, "fraud-score") == SHA


def test_the_capacity_floor_sits_beside_the_pin_changes_in_place_and_goes_when_not_needed(
    stack_file: Path,
) -> None:
    before = stack_file.read_text()
    write_pin(stack_file, "fraud-score", SHA, floor=14)
    added = [line for line in stack_file.read_text().splitlines() if line not in before.splitlines()]
    assert added == [f"      modelVersion: {SHA}", "      instanceCountFloor: 14"]
    assert f"modelVersion: {SHA}\n      instanceCountFloor: 14\n" in stack_file.read_text()
    write_pin(stack_file, "fraud-score", SHA, floor=18)
    assert (
        "instanceCountFloor: 18" in stack_file.read_text()
        and "instanceCountFloor: 14" not in stack_file.read_text()
    )
    assert load_stack_file(stack_file).service("fraud-score").rollout_instance_count == 18
    write_pin(stack_file, "fraud-score", SHA)
    assert "instanceCountFloor" not in stack_file.read_text()
    assert load_stack_file(stack_file).service("fraud-score").rollout_instance_count == 6, "instanceCount"


def test_the_floor_never_starts_more_instances_than_autoscaling_allows(stack_file: Path) -> None:
    write_pin(stack_file, "fraud-score", SHA, floor=90)  # maxInstances was lowered after the pin
    service = load_stack_file(stack_file).service("fraud-score")
    assert service.rollout_instance_count == service.autoscaling.max_instances == 20
    assert service.capacity_floor(90) == 20 and service.capacity_floor(6) is None
    assert service.capacity_floor(None) is None


def test_pinning_an_invalid_version_is_refused_and_writes_nothing(stack_file: Path) -> None:
    before = stack_file.read_text()
    with pytest.raises(RefusedError, match="would make the stack config invalid") as caught:
        write_pin(stack_file, "adult-income", "not-a-sha")
    assert "modelVersion" in caught.value.details[0]
    assert stack_file.read_text() == before


def test_pinning_an_unknown_service_is_refused(stack_file: Path) -> None:
    with pytest.raises(RefusedError, match="no service 'nope'"):
        write_pin(stack_file, "nope", SHA)


def test_the_git_patch_applies_with_git(stack_file: Path, tmp_path: Path) -> None:
    import subprocess

    patch = git_patch(stack_file, tmp_path, "adult-income", SHA)
    assert patch.startswith("diff --git a/stacks/Pulumi.prod.yaml b/stacks/Pulumi.prod.yaml\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "change.patch").write_text(patch)
    subprocess.run(["git", "apply", "change.patch"], cwd=tmp_path, check=True)
    assert pinned_version(stack_file, "adult-income") == SHA


def test_pinning_keeps_a_four_space_file_in_its_own_style(stack_file: Path) -> None:
    four = "\n".join(
        line.replace("  ", "    ") if line.startswith(" ") else line
        for line in stack_file.read_text().splitlines()
    )
    stack_file.write_text(four + "\n")
    write_pin(stack_file, "adult-income", SHA)
    changed = [
        (a, b) for a, b in zip(four.splitlines(), stack_file.read_text().splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 1
    assert changed[0][1].strip() == f"modelVersion: {SHA}"

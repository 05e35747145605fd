"""Two promotions of one service at once: the pin is compared under the lock, so the second waits
its turn or exits 4 naming the holder; it never reports the first one's target as "already serving".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from pipelines.errors import ExitCode
from pipelines.promotion.journal import Step, unfinished
from pipelines.promotion.stackfile import pinned_version
from tests.unit.promotion.fakes import V1, V2, make_world


def _start(world_dir: Path, repo: Path, version: str, update_seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.unit.promotion.promote_child", str(world_dir), str(repo), version,
         str(update_seconds)],
        cwd=repo, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _world(tmp_path: Path, repo: Path) -> Path:
    world = make_world(tmp_path, repo, stack="dev")
    world.controller.evidence.save("adult-income", V2, "candidate", True, "ok", {"checks": []})
    return tmp_path


def test_a_second_promotion_of_the_version_being_baked_exits_4_naming_the_holder(
    tmp_path: Path, repo: Path
) -> None:
    world_dir = _world(tmp_path, repo)
    first = _start(world_dir, repo, V2, update_seconds=4.0)
    journal_dir = world_dir / "state" / "journal" / "dev"
    deadline = time.monotonic() + 60
    while not any(j.has(Step.UPDATE_STARTED) for j in unfinished(journal_dir)):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the first promotion never started its update"
        time.sleep(0.05)
    assert pinned_version(world_dir / "project" / "stacks" / "Pulumi.dev.yaml", "adult-income") == V2

    second = _start(world_dir, repo, V2, update_seconds=0.0)
    out, err = second.communicate(timeout=120)

    assert second.returncode == ExitCode.LOCKED, (out, err)
    assert "locked by carol@example.com" in err and "unchanged" not in out
    first_out, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert first_out.startswith("promoted")


def test_of_two_promote_processes_started_together_one_proceeds_and_the_other_exits_4(
    tmp_path: Path, repo: Path
) -> None:
    world_dir = _world(tmp_path, repo)
    children = [_start(world_dir, repo, V2, update_seconds=2.0) for _ in range(2)]
    results = [(child.wait(timeout=120), *child.communicate()) for child in children]

    assert sorted(code for code, _, _ in results) == [0, ExitCode.LOCKED], results
    (winner,) = [out for code, out, _ in results if code == 0]
    assert winner.startswith("promoted")
    reopened = make_world(tmp_path, repo, stack="dev", fresh=False)
    assert pinned_version(reopened.stack_path, "adult-income") == V2 != V1
    assert [e["action"] for e in reopened.controller.audit.entries()] == ["promote:promoted"]

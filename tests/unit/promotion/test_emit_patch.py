"""``promote --emit-patch`` through the controller: checked like a promotion, written, audited."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from pipelines.errors import RefusedError
from pipelines.promotion.stackfile import pinned_version
from pipelines.runtimes.ports import RuntimeAdapters
from tests.unit.promotion.fakes import V1, V2, V3, make_world
from tests.unit.promotion.stepped_fakes import as_kserve


def test_the_patch_is_written_and_its_sha256_audited_and_nothing_deployed(tmp_path: Path, repo: Path) -> None:
    world = make_world(tmp_path, repo, stack="dev")
    world.controller.evidence.save("adult-income", V2, "candidate", True, "ok", {"checks": []})
    patch = tmp_path / "promote.patch"

    outcome = world.controller.emit_patch("adult-income", V2, "carol@example.com", patch)

    assert (outcome.outcome, outcome.version, outcome.previous) == ("patch_emitted", V2, V1)
    text = patch.read_text()
    assert f"+      modelVersion: {V2}" in text and f"-      modelVersion: {V1}" in text
    (entry,) = world.controller.audit.entries()
    assert entry["action"] == "promote:patch_emitted" and entry["actor"] == "carol@example.com"
    assert entry["patch_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert pinned_version(world.stack_path, "adult-income") == V1, "the stack file itself is untouched"
    assert world.runner.messages == []
    project = tmp_path / "project"
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    applied = subprocess.run(
        ["git", "apply", "--check", str(patch)], check=False, cwd=project, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr


def test_an_ungated_version_gets_no_patch_and_no_entry(tmp_path: Path, repo: Path) -> None:
    world = make_world(tmp_path, repo, stack="prod")
    patch = tmp_path / "promote.patch"
    with pytest.raises(RefusedError):
        world.controller.emit_patch("adult-income", V3, "carol@example.com", patch)
    assert not patch.exists()
    assert list(world.controller.audit.entries()) == []


def test_a_stepped_canary_is_never_emitted_as_one_patch(tmp_path: Path, repo: Path) -> None:
    world = make_world(tmp_path, repo, stack="dev")
    as_kserve(world.stack_path)
    world.controller.adapters = {
        "kserve": RuntimeAdapters(
            "kserve", world.endpoint, world.metrics, world.metrics, traffic_steps=lambda s: (25, None)
        )
    }
    world.controller.evidence.save("adult-income", V2, "candidate", True, "ok", {"checks": []})
    patch = tmp_path / "promote.patch"
    with pytest.raises(RefusedError, match="all traffic at once, unjudged"):
        world.controller.emit_patch("adult-income", V2, "carol@example.com", patch)
    assert not patch.exists()
    assert list(world.controller.audit.entries()) == []

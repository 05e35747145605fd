"""The README's main command, end to end: `modelrail demo` tells the whole story and cleans up.

v1 serves in production, v2 is refused at a gate with its reasons, v3 is stopped in its shadow phase naming the
breached guardrail, the audit log verifies, no process is left behind, and the repository's
tracked files are untouched.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.e2e.demo_run import run_demo

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("demo")]


def _ours(state: Path) -> list[str]:
    """Live processes started for this workspace: they inherit its ``MODELRAIL_STATE_DIR``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            home = process.environ().get("MODELRAIL_STATE_DIR", "")
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if home.startswith(str(state)):
            found.append(" ".join(process.info["cmdline"] or []))
    return found


def _tracked_changes(repo: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_demo_tells_the_whole_story(repo: Path, tmp_path: Path) -> None:
    tracked_before = _tracked_changes(repo)
    report_json = tmp_path / "demo.json"
    state = tmp_path / "workspace"
    result = run_demo(repo, tmp_path, "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(report_json.read_text())
    assert json.loads(result.stdout) == report, "--json prints the same report on stdout"
    steps = report["steps"]
    versions: dict[str, list[tuple[str, str]]] = {}
    for step in steps:
        assert set(step) == {"action", "service", "version", "stack", "outcome", "reason"}
        assert step["outcome"] in {"registered", "passed", "refused", "approved", "promoted", "rolled_back"}
        if step["outcome"] in {"refused", "rolled_back"}:
            assert step["reason"], step
        versions.setdefault(step["version"], []).append((step["action"], step["outcome"]))
    v1, v2, v3, v4 = list(versions)
    assert versions[v1][-1] == ("promote", "promoted")
    assert versions[v2][-1] == ("gates:candidate", "refused")
    refused = next(s for s in steps if s["version"] == v2 and s["outcome"] == "refused")
    assert "drift" in refused["reason"] and "age" in refused["reason"]
    assert versions[v3][-1] == ("promote", "rolled_back")
    rolled_back = next(s for s in steps if s["version"] == v3 and s["outcome"] == "rolled_back")
    assert "p99-latency" in rolled_back["reason"] or "p99_latency" in rolled_back["reason"]
    assert "shadow analysis" in rolled_back["reason"], "v3 is stopped before any user traffic moves"
    assert ("approve", "approved") in versions[v3]
    assert versions[v4][-1] == ("promote", "promoted")
    promoted = next(s for s in steps if s["version"] == v4 and s["outcome"] == "promoted")
    assert promoted["reason"] == "through shadow, canary, full"
    assert report["final"] == {"serving": {"adult-income": v4}, "audit_verified": True, "story_holds": True}

    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Audit trail" in markdown and "promote:rolled_back" in markdown
    assert "## Shadow analysis of v3" in markdown
    assert (tmp_path / "report" / "shadow.png").stat().st_size > 10_000

    assert _ours(state) == [], "the demo stops every process it starts"
    assert _tracked_changes(repo) == tracked_before, (
        "a demo run leaves the repository's tracked files untouched"
    )

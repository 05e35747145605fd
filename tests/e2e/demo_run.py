"""How the e2e tests run the demo: as a user does, a fresh process in its own workspace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_demo(
    repo: Path, workspace: Path, *extra: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``modelrail demo`` with its JSON report at ``workspace/demo.json`` and its state beside it."""
    return subprocess.run(
        [
            sys.executable, "-m", "pipelines.cli", "demo",
            "--json-report", str(workspace / "demo.json"),
            "--report-dir", str(workspace / "report"),
            "--state-dir", str(workspace / "workspace"),
            *extra,
        ],
        cwd=repo, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip

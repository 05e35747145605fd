"""Kill a promotion in a child process right after a journaled step (``CRASH_AFTER_ENV``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pipelines.promotion.journal import CRASH_AFTER_ENV


def run_killed_after(step: str, child: str, world_dir: Path, repo: Path) -> None:
    """Run ``tests.unit.promotion.<child>`` on the world in ``world_dir`` until the journal's hook
    SIGKILLs it just after ``step``; fail unless it died exactly that way."""
    result = subprocess.run(
        [sys.executable, "-m", f"tests.unit.promotion.{child}", str(world_dir), str(repo)],
        cwd=repo,
        env={**os.environ, CRASH_AFTER_ENV: step},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr

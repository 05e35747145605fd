"""Run one ``promote`` in a child process over file-backed fakes, exiting as the CLI would.

Usage: python -m tests.unit.promotion.promote_child WORLD_DIR REPO VERSION UPDATE_SECONDS

The exit code is the typed error's (``pipelines.errors.ExitCode``), 0 on success; stdout is the
outcome, stderr the error message.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.errors import ModelrailError
from tests.unit.promotion.fakes import make_world

if __name__ == "__main__":
    world_dir, repo, version, seconds = sys.argv[1:5]
    world = make_world(Path(world_dir), Path(repo), stack="dev", fresh=False)
    world.runner.update_seconds = float(seconds)
    try:
        outcome = world.controller.promote("adult-income", version, "carol@example.com")
    except ModelrailError as error:
        print(error.message, file=sys.stderr)
        sys.exit(int(error.exit_code))
    print(f"{outcome.outcome} {outcome.reason}")

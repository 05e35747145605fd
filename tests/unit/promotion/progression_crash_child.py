"""Run one promotion through ``[shadow, canary, full]`` in a child process over file-backed fakes,
to SIGKILL it.

Usage: python -m tests.unit.promotion.progression_crash_child WORLD_DIR REPO
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.unit.promotion.fakes import V2, make_world

if __name__ == "__main__":
    world = make_world(Path(sys.argv[1]), Path(sys.argv[2]), stack="staging", fresh=False)
    world.runner.update_seconds = 0.3
    world.controller.promote("adult-income", V2, "carol@example.com")

"""Run one stepped (KServe) promotion in a child process over file-backed fakes, to SIGKILL it.

Usage: python -m tests.unit.promotion.stepped_crash_child WORLD_DIR REPO
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.unit.promotion.fakes import V2
from tests.unit.promotion.stepped_fakes import SERVICE, make_stepped_world

if __name__ == "__main__":
    world = make_stepped_world(Path(sys.argv[1]), Path(sys.argv[2]), fresh=False)[0]
    world.controller.promote(SERVICE, V2, "carol@example.com")

"""Promote V2 in a child process over the rolling fakes, so the parent can SIGKILL it mid-bake.

Usage: python -m tests.unit.promotion.bake_child WORLD_DIR REPO ROLLOUT_SECONDS
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.unit.promotion.fakes import V2
from tests.unit.promotion.rolling_fakes import SERVICE, make_rolling_world

if __name__ == "__main__":
    import scipy.spatial.distance
    import scipy.stats  # noqa: F401 - imported up front: the checks import them lazily, slowly

    world = make_rolling_world(
        Path(sys.argv[1]), Path(sys.argv[2]), fresh=False, rollout_seconds=float(sys.argv[3])
    )
    world.controller.promote(SERVICE, V2, "carol@example.com")

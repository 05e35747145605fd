"""Snapshots of every stack's offline plan: any infrastructure change shows up as a test diff.

After an intended change, review the diff and run ``pytest tests/unit/test_plan_snapshots.py
--snapshot-update``.
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from infra.config import STACK_NAMES
from pipelines.plan import build_plan


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_plan_matches_its_snapshot(stack: str, snapshot: SnapshotAssertion) -> None:
    plan = build_plan(stack)
    assert plan.pop("duration") > 0  # the run time, the one part of a plan that differs between runs
    assert plan == snapshot.use_extension(JSONSnapshotExtension)

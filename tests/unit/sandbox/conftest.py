"""The serving tests' small real packages, for the router tests that run a model server of each task."""

from __future__ import annotations

from tests.unit.serving.conftest import diabetes, iris

__all__ = ["diabetes", "iris"]

"""Where things live: the project root, its stack files, and the controller's state directory."""

from __future__ import annotations

import os
from pathlib import Path

from infra.config import stack_file


def project_root() -> Path:
    """The directory holding ``Pulumi.yaml``: ``MODELRAIL_PROJECT_DIR``, else the nearest parent."""
    configured = os.environ.get("MODELRAIL_PROJECT_DIR")
    if configured:
        return Path(configured).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return Path(__file__).resolve().parent.parent


def stacks_dir() -> Path:
    """The stack config directory (``stackConfigDir`` in ``Pulumi.yaml``)."""
    return project_root() / "stacks"


def stack_path(stack: str) -> Path:
    """``stacks/Pulumi.<stack>.yaml`` of the current project."""
    return stack_file(stacks_dir(), stack)


def state_dir() -> Path:
    """The controller's local state (embedded AWS, journals, locks, audit logs).

    ``MODELRAIL_STATE_DIR`` moves it, which is how the demo and the tests work in a
    workspace of their own without touching the repository's files.
    """
    configured = os.environ.get("MODELRAIL_STATE_DIR")
    path = Path(configured) if configured else project_root() / ".modelrail"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()

"""What the promotion controller needs from the registry, the gates and lineage.

The controller talks to these narrow interfaces only; ``pipelines.promotion.wiring`` binds them
to the S3 + SageMaker registry, the gate runner and the lineage catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version as the controller sees it."""

    service: str
    sha: str
    stage: str
    registrant: str
    metadata: dict[str, str] = field(default_factory=dict)


class VersionStore(Protocol):
    """The model registry, reduced to what promotions read and write."""

    def get_version(self, service: str, version: str) -> VersionInfo:
        """Resolve a version (full sha or a unique prefix); raise a ``RefusedError`` if unknown."""

    def set_stage(self, service: str, sha: str, stage: str, actor: str) -> None:
        """Record the version's stage on its registry entry."""

    def approve(self, service: str, sha: str, actor: str, description: str) -> None:
        """Mark the registry entry approved, naming who approved and the evidence digest."""

    def download(self, service: str, sha: str, target: Path) -> Path:
        """The version's package tarball, fetched to ``target`` and checked against its sha256."""


class LineageSink(Protocol):
    """Where promotion events go so lineage can answer "what was serving then"."""

    def record(
        self, kind: str, *, service: str, version: str, stack: str, actor: str, payload: dict[str, Any]
    ) -> None:
        """Record one event; once per ``payload["journal"]`` when it has one (``resume`` may repeat it)."""

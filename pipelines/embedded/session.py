"""Use the embedded AWS: find or start the server, replay the record, seed the stack, make clients.

``ensure_embedded(stack)`` is what commands call. ``embedded_session(state_dir)`` is for tests
and the demo: it starts a server that CLI subprocesses sharing ``MODELRAIL_STATE_DIR`` reuse,
and always stops it on the way out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from pipelines.embedded import server
from pipelines.embedded.record import LocalRecord
from pipelines.embedded.seed import declared_resources, seed
from pipelines.paths import state_dir as default_state_dir

AWS_MODE_ENV = "MODELRAIL_AWS"
"""``embedded`` sends every stack to the embedded AWS; the ``local`` stack always goes there."""

EMBEDDED_KEY = "testing"
"""Dummy credentials: the embedded server accepts anything, and real ones must never reach it."""

_SEEDED_FILE = "embedded/seeded.json"


def embedded_selected(stack: str) -> bool:
    """Whether ``stack`` runs against the embedded AWS rather than a real account."""
    return stack == "local" or os.environ.get(AWS_MODE_ENV, "").strip().lower() == "embedded"


@dataclass(frozen=True)
class EmbeddedAws:
    """A reachable embedded AWS and the record that survives it."""

    endpoint_url: str
    state_dir: Path
    server: server.ServerInfo

    @property
    def record(self) -> LocalRecord:
        return LocalRecord(self.state_dir)

    def client(self, service_name: str, region: str = "us-east-1") -> Any:
        """A boto3 client that talks only to the embedded server."""
        import boto3

        from pipelines.dependencies import guard_client, retry_config

        session = boto3.session.Session(
            aws_access_key_id=EMBEDDED_KEY, aws_secret_access_key=EMBEDDED_KEY, region_name=region
        )
        client = session.client(
            service_name,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            config=retry_config(embedded=True, s3={"addressing_style": "path"}),
        )
        return guard_client(client, f"the embedded AWS at {self.endpoint_url}")


def ensure_embedded(stack: str | None = None, *, state: Path | None = None) -> EmbeddedAws:
    """The running embedded AWS for this state directory; started and restored if it is gone.

    With ``stack``, the stack's declared buckets and groups are created too (once per server).
    """
    state = state or default_state_dir()
    with FileLock(str(state / "embedded.lock")):
        info = server.recorded(state)
        if info is None or not server.is_alive(info):
            _, info = server.spawn(state, detached=True)
            server.record(state, info)
            aws = EmbeddedAws(info.endpoint_url, state, info)
            aws.record.replay(aws.client)
        aws = EmbeddedAws(info.endpoint_url, state, info)
        if stack is not None:
            _seed_once(aws, stack)
        return aws


def _seed_once(aws: EmbeddedAws, stack: str) -> None:
    """Create the stack's declared resources unless this server already has them (plans are slow)."""
    path = aws.state_dir / _SEEDED_FILE
    identity = f"{aws.server.pid}:{aws.server.create_time}"
    try:
        seeded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        seeded = {}
    if seeded.get("server") != identity:
        seeded = {"server": identity, "stacks": []}
    if stack in seeded["stacks"]:
        return
    resources = declared_resources(stack)
    seed(aws.client("s3", resources.region), aws.client("sagemaker", resources.region), resources)
    seeded["stacks"] = sorted({*seeded["stacks"], stack})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(seeded, sort_keys=True) + "\n", encoding="utf-8")


def status(state: Path | None = None) -> dict[str, Any]:
    """Whether the recorded server runs, where, and how much the local record holds."""
    state = state or default_state_dir()
    info = server.recorded(state)
    alive = info is not None and server.is_alive(info)
    record = LocalRecord(state)
    return {
        "running": alive,
        "endpoint_url": info.endpoint_url if info and alive else None,
        "pid": info.pid if info and alive else None,
        "started_at": info.started_at if info and alive else None,
        "state_dir": str(state),
        "recorded_objects": len(record.objects()),
        "recorded_packages": sum(len(record.packages(group)) for group in record.groups()),
    }


def stop(state: Path | None = None) -> bool:
    """Stop the server of this state directory; ``True`` if one was running. The record stays."""
    state = state or default_state_dir()
    with FileLock(str(state / "embedded.lock")):
        info = server.recorded(state)
        was_running = info is not None and server.is_alive(info)
        server.stop(state)
        return was_running


@contextmanager
def embedded_session(state: Path, stack: str | None = None) -> Iterator[EmbeddedAws]:
    """An embedded AWS for the duration of a block (tests, the demo); stopped however the block ends."""
    state.mkdir(parents=True, exist_ok=True)
    try:
        yield ensure_embedded(stack, state=state)
    finally:
        stop(state)

"""A write-ahead journal of each promotion, so a crash at any step can be resumed or undone.

Every step is appended (and fsync'd) before the controller moves on. ``modelrail resume``
reads the journals that never reached ``done`` and converges them: forward when the rollout
provably happened, backward (stack file reverted, stack refreshed) when it did not.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

CRASH_AFTER_ENV = "MODELRAIL_CRASH_AFTER"
"""Fault injection for crash-recovery tests: the process SIGKILLs itself right after journaling
the named step, exactly as a crash there would leave things. ``analysed:2`` names the second
record of a repeated step. Unset in normal use."""
KILL_AFTER_ENV = "MODELRAIL_KILL_AFTER"
"""Fault injection for dependency-failure tests: ``STEP=PID[,PID...]`` (``STEP`` as above)
SIGKILLs those processes (the embedded AWS, the sandbox daemon) right after journaling that
step, and carries on. Unset in normal use."""


class Step(StrEnum):
    """The journaled steps of one promotion or rollback, in order."""

    BEGUN = "begun"
    """Lock held; the previous and the target version are known. Nothing has changed yet."""
    PINNED = "pinned"
    """The stack file pins the target version. The previous text is in the journal."""
    UPDATE_STARTED = "update_started"
    """The stack update is running; the endpoint may be mid-rollout. Carries the analysis policy
    and the time the canary analysis counts from."""
    ANALYSED = "analysed"
    """One canary-analysis interval: its window and decision, journaled before it is acted on
    (one record per interval)."""
    SHADOW_PASSED = "shadow_passed"
    """The shadow phase of a progression passed its analysis: the next update pins the candidate
    for user traffic (no user saw the shadow's answers)."""
    SHIFTED = "shifted"
    """A stepped rollout (KServe) pinned its next traffic step (``percent``; None: all traffic) and
    runs the stack update that applies it (one record per step)."""
    UPDATE_FINISHED = "update_finished"
    """The rollout's last update ended while the controller watched it (which alone proves nothing:
    SageMaker can roll back silently)."""
    DECIDED = "decided"
    """The rollout did not hold: ``outcome`` and ``reason`` are final. What remains is putting the
    previous version back (stack file and endpoint) and recording it."""
    VERIFIED = "verified"
    """The endpoint serves the target version's configuration, InService."""
    RECORDED = "recorded"
    """Registry stage, audit log and lineage carry the outcome."""
    DONE = "done"
    """Finished, with an outcome; the lock is released."""


@dataclass
class Journal:
    """One promotion's journal file and what it has recorded so far."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def begin(cls, directory: Path, **fields: Any) -> Journal:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        journal = cls(directory / f"{stamp}-{uuid.uuid4().hex[:8]}.jsonl")
        journal.write(Step.BEGUN, id=journal.path.stem, **fields)
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal:
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line: the step it describes never completed
        return cls(path, records)

    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def header(self) -> dict[str, Any]:
        return self.records[0]

    @property
    def last_step(self) -> Step:
        return Step(self.records[-1]["step"])

    def has(self, step: Step) -> bool:
        return any(record["step"] == step for record in self.records)

    def get(self, step: Step) -> dict[str, Any]:
        return next(record for record in self.records if record["step"] == step)

    def last(self, step: Step) -> dict[str, Any]:
        """The latest record of a step (a progression starts its analysis once per phase)."""
        return next(record for record in reversed(self.records) if record["step"] == step)

    def since_last(self, marker: Step, step: Step) -> list[dict[str, Any]]:
        """The records of ``step`` after the latest ``marker``, in order (all of them without one)."""
        starts = [index for index, record in enumerate(self.records) if record["step"] == marker]
        after = self.records[starts[-1] + 1 :] if starts else self.records
        return [record for record in after if record["step"] == step]

    def all(self, step: Step) -> list[dict[str, Any]]:
        """Every record of a repeated step, in order."""
        return [record for record in self.records if record["step"] == step]

    def write(self, step: Step, **fields: Any) -> None:
        record = {"step": str(step), "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records.append(record)
        _inject_faults(step, len(self.all(step)))


def _inject_faults(step: Step, count: int) -> None:
    """The test hooks ``CRASH_AFTER_ENV`` and ``KILL_AFTER_ENV``; nothing happens when unset."""
    names = (str(step), f"{step}:{count}")
    kill = os.environ.get(KILL_AFTER_ENV, "")
    if kill:
        when, _, pids = kill.partition("=")
        if when in names:
            for pid in pids.split(","):
                if pid.strip().isdigit():
                    _kill_and_wait(int(pid))
    if os.environ.get(CRASH_AFTER_ENV) in names:
        os.kill(os.getpid(), signal.SIGKILL)


def _kill_and_wait(pid: int, timeout: float = 10.0) -> None:
    import psutil

    try:
        process = psutil.Process(pid)
        process.kill()
        deadline = time.monotonic() + timeout
        while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
    except psutil.Error:
        pass  # already gone


def unfinished(directory: Path) -> list[Journal]:
    """Journals that never reached ``done``, oldest first."""
    if not directory.exists():
        return []
    journals = [Journal.load(path) for path in sorted(directory.glob("*.jsonl"))]
    return [journal for journal in journals if journal.records and not journal.has(Step.DONE)]


def finished(directory: Path) -> list[Journal]:
    """Completed journals, oldest first (the promotion history of a stack)."""
    if not directory.exists():
        return []
    journals = [Journal.load(path) for path in sorted(directory.glob("*.jsonl"))]
    return [journal for journal in journals if journal.has(Step.DONE)]

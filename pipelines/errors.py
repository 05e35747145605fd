"""Typed errors of the controller, each mapped to one documented exit code.

Commands raise these instead of printing and exiting themselves, so the mapping from a failure
to an exit code lives in one place (``pipelines.cli.main``) and stays documented in the README.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every ``modelrail`` command (the README's exit-code table mirrors this)."""

    OK = 0
    """Success: the command did what it was asked, or found nothing wrong."""
    FAILED = 1
    """A verdict against the input: invalid config, failing gate, policy violation, refused step."""
    BAD_INPUT = 2
    """The input could not be read at all: missing or unreadable file, malformed data, bad flag."""
    CHANGES = 3
    """A diff found changes (``plan --diff-against``); not an error, a signal for scripts."""
    LOCKED = 4
    """Another promotion or stack update holds the lock; retry later or recover the stale lock."""
    ROLLED_BACK = 5
    """The rollout did not stick: the endpoint or the canary analysis rolled it back; or, for
    ``verify``, an endpoint does not run what the stack declares."""
    IN_PROGRESS = 6
    """The endpoint was still rolling out when the controller stopped waiting: nothing was decided
    or reverted; ``modelrail resume`` decides once ``DescribeEndpoint`` settles. For ``canary judge``:
    a run's telemetry ended before the judge decided."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C; the journal lets ``modelrail resume`` finish or undo the step."""


class ModelrailError(Exception):
    """Base of every error a command reports to the user without a traceback."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_json(self) -> dict[str, object]:
        """The machine-readable form printed under ``--json``."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "details": self.details,
            "exit_code": int(self.exit_code),
        }


class BadInputError(ModelrailError):
    """A file or argument that cannot be read or parsed."""

    exit_code = ExitCode.BAD_INPUT


class RefusedError(ModelrailError):
    """A well-formed request that the rules refuse (gate failure, four eyes, illegal transition)."""

    exit_code = ExitCode.FAILED


class LockedError(ModelrailError):
    """The stack or service is locked by another update."""

    exit_code = ExitCode.LOCKED


class RolledBackError(ModelrailError):
    """A rollout that was undone, by SageMaker or by canary analysis."""

    exit_code = ExitCode.ROLLED_BACK


class RolloutInProgressError(ModelrailError):
    """The endpoint is still transitional (``Updating``, ``RollingBack``…) after the controller's wait.

    Reverting then would start a second update on an endpoint that SageMaker is still deploying
    (which it refuses) and throw away a rollout that may yet hold, so the journal is left as it
    is for ``modelrail resume``.
    """

    exit_code = ExitCode.IN_PROGRESS


class InterruptedByUserError(ModelrailError):
    """Ctrl-C; whatever was in flight is left to ``modelrail resume``."""

    exit_code = ExitCode.INTERRUPTED

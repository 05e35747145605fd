"""When a dependency stops answering: one typed error, and the AWS clients that raise it.

A promotion leans on services it does not run: the AWS APIs (or the embedded AWS, a moto
server on loopback), the sandbox daemon, the Pulumi backend. Calls that are safe to repeat are
retried with backoff (botocore's ``standard`` retry mode for AWS); when a dependency is still
gone after that, the command stops with ``DependencyUnavailableError``, which names the
dependency and what to do, instead of a library's traceback. The journal is left so that
``modelrail resume`` converges once the dependency is back.
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import ModelrailError

AWS_MAX_ATTEMPTS = 5
"""Attempts per AWS call (botocore ``standard`` mode: exponential backoff with jitter)."""
EMBEDDED_MAX_ATTEMPTS = 3
"""The embedded AWS is on loopback: a refused connection means the process is gone, so fewer."""


RESUME_HINT = "run `modelrail resume` once it is back"


class DependencyUnavailableError(ModelrailError):
    """A dependency (AWS, the embedded AWS, the sandbox daemon) did not answer, retries included.

    Whatever was in flight is journaled; ``modelrail resume`` finishes or undoes it once the
    dependency answers again. ``condition`` is what was wrong without what to do about it (what
    an audit entry records); the message adds ``hint``.
    """

    def __init__(self, condition: str, *, hint: str = RESUME_HINT, details: list[str] | None = None) -> None:
        super().__init__(f"{condition}; {hint}" if hint else condition, details=details)
        self.condition = condition


def retry_config(*, embedded: bool, **extra: Any) -> Any:
    """A botocore ``Config`` with ``standard``-mode retries (and any other ``Config`` options)."""
    from botocore.config import Config

    attempts = EMBEDDED_MAX_ATTEMPTS if embedded else AWS_MAX_ATTEMPTS
    return Config(retries={"max_attempts": attempts, "mode": "standard"}, **extra)


def guard_client(client: Any, dependency: str) -> Any:
    """Make ``client`` raise ``DependencyUnavailableError`` when its endpoint does not answer.

    botocore emits ``after-call-error`` once its retries are spent; a handler that raises replaces
    the connection error (``EndpointConnectionError``, timeouts, a closed connection) with ours.
    ``dependency`` names it for people, e.g. "the embedded AWS at http://127.0.0.1:5000".
    """
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    def unavailable(exception: BaseException | None = None, **_: Any) -> None:
        if isinstance(exception, BotoConnectionError | HTTPClientError):
            service = client.meta.service_model.service_name
            raise DependencyUnavailableError(
                f"{dependency} is not answering",
                details=[f"{service}: {exception}", "the journal keeps whatever was in flight"],
            ) from exception

    client.meta.events.register("after-call-error", unavailable)
    return client

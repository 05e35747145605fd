"""What the endpoint really runs: waiting for it to settle, verifying it, and running the update.

SageMaker can roll an update back while the provider reports success, and a long rollout
outlives ``pulumi up``, so the controller decides by ``DescribeEndpoint`` (the endpoint
inspector), never by the exit of ``up`` alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.dependencies import DependencyUnavailableError
from pipelines.errors import ModelrailError, RefusedError
from pipelines.promotion.bake import Finished
from pipelines.runners.base import EndpointInspector, EndpointState, StackRunner

if TYPE_CHECKING:
    from pipelines.promotion.controller import Timeouts

TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollingBack"})
FAILED_STATES = frozenset({"Failed", "UpdateRollbackFailed", "RollingBack", "OutOfService"})

Progress = Callable[[str, dict[str, Any]], None]


@dataclass
class EndpointWatch:
    """The stack runner and the endpoint inspector, as the controller watches a rollout through them."""

    runner: StackRunner
    endpoints: EndpointInspector
    timeouts: Timeouts
    progress: Progress

    def not_serving(self, service: str, version: str) -> str:
        """'' when the endpoint runs ``version`` InService, else what it does run."""
        state = self.endpoints.describe(service)
        try:
            expected = self.endpoints.expected_config(service, version, self.outputs_quietly())
        except RefusedError:
            return ""  # the stack cannot say which configuration that is: nothing to compare
        if state.status == "InService" and state.config_name == expected:
            return ""
        running = f" on {state.config_name}" if state.config_name else ""
        reason = f": {state.failure_reason}" if state.failure_reason else ""
        return f"the endpoint is {state.status}{running}, not {expected}{reason}"

    def rollout_over(
        self, service: str, update: Future[dict[str, Any]] | None, *, watch_endpoint: bool = True
    ) -> Finished:
        """Whether the rollout is over: the update returned (if there is one) and the endpoint settled.

        ``pulumi up`` can return while a long rollout still runs (the provider stops waiting), so
        a canary under analysis is watched until ``DescribeEndpoint`` leaves the transitional
        states (``watch_endpoint``); without one, ``_settle`` waits for that afterwards.
        """
        deadline: list[float] = []

        def over(timeout: float) -> bool:
            if update is not None and not update.done():
                wait([update], timeout=timeout)
                if not update.done():
                    return False
            else:
                time.sleep(timeout)
            if update is not None and (update.exception() is not None or not watch_endpoint):
                return True
            if not deadline:
                deadline.append(time.monotonic() + self.timeouts.verify_seconds)
            return (
                time.monotonic() > deadline[0] or self.endpoints.describe(service).status not in TRANSITIONAL
            )

        return over

    def start_update(self, message: str) -> Future[dict[str, Any]]:
        """``runner.up`` in a background (daemon) thread: Ctrl-C need not wait for a long rollout."""
        update: Future[dict[str, Any]] = Future()

        def run() -> None:
            if not update.set_running_or_notify_cancel():
                return
            try:
                update.set_result(self.runner.up(message))
            except BaseException as error:  # handed to whoever waits for the update
                update.set_exception(error)

        threading.Thread(target=run, name="stack-update", daemon=True).start()
        return update

    @staticmethod
    def finish_update(update: Future[dict[str, Any]], renew: Callable[[], None]) -> dict[str, Any]:
        """Wait for an update, renewing the lock meanwhile; its outputs (or its error)."""
        while not wait([update], timeout=30.0).done:
            renew()
        return update.result()

    def run_update(self, message: str, renew: Callable[[], None]) -> dict[str, Any]:
        """``runner.up`` with the lock renewed while it runs."""
        return self.finish_update(self.start_update(message), renew)

    def settle(self, service: str) -> EndpointState:
        """Wait until the endpoint leaves its transitional states (or the timeout passes)."""
        deadline = time.monotonic() + self.timeouts.verify_seconds
        state = self.endpoints.describe(service)
        while state.status in TRANSITIONAL and time.monotonic() < deadline:
            time.sleep(self.timeouts.poll_seconds)
            state = self.endpoints.describe(service)
        return state

    @staticmethod
    def verify_failure(state: EndpointState, expected: str) -> str:
        """Why the endpoint does not provably run the expected configuration, or '' when it does."""
        if state.status in FAILED_STATES:
            reason = f": {state.failure_reason}" if state.failure_reason else ""
            return f"the endpoint is {state.status}{reason}"
        if state.status != "InService":
            return f"the endpoint is still {state.status} after the verification timeout"
        if state.config_name != expected:
            reason = f" ({state.failure_reason})" if state.failure_reason else ""
            return (
                f"the endpoint is InService on {state.config_name}, not {expected}: "
                f"the update was rolled back{reason}"
            )
        return ""

    def refresh_quietly(self) -> None:
        try:
            self.runner.refresh()
        except ModelrailError as error:
            self.progress("refresh_failed", {"error": error.message})

    def outputs_quietly(self) -> dict[str, Any]:
        try:
            return self.runner.outputs()
        except ModelrailError:
            return {}

    def restore(
        self, service: str, previous: str, target: str, renew: Callable[[], None], known: EndpointState | None
    ) -> tuple[EndpointState, str]:
        """Make the endpoint serve ``previous`` again after ``target`` did not hold; (its state, what is still
        wrong or '').

        An endpoint InService on anything but the target's configuration serves the previous one
        (SageMaker rolled back; the stack outputs only name the configuration of the last update).
        Otherwise (the rollout completed unwatched, the sandbox lost the endpoint) the stack update
        runs again, with the previous version pinned. ``known`` is the state just observed, if any.
        """
        self.refresh_quietly()
        state = known if known is not None and known.status not in TRANSITIONAL else self.settle(service)
        if not previous or previous == target:
            return state, ""
        try:
            running_target = self.endpoints.expected_config(service, target, self.outputs_quietly())
        except RefusedError:
            running_target = ""  # the outputs do not say: trust an endpoint InService
        if state.status == "InService" and state.config_name and state.config_name != running_target:
            return state, ""
        self.progress("restoring", {"version": previous, "message": f"deploying {previous[:12]} again"})
        try:
            self.run_update(
                f"modelrail: restore {service} {previous[:12]} ({target[:12]} did not hold)", renew
            )
        except DependencyUnavailableError:
            raise
        except ModelrailError as error:
            return self.settle(service), f"restoring {previous[:12]} failed: {error.message}"
        state = self.settle(service)
        problem = self.not_serving(service, previous)
        return state, f"{previous[:12]} is not serving again: {problem}" if problem else ""

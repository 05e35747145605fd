"""What the endpoint really runs: waiting for it to settle, verifying it, and running the update.

SageMaker can roll an update back while the provider reports success, and a long rollout
outlives ``pulumi up`` (the provider waits 60 minutes and fails at once on ``RollingBack``, which
it does not count as pending), so the controller decides by ``DescribeEndpoint`` (the endpoint
inspector), never by the exit of ``up`` alone, and never while the endpoint is still transitional.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.dependencies import DependencyUnavailableError
from pipelines.errors import ModelrailError, RefusedError, RolloutInProgressError
from pipelines.promotion.bake import Finished
from pipelines.runners.base import EndpointInspector, EndpointState, StackRunner

if TYPE_CHECKING:
    from infra.config import Service
    from pipelines.promotion.controller import Timeouts

TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollingBack"})
FAILED_STATES = frozenset({"Failed", "UpdateRollbackFailed", "RollingBack", "OutOfService"})

Progress = Callable[[str, dict[str, Any]], None]


def verify_failure(state: EndpointState, expected: str) -> str:
    """Why the endpoint does not provably run the expected configuration, or '' when it does.

    The one verification of an endpoint against a stack: the controller's after every rollout,
    and ``modelrail verify``'s after a ``pulumi up`` it did not run.
    """
    if state.status in TRANSITIONAL - FAILED_STATES:
        return f"the endpoint is still {state.status} after the verification timeout"
    if state.status != "InService":
        reason = f": {state.failure_reason}" if state.failure_reason else ""
        return f"the endpoint is {state.status}{reason}"
    if state.config_name != expected:
        reason = f" ({state.failure_reason})" if state.failure_reason else ""
        return (
            f"the endpoint is InService on {state.config_name}, not {expected}: "
            f"the update was rolled back{reason}"
        )
    return ""


def wait_settled(
    endpoints: EndpointInspector, service: str, until: float, poll_seconds: float
) -> EndpointState:
    """Describe the endpoint until it leaves its transitional states or ``until`` (epoch seconds)
    has passed; its last state. (An autoscaling change puts an endpoint in ``Updating`` too.)"""
    state = endpoints.describe(service)
    while state.status in TRANSITIONAL and time.time() < until:
        time.sleep(poll_seconds)
        state = endpoints.describe(service)
    return state


@dataclass
class EndpointWatch:
    """The stack runner and the endpoint inspector, as the controller watches a rollout through them."""

    runner: StackRunner
    endpoints: EndpointInspector
    timeouts: Timeouts
    progress: Progress

    def not_serving(self, service: str, version: str) -> str:
        """'' when the endpoint runs ``version`` InService (and no shadow: outside a promotion's
        shadow phase one is a leftover), else what it does run."""
        state = self.endpoints.describe(service)
        try:
            expected = self.endpoints.expected_config(service, version, self.outputs_quietly())
        except RefusedError:
            return ""  # the stack cannot say which configuration that is: nothing to compare
        if state.status == "InService" and state.config_name == expected:
            shadow = self.endpoints.shadow(service, state.config_name)
            return "" if shadow is None else f"the endpoint still mirrors traffic to a shadow, {shadow[:12]}"
        running = f" on {state.config_name}" if state.config_name else ""
        reason = f": {state.failure_reason}" if state.failure_reason else ""
        return f"the endpoint is {state.status}{running}, not {expected}{reason}"

    def shadow_problem(self, service: str, state: EndpointState, production: str, shadow: str) -> str:
        """Why the endpoint does not serve ``production`` to users with ``shadow`` as its shadow
        variant after a shadow phase's update, or '' when it does."""
        if state.status in FAILED_STATES or not state.config_name:
            return f"the endpoint is {state.status}: {state.failure_reason or 'no configuration'}"
        if not self.endpoints.serves(service, state.config_name, production):
            return f"{state.config_name} does not serve {production[:12]} to users any more"
        mirrored = self.endpoints.shadow(service, state.config_name)
        if mirrored != shadow:
            why = f": {state.failure_reason}" if state.failure_reason else ""
            return f"its shadow variant serves {mirrored[:12] if mirrored else 'nothing'}, not {shadow[:12]}{why}"
        return ""

    def deadline(self, began: float, config: Service) -> float:
        """Until when (epoch seconds) the endpoint may stay transitional after a rollout that began
        at ``began``: SageMaker ends a blue/green deployment by itself once the service's
        ``maxExecutionSeconds`` are up (it rolls it back), which can be long after the provider
        stopped waiting, so the controller waits that long, and ``verify_seconds`` more for the
        endpoint to settle (at least ``verify_seconds`` from now). ``Timeouts.rollout_seconds``
        replaces ``maxExecutionSeconds`` when set."""
        bound = self.timeouts.rollout_seconds
        seconds = float(config.deployment.max_execution_seconds) if bound is None else bound
        return max(time.time(), began + seconds) + self.timeouts.verify_seconds

    def rollout_over(
        self,
        service: str,
        update: Future[dict[str, Any]] | None,
        until: Callable[[], float],
        *,
        watch_endpoint: bool = True,
    ) -> Finished:
        """Whether the rollout is over: the update ended (if there is one) and the endpoint settled.

        ``pulumi up`` can end while a long rollout still runs (the provider stops waiting, or
        fails on ``RollingBack``), so a canary under analysis is watched until
        ``DescribeEndpoint`` leaves the transitional states (``watch_endpoint``), whether the
        update returned or failed, or until ``until()`` (asked once the update has ended);
        without one, ``settle`` waits for that afterwards.
        """
        deadline: list[float] = []

        def over(timeout: float) -> bool:
            if update is not None and not update.done():
                wait([update], timeout=timeout)
                if not update.done():
                    return False
            else:
                time.sleep(timeout)
            if update is not None and not watch_endpoint:
                return True
            if not deadline:
                deadline.append(until())
            return time.time() > deadline[0] or self.endpoints.describe(service).status not in TRANSITIONAL

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

    def settle(self, service: str, deadline: float | None = None) -> EndpointState:
        """Wait until the endpoint leaves its transitional states, or until ``deadline`` (epoch
        seconds; by default ``verify_seconds`` from now)."""
        until = time.time() + self.timeouts.verify_seconds if deadline is None else deadline
        return wait_settled(self.endpoints, service, until, self.timeouts.poll_seconds)

    def require_settled(self, service: str, state: EndpointState, meanwhile: str) -> None:
        """Refuse to act on an endpoint that is still transitional once the wait is over.

        Deciding then would judge a rollout SageMaker has not finished, and reverting would start
        a second update on an endpoint it is still deploying (which it refuses): the journal is
        left for ``modelrail resume``. ``meanwhile`` says what stays as it is.
        """
        if state.status not in TRANSITIONAL:
            return
        running = f" on {state.config_name}" if state.config_name else ""
        raise RolloutInProgressError(
            f"the endpoint of {service} on {self.runner.stack} is still {state.status}{running} "
            f"after the controller's wait: {meanwhile}",
            details=[f"once it settles, `modelrail resume --stack {self.runner.stack}` decides"],
        )

    def verdict(
        self,
        service: str,
        version: str,
        state: EndpointState,
        outputs: dict[str, Any] | None,
        update_error: str,
    ) -> tuple[str, bool]:
        """Why the settled endpoint does not provably run ``version`` ('' when it does), and whether
        the stack has yet to record the rollout (``record_rollout``).

        After a stack update that returned (``outputs``), the endpoint must be InService on the
        configuration its outputs name. After one that failed or timed out (``update_error``), or
        that nobody saw end (``outputs`` None), Pulumi keeps the outputs of the previous update,
        which name the previous configuration: the endpoint's own configuration says which
        version it serves, and one that serves ``version`` outlived its update.
        """
        if outputs is not None and not update_error:
            return verify_failure(state, self.endpoints.expected_config(service, version, outputs)), False
        failed = f"the stack update failed ({update_error}); " if update_error else ""
        if state.status != "InService":
            return failed + verify_failure(state, ""), False
        if not self.endpoints.serves(service, state.config_name, version):
            reason = f" ({state.failure_reason})" if state.failure_reason else ""
            return (
                f"{failed}the endpoint is InService on {state.config_name}, which does not serve "
                f"{version[:12]}: the update was rolled back or never reached it{reason}"
            ), False
        return "", True

    def record_rollout(
        self, service: str, version: str, update_error: str, message: str, renew: Callable[[], None]
    ) -> tuple[str, EndpointState, str]:
        """Bring the stack's state and outputs in line with a rollout that outlived its update:
        a refresh, then the update again (nothing rolls out: the endpoint already runs ``version``),
        then the endpoint verified against the outputs. (failure or '', the endpoint's state, a note
        for the record.) A second update that fails too leaves the decision to the endpoint."""
        failed = f"the stack update failed ({update_error}), but " if update_error else ""
        note = f"{failed}the endpoint runs {version[:12]} InService"
        self.progress("recording", {"message": "the rollout outlived its stack update: recording it"})
        self.refresh_quietly()
        try:
            outputs = self.run_update(f"{message} (recording a rollout that outlived its update)", renew)
        except DependencyUnavailableError:
            raise
        except ModelrailError as error:
            state = self.endpoints.describe(service)
            return "", state, f"{note}; recording it in the stack failed ({error.message}): run `pulumi up`"
        state = self.settle(service)
        return verify_failure(state, self.endpoints.expected_config(service, version, outputs)), state, note

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

        An endpoint InService on a configuration that serves ``previous`` needs nothing (SageMaker
        rolled back). Otherwise (the rollout completed unwatched, the sandbox lost the endpoint)
        the stack update runs again, with the previous version pinned, once the endpoint has
        settled. ``known`` is the state just observed, if any.
        """
        self.refresh_quietly()
        state = known if known is not None and known.status not in TRANSITIONAL else self.settle(service)
        if not previous or previous == target:
            return state, ""
        self.require_settled(service, state, f"{previous[:12]} goes back once it has settled")
        if (
            state.status == "InService"
            and state.config_name
            and self.endpoints.serves(service, state.config_name, previous)
            and self.endpoints.shadow(service, state.config_name) is None
        ):
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

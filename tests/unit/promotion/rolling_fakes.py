"""Fakes of an endpoint that rolls out on its own clock, as SageMaker and the sandbox do.

``up`` only starts the rollout: the endpoint keeps baking the canary whether or not a controller
watches, completes ``rollout_seconds`` later unless an alarm rolls it back first, and remembers
every version that ever owned it. Its state is a JSON file, so it outlives a killed controller.
The metrics are scripted by call count (also kept in a file): the first ``quiet_windows``
windows carry too little canary traffic to count, every later one shows a canary failing with
10% 5xx errors, so a test knows which interval breaches. ``lose()`` is the sandbox daemon dying:
every call fails until ``refresh`` starts a new, empty one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import load_stack_file
from pipelines.metrics.stats import CanaryWindow, LatencyHistogram, VariantStats
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.controller import Controller, Timeouts
from pipelines.promotion.evidence import EvidenceStore
from pipelines.promotion.journal import Journal
from pipelines.runners.base import EndpointState, Preview
from pipelines.runtimes.ports import RuntimeAdapters
from pipelines.sandbox.client import SandboxNotRunningError
from tests.unit.promotion.fakes import V1, V2, FakeLineage, FakeRegistry, config_name

SERVICE = "adult-income"
_lock = threading.RLock()


@dataclass
class RollingEndpoint:
    path: Path
    rollout_seconds: float = 30.0

    def raw(self) -> dict[str, Any]:
        with _lock:
            if not self.path.exists():
                initial = {
                    "serving": V1,
                    "target": None,
                    "started": 0.0,
                    "alarm": "",
                    "served": [V1],
                    "alive": True,
                }
                self._save(initial)
            state: dict[str, Any] = json.loads(self.path.read_text())
            return state

    def state(self) -> dict[str, Any]:
        """The endpoint now (a rollout whose time has come is completed first)."""
        with _lock:
            state = self.raw()
            if not state["alive"]:
                raise SandboxNotRunningError("the sandbox daemon is gone, and every endpoint with it")
            if state["target"] and time.time() >= state["started"] + self.rollout_seconds:
                state.update(serving=state["target"], target=None)
                state["served"].append(state["serving"])
                self._save(state)
            return state

    def _save(self, state: dict[str, Any]) -> None:
        staging = self.path.with_suffix(".tmp")
        staging.write_text(json.dumps(state))
        os.replace(staging, self.path)

    def _update(self, **changes: Any) -> None:
        with _lock:
            state = self.state()
            state.update(changes)
            self._save(state)

    @property
    def serving(self) -> str | None:
        return None if not self.raw()["alive"] else self.state()["serving"]

    @property
    def served(self) -> list[str]:
        """Every version that ever owned the endpoint, in order."""
        return list(self.raw()["served"])

    def lose(self) -> None:
        """The sandbox daemon dies: the endpoint, its fleets and any rollout are gone."""
        with _lock:
            state = self.raw()
            state.update(alive=False, serving=None, target=None, alarm="")
            self._save(state)

    def revive(self) -> None:
        """A new daemon: running, with no endpoint yet."""
        with _lock:
            state = self.raw()
            state["alive"] = True
            self._save(state)

    def start(self, version: str) -> None:
        with _lock:
            state = self.state()
            if state["target"] is None and state["serving"] == version:
                return
            if state["serving"] is None:  # a first deployment: no canary, the endpoint is created with it
                self._update(serving=version, served=[*state["served"], version], target=None, alarm="")
                return
            self._update(target=version, started=time.time(), alarm="")

    def trip(self, reason: str) -> None:
        with _lock:
            if self.state()["target"] is not None:
                self._update(target=None, alarm=f"alarm tripped: {reason}")

    def describe(self, service: str) -> EndpointState:
        state = self.state()
        if state["serving"] is None:
            return EndpointState("NotFound", "", f"no endpoint for service {service!r}")
        status = "Updating" if state["target"] else "InService"
        return EndpointState(status, config_name(state["serving"]), state["alarm"])

    def expected_config(self, service: str, version: str, outputs: dict[str, Any]) -> str:
        return config_name(version)

    def serves(self, service: str, config: str, version: str) -> bool:
        return config == config_name(version)

    def shadow(self, service: str, config: str) -> str | None:
        return None


@dataclass
class RollingRunner:
    """``up`` starts the rollout of the pinned version and waits for it, unless ``returns_early``
    (the provider gives up waiting while the endpoint still rolls, as Pulumi's does after 60 min)."""

    stack_path: Path
    endpoint: RollingEndpoint
    returns_early: bool = False
    stack: str = "staging"
    messages: list[str] = field(default_factory=list)

    def refresh(self) -> None:
        if not self.endpoint.raw()["alive"]:
            self.endpoint.revive()  # as LocalStackRunner.refresh starts a new sandbox daemon

    def preview(self) -> Preview:
        return Preview(())

    def up(self, message: str) -> dict[str, Any]:
        self.messages.append(message)
        target = load_stack_file(self.stack_path).services[SERVICE].model_version
        assert target is not None
        self.endpoint.start(target)
        while not self.returns_early and self.endpoint.describe(SERVICE).status == "Updating":
            time.sleep(0.02)
        return {}

    def outputs(self) -> dict[str, Any]:
        return {}


def _stats(requests: int, error_rate: float) -> VariantStats:
    return VariantStats.from_histogram(
        invocations=requests,
        errors_4xx=0,
        errors_5xx=int(error_rate * requests),
        latency=LatencyHistogram.of([20.0] * requests),
        predictions=(requests // 10,) * 10,
        labelled=0,
        correct=0,
    )


@dataclass
class ScriptedMetrics:
    endpoint: RollingEndpoint
    calls_path: Path
    journal_dir: Path
    quiet_windows: int = 2
    dies_at: int | None = None
    """The window read during which the sandbox daemon dies."""
    breaches: list[str] = field(default_factory=list)
    journaled_before_breach: list[bool] = field(default_factory=list)

    def window(
        self, service: str, start: float, end: float, *, rollout_start: float, shadow: bool = False
    ) -> CanaryWindow:
        calls = int(self.calls_path.read_text()) + 1 if self.calls_path.exists() else 1
        self.calls_path.write_text(str(calls))
        if calls == self.dies_at:
            self.endpoint.lose()
        canary = None
        if self.endpoint.state()["target"] is not None:
            canary = _stats(10, 0.0) if calls <= self.quiet_windows else _stats(2000, 0.10)
        return CanaryWindow(start=start, end=end, baseline=_stats(2000, 0.001), canary=canary)

    def abort(self, service: str, guardrail: str, value: float, reason: str) -> None:
        journals = [Journal.load(path) for path in sorted(self.journal_dir.glob("*.jsonl"))]
        last = journals[-1].records[-1] if journals else {}
        self.journaled_before_breach.append(
            last.get("step") == "analysed" and last["decision"]["verdict"] == "rollback"
        )
        self.breaches.append(reason)
        self.endpoint.trip(reason)


@dataclass
class RollingWorld:
    controller: Controller
    endpoint: RollingEndpoint
    runner: RollingRunner
    metrics: ScriptedMetrics
    stack_path: Path


def make_rolling_world(
    tmp_path: Path,
    repo: Path,
    *,
    fresh: bool = True,
    rollout_seconds: float = 30.0,
    returns_early: bool = False,
) -> RollingWorld:
    """Stack ``staging`` (canary, no approval) pinning V1, both versions gated; reopen with ``fresh=False``."""
    import shutil

    from pipelines.promotion.stackfile import write_pin

    stacks = tmp_path / "project" / "stacks"
    stack_path = stacks / "Pulumi.staging.yaml"
    state = tmp_path / "state"
    evidence = EvidenceStore(state / "evidence")
    if fresh:
        shutil.copytree(repo / "stacks", stacks)
        write_pin(stack_path, SERVICE, V1)
        for sha in (V1, V2):
            evidence.save(SERVICE, sha, "candidate", True, "ok", {"checks": []})
    registry = FakeRegistry()
    for sha in (V1, V2):
        registry.add(sha)
    endpoint = RollingEndpoint(tmp_path / "endpoint.json", rollout_seconds)
    runner = RollingRunner(stack_path, endpoint, returns_early)
    journal_dir = state / "journal" / "staging"
    metrics = ScriptedMetrics(endpoint, tmp_path / "metric-calls", journal_dir)
    controller = Controller(
        stack="staging",
        stack_path=stack_path,
        project_dir=tmp_path / "project",
        runner=runner,
        adapters={"sagemaker": RuntimeAdapters("sagemaker", endpoint, metrics, metrics)},
        registry=registry,
        evidence=evidence,
        audit=AuditLog(state / "audit", "staging"),
        lineage=FakeLineage(),
        state_dir=state,
        timeouts=Timeouts(verify_seconds=60.0, poll_seconds=0.02),
        analysis_interval_seconds=0.1,
    )
    return RollingWorld(controller, endpoint, runner, metrics, stack_path)

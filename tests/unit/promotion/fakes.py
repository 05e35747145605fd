"""In-memory stand-ins for the controller's ports, to step the controller through each path."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import RefusedError
from pipelines.metrics.stats import Agreement, CanaryWindow, LatencyHistogram, VariantStats
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.controller import Controller, Timeouts
from pipelines.promotion.evidence import EvidenceStore
from pipelines.promotion.ports import VersionInfo
from pipelines.runners.base import EndpointState, Preview, ResourceChange
from pipelines.runtimes.ports import RuntimeAdapters

V1 = "a1" * 32
V2 = "b2" * 32
V3 = "c3" * 32


def config_name(version: str, shadow: str | None = None) -> str:
    return f"cfg-{version[:12]}" + (f"+shadow-{shadow[:12]}" if shadow else "")


@dataclass
class FakeRegistry:
    versions: dict[str, VersionInfo] = field(default_factory=dict)
    stages: list[tuple[str, str]] = field(default_factory=list)

    def add(self, sha: str, stage: str = "candidate", registrant: str = "rita@example.com") -> None:
        self.versions[sha] = VersionInfo("adult-income", sha, stage, registrant)

    def get_version(self, service: str, version: str) -> VersionInfo:
        matches = [info for sha, info in self.versions.items() if sha.startswith(version)]
        if len(matches) != 1:
            raise RefusedError(f"no version {version} of {service}")
        return matches[0]

    def set_stage(self, service: str, sha: str, stage: str, actor: str) -> None:
        info = self.versions[sha]
        self.versions[sha] = VersionInfo(info.service, sha, stage, info.registrant, info.metadata)
        self.stages.append((sha, stage))

    def download(self, service: str, sha: str, target: Path) -> Path:
        raise RefusedError(f"the fake registry holds no package bytes ({service} {sha[:12]})")

    def approve(self, service: str, sha: str, actor: str, description: str) -> None:
        info = self.versions[sha]
        approval = {"approved_by": actor, "approval": description}
        self.versions[sha] = VersionInfo(
            info.service, sha, info.stage, info.registrant, {**info.metadata, **approval}
        )


@dataclass
class FakeEndpoint:
    """The endpoint: what runs, and how the next update ends (held, silently undone, failed).

    With ``path`` set, what it serves lives in that file, so it survives a killed process.
    """

    serving_at_start: str = V1
    status: str = "InService"
    next_update: str = "holds"
    failure_reason: str = ""
    rolled_back_by_alarm: bool = False
    path: Path | None = None
    users_saw: list[str] = field(default_factory=list)
    """Every version that has served users in this process, in order."""

    def __post_init__(self) -> None:
        self._serving = self.serving_at_start
        self._shadowing: str | None = None
        if self.path is not None and not self.path.exists():
            self.path.write_text(self.serving_at_start)
        self.users_saw.append(self.serving)

    @property
    def shadowing(self) -> str | None:
        """The version the endpoint's shadow variant serves (a stack file's ``shadowVersion``)."""
        if self.path is None:
            return self._shadowing
        stored = self.path.with_name("endpoint-shadow")
        return stored.read_text() or None if stored.exists() else None

    @shadowing.setter
    def shadowing(self, version: str | None) -> None:
        if self.path is not None:
            self.path.with_name("endpoint-shadow").write_text(version or "")
        self._shadowing = version

    @property
    def serving(self) -> str:
        return self.path.read_text() if self.path is not None else self._serving

    @serving.setter
    def serving(self, version: str) -> None:
        if self.path is not None:
            self.path.write_text(version)
        self._serving = version
        if not self.users_saw or self.users_saw[-1] != version:
            self.users_saw.append(version)

    def describe(self, service: str) -> EndpointState:
        return EndpointState(self.status, config_name(self.serving, self.shadowing), self.failure_reason)

    def expected_config(self, service: str, version: str, outputs: dict[str, Any]) -> str:
        return config_name(version)

    def serves(self, service: str, config: str, version: str) -> bool:
        return config.partition("+")[0] == config_name(version)

    def shadow(self, service: str, config: str) -> str | None:
        return self.shadowing if "+shadow-" in config else None


@dataclass
class FakeRunner:
    """A stack runner whose ``up`` deploys what the stack file pins, like the real ones do."""

    stack_path: Path
    endpoint: FakeEndpoint
    stack: str = "dev"
    update_seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
    refreshes: int = 0

    def refresh(self) -> None:
        self.refreshes += 1

    def preview(self) -> Preview:
        return Preview(
            (
                ResourceChange(
                    "urn:cfg", "aws:sagemaker/endpointConfiguration:EndpointConfiguration", "replace"
                ),
            )
        )

    def up(self, message: str) -> dict[str, Any]:
        from infra.config import load_stack_file

        self.messages.append(message)
        entry = load_stack_file(self.stack_path).services["adult-income"]
        target = entry.model_version
        self.endpoint.shadowing = entry.shadow_version
        deadline = time.monotonic() + self.update_seconds
        while time.monotonic() < deadline and not self.endpoint.rolled_back_by_alarm:
            time.sleep(0.01)
        if self.endpoint.rolled_back_by_alarm or self.endpoint.next_update == "silently-undone":
            self.endpoint.failure_reason = (
                "alarm tripped: rolled back" if self.endpoint.rolled_back_by_alarm else ""
            )
            return {"endpoint": "dev-adult-income"}
        if self.endpoint.next_update == "fails":
            self.endpoint.status = "Failed"
            self.endpoint.failure_reason = "ResourceLimitExceeded: no ml.m5.large capacity"
            return {}
        assert target is not None, "the controller pins a version before it updates"
        self.endpoint.serving = target
        return {"endpoint": "dev-adult-income"}

    def outputs(self) -> dict[str, Any]:
        return {"endpoint": "dev-adult-income"}


@dataclass
class FakeMetrics:
    """Windows with a healthy baseline and a canary whose error rate is chosen by the test."""

    endpoint: FakeEndpoint
    canary_error_rate: float = 0.0
    shadow_error_rate: float = 0.0
    breaches: list[tuple[str, str]] = field(default_factory=list)
    shadow_windows: int = 0

    def window(
        self, service: str, start: float, end: float, *, rollout_start: float, shadow: bool = False
    ) -> CanaryWindow:
        if shadow:
            assert self.endpoint.shadowing is not None, "a shadow window while no shadow runs"
            self.shadow_windows += 1
            return CanaryWindow(
                start=start,
                end=end,
                baseline=_stats(0.001),
                canary=_stats(self.shadow_error_rate),
                agreement=Agreement(2000, 1900),
            )
        return CanaryWindow(
            start=start, end=end, baseline=_stats(0.001), canary=_stats(self.canary_error_rate)
        )

    def abort(self, service: str, guardrail: str, value: float, reason: str) -> None:
        self.breaches.append((guardrail, reason))
        self.endpoint.rolled_back_by_alarm = True


def _stats(error_rate: float, requests: int = 2000) -> VariantStats:
    predictions = (requests // 10,) * 10
    return VariantStats.from_histogram(
        invocations=requests,
        errors_4xx=0,
        errors_5xx=int(error_rate * requests),
        latency=LatencyHistogram.of([20.0] * requests),
        predictions=predictions,
        labelled=0,
        correct=0,
    )


@dataclass
class FakeLineage:
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def record(
        self, kind: str, *, service: str, version: str, stack: str, actor: str, payload: dict[str, Any]
    ) -> None:
        self.events.append((kind, version, actor))


@dataclass
class World:
    controller: Controller
    registry: FakeRegistry
    endpoint: FakeEndpoint
    runner: FakeRunner
    metrics: FakeMetrics
    lineage: FakeLineage
    stack_path: Path


def make_world(
    tmp_path: Path, repo: Path, stack: str = "dev", pinned: str = V1, *, fresh: bool = True
) -> World:
    """A project copy whose ``stack`` pins ``pinned``, with fakes behind every port.

    ``fresh=False`` reopens a world an earlier process made in ``tmp_path`` (files persist:
    stack file, state, the endpoint's serving version, the gate evidence).
    """
    from pipelines.promotion.stackfile import write_pin

    stacks = tmp_path / "project" / "stacks"
    stack_path = stacks / f"Pulumi.{stack}.yaml"
    if fresh:
        shutil.copytree(repo / "stacks", stacks)
        write_pin(stack_path, "adult-income", pinned)
    state = tmp_path / "state"
    registry = FakeRegistry()
    for sha in (V1, V2, V3):
        registry.add(sha)
    endpoint = FakeEndpoint(serving_at_start=pinned, path=tmp_path / "endpoint-serving")
    runner = FakeRunner(stack_path, endpoint, stack=stack)
    metrics = FakeMetrics(endpoint)
    lineage = FakeLineage()
    controller = Controller(
        stack=stack,
        stack_path=stack_path,
        project_dir=tmp_path / "project",
        runner=runner,
        adapters={"sagemaker": RuntimeAdapters("sagemaker", endpoint, metrics, metrics)},
        registry=registry,
        evidence=EvidenceStore(state / "evidence"),
        audit=AuditLog(state / "audit", stack),
        lineage=lineage,
        state_dir=state,
        timeouts=Timeouts(verify_seconds=1.0, poll_seconds=0.01),
        analysis_interval_seconds=0.05,
    )
    return World(controller, registry, endpoint, runner, metrics, lineage, stack_path)


def declare_progression(
    stack_path: Path, phases: tuple[str, ...] = ("shadow", "canary", "full"), strategy: str = "canary"
) -> None:
    """The stack's adult-income goes through ``phases`` (its strategy's traffic phase), a short
    shadow bake first."""
    from pipelines.promotion.stackfile import round_trip_yaml

    text = stack_path.read_text()
    yaml = round_trip_yaml(text)
    document = yaml.load(text)
    deployment = document["config"]["modelrail:services"]["adult-income"]["deployment"]
    deployment["strategy"] = strategy
    deployment["progression"] = list(phases)
    deployment["shadow"] = {"percent": 50, "bakeSeconds": 1}
    with stack_path.open("w") as handle:
        yaml.dump(document, handle)

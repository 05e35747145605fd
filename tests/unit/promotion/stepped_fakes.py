"""File-backed fakes of a runtime the controller shifts step by step (KServe), for stepped rollouts.

The endpoint's serving version and status live in files, so a child process the test SIGKILLs
and the parent that resumes after it see one endpoint (``make_stepped_world(fresh=False)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import load_stack_file
from pipelines.promotion.stackfile import round_trip_yaml
from pipelines.runners.base import EndpointState
from pipelines.runtimes.ports import RuntimeAdapters
from tests.unit.promotion.fakes import V2, FakeEndpoint, FakeRunner, World, config_name, make_world

SERVICE = "adult-income"


@dataclass
class SteppedEndpoint(FakeEndpoint):
    """The endpoint, with its status (``Canary`` while a share is split) kept beside what it serves."""

    def describe(self, service: str) -> EndpointState:
        status = self.path.with_name("endpoint-status").read_text() if self.path else self.status
        return EndpointState(status, config_name(self.serving), self.failure_reason)

    def set_status(self, status: str) -> None:
        self.status = status
        if self.path is not None:
            self.path.with_name("endpoint-status").write_text(status)


@dataclass
class SteppedRunner(FakeRunner):
    """``up`` applies the pin and its canary share, as KServe does with ``canaryTrafficPercent``."""

    shares: list[int | None] = field(default_factory=list)

    def up(self, message: str) -> dict[str, Any]:
        service = load_stack_file(self.stack_path).services[SERVICE]
        self.messages.append(message)
        self.shares.append(service.canary_traffic_percent)
        assert isinstance(self.endpoint, SteppedEndpoint)
        self.endpoint.set_status("InService" if service.canary_traffic_percent is None else "Canary")
        if service.canary_traffic_percent is None:
            assert service.model_version is not None
            self.endpoint.serving = service.model_version
        return {"endpoint": "local-adult-income"}


def as_kserve(path: Path) -> None:
    text = path.read_text()
    yaml = round_trip_yaml(text)
    document = yaml.load(text)
    services = document["config"]["modelrail:services"]
    for other in [name for name in services if name != SERVICE]:
        del services[other]  # the fakes serve one service: the stack's other pins are not theirs
    entry = services[SERVICE]
    entry["runtime"] = "kserve"
    entry["deployment"]["strategy"] = "canary"
    entry["deployment"]["canaryPercent"] = 25
    entry["deployment"]["bakeSeconds"] = 1
    document["config"]["modelrail:platform"]["kubernetes"] = {
        "context": "ml-dev",
        "oidcIssuer": "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE",
        "prometheusUrl": "http://prometheus.monitoring:9090",
    }
    with path.open("w") as handle:
        yaml.dump(document, handle)


@dataclass
class Checks:
    problem: str = ""
    asked: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, service: str, version: str, percent: int) -> str:
        self.asked.append((version, percent))
        return self.problem


def make_stepped_world(
    tmp_path: Path, repo: Path, *, fresh: bool = True
) -> tuple[World, SteppedRunner, Checks]:
    """``make_world`` on dev with adult-income on KServe: a 25 % canary, then all traffic."""
    world = make_world(tmp_path, repo, stack="dev", fresh=fresh)
    if fresh:
        as_kserve(world.stack_path)
    endpoint = SteppedEndpoint(serving_at_start=world.endpoint.serving, path=world.endpoint.path)
    if fresh:
        endpoint.set_status("InService")
    runner = SteppedRunner(world.stack_path, endpoint, stack="dev")
    checks = Checks()
    world.metrics.endpoint = endpoint
    world.controller.runner = runner
    world.controller.adapters = {
        "kserve": RuntimeAdapters(
            "kserve",
            endpoint,
            world.metrics,
            world.metrics,
            traffic_steps=lambda service: (service.deployment.canary_percent, None),
            step_check=checks,
        )
    }
    world.endpoint, world.runner = endpoint, runner
    if fresh:
        world.controller.evidence.save(SERVICE, V2, "candidate", True, "ok", {"checks": []})
    return world, runner, checks

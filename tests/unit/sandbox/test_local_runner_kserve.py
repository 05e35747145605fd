"""``LocalStackRunner.up`` for a ``runtime: kserve`` service: a predictor spec per changed stack update.

The sandbox is a fake that keeps an ``InferenceServiceState`` (the sandbox's own state machine),
so the runner reads real documents; the plan rendering is not what these tests are about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.runners.local_runner import LocalStackRunner
from pipelines.sandbox import EndpointNotFoundError
from pipelines.sandbox.revisions import InferenceServiceState

V1, V2 = "1" * 64, "2" * 64


class FakeSandbox:
    """Applies specs to one state machine at once (every revision ready), recording each call."""

    def __init__(self) -> None:
        self.state: InferenceServiceState | None = None
        self.applied: list[tuple[str, str, int | None, str]] = []

    def apply_revision(
        self, service: str, version: str, model_dir: Path, canary_percent: int | None, *, namespace: str
    ) -> dict[str, Any]:
        self.applied.append((service, version, canary_percent, namespace))
        if self.state is None:
            self.state = InferenceServiceState(
                f"local-{service}", service, namespace, f"http://127.0.0.1:9/endpoints/{service}", "local"
            )
        revision = self.state.apply(version, str(model_dir), canary_percent)
        if revision is not None:
            self.state.ready(revision.name)
        return self.state.document()

    def inference_service(self, service: str) -> dict[str, Any]:
        if self.state is None:
            raise EndpointNotFoundError(f"no InferenceService for service {service!r}")
        return self.state.document()


def stack_text(version: str, canary: int | None) -> str:
    percent = "null" if canary is None else str(canary)
    return f"""config:
  modelrail:platform:
    environment: local
    region: us-east-1
  modelrail:services:
    diabetes:
      runtime: kserve
      modelVersion: "{version}"
      canaryTrafficPercent: {percent}
      kserve:
        namespace: models
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[LocalStackRunner, FakeSandbox, Path]:
    (tmp_path / "stacks").mkdir()
    sandbox = FakeSandbox()
    runner = LocalStackRunner(
        "local", tmp_path, tmp_path / "state", sandbox,  # type: ignore[arg-type]
        model_dir_for=lambda service, version: tmp_path / "models" / version[:4],
    )  # fmt: skip
    monkeypatch.setattr(runner, "_desired", lambda: {"steps": []})
    return runner, sandbox, tmp_path / "stacks" / "Pulumi.local.yaml"


def test_each_changed_spec_is_applied_once_and_the_outputs_name_the_revisions(
    world: tuple[LocalStackRunner, FakeSandbox, Path],
) -> None:
    runner, sandbox, stack = world
    stack.write_text(stack_text(V1, None))
    runner.up("v1")
    stack.write_text(stack_text(V2, 10))
    runner.up("v2 canary")
    outputs = runner.up("again, unchanged")
    stack.write_text(stack_text(V2, None))
    runner.up("v2 all traffic")

    assert sandbox.applied == [
        ("diabetes", V1, None, "models"),
        ("diabetes", V2, 10, "models"),
        ("diabetes", V2, None, "models"),
    ]
    assert outputs["services"]["diabetes"] == {
        "inferenceServiceName": "local-diabetes",
        "namespace": "models",
        "url": "http://127.0.0.1:9/endpoints/diabetes",
        "latestCreatedRevision": "local-diabetes-predictor-00002",
        "latestReadyRevision": "local-diabetes-predictor-00002",
        "latestRolledoutRevision": "local-diabetes-predictor-00001",
    }


def test_an_aborted_canary_is_applied_again_only_if_the_stack_still_asks_for_it(
    world: tuple[LocalStackRunner, FakeSandbox, Path],
) -> None:
    runner, sandbox, stack = world
    stack.write_text(stack_text(V1, None))
    runner.up("v1")
    stack.write_text(stack_text(V2, 10))
    runner.up("v2 canary")
    assert sandbox.state is not None and sandbox.state.abort("breach")
    stack.write_text(stack_text(V2, 0))
    runner.up("the controller pinned the abort")
    assert len(sandbox.applied) == 2, "the sandbox already runs canaryTrafficPercent 0"

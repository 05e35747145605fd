"""``LocalStackRunner.up`` for a ``runtime: sagemaker`` service with a ``shadowVersion``: the shadow
goes to the sandbox with the version, and only an update that changes either is sent.

The sandbox is a fake that records each deployment and describes the endpoint as that update
left it; the real endpoint's behaviour is ``test_shadow.py``'s, the plan rendering no one's here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from infra.naming import version_config_name
from pipelines.runners.local_runner import LocalStackRunner, SandboxEndpoints
from pipelines.sandbox import DeploymentPhase, EndpointDescription, EndpointNotFoundError, ShadowSpec

V1, V2, V3 = "1" * 64, "2" * 64, "3" * 64


class FakeSandbox:
    """Applies every deployment at once, as a finished update would leave the endpoint."""

    def __init__(self) -> None:
        self.described: EndpointDescription | None = None
        self.deployed: list[tuple[str, str | None, int]] = []
        """(version, shadow version, mirrored percent) per deployment."""

    def deploy(
        self, service: str, version: str, model_dir: Path, policy: object, shadow: ShadowSpec | None
    ) -> None:
        percent = policy.shadow.percent  # type: ignore[attr-defined]
        self.deployed.append((version, None if shadow is None else shadow.version, percent))
        assert model_dir.name == version[:4] and (
            shadow is None or shadow.model_dir.name == shadow.version[:4]
        )
        self.described = EndpointDescription(
            service=service,
            endpoint_name=f"local-{service}",
            url=f"http://127.0.0.1:9/endpoints/{service}",
            status="InService",
            config_name=version_config_name(service, version),
            serving_version=version,
            failure_reason=None,
            phase=DeploymentPhase.COMPLETED,
            target_version=version,
            shadow_version=None if shadow is None else shadow.version,
            shadow_percent=None if shadow is None else percent,
        )

    def wait(self, service: str, timeout: float) -> EndpointDescription:
        assert self.described is not None
        return self.described

    def describe_endpoint(self, service: str) -> EndpointDescription:
        if self.described is None:
            raise EndpointNotFoundError(f"no endpoint for service {service!r}")
        return self.described

    def endpoint_url(self, service: str) -> str:
        return self.describe_endpoint(service).url


def stack_text(version: str, shadow: str | None, percent: int = 50) -> str:
    pinned = "" if shadow is None else f'\n      shadowVersion: "{shadow}"'
    return f"""config:
  modelrail:platform:
    environment: local
    region: us-east-1
  modelrail:services:
    svc:
      modelVersion: "{version}"{pinned}
      deployment:
        progression: [shadow, canary, full]
        shadow:
          percent: {percent}
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
    for version in (V1, V2, V3):
        (tmp_path / "models" / version[:4]).mkdir(parents=True)
    return runner, sandbox, tmp_path / "stacks" / "Pulumi.local.yaml"


def test_a_shadow_is_deployed_with_production_and_each_change_once(
    world: tuple[LocalStackRunner, FakeSandbox, Path],
) -> None:
    runner, sandbox, stack = world
    for text in (
        stack_text(V1, None),
        stack_text(V1, V2),  # the shadow phase starts
        stack_text(V1, V2),  # unchanged: nothing to do
        stack_text(V1, V2, percent=20),  # another share of the same shadow
        stack_text(V1, V3, percent=20),  # another shadow
        stack_text(V1, None),  # the shadow phase failed: reverted
        stack_text(V3, None),  # or passed: the candidate is pinned
    ):
        stack.write_text(text)
        runner.up("update")

    assert sandbox.deployed == [
        (V1, None, 50),
        (V1, V2, 50),
        (V1, V2, 20),
        (V1, V3, 20),
        (V1, None, 50),
        (V3, None, 50),
    ]


def test_a_shadow_that_failed_to_start_is_asked_for_again_by_the_next_update(
    world: tuple[LocalStackRunner, FakeSandbox, Path],
) -> None:
    runner, sandbox, stack = world
    stack.write_text(stack_text(V1, V2))
    runner.up("shadow")
    assert sandbox.described is not None
    sandbox.described = replace(
        sandbox.described, shadow_version=None, shadow_percent=None, failure_reason="did not start"
    )
    runner.up("again")
    assert sandbox.deployed == [(V1, V2, 50), (V1, V2, 50)]


def test_the_inspector_reads_the_shadow_of_the_configuration_the_endpoint_runs(
    world: tuple[LocalStackRunner, FakeSandbox, Path],
) -> None:
    runner, sandbox, stack = world
    endpoints = SandboxEndpoints(sandbox)  # type: ignore[arg-type]
    assert endpoints.shadow("svc", version_config_name("svc", V1)) is None, "no endpoint yet"
    stack.write_text(stack_text(V1, V2))
    runner.up("shadow")

    assert endpoints.shadow("svc", version_config_name("svc", V1)) == V2
    assert endpoints.shadow("svc", version_config_name("svc", V3)) is None, "a configuration it does not run"
    assert endpoints.serves("svc", version_config_name("svc", V1), V1)

"""The embedded AWS, then the sandbox daemon, killed right after each journaled step of a promotion.

The real controller over the embedded default: registry and audit-log copy on a moto server,
the local stack runner and the sandbox (its model servers are a stand-in that starts in a moment,
as the model server is not what is tested here). ``MODELRAIL_KILL_AFTER`` SIGKILLs
the dependency the moment a step is journaled. ``promote`` then ends in a typed error or an
outcome (never a library's traceback), and ``resume`` (from a new controller, as the next
command would build it) converges: the stack file, what the endpoint serves, the registry
stage and the audit log (local and bucket copy) tell one story, and the log verifies.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipelines.dependencies import DependencyUnavailableError
from pipelines.embedded import server
from pipelines.embedded.session import stop as stop_embedded
from pipelines.errors import ModelrailError, RolledBackError
from pipelines.packaging.build import PackageResult
from pipelines.promotion.controller import Controller
from pipelines.promotion.journal import KILL_AFTER_ENV, Step, unfinished
from pipelines.promotion.stackfile import pinned_version, write_pin
from pipelines.promotion.wiring import build_controller, register_version
from pipelines.sandbox import stop_sandbox
from pipelines.sandbox.state import read_state, sandbox_dir

from .conftest import REPO, SERVICE, STANDIN

pytestmark = pytest.mark.integration

STEPS = [
    Step.BEGUN,
    Step.PINNED,
    Step.UPDATE_STARTED,
    Step.ANALYSED,
    Step.UPDATE_FINISHED,
    Step.VERIFIED,
    Step.RECORDED,
    Step.DONE,
]
FAST_CANARY = """      deployment:
        strategy: canary
        canaryPercent: 50
        bakeSeconds: 1
        terminationWaitSeconds: 0
        maxExecutionSeconds: 600
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The repository with its own copy of ``stacks/`` (the local stack bakes for 1 s) and a state dir."""
    project, state = tmp_path / "project", tmp_path / "state"
    project.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {"stacks", ".git", ".venv", ".modelrail"}:
            (project / entry.name).symlink_to(entry)
    shutil.copytree(REPO / "stacks", project / "stacks")
    local = project / "stacks" / "Pulumi.local.yaml"
    text = local.read_text()
    start = text.index("      deployment:\n")
    end = text.index("      guardrails:\n")
    local.write_text(text[:start] + FAST_CANARY + text[end:])
    write_pin(local, SERVICE, None)  # a fresh stack: nothing deployed yet
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(project))
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(state))
    monkeypatch.delenv("MODELRAIL_AWS", raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    # Every sandbox the controller starts (a killed one too) runs the stand-in model server.
    monkeypatch.setattr("pipelines.sandbox.client.DEFAULT_SERVER_COMMAND", tuple(STANDIN))
    try:
        yield state
    finally:
        stop_sandbox(state)
        stop_embedded(state)


def _ready(state: Path, package: PackageResult, other_package: PackageResult) -> tuple[str, str]:
    """Two registered versions with passing gates and a second person's approval; v1 promoted."""
    versions = []
    for built in (package, other_package):
        registration, _ = register_version("local", SERVICE, built.path, "rita@example.com")
        versions.append(registration.version.package_sha)
    controller = build_controller("local")
    for sha in versions:
        for stage in ("candidate", "production"):
            controller.record_gates(
                SERVICE, sha, stage, passed=True, summary="ok", report={"checks": []}, actor="ci@example.com"
            )
        controller.approve(SERVICE, sha, "alice@example.com", "reviewed")
    assert controller.promote(SERVICE, versions[0], "ci@example.com").outcome == "promoted"
    return versions[0], versions[1]


def _pids(state: Path, dependency: str) -> str:
    moto, sandbox = server.recorded(state), read_state(sandbox_dir(state))
    assert moto is not None and sandbox is not None
    return {"moto": str(moto.pid), "sandbox": str(sandbox.daemon.pid)}[dependency]


def _assert_one_story(controller: Controller, context: str) -> str:
    """Stack file, endpoint, registry stage and audit log (both copies) agree; returns the version."""
    pinned = pinned_version(controller.stack_path, SERVICE)
    assert pinned is not None, context
    endpoint = controller.adapters_for(SERVICE).endpoints.describe(SERVICE)
    assert (endpoint.status, endpoint.config_name) == ("InService", f"{SERVICE}-{pinned[:12]}"), context
    assert controller.registry.get_version(SERVICE, pinned).stage == "production", context
    serving = [
        e for e in controller.audit.entries() if e["action"] in ("promote:promoted", "rollback:rolled_back")
    ]
    assert serving[-1]["version"] == pinned, context
    assert not unfinished(controller.journal_dir), context
    verdict = controller.audit.verify()
    assert verdict.ok, (context, verdict.problems)
    return pinned


@pytest.mark.parametrize("dependency", ["moto", "sandbox"])
def test_a_dependency_killed_after_each_journaled_step_then_resume_converges(
    project: Path,
    package: PackageResult,
    other_package: PackageResult,
    monkeypatch: pytest.MonkeyPatch,
    dependency: str,
) -> None:
    versions = _ready(project, package, other_package)
    serving = versions[0]
    for step in STEPS:
        target = versions[1] if serving == versions[0] else versions[0]
        context = f"{dependency} killed after {step}"
        pid = _pids(project, dependency)
        monkeypatch.setenv(KILL_AFTER_ENV, f"{step}={pid}")
        try:
            said = build_controller("local").promote(SERVICE, target, "ci@example.com").outcome
        except ModelrailError as error:  # typed: a clear message and an exit code; nothing else passes
            said = f"{type(error).__name__}: {error.message}"
            if dependency == "sandbox":
                # The previous version serves again on a new sandbox before the command ends: exit 5.
                assert isinstance(error, RolledBackError) and "sandbox daemon" in error.message, context
            else:
                assert isinstance(error, DependencyUnavailableError), context
                assert "the embedded AWS at http://127.0.0.1:" in error.message, context
                assert "run `modelrail resume` once it is back" in error.message, context
        monkeypatch.delenv(KILL_AFTER_ENV)
        assert not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE, (
            f"{context}: the fault was injected"
        )

        resumed = build_controller("local")
        outcomes = resumed.resume("ops@example.com")
        print(f"{context}: promote -> {said}; resume -> {[(o.kind, o.outcome, o.reason) for o in outcomes]}")
        serving = _assert_one_story(resumed, context)
        assert resumed.resume("ops@example.com") == [], f"{context}: a second resume finds nothing to do"

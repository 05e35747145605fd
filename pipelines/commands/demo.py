"""``modelrail demo``: train, gate, shadow, canary, promote and roll back, end to end, on one laptop."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipelines.console import console, dumps, emit_json, err_console, escape
from pipelines.errors import ExitCode, InterruptedByUserError

if TYPE_CHECKING:
    from pipelines.demo.scenario import Story, StoryBrokeError
    from pipelines.promotion.audit_scan import Verdict

EXPECTED = {"v1": "promoted", "v2": "refused", "v3": "rolled_back", "v4": "promoted"}
"""How the story must end for each version; anything else fails the demo (exit 1, ``story_holds: false``)."""


@contextmanager
def _workspace_env(project: Path, state: Path) -> Iterator[None]:
    """Point every command at the demo's own project copy and state, and back afterwards."""
    saved = {key: os.environ.get(key) for key in ("MODELRAIL_PROJECT_DIR", "MODELRAIL_STATE_DIR")}
    os.environ["MODELRAIL_PROJECT_DIR"] = str(project)
    os.environ["MODELRAIL_STATE_DIR"] = str(state)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _fresh_workspace(root: Path, repo: Path) -> tuple[Path, Path]:
    """A clean copy of the project's stack files (the program is linked, not copied) and state."""
    from pipelines.demo.scenario import SERVICE
    from pipelines.embedded.session import stop as stop_embedded
    from pipelines.promotion.stackfile import write_pin
    from pipelines.sandbox.client import stop_sandbox

    state = root / "state"
    if state.exists():  # a previous run that was killed: stop what it left, then start over
        stop_sandbox(state)
        stop_embedded(state)
    shutil.rmtree(root, ignore_errors=True)
    project = root / "project"
    project.mkdir(parents=True)
    shutil.copy(repo / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(repo / "stacks", project / "stacks")
    for shared in ("infra", "services", "data"):
        (project / shared).symlink_to(repo / shared, target_is_directory=True)
    # The demo's service starts with no model: v1's promotion creates its endpoint.
    write_pin(project / "stacks" / "Pulumi.local.yaml", SERVICE, None)
    state.mkdir()
    return project, state


def demo(
    json_report: Annotated[
        Path | None, typer.Option("--json-report", help="Write the steps and the final state as JSON here.")
    ] = None,
    report_dir: Annotated[
        Path, typer.Option("--report-dir", help="Where the Markdown report and plots go.")
    ] = Path("demo-report"),
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="The demo's workspace (default: .modelrail/demo).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON report on stdout (the timeline goes to stderr).")
    ] = False,
) -> None:
    """Run the delivery demo: v1 promoted, v2 refused at a gate, v3 stopped as a shadow, v4 through
    shadow, canary and full.

    Everything runs on the embedded default in its own workspace; every process it starts is
    stopped at the end, also after Ctrl-C. Exit 0 when the story ends as it should, 1 otherwise.
    """
    from pipelines.contract.data import snapshot_path
    from pipelines.contract.load import load_contract
    from pipelines.demo import data as demo_data
    from pipelines.demo import report, scenario
    from pipelines.embedded.session import embedded_session
    from pipelines.paths import project_root
    from pipelines.promotion.stackfile import pinned_version
    from pipelines.promotion.wiring import stack_records
    from pipelines.sandbox.client import sandbox_session
    from pipelines.serving.model import import_skops

    repo = project_root()
    root = (state_dir or repo / ".modelrail" / "demo").resolve()
    started = time.monotonic()

    def say(message: str) -> None:
        elapsed = time.monotonic() - started
        out = err_console if as_json else console
        out.print(f"[dim]{int(elapsed // 60):02d}:{elapsed % 60:04.1f}[/] {message}", soft_wrap=True)

    import_skops()  # before the plan loads the Pulumi SDK, which makes this import slow
    project, state = _fresh_workspace(root, repo)
    story = scenario.Story()
    broken: StoryBrokeError | None = None
    verdict: Verdict | None
    with _workspace_env(project, state):
        try:
            snapshot = load_contract(scenario.SERVICE, repo).latest_snapshot
            data = demo_data.prepare(snapshot_path(snapshot, repo), root / "data")
            say(f"workspace {root}: embedded AWS and sandbox starting")
            with embedded_session(state, stack=scenario.STACK), sandbox_session(state):
                try:
                    scenario.run(data, root / "work", story, say)
                except InterruptedByUserError:
                    raise
                except Exception as error:
                    broken = _as_broken(error, story, root)
                verdict = stack_records(scenario.STACK).audit_with_remote().verify()
                entries = list(stack_records(scenario.STACK).audit.entries())
        except InterruptedByUserError:
            raise
        except Exception as error:  # the embedded AWS or the sandbox itself failed
            broken = broken or _as_broken(error, story, root)
            verdict, entries = None, []
        serving = {
            scenario.SERVICE: pinned_version(project / "stacks" / "Pulumi.local.yaml", scenario.SERVICE)
        }
    final = judge(story, broken, verdict, serving)
    document = {"steps": [step.to_json() for step in story.steps], "final": final}
    markdown = report.write(report_dir, story, entries, final)
    if json_report is not None:
        json_report.write_text(dumps(document), encoding="utf-8")
    if as_json:
        emit_json(document)
    say(f"report: {markdown}" + (f", {json_report}" if json_report else ""))
    elapsed = f"({time.monotonic() - started:.0f} s)"
    if final["story_holds"]:
        say(f"[green]serving v4, v2 refused, v3 stopped as a shadow, audit verified[/] {elapsed}")
        return
    broke = final["broken"]
    say(f"[red]the story did not hold at {escape(broke['step'])}[/] {elapsed}")
    out = err_console if as_json else console
    out.print(escape(broke["reason"]), soft_wrap=True)
    for detail in broke["details"]:
        out.print(f"  - {escape(detail)}", soft_wrap=True)
    raise typer.Exit(ExitCode.FAILED)


def _as_broken(error: Exception, story: Story, root: Path) -> StoryBrokeError:
    """Any failure inside the story as the step it broke; a bug's traceback goes to a file, not the screen."""
    import traceback

    from pipelines.demo.scenario import StoryBrokeError
    from pipelines.errors import ModelrailError

    if isinstance(error, StoryBrokeError):
        return error
    if isinstance(error, ModelrailError):
        return StoryBrokeError(story.doing, f"{story.doing} failed: {error.message}", details=error.details)
    log = root / "demo-error.txt"
    log.write_text("".join(traceback.format_exception(error)), encoding="utf-8")
    return StoryBrokeError(
        story.doing,
        f"{story.doing} failed unexpectedly: {type(error).__name__}: {error}",
        details=[f"the traceback is in {log}"],
    )


def judge(story: Any, broken: Any, verdict: Any, serving: dict[str, str | None]) -> dict[str, Any]:
    """The report's ``final`` block: what serves, whether the audit verifies, and whether the story held.

    The story holds when every version ended as ``EXPECTED`` says, v4 is what the stack serves
    and the audit log (local and bucket copy) verifies; otherwise ``broken`` names the first step
    that went astray and why, with the numbers.
    """
    from pipelines.demo.scenario import SERVICE

    names = {sha: name for name, sha in story.versions.items()}
    endings = {
        names[step.version]: step.outcome
        for step in story.steps
        if step.action in ("promote", "gates:candidate") and step.version in names
    }
    problem: dict[str, Any] | None = None
    if broken is not None:
        problem = {"step": broken.step, "reason": broken.message, "details": list(broken.details)}
    elif any(endings.get(name) != outcome for name, outcome in EXPECTED.items()):
        wrong = {name: endings.get(name, "not reached") for name in EXPECTED}
        problem = {
            "step": "the endings",
            "reason": f"the versions ended as {wrong}, not as {EXPECTED}",
            "details": [],
        }
    elif verdict is None or not verdict.ok:
        problem = {
            "step": "audit verify",
            "reason": "the audit log did not verify against its head file and bucket copy",
            "details": [] if verdict is None else list(verdict.problems),
        }
    elif serving.get(SERVICE) != story.versions.get("v4"):
        problem = {
            "step": "serving",
            "reason": f"the local stack pins {serving.get(SERVICE)}, not v4 ({story.versions.get('v4')})",
            "details": [],
        }
    final: dict[str, Any] = {
        "serving": serving,
        "audit_verified": bool(verdict is not None and verdict.ok),
        "story_holds": problem is None,
    }
    if problem is not None:
        final["broken"] = problem
    return final


def register(app: typer.Typer) -> None:
    """Mount ``demo`` on the main app."""
    app.command(name="demo")(demo)

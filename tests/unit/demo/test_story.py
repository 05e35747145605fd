"""The demo's story checks every outcome it depends on and says, with numbers, where it broke.

The scenario runs here against stand-ins for the controller and the training, so each branch
(a version refused that should pass, a canary that does not trip) can be forced in a second;
the whole story on the real controller is the e2e test's job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pipelines.commands import demo as demo_command
from pipelines.demo import scenario
from pipelines.demo.data import DemoData
from pipelines.demo.scenario import Step, Story, StoryBrokeError
from pipelines.errors import RolledBackError
from pipelines.gates.checks import Check
from pipelines.gates.report import GateReport
from pipelines.promotion.audit_scan import Verdict

SHAS = {"v1": "1" * 64, "v2": "2" * 64, "v3": "3" * 64, "v4": "4" * 64}


def _report(passed: bool) -> GateReport:
    check = Check(
        name="latency.p99",
        column=None,
        method="p99",
        statistic=2512.0 if not passed else 120.0,
        p_value=None,
        threshold=2000.0,
        passed=passed,
        detail="p99 of 200 requests at concurrency 1",
    )
    return GateReport(gate="stage:candidate", checks=(check,))


class _InlineExecutor:
    """Runs submitted work at once, in this process, so the stand-ins below are what runs."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __enter__(self) -> _InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args))
        return future


class _Controller:
    """Reports progress as the real controller does: v3's shadow analysis, v4's two phases."""

    def __init__(
        self, progress: Callable[[str, dict[str, Any]], None], v3_rolls_back: bool, v1_rolls_back: bool
    ) -> None:
        self.progress = progress
        self.v3_rolls_back, self.v1_rolls_back = v3_rolls_back, v1_rolls_back
        self.promoted: list[str] = []

    def promote(self, service: str, version: str, actor: str) -> None:
        if version == SHAS["v1"] and self.v1_rolls_back:
            raise RolledBackError("the endpoint runs the old configuration")
        if version == SHAS["v3"] and self.v3_rolls_back:
            reason = "interval 2: p99-latency breached (1830 ms > 400 ms)"
            self.progress(
                "analysis", {"mode": "shadow", "interval": 2, "verdict": "rollback", "reason": reason}
            )
            raise RolledBackError(f"shadow analysis: {reason}")
        if version == SHAS["v4"]:
            for mode in ("shadow", "canary"):
                self.progress(
                    "analysis", {"mode": mode, "interval": 4, "verdict": "promote", "reason": "baked"}
                )
                if mode == "shadow":
                    self.progress("shadow_passed", {"message": "v4 passed its shadow phase"})
        self.promoted.append(version)


@contextmanager
def _no_traffic(*args: object) -> Iterator[None]:
    yield


def _play(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    refused: Collection[str] = ("v2-candidate",),
    v3_rolls_back: bool = True,
    v1_rolls_back: bool = False,
) -> Story:
    monkeypatch.setattr(scenario, "ProcessPoolExecutor", _InlineExecutor)
    monkeypatch.setattr(
        "pipelines.promotion.wiring.build_controller",
        lambda stack, progress: _Controller(progress, v3_rolls_back, v1_rolls_back),
    )
    monkeypatch.setattr(scenario, "train_and_package", lambda name, *a: tmp_path / f"{name}.tar.gz")

    def register(name: str, package: Path, story: Story) -> str:
        story.versions[name] = SHAS[name]
        story.steps.append(Step("register", SHAS[name], "registered"))
        return SHAS[name]

    def gates(controller: Any, name: str, sha: str, stage: str, *args: Any) -> GateReport:
        story = args[2]
        passed = f"{name}-{stage}" not in refused
        story.steps.append(Step(f"gates:{stage}", sha, "passed" if passed else "refused"))
        return _report(passed)

    monkeypatch.setattr(scenario, "register", register)
    monkeypatch.setattr(scenario, "_gates", gates)
    monkeypatch.setattr(scenario, "_approve", lambda *args: None)
    monkeypatch.setattr(scenario, "_live_traffic", _no_traffic)
    story = Story()
    data = DemoData(*(tmp_path / name for name in ("reference", "train", "holdout", "corrupted")))
    scenario.run(data, tmp_path, story, lambda message: None)
    return story


def test_the_told_story_runs_to_its_end(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    story = _play(monkeypatch, tmp_path)
    assert [(s.action, s.outcome) for s in story.steps if s.version == SHAS["v3"]][-1] == (
        "promote",
        "rolled_back",
    )
    assert story.canary and story.canary[-1]["mode"] == "shadow"
    last = story.steps[-1]
    assert (last.action, last.version, last.outcome) == ("promote", SHAS["v4"], "promoted")
    assert last.reason == "through shadow, canary, full"


@pytest.mark.parametrize(
    ("refused", "step"),
    [
        ({"v2-candidate", "v1-candidate"}, "v1: gates:candidate"),
        ({"v2-candidate", "v1-production"}, "v1: gates:production"),
        (set(), "v2: gates:candidate"),
        ({"v2-candidate", "v3-candidate"}, "v3: gates:candidate"),
        ({"v2-candidate", "v3-production"}, "v3: gates:production"),
    ],
)
def test_a_gate_verdict_the_story_does_not_expect_names_the_step_and_the_numbers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, refused: set[str], step: str
) -> None:
    with pytest.raises(StoryBrokeError) as broke:
        _play(monkeypatch, tmp_path, refused=refused)
    assert broke.value.step == step
    if step != "v2: gates:candidate":
        assert "latency.p99 = 2512 against 2000" in broke.value.message
    else:
        assert "age" in broke.value.message and "workclass" in broke.value.message


def test_a_shadow_that_does_not_trip_breaks_the_story(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(StoryBrokeError) as broke:
        _play(monkeypatch, tmp_path, v3_rolls_back=False)
    assert broke.value.step == "v3: promote"
    assert "did not stop it" in broke.value.message and "no interval" in broke.value.message


def test_a_rollback_by_the_canary_instead_of_the_shadow_breaks_the_story(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = _Controller.promote

    def canary_rollback(self: _Controller, service: str, version: str, actor: str) -> None:
        if version == SHAS["v3"]:
            self.progress(
                "analysis", {"mode": "canary", "interval": 1, "verdict": "rollback", "reason": "p99"}
            )
            raise RolledBackError("canary analysis: p99")
        real(self, service, version, actor)

    monkeypatch.setattr(_Controller, "promote", canary_rollback)
    with pytest.raises(StoryBrokeError) as broke:
        _play(monkeypatch, tmp_path)
    assert broke.value.step == "v3: promote" and "not by its shadow phase" in broke.value.message


def test_v4_promoted_without_its_canary_judged_breaks_the_story(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = _Controller.promote

    def unjudged_canary(self: _Controller, service: str, version: str, actor: str) -> None:
        if version == SHAS["v4"]:
            self.progress(
                "analysis", {"mode": "shadow", "interval": 4, "verdict": "promote", "reason": "baked"}
            )
            self.promoted.append(version)  # the blue/green ended before the canary's analysis did
            return
        real(self, service, version, actor)

    monkeypatch.setattr(_Controller, "promote", unjudged_canary)
    with pytest.raises(StoryBrokeError) as broke:
        _play(monkeypatch, tmp_path)
    assert broke.value.step == "v4: promote" and "['shadow']" in broke.value.message


def test_v1_rolled_back_breaks_the_story(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(StoryBrokeError) as broke:
        _play(monkeypatch, tmp_path, v1_rolls_back=True)
    assert broke.value.step == "v1: promote"
    assert "old configuration" in broke.value.message


def _finished_story() -> Story:
    story = Story(versions=dict(SHAS))
    story.steps = [
        Step("promote", SHAS["v1"], "promoted"),
        Step("gates:candidate", SHAS["v2"], "refused"),
        Step("promote", SHAS["v3"], "rolled_back"),
        Step("promote", SHAS["v4"], "promoted"),
    ]
    return story


GOOD = Verdict(ok=True, entries=3, head="h", problems=())


def test_the_story_holds_only_with_every_ending_a_verified_audit_and_v4_serving() -> None:
    story = _finished_story()
    assert demo_command.judge(story, None, GOOD, {"adult-income": SHAS["v4"]}) == {
        "serving": {"adult-income": SHAS["v4"]},
        "audit_verified": True,
        "story_holds": True,
    }
    bad_audit = Verdict(ok=False, entries=3, head="h", problems=("line 2: hash mismatch",))
    assert demo_command.judge(story, None, bad_audit, {"adult-income": SHAS["v4"]})["broken"] == {
        "step": "audit verify",
        "reason": "the audit log did not verify against its head file and bucket copy",
        "details": ["line 2: hash mismatch"],
    }
    wrong_pin = demo_command.judge(story, None, GOOD, {"adult-income": SHAS["v1"]})
    assert wrong_pin["story_holds"] is False and wrong_pin["broken"]["step"] == "serving"
    story.steps[2] = Step("promote", SHAS["v3"], "promoted")
    endings = demo_command.judge(story, None, GOOD, {"adult-income": SHAS["v4"]})
    assert endings["broken"]["step"] == "the endings" and "'v3': 'promoted'" in endings["broken"]["reason"]


@pytest.mark.parametrize(
    ("failure", "step", "words"),
    [
        (StoryBrokeError("v3: promote", "v3's canary was not rolled back: p99 120 ms"), "v3: promote", "p99"),
        (RuntimeError("a bug"), "v1: train and register", "RuntimeError: a bug"),
    ],
)
def test_the_demo_command_reports_a_broken_story_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failure: Exception, step: str, words: str
) -> None:
    @contextmanager
    def session(*args: object, **kwargs: object) -> Iterator[None]:
        yield

    class _Records:
        audit = type("Audit", (), {"entries": staticmethod(lambda: iter([]))})()

        def audit_with_remote(self) -> Any:
            return type("Remote", (), {"verify": staticmethod(lambda: GOOD)})()

    def run(data: DemoData, work: Path, story: Story, say: Callable[[str], None]) -> None:
        story.doing = "v1: train and register"
        raise failure

    monkeypatch.setattr("pipelines.embedded.session.embedded_session", session)
    monkeypatch.setattr("pipelines.sandbox.client.sandbox_session", session)
    monkeypatch.setattr("pipelines.promotion.wiring.stack_records", lambda stack: _Records())
    monkeypatch.setattr("pipelines.demo.data.prepare", lambda source, directory: None)
    monkeypatch.setattr(scenario, "run", run)
    app = typer.Typer()
    demo_command.register(app)
    app.command(name="noop")(lambda: None)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--json-report",
            str(report),
            "--report-dir",
            str(tmp_path / "report"),
            "--state-dir",
            str(tmp_path / "ws"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and words in result.output
    final = json.loads(report.read_text())["final"]
    assert final["story_holds"] is False and final["broken"]["step"] == step
    assert words in final["broken"]["reason"]
    if isinstance(failure, RuntimeError):
        assert "Traceback" in (tmp_path / "ws" / "demo-error.txt").read_text()

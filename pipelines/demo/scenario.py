"""The demo's story, step by step, on the real controller over the embedded default.

v1 is trained on Adult, gated, approved by a second person and promoted through the local stack.
v2 is trained on a corrupted copy of the data and refused at a gate. v3 is the same model with a
slow online lookup: it passes its offline gates (a handful of concurrent requests barely queue)
and then, as the shadow of live traffic, its p99 latency breaks the guardrail, which ends its
progression before any user traffic reaches it. v4, a healthy retrain, goes through the whole
progression the local stack declares: shadow, canary, then all traffic.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.demo.data import DemoData
from pipelines.errors import RefusedError, RolledBackError

if TYPE_CHECKING:
    from pipelines.gates.report import GateReport

SERVICE = "adult-income"
STACK = "local"
REGISTRANT = "rita@modelrail.dev"
"""The ML engineer who trains and registers every version."""
APPROVER = "alice@modelrail.dev"
"""The second person who approves production."""
GATEKEEPER = "ci@modelrail.dev"
"""The CI identity that runs the gates and the promotions."""
POLICIES = Path(__file__).with_name("policies")
HYPERPARAMETERS = {"max_iter": 100}
V4_HYPERPARAMETERS = {"max_iter": 120}
"""v4: the healthy retrain, a few more boosting rounds than v1."""
SLOW_LOOKUP_MS = 90.0
"""v3's online lookup: 90 ms on one shared connection. One request at a time (the offline latency
gate) is within budget; the shadow's mirrored share of live traffic (12.5 requests/s) is more than
the ~10/s the connection can serve, so requests queue and the p99 goes far past the 400 ms guardrail."""
REPLAY_RPS = 25.0
LABEL_DELAY_SECONDS = 2.0

Say = Callable[[str], None]


@dataclass
class Step:
    """One line of the demo's JSON report."""

    action: str
    version: str
    outcome: str
    reason: str = ""
    service: str = SERVICE
    stack: str = STACK

    def to_json(self) -> dict[str, str]:
        return {
            "action": self.action,
            "service": self.service,
            "version": self.version,
            "stack": self.stack,
            "outcome": self.outcome,
            "reason": self.reason,
        }


@dataclass
class Story:
    """What happened: the steps, and the material for the report."""

    steps: list[Step] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    """Demo name (v1 to v4) → package sha."""
    gate_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    canary: list[dict[str, Any]] = field(default_factory=list)
    """The analysis of v3's shadow phase, one decision per interval."""
    progression: list[str] = field(default_factory=list)
    """The phases whose analysis promoted v4, in order, as the controller reported them."""
    previews: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, Any] = field(default_factory=dict)
    doing: str = "preparing the workspace"
    """The step under way, e.g. ``v3: promote``: what a failure is reported against."""


class StoryBrokeError(RefusedError):
    """The story did not go as told: a version refused that should pass, a canary that did not trip.

    ``step`` names where it happened (``v1: gates:candidate``); the message is the paragraph the
    user reads, with the check and its numbers.
    """

    def __init__(self, step: str, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message, details=details)
        self.step = step


def failed_checks(report: GateReport, limit: int = 5) -> list[str]:
    """The failing checks of a gate report as sentences with their numbers."""
    lines = []
    for check in report.failures[:limit]:
        measured = "n/a" if check.statistic is None else f"{check.statistic:.4g}"
        bound = "" if check.threshold is None else f" against {check.threshold:.4g}"
        column = f" on {check.column}" if check.column else ""
        lines.append(f"{check.name}{column} = {measured}{bound}: {check.detail}")
    if len(report.failures) > limit:
        lines.append(f"and {len(report.failures) - limit} more failing checks")
    return lines


def train_and_package(name: str, data_path: Path, hyperparameters: dict[str, Any], work: Path) -> Path:
    """Train from a fresh manifest and package the model; returns the package's path.

    Runs in a worker process for v2 to v4 while v1 goes through its gates (training is
    single-threaded, the machine has a second core).
    """
    from pipelines.packaging.build import build_package
    from pipelines.paths import project_root
    from pipelines.training.manifest import Hyperparameters, TrainingManifest, fingerprint, git_sha
    from pipelines.training.trainer import train

    manifest = TrainingManifest(
        service=SERVICE,
        data_uri=data_path.resolve().as_uri(),
        data_sha256=fingerprint(data_path),
        hyperparameters=Hyperparameters(**{**HYPERPARAMETERS, **hyperparameters}),
        seed=7,
        code_git_sha=git_sha(Path(__file__).resolve().parents[2]),
    )
    result = train(manifest, work / name / "model", root=project_root())
    return build_package(SERVICE, result.out_dir, work / name / "model.tar.gz").path


def register(name: str, package: Path, story: Story) -> str:
    """Register a package as the ML engineer; returns its sha."""
    from pipelines.promotion.wiring import register_version

    registration, _ = register_version(STACK, SERVICE, package, REGISTRANT)
    sha = story.versions[name] = registration.version.package_sha
    story.steps.append(Step("register", sha, "registered"))
    return sha


def run(data: DemoData, work: Path, story: Story, say: Say) -> None:
    """Play the four versions through the controller, recording each step in ``story``.

    Every outcome the story depends on is checked where it happens; one that differs raises
    ``StoryBrokeError`` naming the step and the numbers, so the demo never ends in a traceback.
    """
    from pipelines.promotion.wiring import build_controller

    def progress(event: str, fields: dict[str, Any]) -> None:
        if event == "analysis":
            if _current[0] == "v3":
                story.canary.append(fields)
            elif _current[0] == "v4" and fields["verdict"] == "promote":
                story.progression.append(str(fields.get("mode")))
            say(f"    {'shadow' if fields.get('mode') == 'shadow' else 'canary'}: {fields['reason']}")
        elif event == "shadow_passed":
            say(f"    {fields['message']}: the candidate takes user traffic next")
        elif event == "previewed":
            preview = fields["preview"]
            story.previews.setdefault(_current[0], preview)
            changes = ", ".join(f"{n} to {op}" for op, n in preview["summary"].items() if n and op != "same")
            say(f"    plan: {changes or 'no changes'}")
        elif event == "reverting":
            say(f"    reverting the stack file: {fields['reason']}")

    _current = ["v1"]
    controller = build_controller(STACK, progress=progress)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as background:
        say("v2, v3, v4: training in the background while v1 goes through its gates")
        v2_package = background.submit(train_and_package, "v2", data.corrupted, {}, work)
        v3_package = background.submit(
            train_and_package, "v3", data.train, {"slow_preprocessing_ms": SLOW_LOOKUP_MS}, work
        )
        v4_package = background.submit(train_and_package, "v4", data.train, V4_HYPERPARAMETERS, work)

        # v1: the first version. No baseline: the gates say so and check absolute bounds.
        say(f"v1: training on {data.train.name}")
        story.doing = "v1: train and register"
        v1 = register("v1", train_and_package("v1", data.train, {}, work), story)
        for stage in ("candidate", "production"):
            _expect_passed(_gates(controller, "v1", v1, stage, data, None, story, say), "v1", stage)
        _approve(controller, "v1", v1, story, say)
        say("v1: promoting through the local stack")
        story.doing = "v1: promote"
        try:
            controller.promote(SERVICE, v1, GATEKEEPER)
        except RolledBackError as error:
            raise StoryBrokeError(
                story.doing,
                f"v1, the healthy first version, did not stay in production: {error.message}. "
                "Its endpoint or canary analysis undid the rollout, so the story has no stable "
                "version to fall back to.",
                details=error.details,
            ) from error
        story.steps.append(Step("promote", v1, "promoted"))

        # v2: trained on corrupted data; the candidate gates refuse it.
        _current[0] = "v2"
        story.doing = "v2: train and register"
        v2 = register("v2", v2_package.result(), story)
        report = _gates(controller, "v2", v2, "candidate", data, v1, story, say)
        if report.passed:
            raise StoryBrokeError(
                "v2: gates:candidate",
                "v2 was trained on a corrupted copy of the data (ages shifted by 18 years, a third of "
                f"`Private` relabelled), yet it passed all {len(report.checks)} candidate checks: the "
                "drift and skew gates should have flagged `age` and `workclass`.",
            )

        # v3: passes offline, breaks the latency guardrail as a shadow of live traffic.
        _current[0] = "v3"
        story.doing = "v3: train and register"
        v3 = register("v3", v3_package.result(), story)
        story.doing = "v4: train and register"
        v4 = register("v4", v4_package.result(), story)
    for name, sha in (("v3", v3), ("v4", v4)):
        _current[0] = name
        for stage in ("candidate", "production"):
            _expect_passed(_gates(controller, name, sha, stage, data, v1, story, say), name, stage)
        _approve(controller, name, sha, story, say)
    _current[0] = "v3"
    say(
        f"v3: promoting with live traffic ({REPLAY_RPS:g} requests/s, labels after {LABEL_DELAY_SECONDS:g} s)"
    )
    story.doing = "v3: promote"
    with _live_traffic(controller, data, story):
        try:
            controller.promote(SERVICE, v3, GATEKEEPER)
        except RolledBackError as error:
            story.steps.append(Step("promote", v3, "rolled_back", error.message))
            say(f"v3: stopped in its shadow phase: {error.message}")
        else:
            story.steps.append(Step("promote", v3, "promoted"))
            raise StoryBrokeError(
                story.doing,
                f"v3's shadow phase did not stop it: {_last_decision(story)}. v3 queues its requests on "
                f"one {SLOW_LOOKUP_MS:g} ms lookup, so its mirrored share of {REPLAY_RPS:g} requests/s "
                f"should have broken the p99 guardrail; the replayed traffic was "
                f"{story.replay or 'not recorded'}.",
            )
        if not story.canary or story.canary[-1].get("mode") != "shadow":
            raise StoryBrokeError(
                story.doing,
                f"v3 was rolled back, but not by its shadow phase: {_last_decision(story)}; user traffic "
                "reached it before the latency was seen.",
            )

        # v4: a healthy retrain through the whole progression.
        _current[0] = "v4"
        say("v4: promoting through shadow, canary and all traffic")
        story.doing = "v4: promote"
        try:
            controller.promote(SERVICE, v4, GATEKEEPER)
        except RolledBackError as error:
            story.steps.append(Step("promote", v4, "rolled_back", error.message))
            raise StoryBrokeError(
                story.doing,
                f"v4, a healthy retrain, did not go through its progression: {error.message}",
                details=error.details,
            ) from error
    story.steps.append(Step("promote", v4, "promoted", f"through {', '.join(story.progression)}, full"))
    if story.progression != ["shadow", "canary"]:
        raise StoryBrokeError(
            story.doing,
            f"v4 was promoted, but the analyses that passed it were {story.progression or 'none'}, not its "
            "shadow's and then its canary's",
        )


def _expect_passed(report: GateReport, name: str, stage: str) -> None:
    """v1 and v3 are meant to pass every offline gate; say which check refused them and by how much."""
    if report.passed:
        return
    role = {
        "v1": "the healthy first version",
        "v3": "meant to fail only live, under load",
    }.get(name, "a healthy retrain")
    raise StoryBrokeError(
        f"{name}: gates:{stage}",
        f"{name} ({role}) was refused at its {stage} gates: {'; '.join(failed_checks(report, 3))}. "
        "A latency check failing on a busy machine points at CPU contention rather than the model; "
        "the full report is in the demo report's gate verdicts.",
        details=failed_checks(report),
    )


def _last_decision(story: Story) -> str:
    if not story.canary:
        return "the analysis recorded no interval"
    last = story.canary[-1]
    return f"{len(story.canary)} intervals analysed, the last one {last['verdict']}: {last['reason']}"


def _gates(
    controller: Any,
    name: str,
    sha: str,
    stage: str,
    data: DemoData,
    baseline: str | None,
    story: Story,
    say: Say,
) -> GateReport:
    from pipelines.gates.stage import summarise
    from pipelines.promotion.qualify import qualify

    say(f"{name}: {stage} gates")
    story.doing = f"{name}: gates:{stage}"
    passed, report = qualify(
        controller,
        service=SERVICE,
        version=sha,
        stage=stage,
        reference=data.reference,
        holdout=data.holdout,
        baseline=baseline,
        actor=GATEKEEPER,
        policy_path=POLICIES / f"{stage}.yaml",
    )
    story.gate_reports[f"{name}-{stage}"] = report.to_json()
    reason = "" if passed else summarise(report)
    story.steps.append(Step(f"gates:{stage}", sha, "passed" if passed else "refused", reason))
    say(f"    {'passed' if passed else 'refused'}: {summarise(report)}")
    return report


def _approve(controller: Any, name: str, sha: str, story: Story, say: Say) -> None:
    story.doing = f"{name}: approve"
    approval = controller.approve(SERVICE, sha, APPROVER, "production gates reviewed")
    story.steps.append(Step("approve", sha, "approved"))
    say(f"    approved by {approval.approver} (evidence {approval.evidence_digest[:12]})")


class _live_traffic:  # noqa: N801 - used as a context manager, reads as a phrase
    """Replay held-out rows at the endpoint, with delayed labels, while the block runs."""

    def __init__(self, controller: Any, data: DemoData, story: Story) -> None:
        self.controller, self.data, self.story = controller, data, story
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> None:
        from pipelines.contract.load import load_contract
        from pipelines.sandbox.replay import load_rows, replay

        columns = load_contract(SERVICE).data.format.columns
        rows = load_rows(self.data.holdout, columns=list(columns or ()), label_column=-1)
        url = self.controller.runner.sandbox.endpoint_url(SERVICE)

        def send() -> None:
            summary = replay(
                url, rows, rps=REPLAY_RPS, duration=600, labels_after=LABEL_DELAY_SECONDS, stop=self.stop
            )
            self.story.replay = summary.to_json()

        self.thread = threading.Thread(target=send, name="replay", daemon=True)
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)

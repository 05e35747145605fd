"""The governed path of ``adult-income`` on the local stack, each step its own ``modelrail`` process.

qualify, approve, promote, rollback and resume run through the CLI (``--json``) against the
embedded default (a moto server on loopback and the local sandbox, whose fleets run the stand-in
model server), in a project whose ``stacks/`` is a copy: the repository's stack files are never
touched. The story runs once, in a module fixture that records every command's exit code, its
JSON and the audit entries it appended; each test then checks one chapter of it:

* a version trained on corrupted data is refused at its candidate gates (exit 1), naming the
  drifted columns, and may not be promoted;
* a good version passes both stages; promoting it unapproved is refused; its registrant may not
  approve it, not even in other letter case, and a look-alike name is refused as input; a second
  person's approval binds to the production evidence;
* promote, then status shows it serving; promoting it again changes nothing; rollback with no
  earlier version and resume with nothing to resume;
* a promotion of v2 whose process is SIGKILLed after it pinned (``MODELRAIL_CRASH_AFTER``) shows in
  status and blocks the next one (exit 4) until ``resume`` undoes it; one killed after the endpoint
  verified is carried forward by ``resume``;
* rollback refuses a version that never served, then returns to v1;
* ``history`` and ``audit verify`` agree with the log file, and an edited entry fails verify.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipelines.gates.report import canonical_digest
from pipelines.promotion.journal import CRASH_AFTER_ENV
from pipelines.training.manifest import Hyperparameters, TrainingManifest, fingerprint

from .conftest import REPO, SERVICE, STANDIN

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("governed_cli")]

STACK = "local"
REGISTRANT = "rita@example.com"
APPROVER = "alice@example.com"
CI = "ci@example.com"
OPS = "ops@example.com"
FAST_ROLLOUT = """      deployment:
        strategy: all_at_once
        canaryPercent: 50
        bakeSeconds: 0
        terminationWaitSeconds: 0
        maxExecutionSeconds: 600
"""
"""The copy's rollouts: one step, no bake (the canary analysis is not what is tested here)."""
SAMPLE_ROWS = 10_000
"""Rows of Adult the story's data is drawn from: the reference; 80 % train, 20 % held out."""


@dataclass
class Run:
    """One ``modelrail`` process: its arguments, exit code, JSON and the audit entries it appended."""

    args: tuple[str, ...]
    code: int
    out: Any
    stderr: str
    entries: list[dict[str, Any]]
    seconds: float

    def text(self) -> str:
        return json.dumps(self.out) if self.out is not None else ""

    def why(self) -> str:
        command = " ".join(self.args)
        return f"{command}: exit {self.code} after {self.seconds:.1f} s\n{self.stderr[-3000:]}\n{self.text()[:3000]}"


@dataclass
class Story:
    project: Path
    audit: Path
    """The stack's local audit log (JSON lines)."""
    versions: dict[str, str] = field(default_factory=dict)
    """v1, v2, bad → package sha."""
    setup: list[dict[str, Any]] = field(default_factory=list)
    """The audit entries written before the first command: three registrations, v2's gates."""
    runs: dict[str, Run] = field(default_factory=dict)
    pins: dict[str, str | None] = field(default_factory=dict)
    """The stack file's pin of the service right after the named run."""
    tampered: str = ""
    """Where ``_tamper`` edited the log (``path:line: ``), as ``audit verify`` names it."""
    repository_stacks: tuple[str, str] = ("", "")
    """The repository's own local stack file before and after the story."""


def _audit_entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _pin(project: Path) -> str | None:
    from pipelines.promotion.stackfile import pinned_version

    return pinned_version(project / "stacks" / f"Pulumi.{STACK}.yaml", SERVICE)


def _manifest(data: Path, seed: int) -> TrainingManifest:
    """``small_manifest`` on a given snapshot (by file URI, so the gates find it outside the project)."""
    return TrainingManifest(
        service=SERVICE,
        data_uri=data.resolve().as_uri(),
        data_sha256=fingerprint(data),
        hyperparameters=Hyperparameters.model_validate({"sample_rows": 1500, "max_iter": 10}),
        seed=seed,
        code_git_sha="2" * 40,
    )


LOOSE_METRICS = {
    "accuracy": {"min": 0.75, "maxRegression": 0.05},
    "roc_auc": {"min": 0.8, "maxRegression": 0.05},
    "f1": {"min": 0.3, "maxRegression": 0.2},
    "log_loss": {"max": 0.6, "maxRegression": 0.5, "relative": True},
    "brier": {"max": 0.25, "maxRegression": 0.5, "relative": True},
    "ece": {"max": 0.2},
}
"""Bounds the small models (1,500 rows, 10 boosting rounds) meet; the shipped ones are for real models."""


def _policies(directory: Path) -> dict[str, Path]:
    """The demo's gate policies without the slow gates (repro, latency) and with ``LOOSE_METRICS`` and
    loose fairness gaps; the data and drift thresholds, which must refuse the corrupted snapshot,
    stay the demo's own."""
    from pipelines.gates.policy import load_policy

    paths = {}
    for stage, gates in (("candidate", ["data", "drift", "model"]), ("production", ["model"])):
        policy = load_policy(REPO / "pipelines" / "demo" / "policies" / f"{stage}.yaml", stage=stage)
        document = {**policy.model_dump(mode="json", by_alias=True), "gates": gates}
        document["model"]["metrics"] = LOOSE_METRICS
        fairness = document["model"]["fairness"]
        for gap in ("maxDemographicParityDifference", "maxEqualOpportunityDifference"):
            fairness[gap] = 1.0
        paths[stage] = directory / f"{stage}.yaml"
        paths[stage].write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
    return paths


def _project(root: Path) -> Path:
    """The repository linked entry by entry, with its own ``stacks/``: a fast rollout, nothing pinned."""
    from infra.config import load_stack_file
    from pipelines.promotion.stackfile import write_pin

    project = root / "project"
    project.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {"stacks", ".git", ".venv", ".modelrail"}:
            (project / entry.name).symlink_to(entry)
    shutil.copytree(REPO / "stacks", project / "stacks")
    local = project / "stacks" / f"Pulumi.{STACK}.yaml"
    text = local.read_text(encoding="utf-8")
    start = text.index("      deployment:\n", text.index(f"    {SERVICE}:\n"))
    end = text.index("      guardrails:\n", start)
    local.write_text(text[:start] + FAST_ROLLOUT + text[end:], encoding="utf-8")
    for name, service in load_stack_file(local).services.items():
        if service.model_version is not None:  # a fresh stack: nothing deployed yet
            write_pin(local, name, None)
    return project


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The story, played once: every command's result is in ``Story.runs``, for the tests to judge."""
    from pipelines.demo.data import prepare
    from pipelines.embedded.session import embedded_session
    from pipelines.packaging.build import build_package
    from pipelines.promotion.wiring import build_controller, register_version, stack_records
    from pipelines.sandbox import sandbox_session
    from pipelines.training.trainer import train

    root = tmp_path_factory.mktemp("governed")
    project, state = _project(root), root / "state"
    # The demo's split and corruption, of a sample of Adult: the data gates have less to read.
    lines = [line for line in (REPO / "data" / "adult" / "adult.data").read_text().splitlines() if line]
    sample = root / "adult-sample.data"
    sample.write_text("\n".join(random.Random(5).sample(lines, SAMPLE_ROWS)) + "\n", encoding="utf-8")
    data = prepare(sample, root / "data")
    packages = {}
    for name, snapshot, seed in (("v1", data.train, 11), ("v2", data.train, 12), ("bad", data.corrupted, 11)):
        model_dir = train(_manifest(snapshot, seed), root / name / "model", root=REPO).out_dir
        packages[name] = build_package(SERVICE, model_dir, root / name / "model.tar.gz").path

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELRAIL_PROJECT_DIR", str(project))
        patch.setenv("MODELRAIL_STATE_DIR", str(state))
        for name in ("MODELRAIL_AWS", "OPENLINEAGE_URL", "MODELRAIL_USER", "MODELRAIL_KILL_AFTER",
                     "MODELRAIL_CRASH_AFTER", "MODELRAIL_TRACEBACK"):  # fmt: skip
            patch.delenv(name, raising=False)
        # The CLI processes adopt this moto server and this sandbox (fleets: the stand-in server).
        with embedded_session(state, stack=STACK), sandbox_session(state, server_command=STANDIN):
            told = Story(project, stack_records(STACK).audit.path)
            # In this process, as setup: registering is not under test here, and v2's gates would
            # be v1's path again (v2 is what the crashes and the rollback need, approved through the CLI).
            for name, built in packages.items():
                registration, _ = register_version(STACK, SERVICE, built, REGISTRANT)
                told.versions[name] = registration.version.package_sha
            controller = build_controller(STACK)
            for stage in ("candidate", "production"):
                controller.record_gates(
                    SERVICE, told.versions["v2"], stage, passed=True, summary="set up by the test",
                    report={"checks": [], "stage": stage}, actor=CI,
                )  # fmt: skip
            told.setup = _audit_entries(told.audit)
            before = (REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text(encoding="utf-8")
            _play(told, data.reference, data.holdout, _policies(root))
            told.repository_stacks = (before, (REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text("utf-8"))
            yield told


def _cli(*args: str, env: dict[str, str] | None = None) -> Run:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args, "--json"],
        check=False, capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip
    try:
        out = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        out = {"unparsed": result.stdout}
    return Run(tuple(args), result.returncode, out, result.stderr, [], time.monotonic() - started)


def _play(story: Story, reference: Path, holdout: Path, policies: dict[str, Path]) -> None:
    """The whole story, in order; nothing is asserted here, every step is recorded for the tests."""
    on = ("--service", SERVICE, "--stack", STACK)
    v1, v2, bad = (story.versions[name] for name in ("v1", "v2", "bad"))

    def run(key: str, *args: str, env: dict[str, str] | None = None) -> None:
        before = len(_audit_entries(story.audit))
        done = _cli(*args, env=env)
        done.entries = _audit_entries(story.audit)[before:]
        story.runs[key], story.pins[key] = done, _pin(story.project)

    def qualify(key: str, version: str, stage: str) -> None:
        run(key, "qualify", *on, "--version", version, "--stage", stage, "--reference", str(reference),
            "--data", str(holdout), "--policy", str(policies[stage]), "--as", CI)  # fmt: skip

    def promote(key: str, version: str, env: dict[str, str] | None = None) -> None:
        run(key, "promote", *on, "--version", version, "--yes", "--as", CI, env=env)

    def approve(key: str, version: str, who: str) -> None:
        run(key, "approve", *on, "--version", version, "--as", who, "--comment", "gates reviewed")

    # The corrupted snapshot: refused at the candidate gates, and never deployable.
    qualify("qualify bad", bad, "candidate")
    promote("promote bad", bad)
    approve("approve bad", bad, APPROVER)

    # v1: gates, the four-eyes rule, approval, promotion.
    qualify("qualify v1 candidate", v1, "candidate")
    qualify("qualify v1 production", v1, "production")
    promote("promote v1 unapproved", v1)
    approve("approve v1 by registrant", v1, "Rita@Example.COM")
    approve("approve v1 by look-alike", v1, "\uff52ita@example.com")  # FULLWIDTH LATIN SMALL LETTER R
    approve("approve v1", v1, APPROVER)
    promote("promote v1", v1)
    run("status v1", "status", "--stack", STACK)
    promote("promote v1 again", v1)
    run("rollback nothing earlier", "rollback", *on, "--as", CI)
    run("resume nothing", "resume", "--stack", STACK, "--as", OPS)

    # v2: a promotion killed after it pinned blocks the next one until resume undoes it.
    approve("approve v2", v2, APPROVER)
    promote("promote v2 killed after pinned", v2, env={CRASH_AFTER_ENV: "pinned"})
    run("status interrupted", "status", "--stack", STACK)
    promote("promote v2 while interrupted", v2)
    run("resume interrupted", "resume", "--stack", STACK, "--as", OPS)

    # One killed after the endpoint verified v2: resume carries it forward.
    promote("promote v2 killed after verified", v2, env={CRASH_AFTER_ENV: "verified"})
    run("resume verified", "resume", "--stack", STACK, "--as", OPS)
    run("status resumed", "status", "--stack", STACK)

    # Rollback returns to v1, and only to a version that served here.
    run("rollback to bad", "rollback", *on, "--to", bad, "--as", CI)
    run("rollback", "rollback", *on, "--as", CI)
    run("status rolled back", "status", "--stack", STACK)

    run("history", "history", *on)
    run("audit verify", "audit", "verify", "--stack", STACK)
    _tamper(story)
    run("audit verify tampered", "audit", "verify", "--stack", STACK)


def _tamper(story: Story) -> None:
    """Change who approved v1 in the local log, keeping the line valid JSON (the hash no longer fits)."""
    lines = story.audit.read_text(encoding="utf-8").splitlines(keepends=True)
    for index, line in enumerate(lines):
        entry = json.loads(line)
        if entry["action"] == "approve" and entry["version"] == story.versions["v1"]:
            entry["actor"] = "mallory@example.com"
            lines[index] = json.dumps(entry, sort_keys=True) + "\n"
            story.tampered = f"{story.audit}:{index + 1}: "
            break
    story.audit.write_text("".join(lines), encoding="utf-8")


def _step(story: Story, key: str, code: int) -> Run:
    done = story.runs[key]
    assert done.code == code, done.why()
    return done


def _actions(done: Run) -> list[tuple[str, str, str]]:
    return [(entry["action"], entry.get("version", ""), entry["actor"]) for entry in done.entries]


def _row(done: Run) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [row for row in done.out["services"] if row["service"] == SERVICE]
    assert len(rows) == 1, done.why()
    return rows[0]


# --------------------------------------------------------------------------- the tests


def test_a_version_trained_on_corrupted_data_is_refused_at_its_candidate_gates(story: Story) -> None:
    bad = story.versions["bad"]
    report = _step(story, "qualify bad", 1).out
    assert report["passed"] is False and report["subject"]["candidate"] == bad
    failed = {(c["name"], c["column"]) for c in report["checks"] if c["passed"] is False}
    assert {"age", "workclass"} <= {column for _, column in failed}, failed
    assert any("not run, because the data gates refused: model" in note for note in report["notes"])
    [entry] = story.runs["qualify bad"].entries
    assert (entry["action"], entry["version"], entry["stage"], entry["actor"]) == (
        "gates:refused", bad, "candidate", CI,
    )  # fmt: skip
    assert "age" in entry["reason"] and "workclass" in entry["reason"], entry

    refused = _step(story, "promote bad", 1)
    assert refused.out["error"] == "RefusedError"
    assert f"{bad[:12]} is experimental" in refused.out["message"], refused.why()
    not_approvable = _step(story, "approve bad", 1)
    assert "no passing production-stage gate report" in not_approvable.out["message"]
    assert refused.entries == [] and not_approvable.entries == []
    assert story.pins["promote bad"] is None


def test_a_good_version_passes_both_stages_and_is_recorded_as_evidence(story: Story) -> None:
    v1 = story.versions["v1"]
    registered = [(e["action"], e["version"], e["actor"]) for e in story.setup if e["action"] == "register"]
    assert registered == [("register", story.versions[name], REGISTRANT) for name in ("v1", "v2", "bad")]
    for stage in ("candidate", "production"):
        done = _step(story, f"qualify v1 {stage}", 0)
        assert done.out["passed"] is True and done.out["subject"]["stage"] == stage, done.why()
        assert done.out["summary"]["failed"] == 0 and done.out["summary"]["checks"] > 0
        [entry] = done.entries
        assert (entry["action"], entry["version"], entry["stage"]) == ("gates:passed", v1, stage)
        assert entry["evidence"] == canonical_digest(done.out), "the evidence is the report printed"
        # Nothing served on the stack yet: no baseline, so the model gate checks absolute bounds only.
        assert done.out["subject"]["baseline"] is None
        assert any("first version" in note for note in done.out["notes"]), done.out["notes"]
    gates = {c["name"].split(".")[0] for c in story.runs["qualify v1 candidate"].out["checks"]}
    assert len(gates) > 1, gates


def test_promotion_needs_a_second_persons_approval(story: Story) -> None:
    v1 = story.versions["v1"]
    unapproved = _step(story, "promote v1 unapproved", 1)
    assert f"needs a second person's approval of {v1[:12]}" in unapproved.out["message"], unapproved.why()
    assert unapproved.entries == [] and story.pins["promote v1 unapproved"] is None

    own = _step(story, "approve v1 by registrant", 1)
    assert own.out["error"] == "RefusedError"
    assert "cannot approve it (four eyes)" in own.out["message"], own.why()
    look_alike = _step(story, "approve v1 by look-alike", 2)
    assert "U+FF52" in look_alike.out["message"] and "compatibility form" in look_alike.out["message"]
    assert own.entries == [] and look_alike.entries == []

    approved = _step(story, "approve v1", 0)
    assert approved.out["approver"] == APPROVER
    [entry] = approved.entries
    production = story.runs["qualify v1 production"].entries[0]["evidence"]
    assert (entry["action"], entry["version"], entry["actor"], entry["evidence"]) == (
        "approve", v1, APPROVER, production,
    )  # fmt: skip
    assert approved.out["evidence_digest"] == production


def test_promote_pins_the_version_and_status_shows_it_serving(story: Story) -> None:
    v1 = story.versions["v1"]
    promoted = _step(story, "promote v1", 0).out
    assert (promoted["kind"], promoted["outcome"], promoted["version"], promoted["previous"]) == (
        "promote", "promoted", v1, "",
    )  # fmt: skip
    assert promoted["endpoint"]["status"] == "InService"
    assert story.pins["promote v1"] == v1
    [entry] = story.runs["promote v1"].entries
    assert (entry["action"], entry["version"], entry["actor"], entry["journal"]) == (
        "promote:promoted", v1, CI, promoted["journal"],
    )  # fmt: skip

    row = _row(_step(story, "status v1", 0))
    assert (row["pinned"], row["serving"], row["verified"], row["in_flight"]) == (v1, v1, True, None), row

    again = _step(story, "promote v1 again", 0).out
    assert (again["outcome"], again["reason"]) == ("unchanged", "already serving")
    assert story.runs["promote v1 again"].entries == []

    nothing = _step(story, "rollback nothing earlier", 1)
    assert "no earlier stable version of adult-income on stack local" in nothing.out["message"]
    assert nothing.entries == [] and story.pins["rollback nothing earlier"] == v1

    resumed = _step(story, "resume nothing", 0)
    assert resumed.out == {"resumed": []} and resumed.entries == []
    assert story.pins["resume nothing"] == v1


def test_a_promotion_killed_after_pinning_blocks_the_next_until_resume_undoes_it(story: Story) -> None:
    v1, v2 = story.versions["v1"], story.versions["v2"]
    assert _actions(_step(story, "approve v2", 0)) == [("approve", v2, APPROVER)]
    killed = story.runs["promote v2 killed after pinned"]
    assert killed.code == -9 and killed.out is None, killed.why()  # SIGKILLed by the fault hook
    assert killed.entries == [] and story.pins["promote v2 killed after pinned"] == v2

    row = _row(_step(story, "status interrupted", 0))
    assert (row["pinned"], row["serving"], row["verified"]) == (v2, v1, False), row
    flight = row["in_flight"]
    assert flight is not None and (flight["operation"], flight["owner"]) == ("promote", CI), flight
    assert flight.get("interrupted_at") == "pinned", flight

    blocked = _step(story, "promote v2 while interrupted", 4)
    assert blocked.out["error"] == "LockedError"
    assert f"promote of adult-income {v2[:12]} by {CI}" in blocked.out["message"], blocked.why()
    assert "was interrupted at 'pinned'" in blocked.out["message"]
    assert any("modelrail resume --stack local" in detail for detail in blocked.out["details"])
    assert blocked.entries == [] and story.pins["promote v2 while interrupted"] == v2

    [undone] = _step(story, "resume interrupted", 0).out["resumed"]
    assert (undone["outcome"], undone["version"], undone["previous"]) == ("aborted", v2, v1), undone
    assert undone["reason"] == "interrupted before the stack update"
    assert story.pins["resume interrupted"] == v1
    [entry] = story.runs["resume interrupted"].entries
    assert (entry["action"], entry["version"], entry["journal"]) == ("promote:aborted", v2, undone["journal"])


def test_a_promotion_killed_after_verifying_is_carried_forward_by_resume(story: Story) -> None:
    v1, v2 = story.versions["v1"], story.versions["v2"]
    killed = story.runs["promote v2 killed after verified"]
    assert killed.code == -9 and killed.entries == [], killed.why()
    assert story.pins["promote v2 killed after verified"] == v2

    [forward] = _step(story, "resume verified", 0).out["resumed"]
    assert (forward["kind"], forward["outcome"], forward["version"], forward["previous"]) == (
        "promote", "promoted", v2, v1,
    )  # fmt: skip
    [entry] = story.runs["resume verified"].entries
    assert (entry["action"], entry["version"], entry["actor"]) == ("promote:promoted", v2, CI), entry
    assert story.pins["resume verified"] == v2
    row = _row(_step(story, "status resumed", 0))
    assert (row["pinned"], row["serving"], row["previous_stable"], row["verified"], row["in_flight"]) == (
        v2, v2, v1, True, None,
    ), row  # fmt: skip


def test_rollback_returns_to_the_previous_stable_version(story: Story) -> None:
    v1, v2, bad = (story.versions[name] for name in ("v1", "v2", "bad"))
    refused = _step(story, "rollback to bad", 1)
    assert f"{bad[:12]} is experimental" in refused.out["message"], refused.why()
    assert "(refused the rollback)" in refused.out["message"]
    assert refused.entries == [] and story.pins["rollback to bad"] == v2

    rolled = _step(story, "rollback", 0).out
    assert (rolled["kind"], rolled["outcome"], rolled["version"], rolled["previous"]) == (
        "rollback", "rolled_back", v1, v2,
    )  # fmt: skip
    assert rolled["endpoint"]["status"] == "InService"
    assert story.pins["rollback"] == v1
    assert _actions(story.runs["rollback"]) == [("rollback:rolled_back", v1, CI)]
    row = _row(_step(story, "status rolled back", 0))
    assert (row["pinned"], row["serving"], row["previous_stable"], row["verified"]) == (v1, v1, v2, True), row


def test_history_and_audit_verify_tell_the_same_story_as_the_log(story: Story) -> None:
    v1, v2, bad = (story.versions[name] for name in ("v1", "v2", "bad"))
    history = _step(story, "history", 0).out
    assert history["audit"]["ok"] is True
    logged = story.setup + [entry for run in story.runs.values() for entry in run.entries]
    assert history["entries"] == [e for e in logged if e.get("service") == SERVICE]
    rollouts = [e for e in history["entries"] if e["action"].startswith(("promote:", "rollback:"))]
    serving = [(e["action"], e["version"]) for e in rollouts]
    assert serving == [
        ("promote:promoted", v1),
        ("promote:aborted", v2),
        ("promote:promoted", v2),
        ("rollback:rolled_back", v1),
    ], serving
    assert [e["version"] for e in history["entries"] if e["action"] == "register"] == [v1, v2, bad]

    verified = _step(story, "audit verify", 0).out
    assert verified["ok"] is True and verified["problems"] == []
    assert verified["entries"] == len(logged) == history["audit"]["entries"]
    assert verified["head"] == logged[-1]["hash"]

    assert story.repository_stacks[0] == story.repository_stacks[1], "the repository's stack file changed"

    broken = _step(story, "audit verify tampered", 1).out
    assert story.tampered and broken["ok"] is False
    assert any(p.startswith(story.tampered) and "edited" in p for p in broken["problems"]), broken["problems"]

"""Run a stage's gates for a registered version and record the outcome as evidence.

The data and drift gates look at what the candidate was trained on (from its package manifest)
against the reference data; the model, reproducibility and latency gates look at held-out data
the candidate never saw. When the data gates already refuse, the costly model gates are not
run: the report says so.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from pipelines.errors import BadInputError
from pipelines.packaging.tarball import read_member
from pipelines.promotion.controller import Controller

if TYPE_CHECKING:
    from pipelines.gates.report import GateReport
    from pipelines.promotion.ports import VersionStore

DATA_GATES = ("data", "drift")


def training_data(registry: VersionStore, service: str, sha: str, root: Path) -> Path:
    """The data snapshot a registered version was trained on, from its package manifest.

    The registry entry records only the data's sha256 (``VersionInfo.metadata``); where the
    snapshot lives is in the manifest, so the package is fetched through the port, sha-checked.
    """
    with tempfile.TemporaryDirectory(prefix="modelrail-manifest-") as scratch:
        tarball = registry.download(service, sha, Path(scratch) / "model.tar.gz")
        data = read_member(tarball, "manifest.json")
        if data is None:
            raise BadInputError(f"{service} {sha[:12]}: the package has no manifest.json")
        manifest = json.loads(data)
    uri = str(manifest["dataset"]["uri"])
    parsed = urlparse(uri)
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else root / uri
    if not path.exists():
        raise BadInputError(
            f"{service} {sha[:12]} was trained on {uri}, which is not here",
            details=["pass the snapshot with --training-data PATH"],
        )
    return path


def qualify(
    controller: Controller,
    *,
    service: str,
    version: str,
    stage: str,
    reference: Path,
    holdout: Path,
    baseline: str | None,
    actor: str,
    training: Path | None = None,
    policy_path: Path | None = None,
) -> tuple[bool, GateReport]:
    """Run ``stage``'s gates on ``version`` and record the evidence; returns (passed, report)."""
    from pipelines.gates.policy import load_policy
    from pipelines.gates.report import combine
    from pipelines.gates.stage import StageInputs, run_stage, summarise

    info = controller.registry.get_version(service, version)
    policy = load_policy(policy_path, stage=stage)
    root = controller.project_dir
    if training is None:
        training = training_data(controller.registry, service, info.sha, root)
    inputs = StageInputs(
        service=service,
        candidate=info.sha,
        stack=controller.stack,
        registry=controller.registry,
        reference=reference,
        current=training,
    )
    reports = []
    data_gates = tuple(gate for gate in policy.gates if gate in DATA_GATES)
    model_gates = tuple(gate for gate in policy.gates if gate not in DATA_GATES)
    if data_gates:
        reports.append(run_stage(stage, inputs, policy=replace_gates(policy, data_gates), root=root))
    notes: list[str] = []
    if model_gates and all(report.passed for report in reports):
        model_inputs = replace(inputs, current=holdout, baseline=baseline)
        reports.append(run_stage(stage, model_inputs, policy=replace_gates(policy, model_gates), root=root))
    elif model_gates:
        notes.append(f"not run, because the data gates refused: {', '.join(model_gates)}")
    sha256 = judged_sha256(reports)
    subject = {
        "stage": stage,
        "service": service,
        "candidate": info.sha,
        "baseline": baseline,
        "stack": controller.stack,
        "reference": str(reference),
        "reference_sha256": sha256(reference),
        "training": str(training),
        "training_sha256": sha256(training),
        "holdout": str(holdout),
        "holdout_sha256": sha256(holdout),
        "gates": list(policy.gates),
    }
    report = combine(f"stage:{stage}", reports, subject, policy.digest())
    report = replace(report, notes=(*report.notes, *notes))
    controller.record_gates(
        service,
        info.sha,
        stage,
        passed=report.passed,
        summary=summarise(report),
        report=report.to_json(),
        actor=actor,
    )
    return report.passed, report


def judged_sha256(reports: list[GateReport]) -> Callable[[Path], str | None]:
    """The sha256 of a data file: as the stage reports recorded it, else hashed now.

    Taking the stage reports' own values binds the evidence to the bytes the gates judged, and
    hashes each (possibly large) snapshot once. A file no gate read (e.g. the holdout when the
    data gates refused) is hashed now; one that is not there (a ``--training-data`` path that no
    gate read) is ``None``.
    """
    from pipelines.training.manifest import fingerprint

    recorded: dict[str, str] = {}
    for report in reports:
        for side in ("reference", "current"):
            path, digest = report.subject.get(side), report.subject.get(f"{side}_sha256")
            if path is not None and digest:
                recorded.setdefault(str(path), str(digest))

    def sha256(path: Path) -> str | None:
        if str(path) in recorded:
            return recorded[str(path)]
        return fingerprint(path) if path.is_file() else None

    return sha256


def replace_gates(policy: Any, gates: tuple[str, ...]) -> Any:
    """The same policy restricted to ``gates`` (thresholds unchanged)."""
    return policy.model_copy(update={"gates": gates})

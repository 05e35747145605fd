"""Run a stage's gates for a registered version: the entry point of the promotion controller.

``run_stage("candidate", inputs)`` fetches the candidate (and the production baseline) through
the registry port the caller hands in (``inputs.registry``), runs every gate the stage's policy
names, and returns one ``GateReport``;
``report.to_json()`` is the evidence to store with the version and ``report.digest()`` the value
an approval binds to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.gates.report import GateReport, combine

if TYPE_CHECKING:
    from infra.config import Service
    from pipelines.contract.model import ServiceContract
    from pipelines.gates.policy import GatePolicy
    from pipelines.promotion.ports import VersionStore


@dataclass(frozen=True)
class StageInputs:
    """What the gates of one stage look at."""

    service: str
    candidate: str
    """The candidate's package sha (or a unique prefix of at least 8 hex digits)."""
    stack: str
    """Whose guardrails give the latency budget; the evidence names it."""
    registry: VersionStore
    """The stack's registry, through its port: where the candidate and the baseline are read."""
    reference: Path
    """The training data (CSV, Parquet, or the service's own format as its contract describes it)."""
    current: Path
    """The data the candidate will meet: held-out or recent rows, with the label."""
    baseline: str | None = None
    """The version to beat; ``None`` takes the one pinned in ``stacks/Pulumi.prod.yaml``."""
    label: str | None = None
    """Label column for the leakage checks (default: the label of the service's contract)."""
    schema: Path | None = None
    """A pinned schema and fingerprint replacing the one inferred from ``reference``."""


def run_stage(
    stage: str, inputs: StageInputs, *, policy: GatePolicy | None = None, root: Path | None = None
) -> GateReport:
    """Every gate of ``stage``'s policy on ``inputs``, as one report (``gate = "stage:<stage>"``)."""
    import tempfile

    from pipelines.gates.policy import load_policy
    from pipelines.paths import project_root
    from pipelines.training.manifest import fingerprint

    policy = policy or load_policy(stage=stage)
    root = root or project_root()
    with tempfile.TemporaryDirectory(prefix="modelrail-gates-") as scratch:
        versions = RegisteredVersions(inputs.registry, inputs.stack, inputs.service, Path(scratch))
        candidate = versions.resolve(inputs.candidate)
        tables = _data_and_drift(inputs, policy, root) if {"data", "drift"} & set(policy.gates) else {}
        reports = [
            tables[gate] if gate in tables else _run_gate(gate, inputs, policy, versions, candidate, root)
            for gate in policy.gates
        ]
    subject = {
        "stage": policy.stage,
        "service": inputs.service,
        "candidate": candidate,
        "stack": inputs.stack,
        "reference": str(inputs.reference),
        "reference_sha256": fingerprint(inputs.reference),
        "current": str(inputs.current),
        "current_sha256": fingerprint(inputs.current),
        "gates": list(policy.gates),
    }
    return combine(f"stage:{policy.stage}", reports, subject, policy.digest())


def summarise(report: GateReport) -> str:
    """One line for the audit log: the verdict and the failing checks by name and column."""
    if report.passed:
        return f"{report.gate}: all {len(report.checks)} checks passed"
    failed = ", ".join(f"{check.name}({check.column or '-'})" for check in report.failures[:10])
    more = f" and {len(report.failures) - 10} more" if len(report.failures) > 10 else ""
    return f"{report.gate}: {len(report.failures)} of {len(report.checks)} checks failed: {failed}{more}"


def _run_gate(
    gate: str,
    inputs: StageInputs,
    policy: GatePolicy,
    versions: RegisteredVersions,
    candidate: str,
    root: Path,
) -> GateReport:
    from pipelines.contract.load import load_contract
    from pipelines.gates import versions as model_gates

    if gate == "repro":
        return model_gates.repro_gate(inputs.service, versions.download(candidate), policy.repro, root=root)
    contract = load_contract(inputs.service, root)
    data = model_gates.read_evaluation_data(contract, inputs.current, root)
    if gate == "model":
        baseline, note = versions.baseline(inputs.baseline, candidate)
        report = model_gates.model_gate(
            contract,
            versions.load(candidate),
            None if baseline is None else versions.load(baseline),
            data,
            policy,
        )
        return report if note is None else replace(report, notes=(*report.notes, note))
    return latency_for(inputs, versions, candidate, data, policy)


def _data_and_drift(inputs: StageInputs, policy: GatePolicy, root: Path) -> dict[str, GateReport]:
    """The data and drift reports from one pass over the reference and current tables.

    The leakage checks look at the contract's label as the contract's task (a regression label
    is a number, not a set of classes); a ``label`` override is judged by its values.
    """
    from pipelines.contract.load import load_contract
    from pipelines.gates.combined import data_and_drift
    from pipelines.gates.profile import load_profile

    contract = load_contract(inputs.service, root)
    label = inputs.label or contract.label
    data, drift = data_and_drift(
        _frame(contract, inputs.reference, root),
        _frame(contract, inputs.current, root),
        policy,
        label=label,
        task=contract.task if label == contract.label else None,
        profile=load_profile(inputs.schema) if inputs.schema else None,
    )
    return {"data": data, "drift": drift}


def latency_for(
    inputs: StageInputs, versions: RegisteredVersions, candidate: str, data: Any, policy: GatePolicy
) -> GateReport:
    """The latency gate against the service's p99 budget from the stack's guardrails."""
    from pipelines.gates import versions as model_gates

    package = versions.load(candidate)
    sample = data[package.columns].head(max(policy.latency.requests, 100))
    rows = sample.astype(object).where(sample.notna(), None).to_dict("records")
    settings = service_settings(inputs.stack, inputs.service)
    return model_gates.latency_gate(
        versions.download(candidate),
        rows,
        policy.latency,
        p99_budget_ms=float(settings.guardrails.p99_latency_ms),
        serving_threads=settings.serving_threads,
        subject={"service": inputs.service, "candidate": candidate, "stack": inputs.stack},
    )


def service_settings(stack: str, service: str) -> Service:
    """The service's entry in the stack file: its p99 budget and the threads it serves with."""
    from infra.config import load_stack_file
    from pipelines.errors import BadInputError
    from pipelines.paths import stack_path

    try:
        return load_stack_file(stack_path(stack)).service(service)
    except KeyError as error:
        raise BadInputError(str(error.args[0])) from None
    except Exception as error:
        raise BadInputError(
            f"cannot read the settings of {service!r} from stack {stack!r}: {error}"
        ) from None


def _frame(contract: ServiceContract, path: Path, root: Path) -> Any:
    """A table for the data and drift gates: CSV/Parquet as is, a file in the contract's format read by it."""
    import polars as pl

    from pipelines.gates.frames import SUFFIXES, open_table

    if path.suffix.lower() in SUFFIXES:
        return open_table(path)
    from pipelines.gates.versions import read_evaluation_data

    return pl.from_pandas(read_evaluation_data(contract, path, root))


class RegisteredVersions:
    """Packages of one service fetched through the registry port, each downloaded once.

    The caller hands in the port (the controller's, or ``wiring.registry_port`` for the ``gate``
    commands), so the gates read versions the way promotions do and a test can give them a fake.
    """

    def __init__(self, registry: VersionStore, stack: str, service: str, scratch: Path) -> None:
        self.registry = registry
        self.stack = stack
        self.service = service
        self._scratch = scratch
        self._paths: dict[str, Path] = {}

    def resolve(self, version: str) -> str:
        return self.registry.get_version(self.service, version).sha

    def download(self, sha: str) -> Path:
        if sha not in self._paths:
            self._paths[sha] = self.registry.download(self.service, sha, self._scratch / f"{sha}.tar.gz")
        return self._paths[sha]

    def load(self, sha: str) -> Any:
        from pipelines.packaging.load import load_package

        return load_package(self.download(sha), expected_package_id=sha)

    def baseline(self, requested: str | None, candidate: str) -> tuple[str | None, str | None]:
        """The baseline's sha, or ``None`` with the reason there is none."""
        if requested is not None:
            return self.resolve(requested), None
        from infra.config import load_stack_file
        from pipelines.errors import ModelrailError
        from pipelines.paths import stack_path

        try:
            pinned = load_stack_file(stack_path("prod")).service(self.service).model_version
        except (KeyError, Exception):
            return None, f"no production pin for {self.service!r} in stacks/Pulumi.prod.yaml: first version"
        if pinned is None:
            return None, f"no version of {self.service!r} has been promoted to production yet: first version"
        if pinned == candidate:
            return None, "the candidate is the version production already runs: nothing to compare with"
        try:
            return self.resolve(pinned), None
        except ModelrailError:
            return None, (
                f"production pins {pinned[:12]}, which is not in the {self.stack} registry: "
                "treated as the first version"
            )

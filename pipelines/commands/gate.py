"""``modelrail gate``: run one quality gate and print its report.

Exit 0 when every check passes, 1 when one fails, 2 when an input cannot be read (a missing or
non-UTF-8 file, an empty table, a bad policy or schema file). Heavy libraries are imported inside
the commands so that ``modelrail --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.errors import ExitCode

if TYPE_CHECKING:
    from pipelines.gates.policy import GatePolicy
    from pipelines.gates.report import GateReport

app = typer.Typer(
    help="Quality gates: data, drift, model versus baseline, reproducibility, latency.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
AllOption = Annotated[bool, typer.Option("--all", help="List passing checks too.")]
PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="Gate policy YAML (default: the stage's shipped policy)."),
]
StageOption = Annotated[
    str, typer.Option("--stage", help="Whose shipped policy applies: candidate or production.")
]
ReferenceOption = Annotated[Path, typer.Option("--reference", help="Reference table (CSV or Parquet).")]
CurrentOption = Annotated[Path, typer.Option("--current", help="Current table (CSV or Parquet).")]


@app.command()
def data(
    current: CurrentOption,
    reference: Annotated[
        Path | None,
        typer.Option("--reference", help="Reference table (CSV or Parquet); optional with --schema."),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Label column: enables leakage checks.")
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option("--schema", help="Pinned schema and fingerprint (from `modelrail gate schema`)."),
    ] = None,
    policy: PolicyOption = None,
    stage: StageOption = "candidate",
    as_json: JsonOption = False,
    show_all: AllOption = False,
) -> None:
    """Validate the current table against the reference's schema and fingerprint.

    Columns and dtypes, missing values, ranges and categories, constant columns, duplicate rows,
    skew against the training fingerprint and, with --label, label leakage.
    """
    from pipelines.errors import BadInputError
    from pipelines.gates.frames import open_table
    from pipelines.gates.profile import infer_profile, load_profile
    from pipelines.gates.validation import validate_data

    gate_policy = _policy(policy, stage)
    if schema is not None:
        profile = load_profile(schema)
    elif reference is not None:
        profile = infer_profile(
            open_table(reference, role="reference"), max_categories=gate_policy.data.max_categories
        )
    else:
        raise BadInputError(
            "gate data needs --reference PATH or --schema FILE to compare the current data with"
        )
    report = validate_data(
        profile,
        open_table(current, role="current"),
        gate_policy.data,
        label=label,
        subject={
            "reference": str(reference) if reference else None,
            "schema": str(schema) if schema else None,
            "current": str(current),
            "label": label,
        },
    )
    _finish(_with_policy(report, gate_policy), as_json, show_all)


@app.command()
def drift(
    reference: ReferenceOption,
    current: CurrentOption,
    columns: Annotated[
        list[str] | None,
        typer.Option("--columns", help="Compare only these columns (repeat, or comma-separate)."),
    ] = None,
    policy: PolicyOption = None,
    stage: StageOption = "candidate",
    as_json: JsonOption = False,
    show_all: AllOption = False,
) -> None:
    """Compare the current table's distributions with the reference's, column by column."""
    from pipelines.gates.drift import detect_drift
    from pipelines.gates.frames import open_table

    gate_policy = _policy(policy, stage)
    names = [name.strip() for entry in columns or [] for name in entry.split(",") if name.strip()]
    report = detect_drift(
        open_table(reference, role="reference"),
        open_table(current, role="current"),
        gate_policy.drift,
        columns=names or None,
        subject={"reference": str(reference), "current": str(current), "columns": names or None},
    )
    _finish(_with_policy(report, gate_policy), as_json, show_all)


@app.command()
def schema(
    reference: ReferenceOption,
    out: Annotated[Path, typer.Option("--out", help="Where to write the schema (.yaml or .json).")],
    max_categories: Annotated[
        int, typer.Option("--max-categories", min=2, help="Categories kept per column; the rest pooled.")
    ] = 200,
) -> None:
    """Infer the reference's schema and fingerprint and pin them in a file for `gate data --schema`."""
    from pipelines.console import console
    from pipelines.gates.frames import open_table
    from pipelines.gates.profile import infer_profile, save_profile

    profile = infer_profile(open_table(reference, role="reference"), max_categories=max_categories)
    save_profile(profile, out)
    console.print(f"wrote {out} ({len(profile.columns)} columns, {profile.rows:,} rows)")


ServiceOption = Annotated[str, typer.Option("--service", help="The model service, e.g. adult-income.")]
CandidateOption = Annotated[
    str,
    typer.Option("--candidate", help="Candidate version: package sha or a unique prefix (8+ hex digits)."),
]
StackOption = Annotated[
    str,
    typer.Option("--stack", "-s", help="Stack whose registry holds the versions (and whose budget applies)."),
]


@app.command()
def model(
    service: ServiceOption,
    candidate: CandidateOption,
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="Labelled evaluation rows (CSV, Parquet or a file in the service's own format)."
        ),
    ],
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline", help="Version to beat (default: the one pinned in stacks/Pulumi.prod.yaml)."
        ),
    ] = None,
    stack: StackOption = "local",
    policy: PolicyOption = None,
    stage: StageOption = "candidate",
    as_json: JsonOption = False,
    show_all: AllOption = False,
) -> None:
    """Candidate versus the production baseline: metrics, regressions, fairness by slice.

    The metrics are the task's, held to the service contract's rules for the stage (overridden
    by the policy's ``model.metrics``).
    """
    import tempfile
    from dataclasses import replace

    from pipelines.contract.load import load_contract
    from pipelines.gates.stage import RegisteredVersions
    from pipelines.gates.versions import model_gate, read_evaluation_data
    from pipelines.paths import project_root
    from pipelines.promotion.wiring import registry_port

    gate_policy = _policy(policy, stage)
    root = project_root()
    contract = load_contract(service, root)
    with tempfile.TemporaryDirectory(prefix="modelrail-gate-") as scratch:
        versions = RegisteredVersions(registry_port(stack, service), stack, service, Path(scratch))
        sha = versions.resolve(candidate)
        baseline_sha, note = versions.baseline(baseline, sha)
        report = model_gate(
            contract,
            versions.load(sha),
            None if baseline_sha is None else versions.load(baseline_sha),
            read_evaluation_data(contract, data, root),
            gate_policy,
        )
    if note is not None:
        report = replace(report, notes=(*report.notes, note))
    _finish(
        _with_policy(
            replace(report, subject={**report.subject, "data": str(data), "stack": stack}), gate_policy
        ),
        as_json,
        show_all,
    )


@app.command()
def repro(
    service: ServiceOption,
    candidate: CandidateOption,
    stack: StackOption = "local",
    policy: PolicyOption = None,
    stage: StageOption = "candidate",
    as_json: JsonOption = False,
    show_all: AllOption = False,
) -> None:
    """Retrain the candidate from its manifest and report exactly what differs."""
    import tempfile

    from pipelines.gates.stage import RegisteredVersions
    from pipelines.gates.versions import repro_gate
    from pipelines.paths import project_root
    from pipelines.promotion.wiring import registry_port

    gate_policy = _policy(policy, stage)
    with tempfile.TemporaryDirectory(prefix="modelrail-gate-") as scratch:
        versions = RegisteredVersions(registry_port(stack, service), stack, service, Path(scratch))
        report = repro_gate(
            service, versions.download(versions.resolve(candidate)), gate_policy.repro, root=project_root()
        )
    _finish(_with_policy(report, gate_policy), as_json, show_all)


@app.command()
def latency(
    service: ServiceOption,
    candidate: CandidateOption,
    stack: StackOption = "local",
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Labelled rows to send (default: the service's latest data snapshot)."),
    ] = None,
    policy: PolicyOption = None,
    stage: StageOption = "candidate",
    as_json: JsonOption = False,
    show_all: AllOption = False,
) -> None:
    """Serve the candidate with the serving code, drive concurrent real rows, check the budget."""
    import tempfile

    from pipelines.contract.data import snapshot_path
    from pipelines.contract.load import load_contract
    from pipelines.gates.stage import RegisteredVersions, StageInputs, latency_for
    from pipelines.gates.versions import read_evaluation_data
    from pipelines.paths import project_root
    from pipelines.promotion.wiring import registry_port

    gate_policy = _policy(policy, stage)
    root = project_root()
    contract = load_contract(service, root)
    rows_path = data or snapshot_path(contract.latest_snapshot, root)
    with tempfile.TemporaryDirectory(prefix="modelrail-gate-") as scratch:
        versions = RegisteredVersions(registry_port(stack, service), stack, service, Path(scratch))
        sha = versions.resolve(candidate)
        inputs = StageInputs(
            service=service,
            candidate=sha,
            stack=stack,
            registry=versions.registry,
            reference=rows_path,
            current=rows_path,
        )
        rows = read_evaluation_data(contract, rows_path, root)
        report = latency_for(inputs, versions, sha, rows, gate_policy)
    _finish(_with_policy(report, gate_policy), as_json, show_all)


def _policy(path: Path | None, stage: str) -> GatePolicy:
    from pipelines.gates.policy import load_policy

    return load_policy(path, stage=stage)


def _with_policy(report: GateReport, policy: GatePolicy) -> GateReport:
    from dataclasses import replace

    return replace(report, policy_digest=policy.digest(), subject={**report.subject, "stage": policy.stage})


def _finish(report: GateReport, as_json: bool, show_all: bool) -> None:
    """Print the report and exit 1 if it failed."""
    from pipelines.console import emit_json
    from pipelines.gates.report import render

    if as_json:
        emit_json({**report.to_json(), "digest": report.digest()})
    else:
        render(report, show_all=show_all)
    if not report.passed:
        raise typer.Exit(ExitCode.FAILED)


def register(main_app: typer.Typer) -> None:
    """Mount ``gate`` on the main app."""
    main_app.add_typer(app, name="gate")

"""Promotion commands: approve, promote, rollback, resume, status, history, changelog, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.console import console, emit_json, err_console
from pipelines.errors import BadInputError, ExitCode

StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack name: local, dev, staging or prod.")]
ServiceOption = Annotated[str, typer.Option("--service", help="Model service name, as in the stack file.")]
VersionOption = Annotated[str, typer.Option("--version", help="Package sha (or a unique prefix of 8+).")]
AsOption = Annotated[
    str | None, typer.Option("--as", help="Who is acting (default: MODELRAIL_USER, git user.email, OS user).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

audit_app = typer.Typer(help="Verify the hash-chained audit log, or show where it is.", no_args_is_help=True)


def _progress_printer(as_json: bool) -> Any:
    """Progress lines for people (stderr, so ``--json`` stdout stays clean)."""

    def show(event: str, fields: dict[str, Any]) -> None:
        if event == "analysis":
            verdict = fields["verdict"]
            style = {"rollback": "red", "promote": "green"}.get(verdict, "cyan")
            err_console.print(f"  [{style}]canary[/] {fields['reason']}", soft_wrap=True)
        elif event == "previewed" and not as_json:
            summary = fields["preview"]["summary"]
            changes = ", ".join(f"{count} to {op}" for op, count in summary.items() if count and op != "same")
            err_console.print(f"  preview: {changes or 'no changes'}")
            for change in fields["preview"]["changes"]:
                err_console.print(f"    {change['op']:>8} {change['urn']}", markup=False, soft_wrap=True)
        elif event in (
            "begun", "pinned", "update_started", "shifting", "watching", "recording", "verified",
            "reverting", "restoring", "audit_repaired", "done",
        ):  # fmt: skip
            detail = fields.get("reason") or fields.get("outcome") or fields.get("message") or ""
            err_console.print(f"  [dim]{event.replace('_', ' ')}[/] {detail}", soft_wrap=True)

    return show


def _report(outcome: Any, as_json: bool) -> None:
    if as_json:
        emit_json(outcome.to_json())
        return
    style = {"promoted": "green", "rolled_back": "yellow", "unchanged": "cyan"}.get(outcome.outcome, "red")
    console.print(
        f"[{style}]{outcome.outcome}[/] {outcome.service} {outcome.version[:12]} on {outcome.stack}"
        + (f" ({outcome.reason})" if outcome.reason else "")
    )


def promote(
    service: ServiceOption,
    version: VersionOption,
    stack: StackOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking after the preview.")] = False,
    emit_patch: Annotated[
        Path | None,
        typer.Option("--emit-patch", help="Write the change as a git patch instead of applying it (GitOps)."),
    ] = None,
    actor: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pin VERSION in the stack file, preview, update the stack, bake the canary, verify the endpoint.

    Exit 0 promoted (or already serving), 1 refused, 4 locked, 5 rolled back, 6 still rolling out.
    """
    from pipelines.identity import current_actor
    from pipelines.promotion.wiring import build_controller

    who = current_actor(actor)
    controller = build_controller(stack, progress=_progress_printer(as_json))
    if emit_patch is not None:
        outcome = controller.emit_patch(service, version, who, emit_patch)
        if as_json:
            emit_json({"patch": str(emit_patch), **outcome.to_json()})
        else:
            console.print(f"wrote {emit_patch}: apply it with `git apply`, review, merge; CI runs the update")
        return

    def confirm(_preview: Any) -> bool:
        return yes or typer.confirm(f"Apply this change to stack {stack}?", default=False, err=True)

    _report(controller.promote(service, version, who, confirm=confirm), as_json)


def rollback(
    service: ServiceOption,
    stack: StackOption,
    to: Annotated[
        str | None, typer.Option("--to", help="A version that served here stably (default: the last).")
    ] = None,
    actor: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Return the service to the last version that was stable on this stack, through the stack path."""
    from pipelines.identity import current_actor
    from pipelines.promotion.wiring import build_controller

    controller = build_controller(stack, progress=_progress_printer(as_json))
    _report(controller.rollback(service, current_actor(actor), to=to), as_json)


def resume(stack: StackOption, actor: AsOption = None, as_json: JsonOption = False) -> None:
    """Finish or undo every promotion a crash left unfinished on the stack."""
    from pipelines.identity import current_actor
    from pipelines.promotion.wiring import build_controller

    outcomes = build_controller(stack, progress=_progress_printer(as_json)).resume(current_actor(actor))
    if as_json:
        emit_json({"resumed": [outcome.to_json() for outcome in outcomes]})
        return
    if not outcomes:
        console.print(f"nothing to resume on {stack}")
    for outcome in outcomes:
        _report(outcome, as_json=False)


def approve(
    service: ServiceOption,
    version: VersionOption,
    stack: StackOption,
    actor: AsOption = None,
    comment: Annotated[str, typer.Option("--comment", help="Why you approve; goes into the audit log.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Approve a version for a stack as a second person; the approval binds to the gate evidence."""
    from pipelines.identity import current_actor
    from pipelines.promotion.wiring import build_controller

    approval = build_controller(stack).approve(service, version, current_actor(actor), comment)
    if as_json:
        emit_json({"service": service, "version": version, **approval.to_json()})
    else:
        console.print(
            f"[green]approved[/] {service} {version[:12]} for {stack} by {approval.approver} "
            f"(evidence {approval.evidence_digest[:12]})"
        )


def qualify(
    service: ServiceOption,
    version: VersionOption,
    stack: StackOption,
    stage: Annotated[str, typer.Option("--stage", help="candidate or production.")],
    reference: Annotated[
        Path, typer.Option("--reference", help="Known-good data the training data must match.")
    ],
    data: Annotated[Path, typer.Option("--data", help="Held-out data with labels, unseen by the candidate.")],
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="Version to beat (default: the stable version the stack serves)."),
    ] = None,
    training_data: Annotated[
        Path | None,
        typer.Option("--training-data", help="The candidate's training snapshot, if not at its URI."),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Gate policy YAML (default: the stage's).")
    ] = None,
    actor: AsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a stage's gates on a version and store the report as its evidence. Exit 0 passed, 1 refused.

    A passing candidate stage makes an experimental version a candidate; a passing production
    stage is what a second person approves.
    """
    from pipelines.gates.report import render
    from pipelines.identity import current_actor
    from pipelines.promotion.qualify import qualify as run_qualify
    from pipelines.promotion.stackfile import pinned_version
    from pipelines.promotion.wiring import build_controller

    if stage not in ("candidate", "production"):
        raise BadInputError(f"--stage {stage!r}: allowed: candidate, production")
    for flag, path in (("--reference", reference), ("--data", data)):
        if not path.is_file():
            raise BadInputError(f"{flag} {path}: no such file")
    controller = build_controller(stack)
    if baseline is None:
        pinned = pinned_version(controller.stack_path, service)
        baseline = pinned if pinned in controller.stable_versions(service) else None
    passed, report = run_qualify(
        controller,
        service=service,
        version=version,
        stage=stage,
        reference=reference,
        holdout=data,
        baseline=baseline,
        actor=current_actor(actor),
        training=training_data,
        policy_path=policy,
    )
    if as_json:
        emit_json(report.to_json())
    else:
        render(report)
    if not passed:
        raise typer.Exit(ExitCode.FAILED)


def _warn_damaged_audit(reading: Any, stack: str) -> None:
    """On stderr: the audit log does not verify, what is wrong, and that only its sound part is shown."""
    from rich.markup import escape

    if reading.ok:
        return
    count = len(reading.entries)
    err_console.print(
        f"[bold yellow]warning:[/] the audit log {escape(str(reading.path))} does not verify; shown: "
        f"only the {count} {'entry' if count == 1 else 'entries'} before the first problem",
        soft_wrap=True,
    )
    for problem in reading.problems:
        err_console.print(f"  - {problem}", soft_wrap=True, markup=False)
    err_console.print(f"  `modelrail audit verify --stack {stack}` checks it in full", markup=False)


def status(stack: StackOption, as_json: JsonOption = False) -> None:
    """Per service: the serving version, the previous stable version, any promotion in flight.

    A damaged audit log is reported (a warning; ``"audit": {"ok": false, "problems": [...]}`` under
    ``--json``) and the status is drawn from the entries before the damage.
    """
    from rich.table import Table

    from pipelines.promotion.wiring import stack_records

    records = stack_records(stack)
    reading = records.audit.read()
    rows = records.live_status()
    if as_json:
        emit_json({"stack": stack, "services": rows, "audit": reading.to_json()})
        return
    table = Table(title=f"stack {stack}")
    for column in ("service", "serving", "previous stable", "verified", "in flight"):
        table.add_column(column)
    for row in rows:
        flight = row["in_flight"]
        table.add_row(
            row["service"],
            (row["serving"] or "-")[:12],
            (row["previous_stable"] or "-")[:12],
            "yes" if row["verified"] else "no",
            "-" if flight is None else f"{flight['operation']} by {flight['owner']}",
        )
    console.print(table)
    _warn_damaged_audit(reading, stack)


def history(service: ServiceOption, stack: StackOption, as_json: JsonOption = False) -> None:
    """Every recorded step for a service on a stack: gates, approvals, promotions, rollbacks.

    A damaged audit log is reported (a warning; ``"audit": {"ok": false, "problems": [...]}`` under
    ``--json``) and the entries before the damage are listed.
    """
    from rich.table import Table

    from pipelines.promotion.records import about
    from pipelines.promotion.wiring import stack_records

    reading = stack_records(stack).audit.read()
    entries = about(reading.entries, service)
    if as_json:
        emit_json({"stack": stack, "service": service, "entries": entries, "audit": reading.to_json()})
        return
    table = Table(title=f"{service} on {stack}")
    for column in ("time", "action", "version", "by", "reason"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            str(entry["time"])[:19],
            entry["action"],
            str(entry.get("version", ""))[:12],
            entry["actor"],
            str(entry.get("reason") or entry.get("comment") or ""),
        )
    console.print(table)
    _warn_damaged_audit(reading, stack)


def changelog(
    service: ServiceOption,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the Markdown here instead of stdout.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a service's changelog as Markdown: version, date, who, why, data, gates, rollbacks."""
    from pipelines.promotion.records import changelog_markdown

    text = changelog_markdown(service)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    if as_json:
        emit_json({"service": service, "markdown": text, "out": None if out is None else str(out)})
    elif out is None:
        typer.echo(text, nl=False)
    else:
        console.print(f"wrote {out}")


@audit_app.command("verify")
def audit_verify(stack: StackOption, as_json: JsonOption = False) -> None:
    """Check the audit log's hash chain, its head and its copy in the artifact bucket. Exit 1 if broken.

    Every problem names the file and line (or the head file, or the bucket copy) and what is wrong;
    a torn last line left by a crash is named as such, with ``modelrail resume`` as its repair.
    """
    from rich.markup import escape

    from pipelines.promotion.wiring import stack_records

    audit = stack_records(stack).audit_with_remote()
    verdict = audit.verify()
    if as_json:
        emit_json({"stack": stack, "path": str(audit.path), **verdict.to_json()})
    elif verdict.ok:
        console.print(f"[green]verified[/] {verdict.entries} entries, head {verdict.head[:16]}")
    else:
        for problem in verdict.problems:
            err_console.print(f"[red]broken:[/] {escape(problem)}", soft_wrap=True)
        err_console.print(f"  entries before the first problem: {verdict.entries}", soft_wrap=True)
    if not verdict.ok:
        raise typer.Exit(ExitCode.FAILED)


@audit_app.command("path")
def audit_path(stack: StackOption, as_json: JsonOption = False) -> None:
    """Print where the stack's local audit log is."""
    from pipelines.promotion.wiring import stack_records

    path = stack_records(stack).audit.path
    if as_json:
        emit_json({"stack": stack, "path": str(path)})
    else:
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Mount the promotion commands on the main app."""
    for command in (qualify, approve, promote, rollback, resume, status, history, changelog):
        app.command(name=command.__name__)(command)
    app.add_typer(audit_app, name="audit")

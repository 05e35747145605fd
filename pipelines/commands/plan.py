"""``modelrail plan``: the offline plan of a stack, and its diff against an earlier one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.console import console, dumps, emit_json
from pipelines.errors import BadInputError, ExitCode


def load_plan_file(path: Path) -> dict[str, Any]:
    """Read a plan written by ``modelrail plan --json --out FILE``."""
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: cannot read the plan: {error}") from None
    except json.JSONDecodeError as error:
        raise BadInputError(
            f"{path}: not JSON ({error}); expected the output of `modelrail plan --json`"
        ) from None
    if not isinstance(plan, dict) or not isinstance(plan.get("steps"), list):
        raise BadInputError(f"{path}: not a plan; expected an object with a `steps` list")
    return plan


def plan(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name: local, dev, staging or prod.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan as `pulumi preview --json` does.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the JSON plan to this file.")] = None,
    diff_against: Annotated[
        Path | None,
        typer.Option("--diff-against", help="An earlier plan (JSON); show what changes. Exit 3 on changes."),
    ] = None,
) -> None:
    """Show a stack's desired state offline: no Pulumi CLI, no credentials, no network.

    Exit 0 (with --diff-against: no change), 1 invalid stack config, 2 unreadable file,
    3 changes found by --diff-against.
    """
    from pipelines.plan import build_plan, diff_plans
    from pipelines.plan.render import render_diff, render_tree

    baseline = load_plan_file(diff_against) if diff_against is not None else None
    desired = build_plan(stack)
    if out is not None:
        out.write_text(dumps(desired), encoding="utf-8")
    if baseline is None:
        if as_json:
            emit_json(desired)
        else:
            console.print(render_tree(desired))
        return
    try:
        diff = diff_plans(baseline, desired)
    except ValueError as error:
        raise BadInputError(f"{diff_against}: {error}") from None
    if as_json:
        emit_json(diff.to_json())
    else:
        console.print(render_diff(diff))
    if diff.has_changes:
        raise typer.Exit(ExitCode.CHANGES)


def register(app: typer.Typer) -> None:
    """Mount ``plan`` on the main app."""
    app.command(name="plan")(plan)

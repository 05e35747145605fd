"""``modelrail policy``: the policy pack's rules, run offline over a stack's plan.

The rules are the same ones ``pulumi preview --policy-pack policies/`` enforces, so a pull
request from a fork (no cloud credentials) gets the same verdict as a real preview.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pipelines.console import console, emit_json, escape
from pipelines.errors import ExitCode


def policy_report(stack: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Every rule's verdict on a plan: the JSON document ``--json`` prints."""
    from policies.rules import RULES, evaluate, stack_from_plan

    violations = evaluate(stack_from_plan(plan))
    return {
        "stack": stack,
        "resources": len(plan.get("steps", [])),
        "rules": [
            {
                "name": rule.name,
                "description": rule.description,
                "enforcement": rule.enforcement,
                "violations": sum(1 for v in violations if v.rule == rule.name),
            }
            for rule in RULES
        ],
        "violations": [violation.to_json() for violation in violations],
        "passed": not any(v.enforcement == "mandatory" for v in violations),
    }


def policy(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name: local, dev, staging or prod.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Check a stack's plan against the policy pack, offline.

    Exit 0 no mandatory violation, 1 a mandatory violation (or an invalid stack config),
    2 unreadable stack file.
    """
    from pipelines.plan import build_plan

    report = policy_report(stack, build_plan(stack))
    if as_json:
        emit_json(report)
    else:
        _print(report)
    if not report["passed"]:
        raise typer.Exit(ExitCode.FAILED)


def _print(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"policy: stack {report['stack']} ({report['resources']} resources)")
    table.add_column("rule")
    table.add_column("enforcement")
    table.add_column("result")
    for rule in report["rules"]:
        count = rule["violations"]
        result = "[green]pass[/]" if count == 0 else f"[red]{count} violation(s)[/]"
        table.add_row(rule["name"], rule["enforcement"], result)
    console.print(table)
    for violation in report["violations"]:
        console.print(
            f"[red]✗[/] [bold]{escape(violation['rule'])}[/] ({violation['enforcement']})\n"
            f"    resource: {escape(violation['urn'])}\n"
            f"    problem:  {escape(violation['message'])}\n"
            f"    fix:      {escape(violation['fix'])}",
            soft_wrap=True,
        )
    if report["passed"]:
        console.print("[green]no mandatory violations[/]")
    else:
        console.print("[bold red]mandatory policy violations: the stack must not be deployed[/]")


def register(app: typer.Typer) -> None:
    """Mount ``policy`` on the main app."""
    app.command(name="policy")(policy)

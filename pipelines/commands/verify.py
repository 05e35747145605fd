"""``modelrail verify``: every endpoint of a stack runs what the stack declares, InService.

``modelrail promote`` verifies its own rollouts, but a ``pulumi up`` run elsewhere (CI's deploy
workflow, a platform change of instance type or image) ends in the provider's success even when
SageMaker rolled the update back. This checks each endpoint the way the controller does: its
runtime's endpoint inspector (``DescribeEndpoint``, or the sandbox), judged by the controller's
own ``verify_failure`` against the configuration the stack outputs name.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from pipelines.commands.promotion import JsonOption, StackOption
from pipelines.console import console, emit_json
from pipelines.errors import ModelrailError, RolledBackError

WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        help="Seconds an endpoint may stay transitional (a rollout, an autoscaling change) before it fails.",
    ),
]
POLL_SECONDS = 5.0


def verify(stack: StackOption, wait: WaitOption = 600.0, as_json: JsonOption = False) -> None:
    """Check that every endpoint runs the configuration the stack outputs name, InService. Exit 0 or 5.

    Services with no model pinned (``modelVersion: null``) have no endpoint and are listed as
    such; exit 5 names each endpoint that runs anything else, and what it runs.
    """
    from infra.config import load_stack_file
    from infra.naming import endpoint_name
    from pipelines.paths import stack_path
    from pipelines.promotion.watch import verify_failure, wait_settled
    from pipelines.promotion.wiring import live_inspectors, stack_outputs

    config = load_stack_file(stack_path(stack))
    inspectors, outputs = live_inspectors(stack), stack_outputs(stack)
    until = time.time() + wait
    rows: list[dict[str, Any]] = []
    for name, service in sorted(config.services.items()):
        row: dict[str, Any] = {
            "service": name,
            "endpoint": endpoint_name(config.platform.environment, name),
            "pinned": service.model_version,
            "expected": None,
            "state": None,
            "verified": None,
            "reason": "",
        }
        rows.append(row)
        if service.model_version is None:
            row["reason"] = "no model pinned (modelVersion: null): no endpoint"
            continue
        inspector = inspectors[service.runtime]
        state = wait_settled(inspector, name, until, POLL_SECONDS)
        row["state"] = state.to_json()
        try:
            row["expected"] = inspector.expected_config(name, service.model_version, outputs)
        except ModelrailError as error:
            row.update(verified=False, reason=error.message)
            continue
        row["reason"] = verify_failure(state, row["expected"])
        row["verified"] = not row["reason"]
    failing = [row for row in rows if row["verified"] is False]
    if not as_json or not failing:
        _report(stack, rows, as_json)
    if failing:
        names = ", ".join(row["endpoint"] for row in failing)
        raise RolledBackError(
            f"{names} on {stack} {'does' if len(failing) == 1 else 'do'} not run what the stack declares",
            details=[f"{row['endpoint']} ({row['service']}): {row['reason']}" for row in failing],
        )


def _report(stack: str, rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"stack": stack, "verified": True, "services": rows})
        return
    for row in rows:
        if row["verified"] is None:
            console.print(f"[cyan]no endpoint[/] {row['service']}: {row['reason']}", soft_wrap=True)
        elif row["verified"]:
            console.print(
                f"[green]verified[/] {row['endpoint']}: InService on {row['expected']} "
                f"({str(row['pinned'])[:12]})",
                soft_wrap=True,
            )
        else:
            console.print(f"[red]not verified[/] {row['endpoint']}: {row['reason']}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Mount ``verify`` on the main app."""
    app.command(name="verify")(verify)

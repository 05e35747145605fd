"""``modelrail register`` and ``modelrail versions``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.console import console, emit_json, err_console, escape

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack name: local, dev, staging or prod.")]
ServiceOption = Annotated[str, typer.Option("--service", help="The model service, e.g. adult-income.")]


def register_command(
    service: ServiceOption,
    package: Annotated[Path, typer.Option("--package", help="A model.tar.gz from `modelrail package`.")],
    stack: StackOption,
    as_name: Annotated[
        str | None, typer.Option("--as", help="Who registers (default: MODELRAIL_USER, git).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a package as an experimental version: S3 upload by content, SageMaker model package, lineage.

    Registering the same package again changes nothing. Exit 0 registered (or already there),
    1 refused (a different file under the same sha, missing group, tampered package), 2 bad input.
    """
    from pipelines.identity import current_actor
    from pipelines.promotion.wiring import register_version

    actor = current_actor(as_name)
    with err_console.status(f"registering in the {escape(stack)} registry", spinner="dots"):
        registration, event = register_version(stack, service, package, actor)
    version = registration.version
    if as_json:
        emit_json(
            {
                **registration.to_json(),
                "seconds": round(registration.seconds, 3),
                "lineage_event": event.id if event else None,
            }
        )
        return
    verb = "registered" if registration.created else "already registered"
    console.print(f"[green]{verb}[/] {escape(service)} {version.package_sha} in stack {escape(stack)}")
    console.print(f"  model package  {escape(version.arn)}")
    console.print(f"  artifact       {escape(version.artifact_uri)}")
    console.print(
        f"  stage          {version.stage} ({version.approval}), registrant {escape(version.registrant)}"
    )


def versions(service: ServiceOption, stack: StackOption, as_json: JsonOption = False) -> None:
    """List a service's registered versions: package sha, stage, approval, registrant."""
    from rich.table import Table

    from pipelines.registry.factory import registry_for_stack

    registry = registry_for_stack(stack, service)
    found = registry.versions(service)
    if as_json:
        emit_json({"service": service, "stack": stack, "versions": [v.to_json() for v in found]})
        return
    if not found:
        console.print(f"no versions of {escape(service)} in stack {escape(stack)}")
        return
    table = Table("#", "package sha", "stage", "approval", "registrant", "created")
    for version in found:
        table.add_row(
            str(version.version_number),
            version.package_sha,
            version.stage,
            version.approval,
            escape(version.registrant),
            version.created_at[:19],
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("register")(register_command)
    app.command("versions")(versions)

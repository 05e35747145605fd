"""``modelrail config``: validate stack files and publish the schema they follow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.console import console, dumps, emit_json, err_console, escape
from pipelines.errors import ExitCode

app = typer.Typer(help="Validate stack config and publish its schema.", no_args_is_help=True)

StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack name: local, dev, staging or prod.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def validate(
    stack: StackOption,
    as_json: JsonOption = False,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Validate this file instead of stacks/Pulumi.<stack>.yaml."),
    ] = None,
) -> None:
    """Check a stack file against the schema and the cross-field rules.

    Exit 0 when valid, 1 when invalid (every problem listed), 2 when the file cannot be read.
    """
    from infra.config import StackConfigError, StackFileUnreadableError, load_stack_file
    from pipelines.paths import stack_path

    path = file or stack_path(stack)
    try:
        config = load_stack_file(path)
    except StackFileUnreadableError as error:
        _report(as_json, str(path), valid=False, issues=[], unreadable=str(error))
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    except StackConfigError as error:
        _report(as_json, str(path), valid=False, issues=[i.to_json() for i in error.issues])
        if not as_json:
            for issue in error.issues:
                err_console.print(f"  - {issue}", markup=False, soft_wrap=True)
        raise typer.Exit(ExitCode.FAILED) from None
    from pipelines.contract.load import service_names

    services = sorted(config.services)
    contracts = set(service_names())
    without = [name for name in services if name not in contracts]
    _report(as_json, str(path), valid=True, issues=[], services=services, without_contract=without)


def _report(
    as_json: bool,
    path: str,
    *,
    valid: bool,
    issues: list[dict[str, object]],
    services: list[str] | None = None,
    unreadable: str | None = None,
    without_contract: list[str] | None = None,
) -> None:
    """``without_contract``: services the stack declares with no ``services/<name>/service.yaml``;
    valid, but they get infrastructure only until a team writes one (training, gates and promotion
    need it), so the reader is told."""
    if as_json:
        emit_json(
            {
                "file": path,
                "valid": valid,
                "issues": issues,
                "services": services or [],
                "unreadable": unreadable,
                "without_contract": without_contract or [],
            }
        )
    elif valid:
        console.print(f"[green]valid[/] {path} (services: {', '.join(services or [])})")
        for name in without_contract or []:
            err_console.print(
                f"[yellow]note:[/] {escape(name)} has no contract (services/{escape(name)}/service.yaml): "
                "it gets infrastructure only; training, gates and promotion need one (README: the service contract)",
                soft_wrap=True,
            )
    elif unreadable is not None:
        err_console.print("[bold red]unreadable:[/]", escape(unreadable), soft_wrap=True)
    else:
        err_console.print(f"[bold red]invalid:[/] {path}: {len(issues)} problem(s)")


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Render the README's config reference instead of JSON Schema.")
    ] = False,
) -> None:
    """Write the JSON Schema of the stack config, or the Markdown reference generated from it."""
    if markdown:
        from pipelines.config_reference import render_markdown

        text = render_markdown() + "\n"
    else:
        from infra.config import json_schema

        text = dumps(json_schema())
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


def register(main_app: typer.Typer) -> None:
    """Mount ``config`` on the main app."""
    main_app.add_typer(app, name="config")

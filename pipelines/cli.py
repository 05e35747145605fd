"""The ``modelrail`` command line: one typer app with a sub-app or command per concern.

``main`` is the console-script entry point. It turns every ``ModelrailError`` into its
documented exit code and a readable message (or a JSON object under ``--json``), so no
command ever ends in a traceback for bad input.
"""

from __future__ import annotations

import sys

import typer

from pipelines.commands import config as config_commands
from pipelines.commands import plan as plan_commands
from pipelines.console import emit_json, err_console
from pipelines.errors import ExitCode, ModelrailError

app = typer.Typer(
    name="modelrail",
    help="Continuous delivery for machine-learning models on Pulumi and AWS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config_commands.app, name="config")
plan_commands.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; ``ModelrailError`` becomes a clean message."""
    import click

    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, prog_name="modelrail", standalone_mode=False)
    except ModelrailError as error:
        if "--json" in args:
            emit_json(error.to_json())
        else:
            err_console.print(f"[bold red]error:[/] {error.message}", soft_wrap=True)
            for detail in error.details:
                err_console.print(f"  - {detail}", soft_wrap=True, markup=False)
        return int(error.exit_code)
    except click.Abort:
        err_console.print("[yellow]interrupted[/]")
        return int(ExitCode.INTERRUPTED)
    except click.ClickException as error:
        error.show()
        return int(ExitCode.BAD_INPUT)
    # A command signals a verdict with ``typer.Exit(code)``; click hands the code back here.
    return result if isinstance(result, int) else int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())

"""``modelrail embedded``: the local moto server behind the embedded default."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.console import console, emit_json, escape

app = typer.Typer(help="Inspect or stop the embedded AWS (a moto server on 127.0.0.1).", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Whether the embedded AWS runs, where, and what the local record holds to restore it."""
    from pipelines.embedded.session import status as embedded_status

    report = embedded_status()
    if as_json:
        emit_json(report)
        return
    if report["running"]:
        console.print(
            f"[green]running[/] at {report['endpoint_url']} (pid {report['pid']}, since {report['started_at']})"
        )
    else:
        console.print("not running; the next command that needs it starts it and restores the record")
    console.print(
        f"  record: {report['recorded_objects']} object(s), {report['recorded_packages']} model package(s) "
        f"in {escape(report['state_dir'])}"
    )


@app.command()
def stop(as_json: JsonOption = False) -> None:
    """Stop the embedded AWS. Nothing is lost: the local record restores it on next use."""
    from pipelines.embedded.session import stop as embedded_stop

    stopped = embedded_stop()
    if as_json:
        emit_json({"stopped": stopped})
    else:
        console.print("stopped" if stopped else "was not running")


def register(main_app: typer.Typer) -> None:
    """Mount ``embedded`` on the main app."""
    main_app.add_typer(app, name="embedded")

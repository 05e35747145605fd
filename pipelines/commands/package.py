"""``modelrail package`` and ``modelrail compare-models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.console import console, emit_json, err_console, escape
from pipelines.errors import ExitCode

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def package(
    service: Annotated[str, typer.Option("--service", help="The model service, e.g. adult-income.")],
    model_dir: Annotated[Path, typer.Option("--model-dir", help="A model directory from `modelrail train`.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write model.tar.gz.")],
    as_json: JsonOption = False,
) -> None:
    """Build model.tar.gz (SageMaker layout) with a sha256 for every file; its id is sha256(manifest.json).

    Exit 0 written, 2 the model directory is not a usable model.
    """
    from pipelines.packaging.build import build_package

    with err_console.status("packaging", spinner="dots"):
        result = build_package(service, model_dir, out)
    if as_json:
        emit_json(
            {
                "service": service,
                "path": str(result.path),
                "package_id": result.package_id,
                "tarball_sha256": result.tarball_sha256,
                "files": result.manifest["files"],
            }
        )
        return
    console.print(f"[green]packaged[/] {escape(str(result.path))}")
    console.print(f"  package id  {result.package_id}")
    console.print(f"  tarball     {result.tarball_sha256}")


def compare_models(
    a: Annotated[Path, typer.Argument(help="A model directory or model.tar.gz.")],
    b: Annotated[Path, typer.Argument(help="Another model directory or model.tar.gz.")],
    as_json: JsonOption = False,
) -> None:
    """Say which files differ between two models, and precisely why (reproducibility check).

    Exit 0 byte-identical, 1 different.
    """
    from pipelines.errors import BadInputError
    from pipelines.packaging.compare import compare

    for path in (a, b):
        if not path.exists():
            raise BadInputError(f"{path}: no such model directory or package")
    differences = compare(a, b)
    if as_json:
        emit_json({"identical": not differences, "differences": [d.to_json() for d in differences]})
    elif not differences:
        console.print(f"[green]identical[/]: {escape(str(a))} and {escape(str(b))} have the same bytes")
    else:
        console.print(f"[red]{len(differences)} file(s) differ[/]")
        for difference in differences:
            console.print(f"  {escape(difference.path)}", soft_wrap=True)
            console.print(f"    A {difference.sha256_a}\n    B {difference.sha256_b}")
            for reason in difference.reasons:
                console.print(f"    - {escape(reason)}", soft_wrap=True)
    if differences:
        raise typer.Exit(ExitCode.FAILED)


def register(app: typer.Typer) -> None:
    app.command("package")(package)
    app.command("compare-models")(compare_models)

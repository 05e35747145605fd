"""``modelrail train``: run a training manifest into a model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.console import console, emit_json, err_console, escape
from pipelines.errors import BadInputError

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def train(
    service: Annotated[str, typer.Option("--service", help="The service to train (a folder of services/).")],
    out: Annotated[Path, typer.Option("--out", help="The new (or empty) model directory to write.")],
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest", help="A training manifest (JSON). Default: the contract's latest snapshot, seed 0."
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="A local copy of the data; its sha256 must match the manifest."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Train a model from a manifest; the same manifest always gives byte-identical files.

    Exit 0 trained, 1 refused (the data's fingerprint is not the manifest's), 2 bad input.
    """
    from pipelines.paths import project_root
    from pipelines.training.manifest import load_manifest
    from pipelines.training.trainer import default_manifest
    from pipelines.training.trainer import train as run_training

    root = project_root()
    if manifest is not None:
        training = load_manifest(manifest)
        if training.service != service:
            raise BadInputError(f"{manifest}: service = {training.service!r}, but --service is {service!r}")
    else:
        training = default_manifest(service, root, data)
    with err_console.status("training", spinner="dots") as status:
        result = run_training(
            training, out, root=root, data_path=data, progress=lambda step: status.update(escape(step))
        )
    if as_json:
        emit_json(
            {
                "service": service,
                "out_dir": str(result.out_dir),
                "data": str(result.data_path),
                "files": result.files,
                "metrics": result.evaluation["metrics"],
                "manifest": training.model_dump(mode="json"),
                "seconds": round(result.seconds, 3),
            }
        )
        return
    metrics = ", ".join(f"{name} {value:.4f}" for name, value in result.evaluation["metrics"].items())
    console.print(
        f"[green]trained[/] {escape(service)} into {escape(str(result.out_dir))} in {result.seconds:.1f}s: "
        f"{metrics} on {result.evaluation['rows']} held-out rows"
    )
    for name, sha in result.files.items():
        console.print(f"  {sha}  {escape(name)}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("train")(train)

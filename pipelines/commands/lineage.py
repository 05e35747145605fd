"""``modelrail lineage``: where a model came from, what used a dataset or feature, what served when."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pipelines.console import console, emit_json, escape

app = typer.Typer(help="Query the lineage catalog.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def model(
    version: Annotated[str, typer.Argument(help="Package sha, or a unique prefix of at least 8 hex digits.")],
    as_json: JsonOption = False,
) -> None:
    """A model version's dataset, code, parameters, environment, parent runs and events."""
    from pipelines.lineage import open_catalog

    found = open_catalog().model(version)
    if as_json:
        emit_json(found)
        return
    console.print(f"[bold]{found['version']}[/] ({escape(found['service'])})")
    console.print(f"  dataset      {escape(found['dataset']['uri'])} sha256 {found['dataset']['sha256']}")
    console.print(f"  code         git {found['code']['git_sha']}")
    console.print(
        f"  parameters   {escape(json.dumps(found['parameters'], sort_keys=True))}, seed {found['seed']}"
    )
    environment = found["environment"]
    packages = ", ".join(f"{k} {v}" for k, v in sorted(environment["packages"].items()))
    console.print(
        f"  environment  Python {environment['python']['version']}; {escape(packages)}", soft_wrap=True
    )
    console.print(f"  features     {escape(', '.join(found['features']))}", soft_wrap=True)
    for run in found["parent_runs"]:
        console.print(f"  parent run   {escape(run['job'])} {run['run_id']}")
    for event in found["events"]:
        console.print(
            f"  {event['at'][:19]}  {event['kind']:<9} {escape(event['stack'])} by {escape(event['actor'])}"
        )


@app.command()
def dataset(
    fingerprint: Annotated[
        str, typer.Argument(help="The dataset's sha256 (a prefix of ≥ 8 hex digits works).")
    ],
    as_json: JsonOption = False,
) -> None:
    """The models trained on a dataset."""
    from pipelines.lineage import open_catalog

    models = open_catalog().models_for_dataset(fingerprint)
    _models({"dataset": fingerprint, "models": models}, f"trained on dataset {fingerprint}", as_json)


@app.command()
def feature(
    name: Annotated[str, typer.Argument(help="A feature (input column) name, e.g. age.")],
    as_json: JsonOption = False,
) -> None:
    """The models that use a feature."""
    from pipelines.lineage import open_catalog

    models = open_catalog().models_for_feature(name)
    _models({"feature": name, "models": models}, f"using feature {name}", as_json)


@app.command()
def production(
    service: Annotated[str, typer.Option("--service", help="The model service.")],
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name.")],
    at: Annotated[str, typer.Option("--at", help="ISO 8601 timestamp, e.g. 2025-06-01T12:00:00Z.")],
    as_json: JsonOption = False,
) -> None:
    """What served a service in a stack at a moment (from recorded promotions and rollbacks).

    Exit 0 whether or not anything served then; the answer's ``version`` is null when nothing did.
    """
    from pipelines.lineage import open_catalog, parse_timestamp

    answer = open_catalog().production_at(service, stack, parse_timestamp(at))
    if as_json:
        emit_json(answer)
    elif answer["version"] is None:
        console.print(f"nothing served {escape(service)} in {escape(stack)} at {answer['at']}")
    else:
        event = answer["event"]
        console.print(
            f"{answer['version']} served {escape(service)} in {escape(stack)} at {answer['at']} "
            f"(since {answer['since']}, {event['kind']} by {escape(event['actor'])})"
        )


def _models(payload: dict[str, Any], what: str, as_json: bool) -> None:
    if as_json:
        emit_json(payload)
        return
    models = payload["models"]
    console.print(f"{len(models)} model(s) {escape(what)}")
    for found in models:
        console.print(f"  {found['version']}  {escape(found['service'])}  git {found['git_sha']}")


def register(main_app: typer.Typer) -> None:
    """Mount ``lineage`` on the main app."""
    main_app.add_typer(app, name="lineage")

"""``modelrail service add``: declare a new model service in a stack file.

The entry is written with the platform's safe defaults (a canary rollout, guardrail alarms,
data capture, autoscaling), through a ruamel.yaml round trip so the file's comments and key
order survive. The whole edited file is validated with ``infra.config`` and planned offline
before anything is written; on any problem nothing is written at all.
"""

from __future__ import annotations

import io
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.console import console, emit_json
from pipelines.errors import BadInputError, RefusedError

app = typer.Typer(help="Declare model services in a stack.", no_args_is_help=True)

PIN_COMMENT = "Pinned by `modelrail promote`; never edit by hand."


class Strategy(StrEnum):
    """Rollout strategies a new service may start with."""

    canary = "canary"
    linear = "linear"
    all_at_once = "all_at_once"


def service_entry(
    *,
    model_version: str | None,
    instance_type: str,
    instances: int,
    strategy: Strategy,
) -> dict[str, Any]:
    """The stack-file entry of a new service: every setting explicit, so reviewers see them."""
    deployment: dict[str, Any] = {"strategy": strategy.value}
    if strategy is Strategy.canary:
        deployment["canaryPercent"] = 50 if instances == 2 else 25
    elif strategy is Strategy.linear:
        deployment["linearStepPercent"] = 25
    deployment.update({"bakeSeconds": 600, "terminationWaitSeconds": 300, "maxExecutionSeconds": 3600})
    return {
        "runtime": "sagemaker",
        "modelVersion": model_version,
        "instanceType": instance_type,
        "instanceCount": instances,
        "deployment": deployment,
        "guardrails": {
            "max5xxRate": 0.01,
            "p99LatencyMs": 500,
            "minLiveAccuracy": 0.8,
            "maxPredictionDrift": 0.1,
        },
        "autoscaling": {
            "minInstances": instances,
            "maxInstances": instances * 2,
            "targetInvocationsPerInstance": 1000,
        },
        "dataCapturePercent": 20,
    }


def render_with_service(path: Path, name: str, entry: dict[str, Any]) -> str:
    """The stack file's text with ``entry`` appended under ``modelrail:services``; the rest kept."""
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    from infra.config import SERVICE_NAME_PATTERN, SERVICES_KEY
    from pipelines.promotion.stackfile import round_trip_yaml

    if not SERVICE_NAME_PATTERN.match(name):
        raise RefusedError(
            f"{path}: config.{SERVICES_KEY}.{name}: invalid service name {name!r}",
            details=[
                "service names are DNS-safe: lowercase letters, digits and '-', starting with a letter, "
                "ending with a letter or digit, at most 32 characters"
            ],
        )
    try:
        text = path.read_text(encoding="utf-8")
        yaml = round_trip_yaml(text)  # keeps the file's own indentation, quotes and `null`s
        document = yaml.load(text)
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: cannot read the stack file: {error}") from None
    except YAMLError as error:
        from infra.yamlio import describe_yaml_error

        raise BadInputError(f"{path}: {describe_yaml_error(error)}") from None
    config = document.get("config") if isinstance(document, dict) else None
    services = config.get(SERVICES_KEY) if isinstance(config, dict) else None
    if not isinstance(services, dict):
        raise RefusedError(f"{path}: config.{SERVICES_KEY} is missing or not a mapping; fix the file first")
    if name in services:
        raise RefusedError(
            f"{path}: config.{SERVICES_KEY}.{name}: service {name!r} already exists",
            details=["choose another name, or edit the existing entry"],
        )
    block = CommentedMap(entry)
    block.yaml_set_comment_before_after_key("modelVersion", before=PIN_COMMENT, indent=6)
    services[name] = block
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    return buffer.getvalue()


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The new service's DNS-safe name, e.g. churn-score.")],
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name: local, dev, staging or prod.")],
    model_version: Annotated[
        str | None,
        typer.Option(
            "--model-version",
            help="A registered package id (64 hex) to serve at once; by default none until the first promotion.",
        ),
    ] = None,
    instance_type: Annotated[
        str, typer.Option("--instance-type", help="SageMaker instance type.")
    ] = "ml.m5.large",
    instances: Annotated[int, typer.Option("--instances", help="Instances behind the endpoint.")] = 2,
    strategy: Annotated[Strategy, typer.Option("--strategy", help="Rollout strategy.")] = Strategy.canary,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result and plan diff as JSON.")] = False,
) -> None:
    """Add a service to a stack file with safe defaults and show the plan diff it causes.

    Exit 0 written, 1 refused (duplicate or invalid name, or the result would be invalid;
    nothing written), 2 unreadable stack file.
    """
    from pipelines.paths import project_root, stack_path
    from pipelines.plan import build_plan, diff_plans
    from pipelines.promotion.stackfile import check_valid, restore

    path = stack_path(stack)
    if not path.is_file():
        raise BadInputError(f"{path}: no such stack file")
    entry = service_entry(
        model_version=model_version, instance_type=instance_type, instances=instances, strategy=strategy
    )
    updated = render_with_service(path, name, entry)
    check_valid(updated, path, f"adding {name!r}")

    before = build_plan(stack)
    root = project_root()
    with tempfile.TemporaryDirectory(prefix="modelrail-service-add-") as scratch:
        candidate = Path(scratch) / "stacks" / path.name
        candidate.parent.mkdir()
        candidate.write_text(updated, encoding="utf-8")
        after = build_plan(stack, project_dir=Path(scratch), program=root / "infra" / "__main__.py")
    diff = diff_plans(before, after)
    restore(path, updated)

    if as_json:
        emit_json(
            {"stack": stack, "service": name, "file": str(path), "entry": entry, "diff": diff.to_json()}
        )
        return
    from pipelines.plan.render import render_diff

    console.print(f"[green]added[/] service [bold]{name}[/] to {path}")
    console.print(render_diff(diff))


def register(main_app: typer.Typer) -> None:
    """Mount ``service`` on the main app."""
    main_app.add_typer(app, name="service")

"""``modelrail service add`` and ``service new``: declare a model service in a stack, or scaffold one.

``service add``'s entry is written with the platform's safe defaults (a canary rollout, guardrail alarms,
data capture, autoscaling), through a ruamel.yaml round trip so the file's comments and key
order survive. The whole edited file is validated with ``infra.config`` and planned offline
before anything is written; on any problem nothing is written at all. ``service new`` writes
the service's contract, training module and test (``pipelines.contract.scaffold``) and declares it
in stacks through the same validated path.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipelines.console import console, emit_json, err_console
from pipelines.errors import BadInputError, RefusedError

if TYPE_CHECKING:
    from infra.config import Guardrails
    from pipelines.plan.diff import PlanDiff

app = typer.Typer(
    help="Scaffold a model service (new) or declare one in a stack (add).", no_args_is_help=True
)

PIN_COMMENT = "Pinned by `modelrail promote`; never edit by hand."


class Strategy(StrEnum):
    """Rollout strategies a new service may start with."""

    canary = "canary"
    linear = "linear"
    all_at_once = "all_at_once"


class Runtime(StrEnum):
    """Where a new service is served (``infra.config.Service.runtime``)."""

    sagemaker = "sagemaker"
    kserve = "kserve"


CONTROLLER_WRITTEN = {"instance_count_floor", "canary_traffic_percent"}
"""Service fields ``modelrail promote`` and ``rollback`` write, never a new entry."""


def service_entry(
    *,
    model_version: str | None,
    instance_type: str,
    instances: int,
    strategy: Strategy,
    runtime: Runtime = Runtime.sagemaker,
    guardrails: Guardrails | None = None,
) -> dict[str, Any]:
    """The stack-file entry of a new service: an ``infra.config.Service``, every setting explicit
    so reviewers see them.

    Left out: what the controller writes, what the other runtime reads (the ``kserve`` section of
    a SageMaker service, the SageMaker instance type of a KServe one) and the step size of the
    strategies not chosen. ``guardrails``: the schema's defaults unless given. Refused (nothing written)
    when the options make an invalid service.
    """
    from pydantic import ValidationError

    from infra.config import Service

    chosen: dict[str, Any] = {
        "runtime": runtime.value,
        "model_version": model_version,
        "instance_type": instance_type,
        "instance_count": instances,
        "deployment": {
            "strategy": strategy.value,
            "canary_percent": 50 if instances == 2 else 25,
            "linear_step_percent": 25,
            "bake_seconds": 600,
            "termination_wait_seconds": 300,
            "max_execution_seconds": 3600,
        },
        "autoscaling": {"min_instances": instances, "max_instances": instances * 2},
        "data_capture_percent": 20,
    }
    if guardrails is not None:
        chosen["guardrails"] = guardrails
    try:
        service = Service.model_validate(chosen)  # one validation: every problem at once
    except ValidationError as error:
        raise RefusedError(
            "--model-version, --instance-type and --instances make an invalid service entry; nothing written",
            details=[
                f"{'.'.join(str(part) for part in item['loc'])} = {item['input']!r}: {item['msg']}"
                for item in error.errors()
            ],
        ) from None
    steps = {Strategy.canary: "canary_percent", Strategy.linear: "linear_step_percent"}
    exclude: dict[str, Any] = dict.fromkeys(CONTROLLER_WRITTEN, True)
    exclude["instance_type" if runtime is Runtime.kserve else "kserve"] = True
    exclude["deployment"] = {step for chosen, step in steps.items() if chosen is not strategy}
    return service.model_dump(by_alias=True, exclude=exclude)


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


@dataclass(frozen=True)
class StackAddition:
    """A service's entry in one stack file: validated and planned, not yet written."""

    stack: str
    path: Path
    text: str
    """The stack file's whole text with the entry added."""
    entry: dict[str, Any]
    diff: PlanDiff


def prepare_addition(stack: str, name: str, entry: dict[str, Any]) -> StackAddition:
    """Add ``entry`` to the stack file's text, validate the result and plan it offline; write nothing.

    ``RefusedError`` for a duplicate or invalid name or a result the schema refuses,
    ``BadInputError`` for a missing or unreadable stack file.
    """
    from pipelines.paths import project_root, stack_path
    from pipelines.plan import build_plan, diff_plans
    from pipelines.promotion.stackfile import check_valid

    path = stack_path(stack)
    if not path.is_file():
        raise BadInputError(f"{path}: no such stack file")
    updated = render_with_service(path, name, entry)
    check_valid(updated, path, f"adding {name!r}")

    before = build_plan(stack)
    root = project_root()
    with tempfile.TemporaryDirectory(prefix="modelrail-service-add-") as scratch:
        candidate = Path(scratch) / "stacks" / path.name
        candidate.parent.mkdir()
        candidate.write_text(updated, encoding="utf-8")
        after = build_plan(stack, project_dir=Path(scratch), program=root / "infra" / "__main__.py")
    return StackAddition(stack=stack, path=path, text=updated, entry=entry, diff=diff_plans(before, after))


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
        str, typer.Option("--instance-type", help="SageMaker instance type (runtime sagemaker).")
    ] = "ml.m5.large",
    instances: Annotated[int, typer.Option("--instances", help="Instances behind the endpoint.")] = 2,
    strategy: Annotated[Strategy, typer.Option("--strategy", help="Rollout strategy.")] = Strategy.canary,
    runtime: Annotated[
        Runtime, typer.Option("--runtime", help="Served by SageMaker or by KServe on the platform's cluster.")
    ] = Runtime.sagemaker,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result and plan diff as JSON.")] = False,
) -> None:
    """Add a service to a stack file with safe defaults and show the plan diff it causes.

    Exit 0 written, 1 refused (duplicate or invalid name, or the result would be invalid;
    nothing written), 2 unreadable stack file.
    """
    from pipelines.promotion.stackfile import restore

    entry = service_entry(
        model_version=model_version,
        instance_type=instance_type,
        instances=instances,
        strategy=strategy,
        runtime=runtime,
    )
    addition = prepare_addition(stack, name, entry)
    restore(addition.path, addition.text)

    if as_json:
        emit_json(
            {
                "stack": stack,
                "service": name,
                "file": str(addition.path),
                "entry": entry,
                "diff": addition.diff.to_json(),
            }
        )
        return
    from pipelines.plan.render import render_diff

    console.print(f"[green]added[/] service [bold]{name}[/] to {addition.path}")
    console.print(render_diff(addition.diff))


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="The new service's DNS-safe name, e.g. churn-score.")],
    task: Annotated[
        str,
        typer.Option(
            "--task", help="What it predicts: binary_classification, multiclass_classification or regression."
        ),
    ],
    stacks: Annotated[
        list[str] | None,
        typer.Option(
            "--stack",
            "-s",
            metavar="<str>",
            help="Also declare it in this stack, as `service add` would (repeatable). Default: in none.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="A CSV snapshot with a header: features, types, classes and metric bounds are read off it.",
        ),
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="The column to predict (with --data).")] = None,
    positive_class: Annotated[
        str | None,
        typer.Option(
            "--positive-class",
            help="Binary: the class whose probability is served (default: the later of the two, sorted).",
        ),
    ] = None,
    runtime: Annotated[
        Runtime, typer.Option("--runtime", help="Served by SageMaker or by KServe (in the --stack entries).")
    ] = Runtime.sagemaker,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Scaffold a service: its contract, a training module and a test, which pass the model gate as written.

    Writes services/NAME/service.yaml and model.py and tests/services/test_NAME.py, and with
    --stack the stack entries (as `service add` writes them). With --data the contract is read
    off the CSV and the model fitted once to set its metric bounds; without, the data section is
    a placeholder the loader refuses until it is filled in. Exit 0 written, 1 refused (invalid or
    taken name, unknown task, a label that does not fit the task; nothing written), 2 bad input.
    """
    from infra.config import Guardrails
    from pipelines.contract.scaffold.bounds import live_accuracy_floor
    from pipelines.contract.scaffold.infer import infer_data
    from pipelines.contract.scaffold.install import build, describe, install, next_commands
    from pipelines.contract.scaffold.names import check_name, parse_task, placeholder_snapshot
    from pipelines.paths import project_root

    root = project_root()
    check_name(name)
    kind = parse_task(task)
    if (data is None) != (label is None):
        raise BadInputError("--data and --label go together: the snapshot and the column to predict")
    if positive_class is not None and data is None:
        raise BadInputError("--positive-class needs --data: the classes are read off the snapshot")
    targets = list(dict.fromkeys(stacks or []))
    _check_name_free(name, root, targets)

    def entry_with(guardrails: Guardrails | None = None) -> dict[str, Any]:
        return service_entry(
            model_version=None,
            instance_type="ml.m5.large",
            instances=2,
            strategy=Strategy.canary,
            runtime=runtime,
            guardrails=guardrails,
        )

    entry = entry_with()
    _check_entries(name, entry, targets)
    summary = None
    if data is not None and label is not None:
        summary = infer_data(data, label=label, task=kind, root=root, positive_class=positive_class)

    def progress(message: str) -> None:
        if not as_json:
            err_console.print(f"[dim]{message}[/]")

    built = build(name, kind, root=root, data=summary, progress=progress)
    try:
        if built.baseline is not None:
            entry = entry_with(Guardrails(min_live_accuracy=live_accuracy_floor(built.baseline)))
        additions = [prepare_addition(stack, name, entry) for stack in targets]
        written = install(built, root, [(addition.path, addition.text) for addition in additions])
    finally:
        shutil.rmtree(built.scratch, ignore_errors=True)

    snapshot = summary.path if summary is not None else placeholder_snapshot(name)
    commands = next_commands(name, stack=targets[0] if targets else None, snapshot=snapshot)
    facts = describe(built)
    if as_json:
        emit_json(
            {
                **facts,
                "written": [str(path) for path in written],
                "stacks": [
                    {
                        "stack": addition.stack,
                        "file": str(addition.path),
                        "entry": addition.entry,
                        "diff": addition.diff.to_json(),
                    }
                    for addition in additions
                ],
                "next": commands,
            }
        )
        return
    _show_new(facts, written, additions, commands)


def _check_name_free(name: str, root: Path, stacks: list[str]) -> None:
    """Refuse a name the project already uses: a service folder, a test, or any stack's entry."""
    from infra.config import SERVICES_KEY, load_stack_file
    from pipelines.contract.scaffold.names import existing_files
    from pipelines.paths import stack_path, stacks_dir

    taken = [str(path) for path in existing_files(name, root)]
    for path in sorted(stacks_dir().glob("Pulumi.*.yaml")):
        if name in load_stack_file(path).services:
            taken.append(f"{path}: config.{SERVICES_KEY}.{name}")
    if taken:
        raise RefusedError(
            f"service {name!r} already exists; nothing written",
            details=[*taken, "choose another name"],
        )
    for stack in stacks:
        if not stack_path(stack).is_file():
            raise BadInputError(f"--stack {stack}: no such stack file {stack_path(stack)}")


def _check_entries(name: str, entry: dict[str, Any], stacks: list[str]) -> None:
    """Refuse, before the model is fitted, an entry a stack's schema would refuse (planned later)."""
    from pipelines.paths import stack_path
    from pipelines.promotion.stackfile import check_valid

    for stack in stacks:
        path = stack_path(stack)
        check_valid(render_with_service(path, name, entry), path, f"adding {name!r}")


def _show_new(
    facts: dict[str, Any], written: list[Path], additions: list[StackAddition], commands: list[str]
) -> None:
    from pipelines.console import escape
    from pipelines.contract.scaffold.contract_yaml import flow_rule
    from pipelines.plan.render import render_diff

    name = facts["service"]
    console.print(f"[green]created[/] service [bold]{escape(name)}[/] ({facts['task']})")
    for path in written:
        console.print(f"  {escape(str(path))}")
    for warning in facts["warnings"]:
        console.print(f"[yellow]check[/] {escape(warning)}")
    if facts["placeholder"]:
        console.print(
            "[yellow]placeholder[/] the contract has no data yet: the loader refuses it until every "
            "FILL-IN in service.yaml (label, features, snapshot path and sha256"
            + (", classes" if facts["task"] != "regression" else ", liveTolerance")
            + ") is filled in"
        )
    if facts["metrics"]:
        console.print("metric rules (candidate and production), set from one fit:")
        for metric, rule in facts["metrics"].items():
            console.print(f"  {metric}: {flow_rule(rule)}", markup=False)
    for addition in additions:
        console.print(f"[green]declared[/] in {escape(str(addition.path))}")
        console.print(render_diff(addition.diff))
    if not additions:
        console.print("not declared in any stack yet: `modelrail service add` (first command below) does it")
    console.print("next:")
    for command in commands:
        console.print(f"  {command}", markup=False, soft_wrap=True)


def register(main_app: typer.Typer) -> None:
    """Mount ``service`` on the main app."""
    main_app.add_typer(app, name="service")

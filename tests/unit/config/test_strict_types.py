"""Strict types: a mistyped value in a stack file is refused, never coerced into something else.

Lax validation planned ``instanceCount: true`` as 1 instance and ``approvalRequired: 1`` as true.
Now booleans are never numbers, numbers never strings and strings never numbers, through both
readers of the config: the YAML loader (``load_stack_file``) and the engine's JSON strings
(``from_pulumi_config``, fed exactly as the offline plan feeds the engine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import (
    SERVICES_KEY,
    Autoscaling,
    DeploymentPolicy,
    Guardrails,
    Platform,
    RetentionDays,
    Service,
    StackConfigError,
    load_stack_file,
    parse_config_map,
)

SVC = f"config.{SERVICES_KEY}.adult-income"
PLATFORM = "config.modelrail:platform"
STACKS = ("local", "dev", "staging", "prod")


def _with_line(repo: Path, tmp_path: Path, stack: str, old: str, new: str) -> Path:
    """The committed stack file with one line of its first service (adult-income) changed, as a
    user would mistype it; other services may have the same line."""
    text = (repo / "stacks" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not a line of Pulumi.{stack}.yaml"
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


MISTYPES: list[tuple[str, str, str, str, str, str]] = [
    # id, old line, new line, key path, value as shown, what the message says is allowed
    (
        "count-as-boolean",
        "instanceCount: 2",
        "instanceCount: true",
        f"{SVC}.instanceCount",
        "true",
        "a whole number, unquoted (true is a boolean, not a number)",
    ),
    (
        "seconds-as-quoted-text",
        "bakeSeconds: 20",
        'bakeSeconds: "20"',
        f"{SVC}.deployment.bakeSeconds",
        '"20"',
        "a whole number, unquoted (a quoted value is text, not a number)",
    ),
    (
        "flag-as-number",
        "approvalRequired: true",
        "approvalRequired: 1",
        f"{PLATFORM}.approvalRequired",
        "1",
        "true or false, unquoted (1 and 0 are numbers, not booleans)",
    ),
    (
        "flag-as-yes",
        "approvalRequired: true",
        "approvalRequired: yes",
        f"{PLATFORM}.approvalRequired",
        '"yes"',
        "YAML 1.2 reads yes, no, on and off as text",
    ),
    (
        "percent-as-yes",
        "canaryPercent: 50",
        "canaryPercent: yes",
        f"{SVC}.deployment.canaryPercent",
        '"yes"',
        "input should be a valid integer: a whole number",
    ),
    (
        "percent-as-share",
        "canaryPercent: 50",
        "canaryPercent: 0.5",
        f"{SVC}.deployment.canaryPercent",
        "0.5",
        "a percentage from 0 to 100, so 50 for half, not 0.5",
    ),
    (
        "rate-as-boolean",
        "max5xxRate: 0.02",
        "max5xxRate: false",
        f"{SVC}.guardrails.max5xxRate",
        "false",
        "a number, unquoted (false is a boolean, not a number)",
    ),
    (
        "latency-as-quoted-text",
        "p99LatencyMs: 400",
        'p99LatencyMs: "400"',
        f"{SVC}.guardrails.p99LatencyMs",
        '"400"',
        "a number, unquoted (a quoted value is text, not a number)",
    ),
    (
        "retention-as-quoted-text",
        "experimental: 7",
        "experimental: '7'",
        f"{PLATFORM}.retentionDays.experimental",
        '"7"',
        "input should be a valid integer",
    ),
    (
        "tag-as-number",
        "cost-center: ml-platform",
        "cost-center: 4711",
        f"{PLATFORM}.tags.cost-center",
        "4711",
        "input should be a valid string: text; quote a value",
    ),
    (
        "image-tag-as-number",
        "instanceType: ml.m5.large",
        "instanceType: ml.m5.large\n      servingImageTag: 1.10",
        f"{SVC}.servingImageTag",
        "1.1",
        "input should be a valid string",
    ),
    (
        "count-as-fraction",
        "minInstances: 2",
        "minInstances: 1.5",
        f"{SVC}.autoscaling.minInstances",
        "1.5",
        "a whole number, unquoted",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "path", "value", "allowed"),
    [case[1:] for case in MISTYPES],
    ids=[case[0] for case in MISTYPES],
)
def test_a_mistyped_value_is_refused_naming_file_path_value_and_what_is_allowed(
    repo: Path, tmp_path: Path, old: str, new: str, path: str, value: str, allowed: str
) -> None:
    file = _with_line(repo, tmp_path, "local", old, new)
    with pytest.raises(StackConfigError) as caught:
        load_stack_file(file)
    messages = [str(issue) for issue in caught.value.issues]
    matching = [m for m in messages if m.startswith(f"{file}: {path} = {value}: ")]
    assert matching, f"no issue for {path} = {value}; got {messages}"
    assert allowed in matching[0], matching[0]


def test_every_mistype_in_one_file_is_reported_at_once(repo: Path, tmp_path: Path) -> None:
    text = (repo / "stacks" / "Pulumi.local.yaml").read_text(encoding="utf-8")
    for old, new in [
        ("instanceCount: 2", "instanceCount: true"),
        ("bakeSeconds: 20", 'bakeSeconds: "20"'),
        ("approvalRequired: true", "approvalRequired: 1"),
    ]:
        text = text.replace(old, new, 1)
    file = tmp_path / "Pulumi.local.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(StackConfigError) as caught:
        load_stack_file(file)
    paths = {issue.path for issue in caught.value.issues}
    assert {f"{SVC}.instanceCount", f"{SVC}.deployment.bakeSeconds", f"{PLATFORM}.approvalRequired"} <= paths


def test_whole_numbers_written_as_floats_are_the_integers_they_name(repo: Path, tmp_path: Path) -> None:
    file = _with_line(repo, tmp_path, "local", "instanceCount: 2", "instanceCount: 2.0")
    count = load_stack_file(file).services["adult-income"].instance_count
    assert count == 2 and type(count) is int


def test_integers_are_accepted_for_number_keys(repo: Path, tmp_path: Path) -> None:
    file = _with_line(repo, tmp_path, "local", "max5xxRate: 0.02", "max5xxRate: 0")
    guardrails = load_stack_file(file).services["adult-income"].guardrails
    assert guardrails.max_5xx_rate == 0.0
    assert guardrails.p99_latency_ms == 400.0, "the committed `p99LatencyMs: 400` is an int for a float key"


def test_the_models_are_strict_when_validated_directly() -> None:
    with pytest.raises(ValueError, match="valid integer"):
        DeploymentPolicy.model_validate({"bakeSeconds": True})
    with pytest.raises(ValueError, match="valid boolean"):
        Platform.model_validate({"environment": "dev", "region": "eu-west-1", "approvalRequired": "true"})
    assert DeploymentPolicy.model_validate({"canaryPercent": 20.0}).canary_percent == 20


def _engine_round_trip(repo: Path, stack: str) -> dict[str, Any]:
    """The config map as the engine hands it to the program: every value through JSON text."""
    from pipelines.plan.engine import _engine_config

    values, secret_keys = _engine_config(repo / "stacks" / f"Pulumi.{stack}.yaml")
    decoded: dict[str, Any] = {}
    for key, raw in values.items():
        try:
            decoded[key] = raw if key in secret_keys else json.loads(raw)
        except json.JSONDecodeError:
            decoded[key] = raw
    return decoded


@pytest.mark.parametrize("stack", STACKS)
def test_the_engine_path_validates_every_committed_stack_like_the_file(repo: Path, stack: str) -> None:
    decoded = _engine_round_trip(repo, stack)
    from_engine = parse_config_map(decoded, stack=stack, source=f"stacks/Pulumi.{stack}.yaml")
    assert from_engine == load_stack_file(repo / "stacks" / f"Pulumi.{stack}.yaml")


def test_from_pulumi_config_reads_what_the_plan_sets(repo: Path) -> None:
    from pulumi.runtime import settings
    from pulumi.runtime.config import set_all_config

    from infra.config import from_pulumi_config
    from pipelines.plan.engine import _engine_config

    values, secret_keys = _engine_config(repo / "stacks" / "Pulumi.prod.yaml")
    settings.reset_options(project="modelrail", stack="prod", preview=True)
    set_all_config(values, secret_keys)
    config = from_pulumi_config()
    assert config == load_stack_file(repo / "stacks" / "Pulumi.prod.yaml")
    assert type(config.services["adult-income"].instance_count) is int


def test_a_mistype_through_the_engine_is_refused_too(repo: Path) -> None:
    decoded = _engine_round_trip(repo, "local")
    decoded[SERVICES_KEY]["adult-income"]["instanceCount"] = True
    with pytest.raises(StackConfigError) as caught:
        parse_config_map(json.loads(json.dumps(decoded)), stack="local", source="stacks/Pulumi.local.yaml")
    assert [str(i) for i in caught.value.issues if i.path == f"{SVC}.instanceCount"] == [
        "stacks/Pulumi.local.yaml: config.modelrail:services.adult-income.instanceCount = true: "
        "input should be a valid integer: a whole number, unquoted (true is a boolean, not a number)"
    ]


def test_section_defaults_equal_validated_sections() -> None:
    service = Service.model_validate({})
    assert service.deployment == DeploymentPolicy.model_validate({})
    assert service.guardrails == Guardrails.model_validate({})
    assert service.autoscaling == Autoscaling.model_validate({})
    platform = Platform.model_validate({"environment": "dev", "region": "eu-west-1"})
    assert platform.retention_days == RetentionDays.model_validate({})
    assert platform.alerts.emails == ()


def test_importing_the_config_builds_no_schema_and_loads_no_yaml_parser() -> None:
    probe = (
        "import sys, infra.config as c\n"
        "built = [m.__name__ for m in (c.RetentionDays, c.Alerts, c.Platform, c.DeploymentPolicy,"
        " c.Guardrails, c.Autoscaling, c.Service, c.StackConfig) if m.__pydantic_complete__]\n"
        "print(built, 'ruamel.yaml' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[3],
    ).stdout
    assert out.strip() == "[] False"

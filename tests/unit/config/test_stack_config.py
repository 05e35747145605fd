"""The stack config schema: valid stacks load, and every bad value is named precisely."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from infra.config import (
    StackConfigError,
    StackFileUnreadableError,
    json_schema,
    load_stack_file,
)
from pipelines.cli import main

STACKS = ("local", "dev", "staging", "prod")


def _load_yaml(path: Path) -> Any:
    return YAML(typ="rt").load(path.read_text())


def _write(tmp_path: Path, stack: str, document: Any) -> Path:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    yaml = YAML(typ="rt")
    with path.open("w") as handle:
        yaml.dump(document, handle)
    return path


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_is_valid(repo: Path, stack: str) -> None:
    config = load_stack_file(repo / "stacks" / f"Pulumi.{stack}.yaml")
    assert config.stack == stack
    assert config.platform.environment == stack
    assert "adult-income" in config.services


def test_prod_declares_at_least_two_services(repo: Path) -> None:
    config = load_stack_file(repo / "stacks" / "Pulumi.prod.yaml")
    assert len(config.services) >= 2


def test_prod_webhook_secret_is_masked_offline(repo: Path) -> None:
    config = load_stack_file(repo / "stacks" / "Pulumi.prod.yaml")
    assert config.alert_webhook_url == "[secret]"


def test_a_service_may_wait_for_its_first_model(repo: Path, tmp_path: Path) -> None:
    document = _load_yaml(repo / "stacks" / "Pulumi.local.yaml")
    _set(["modelVersion"], None)(document)
    assert load_stack_file(_write(tmp_path, "local", document)).services["adult-income"].model_version is None


def test_config_is_frozen(repo: Path) -> None:
    config = load_stack_file(repo / "stacks" / "Pulumi.local.yaml")
    with pytest.raises(ValueError, match="frozen"):
        config.services["adult-income"].instance_count = 9  # type: ignore[misc]


Mutation = Callable[[Any], None]
SVC = "config.modelrail:services.adult-income"


def _svc(doc: Any) -> Any:
    return doc["config"]["modelrail:services"]["adult-income"]


def _set(path: list[str], value: Any) -> Mutation:
    def mutate(doc: Any) -> None:
        node = _svc(doc)
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return mutate


def _platform(key: str, value: Any) -> Mutation:
    def mutate(doc: Any) -> None:
        doc["config"]["modelrail:platform"][key] = value

    return mutate


def _rename_service(new_name: str) -> Mutation:
    def mutate(doc: Any) -> None:
        services = doc["config"]["modelrail:services"]
        services[new_name] = services.pop("adult-income")

    return mutate


def _top(key: str, value: Any) -> Mutation:
    def mutate(doc: Any) -> None:
        doc["config"][key] = value

    return mutate


BAD_CASES: list[tuple[str, str, Mutation, str, str, str]] = [
    # id, stack, mutation, expected key path, expected value text, expected allowed text
    ("unknown-key", "local", _set(["colour"], "blue"), f"{SVC}.colour", '"blue"', "allowed keys:"),
    (
        "unknown-nested-key",
        "local",
        _set(["deployment", "canarySize"], 5),
        f"{SVC}.deployment.canarySize",
        "5",
        "canaryPercent",
    ),
    (
        "canary-80-percent",
        "local",
        _set(["deployment", "canaryPercent"], 80),
        f"{SVC}.deployment.canaryPercent",
        "80",
        "at most 50% of capacity",
    ),
    (
        "canary-on-one-instance",
        "staging",
        _set(["instanceCount"], 1),
        f"{SVC}.instanceCount",
        "1",
        "at least 2 instances",
    ),
    (
        "negative-bake",
        "local",
        _set(["deployment", "bakeSeconds"], -5),
        f"{SVC}.deployment.bakeSeconds",
        "-5",
        "0 to 3600 seconds",
    ),
    (
        "bake-too-long",
        "local",
        _set(["deployment", "bakeSeconds"], 7200),
        f"{SVC}.deployment.bakeSeconds",
        "7200",
        "0 to 3600 seconds",
    ),
    (
        "linear-step-too-small",
        "local",
        _set(["deployment"], {"strategy": "linear", "linearStepPercent": 5}),
        f"{SVC}.deployment.linearStepPercent",
        "5",
        "10 to 50%",
    ),
    (
        "prod-all-at-once",
        "prod",
        _set(["deployment", "strategy"], "all_at_once"),
        f"{SVC}.deployment.strategy",
        '"all_at_once"',
        "canary or linear",
    ),
    (
        "unknown-strategy",
        "local",
        _set(["deployment", "strategy"], "blue_green"),
        f"{SVC}.deployment.strategy",
        '"blue_green"',
        "'all_at_once', 'canary' or 'linear'",
    ),
    (
        "bad-model-version",
        "local",
        _set(["modelVersion"], "v1"),
        f"{SVC}.modelVersion",
        '"v1"',
        "[0-9a-f]{64}",
    ),
    (
        "model-version-as-number",
        "local",
        _set(["modelVersion"], 42),
        f"{SVC}.modelVersion",
        "42",
        "valid string",
    ),
    (
        "service-name-not-dns-safe",
        "local",
        _rename_service("Adult_Income"),
        "config.modelrail:services.Adult_Income",
        '"Adult_Income"',
        "DNS-safe",
    ),
    (
        "instance-type",
        "local",
        _set(["instanceType"], "m5.large"),
        f"{SVC}.instanceType",
        '"m5.large"',
        "ml\\.",
    ),
    (
        "capture-over-100",
        "local",
        _set(["dataCapturePercent"], 150),
        f"{SVC}.dataCapturePercent",
        "150",
        "less than or equal to 100",
    ),
    (
        "error-rate-over-one",
        "local",
        _set(["guardrails", "max5xxRate"], 2),
        f"{SVC}.guardrails.max5xxRate",
        "2",
        "less than or equal to 1",
    ),
    (
        "environment-mismatch",
        "dev",
        _platform("environment", "prod"),
        "config.modelrail:platform.environment",
        '"prod"',
        "must match the stack file's name ('dev')",
    ),
    (
        "bad-region",
        "local",
        _platform("region", "mars-1"),
        "config.modelrail:platform.region",
        '"mars-1"',
        "should match pattern",
    ),
    (
        "aws-region-disagrees",
        "local",
        _top("aws:region", "eu-central-1"),
        "config.aws:region",
        '"eu-central-1"',
        "must equal platform.region",
    ),
    (
        "unknown-project-key",
        "local",
        _top("modelrail:servics", {}),
        "config.modelrail:servics",
        "{}",
        "allowed: modelrail:platform",
    ),
    (
        "unknown-namespace",
        "local",
        _top("gcp:project", "x"),
        "config.gcp:project",
        '"x"',
        "unknown config namespace",
    ),
    (
        "autoscaling-min-above-max",
        "local",
        _set(["autoscaling"], {"minInstances": 5, "maxInstances": 2}),
        f"{SVC}.autoscaling.minInstances",
        "5",
        "at most autoscaling.maxInstances (2)",
    ),
    (
        "bad-alert-email",
        "dev",
        _platform("alerts", {"emails": ["not-an-address"]}),
        "config.modelrail:platform.alerts.emails.0",
        '"not-an-address"',
        "should match pattern",
    ),
    (
        "prod-without-approval",
        "prod",
        _platform("approvalRequired", False),
        "config.modelrail:platform.approvalRequired",
        "false",
        "prod always requires a second person's approval",
    ),
    (
        "plain-text-webhook",
        "local",
        _top("modelrail:alertWebhookUrl", "http://hooks.example.com"),
        "config.modelrail:alertWebhookUrl",
        '"http://hooks.example.com"',
        "https:// URL",
    ),
]


@pytest.mark.parametrize(
    ("stack", "mutate", "path", "value", "allowed"),
    [case[1:] for case in BAD_CASES],
    ids=[case[0] for case in BAD_CASES],
)
def test_bad_config_names_file_path_value_and_what_is_allowed(
    repo: Path, tmp_path: Path, stack: str, mutate: Mutation, path: str, value: str, allowed: str
) -> None:
    document = _load_yaml(repo / "stacks" / f"Pulumi.{stack}.yaml")
    mutate(document)
    file = _write(tmp_path, stack, document)
    with pytest.raises(StackConfigError) as caught:
        load_stack_file(file)
    messages = [str(issue) for issue in caught.value.issues]
    matching = [m for m in messages if f": {path} = " in m]
    assert matching, f"no issue for {path}; got {messages}"
    message = matching[0]
    assert message.startswith(str(file)), message
    assert f"= {value}:" in message, message
    assert allowed in message, message


def test_duplicate_service_is_refused_with_both_lines(repo: Path, tmp_path: Path) -> None:
    text = (repo / "stacks" / "Pulumi.local.yaml").read_text()
    service_block = text[text.index("    adult-income:") :]
    file = tmp_path / "Pulumi.local.yaml"
    file.write_text(text + service_block)
    with pytest.raises(StackConfigError) as caught:
        load_stack_file(file)
    (issue,) = caught.value.issues
    assert issue.source == str(file)
    assert issue.value == "adult-income"
    assert "duplicate key" in issue.allowed
    assert "line" in issue.path


def test_all_problems_are_reported_at_once(repo: Path, tmp_path: Path) -> None:
    document = _load_yaml(repo / "stacks" / "Pulumi.prod.yaml")
    _set(["deployment", "canaryPercent"], 80)(document)
    _set(["colour"], "blue")(document)
    document["config"]["modelrail:services"]["fraud-score"]["deployment"]["bakeSeconds"] = -1
    document["config"]["modelrail:services"]["fraud-score"]["deployment"]["strategy"] = "all_at_once"
    file = _write(tmp_path, "prod", document)
    with pytest.raises(StackConfigError) as caught:
        load_stack_file(file)
    paths = sorted(issue.path for issue in caught.value.issues)
    assert paths == sorted(
        [
            f"{SVC}.colour",
            "config.modelrail:services.fraud-score.deployment.bakeSeconds",
            "config.modelrail:services.fraud-score.deployment.strategy",
        ]
    ), "a service whose fields fail is reported by field; the other service's cross-field rules still run"


def test_cross_field_rules_of_one_service_are_reported_together(repo: Path, tmp_path: Path) -> None:
    document = _load_yaml(repo / "stacks" / "Pulumi.prod.yaml")
    _set(["deployment", "canaryPercent"], 80)(document)
    _set(["instanceCount"], 1)(document)
    _set(["autoscaling"], {"minInstances": 1, "maxInstances": 4})(document)
    file = _write(tmp_path, "prod", document)
    with pytest.raises(StackConfigError) as caught:
        load_stack_file(file)
    paths = {issue.path for issue in caught.value.issues}
    assert {f"{SVC}.deployment.canaryPercent", f"{SVC}.instanceCount"} <= paths


def test_missing_file_is_unreadable_not_invalid(tmp_path: Path) -> None:
    with pytest.raises(StackFileUnreadableError, match="cannot read"):
        load_stack_file(tmp_path / "Pulumi.local.yaml")


def test_broken_yaml_is_unreadable(tmp_path: Path) -> None:
    file = tmp_path / "Pulumi.local.yaml"
    file.write_text("config:\n  modelrail:platform: [unclosed\n")
    with pytest.raises(StackFileUnreadableError, match="not valid YAML"):
        load_stack_file(file)


def test_validate_command_exit_codes(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", "--stack", "prod"]) == 0

    document = _load_yaml(repo / "stacks" / "Pulumi.local.yaml")
    _set(["deployment", "canaryPercent"], 80)(document)
    bad = _write(tmp_path, "local", document)
    capsys.readouterr()
    assert main(["config", "validate", "--stack", "local", "--file", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["issues"][0]["path"] == f"{SVC}.deployment.canaryPercent"
    assert report["issues"][0]["value"] == 80
    assert report["issues"][0]["file"] == str(bad)

    assert main(["config", "validate", "--stack", "local", "--file", str(tmp_path / "absent.yaml")]) == 2


def test_schema_documents_every_service_field() -> None:
    schema = json_schema()
    service = schema["$defs"]["Service"]["properties"]
    for key in ("runtime", "modelVersion", "instanceType", "instanceCount", "deployment", "guardrails"):
        assert key in service
    assert schema["$defs"]["DeploymentPolicy"]["properties"]["canaryPercent"]["description"]
    assert schema["required"] == ["modelrail:platform", "modelrail:services"]


def test_readme_config_reference_is_generated_from_the_schema(repo: Path) -> None:
    from pipelines.config_reference import END, START, render_markdown

    readme = (repo / "README.md").read_text()
    embedded = readme[readme.index(START) : readme.index(END) + len(END)]
    assert embedded == render_markdown(), "README's config reference is stale: run `make docs`"


def test_every_command_reports_stack_file_problems_without_a_traceback(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(tmp_path / "state"))
    assert main(["status", "--stack", "nope"]) == 2
    assert "Pulumi.nope.yaml: cannot read the stack file" in capsys.readouterr().err

    (tmp_path / "stacks").mkdir()
    document = _load_yaml(repo / "stacks" / "Pulumi.local.yaml")
    _set(["deployment", "canaryPercent"], 80)(document)
    _write(tmp_path / "stacks", "local", document)
    (tmp_path / "Pulumi.yaml").write_text((repo / "Pulumi.yaml").read_text())
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(tmp_path))
    for command in (["status", "--stack", "local"], ["plan", "--stack", "local", "--json"]):
        assert main(command) == 1
        output = capsys.readouterr()
        assert "canaryPercent = 80" in output.err + output.out


def test_config_validate_names_the_services_that_have_no_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", "--stack", "prod", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["services"] == ["adult-income", "diabetes", "fraud-score"]
    assert report["without_contract"] == ["fraud-score"]
    assert main(["config", "validate", "--stack", "local"]) == 0
    assert "no contract" not in capsys.readouterr().err

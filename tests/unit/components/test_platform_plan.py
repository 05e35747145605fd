"""The composed platform, planned offline: what prod declares, and what a new model version changes."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from types import NoneType
from typing import Any, get_args

import pytest
from ruamel.yaml import YAML

from infra.config import Guardrails
from pipelines.plan import build_plan, diff_plans

REPO = Path(__file__).resolve().parents[3]
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
NEW_VERSION = "1a" * 32


def _states(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [step["newState"] for step in plan["steps"] if step["newState"]["type"] == type_]


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return build_plan("prod")


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Prod with only fraud-score's model version changed, as `modelrail promote` would pin it."""
    project = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "stacks", project / "stacks")
    stack_file = project / "stacks" / "Pulumi.prod.yaml"
    text = stack_file.read_text(encoding="utf-8")
    old = "0061b1aac82ecf718e608f80d525c61f026d5a2edc9c2461530b264d81dadd4d"
    assert text.count(old) == 1
    stack_file.write_text(text.replace(old, NEW_VERSION), encoding="utf-8")
    return build_plan("prod", project_dir=project, program=REPO / "infra" / "__main__.py")


def test_every_prod_endpoint_rolls_out_gradually_behind_alarms_of_the_same_plan(prod: dict[str, Any]) -> None:
    alarms = {state["inputs"]["name"] for state in _states(prod, ALARM)}
    endpoints = _states(prod, ENDPOINT)
    assert len(endpoints) == 2
    for endpoint in endpoints:
        config = endpoint["inputs"]["deploymentConfig"]
        assert config["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]["type"] in {"CANARY", "LINEAR"}
        rollback = {alarm["alarmName"] for alarm in config["autoRollbackConfiguration"]["alarms"]}
        assert rollback and rollback <= alarms


def test_prod_encrypts_and_captures_everywhere(prod: dict[str, Any]) -> None:
    for config in _states(prod, CONFIG):
        assert config["inputs"]["kmsKeyArn"]
        assert config["inputs"]["dataCaptureConfig"]["enableCapture"] is True
        assert config["retainOnDelete"] is True
    for type_ in ("aws:sns/topic:Topic", "aws:sqs/queue:Queue"):
        states = _states(prod, type_)
        assert states and all(state["inputs"]["kmsMasterKeyId"] for state in states)
    buckets = {state["inputs"]["bucket"] for state in _states(prod, "aws:s3/bucket:Bucket")}
    assert buckets == {
        "modelrail-prod-artifacts-123456789012-eu-west-1",
        "modelrail-prod-access-logs-123456789012-eu-west-1",
    }
    encrypted = {
        state["inputs"]["bucket"]
        for state in _states(
            prod, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        if state["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    }
    versioned = {
        state["inputs"]["bucket"]
        for state in _states(prod, "aws:s3/bucketVersioning:BucketVersioning")
        if state["inputs"]["versioningConfiguration"]["status"] == "Enabled"
    }
    blocked = {
        state["inputs"]["bucket"]
        for state in _states(prod, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        if all(state["inputs"][flag] for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"))
        and state["inputs"]["restrictPublicBuckets"]
    }
    assert buckets == encrypted == versioned == blocked


def test_the_webhook_url_never_appears_in_the_plan(prod: dict[str, Any]) -> None:
    (webhook,) = [
        state
        for state in _states(prod, "aws:sns/topicSubscription:TopicSubscription")
        if state["inputs"]["protocol"] == "https"
    ]
    assert webhook["inputs"]["endpoint"] == "[secret]"


def test_a_new_model_version_updates_the_endpoint_in_place(
    prod: dict[str, Any], promoted: dict[str, Any]
) -> None:
    diff = diff_plans(prod, promoted)
    assert not diff.added and not diff.removed
    changed = {change.urn.rsplit("::", 1)[1]: change for change in diff.changed}
    assert set(changed) == {"fraud-score-model", "fraud-score-config", "fraud-score-endpoint"}
    assert changed["fraud-score-model"].replaces
    assert changed["fraud-score-config"].replaces
    endpoint = changed["fraud-score-endpoint"]
    assert not endpoint.replaces
    assert [prop.path for prop in endpoint.properties] == ["endpointConfigName"]


def test_a_new_model_version_leaves_alarms_and_the_other_service_alone(
    prod: dict[str, Any], promoted: dict[str, Any]
) -> None:
    diff = diff_plans(prod, promoted)
    touched = {change.type for change in diff.changed}
    assert ALARM not in touched
    assert not any("adult-income" in change.urn for change in diff.changed)
    assert {change.type for change in diff.replaced} == {MODEL, CONFIG}


def test_the_retained_configuration_is_the_rollback_target(
    prod: dict[str, Any], promoted: dict[str, Any]
) -> None:
    before = {s["urn"]: s for s in _states(prod, CONFIG)}
    after = {s["urn"]: s for s in _states(promoted, CONFIG)}
    old_models = {u: s["inputs"]["productionVariants"][0]["modelName"] for u, s in before.items()}
    new_models = {u: s["inputs"]["productionVariants"][0]["modelName"] for u, s in after.items()}
    assert old_models != new_models
    assert all(state["retainOnDelete"] for state in [*before.values(), *after.values()])
    assert copy.deepcopy(prod) == prod  # plans are plain data, safe to share between tests


def _prod_edited(tmp: Path, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Prod's plan after ``edit`` changed its stack file's ``config:`` (comments kept)."""
    shutil.copytree(REPO / "stacks", tmp / "stacks")
    path = tmp / "stacks" / "Pulumi.prod.yaml"
    yaml = YAML(typ="rt")
    document = yaml.load(path.read_text(encoding="utf-8"))
    edit(document["config"])
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(document, out)
    return build_plan("prod", project_dir=tmp, program=REPO / "infra" / "__main__.py")


def _toggle_guardrails(config: dict[str, Any]) -> None:
    """Every guardrail of every service: a nullable one null ↔ number, any other to a new number."""
    for service in config["modelrail:services"].values():
        guardrails = service["guardrails"]
        for name, field in Guardrails.model_fields.items():
            key = field.alias or name
            value = guardrails.get(key)
            if value is None:
                guardrails[key] = 0.9
            elif NoneType in get_args(field.annotation):
                guardrails[key] = None
            else:
                guardrails[key] = value * 2


@pytest.fixture(scope="module")
def toggled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _prod_edited(tmp_path_factory.mktemp("toggled"), _toggle_guardrails)


def test_toggling_every_guardrail_never_replaces_an_endpoint(
    prod: dict[str, Any], toggled: dict[str, Any]
) -> None:
    """``autoRollbackConfiguration`` is force-new and the endpoint's name fixed: a replace would fail.

    adult-income's live accuracy goes from 0.82 to null and fraud-score's from null to 0.9, in the
    same plan as every other threshold; the alarms change in place, the endpoints not at all.
    """
    diff = diff_plans(prod, toggled)
    assert [change.urn for change in diff.replaced if change.type == ENDPOINT] == []
    assert diff.replaced == ()
    assert not diff.added and not diff.removed
    assert ENDPOINT not in {change.type for change in diff.changed}
    accuracy = {
        change.urn.rsplit("::", 1)[1]: {p.path: p.new for p in change.properties}
        for change in diff.changed
        if change.urn.endswith("-alarms-live-accuracy")
    }
    assert accuracy["adult-income-alarms-live-accuracy"]["threshold"] == 0
    assert accuracy["fraud-score-alarms-live-accuracy"]["threshold"] == 0.9


@pytest.fixture(scope="module")
def retagged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _prod_edited(
        tmp_path_factory.mktemp("retagged"),
        lambda config: config["modelrail:platform"]["tags"].update({"cost-center": "ml-serving"}),
    )


def test_a_tag_only_change_replaces_no_endpoint_configuration(
    prod: dict[str, Any], retagged: dict[str, Any]
) -> None:
    """Tags update in place, so the retained configurations keep their names (and the endpoint its config)."""
    diff = diff_plans(prod, retagged)
    assert diff.replaced == ()
    configs = [change for change in diff.changed if change.type == CONFIG]
    assert len(configs) == 2
    assert {p.path for change in configs for p in change.properties} == {"tags.cost-center"}


def test_role_policies_naming_the_key_by_its_alias_wait_for_the_alias(prod: dict[str, Any]) -> None:
    """The alias is what grants the key: a role must not use the key before the alias exists."""
    (alias,) = _states(prod, "aws:kms/alias:Alias")
    keyed = [
        state
        for state in _states(prod, "aws:iam/rolePolicy:RolePolicy")
        if "kms:ResourceAliases" in state["inputs"]["policy"]
    ]
    assert len(keyed) == 7  # serving, training and monitoring of the two pinned services; diabetes's training
    assert all(alias["urn"] in state["dependencies"] for state in keyed)


def test_a_services_serving_threads_reach_its_sagemaker_model(tmp_path: Path) -> None:
    def three_threads(config: dict[str, Any]) -> None:
        config["modelrail:services"]["fraud-score"]["servingThreads"] = 3

    plan = _prod_edited(tmp_path, three_threads)
    threads = {
        state["urn"].rsplit("::", 1)[-1]: state["inputs"]["primaryContainer"]["environment"][
            "MODELRAIL_SERVING_THREADS"
        ]
        for state in _states(plan, "aws:sagemaker/model:Model")
    }
    assert threads == {"adult-income-model": "1", "fraud-score-model": "3"}


def test_the_models_environment_uses_the_names_the_serving_code_reads(prod: dict[str, Any]) -> None:
    """The component cannot import the packaged serving code, so the names are held equal here."""
    from pipelines.serving.launch import MODEL_VERSION_ENV
    from pipelines.serving.threads import THREADS_ENV

    for state in _states(prod, "aws:sagemaker/model:Model"):
        environment = state["inputs"]["primaryContainer"]["environment"]
        assert {MODEL_VERSION_ENV, THREADS_ENV} <= set(environment), environment


def _local_edited(tmp: Path, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The local stack's plan after ``edit`` changed adult-income's entry (its progression has a shadow)."""
    shutil.copytree(REPO / "stacks", tmp / "stacks")
    path = tmp / "stacks" / "Pulumi.local.yaml"
    yaml = YAML(typ="rt")
    document = yaml.load(path.read_text(encoding="utf-8"))
    edit(document["config"]["modelrail:services"]["adult-income"])
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(document, out)
    return build_plan("local", project_dir=tmp, program=REPO / "infra" / "__main__.py")


def test_a_stack_entry_with_a_shadow_version_plans_a_shadow_variant_and_one_without_none(
    tmp_path: Path,
) -> None:
    """The controller's shadow phase is a stack edit: ``shadowVersion`` next to production's pin."""
    unshadowed = _local_edited(tmp_path / "without", lambda entry: None)
    shadowed = _local_edited(tmp_path / "with", lambda entry: entry.update(shadowVersion=NEW_VERSION))

    def adult_income(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
        return [state for state in _states(plan, type_) if "::adult-income-" in state["urn"]]

    (before,) = adult_income(unshadowed, CONFIG)
    assert "shadowProductionVariants" not in before["inputs"]
    (after,) = adult_income(shadowed, CONFIG)
    (shadow,) = after["inputs"]["shadowProductionVariants"]
    assert (shadow["variantName"], shadow["initialVariantWeight"]) == ("shadow", 0.5)  # local mirrors 50%
    assert after["inputs"]["productionVariants"] == before["inputs"]["productionVariants"]
    versions = {
        state["urn"].rsplit("::", 1)[1]: state["inputs"]["primaryContainer"]["environment"][
            "MODELRAIL_MODEL_VERSION"
        ]
        for state in adult_income(shadowed, MODEL)
    }
    production = versions["adult-income-model"]
    assert versions == {"adult-income-model": production, "adult-income-shadow-model": NEW_VERSION}

    diff = diff_plans(unshadowed, shadowed)
    assert [urn.rsplit("::", 1)[1] for urn, _ in diff.added] == [
        "adult-income-shadow-model"
    ] and not diff.removed
    endpoint = {change.urn.rsplit("::", 1)[1]: change for change in diff.changed}["adult-income-endpoint"]
    assert not endpoint.replaces and [prop.path for prop in endpoint.properties] == ["endpointConfigName"]

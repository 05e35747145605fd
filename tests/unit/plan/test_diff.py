"""Plan diffs: added, removed and changed resources, and which changes would replace a resource."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pipelines.plan import diff_plans

ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _plan(*states: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    steps = [
        {
            "op": "create",
            "urn": f"urn:pulumi:s::p::{type_}::{name}",
            "newState": {"type": type_, "inputs": inputs},
        }
        for type_, name, inputs in states
    ]
    return {"steps": steps, "changeSummary": {"create": len(steps)}}


BASE = _plan(
    (
        ENDPOINT,
        "ep",
        {
            "name": "prod-svc",
            "endpointConfigName": "cfg-1",
            "deploymentConfig": {"autoRollbackConfiguration": {"alarms": [{"alarmName": "a"}]}},
        },
    ),
    (CONFIG, "cfg", {"productionVariants": [{"modelName": "m-1", "variantName": "primary"}]}),
    (MODEL, "model", {"primaryContainer": {"modelDataUrl": "s3://b/v1"}, "tags": {"x": "1"}}),
    (ALARM, "alarm", {"name": "a", "threshold": 1}),
)


def _changed(mutate: Any) -> dict[str, Any]:
    plan = copy.deepcopy(BASE)
    states = {step["urn"].rsplit("::", 1)[-1]: step["newState"]["inputs"] for step in plan["steps"]}
    mutate(states)
    return plan


def test_identical_plans_have_no_changes() -> None:
    diff = diff_plans(BASE, copy.deepcopy(BASE))
    assert not diff.has_changes
    assert diff.to_json()["summary"] == {"create": 0, "delete": 0, "update": 0, "replace": 0}


def test_endpoint_config_is_replaced_on_any_change_and_the_endpoint_only_updated() -> None:
    def new_version(states: dict[str, Any]) -> None:
        states["cfg"]["productionVariants"][0]["modelName"] = "m-2"
        states["ep"]["endpointConfigName"] = "cfg-2"

    diff = diff_plans(BASE, _changed(new_version))
    by_name = {change.urn.rsplit("::", 1)[-1]: change for change in diff.changed}
    assert by_name["cfg"].replaces
    assert by_name["cfg"].properties[0].path == "productionVariants[0].modelName"
    assert not by_name["ep"].replaces
    assert by_name["ep"].properties[0].old == "cfg-1"
    assert by_name["ep"].properties[0].new == "cfg-2"


def test_changing_the_rollback_alarm_list_replaces_the_endpoint() -> None:
    def new_alarm(states: dict[str, Any]) -> None:
        states["ep"]["deploymentConfig"]["autoRollbackConfiguration"]["alarms"].append({"alarmName": "b"})

    (change,) = diff_plans(BASE, _changed(new_alarm)).changed
    assert change.replaces
    assert change.properties[0].path == "deploymentConfig.autoRollbackConfiguration.alarms"


def test_renaming_an_alarm_replaces_it_but_a_threshold_updates_it() -> None:
    (rename,) = diff_plans(BASE, _changed(lambda s: s["alarm"].update(name="z"))).changed
    (threshold,) = diff_plans(BASE, _changed(lambda s: s["alarm"].update(threshold=2))).changed
    assert rename.replaces
    assert not threshold.replaces


def test_tags_never_force_replacement_even_on_models() -> None:
    (change,) = diff_plans(BASE, _changed(lambda s: s["model"]["tags"].update(x="2"))).changed
    assert change.properties[0].path == "tags.x"
    assert not change.replaces


def test_added_and_removed_resources() -> None:
    new = copy.deepcopy(BASE)
    removed = new["steps"].pop()
    new["steps"].append(
        {
            "op": "create",
            "urn": "urn:pulumi:s::p::aws:sns/topic:Topic::t",
            "newState": {"type": "aws:sns/topic:Topic", "inputs": {}},
        }
    )
    diff = diff_plans(BASE, new)
    assert diff.added == (("urn:pulumi:s::p::aws:sns/topic:Topic::t", "aws:sns/topic:Topic"),)
    assert diff.removed == ((removed["urn"], ALARM),)
    assert diff.to_json()["summary"]["create"] == 1


def test_a_step_replace_on_changes_is_honoured() -> None:
    old = _plan(("aws:sns/topic:Topic", "t", {"displayName": "a"}))
    new = _plan(("aws:sns/topic:Topic", "t", {"displayName": "b"}))
    new["steps"][0]["newState"]["replaceOnChanges"] = ["displayName"]
    (change,) = diff_plans(old, new).changed
    assert change.replaces


def test_not_a_plan_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a plan"):
        diff_plans({"resources": []}, BASE)


def test_the_detailed_diff_has_the_engines_names_and_kinds() -> None:
    """``detailedDiff`` as ``pulumi preview --json`` prints it: path → {kind, inputDiff}."""

    def change(states: dict[str, Any]) -> None:
        states["alarm"]["threshold"] = 2
        states["alarm"]["datapointsToAlarm"] = 2
        states["model"]["primaryContainer"]["modelDataUrl"] = "s3://b/v2"
        del states["model"]["tags"]

    diff = diff_plans(BASE, _changed(change)).to_json()
    by_name = {entry["urn"].rsplit("::", 1)[-1]: entry["detailedDiff"] for entry in diff["changed"]}
    assert by_name["alarm"] == {
        "datapointsToAlarm": {"kind": "add", "inputDiff": True},
        "threshold": {"kind": "update", "inputDiff": True},
    }
    assert by_name["model"] == {
        "primaryContainer.modelDataUrl": {"kind": "update-replace", "inputDiff": True},
        "tags": {"kind": "delete", "inputDiff": True},
    }

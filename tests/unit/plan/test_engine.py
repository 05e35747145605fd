"""The offline plan engine: request shape, determinism, secrets and numbers, URNs as the engine makes them.

These tests pin what the engine relies on from the pulumi SDK's mock monitor. If an SDK upgrade
changes the ``RegisterResource`` request shape, they fail here, loudly, before a plan goes wrong.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.console import dumps
from pipelines.plan import build_plan

SAMPLE = Path(__file__).with_name("sample_program.py")


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return build_plan("prod", program=SAMPLE)


def _stable(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan without ``duration``, the one part that differs between runs."""
    return {key: value for key, value in plan.items() if key != "duration"}


def _step(plan: dict[str, Any], urn_suffix: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [step for step in plan["steps"] if step["urn"].endswith(urn_suffix)]
    assert len(matches) == 1, [step["urn"] for step in plan["steps"]]
    return matches[0]


def test_plan_has_the_preview_json_shape(plan: dict[str, Any]) -> None:
    """pulumi's ``display.PreviewDigest``: config, steps, duration (ns), changeSummary."""
    assert set(plan) == {"config", "steps", "duration", "changeSummary"}
    assert plan["changeSummary"] == {"create": len(plan["steps"])}
    assert isinstance(plan["duration"], int) and plan["duration"] > 0  # Go's time.Duration: nanoseconds
    for step in plan["steps"]:
        assert step["op"] == "create"
        assert {"type", "inputs", "parent", "dependencies"} <= set(step["newState"])
        assert step["newState"]["urn"] == step["urn"]
        assert "detailedDiff" in step and step["detailedDiff"] is None  # JSON null for a create


def test_config_is_the_stack_config_as_text_with_secrets_blinded(plan: dict[str, Any]) -> None:
    config = plan["config"]
    assert config["aws:region"] == "eu-west-1"
    assert config["modelrail:alertWebhookUrl"] == "[secret]"
    assert json.loads(config["modelrail:platform"])["environment"] == "prod"
    assert all(isinstance(value, str) for value in config.values())


def test_urns_follow_the_engine_not_the_mock_default(plan: dict[str, Any]) -> None:
    root = plan["steps"][0]
    assert root["urn"] == "urn:pulumi:prod::modelrail::pulumi:pulumi:Stack::modelrail-prod"
    component = _step(plan, "::art")
    assert component["urn"] == "urn:pulumi:prod::modelrail::modelrail:sample:Store::art"
    assert component["newState"]["parent"] == root["urn"]
    assert component["newState"]["custom"] is False
    key = _step(plan, "::art-key")
    assert key["urn"] == "urn:pulumi:prod::modelrail::modelrail:sample:Store$aws:kms/key:Key::art-key"
    assert key["newState"]["parent"] == component["urn"]


def test_inputs_use_engine_property_names_and_whole_numbers_stay_ints(plan: dict[str, Any]) -> None:
    queue = _step(plan, "::art-queue")["newState"]
    assert queue["inputs"]["messageRetentionSeconds"] == 3600
    assert isinstance(queue["inputs"]["messageRetentionSeconds"], int)
    assert re.fullmatch(
        r"arn:aws:kms:eu-west-1:123456789012:key/[0-9a-f]{32}", queue["inputs"]["kmsMasterKeyId"]
    )


def test_values_flowing_between_resources_resolve_and_record_dependencies(plan: dict[str, Any]) -> None:
    versioning = _step(plan, "::art-versioning")["newState"]
    bucket = _step(plan, "::art-bucket")
    assert versioning["inputs"]["bucket"] == "art-bucket-name"
    assert versioning["dependencies"] == [bucket["urn"]]


def test_secrets_print_masked(plan: dict[str, Any]) -> None:
    topic = _step(plan, "::alerts")["newState"]
    assert topic["inputs"]["tags"] == {"hook": "[secret]"}
    assert topic["inputs"]["name"] == "alerts-prod"
    assert "v1:" not in json.dumps(plan)


def test_plan_is_identical_across_runs_but_for_its_duration(plan: dict[str, Any]) -> None:
    again = build_plan("prod", program=SAMPLE)
    assert dumps(_stable(again)) == dumps(_stable(plan))


def test_plans_of_different_stacks_do_not_leak_into_each_other(plan: dict[str, Any]) -> None:
    local = build_plan("local", program=SAMPLE)
    assert all(step["urn"].startswith("urn:pulumi:local::") for step in local["steps"])
    assert _step(local, "::alerts")["newState"]["inputs"]["tags"] == {"hook": "none"}
    assert len(local["steps"]) == len(plan["steps"])


def test_mock_outputs_derive_from_the_urn() -> None:
    from pulumi.runtime import MockResourceArgs

    from pipelines.plan.mocks import PlanMocks

    mocks = PlanMocks(region="us-east-1")
    mocks.expect_urn("urn:pulumi:s::p::aws:sqs/queue:Queue::q")
    first = mocks.new_resource(MockResourceArgs("aws:sqs/queue:Queue", "q", {}, None, None, True))
    mocks.expect_urn("urn:pulumi:s::p::aws:sqs/queue:Queue::q")
    second = mocks.new_resource(MockResourceArgs("aws:sqs/queue:Queue", "q", {}, None, None, True))
    assert first == second
    assert first[1]["url"].startswith("https://sqs.us-east-1.amazonaws.com/123456789012/q-")


def _mock_state(typ: str, inputs: dict[str, Any], *, new_stack: bool = False) -> tuple[Any, dict[str, Any]]:
    from pulumi.runtime import MockResourceArgs

    from pipelines.plan.mocks import PlanMocks

    mocks = PlanMocks(region="eu-west-1", new_stack=new_stack)
    mocks.expect_urn(f"urn:pulumi:s::p::{typ}::res")
    result: tuple[Any, dict[str, Any]] = mocks.new_resource(
        MockResourceArgs(typ, "res", inputs, None, None, True)
    )
    return result


ACCOUNT_REGION = "eu-west-1:123456789012"


@pytest.mark.parametrize(
    ("typ", "inputs", "arn"),
    [
        ("aws:sns/topic:Topic", {"name": "t"}, f"arn:aws:sns:{ACCOUNT_REGION}:t"),
        ("aws:sqs/queue:Queue", {"name": "q"}, f"arn:aws:sqs:{ACCOUNT_REGION}:q"),
        ("aws:cloudwatch/eventRule:EventRule", {"name": "r"}, f"arn:aws:events:{ACCOUNT_REGION}:rule/r"),
        (
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            {"name": "a"},
            f"arn:aws:cloudwatch:{ACCOUNT_REGION}:alarm:a",
        ),
        ("aws:sagemaker/endpoint:Endpoint", {"name": "e"}, f"arn:aws:sagemaker:{ACCOUNT_REGION}:endpoint/e"),
        (
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            {"name": "c"},
            f"arn:aws:sagemaker:{ACCOUNT_REGION}:endpoint-config/c",
        ),
        ("aws:sagemaker/model:Model", {"name": "m"}, f"arn:aws:sagemaker:{ACCOUNT_REGION}:model/m"),
        (
            "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
            {"modelPackageGroupName": "g"},
            f"arn:aws:sagemaker:{ACCOUNT_REGION}:model-package-group/g",
        ),
        (
            "aws:sagemaker/pipeline:Pipeline",
            {"pipelineName": "p"},
            f"arn:aws:sagemaker:{ACCOUNT_REGION}:pipeline/p",
        ),
        ("aws:ecr/repository:Repository", {"name": "r"}, f"arn:aws:ecr:{ACCOUNT_REGION}:repository/r"),
        ("aws:iam/role:Role", {"name": "r"}, "arn:aws:iam::123456789012:role/r"),
        ("aws:s3/bucket:Bucket", {"bucket": "b"}, "arn:aws:s3:::b"),
    ],
)
def test_mock_arns_follow_each_services_format_and_an_explicit_name_wins(
    typ: str, inputs: dict[str, Any], arn: str
) -> None:
    resource_id, state = _mock_state(typ, inputs)
    assert state["arn"] == arn
    (name,) = inputs.values()
    ids = {
        "aws:sqs/queue:Queue": f"https://sqs.eu-west-1.amazonaws.com/123456789012/{name}",
        "aws:sns/topic:Topic": arn,
    }
    assert resource_id == state["id"] == ids.get(typ, name)


def test_a_kms_key_arn_holds_its_key_id_and_ids_follow_the_provider() -> None:
    key_id, key = _mock_state("aws:kms/key:Key", {})
    assert key["arn"] == f"arn:aws:kms:{ACCOUNT_REGION}:key/{key['keyId']}" and key_id == key["keyId"]
    queue_id, queue = _mock_state("aws:sqs/queue:Queue", {"name": "q"})
    assert queue_id == queue["url"] == "https://sqs.eu-west-1.amazonaws.com/123456789012/q"
    topic_id, topic = _mock_state("aws:sns/topic:Topic", {"name": "t"})
    assert topic_id == topic["arn"]
    _, dashboard = _mock_state("aws:cloudwatch/dashboard:Dashboard", {"dashboardName": "d"})
    assert dashboard["dashboardArn"] == "arn:aws:cloudwatch::123456789012:dashboard/d"


def test_a_new_stack_leaves_out_what_aws_assigns_but_keeps_names() -> None:
    resource_id, state = _mock_state("aws:sqs/queue:Queue", {"messageRetentionSeconds": 60}, new_stack=True)
    assert resource_id is None
    assert set(state) == {"messageRetentionSeconds", "name"}
    assert state["name"].startswith("res-")


def test_a_tag_change_keeps_the_auto_name_of_a_replaced_on_change_type() -> None:
    """The provider updates tags in place; only other inputs make a new configuration."""
    typ = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
    _, first = _mock_state(typ, {"kmsKeyArn": "k", "tags": {"a": "1"}, "tagsAll": {"a": "1"}})
    _, retagged = _mock_state(typ, {"kmsKeyArn": "k", "tags": {"a": "2"}, "tagsAll": {"a": "2"}})
    _, rekeyed = _mock_state(typ, {"kmsKeyArn": "other", "tags": {"a": "1"}})
    assert first["name"] == retagged["name"] != rekeyed["name"]


def test_replaced_types_get_a_new_name_when_inputs_change() -> None:
    from pulumi.runtime import MockResourceArgs

    from pipelines.plan.mocks import PlanMocks

    mocks = PlanMocks(region="us-east-1")
    typ = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
    names = []
    for image in ("a", "b"):
        mocks.expect_urn(f"urn:pulumi:s::p::{typ}::cfg")
        _, state = mocks.new_resource(MockResourceArgs(typ, "cfg", {"image": image}, None, None, True))
        names.append(state["name"])
    assert names[0] != names[1]


def test_invalid_stack_config_stops_the_plan_before_the_program(tmp_path: Path, repo: Path) -> None:
    from infra.config import StackConfigError

    (tmp_path / "stacks").mkdir()
    text = (
        (repo / "stacks" / "Pulumi.local.yaml").read_text().replace("canaryPercent: 50", "canaryPercent: 80")
    )
    (tmp_path / "stacks" / "Pulumi.local.yaml").write_text(text)
    with pytest.raises(StackConfigError, match="canaryPercent"):
        build_plan("local", project_dir=tmp_path, program=SAMPLE)


def test_a_plan_runs_in_a_worker_thread_too(plan: dict[str, Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        threaded = pool.submit(build_plan, "prod", program=SAMPLE).result()
    assert dumps(_stable(threaded)) == dumps(_stable(plan))


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_the_cli_plan_is_byte_identical_without_a_network(repo: Path) -> None:
    """`unshare -rn` leaves the process no network at all: the plan must not need one.

    Every byte is the same on both runs except the ``duration`` line, which is dropped.
    """
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not available here: {probe.stderr.decode().strip()}")
    command = ["unshare", "-rn", sys.executable, "-m", "pipelines.cli", "plan", "--stack", "prod", "--json"]
    first = subprocess.run(command, cwd=repo, capture_output=True, check=True, timeout=120).stdout
    second = subprocess.run(command, cwd=repo, capture_output=True, check=True, timeout=120).stdout
    duration = re.compile(rb'\n  "duration": \d+,')
    assert len(duration.findall(first)) == len(duration.findall(second)) == 1
    assert duration.sub(b"", first) == duration.sub(b"", second)
    assert json.loads(first)["changeSummary"]["create"] > 50

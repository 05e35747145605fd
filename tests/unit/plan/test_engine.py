"""The offline plan engine: request shape, determinism, secrets and numbers, URNs as the engine makes them.

These tests pin what the engine relies on from the pulumi SDK's mock monitor. If an SDK upgrade
changes the ``RegisterResource`` request shape, they fail here, loudly, before a plan goes wrong.
"""

from __future__ import annotations

import json
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


def _step(plan: dict[str, Any], urn_suffix: str) -> dict[str, Any]:
    matches: list[dict[str, Any]] = [step for step in plan["steps"] if step["urn"].endswith(urn_suffix)]
    assert len(matches) == 1, [step["urn"] for step in plan["steps"]]
    return matches[0]


def test_plan_has_the_preview_json_shape(plan: dict[str, Any]) -> None:
    assert set(plan) == {"steps", "changeSummary"}
    assert plan["changeSummary"] == {"create": len(plan["steps"])}
    for step in plan["steps"]:
        assert step["op"] == "create"
        assert {"type", "inputs", "parent", "dependencies"} <= set(step["newState"])
        assert step["newState"]["urn"] == step["urn"]


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
    assert queue["inputs"]["kmsMasterKeyId"].startswith("arn:aws:kms:eu-west-1:123456789012:key/art-key-")


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


def test_plan_is_identical_across_runs(plan: dict[str, Any]) -> None:
    again = build_plan("prod", program=SAMPLE)
    assert dumps(again) == dumps(plan)


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
    assert dumps(threaded) == dumps(plan)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_the_cli_plan_is_byte_identical_without_a_network(repo: Path) -> None:
    """`unshare -rn` leaves the process no network at all: the plan must not need one."""
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not available here: {probe.stderr.decode().strip()}")
    command = ["unshare", "-rn", sys.executable, "-m", "pipelines.cli", "plan", "--stack", "prod", "--json"]
    first = subprocess.run(command, cwd=repo, capture_output=True, check=True, timeout=120).stdout
    second = subprocess.run(command, cwd=repo, capture_output=True, check=True, timeout=120).stdout
    assert first == second
    assert json.loads(first)["changeSummary"]["create"] > 50

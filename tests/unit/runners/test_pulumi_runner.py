"""The Automation API adapter, driven against a stand-in `pulumi` executable that records its calls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import BadInputError, ExitCode, LockedError
from pipelines.runners.pulumi_runner import PulumiStackRunner

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ENDPOINT = "urn:pulumi:prod::modelrail::modelrail:endpoint:ModelEndpoint"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo: Path) -> dict[str, Any]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(FIXTURES / "pulumi", bin_dir / "pulumi")
    log = tmp_path / "calls.jsonl"
    events = tmp_path / "events.json"
    outputs = tmp_path / "outputs.json"
    events.write_text(
        json.dumps(
            [
                {
                    "op": "update",
                    "urn": f"{ENDPOINT}$aws:sagemaker/endpoint:Endpoint::adult-income",
                    "type": "aws:sagemaker/endpoint:Endpoint",
                    "provider": "",
                    "diffs": ["endpointConfigName"],
                    "detailedDiff": {"endpointConfigName": {"diffKind": "update", "inputDiff": True}},
                },
                {
                    "op": "replace",
                    "urn": f"{ENDPOINT}${CONFIG}::adult-income",
                    "type": CONFIG,
                    "provider": "",
                    "diffs": ["productionVariants"],
                    "detailedDiff": {
                        "productionVariants[0].modelName": {"diffKind": "update-replace", "inputDiff": True}
                    },
                },
                {
                    "op": "same",
                    "urn": "urn:pulumi:prod::modelrail::aws:sns/topic:Topic::alerts",
                    "type": "aws:sns/topic:Topic",
                    "provider": "",
                },
            ]
        )
    )
    outputs.write_text(json.dumps({"adultIncomeEndpointName": "prod-adult-income"}))
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    monkeypatch.setenv("FAKE_PULUMI_EVENTS", str(events))
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", str(outputs))
    monkeypatch.setenv("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", "true")
    return {"log": log, "project": repo}


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line)["args"] for line in log.read_text().splitlines()]


def test_up_selects_the_stack_in_the_project_and_passes_the_message(fake_pulumi: dict[str, Any]) -> None:
    runner = PulumiStackRunner("prod", fake_pulumi["project"], organization="acme")
    outputs = runner.up("modelrail: promote adult-income abc123 by alice@example.com")
    assert outputs == {"adultIncomeEndpointName": "prod-adult-income"}
    calls = _calls(fake_pulumi["log"])
    assert ["stack", "select", "--stack", "acme/prod"] in calls
    (up,) = [call for call in calls if call[0] == "up"]
    assert up[up.index("--message") + 1] == "modelrail: promote adult-income abc123 by alice@example.com"
    assert "--yes" in up and "--skip-preview" in up
    assert up[up.index("--stack") + 1] == "acme/prod"
    cwd = {json.loads(line)["cwd"] for line in fake_pulumi["log"].read_text().splitlines()}
    assert cwd == {str(fake_pulumi["project"])}


def test_preview_builds_a_per_resource_diff_from_engine_events(fake_pulumi: dict[str, Any]) -> None:
    preview = PulumiStackRunner("prod", fake_pulumi["project"]).preview()
    ops = {change.type.rsplit(":", 1)[-1]: change for change in preview.changes}
    assert set(ops) == {"Endpoint", "EndpointConfiguration"}, "unchanged resources are left out"
    assert ops["Endpoint"].op == "update"
    assert ops["Endpoint"].paths == ("endpointConfigName",)
    assert ops["EndpointConfiguration"].op == "replace"
    assert ops["EndpointConfiguration"].paths == ("productionVariants[0].modelName",)
    assert [c.type for c in preview.replaces] == [CONFIG]
    assert preview.summary == {"update": 1, "replace": 1, "same": 1}


def test_refresh_and_outputs(fake_pulumi: dict[str, Any]) -> None:
    runner = PulumiStackRunner("dev", fake_pulumi["project"])
    runner.refresh()
    assert runner.outputs() == {"adultIncomeEndpointName": "prod-adult-income"}
    (refresh,) = [call for call in _calls(fake_pulumi["log"]) if call[0] == "refresh"]
    assert "--yes" in refresh


def test_concurrent_update_becomes_a_clear_lock_error(
    fake_pulumi: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PULUMI_SCENARIO", "locked")
    with pytest.raises(LockedError, match="stack prod is locked by another update") as caught:
        PulumiStackRunner("prod", fake_pulumi["project"]).up("modelrail: promote")
    assert caught.value.exit_code == ExitCode.LOCKED
    assert "409" in caught.value.details[0]


def test_missing_stack_is_bad_input(fake_pulumi: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PULUMI_SCENARIO", "missing-stack")
    with pytest.raises(BadInputError, match="does not exist"):
        PulumiStackRunner("prod", fake_pulumi["project"]).outputs()

"""``modelrail verify`` after a `pulumi up` it did not run: the endpoint must run what the outputs name.

A platform change (instance type, image) that SageMaker rolled back ends in the provider's
success; only DescribeEndpoint tells. The stand-in ``pulumi`` answers the stack outputs (which
name the new configuration), DescribeEndpoint is stubbed, and the command runs through the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from pipelines.cli import main
from pipelines.promotion import wiring
from pipelines.promotion.stackfile import round_trip_yaml
from tests.unit.runners.sagemaker_world import CONFIG_NEW, CONFIG_OLD, expect_describe, sagemaker_client

UNPINNED = "fraud-score"


class _Session:
    region_name = "eu-west-1"

    def __init__(self, sagemaker: Any) -> None:
        self.sagemaker = sagemaker

    def client(self, name: str, config: Any = None) -> Any:
        assert name == "sagemaker"
        return self.sagemaker


@pytest.fixture
def stubber(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stubber:
    """The dev stack (adult-income pinned, plus a service with no model yet) and a stubbed SageMaker."""
    stack_path = project / "stacks" / "Pulumi.dev.yaml"
    text = stack_path.read_text()
    yaml = round_trip_yaml(text)
    document = yaml.load(text)
    services = document["config"]["modelrail:services"]
    services[UNPINNED] = {"runtime": "sagemaker", "modelVersion": None}
    for name in [name for name, entry in services.items() if entry.get("runtime") == "kserve"]:
        del services[name]  # SageMaker endpoints only: a KServe service's status comes from its cluster
    with stack_path.open("w") as handle:
        yaml.dump(document, handle)
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(project))
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MODELRAIL_AWS", raising=False)
    sagemaker = sagemaker_client()
    monkeypatch.setattr(wiring, "_aws_session", lambda region: _Session(sagemaker))
    return Stubber(sagemaker)


@pytest.mark.parametrize("as_json", [False, True])
def test_an_endpoint_back_on_its_old_configuration_exits_5_naming_it_and_what_it_runs(
    stubber: Stubber, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    expect_describe(stubber, CONFIG_OLD, reason="Alarm modelrail-dev-adult-income-5xx-rate in ALARM")
    with stubber:
        code = main(["verify", "--stack", "dev", *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()

    assert code == 5
    assert "Traceback" not in out + err
    detail = f"dev-adult-income (adult-income): the endpoint is InService on {CONFIG_OLD}, not {CONFIG_NEW}"
    if as_json:
        error = json.loads(out)
        assert error["error"] == "RolledBackError" and error["exit_code"] == 5
        assert error["message"] == "dev-adult-income on dev does not run what the stack declares"
        (only,) = error["details"]
        assert only.startswith(detail) and "5xx-rate in ALARM" in only
    else:
        assert "dev-adult-income on dev does not run what the stack declares" in err
        assert detail in err
        assert f"no endpoint {UNPINNED}: no model pinned" in out, "a service with no model is no failure"


def test_endpoints_on_the_configuration_the_outputs_name_verify_and_the_unpinned_one_has_none(
    stubber: Stubber, capsys: pytest.CaptureFixture[str]
) -> None:
    expect_describe(stubber, CONFIG_NEW)
    with stubber:
        code = main(["verify", "--stack", "dev", "--json"])
    out, _ = capsys.readouterr()

    assert code == 0
    report = json.loads(out)
    assert report["stack"] == "dev" and report["verified"] is True
    rows = {row["service"]: row for row in report["services"]}
    assert rows["adult-income"]["verified"] is True
    assert rows["adult-income"]["expected"] == CONFIG_NEW
    assert rows["adult-income"]["state"]["configName"] == CONFIG_NEW
    assert rows[UNPINNED] == {
        "service": UNPINNED,
        "endpoint": f"dev-{UNPINNED}",
        "pinned": None,
        "expected": None,
        "state": None,
        "verified": None,
        "reason": "no model pinned (modelVersion: null): no endpoint",
    }

"""``modelrail service add``: a validated entry with safe defaults, comments kept, nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from infra.config import load_stack_file
from pipelines.cli import main

REPO = Path(__file__).resolve().parents[2]
VERSION = "ab" * 32


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's stack files; the infra program is the real one."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(REPO / "stacks", tmp_path / "stacks")
    (tmp_path / "infra").symlink_to(REPO / "infra")
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(tmp_path))
    return tmp_path


def _add(*args: str) -> int:
    return main(["service", "add", *args, "--model-version", VERSION])


def test_adding_a_service_writes_a_valid_entry_and_keeps_the_rest_of_the_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "stacks" / "Pulumi.staging.yaml"
    before = path.read_text(encoding="utf-8")
    assert _add("churn-score", "--stack", "staging", "--json") == 0
    after = path.read_text(encoding="utf-8")

    assert after.startswith(before)  # every existing line, comment and key order untouched
    added = after[len(before) :]
    assert added.splitlines()[0] == "    churn-score:"
    assert "      # Pinned by `modelrail promote`; never edit by hand." in added
    service = load_stack_file(path).service("churn-score")
    assert service.model_version == VERSION
    assert service.deployment.strategy == "canary"
    assert service.instance_count == 2

    report = json.loads(capsys.readouterr().out)
    added_types = {item["type"] for item in report["diff"]["added"]}
    assert {"aws:sagemaker/endpoint:Endpoint", "aws:cloudwatch/metricAlarm:MetricAlarm"} <= added_types
    assert report["diff"]["summary"]["replace"] == 0
    assert report["diff"]["summary"]["delete"] == 0


def test_flags_shape_the_entry(project: Path) -> None:
    assert (
        _add(
            "fraud-v2",
            "--stack",
            "prod",
            "--instances",
            "4",
            "--strategy",
            "linear",
            "--instance-type",
            "ml.c5.xlarge",
        )
        == 0
    )
    service = load_stack_file(project / "stacks" / "Pulumi.prod.yaml").service("fraud-v2")
    assert (service.instance_type, service.instance_count) == ("ml.c5.xlarge", 4)
    assert service.deployment.strategy == "linear"
    assert (service.autoscaling.min_instances, service.autoscaling.max_instances) == (4, 8)


@pytest.mark.parametrize(
    ("name", "stack", "extra", "expected"),
    [
        ("adult-income", "staging", [], "already exists"),
        ("Bad_Name", "staging", [], "invalid service name"),
        ("trailing-", "staging", [], "invalid service name"),
        ("risky", "prod", ["--strategy", "all_at_once"], "prod rolls out gradually"),
        ("tiny", "staging", ["--instances", "1"], "a canary needs at least 2 instances"),
    ],
)
def test_refusals_exit_1_and_write_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], name: str, stack: str, extra: list[str], expected: str
) -> None:
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    before = path.read_text(encoding="utf-8")
    assert _add(name, "--stack", stack, *extra) == 1
    assert path.read_text(encoding="utf-8") == before
    assert expected in capsys.readouterr().err
    assert not list(path.parent.glob(".*.tmp"))


def test_a_missing_stack_file_is_bad_input(project: Path) -> None:
    assert _add("svc", "--stack", "qa") == 2


def test_a_new_service_needs_no_model_yet(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --model-version the entry pins nothing: registry and training now, endpoint at the first promotion."""
    path = project / "stacks" / "Pulumi.prod.yaml"
    assert main(["service", "add", "churn-score", "--stack", "prod", "--json"]) == 0
    assert "      modelVersion: null" in path.read_text(encoding="utf-8")
    assert load_stack_file(path).service("churn-score").model_version is None
    report = json.loads(capsys.readouterr().out)
    added_types = {item["type"] for item in report["diff"]["added"]}
    assert "aws:sagemaker/modelPackageGroup:ModelPackageGroup" in added_types
    assert "aws:sagemaker/pipeline:Pipeline" in added_types
    assert "aws:sagemaker/endpoint:Endpoint" not in added_types
    assert main(["policy", "--stack", "prod"]) == 0, "an unpinned service breaks no policy rule"


def test_the_entry_is_the_schemas_own_dump_with_every_setting_explicit(project: Path) -> None:
    """One schema: the written entry reads back as the ``Service`` it was dumped from, and names
    each setting a reviewer should see, with the schema's defaults for those not chosen."""
    from infra.config import Guardrails, Service

    path = project / "stacks" / "Pulumi.staging.yaml"
    assert _add("churn-score", "--stack", "staging") == 0
    written = load_stack_file(path).service("churn-score")
    raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))["config"]["modelrail:services"][
        "churn-score"
    ]

    assert raw == written.model_dump(
        by_alias=True,
        exclude={
            "instance_count_floor": True,
            "canary_traffic_percent": True,
            "kserve": True,
            "deployment": {"linear_step_percent"},
        },
    )
    assert raw["guardrails"] == Guardrails().model_dump(by_alias=True)
    assert raw["deployment"]["canaryPercent"] == 50  # half of 2 instances
    assert (written.autoscaling.scale_in_cooldown_seconds, written.serving_threads) == (
        Service().autoscaling.scale_in_cooldown_seconds,
        Service().serving_threads,
    )
    assert "instanceCountFloor" not in raw and "canaryTrafficPercent" not in raw  # the controller's


def test_a_kserve_entry_writes_the_kserve_section_and_no_instance_type(project: Path) -> None:
    path = project / "stacks" / "Pulumi.local.yaml"
    assert main(["service", "add", "churn-score", "--stack", "local", "--runtime", "kserve"]) == 0
    service = load_stack_file(path).service("churn-score")
    assert service.runtime == "kserve"
    raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))["config"]["modelrail:services"][
        "churn-score"
    ]
    assert raw["kserve"] == {
        "namespace": None,
        "resources": {"cpu": "1", "memory": "2Gi", "cpuLimit": None, "memoryLimit": None},
        "scaleMetric": "concurrency",
        "scaleTarget": 10,
    }
    assert "instanceType" not in raw


def test_options_the_schema_refuses_are_reported_together_and_write_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "stacks" / "Pulumi.staging.yaml"
    before = path.read_text(encoding="utf-8")
    code = main(["service", "add", "big", "--stack", "staging", "--instances", "60", "--model-version", "v1"])
    assert code == 1
    assert path.read_text(encoding="utf-8") == before
    err = capsys.readouterr().err
    assert "model_version = 'v1'" in err
    assert "autoscaling.max_instances = 120: Input should be less than or equal to 100" in err

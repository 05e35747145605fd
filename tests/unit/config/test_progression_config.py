"""The declared progression and ``shadowVersion`` in the stack file: what parses, what is refused, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from infra.config import StackConfigError, json_schema, load_stack_file, parse_stack_text
from pipelines.cli import main

SVC = "config.modelrail:services.adult-income"
PRODUCTION, CANDIDATE = "a" * 64, "b" * 64


def _stack(repo: Path, stack: str) -> Any:
    return YAML(typ="rt").load((repo / "stacks" / f"Pulumi.{stack}.yaml").read_text())


def _text(document: Any) -> str:
    from io import StringIO

    out = StringIO()
    YAML(typ="rt").dump(document, out)
    return out.getvalue()


def _service(document: Any, name: str = "adult-income") -> Any:
    return document["config"]["modelrail:services"][name]


def _issues(repo: Path, stack: str, **entry: Any) -> list[str]:
    """The problems of ``stack`` with adult-income's entry updated by ``entry`` (``deployment`` merged)."""
    document = _stack(repo, stack)
    service = _service(document)
    deployment = entry.pop("deployment", None)
    service.update(entry)
    if deployment is not None:
        service.setdefault("deployment", {}).update(deployment)
    try:
        parse_stack_text(_text(document), Path(f"Pulumi.{stack}.yaml"))
    except StackConfigError as error:
        return [str(issue).removeprefix(f"Pulumi.{stack}.yaml: ") for issue in error.issues]
    return []


def test_a_yaml_list_is_the_progression(repo: Path) -> None:
    config = load_stack_file(repo / "stacks" / "Pulumi.local.yaml")
    deployment = config.services["adult-income"].deployment
    assert deployment.progression == ("shadow", "canary", "full")
    assert deployment.phases == ("shadow", "canary", "full") and deployment.shadowed
    assert config.services["diabetes"].deployment.phases == ("canary", "full")


def test_the_schema_publishes_the_progression_as_a_list_of_phases() -> None:
    schema = json_schema()["$defs"]["DeploymentPolicy"]["properties"]["progression"]
    (listed,) = [option for option in schema["anyOf"] if option.get("type") == "array"]
    assert listed["items"] == {"enum": ["shadow", "canary", "linear", "full"], "type": "string"}
    assert "[shadow, canary, full]" in schema["description"]
    assert "shadowVersion" in json_schema()["$defs"]["Service"]["properties"]


@pytest.mark.parametrize(
    ("progression", "strategy", "allowed"),
    [
        ([], "canary", "at least one phase, ending with full"),
        (["shadow", "canary"], "canary", "ends with full"),
        (["full", "canary"], "canary", "ends with full"),
        (["shadow", "shadow", "canary", "full"], "canary", "each phase at most once (shadow repeated"),
        (["canary", "shadow", "full"], "canary", "shadow comes first"),
        (["canary", "linear", "full"], "canary", "at most one traffic phase"),
        (["shadow", "linear", "full"], "canary", "the traffic phase is the deployment strategy's (canary)"),
        (["shadow", "full"], "canary", "without a traffic phase shifts all traffic at once"),
        (["nothing", "full"], "canary", "'shadow', 'canary', 'linear' or 'full'"),
    ],
)
def test_a_progression_out_of_order_is_refused_with_what_is_allowed(
    repo: Path, progression: list[str], strategy: str, allowed: str
) -> None:
    issues = _issues(repo, "local", deployment={"strategy": strategy, "progression": progression})
    path = f"{SVC}.deployment.progression"
    assert any(issue.startswith(path) and allowed in issue for issue in issues), issues


def test_a_text_for_the_progression_asks_for_a_list(repo: Path) -> None:
    (issue,) = _issues(repo, "local", deployment={"progression": "shadow, canary, full"})
    assert issue.startswith(f'{SVC}.deployment.progression = "shadow, canary, full": ')
    assert "a YAML list" in issue


@pytest.mark.parametrize(
    "deployment",
    [
        {"strategy": "all_at_once", "progression": ["shadow", "full"]},
        {"strategy": "all_at_once", "progression": ["full"]},
        {"strategy": "linear", "linearStepPercent": 25, "progression": ["shadow", "linear", "full"]},
        {"strategy": "canary", "progression": ["canary", "full"]},
        {"strategy": "canary", "progression": None},
    ],
)
def test_well_formed_progressions_pass(repo: Path, deployment: dict[str, Any]) -> None:
    assert _issues(repo, "local", deployment=deployment) == []


def test_every_progression_problem_is_reported_at_once(repo: Path) -> None:
    issues = _issues(repo, "local", deployment={"progression": ["canary", "shadow", "canary"]})
    wrong = [issue.split(": ", 1)[1] for issue in issues]
    assert len(wrong) == 3, issues
    assert any("each phase at most once (canary repeated" in w for w in wrong)
    assert any("ends with full" in w for w in wrong)
    assert any("shadow comes first" in w for w in wrong)


def test_the_shadow_version_belongs_to_a_shadow_phase_of_another_version(repo: Path) -> None:
    shadowed = {"modelVersion": PRODUCTION, "shadowVersion": CANDIDATE}
    assert _issues(repo, "local", **shadowed) == []

    (issue,) = _issues(repo, "local", **shadowed, deployment={"progression": None})
    assert issue.startswith(f'{SVC}.shadowVersion = "{CANDIDATE}": only during a shadow phase')

    (issue,) = _issues(repo, "local", modelVersion=PRODUCTION, shadowVersion=PRODUCTION)
    assert "a version other than modelVersion" in issue

    (issue,) = _issues(repo, "local", modelVersion=None, shadowVersion=CANDIDATE)
    assert issue.startswith(f"{SVC}.shadowVersion = ") and "needs modelVersion" in issue

    (issue,) = _issues(repo, "local", shadowVersion="v2")
    assert issue.startswith(f'{SVC}.shadowVersion = "v2": ') and "[0-9a-f]{64}" in issue


def test_kserve_refuses_a_shadow_phase_and_says_what_to_do_instead(repo: Path) -> None:
    """An InferenceService (v1beta1) splits traffic between revisions but mirrors none; its CRD has no
    such field (tests/fixtures/kserve), and shadow deployments are kserve/kserve#2978, still open."""
    document = _stack(repo, "dev")
    diabetes = _service(document, "diabetes")
    diabetes["deployment"].update(strategy="canary", progression=["shadow", "canary", "full"])
    diabetes["shadowVersion"] = CANDIDATE
    with pytest.raises(StackConfigError) as caught:
        parse_stack_text(_text(document), Path("Pulumi.dev.yaml"))
    issues = {issue.path: issue for issue in caught.value.issues if "KServe has no shadow" in issue.allowed}
    where = "config.modelrail:services.diabetes"
    assert set(issues) == {f"{where}.deployment.progression", f"{where}.shadowVersion"}
    phase = issues[f"{where}.deployment.progression"]
    assert phase.value == ["shadow", "canary", "full"]
    assert "KServe has no shadow" in phase.allowed and "kserve/kserve#2978" in phase.allowed
    assert "[canary, full]" in phase.allowed and "runtime: sagemaker" in phase.allowed
    assert "never on a kserve service" in issues[f"{where}.shadowVersion"].allowed


def test_the_kserve_crd_has_no_field_to_mirror_traffic(repo: Path) -> None:
    schema = (repo / "tests" / "fixtures" / "kserve" / "inferenceservice-v1beta1.schema.json").read_text()
    assert "canaryTrafficPercent" in schema
    assert "mirror" not in schema.lower() and "shadow" not in schema.lower()


def test_config_validate_reports_the_progression_in_json(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _stack(repo, "local")
    _service(document)["deployment"]["progression"] = ["canary", "shadow", "full"]
    bad = tmp_path / "Pulumi.local.yaml"
    bad.write_text(_text(document))
    assert main(["config", "validate", "--stack", "local", "--file", str(bad), "--json"]) == 1
    (issue,) = json.loads(capsys.readouterr().out)["issues"]
    assert issue["path"] == f"{SVC}.deployment.progression"
    assert issue["value"] == ["canary", "shadow", "full"]
    assert "shadow comes first" in issue["allowed"]

"""Gate policies validate like the stack config; reports have the contract's fields and a stable digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.contract.load import load_contract
from pipelines.contract.tasks import ALL_METRICS, Task
from pipelines.errors import BadInputError
from pipelines.gates.checks import Check
from pipelines.gates.policy import MetricRule, PolicyError, load_policy, stage_rules
from pipelines.gates.report import GateReport

REPO = Path(__file__).resolve().parents[3]
SHIPPED = [
    *(REPO / "pipelines" / "gates" / "policies" / f"{stage}.yaml" for stage in ("candidate", "production")),
    *(REPO / "pipelines" / "demo" / "policies" / f"{stage}.yaml" for stage in ("candidate", "production")),
]

CHECK_FIELDS = {"name", "column", "method", "statistic", "p_value", "threshold", "passed", "detail"}


@pytest.mark.parametrize("stage", ["candidate", "production"])
def test_the_shipped_policies_load(stage: str) -> None:
    policy = load_policy(stage=stage)
    assert policy.stage == stage
    assert policy.drift.numeric.wasserstein == 0.1 and policy.drift.categorical.jensenshannon == 0.1


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: f"{path.parent.parent.name}/{path.stem}")
def test_the_shipped_policies_hold_no_services_thresholds(path: Path) -> None:
    """What a model must score is the service's (its contract); a shipped policy names no
    metric and no sensitive column of adult-income, or of any service."""
    policy = load_policy(path, stage=path.stem)
    assert policy.model.metrics == {}
    assert policy.model.fairness.sensitive_columns is None
    text = path.read_text(encoding="utf-8")
    adult = load_contract("adult-income", REPO)
    for name, rule in adult.metric_rules(path.stem).items():
        assert f"{name}: {{min: {rule.min}" not in text and f"{name}: {{max: {rule.max}" not in text
    assert not any(column in text for column in adult.sensitive)


def test_a_policy_override_changes_only_the_fields_it_sets(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "stage: candidate\nmodel:\n  metrics:\n    accuracy: {maxRegression: 0.003}\n    brier: null\n"
        "    ece: {max: 0.02}\n",
        encoding="utf-8",
    )
    service = load_contract("adult-income", REPO).metric_rules("candidate")
    rules = stage_rules(load_policy(path), Task.binary, service)
    assert rules["accuracy"] == MetricRule(min=service["accuracy"].min, max_regression=0.003)
    assert "brier" not in rules and rules["ece"].max == 0.02
    assert {name: rule for name, rule in rules.items() if name not in ("accuracy", "ece")} == {
        name: rule for name, rule in service.items() if name not in ("accuracy", "brier", "ece")
    }
    # The shipped policy changes nothing: the service's rules apply as they are.
    assert stage_rules(load_policy(stage="candidate"), Task.binary, service) == service


def test_a_metric_no_task_has_is_refused_when_the_policy_is_read(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("stage: candidate\nmodel:\n  metrics:\n    auc: {min: 0.9}\n", encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    [issue] = refused.value.issues
    assert (issue.source, issue.path, issue.value) == (str(path), "model.metrics.auc", "auc")
    assert issue.allowed.endswith("allowed: " + ", ".join(ALL_METRICS))


def test_production_is_at_least_as_strict_as_candidate() -> None:
    candidate, production = load_policy(stage="candidate"), load_policy(stage="production")
    assert production.drift.max_drifted_share <= candidate.drift.max_drifted_share
    assert production.model.fairness.max_equal_opportunity_difference <= (
        candidate.model.fairness.max_equal_opportunity_difference
    )
    production_accuracy = production.model.fairness.max_accuracy_difference
    candidate_accuracy = candidate.model.fairness.max_accuracy_difference
    assert production_accuracy is not None and candidate_accuracy is not None
    assert production_accuracy <= candidate_accuracy


def test_every_problem_in_a_policy_is_reported_with_key_value_and_what_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("stage: canary\ndrift:\n  maxDriftedShare: 1.5\n  numerik: {}\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    details = caught.value.details
    assert len(details) == 3
    assert any(str(path) in d and "stage" in d and '"canary"' in d and "candidate" in d for d in details)
    assert any(
        "drift.maxDriftedShare" in d and "1.5" in d and "less than or equal to 1" in d for d in details
    )
    assert any("drift.numerik" in d and "allowed keys" in d and "numeric" in d for d in details)
    assert caught.value.exit_code == 2


def test_a_stage_without_gates_is_refused_naming_the_gated_stages(tmp_path: Path) -> None:
    """``archived`` is a stage a version can be in, but no gates lead there."""
    path = tmp_path / "policy.yaml"
    path.write_text("stage: archived\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    [detail] = caught.value.details
    assert '"archived"' in detail and "allowed: candidate, production" in detail


@pytest.mark.parametrize(
    ("line", "key", "shown"),
    [
        ("latency:\n  requests: true", "latency.requests", "true"),
        ('latency:\n  p99Ms: "2000"', "latency.p99Ms", '"2000"'),
        ("model:\n  fairness:\n    sensitiveColumns: [sex, 3]", "model.fairness.sensitiveColumns.1", "3"),
        ("repro:\n  rows: 1000.5", "repro.rows", "1000.5"),
    ],
)
def test_a_mistyped_threshold_is_refused_not_coerced(tmp_path: Path, line: str, key: str, shown: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"stage: candidate\n{line}\n", encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_policy(path=policy)
    assert [issue.path for issue in refused.value.issues] == [key]
    assert f"{key} = {shown}" in str(refused.value.issues[0])


def test_an_unreadable_policy_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="cannot be read"):
        load_policy(tmp_path / "absent.yaml")
    (tmp_path / "broken.yaml").write_text("stage: [", encoding="utf-8")
    with pytest.raises(BadInputError, match="not valid YAML"):
        load_policy(tmp_path / "broken.yaml")


def report(*checks: Check) -> GateReport:
    return GateReport(gate="drift", checks=checks, subject={"current": "c.parquet"}, policy_digest="sha256:x")


def test_a_check_serialises_to_exactly_the_contract_fields() -> None:
    check = Check("drift.psi", "age", "psi", float("inf"), None, 0.2, False, "empty bin")
    as_json = check.to_json()
    assert set(as_json) == CHECK_FIELDS
    assert as_json["statistic"] is None  # non-finite numbers never reach the JSON


def test_informational_checks_never_fail_a_report() -> None:
    info = Check("drift.ks", "age", "ks", 0.3, 1e-12, None, None, "shown, not decisive")
    assert report(info).passed
    assert not report(info, Check("drift.psi", "age", "psi", 0.5, None, 0.2, False, "shifted")).passed


def test_the_digest_is_stable_and_changes_with_any_number() -> None:
    a = Check("drift.psi", "age", "psi", 0.1, None, 0.2, True, "ok")
    b = Check("drift.psi", "age", "psi", 0.1000001, None, 0.2, True, "ok")
    assert report(a).digest() == report(a).digest()
    assert report(a).digest() != report(b).digest()
    assert report(a).digest().startswith("sha256:") and len(report(a).digest()) == 71

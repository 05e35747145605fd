"""``modelrail policy`` over real plans, and the CrossGuard adapter over the same rules."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from pipelines.cli import main
from pipelines.plan import build_plan
from policies.crossguard import policies, stack_of
from policies.rules import BUCKET_SSE, ENDPOINT_CONFIG, POLICY_PROPERTIES, evaluate, stack_from_plan


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return build_plan("prod")


def test_prod_has_no_violations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "--stack", "prod", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["violations"] == []
    assert all(rule["violations"] == 0 for rule in report["rules"])


def test_a_plan_without_bucket_encryption_is_caught(prod: dict[str, Any]) -> None:
    stripped = {**prod, "steps": [s for s in prod["steps"] if s["newState"]["type"] != BUCKET_SSE]}
    found = {(v.rule, v.urn.rsplit("::", 1)[1]) for v in evaluate(stack_from_plan(stripped))}
    assert found == {("s3-bucket-kms-encrypted", "artifacts"), ("s3-bucket-kms-encrypted", "artifacts-logs")}


def test_a_component_change_dropping_encryption_fails_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pulumi_aws as aws

    def no_encryption(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(aws.s3, "BucketServerSideEncryptionConfiguration", no_encryption)
    assert main(["policy", "--stack", "prod"]) == 1
    out = capsys.readouterr().out
    assert "s3-bucket-kms-encrypted" in out
    assert (
        "urn:pulumi:prod::modelrail::modelrail:artifacts:ArtifactStore$aws:s3/bucket:Bucket::artifacts" in out
    )
    assert "fix:" in out


def test_crossguard_reports_the_same_violations_with_urn_and_fix(prod: dict[str, Any]) -> None:
    """The CrossGuard policies see PolicyResource objects; feed them the plan's resources."""
    by_urn = {step["urn"]: step["newState"] for step in prod["steps"]}

    def policy_resource(state: dict[str, Any]) -> SimpleNamespace:
        props = state["inputs"]
        if state["type"] == "aws:ecr/repository:Repository":
            props = {**props, "imageTagMutability": "MUTABLE"}
        return SimpleNamespace(
            urn=state["urn"],
            resource_type=state["type"],
            props=props,
            dependencies=[SimpleNamespace(urn=urn) for urn in state["dependencies"] if urn in by_urn],
        )

    args = SimpleNamespace(resources=[policy_resource(state) for state in by_urn.values()])
    assert len(stack_of(args).resources) == len(by_urn)  # type: ignore[arg-type]
    reported: dict[str, list[tuple[str, str | None]]] = {}
    for policy in policies():
        policy.validate(  # type: ignore[attr-defined]
            args,
            lambda message, urn=None, name=policy.name: reported.setdefault(name, []).append((message, urn)),
        )
    assert set(reported) == {"ecr-tags-immutable"}
    ((message, urn),) = reported["ecr-tags-immutable"]
    assert urn is not None and urn.endswith("::artifacts-images")
    assert "Fix: set image_tag_mutability='IMMUTABLE'" in message


@pytest.fixture(scope="module")
def first_preview() -> dict[str, Any]:
    """Prod's plan as a new stack's first preview: what AWS assigns is unknown."""
    return build_plan("prod", new_stack=True)


def test_a_first_preview_leaves_keys_unknown_and_builds_every_policy_from_names(
    first_preview: dict[str, Any],
) -> None:
    states = [step["newState"] for step in first_preview["steps"]]
    configs = [state for state in states if state["type"] == ENDPOINT_CONFIG]
    assert configs and all(state["inputs"]["kmsKeyArn"] == "[unknown]" for state in configs)
    documents = [
        (state["urn"], state["inputs"].get(prop))
        for state in states
        for prop in POLICY_PROPERTIES.get(state["type"], ())
    ]
    assert len(documents) > 10
    assert [urn for urn, document in documents if "[unknown]" in json.dumps(document)] == []


def test_every_rule_decides_on_a_first_preview(first_preview: dict[str, Any]) -> None:
    assert evaluate(stack_from_plan(first_preview)) == []


def test_crossguard_decides_on_a_first_preview_as_the_engine_sends_it(first_preview: dict[str, Any]) -> None:
    """Unknowns go in as the engine's sentinels behind pulumi-policy's raising proxy."""
    from pulumi_policy.deserialize import deserialize_properties
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    def sent(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: sent(item) for key, item in value.items()}
        if isinstance(value, list):
            return [sent(item) for item in value]
        return UNKNOWN_STRING_VALUE if value == "[unknown]" else value

    by_urn = {
        step["urn"]: SimpleNamespace(
            urn=step["urn"],
            resource_type=step["newState"]["type"],
            props=unknown_checking_proxy(deserialize_properties(sent(step["newState"]["inputs"]))),
            dependencies=[],
        )
        for step in first_preview["steps"]
    }
    for step in first_preview["steps"]:
        by_urn[step["urn"]].dependencies = [
            by_urn[u] for u in step["newState"]["dependencies"] if u in by_urn
        ]
    args = SimpleNamespace(resources=list(by_urn.values()))
    reported: list[tuple[str, str | None]] = []
    for policy in policies():
        policy.validate(args, lambda message, urn=None: reported.append((message, urn)))  # type: ignore[attr-defined]
    assert reported == []

"""Every InferenceService modelrail plans is one KServe's own CRD accepts.

The schema is the ``openAPIV3Schema`` of KServe's ``InferenceService`` CRD (v1beta1), vendored in
``tests/fixtures/kserve`` and checked against ``../shared/schemas`` where that exists; unknown
fields are refused where Kubernetes would prune them (``tests.kserve_schema.strict``).

Regenerate the vendored copy after a KServe upgrade: ``python -m tests.unit.components.test_kserve_crd``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.kserve import KSERVE_API_VERSION, InferenceServiceArgs, predictor_spec
from infra.config import STACK_NAMES, Service
from pipelines.plan import build_plan
from tests import kserve_schema
from tests.kserve_schema import FIXTURE, strict

REPO = Path(__file__).resolve().parents[3]
SHARED_CRD = REPO.parent / "shared" / "schemas" / "kserve" / "serving.kserve.io_inferenceservices.yaml"
ISVC_TYPE = f"kubernetes:{KSERVE_API_VERSION}:InferenceService"
VERSION = "f" * 64


def extract_schema(crd_text: str) -> dict[str, Any]:
    """The v1beta1 ``openAPIV3Schema`` of the InferenceService CRD, unchanged."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRD is 2 MB of YAML
    crd = yaml.load(crd_text, Loader=loader)  # a safe loader either way
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def render_schema(schema: dict[str, Any]) -> str:
    """The vendored file's text: sorted keys, one-space indent (diffs stay line by line)."""
    return json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return kserve_schema.validator()


def _errors(validator: jsonschema.Draft7Validator, document: dict[str, Any]) -> list[str]:
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    )


def _document(**service: Any) -> dict[str, Any]:
    """An InferenceService as the component declares it, with plain values."""
    args = InferenceServiceArgs.model_validate(
        {
            "environment": "dev",
            "name": "diabetes",
            "service": Service.model_validate({"runtime": "kserve", "modelVersion": VERSION, **service}),
            "namespace": "modelrail",
            "region": "eu-west-1",
            "account_id": "123456789012",
            "oidc_issuer": "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC",
            "bucket_name": "bucket",
            "bucket_arn": "arn:aws:s3:::bucket",
            "kms_key_alias": "alias/key",
            "repository_url": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/modelrail-dev",
        }
    )
    predictor = predictor_spec(
        args, image="registry/modelrail-dev:latest", uri="s3://bucket/models/diabetes/x", service_account="sa"
    )
    return {
        "apiVersion": KSERVE_API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": "dev-diabetes", "namespace": "modelrail"},
        "spec": {"predictor": predictor},
    }


def test_the_vendored_schema_is_the_shared_crd_unchanged() -> None:
    if not SHARED_CRD.is_file():
        pytest.skip(f"{SHARED_CRD} is absent: nothing to compare the vendored copy with")
    fresh = extract_schema(SHARED_CRD.read_text(encoding="utf-8"))
    assert FIXTURE.read_text(encoding="utf-8") == render_schema(fresh)


def test_the_components_document_validates_with_and_without_a_canary(
    validator: jsonschema.Draft7Validator,
) -> None:
    assert _errors(validator, _document()) == []
    assert _errors(validator, _document(canaryTrafficPercent=10)) == []


def test_an_unknown_field_fails_where_kubernetes_would_prune_it(
    validator: jsonschema.Draft7Validator,
) -> None:
    document = _document()
    document["spec"]["predictor"]["canaryTrafficPercnt"] = 10
    document["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/ping"
    assert _errors(validator, document) == [
        "spec/predictor/containers/0/readinessProbe/httpGet: Additional properties are not allowed "
        "('pathh' was unexpected)",
        "spec/predictor: Additional properties are not allowed ('canaryTrafficPercnt' was unexpected)",
    ]


def test_a_wrong_type_fails(validator: jsonschema.Draft7Validator) -> None:
    document = _document()
    document["spec"]["predictor"]["minReplicas"] = "1"
    document["spec"]["predictor"]["scaleMetric"] = "latency"
    assert _errors(validator, document) == [
        "spec/predictor/minReplicas: '1' is not of type 'integer'",
        "spec/predictor/scaleMetric: 'latency' is not one of ['cpu', 'memory', 'concurrency', 'rps']",
    ]


def test_a_missing_required_member_fails(validator: jsonschema.Draft7Validator) -> None:
    document = _document()
    del document["spec"]["predictor"]["containers"][0]["name"]
    assert _errors(validator, document) == ["spec/predictor/containers/0: 'name' is a required property"]
    assert _errors(validator, {**document, "spec": {}}) == ["spec: 'predictor' is a required property"]


def test_the_strict_schema_keeps_what_kubernetes_keeps() -> None:
    """Free-form maps (labels, resource quantities) and preserved objects still take any key."""
    schema = strict(
        {
            "type": "object",
            "properties": {
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {
                    "type": "object",
                    "properties": {"a": {}},
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "closed": {"type": "object", "properties": {"properties": {"type": "string"}}},
            },
        }
    )
    validator = jsonschema.Draft7Validator(schema)
    assert validator.is_valid({"labels": {"any": "x"}, "free": {"b": 1}, "closed": {"properties": "x"}})
    assert not validator.is_valid({"closed": {"other": "x"}})
    assert not validator.is_valid({"unknown": 1})


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_every_planned_inference_service_validates_against_the_crd(
    stack: str, validator: jsonschema.Draft7Validator
) -> None:
    plan = build_plan(stack, project_dir=REPO)
    services = [step["newState"] for step in plan["steps"] if step["newState"]["type"] == ISVC_TYPE]
    if stack == "dev":
        assert [state["inputs"]["metadata"]["name"] for state in services] == ["dev-diabetes"]
    for state in services:
        inputs = state["inputs"]
        document = {key: inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}
        assert _errors(validator, document) == [], state["urn"]


if __name__ == "__main__":
    FIXTURE.write_text(
        render_schema(extract_schema(SHARED_CRD.read_text(encoding="utf-8"))), encoding="utf-8"
    )

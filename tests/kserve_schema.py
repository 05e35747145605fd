"""KServe's InferenceService schema for tests: the vendored CRD schema, unknown fields refused.

``tests/fixtures/kserve/inferenceservice-v1beta1.schema.json`` is the v1beta1 ``openAPIV3Schema``
of KServe's own CRD, extracted unchanged (``tests/unit/components/test_kserve_crd.py`` keeps it
equal to ``../shared/schemas`` where that exists), so the checks run on a clean clone too.
jsonschema accepts unknown fields where the API server would silently prune them (a misspelt
``canaryTrafficPercnt`` would vanish and the canary never happen), so ``strict`` forbids them:
``additionalProperties: false`` on every object schema that lists its ``properties`` and neither
keeps unknown fields (``x-kubernetes-preserve-unknown-fields``) nor types them
(``additionalProperties``).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "kserve" / "inferenceservice-v1beta1.schema.json"


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` refusing unknown fields wherever Kubernetes would prune them."""
    result = copy.deepcopy(schema)
    _forbid_unknown(result)
    return result


def _forbid_unknown(node: dict[str, Any]) -> None:
    """Walk the schema keywords (not property names, one of which could be ``properties``)."""
    properties = node.get("properties")
    if isinstance(properties, dict):
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for child in properties.values():
            _forbid_unknown(child)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            _forbid_unknown(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for child in node.get(key, []):
            _forbid_unknown(child)


@cache
def vendored_schema() -> dict[str, Any]:
    """The vendored schema as it is (parsed once per process: it is 1.6 MB)."""
    schema: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return schema


def validator(*path: str) -> jsonschema.Draft7Validator:
    """A strict validator of the whole InferenceService, or of the part at ``path``
    (e.g. ``"properties", "status"``)."""
    schema = vendored_schema()
    for key in path:
        schema = schema[key]
    tightened = strict(schema)
    jsonschema.Draft7Validator.check_schema(tightened)
    return jsonschema.Draft7Validator(tightened)


def errors(check: jsonschema.Draft7Validator, document: Any) -> list[str]:
    """Every problem, with where it is."""
    return [f"{list(error.absolute_path)}: {error.message}" for error in check.iter_errors(document)]

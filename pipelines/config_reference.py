"""Render the stack config's JSON Schema as the README's Markdown reference.

The README embeds this output between markers, and a test fails when the two drift apart,
so the reference can never describe a schema that no longer exists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from infra.config import FLEET_START_SECONDS, PROVIDER_ENDPOINT_WAIT_SECONDS, json_schema

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"

_SECTIONS = (
    ("modelrail:platform", "Platform"),
    ("modelrail:platform.retentionDays", "RetentionDays"),
    ("modelrail:platform.alerts", "Alerts"),
    ("modelrail:services.<name>", "Service"),
    ("modelrail:services.<name>.deployment", "DeploymentPolicy"),
    ("modelrail:services.<name>.deployment.shadow", "ShadowPhase"),
    ("modelrail:services.<name>.deployment.analysis", "Analysis"),
    ("modelrail:services.<name>.guardrails", "Guardrails"),
    ("modelrail:services.<name>.autoscaling", "Autoscaling"),
)


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "enum" in prop:
        return " \\| ".join(f"`{value}`" for value in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        return " or ".join(_type(option) for option in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object":
        return "map of string"
    return str(kind)


def _bounds(prop: dict[str, Any]) -> str:
    parts = []
    for option in [prop, *prop.get("anyOf", []), prop.get("items", {})]:
        for key, sign in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
            ("pattern", "matches"),
        ):
            if key in option:
                parts.append(f"{sign} `{option[key]}`".replace("|", "\\|"))
    return ", ".join(parts)


def render_markdown() -> str:
    """The config reference: one table per section, with type, default, bounds and description."""
    defs = json_schema()["$defs"]
    lines = [
        START,
        "",
        "Keys are camelCase in the stack file; unknown keys are errors. Cross-field rules: a canary "
        "needs at least 2 instances and at most 50% of capacity; linear steps shift 10 to 50%; bake is "
        "0 to 3600 s; a rollout's waits (every bake, then the termination wait; a canary bakes twice, a "
        f"linear rollout once per step) leave {FLEET_START_SECONDS} s for the new fleet to start within "
        f"the {PROVIDER_ENDPOINT_WAIT_SECONDS} s the "
        "provider waits for an endpoint update, and `maxExecutionSeconds` exceeds them; service names "
        "are DNS-safe and unique; prod never rolls out `all_at_once`; a `progression` ends with `full`, "
        "starts with `shadow` if it has one, repeats no phase and has at most one traffic phase, the "
        "strategy's (none: `all_at_once`); a shadow phase and `shadowVersion` need `runtime: sagemaker` "
        "(KServe cannot mirror traffic), and `shadowVersion` differs from `modelVersion`; "
        "`instanceCount` lies within the autoscaling bounds; `platform.environment` matches the "
        "stack's name and `aws:region` equals `platform.region`. `modelrail:alertWebhookUrl` is an "
        "optional `https://` URL stored as a Pulumi secret.",
        "",
    ]
    for heading, name in _SECTIONS:
        model = defs[name]
        lines += [f"#### `{heading}`", ""]
        if model.get("description"):
            lines += [" ".join(str(model["description"]).split()).replace("``", "`"), ""]
        lines += ["| key | type | default | bounds | description |", "| --- | --- | --- | --- | --- |"]
        required = set(model.get("required", []))
        for key, prop in model["properties"].items():
            default = "required" if key in required else f"`{json.dumps(prop.get('default'))}`"
            description = " ".join(str(prop.get("description", "")).split()).replace("``", "`")
            lines.append(f"| `{key}` | {_type(prop)} | {default} | {_bounds(prop)} | {description} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def update_readme(path: Path) -> bool:
    """Replace the reference between the README's markers; return whether anything changed."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(START), text.index(END) + len(END)
    updated = text[:start] + render_markdown() + text[end:]
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":
    update_readme(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"))

"""What every modelrail component shares: validated args, tags and deterministic JSON.

Each component validates its whole ``Args`` model before it creates a single child resource,
so a bad value fails ``pulumi preview`` with one message listing every problem (like
pulumi-eks and the CDK), instead of a half-registered component and a provider error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import pulumi
from pydantic import BaseModel, ConfigDict, ValidationError

OutputStr = str | pulumi.Output[str]
"""A string known now or produced by another resource (bucket names, ARNs, image URIs)."""

MANAGED_BY = "modelrail"

_A = TypeVar("_A", bound="ComponentArgs")


class ComponentArgs(BaseModel):
    """Base of every component's arguments: frozen, no unknown keys, outputs allowed as values."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    def problems(self) -> list[str]:
        """Rules that span several fields; each entry names the value and the fix."""
        return []


class ComponentArgsError(ValueError):
    """Every problem in one component's arguments, raised before any child resource exists."""

    def __init__(self, component: str, problems: list[str]) -> None:
        self.component = component
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{component}: {len(problems)} invalid argument(s)\n{lines}")


def validate_args(component: str, model: type[_A], values: _A | Mapping[str, Any]) -> _A:
    """Validate ``values`` as ``model``; on failure raise one ``ComponentArgsError`` naming each value.

    Cross-field rules live in each model's ``problems()`` so they are reported together with the
    field errors rather than one at a time.
    """
    try:
        args = values if isinstance(values, model) else model.model_validate(values)
    except ValidationError as error:
        raise ComponentArgsError(component, _describe(error)) from None
    problems = args.problems()
    if problems:
        raise ComponentArgsError(component, problems)
    return args


def _describe(error: ValidationError) -> list[str]:
    """One line per bad field; union branches (``str`` or ``Output``) are folded into one."""
    seen: dict[str, str] = {}
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"] if not _is_union_tag(part))
        if path in seen:
            continue
        value = "missing" if item["type"] == "missing" else repr(item.get("input"))
        message = str(item["msg"])
        seen[path] = f"{path} = {value}: {message[0].lower()}{message[1:]}"
    return list(seen.values())


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        part in {"str", "int", "float", "bool"} or part.startswith("is-instance")
    )


def standard_tags(environment: str, service: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags on every taggable resource: the platform's extras, then the three modelrail keys."""
    return {**(extra or {}), "service": service, "environment": environment, "managed-by": MANAGED_BY}


def render_json(document: Any) -> str:
    """Deterministic JSON for anything rendered into an input: sorted keys, no whitespace noise."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def child(parent: pulumi.Resource, **options: Any) -> pulumi.ResourceOptions:
    """Options for a child resource: parented to its component, plus any extra options."""
    return pulumi.ResourceOptions(parent=parent, **options)


def sagemaker_role(
    name: str,
    parent: pulumi.Resource,
    *,
    description: str,
    account_id: str | pulumi.Output[str],
    tags: Mapping[str, str],
) -> Any:
    """An IAM role SageMaker may assume in this account; each component attaches its own least-privilege policy."""
    import pulumi_aws as aws

    from components import iam

    return aws.iam.Role(
        name,
        description=description,
        assume_role_policy=pulumi.Output.from_input(account_id).apply(
            lambda account: render_json(iam.assume_role_policy("sagemaker.amazonaws.com", account))
        ),
        tags=dict(tags),
        opts=child(parent),
    )

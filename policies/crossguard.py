"""Adapt ``policies.rules`` to CrossGuard: one stack validation policy per rule.

Stack validations see every resource with its dependencies, which the cross-resource rules
need (a bucket and the separate resources holding its encryption, versioning and policy).
CrossGuard passes properties under the engine's camelCase names, as the offline plan does.

At preview CrossGuard hands over unknown values as sentinel strings inside a proxy that raises
``UnknownValueError`` when one is read; a policy that lets it escape is reported as an advisory
("can't run policy … during preview") and enforces nothing. ``stack_of`` therefore copies the
properties out of the proxy, turning every unknown into ``rules.UNKNOWN``, so each rule decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

from policies.rules import RULES, UNKNOWN, Resource, Rule, Stack

SENTINELS = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)
"""How the engine marks a value it does not know yet, one string per kind of value."""


def known_or_unknown(value: Any) -> Any:
    """``value`` as plain dicts and lists, every unknown (proxied or a bare sentinel) as ``UNKNOWN``."""
    if isinstance(value, str):
        return UNKNOWN if value in SENTINELS else value
    if isinstance(value, Mapping):
        return {key: _read(value, key) for key in value}
    if isinstance(value, Sequence):
        return [_read(value, index) for index in range(len(value))]
    return value


def _read(container: Any, key: Any) -> Any:
    try:
        item = container[key]
    except UnknownValueError:
        return UNKNOWN
    return known_or_unknown(item)


def stack_of(args: StackValidationArgs) -> Stack:
    """The stack CrossGuard is validating, as the rules see it."""
    return Stack(
        tuple(
            Resource(
                urn=resource.urn,
                type=resource.resource_type,
                props=known_or_unknown(resource.props),
                dependencies=tuple(dependency.urn for dependency in resource.dependencies),
            )
            for resource in args.resources
        )
    )


def stack_policy(rule: Rule) -> StackValidationPolicy:
    """One rule as a CrossGuard policy; each violation names the fix."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for violation in rule.evaluate(stack_of(args)):
            report_violation(f"{violation.message}. Fix: {violation.fix}", violation.urn)

    level = EnforcementLevel.MANDATORY if rule.enforcement == "mandatory" else EnforcementLevel.ADVISORY
    return StackValidationPolicy(
        name=rule.name, description=rule.description, validate=validate, enforcement_level=level
    )


def policies() -> list[Policy]:
    """Every rule of the pack, in the order ``policies.rules`` declares them."""
    return [stack_policy(rule) for rule in RULES]

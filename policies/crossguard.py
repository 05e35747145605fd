"""Adapt ``policies.rules`` to CrossGuard: one stack validation policy per rule.

Stack validations see every resource with its dependencies, which the cross-resource rules
need (a bucket and the separate resources holding its encryption, versioning and policy).
CrossGuard passes properties under the engine's camelCase names, as the offline plan does.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.rules import RULES, Resource, Rule, Stack


def stack_of(args: StackValidationArgs) -> Stack:
    """The stack CrossGuard is validating, as the rules see it."""
    return Stack(
        tuple(
            Resource(
                urn=resource.urn,
                type=resource.resource_type,
                props=resource.props,
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

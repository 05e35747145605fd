"""Compare two offline plans: what is added, removed or changed, and what would be replaced.

Replacement follows the provider's force-new rules for the resources where a surprise
replacement hurts: an endpoint configuration is replaced on any change (so rollbacks need the
old one kept), an endpoint is replaced when its name or its rollback-alarm list changes, and an
alarm when its name changes. A step's own ``replaceOnChanges`` is honoured too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

DiffKind = Literal["add", "delete", "update"]

ANY_INPUT = "*"

REPLACEMENT_RULES: dict[str, tuple[str, ...]] = {
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (ANY_INPUT,),
    "aws:sagemaker/model:Model": (ANY_INPUT,),
    "aws:sagemaker/endpoint:Endpoint": ("name", "deploymentConfig.autoRollbackConfiguration"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name",),
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix"),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ("modelPackageGroupName",),
    "aws:sagemaker/pipeline:Pipeline": ("pipelineName",),
    "aws:kms/key:Key": ("keySpec", "keyUsage", "customerMasterKeySpec"),
    "aws:ecr/repository:Repository": ("name", "encryptionConfigurations"),
    "aws:sqs/queue:Queue": ("name", "fifoQueue"),
    "aws:sns/topic:Topic": ("name", "fifoTopic"),
    "aws:iam/role:Role": ("name",),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName",),
}
"""Input paths that force replacement, per resource type (prefix match on the property path)."""

NEVER_FORCE_NEW = ("tags", "tagsAll")
"""Tags are updated in place even on resources that are otherwise replaced on any change."""


@dataclass(frozen=True)
class PropertyChange:
    """One input that differs: its path, the old and the new value."""

    path: str
    old: Any
    new: Any
    forces_replacement: bool
    kind: DiffKind = "update"
    """``add`` (absent before), ``delete`` (absent now) or ``update``."""

    @property
    def diff_kind(self) -> str:
        """The engine's ``PropertyDiff.kind``: the kind, with ``-replace`` when it forces replacement."""
        return f"{self.kind}-replace" if self.forces_replacement else self.kind

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "old": self.old,
            "new": self.new,
            "forcesReplacement": self.forces_replacement,
        }


@dataclass(frozen=True)
class ResourceChange:
    """A resource present in both plans whose inputs differ."""

    urn: str
    type: str
    properties: tuple[PropertyChange, ...]

    @property
    def replaces(self) -> bool:
        return any(change.forces_replacement for change in self.properties)

    def to_json(self) -> dict[str, Any]:
        """The change; ``detailedDiff`` has the shape and names of ``pulumi preview --json``'s."""
        return {
            "urn": self.urn,
            "type": self.type,
            "op": "replace" if self.replaces else "update",
            "properties": [change.to_json() for change in self.properties],
            "detailedDiff": {
                change.path: {"kind": change.diff_kind, "inputDiff": True} for change in self.properties
            },
        }


@dataclass(frozen=True)
class PlanDiff:
    """The difference between an old and a new plan."""

    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()
    changed: tuple[ResourceChange, ...] = field(default_factory=tuple)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    @property
    def replaced(self) -> tuple[ResourceChange, ...]:
        return tuple(change for change in self.changed if change.replaces)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [{"urn": urn, "type": type_} for urn, type_ in self.added],
            "removed": [{"urn": urn, "type": type_} for urn, type_ in self.removed],
            "changed": [change.to_json() for change in self.changed],
            "summary": {
                "create": len(self.added),
                "delete": len(self.removed),
                "update": len(self.changed) - len(self.replaced),
                "replace": len(self.replaced),
            },
        }


def diff_plans(old: dict[str, Any], new: dict[str, Any]) -> PlanDiff:
    """Compare two plans in the ``pulumi preview --json`` shape, resource by resource."""
    old_steps = _by_urn(old)
    new_steps = _by_urn(new)
    added = tuple((urn, new_steps[urn]["type"]) for urn in sorted(new_steps.keys() - old_steps.keys()))
    removed = tuple((urn, old_steps[urn]["type"]) for urn in sorted(old_steps.keys() - new_steps.keys()))
    changed = []
    for urn in sorted(old_steps.keys() & new_steps.keys()):
        before, after = old_steps[urn], new_steps[urn]
        rules = REPLACEMENT_RULES.get(after["type"], ()) + tuple(after.get("replaceOnChanges", ()))
        properties = tuple(
            PropertyChange(path, old_value, new_value, _forces_replacement(path, rules), kind)
            for path, old_value, new_value, kind in _differences(
                before.get("inputs", {}), after.get("inputs", {})
            )
        )
        if properties:
            changed.append(ResourceChange(urn, after["type"], properties))
    return PlanDiff(added=added, removed=removed, changed=tuple(changed))


def _by_urn(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    try:
        return {step["urn"]: step["newState"] for step in plan["steps"]}
    except (KeyError, TypeError) as error:
        raise ValueError("not a plan: expected {'steps': [{'urn': …, 'newState': {…}}]}") from error


def _forces_replacement(path: str, rules: tuple[str, ...]) -> bool:
    top = path.split(".", 1)[0].split("[", 1)[0]
    if top in NEVER_FORCE_NEW:
        return False
    return any(rule in {ANY_INPUT, path} or path.startswith((rule + ".", rule + "[")) for rule in rules)


_MISSING = object()


def _differences(old: Any, new: Any, path: str = "") -> Iterator[tuple[str, Any, Any, DiffKind]]:
    """Leaf-level differences between two JSON values, as (property path, old, new, kind)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            child = f"{path}.{key}" if path else key
            yield from _differences(old.get(key, _MISSING), new.get(key, _MISSING), child)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (old_item, new_item) in enumerate(zip(old, new, strict=True)):
            yield from _differences(old_item, new_item, f"{path}[{index}]")
    elif old is _MISSING:
        yield path, None, new, "add"
    elif new is _MISSING:
        yield path, old, None, "delete"
    elif old != new:
        yield path, old, new, "update"

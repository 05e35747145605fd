"""The one way the controller records what happened: the audit log, lineage and a notification.

Every event (a gate verdict, an approval, a promotion's or rollback's outcome, an emitted patch)
goes through ``EventRecorder.record``: the hash-chained audit entry first (the changelog and
``modelrail status`` are views of it, ``pipelines.promotion.records``), then the lineage event,
then the notification. An event that carries a journal id is recorded once per journal: a resume
after a crash between the entry and lineage completes the record without a second entry, and
without a second notification.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.promotion.audit import AuditLog
from pipelines.promotion.audit_copy import catch_up
from pipelines.promotion.ports import LineageSink


@dataclass(frozen=True)
class Event:
    """One thing that happened to a version on a stack, as every record of it names it."""

    action: str
    """The audit action: ``gates:passed``, ``approve``, ``promote:promoted``, ``rollback:failed``…"""
    actor: str
    service: str
    version: str
    audit: Mapping[str, Any] = field(default_factory=dict)
    """Fields of the audit entry beyond action, actor, service, stack and version."""
    lineage: Mapping[str, Any] | None = None
    """The lineage payload; None: the audit fields (and the journal id, if any)."""
    journal: str = ""
    """The journal of the rollout it ends; recorded once per journal."""


class Notifier(Protocol):
    """Where people hear about outcomes (the alerts topic); best effort, after the record."""

    def notify(self, stack: str, event: Event) -> None: ...


class Silent:
    """No notification channel (the embedded default has no subscribers)."""

    def notify(self, stack: str, event: Event) -> None:
        """Say nothing: the audit log and lineage already hold the event."""


@dataclass
class EventRecorder:
    """Records events of one stack: audit, then lineage, then the notification."""

    stack: str
    audit: AuditLog
    lineage: LineageSink
    notifier: Notifier = field(default_factory=Silent)

    def record(self, event: Event) -> None:
        entry = {**event.audit, **({"journal": event.journal} if event.journal else {})}
        recorded = bool(event.journal) and any(
            e.get("journal") == event.journal for e in self.audit.entries()
        )
        if recorded:
            catch_up(self.audit)  # the entry is there already; its bucket copy may lag behind it
        else:
            self.audit.append(
                event.action,
                actor=event.actor,
                service=event.service,
                stack=self.stack,
                version=event.version,
                **entry,
            )
        payload = dict(event.lineage) if event.lineage is not None else dict(event.audit)
        if event.journal:
            payload["journal"] = event.journal
        self.lineage.record(
            event.action,
            service=event.service,
            version=event.version,
            stack=self.stack,
            actor=event.actor,
            payload=payload,
        )
        if not recorded:  # a resume completing the record says nothing twice
            self.notifier.notify(self.stack, event)

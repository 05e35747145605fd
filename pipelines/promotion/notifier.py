"""``SnsNotifier``: rollout outcomes published to the environment's alerts topic.

The alarms publish there too (``components.monitoring.Alerts``), so the people subscribed hear
of a canary rolled back or a promotion that did not hold from the same place. Publishing is
best effort and comes after the audit entry and lineage: a topic that cannot be reached never
changes an outcome, and is said on the progress stream instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from infra.naming import alerts_topic_name, topic_arn
from pipelines.promotion.events import Event

NOTIFIED = ("promote:", "rollback:")
"""Rollout outcomes are published; gate verdicts and approvals stay in the audit log."""
SUBJECT_LIMIT = 100
"""SNS refuses a subject longer than 100 characters."""


class SnsNotifier:
    """Publishes each rollout outcome of one stack to its alerts topic."""

    def __init__(
        self,
        sns: Callable[[], Any],
        *,
        region: str,
        account: Callable[[], str],
        environment: str,
        progress: Any,
    ) -> None:
        self.sns = sns
        """The SNS client, made on the first notification (most controllers never send one)."""
        self.region, self.account, self.environment = region, account, environment
        self.progress = progress

    def notify(self, stack: str, event: Event) -> None:
        if not event.action.startswith(NOTIFIED):
            return
        subject = f"modelrail {stack}: {event.action} {event.service} {event.version[:12]}"[:SUBJECT_LIMIT]
        body = {"stack": stack, "action": event.action, "service": event.service, "version": event.version}
        body |= {"actor": event.actor, "journal": event.journal, **dict(event.audit)}
        try:
            arn = topic_arn(self.region, self.account(), alerts_topic_name(self.environment))
            self.sns().publish(
                TopicArn=arn, Subject=subject, Message=json.dumps(body, sort_keys=True, default=str)
            )
        except Exception as error:  # best effort: the audit log holds the event
            self.progress("notify_failed", {"reason": f"{type(error).__name__}: {error}"})

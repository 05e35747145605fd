"""The one event path: audit entry, lineage, then the notification, each once per journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from pipelines.promotion.audit import AuditLog
from pipelines.promotion.events import Event, EventRecorder
from pipelines.promotion.notifier import SnsNotifier
from tests.unit.promotion.fakes import V1, V2, FakeLineage

TOPIC = "arn:aws:sns:eu-west-1:123456789012:modelrail-dev-alerts"


class Heard:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, stack: str, event: Event) -> None:
        self.events.append(event)


def _outcome(journal: str = "j-1") -> Event:
    return Event(
        "promote:rolled_back",
        "carol@example.com",
        "adult-income",
        V2,
        audit={"previous": V1, "reason": "canary analysis: 5xx-rate breached"},
        lineage={"previous": V1, "reason": "canary analysis: 5xx-rate breached"},
        journal=journal,
    )


def test_a_resumed_record_adds_no_second_entry_and_no_second_notification(tmp_path: Path) -> None:
    heard, lineage = Heard(), FakeLineage()
    recorder = EventRecorder("dev", AuditLog(tmp_path, "dev"), lineage, heard)
    recorder.record(_outcome())
    recorder.record(_outcome())  # a resume after a crash between the entry and `done`
    (entry,) = recorder.audit.entries()
    assert (entry["action"], entry["journal"], entry["previous"]) == ("promote:rolled_back", "j-1", V1)
    assert len(heard.events) == 1
    assert [kind for kind, *_ in lineage.events] == ["promote:rolled_back"] * 2, "the sink dedups by journal"


def test_the_alerts_topic_hears_rollout_outcomes_only(tmp_path: Path) -> None:
    sns = boto3.client("sns", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(sns)
    published: list[dict[str, Any]] = []
    sns.meta.events.register(
        "provide-client-params.sns.Publish", lambda params, **_: published.append(params)
    )
    stubber.add_response("publish", {"MessageId": "m-1"}, {"TopicArn": TOPIC, "Subject": ANY, "Message": ANY})
    failures: list[dict[str, Any]] = []
    notifier = SnsNotifier(
        lambda: sns,
        region="eu-west-1",
        account=lambda: "123456789012",
        environment="dev",
        progress=lambda event, fields: failures.append(fields),
    )
    recorder = EventRecorder("dev", AuditLog(tmp_path, "dev"), FakeLineage(), notifier)
    with stubber:
        recorder.record(
            Event("gates:passed", "ci@example.com", "adult-income", V2, audit={"stage": "candidate"})
        )
        recorder.record(_outcome())
    stubber.assert_no_pending_responses()
    (params,) = published
    assert params["Subject"] == f"modelrail dev: promote:rolled_back adult-income {V2[:12]}"
    body = json.loads(params["Message"])
    assert (body["service"], body["version"], body["journal"]) == ("adult-income", V2, "j-1")
    assert failures == []


def test_an_unreachable_topic_changes_no_outcome(tmp_path: Path) -> None:
    failures: list[dict[str, Any]] = []

    def no_client() -> Any:
        raise ConnectionError("sns.eu-west-1.amazonaws.com unreachable")

    notifier = SnsNotifier(
        no_client, region="eu-west-1", account=lambda: "123456789012", environment="dev",
        progress=lambda event, fields: failures.append({"event": event, **fields}),
    )  # fmt: skip
    recorder = EventRecorder("dev", AuditLog(tmp_path, "dev"), FakeLineage(), notifier)
    recorder.record(_outcome())
    assert [entry["action"] for entry in recorder.audit.entries()] == ["promote:rolled_back"]
    (failure,) = failures
    assert failure["event"] == "notify_failed" and "unreachable" in failure["reason"]

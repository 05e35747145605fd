"""The production wiring's canary baseline is the hour before the rollout, for every interval.

CloudWatch has one series per variant, so the baseline is the variant before the update began.
A baseline anchored at each interval's start would take in the canary traffic of the intervals
before it. ``build_controller`` wires a real stack's CloudWatch source (its client stubbed with
botocore's Stubber, every GetMetricStatistics window recorded) and a rollout bakes two intervals.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipelines.metrics.cloudwatch import CloudWatchMetricsSource
from pipelines.promotion import wiring
from pipelines.promotion.bake import Bake, analysis_policy
from pipelines.promotion.journal import Journal, Step
from tests.unit.promotion.fakes import V1, V2

SERVICE = "adult-income"
CALLS_PER_WINDOW = 10
"""Five metrics (invocations, 4xx, 5xx, latency, live accuracy) for the baseline, five for the canary."""


class _Session:
    """A boto3 session handing out the test's clients."""

    region_name = "eu-west-1"

    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients

    def client(self, name: str, config: Any = None) -> Any:
        return self.clients[name]


def test_every_interval_of_a_rollout_is_judged_against_the_hour_before_it_began(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(repo / "stacks", tmp_path / "project" / "stacks")
    shutil.copy(repo / "Pulumi.yaml", tmp_path / "project")
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(tmp_path / "project"))
    monkeypatch.setenv("MODELRAIL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MODELRAIL_AWS", raising=False)
    cloudwatch = boto3.client(
        "cloudwatch", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    sagemaker = boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    clients = {"cloudwatch": cloudwatch, "sagemaker": sagemaker}
    monkeypatch.setattr(wiring, "_aws_session", lambda region: _Session(clients))
    monkeypatch.setattr("pipelines.registry.factory.registry_for_stack", lambda stack, service=None: object())
    windows: list[tuple[datetime, datetime]] = []
    cloudwatch.meta.events.register(
        "provide-client-params.cloudwatch.GetMetricStatistics",
        lambda params, **_: windows.append((params["StartTime"], params["EndTime"])),
    )
    stubber = Stubber(cloudwatch)
    for _ in range(2 * CALLS_PER_WINDOW):
        stubber.add_response("get_metric_statistics", {"Datapoints": []})

    controller = wiring.build_controller("staging")
    adapters = controller.adapters["sagemaker"]
    assert isinstance(adapters.metrics, CloudWatchMetricsSource)
    config = controller.service_config(SERVICE)
    journal = Journal.begin(
        controller.journal_dir, kind="promote", service=SERVICE, stack="staging", version=V2, previous=V1,
        actor="carol@example.com", message="modelrail: promote", reconcile="",
    )  # fmt: skip
    policy = analysis_policy(config.deployment, interval=0.05, min_requests=100, min_labels=100)
    bake = Bake.begin(
        journal,
        config=config,
        metrics=adapters.metrics,
        router=adapters.router,
        policy=policy,
        decisions=[],
        progress=controller.progress,
    )
    over = iter([False, False, True])

    def two_intervals(seconds: float) -> bool:
        time.sleep(seconds)
        return next(over)

    with stubber:
        assert bake.watch(two_intervals, renew=lambda: None) == ""
    stubber.assert_no_pending_responses()

    rollout_start = float(journal.get(Step.UPDATE_STARTED)["analysis_from"])
    began = datetime.fromtimestamp(rollout_start, UTC)
    assert len(windows) == 2 * CALLS_PER_WINDOW
    baselines = {window for window in windows if window[0] < began}
    assert baselines == {(datetime.fromtimestamp(rollout_start - 3600, UTC), began)}, (
        "one baseline for the whole rollout, ending where it began"
    )
    first, second = sorted({window for window in windows if window[0] >= began})
    assert first[0] == began and first[1] == second[0], "the canary windows follow one another"

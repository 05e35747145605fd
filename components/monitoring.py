"""Monitoring: the alerts topic, a dashboard per service, and Model Monitor on captured data.

``Alerts`` is one per environment: guardrail alarms and the controller publish to it, and it
fans out to e-mail and an HTTPS webhook. ``ServiceMonitor`` is one per service: a CloudWatch
dashboard (traffic, errors, latency per variant, live accuracy, prediction drift) and an
hourly data-quality job over the requests the endpoint captured.
"""

from __future__ import annotations

from typing import Annotated, Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import iam
from components.base import ComponentArgs, OutputStr, child, render_json, sagemaker_role, validate_args
from components.endpoint import EndpointMetrics, MetricSpec
from infra import naming
from infra.config import Guardrails

REGION = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"

MODEL_MONITOR_ACCOUNTS = {
    "eu-central-1": "048819808253",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}
"""AWS accounts publishing the ``sagemaker-model-monitor-analyzer`` image, per region."""


def analyzer_image_uri(region: str) -> str | None:
    """The Model Monitor analyzer image of a region, if modelrail knows it."""
    account = MODEL_MONITOR_ACCOUNTS.get(region)
    if account is None:
        return None
    return f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-model-monitor-analyzer"


class AlertsArgs(ComponentArgs):
    """Arguments of ``Alerts``."""

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    account_id: OutputStr
    region: Annotated[str, Field(pattern=REGION)]
    """The topic's region, part of its ARN."""
    emails: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")], ...] = ()
    """Addresses subscribed by e-mail (each must confirm once)."""
    webhook_url: OutputStr | None = None
    """An HTTPS endpoint subscribed to the topic; pass it as a secret output."""
    tags: dict[str, str] = Field(default_factory=dict)

    def problems(self) -> list[str]:
        if isinstance(self.webhook_url, str) and not self.webhook_url.startswith("https://"):
            return [f"webhook_url = {self.webhook_url!r}: use an https:// URL (alerts are not sent in clear)"]
        return []


class Alerts(pulumi.ComponentResource):
    """An SNS topic encrypted with its own key, which CloudWatch alarms may publish to."""

    topic_arn: pulumi.Output[str]
    topic_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: AlertsArgs | dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        valid = validate_args(f"Alerts {name!r}", AlertsArgs, args)
        super().__init__("modelrail:monitoring:Alerts", name, None, opts)

        self.kms_key = aws.kms.Key(
            f"{name}-key",
            description=f"modelrail {valid.environment}: alerts topic",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # CloudWatch alarms publish to an encrypted topic only if the key lets them.
            policy=pulumi.Output.from_input(valid.account_id).apply(
                lambda account: render_json(iam.kms_key_policy(account, ["cloudwatch.amazonaws.com"]))
            ),
            tags=valid.tags,
            opts=child(self),
        )
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=f"modelrail-{valid.environment}-alerts",
            kms_master_key_id=self.kms_key.arn,
            tags=valid.tags,
            opts=child(self),
        )
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            # The ARN from the name, known before the topic exists (see ``components.iam``).
            policy=pulumi.Output.all(valid.account_id, self.topic.name).apply(
                lambda v: render_json(iam.topic_policy(naming.topic_arn(valid.region, v[0], v[1]), v[0]))
            ),
            opts=child(self),
        )
        for index, email in enumerate(valid.emails):
            aws.sns.TopicSubscription(
                f"{name}-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child(self),
            )
        if valid.webhook_url is not None:
            aws.sns.TopicSubscription(
                f"{name}-webhook",
                topic=self.topic.arn,
                protocol="https",
                endpoint=pulumi.Output.secret(valid.webhook_url),
                opts=child(self),
            )

        self.topic_arn = self.topic.arn
        self.topic_name = self.topic.name
        self.register_outputs({"topic_arn": self.topic_arn, "topic_name": self.topic_name})


def dashboard_body(
    *,
    endpoint_name: str,
    region: str,
    variants: tuple[str, ...] = (naming.VARIANT_NAME,),
    min_live_accuracy: float | None = None,
    max_prediction_drift: float | None = None,
) -> dict[str, Any]:
    """The dashboard of one endpoint: six graphs, two per row, one line per variant."""
    per_variant = [EndpointMetrics(endpoint_name, variant) for variant in variants]

    def graph(
        title: str, metrics: list[MetricSpec], index: int, threshold: float | None = None
    ) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "stacked": False,
            "metrics": [metric.widget_metric() for metric in metrics],
        }
        if threshold is not None:
            properties["annotations"] = {"horizontal": [{"label": "guardrail", "value": threshold}]}
        return {
            "type": "metric",
            "x": (index % 2) * 12,
            "y": (index // 2) * 6,
            "width": 12,
            "height": 6,
            "properties": properties,
        }

    drift = [
        MetricSpec(
            naming.QUALITY_NAMESPACE,
            naming.PREDICTION_DRIFT_METRIC,
            m.dimensions,
            "Maximum",
            period=300,
            label=f"{m.variant_name} prediction drift",
        )
        for m in per_variant
    ]
    widgets = [
        graph("Invocations", [m.invocations() for m in per_variant], 0),
        graph(
            "Errors (4xx, 5xx)",
            [spec for m in per_variant for spec in (m.invocation_4xx_errors(), m.invocation_5xx_errors())],
            1,
        ),
        graph(
            "Model latency p50 / p99 (µs)",
            [spec for m in per_variant for spec in (m.model_latency("p50"), m.model_latency("p99"))],
            2,
        ),
        graph("Live accuracy", [m.live_accuracy() for m in per_variant], 3, min_live_accuracy),
        graph("Prediction drift (Jensen-Shannon)", drift, 4, max_prediction_drift),
    ]
    return {"widgets": widgets}


class ServiceMonitorArgs(ComponentArgs):
    """Arguments of ``ServiceMonitor``."""

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    service: Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")]
    account_id: OutputStr
    region: Annotated[str, Field(pattern=REGION)]
    endpoint_name: OutputStr
    """The monitored endpoint (pass the endpoint's output so the job waits for it)."""
    bucket_name: OutputStr
    """The artifact bucket: reads ``data-capture/<service>/``, writes ``monitoring/<service>/``."""
    bucket_arn: OutputStr
    kms_key_arn: OutputStr
    """Encrypts the job's volume and its reports."""
    kms_key_alias: OutputStr
    """The alias of that key (``alias/…``); the role's policy names the key by it (``iam.use_key``)."""
    guardrails: Guardrails
    """The service's guardrails (``infra.config``): ``minLiveAccuracy`` and ``maxPredictionDrift``
    are drawn as the guardrail lines on the accuracy and drift graphs."""
    schedule_expression: str = "cron(0 * ? * * *)"
    """When the data-quality job runs (default: hourly, the most frequent Model Monitor allows)."""
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] = "ml.m5.large"
    analyzer_image_uri: str | None = None
    """The Model Monitor analyzer image (default: AWS's image for ``region``)."""
    tags: dict[str, str] = Field(default_factory=dict)

    def problems(self) -> list[str]:
        if self.analyzer_image_uri is None and analyzer_image_uri(self.region) is None:
            known = ", ".join(sorted(MODEL_MONITOR_ACCOUNTS))
            return [
                f"region = {self.region!r}: modelrail does not know the Model Monitor image there; "
                f"pass analyzer_image_uri (known regions: {known})"
            ]
        return []


class ServiceMonitor(pulumi.ComponentResource):
    """Dashboard and scheduled data-quality monitoring of one service's endpoint."""

    dashboard_name: pulumi.Output[str]
    schedule_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ServiceMonitorArgs | dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        valid = validate_args(f"ServiceMonitor {name!r}", ServiceMonitorArgs, args)
        super().__init__("modelrail:monitoring:ServiceMonitor", name, None, opts)
        capture_prefix = f"data-capture/{valid.service}/"
        output_prefix = f"monitoring/{valid.service}/data-quality/"

        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=naming.dashboard_name(valid.environment, valid.service),
            dashboard_body=pulumi.Output.from_input(valid.endpoint_name).apply(
                lambda endpoint: render_json(
                    dashboard_body(
                        endpoint_name=endpoint,
                        region=valid.region,
                        min_live_accuracy=valid.guardrails.min_live_accuracy,
                        max_prediction_drift=valid.guardrails.max_prediction_drift,
                    )
                )
            ),
            opts=child(self),
        )

        self.role = sagemaker_role(
            f"{name}-role",
            self,
            description=f"modelrail {valid.environment}: monitors data quality of {valid.service}",
            account_id=valid.account_id,
            tags=valid.tags,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=self.role.id,
            policy=pulumi.Output.all(valid.bucket_arn, valid.account_id, valid.kms_key_alias).apply(
                lambda v: render_json(
                    iam.monitoring_policy(
                        bucket_arn=v[0],
                        capture_prefix=capture_prefix,
                        output_prefix=output_prefix,
                        kms_key_alias=v[2],
                        region=valid.region,
                        account_id=v[1],
                    )
                )
            ),
            opts=child(self),
        )
        image = valid.analyzer_image_uri or analyzer_image_uri(valid.region)
        assert image is not None  # problems() refused the region otherwise
        self.job_definition = aws.sagemaker.DataQualityJobDefinition(
            f"{name}-data-quality",
            role_arn=self.role.arn,
            data_quality_app_specification={"image_uri": image},
            data_quality_job_input={
                "endpoint_input": {
                    "endpoint_name": valid.endpoint_name,
                    "local_path": "/opt/ml/processing/input/endpoint",
                }
            },
            data_quality_job_output_config={
                "kms_key_id": valid.kms_key_arn,
                "monitoring_outputs": {
                    "s3_output": {
                        "s3_uri": pulumi.Output.concat("s3://", valid.bucket_name, "/", output_prefix),
                        "local_path": "/opt/ml/processing/output",
                    }
                },
            },
            job_resources={
                "cluster_config": {
                    "instance_count": 1,
                    "instance_type": valid.instance_type,
                    "volume_size_in_gb": 20,
                    "volume_kms_key_id": valid.kms_key_arn,
                }
            },
            stopping_condition={"max_runtime_in_seconds": 1800},
            tags=valid.tags,
            opts=child(self, depends_on=[role_policy]),
        )
        self.schedule = aws.sagemaker.MonitoringSchedule(
            f"{name}-data-quality-schedule",
            monitoring_schedule_config={
                "monitoring_job_definition_name": self.job_definition.name,
                "monitoring_type": "DataQuality",
                "schedule_config": {"schedule_expression": valid.schedule_expression},
            },
            tags=valid.tags,
            opts=child(self),
        )

        self.dashboard_name = self.dashboard.dashboard_name
        self.schedule_name = self.schedule.name
        self.register_outputs({"dashboard_name": self.dashboard_name, "schedule_name": self.schedule_name})

"""ModelEndpoint: a SageMaker endpoint that rolls out new model versions gradually and safely.

One pinned model version becomes a Model and an EndpointConfiguration; the Endpoint switches
to a new configuration through a blue/green deployment (canary, linear or all at once) while
the service's guardrail alarms watch. If any alarm fires during the bake, SageMaker rolls the
traffic back to the old fleet.

Three provider facts shape this component:

* Every EndpointConfiguration (and Model) input forces a replacement, so both are auto-named
  and kept on delete: the configuration the endpoint ran before is the rollback target, and it
  needs its model to still exist.
* Changing the alarm list in ``auto_rollback_configuration`` replaces the Endpoint (the
  provider marks it force-new), and a replacement of an endpoint with a fixed name fails
  ("Cannot create already existing endpoint") or takes it down. So the list is fixed: one alarm
  per ``infra.naming.GUARDRAILS`` entry, named from the environment and the service, and a
  guardrail that is off keeps its alarm with a threshold no metric can cross.
* The variant name never changes between configurations (``infra.naming.VARIANT_NAME``).

A new model version therefore updates the Endpoint in place (a new ``endpointConfigName``) and
leaves the Endpoint, its alarms and its scaling untouched.

A shadow phase (``shadowVersion`` in the stack entry, written by the controller) adds a shadow
variant to the configuration: the candidate answers a mirrored share of production's requests, and
no client sees its answers. It is an update like any other, with one deployment config for all of
them, so adding the shadow (production unchanged) and removing it run the strategy's blue/green
shifts too. Why, rather than an all-at-once update for a configuration whose production model did
not change:

* SageMaker deploys every new configuration to a new fleet (UpdateEndpoint, botocore's model); a
  blue/green update needs the production variant's name unchanged, which a shadow variant leaves
  so, and shadow variants are not among the features that exclude guardrails
  (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html). The
  rollback alarms watch ``VariantName=primary`` only, so a failing shadow never rolls the update
  back: judging it is the controller's bake, after the update returned.
* The provider reads ``deployment_config`` back from ``LastDeploymentConfig`` and sends only
  ``EndpointConfigName`` and ``DeploymentConfig`` (terraform-provider-aws ``endpoint.go``;
  ``RetainDeploymentConfig`` is not an argument, hashicorp/terraform-provider-aws#49069): a
  config of its own for shadow updates would be changed back on the next one, on every endpoint.
* This component sees the stack entry, not what runs: removing the shadow to promote the
  candidate and removing it to revert look alike, and a hand-written ``shadowVersion`` next to a
  new ``modelVersion`` would ship that model all at once, past prod's gradual-rollout policy.

The price is time: a shadow update waits through the strategy's bakes (the provider-wait rule in
``infra.config.service_rules`` already bounds them, per update) before the shadow's own bake.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import iam
from components.base import ComponentArgs, OutputStr, child, render_json, sagemaker_role, validate_args
from infra import naming
from infra.config import SERVICE_NAME_PATTERN, DeploymentPolicy, Service, service_rules

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"

_sm = aws.sagemaker
TrafficRouting = _sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs
CanarySize = _sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs
LinearStepSize = (
    _sm.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSizeArgs
)


class ModelEndpointArgs(ComponentArgs):
    """Arguments of ``ModelEndpoint``: where it runs, and the service's own settings.

    ``settings`` is the service's entry of the stack config, as ``infra.config`` validates it:
    the rollout, guardrails, scaling and serving settings have one schema, so a bound or a rule
    changed there is the one this component enforces.
    """

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    service: Annotated[str, Field(pattern=SERVICE_NAME_PATTERN.pattern)]
    account_id: OutputStr
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
    settings: Service
    """The service's stack-config entry; it must pin ``modelVersion`` (the version served), and
    its ``shadowVersion``, when set, is served as the shadow variant."""
    bucket_name: OutputStr
    """The artifact bucket: model artifacts in, captured data out."""
    bucket_arn: OutputStr
    kms_key_arn: OutputStr
    """Encrypts the instance volumes and the captured data."""
    kms_key_alias: OutputStr
    """The alias of that key (``alias/…``); the role's policy names the key by it (``iam.use_key``)."""
    repository_arn: OutputStr
    repository_url: OutputStr
    alerts_topic_arn: OutputStr | None = None
    """Where the alarms send ALARM and OK notifications (default: nowhere)."""
    tags: dict[str, str] = Field(default_factory=dict)

    def problems(self) -> list[str]:
        """The stack config's own cross-field rules (``infra.config.service_rules``), and what an
        endpoint needs on top: a SageMaker service with a pinned version."""
        settings = self.settings
        found = []
        if settings.runtime != "sagemaker":
            found.append(
                f"settings.runtime = {settings.runtime!r}: a ModelEndpoint serves runtime 'sagemaker' only"
            )
        if settings.model_version is None:
            found.append(
                "settings.modelVersion = None: an endpoint serves a pinned model version (64 hex); "
                "a service without one has no endpoint until its first promotion"
            )
        # Each rule as `config validate` words it, less the stack file the component does not know.
        found.extend(
            str(issue).removeprefix(f"{issue.source}: ")
            for issue in service_rules(self.service, "settings", settings, self.environment)
        )
        return found

    @property
    def endpoint_name(self) -> str:
        return naming.endpoint_name(self.environment, self.service)


@dataclass(frozen=True)
class MetricSpec:
    """One CloudWatch metric of an endpoint, for alarms and dashboards."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int = 60
    label: str = ""

    def widget_metric(self) -> list[Any]:
        """The metric as a CloudWatch dashboard ``metrics`` row."""
        row: list[Any] = [self.namespace, self.metric_name]
        for key, value in self.dimensions:
            row.extend([key, value])
        row.append({"stat": self.stat, "period": self.period, "label": self.label or self.metric_name})
        return row


class EndpointMetrics:
    """Metric helpers of one endpoint variant, like the CDK's ``metricModelLatency``."""

    def __init__(self, endpoint_name: str, variant_name: str = naming.VARIANT_NAME) -> None:
        self.dimensions = (("EndpointName", endpoint_name), ("VariantName", variant_name))
        self.variant_name = variant_name

    def _aws(self, metric: str, stat: str) -> MetricSpec:
        return MetricSpec(
            SAGEMAKER_NAMESPACE, metric, self.dimensions, stat, label=f"{self.variant_name} {stat}"
        )

    def invocations(self) -> MetricSpec:
        return self._aws("Invocations", "Sum")

    def invocation_5xx_errors(self) -> MetricSpec:
        return self._aws("Invocation5XXErrors", "Sum")

    def invocation_4xx_errors(self) -> MetricSpec:
        return self._aws("Invocation4XXErrors", "Sum")

    def model_latency(self, stat: str = "p99") -> MetricSpec:
        """ModelLatency in microseconds (``p50``, ``p99``, ``Average``…)."""
        return self._aws("ModelLatency", stat)

    def live_accuracy(self) -> MetricSpec:
        """Accuracy on delayed labels, published by the controller with the same dimensions."""
        return MetricSpec(
            naming.QUALITY_NAMESPACE,
            naming.LIVE_ACCURACY_METRIC,
            self.dimensions,
            "Average",
            period=300,
            label=f"{self.variant_name} live accuracy",
        )


class ServiceAlarms(pulumi.ComponentResource):
    """The guardrail alarms of one endpoint: always one per guardrail, named from the service.

    The set never changes, because the endpoint's alarm list is force-new. A guardrail that is
    off (``min_live_accuracy=None``) keeps its alarm with a threshold no metric can cross: live
    accuracy below 0. Its missing data is not breaching, so its evaluations always end in OK, and
    a state someone sets by hand (the controller's rollback) lasts one evaluation. Disabling its
    actions would not be enough: SageMaker rolls back on an alarm's state, not on its actions.

    Missing data is treated on purpose: an idle endpoint has no errors and no latency, so the
    rate and latency alarms treat gaps as not breaching (a quiet canary never rolls back);
    labels for live accuracy arrive late and sparsely, so that alarm ignores gaps and keeps
    its last state instead of flapping.
    """

    alarm_names: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("modelrail:endpoint:ServiceAlarms", name, None, opts)
        metrics = EndpointMetrics(args.endpoint_name)
        actions = [args.alerts_topic_arn] if args.alerts_topic_arn is not None else []
        common: dict[str, Any] = {
            "alarm_actions": actions,
            "ok_actions": actions,
            "tags": args.tags,
            "opts": child(self),
        }
        guard = args.settings.guardrails
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for kind in naming.GUARDRAILS:
            alarm = naming.alarm_name(args.environment, args.service, kind)
            if kind == "5xx-rate":
                self.alarms[kind] = self._rate(
                    f"{name}-{kind}",
                    alarm,
                    metrics.invocation_5xx_errors(),
                    metrics,
                    guard.max_5xx_rate,
                    common,
                )
            elif kind == "4xx-rate":
                self.alarms[kind] = self._rate(
                    f"{name}-{kind}",
                    alarm,
                    metrics.invocation_4xx_errors(),
                    metrics,
                    guard.max_4xx_rate,
                    common,
                )
            elif kind == "p99-latency":
                latency = metrics.model_latency("p99")
                self.alarms[kind] = aws.cloudwatch.MetricAlarm(
                    f"{name}-{kind}",
                    name=alarm,
                    alarm_description=f"p99 model latency above {guard.p99_latency_ms:g} ms: rolls back",
                    namespace=latency.namespace,
                    metric_name=latency.metric_name,
                    dimensions=dict(latency.dimensions),
                    extended_statistic="p99",
                    period=60,
                    evaluation_periods=3,
                    datapoints_to_alarm=2,
                    threshold=guard.p99_latency_ms * 1000,  # ModelLatency is in microseconds
                    comparison_operator="GreaterThanThreshold",
                    treat_missing_data="notBreaching",
                    **common,
                )
            else:
                accuracy = metrics.live_accuracy()
                minimum = guard.min_live_accuracy
                self.alarms[kind] = aws.cloudwatch.MetricAlarm(
                    f"{name}-{kind}",
                    name=alarm,
                    alarm_description=(
                        f"live accuracy below {minimum:g}: rolls back a rollout"
                        if minimum is not None
                        else "off (min_live_accuracy is null): accuracy is never below 0, never fires"
                    ),
                    namespace=accuracy.namespace,
                    metric_name=accuracy.metric_name,
                    dimensions=dict(accuracy.dimensions),
                    statistic="Average",
                    period=accuracy.period,
                    evaluation_periods=1,
                    threshold=minimum if minimum is not None else 0,
                    comparison_operator="LessThanThreshold",
                    treat_missing_data="ignore" if minimum is not None else "notBreaching",
                    **common,
                )
        self.names = list(naming.alarm_names(args.environment, args.service))
        self.alarm_names = pulumi.Output.all(*(alarm.name for alarm in self.alarms.values()))
        self.register_outputs({"alarm_names": self.alarm_names})

    @staticmethod
    def _rate(
        resource_name: str,
        alarm: str,
        errors: MetricSpec,
        metrics: EndpointMetrics,
        threshold: float,
        common: dict[str, Any],
    ) -> aws.cloudwatch.MetricAlarm:
        """An error-rate alarm: errors / invocations per minute, by metric math."""
        invocations = metrics.invocations()

        def query(query_id: str, spec: MetricSpec) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=spec.namespace,
                    metric_name=spec.metric_name,
                    dimensions=dict(spec.dimensions),
                    stat=spec.stat,
                    period=spec.period,
                ),
            )

        return aws.cloudwatch.MetricAlarm(
            resource_name,
            name=alarm,
            alarm_description=f"{errors.metric_name} rate above {threshold:g}: rolls back a rollout",
            metric_queries=[
                query("errors", errors),
                query("invocations", invocations),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    expression="IF(invocations > 0, errors / invocations, 0)",
                    label=f"{errors.metric_name} rate",
                    return_data=True,
                ),
            ],
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            **common,
        )


class ModelEndpoint(pulumi.ComponentResource):
    """A guarded SageMaker endpoint serving one pinned model version of one service."""

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    model_name: pulumi.Output[str]
    variant_name: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]
    role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ModelEndpointArgs | dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        valid = validate_args(f"ModelEndpoint {name!r}", ModelEndpointArgs, args)
        super().__init__("modelrail:endpoint:ModelEndpoint", name, None, opts)
        self._name = name
        self._grants = 0
        self.args = valid
        self.metrics = EndpointMetrics(valid.endpoint_name)
        settings = valid.settings
        version = settings.model_version
        assert version is not None  # problems() refused settings without one
        image = pulumi.Output.concat(valid.repository_url, ":", settings.serving_image_tag)
        model_prefix = f"models/{valid.service}/"
        capture_prefix = f"data-capture/{valid.service}/"

        self.role = sagemaker_role(
            f"{name}-role",
            self,
            description=f"modelrail {valid.environment}: serves {valid.service}",
            account_id=valid.account_id,
            tags=valid.tags,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=self.role.id,
            policy=pulumi.Output.all(
                valid.bucket_arn, valid.repository_arn, valid.account_id, valid.kms_key_alias
            ).apply(
                lambda v: render_json(
                    iam.serving_policy(
                        bucket_arn=v[0],
                        model_prefix=model_prefix,
                        capture_prefix=capture_prefix,
                        repository_arn=v[1],
                        kms_key_alias=v[3],
                        alarm_arns=[
                            naming.alarm_arn(valid.region, v[2], alarm)
                            for alarm in naming.alarm_names(valid.environment, valid.service)
                        ],
                        region=valid.region,
                        account_id=v[2],
                    )
                )
            ),
            opts=child(self),
        )

        self.model = self._model(f"{name}-model", version, image, role_policy)
        shadow = settings.shadow_version
        self.shadow_model = (
            self._model(f"{name}-shadow-model", shadow, image, role_policy) if shadow is not None else None
        )

        # Auto-named and retained: every change makes a new configuration, and the previous one
        # must survive for SageMaker (or the controller) to roll back to it.
        self.endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            kms_key_arn=valid.kms_key_arn,
            production_variants=[
                {
                    "variant_name": naming.VARIANT_NAME,
                    "model_name": self.model.name,
                    "instance_type": settings.instance_type,
                    "initial_instance_count": settings.rollout_instance_count,
                    "initial_variant_weight": 1,
                }
            ],
            shadow_production_variants=(
                [_shadow_variant(settings, self.shadow_model)] if self.shadow_model is not None else None
            ),
            data_capture_config={
                "enable_capture": settings.data_capture_percent > 0,
                "initial_sampling_percentage": settings.data_capture_percent,
                "destination_s3_uri": pulumi.Output.concat("s3://", valid.bucket_name, "/", capture_prefix),
                "kms_key_id": valid.kms_key_arn,
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": {
                    "csv_content_types": ["text/csv"],
                    "json_content_types": ["application/json"],
                },
            },
            tags=valid.tags,
            opts=child(self, retain_on_delete=True),
        )

        self.alarms = ServiceAlarms(f"{name}-alarms", valid, opts=child(self))
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=valid.endpoint_name,
            endpoint_config_name=self.endpoint_config.name,
            deployment_config=aws.sagemaker.EndpointDeploymentConfigArgs(
                blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
                    traffic_routing_configuration=_traffic_routing(settings.deployment),
                    termination_wait_in_seconds=settings.deployment.termination_wait_seconds,
                    maximum_execution_timeout_in_seconds=settings.deployment.max_execution_seconds,
                ),
                auto_rollback_configuration=aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
                    alarms=[
                        aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(
                            alarm_name=alarm
                        )
                        for alarm in self.alarms.names
                    ]
                ),
            ),
            tags=valid.tags,
            opts=child(self, depends_on=list(self.alarms.alarms.values())),
        )

        scaling = settings.autoscaling
        self.scaling_target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="sagemaker",
            scalable_dimension=SCALABLE_DIMENSION,
            resource_id=self.endpoint.name.apply(lambda n: f"endpoint/{n}/variant/{naming.VARIANT_NAME}"),
            min_capacity=scaling.min_instances,
            max_capacity=scaling.max_instances,
            tags=valid.tags,
            opts=child(self),
        )
        self.scaling_policy = aws.appautoscaling.Policy(
            f"{name}-scaling-policy",
            name=f"{valid.endpoint_name}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            service_namespace=self.scaling_target.service_namespace,
            scalable_dimension=self.scaling_target.scalable_dimension,
            resource_id=self.scaling_target.resource_id,
            target_tracking_scaling_policy_configuration={
                "target_value": scaling.target_invocations_per_instance,
                "predefined_metric_specification": {
                    "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
                },
                "scale_in_cooldown": scaling.scale_in_cooldown_seconds,
                "scale_out_cooldown": scaling.scale_out_cooldown_seconds,
            },
            opts=child(self),
        )

        self.endpoint_name = self.endpoint.name
        self.endpoint_arn = self.endpoint.arn
        self.endpoint_config_name = self.endpoint_config.name
        self.model_name = self.model.name
        self.variant_name = pulumi.Output.from_input(naming.VARIANT_NAME)
        self.alarm_names = self.alarms.alarm_names
        self.role_arn = self.role.arn
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "endpoint_config_name": self.endpoint_config_name,
                "model_name": self.model_name,
                "variant_name": self.variant_name,
                "alarm_names": self.alarm_names,
                "role_arn": self.role_arn,
            }
        )

    def _model(
        self, name: str, version: str, image: pulumi.Output[str], role_policy: aws.iam.RolePolicy
    ) -> aws.sagemaker.Model:
        """A Model for one version: auto-named and retained, because a retained configuration
        that names a deleted model is no rollback target."""
        valid = self.args
        return aws.sagemaker.Model(
            name,
            execution_role_arn=self.role.arn,
            primary_container={
                "image": image,
                "model_data_url": pulumi.Output.concat(
                    "s3://", valid.bucket_name, "/", naming.artifact_key(valid.service, version)
                ),
                # The server bounds OpenMP/BLAS from MODELRAIL_SERVING_THREADS before numpy loads.
                "environment": {
                    "MODELRAIL_SERVICE": valid.service,
                    "MODELRAIL_MODEL_VERSION": version,
                    "MODELRAIL_SERVING_THREADS": str(valid.settings.serving_threads),
                },
            },
            tags={**valid.tags, "model-version": version},
            opts=child(self, retain_on_delete=True, depends_on=[role_policy]),
        )

    def grant_invoke(self, role: aws.iam.Role, name: str | None = None) -> aws.iam.RolePolicy:
        """Let ``role`` invoke this endpoint (and nothing else); returns the inline policy.

        ``name`` is the policy's resource name (default: ``<endpoint>-invoke-<n>``).
        """
        self._grants += 1
        valid = self.args
        return aws.iam.RolePolicy(
            name or f"{self._name}-invoke-{self._grants}",
            role=role.id,
            # The ARN from the name, known before the endpoint exists (see ``components.iam``).
            policy=pulumi.Output.from_input(valid.account_id).apply(
                lambda account: render_json(
                    iam.invoke_policy(
                        naming.sagemaker_arn(valid.region, account, "endpoint", valid.endpoint_name)
                    )
                )
            ),
            opts=child(self, depends_on=[self.endpoint]),
        )


def _shadow_variant(
    settings: Service, model: aws.sagemaker.Model
) -> _sm.EndpointConfigurationShadowProductionVariantArgs:
    """The shadow variant: the production variant's instance type, and as many instances as give
    each the load a production instance has, so their latencies compare like for like.

    Its weight is the share mirrored, relative to the production variant's weight of 1: SageMaker
    weighs variants against each other (``InitialVariantWeight``, botocore's model), and names
    the shadow's share the traffic sampling percentage
    (https://docs.aws.amazon.com/sagemaker/latest/dg/shadow-tests-create.html).
    """
    percent = settings.deployment.shadow.percent
    return _sm.EndpointConfigurationShadowProductionVariantArgs(
        variant_name=naming.SHADOW_VARIANT_NAME,
        model_name=model.name,
        instance_type=settings.instance_type,
        initial_instance_count=max(1, math.ceil(settings.rollout_instance_count * percent / 100)),
        initial_variant_weight=percent / 100,
    )


def _traffic_routing(rollout: DeploymentPolicy) -> TrafficRouting:
    """The blue/green traffic routing block for a rollout strategy; the wait is the bake."""
    return TrafficRouting(
        type=rollout.strategy.upper(),
        wait_interval_in_seconds=rollout.bake_seconds,
        canary_size=(
            CanarySize(type="CAPACITY_PERCENT", value=rollout.canary_percent)
            if rollout.strategy == "canary"
            else None
        ),
        linear_step_size=(
            LinearStepSize(type="CAPACITY_PERCENT", value=rollout.linear_step_percent)
            if rollout.strategy == "linear"
            else None
        ),
    )

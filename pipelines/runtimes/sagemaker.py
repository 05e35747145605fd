"""SageMaker's adapters: DescribeEndpoint, per-variant metrics, and the rollback alarm as the router.

SageMaker shifts traffic itself during one stack update (blue/green with deployment
guardrails), so its ``traffic_steps`` is one update; a breach sets the guardrail's alarm, which
makes SageMaker roll the deployment back at once. The embedded default runs the same contract
in the local sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.runtimes.ports import RuntimeAdapters

if TYPE_CHECKING:
    from pipelines.runners.base import EndpointInspector
    from pipelines.runtimes.table import Binding


def inspector(binding: Binding, *, embedded: bool) -> EndpointInspector:
    """The sandbox's SageMaker-style endpoints, or DescribeEndpoint."""
    if embedded:
        from pipelines.runners.local_runner import SandboxEndpoints

        return SandboxEndpoints(binding.sandbox)
    from pipelines.runners.sagemaker_endpoints import SageMakerEndpoints

    return SageMakerEndpoints(binding.aws_client("sagemaker"), binding.config.platform.environment)


def adapters(binding: Binding, *, embedded: bool) -> RuntimeAdapters:
    """The inspector, then the metrics and the router: the sandbox's router metrics and alarms,
    or CloudWatch ``AWS/SageMaker`` metrics and the guardrail alarms."""
    endpoints = inspector(binding, embedded=embedded)
    if embedded:
        from pipelines.metrics.local import LocalMetricsSource
        from pipelines.runtimes.alarms import SandboxAlarms

        sandbox = binding.sandbox
        return RuntimeAdapters("sagemaker", endpoints, LocalMetricsSource(sandbox), SandboxAlarms(sandbox))
    from pipelines.metrics.cloudwatch import CloudWatchMetricsSource
    from pipelines.runtimes.alarms import CloudWatchAlarms

    environment = binding.config.platform.environment
    cloudwatch = binding.aws_client("cloudwatch")
    return RuntimeAdapters(
        "sagemaker",
        endpoints,
        CloudWatchMetricsSource(cloudwatch, environment),
        CloudWatchAlarms(cloudwatch, environment),
    )

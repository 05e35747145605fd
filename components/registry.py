"""ModelRegistry: one SageMaker model package group per service, and the queue of its events.

Every state change of a model package (registered, approved, rejected) is sent by an
EventBridge rule to an encrypted SQS queue the controller consumes, so promotion reacts to
approvals instead of polling. Messages that cannot be processed land in a dead-letter queue
rather than being lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import iam
from components.base import ComponentArgs, OutputStr, child, render_json, validate_args
from infra import naming

STATE_CHANGE_EVENT = "SageMaker Model Package State Change"
SERVICE_NAME = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"


class ModelRegistryArgs(ComponentArgs):
    """Arguments of ``ModelRegistry``."""

    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")]
    """The environment; part of every group's name."""
    account_id: OutputStr
    """The AWS account, named in the queue key's policy."""
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
    """The region of the groups, queues and rule, part of their ARNs."""
    group_names: dict[
        Annotated[str, Field(pattern=SERVICE_NAME)], Annotated[str, Field(min_length=1, max_length=63)]
    ]
    """Service name → physical model package group name (``infra.naming.model_package_group_name``)."""
    reader_account_ids: tuple[Annotated[str, Field(pattern=r"^\d{12}$")], ...] = ()
    """Accounts allowed to read (never write) the groups, e.g. a separate production account."""
    message_retention_seconds: Annotated[int, Field(ge=60, le=1209600)] = 345600
    """How long an unconsumed event stays in the queue (default 4 days)."""
    max_receive_count: Annotated[int, Field(ge=1, le=1000)] = 5
    """Deliveries of one message before it moves to the dead-letter queue."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Tags on every taggable child."""

    def problems(self) -> list[str]:
        if not self.group_names:
            return ["group_names = {}: declare at least one service (service name → group name)"]
        return []


class ModelRegistry(pulumi.ComponentResource):
    """Model package groups, an optional cross-account read policy, and the state-change queue."""

    queue_url: pulumi.Output[str]
    queue_arn: pulumi.Output[str]
    dead_letter_queue_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ModelRegistryArgs | dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        valid = validate_args(f"ModelRegistry {name!r}", ModelRegistryArgs, args)
        super().__init__("modelrail:registry:ModelRegistry", name, None, opts)

        self.groups: dict[str, aws.sagemaker.ModelPackageGroup] = {}
        for service, group_name in sorted(valid.group_names.items()):
            group = aws.sagemaker.ModelPackageGroup(
                f"{name}-{service}",
                model_package_group_name=group_name,
                model_package_group_description=f"modelrail {valid.environment}: versions of {service}",
                tags={**valid.tags, "service": service},
                opts=child(self),
            )
            self.groups[service] = group
            if valid.reader_account_ids:
                aws.sagemaker.ModelPackageGroupPolicy(
                    f"{name}-{service}-read",
                    model_package_group_name=group.model_package_group_name,
                    resource_policy=pulumi.Output.all(valid.account_id, group.model_package_group_name).apply(
                        _read_policy(valid.region, valid.reader_account_ids)
                    ),
                    opts=child(self),
                )

        self.kms_key = aws.kms.Key(
            f"{name}-events-key",
            description=f"modelrail {valid.environment}: model package event queue",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(valid.account_id).apply(
                lambda account: render_json(iam.kms_key_policy(account, ["events.amazonaws.com"]))
            ),
            tags=valid.tags,
            opts=child(self),
        )
        self.dead_letter_queue = aws.sqs.Queue(
            f"{name}-events-dlq",
            kms_master_key_id=self.kms_key.arn,
            message_retention_seconds=1209600,
            tags=valid.tags,
            opts=child(self),
        )
        self.queue = aws.sqs.Queue(
            f"{name}-events",
            kms_master_key_id=self.kms_key.arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=valid.message_retention_seconds,
            visibility_timeout_seconds=120,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: render_json(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": valid.max_receive_count}
                )
            ),
            tags=valid.tags,
            opts=child(self),
        )
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-state-changes",
            description=f"modelrail {valid.environment}: model package state changes → controller queue",
            event_pattern=render_json(
                {
                    "source": ["aws.sagemaker"],
                    "detail-type": [STATE_CHANGE_EVENT],
                    "detail": {"ModelPackageGroupName": sorted(valid.group_names.values())},
                }
            ),
            tags=valid.tags,
            opts=child(self),
        )
        # The rule sends to the queue, and to the dead-letter queue when delivery keeps failing.
        # ARNs from the (auto-)names, known before the queues and the rule exist (``components.iam``).
        for suffix, queue in (("events", self.queue), ("events-dlq", self.dead_letter_queue)):
            aws.sqs.QueuePolicy(
                f"{name}-{suffix}-policy",
                queue_url=queue.url,
                policy=pulumi.Output.all(valid.account_id, queue.name, self.rule.name).apply(
                    lambda v: render_json(
                        iam.queue_policy(
                            naming.queue_arn(valid.region, v[0], v[1]),
                            naming.event_rule_arn(valid.region, v[0], v[2]),
                        )
                    )
                ),
                opts=child(self),
            )
        aws.cloudwatch.EventTarget(
            f"{name}-events-target",
            rule=self.rule.name,
            arn=self.queue.arn,
            retry_policy={"maximum_event_age_in_seconds": 86400, "maximum_retry_attempts": 20},
            dead_letter_config={"arn": self.dead_letter_queue.arn},
            opts=child(self),
        )

        self.group_names = {service: group.model_package_group_name for service, group in self.groups.items()}
        self.queue_url = self.queue.url
        self.queue_arn = self.queue.arn
        self.dead_letter_queue_arn = self.dead_letter_queue.arn
        self.register_outputs(
            {
                "group_names": self.group_names,
                "queue_url": self.queue_url,
                "queue_arn": self.queue_arn,
                "dead_letter_queue_arn": self.dead_letter_queue_arn,
            }
        )


def _read_policy(region: str, readers: tuple[str, ...]) -> Callable[[list[str]], str]:
    """Render the cross-account read policy of a group from ``[account, group name]``."""
    return lambda v: render_json(
        iam.model_package_group_read_policy(
            naming.sagemaker_arn(region, v[0], "model-package-group", v[1]), readers
        )
    )

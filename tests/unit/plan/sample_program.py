"""A small Pulumi program for the plan engine's own tests: a component, a secret, ints, a dependency."""

import pulumi
import pulumi_aws as aws


class Store(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("modelrail:sample:Store", name, None, None)
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(f"{name}-key", enable_key_rotation=True, opts=child)
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=f"{name}-bucket-name", opts=child)
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.sqs.Queue(f"{name}-queue", kms_master_key_id=key.arn, message_retention_seconds=3600, opts=child)
        self.register_outputs({"bucket": bucket.bucket})


config = pulumi.Config("modelrail")
platform = config.require_object("platform")
store = Store("art")
aws.sns.Topic(
    "alerts",
    name=f"alerts-{platform['environment']}",
    tags={"hook": config.get_secret("alertWebhookUrl") or "none"},
)
pulumi.export("bucket", store)

"""IAM and resource policy documents as pure functions of names and ARNs.

Components render these with ``render_json``, so every document is deterministic JSON and can be
unit-tested without Pulumi. Components pass ARNs built from names (``infra.naming``) rather than
the ``arn`` outputs of resources: those are unknown until AWS creates the resource, which would
leave the whole document unknown on a stack's first preview, where no policy rule could read it.
The rules:

* no wildcard action in an identity policy (a role's policy) or in any ``Allow``, with one
  exception: a key policy lets the account root do ``kms:*``. That is AWS's default key policy,
  and what lets IAM policies grant the key at all; a root limited to a list of actions can
  delegate only those, and nobody could then ``kms:CreateGrant``, which a KMS-encrypted ECR
  repository, endpoint volumes and training volumes need. A ``Deny`` may cover a whole service
  (e.g. refusing every S3 call over plain HTTP): denying broadly is the safe direction;
* a ``*`` resource only where AWS requires it, each such case commented where it appears.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra import naming

PolicyDocument = dict[str, Any]
Statement = dict[str, Any]

VERSION = "2012-10-17"

KMS_SERVICE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
KMS_GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")
"""What an AWS service needs to attach the key to a resource it creates for the caller (volumes)."""
ECR_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents")


def document(*statements: Statement) -> PolicyDocument:
    """A policy document holding ``statements`` in the order given."""
    return {"Version": VERSION, "Statement": list(statements)}


def allow(sid: str, actions: Sequence[str], resources: Sequence[str], **extra: Any) -> Statement:
    """An ``Allow`` statement; actions and resources sorted so the rendering is stable."""
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": sorted(resources), **extra}


def _service(principal: str) -> dict[str, str]:
    return {"Service": principal}


def assume_role_policy(service_principal: str, account_id: str) -> PolicyDocument:
    """Trust policy letting one AWS service assume the role, only on behalf of this account."""
    return document(
        {
            "Sid": "AssumedByService",
            "Effect": "Allow",
            "Principal": _service(service_principal),
            "Action": ["sts:AssumeRole"],
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )


def deny_insecure_transport(sid: str, service: str, resources: Sequence[str]) -> Statement:
    """Refuse every call over plain HTTP. The only wildcard action allowed: inside a ``Deny``."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": [f"{service}:*"],
        "Resource": sorted(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def bucket_policy(bucket_arn: str, log_source_bucket_arn: str | None, account_id: str) -> PolicyDocument:
    """TLS only, no object written under another encryption than SSE-KMS.

    Objects written without an encryption header are encrypted by the bucket's default
    (the customer-managed key), so the second statement only has to refuse explicit
    downgrades such as SSE-S3. A log bucket (``log_source_bucket_arn`` set) also lets the S3
    logging service deliver the source bucket's access logs, and nothing else.
    """
    statements = [
        deny_insecure_transport("DenyInsecureTransport", "s3", [bucket_arn, f"{bucket_arn}/*"]),
        {
            "Sid": "DenyObjectsNotEncryptedWithKms",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:PutObject"],
            "Resource": [f"{bucket_arn}/*"],
            "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
    ]
    if log_source_bucket_arn is not None:
        statements.append(
            {
                "Sid": "AllowAccessLogDelivery",
                "Effect": "Allow",
                "Principal": _service("logging.s3.amazonaws.com"),
                "Action": ["s3:PutObject"],
                "Resource": [f"{bucket_arn}/access-logs/*"],
                "Condition": {
                    "ArnLike": {"aws:SourceArn": log_source_bucket_arn},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            }
        )
    return document(*statements)


def kms_key_policy(account_id: str, service_principals: Sequence[str] = ()) -> PolicyDocument:
    """A customer-managed key in AWS's default shape: IAM policies of the account decide who uses it.

    The first statement is AWS's own default key policy: the account root may do ``kms:*``, which
    does not open the key to everyone in the account but lets IAM policies grant it, grants
    included. The role policies then give each role exactly what it needs (``use_key``); a key
    policy naming those roles is not possible here, because KMS refuses a principal that does not
    exist yet and the roles are created after the key. Named AWS services may encrypt for this
    account. ``Resource: "*"`` is what AWS requires in a key policy: it means "this key", since
    a key policy is attached to exactly one key.
    """
    statements: list[Statement] = [
        {
            "Sid": "EnableIamPolicies",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",  # AWS's default key policy: IAM delegation, grants included
            "Resource": "*",  # required: a key policy's resource is always the key itself
        }
    ]
    if service_principals:
        statements.append(
            {
                "Sid": "ServicesEncryptForThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": sorted(service_principals)},
                "Action": sorted(KMS_SERVICE_ACTIONS),
                "Resource": "*",  # required: a key policy's resource is always the key itself
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        )
    return document(*statements)


def _ecr_pull(repository_arn: str) -> list[Statement]:
    return [
        allow("PullImages", ECR_PULL_ACTIONS, [repository_arn]),
        # required: ecr:GetAuthorizationToken has no resource-level permissions in AWS
        allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
    ]


def _logs(region: str, account_id: str, group_prefix: str) -> Statement:
    base = f"arn:aws:logs:{region}:{account_id}:log-group:{group_prefix}"
    return allow("WriteLogs", LOG_ACTIONS, [f"{base}*", f"{base}*:log-stream:*"])


def use_key(key_alias: str, region: str, account_id: str) -> list[Statement]:
    """A role's use of the key carrying ``key_alias``: data keys, and grants for AWS resources.

    The key is named by its alias (``kms:ResourceAliases``), not its ARN, because the ARN is
    unknown until the key exists and would leave the role's whole policy unknown at preview.
    Only one key of an account and region can carry an alias, so this is still one key. AWS
    notes that alias changes take up to five minutes to affect authorization.

    The grant statement is the "use with AWS services" statement of AWS's default key policy:
    SageMaker creates a grant to encrypt the volumes of the endpoints, training and processing
    jobs it runs for the role, and ``kms:GrantIsForAWSResource`` limits the role to grants that
    an AWS service creates for it.
    """
    keys = [naming.any_key_arn(region, account_id)]  # narrowed to one key by the alias condition
    alias = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": key_alias}}
    return [
        allow("UseKey", KMS_SERVICE_ACTIONS, keys, Condition=alias),
        allow(
            "GrantKeyToAwsResources",
            KMS_GRANT_ACTIONS,
            keys,
            Condition={**alias, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
    ]


def _put_metrics(namespace: str) -> Statement:
    # required: cloudwatch:PutMetricData has no resource-level permissions; the namespace
    # condition is how AWS scopes it.
    return allow(
        "PutMetrics",
        ["cloudwatch:PutMetricData"],
        ["*"],
        Condition={"StringEquals": {"cloudwatch:namespace": namespace}},
    )


def training_policy(
    *,
    bucket_arn: str,
    data_prefix: str,
    output_prefix: str,
    model_prefix: str,
    repository_arn: str,
    kms_key_alias: str,
    model_package_group: str,
    role_arn: str,
    region: str,
    account_id: str,
) -> PolicyDocument:
    """The training pipeline's role: read its data, write its output, run its jobs, register.

    The pipeline itself starts the training and processing jobs with this role, hence the
    ``iam:PassRole`` to itself, limited to SageMaker. The Register step's job registers with
    the registry's own code (``SageMakerRegistry.register``), also as this role: it reads and
    writes the service's content-addressed artifacts and their evaluation reports under
    ``model_prefix`` (``models/<service>/``) and tags them with their stage, lists that prefix
    (without ``s3:ListBucket`` S3 answers a missing key with 403, not the 404 the registry
    expects), and lists, describes and creates model packages in the service's own group. It
    never deletes an artifact or changes a version's approval.
    """
    return document(
        allow("ReadTrainingData", ["s3:GetObject"], [f"{bucket_arn}/{data_prefix}*"]),
        allow(
            "ListOwnPrefixes",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={
                "StringLike": {
                    "s3:prefix": sorted([f"{data_prefix}*", f"{output_prefix}*", f"{model_prefix}*"])
                }
            },
        ),
        allow("WriteTrainingOutput", ["s3:GetObject", "s3:PutObject"], [f"{bucket_arn}/{output_prefix}*"]),
        allow(
            "RegisterArtifacts",
            ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"],
            [f"{bucket_arn}/{model_prefix}*"],
        ),
        *_ecr_pull(repository_arn),
        _logs(region, account_id, "/aws/sagemaker/"),
        *use_key(kms_key_alias, region, account_id),
        allow(
            "RunPipelineJobs",
            [
                "sagemaker:AddTags",
                "sagemaker:CreateProcessingJob",
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeProcessingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:StopTrainingJob",
            ],
            [
                naming.sagemaker_arn(region, account_id, "processing-job", "*"),
                naming.sagemaker_arn(region, account_id, "training-job", "*"),
            ],
        ),
        allow(
            "RegisterModelPackages",
            [
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:ListModelPackages",
            ],
            [
                naming.sagemaker_arn(region, account_id, "model-package-group", model_package_group),
                naming.sagemaker_arn(region, account_id, "model-package", f"{model_package_group}/*"),
            ],
        ),
        allow(
            "PassOwnRoleToSageMaker",
            ["iam:PassRole"],
            [role_arn],
            Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    )


def serving_policy(
    *,
    bucket_arn: str,
    model_prefix: str,
    capture_prefix: str,
    repository_arn: str,
    kms_key_alias: str,
    alarm_arns: Sequence[str],
    region: str,
    account_id: str,
) -> PolicyDocument:
    """The endpoint's model role: read its own service's artifacts, write captured data, log.

    SageMaker reads the endpoint's auto-rollback alarms with this role during a deployment
    (the deployment-guardrails guide requires ``cloudwatch:DescribeAlarms`` on them); without
    it the alarms cannot roll anything back. It is scoped to ``alarm_arns``, the service's own.
    """
    return document(
        allow("ReadModelArtifacts", ["s3:GetObject"], [f"{bucket_arn}/{model_prefix}*"]),
        allow("WriteCapturedData", ["s3:PutObject"], [f"{bucket_arn}/{capture_prefix}*"]),
        *_ecr_pull(repository_arn),
        _logs(region, account_id, "/aws/sagemaker/Endpoints/"),
        *use_key(kms_key_alias, region, account_id),
        _put_metrics("/aws/sagemaker/Endpoints"),
        allow("ReadRollbackAlarms", ["cloudwatch:DescribeAlarms"], alarm_arns),
    )


def monitoring_policy(
    *,
    bucket_arn: str,
    capture_prefix: str,
    output_prefix: str,
    kms_key_alias: str,
    region: str,
    account_id: str,
) -> PolicyDocument:
    """The data-quality monitor's role: read captured data, write reports and metrics."""
    return document(
        allow("ReadCapturedData", ["s3:GetObject"], [f"{bucket_arn}/{capture_prefix}*"]),
        allow(
            "ListCapturedData",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={"StringLike": {"s3:prefix": [f"{capture_prefix}*"]}},
        ),
        allow("WriteReports", ["s3:PutObject"], [f"{bucket_arn}/{output_prefix}*"]),
        _logs(region, account_id, "/aws/sagemaker/ProcessingJobs"),
        *use_key(kms_key_alias, region, account_id),
        _put_metrics("aws/sagemaker/Endpoints/data-metrics"),
    )


def invoke_policy(endpoint_arn: str) -> PolicyDocument:
    """What a caller needs to send requests to one endpoint, and nothing more."""
    return document(
        allow(
            "InvokeEndpoint",
            ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
            [endpoint_arn],
        )
    )


def queue_policy(queue_arn: str, rule_arn: str) -> PolicyDocument:
    """Only the registry's EventBridge rule may send to the queue, and only over TLS."""
    return document(
        {
            "Sid": "EventBridgeRuleSends",
            "Effect": "Allow",
            "Principal": _service("events.amazonaws.com"),
            "Action": ["sqs:SendMessage"],
            "Resource": [queue_arn],
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        },
        deny_insecure_transport("DenyInsecureTransport", "sqs", [queue_arn]),
    )


def topic_policy(topic_arn: str, account_id: str) -> PolicyDocument:
    """CloudWatch alarms of this account publish to the alerts topic; plain HTTP is refused."""
    return document(
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": _service("cloudwatch.amazonaws.com"),
            "Action": ["sns:Publish"],
            "Resource": [topic_arn],
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
        deny_insecure_transport("DenyInsecureTransport", "sns", [topic_arn]),
    )


def model_package_group_read_policy(group_arn: str, reader_account_ids: Sequence[str]) -> PolicyDocument:
    """Let other accounts (e.g. a separate prod account) read, never write, one model package group."""
    package_arns = group_arn.replace(":model-package-group/", ":model-package/") + "/*"
    return document(
        {
            "Sid": "CrossAccountRead",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(f"arn:aws:iam::{account}:root" for account in reader_account_ids)},
            "Action": sorted(
                [
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListModelPackages",
                ]
            ),
            "Resource": sorted([group_arn, package_arns]),
        }
    )


def actions_of(policy: PolicyDocument) -> list[tuple[str, str]]:
    """Every (effect, action) pair in a document: what the wildcard checks look at."""
    pairs = []
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            pairs.append((str(statement.get("Effect")), str(action)))
    return pairs


def oidc_provider_arn(account_id: str, issuer: str) -> str:
    """The IAM OIDC identity provider of a cluster's issuer: the issuer URL without ``https://``."""
    return f"arn:aws:iam::{account_id}:oidc-provider/{issuer.removeprefix('https://')}"


def irsa_trust_policy(account_id: str, issuer: str, namespace: str, service_account: str) -> PolicyDocument:
    """Trust policy letting exactly one Kubernetes ServiceAccount assume the role (IRSA).

    The cluster's OIDC provider vouches for the pod's projected token; ``sub`` pins the role to
    ``system:serviceaccount:<namespace>:<name>`` and ``aud`` to STS, as the EKS guide writes it, so
    no other pod of the cluster (nor a token minted for another audience) can use the role.
    """
    host = issuer.removeprefix("https://")
    return document(
        {
            "Sid": "AssumedByServiceAccount",
            "Effect": "Allow",
            "Principal": {"Federated": oidc_provider_arn(account_id, issuer)},
            "Action": ["sts:AssumeRoleWithWebIdentity"],
            "Condition": {
                "StringEquals": {
                    f"{host}:aud": "sts.amazonaws.com",
                    f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                }
            },
        }
    )


def kserve_model_policy(
    *, bucket_arn: str, model_prefix: str, kms_key_alias: str, region: str, account_id: str
) -> PolicyDocument:
    """What KServe's storage initializer needs to fetch one service's packages, and nothing more.

    It lists the ``storageUri`` as a prefix before it downloads (``bucket.objects.filter(Prefix=…)``
    in kserve's ``kserve_storage.Storage._download_s3``), so besides ``s3:GetObject`` on the
    service's ``model_prefix`` it needs ``s3:ListBucket`` limited to that prefix; the objects are
    SSE-KMS encrypted, so it decrypts with the artifact key, named by its alias as in ``use_key``.
    The image pull is the node's role, not this one (the kubelet pulls, not the pod).
    """
    keys = [naming.any_key_arn(region, account_id)]  # narrowed to one key by the alias condition
    return document(
        allow("ReadModelPackages", ["s3:GetObject"], [f"{bucket_arn}/{model_prefix}*"]),
        allow(
            "ListModelPackages",
            ["s3:ListBucket"],
            [bucket_arn],
            Condition={"StringLike": {"s3:prefix": [f"{model_prefix}*"]}},
        ),
        allow(
            "DecryptModelPackages",
            ["kms:Decrypt"],
            keys,
            Condition={"ForAnyValue:StringEquals": {"kms:ResourceAliases": kms_key_alias}},
        ),
    )

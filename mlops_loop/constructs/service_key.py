"""Customer-managed KMS keys that named AWS services may use on this account's behalf."""

from __future__ import annotations

from typing import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


def service_key(
    scope: Construct,
    construct_id: str,
    *,
    key_alias: str,
    key_description: str,
    key_publishers: Sequence[str],
    key_removal_policy: RemovalPolicy,
) -> kms.Key:
    """A KMS key created directly in ``scope`` (its logical ID is that of ``construct_id`` there).

    Defaults: yearly rotation, a 30-day deletion window, ``key_removal_policy``; CloudWatch Logs may
    use it for this account's log groups in this region, and ``key_publishers`` (service principals
    such as ``events.amazonaws.com``) may encrypt and decrypt with it for this account only.
    """
    stack = Stack.of(scope)
    key = kms.Key(
        scope,
        construct_id,
        alias=key_alias,
        description=key_description,
        enable_key_rotation=True,
        pending_window=Duration.days(30),
        removal_policy=key_removal_policy,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            # Not kms:Describe* (as in the CloudWatch Logs guide's example): DescribeKey carries no
            # encryption context, so under this condition it was never allowed (policy lint).
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions={
                "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"}
            },
        )
    )
    if key_publishers:
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowPublishersOfThisAccount",
                principals=[iam.ServicePrincipal(p) for p in key_publishers],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
    return key

"""A customer-managed KMS key that named AWS services may use on this account's behalf."""

from __future__ import annotations

from typing import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class ServiceKey(Construct):
    """A rotating KMS key (``key``) usable by CloudWatch Logs for this account's log groups and by
    ``key_publishers`` (service principals such as ``events.amazonaws.com``) for this account only.

    Default: yearly rotation, a 30-day deletion window, the given removal policy.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key_alias: str,
        key_description: str,
        key_publishers: Sequence[str],
        key_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            alias=key_alias,
            description=key_description,
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=key_removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"}
                },
            )
        )
        if key_publishers:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowPublishersOfThisAccount",
                    principals=[iam.ServicePrincipal(p) for p in key_publishers],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
                )
            )

"""Customer-managed KMS keys that named AWS services may use on this account's behalf."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from .cdk_reads import days, environment_of, service_principal

# The shortest wait before KMS deletes a key of this app: the template's own window, and the least ScheduleKeyDeletion
# may ask for (KMS allows 7-30 days; 30 is its default when the request names none).
DELETION_WINDOW_DAYS = 30


def service_key(
    scope: Construct,
    construct_id: str,
    *,
    alias: str,
    description: str,
    publishers: Sequence[str],
    removal_policy: RemovalPolicy,
    publisher_sources: Optional[Mapping[str, str]] = None,
    unbound_publishers: Sequence[str] = (),
    log_groups: bool = True,
) -> kms.Key:
    """A KMS key created directly in ``scope`` (its logical ID is that of ``construct_id`` there).

    Defaults: yearly rotation, a 30-day deletion window, ``removal_policy``; nobody, whatever IAM grants them, may
    schedule its deletion with a shorter window (a key policy Deny on ``kms:ScheduleKeyDeletion`` when
    ``kms:ScheduleKeyDeletionPendingWindowInDays`` is below 30: nothing else is denied, so neither CloudFormation's
    deletion of the key, which asks for the template's 30 days, nor any other use is affected); CloudWatch Logs may
    use it for this account's log groups in this region, and ``publishers`` (service principals
    such as ``cloudwatch.amazonaws.com``) may encrypt and decrypt with it for this account only; a
    publisher in ``publisher_sources`` only for sources matching its ``aws:SourceArn`` pattern too. A
    publisher in ``unbound_publishers`` gets no source condition: for a delivery that does not send one
    to KMS, a source condition in the key policy would deny it (bind it in the target's policy instead).
    ``log_groups=False`` leaves CloudWatch Logs out, for a key no log group uses (a topic's own key).
    """
    environment = environment_of(scope)
    key = kms.Key(
        scope,
        construct_id,
        alias=alias,
        description=description,
        enable_key_rotation=True,
        pending_window=days(DELETION_WINDOW_DAYS),
        removal_policy=removal_policy,
    )
    # The template's window binds CloudFormation only: a principal with kms:* from IAM (the account statement lets IAM
    # grant it) could schedule deletion with 7 days, and the key is unusable from that moment and its data unreadable
    # for ever a week later. 30 days leaves time to notice (the Operations stack's key-change notice) and cancel. A
    # request without a window gets KMS's default, 30, and carries no key: the condition is false, nothing denied.
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="DenyDeletionWithinThirtyDays",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["kms:ScheduleKeyDeletion"],
            resources=["*"],
            conditions={"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": str(DELETION_WINDOW_DAYS)}},
        )
    )
    if log_groups:
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[service_principal(f"logs.{environment.region}.amazonaws.com")],
                # Not kms:Describe* (as in the CloudWatch Logs guide's example): DescribeKey carries no
                # encryption context, so under this condition it was never allowed (policy lint).
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{environment.partition}:logs:{environment.region}:{environment.account}:*"}
                },
            )
        )
    sources = dict(publisher_sources or {})
    unknown = (set(sources) | set(unbound_publishers)) - set(publishers)
    if unknown:
        raise ValueError(f"{construct_id}: publisher_sources / unbound_publishers name {sorted(unknown)}, "
                         "which are not publishers")
    account = {"StringEquals": {"aws:SourceAccount": environment.account}}

    def allow(sid: str, publishers: Sequence[str], conditions: Optional[dict]) -> None:
        if publishers:
            key.add_to_resource_policy(iam.PolicyStatement(
                sid=sid, principals=[service_principal(p) for p in publishers], actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"], conditions=conditions))

    unbound = [p for p in publishers if p in unbound_publishers]
    allow("AllowPublishersUnbound", unbound, None)
    allow("AllowPublishersOfThisAccount", [p for p in publishers if p not in sources and p not in unbound], account)
    for publisher, source_arn in sources.items():
        allow("AllowPublisher" + "".join(part.capitalize() for part in publisher.split(".")[0].split("-")), [publisher],
              {**account, "ArnLike": {"aws:SourceArn": source_arn}})
    return key

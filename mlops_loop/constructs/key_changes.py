"""People hear when someone schedules the deletion of, disables or replaces the policy of one of the environment's KMS
keys: each of those makes every use of the key fail from that moment (and, once deleted, its data unreadable for
ever), and nothing else in the app would say why."""

from __future__ import annotations

from typing import Mapping

from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .cdk_reads import environment_of, event_field, read_once
from .rule_notifications import notify_topic

# The calls that stop a key serving: scheduled deletion (PendingDeletion), DisableKey (Disabled) and PutKeyPolicy (a new
# policy may drop the grants of the services that use it, or the Deny of a short deletion window).
KEY_CHANGES = ("ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy")


def notify_key_changes(
    scope: Construct,
    construct_id: str,
    *,
    name_prefix: str,
    keys: Mapping[str, kms.IKey],
    topic: sns.ITopic,
    dead_letter_queue: sqs.IQueue,
) -> events.Rule:
    """A rule ``construct_id`` publishing to ``topic`` every successful :data:`KEY_CHANGES` call on one of ``keys``
    (each key's alias -> the key), with what it breaks and the commands that undo it; undeliverable notices go to
    ``dead_letter_queue``.

    The events are CloudTrail's ("AWS API Call via CloudTrail", source ``aws.kms``): EventBridge receives them only while
    a CloudTrail trail logs the account's management events in this region (EventBridge User Guide,
    eb-service-event-cloudtrail), which this app does not create. ``requestParameters.keyId`` is the key as the caller
    named it, its key ID or its key ARN (these three calls take no alias; KMS Developer Guide, CloudTrail examples of
    ScheduleKeyDeletion), so the pattern lists both of each key. A refused call (``errorCode`` set: e.g. a window under 30
    days, which the key policy denies) changed nothing and is not told.
    """
    if not keys:
        raise ValueError("notify_key_changes: no keys given; a rule matching no key tells nobody anything")
    region = environment_of(scope).region
    field = event_field
    key = field("$.detail.requestParameters.keyId")
    # Aliases, not ARNs: the notice stays plain text (an ARN is another stack's output here), and says what each key is.
    legend = ", ".join(sorted(keys))
    rule = events.Rule(
        scope,
        construct_id,
        description=f"Tell people when a KMS key of {name_prefix} is scheduled for deletion, disabled or given a new policy",
        event_pattern=events.EventPattern(
            source=["aws.kms"],
            detail_type=["AWS API Call via CloudTrail"],
            detail={
                "eventSource": ["kms.amazonaws.com"],
                "eventName": list(KEY_CHANGES),
                "requestParameters": {"keyId": [ident for k in keys.values()
                                                for ident in (read_once(k, "key_id"), read_once(k, "key_arn"))]},
                "errorCode": [{"exists": False}],
            },
        ),
    )
    notify_topic(rule, topic, dead_letter_queue=dead_letter_queue, message=events.RuleTargetInput.from_text(
        f"{name_prefix}: {field('$.detail.eventName')} on KMS key {key} by {field('$.detail.userIdentity.arn')} at "
        f"{field('$.detail.eventTime')}. The environment's keys: {legend} (which one this is: aws kms list-aliases "
        f"--key-id {key} --region {region}). A key pending deletion or disabled fails every "
        "use from now on: Glue jobs, the drift monitor, data capture, new endpoint instances, the deploy handler's ledger, "
        "notices through it; once deleted (at the end of its window) what it encrypted - registry artefacts, approval "
        "ledger, labels, the Feature Store - is unreadable for ever. Undo a scheduled deletion: aws kms "
        f"cancel-key-deletion --key-id {key} --region {region}, then (a cancelled key is left disabled) aws kms "
        f"enable-key --key-id {key} --region {region}. Undo DisableKey: aws kms enable-key --key-id {key} --region "
        f"{region}. PutKeyPolicy: compare aws kms get-key-policy --key-id {key} --policy-name default --region {region} "
        "with the KeyPolicy of that key in the Storage stack's template and put the template's back with put-key-policy "
        "(cdk deploy does not restore it while the template is unchanged). docs/deploying.md, Recovering an environment: a KMS key "
        "scheduled for deletion, disabled or given a new policy."))
    return rule

"""What may publish to the SNS topic that notifies people: EventBridge rules, each by its own ARN, and the
environment's CloudWatch alarms, by their name prefix."""

from __future__ import annotations

from typing import Optional

import jsii
from aws_cdk import ArnFormat, Names
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from .cdk_reads import environment_of, read_once, service_principal, stack_of

EVENTS = "events.amazonaws.com"
CLOUDWATCH = "cloudwatch.amazonaws.com"

# Every kind of notice an EventBridge rule publishes to people, by the rule's construct id (which the rule's name,
# the RULE_ARN attribute of a notice it could not deliver, contains) -> what it tells and what to do when it was not
# delivered. The notification dead-letter page names each (OperationsStack._dead_letter_alarms); a new rule that
# dead-letters into that queue joins here (test_operations_stack.py checks every such rule of the template).
NOTICE_KINDS = {
    "ApprovalRequests": "a version awaits approval: review it",
    "PipelineFailures": "a training run failed or its gate refused: read its steps",
    "EtlFailures": "an ETL job failed: no fresh data until it reruns",
    "CrawlerFailures": "a raw crawler failed: its ETL did not run",
    "FailedRollouts": "a serving update failed or rolled back: a version is held until decided",
    "EndpointLosses": "an endpoint deleted, failed or out of service: reconcile it",
    "KeyChanges": "a KMS key deletion, disable or new policy: undo it if unintended",
    "MonitorJobFailures": "a drift-monitor run failed: no report",
    "TransformJobFailures": "a batch transform failed: nothing scored",
    "NativeMonitorFailures": "a native Model Monitor run failed",
}


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """``targets.SnsTopic`` without its unconditioned grant (see :func:`notify_topic`)."""

    def __init__(self, topic: sns.ITopic, dead_letter_queue: sqs.IQueue, message: Optional[events.RuleTargetInput]) -> None:
        self._topic, self._queue, self._message = topic, dead_letter_queue, message

    def bind(self, rule: events.IRule, id: Optional[str] = None) -> events.RuleTargetConfig:  # noqa: A002 (jsii name)
        # As targets.SnsTopic does for its dead-letter queue: only this rule may send to it.
        self._queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"AllowEventRule{Names.node_unique_id(rule.node)}",
                principals=[service_principal(EVENTS)],
                actions=["sqs:SendMessage"],
                resources=[read_once(self._queue, "queue_arn")],
                conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
            )
        )
        return events.RuleTargetConfig(
            arn=read_once(self._topic, "topic_arn"),
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=read_once(self._queue, "queue_arn")),
            input=self._message,
            target_resource=self._topic,
        )


def notify_topic(rule: events.Rule, topic: sns.ITopic, *, dead_letter_queue: sqs.IQueue,
                 message: Optional[events.RuleTargetInput] = None) -> None:
    """Target ``rule`` at ``topic``; the topic policy lets EventBridge publish for this rule of this account only.

    People get the matched event as JSON, or ``message`` (an input transformer: e.g. ``RuleTargetInput.from_text``
    with ``EventField`` paths) when given. Events EventBridge cannot deliver go to ``dead_letter_queue`` (the
    environment's notification dead-letter queue: not a handler's, so its alarm means "people were not told").

    ``targets.SnsTopic`` grants ``events.amazonaws.com`` ``sns:Publish`` with no condition, so any
    rule of any account could publish to the topic (a confused deputy). Here the topic gets one
    statement per rule with ``aws:SourceAccount`` and ``aws:SourceArn`` (the rule's ARN): EventBridge
    names the rule as the source of its deliveries to resource-policy targets (EventBridge User Guide,
    eb-use-resource-based, and cross-service-confused-deputy-prevention: ``aws:SourceArn`` is
    ``arn:aws:events:region:account-id:rule/rule-name``), as the Lambda permissions and dead-letter
    queue policies CDK writes for these rules already require.
    """
    rule.add_target(_TopicTarget(topic, dead_letter_queue, message))
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid=f"Publish{rule.node.id}",
            principals=[service_principal(EVENTS)],
            actions=["sns:Publish"],
            resources=[read_once(topic, "topic_arn")],
            conditions={
                "StringEquals": {"aws:SourceAccount": environment_of(rule).account},
                "ArnEquals": {"aws:SourceArn": rule.rule_arn},
            },
        )
    )


def allow_alarms(topic: sns.ITopic, *, alarm_name_prefix: str) -> None:
    """Let the alarms of this account named ``<alarm_name_prefix>-...`` publish to ``topic``.

    A topic with a policy of its own (``notify_topic`` and ``enforce_ssl`` give it one) no longer has SNS's
    default policy, which let the account's services publish: without this statement every alarm action on the
    topic fails with "not authorized to perform: SNS:Publish", visible only in the alarm's history (AWS Knowledge
    Center, cloudwatch-receive-sns-for-alarm-trigger). CloudWatch names the alarm as the source, as it does to the
    topic's key (``storage_stack``'s ops key grants the same alarms).
    """
    stack = stack_of(topic)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="PublishAlarms",
            principals=[service_principal(CLOUDWATCH)],
            actions=["sns:Publish"],
            resources=[read_once(topic, "topic_arn")],
            conditions={
                "StringEquals": {"aws:SourceAccount": environment_of(stack).account},
                "ArnLike": {"aws:SourceArn": stack.format_arn(
                    service="cloudwatch", resource="alarm", resource_name=f"{alarm_name_prefix}-*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME)},
            },
        )
    )

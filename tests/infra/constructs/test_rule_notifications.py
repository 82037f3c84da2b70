"""notify_topic and allow_alarms, built in a bare stack: a rule that tells people through a topic, which only that rule
may publish to, and the alarms of one name prefix that may publish to it too."""

from __future__ import annotations

from aws_cdk import Environment, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.rule_notifications import allow_alarms, notify_topic
from tests.support.cdk_outdirs import bare_outdir

EVENTS = {"Service": "events.amazonaws.com"}


def _notified(*rule_ids: str, alarm_name_prefix: str | None = None) -> tuple[Stack, dict]:
    """GIVEN a bare stack with a topic and a dead-letter queue WHEN one rule per id is made to notify the topic (and
    the alarms of ``alarm_name_prefix`` are allowed to)."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    topic = sns.Topic(stack, "Topic")
    queue = sqs.Queue(stack, "DeadLetters")
    rules = {}
    for rule_id in rule_ids:
        rules[rule_id] = events.Rule(stack, rule_id, event_pattern=events.EventPattern(source=["aws.sagemaker"]))
        notify_topic(rules[rule_id], topic, dead_letter_queue=queue)
    if alarm_name_prefix:
        allow_alarms(topic, alarm_name_prefix=alarm_name_prefix)
    ids = {name: stack.get_logical_id(c.node.default_child) for name, c in (("topic", topic), ("queue", queue), *rules.items())}
    return stack, {"template": Template.from_stack(stack), "ids": ids}


def _policy_statements(template: Template, cfn_type: str) -> list[dict]:
    (policy,) = template.find_resources(cfn_type).values()
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_the_rule_targets_the_topic_with_the_dead_letter_queue_and_no_role():
    """GIVEN a rule notifying a topic THEN its one target is the topic, failed deliveries go to the queue, no role is assumed."""
    _, made = _notified("PipelineFailures")
    ids = made["ids"]
    rule = made["template"].find_resources("AWS::Events::Rule")[ids["PipelineFailures"]]
    assert rule["Properties"]["Targets"] == [
        {"Arn": {"Ref": ids["topic"]}, "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [ids["queue"], "Arn"]}}, "Id": "Target0"}
    ]


def test_the_topic_policy_lets_eventbridge_publish_only_for_this_rule_of_this_account():
    _, made = _notified("PipelineFailures")
    ids = made["ids"]
    assert _policy_statements(made["template"], "AWS::SNS::TopicPolicy") == [{
        "Sid": "PublishPipelineFailures",
        "Effect": "Allow",
        "Principal": EVENTS,
        "Action": "sns:Publish",
        "Resource": {"Ref": ids["topic"]},
        "Condition": {
            "StringEquals": {"aws:SourceAccount": "123456789012"},
            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [ids["PipelineFailures"], "Arn"]}},
        },
    }]


def test_the_dead_letter_queue_takes_messages_from_eventbridge_only_for_this_rule():
    _, made = _notified("PipelineFailures")
    ids = made["ids"]
    (statement,) = _policy_statements(made["template"], "AWS::SQS::QueuePolicy")
    assert statement["Sid"].startswith("AllowEventRule") and statement["Principal"] == EVENTS
    assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == {"Fn::GetAtt": [ids["queue"], "Arn"]}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [ids["PipelineFailures"], "Arn"]}}}


def test_each_rule_gets_its_own_publish_statement_and_none_is_unconditioned():
    """GIVEN two rules on one topic THEN two statements, each pinned to its own rule (no grant to every rule of every account)."""
    _, made = _notified("PipelineFailures", "FailedRollouts")
    ids = made["ids"]
    statements = {s["Sid"]: s for s in _policy_statements(made["template"], "AWS::SNS::TopicPolicy")}
    assert set(statements) == {"PublishPipelineFailures", "PublishFailedRollouts"}
    for rule_id, statement in (("PipelineFailures", statements["PublishPipelineFailures"]),
                               ("FailedRollouts", statements["PublishFailedRollouts"])):
        assert statement["Condition"]["ArnEquals"] == {"aws:SourceArn": {"Fn::GetAtt": [ids[rule_id], "Arn"]}}
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    queue_sids = {s["Sid"] for s in _policy_statements(made["template"], "AWS::SQS::QueuePolicy")}
    assert len(queue_sids) == 2


def test_the_alarms_of_the_prefix_may_publish_to_a_topic_that_has_a_policy():
    """GIVEN a topic with a policy (a rule notifies it: SNS's default policy no longer applies)
    WHEN the alarms named ``shop-dev-...`` are allowed
    THEN CloudWatch may publish for those alarms of this account alone."""
    _, made = _notified("PipelineFailures", alarm_name_prefix="shop-dev")
    statements = {s["Sid"]: s for s in _policy_statements(made["template"], "AWS::SNS::TopicPolicy")}
    assert statements["PublishAlarms"] == {
        "Sid": "PublishAlarms",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": {"Ref": made["ids"]["topic"]},
        "Condition": {
            "StringEquals": {"aws:SourceAccount": "123456789012"},
            "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:shop-dev-*"},
        },
    }
    # AND the rule's own statement is still there
    assert statements["PublishPipelineFailures"]["Principal"] == EVENTS


def test_a_message_replaces_the_event_json_with_an_input_transformer():
    """GIVEN a rule notifying the topic with a message WHEN synthesized THEN the target sends that text (event fields
    filled in by EventBridge), still with the dead-letter queue."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    topic, queue = sns.Topic(stack, "Topic"), sqs.Queue(stack, "DeadLetters")
    rule = events.Rule(stack, "JobFailures", event_pattern=events.EventPattern(source=["aws.sagemaker"]))
    notify_topic(rule, topic, dead_letter_queue=queue, message=events.RuleTargetInput.from_text(
        f"job {events.EventField.from_path('$.detail.TransformJobName')} failed"))
    (target,) = Template.from_stack(stack).find_resources("AWS::Events::Rule")[
        stack.get_logical_id(rule.node.default_child)]["Properties"]["Targets"]
    assert target["InputTransformer"] == {"InputPathsMap": {"detail-TransformJobName": "$.detail.TransformJobName"},
                                          "InputTemplate": '"job <detail-TransformJobName> failed"'}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [stack.get_logical_id(queue.node.default_child), "Arn"]}}

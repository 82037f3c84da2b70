"""RetrainingTrigger, built in a bare stack: drift alarms, schedules and an hourly sweep start a model's pipeline through one guarded function."""

from __future__ import annotations

import json
from typing import Optional

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from pipeline_code.core.contract import RETRAIN_ALARMS, retraining_pause_parameter
from pipeline_code.handlers.retrain_trigger import settings_of
from mlops_loop.constructs.retraining_trigger import RetrainingTrigger, retrain_trigger_function_name
from tests.support.cdk_outdirs import bare_outdir

PIPELINES = {"churn": "shop-dev-churn", "credit-risk": "Shop-Dev-Credit-Risk"}
# Each model's retrain alarms (<prefix>-<model>-retrain-<name>), as the loop's alarms name them.
ALARMS = RETRAIN_ALARMS


def _trigger(schedule: Optional[str] = "cron(0 4 ? * SUN *)", team_models: tuple[str, ...] = ()
             ) -> tuple[Stack, RetrainingTrigger, Template, dict[str, str]]:
    """GIVEN a bare stack with a key WHEN a trigger for two models' pipelines is added (``team_models``: of a team with a
    topic of its own) THEN it, its template and logical ids."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    key = kms.Key(stack, "Key")
    topic = sns.Topic(stack, "Topic", master_key=key)
    team_topic = sns.Topic(stack, "TeamTopic", master_key=key, topic_name="shop-dev-fraud-notifications")
    trigger = RetrainingTrigger(stack, "Trigger", name_prefix="shop-dev", pipelines=PIPELINES, cooldown_hours=12,
                                max_starts_per_day=2, failures_before_pause=3, environment_name="dev", topic=topic,
                                schedule=schedule, key=key, log_retention=logs.RetentionDays.ONE_WEEK,
                                removal_policy=RemovalPolicy.RETAIN,
                                team_topics={model: team_topic for model in team_models})
    ids = {
        "team_topic": stack.get_logical_id(team_topic.node.default_child),
        "topic": stack.get_logical_id(topic.node.default_child),
        "function": stack.get_logical_id(trigger.function.node.default_child),
        "queue": stack.get_logical_id(trigger.dead_letter_queue.node.default_child),
        "key": stack.get_logical_id(key.node.default_child),
    }
    return stack, trigger, Template.from_stack(stack), ids


def _statements(template: Template, prefix: str) -> dict[str, dict]:
    (policy,) = [p for k, p in template.find_resources("AWS::IAM::ManagedPolicy").items() if k.startswith(prefix)]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_the_function_is_named_after_the_prefix_and_runs_one_at_a_time():
    """Reserved concurrency 1 serialises the guard: two alarms arriving together cannot both pass it."""
    _, _, template, _ = _trigger()
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["FunctionName"] == retrain_trigger_function_name("shop-dev") == "shop-dev-retrain-trigger"
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1
    assert function["Properties"]["Handler"] == "pipeline_code.handlers.retrain_trigger.handler"


def test_the_function_knows_its_pipelines_its_cooldown_and_which_pipeline_each_retrain_alarm_starts():
    _, _, template, ids = _trigger()
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    env = function["Properties"]["Environment"]["Variables"]
    assert env == {"NAME_PREFIX": "shop-dev", "MODEL_PIPELINES": json.dumps(PIPELINES, sort_keys=True, separators=(",", ":")),
                   "COOLDOWN_HOURS": "12", "MAX_STARTS_PER_DAY": "2", "FAILURES_BEFORE_PAUSE": "3", "ENVIRONMENT": "dev",
                   "TOPIC_ARN": {"Ref": ids["topic"]}}
    # AND the function reads from them the pipelines it may start and which pipeline each retrain alarm starts
    settings = settings_of(env)
    assert settings["allowed"] == {"Shop-Dev-Credit-Risk", "shop-dev-churn"} and settings["cooldown_hours"] == 12
    assert settings["max_starts_per_day"] == 2  # the storm guard's allowance, in its own 24-hour window
    assert settings["alarm_pipelines"] == {
        f"shop-dev-{model}-retrain-{alarm}": pipeline for model, pipeline in PIPELINES.items() for alarm in ALARMS
    }


def test_the_role_may_start_and_list_only_these_pipelines_and_describe_only_their_retrain_alarms():
    _, _, template, _ = _trigger()
    statements = _statements(template, "TriggerAccess")
    arns = ["arn:aws:sagemaker:eu-west-1:123456789012:pipeline/shop-dev-churn",
            "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/shop-dev-credit-risk"]
    assert statements["GuardedStart"]["Action"] == ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"]
    assert statements["GuardedStart"]["Resource"] == arns
    assert statements["ReadRunSteps"]["Resource"] == [f"{arn}/execution/*" for arn in arns]
    assert statements["SweepRetrainAlarms"]["Resource"] == sorted(
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:shop-dev-{model}-retrain-{alarm}" for model in PIPELINES for alarm in ALARMS)


def test_the_function_is_told_where_the_on_call_pause_of_the_environment_and_of_each_model_is():
    _, _, template, _ = _trigger()
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    settings = settings_of(function["Properties"]["Environment"]["Variables"])
    assert settings["pause_parameter"] == retraining_pause_parameter("shop-dev") == "/shop-dev/retraining/paused"
    assert settings["model_pause_parameters"] == {
        "shop-dev-churn": "/shop-dev/retraining/paused-models/churn",
        "Shop-Dev-Credit-Risk": "/shop-dev/retraining/paused-models/credit-risk",
    }
    # every pipeline the function may start has its model's pause
    assert set(settings["model_pause_parameters"]) == settings["allowed"]


def test_the_role_may_read_exactly_the_pause_parameters_and_no_deploy_creates_them():
    """The pause is on-call's, not the template's: no AWS::SSM::Parameter (a deploy would create, revert or delete it),
    and the function may only read (GetParameters) the environment's and its models' parameters."""
    _, _, template, _ = _trigger()
    assert template.find_resources("AWS::SSM::Parameter") == {}
    statement = _statements(template, "TriggerAccess")["ReadRetrainingPause"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "ssm:GetParameters"
    assert statement["Resource"] == [
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop-dev/retraining/paused",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop-dev/retraining/paused-models/churn",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop-dev/retraining/paused-models/credit-risk",
        # when the environment and each model were last resumed (the circuit breaker counts failures after it)
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop-dev/retraining/resumed",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop-dev/retraining/resumed-models/churn",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop-dev/retraining/resumed-models/credit-risk",
    ]
    # The circuit breaker writes (and lifts) each model's pause, never the environment's (a person's switch)
    breaker = _statements(template, "TriggerAccess")["CircuitBreakerPause"]
    assert sorted(breaker["Action"]) == ["ssm:DeleteParameter", "ssm:PutParameter"]
    assert breaker["Resource"] == [
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop-dev/retraining/paused-models/churn",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop-dev/retraining/paused-models/credit-risk",
    ]
    assert not any("ssm:" in str(s["Action"]) for sid, s in _statements(template, "TriggerAccess").items()
                   if sid not in ("ReadRetrainingPause", "CircuitBreakerPause"))


def test_a_models_retrain_alarm_entering_alarm_starts_its_pipeline_for_drift():
    _, trigger, template, ids = _trigger()
    assert list(trigger.rules) == ["churn", "credit-risk"]
    rules = template.find_resources("AWS::Events::Rule")
    rule = rules[Stack.of(trigger).get_logical_id(trigger.rules["credit-risk"].node.default_child)]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [{"prefix": "shop-dev-credit-risk-retrain-"}], "state": {"value": ["ALARM"]}},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [ids["function"], "Arn"]}
    assert target["InputTransformer"] == {
        "InputPathsMap": {"detail-alarmName": "$.detail.alarmName", "id": "$.id"},
        "InputTemplate": '{"pipeline":"Shop-Dev-Credit-Risk","reason":"drift","alarm":<detail-alarmName>,"source_event_id":<id>}',
    }
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids["queue"], "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}


def _schedules(template: Template) -> dict[str, dict]:
    return {json.dumps(json.loads(s["Properties"]["Target"]["Input"]), sort_keys=True): s["Properties"]
            for s in template.find_resources("AWS::Scheduler::Schedule").values()}


def test_with_a_schedule_each_model_is_retrained_on_it_and_the_sweep_runs_hourly():
    _, trigger, template, ids = _trigger("cron(0 4 ? * SUN *)")
    assert list(trigger.schedules) == ["churn", "credit-risk"]
    schedules = _schedules(template)
    assert set(schedules) == {
        '{"pipeline": "shop-dev-churn", "reason": "schedule"}',
        '{"pipeline": "Shop-Dev-Credit-Risk", "reason": "schedule"}',
        '{"reason": "sweep"}',
    }
    for payload, schedule in schedules.items():
        expected = "rate(1 hour)" if "sweep" in payload else "cron(0 4 ? * SUN *)"
        assert schedule["ScheduleExpression"] == expected and schedule["ScheduleExpressionTimezone"] == "UTC"
        target = schedule["Target"]
        assert target["Arn"] == {"Fn::GetAtt": [ids["function"], "Arn"]}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [ids["queue"], "Arn"]}}
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}


def test_without_a_schedule_only_alarms_and_the_sweep_start_retraining():
    _, trigger, template, _ = _trigger(None)
    assert trigger.schedules == {}
    assert list(_schedules(template)) == ['{"reason": "sweep"}']
    assert len(template.find_resources("AWS::Events::Rule")) == 2


def test_the_schedules_role_of_this_account_may_invoke_only_the_trigger_and_dead_letter_into_its_queue():
    _, trigger, template, ids = _trigger()
    (role_id, role), = [(k, r) for k, r in template.find_resources("AWS::IAM::Role").items() if k.startswith("TriggerSchedulerRole")]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert {s["Target"]["RoleArn"]["Fn::GetAtt"][0] for s in _schedules(template).values()} == {role_id}
    statements = _statements(template, "TriggerSchedulerAccess")
    assert list(statements) == ["InvokeTrigger", "DeadLetters", "DeadLetterKey"]
    assert statements["InvokeTrigger"]["Resource"] == {"Fn::GetAtt": [ids["function"], "Arn"]}
    assert statements["DeadLetters"]["Resource"] == {"Fn::GetAtt": [ids["queue"], "Arn"]}
    assert statements["DeadLetterKey"]["Resource"] == {"Fn::GetAtt": [ids["key"], "Arn"]}
    assert trigger.sweep.schedule_expression == "rate(1 hour)"


def test_the_breaker_of_a_teams_model_is_told_its_team_topic_and_may_publish_there():
    """GIVEN churn of a team with a topic of its own WHEN the trigger is built THEN TEAM_TOPICS names that topic with
    churn's package group (the deploy handler's format), the role may publish to it and the environment's topic, and the
    function reads churn's page as its team's."""
    _, _, template, ids = _trigger(team_models=("churn",))
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    assert json.loads(variables["TEAM_TOPICS"]) == {"shop-dev-fraud-notifications": ["shop-dev-churn"]}
    resources = _statements(template, "TriggerAccess")["CircuitBreakerPage"]["Resource"]
    assert sorted(r["Ref"] for r in resources) == sorted([ids["topic"], ids["team_topic"]])
    team = "arn:aws:sns:eu-west-1:123456789012:shop-dev-fraud-notifications"
    topics = settings_of({**variables, "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:env"})["topic_arn"]
    assert topics.of(PIPELINES["churn"]) == team
    assert topics.of(PIPELINES["credit-risk"]) == "arn:aws:sns:eu-west-1:123456789012:env"


def test_without_owners_the_trigger_has_no_team_topics_and_a_model_it_does_not_retrain_is_refused():
    _, _, template, _ = _trigger()
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert "TEAM_TOPICS" not in function["Properties"]["Environment"]["Variables"]
    with pytest.raises(ValueError, match=r"^RetrainingTrigger: team_topics names model 'm7', which pipelines does not$"):
        _trigger(team_models=("m7",))

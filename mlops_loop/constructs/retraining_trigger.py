"""Closing the loop: drift alarms and schedules start a model's training pipeline, at most once at a time."""

from __future__ import annotations

import json
from typing import Mapping, Optional

from aws_cdk import ArnFormat, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline_code.core.contract import package_group_name, pascal, retrain_alarm_prefix, retrain_trigger_names

from .access_policy import AccessPolicy
from .arns import format_arn
from ..config.network import NetworkConfig
from .cdk_reads import environment_of, event_field, hours, read_once, stack_of
from .handler_function import dead_letter_queue, handler_function, team_topic_arns, team_topics_variable


def retrain_trigger_function_name(prefix: str) -> str:
    """``<prefix>-retrain-trigger``: the function that starts training pipelines (named, so other stacks can deny it)."""
    return f"{prefix}-retrain-trigger"


class RetrainingTrigger(Construct):
    """One guarded trigger function for all of an environment's training pipelines.

    * An EventBridge rule per model forwards CloudWatch alarms named
      ``<prefix>-<model>-retrain-*`` entering ALARM (e.g. data drift, model quality) with
      ``reason=drift``.
    * An EventBridge Scheduler schedule per model (when ``schedule`` is set) sends
      ``reason=schedule``.
    * An hourly schedule sends ``reason=sweep``: CloudWatch signals only an alarm's entry into ALARM, so
      the function asks which retrain alarms are still in ALARM and retrains those models once their
      cooldown is over (it may describe exactly those alarms).
    * The function (``pipeline_code/handlers/retrain_trigger.py``) starts the pipeline with
      ``TriggerReason`` unless on-call paused retraining, an execution is running, ``max_starts_per_day``
      executions started in the last 24 hours (the storm guard, whatever the cooldown) or one that answered the
      drift started within ``cooldown_hours``; after ``failures_before_pause`` consecutive failed runs it started (the
      circuit breaker) it creates the model's pause itself and pages once on ``topic``. The pause is an SSM parameter per environment and per model
      (``retraining_pause_parameter``) that this construct does *not* create: a deploy never reverts it. The
      function may read exactly those parameters (it derives their names, as its pipelines' alarms', from
      ``NAME_PREFIX`` and ``MODEL_PIPELINES``). Reserved concurrency 1 serialises the guard, so two alarms
      arriving together cannot both pass it. Failed invocations go to an encrypted dead-letter
      queue after two retries; malformed events are logged and dropped by the handler.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        pipelines: Mapping[str, str],
        cooldown_hours: int,
        max_starts_per_day: int,
        failures_before_pause: int,
        environment_name: str,
        topic: sns.ITopic,
        schedule: Optional[str],
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        network: Optional[NetworkConfig] = None,
        team_topics: Optional[Mapping[str, sns.ITopic]] = None,
        cli_config: Optional[str] = None,
    ) -> None:
        """``pipelines`` maps each model name to its training pipeline name; ``cli_config`` (default None: the default
        config) the ``--config`` of the resume command the circuit breaker's page gives (``CLI_CONFIG``); ``team_topics``: the topic of each model of
        a team (models of several teams: the Operations stack's ``topic_of``; default: none), where the circuit
        breaker pages about that model instead of ``topic`` (``TEAM_TOPICS``, the deploy handler's format); the
        function may publish to those topics and ``topic``, no other."""
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        by_topic = team_topics_variable("RetrainingTrigger", "pipelines", team_topics,
                                        {model: package_group_name(name_prefix, model) for model in pipelines})
        self.dead_letter_queue = dead_letter_queue(self, key=key, removal_policy=removal_policy, owner="retrain trigger")
        # Every retrain alarm (what the hourly sweep asks CloudWatch about) and the on-call pause of the environment
        # and of each model: the function derives the same names from NAME_PREFIX and MODEL_PIPELINES, and its role
        # may read exactly these. The pauses are plain String parameters (mlops_cli.retraining writes them): they hold
        # who paused, when and why, no secret, so no SecureString and no key grant.
        names = retrain_trigger_names(name_prefix, pipelines)
        pipeline_arns = [
            format_arn(stack, service="sagemaker", resource="pipeline", resource_name=name.lower())
            for name in pipelines.values()
        ]
        built = handler_function(
            self,
            function_name=retrain_trigger_function_name(name_prefix),
            description="Starts a training pipeline on drift or schedule, unless retraining is paused, one runs, one ran "
            "within the cooldown or too many started today",
            role_description=f"{name_prefix}: guarded start of training pipelines",
            access_description=f"{name_prefix} retrain trigger",
            handler="retrain_trigger.handler",
            environment={
                # One short entry per model: Lambda allows 4 KB of environment in all (retrain_trigger.settings_of).
                "NAME_PREFIX": name_prefix,
                "MODEL_PIPELINES": json.dumps(pipelines, sort_keys=True, separators=(",", ":")),
                "COOLDOWN_HOURS": str(cooldown_hours),
                "MAX_STARTS_PER_DAY": str(max_starts_per_day),
                "FAILURES_BEFORE_PAUSE": str(failures_before_pause),
                "ENVIRONMENT": environment_name,
                "TOPIC_ARN": read_once(topic, "topic_arn"),
                **({"TEAM_TOPICS": json.dumps(by_topic, sort_keys=True)} if by_topic else {}),
                # Set only for an app of another config than the default, whose templates it then changes alone.
                **({"CLI_CONFIG": cli_config} if cli_config else {}),
            },
            key=key,
            dead_letter_queue=self.dead_letter_queue,
            log_retention=log_retention,
            removal_policy=removal_policy,
            network=network,
            vpc_reason="The function only calls the SageMaker API (ListPipelineExecutions, ListPipelineExecutionSteps, "
            "StartPipelineExecution), "
            "CloudWatch (DescribeAlarms), SSM (GetParameters, PutParameter, DeleteParameter) and SNS (Publish).",
        )
        built.access.allow(
            "GuardedStart",
            ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
            pipeline_arns,
        )
        built.access.allow(
            "ReadRunSteps",
            ["sagemaker:ListPipelineExecutionSteps"],
            [f"{arn}/execution/*" for arn in pipeline_arns],
            wildcard_reason="Execution ids are assigned at start; the guard reads the steps of its own pipelines' recent "
            "failed runs to tell a gate rejection from a failure that trained nothing.",
        )
        built.access.allow(
            "SweepRetrainAlarms",
            ["cloudwatch:DescribeAlarms"],
            [format_arn(stack, service="cloudwatch", resource="alarm", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME)
             for name in sorted(names.alarm_pipelines)],
        )
        built.access.allow(
            "ReadRetrainingPause",
            ["ssm:GetParameters"],
            [format_arn(stack, service="ssm", resource="parameter", resource_name=name.lstrip("/"))
             for name in [names.pause_parameter, *sorted(names.model_pause_parameters.values()),
                          names.reset_parameter, *sorted(names.model_reset_parameters.values())]],
        )
        # The circuit breaker: after failures_before_pause consecutive failed runs it started, the function pauses the
        # model with the on-call pause itself (creates the model's parameter; deletes it once a run succeeded) and pages
        # once on the people's topic. Never the environment's pause: a person's switch.
        built.access.allow(
            "CircuitBreakerPause",
            ["ssm:PutParameter", "ssm:DeleteParameter"],
            [format_arn(stack, service="ssm", resource="parameter", resource_name=name.lstrip("/"))
             for name in sorted(names.model_pause_parameters.values())],
        )
        # The environment's topic and each team's (all encrypted with ``key``, which the function may use).
        built.access.allow("CircuitBreakerPage", ["sns:Publish"], [read_once(topic, "topic_arn"), *team_topic_arns(team_topics)])
        self.function = built.function

        scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com").with_conditions(
                {"StringEquals": {"aws:SourceAccount": environment_of(stack).account}}
            ),
            description=f"{name_prefix}: EventBridge Scheduler invoking the retrain trigger",
        )
        scheduler_access = AccessPolicy(
            self, "SchedulerAccess", role=scheduler_role, description=f"{name_prefix} retraining schedules"
        )
        scheduler_access.allow("InvokeTrigger", ["lambda:InvokeFunction"], [self.function.function_arn])
        scheduler_access.allow("DeadLetters", ["sqs:SendMessage"], [read_once(self.dead_letter_queue, "queue_arn")])
        scheduler_access.allow_key("DeadLetterKey", key)

        self.rules: dict[str, events.Rule] = {}
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        for model, pipeline in pipelines.items():
            rule = events.Rule(
                self,
                f"{pascal(model)}DriftAlarms",
                description=f"Retrain {model} when one of its retrain alarms enters ALARM",
                event_pattern=events.EventPattern(
                    source=["aws.cloudwatch"],
                    detail_type=["CloudWatch Alarm State Change"],
                    detail={
                        "alarmName": [{"prefix": retrain_alarm_prefix(name_prefix, model)}],
                        "state": {"value": ["ALARM"]},
                    },
                ),
            )
            rule.add_target(
                targets.LambdaFunction(
                    self.function,
                    event=events.RuleTargetInput.from_object(
                        {
                            "pipeline": pipeline,
                            "reason": "drift",
                            "alarm": event_field("$.detail.alarmName"),
                            "source_event_id": event_field("$.id"),
                        }
                    ),
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=2,
                    max_event_age=hours(1),
                )
            )
            self.rules[model] = rule
            if schedule:
                self.schedules[model] = self._schedule(model, pipeline, schedule, scheduler_role)
        # CloudWatch signals only the entry into ALARM: an alarm that arrived during the cooldown and stays in
        # ALARM is answered by this hourly sweep once the cooldown is over (the handler's guard decides).
        self.sweep = self._invoke("Sweep", "Retrain the models whose retrain alarms are still in ALARM after the cooldown",
                                  "rate(1 hour)", {"reason": "sweep"}, scheduler_role)

    def _schedule(self, model: str, pipeline: str, expression: str, role: iam.IRole) -> scheduler.CfnSchedule:
        return self._invoke(f"{pascal(model)}Retraining", f"Scheduled retraining of {model}", expression,
                            {"pipeline": pipeline, "reason": "schedule"}, role)

    def _invoke(self, construct_id: str, description: str, expression: str, payload: dict, role: iam.IRole) -> scheduler.CfnSchedule:
        """A schedule that invokes the trigger function with ``payload`` (dead letters and retries as its rules)."""
        return scheduler.CfnSchedule(
            self,
            construct_id,
            description=description,
            schedule_expression=expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=read_once(role, "role_arn"),
                input=json.dumps(payload),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=read_once(self.dead_letter_queue, "queue_arn")),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=2, maximum_event_age_in_seconds=3600
                ),
            ),
        )

"""Deploy on approval: a model package state change updates the serving stack's version parameter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from aws_cdk import ArnFormat, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code.core.commands import cli_command
from pipeline_code.core.contract import (
    DEPLOY_HANDLER_DIMENSION,
    DEPLOY_HANDLER_NAMESPACE,
    LOG_RETENTION_ACTION,
    LOG_RETENTION_NOT_SET_METRIC,
    PIPELINE_EXECUTION_ENDED,
    RECORD_EXECUTION_ACTION,
    cfn_exec_role_arn,
    deploy_handler_name,
    package_group_name,
    pascal,
    pipeline_name,
)
from pipeline_code.core.integrity import SEALED_KEY_PATTERN, evaluation_report_pattern, ledger_model_prefix, run_record_model_prefix, sealed_prefix

from .access_policy import AccessPolicy, endpoint_log_group, sagemaker_log_groups
from .arns import format_arn, s3_arn
from ..config.network import NetworkConfig
from .cdk_reads import bootstrap_qualifier as stack_bootstrap_qualifier
from .cdk_reads import environment_of, event_field, hours, read_once, stack_of
from .handler_function import dead_letter_queue, handler_function, team_topic_arns, team_topics_variable
from .loop_alarms import sns_action
from .rule_notifications import notify_topic

# Hourly sweeps in a row that must leave an endpoint log group unset before its alarm tells people: one or two (a
# throttle during a rollout, a sweep short of time) are retried by the next sweep and page nobody.
LOG_RETENTION_FAILED_SWEEPS = 3
# Stack states after which the previous version is still (or again) the one serving.
FAILED_ROLLOUT_STATUSES = ("UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED")


@dataclass(frozen=True)
class MultiModelDeployment:
    """Where an approved version of ``model`` is staged for a multi-model endpoint:
    copied from its sealed artefact ``s3://<artifacts_bucket>/pipelines/<model>/registered/...`` to ``s3://<artifacts_bucket>/<prefix><model>/v<N>.tar.gz``
    and smoke-tested on ``endpoint_name`` before the stack switches the model's TargetModel."""

    model: str
    endpoint_name: str
    artifacts_bucket: s3.IBucket
    prefix: str


def failed_rollout_notice(environment: str, stack_name: str, models: Sequence[str], region: str,
                          account: str, qualifier: str, config: Optional[str] = None) -> events.RuleTargetInput:
    """The notice of a failed or rolled-back update of the serving stack ``stack_name`` (its "CloudFormation Stack
    Status Change" event: ``status-details.status`` and ``status-reason``): what ended how, that a version the deploy
    handler set is now held until someone decides again (the CLI commands, ``models`` being the stack's), and the
    CloudFormation commands that show what failed and continue a failed rollback, in ``region`` of ``account``, as the
    cfn-exec role of the CDK bootstrap whose qualifier is ``qualifier``; the CLI commands name ``config`` (default None:
    the default config, named by none)."""
    field = event_field
    retry = cli_command("rollback", 'rollback --to-version N --reason "WHY"', environment=environment, model="MODEL",
                        config=config)
    versions = cli_command("rollback", "versions", environment=environment, model="MODEL", config=config)
    return events.RuleTargetInput.from_text(
        f"Serving stack {stack_name}: an update ended {field('$.detail.status-details.status')}: "
        f"{field('$.detail.status-details.status-reason')}. After a rollback the previous versions keep serving. If the "
        "deploy handler started this update (an approval), the version it set is now held: no later event rolls it "
        "out again until someone decides - re-approve it to retry "
        f"({retry}, "
        "N: the held version, WHY: a line saying why, in the quotes), or reject it or approve another version to move on. "
        "Which version serves and which is held: "
        f"{versions} (MODEL: {', '.join(models)}). "
        "What failed: aws cloudformation describe-stack-events --stack-name "
        f"{stack_name} --max-items 40 --region {region}. After UPDATE_ROLLBACK_FAILED the stack takes no update until: "
        f"aws cloudformation continue-update-rollback --stack-name {stack_name} --role-arn "
        f"{cfn_exec_role_arn(account, region, qualifier)} --region {region} (add --resources-to-skip with the logical ids of "
        "resources that cannot be rolled back). Name that role: without --role-arn CloudFormation runs as the role of "
        "the last update, the deployer, which may not undo everything")


class DeployOnApproval(Construct):
    """The handler that turns approvals into CloudFormation updates, and the rules around it.

    * A rule forwards every "SageMaker Model Package State Change" of this environment's groups to
      the handler (``pipeline_code/handlers/deploy_on_approval.py``). The handler recomputes which
      version should serve (the most recently approved, complete one) and, only if that differs from
      the serving stack's parameter, calls ``UpdateStack`` with ``UsePreviousTemplate`` and the
      deployer role (its policy allows ``UpdateStack`` only with that ``RoleARN``). Duplicates and
      stale events therefore change nothing. An update already in progress is a wait, not an error:
      the handler schedules its own retry every five minutes (one-time EventBridge Scheduler schedules
      in ``<prefix>-deploy-retries``, run as a role that may only invoke it) for up to ``max_wait``,
      and only a longer wait is told to people.
    * A rule tells people (``topic``) when an update of the serving stack fails or rolls back:
      the previous version is then still serving. Notices EventBridge cannot deliver go to
      ``notification_dead_letters`` (the environment's, shared by every notification rule).
    * The handler appends every approval decision it observes to the approval ledger in ``artifacts_bucket``
      (``approval-ledger/<model>/<version>/``, write-once by the bucket's policy): it may create objects there and
      nothing else.
    * It keeps the run record of every version it sees approved (``run-records/<model>/``, write-once by the bucket's
      policy): it may read the executions of its models' pipelines (the execution, the definition it ran, its
      parameters and steps) and create objects there, nothing else. A pipeline's executions are deleted with it. A
      rule sends it the end of each execution of its models' training pipelines (``record-execution``): a version
      approved at registration is approved while its execution still runs, and no other event names it after that.
    * Models on a multi-model endpoint (``multi_model``; default: none) are staged and
      smoke-tested by the handler before the update (see :class:`MultiModelDeployment`); for those
      it may read the model's artefacts, write its staging prefix and invoke that endpoint.
    * It sets the retention of the endpoints' log groups (``/aws/sagemaker/Endpoints/<endpoint>``, which SageMaker
      creates on an endpoint's first log line and no stack can own) to ``log_retention``: after each reconcile for that
      group's endpoint, and hourly (a ``log-retention`` sweep) for every endpoint. It may set the retention of those
      groups, named exactly, and no other. Each sweep publishes how many it could not set; ``log_retention_alarm``
      (``<prefix>-endpoint-log-retention``, :func:`log_retention_alarm`) tells people when that stays above 0.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        environment: str,
        serving_stack_name: str,
        model_parameters: Mapping[str, str],
        deployer_role: iam.IRole,
        topic: sns.ITopic,
        notification_dead_letters: sqs.IQueue,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        artifacts_bucket: s3.IBucket,
        data_key: kms.IKey,
        max_wait: Duration,
        multi_model: Sequence[MultiModelDeployment] = (),
        network: Optional[NetworkConfig] = None,
        bootstrap_qualifier: Optional[str] = None,
        endpoint_names: Sequence[str] = (),
        team_topics: Optional[Mapping[str, sns.ITopic]] = None,
        log_retention_days: Optional[int] = None,
        cli_config: Optional[str] = None,
    ) -> None:
        """``environment``: the environment's name in the config (the ``--env`` of the commands a failed-rollout notice
        gives); ``model_parameters`` maps each served model to its serving-stack parameter; its package group is
        ``package_group_name(name_prefix, model)``, the name the environment's registry gives it;
        ``artifacts_bucket`` holds the sealed artefacts (encrypted with ``data_key``) the
        handler verifies before every deployment, and the approval ledger it appends to; ``max_wait`` is how long it
        keeps retrying a busy serving stack (the longest configured rollout plus a margin); ``bootstrap_qualifier``: the
        qualifier of the CDK bootstrap the serving stack deploys through, whose cfn-exec role the failed-rollout notice
        tells people to continue a rollback as (default: the one this construct's own stack deploys through);
        ``endpoint_names``: the endpoints serving these models (default: none), which a reconcile describes to tell a
        deleted endpoint (the serving stack's parameter still naming a version) from one that serves; ``team_topics``: the
        topic of each model of a team (models of several teams: the Operations stack's ``topic_of``; default: none),
        which the handler's notices about that model reach instead of ``topic`` (``TEAM_TOPICS``); the handler may
        publish to those topics and ``topic``, no other; ``log_retention_days``: the days ``log_retention`` stands for (the
        environment's ``log_retention_days``), which the handler sets on the log groups of ``endpoint_names`` (default:
        none, they are left as they are); ``cli_config``: the ``--config`` its notices' rollback commands name
        (``CLI_CONFIG``; default None: the default config, named by none)."""
        super().__init__(scope, construct_id)
        endpoint_log_retention = bool(endpoint_names) and log_retention_days is not None
        unserved = sorted({m.model for m in multi_model} - set(model_parameters))
        if unserved:
            raise ValueError(f"DeployOnApproval: multi-model member {unserved[0]!r} has no serving-stack parameter in "
                             "model_parameters: its approvals would never reach its endpoint")
        group_of = {model: package_group_name(name_prefix, model) for model in model_parameters}
        # The handler is told the groups' common prefix, not a group-to-model map (Lambda's 4 KB of environment is
        # nearly spent by MULTI_MODEL in pooled environments): it derives the model from the group.
        group_prefix = package_group_name(name_prefix, "")
        by_topic = team_topics_variable("DeployOnApproval", "model_parameters", team_topics, group_of)
        stack = stack_of(self, scope)
        self.dead_letter_queue = dead_letter_queue(self, key=key, removal_policy=removal_policy, owner="deploy handler")
        stack_arn = format_arn(stack, service="cloudformation", resource="stack", resource_name=f"{serving_stack_name}/*")
        stack_arn_prefix = format_arn(stack, service="cloudformation", resource="stack", resource_name=f"{serving_stack_name}/")
        # A busy stack is a wait: the handler schedules its own retries (one-time schedules in this group,
        # run as a role that may invoke only this function).
        function_name = deploy_handler_name(name_prefix)
        self.function_name = function_name  # fixed: notices name it as plain text
        function_arn = format_arn(stack, service="lambda", resource="function", resource_name=function_name,
                                  arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.retry_group = scheduler.CfnScheduleGroup(self, "Retries", name=f"{name_prefix}-deploy-retries")
        self.retry_role = iam.Role(
            self,
            "RetryRole",
            # Scheduler sends the ARN of the schedule's GROUP as aws:SourceArn, never the schedule's own ARN
            # (EventBridge Scheduler User Guide, "Confused deputy prevention": "Do not scope the aws:SourceArn
            # statement to a specific schedule or a schedule name prefix"); a schedule/<group>/* pattern
            # admits no schedule at all.
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": environment_of(stack).account},
                            "ArnEquals": {"aws:SourceArn": format_arn(
                                stack, service="scheduler", resource="schedule-group", resource_name=self.retry_group.name)}},
            ),
            description=f"{name_prefix}: EventBridge Scheduler retries of the deploy handler",
        )
        retry_access = AccessPolicy(self, "RetryAccess", role=self.retry_role, description=f"{name_prefix} deploy handler retries")
        retry_access.allow("InvokeDeployHandler", ["lambda:InvokeFunction"], [function_arn])
        # A retry Scheduler cannot deliver (after its own retries) lands in the handler's dead-letter queue,
        # which is alarmed like every other failure of the handler; Scheduler sends it as this role.
        retry_access.allow("DeadLetters", ["sqs:SendMessage"], [read_once(self.dead_letter_queue, "queue_arn")])
        retry_access.allow_key("DeadLetterKey", key)
        built = handler_function(
            self,
            function_name=function_name,
            description="Deploys the most recently approved model version by updating the serving stack's parameter",
            role_description=f"{name_prefix}: approval-driven serving updates",
            access_description=f"{name_prefix} deploy on approval",
            handler="deploy_on_approval.handler",
            environment={
                "SERVING_STACK_NAME": serving_stack_name,
                # The --env of the rollback commands its notices give (held version, run record not written).
                "ENVIRONMENT": environment,
                # ... and their --config, for an app of another config than the default (notices.rollback_command).
                **({"CLI_CONFIG": cli_config} if cli_config else {}),
                "MODEL_PARAMETERS": json.dumps({group_of[m]: parameter for m, parameter in model_parameters.items()}, sort_keys=True),
                "DEPLOYER_ROLE_ARN": read_once(deployer_role, "role_arn"),
                "NOTIFY_TOPIC_ARN": read_once(topic, "topic_arn"),
                "RETRY_SCHEDULE_GROUP": self.retry_group.name,
                "RETRY_ROLE_ARN": read_once(self.retry_role, "role_arn"),
                "RETRY_DEAD_LETTER_ARN": read_once(self.dead_letter_queue, "queue_arn"),
                "MAX_WAIT_SECONDS": str(int(max_wait.to_seconds())),
                "APPROVAL_LEDGER": json.dumps({"bucket": read_once(artifacts_bucket, "bucket_name"), "group_prefix": group_prefix},
                                              sort_keys=True),
                **_multi_model_environment(multi_model, group_of, read_once(data_key, "key_arn")),
                **({"TEAM_TOPICS": json.dumps(by_topic, sort_keys=True)} if by_topic else {}),
                # The environment's log_retention_days, for the endpoints' log groups SageMaker creates.
                **({"LOG_RETENTION_DAYS": str(log_retention_days)} if endpoint_log_retention else {}),
            },
            key=key,
            dead_letter_queue=self.dead_letter_queue,
            log_retention=log_retention,
            removal_policy=removal_policy,
            # Staging copies a model.tar.gz and the smoke request may wait for a cold model load
            # (the runtime client allows 70 s x 2 attempts); the stack update itself is asynchronous.
            timeout=Duration.minutes(5) if multi_model else Duration.seconds(30),
            network=network,
            vpc_reason="The function calls only AWS APIs (SageMaker, CloudFormation, SNS, EventBridge Scheduler, CloudWatch Logs "
            "(the endpoints' log retention), S3 "
            "reads of sealed artefacts and writes of approval-ledger and run records, and for multi-model members S3 staging writes "
            "and the endpoint's runtime).",
        )
        access = built.access
        groups = sorted(group_of.values())
        access.allow(
            "ReadRegistry",
            ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
            [format_arn(stack, service="sagemaker", resource="model-package", resource_name=f"{g.lower()}/*") for g in groups]
            + [format_arn(stack, service="sagemaker", resource="model-package-group", resource_name=g.lower()) for g in groups],
            wildcard_reason="Any version of this environment's groups may be the one to serve; reading is limited "
            "to those groups.",
        )
        stack_id_reason = "A stack ARN ends in an id CloudFormation assigns at creation; the name pins the serving stack."
        access.allow(
            "ReadServingStack",
            # DescribeStackEvents: whether the rollout of an approval failed (a failed version is not retried).
            ["cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents"],
            [stack_arn],
            wildcard_reason=stack_id_reason,
        )
        deployer_arn = read_once(deployer_role, "role_arn")
        # Only as the deployer. An UpdateStack without RoleARN runs as the role last associated with the stack - after a
        # `cdk deploy`, the bootstrap's cfn-exec role (AdministratorAccess by default) - and CloudFormation needs no
        # iam:PassRole for that (UpdateStack API Reference, RoleARN), so PassDeployerRole alone bounds nothing. Such a
        # request carries no cloudformation:RoleArn, so ArnEquals is false and it is denied, as is any other role.
        # TemplateURL is not conditioned: a TemplateBody carries no condition key, and whatever template the update
        # runs, it runs as the deployer, whose own policy is the bound.
        access.allow(
            "UpdateServingStack",
            ["cloudformation:UpdateStack"],
            [stack_arn],
            conditions={"ArnEquals": {"cloudformation:RoleArn": deployer_arn}},
            wildcard_reason=stack_id_reason,
        )
        access.allow_pass_role("PassDeployerRole", deployer_arn, "cloudformation.amazonaws.com")
        if endpoint_names:
            # A reconcile checks the endpoint its version serves on still exists (CloudFormation does not notice a
            # deletion by hand, and an update of the parameter it already has changes nothing).
            access.allow("CheckEndpoints", ["sagemaker:DescribeEndpoint"],
                         [format_arn(stack, service="sagemaker", resource="endpoint", resource_name=name)
                          for name in sorted({n.lower() for n in endpoint_names})])
        if endpoint_log_retention:
            # The endpoints' log groups, which SageMaker creates on first use: their retention, set where it differs.
            # Each group by its exact name (and ``<group>:*``, the form CloudWatch Logs also evaluates some of its
            # actions against; a group name holds no ':'), never a prefix: <prefix>-* of dev would match dev-eu's.
            access.allow("ReadLogGroups", ["logs:DescribeLogGroups"], ["*"],
                         wildcard_reason="DescribeLogGroups supports no resource-level permission (it lists groups by "
                         "name prefix); it reads names and retention only. Setting a retention is granted per group.")
            access.allow("EndpointLogRetention", ["logs:PutRetentionPolicy"],
                         [format_arn(stack, service="logs", resource="log-group", resource_name=group,
                                     arn_format=ArnFormat.COLON_RESOURCE_NAME)
                          for group in sagemaker_log_groups(*(endpoint_log_group(n) for n in sorted(set(endpoint_names))))],
                         wildcard_reason="<group>:* is each endpoint log group itself as CloudWatch Logs names it in "
                         "ARNs (group names hold no ':', so it matches no other group).")
        # The environment's topic and each team's: the topics are encrypted with ``key``, which the function may use.
        access.allow("Notify", ["sns:Publish"], [read_once(topic, "topic_arn"), *team_topic_arns(team_topics)])
        access.allow(
            "ScheduleRetries",
            ["scheduler:CreateSchedule"],
            [format_arn(stack, service="scheduler", resource="schedule", resource_name=f"{self.retry_group.name}/*")],
            wildcard_reason="One-time retry schedules are named per wait at run time; they live in this handler's own group.",
        )
        access.allow_pass_role("PassRetryRole", read_once(self.retry_role, "role_arn"), "scheduler.amazonaws.com")
        # Verify a version's sealed artefact before deploying it: its stored checksum (HeadObject), else its bytes.
        bucket = read_once(artifacts_bucket, "bucket_name")
        access.allow("VerifyArtifacts", ["s3:GetObject"], [s3_arn(self, bucket, SEALED_KEY_PATTERN)],
                     wildcard_reason="Sealed artefacts are content-addressed (pipelines/<model>/registered/<sha256>/...); "
                     "the handler reads only the one a version's ModelDataUrl names, and may not write any.")
        # ... and its promotion gate: the bias and evaluation reports the evaluation step of the execution that
        # registered it wrote (kept, every version, undeletable: DataLake). No ListBucket: a missing report is refused
        # either way (403 or 404).
        access.allow("ReadEvaluationReports", ["s3:GetObject"], [s3_arn(self, bucket, evaluation_report_pattern(model)) for model in sorted(model_parameters)],
                     wildcard_reason="Evaluation reports are written per model and pipeline execution "
                     "(pipelines/<model>/<execution id>/evaluate/evaluation/...); the handler reads only the two a "
                     "version's ModelMetrics names, of its own models, and may not write any.")
        # Without ListBucket, HeadObject answers 403 instead of 404 for a missing artefact.
        access.allow("VerifyArtifactsList", ["s3:ListBucket"], [s3_arn(self, bucket)],
                     conditions={"StringLike": {"s3:prefix": [SEALED_KEY_PATTERN]}})
        # The approval ledger: create records, nothing else (no read, no delete; the bucket policy makes every key
        # there write-once, so a record, once written, is never replaced - not even by this role).
        access.allow("ApprovalLedger", ["s3:PutObject"],
                     [s3_arn(self, bucket, f"{ledger_model_prefix(model)}*") for model in sorted(model_parameters)],
                     wildcard_reason="One record per observed approval decision, named by version and time at run time, "
                     "below each deployed model's approval-ledger/<model>/ prefix, which the bucket policy keeps write-once.")
        # Run records: what the execution that registered an approved version ran (definition, parameters, steps), kept
        # write-once because SageMaker deletes a pipeline's executions with the pipeline.
        access.allow(
            "ReadPipelineRuns",
            ["sagemaker:DescribePipelineExecution", "sagemaker:DescribePipelineDefinitionForExecution",
             "sagemaker:ListPipelineParametersForExecution", "sagemaker:ListPipelineExecutionSteps"],
            [format_arn(stack, service="sagemaker", resource="pipeline",
                        resource_name=f"{pipeline_name(name_prefix, model).lower()}/execution/*")
             for model in sorted(model_parameters)],
            wildcard_reason="Execution ids are assigned at start; the handler reads only the execution a version's "
            "MetadataProperties.GeneratedBy names, of its own models' pipelines.",
        )
        access.allow("RunRecords", ["s3:PutObject"],
                     [s3_arn(self, bucket, f"{run_record_model_prefix(model)}*") for model in sorted(model_parameters)],
                     wildcard_reason="One record per approved model package, named by version and package creation time "
                     "at run time, below each deployed model's run-records/<model>/ prefix, which the bucket policy keeps "
                     "write-once.")
        # Encrypt: ledger records, run records (and multi-model staging copies) are written SSE-KMS with the data key.
        access.allow_key("DataKey", data_key)
        if multi_model:
            self._allow_multi_model(access, multi_model)
        self.function = built.function

        self.approvals = events.Rule(
            self,
            "Approvals",
            description="Model package approvals and rejections of this environment -> deploy handler",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": groups},
            ),
        )
        self.approvals.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=2,
                max_event_age=hours(1),
            )
        )
        # A version approved at registration (auto-approval) is approved while its execution still runs (the model card
        # step comes after Register), so its approval event cannot copy the run yet, nor may any reconcile before the run
        # ends: the end of each execution of these models' pipelines asks the handler to record the version it registered.
        # SageMaker writes the pipeline's name in lower case in its ARN (as the execution reads granted above).
        field = event_field
        self.executions_ended = events.Rule(
            self,
            "ExecutionsEnded",
            description="The end of a training pipeline execution of this environment's models -> deploy handler "
            "(run record of the approved version it registered)",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Building Pipeline Execution Status Change"],
                detail={
                    "currentPipelineExecutionStatus": list(PIPELINE_EXECUTION_ENDED),
                    "pipelineArn": [format_arn(stack, service="sagemaker", resource="pipeline",
                                               resource_name=pipeline_name(name_prefix, model).lower())
                                    for model in sorted(model_parameters)],
                },
            ),
        )
        self.executions_ended.add_target(
            targets.LambdaFunction(
                self.function,
                event=events.RuleTargetInput.from_object({
                    "action": RECORD_EXECUTION_ACTION,
                    "execution": field("$.detail.pipelineExecutionArn"),
                    "status": field("$.detail.currentPipelineExecutionStatus"),
                    "source_event_id": field("$.id"),
                }),
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=2,
                max_event_age=hours(1),
            )
        )
        # An approval that arrives while a rollout runs is retried only for an hour; when the stack
        # settles, each group is reconciled once more so such an approval is never lost. Not on
        # rollback states: that would retry a failing version in a loop. On CREATE_COMPLETE too: a Serving stack
        # deleted by mistake and created again starts with every model-version parameter empty (no endpoint), and
        # the reconcile sets each group's approved version again (docs/deploying.md, Disaster recovery).
        self.settled: list[events.Rule] = []
        # A rule takes at most five targets: one rule per five groups.
        for index in range(0, len(groups), 5):
            rule = events.Rule(
                self,
                "ServingSettled" if index == 0 else f"ServingSettled{index // 5}",
                description="After a successful serving create or update, reconcile each group once more (late approvals, "
                "a re-created stack)",
                event_pattern=events.EventPattern(
                    source=["aws.cloudformation"],
                    detail_type=["CloudFormation Stack Status Change"],
                    detail={"stack-id": [{"prefix": stack_arn_prefix}],
                            "status-details": {"status": ["CREATE_COMPLETE", "UPDATE_COMPLETE"]}},
                ),
            )
            for group in groups[index : index + 5]:
                rule.add_target(
                    targets.LambdaFunction(
                        self.function,
                        event=events.RuleTargetInput.from_object({"action": "reconcile", "group": group}),
                        dead_letter_queue=self.dead_letter_queue,
                        retry_attempts=2,
                        max_event_age=hours(1),
                    )
                )
            self.settled.append(rule)
        if endpoint_log_retention:
            # An endpoint's log group appears with its first log line, which may come after the stack settled
            # (serverless and asynchronous endpoints scaled to zero log on their first request): the hourly sweep sets it.
            self.log_retention_sweep = events.Rule(
                self,
                "LogRetentionSweep",
                description="Hourly: set the retention of this environment's endpoint log groups that SageMaker created",
                schedule=events.Schedule.rate(Duration.hours(1)),
            )
            self.log_retention_sweep.add_target(
                targets.LambdaFunction(
                    self.function,
                    event=events.RuleTargetInput.from_object({"action": LOG_RETENTION_ACTION}),
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=2,
                    max_event_age=hours(1),
                )
            )
            self.log_retention_alarm: Optional[cloudwatch.Alarm] = log_retention_alarm(
                self, name_prefix=name_prefix, function_name=function_name, days=log_retention_days, topic=topic)
        else:
            self.log_retention_alarm = None
        self.failed_rollouts = events.Rule(
            self,
            "FailedRollouts",
            description="Tell people when a serving update fails or rolls back (the previous version keeps serving)",
            event_pattern=events.EventPattern(
                source=["aws.cloudformation"],
                detail_type=["CloudFormation Stack Status Change"],
                detail={
                    "stack-id": [{"prefix": stack_arn_prefix}],
                    "status-details": {"status": list(FAILED_ROLLOUT_STATUSES)},
                },
            ),
        )
        # Undelivered notices go to the environment's notification queue, not the handler's: its alarm means
        # "people were not told", the handler's "an approval was not processed".
        notify_topic(self.failed_rollouts, topic, dead_letter_queue=notification_dead_letters,
                     message=failed_rollout_notice(environment, serving_stack_name, sorted(model_parameters),
                                                   environment_of(stack).region, environment_of(stack).account,
                                                   bootstrap_qualifier or stack_bootstrap_qualifier(stack),
                                                   config=cli_config))

    def _allow_multi_model(self, access: AccessPolicy, deployments: Sequence[MultiModelDeployment]) -> None:
        """Stage (read the artefact, write its versioned copy) and smoke-test (invoke the shared endpoint)."""
        stack = stack_of(self)
        for m in deployments:
            sid = pascal(m.model)
            bucket = read_once(m.artifacts_bucket, "bucket_name")
            # The source of a staged copy is the version's sealed artefact.
            access.allow_prefix(f"ReadArtifacts{sid}", m.artifacts_bucket, sealed_prefix(m.model))
            # Put, never delete: a staged version may be what a rollback returns to.
            access.allow(f"Stage{sid}", ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                         [s3_arn(self, bucket, f"{m.prefix}{m.model}/*")],
                         wildcard_reason="One object per approved version of this model under its staging prefix.")
            # Without ListBucket, HeadObject answers 403 instead of 404 for a version not staged yet.
            access.allow(f"Stage{sid}List", ["s3:ListBucket"], [s3_arn(self, bucket)],
                         conditions={"StringLike": {"s3:prefix": [f"{m.prefix}{m.model}/*"]}})
        endpoints = sorted({m.endpoint_name for m in deployments})
        access.allow(
            "SmokeTest",
            ["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"],
            [format_arn(stack, service="sagemaker", resource="endpoint", resource_name=name.lower()) for name in endpoints],
        )


def log_retention_alarm(scope: Construct, *, name_prefix: str, function_name: str, days: int,
                        topic: sns.ITopic) -> cloudwatch.Alarm:
    """Alarm ``<prefix>-endpoint-log-retention``: the deploy function's hourly sweep left at least one endpoint log group
    unset (its ``EndpointLogGroupsNotSet``: a failed call, or deferred for time) in :data:`LOG_RETENTION_FAILED_SWEEPS`
    sweeps in a row; notifies ``topic`` (people, as the other operational alarms). A group left unset keeps its endpoint's
    logs, which may hold request payloads, past the environment's ``days``: never expiring if it was never set."""
    sweeps = LOG_RETENTION_FAILED_SWEEPS
    alarm = cloudwatch.Alarm(
        scope,
        "LogRetentionAlarm",
        alarm_name=f"{name_prefix}-endpoint-log-retention",
        alarm_description=(
            f"The deploy handler's hourly sweep could not set the retention of an endpoint log group "
            f"(/aws/sagemaker/Endpoints/<endpoint>) to log_retention_days ({days} days) in {sweeps} hourly sweeps in a "
            "row: that endpoint's logs, which may hold request payloads, are kept longer than configured (never expiring "
            "if the group was never set). Which groups and why: the warnings log_retention_failed (AccessDenied, "
            "throttling, a KMS or CloudFormation error) and log_retention_deferred (no time left) in "
            f"/aws/lambda/{function_name}. Fix the cause, then run the sweep: aws lambda invoke --function-name "
            f"{function_name} --cli-binary-format raw-in-base64-out --payload '{{\"action\": \"log-retention\"}}' "
            f"--region {environment_of(stack_of(scope)).region} out.json (docs/deploying.md, Endpoint log retention alarm: "
            "what to do)"),
        metric=cloudwatch.Metric(namespace=DEPLOY_HANDLER_NAMESPACE, metric_name=LOG_RETENTION_NOT_SET_METRIC,
                                 dimensions_map={DEPLOY_HANDLER_DIMENSION: function_name}, statistic="Maximum",
                                 period=hours(1)),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=sweeps,
        datapoints_to_alarm=sweeps,
        # Every sweep publishes (0 when all is set); an hour without one is a sweep that did not run, which the
        # handler's errors and dead-letter alarms report: not a group left unset.
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(sns_action(topic))
    return alarm


def _multi_model_environment(multi_model: Sequence[MultiModelDeployment], group_of: Mapping[str, str],
                             key_arn: str) -> dict[str, str]:
    """The handler's ``MULTI_MODEL`` (per member: model, endpoint, prefix) and ``MULTI_MODEL_SHARED`` (the data key and,
    when every member stages to the same one, the artefacts bucket, given once); none without members. Per member,
    key and bucket would take ~500 of Lambda's 4,096 bytes of environment (each counted at its longest while it is a
    reference): eight members would not fit."""
    if not multi_model:
        return {}
    buckets = {read_once(m.artifacts_bucket, "bucket_name") for m in multi_model}
    shared = {"kms_key_id": key_arn, **({"bucket": next(iter(buckets))} if len(buckets) == 1 else {})}
    members = {group_of[m.model]: {"model": m.model, "endpoint": m.endpoint_name, "prefix": m.prefix,
                                   **({} if "bucket" in shared else {"bucket": read_once(m.artifacts_bucket, "bucket_name")})}
               for m in multi_model}
    return {"MULTI_MODEL": json.dumps(members, sort_keys=True), "MULTI_MODEL_SHARED": json.dumps(shared, sort_keys=True)}

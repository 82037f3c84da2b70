"""The one way this app starts a SageMaker job on a schedule (EventBridge Scheduler's universal target), and the one
way people hear that such a job did not start or did not finish."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ..config.instance_types import JOB_RESOURCES
from .access_policy import AccessPolicy
from .arns import format_arn
from .cdk_reads import environment_of, event_field, read_once, stack_of
from .rule_notifications import notify_topic

EXECUTION_ID = "<aws.scheduler.execution-id>"

# How long Scheduler keeps retrying a run it could not start (its retry policy): a run may start this much late.
MAX_EVENT_AGE_SECONDS = 3600


@dataclass(frozen=True)
class _Kind:
    """One job kind: Scheduler's action, the IAM action, the ARN resource type, the name field, the job-name
    stem's prefix, and what SageMaker's state-change event calls it (its detail-type and status field) and
    where the job's container logs go (log streams ``<job name>/...``)."""

    action: str
    api: str
    resource: str
    name_field: str
    stem_prefix: str
    detail_type: str
    status_field: str
    log_group: str


_KINDS = {
    "processing": _Kind("createProcessingJob", "CreateProcessingJob", "processing-job", "ProcessingJobName", "mon",
                        "SageMaker Processing Job State Change", "ProcessingJobStatus", "/aws/sagemaker/ProcessingJobs"),
    "transform": _Kind("createTransformJob", "CreateTransformJob", "transform-job", "TransformJobName", "bt",
                       "SageMaker Transform Job State Change", "TransformJobStatus", "/aws/sagemaker/TransformJobs"),
}
# A job that failed, or was stopped (at its runtime limit, or by someone), produced nothing.
FAILED_STATUSES = ("Failed", "Stopped")


@dataclass(frozen=True)
class FailedJob:
    """What a failure notice may say of the job: its name, status and SageMaker's failure reason (the event's fields,
    filled in by EventBridge), the log group of its container logs (streams ``<job name>/...``) and the region its
    commands must name (``--region``: on-call's default region may be another environment's)."""

    name: str
    status: str
    reason: str
    log_group: str
    region: str


def job_name_stem(kind: str, name_prefix: str, model: str) -> str:
    """A short stable stem per environment, model and job kind (IAM scoping); runs append the execution id.

    Job names hold at most 63 characters: the stem (at most 14) + 1 + a 36-character execution id fit.
    """
    return f"{_KINDS[kind].stem_prefix}-" + hashlib.sha256(f"{name_prefix}/{model}".encode()).hexdigest()[:10]


@dataclass(frozen=True)
class ScheduledJob:
    schedule: scheduler.CfnSchedule
    role: iam.Role
    access: AccessPolicy


def scheduled_sagemaker_job(
    scope: Construct,
    *,
    kind: str,
    stem: str,
    request: Mapping[str, Any],
    expression: str,
    job_role: Optional[iam.IRole],
    key: kms.IKey,
    dead_letter_queue: sqs.IQueue,
    description: str,
    role_description: str,
    schedule_name: Optional[str] = None,
    tags: Sequence[tuple[str, str]] = (),
) -> ScheduledJob:
    """A ``SchedulerRole``, its ``SchedulerAccess`` policy and a ``Schedule`` in ``scope`` that start
    one ``kind`` job per run with ``request`` (its name must be ``<stem>-<aws.scheduler.execution-id>``),
    created with ``tags`` (the environment's cost-allocation tags; default none) before the request's own ``Tags``
    (a key in both is refused: SageMaker takes each key once).

    The role may create only jobs named after ``stem`` on the instance type the request names (an edited schedule
    that asks for another type is refused by IAM), tag them, pass only ``job_role`` (to
    SageMaker; None for a job that takes no role: a transform job runs as its model's role) and use
    ``key``; the schedule retries twice within an hour, then puts the run into ``dead_letter_queue`` (a
    CreateJob refused by a quota, a permission or a missing model: no job exists, so no job event tells
    anyone; the role may send to the queue and use its key). Scheduler replaces the execution id in the
    request on every run, so job names never collide.
    """
    kind_ = _KINDS[kind]
    action, api, resource, name_field = kind_.action, kind_.api, kind_.resource, kind_.name_field
    if schedule_name is not None and len(schedule_name) > 64:
        raise ValueError(
            f"schedule name {schedule_name!r} exceeds 64 characters; shorten the project, environment or model name"
        )
    if request.get(name_field) != f"{stem}-{EXECUTION_ID}":
        raise ValueError(f"{name_field} must be '{stem}-{EXECUTION_ID}', got {request.get(name_field)!r}")
    own = list(request.get("Tags", []))
    both = sorted({key for key, _ in tags} & {tag["Key"] for tag in own})
    if both:
        raise ValueError(f"request Tags repeat the environment's tag key(s) {both}; a SageMaker job takes each key once")
    if tags:
        request = {**request, "Tags": [{"Key": key, "Value": value} for key, value in tags] + own}
    stack = stack_of(scope)
    role = iam.Role(
        scope,
        "SchedulerRole",
        assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com").with_conditions(
            {"StringEquals": {"aws:SourceAccount": environment_of(stack).account}}
        ),
        description=role_description,
    )
    access = AccessPolicy(scope, "SchedulerAccess", role=role, description=role_description)
    jobs = [format_arn(stack, service="sagemaker", resource=resource, resource_name=f"{stem}-*")]
    reason = ("Each scheduled run names its job after the schedule's execution id; the stem confines the role to this "
              "model's jobs of this kind.")
    access.allow_instance_types(f"Start{api.removeprefix('Create')}", [f"sagemaker:{api}"], jobs,
                                [_instance_type(request, kind_)], wildcard_reason=reason)
    # A create request that carries Tags is authorized as AddTags on the new job too.
    access.allow(f"Tag{api.removeprefix('Create')}", ["sagemaker:AddTags"], jobs, wildcard_reason=reason)
    if job_role is not None:
        access.allow_pass_role("PassJobRole", read_once(job_role, "role_arn"), "sagemaker.amazonaws.com")
    access.allow_key("Key", key)
    # The jobs' volumes are encrypted with the key (VolumeKmsKeyId): SageMaker grants it to them as this caller.
    access.allow_volume_grants("VolumeGrants", key)
    # Scheduler sends a run it could not start to the dead-letter queue as the schedule's role.
    access.allow("DeadLetters", ["sqs:SendMessage"], [read_once(dead_letter_queue, "queue_arn")])
    dead_letter_key = read_once(dead_letter_queue, "encryption_master_key")
    if dead_letter_key is not None:
        access.allow_key("DeadLetterKey", dead_letter_key)
    schedule = scheduler.CfnSchedule(
        scope,
        "Schedule",
        name=schedule_name,
        description=description,
        schedule_expression=expression,
        schedule_expression_timezone="UTC",
        flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
        target=scheduler.CfnSchedule.TargetProperty(
            arn=f"arn:{environment_of(stack).partition}:scheduler:::aws-sdk:sagemaker:{action}",
            role_arn=read_once(role, "role_arn"),
            input=stack.to_json_string(dict(request)),
            dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=read_once(dead_letter_queue, "queue_arn")),
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                maximum_retry_attempts=2, maximum_event_age_in_seconds=MAX_EVENT_AGE_SECONDS),
        ),
    )
    schedule.node.add_dependency(access)
    return ScheduledJob(schedule=schedule, role=role, access=access)


def _instance_type(request: Mapping[str, Any], kind: _Kind) -> str:
    """The instance type ``request`` runs its job on (one literal, as the config gives it)."""
    path = (*JOB_RESOURCES[kind.api], "InstanceType")
    value: Any = request
    for member in path:
        value = value.get(member) if isinstance(value, Mapping) else None
    if not isinstance(value, str):
        raise ValueError(f"{'.'.join(path)} must be the instance type the job runs on, as a string "
                         f"from the config, got {value!r}")
    return value


def notify_job_failures(
    scope: Construct,
    construct_id: str,
    *,
    kind: str,
    stems: Mapping[str, str],
    what: str,
    topic: sns.ITopic,
    dead_letter_queue: sqs.IQueue,
) -> events.Rule:
    """A rule ``construct_id`` telling people, through ``topic``, when a ``kind`` job started by one of these schedules
    fails or is stopped: SageMaker's job state-change event whose job name starts with one of ``stems`` (model ->
    :func:`job_name_stem`, which holds the environment: other environments' jobs never match).

    One message per job (an input transformer): ``what``, the job's name and status, SageMaker's failure reason,
    which model each stem is, the command that shows the job's log streams and the one that describes the job.
    """
    if not stems:
        raise ValueError(f"notify_job_failures: no {kind} job stems given; a rule matching no job tells nobody anything")
    legend = "; ".join(f"{stem}-* = {model}" for model, stem in sorted(stems.items()))
    return notify_failed_jobs(
        scope, construct_id, kind=kind, description=f"Tell people when a scheduled {kind} job ({what}) fails or is stopped",
        match={_KINDS[kind].name_field: [{"prefix": f"{stem}-"} for _, stem in sorted(stems.items())]},
        message=lambda job: (
            f"{what} job {job.name} ended {job.status}: {job.reason}. Jobs by model: {legend}. "
            f"Logs: aws logs tail {job.log_group} --log-stream-name-prefix {job.name}/ --since 2d --region {job.region}. "
            f"Job: aws sagemaker describe-{kind}-job --{kind}-job-name {job.name} --region {job.region}"),
        topic=topic, dead_letter_queue=dead_letter_queue)


def notify_failed_jobs(
    scope: Construct,
    construct_id: str,
    *,
    kind: str,
    description: str,
    match: Mapping[str, Any],
    message: Callable[[FailedJob], str],
    topic: sns.ITopic,
    dead_letter_queue: sqs.IQueue,
) -> events.Rule:
    """A rule ``construct_id`` publishing ``message`` (given the job's fields) to ``topic`` when a ``kind`` job
    ("processing" or "transform") whose state-change event detail also matches ``match`` fails or is stopped;
    notices EventBridge cannot deliver go to ``dead_letter_queue``."""
    kind_ = _KINDS[kind]
    job = FailedJob(name=event_field(f"$.detail.{kind_.name_field}"),
                    status=event_field(f"$.detail.{kind_.status_field}"),
                    reason=event_field("$.detail.FailureReason"), log_group=kind_.log_group,
                    region=environment_of(scope).region)
    rule = events.Rule(
        scope,
        construct_id,
        description=description,
        event_pattern=events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=[kind_.detail_type],
            detail={**match, kind_.status_field: list(FAILED_STATUSES)},
        ),
    )
    notify_topic(rule, topic, dead_letter_queue=dead_letter_queue, message=events.RuleTargetInput.from_text(message(job)))
    return rule

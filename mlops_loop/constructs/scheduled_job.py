"""The one way this app starts a SageMaker job on a schedule: EventBridge Scheduler's universal target."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from .access_policy import AccessPolicy
from .arns import format_arn

EXECUTION_ID = "<aws.scheduler.execution-id>"
# Per job kind: Scheduler's action, the IAM action, the ARN resource type, the name field and the
# job-name stem's prefix.
_KINDS = {
    "processing": ("createProcessingJob", "CreateProcessingJob", "processing-job", "ProcessingJobName", "mon"),
    "transform": ("createTransformJob", "CreateTransformJob", "transform-job", "TransformJobName", "bt"),
}


def job_name_stem(kind: str, name_prefix: str, model: str) -> str:
    """A short stable stem per environment, model and job kind (IAM scoping); runs append the execution id.

    Job names hold at most 63 characters: the stem (at most 14) + 1 + a 36-character execution id fit.
    """
    return f"{_KINDS[kind][4]}-" + hashlib.sha256(f"{name_prefix}/{model}".encode()).hexdigest()[:10]


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
    description: str,
    role_description: str,
    schedule_name: Optional[str] = None,
) -> ScheduledJob:
    """A ``SchedulerRole``, its ``SchedulerAccess`` policy and a ``Schedule`` in ``scope`` that start
    one ``kind`` job per run with ``request`` (its name must be ``<stem>-<aws.scheduler.execution-id>``).

    The role may create only jobs named after ``stem``, tag them, pass only ``job_role`` (to
    SageMaker; None for a job that takes no role: a transform job runs as its model's role) and use
    ``key``; the schedule retries twice within an hour. Scheduler replaces the
    execution id in the request on every run, so job names never collide.
    """
    action, api, resource, name_field, _ = _KINDS[kind]
    if schedule_name is not None and len(schedule_name) > 64:
        raise ValueError(
            f"schedule name {schedule_name!r} exceeds 64 characters; shorten the project, environment or model name"
        )
    if request.get(name_field) != f"{stem}-{EXECUTION_ID}":
        raise ValueError(f"{name_field} must be '{stem}-{EXECUTION_ID}', got {request.get(name_field)!r}")
    stack = Stack.of(scope)
    role = iam.Role(
        scope,
        "SchedulerRole",
        assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com").with_conditions(
            {"StringEquals": {"aws:SourceAccount": stack.account}}
        ),
        description=role_description,
    )
    access = AccessPolicy(scope, "SchedulerAccess", role=role, description=role_description)
    access.allow(
        f"Start{api.removeprefix('Create')}",
        [f"sagemaker:{api}", "sagemaker:AddTags"],
        [format_arn(stack, service="sagemaker", resource=resource, resource_name=f"{stem}-*")],
        wildcard_reason="Each scheduled run names its job after the schedule's execution id; the stem confines "
        "the role to this model's jobs of this kind.",
    )
    if job_role is not None:
        access.allow_pass_role("PassJobRole", job_role.role_arn, "sagemaker.amazonaws.com")
    access.allow_key("Key", key)
    schedule = scheduler.CfnSchedule(
        scope,
        "Schedule",
        name=schedule_name,
        description=description,
        schedule_expression=expression,
        schedule_expression_timezone="UTC",
        flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
        target=scheduler.CfnSchedule.TargetProperty(
            arn=f"arn:{stack.partition}:scheduler:::aws-sdk:sagemaker:{action}",
            role_arn=role.role_arn,
            input=stack.to_json_string(dict(request)),
            retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=2, maximum_event_age_in_seconds=3600),
        ),
    )
    schedule.node.add_dependency(access)
    return ScheduledJob(schedule=schedule, role=role, access=access)

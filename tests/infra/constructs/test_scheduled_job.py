"""scheduled_sagemaker_job, built in a bare stack: a schedule whose role may start only its own jobs."""

from __future__ import annotations

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.scheduled_job import EXECUTION_ID, job_name_stem, scheduled_sagemaker_job


def _stack() -> tuple[Stack, iam.Role, kms.Key]:
    stack = Stack(new_app(), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    return stack, iam.Role(stack, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")), kms.Key(stack, "Key")


def _schedule(stack, job_role, key, *, request=None, schedule_name=None):
    stem = job_name_stem("processing", "shop-dev", "churn")
    return scheduled_sagemaker_job(
        stack,
        kind="processing",
        stem=stem,
        request=request if request is not None else {"ProcessingJobName": f"{stem}-{EXECUTION_ID}", "RoleArn": job_role.role_arn},
        expression="cron(0 3 * * ? *)",
        job_role=job_role,
        key=key,
        description="daily monitor of churn",
        role_description="shop-dev: scheduled monitor of churn",
        schedule_name=schedule_name,
    )


def test_job_name_stems_fit_the_job_name_limit_with_the_execution_id_and_differ_per_model():
    stem = job_name_stem("transform", "shop-prod", "credit-risk")
    assert stem.startswith("bt-") and len(f"{stem}-{'x' * 36}") <= 63
    assert stem != job_name_stem("transform", "shop-prod", "churn") != job_name_stem("processing", "shop-prod", "churn")


def test_when_scheduled_then_the_role_starts_only_this_stems_jobs_and_passes_only_the_job_role():
    stack, job_role, key = _stack()
    stem = job_name_stem("processing", "shop-dev", "churn")
    _schedule(stack, job_role, key)
    template = Template.from_stack(stack)
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpressionTimezone"] == "UTC" and props["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert props["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:createProcessingJob"
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["StartProcessingJob"]["Resource"] == f"arn:aws:sagemaker:eu-west-1:123456789012:processing-job/{stem}-*"
    assert statements["PassJobRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    (role,) = [r for r in template.find_resources("AWS::IAM::Role").values()
               if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"}
    }


def test_a_job_that_takes_no_role_gets_no_pass_role():
    """A transform job runs as its model's role; CreateTransformJob has no RoleArn, so the scheduler passes none."""
    stack, _, key = _stack()
    stem = job_name_stem("transform", "shop-dev", "churn")
    scheduled_sagemaker_job(stack, kind="transform", stem=stem, request={"TransformJobName": f"{stem}-{EXECUTION_ID}"},
                            expression="cron(0 1 * * ? *)", job_role=None, key=key, description="nightly scoring of churn",
                            role_description="shop-dev: scheduled batch transform of churn")
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
    assert [s["Sid"] for s in policy["Properties"]["PolicyDocument"]["Statement"]] == ["StartTransformJob", "Key"]


def test_a_request_whose_job_name_is_not_the_stem_and_the_execution_id_is_refused():
    stack, job_role, key = _stack()
    with pytest.raises(ValueError, match=r"^ProcessingJobName must be 'mon-[0-9a-f]{10}-<aws.scheduler.execution-id>', got 'fixed-name'$"):
        _schedule(stack, job_role, key, request={"ProcessingJobName": "fixed-name"})


def test_a_schedule_name_over_64_characters_is_refused():
    stack, job_role, key = _stack()
    with pytest.raises(ValueError, match=r"^schedule name '(x){65}' exceeds 64 characters; shorten the project, environment or model name$"):
        _schedule(stack, job_role, key, schedule_name="x" * 65)

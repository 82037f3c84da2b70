"""scheduled_sagemaker_job, built in a bare stack: a schedule whose role may start only its own jobs."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.scheduled_job import EXECUTION_ID, job_name_stem, notify_job_failures, scheduled_sagemaker_job
from tests.support.cdk_outdirs import bare_outdir


def _stack() -> tuple[Stack, iam.Role, kms.Key]:
    """A bare stack with a job role, a data key, and a dead-letter queue ``DeadLetters`` encrypted with ``OpsKey``."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    sqs.Queue(stack, "DeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=kms.Key(stack, "OpsKey"))
    return stack, iam.Role(stack, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")), kms.Key(stack, "Key")


def _queue(stack: Stack) -> sqs.Queue:
    return stack.node.find_child("DeadLetters")


def _id(stack: Stack, name: str) -> str:
    return stack.get_logical_id(stack.node.find_child(name).node.default_child)


CLUSTER = {"ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}}}


def _schedule(stack, job_role, key, *, request=None, schedule_name=None, tags=()):
    stem = job_name_stem("processing", "shop-dev", "churn")
    return scheduled_sagemaker_job(
        stack,
        kind="processing",
        stem=stem,
        request=request if request is not None else {"ProcessingJobName": f"{stem}-{EXECUTION_ID}", "RoleArn": job_role.role_arn,
                                                     **CLUSTER},
        expression="cron(0 3 * * ? *)",
        job_role=job_role,
        key=key,
        dead_letter_queue=_queue(stack),
        description="daily monitor of churn",
        role_description="shop-dev: scheduled monitor of churn",
        schedule_name=schedule_name,
        tags=tags,
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
    # Only on the instance type the request names: an edited schedule asking for another type is refused.
    assert statements["StartProcessingJob"]["Condition"] == {
        "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": ["ml.m5.xlarge"]}, "Null": {"sagemaker:InstanceTypes": "false"}}
    assert statements["PassJobRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # SageMaker grants the key to the job's volume as the caller (the schedule's role): only for an AWS service
    grants = statements["VolumeGrants"]
    assert (grants["Action"], grants["Condition"]) == ("kms:CreateGrant", {"Bool": {"kms:GrantIsForAWSResource": "true"}})
    (role,) = [r for r in template.find_resources("AWS::IAM::Role").values()
               if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"}
    }


def test_a_job_that_takes_no_role_gets_no_pass_role():
    """A transform job runs as its model's role; CreateTransformJob has no RoleArn, so the scheduler passes none."""
    stack, _, key = _stack()
    stem = job_name_stem("transform", "shop-dev", "churn")
    scheduled_sagemaker_job(stack, kind="transform", stem=stem,
                            request={"TransformJobName": f"{stem}-{EXECUTION_ID}",
                                     "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1}},
                            expression="cron(0 1 * * ? *)", job_role=None, key=key, dead_letter_queue=_queue(stack),
                            description="nightly scoring of churn",
                            role_description="shop-dev: scheduled batch transform of churn")
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
    assert [s["Sid"] for s in policy["Properties"]["PolicyDocument"]["Statement"]] == [
        "StartTransformJob", "TagTransformJob", "Key", "VolumeGrants", "DeadLetters", "DeadLetterKey"]


@pytest.mark.parametrize("resources", [{}, {"ProcessingResources": {"ClusterConfig": {"InstanceType": {"Ref": "Type"}}}}])
def test_a_request_without_a_literal_instance_type_is_refused(resources):
    """GIVEN a request that names no instance type, or one known only at deploy time WHEN scheduled THEN it is refused:
    the role may create jobs on the type the request names only, which must be known at synth."""
    stack, job_role, key = _stack()
    stem = job_name_stem("processing", "shop-dev", "churn")
    with pytest.raises(ValueError, match=r"^ProcessingResources\.ClusterConfig\.InstanceType must be the instance type the job "
                                         r"runs on, as a string from the config, got (None|\{'Ref': 'Type'\})$"):
        _schedule(stack, job_role, key, request={"ProcessingJobName": f"{stem}-{EXECUTION_ID}", **resources})


def test_a_request_whose_job_name_is_not_the_stem_and_the_execution_id_is_refused():
    stack, job_role, key = _stack()
    with pytest.raises(ValueError, match=r"^ProcessingJobName must be 'mon-[0-9a-f]{10}-<aws.scheduler.execution-id>', got 'fixed-name'$"):
        _schedule(stack, job_role, key, request={"ProcessingJobName": "fixed-name"})


def test_every_job_carries_the_given_tags_before_its_own_and_the_role_may_tag_the_jobs_it_creates():
    """GIVEN the environment's tags and a request with a tag of its own WHEN scheduled THEN the job request carries
    both (the environment's first), and the role may AddTags on exactly the jobs it may create (a create request
    with tags is authorized as AddTags as well)."""
    stack, job_role, key = _stack()
    stem = job_name_stem("processing", "shop-dev", "churn")
    request = {"ProcessingJobName": f"{stem}-{EXECUTION_ID}", "Tags": [{"Key": "mlops-loop:model", "Value": "churn"}], **CLUSTER}
    _schedule(stack, job_role, key, request=request, tags=(("project", "shop"), ("environment", "dev")))
    template = Template.from_stack(stack)
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    sent = json.loads(schedule["Properties"]["Target"]["Input"])
    assert sent["Tags"] == [{"Key": "project", "Value": "shop"}, {"Key": "environment", "Value": "dev"},
                            {"Key": "mlops-loop:model", "Value": "churn"}]
    assert request["Tags"] == [{"Key": "mlops-loop:model", "Value": "churn"}]  # the caller's request is left as it was
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["StartProcessingJob"]["Action"] == "sagemaker:CreateProcessingJob"
    assert statements["TagProcessingJob"]["Action"] == "sagemaker:AddTags"
    assert statements["TagProcessingJob"]["Resource"] == statements["StartProcessingJob"]["Resource"]


def test_a_request_tag_key_that_repeats_an_environment_tag_key_is_refused():
    stack, job_role, key = _stack()
    stem = job_name_stem("processing", "shop-dev", "churn")
    request = {"ProcessingJobName": f"{stem}-{EXECUTION_ID}", "Tags": [{"Key": "project", "Value": "other"}], **CLUSTER}
    with pytest.raises(ValueError, match=r"^request Tags repeat the environment's tag key\(s\) \['project'\]; a SageMaker job "
                                         r"takes each key once$"):
        _schedule(stack, job_role, key, request=request, tags=(("project", "shop"),))


def test_a_schedule_name_over_64_characters_is_refused():
    stack, job_role, key = _stack()
    with pytest.raises(ValueError, match=r"^schedule name '(x){65}' exceeds 64 characters; shorten the project, environment or model name$"):
        _schedule(stack, job_role, key, schedule_name="x" * 65)


def test_a_run_that_cannot_start_goes_to_the_dead_letter_queue_which_the_role_may_send_to_with_its_key():
    """GIVEN a schedule WHEN Scheduler cannot start the job (CreateProcessingJob refused by a quota or a permission) and
    its two retries fail THEN the run goes to the queue, sent as the schedule's role: the role may send there and use
    the queue's key (not only the job's data key)."""
    stack, job_role, key = _stack()
    _schedule(stack, job_role, key)
    template = Template.from_stack(stack)
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    queue, ops_key = _id(stack, "DeadLetters"), _id(stack, "OpsKey")
    assert schedule["Properties"]["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert (statements["DeadLetters"]["Action"], statements["DeadLetters"]["Resource"]) == (
        "sqs:SendMessage", {"Fn::GetAtt": [queue, "Arn"]})
    assert statements["DeadLetterKey"]["Resource"] == {"Fn::GetAtt": [ops_key, "Arn"]}
    assert "kms:GenerateDataKey" in statements["DeadLetterKey"]["Action"]


def _failures(kind: str = "processing", stems: dict | None = None) -> tuple[Stack, dict]:
    """GIVEN a bare stack with a topic and a notification queue WHEN failures of ``kind`` jobs of ``stems`` notify people."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    topic, queue = sns.Topic(stack, "Topic"), sqs.Queue(stack, "Notices")
    stems = stems if stems is not None else {m: job_name_stem(kind, "shop-dev", m) for m in ("churn", "basket")}
    notify_job_failures(stack, "JobFailures", kind=kind, stems=stems, what="shop-dev drift monitor", topic=topic,
                        dead_letter_queue=queue)
    (rule,) = Template.from_stack(stack).find_resources("AWS::Events::Rule").values()
    return stack, rule["Properties"]


def test_a_failed_or_stopped_monitor_job_of_these_stems_tells_people_in_one_message():
    """GIVEN two models' monitor stems WHEN their failures notify people THEN the rule matches SageMaker's processing
    job event for job names starting with either stem (the stem holds environment and model: no other environment's
    job matches), Failed or Stopped, and sends one message naming the job, its status, the failure reason, which model
    each stem is, and the commands for its logs and its description."""
    stack, rule = _failures()
    churn, basket = (job_name_stem("processing", "shop-dev", m) for m in ("churn", "basket"))
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Processing Job State Change"],
        "detail": {"ProcessingJobName": [{"prefix": f"{basket}-"}, {"prefix": f"{churn}-"}],
                   "ProcessingJobStatus": ["Failed", "Stopped"]},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": _id(stack, "Topic")}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [_id(stack, "Notices"), "Arn"]}}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-ProcessingJobName": "$.detail.ProcessingJobName",
                                            "detail-ProcessingJobStatus": "$.detail.ProcessingJobStatus",
                                            "detail-FailureReason": "$.detail.FailureReason"}
    assert transformer["InputTemplate"] == (
        '"shop-dev drift monitor job <detail-ProcessingJobName> ended <detail-ProcessingJobStatus>: <detail-FailureReason>. '
        f'Jobs by model: {basket}-* = basket; {churn}-* = churn. '
        "Logs: aws logs tail /aws/sagemaker/ProcessingJobs --log-stream-name-prefix <detail-ProcessingJobName>/ --since 2d "
        "--region eu-west-1. "
        'Job: aws sagemaker describe-processing-job --processing-job-name <detail-ProcessingJobName> --region eu-west-1"'
    )


def test_a_failed_transform_job_is_matched_on_the_transform_event_and_its_fields():
    stack, rule = _failures("transform", {"returns": job_name_stem("transform", "shop-dev", "returns")})
    stem = job_name_stem("transform", "shop-dev", "returns")
    assert rule["EventPattern"]["detail-type"] == ["SageMaker Transform Job State Change"]
    assert rule["EventPattern"]["detail"] == {"TransformJobName": [{"prefix": f"{stem}-"}],
                                              "TransformJobStatus": ["Failed", "Stopped"]}
    template = rule["Targets"][0]["InputTransformer"]["InputTemplate"]
    assert "aws logs tail /aws/sagemaker/TransformJobs --log-stream-name-prefix <detail-TransformJobName>/" in template
    assert "aws sagemaker describe-transform-job --transform-job-name <detail-TransformJobName> --region eu-west-1" in template


def test_a_failure_rule_for_no_job_is_refused():
    with pytest.raises(ValueError, match=r"^notify_job_failures: no transform job stems given; a rule matching no job "
                                         r"tells nobody anything$"):
        _failures("transform", {})

"""BatchTransform, built in a bare stack: a schedule (on the model's condition) that starts one batch transform job
of the served model per run, over the model's batch input prefix, as the model's execution role.

The stand-ins are minimal: a data key, the inference bucket by name, the model's execution role, a SageMaker Model,
and the version parameter with the condition that it is set. Batch settings are the config module's
``BatchServing``, not read from config/mlops-loop.yaml.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import CfnCondition, CfnParameter, Environment, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs

from mlops_loop.app_builder import new_app
from mlops_loop.config.serving import BatchServing
from mlops_loop.constructs.batch_transform import BatchTransform
from mlops_loop.constructs.scheduled_job import EXECUTION_ID, job_name_stem
from tests.support.built_stack import BuiltStack, evaluate, scheduled_request
from tests.support.cdk_outdirs import bare_outdir

PREFIX = "shop-dev"
INFERENCE = "shop-dev-inference"
CAPTURE_URI = f"s3://{INFERENCE}/capture/returns/"
CONDITION = "ReturnsDeployed"
# How the approved version (the last part of the package ARN parameter) reads in a rendered request.
VERSION = "ReturnsModelPackageArn|split:/|2"


class _Built(BuiltStack):
    def __init__(self, stack: Stack, transforms: list[BatchTransform]):
        super().__init__(stack)
        self.transforms = transforms
        self.batch = transforms[0]

    def ref(self, construct_id: str, attribute: str = "Arn") -> str:
        """How a token of a stand-in reads in the rendered request: ``${LogicalId.Attribute}``."""
        return "${%s.%s}" % (self.id_of(self.stack.node.find_child(construct_id)), attribute)

    def schedule(self, batch: BatchTransform | None = None) -> dict:
        return self.of_type("AWS::Scheduler::Schedule")[self.id_of((batch or self.batch).schedule)]

    def request(self, batch: BatchTransform | None = None) -> dict:
        """The CreateTransformJob request the schedule sends, parsed (tokens rendered as ``${Id.Attr}``)."""
        return scheduled_request(self.schedule(batch))

    def scheduler_statements(self) -> dict[str, dict]:
        return self.statements_of(self.batch.node.find_child("SchedulerAccess"))


def _build(batch: BatchServing = BatchServing(), *, models: tuple[str, ...] = ("returns",), name_prefix: str = PREFIX,
           tags: tuple[tuple[str, str], ...] = (), **options: Any) -> _Built:
    """GIVEN a bare stack with the stand-ins WHEN each of ``models`` is scheduled for batch transform as ``batch`` says."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    parameter = CfnParameter(stack, "ReturnsModelPackageArn", type="String", default="")
    condition = CfnCondition(stack, CONDITION, expression=Fn.condition_not(Fn.condition_equals(parameter.value_as_string, "")))
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket.from_bucket_name(stack, "Inference", INFERENCE)
    role = iam.Role(stack, "ModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    model = sagemaker.CfnModel(stack, "Model", execution_role_arn=role.role_arn)
    dead_letters = sqs.Queue(stack, "ScheduleDeadLetters", encryption=sqs.QueueEncryption.KMS,
                             encryption_master_key=kms.Key(stack, "OpsKey"))
    version = Fn.select(2, Fn.split("/", parameter.value_as_string))
    transforms = [
        BatchTransform(stack, name.capitalize(), name_prefix=name_prefix, model=model, model_name=name, batch=batch,
                       model_version=version,
                       inference_bucket=bucket, key=key, condition=condition,
                       dead_letter_queue=dead_letters, tags=tags, **options)
        for name in models
    ]
    return _Built(stack, transforms)


@pytest.fixture(scope="module")
def default() -> _Built:
    """Model ``returns`` on the default batch settings: one ml.m5.xlarge nightly at 01:00 UTC over JSON Lines."""
    return _build()


# ------------------------------------------------------------------ the request
def test_each_run_starts_a_job_named_after_the_models_stem_and_the_schedules_execution_id(default: _Built):
    stem = job_name_stem("transform", PREFIX, "returns")
    assert default.batch.job_name_prefix == stem and stem.startswith("bt-")
    request = default.request()
    assert request["TransformJobName"] == f"{stem}-{EXECUTION_ID}"
    assert request["ModelName"] == "${Model.ModelName}"
    assert request["Tags"] == [{"Key": "mlops-loop:model", "Value": "returns"}]


def test_given_the_environments_tags_each_job_carries_them_before_its_model_tag():
    tags = (("project", "shop"), ("environment", "dev"), ("tier", "dev"))
    assert _build(tags=tags).request()["Tags"] == [*({"Key": k, "Value": v} for k, v in tags),
                                                   {"Key": "mlops-loop:model", "Value": "returns"}]


def test_the_job_reads_the_models_batch_input_and_keeps_each_runs_output_apart(default: _Built):
    request = default.request()
    assert request["TransformInput"] == {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{INFERENCE}/batch/returns/input/"}},
        "ContentType": "application/jsonlines",
        "SplitType": "Line",
    }
    assert request["TransformOutput"] == {
        # Per run, under the version that scored it: the monitor judges a version by its own outputs only.
        "S3OutputPath": f"s3://{INFERENCE}/batch/returns/output/v${{{VERSION}}}/{EXECUTION_ID}/",
        "Accept": "application/jsonlines",
        "AssembleWith": "Line",
        "KmsKeyId": default.ref("Key"),
    }
    assert (request["BatchStrategy"], request["MaxPayloadInMB"], request["MaxConcurrentTransforms"]) == ("MultiRecord", 6, 0)
    # As long as the container lets a request run: its default, 60 s (serving.inference_timeout_seconds).
    assert request["ModelClientConfig"] == {"InvocationsTimeoutInSeconds": 60, "InvocationsMaxRetries": 1}


@pytest.mark.parametrize("seconds", [60, 900, 3600])
def test_the_job_waits_for_each_request_as_long_as_the_serving_container_lets_it_run(seconds):
    request = _build(inference_timeout_seconds=seconds).request()
    assert request["ModelClientConfig"] == {"InvocationsTimeoutInSeconds": seconds, "InvocationsMaxRetries": 1}


def test_each_runs_output_prefix_names_the_approved_version_the_job_scores_with(default: _Built):
    """The version segment is the last part of the approved package ARN (the one the job's Model serves), so a run
    that started before a new approval keeps its old version's name, and one after it the new one's."""
    parts = default.schedule()["Properties"]["Target"]["Input"]["Fn::Join"][1]
    (version,) = [p for p in parts if isinstance(p, dict) and "Fn::Select" in p]
    approved = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-dev-returns/7"
    assert evaluate(version, {"ReturnsModelPackageArn": approved}) == "7"


def test_the_job_writes_no_data_capture_the_monitor_reads_its_inputs_beside_their_outputs(default: _Built):
    """Nothing reads a transform job's SageMaker data capture (the drift monitor pairs batch/<model>/input/X with each
    run's X.out): a capture would be a second, unread copy of every scored record (30M rows a night), kept as long as
    the traffic."""
    request = default.request()
    assert "DataCaptureConfig" not in request
    assert request["TransformOutput"]["S3OutputPath"] == f"s3://{INFERENCE}/batch/returns/output/v${{{VERSION}}}/{EXECUTION_ID}/"


def test_the_batch_settings_reach_the_request():
    """A mini-batch above 6 MB reaches the job as configured: the serving container (the XGBoost image serving one
    model through SAGEMAKER_PROGRAM: nginx with client_max_body_size 0, a Flask app without MAX_CONTENT_LENGTH) sets
    no request-size limit of its own, so SageMaker's (100 MB, concurrency included) is the one that applies."""
    settings = BatchServing(instance_type="ml.c5.xlarge", instance_count=3, content_type="text/csv", max_payload_mb=20,
                            max_concurrent_transforms=4, schedule="rate(12 hours)")
    built = _build(settings)
    request = built.request()
    assert (request["TransformInput"]["ContentType"], request["TransformOutput"]["Accept"]) == ("text/csv", "text/csv")
    assert (request["MaxPayloadInMB"], request["MaxConcurrentTransforms"]) == (20, 4)
    assert request["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 3, "VolumeKmsKeyId": built.ref("Key")}
    assert built.schedule()["Properties"]["ScheduleExpression"] == "rate(12 hours)"


def test_the_instance_volume_is_encrypted_with_the_data_key(default: _Built):
    assert default.request()["TransformResources"] == {
        "InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeKmsKeyId": default.ref("Key")}


def test_on_a_local_nvme_instance_type_the_volume_key_is_left_out_but_the_output_stays_encrypted():
    """SageMaker rejects a volume key for instance types whose local NVMe storage is hardware-encrypted."""
    built = _build(BatchServing(instance_type="ml.g5.xlarge"))
    request = built.request()
    assert request["TransformResources"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1}
    assert request["TransformOutput"]["KmsKeyId"] == built.ref("Key")


# ------------------------------------------------------------------ the schedule
def test_the_schedule_is_named_after_the_model_and_exists_only_once_a_version_is_approved(default: _Built):
    schedule = default.schedule()
    props = schedule["Properties"]
    assert default.batch.schedule_name == props["Name"] == "shop-dev-returns-batch"
    assert props["ScheduleExpression"] == "cron(0 1 * * ? *)" and props["ScheduleExpressionTimezone"] == "UTC"
    assert props["Description"] == f"Batch transform of returns over s3://{INFERENCE}/batch/returns/input/"
    assert props["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:createTransformJob"
    assert props["Target"]["RoleArn"] == {"Fn::GetAtt": [default.id_of(default.batch.scheduler_role), "Arn"]}
    assert schedule["Condition"] == CONDITION
    assert schedule["Metadata"]["mlops-loop"] == {"model": "returns", "mode": "batch"}


def test_only_the_schedule_waits_for_an_approval_its_role_exists_from_the_start(default: _Built):
    resources = default.resources_of(default.batch)
    assert {v["Type"]: v.get("Condition") for v in resources.values()} == {
        "AWS::Scheduler::Schedule": CONDITION, "AWS::IAM::Role": None, "AWS::IAM::ManagedPolicy": None}


def test_the_scheduler_role_starts_only_this_models_transform_jobs_run_as_the_models_role(default: _Built):
    built = default
    role = built.of_type("AWS::IAM::Role")[built.id_of(built.batch.scheduler_role)]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
    }]
    assert role["Description"] == "shop-dev: scheduled batch transform of returns"
    statements = built.scheduler_statements()
    # CreateTransformJob takes no role (the job runs as the model's): nothing to pass.
    assert list(statements) == ["StartTransformJob", "TagTransformJob", "Key", "VolumeGrants", "DeadLetters", "DeadLetterKey",
                                "UseModel"]
    stem = built.batch.job_name_prefix
    assert statements["StartTransformJob"]["Resource"] == f"arn:aws:sagemaker:eu-west-1:123456789012:transform-job/{stem}-*"
    assert statements["StartTransformJob"]["Action"] == "sagemaker:CreateTransformJob"
    # On the configured batch instance type only (the schedule's request names it; an edited one may not name another).
    assert statements["StartTransformJob"]["Condition"] == {
        "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": [built.request()["TransformResources"]["InstanceType"]]},
        "Null": {"sagemaker:InstanceTypes": "false"}}
    assert statements["TagTransformJob"]["Action"] == "sagemaker:AddTags"
    assert statements["Key"]["Resource"] == {"Fn::GetAtt": [built.id_of(built.stack.node.find_child("Key")), "Arn"]}
    # Every approved version is a new Model with a generated name.
    assert statements["UseModel"] == {"Sid": "UseModel", "Effect": "Allow", "Action": "sagemaker:DescribeModel",
                                      "Resource": "arn:aws:sagemaker:eu-west-1:123456789012:model/*"}


def test_a_run_the_schedule_cannot_start_goes_to_the_dead_letter_queue_the_role_may_send_to(default: _Built):
    """GIVEN the default batch model WHEN a run's CreateTransformJob is refused twice more (quota, permission, a missing
    model) THEN Scheduler puts it into the queue it was given, as the schedule's role, which may send there and use its key."""
    built = default
    queue_id = built.id_of(built.stack.node.find_child("ScheduleDeadLetters"))
    target = built.schedule()["Properties"]["Target"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    statements = built.scheduler_statements()
    assert (statements["DeadLetters"]["Action"], statements["DeadLetters"]["Resource"]) == (
        "sqs:SendMessage", {"Fn::GetAtt": [queue_id, "Arn"]})
    assert statements["DeadLetterKey"]["Resource"] == {"Fn::GetAtt": [built.id_of(built.stack.node.find_child("OpsKey")), "Arn"]}


def test_two_models_get_their_own_schedules_and_job_name_stems():
    built = _build(models=("returns", "basket"))
    returns, basket = built.transforms
    assert (returns.schedule_name, basket.schedule_name) == ("shop-dev-returns-batch", "shop-dev-basket-batch")
    assert returns.job_name_prefix != basket.job_name_prefix
    assert built.request(basket)["TransformJobName"] == f"{job_name_stem('transform', PREFIX, 'basket')}-{EXECUTION_ID}"
    assert built.request(basket)["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{INFERENCE}/batch/basket/input/"


# ------------------------------------------------------------------ refusal
def test_a_schedule_name_over_64_characters_is_refused():
    prefix = "shop-" + "x" * 50
    with pytest.raises(ValueError, match=rf"^schedule name '{prefix}-returns-batch' exceeds 64 characters; "
                                         r"shorten the project, environment or model name$"):
        _build(name_prefix=prefix)

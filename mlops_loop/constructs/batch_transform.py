"""Scheduled batch scoring of one served model: a transform job over its input prefix, on a schedule."""

from __future__ import annotations

from typing import Optional, Sequence

from aws_cdk import CfnCondition
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code.core.contract import MODEL_TAG, TEAM_TAG, TRAFFIC_INPUT, TRAFFIC_OUTPUT, batch_version_dir, inference_prefix

from ..config.instance_types import INSTANCE_TYPES
from ..config.serving import CONTAINER_DEFAULT_TIMEOUT_SECONDS, BatchServing
from ..naming import RESOURCE_METADATA_KEY, batch_schedule_name
from .arns import format_arn
from .cdk_reads import read_once, stack_of
from .scheduled_job import EXECUTION_ID, job_name_stem, scheduled_sagemaker_job


class BatchTransform(Construct):
    """An EventBridge Scheduler schedule ``<prefix>-<model>-batch`` (on ``condition``) that starts a batch transform
    job of ``model`` over ``s3://<inference bucket>/batch/<model>/input/`` as ``batch.schedule`` says, with outputs
    kept per run under ``output/v<version>/<execution id>/``, and no SageMaker data capture: the drift monitor reads each
    input beside its output (``X`` and ``X.out``), so a capture would be a second, unread copy of every record;
    the job runs as ``model``'s execution role, encrypted with ``key``. A run the schedule could not start (after
    two retries) goes to ``dead_letter_queue``; a job that started and failed is told to people by the Operations
    stack's ``TransformJobFailures`` rule (``scheduled_job.notify_job_failures``, by ``job_name_prefix``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        model: sagemaker.CfnModel,
        model_name: str,
        model_version: str,
        batch: BatchServing,
        inference_bucket: s3.IBucket,
        key: kms.IKey,
        condition: CfnCondition,
        dead_letter_queue: sqs.IQueue,
        tags: Sequence[tuple[str, str]] = (),
        team: Optional[str] = None,
        inference_timeout_seconds: int = CONTAINER_DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        """``tags`` (default none): the environment's cost-allocation tags, which every job carries besides its
        model tag; ``model_version``: the registry version ``model`` serves (a token of the approved package ARN),
        which names each run's output prefix; ``inference_timeout_seconds`` (default the serving containers' own 60 s): how long the job waits
        for one request, as long as ``model``'s container lets it run (``serving.inference_timeout_seconds``)."""
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        # Job names must be unique per run and at most 63 characters: a short stable stem per
        # environment+model (for IAM scoping) plus the schedule's execution id.
        stem = job_name_stem("transform", name_prefix, model_name)
        self.job_name_prefix = stem
        base = f"s3://{read_once(inference_bucket, 'bucket_name')}/{inference_prefix(model_name, 'batch')}"
        volume_key = None if INSTANCE_TYPES[batch.instance_type].local_nvme else read_once(key, "key_arn")
        request = {
            "TransformJobName": f"{stem}-{EXECUTION_ID}",
            "ModelName": model.attr_model_name,
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": batch.max_payload_mb,
            "MaxConcurrentTransforms": batch.max_concurrent_transforms,
            "ModelClientConfig": {"InvocationsTimeoutInSeconds": inference_timeout_seconds, "InvocationsMaxRetries": 1},
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{base}{TRAFFIC_INPUT}"}},
                "ContentType": batch.content_type,
                "SplitType": "Line",
            },
            "TransformOutput": {
                # Under the version that scores it, so the drift monitor judges each version by its own outputs (a
                # run that started before an approval writes its old version's name).
                "S3OutputPath": f"{base}{TRAFFIC_OUTPUT}{batch_version_dir(model_version)}/{EXECUTION_ID}/",
                "Accept": batch.content_type,
                "AssembleWith": "Line",
                "KmsKeyId": read_once(key, "key_arn"),
            },
            "TransformResources": {
                "InstanceType": batch.instance_type,
                "InstanceCount": batch.instance_count,
                **({"VolumeKmsKeyId": volume_key} if volume_key else {}),
            },
            # The model's (and its team's, models.<model>.owner) beside the environment's: jobs bill per model and team.
            "Tags": [{"Key": MODEL_TAG, "Value": model_name}, *([{"Key": TEAM_TAG, "Value": team}] if team else [])],
        }
        self.schedule_name = batch_schedule_name(name_prefix, model_name)
        job = scheduled_sagemaker_job(
            self,
            kind="transform",
            stem=stem,
            request=request,
            expression=batch.schedule,
            job_role=None,  # CreateTransformJob takes no role: the job runs as the model's
            key=key,
            dead_letter_queue=dead_letter_queue,
            description=f"Batch transform of {model_name} over {base}{TRAFFIC_INPUT}",
            role_description=f"{name_prefix}: scheduled batch transform of {model_name}",
            schedule_name=self.schedule_name,
            tags=tags,
        )
        # The transform job needs the model (replaced, with a new generated name, by every version).
        job.access.allow("UseModel", ["sagemaker:DescribeModel"], [format_arn(stack, service="sagemaker", resource="model", resource_name="*")],
                         wildcard_reason="The model is replaced (new generated name) by every approved version.")
        self.scheduler_role = job.role
        self.schedule = job.schedule
        self.schedule.cfn_options.condition = condition
        # Read by the cost-floor report and by people reading the template.
        self.schedule.add_metadata(RESOURCE_METADATA_KEY, {"model": model_name, "mode": "batch"})

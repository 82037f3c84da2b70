"""One model's serving resources, created only once a version has been approved for this environment."""

from __future__ import annotations

from typing import Optional

from aws_cdk import CfnCondition, CfnResource, Fn, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline_code.core.contract import (
    CAPTURE_ENDPOINT_ENV,
    CAPTURE_KMS_KEY_ENV,
    CAPTURE_PERCENT_ENV,
    CAPTURE_URI_ENV,
    MODEL_VERSION_ENV,
    VARIANT,
    endpoint_name,
    inference_prefix,
)
from pipeline_code.core.integrity import MODEL_SHA256_ENV, model_prefix

from ..config.instance_types import INSTANCE_TYPES
from ..config.schema import ModelConfig
from ..config.serving import Rollout, ServingConfig
from ..nag import acknowledge
from ..naming import RESOURCE_METADATA_KEY, batch_schedule_name
from .access_policy import AccessPolicy
from .endpoint_fleet import (
    allow_reading_rollback_alarms,
    blue_green,
    invocations_scaling,
    rollback_alarm_names,
    rollback_alarms,
    scalable_target,
    target_tracking,
)
from .scheduled_job import EXECUTION_ID, job_name_stem, scheduled_sagemaker_job

# Where the model's own serving code lives inside model.tar.gz (written there by the training job),
# so no code is downloaded at start-up and network isolation can stay on.
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "serve_entry.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
}
# What the serving code accepts and answers (docs/invocation-contract.md).
SERVING_CONTENT_TYPES = ("application/json", "application/jsonlines", "text/csv")
CAPTURE_CONTENT_TYPES = {
    "JsonContentTypes": ["application/json", "application/jsonlines"],
    "CsvContentTypes": ["text/csv"],
}


def backlog_alarm_name(endpoint_name: str) -> str:
    """The alarm that scales an async endpoint out from zero: ``<endpoint>-backlog-without-capacity``."""
    return f"{endpoint_name}-backlog-without-capacity"


class ServedModel(Construct):
    """The serving resources of one model, in the mode its config asks for.

    Every resource carries ``served_condition`` (the model's package-ARN parameter is not empty), so
    a stack deploys with no endpoint until the first approval, and an approval deploys by changing
    that one parameter. The endpoint's name is fixed; each new version creates a new Model and
    EndpointConfig and *updates* the endpoint, which SageMaker does blue/green: the old fleet keeps
    serving until the new one is healthy, traffic shifts as ``rollout`` says, and if a rollback alarm
    fires during the shift or the baking period the endpoint returns to the old fleet and the
    CloudFormation update fails, which rolls the parameter back to the previous version.

    * ``realtime``: instances with target-tracking autoscaling on invocations per instance; data
      capture to the inference bucket; canary / linear / all-at-once rollout.
    * ``serverless``: memory and concurrency (optional provisioned concurrency); SageMaker offers no
      data capture here, so the serving code writes the same records itself (environment below).
    * ``async``: requests and results in S3, success/error SNS topics, backlog-based scaling to zero
      and a step policy that scales out from zero.
    * ``batch``: no endpoint; an EventBridge Scheduler schedule starts a batch transform job over the
      model's input prefix, with SageMaker data capture and outputs kept per run.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        served_name_prefix: str,
        served_model: ModelConfig,
        served_serving: ServingConfig,
        served_package_arn: str,
        served_model_sha256: str,
        served_condition: CfnCondition,
        served_key: kms.IKey,
        served_inference_bucket: s3.IBucket,
        served_artifacts_bucket: s3.IBucket,
        served_image_repository_arn: str,
        served_notification_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self._condition = served_condition
        self.serving = served_serving
        self.mode = served_serving.mode
        self.model_config = served_model
        self.model_name = served_model_name = served_model.name
        self.endpoint_name: Optional[str] = None if self.mode == "batch" else endpoint_name(served_name_prefix, served_model_name)
        bucket = served_inference_bucket
        self.capture_uri = f"s3://{bucket.bucket_name}/{inference_prefix(served_model_name, 'capture')}"

        # --- the model's execution role: read its artefacts, pull the image, write capture/results.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{served_name_prefix}: serving container of {served_model_name}",
        )
        access = AccessPolicy(self, "Access", access_role=self.role, access_description=f"{served_name_prefix} {served_model_name} serving")
        access.allow_prefix("ReadModelArtifacts", served_artifacts_bucket.bucket_name, model_prefix(served_model_name))
        # Captured traffic is what the drift monitor judges the model by: the role that writes it may
        # not delete it (issue #13), so a serving container cannot erase what it answered.
        access.allow_prefix("InferenceData", bucket.bucket_name, inference_prefix(served_model_name, self._data_prefix()),
                            write=True, delete=self._data_prefix() != "capture")
        if self._data_prefix() != "capture":
            # Async endpoints and transform jobs also write their data capture, as this role.
            access.allow_prefix("Capture", bucket.bucket_name, inference_prefix(served_model_name, "capture"),
                                write=True, delete=False)
        access.allow_key("DataKey", served_key)
        access.allow_serving_runtime(repository_arn=served_image_repository_arn)

        # --- the model: the approved package version, plus how to run our serving code, which refuses
        # to load a model whose digest is not the registered one and reports the version it serves.
        environment = {
            **SERVING_ENVIRONMENT,
            MODEL_SHA256_ENV: served_model_sha256,
            MODEL_VERSION_ENV: Fn.select(2, Fn.split("/", served_package_arn)),
        }
        if self.mode == "serverless" and served_serving.data_capture_percent > 0:
            environment.update(
                {
                    CAPTURE_URI_ENV: self.capture_uri,
                    CAPTURE_PERCENT_ENV: str(served_serving.data_capture_percent),
                    CAPTURE_KMS_KEY_ENV: served_key.key_arn,
                    CAPTURE_ENDPOINT_ENV: self.endpoint_name or "",
                }
            )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            containers=[
                sagemaker.CfnModel.ContainerDefinitionProperty(
                    model_package_name=served_package_arn, environment=environment
                )
            ],
            # Serverless endpoints do not support network isolation (and serverless capture needs S3).
            enable_network_isolation=self.mode != "serverless",
        )
        self._conditional(self.model)
        self.model.node.add_dependency(access)

        if self.mode == "batch":
            self._batch(served_name_prefix, bucket, served_key)
            return
        self.topics: dict[str, sns.Topic] = {}
        self.endpoint_config = self._endpoint_config(bucket, served_key, served_notification_key)
        if self.topics:
            access.allow("AsyncNotifications", ["sns:Publish"], [t.topic_arn for t in self.topics.values()])
            access.allow_key("NotificationKey", served_notification_key)
        rollout = self._rollout_config()
        self.rollback_alarms = self._rollback_alarms(served_name_prefix, rollout)
        # Every alarm this stack creates for the endpoint: the serving deployer may manage these and no other.
        self.alarm_names: list[str] = list(rollback_alarm_names(self.endpoint_name))
        allow_reading_rollback_alarms(access, self.endpoint_name)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=blue_green(rollout, self.rollback_alarms),
        )
        self._conditional(self.endpoint)
        self._label(self.endpoint)
        if self.mode == "realtime" and served_serving.realtime.autoscaling is not None:
            self._realtime_scaling()
        if self.mode == "async":
            self._async_scaling()

    # ------------------------------------------------------------------ helpers
    def _data_prefix(self) -> str:
        return {"batch": "batch", "async": "async"}.get(self.mode, "capture")

    def _conditional(self, resource: CfnResource) -> None:
        resource.cfn_options.condition = self._condition

    def _label(self, resource: CfnResource) -> None:
        # Read by the cost-floor report and by people reading the template.
        resource.add_metadata(RESOURCE_METADATA_KEY, {"model": self.model_name, "mode": self.mode})

    def _rollout_config(self) -> Rollout:
        rollout = self.serving.rollout
        if rollout is None:
            raise ValueError(f"serving mode {self.mode!r} has no endpoint rollout")
        return rollout

    def _endpoint_config(self, bucket: s3.IBucket, key: kms.IKey, notification_key: kms.IKey) -> sagemaker.CfnEndpointConfig:
        serving = self.serving
        variant: dict = {"variant_name": VARIANT, "model_name": self.model.attr_model_name}
        instance_type: Optional[str] = None
        if self.mode == "realtime":
            instance_type = serving.realtime.instance_type
            variant.update(instance_type=instance_type, initial_instance_count=serving.realtime.instance_count)
        elif self.mode == "async":
            instance_type = serving.async_.instance_type
            variant.update(instance_type=instance_type, initial_instance_count=1)
        else:
            variant["serverless_config"] = sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                memory_size_in_mb=serving.serverless.memory_mb,
                max_concurrency=serving.serverless.max_concurrency,
                provisioned_concurrency=serving.serverless.provisioned_concurrency,
            )
        capture = None
        if self.mode != "serverless" and serving.data_capture_percent > 0:
            capture = sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=serving.data_capture_percent,
                destination_s3_uri=self.capture_uri,
                kms_key_id=key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=CAPTURE_CONTENT_TYPES["CsvContentTypes"],
                    json_content_types=CAPTURE_CONTENT_TYPES["JsonContentTypes"],
                ),
            )
        async_config = None
        if self.mode == "async":
            for outcome in ("Success", "Error"):
                topic = sns.Topic(
                    self,
                    f"Async{outcome}",
                    display_name=f"{self.endpoint_name} async {outcome.lower()}",
                    master_key=notification_key,
                    enforce_ssl=True,
                )
                # Topics exist before any approval (they cost nothing idle), so approval-time updates
                # never create SNS resources.
                self.topics[outcome.lower()] = topic
            prefix = f"s3://{bucket.bucket_name}/{inference_prefix(self.model_name, 'async')}"
            async_config = sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=f"{prefix}output/",
                    s3_failure_path=f"{prefix}failures/",
                    kms_key_id=key.key_arn,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=self.topics["success"].topic_arn,
                        error_topic=self.topics["error"].topic_arn,
                        include_inference_response_in=["SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC"],
                    ),
                ),
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=serving.async_.max_concurrent_invocations_per_instance
                ),
            )
        # Instance storage encryption: SageMaker rejects a volume key for types with local NVMe
        # (encrypted by hardware) and for serverless (no volume).
        volume_key = None
        if instance_type is not None and not INSTANCE_TYPES[instance_type].local_nvme:
            volume_key = key.key_arn
        config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[sagemaker.CfnEndpointConfig.ProductionVariantProperty(**variant)],
            kms_key_id=volume_key,
            data_capture_config=capture,
            async_inference_config=async_config,
        )
        self._conditional(config)
        self._label(config)
        if volume_key is None:
            reason = (
                "Serverless endpoints have no instance storage volume to encrypt; SageMaker rejects a KmsKeyId for them."
                if self.mode == "serverless"
                else f"{instance_type} stores data on local NVMe, which is hardware-encrypted; SageMaker rejects a KmsKeyId for it."
            )
            acknowledge(config, reason, "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured")
        return config

    def _rollback_alarms(self, name_prefix: str, rollout: Rollout) -> list[cloudwatch.Alarm]:
        assert self.endpoint_name is not None
        return rollback_alarms(self, endpoint_name=self.endpoint_name, rollout=rollout, condition=self._condition)

    def _realtime_scaling(self) -> None:
        scaling = self.serving.realtime.autoscaling
        assert scaling is not None and self.endpoint_name is not None
        invocations_scaling(self, endpoint_name=self.endpoint_name, endpoint=self.endpoint, scaling=scaling,
                            condition=self._condition)

    def _async_scaling(self) -> None:
        cfg = self.serving.async_
        assert self.endpoint_name is not None
        target = scalable_target(self, endpoint_name=self.endpoint_name, endpoint=self.endpoint, min_capacity=0,
                                 max_capacity=cfg.max_instances, condition=self._condition)
        target_tracking(
            self,
            "BacklogPerInstance",
            policy_name=f"{self.endpoint_name}-backlog-per-instance",
            target=target,
            value=cfg.target_backlog_per_instance,
            condition=self._condition,
            scale_in=cfg.scale_in_cooldown_seconds,
            scale_out=cfg.scale_out_cooldown_seconds,
            customized_metric_specification=autoscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                namespace="AWS/SageMaker",
                metric_name="ApproximateBacklogSizePerInstance",
                dimensions=[autoscaling.CfnScalingPolicy.MetricDimensionProperty(name="EndpointName", value=self.endpoint_name)],
                statistic="Average",
            ),
        )
        # Target tracking cannot leave zero (a per-instance metric is undefined with no instance):
        # a step policy adds one instance as soon as requests wait with no capacity.
        from_zero = autoscaling.CfnScalingPolicy(
            self,
            "ScaleOutFromZero",
            policy_name=f"{self.endpoint_name}-scale-out-from-zero",
            policy_type="StepScaling",
            scaling_target_id=target.ref,
            step_scaling_policy_configuration=autoscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
                adjustment_type="ChangeInCapacity",
                metric_aggregation_type="Average",
                cooldown=cfg.scale_out_cooldown_seconds,
                step_adjustments=[
                    autoscaling.CfnScalingPolicy.StepAdjustmentProperty(metric_interval_lower_bound=0, scaling_adjustment=1)
                ],
            ),
        )
        self._conditional(from_zero)
        alarm = cloudwatch.CfnAlarm(
            self,
            "BacklogWithoutCapacity",
            alarm_name=backlog_alarm_name(self.endpoint_name),
            alarm_description=f"Requests wait at {self.endpoint_name} with no instance: scale out from zero",
            namespace="AWS/SageMaker",
            metric_name="HasBacklogWithoutCapacity",
            dimensions=[cloudwatch.CfnAlarm.DimensionProperty(name="EndpointName", value=self.endpoint_name)],
            statistic="Average",
            period=60,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[from_zero.ref],
        )
        self._conditional(alarm)
        self.alarm_names.append(backlog_alarm_name(self.endpoint_name))

    def _batch(self, name_prefix: str, bucket: s3.IBucket, key: kms.IKey) -> None:
        cfg = self.serving.batch
        stack = Stack.of(self)
        # Job names must be unique per run and at most 63 characters: a short stable stem per
        # environment+model (for IAM scoping) plus the schedule's execution id.
        stem = job_name_stem("transform", name_prefix, self.model_name)
        self.job_name_prefix = stem
        base = f"s3://{bucket.bucket_name}/{inference_prefix(self.model_name, 'batch')}"
        volume_key = None if INSTANCE_TYPES[cfg.instance_type].local_nvme else key.key_arn
        request = {
            "TransformJobName": f"{stem}-{EXECUTION_ID}",
            "ModelName": self.model.attr_model_name,
            "BatchStrategy": "MultiRecord",
            "MaxPayloadInMB": cfg.max_payload_mb,
            "MaxConcurrentTransforms": cfg.max_concurrent_transforms,
            "ModelClientConfig": {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 1},
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{base}input/"}},
                "ContentType": cfg.content_type,
                "SplitType": "Line",
            },
            "TransformOutput": {
                "S3OutputPath": f"{base}output/{EXECUTION_ID}/",
                "Accept": cfg.content_type,
                "AssembleWith": "Line",
                "KmsKeyId": key.key_arn,
            },
            "TransformResources": {
                "InstanceType": cfg.instance_type,
                "InstanceCount": cfg.instance_count,
                **({"VolumeKmsKeyId": volume_key} if volume_key else {}),
            },
            "DataCaptureConfig": {
                "DestinationS3Uri": f"{self.capture_uri}batch/",
                "KmsKeyId": key.key_arn,
                "GenerateInferenceId": True,
            },
            "Tags": [{"Key": "mlops-loop:model", "Value": self.model_name}],
        }
        self.schedule_name = batch_schedule_name(name_prefix, self.model_name)
        job = scheduled_sagemaker_job(
            self,
            kind="transform",
            stem=stem,
            request=request,
            expression=cfg.schedule,
            job_role=self.role,
            key=key,
            description=f"Batch transform of {self.model_name} over {base}input/",
            role_description=f"{name_prefix}: scheduled batch transform of {self.model_name}",
            schedule_name=self.schedule_name,
        )
        # The transform job needs the model (replaced, with a new generated name, by every version).
        job.access.allow("UseModel", ["sagemaker:DescribeModel"], [stack.format_arn(service="sagemaker", resource="model", resource_name="*")],
                         wildcard_reason="The model is replaced (new generated name) by every approved version.")
        self.scheduler_role = job.role
        self.schedule = job.schedule
        self._conditional(self.schedule)
        self._label(self.schedule)

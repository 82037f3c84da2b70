"""The endpoint of one served model (real-time, serverless or async), updated blue/green on each approval."""

from __future__ import annotations

from typing import Optional

from aws_cdk import CfnCondition, CfnResource
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline_code.core import media_types
from pipeline_code.core.contract import ASYNC_FAILURES, TRAFFIC_OUTPUT, VARIANT, inference_prefix

from ..config.instance_types import INSTANCE_TYPES
from ..config.serving import Rollout, ServingConfig, compiled_for_inferentia2
from ..nag import acknowledge
from ..naming import RESOURCE_METADATA_KEY
from .access_policy import AccessPolicy
from .cdk_reads import read_once
from .endpoint_fleet import (
    allow_reading_rollback_alarms,
    blue_green,
    invocations_scaling,
    rollback_alarm_names,
    rollback_alarms,
    scalable_target,
    target_tracking,
)

CAPTURE_CONTENT_TYPES = {
    "JsonContentTypes": [media_types.JSON, media_types.JSONLINES],
    "CsvContentTypes": [media_types.CSV],
}


def backlog_alarm_name(endpoint_name: str) -> str:
    """The alarm that scales an async endpoint out from zero: ``<endpoint>-backlog-without-capacity``."""
    return f"{endpoint_name}-backlog-without-capacity"


class ModelEndpoint(Construct):
    """The endpoint ``endpoint_name`` serving ``model`` in the mode ``serving`` asks for, every resource on ``condition``.

    Each version creates a new EndpointConfig and *updates* the endpoint, which SageMaker does blue/green:
    the old fleet keeps serving until the new one is healthy, traffic shifts as ``serving.rollout`` says,
    and if a rollback alarm fires during the shift or the baking period the endpoint returns to the old fleet.

    * ``realtime``: instances with target-tracking autoscaling on invocations per instance, scaled in to the
      minimum once they have run an hour without a request (``<endpoint>-idle-scale-in``); data capture to
      ``capture_uri``;
    * ``serverless``: memory and concurrency (optional provisioned concurrency); no SageMaker capture
      (the serving code writes it);
    * ``async``: requests and results in S3, success/error SNS topics (encrypted with ``notification_key``),
      backlog-based scaling to zero and a step policy that scales out from zero.

    ``access`` (the model's execution role) is granted what the endpoint makes the role do: read the
    rollback alarms while a rollout bakes, and publish to the async topics.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model: sagemaker.CfnModel,
        model_name: str,
        serving: ServingConfig,
        capture_uri: str,
        inference_bucket: s3.IBucket,
        key: kms.IKey,
        notification_key: kms.IKey,
        access: AccessPolicy,
        condition: CfnCondition,
    ) -> None:
        super().__init__(scope, construct_id)
        self._condition = condition
        self.serving = serving
        self.mode = serving.mode
        self.model = model
        self.model_name = model_name
        self.endpoint_name = endpoint_name
        self.capture_uri = capture_uri
        rollout = self._rollout_config()
        self.topics: dict[str, sns.Topic] = {}
        self.endpoint_config = self._endpoint_config(inference_bucket, key, notification_key)
        if self.topics:
            access.allow("AsyncNotifications", ["sns:Publish"], [read_once(t, "topic_arn") for t in self.topics.values()])
            access.allow_key("NotificationKey", notification_key)
        # A model compiled for Inferentia2 also rolls back on its parity check (see compiled_for_inferentia2).
        self.parity_checked = compiled_for_inferentia2(serving)
        self.rollback_alarms = rollback_alarms(
            self, endpoint_name=endpoint_name, rollout=rollout,
            max_client_error_rate_percent=serving.alarms.max_client_error_rate_percent, condition=condition,
            parity=self.parity_checked)
        # Every alarm this stack creates for the endpoint: the serving deployer may manage these and no other.
        self.alarm_names: list[str] = list(rollback_alarm_names(endpoint_name, parity=self.parity_checked))
        allow_reading_rollback_alarms(access, endpoint_name, parity=self.parity_checked)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=blue_green(rollout, self.rollback_alarms),
        )
        self._conditional(self.endpoint)
        self._label(self.endpoint)
        if self.mode == "realtime" and serving.realtime.autoscaling is not None:
            scaled = invocations_scaling(self, endpoint_name=endpoint_name, endpoint=self.endpoint,
                                         scaling=serving.realtime.autoscaling, condition=condition)
            self.alarm_names.extend(scaled.alarm_names)
        if self.mode == "async":
            self._async_scaling()

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
                kms_key_id=read_once(key, "key_arn"),
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
            prefix = f"s3://{read_once(bucket, 'bucket_name')}/{inference_prefix(self.model_name, 'async')}"
            async_config = sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=f"{prefix}{TRAFFIC_OUTPUT}",
                    s3_failure_path=f"{prefix}{ASYNC_FAILURES}",
                    kms_key_id=read_once(key, "key_arn"),
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=read_once(self.topics["success"], "topic_arn"),
                        error_topic=read_once(self.topics["error"], "topic_arn"),
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
            volume_key = read_once(key, "key_arn")
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

    def _async_scaling(self) -> None:
        cfg = self.serving.async_
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

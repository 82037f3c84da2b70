"""ModelEndpoint, built in a bare stack: one model's real-time, serverless or async endpoint, every resource on
the model's condition, updated blue/green with alarm rollback.

The stand-ins are minimal: a data key and an ops key, the inference bucket by name, a SageMaker Model on an
execution role with its AccessPolicy, and the version parameter with the condition that it is set. Serving
settings are built with the config module's ``ServingConfig``, not read from config/mlops-loop.yaml.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import CfnCondition, CfnParameter, Environment, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

from mlops_loop.app_builder import new_app
from mlops_loop.config.serving import ServingConfig
from mlops_loop.constructs.access_policy import AccessPolicy
from mlops_loop.constructs.model_endpoint import ModelEndpoint, backlog_alarm_name
from tests.support.built_stack import BuiltStack, acknowledged
from tests.support.cdk_outdirs import bare_outdir

ENDPOINT = "shop-dev-returns"
INFERENCE = "shop-dev-inference"
CAPTURE_URI = f"s3://{INFERENCE}/capture/returns/"
CONDITION = "ReturnsDeployed"
NVME_RULE = "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured"


def _serving(mode: str, **blocks: Any) -> ServingConfig:
    """A model's serving settings as the config module validates them (``async`` is the key of the async block)."""
    return ServingConfig.model_validate({"mode": mode, **blocks})


class _Built(BuiltStack):
    """The bare stack after a ModelEndpoint was added, and what the tests read of it."""

    def __init__(self, stack: Stack, endpoint: ModelEndpoint, access: AccessPolicy):
        super().__init__(stack)
        self.endpoint, self.access = endpoint, access

    def statements(self) -> dict[str, dict]:
        return self.statements_of(self.access)

    def own_resources(self) -> dict[str, dict]:
        """The template's resources that the ModelEndpoint itself made (not the stand-ins)."""
        return self.resources_of(self.endpoint)


def _build(serving: ServingConfig) -> _Built:
    """GIVEN a bare stack with the stand-ins WHEN the endpoint of model ``returns`` is added as ``serving`` says."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    parameter = CfnParameter(stack, "ReturnsModelPackageArn", type="String", default="")
    condition = CfnCondition(stack, CONDITION, expression=Fn.condition_not(Fn.condition_equals(parameter.value_as_string, "")))
    role = iam.Role(stack, "ModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    access = AccessPolicy(stack, "Access", role=role, description="returns serving")
    model = sagemaker.CfnModel(stack, "Model", execution_role_arn=role.role_arn)
    endpoint = ModelEndpoint(
        stack, "Returns", endpoint_name=ENDPOINT, model=model, model_name="returns", serving=serving, capture_uri=CAPTURE_URI,
        inference_bucket=s3.Bucket.from_bucket_name(stack, "Inference", INFERENCE), key=kms.Key(stack, "Key"),
        notification_key=kms.Key(stack, "OpsKey"), access=access, condition=condition,
    )
    return _Built(stack, endpoint, access)


@pytest.fixture(scope="module")
def realtime() -> _Built:
    """The default real-time endpoint: ml.m5.large, autoscaling 1-4, every request captured, canary rollout."""
    return _build(_serving("realtime"))


@pytest.fixture(scope="module")
def asynchronous() -> _Built:
    return _build(_serving("async", **{"async": {"instance_type": "ml.c5.xlarge", "max_instances": 3, "target_backlog_per_instance": 8,
                                                  "max_concurrent_invocations_per_instance": 2, "scale_in_cooldown_seconds": 900,
                                                  "scale_out_cooldown_seconds": 120}}))


@pytest.fixture(scope="module")
def serverless() -> _Built:
    return _build(_serving("serverless", serverless={"memory_mb": 3072, "max_concurrency": 20, "provisioned_concurrency": 2}))


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("mode", ["batch", "multi_model"])
def test_a_serving_mode_without_an_endpoint_rollout_is_refused(mode):
    """Batch has no endpoint and a multi-model member rolls out with its shared endpoint: neither may build one."""
    with pytest.raises(ValueError, match=rf"^serving mode '{mode}' has no endpoint rollout$"):
        _build(_serving(mode))


# ------------------------------------------------------------------ conditions and attributes
@pytest.mark.parametrize("mode", ["realtime", "serverless", "async"])
def test_every_resource_of_the_endpoint_exists_only_when_a_version_is_approved_except_the_async_topics(mode):
    """The async topics cost nothing idle and exist from the start, so an approval never creates SNS resources."""
    own = _build(_serving(mode)).own_resources()
    unconditional = {v["Type"] for v in own.values() if "Condition" not in v}
    assert {v["Condition"] for v in own.values() if "Condition" in v} == {CONDITION}
    assert unconditional == ({"AWS::SNS::Topic", "AWS::SNS::TopicPolicy"} if mode == "async" else set())


def test_the_attributes_other_constructs_read(realtime: _Built):
    made = realtime.endpoint
    assert (made.endpoint_name, made.capture_uri, made.model_name, made.mode) == (ENDPOINT, CAPTURE_URI, "returns", "realtime")
    assert realtime.one("AWS::SageMaker::Endpoint")["Properties"]["EndpointName"] == ENDPOINT
    assert realtime.id_of(made.endpoint) in realtime.of_type("AWS::SageMaker::Endpoint")
    assert realtime.id_of(made.endpoint_config) in realtime.of_type("AWS::SageMaker::EndpointConfig")
    assert made.topics == {}


@pytest.mark.parametrize(("mode", "extra"), [("realtime", [f"{ENDPOINT}-idle-scale-in"]), ("serverless", []),
                                             ("async", [f"{ENDPOINT}-backlog-without-capacity"])])
def test_alarm_names_list_exactly_the_alarms_the_endpoint_creates(mode, extra):
    """The serving deployer may manage these alarms and no other: the list must match the template."""
    built = _build(_serving(mode))
    names = built.endpoint.alarm_names
    assert names == [f"{ENDPOINT}-rollout-errors", f"{ENDPOINT}-rollout-latency", f"{ENDPOINT}-rollout-client-errors", *extra]
    assert sorted(a["Properties"]["AlarmName"] for a in built.of_type("AWS::CloudWatch::Alarm").values()) == sorted(names)


def test_the_endpoint_and_its_config_are_labelled_with_the_model_and_mode_for_the_cost_report(asynchronous: _Built):
    label = {"model": "returns", "mode": "async"}
    assert asynchronous.one("AWS::SageMaker::EndpointConfig")["Metadata"]["mlops-loop"] == label
    assert asynchronous.one("AWS::SageMaker::Endpoint")["Metadata"]["mlops-loop"] == label


# ------------------------------------------------------------------ endpoint config per mode
def test_a_realtime_endpoint_runs_the_model_on_its_instances_captures_traffic_and_encrypts_the_volume(realtime: _Built):
    built = realtime
    config = built.one("AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant == {"VariantName": "AllTraffic", "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                       "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    assert config["KmsKeyId"] == built.arn_of("Key")
    assert config["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": CAPTURE_URI,
        "KmsKeyId": built.arn_of("Key"),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json", "application/jsonlines"]},
    }
    assert "AsyncInferenceConfig" not in config
    assert built.one("AWS::SageMaker::Endpoint")["Properties"]["EndpointConfigName"] == {
        "Fn::GetAtt": [built.id_of(built.endpoint.endpoint_config), "EndpointConfigName"]}
    assert acknowledged(built.endpoint.endpoint_config) == {}


def test_capture_samples_the_configured_share_and_is_left_out_at_zero():
    sampled = _build(_serving("realtime", data_capture_percent=25)).one("AWS::SageMaker::EndpointConfig")["Properties"]
    assert sampled["DataCaptureConfig"]["InitialSamplingPercentage"] == 25
    off = _build(_serving("async", data_capture_percent=0)).one("AWS::SageMaker::EndpointConfig")["Properties"]
    assert "DataCaptureConfig" not in off and "AsyncInferenceConfig" in off


def test_a_serverless_endpoint_has_memory_and_concurrency_no_sagemaker_capture_and_no_volume_key(serverless: _Built):
    """SageMaker offers no capture on serverless (the serving code writes it) and rejects a volume key: acknowledged."""
    built = serverless
    config = built.one("AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant == {"VariantName": "AllTraffic", "ModelName": {"Fn::GetAtt": ["Model", "ModelName"]},
                       "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 20, "ProvisionedConcurrency": 2}}
    assert "DataCaptureConfig" not in config and "KmsKeyId" not in config
    assert acknowledged(built.endpoint.endpoint_config) == {
        NVME_RULE: "Serverless endpoints have no instance storage volume to encrypt; SageMaker rejects a KmsKeyId for them."}
    assert built.of_type("AWS::ApplicationAutoScaling::ScalableTarget") == {}


def test_serverless_without_provisioned_concurrency_leaves_it_out():
    (variant,) = _build(_serving("serverless")).one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 10}


@pytest.mark.parametrize("mode", ["realtime", "async"])
@pytest.mark.parametrize("instance_type", ["ml.m5d.xlarge", "ml.g5.xlarge"])
def test_on_a_local_nvme_instance_type_the_volume_key_is_left_out_andacknowledged(mode, instance_type):
    built = _build(_serving(mode, **{mode: {"instance_type": instance_type}}))
    config = built.one("AWS::SageMaker::EndpointConfig")["Properties"]
    assert "KmsKeyId" not in config
    assert config["ProductionVariants"][0]["InstanceType"] == instance_type
    # Only the volume key goes: captured data is still encrypted with the data key.
    assert config["DataCaptureConfig"]["KmsKeyId"] == built.arn_of("Key")
    assert acknowledged(built.endpoint.endpoint_config) == {
        NVME_RULE: f"{instance_type} stores data on local NVMe, which is hardware-encrypted; SageMaker rejects a KmsKeyId for it."}


def test_an_async_endpoint_keeps_requests_and_results_under_the_models_async_prefix_and_notifies_its_topics(asynchronous: _Built):
    built = asynchronous
    config = built.one("AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", 1)
    topics = {t["Properties"]["DisplayName"]: k for k, t in built.of_type("AWS::SNS::Topic").items()}
    assert set(topics) == {f"{ENDPOINT} async success", f"{ENDPOINT} async error"}
    success, error = topics[f"{ENDPOINT} async success"], topics[f"{ENDPOINT} async error"]
    assert {k: built.id_of(t) for k, t in built.endpoint.topics.items()} == {"success": success, "error": error}
    assert config["AsyncInferenceConfig"] == {
        "OutputConfig": {
            "S3OutputPath": f"s3://{INFERENCE}/async/returns/output/",
            "S3FailurePath": f"s3://{INFERENCE}/async/returns/failures/",
            "KmsKeyId": built.arn_of("Key"),
            "NotificationConfig": {"SuccessTopic": {"Ref": success}, "ErrorTopic": {"Ref": error},
                                   "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC"]},
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
    }
    # Async endpoints capture too (SageMaker data capture), to the model's capture prefix.
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == CAPTURE_URI


def test_the_async_topics_are_encrypted_with_the_notification_key_and_refuse_plain_http(asynchronous: _Built):
    built = asynchronous
    for logical_id, topic in built.of_type("AWS::SNS::Topic").items():
        assert topic["Properties"]["KmsMasterKeyId"] == built.arn_of("OpsKey"), logical_id
    denies = [s for p in built.of_type("AWS::SNS::TopicPolicy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert len(denies) == 2
    assert all(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


# ------------------------------------------------------------------ what the model's role is granted
def test_the_role_may_publish_to_the_async_topics_with_the_notification_key_and_read_the_rollback_alarms(asynchronous: _Built):
    built = asynchronous
    statements = built.statements()
    assert list(statements) == ["AsyncNotifications", "NotificationKey", "ReadRollbackAlarms"]
    assert statements["AsyncNotifications"]["Action"] == "sns:Publish"
    assert sorted(r["Ref"] for r in statements["AsyncNotifications"]["Resource"]) == sorted(
        built.id_of(t) for t in built.endpoint.topics.values())
    assert statements["NotificationKey"]["Resource"] == built.arn_of("OpsKey")
    assert statements["ReadRollbackAlarms"]["Resource"] == [
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-client-errors",
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-errors",
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-latency",
    ]


@pytest.mark.parametrize("fixture", ["realtime", "serverless"])
def test_without_topics_the_role_is_granted_only_the_rollback_alarms(fixture, request):
    built: _Built = request.getfixturevalue(fixture)
    assert list(built.statements()) == ["ReadRollbackAlarms"]


# ------------------------------------------------------------------ blue/green rollout
def test_a_new_version_rolls_out_blue_green_and_rolls_back_on_any_rollback_alarm(realtime: _Built):
    built = realtime
    deployment = built.one("AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 600,
                                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
        "TerminationWaitInSeconds": 300,
        # Two 10-minute bakes, 5 minutes before teardown, 30 minutes for the fleet.
        "MaximumExecutionTimeoutInSeconds": 3300,
    }
    alarms = {a["Properties"]["AlarmName"]: k for k, a in built.of_type("AWS::CloudWatch::Alarm").items()}
    rollback = [alarms[f"{ENDPOINT}-rollout-{suffix}"] for suffix in ("errors", "latency", "client-errors")]
    assert deployment["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": {"Ref": a}} for a in rollback]}
    assert [built.id_of(a) for a in built.endpoint.rollback_alarms] == rollback
    # The autoscaling's idle scale-in alarm is no verdict on a version.
    assert set(alarms) - set(f"{ENDPOINT}-rollout-{s}" for s in ("errors", "latency", "client-errors")) == {
        f"{ENDPOINT}-idle-scale-in"}


@pytest.mark.parametrize(
    ("serving", "routing", "timeout"),
    [
        # The realtime block's canary must not leak into an async endpoint: the active mode's rollout applies.
        (_serving("async", realtime={"rollout": {"strategy": "canary", "canary_percent": 30}},
                  **{"async": {"rollout": {"strategy": "linear", "linear_step_percent": 25, "wait_minutes": 4,
                                           "termination_wait_minutes": 2}}}),
         {"Type": "LINEAR", "WaitIntervalInSeconds": 240, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}},
         4 * 240 + 120 + 1800),
        (_serving("serverless", serverless={"rollout": {"wait_minutes": 3, "termination_wait_minutes": 1}}),
         {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 180}, 180 + 60 + 1800),
    ],
    ids=["async-linear", "serverless-all-at-once"],
)
def test_the_rollout_is_the_active_modes_own(serving, routing, timeout):
    policy = _build(serving).one("AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == routing
    assert policy["MaximumExecutionTimeoutInSeconds"] == timeout


def test_the_rollback_alarms_fire_at_the_rollouts_error_rate_and_latency():
    built = _build(_serving("realtime", realtime={"rollout": {"max_error_rate_percent": 2.5, "max_latency_p99_ms": 400}}))
    alarms = {a["Properties"]["AlarmName"]: a for a in built.of_type("AWS::CloudWatch::Alarm").values()}
    errors, latency = alarms[f"{ENDPOINT}-rollout-errors"], alarms[f"{ENDPOINT}-rollout-latency"]
    assert errors["Properties"]["Threshold"] == 2.5
    # ModelLatency is reported in microseconds.
    assert (latency["Properties"]["MetricName"], latency["Properties"]["Threshold"]) == ("ModelLatency", 400_000)
    assert latency["Properties"]["Dimensions"][0] == {"Name": "EndpointName", "Value": ENDPOINT}


@pytest.mark.parametrize("mode", ["realtime", "serverless", "async"])
def test_every_endpoint_mode_rolls_back_on_a_4xx_rate_over_the_models_client_error_setting(mode):
    """GIVEN a model whose callers may send up to 8% bad requests (alarms.max_client_error_rate_percent) WHEN its
    endpoint is built in any mode with a blue/green rollout THEN the rollout's client-error alarm fires above 8% (not
    the default 5%) and is in the endpoint's auto-rollback list."""
    built = _build(_serving(mode, alarms={"max_client_error_rate_percent": 8.0}))
    alarms = {a["Properties"]["AlarmName"]: (k, a) for k, a in built.of_type("AWS::CloudWatch::Alarm").items()}
    logical_id, alarm = alarms[f"{ENDPOINT}-rollout-client-errors"]
    assert alarm["Properties"]["Threshold"] == 8.0 and alarm["Condition"] == CONDITION
    rollback = built.one("AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]
    assert {"AlarmName": {"Ref": logical_id}} in rollback["Alarms"]


# ------------------------------------------------------------------ autoscaling
def test_a_realtime_endpoint_scales_its_variant_on_invocations_per_instance():
    scaling = {"min_instances": 2, "max_instances": 6, "target_invocations_per_instance": 150, "scale_out_cooldown_seconds": 30,
               "scale_in_cooldown_seconds": 600}
    built = _build(_serving("realtime", realtime={"autoscaling": scaling}))
    (variant,) = built.one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert variant["InitialInstanceCount"] == 2, "without an explicit count the endpoint starts at the autoscaling minimum"
    target_id, target = next(iter(built.of_type("AWS::ApplicationAutoScaling::ScalableTarget").items()))
    assert target["Properties"] == {"ServiceNamespace": "sagemaker", "ResourceId": f"endpoint/{ENDPOINT}/variant/AllTraffic",
                                    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 2, "MaxCapacity": 6}
    assert target["DependsOn"] == [built.id_of(built.endpoint.endpoint)]
    policies = {p["Properties"]["PolicyName"]: p for p in built.of_type("AWS::ApplicationAutoScaling::ScalingPolicy").values()}
    assert set(policies) == {f"{ENDPOINT}-invocations-per-instance", f"{ENDPOINT}-idle-scale-in"}
    # After an idle hour, exactly the minimum (endpoint_fleet.idle_scale_in, tested there).
    idle = policies[f"{ENDPOINT}-idle-scale-in"]["Properties"]
    assert idle["ScalingTargetId"] == {"Ref": target_id}
    assert {s["ScalingAdjustment"] for s in idle["StepScalingPolicyConfiguration"]["StepAdjustments"]} == {2}
    assert policies[f"{ENDPOINT}-invocations-per-instance"]["Properties"] == {
        "PolicyName": f"{ENDPOINT}-invocations-per-instance",
        "PolicyType": "TargetTrackingScaling",
        "ScalingTargetId": {"Ref": target_id},
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 150, "ScaleInCooldown": 600, "ScaleOutCooldown": 30,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    }


def test_a_fixed_size_realtime_endpoint_has_no_autoscaling():
    built = _build(_serving("realtime", realtime={"autoscaling": None, "instance_count": 3}))
    assert built.of_type("AWS::ApplicationAutoScaling::ScalableTarget") == {}
    assert built.of_type("AWS::ApplicationAutoScaling::ScalingPolicy") == {}
    assert built.one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"][0]["InitialInstanceCount"] == 3


def test_an_async_endpoint_scales_to_zero_on_its_backlog_and_steps_out_of_zero_when_a_request_waits(asynchronous: _Built):
    built = asynchronous
    target_id, target = next(iter(built.of_type("AWS::ApplicationAutoScaling::ScalableTarget").items()))
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (0, 3)
    policies = {p["Properties"]["PolicyName"]: (k, p["Properties"])
                for k, p in built.of_type("AWS::ApplicationAutoScaling::ScalingPolicy").items()}
    assert set(policies) == {f"{ENDPOINT}-backlog-per-instance", f"{ENDPOINT}-scale-out-from-zero"}
    _, backlog = policies[f"{ENDPOINT}-backlog-per-instance"]
    assert backlog["ScalingTargetId"] == {"Ref": target_id}
    assert backlog["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 8, "ScaleInCooldown": 900, "ScaleOutCooldown": 120,
        "CustomizedMetricSpecification": {"Namespace": "AWS/SageMaker", "MetricName": "ApproximateBacklogSizePerInstance",
                                          "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}], "Statistic": "Average"},
    }
    step_id, step = policies[f"{ENDPOINT}-scale-out-from-zero"]
    assert (step["PolicyType"], step["ScalingTargetId"]) == ("StepScaling", {"Ref": target_id})
    assert step["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Average", "Cooldown": 120,
        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    }
    (alarm,) = [a["Properties"] for a in built.of_type("AWS::CloudWatch::Alarm").values()
                if a["Properties"]["AlarmName"] == backlog_alarm_name(ENDPOINT)]
    assert alarm == {
        "AlarmName": f"{ENDPOINT}-backlog-without-capacity",
        "AlarmDescription": f"Requests wait at {ENDPOINT} with no instance: scale out from zero",
        "Namespace": "AWS/SageMaker", "MetricName": "HasBacklogWithoutCapacity",
        "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}],
        "Statistic": "Average", "Period": 60, "EvaluationPeriods": 1, "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
        "AlarmActions": [{"Ref": step_id}],
    }

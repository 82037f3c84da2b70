"""MultiModelEndpoint, built in a bare serving stack (with a bare storage stack for its bootstrap asset): one
shared fleet, created with the first approval of any member, each member switched by its own TargetModel parameter.

The member models are copies of the one declared in ``tests.support.construct_configs`` (a small dataset), not read
from config/mlops-loop.yaml, so the tests do not
depend on the sample model line-up.
"""

from __future__ import annotations

import json
import re
from typing import Optional, Sequence

import pytest
from aws_cdk import CfnCondition, CfnParameter, Environment, Fn, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from mlops_loop.app_builder import new_app
from mlops_loop.config import ModelConfig, NetworkConfig, parse_config
from mlops_loop.config.serving import MultiModelEndpointConfig, RealtimeAutoscaling, Rollout, ServingAlarms, ServingConfig
from mlops_loop.constructs.multi_model_endpoint import BOOTSTRAP_ASSET_ID, MultiModelEndpoint, MultiModelMember
from tests.support.construct_configs import (assert_sagemaker_eni_statements, network_config, returns_config,
                                             vpc_config_of_network, vpc_statements_of)
from tests.support.built_stack import BuiltStack, acknowledged, evaluate
from tests.support.cdk_outdirs import bare_outdir

ENV = Environment(account="123456789012", region="eu-west-1")
ENDPOINT = "shop-dev-mme-shared"
ARTIFACTS, INFERENCE = "shop-dev-artifacts", "shop-dev-inference"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
RETURNS: ModelConfig = parse_config(returns_config(), source="multi-model test config").models["returns"]


def _model(name: str) -> ModelConfig:
    """A member model named ``name`` (the endpoint reads only a member's name and serving block)."""
    return RETURNS if name == "returns" else RETURNS.model_copy(update={"name": name})


class _Built(BuiltStack):
    def __init__(self, serving: Stack, storage: Stack, mme: MultiModelEndpoint):
        super().__init__(serving)
        self.serving, self.storage, self.mme = serving, storage, mme

    def statements(self) -> dict[str, dict]:
        return {s["Sid"]: s for s in self.one("AWS::IAM::ManagedPolicy")["Properties"]["PolicyDocument"]["Statement"]}


def _build(members: Sequence[tuple[str, int]] = (("returns", 100), ("basket", 0)), *,
           config: MultiModelEndpointConfig = MultiModelEndpointConfig(), storage_env: Optional[Environment] = None,
           second_endpoint: bool = False, network: Optional[NetworkConfig] = None) -> _Built:
    """GIVEN a bare storage stack (the asset scope) and a bare serving stack with, per member ``(name, capture %)``, a
    version parameter and the condition that it is set WHEN the shared endpoint is added for those members."""
    app = new_app(bare_outdir())
    storage = Stack(app, "Storage", env=storage_env or ENV)
    serving = Stack(app, "Serving", env=ENV)
    group = []
    for name, capture in members:
        logical = "".join(p.capitalize() for p in name.split("-"))
        parameter = CfnParameter(serving, f"{logical}ModelPackageArn", type="String", default="")
        condition = CfnCondition(serving, f"{logical}Deployed",
                                 expression=Fn.condition_not(Fn.condition_equals(parameter.value_as_string, "")))
        group.append(MultiModelMember(model=_model(name), serving=ServingConfig(mode="multi_model", data_capture_percent=capture),
                                      package_arn=parameter.value_as_string, condition=condition))
    common = dict(name_prefix="shop-dev", config=config, members=group, key=kms.Key(serving, "Key"),
                  artifacts_bucket=s3.Bucket.from_bucket_name(serving, "Artifacts", ARTIFACTS),
                  inference_bucket=s3.Bucket.from_bucket_name(serving, "Inference", INFERENCE), image_uri=IMAGE,
                  image_repository=ecr.Repository.from_repository_name(serving, "Repository", "sagemaker-xgboost"),
                  asset_scope=storage, network=network)
    mme = MultiModelEndpoint(serving, "Shared", endpoint="shared", **common)
    if second_endpoint:
        MultiModelEndpoint(serving, "Small", endpoint="small", **common)
    return _Built(serving, storage, mme)


@pytest.fixture(scope="module")
def default() -> _Built:
    """The endpoint of two members, ``returns`` capturing all its traffic and ``basket`` none, with the default config."""
    return _build()


# ------------------------------------------------------------------ refusals
def test_an_endpoint_without_members_is_refused():
    app = new_app(bare_outdir())
    serving, storage = Stack(app, "Serving", env=ENV), Stack(app, "Storage", env=ENV)
    with pytest.raises(ValueError, match=r"^members: endpoint 'shared' has no member models; build it only when one names it$"):
        MultiModelEndpoint(
            serving, "Shared", name_prefix="shop-dev", endpoint="shared", config=MultiModelEndpointConfig(), members=[],
            key=kms.Key(serving, "Key"), artifacts_bucket=s3.Bucket.from_bucket_name(serving, "Artifacts", ARTIFACTS),
            inference_bucket=s3.Bucket.from_bucket_name(serving, "Inference", INFERENCE), image_uri=IMAGE,
            image_repository=ecr.Repository.from_repository_name(serving, "Repository", "sagemaker-xgboost"), asset_scope=storage,
        )


@pytest.mark.parametrize("storage_env", [Environment(account="123456789012", region="us-east-1"),
                                         Environment(account="210987654321", region="eu-west-1")], ids=["region", "account"])
def test_a_bootstrap_asset_scope_in_another_account_or_region_is_refused(storage_env):
    with pytest.raises(ValueError, match=r"^asset_scope: must be in a stack of the same account and region as the endpoint$"):
        _build(storage_env=storage_env)


# ------------------------------------------------------------------ the fleet's model
def test_one_model_loads_every_members_versions_on_demand_from_the_endpoints_staging_prefix(default: _Built):
    built = default
    mme = built.mme
    assert (mme.endpoint_name, mme.staging_prefix) == (ENDPOINT, f"mme/{ENDPOINT}/")
    assert mme.model_data_url == f"s3://{ARTIFACTS}/mme/{ENDPOINT}/" and mme.member_names == ("returns", "basket")
    model = built.one("AWS::SageMaker::Model")["Properties"]
    container = model["PrimaryContainer"]
    assert (container["Mode"], container["ModelDataUrl"], container["Image"]) == ("MultiModel", mme.model_data_url, IMAGE)
    assert container["MultiModelConfig"] == {"ModelCacheSetting": "Enabled"}
    assert container["Environment"]["SAGEMAKER_MULTI_MODEL"] == "true"
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "mme_entry.py"
    assert re.fullmatch(r"s3://cdk-hnb659fds-assets-123456789012-eu-west-1/[0-9a-f]{64}\.gz",
                        container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"])
    # The container downloads its bootstrap and writes capture records itself.
    assert model["EnableNetworkIsolation"] is False
    assert model["ExecutionRoleArn"] == {"Fn::GetAtt": [built.id_of(mme.role), "Arn"]}


def test_the_model_cache_can_be_turned_off():
    container = _build(config=MultiModelEndpointConfig(model_cache=False)).one("AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]
    assert container["MultiModelConfig"] == {"ModelCacheSetting": "Disabled"}


def test_members_that_capture_traffic_write_it_per_model_and_may_never_delete_it():
    built = _build((("returns", 100), ("basket", 25), ("quiet", 0)))
    env = built.one("AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["Environment"]
    assert env["MLOPS_CAPTURE_S3_URI"] == f"s3://{INFERENCE}/capture/{{model}}/"
    assert json.loads(env["MLOPS_CAPTURE_PERCENT"]) == {"returns": 100, "basket": 25}
    assert env["MLOPS_CAPTURE_KMS_KEY_ID"] == {"Fn::GetAtt": [built.id_of(built.serving.node.find_child("Key")), "Arn"]}
    assert env["MLOPS_ENDPOINT_NAME"] == ENDPOINT
    assert env["MLOPS_CAPTURE_REGION"] == ENV.region
    statements = built.statements()
    assert {sid for sid in statements if sid.startswith("Capture") and not sid.endswith("List")} == {"CaptureReturns", "CaptureBasket"}
    assert statements["CaptureBasket"]["Resource"] == f"arn:aws:s3:::{INFERENCE}/capture/basket/*"
    assert "s3:PutObject" in statements["CaptureBasket"]["Action"] and "s3:DeleteObject" not in statements["CaptureBasket"]["Action"]


def test_without_capturing_members_the_container_gets_no_capture_settings_and_the_role_no_capture_access():
    built = _build((("returns", 0),))
    env = built.one("AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["Environment"]
    assert not [k for k in env if k.startswith("MLOPS_")]
    assert not [sid for sid in built.statements() if sid.startswith("Capture")]


def test_only_sagemaker_serving_a_resource_of_this_account_and_region_may_assume_the_role(default: _Built):
    """GIVEN the endpoint WHEN its role's trust is read THEN SageMaker may assume it only with the aws:SourceArn
    SageMaker documents for inference, of this account and Region."""
    role = default.of_type("AWS::IAM::Role")[default.id_of(default.mme.role)]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
         "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:eu-west-1:123456789012:*"}}}]


def test_the_role_reads_the_staged_models_and_the_bootstrap_and_writes_nothing_else(default: _Built):
    built = default
    statements = built.statements()
    assert statements["ReadStagedModels"]["Resource"] == f"arn:aws:s3:::{ARTIFACTS}/mme/{ENDPOINT}/*"
    bootstrap = built.mme.bootstrap
    assert statements["ReadBootstrap"] == {
        "Sid": "ReadBootstrap", "Effect": "Allow", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bootstrap.s3_bucket_name}/{bootstrap.s3_object_key}",
    }
    assert statements["ReadRollbackAlarms"]["Resource"] == [
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-client-errors",
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-errors",
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-latency",
    ]
    assert sorted(sid for sid, s in statements.items() if "s3:PutObject" in s["Action"]) == ["CaptureReturns"]
    assert built.one("AWS::SageMaker::Model")["DependsOn"] == [built.id_of(built.mme.node.find_child("Access").managed_policy)]


def test_sagemaker_writes_the_shared_endpoints_logs_and_its_instance_metrics_only(default: _Built):
    """GIVEN the endpoint WHEN its role's log and metric statements are read THEN SageMaker may write the containers'
    logs in the shared endpoint's own group only, and publish its instance metrics in ``/aws/sagemaker/Endpoints`` only
    (not in ``/aws/sagemaker/*`` at large: no job's namespace or log group, no other endpoint's group)."""
    statements = default.statements()
    group = f"arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/{ENDPOINT}"
    assert statements["Logs"]["Resource"] == [group, f"{group}:*"]
    assert statements["Metrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}


# ------------------------------------------------------------------ the fleet
def test_the_fleet_follows_its_config_and_rolls_out_blue_green_with_alarm_rollback():
    config = MultiModelEndpointConfig(instance_type="ml.c5.xlarge", instance_count=2,
                                      autoscaling=RealtimeAutoscaling(min_instances=2, max_instances=5),
                                      rollout=Rollout(strategy="canary", canary_percent=20, wait_minutes=5),
                                      alarms=ServingAlarms(max_client_error_rate_percent=3.0))
    built = _build(config=config)
    (variant,) = built.one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"], variant["VariantName"]) == ("ml.c5.xlarge", 2, "AllTraffic")
    assert variant["ModelName"] == {"Fn::GetAtt": [built.id_of(built.mme.model), "ModelName"]}
    assert "KmsKeyId" in built.one("AWS::SageMaker::EndpointConfig")["Properties"]
    endpoint = built.one("AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointName"] == ENDPOINT
    routing = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20}}
    alarms = {k: a["Properties"]["AlarmName"] for k, a in built.of_type("AWS::CloudWatch::Alarm").items()}
    assert sorted(alarms.values()) == [f"{ENDPOINT}-idle-scale-in", f"{ENDPOINT}-rollout-client-errors",
                                       f"{ENDPOINT}-rollout-errors", f"{ENDPOINT}-rollout-latency"]
    # The serving deployer may manage these and no other.
    assert sorted(built.mme.alarm_names) == sorted(alarms.values())
    # The 4xx rate rolls back at the endpoint's own client-error setting (its members have none).
    (client_errors,) = [a for a in built.of_type("AWS::CloudWatch::Alarm").values()
                        if a["Properties"]["AlarmName"] == f"{ENDPOINT}-rollout-client-errors"]
    assert client_errors["Properties"]["Threshold"] == 3.0
    assert endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": {"Ref": built.id_of(a)}} for a in built.mme.rollback_alarms]
    # The idle scale-in alarm (autoscaling) is no rollback alarm.
    assert {built.id_of(a) for a in built.mme.rollback_alarms} == {k for k, n in alarms.items() if "-rollout-" in n}
    (target,) = built.of_type("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (2, 5)
    assert target["Properties"]["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"


def test_a_fixed_size_fleet_has_no_autoscaling():
    built = _build(config=MultiModelEndpointConfig(autoscaling=None, instance_count=3))
    assert built.of_type("AWS::ApplicationAutoScaling::ScalableTarget") == {}
    assert built.of_type("AWS::ApplicationAutoScaling::ScalingPolicy") == {}
    (variant,) = built.one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert variant["InitialInstanceCount"] == 3
    assert built.mme.alarm_names == [f"{ENDPOINT}-rollout-errors", f"{ENDPOINT}-rollout-latency",
                                     f"{ENDPOINT}-rollout-client-errors"]


def test_on_a_local_nvme_instance_type_the_volume_key_is_left_out_andacknowledged(default: _Built):
    built = _build(config=MultiModelEndpointConfig(instance_type="ml.m5d.xlarge"))
    assert "KmsKeyId" not in built.one("AWS::SageMaker::EndpointConfig")["Properties"]
    assert set(acknowledged(built.mme.endpoint_config)) == {"NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured"}
    assert acknowledged(default.mme.endpoint_config) == {}


def test_the_endpoint_and_its_config_are_labelled_with_the_members_for_the_cost_report(default: _Built):
    built = default
    label = {"model": "shared (returns, basket)", "mode": "multi_model", "models": ["returns", "basket"]}
    assert built.one("AWS::SageMaker::EndpointConfig")["Metadata"]["mlops-loop"] == label
    assert built.one("AWS::SageMaker::Endpoint")["Metadata"]["mlops-loop"] == label


# ------------------------------------------------------------------ conditions
FLEET = ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint", "AWS::CloudWatch::Alarm",
         "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::ApplicationAutoScaling::ScalingPolicy")


def _fleet_conditions(built: _Built) -> set[str]:
    return {r.get("Condition") for t in FLEET for r in built.of_type(t).values()}


def test_with_one_member_the_fleet_exists_exactly_when_that_member_is_deployed():
    built = _build((("returns", 100),))
    assert built.mme.condition is built.mme.members[0].condition
    assert _fleet_conditions(built) == {"ReturnsDeployed"}
    assert set(built.template.to_json()["Conditions"]) == {"ReturnsDeployed"}


def test_with_several_members_the_fleet_exists_while_any_of_them_is_deployed(default: _Built):
    built = default
    (any_id,) = [k for k in built.template.to_json()["Conditions"] if k.startswith("SharedAnyMemberDeployed")]
    assert _fleet_conditions(built) == {any_id}
    assert built.template.to_json()["Conditions"][any_id] == {"Fn::Or": [{"Condition": "ReturnsDeployed"}, {"Condition": "BasketDeployed"}]}


def test_more_than_ten_members_are_folded_into_nested_ors_of_at_most_ten():
    names = [f"model-{i:02d}" for i in range(11)]
    built = _build([(n, 0) for n in names])
    conditions = built.template.to_json()["Conditions"]
    (any_id,) = [k for k in conditions if k.startswith("SharedAnyMemberDeployed")]
    outer = conditions[any_id]["Fn::Or"]
    assert len(outer) == 2 and outer[1] == {"Condition": "Model10Deployed"}
    assert outer[0] == {"Fn::Or": [{"Condition": f"Model{i:02d}Deployed"} for i in range(10)]}
    assert _fleet_conditions(built) == {any_id}


# ------------------------------------------------------------------ per member
def test_each_members_target_model_is_derived_from_its_approved_version_and_published_only_when_deployed(default: _Built):
    built = default
    parameters = {p["Properties"]["Name"]: (k, p) for k, p in built.of_type("AWS::SSM::Parameter").items()}
    assert set(parameters) == {"/shop-dev/serving/returns/target-model", "/shop-dev/serving/basket/target-model"}
    logical_id, parameter = parameters["/shop-dev/serving/basket/target-model"]
    assert built.id_of(built.mme.target_model_parameters["basket"]) == logical_id
    approved = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-dev-basket/7"
    assert evaluate(parameter["Properties"]["Value"], {"BasketModelPackageArn": approved}) == "basket/v7.tar.gz"
    assert parameter["Condition"] == "BasketDeployed"
    # Clients are never pointed at a model before the endpoint that serves it exists.
    assert parameter["DependsOn"] == [built.id_of(built.mme.endpoint)]
    outputs = built.template.to_json()["Outputs"]
    (output,) = [o for o in outputs.values() if o["Value"] == {"Fn::GetAtt": [logical_id, "Value"]}]
    assert output["Condition"] == "BasketDeployed"


def test_the_bootstrap_is_one_asset_in_the_asset_scope_however_many_endpoints_use_it():
    built = _build(second_endpoint=True)
    bootstrap = built.storage.node.find_child(BOOTSTRAP_ASSET_ID)
    assert built.mme.bootstrap is bootstrap and Stack.of(bootstrap) is built.storage
    small = built.serving.node.find_child("Small")
    assert small.bootstrap is bootstrap
    assert built.serving.node.try_find_child(BOOTSTRAP_ASSET_ID) is None
    # The serving stack stays asset-free and needs no cross-stack reference to find the bootstrap.
    text = json.dumps(built.template.to_json())
    assert "Fn::ImportValue" not in text and "Fn::GetStackOutput" not in text


# ------------------------------------------------------------------ the environment's VPC
def test_with_a_network_the_shared_model_runs_in_the_vpc_and_its_role_may_manage_the_interfaces():
    built = _build(network=network_config())
    props = built.one("AWS::SageMaker::Model")["Properties"]
    assert props["VpcConfig"] == vpc_config_of_network()
    assert props["EnableNetworkIsolation"] is False  # as without a VPC: the container reads its bootstrap from S3
    assert_sagemaker_eni_statements(built.statements(), "123456789012", "eu-west-1")


def test_without_a_network_the_shared_model_has_no_vpc_and_the_role_no_interface_permissions(default: _Built):
    assert "VpcConfig" not in default.one("AWS::SageMaker::Model")["Properties"]
    assert not vpc_statements_of(default.statements())

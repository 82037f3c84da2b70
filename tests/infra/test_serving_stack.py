"""The Serving stack (every mode) and the deploy-on-approval wiring in the Operations stack.

The sample config (session fixture ``synthesized``) serves real-time and serverless endpoints. A
second config (session fixture ``modes``, conftest.py) adds an environment that serves async, batch,
linear and all-at-once real-time rollouts, a fixed-size endpoint and a local-NVMe instance type.
"""

from __future__ import annotations

import json
import re

import pytest

from mlops_loop.config import AppConfig
from mlops_loop.config.serving import MAX_ROLLOUT_SECONDS
from pipeline_code.core.contract import MODEL_SHA256_PARAMETER_SUFFIX, MODEL_VERSION_ENV, model_sha256_parameter_name, package_parameter_name, pascal
from pipeline_code.core.contract import endpoint_output_names
from pipeline_code.core.integrity import MODEL_SHA256_ENV
from mlops_loop.tools.cloud_assembly import SynthesizedStack, nag_violations, stacks
from mlops_loop.tools.lint import lint_cache, lint_stacks
from tests.support.templates import flatten, listify, of_type, policy_statements, role_statements, statement_actions, writable_prefixes

from tests.support.paths import live_project
from tests.support.scenarios import MODES_ACCOUNT, MODES_ENV, MODES_MODELS, MODES_RETRAINING_SCHEDULE

ENVS = ("dev", "staging", "prod")
# Physical names start with the configured project (a user renames it first).
PROJECT = live_project()
GATED_TYPES = (
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::Scheduler::Schedule",
)
KMS_RULE = "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured"
EXECUTION_ID = "<aws.scheduler.execution-id>"
S3_WRITE = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:PutBucketPolicy", "s3:DeleteBucket")


# --------------------------------------------------------------------------------------------
# Helpers: find one model's resources, resolve intrinsics, read policies
# --------------------------------------------------------------------------------------------
def _resource(template: dict, model: str, child: str) -> tuple[str, dict]:
    """The resource ``<Model><child><hash>`` (e.g. ``ChurnConfig1A2B3C4D``): its logical id and body."""
    pattern = re.compile(rf"^{pascal(model)}{child}[0-9A-F]{{8}}$")
    (found,) = [(k, v) for k, v in template["Resources"].items() if pattern.match(k)]
    return found


def _props(template: dict, model: str, child: str) -> dict:
    return _resource(template, model, child)[1]["Properties"]


def _has(template: dict, model: str, child: str) -> bool:
    pattern = re.compile(rf"^{pascal(model)}{child}[0-9A-F]{{8}}$")
    return any(pattern.match(k) for k in template["Resources"])


def _model_resources(template: dict, model: str, models: tuple[str, ...]) -> dict[str, dict]:
    """The resources built under ``model``'s construct id (``Churn...``), not those of another model whose
    name extends it (``ChurnEu...`` for ``churn-eu``)."""
    prefix = pascal(model)
    longer = [pascal(m) for m in models if m != model and pascal(m).startswith(prefix)]
    return {k: v for k, v in template["Resources"].items()
            if re.match(rf"^{prefix}[A-Z]", k) and not any(re.match(rf"^{other}[A-Z]", k) for other in longer)}


def _data_key_output(value) -> bool:
    """The KMS key id is the data-lake key published by the Storage stack."""
    return isinstance(value, dict) and "DataLakeKey" in value.get("Fn::GetStackOutput", {}).get("OutputName", "")


def _inference_bucket(storage_template: dict, env: str) -> str:
    """The environment's inference bucket (<project>-<env>-inference-<account>-<region>), whatever its project."""
    names = [
        b["Properties"]["BucketName"]
        for b in of_type(storage_template, "AWS::S3::Bucket").values()
        if isinstance(b["Properties"].get("BucketName"), str) and f"-{env}-inference-" in b["Properties"]["BucketName"]
    ]
    (name,) = names
    return name


def _acks(acknowledgements: list[dict], path: str, rule: str) -> list[dict]:
    return [a for a in acknowledgements if a["path"] == path and a["rule"] == rule]


def _serving_config(config: AppConfig, env: str, model: str):
    return config.serving_of(config.environments[env], config.models[model])


# --------------------------------------------------------------------------------------------
# Sample config: parameters, conditions
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_one_empty_version_parameter_per_model_and_a_digest_parameter_per_own_container(synthesized, env):
    """GIVEN an environment WHEN synthesized THEN its Serving stack has one String parameter per model, plus
    one for the model digest of every model with its own container (not a multi-model endpoint member),
    all empty by default (the stack deploys with no endpoint until an approval)."""
    parameters = synthesized.template(env, "Serving")["Parameters"]
    config = synthesized.config
    models = config.environments[env].models
    own = [m for m in models if _serving_config(config, env, m).mode != "multi_model"]
    digests = {model_sha256_parameter_name(package_parameter_name(m)) for m in own}
    assert set(parameters) == {package_parameter_name(m) for m in models} | digests
    assert package_parameter_name("credit-risk") == "CreditRiskModelPackageArn"
    assert model_sha256_parameter_name("CreditRiskModelPackageArn") == "CreditRiskModelSha256"
    for name in parameters:
        assert parameters[name]["Type"] == "String"
        assert parameters[name]["Default"] == ""


@pytest.mark.parametrize("env", ENVS)
def test_each_endpoint_model_names_its_endpoint_and_while_deployed_the_configuration_that_re_creates_it(synthesized, env):
    """GIVEN an environment WHEN synthesized THEN each model served by an endpoint has the outputs the deploy handler's
    reconcile reads beside its parameter: the endpoint's name, and, under the same condition as the endpoint, the name
    of the endpoint configuration CloudFormation made (what a hand-deleted endpoint is re-created with)."""
    assert endpoint_output_names("CreditRiskModelPackageArn") == ("CreditRiskEndpointName", "CreditRiskEndpointConfigName")
    template = synthesized.template(env, "Serving")
    outputs = template["Outputs"]
    for model in synthesized.config.environments[env].models:
        name_output, config_output = endpoint_output_names(package_parameter_name(model))
        if _serving_config(synthesized.config, env, model).mode == "batch":
            assert not {name_output, config_output} & set(outputs)
            continue
        assert "Condition" not in outputs[name_output]
        config = outputs[config_output]
        (config_id,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::SageMaker::EndpointConfig"
                        and config["Value"] == {"Fn::GetAtt": [k, "EndpointConfigName"]}]
        endpoint = next(r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Endpoint"
                        and r["Properties"]["EndpointName"] == outputs[name_output]["Value"])
        assert endpoint["Properties"]["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
        assert config["Condition"] == endpoint["Condition"]


@pytest.mark.parametrize("env", ENVS)
def test_digest_parameter_admits_only_a_sha256_and_reaches_the_container(synthesized, env):
    """GIVEN a model with its own container WHEN synthesized THEN its digest parameter admits empty or 64
    lower-case hex digits, and its Model's container gets it as MLOPS_LOOP_MODEL_SHA256 (checked at load)
    with the version number of the package ARN as MLOPS_LOOP_MODEL_VERSION."""
    template = synthesized.template(env, "Serving")
    config = synthesized.config
    own = [m for m in config.environments[env].models if _serving_config(config, env, m).mode != "multi_model"]
    if not own:
        pytest.skip(f"{env} serves every model from a multi-model endpoint")
    for model in own:
        digest = model_sha256_parameter_name(package_parameter_name(model))
        pattern = re.compile(template["Parameters"][digest]["AllowedPattern"])
        assert pattern.fullmatch("") and pattern.fullmatch("0" * 64) and pattern.fullmatch("ab" * 32)
        for bad in ("A" * 64, "0" * 63, "0" * 65, "g" * 64, "sha256:" + "0" * 64):
            assert not pattern.fullmatch(bad), bad
        containers = [
            container
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::SageMaker::Model"
            for container in resource["Properties"].get("Containers", [])
            if container.get("ModelPackageName") == {"Ref": package_parameter_name(model)}
        ]
        assert len(containers) == 1
        environment = containers[0]["Environment"]
        assert environment[MODEL_SHA256_ENV] == {"Ref": digest}
        assert environment[MODEL_VERSION_ENV] == {
            "Fn::Select": [2, {"Fn::Split": ["/", {"Ref": package_parameter_name(model)}]}]
        }


@pytest.mark.parametrize("env", ENVS)
def test_version_parameter_admits_only_versions_of_this_models_group_here(synthesized, env):
    """GIVEN each model's parameter WHEN its AllowedPattern is applied (CloudFormation matches the
    whole value) THEN only empty or a version ARN of exactly that model's group, in this account and
    region, passes."""
    environment = synthesized.config.environments[env]
    account, region = environment.account, environment.region
    parameters = synthesized.template(env, "Serving")["Parameters"]
    for model in environment.models:
        pattern = re.compile(parameters[package_parameter_name(model)]["AllowedPattern"])
        group = f"{PROJECT}-{env}-{model}"
        other_model = next(m for m in environment.models if m != model)
        other_env = next(e for e in ENVS if e != env)
        accepted = ["", f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/1",
                    f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/42"]
        rejected = [
            f"arn:aws:sagemaker:{region}:{account}:model-package/{PROJECT}-{env}-{other_model}/1",  # another group
            f"arn:aws:sagemaker:{region}:{account}:model-package/{PROJECT}-{other_env}-{model}/1",  # another env's group
            f"arn:aws:sagemaker:{region}:999999999999:model-package/{group}/1",  # another account
            f"arn:aws:sagemaker:us-east-1:{account}:model-package/{group}/1",  # another region
            f"arn:aws:sagemaker:{region}:{account}:model-package/{group}-v2/1",  # a group sharing the prefix
            f"arn:aws:sagemaker:{region}:{account}:model-package/{group}",  # unversioned
            f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/",
            f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/1a",
            f"arn:aws:sagemaker:{region}:{account}:model-package-group/{group}",
            f" arn:aws:sagemaker:{region}:{account}:model-package/{group}/1",
            "latest",
            "arn:aws:s3:::bucket/model.tar.gz",
        ]
        for value in accepted:
            assert pattern.fullmatch(value), (model, value)
        for value in rejected:
            assert not pattern.fullmatch(value), (model, value)


@pytest.mark.parametrize("env", ENVS)
def test_every_serving_resource_waits_for_an_approved_version(synthesized, env):
    """GIVEN the Serving stack WHEN read THEN each model has a ``<Model>Deployed`` condition (its
    parameter is not empty) and every model/endpoint/scaling/alarm resource carries it."""
    template = synthesized.template(env, "Serving")
    models = synthesized.config.environments[env].models
    for model in models:
        condition = f"{pascal(model)}Deployed"
        assert template["Conditions"][condition] == {
            "Fn::Not": [{"Fn::Equals": [{"Ref": package_parameter_name(model)}, ""]}]
        }
        gated = {k: v for k, v in _model_resources(template, model, models).items() if v["Type"] in GATED_TYPES}
        kinds = {v["Type"] for v in gated.values()}
        mode = synthesized.config.serving_of(synthesized.config.environments[env], synthesized.config.models[model]).mode
        expected = ({"AWS::SageMaker::Model", "AWS::Scheduler::Schedule"} if mode == "batch" else  # no endpoint
                    set() if mode == "multi_model" else  # served by the shared endpoint, under its own condition
                    {"AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint",
                     "AWS::CloudWatch::Alarm"})
        assert expected <= kinds, (model, mode)
        for logical_id, resource in gated.items():
            assert resource.get("Condition") == condition, logical_id
    # Nothing else in the stack is conditional: roles and policies exist before the first approval.
    conditional = {k for k, v in template["Resources"].items() if "Condition" in v}
    assert all(template["Resources"][k]["Type"] in GATED_TYPES for k in conditional)


# --------------------------------------------------------------------------------------------
# Sample config: the Model of every endpoint
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_models_run_the_approved_package_with_the_serving_code_in_the_artifact(synthesized, env):
    template = synthesized.template(env, "Serving")
    for model in synthesized.config.environments[env].models:
        props = _props(template, model, "Model")
        (container,) = props["Containers"]
        assert container["ModelPackageName"] == {"Ref": package_parameter_name(model)}
        assert container["Environment"]["SAGEMAKER_PROGRAM"] == "serve_entry.py"
        assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
        role_id, _ = _resource(template, model, "Role")
        assert props["ExecutionRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
        # Network isolation stays on except where SageMaker does not support it (serverless).
        mode = _serving_config(synthesized.config, env, model).mode
        assert props["EnableNetworkIsolation"] is (mode != "serverless"), (model, mode)


# --------------------------------------------------------------------------------------------
# Sample config: real-time (staging and prod churn)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["staging", "prod"])
def test_realtime_endpoint_size_and_target_tracking_follow_the_config(synthesized, env):
    serving = _serving_config(synthesized.config, env, "churn")
    assert serving.mode == "realtime"
    rt = serving.realtime
    template = synthesized.template(env, "Serving")
    (variant,) = _props(template, "churn", "Config")["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == (rt.instance_type, rt.instance_count)
    assert "ServerlessConfig" not in variant
    model_id, _ = _resource(template, "churn", "Model")
    assert variant["ModelName"] == {"Fn::GetAtt": [model_id, "ModelName"]}

    target_id, target = _resource(template, "churn", "ScalableTarget")
    props = target["Properties"]
    assert props["ServiceNamespace"] == "sagemaker"
    assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert props["ResourceId"] == f"endpoint/{PROJECT}-{env}-churn/variant/AllTraffic"
    assert (props["MinCapacity"], props["MaxCapacity"]) == (rt.autoscaling.min_instances, rt.autoscaling.max_instances)
    endpoint_id, _ = _resource(template, "churn", "Endpoint")
    assert endpoint_id in target.get("DependsOn", [])  # registered only once the endpoint exists

    policy = _props(template, "churn", "InvocationsPerInstance")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == {"Ref": target_id}
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    assert tracking["TargetValue"] == rt.autoscaling.target_invocations_per_instance
    assert tracking["ScaleOutCooldown"] == rt.autoscaling.scale_out_cooldown_seconds
    assert tracking["ScaleInCooldown"] == rt.autoscaling.scale_in_cooldown_seconds


def test_prod_churn_is_the_larger_fleet_the_sample_config_asks_for(synthesized):
    """The override in the sample YAML reached the template (not just the config object)."""
    (variant,) = _props(synthesized.template("prod", "Serving"), "churn", "Config")["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.xlarge", 2)
    target = _props(synthesized.template("prod", "Serving"), "churn", "ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 6)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_realtime_captures_every_request_and_response_encrypted(synthesized, env):
    template = synthesized.template(env, "Serving")
    bucket = _inference_bucket(synthesized.template(env, "Storage"), env)
    config = _props(template, "churn", "Config")
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == _serving_config(synthesized.config, env, "churn").data_capture_percent == 100
    assert sorted(o["CaptureMode"] for o in capture["CaptureOptions"]) == ["Input", "Output"]
    assert capture["DestinationS3Uri"] == f"s3://{bucket}/capture/churn/"
    assert _data_key_output(capture["KmsKeyId"])
    assert _data_key_output(config["KmsKeyId"])  # the instances' storage volume
    # The serving role may write there (SageMaker writes capture files with the model's role).
    role_id, _ = _resource(template, "churn", "Role")
    assert f"s3://{bucket}/capture/churn/" in writable_prefixes(role_statements(template, role_id), bucket)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_realtime_rollout_is_a_canary_with_alarm_rollback(synthesized, env):
    rollout = _serving_config(synthesized.config, env, "churn").realtime.rollout
    assert rollout.strategy == "canary"
    template = synthesized.template(env, "Serving")
    endpoint = _props(template, "churn", "Endpoint")
    assert endpoint["EndpointName"] == f"{PROJECT}-{env}-churn"
    config_id, _ = _resource(template, "churn", "Config")
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": rollout.canary_percent},
        "WaitIntervalInSeconds": rollout.wait_minutes * 60,
    }
    assert policy["TerminationWaitInSeconds"] == rollout.termination_wait_minutes * 60
    waits = 2 * rollout.wait_minutes * 60 + rollout.termination_wait_minutes * 60
    assert waits < policy["MaximumExecutionTimeoutInSeconds"] <= MAX_ROLLOUT_SECONDS
    alarm_ids = [_resource(template, "churn", child)[0] for child in ("RolloutErrors", "RolloutLatency", "RolloutClientErrors")]
    assert endpoint["DeploymentConfig"]["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": {"Ref": a}} for a in alarm_ids]}


@pytest.mark.parametrize(("env", "model"), [("prod", "churn"), ("prod", "credit-risk"), ("dev", "churn")])
def test_rollback_alarms_watch_the_5xx_rate_p99_model_latency_and_4xx_rate(synthesized, env, model):
    serving = _serving_config(synthesized.config, env, model)
    rollout = serving.realtime.rollout if serving.mode == "realtime" else serving.serverless.rollout
    template = synthesized.template(env, "Serving")
    endpoint = f"{PROJECT}-{env}-{model}"
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]

    errors = _props(template, model, "RolloutErrors")
    assert errors["AlarmName"] == f"{endpoint}-rollout-errors"
    assert errors["Threshold"] == rollout.max_error_rate_percent
    assert errors["ComparisonOperator"] == "GreaterThanThreshold"
    assert errors["TreatMissingData"] == "notBreaching"
    metrics = {m["Id"]: m for m in errors["Metrics"]}
    (expression,) = [m for m in errors["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "100 * errors" and expression["ReturnData"] is True
    stat = metrics["errors"]["MetricStat"]
    assert stat["Metric"] == {"Dimensions": dimensions, "MetricName": "Invocation5XXErrors", "Namespace": "AWS/SageMaker"}
    assert stat["Stat"] == "Average" and metrics["errors"]["ReturnData"] is False

    latency = _props(template, model, "RolloutLatency")
    assert latency["AlarmName"] == f"{endpoint}-rollout-latency"
    assert (latency["Namespace"], latency["MetricName"], latency["ExtendedStatistic"]) == ("AWS/SageMaker", "ModelLatency", "p99")
    assert latency["Dimensions"] == dimensions
    # ModelLatency is reported in microseconds.
    assert latency["Threshold"] == rollout.max_latency_p99_ms * 1000
    assert latency["ComparisonOperator"] == "GreaterThanThreshold"

    client_errors = _props(template, model, "RolloutClientErrors")
    assert client_errors["AlarmName"] == f"{endpoint}-rollout-client-errors"
    # The level at which the endpoint's client-errors alarm pages: callers' usual bad requests stay below it.
    assert client_errors["Threshold"] == serving.alarms.max_client_error_rate_percent
    assert (client_errors["ComparisonOperator"], client_errors["TreatMissingData"]) == ("GreaterThanThreshold", "notBreaching")
    for m in client_errors["Metrics"]:
        if "MetricStat" in m:
            assert m["MetricStat"]["Metric"] == {"Dimensions": dimensions, "MetricName": "Invocation4XXErrors", "Namespace": "AWS/SageMaker"}
    assert "AlarmActions" not in client_errors


# --------------------------------------------------------------------------------------------
# Sample config: serverless (credit-risk everywhere, churn in dev)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("env", "model"), [("dev", "churn"), ("dev", "credit-risk"), ("staging", "credit-risk"), ("prod", "credit-risk")])
def test_serverless_endpoint_memory_concurrency_and_acknowledged_missing_volume_key(synthesized, env, model):
    serving = _serving_config(synthesized.config, env, model)
    assert serving.mode == "serverless"
    sl = serving.serverless
    template = synthesized.template(env, "Serving")
    config = _props(template, model, "Config")
    (variant,) = config["ProductionVariants"]
    expected = {"MemorySizeInMB": sl.memory_mb, "MaxConcurrency": sl.max_concurrency}
    if sl.provisioned_concurrency is not None:
        expected["ProvisionedConcurrency"] = sl.provisioned_concurrency
    assert variant["ServerlessConfig"] == expected
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    # SageMaker supports neither data capture nor a volume key for serverless endpoints.
    assert "DataCaptureConfig" not in config
    assert "KmsKeyId" not in config
    (ack,) = _acks(synthesized.acknowledgements, f"{env}/Serving/{pascal(model)}/Default/Config", KMS_RULE)
    assert "serverless" in ack["reason"].lower() and len(ack["reason"]) >= 40
    routing = _props(template, model, "Endpoint")["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "ALL_AT_ONCE" and "CanarySize" not in routing and "LinearStepSize" not in routing
    assert not _has(template, model, "ScalableTarget")


def test_prod_credit_risk_keeps_two_warm_workers_and_dev_none(synthesized):
    prod = _props(synthesized.template("prod", "Serving"), "credit-risk", "Config")["ProductionVariants"][0]
    dev = _props(synthesized.template("dev", "Serving"), "credit-risk", "Config")["ProductionVariants"][0]
    assert prod["ServerlessConfig"]["ProvisionedConcurrency"] == 2
    assert "ProvisionedConcurrency" not in dev["ServerlessConfig"]


@pytest.mark.parametrize(("env", "model"), [("dev", "churn"), ("prod", "credit-risk")])
def test_serverless_serving_code_captures_its_own_traffic(synthesized, env, model):
    """GIVEN a serverless endpoint (no SageMaker data capture) THEN its container is told where and
    how much to capture, and its role may write exactly there with the data key."""
    template = synthesized.template(env, "Serving")
    bucket = _inference_bucket(synthesized.template(env, "Storage"), env)
    (container,) = _props(template, model, "Model")["Containers"]
    environment = container["Environment"]
    assert environment["MLOPS_CAPTURE_S3_URI"] == f"s3://{bucket}/capture/{model}/"
    assert environment["MLOPS_CAPTURE_PERCENT"] == str(_serving_config(synthesized.config, env, model).data_capture_percent)
    assert _data_key_output(environment["MLOPS_CAPTURE_KMS_KEY_ID"])
    assert environment["MLOPS_ENDPOINT_NAME"] == f"{PROJECT}-{env}-{model}"
    role_id, _ = _resource(template, model, "Role")
    statements = role_statements(template, role_id)
    assert f"s3://{bucket}/capture/{model}/" in writable_prefixes(statements, bucket)
    (key,) = [s for s in statements if s.get("Sid") == "DataKey"]
    assert "kms:GenerateDataKey" in statement_actions(key) and _data_key_output(key["Resource"])


def test_realtime_containers_do_not_capture_themselves(synthesized):
    (container,) = _props(synthesized.template("prod", "Serving"), "churn", "Model")["Containers"]
    assert not [k for k in container["Environment"] if k.startswith("MLOPS_CAPTURE_")]


# --------------------------------------------------------------------------------------------
# Sample config: the stack itself and the deployer role
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS)
def test_serving_stack_needs_nothing_from_the_cdk_bootstrap(synthesized, env):
    """The deploy handler updates the stack with UsePreviousTemplate: it must have no bootstrap-version
    rule or parameter and no asset to publish."""
    template = synthesized.template(env, "Serving")
    assert "BootstrapVersion" not in template["Parameters"]
    assert "CheckBootstrapVersion" not in template.get("Rules", {})

    def published(stack: SynthesizedStack) -> list[str]:
        manifest = json.loads(stack.template_path.with_name(stack.template_path.name.replace(".template.json", ".assets.json")).read_text())
        assert manifest["dockerImages"] == {}
        return [f["source"]["path"] for f in manifest["files"].values()]

    assert published(synthesized.stacks[(env, "Serving")]) == [synthesized.stacks[(env, "Serving")].template_path.name]
    # Control: the Operations stack does publish an asset (its Lambda code), so the check can fail.
    assert len(published(synthesized.stacks[(env, "Operations")])) > 1


@pytest.mark.parametrize("env", ENVS)
def test_deployer_role_is_for_cloudformation_and_touches_only_serving_resources(synthesized, env):
    template = synthesized.template(env, "Serving")
    environment = synthesized.config.environments[env]
    deployer_id, deployer = _resource(template, "", "Deployer")
    props = deployer["Properties"]
    assert props["RoleName"] == f"{PROJECT}-{env}-serving-deployer"
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "cloudformation.amazonaws.com"}}

    statements = role_statements(template, deployer_id)
    serving_roles = {
        k for k, v in of_type(template, "AWS::IAM::Role").items()
        if v["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    }
    assert len(serving_roles) == len(environment.models)
    scheduler_roles = {
        k for k, v in of_type(template, "AWS::IAM::Role").items()
        if v["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    }
    passed = set()
    for statement in statements:
        if statement["Effect"] == "Deny":
            # A guardrail only takes away (the serverless size ceilings of endpoint configs): nothing to confine.
            assert statement_actions(statement) == ["sagemaker:CreateEndpointConfig"], statement
            continue
        assert statement["Effect"] == "Allow"
        actions = statement_actions(statement)
        assert not [a for a in actions if "*" in a], statement
        assert not [a for a in actions if a in S3_WRITE or a.startswith("s3:")], statement
        iam_actions = [a for a in actions if a.startswith("iam:")]
        assert set(iam_actions) <= {"iam:PassRole", "iam:CreateServiceLinkedRole"}, statement
        if "iam:PassRole" in iam_actions:
            assert actions == ["iam:PassRole"]
            service = statement["Condition"]["StringEquals"]["iam:PassedToService"]
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": service}}
            for resource in listify(statement["Resource"]):
                assert resource["Fn::GetAtt"][1] == "Arn"
                if service == "scheduler.amazonaws.com":
                    # A batch model's schedule runs as its scheduler role (the transform job as the serving role).
                    assert resource["Fn::GetAtt"][0] in scheduler_roles, statement
                else:
                    assert service == "sagemaker.amazonaws.com", statement
                    passed.add(resource["Fn::GetAtt"][0])
        if "iam:CreateServiceLinkedRole" in iam_actions:
            assert statement["Condition"] == {"StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}}
        endpoint_actions = {"sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint"}
        if endpoint_actions & set(actions):
            (resource,) = listify(statement["Resource"])
            names = {f"{PROJECT}-{env}-{m}" for m in environment.models}
            if "endpoint-config/" in resource:
                # SageMaker also authorizes Create/UpdateEndpoint against the endpoint-config (issue #17);
                # CloudFormation generates those names, so only this account and region pin them.
                assert set(actions) == {"sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"}, statement
                sagemaker_arn = f"arn:aws:sagemaker:{environment.region}:{environment.account}:"
                assert resource == f"{sagemaker_arn}endpoint-config/*", statement
            else:
                assert resource.rsplit("endpoint/", 1)[1] in names, statement
        if {"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"} & set(actions):
            # The endpoint's own alarms, and those target tracking creates for its scalable target.
            alarm = f"arn:aws:cloudwatch:{environment.region}:{environment.account}:alarm:"
            for resource in listify(statement["Resource"]):
                assert resource.startswith((f"{alarm}{PROJECT}-{env}-", f"{alarm}TargetTracking-endpoint/{PROJECT}-{env}-")), resource
    assert passed == serving_roles


def test_deployer_sagemaker_actions_are_scoped_to_this_environments_resources(synthesized):
    template = synthesized.template("prod", "Serving")
    deployer_id, _ = _resource(template, "", "Deployer")
    for statement in role_statements(template, deployer_id):
        # What it may do: a guardrail Deny on every resource only takes away.
        if statement["Effect"] == "Allow" and any(a.startswith("sagemaker:") for a in statement_actions(statement)):
            assert "*" not in listify(statement["Resource"]), statement


def test_deployer_may_manage_the_alarms_of_its_target_tracking_policies(synthesized):
    template = synthesized.template("prod", "Serving")
    deployer_id, _ = _resource(template, "", "Deployer")
    alarm = f"arn:aws:cloudwatch:eu-west-1:333333333333:alarm:TargetTracking-endpoint/{PROJECT}-prod-churn/variant/AllTraffic-AlarmHigh-1"
    allowed = set()
    for statement in role_statements(template, deployer_id):
        for resource in listify(statement["Resource"]):
            if isinstance(resource, str) and re.fullmatch(re.escape(resource).replace(r"\*", ".*"), alarm):
                allowed.update(statement_actions(statement))
    assert {"cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"} <= allowed


# --------------------------------------------------------------------------------------------
# Sample config: deploy on approval (Operations stack)
# --------------------------------------------------------------------------------------------
def _deploy(synthesized, env: str, cfn_type: str, child: str = "") -> tuple[str, dict]:
    resources = synthesized.resources(env, "Operations", cfn_type)
    (found,) = [(k, v) for k, v in resources.items() if re.match(rf"^DeployOnApproval{child}[0-9A-F]{{8}}$", k)]
    return found


@pytest.mark.parametrize("env", ENVS)
def test_the_deploy_function_waits_out_a_busy_stack_for_the_longest_rollout_plus_margin(synthesized, env):
    """GIVEN the deploy function WHEN synthesized THEN it retries a busy stack through its own schedule group,
    as a role EventBridge Scheduler may assume only for that group's schedules in this account (Scheduler names
    the group as aws:SourceArn) and which may only invoke this function and hand what it cannot deliver to the
    function's dead-letter queue, for the environment's longest blue/green rollout plus 30 minutes."""
    environment = synthesized.config.environments[env]
    function_id, function = _deploy(synthesized, env, "AWS::Lambda::Function", "Function")
    variables = function["Properties"]["Environment"]["Variables"]
    _, group = _deploy(synthesized, env, "AWS::Scheduler::ScheduleGroup", "Retries")
    role_id, role = _deploy(synthesized, env, "AWS::IAM::Role", "RetryRole")
    assert variables["RETRY_SCHEDULE_GROUP"] == group["Properties"]["Name"] == f"{PROJECT}-{env}-deploy-retries"
    assert variables["RETRY_ROLE_ARN"] == {"Fn::GetAtt": [role_id, "Arn"]}
    servings = [_serving_config(synthesized.config, env, m) for m in environment.models]
    rollouts = [s.rollout.timeout_seconds for s in servings if s.rollout] + [
        e.rollout.timeout_seconds for e in environment.multi_model_endpoints.values()]
    assert int(variables["MAX_WAIT_SECONDS"]) == max(rollouts, default=600) + 1800
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": environment.account}
    assert trust["Condition"]["ArnEquals"] == {
        "aws:SourceArn": f"arn:aws:scheduler:{environment.region}:{environment.account}:schedule-group/{PROJECT}-{env}-deploy-retries"}
    statements = role_statements(synthesized.template(env, "Operations"), role_id)
    (queue_id,) = [k for k in synthesized.resources(env, "Operations", "AWS::SQS::Queue") if k.startswith("DeployOnApprovalDeadLetters")]
    assert variables["RETRY_DEAD_LETTER_ARN"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert [(statement_actions(s), s["Resource"]) for s in statements[:2]] == [
        (["lambda:InvokeFunction"], f"arn:aws:lambda:{environment.region}:{environment.account}:function:{PROJECT}-{env}-deploy-on-approval"),
        (["sqs:SendMessage"], {"Fn::GetAtt": [queue_id, "Arn"]}),
    ]
    (key,) = statements[2:]
    assert statement_actions(key) == ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    assert function["Properties"]["FunctionName"] == f"{PROJECT}-{env}-deploy-on-approval"


def _groups(synthesized, env: str) -> dict[str, str]:
    """model -> its model package group name, as the Storage stack creates it."""
    groups = {
        g["Properties"]["ModelPackageGroupName"]
        for g in synthesized.resources(env, "Storage", "AWS::SageMaker::ModelPackageGroup").values()
    }
    out = {m: f"{PROJECT}-{env}-{m}" for m in synthesized.config.environments[env].models}
    assert set(out.values()) == groups
    return out


@pytest.mark.parametrize("env", ENVS)
def test_deploy_function_knows_the_serving_stack_its_parameters_and_the_deployer(synthesized, env):
    environment = synthesized.config.environments[env]
    _, function = _deploy(synthesized, env, "AWS::Lambda::Function", "Function")
    props = function["Properties"]
    variables = props["Environment"]["Variables"]
    serving = synthesized.stacks[(env, "Serving")]
    assert variables["SERVING_STACK_NAME"] == serving.stack_name == f"{PROJECT}-{env}-serving"
    # The environment's name in the config: the --env of the rollback commands the handler's notices give.
    assert variables["ENVIRONMENT"] == env
    mapping = json.loads(variables["MODEL_PARAMETERS"])
    assert mapping == {group: package_parameter_name(m) for m, group in _groups(synthesized, env).items()}
    package_parameters = {p for p in serving.template["Parameters"] if not p.endswith(MODEL_SHA256_PARAMETER_SUFFIX)}
    assert set(mapping.values()) == package_parameters
    deployer_name = _resource(serving.template, "", "Deployer")[1]["Properties"]["RoleName"]
    assert variables["DEPLOYER_ROLE_ARN"] == f"arn:aws:iam::{environment.account}:role/{deployer_name}"
    # One deployment at a time; failures end in the dead-letter queue instead of retrying forever.
    assert props["ReservedConcurrentExecutions"] == 1
    dlq_id, _ = _deploy(synthesized, env, "AWS::SQS::Queue", "DeadLetters")
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    _, invoke = _deploy(synthesized, env, "AWS::Lambda::EventInvokeConfig", "FunctionEventInvokeConfig")
    assert invoke["Properties"]["MaximumRetryAttempts"] == 2


@pytest.mark.parametrize("env", ENVS)
def test_approvals_of_this_environments_groups_reach_the_deploy_function(synthesized, env):
    function_id, _ = _deploy(synthesized, env, "AWS::Lambda::Function", "Function")
    dlq_id, _ = _deploy(synthesized, env, "AWS::SQS::Queue", "DeadLetters")
    _, rule = _deploy(synthesized, env, "AWS::Events::Rule", "Approvals")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert sorted(pattern["detail"]["ModelPackageGroupName"]) == sorted(_groups(synthesized, env).values())
    assert all(g.startswith(f"{PROJECT}-{env}-") for g in pattern["detail"]["ModelPackageGroupName"])
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2


@pytest.mark.parametrize("env", ENVS)
def test_a_failed_rollout_of_the_serving_stack_notifies_people(synthesized, env):
    environment = synthesized.config.environments[env]
    _, rule = _deploy(synthesized, env, "AWS::Events::Rule", "FailedRollouts")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.cloudformation"]
    assert pattern["detail-type"] == ["CloudFormation Stack Status Change"]
    stack_name = synthesized.stacks[(env, "Serving")].stack_name
    assert pattern["detail"]["stack-id"] == [
        {"prefix": f"arn:aws:cloudformation:{environment.region}:{environment.account}:stack/{stack_name}/"}
    ]
    assert {"UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED"} <= set(pattern["detail"]["status-details"]["status"])
    assert "UPDATE_COMPLETE" not in pattern["detail"]["status-details"]["status"]
    (topic_id,) = [k for k in synthesized.resources(env, "Operations", "AWS::SNS::Topic") if k.startswith("Notifications")]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": topic_id}


@pytest.mark.parametrize("env", ENVS)
def test_deploy_function_may_update_only_the_serving_stack_passing_only_the_deployer(synthesized, env):
    environment = synthesized.config.environments[env]
    role_id, _ = _deploy(synthesized, env, "AWS::IAM::Role", "Role")
    statements = role_statements(synthesized.template(env, "Operations"), role_id)
    stack_name = synthesized.stacks[(env, "Serving")].stack_name
    (update,) = [s for s in statements if "cloudformation:UpdateStack" in statement_actions(s)]
    assert update["Resource"] == f"arn:aws:cloudformation:{environment.region}:{environment.account}:stack/{stack_name}/*"
    passes = [s for s in statements if any(a.startswith("iam:") for a in statement_actions(s))]
    assert all(statement_actions(s) == ["iam:PassRole"] for s in passes)
    retry_role_id, _ = _deploy(synthesized, env, "AWS::IAM::Role", "RetryRole")
    assert sorted((json.dumps(s["Resource"]), json.dumps(s["Condition"])) for s in passes) == sorted([
        (json.dumps(f"arn:aws:iam::{environment.account}:role/{PROJECT}-{env}-serving-deployer"),
         json.dumps({"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}})),
        (json.dumps({"Fn::GetAtt": [retry_role_id, "Arn"]}), json.dumps({"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}})),
    ])
    for statement in statements:
        assert not [a for a in statement_actions(statement) if "*" in a]


# --------------------------------------------------------------------------------------------
# Second config: async, batch, linear / all-at-once rollouts, fixed size, local NVMe
# --------------------------------------------------------------------------------------------
def test_the_modes_environment_passes_cfn_lint_and_the_nag_packs(modes):
    assert nag_violations(modes.outdir) == []
    result = lint_stacks(stacks(modes.outdir), cache=lint_cache())
    assert (result.errors, result.warnings) == (0, 0), "\n".join(result.lines)
    packages = {package_parameter_name(m) for m in MODES_MODELS}
    assert set(modes.serving["Parameters"]) == packages | {model_sha256_parameter_name(p) for p in packages}


def test_a_rate_schedule_reaches_the_scheduler_as_written(modes):
    """GIVEN the modes environment's rate() retraining schedule WHEN synthesized (cfn-lint and the nag packs
    clean, above) THEN every model's retraining schedule carries it."""
    expressions = [r["Properties"]["ScheduleExpression"] for r in of_type(modes.operations, "AWS::Scheduler::Schedule").values()]
    assert expressions.count(MODES_RETRAINING_SCHEDULE) == len(MODES_MODELS)


def test_async_endpoint_writes_results_to_s3_and_notifies_encrypted_topics(modes):
    cfg = _serving_config(modes.config, MODES_ENV, "churn")
    assert cfg.mode == "async"
    bucket = _inference_bucket(modes.storage, MODES_ENV)
    config = _props(modes.serving, "churn", "Config")
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == (cfg.async_.instance_type, 1)
    output = config["AsyncInferenceConfig"]["OutputConfig"]
    assert output["S3OutputPath"].startswith(f"s3://{bucket}/async/churn/")
    assert output["S3FailurePath"].startswith(f"s3://{bucket}/async/churn/")
    assert output["S3OutputPath"] != output["S3FailurePath"]
    assert _data_key_output(output["KmsKeyId"])
    assert _data_key_output(config["KmsKeyId"])
    notification = output["NotificationConfig"]
    topics = of_type(modes.serving, "AWS::SNS::Topic")
    for key in ("SuccessTopic", "ErrorTopic"):
        (topic_id,) = notification[key].values()
        assert "KmsMasterKeyId" in topics[topic_id]["Properties"]
        # Topics exist before the first approval: an approval never has to create SNS resources.
        assert "Condition" not in topics[topic_id]
    assert notification["SuccessTopic"] != notification["ErrorTopic"]
    client = config["AsyncInferenceConfig"]["ClientConfig"]
    assert client["MaxConcurrentInvocationsPerInstance"] == cfg.async_.max_concurrent_invocations_per_instance == 8
    role_id, _ = _resource(modes.serving, "churn", "Role")
    (publish,) = [s for s in role_statements(modes.serving, role_id) if "sns:Publish" in statement_actions(s)]
    assert sorted(listify(publish["Resource"]), key=str) == sorted([notification["SuccessTopic"], notification["ErrorTopic"]], key=str)


def test_the_stack_tells_async_and_batch_callers_where_to_put_requests_and_what_to_subscribe_to(modes):
    """GIVEN the modes environment (churn async, credit-risk batch) WHEN its Serving stack's outputs are read THEN an
    async caller finds the input prefix its execution role may read and the two topics' ARNs (CloudFormation names
    them: without an output a caller cannot subscribe), and a batch model names where its inputs go and its runs'
    outputs land, and no capture location nothing writes."""
    bucket = _inference_bucket(modes.storage, MODES_ENV)
    outputs = modes.serving["Outputs"]
    notification = _props(modes.serving, "churn", "Config")["AsyncInferenceConfig"]["OutputConfig"]["NotificationConfig"]
    assert outputs["ChurnAsyncInputUri"]["Value"] == f"s3://{bucket}/async/churn/input/"
    assert outputs["ChurnAsyncSuccessTopicArn"]["Value"] == notification["SuccessTopic"]
    assert outputs["ChurnAsyncErrorTopicArn"]["Value"] == notification["ErrorTopic"]
    assert outputs["ChurnCaptureUri"]["Value"] == f"s3://{bucket}/capture/churn/"
    assert outputs["CreditRiskBatchInputUri"]["Value"] == f"s3://{bucket}/batch/credit-risk/input/"
    assert outputs["CreditRiskBatchOutputUri"]["Value"] == f"s3://{bucket}/batch/credit-risk/output/"
    assert "CreditRiskCaptureUri" not in outputs
    for name, output in outputs.items():
        if name.startswith(("ChurnAsync", "CreditRiskBatch")):
            assert "Condition" not in output, name  # known before the first approval, as the topics exist


def test_async_endpoint_scales_to_zero_on_backlog_and_out_of_zero_on_waiting_requests(modes):
    cfg = _serving_config(modes.config, MODES_ENV, "churn").async_
    target_id, target = _resource(modes.serving, "churn", "ScalableTarget")
    assert target["Properties"]["ResourceId"] == f"endpoint/mlops-loop-{MODES_ENV}-churn/variant/AllTraffic"
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (0, cfg.max_instances) == (0, 3)

    backlog = _props(modes.serving, "churn", "BacklogPerInstance")
    assert backlog["PolicyType"] == "TargetTrackingScaling" and backlog["ScalingTargetId"] == {"Ref": target_id}
    tracking = backlog["TargetTrackingScalingPolicyConfiguration"]
    metric = tracking["CustomizedMetricSpecification"]
    assert (metric["Namespace"], metric["MetricName"]) == ("AWS/SageMaker", "ApproximateBacklogSizePerInstance")
    assert metric["Dimensions"] == [{"Name": "EndpointName", "Value": f"mlops-loop-{MODES_ENV}-churn"}]
    assert tracking["TargetValue"] == cfg.target_backlog_per_instance

    step_id, step = _resource(modes.serving, "churn", "ScaleOutFromZero")
    assert step["Properties"]["PolicyType"] == "StepScaling" and step["Properties"]["ScalingTargetId"] == {"Ref": target_id}
    (adjustment,) = step["Properties"]["StepScalingPolicyConfiguration"]["StepAdjustments"]
    assert adjustment["ScalingAdjustment"] >= 1 and adjustment["MetricIntervalLowerBound"] == 0
    alarm = _props(modes.serving, "churn", "BacklogWithoutCapacity")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SageMaker", "HasBacklogWithoutCapacity")
    assert alarm["AlarmActions"] == [{"Ref": step_id}]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and alarm["Threshold"] == 1
    for child in ("ScalableTarget", "BacklogPerInstance", "ScaleOutFromZero", "BacklogWithoutCapacity"):
        assert _resource(modes.serving, "churn", child)[1]["Condition"] == "ChurnDeployed"


def _batch_request(modes) -> dict:
    schedule = _props(modes.serving, "credit-risk", "Schedule")
    return json.loads(flatten(schedule["Target"]["Input"]))


def test_batch_model_has_no_endpoint_but_a_conditional_schedule(modes):
    template = modes.serving
    cfg = _serving_config(modes.config, MODES_ENV, "credit-risk")
    assert cfg.mode == "batch"
    for child in ("Config", "Endpoint", "RolloutErrors", "RolloutLatency", "ScalableTarget"):
        assert not _has(template, "credit-risk", child), child
    assert _resource(template, "credit-risk", "Model")[1]["Condition"] == "CreditRiskDeployed"
    schedule_id, schedule = _resource(template, "credit-risk", "Schedule")
    assert schedule["Condition"] == "CreditRiskDeployed"
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == cfg.batch.schedule == "cron(30 2 * * ? *)"
    assert props["ScheduleExpressionTimezone"] == "UTC"
    assert flatten(props["Target"]["Arn"]) == "arn:aws:scheduler:::aws-sdk:sagemaker:createTransformJob"
    role_id, _ = _resource(template, "credit-risk", "SchedulerRole")
    assert props["Target"]["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert not {"CreditRiskEndpointName", "CreditRiskEndpointConfigName"} & set(template.get("Outputs", {}))


def test_batch_transform_request_reads_the_input_prefix_and_keeps_outputs_per_run(modes):
    cfg = _serving_config(modes.config, MODES_ENV, "credit-risk").batch
    bucket = _inference_bucket(modes.storage, MODES_ENV)
    request = _batch_request(modes)
    stem = request["TransformJobName"].partition("-<")[0]
    assert re.fullmatch(r"bt-[0-9a-f]{10}", stem) and EXECUTION_ID in request["TransformJobName"]
    # A scheduler execution id is a UUID (36 characters); job names are at most 63.
    assert len(request["TransformJobName"].replace(EXECUTION_ID, "x" * 36)) <= 63
    model_id, _ = _resource(modes.serving, "credit-risk", "Model")
    assert request["ModelName"] == f"<GetAtt:{model_id}.ModelName>"
    source = request["TransformInput"]["DataSource"]["S3DataSource"]
    assert source == {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/batch/credit-risk/input/"}
    assert request["TransformInput"]["SplitType"] == "Line"
    assert request["TransformInput"]["ContentType"] == cfg.content_type == "text/csv"
    output = request["TransformOutput"]
    # Per run, under the version the run scores with (the approved ARN's last part): the monitor judges each version
    # by its own outputs.
    assert output["S3OutputPath"] == (f"s3://{bucket}/batch/credit-risk/output/"
                                      f"v<Select:2:Split:/:Ref:CreditRiskModelPackageArn>/{EXECUTION_ID}/")
    assert output["KmsKeyId"].startswith("<Output:") and "DataLakeKey" in output["KmsKeyId"]
    # No SageMaker capture: the drift monitor reads each input beside its output, nothing would read a second copy.
    assert "DataCaptureConfig" not in request
    resources = request["TransformResources"]
    assert (resources["InstanceType"], resources["InstanceCount"]) == (cfg.instance_type, cfg.instance_count) == ("ml.m5.xlarge", 2)
    assert "DataLakeKey" in resources["VolumeKmsKeyId"]


def test_batch_scheduler_role_may_start_only_this_models_transform_jobs(modes):
    template = modes.serving
    environment = modes.config.environments[MODES_ENV]
    stem = _batch_request(modes)["TransformJobName"].split("-<")[0]
    role_id, role = _resource(template, "credit-risk", "SchedulerRole")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": MODES_ACCOUNT}}
    statements = role_statements(template, role_id)
    (start,) = [s for s in statements if "sagemaker:CreateTransformJob" in statement_actions(s)]
    assert start["Resource"] == f"arn:aws:sagemaker:{environment.region}:{MODES_ACCOUNT}:transform-job/{stem}-*"
    # CreateTransformJob takes no role (the job runs as the model's): the scheduler may pass none.
    assert [s for s in statements if "iam:PassRole" in statement_actions(s)] == []
    # The deployer may hand this role to EventBridge Scheduler, and only to it.
    deployer_id, _ = _resource(template, "", "Deployer")
    (handed,) = [s for s in role_statements(template, deployer_id)
                 if "iam:PassRole" in statement_actions(s) and s["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}]
    assert handed["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


@pytest.mark.parametrize(
    "model",
    [
        "nvme-churn",
        "churn",
        "credit-risk",
    ],
)
def test_the_serving_role_may_write_everywhere_its_endpoint_or_job_writes(modes, model):
    bucket = _inference_bucket(modes.storage, MODES_ENV)
    destinations = []
    if _has(modes.serving, model, "Config"):
        config = _props(modes.serving, model, "Config")
        destinations.append(config["DataCaptureConfig"]["DestinationS3Uri"])
        output = config.get("AsyncInferenceConfig", {}).get("OutputConfig", {})
        destinations += [output[k] for k in ("S3OutputPath", "S3FailurePath") if k in output]
    else:
        request = _batch_request(modes)
        destinations.append(request["TransformOutput"]["S3OutputPath"])
        assert "DataCaptureConfig" not in request  # nothing would read it: the monitor pairs inputs with outputs
    role_id, _ = _resource(modes.serving, model, "Role")
    writable = writable_prefixes(role_statements(modes.serving, role_id), bucket)
    for destination in destinations:
        assert any(destination.startswith(prefix) for prefix in writable), (destination, writable)


def test_linear_rollout_shifts_the_configured_step(modes):
    rollout = _serving_config(modes.config, MODES_ENV, "linear-churn").realtime.rollout
    policy = _props(modes.serving, "linear-churn", "Endpoint")["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": rollout.linear_step_percent},
        "WaitIntervalInSeconds": rollout.wait_minutes * 60,
    }
    assert (rollout.linear_step_percent, rollout.wait_minutes) == (25, 5)
    # Four steps of 25% each wait before the old fleet goes: the timeout must outlast them.
    waits = 4 * rollout.wait_minutes * 60 + rollout.termination_wait_minutes * 60
    assert waits < policy["MaximumExecutionTimeoutInSeconds"] <= MAX_ROLLOUT_SECONDS
    assert _has(modes.serving, "linear-churn", "ScalableTarget")


def test_all_at_once_rollout_and_a_fixed_fleet_without_autoscaling(modes):
    cfg = _serving_config(modes.config, MODES_ENV, "fixed-churn").realtime
    assert cfg.autoscaling is None
    endpoint = _props(modes.serving, "fixed-churn", "Endpoint")
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": cfg.rollout.wait_minutes * 60}
    assert policy["TerminationWaitInSeconds"] == cfg.rollout.termination_wait_minutes * 60 == 600
    assert len(endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]) == 3  # 5xx, latency, 4xx
    (variant,) = _props(modes.serving, "fixed-churn", "Config")["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.c5.xlarge", 3)
    for child in ("ScalableTarget", "InvocationsPerInstance"):
        assert not _has(modes.serving, "fixed-churn", child)


def test_local_nvme_instance_type_has_no_volume_key_and_says_why(modes):
    nvme = _props(modes.serving, "nvme-churn", "Config")
    assert nvme["ProductionVariants"][0]["InstanceType"] == "ml.m5d.xlarge"
    assert "KmsKeyId" not in nvme
    assert _data_key_output(nvme["DataCaptureConfig"]["KmsKeyId"])  # captured data is still encrypted
    (ack,) = _acks(modes.acknowledgements, f"{MODES_ENV}/Serving/NvmeChurn/Default/Config", KMS_RULE)
    assert "NVMe" in ack["reason"] and "ml.m5d.xlarge" in ack["reason"]
    # Control: an EBS-backed type in the same environment keeps its volume key and needs no acknowledgement.
    assert _data_key_output(_props(modes.serving, "linear-churn", "Config")["KmsKeyId"])
    assert _acks(modes.acknowledgements, f"{MODES_ENV}/Serving/LinearChurn/Default/Config", KMS_RULE) == []


def test_every_mode_is_deployed_by_approval_through_one_parameter_each(modes):
    (function,) = [
        v for k, v in of_type(modes.operations, "AWS::Lambda::Function").items() if k.startswith("DeployOnApprovalFunction")
    ]
    mapping = json.loads(function["Properties"]["Environment"]["Variables"]["MODEL_PARAMETERS"])
    assert mapping == {f"mlops-loop-{MODES_ENV}-{m}": package_parameter_name(m) for m in MODES_MODELS}
    for model in MODES_MODELS:
        gated = {k: v for k, v in _model_resources(modes.serving, model, MODES_MODELS).items() if v["Type"] in GATED_TYPES}
        assert gated and all(v["Condition"] == f"{pascal(model)}Deployed" for v in gated.values()), model


# --------------------------------------------------------------------------------------------
# The native Model Monitor opt-in, wired into the serving stack (linear-churn in `modes`)
# --------------------------------------------------------------------------------------------
NATIVE_TYPES = ["AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::ModelQualityJobDefinition",
                "AWS::SageMaker::ModelBiasJobDefinition", "AWS::SageMaker::ModelExplainabilityJobDefinition"]


def test_four_native_monitors_exist_only_once_a_version_serves(modes):
    resources = modes.serving["Resources"]
    native = {k: r for k, r in resources.items() if r["Type"] in NATIVE_TYPES or r["Type"] == "AWS::SageMaker::MonitoringSchedule"}
    assert sorted(r["Type"] for r in native.values()) == sorted(NATIVE_TYPES + ["AWS::SageMaker::MonitoringSchedule"] * 4)
    (endpoint_id,) = [k for k, r in resources.items() if k.startswith("LinearChurnEndpoint")]
    for logical_id, resource in native.items():
        assert logical_id.startswith("LinearChurnNativeMonitor")
        assert resource["Condition"] == "LinearChurnDeployed"
        assert endpoint_id in resource.get("DependsOn", [])


def test_the_deployer_may_create_exactly_these_monitors_and_pass_only_their_role(modes):
    resources = modes.serving["Resources"]
    sids = policy_statements(resources, [k for k, r in resources.items()
                                         if k.startswith("DeployerAccess") and r["Type"] == "AWS::IAM::ManagedPolicy"])
    assert "sagemaker:CreateMonitoringSchedule" in sids["CreateNativeMonitorSchedulesLinearChurn"]["Action"]
    schedules = {r["Properties"]["MonitoringScheduleName"] for r in resources.values() if r["Type"] == "AWS::SageMaker::MonitoringSchedule"}
    for sid in ("CreateNativeMonitorSchedulesLinearChurn", "NativeMonitorSchedulesLinearChurn"):
        assert {arn.rsplit("/", 1)[1] for arn in sids[sid]["Resource"]} == {s.lower() for s in schedules}
    passed = sids["PassNativeMonitorRoleLinearChurn"]
    assert passed["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert passed["Resource"]["Fn::GetAtt"][0].startswith("LinearChurnNativeMonitorRole")
    assert not [sid for sid in sids if "NativeMonitor" in sid and not sid.endswith("LinearChurn")]

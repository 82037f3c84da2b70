"""The always-on cost floor report (mlops_loop/tools/cost_floor/).

Most tests build a small cloud assembly in tmp_path laid out as ``cdk synth`` writes it
(``tests.support.assemblies``), so every serving shape can be pinned without the serving stack. Those
assemblies have no source stamp, so the CLI reads them with ``--allow-stale`` (the refusal is tested in
test_source_stamp.py). The last tests read the real app.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_loop.app_builder import REPO_ROOT
from mlops_loop.config.instance_types import INSTANCE_TYPES
from mlops_loop.tools.cost_floor import (
    FREE_DASHBOARDS_PER_ACCOUNT,
    INSTANCE_DIMENSION,
    PRICES,
    PROVISIONED_CONCURRENCY_DIMENSION,
    floor_report,
    main,
)
from pipeline_code.core.contract import TEAM_TAG
from tests.support.assemblies import endpoint, instance_config, serverless_config, template, write_assembly

HOURS = 730.0
PC_PRICE = PRICES["serverless_provisioned_concurrency"].usd


# --------------------------------------------------------------------------------------
# Building synthetic assemblies (the builders are shared with the template-diff tests)
# --------------------------------------------------------------------------------------
def scalable_target(resource_id, minimum: int, *, dimension: str = INSTANCE_DIMENSION, maximum: int | None = None) -> dict:
    return {
        "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
        "Properties": {
            "ServiceNamespace": "sagemaker",
            "ScalableDimension": dimension,
            "ResourceId": resource_id,
            "MinCapacity": minimum,
            "MaxCapacity": max(minimum, 4) if maximum is None else maximum,
        },
    }


def idle_alarm(endpoint: str = "mlops-loop-prod-churn", *, expression: str = "IF(instances, invocations, 0)",
               instances: tuple[str, str] = ("/aws/sagemaker/Endpoints", "CPUUtilization"),
               comparison: str = "LessThanOrEqualToThreshold", threshold: float = 0) -> dict:
    """The properties (but actions) of an idle scale-in alarm as mlops_loop/constructs/endpoint_fleet.py's idle_scale_in
    makes it by default: per minute, ``endpoint``'s requests where its instances reported, 0 without any; a 0 breaches."""
    def stat(query_id: str, namespace: str, name: str, statistic: str) -> dict:
        return {"Id": query_id, "ReturnData": False, "MetricStat": {"Period": 60, "Stat": statistic, "Metric": {
            "Namespace": namespace, "MetricName": name,
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]}}}
    return {"EvaluationPeriods": 60, "DatapointsToAlarm": 60, "Threshold": threshold, "ComparisonOperator": comparison,
            "TreatMissingData": "notBreaching",
            "Metrics": [stat("instances", *instances, "SampleCount"), stat("invocations", "AWS/SageMaker", "Invocations", "Sum"),
                        {"Id": "requests", "Expression": expression, "ReturnData": True}]}


# The alarm an idle scale-in had before (FILL(Invocations, 0) per 5 minutes, 12 of 12): it fires without data only
# with missing data breaching.
FILLED_ALARM = {"EvaluationPeriods": 12, "Threshold": 0, "ComparisonOperator": "LessThanOrEqualToThreshold",
                "Metrics": [{"Id": "invocations", "ReturnData": False, "MetricStat": {"Period": 300, "Stat": "Sum", "Metric": {
                    "Namespace": "AWS/SageMaker", "MetricName": "Invocations"}}},
                            {"Id": "requests", "Expression": "FILL(invocations, 0)", "ReturnData": True}]}


def idle_scale_in(target_id: str, capacity: int, *, adjustment_type: str = "ExactCapacity", alarm: dict | None = None,
                  missing: str | None = None, action: str = "AlarmActions", enabled: bool = True) -> dict:
    """The step policy ``IdleScaleIn`` on ``target_id`` setting ``capacity`` and the alarm ``IdleScaleInAlarm`` with the
    properties ``alarm`` (default: :func:`idle_alarm`'s; ``missing``: another TreatMissingData) that runs it."""
    props = {**(idle_alarm() if alarm is None else alarm), action: [{"Ref": "IdleScaleIn"}]}
    if missing is not None:
        props["TreatMissingData"] = missing
    return {
        "IdleScaleIn": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {
            "PolicyName": "idle", "PolicyType": "StepScaling", "ScalingTargetId": {"Ref": target_id},
            "StepScalingPolicyConfiguration": {"AdjustmentType": adjustment_type, "StepAdjustments": [
                {"MetricIntervalUpperBound": 0, "ScalingAdjustment": capacity},
                {"MetricIntervalLowerBound": 0, "ScalingAdjustment": capacity}]}}},
        "IdleScaleInAlarm": {"Type": "AWS::CloudWatch::Alarm",
                             "Properties": {**props, **({} if enabled else {"ActionsEnabled": False})}},
    }


def one_env(tmp_path: Path, resources: dict, name: str = "cdk.out", **template_kwargs) -> Path:
    return write_assembly(tmp_path / name, {"prod": {"Serving": template(resources, **template_kwargs)}})


def compute_lines(env):
    return [line for line in env.lines if line.category == "compute"]


def monthly(instance_type: str, count: int, hours: float = HOURS) -> float:
    return count * INSTANCE_TYPES[instance_type].usd_per_hour * hours


# --------------------------------------------------------------------------------------
# Compute floor per serving shape
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("instance_type,count", [("ml.m5.large", 1), ("ml.c5.xlarge", 3)])
def test_realtime_without_autoscaling_floor_is_initial_instances_x_price_x_hours(tmp_path, instance_type, count):
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn", mode="realtime"),
        "Config": instance_config(instance_type, count),
    })
    (env,) = floor_report(out)
    (line,) = compute_lines(env)
    assert (line.label, line.mode, line.variant) == ("churn", "realtime", "AllTraffic")
    assert line.monthly_usd == pytest.approx(monthly(instance_type, count))
    assert "InitialInstanceCount" in line.basis
    assert env.compute_usd == pytest.approx(monthly(instance_type, count))
    assert env.compute_before_approval_usd == env.compute_usd


def test_hours_per_month_scales_the_instance_floor(tmp_path):
    out = one_env(tmp_path, {"Endpoint": endpoint("e", "Config"), "Config": instance_config("ml.m5.large", 2)})
    (env,) = floor_report(out, hours_per_month=100)
    assert env.compute_usd == pytest.approx(monthly("ml.m5.large", 2, hours=100))


CHURN = "endpoint/mlops-loop-prod-churn/variant/AllTraffic"


def _realtime(tmp_path, initial: int, minimum: int, maximum: int, *, idle: dict | None = None, name: str = "cdk.out"):
    """GIVEN a real-time ml.m5.xlarge endpoint starting at ``initial`` instances, autoscaling ``minimum``-``maximum``
    with the resources ``idle`` (an idle scale-in, or none) WHEN its floor is read THEN its one compute line."""
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn", mode="realtime"),
        "Config": instance_config("ml.m5.xlarge", initial),
        "Target": scalable_target(CHURN, minimum, maximum=maximum),
        **(idle or {}),
    }, name=name)
    (env,) = floor_report(out)
    (line,) = compute_lines(env)
    assert env.warnings == []
    return line


def test_an_idle_real_time_endpoint_that_scales_in_when_idle_costs_its_minimum_and_shows_its_ceiling(tmp_path):
    """GIVEN an endpoint starting at 5 (the FinOps trial: prod churn at instance_count 5, autoscaling 2-6) with the idle
    scale-in WHEN its floor is read THEN it costs its MinCapacity, and the line shows what MaxCapacity would cost."""
    line = _realtime(tmp_path, 5, 2, 6, idle=idle_scale_in("Target", 2))
    assert line.basis == "2 x ml.m5.xlarge (autoscaling MinCapacity: scaled in when idle) x 730 h x $0.23/h"
    assert line.ceiling_usd == pytest.approx(1007.40)  # 6 x ml.m5.xlarge (MaxCapacity)
    assert line.monthly_usd == pytest.approx(335.80)
    assert line.resources == ("Endpoint", "Config", "Target", "IdleScaleIn", "IdleScaleInAlarm")


def test_without_an_idle_scale_in_an_idle_endpoint_keeps_its_initial_count_above_the_minimum(tmp_path):
    """GIVEN the same endpoint with target tracking only WHEN its floor is read THEN it costs its InitialInstanceCount:
    target tracking does not scale in without Invocations data (+$503.70 a month over the minimum, which the floor
    reported before)."""
    line = _realtime(tmp_path, 5, 2, 6)
    assert line.basis == "5 x ml.m5.xlarge (InitialInstanceCount: no scale-in without traffic) x 730 h x $0.23/h"
    assert line.ceiling_usd == pytest.approx(1007.40)
    assert line.monthly_usd == pytest.approx(839.50)
    assert line.monthly_usd - monthly("ml.m5.xlarge", 2) == pytest.approx(503.70)
    assert line.resources == ("Endpoint", "Config", "Target")


@pytest.mark.parametrize("initial", [1, 2], ids=["below-the-minimum", "at-the-minimum"])
def test_without_an_idle_scale_in_an_endpoint_starting_at_or_below_its_minimum_costs_the_minimum(tmp_path, initial):
    line = _realtime(tmp_path, initial, 2, 4)
    assert line.basis == "2 x ml.m5.xlarge (autoscaling MinCapacity) x 730 h x $0.23/h"
    assert line.ceiling_usd == pytest.approx(671.60)
    assert line.monthly_usd == pytest.approx(monthly("ml.m5.xlarge", 2))


@pytest.mark.parametrize(
    "idle",
    [
        idle_scale_in("Target", 1, adjustment_type="ChangeInCapacity"),  # a step that adds instead (a scale-out)
        idle_scale_in("Target", 3),                                      # an exact capacity above the minimum
        idle_scale_in("Other", 2),                                       # another target's policy
        idle_scale_in("Target", 2, alarm=FILLED_ALARM, missing="notBreaching"),  # never fires without data
        idle_scale_in("Target", 2, action="OKActions"),                  # run when traffic returns, not when it stops
        idle_scale_in("Target", 2, enabled=False),                       # actions disabled
        {"IdleScaleIn": idle_scale_in("Target", 2)["IdleScaleIn"]},      # a policy no alarm runs
        idle_scale_in("Target", 2, alarm=idle_alarm("mlops-loop-prod-other")),  # another endpoint's idleness
        idle_scale_in("Target", 2, alarm=idle_alarm(comparison="GreaterThanThreshold")),  # fires on requests, not on none
        idle_scale_in("Target", 2, alarm=idle_alarm(comparison="LessThanThreshold")),  # 0 < 0: never breaches
        idle_scale_in("Target", 2, alarm=idle_alarm(expression="IF(instances, invocations, 1)")),  # no request is 1
        idle_scale_in("Target", 2, alarm=idle_alarm(instances=("AWS/SageMaker", "Invocations"))),  # not instance data
    ],
    ids=["change-in-capacity", "above-the-minimum", "other-target", "not-breaching", "ok-action", "disabled", "no-alarm",
         "other-endpoint", "fires-on-requests", "zero-below-threshold", "other-expression", "no-instance-metric"],
)
def test_only_an_alarm_that_fires_on_an_idle_endpoint_setting_at_most_the_minimum_counts_as_an_idle_scale_in(tmp_path, idle):
    line = _realtime(tmp_path, 3, 2, 4, idle=idle)
    assert line.basis.startswith("3 x ml.m5.xlarge (InitialInstanceCount: no scale-in without traffic) x 730 h")
    assert line.monthly_usd == pytest.approx(monthly("ml.m5.xlarge", 3))


def test_an_alarm_running_the_policy_on_insufficient_data_counts_as_an_idle_scale_in(tmp_path):
    """GIVEN the Application Auto Scaling User Guide's own remedy (a step policy run when the alarm goes to
    INSUFFICIENT_DATA) WHEN the floor is read THEN the endpoint costs its minimum."""
    line = _realtime(tmp_path, 3, 2, 4, idle=idle_scale_in("Target", 2, alarm=FILLED_ALARM, missing="missing",
                                                          action="InsufficientDataActions"))
    assert line.monthly_usd == pytest.approx(monthly("ml.m5.xlarge", 2))
    assert "(autoscaling MinCapacity: scaled in when idle)" in line.basis


def test_an_alarm_whose_missing_data_breaches_counts_as_an_idle_scale_in(tmp_path):
    """GIVEN the idle scale-in's former alarm (FILL(Invocations, 0), missing data breaching: it fires without data, on a
    new endpoint too) WHEN the floor is read THEN the endpoint costs its minimum, as it does when idle."""
    line = _realtime(tmp_path, 3, 2, 4, idle=idle_scale_in("Target", 2, alarm=FILLED_ALARM, missing="breaching"))
    assert line.monthly_usd == pytest.approx(monthly("ml.m5.xlarge", 2))
    assert "(autoscaling MinCapacity: scaled in when idle)" in line.basis


def test_a_scalable_target_of_another_endpoint_or_variant_does_not_apply(tmp_path):
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config"),
        "Config": instance_config("ml.m5.large", 2),
        "OtherEndpoint": scalable_target("endpoint/mlops-loop-prod-other/variant/AllTraffic", 0),
        "OtherVariant": scalable_target("endpoint/mlops-loop-prod-churn/variant/Shadow", 0),
    })
    (env,) = floor_report(out)
    assert env.compute_usd == pytest.approx(monthly("ml.m5.large", 2))


@pytest.mark.parametrize(
    "resource_id",
    [
        "endpoint/mlops-loop-prod-scores/variant/AllTraffic",
        {"Fn::Join": ["", ["endpoint/", "mlops-loop-prod-scores", "/variant/", "AllTraffic"]]},
        {"Fn::Join": ["/", ["endpoint", "mlops-loop-prod-scores", "variant", "AllTraffic"]]},
        {"Fn::Join": ["", ["endpoint/", {"Fn::GetAtt": ["Endpoint", "EndpointName"]}, "/variant/AllTraffic"]]},
    ],
    ids=["plain", "join", "join-slash", "join-getatt"],
)
def test_async_endpoint_scaling_to_zero_has_no_floor_whatever_form_the_resource_id_takes(tmp_path, resource_id):
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-scores", "Config", model="scores"),
        "Config": instance_config("ml.m5.xlarge", 1, is_async=True),
        "Target": scalable_target(resource_id, 0),
    })
    (env,) = floor_report(out)
    (line,) = compute_lines(env)
    assert line.mode == "async"  # derived from AsyncInferenceConfig: the metadata names no mode
    assert line.monthly_usd == 0.0 and env.compute_usd == 0.0
    # Scaled to zero on its backlog (no idle scale-in needed); up to 4 when requests wait.
    assert line.basis == "0 x ml.m5.xlarge (autoscaling MinCapacity): scales to zero"
    assert line.ceiling_usd == pytest.approx(671.60)
    assert env.warnings == []


def test_unnamed_endpoint_matches_its_scalable_target_through_getatt(tmp_path):
    unnamed = endpoint("ignored", "Config", model="churn")
    del unnamed["Properties"]["EndpointName"]  # CloudFormation generates the name at deploy time
    resource_id = {"Fn::Join": ["", ["endpoint/", {"Fn::GetAtt": ["Endpoint", "EndpointName"]}, "/variant/AllTraffic"]]}
    out = one_env(tmp_path, {
        "Endpoint": unnamed,
        "Config": instance_config("ml.m5.large", 3),
        "Target": scalable_target(resource_id, 1),
    })
    (env,) = floor_report(out)
    # Target tracking alone leaves the idle endpoint at its 3 initial instances (it matched the target: the ceiling).
    assert env.compute_usd == pytest.approx(monthly("ml.m5.large", 3))
    (line,) = compute_lines(env)
    assert line.ceiling_usd == pytest.approx(335.80)  # 4 x ml.m5.large (MaxCapacity)
    assert env.warnings == []


def test_async_endpoint_without_a_scalable_target_keeps_its_initial_instances(tmp_path):
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-scores", "Config", model="scores", mode="async"),
        "Config": instance_config("ml.m5.xlarge", 1, is_async=True),
    })
    (env,) = floor_report(out)
    assert env.compute_usd == pytest.approx(monthly("ml.m5.xlarge", 1))


def test_a_scalable_target_that_cannot_be_resolved_is_reported_not_guessed(tmp_path):
    unresolvable = {"Fn::Join": ["", ["endpoint/", {"Fn::ImportValue": "elsewhere"}, "/variant/AllTraffic"]]}
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config"),
        "Config": instance_config("ml.m5.large", 2),
        "Target": scalable_target(unresolvable, 0),
    })
    (env,) = floor_report(out)
    assert env.compute_usd == pytest.approx(monthly("ml.m5.large", 2))
    (warning,) = env.warnings
    assert "Target" in warning and "ignored" in warning


@pytest.mark.parametrize("provisioned,memory_mb", [(None, 2048), (0, 1024), (2, 2048), (5, 6144)])
def test_serverless_costs_only_its_provisioned_concurrency(tmp_path, provisioned, memory_mb):
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-credit-risk", "Config", model="credit-risk", mode="serverless"),
        "Config": serverless_config(memory_mb, provisioned=provisioned),
    })
    (env,) = floor_report(out)
    (line,) = compute_lines(env)
    expected = (provisioned or 0) * memory_mb / 1024 * PC_PRICE * 3600 * HOURS
    assert line.mode == "serverless"
    assert line.monthly_usd == pytest.approx(expected)
    if not provisioned:
        assert "pay per request" in line.basis


def test_serverless_provisioned_concurrency_autoscaling_minimum_is_the_floor(tmp_path):
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-credit-risk", "Config"),
        "Config": serverless_config(1024, provisioned=4),
        "Target": scalable_target(
            "endpoint/mlops-loop-prod-credit-risk/variant/AllTraffic", 1, dimension=PROVISIONED_CONCURRENCY_DIMENSION
        ),
    })
    (env,) = floor_report(out)
    assert env.compute_usd == pytest.approx(1 * 1 * PC_PRICE * 3600 * HOURS)


def _conditioned(package_default: str) -> dict:
    return dict(
        parameters={"ChurnModelPackageArn": {"Type": "String", "Default": package_default}},
        conditions={"ChurnServed": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ChurnModelPackageArn"}, ""]}]}},
    )


def test_conditioned_endpoint_is_the_floor_once_deployed_not_before_approval(tmp_path):
    resources = {
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn", condition="ChurnServed"),
        "Config": instance_config("ml.m5.large", 1, condition="ChurnServed"),
        "Target": {
            **scalable_target("endpoint/mlops-loop-prod-churn/variant/AllTraffic", 2),
            "Condition": "ChurnServed",
        },
        "Errors": {"Type": "AWS::CloudWatch::Alarm", "Condition": "ChurnServed", "Properties": {"Period": 60}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
    }
    out = one_env(tmp_path, resources, **_conditioned(""))
    (env,) = floor_report(out)
    (line,) = compute_lines(env)
    assert line.once_deployed == "ChurnServed"
    assert env.compute_usd == pytest.approx(monthly("ml.m5.large", 2))
    assert env.compute_before_approval_usd == 0.0
    assert env.fixed_usd == pytest.approx(PRICES["kms_key"].usd + PRICES["alarm_metric_standard"].usd)
    assert env.fixed_before_approval_usd == pytest.approx(PRICES["kms_key"].usd)

    text = _run_main([str(out), "--allow-stale"])
    assert "[once deployed]" in text and "exists only once a model version is approved and deployed" in text


def test_endpoint_whose_condition_holds_with_the_defaults_is_in_the_floor_before_approval(tmp_path):
    resources = {
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config", condition="ChurnServed"),
        "Config": instance_config("ml.m5.large", 1),
    }
    out = one_env(tmp_path, resources, **_conditioned("arn:aws:sagemaker:eu-west-1:1:model-package/churn/3"))
    (env,) = floor_report(out)
    (line,) = compute_lines(env)
    assert line.once_deployed is None
    assert env.compute_before_approval_usd == env.compute_usd == pytest.approx(monthly("ml.m5.large", 1))


def test_batch_models_are_listed_at_zero_once_per_model(tmp_path):
    batch = {"mlops-loop": {"model": "scores", "mode": "batch"}}
    out = one_env(tmp_path, {
        "Schedule": {"Type": "AWS::Scheduler::Schedule", "Metadata": batch, "Properties": {}},
        "Model": {"Type": "AWS::SageMaker::Model", "Metadata": batch, "Properties": {}},
        "Unrelated": {"Type": "AWS::Events::Rule", "Metadata": {"mlops-loop": {"model": "x", "mode": "realtime"}}},
    })
    (env,) = floor_report(out)
    (line,) = compute_lines(env)
    assert (line.label, line.mode, line.monthly_usd) == ("scores", "batch", 0.0)
    assert set(line.resources) == {"Schedule", "Model"}


def test_unknown_instance_type_gives_an_unknown_price_line_not_a_crash(tmp_path, capsys):
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn"),
        "Config": instance_config("ml.x99.huge", 1),
        "Known": endpoint("mlops-loop-prod-other", "KnownConfig", model="other"),
        "KnownConfig": instance_config("ml.m5.large", 1),
    })
    (env,) = floor_report(out)
    unknown = [line for line in env.lines if line.monthly_usd is None]
    assert [line.label for line in unknown] == ["churn"]
    assert "unknown price" in unknown[0].basis and "ml.x99.huge" in unknown[0].basis
    assert env.unknown_prices == 1
    assert env.compute_usd == pytest.approx(monthly("ml.m5.large", 1))  # the known part only

    assert main([str(out), "--allow-stale"]) == 0
    text = capsys.readouterr().out
    assert "unknown price: 1 x ml.x99.huge" in text and "1 line(s) with unknown price" in text


def test_labels_fall_back_to_the_endpoint_name_and_configs_found_by_ref(tmp_path):
    out = one_env(tmp_path, {
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config", by_ref=True),
        "Config": instance_config("ml.m5.large", 1),
    })
    (env,) = floor_report(out)
    (line,) = compute_lines(env)
    assert (line.label, line.mode) == ("mlops-loop-prod-churn", "realtime")


def test_an_endpoint_config_alone_costs_nothing(tmp_path):
    out = one_env(tmp_path, {"Config": instance_config("ml.m5.large", 4)})
    (env,) = floor_report(out)
    assert compute_lines(env) == [] and env.compute_usd == 0.0


# --------------------------------------------------------------------------------------
# Fixed items
# --------------------------------------------------------------------------------------
def test_fixed_items_are_priced_separately_from_compute(tmp_path):
    metric_math = {
        "Metrics": [
            {"Id": i, "MetricStat": {"Metric": {"MetricName": i}, "Period": 60, "Stat": "Sum"}, "ReturnData": False}
            for i in ("a", "b")
        ]
        + [{"Id": "e", "Expression": "a/b"}]
    }
    # Small dashboards (a body the floor can count, within the free tier's 50 metrics): only the fourth is billed.
    dashboards = {f"Dash{i}": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": '{"widgets":[]}'}}
                  for i in range(4)}
    out = one_env(tmp_path, {
        "Key1": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Key2": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Standard": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": 300}},
        "HighResolution": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": 10}},
        "MetricMath": {"Type": "AWS::CloudWatch::Alarm", "Properties": metric_math},
        "Features": {
            "Type": "AWS::SageMaker::FeatureGroup",
            "Properties": {"OnlineStoreConfig": {"EnableOnlineStore": True}},
        },
        **dashboards,
    })
    (env,) = floor_report(out)
    expected = (
        2 * PRICES["kms_key"].usd
        + 3 * PRICES["alarm_metric_standard"].usd  # one standard alarm + the two metrics of the math alarm
        + PRICES["alarm_metric_high_resolution"].usd
        + (len(dashboards) - FREE_DASHBOARDS_PER_ACCOUNT) * PRICES["dashboard"].usd
    )
    assert env.compute_usd == 0.0
    assert env.fixed_usd == pytest.approx(expected)
    labels = {line.label: line for line in env.lines if line.category == "fixed"}
    assert set(labels) == {"KMS keys", "CloudWatch alarms", "CloudWatch dashboards", "Feature Store online stores"}
    assert labels["Feature Store online stores"].monthly_usd == 0.0


def test_hourly_network_items_secrets_and_composite_alarms_are_fixed_items(tmp_path):
    out = one_env(tmp_path, {
        "Nat": {"Type": "AWS::EC2::NatGateway", "Properties": {}},
        "Endpoint": {
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {"VpcEndpointType": "Interface", "SubnetIds": ["subnet-a", "subnet-b"]},
        },
        "Gateway": {"Type": "AWS::EC2::VPCEndpoint", "Properties": {"VpcEndpointType": "Gateway"}},
        "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
        "Composite": {"Type": "AWS::CloudWatch::CompositeAlarm", "Properties": {}},
    })
    (env,) = floor_report(out, hours_per_month=700)
    expected = (
        PRICES["nat_gateway"].usd * 700
        + 2 * PRICES["interface_endpoint"].usd * 700  # one endpoint network interface per subnet (AZ)
        + PRICES["secret"].usd
        + PRICES["composite_alarm"].usd
    )
    assert env.fixed_usd == pytest.approx(expected) and env.compute_usd == 0.0
    assert {line.label for line in env.lines} == {
        "NAT gateways", "Interface VPC endpoints", "Secrets Manager secrets", "CloudWatch composite alarms"
    }


def test_function_urls_are_a_zero_fixed_line(tmp_path):
    # GIVEN two score-by-id fronts (a function URL each) WHEN the floor is computed THEN they cost nothing idle
    out = one_env(tmp_path, {
        "FrontUrl1": {"Type": "AWS::Lambda::Url", "Properties": {"AuthType": "AWS_IAM", "TargetFunctionArn": "arn:1"}},
        "FrontUrl2": {"Type": "AWS::Lambda::Url", "Properties": {"AuthType": "AWS_IAM", "TargetFunctionArn": "arn:2"}},
    })
    (env,) = floor_report(out)
    (line,) = [line for line in env.lines if line.category == "fixed"]
    assert (line.label, line.monthly_usd, line.basis) == (
        "Lambda function URLs (score by id)", 0.0, "2: pay per request and duration, $0 with no traffic"
    )
    assert line.resources == ("FrontUrl1", "FrontUrl2") and env.fixed_usd == 0.0


@pytest.mark.synth
def test_real_app_score_by_id_fronts_cost_nothing_idle(synthesized):
    cfg = synthesized.config
    for env in floor_report(synthesized.outdir):
        config = cfg.environments[env.environment]
        fronts = [m for m in config.models if cfg.serving_of(config, cfg.models[m]).by_id.enabled]
        urls = [line for line in env.lines if line.label == "Lambda function URLs (score by id)"]
        assert len(urls) == (1 if fronts else 0)
        assert all(line.monthly_usd == 0.0 and len(line.resources) == len(fronts) for line in urls)


def test_provisioned_feature_store_throughput_is_an_unknown_price(tmp_path):
    out = one_env(tmp_path, {
        "Features": {
            "Type": "AWS::SageMaker::FeatureGroup",
            "Properties": {
                "OnlineStoreConfig": {"EnableOnlineStore": True},
                "ThroughputConfig": {"ThroughputMode": "Provisioned"},
            },
        }
    })
    (env,) = floor_report(out)
    assert env.unknown_prices == 1


# --------------------------------------------------------------------------------------
# CLI: delta, formats, bad input
# --------------------------------------------------------------------------------------
def _run_main(argv: list[str]) -> str:
    """stdout of the CLI run in a child process (also proves ``python -m`` works end to end)."""
    proc = _cli(argv)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _cli(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_loop.tools.cost_floor", *argv],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )


def _two_envs(root: Path, *, prod_resources: dict) -> Path:
    fixed = {"Key": {"Type": "AWS::KMS::Key", "Properties": {}}}
    prod = {"Storage": template(fixed), "Serving": template(prod_resources)}
    stages = {"dev": {"Storage": template(fixed)}, "prod": prod}
    return write_assembly(root, stages)


def test_base_assembly_delta_reports_the_change_per_environment(tmp_path, capsys):
    base = _two_envs(tmp_path / "base", prod_resources={
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn", mode="realtime"),
        "Config": instance_config("ml.m5.large", 1),
    })
    head = _two_envs(tmp_path / "head", prod_resources={
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn", mode="realtime"),
        "Config": instance_config("ml.m5.xlarge", 2),
        "Risk": endpoint("mlops-loop-prod-credit-risk", "RiskConfig", model="credit-risk", mode="serverless"),
        "RiskConfig": serverless_config(2048),
    })
    change = monthly("ml.m5.xlarge", 2) - monthly("ml.m5.large", 1)

    assert main([str(head), "--base-assembly", str(base), "--allow-stale"]) == 0
    text = capsys.readouterr().out
    assert f"prod: floor +${change:,.2f}/month" in text
    assert "dev: floor +$0.00/month" in text and "[unchanged]" in text

    assert main([str(head), "--base-assembly", str(base), "--format", "json", "--allow-stale"]) == 0
    delta = {d["environment"]: d for d in json.loads(capsys.readouterr().out)["delta"]}
    assert delta["prod"]["delta_compute_usd"] == pytest.approx(change, abs=0.01)
    lines = {(line["label"], line["status"]) for line in delta["prod"]["lines"]}
    assert lines == {("churn", "changed"), ("credit-risk", "added")}
    assert delta["dev"]["status"] == "unchanged" and delta["dev"]["lines"] == []

    # The reverse direction is the negative change, in markdown for a PR comment.
    assert main([str(base), "--base-assembly", str(head), "--format", "markdown", "--allow-stale"]) == 0
    assert f"**prod**: floor -${change:,.2f}/month" in capsys.readouterr().out


def test_environment_only_in_one_assembly_is_new_or_removed(tmp_path, capsys):
    base = write_assembly(tmp_path / "base", {"dev": {"Storage": template({})}})
    head = write_assembly(tmp_path / "head", {"prod": {"Serving": template({
        "Endpoint": endpoint("e", "Config"), "Config": instance_config("ml.m5.large", 1)})}})
    assert main([str(head), "--base-assembly", str(base), "--format", "json", "--allow-stale"]) == 0
    delta = {d["environment"]: d for d in json.loads(capsys.readouterr().out)["delta"]}
    assert delta["prod"]["status"] == "new"
    assert delta["prod"]["delta_total_usd"] == pytest.approx(monthly("ml.m5.large", 1), abs=0.01)
    assert delta["dev"]["status"] == "removed"
    # cdk deploy never deletes dev's stacks: removing it from the app changes nothing of the bill.
    assert (delta["dev"]["delta_total_usd"], delta["dev"]["left_running_usd"]) == (0.0, 0.0)


def _prod(stage: str = "prod") -> dict[str, dict[str, dict]]:
    """One environment: a key (fixed $1) and a real-time endpoint on one ml.m5.large."""
    return {stage: {
        "Storage": template({"Key": {"Type": "AWS::KMS::Key", "Properties": {}}}),
        "Serving": template({"Endpoint": endpoint(f"mlops-loop-{stage}-churn", "Config", model="churn", mode="realtime"),
                             "Config": instance_config("ml.m5.large", 1)}),
    }}


def _delta(head: Path, base: Path, capsys, fmt: str = "json"):
    assert main([str(head), "--base-assembly", str(base), "--format", fmt, "--allow-stale"]) == 0
    out = capsys.readouterr().out
    return {d["environment"]: d for d in json.loads(out)["delta"]} if fmt == "json" else out


def test_an_environment_moved_to_another_region_rises_by_its_new_floor_while_the_old_stacks_run_on(tmp_path, capsys):
    """GIVEN prod's stacks in eu-west-1 in the base and in eu-central-1 in the head WHEN the floor is compared THEN prod
    rises by its whole floor (cdk deploy creates the new stacks) and the old stacks' floor is reported as still running
    until deleted by hand, not netted against the new one."""
    base = write_assembly(tmp_path / "base", _prod())
    head = write_assembly(tmp_path / "head", _prod(), region="eu-central-1")
    compute = monthly("ml.m5.large", 1)
    floor = compute + PRICES["kms_key"].usd

    delta = _delta(head, base, capsys)["prod"]

    assert (delta["status"], delta["delta_total_usd"], delta["left_running_usd"]) == ("moved", round(floor, 2), round(floor, 2))
    assert delta["left_running_stacks"] == [
        {"stack": "mlops-loop-prod-storage", "environment": "aws://111111111111/eu-west-1"},
        {"stack": "mlops-loop-prod-serving", "environment": "aws://111111111111/eu-west-1"},
    ]
    assert {(line["label"], line["status"]) for line in delta["lines"]} == {("churn", "added"), ("KMS keys", "added")}
    text = _delta(head, base, capsys, "text")
    assert (f"  prod: floor +${floor:,.2f}/month (compute +${compute:,.2f}, fixed +$1.00); ceiling +${floor:,.2f}/month "
            "[moved]\n"
            f"    removed from the app, still running until deleted by hand: ${floor:,.2f}/month "
            "(mlops-loop-prod-storage, mlops-loop-prod-serving in aws://111111111111/eu-west-1)\n") in text
    markdown = _delta(head, base, capsys, "markdown")
    assert (f"- **prod**: floor +${floor:,.2f}/month (compute +${compute:,.2f}, fixed +$1.00); ceiling "
            f"+${floor:,.2f}/month\n"
            f"  - :warning: removed from the app, still running until deleted by hand: ${floor:,.2f}/month "
            "(mlops-loop-prod-storage, mlops-loop-prod-serving in aws://111111111111/eu-west-1)\n") in markdown


def test_a_renamed_environment_is_new_and_the_old_one_runs_on_instead_of_netting_to_zero(tmp_path, capsys):
    """GIVEN prod renamed production WHEN the floor is compared THEN production is new at its whole floor and prod,
    removed from the app, changes by $0 and is still running at its floor (the bill rises until it is deleted)."""
    base = write_assembly(tmp_path / "base", _prod())
    head = write_assembly(tmp_path / "head", _prod("production"))
    floor = round(monthly("ml.m5.large", 1) + PRICES["kms_key"].usd, 2)

    delta = _delta(head, base, capsys)

    assert (delta["production"]["status"], delta["production"]["delta_total_usd"]) == ("new", floor)
    assert "left_running_usd" not in delta["production"]
    prod = delta["prod"]
    assert (prod["status"], prod["delta_total_usd"], prod["lines"], prod["left_running_usd"]) == ("removed", 0.0, [], floor)
    assert (f"  prod: floor +$0.00/month (compute +$0.00, fixed +$0.00); ceiling +$0.00/month [removed]\n"
            "    removed from the app, still "
            f"running until deleted by hand: ${floor:,.2f}/month") in _delta(head, base, capsys, "text")


def test_a_project_rename_leaves_every_old_stack_running(tmp_path, capsys):
    """GIVEN the project renamed (new stack names, same account and region) WHEN compared THEN prod moved: its new
    stacks are the rise, its old ones are left running."""
    base = write_assembly(tmp_path / "base", _prod())
    head = write_assembly(tmp_path / "head", _prod(), project="churn-loop")

    delta = _delta(head, base, capsys)["prod"]

    assert (delta["status"], [s["stack"] for s in delta["left_running_stacks"]]) == (
        "moved", ["mlops-loop-prod-storage", "mlops-loop-prod-serving"])
    assert delta["delta_total_usd"] == delta["left_running_usd"] > 0


def test_a_stack_the_head_still_deploys_is_compared_as_before(tmp_path, capsys):
    """GIVEN the same stacks on both sides WHEN compared THEN nothing is left running (no such key, no such line)."""
    base = write_assembly(tmp_path / "base", _prod())

    delta = _delta(base, base, capsys)["prod"]

    assert delta["status"] == "unchanged" and "left_running_usd" not in delta
    assert "still running" not in _delta(base, base, capsys, "text")


def test_json_output_schema(tmp_path, capsys):
    out = _two_envs(tmp_path / "a", prod_resources={
        "Endpoint": endpoint("mlops-loop-prod-churn", "Config", model="churn", mode="realtime"),
        "Config": instance_config("ml.x99.huge", 1),
    })
    assert main([str(out), "--format", "json", "--hours-per-month", "720", "--allow-stale"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"schema_version", "assembly", "hours_per_month", "prices", "scheduled_assumptions",
                         "environments", "notes", "delta"}
    assert data["schema_version"] == 3 and data["hours_per_month"] == 720 and data["delta"] is None
    assert set(PRICES) <= set(data["prices"])
    assert [e["environment"] for e in data["environments"]] == ["dev", "prod"]
    env_keys = {
        "environment", "region", "compute_usd", "compute_before_approval_usd", "fixed_usd",
        "fixed_before_approval_usd", "total_usd", "scheduled_usd", "total_with_schedules_usd", "unknown_prices",
        "warnings", "lines", "compute_ceiling_usd", "ceiling_usd", "unknown_ceilings",
    }
    line_keys = {"category", "label", "mode", "basis", "monthly_usd", "stack", "resources", "variant", "once_deployed",
                 "ceiling_usd", "ceiling_basis", "team"}
    for env in data["environments"]:
        assert set(env) == env_keys and env["region"] == "eu-west-1"
        assert env["total_usd"] == pytest.approx(env["compute_usd"] + env["fixed_usd"])
        assert all(isinstance(env[k], float) for k in env_keys if k.endswith("_usd"))
        for line in env["lines"]:
            assert set(line) == line_keys
            assert line["category"] in ("compute", "fixed", "scheduled")
            assert line["monthly_usd"] is None or isinstance(line["monthly_usd"], (int, float))
    prod = data["environments"][1]
    assert prod["unknown_prices"] == 1
    assert [line["monthly_usd"] for line in prod["lines"] if line["category"] == "compute"] == [None]


def test_markdown_output_has_the_summary_table(tmp_path, capsys):
    out = _two_envs(tmp_path / "a", prod_resources={
        "Endpoint": endpoint("e", "Config"), "Config": instance_config("ml.m5.large", 1)})
    assert main([str(out), "--format", "markdown", "--allow-stale"]) == 0
    text = capsys.readouterr().out
    assert "| environment | region | compute $/month | before approval | fixed $/month | total $/month |" in text
    compute = monthly("ml.m5.large", 1)
    assert f"| prod | eu-west-1 | {compute:,.2f} | {compute:,.2f} |" in text


@pytest.mark.parametrize("make", ["missing", "empty", "garbage-manifest", "no-stacks"])
def test_a_directory_that_is_not_a_cloud_assembly_exits_2_with_a_message(tmp_path, make, capsys):
    """Through ``main`` in this process (a raised exception would fail the test: no traceback), and for one case
    through ``python -m`` too: the exit status is main's (a child process costs about 0.5 CPU-s)."""
    target = tmp_path / "cdk.out"
    if make != "missing":
        target.mkdir()
    if make == "garbage-manifest":
        (target / "manifest.json").write_text("not json")
    if make == "no-stacks":
        (target / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": {}}))
    assert main([str(target)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("cost_floor: ") and str(target) in err
    assert "Traceback" not in err and out == ""
    if make == "missing":
        proc = _cli([str(target)])
        assert (proc.returncode, proc.stderr, proc.stdout) == (2, err, "")


def test_a_bad_base_assembly_exits_2(tmp_path, capsys):
    out = _two_envs(tmp_path / "a", prod_resources={})
    assert main([str(out), "--base-assembly", str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a cloud assembly" in capsys.readouterr().err


@pytest.mark.parametrize("hours", ["0", "-5", "745", "many"])
def test_hours_per_month_out_of_range_exits_2(tmp_path, capsys, hours):
    out = _two_envs(tmp_path / "a", prod_resources={})
    with pytest.raises(SystemExit) as exit_info:
        main([str(out), "--hours-per-month", hours])
    assert exit_info.value.code == 2
    assert "--hours-per-month" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# The real app
# --------------------------------------------------------------------------------------
@pytest.mark.synth
def test_the_sample_dev_environment_idles_at_zero_compute(sample):
    """Serverless models without provisioned concurrency cost nothing while idle, once every version is deployed too."""
    dev = next(env for env in floor_report(sample.outdir) if env.environment == "dev")
    assert dev.compute_usd == 0.0 and dev.compute_before_approval_usd == 0.0


@pytest.mark.synth
def test_real_app_every_environment_appears_with_known_prices_and_nothing_serving_before_approval(synthesized):
    report = floor_report(synthesized.outdir)
    assert [env.environment for env in report] == list(synthesized.config.environments)
    for env in report:
        config = synthesized.config.environments[env.environment]
        assert env.region == config.region
        assert env.unknown_prices == 0, [line.basis for line in env.lines if line.monthly_usd is None]
        assert env.warnings == []
        # Before any approval nothing serves: every endpoint is conditioned on an approved version.
        assert env.compute_before_approval_usd == 0.0
        kms = [line for line in env.lines if line.label == "KMS keys"]
        assert len(kms) == 1 and kms[0].monthly_usd > 0
        assert {line.label for line in env.lines if line.category == "compute"} <= set(config.models)


@pytest.mark.synth
def test_real_app_every_served_model_has_a_floor_line(synthesized):
    report = floor_report(synthesized.outdir)
    cfg = synthesized.config
    for env in report:
        config = cfg.environments[env.environment]
        compute = [line for line in env.lines if line.category == "compute"]
        assert {(line.label, line.mode) for line in compute} == {
            (m, cfg.serving_of(config, cfg.models[m]).mode) for m in config.models
        }
    by_name = {env.environment: env for env in report}
    # prod: churn 2 x ml.m5.xlarge always on (autoscaling minimum) + credit-risk's provisioned concurrency.
    prod = cfg.environments["prod"]
    churn = cfg.serving_of(prod, cfg.models["churn"]).realtime
    from mlops_loop.config.instance_types import INSTANCE_TYPES

    churn_line = next(line for line in by_name["prod"].lines if line.label == "churn")
    assert churn_line.monthly_usd == pytest.approx(churn.autoscaling.min_instances * INSTANCE_TYPES[churn.instance_type].usd_per_hour * 730)
    assert by_name["prod"].compute_usd > churn_line.monthly_usd


@pytest.mark.synth
def test_real_app_every_autoscaled_real_time_endpoint_idles_at_its_minimum_with_its_ceiling_shown(synthesized):
    """GIVEN every environment's real-time models that autoscale, whatever the line-up WHEN the floor is read THEN each
    costs min_instances (the serving stack scales it in after an idle hour) and shows max_instances as its ceiling."""
    from mlops_loop.config.instance_types import INSTANCE_TYPES

    cfg = synthesized.config
    for env in floor_report(synthesized.outdir):
        config = cfg.environments[env.environment]
        for model in config.models:
            serving = cfg.serving_of(config, cfg.models[model])
            if serving.mode != "realtime" or serving.realtime.autoscaling is None:
                continue
            rt, scaling = serving.realtime, serving.realtime.autoscaling
            (line,) = [c for c in env.lines if c.category == "compute" and c.label == model]
            rate = INSTANCE_TYPES[rt.instance_type].usd_per_hour
            assert line.basis.startswith(f"{scaling.min_instances} x {rt.instance_type} "
                                         "(autoscaling MinCapacity: scaled in when idle) x 730 h"), line.basis
            assert line.ceiling_usd == pytest.approx(scaling.max_instances * rate * 730), line.ceiling_basis
            assert line.monthly_usd == pytest.approx(scaling.min_instances * rate * 730)


def _team_endpoint(name: str, config_id: str, model: str, team: str | None) -> dict:
    resource = endpoint(name, config_id, model=model, mode="realtime")
    if team:
        resource["Properties"]["Tags"] = [{"Key": "project", "Value": "mlops-loop"}, {"Key": TEAM_TAG, "Value": team}]
    return resource


def test_each_teams_endpoints_are_subtotalled_from_their_team_tag(tmp_path, capsys):
    """GIVEN endpoints of two teams (``mlops-loop:team``, set by ``models.<model>.owner``) and one of no team WHEN the
    floor is read THEN each compute line names its team (JSON ``team``, null without), and the text gives one subtotal
    per team (floor and ceiling, with its models); a model of no team is in none."""
    out = one_env(tmp_path, {
        "FraudEndpoint": _team_endpoint("mlops-loop-prod-fraud", "FraudConfig", "fraud", "fraud"),
        "FraudConfig": instance_config("ml.m5.large", 2),
        "ChurnEndpoint": _team_endpoint("mlops-loop-prod-churn", "ChurnConfig", "churn", "marketing"),
        "ChurnConfig": instance_config("ml.c5.xlarge", 1),
        "EtaEndpoint": _team_endpoint("mlops-loop-prod-eta", "EtaConfig", "eta", None),
        "EtaConfig": instance_config("ml.m5.large", 1),
    })
    (env,) = floor_report(out)
    assert {line.label: line.team for line in compute_lines(env)} == {"fraud": "fraud", "churn": "marketing", "eta": None}
    assert main([str(out), "--allow-stale"]) == 0
    text = capsys.readouterr().out
    assert f"  team fraud: {monthly('ml.m5.large', 2):,.2f} $/mo compute (fraud)" in text
    assert f"  team marketing: {monthly('ml.c5.xlarge', 1):,.2f} $/mo compute (churn)" in text
    assert "team None" not in text and "(eta)" not in text
    assert main([str(out), "--format", "json", "--allow-stale"]) == 0
    lines = json.loads(capsys.readouterr().out)["environments"][0]["lines"]
    assert {line["label"]: line["team"] for line in lines if line["category"] == "compute"} == {
        "fraud": "fraud", "churn": "marketing", "eta": None}

"""endpoint_fleet, built in a bare stack: blue/green rollouts with alarm rollback, and conditional autoscaling."""

from __future__ import annotations

import re

import pytest
from aws_cdk import CfnCondition, CfnParameter, Environment, Fn, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.config.serving import RealtimeAutoscaling, Rollout
from mlops_loop.constructs.access_policy import AccessPolicy
from mlops_loop.constructs.endpoint_fleet import (
    IDLE_SCALE_IN_MINUTES,
    MIN_ROLLOUT_REQUESTS_PER_MINUTE,
    allow_reading_rollback_alarms,
    blue_green,
    idle_scale_in_alarm_name,
    invocations_scaling,
    rollback_alarm_names,
    rollback_alarms,
    target_tracking,
    traffic_routing,
)
from tests.support.alarm_eval import DAY, HOUR, MINUTE, MetricAlarm, Replay, Series, replay, replay_inputs
from tests.support.built_stack import acknowledged
from tests.support.cdk_outdirs import bare_outdir

ENDPOINT = "shop-dev-churn"
# The endpoint's client-error setting (ServingAlarms.max_client_error_rate_percent), not its default: the rollback
# alarm must take the setting it is given.
CLIENT_ERRORS = 7.5


def _stack() -> tuple[Stack, CfnCondition]:
    """GIVEN a bare stack with a version parameter and the condition that it is set."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    parameter = CfnParameter(stack, "ChurnModelPackageArn", type="String", default="")
    condition = CfnCondition(stack, "ChurnDeployed", expression=Fn.condition_not(Fn.condition_equals(parameter.value_as_string, "")))
    return stack, condition


def _endpoint(rollout: Rollout) -> tuple[Stack, dict, dict[str, dict]]:
    """WHEN an endpoint rolls out per ``rollout`` with its rollback alarms THEN its template and the alarms by name."""
    stack, condition = _stack()
    alarms = rollback_alarms(stack, endpoint_name=ENDPOINT, rollout=rollout, max_client_error_rate_percent=CLIENT_ERRORS,
                             condition=condition)
    sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_name=ENDPOINT, endpoint_config_name="config",
                          deployment_config=blue_green(rollout, alarms))
    template = Template.from_stack(stack)
    (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
    by_name = {a["Properties"]["AlarmName"]: a for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    return stack, endpoint["Properties"]["DeploymentConfig"], by_name


def _by_path(stack: Stack) -> dict[str, dict[str, str]]:
    """Every acknowledged cdk-nag finding, by the path of the construct it was acknowledged on."""
    return {c.node.path: acknowledged(c) for c in stack.node.find_all() if acknowledged(c)}


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        (Rollout(strategy="canary", canary_percent=25, wait_minutes=7),
         {"Type": "CANARY", "WaitIntervalInSeconds": 420, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}}),
        (Rollout(strategy="linear", linear_step_percent=30, wait_minutes=4),
         {"Type": "LINEAR", "WaitIntervalInSeconds": 240, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 30}}),
        (Rollout(strategy="all_at_once", wait_minutes=0), {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}),
    ],
    ids=["canary", "linear", "all_at_once"],
)
def test_traffic_shifts_as_the_rollout_strategy_says_and_bakes_its_wait(rollout, expected):
    stack, _ = _stack()
    sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_config_name="config", deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(traffic_routing_configuration=traffic_routing(rollout))))
    (endpoint,) = Template.from_stack(stack).find_resources("AWS::SageMaker::Endpoint").values()
    assert endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == expected


def test_a_blue_green_update_rolls_back_on_any_rollback_alarm_within_the_rollout_timeout():
    rollout = Rollout(strategy="linear", linear_step_percent=20, wait_minutes=5, termination_wait_minutes=3)
    stack, config, _ = _endpoint(rollout)
    policy = config["BlueGreenUpdatePolicy"]
    assert policy["TerminationWaitInSeconds"] == 180
    # Five linear steps of five minutes, three minutes before tear-down and thirty for the fleet.
    assert policy["MaximumExecutionTimeoutInSeconds"] == 5 * 300 + 180 + 1800
    alarm_ids = [{"Ref": stack.get_logical_id(stack.node.find_child(c).node.default_child)}
                 for c in ("RolloutErrors", "RolloutLatency", "RolloutClientErrors")]
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": a} for a in alarm_ids]}


def test_the_rollback_alarms_watch_the_new_fleet_at_the_rollout_thresholds_and_exist_only_with_the_endpoint():
    _, _, alarms = _endpoint(Rollout(max_error_rate_percent=2.0, max_latency_p99_ms=300))
    errors_name, latency_name, client_errors_name = rollback_alarm_names(ENDPOINT)
    assert (errors_name, latency_name, client_errors_name) == (
        f"{ENDPOINT}-rollout-errors", f"{ENDPOINT}-rollout-latency", f"{ENDPOINT}-rollout-client-errors")
    assert set(alarms) == {errors_name, latency_name, client_errors_name}
    errors, latency, client_errors = alarms[errors_name], alarms[latency_name], alarms[client_errors_name]
    assert errors["Properties"]["Threshold"] == 2.0
    assert errors["Properties"]["Metrics"][0]["Expression"] == "100 * errors"
    assert (latency["Properties"]["MetricName"], latency["Properties"]["Threshold"]) == ("ModelLatency", 300_000)
    for alarm in (errors, latency, client_errors):
        assert alarm["Condition"] == "ChurnDeployed"
        props = alarm["Properties"]
        # 2 of 3 minutes for errors and latency; the 4xx rate's own window is tested below.
        assert (props["EvaluationPeriods"], props["DatapointsToAlarm"]) == ((3, 3) if alarm is client_errors else (3, 2))
        assert props["TreatMissingData"] == "notBreaching"
        # SageMaker's rollback is the action; people hear of it from the failed-update notification.
        assert "AlarmActions" not in props


def test_a_rollout_rolls_back_on_the_4xx_rate_at_the_endpoints_client_error_setting_in_three_busy_minutes():
    """GIVEN an endpoint whose callers may send up to CLIENT_ERRORS % bad requests WHEN its rollback alarms are made
    THEN the client-error one fires only above that rate, in 3 consecutive minutes of at least
    MIN_ROLLOUT_REQUESTS_PER_MINUTE requests each, counted from Invocation4XXErrors of the endpoint's variant (Sum:
    4xx answers, SampleCount: all requests, as async endpoints publish no Invocations); a minute without enough
    traffic is no data point and missing data does not breach; it notifies no one."""
    _, _, alarms = _endpoint(Rollout())
    props = alarms[f"{ENDPOINT}-rollout-client-errors"]["Properties"]
    assert (props["Threshold"], props["ComparisonOperator"]) == (CLIENT_ERRORS, "GreaterThanThreshold")
    assert (props["EvaluationPeriods"], props["DatapointsToAlarm"], props["TreatMissingData"]) == (3, 3, "notBreaching")
    assert not {"AlarmActions", "OKActions", "InsufficientDataActions"} & set(props)
    assert "MetricName" not in props and "Statistic" not in props
    metrics = {m["Id"]: m for m in props["Metrics"]}
    (expression,) = [m for m in props["Metrics"] if "Expression" in m]
    assert MIN_ROLLOUT_REQUESTS_PER_MINUTE == 20
    assert expression["Expression"] == "IF(requests >= 20, 100 * errors / requests)"
    assert expression["ReturnData"] is True
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]
    for metric_id, stat in (("errors", "Sum"), ("requests", "SampleCount")):
        assert metrics[metric_id]["MetricStat"] == {
            "Metric": {"Dimensions": dimensions, "MetricName": "Invocation4XXErrors", "Namespace": "AWS/SageMaker"},
            "Period": 60, "Stat": stat}
        assert metrics[metric_id]["ReturnData"] is False
    assert set(metrics) == {"errors", "requests", expression["Id"]}
    description = props["AlarmDescription"]
    assert description.startswith(f"Rolls back a deployment of {ENDPOINT}: 4xx responses above 7.5% of requests in 3 "
                                  "consecutive minutes of at least 20 requests each")
    assert "Notifies no one" in description


# ------------------------------------------------------------------ the 4xx rollback alarm replayed over a bake
# tests/support/alarm_eval.py does not model metric math: the synthesized expression (its one form, checked) is applied
# per minute here as CloudWatch documents IF without a false branch (no data point where the condition fails) and
# missing inputs (no requests: no data point), and its output replayed as the alarm's one metric.
_GUARDED = re.compile(r"^IF\(requests >= (\d+), 100 \* errors / requests\)$")
BAKE = 10 * MINUTE


def _client_errors_replay(traffic, extra: int) -> list[str]:
    """The rollout client-error alarm's states, every minute of a 10-minute bake, for ``traffic(minute)`` = (requests,
    4xx answers) of the endpoint in that minute."""
    _, _, alarms = _endpoint(Rollout())
    props = alarms[f"{ENDPOINT}-rollout-client-errors"]["Properties"]
    (expression,) = [m["Expression"] for m in props["Metrics"] if "Expression" in m]
    minimum = int(_GUARDED.match(expression).group(1))
    points = []
    for minute in range(BAKE // MINUTE):
        requests, refused = traffic(minute)
        if requests and requests >= minimum:
            points.append((minute * MINUTE, 100 * refused / requests))
    alarm = MetricAlarm(name=props["AlarmName"], statistic="Maximum", period=60, evaluation_periods=props["EvaluationPeriods"],
                        datapoints_to_alarm=props["DatapointsToAlarm"], threshold=props["Threshold"],
                        comparison=props["ComparisonOperator"], treat_missing=props["TreatMissingData"])
    return list(replay(alarm, Series(points), MINUTE, BAKE + MINUTE, extra=extra).states)


@pytest.mark.parametrize("extra", [1, 2])
@pytest.mark.parametrize("requests", [100, 20], ids=["busy", "just-enough-traffic"])
def test_replayed_a_version_that_refuses_its_callers_requests_rolls_back_within_the_bake(requests, extra):
    """GIVEN ``requests`` a minute, 3% of them bad as callers always send, WHEN the new version also refuses a field
    its callers send (a quarter of the requests) THEN the alarm is in ALARM after the third such minute."""
    states = _client_errors_replay(lambda minute: (requests, round(requests * 0.28)), extra)
    assert "ALARM" in states and states.index("ALARM") + 1 <= 4


@pytest.mark.parametrize("extra", [1, 2])
@pytest.mark.parametrize(
    "traffic",
    [
        lambda minute: (100, 7),                                  # callers' usual bad requests, under the 7.5% setting
        lambda minute: (0, 0),                                    # no traffic during the bake
        lambda minute: (19, 19),                                  # a tiny bake: every request refused, never 20 a minute
        lambda minute: (100, 40) if minute in (2, 4, 6) else (100, 3),  # high minutes, never three in a row
        lambda minute: (100, 40) if minute < 2 else (5, 5),       # two busy bad minutes, then too little traffic to count
    ],
    ids=["usual-bad-requests", "no-traffic", "tiny-bake", "scattered-minutes", "two-minutes-then-quiet"],
)
def test_replayed_a_normal_or_quiet_rollout_never_rolls_back_on_client_errors(traffic, extra):
    assert "ALARM" not in _client_errors_replay(traffic, extra)


def test_the_missing_alarm_action_is_acknowledged_on_each_rollback_alarm_only():
    stack, _, _ = _endpoint(Rollout())
    assert {path: set(rules) for path, rules in _by_path(stack).items()} == {
        "Bare/RolloutErrors": {"NIST.800.53.R5-CloudWatchAlarmAction"},
        "Bare/RolloutLatency": {"NIST.800.53.R5-CloudWatchAlarmAction"},
        "Bare/RolloutClientErrors": {"NIST.800.53.R5-CloudWatchAlarmAction"},
    }


def test_the_execution_role_may_describe_exactly_the_three_rollback_alarms():
    stack, _ = _stack()
    access = AccessPolicy(stack, "Access", role=iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
                          description="serving")
    allow_reading_rollback_alarms(access, ENDPOINT)
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [{
        "Sid": "ReadRollbackAlarms",
        "Effect": "Allow",
        "Action": "cloudwatch:DescribeAlarms",
        # AccessPolicy lists resources sorted.
        "Resource": [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-client-errors",
                     f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-errors",
                     f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-latency"],
    }]


def test_a_compiled_model_also_rolls_back_on_its_parity_verdict_and_its_role_may_read_that_alarm():
    """GIVEN an endpoint serving a network compiled for Inferentia2 WHEN its rollback alarms are made THEN a third one
    watches the parity check's metric for this endpoint (a 1 in any of the last 5 minutes rolls back; no data is no
    verdict), it
    is in the endpoint's auto-rollback list, and the execution role may describe it too."""
    stack, condition = _stack()
    alarms = rollback_alarms(stack, endpoint_name=ENDPOINT, rollout=Rollout(), max_client_error_rate_percent=CLIENT_ERRORS,
                             condition=condition, parity=True)
    sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_name=ENDPOINT, endpoint_config_name="config",
                          deployment_config=blue_green(Rollout(), alarms))
    access = AccessPolicy(stack, "Access", role=iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
                          description="serving")
    allow_reading_rollback_alarms(access, ENDPOINT, parity=True)
    template = Template.from_stack(stack)
    by_name = {a["Properties"]["AlarmName"]: a for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    assert rollback_alarm_names(ENDPOINT, parity=True)[3] == f"{ENDPOINT}-rollout-parity"
    parity = by_name[f"{ENDPOINT}-rollout-parity"]
    props = parity["Properties"]
    assert (props["Namespace"], props["MetricName"], props["Statistic"], props["Period"]) == (
        f"{ENDPOINT}/rollout", "ParityMismatch", "Maximum", 60)
    assert props["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}]
    assert (props["Threshold"], props["ComparisonOperator"], props["EvaluationPeriods"], props["DatapointsToAlarm"]) == (
        1, "GreaterThanOrEqualToThreshold", 5, 1)
    assert props["TreatMissingData"] == "notBreaching" and parity["Condition"] == "ChurnDeployed"
    (endpoint,) = template.find_resources("AWS::SageMaker::Endpoint").values()
    assert {"AlarmName": {"Ref": stack.get_logical_id(stack.node.find_child("RolloutParity").node.default_child)}} in \
        endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["PolicyDocument"]["Statement"][0]["Resource"][3] == \
        f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{ENDPOINT}-rollout-parity"
    assert "Bare/RolloutParity" in _by_path(stack)


def _scaled(scaling: RealtimeAutoscaling) -> tuple[Stack, dict, dict[str, dict], str, dict]:
    """WHEN an endpoint's variant is scaled per ``scaling`` THEN its template's scalable target (with its ``id``), its
    policies by name, the endpoint's logical id and its alarms by name."""
    stack, condition = _stack()
    endpoint = sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_name=ENDPOINT, endpoint_config_name="config")
    endpoint.cfn_options.condition = condition
    invocations_scaling(stack, endpoint_name=ENDPOINT, endpoint=endpoint, scaling=scaling, condition=condition)
    template = Template.from_stack(stack)
    (target_id, target), = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").items()
    policies = {p["Properties"]["PolicyName"]: {"id": k, **p}
                for k, p in template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").items()}
    alarms = {a["Properties"]["AlarmName"]: a for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    return stack, {"id": target_id, **target}, policies, stack.get_logical_id(endpoint), alarms


SCALING = RealtimeAutoscaling(min_instances=2, max_instances=6, target_invocations_per_instance=150,
                              scale_in_cooldown_seconds=600, scale_out_cooldown_seconds=30)
IDLE = f"{ENDPOINT}-idle-scale-in"


def test_autoscaling_tracks_invocations_per_instance_of_the_one_variant_between_the_bounds():
    _, target, policies, endpoint_id, _ = _scaled(SCALING)
    assert target["Properties"] == {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{ENDPOINT}/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": 2,
        "MaxCapacity": 6,
    }
    # The variant exists only once the endpoint does.
    assert target["DependsOn"] == [endpoint_id]
    assert set(policies) == {f"{ENDPOINT}-invocations-per-instance", IDLE}
    props = policies[f"{ENDPOINT}-invocations-per-instance"]["Properties"]
    assert props["PolicyType"] == "TargetTrackingScaling"
    assert props["ScalingTargetId"] == {"Ref": target["id"]}
    assert props["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 150, "ScaleInCooldown": 600, "ScaleOutCooldown": 30,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    }


def test_every_scaling_resource_exists_only_while_the_endpoint_does():
    _, target, policies, _, alarms = _scaled(RealtimeAutoscaling())
    assert {r["Condition"] for r in (target, *policies.values(), *alarms.values())} == {"ChurnDeployed"}
    assert len(policies) == 2 and len(alarms) == 1


# ------------------------------------------------------------------ the idle scale-in
def test_an_idle_variant_is_set_to_exactly_its_minimum_by_a_step_policy_on_the_same_target():
    """GIVEN autoscaling 2-6 with a 600 s scale-in cooldown WHEN the variant is scaled THEN a step policy named
    ``<endpoint>-idle-scale-in`` on the same scalable target sets exactly 2 instances, whatever value its alarm reports
    (one step on each side of the threshold: a step may not leave both bounds open), waiting the scale-in cooldown
    before another scale-in."""
    _, target, policies, _, _ = _scaled(SCALING)
    props = policies[IDLE]["Properties"]
    assert (props["PolicyType"], props["ScalingTargetId"]) == ("StepScaling", {"Ref": target["id"]})
    assert props["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ExactCapacity",
        "MetricAggregationType": "Maximum",
        "Cooldown": 600,
        "StepAdjustments": [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 2},
                            {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}],
    }


def test_the_idle_alarm_runs_the_step_policy_after_an_hour_of_running_instances_without_requests_and_notifies_no_one():
    """GIVEN a scaled variant WHEN its template is read THEN ``<endpoint>-idle-scale-in`` reads, per minute, the variant's
    requests (``Invocations`` Sum) where its instances reported (``CPUUtilization`` SampleCount in SageMaker's instance
    namespace), 0 in a minute of running instances without a request, and is in ALARM when each of the 60 minutes of
    the hour holds such a 0; a minute without instance data does not breach (a new endpoint has none before it runs);
    its one action is the step policy (no SNS topic: it pages no one)."""
    _, _, policies, _, alarms = _scaled(SCALING)
    assert IDLE_SCALE_IN_MINUTES == 60 and set(alarms) == {IDLE} == {idle_scale_in_alarm_name(ENDPOINT)}
    props = alarms[IDLE]["Properties"]
    dimensions = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]
    assert props["Metrics"] == [
        {"Id": "instances", "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "/aws/sagemaker/Endpoints", "MetricName": "CPUUtilization", "Dimensions": dimensions},
            "Period": 60, "Stat": "SampleCount"}},
        {"Id": "invocations", "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations", "Dimensions": dimensions},
            "Period": 60, "Stat": "Sum"}},
        {"Id": "requests", "Expression": "IF(instances, invocations, 0)", "Label": "Requests while instances ran (none: 0)",
         "ReturnData": True},
    ]
    assert (props["EvaluationPeriods"], props["DatapointsToAlarm"], props["Threshold"], props["ComparisonOperator"]) == (
        60, 60, 0, "LessThanOrEqualToThreshold")
    # CloudWatch's limit for periods under an hour: Period x EvaluationPeriods at most a day.
    assert 60 * props["EvaluationPeriods"] <= DAY
    assert props["TreatMissingData"] == "notBreaching"
    assert props["AlarmActions"] == [{"Ref": policies[IDLE]["id"]}]
    assert not {"OKActions", "InsufficientDataActions"} & set(props)
    assert props["AlarmDescription"].endswith("Notifies no one")


def test_the_idle_alarm_is_no_rollback_alarm():
    """GIVEN a scaled endpoint rolled out blue/green WHEN SageMaker reads its auto-rollback alarms THEN the idle alarm is
    not among them: an idle hour during a bake is no verdict on the version."""
    stack, condition = _stack()
    alarms = rollback_alarms(stack, endpoint_name=ENDPOINT, rollout=Rollout(), max_client_error_rate_percent=CLIENT_ERRORS,
                             condition=condition)
    endpoint = sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_name=ENDPOINT, endpoint_config_name="config",
                                     deployment_config=blue_green(Rollout(), alarms))
    scaled = invocations_scaling(stack, endpoint_name=ENDPOINT, endpoint=endpoint, scaling=SCALING, condition=condition)
    assert scaled.alarm_names == (IDLE,)
    assert IDLE not in rollback_alarm_names(ENDPOINT, parity=True)
    (config,) = Template.from_stack(stack).find_resources("AWS::SageMaker::Endpoint").values()
    rollback = config["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert {"AlarmName": {"Ref": stack.get_logical_id(scaled.idle_alarm)}} not in rollback and len(rollback) == 3


# ------------------------------------------------------------------ the idle alarm replayed (tests/support/alarm_eval.py)
# The synthesized alarm over its two metrics: instances report CPUUtilization every minute they run, whatever the
# traffic (one point per instance); SageMaker publishes an Invocations point only in a minute with requests. CloudWatch
# runs the step policy at every evaluation in ALARM (scaling_actions), not only on entering it.
INSTANCES = 2


def _idle_replay(requests_at: list[float], end: float, *, extra: int, running_from: float = 0.0) -> Replay:
    """The idle alarm every minute from 0 to ``end`` for an endpoint whose instances run from ``running_from`` (before
    it: no instance data, as while SageMaker creates the endpoint) and one request at each time of ``requests_at``."""
    _, _, _, _, alarms = _scaled(SCALING)
    alarm = MetricAlarm.from_properties(alarms[IDLE]["Properties"])
    first = int(running_from // MINUTE) * MINUTE
    cpu = Series([(float(t) + 5, 3.0) for t in range(first, int(end), MINUTE) for _ in range(INSTANCES)])
    return replay_inputs(alarm, {"instances": cpu, "invocations": Series([(t, 1.0) for t in requests_at])}, MINUTE, end,
                         extra=extra)


def _every_minute(start: float, end: float) -> list[float]:
    return [float(t) + 30 for t in range(int(start), int(end), MINUTE)]


EXTRA = pytest.mark.parametrize("extra", [1, 3])


@EXTRA
def test_replayed_a_new_endpoint_keeps_its_instances_until_its_first_callers_arrive(extra):
    """GIVEN an endpoint just created (no metric history at all), running from minute 8, whose launch traffic starts at
    minute 20 WHEN the alarm is replayed THEN it never runs the step policy: the instance_count it started with meets
    its first callers (the defect: with missing data breaching it was in ALARM at its first evaluation and set the
    minimum every minute)."""
    run = _idle_replay(_every_minute(20 * MINUTE, 2 * HOUR), 2 * HOUR, extra=extra, running_from=8 * MINUTE)
    assert run.scaling_actions() == [] and "ALARM" not in run.states


@EXTRA
def test_replayed_an_endpoint_nobody_calls_is_scaled_in_after_an_hour_of_running(extra):
    """GIVEN an endpoint running from minute 8 that receives no request WHEN the alarm is replayed THEN the step policy
    first runs an hour after the instances started, not before, and again every minute while nobody calls."""
    run = _idle_replay([], 3 * HOUR, extra=extra, running_from=8 * MINUTE)
    actions = run.scaling_actions()
    assert 8 * MINUTE + HOUR <= actions[0] <= 8 * MINUTE + HOUR + 2 * MINUTE
    assert actions == list(range(int(actions[0]), 3 * HOUR, MINUTE))


@EXTRA
def test_replayed_a_burst_then_silence_scales_in_an_hour_after_the_last_request_not_before(extra):
    """GIVEN requests every minute for 2 hours, then none for 3 hours WHEN the alarm is replayed THEN it stays OK while
    requests come and for the hour after the last one, then runs the step policy every minute."""
    last = 2 * HOUR + 30
    run = _idle_replay(_every_minute(0, 2 * HOUR + MINUTE), 5 * HOUR, extra=extra)
    assert all(run.state_at(t) == "OK" for t in range(HOUR, 3 * HOUR, MINUTE))
    actions = run.scaling_actions()
    assert last + HOUR <= actions[0] <= last + HOUR + 2 * MINUTE
    assert actions == list(range(int(actions[0]), 5 * HOUR, MINUTE)) and len(run.pages()) == 1


@EXTRA
def test_replayed_a_request_now_and_then_keeps_the_variant_as_target_tracking_left_it(extra):
    """GIVEN one request every 50 minutes for a day WHEN the alarm is replayed THEN the step policy never runs: a lull
    is not idleness."""
    run = _idle_replay([float(t) for t in range(0, DAY, 50 * MINUTE)], DAY, extra=extra)
    assert run.scaling_actions() == [] and set(run.states) == {"OK"}


@EXTRA
def test_replayed_traffic_resuming_after_idleness_stops_the_step_policy_within_two_minutes(extra):
    """GIVEN an endpoint idle for 3 hours (at its minimum, the step policy running every minute) WHEN requests resume at
    3 h THEN the alarm is OK again, and the step policy no longer runs, within two minutes of the first request, so
    target tracking scales out as before."""
    resumed = 3 * HOUR
    run = _idle_replay(_every_minute(resumed, 4 * HOUR), 4 * HOUR, extra=extra)
    actions = run.scaling_actions()
    assert actions[0] <= HOUR + 2 * MINUTE and resumed - MINUTE in actions
    assert max(actions) < resumed + 2 * MINUTE
    assert all(run.state_at(t) == "OK" for t in range(resumed + 2 * MINUTE, 4 * HOUR, MINUTE))


def test_target_tracking_passes_any_metric_specification_through():
    """GIVEN a custom metric (as an async endpoint's backlog) THEN the policy tracks it, conditional like the target."""
    stack, condition = _stack()
    target = autoscaling.CfnScalableTarget(stack, "Target", service_namespace="sagemaker", resource_id="endpoint/x/variant/AllTraffic",
                                           scalable_dimension="sagemaker:variant:DesiredInstanceCount", min_capacity=0, max_capacity=2)
    metric = autoscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
        metric_name="ApproximateBacklogSizePerInstance", namespace="AWS/SageMaker", statistic="Average",
        dimensions=[autoscaling.CfnScalingPolicy.MetricDimensionProperty(name="EndpointName", value="x")])
    target_tracking(stack, "Backlog", policy_name="x-backlog", target=target, value=5.0, scale_in=600, scale_out=60,
                    condition=condition, customized_metric_specification=metric)
    (policy,) = Template.from_stack(stack).find_resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    config = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert config["CustomizedMetricSpecification"]["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert (config["TargetValue"], config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (5, 600, 60)
    assert "PredefinedMetricSpecification" not in config
    assert policy["Condition"] == "ChurnDeployed" and policy["Properties"]["PolicyName"] == "x-backlog"

"""The pieces every instance-backed endpoint shares: blue/green rollout with alarm rollback, and
autoscaling of its one variant (target tracking, and a scale-in to its minimum when no request comes).

Used by :class:`~.served_model.ServedModel` (one model per endpoint) and
:class:`~.multi_model_endpoint.MultiModelEndpoint` (many models on one fleet). Every resource made
here carries the caller's condition, so it exists only while the endpoint does.
"""

from __future__ import annotations

from typing import NamedTuple

from aws_cdk import ArnFormat, CfnCondition, CfnResource, Duration, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_code.core.compiled import PARITY_METRIC, parity_alarm_name
from pipeline_code.core.contract import VARIANT, parity_namespace

from ..config.serving import RealtimeAutoscaling, Rollout
from ..nag import acknowledge
from .access_policy import AccessPolicy

from .arns import format_arn
from .endpoint_metrics import HOST_NAMESPACE, INVOCATION_NAMESPACE, endpoint_metric, error_rate, guarded_error_rate

# The fewest requests a minute of a rollout must hold for its 4xx rate to count towards a rollback (RolloutClientErrors):
# with fewer, one or two of callers' usual bad requests would already be a rate over the threshold.
MIN_ROLLOUT_REQUESTS_PER_MINUTE = 20
# Consecutive such minutes over the threshold that roll back: callers' own bad requests are background noise a
# 5xx rate does not have, so one high minute among three is not enough.
CLIENT_ERROR_MINUTES = 3

# How long a real-time variant's instances must run without a single request before it is scaled in to its minimum:
# target tracking never scales in on no data (Application Auto Scaling User Guide, target tracking considerations), so
# without this an idle endpoint keeps whatever it started with or a burst scaled it to. An hour: a lull between requests
# is not idleness, and an instance more for an hour costs less than a cold scale-out in front of the next caller.
IDLE_SCALE_IN_MINUTES = 60
# The idle alarm's period: one minute, SageMaker's publishing interval for both metrics it reads, so the first request
# clears the alarm within a minute or two (60 periods make the hour; 60 x 60 s is well inside CloudWatch's one-day
# limit on Period x EvaluationPeriods for periods under an hour).
IDLE_PERIOD_SECONDS = 60
# The idle alarm's expression: for each minute in which the variant's instances reported (CPUUtilization's SampleCount,
# one point per instance per minute whatever the traffic), its requests, or 0 without any; no point at all in a minute
# without instances. CloudWatch's metric math: IF(metric1, metric2, scalar3) is metric2's value where metric1 is true,
# 0 where metric1 is true and metric2 has no point, and dropped where metric1 has no point.
IDLE_EXPRESSION = "IF(instances, invocations, 0)"


def traffic_routing(rollout: Rollout) -> sagemaker.CfnEndpoint.TrafficRoutingConfigProperty:
    """How a blue/green update shifts traffic: canary, linear steps or all at once, baking ``wait_minutes``."""
    wait = rollout.wait_minutes * 60
    if rollout.strategy == "canary":
        return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type="CANARY",
            wait_interval_in_seconds=wait,
            canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT", value=rollout.canary_percent),
        )
    if rollout.strategy == "linear":
        return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type="LINEAR",
            wait_interval_in_seconds=wait,
            linear_step_size=sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT", value=rollout.linear_step_percent),
        )
    return sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(type="ALL_AT_ONCE", wait_interval_in_seconds=wait)


def blue_green(rollout: Rollout, alarms: list[cloudwatch.Alarm]) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
    """Blue/green updates per ``rollout`` that roll back when any of ``alarms`` fires."""
    return sagemaker.CfnEndpoint.DeploymentConfigProperty(
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=traffic_routing(rollout),
            termination_wait_in_seconds=rollout.termination_wait_minutes * 60,
            maximum_execution_timeout_in_seconds=rollout.timeout_seconds,
        ),
        auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name) for a in alarms]
        ),
    )


def _conditional(resource: CfnResource, condition: CfnCondition) -> None:
    resource.cfn_options.condition = condition


def rollback_alarm_names(endpoint_name: str, *, parity: bool = False) -> tuple[str, ...]:
    """The names of the alarms that roll back a deployment of ``endpoint_name``: 5xx errors, latency, 4xx (client)
    errors and, for a model compiled for Inferentia2 (``parity``), the parity check's."""
    names = (f"{endpoint_name}-rollout-errors", f"{endpoint_name}-rollout-latency", f"{endpoint_name}-rollout-client-errors")
    return (*names, parity_alarm_name(endpoint_name)) if parity else names


def allow_reading_rollback_alarms(access: AccessPolicy, endpoint_name: str, *, parity: bool = False) -> None:
    """Let the endpoint's execution role read its rollback alarms.

    SageMaker reads them as the execution role while it bakes a blue/green rollout ("Ensure that your
    IAM execution role has permission to perform the cloudwatch:DescribeAlarms action on the
    auto-rollback alarms you specify", SageMaker Developer Guide, deployment-guardrails-configuration).
    ARNs are built from the names, not taken from the alarms: the alarms are conditional and the
    policy is not.
    """
    stack = Stack.of(access)
    access.allow(
        "ReadRollbackAlarms",
        ["cloudwatch:DescribeAlarms"],
        [format_arn(stack, service="cloudwatch", resource="alarm", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME)
         for name in rollback_alarm_names(endpoint_name, parity=parity)],
    )


def rollback_alarms(scope: Construct, *, endpoint_name: str, rollout: Rollout, max_client_error_rate_percent: float,
                    condition: CfnCondition, parity: bool = False) -> list[cloudwatch.Alarm]:
    """``RolloutErrors`` (5xx rate), ``RolloutLatency`` (p99 model latency) and ``RolloutClientErrors`` (4xx rate) in
    ``scope``, named ``<endpoint>-rollout-errors`` / ``-latency`` / ``-client-errors``: SageMaker watches them during
    a blue/green update and returns to the old fleet when one fires. With ``parity`` (a model compiled for
    Inferentia2) also ``RolloutParity``: the parity check's verdict (:mod:`pipeline_code.handlers.parity_check`) for
    the version being rolled out.

    ``RolloutClientErrors`` fires above ``max_client_error_rate_percent`` (the endpoint's ``alarms`` setting, at which
    its ``client-errors`` alarm pages) in :data:`CLIENT_ERROR_MINUTES` consecutive minutes of at least
    :data:`MIN_ROLLOUT_REQUESTS_PER_MINUTE` requests: a version that refuses requests its callers send (a narrower
    declaration, a validation bug) rolls back, as it did when a refusal was a 500; callers' usual share of bad
    requests, below that setting, does not. Like the others it watches the endpoint's variant, whose metrics count
    both fleets while a rollout bakes. None of them notifies anyone."""
    errors_name, latency_name, client_errors_name = rollback_alarm_names(endpoint_name)[:3]
    alarms = [
        cloudwatch.Alarm(
            scope,
            "RolloutErrors",
            alarm_name=errors_name,
            alarm_description=f"Rolls back a deployment of {endpoint_name}: 5xx rate above "
            f"{rollout.max_error_rate_percent}% for 2 of 3 minutes",
            metric=error_rate(endpoint_name, "Invocation5XXErrors", "5xx error rate (%)"),
            threshold=rollout.max_error_rate_percent,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        ),
        cloudwatch.Alarm(
            scope,
            "RolloutLatency",
            alarm_name=latency_name,
            alarm_description=f"Rolls back a deployment of {endpoint_name}: p99 model latency above "
            f"{rollout.max_latency_p99_ms} ms for 2 of 3 minutes",
            # ModelLatency is reported in microseconds.
            metric=endpoint_metric(endpoint_name, "ModelLatency", "p99"),
            threshold=rollout.max_latency_p99_ms * 1000,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        ),
        cloudwatch.Alarm(
            scope,
            "RolloutClientErrors",
            alarm_name=client_errors_name,
            alarm_description=f"Rolls back a deployment of {endpoint_name}: 4xx responses above "
            f"{max_client_error_rate_percent}% of requests in {CLIENT_ERROR_MINUTES} consecutive minutes of at least "
            f"{MIN_ROLLOUT_REQUESTS_PER_MINUTE} requests each (the version being rolled out refuses requests its callers "
            "send); a quieter minute does not count. Notifies no one: the endpoint's client-errors alarm pages",
            metric=guarded_error_rate(endpoint_name, "Invocation4XXErrors", "4xx error rate (%)",
                                      min_requests=MIN_ROLLOUT_REQUESTS_PER_MINUTE),
            threshold=max_client_error_rate_percent,
            evaluation_periods=CLIENT_ERROR_MINUTES,
            datapoints_to_alarm=CLIENT_ERROR_MINUTES,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # No traffic, or too little to count, is no evidence against the version: it must not roll back.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        ),
    ]
    if parity:
        alarms.append(cloudwatch.Alarm(
            scope,
            "RolloutParity",
            alarm_name=parity_alarm_name(endpoint_name),
            alarm_description=f"Rolls back a deployment of {endpoint_name}: the new version's scores on the parity sample "
            "differ from its CPU model's, or could not be checked",
            metric=cloudwatch.Metric(namespace=parity_namespace(endpoint_name), metric_name=PARITY_METRIC,
                                     dimensions_map={"EndpointName": endpoint_name}, statistic="Maximum",
                                     period=Duration.minutes(1)),
            threshold=1,
            # A failing verdict keeps the alarm in ALARM for 5 minutes (the shortest bake a compiled model may have),
            # however late in the bake it was published.
            evaluation_periods=5,
            datapoints_to_alarm=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # Published only while a rollout bakes: no data is no verdict, not a failing one.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        ))
    for alarm in alarms:
        _conditional(alarm.node.default_child, condition)
        acknowledge(
            alarm,
            "The action of this alarm is SageMaker's automatic rollback, which watches it during a rollout; "
            "people hear of a rolled-back deployment from the serving stack's failed-update notification.",
            "NIST.800.53.R5-CloudWatchAlarmAction",
        )
    return alarms


def scalable_target(
    scope: Construct, *, endpoint_name: str, endpoint: CfnResource, min_capacity: int, max_capacity: int, condition: CfnCondition
) -> autoscaling.CfnScalableTarget:
    """``ScalableTarget``: the instance count of the endpoint's one variant, between the two bounds."""
    target = autoscaling.CfnScalableTarget(
        scope,
        "ScalableTarget",
        service_namespace="sagemaker",
        resource_id=f"endpoint/{endpoint_name}/variant/{VARIANT}",
        scalable_dimension="sagemaker:variant:DesiredInstanceCount",
        min_capacity=min_capacity,
        max_capacity=max_capacity,
    )
    _conditional(target, condition)
    target.node.add_dependency(endpoint)
    return target


def target_tracking(
    scope: Construct, construct_id: str, *, policy_name: str, target: autoscaling.CfnScalableTarget, value: float,
    scale_in: int, scale_out: int, condition: CfnCondition, **metric: object,
) -> autoscaling.CfnScalingPolicy:
    """A conditional target-tracking policy ``policy_name`` keeping ``metric`` at ``value``."""
    policy = autoscaling.CfnScalingPolicy(
        scope,
        construct_id,
        policy_name=policy_name,
        policy_type="TargetTrackingScaling",
        scaling_target_id=target.ref,
        target_tracking_scaling_policy_configuration=autoscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
            target_value=value, scale_in_cooldown=scale_in, scale_out_cooldown=scale_out, **metric
        ),
    )
    _conditional(policy, condition)
    return policy


def _variant_metric_query(query_id: str, namespace: str, metric_name: str, stat: str,
                          endpoint_name: str) -> cloudwatch.CfnAlarm.MetricDataQueryProperty:
    """``metric_name`` of the endpoint's one variant per :data:`IDLE_PERIOD_SECONDS`, an input of an alarm expression."""
    return cloudwatch.CfnAlarm.MetricDataQueryProperty(
        id=query_id,
        metric_stat=cloudwatch.CfnAlarm.MetricStatProperty(
            metric=cloudwatch.CfnAlarm.MetricProperty(
                namespace=namespace,
                metric_name=metric_name,
                dimensions=[cloudwatch.CfnAlarm.DimensionProperty(name="EndpointName", value=endpoint_name),
                            cloudwatch.CfnAlarm.DimensionProperty(name="VariantName", value=VARIANT)],
            ),
            period=IDLE_PERIOD_SECONDS,
            stat=stat,
        ),
        return_data=False,
    )


def idle_scale_in_alarm_name(endpoint_name: str) -> str:
    """The alarm that scales an idle real-time endpoint in to its minimum: ``<endpoint>-idle-scale-in``."""
    return f"{endpoint_name}-idle-scale-in"


def idle_scale_in(
    scope: Construct, *, endpoint_name: str, target: autoscaling.CfnScalableTarget, min_capacity: int, cooldown: int,
    condition: CfnCondition,
) -> tuple[autoscaling.CfnScalingPolicy, cloudwatch.CfnAlarm]:
    """``IdleScaleIn`` (step policy ``<endpoint>-idle-scale-in``: exactly ``min_capacity`` instances) and the alarm
    ``IdleScaleInAlarm`` (``<endpoint>-idle-scale-in``) that runs it once the variant's instances have run
    :data:`IDLE_SCALE_IN_MINUTES` minutes without a request.

    Target tracking does not scale in while its metric has no data ("it does not interpret insufficient data as low
    utilization"; the Application Auto Scaling User Guide's remedy is this: a step policy run by an alarm), and
    SageMaker publishes no ``Invocations`` point in a minute without requests: an idle endpoint would otherwise keep
    its ``InitialInstanceCount``, or what its last burst scaled it to, up to ``MaxCapacity``, for as long as it stays
    idle.

    The alarm reads, per minute, the variant's requests where its instances reported a ``CPUUtilization`` point
    (:data:`IDLE_EXPRESSION`: 0 in a minute of running instances without a request, no point in a minute without
    instance data) and breaches on 0 in each of the 60 minutes; missing data does not breach. So an idle hour counts
    only once instances have run for all of it: a new endpoint (or one SageMaker replaced) starts with its
    ``InitialInstanceCount`` (``instance_count``) and keeps it until an hour of running passes without a request. An
    endpoint nobody calls is at its minimum from its second hour. While in ALARM CloudWatch runs the step policy again
    every minute (Auto Scaling actions repeat, CloudWatch User Guide, alarm actions): harmless at the minimum, and the
    first request's minute returns the alarm to OK within a minute or two, which ends the repeats.

    It does not fight target tracking. Application Auto Scaling runs a step scale-in even when target tracking is not
    ready to scale in, and warns that target tracking may then scale out again (PutScalingPolicy): here that cannot
    loop, as the alarm is in ALARM only after an hour without a request, when target tracking has no data and does
    nothing, and the first request returns it to OK while target tracking, with data again, scales as before. Both
    steps (below and above the threshold) set the same capacity, whatever value the alarm reports. Its only action is
    the policy: it notifies no one and is no rollback alarm.
    """
    name = idle_scale_in_alarm_name(endpoint_name)
    policy = autoscaling.CfnScalingPolicy(
        scope,
        "IdleScaleIn",
        policy_name=name,
        policy_type="StepScaling",
        scaling_target_id=target.ref,
        step_scaling_policy_configuration=autoscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
            adjustment_type="ExactCapacity",
            # Any request in a period: its largest count.
            metric_aggregation_type="Maximum",
            cooldown=cooldown,
            # One step may not leave both bounds open: two, on either side of the threshold, make every value one.
            step_adjustments=[
                autoscaling.CfnScalingPolicy.StepAdjustmentProperty(metric_interval_upper_bound=0,
                                                                    scaling_adjustment=min_capacity),
                autoscaling.CfnScalingPolicy.StepAdjustmentProperty(metric_interval_lower_bound=0,
                                                                    scaling_adjustment=min_capacity),
            ],
        ),
    )
    _conditional(policy, condition)
    periods = IDLE_SCALE_IN_MINUTES * 60 // IDLE_PERIOD_SECONDS
    alarm = cloudwatch.CfnAlarm(
        scope,
        "IdleScaleInAlarm",
        alarm_name=name,
        alarm_description=f"The instances of {endpoint_name} ran {IDLE_SCALE_IN_MINUTES} minutes without a request: scale "
        f"it in to its minimum of {min_capacity} instance(s) (target tracking never scales in without data). Notifies no one",
        metrics=[
            _variant_metric_query("instances", HOST_NAMESPACE, "CPUUtilization", "SampleCount", endpoint_name),
            _variant_metric_query("invocations", INVOCATION_NAMESPACE, "Invocations", "Sum", endpoint_name),
            cloudwatch.CfnAlarm.MetricDataQueryProperty(
                id="requests", expression=IDLE_EXPRESSION, label="Requests while instances ran (none: 0)",
                return_data=True),
        ],
        evaluation_periods=periods,
        datapoints_to_alarm=periods,
        threshold=0,
        comparison_operator="LessThanOrEqualToThreshold",
        # A minute without instance data (the endpoint being created, a gap in SageMaker's metrics) is no idle minute.
        treat_missing_data="notBreaching",
        alarm_actions=[policy.ref],
    )
    _conditional(alarm, condition)
    return policy, alarm


class InvocationsScaling(NamedTuple):
    """What :func:`invocations_scaling` made."""

    target: autoscaling.CfnScalableTarget
    tracking: autoscaling.CfnScalingPolicy
    idle_policy: autoscaling.CfnScalingPolicy
    idle_alarm: cloudwatch.CfnAlarm

    @property
    def alarm_names(self) -> tuple[str, ...]:
        """The alarms made here (target tracking's own are Application Auto Scaling's)."""
        return (self.idle_alarm.alarm_name,)


def invocations_scaling(
    scope: Construct, *, endpoint_name: str, endpoint: CfnResource, scaling: RealtimeAutoscaling, condition: CfnCondition
) -> InvocationsScaling:
    """Target tracking on SageMaker's invocations per instance (``<endpoint>-invocations-per-instance``), and the scale-in
    to ``min_instances`` once the instances have run :data:`IDLE_SCALE_IN_MINUTES` without a request
    (:func:`idle_scale_in`)."""
    target = scalable_target(
        scope, endpoint_name=endpoint_name, endpoint=endpoint, min_capacity=scaling.min_instances,
        max_capacity=scaling.max_instances, condition=condition,
    )
    tracking = target_tracking(
        scope,
        "InvocationsPerInstance",
        policy_name=f"{endpoint_name}-invocations-per-instance",
        target=target,
        value=scaling.target_invocations_per_instance,
        scale_in=scaling.scale_in_cooldown_seconds,
        scale_out=scaling.scale_out_cooldown_seconds,
        condition=condition,
        predefined_metric_specification=autoscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
            predefined_metric_type="SageMakerVariantInvocationsPerInstance"
        ),
    )
    policy, alarm = idle_scale_in(scope, endpoint_name=endpoint_name, target=target, min_capacity=scaling.min_instances,
                                  cooldown=scaling.scale_in_cooldown_seconds, condition=condition)
    return InvocationsScaling(target, tracking, policy, alarm)

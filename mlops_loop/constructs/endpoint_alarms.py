"""Operational alarms and dashboard widgets for one model's endpoint (people, not the loop)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from ..config.instance_types import INSTANCE_TYPES
from ..config.serving import ServingConfig
from .endpoint_metrics import HOST_NAMESPACE, endpoint_metric, error_rate
from .served_model import endpoint_name


class EndpointAlarms(Construct):
    """Latency, 5xx/4xx rates, CPU and memory (instance-based modes), async backlog and, when
    configured, low traffic for the endpoint ``<prefix>-<model>``; every alarm notifies ``alarms_topic``.

    The alarms exist before any version is approved (names and dimensions are fixed), with missing
    data *not breaching*: an endpoint that does not exist yet, or serves no traffic, is not an
    incident. Batch models have no endpoint and get no alarms here (failed transform jobs are
    reported by the monitor's empty-window health alarm).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarms_name_prefix: str,
        alarms_model: str,
        alarms_serving: ServingConfig,
        alarms_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
        self.widgets: list[cloudwatch.IWidget] = []
        if alarms_serving.mode == "batch":
            return
        cfg = alarms_serving.alarms
        name = endpoint_name(alarms_name_prefix, alarms_model)
        notify = cw_actions.SnsAction(alarms_topic)

        def metric(metric_name: str, statistic: str, **kwargs) -> cloudwatch.Metric:
            return endpoint_metric(name, metric_name, statistic, **kwargs)

        def alarm(suffix: str, source, threshold: float, description: str, *, periods: int = 5,
                  comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD) -> None:
            created = cloudwatch.Alarm(
                self,
                suffix,
                alarm_name=f"{name}-{suffix}",
                alarm_description=f"{name}: {description}",
                metric=source,
                threshold=threshold,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                comparison_operator=comparison,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(notify)
            self.alarms.append(created)

        latency = metric("ModelLatency", "p99")
        alarm("latency", latency, cfg.max_latency_p99_ms * 1000,  # ModelLatency is in microseconds
              f"p99 model latency above {cfg.max_latency_p99_ms} ms for 5 minutes")
        alarm("server-errors", error_rate(name, "Invocation5XXErrors", "5xx rate (%)"), cfg.max_error_rate_percent,
              f"5xx responses above {cfg.max_error_rate_percent}% of requests for 5 minutes")
        alarm("client-errors", error_rate(name, "Invocation4XXErrors", "4xx rate (%)"), cfg.max_client_error_rate_percent,
              f"4xx responses above {cfg.max_client_error_rate_percent}% of requests for 5 minutes (callers send bad requests)")
        instance_type = {"realtime": alarms_serving.realtime.instance_type, "async": alarms_serving.async_.instance_type}.get(
            alarms_serving.mode
        )
        if instance_type is not None:
            # CPUUtilization is summed over cores (400% on 4 vCPUs): compare per vCPU.
            vcpus = INSTANCE_TYPES[instance_type].vcpu
            five = Duration.minutes(5)
            alarm("cpu", metric("CPUUtilization", "Average", namespace=HOST_NAMESPACE, period=five), cfg.max_cpu_percent * vcpus,
                  f"CPU above {cfg.max_cpu_percent}% of {vcpus} vCPUs for 15 minutes", periods=3)
            alarm("memory", metric("MemoryUtilization", "Average", namespace=HOST_NAMESPACE, period=five), cfg.max_memory_percent,
                  f"memory above {cfg.max_memory_percent}% for 15 minutes", periods=3)
        if alarms_serving.mode == "async":
            backlog = metric("ApproximateBacklogSize", "Average", per_variant=False, period=Duration.minutes(5))
            alarm("async-backlog", backlog, cfg.max_async_backlog,
                  f"more than {cfg.max_async_backlog} requests queued for 15 minutes", periods=3)
        if cfg.min_invocations_per_hour is not None:
            hourly = metric("Invocations", "Sum", period=Duration.hours(1))
            alarm("low-traffic", hourly, cfg.min_invocations_per_hour,
                  f"fewer than {cfg.min_invocations_per_hour} invocations per hour for 3 hours", periods=3,
                  comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD)
        self.widgets = [
            cloudwatch.GraphWidget(
                title=f"{alarms_model}: traffic and errors",
                left=[metric("Invocations", "Sum")],
                right=[metric("Invocation5XXErrors", "Sum"), metric("Invocation4XXErrors", "Sum")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title=f"{alarms_model}: model latency (µs)",
                left=[latency, metric("ModelLatency", "p50")],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=cfg.max_latency_p99_ms * 1000, label="alarm")],
                width=12,
            ),
        ]

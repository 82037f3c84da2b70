"""Operational alarms and dashboard widgets for one endpoint (people, not the loop)."""

from __future__ import annotations

from typing import Optional

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline_code.core.contract import CAPTURE_FAILURE_METRIC, CAPTURE_NAMESPACE, VARIANT

from ..config.instance_types import INSTANCE_TYPES
from ..config.serving import ServingAlarms
from ..nag import acknowledge
from .cdk_reads import environment_of, hours, minutes
from .endpoint_metrics import HOST_NAMESPACE, endpoint_metric, error_rate
from .loop_alarms import sns_action

# The low-traffic alarm's memory of past traffic, in hours: a week, the most CloudWatch evaluates.
IDLE_HOURS = 7 * 24
# The window in which one capture write failure alarms: a failure is logged and counted once, when it happens.
CAPTURE_FAILURE_MINUTES = 15
# Where every page of an endpoint alarm sends on-call for what to do (a row per alarm).
RUNBOOK = "(docs/monitoring.md, Endpoint alarms)"


def first_look(endpoint: str, region: str) -> str:
    """The end of every page an endpoint alarm sends: the endpoint's state and its containers' log, in ``region``, and
    the runbook."""
    return (f" First look: aws sagemaker describe-endpoint --endpoint-name {endpoint} --region {region} (its status; a "
            f"LastModifiedTime of minutes ago is a rollout) and its log: aws logs tail /aws/sagemaker/Endpoints/{endpoint} "
            f"--since 1h --region {region}. What to do: {RUNBOOK}.")


def capture_write_failures(endpoint: str) -> cloudwatch.Metric:
    """The capture writes the serving code of self-capturing ``endpoint`` could not make, per 15 minutes (``Sum``;
    published from an embedded-metric log line, ``pipeline_code.serving.self_capture.failure_metric_line``)."""
    return cloudwatch.Metric(namespace=CAPTURE_NAMESPACE, metric_name=CAPTURE_FAILURE_METRIC,
                             dimensions_map={"EndpointName": endpoint}, statistic="Sum",
                             period=minutes(CAPTURE_FAILURE_MINUTES))


class EndpointAlarms(Construct):
    """Latency (and, when configured, SageMaker's overhead latency), 5xx/4xx rates, CPU and memory (instance-based modes), async backlog, capture write failures
    (self-capturing endpoints) and, when configured, low traffic for one endpoint (a model's, or a shared
    multi-model endpoint); every alarm notifies ``topic`` (the low-traffic alarm is a composite of two that notify
    no one).

    The alarms exist before any version is approved (names and dimensions are fixed), with missing
    data *not breaching*: an endpoint that does not exist yet, or serves no traffic, is not an
    incident. The low-traffic alarm is the exception: for it silence is low traffic, and its composite
    rule keeps it quiet while the endpoint has not served yet (see :meth:`_low_traffic`). Batch models have no
    endpoint and get none: a transform job that fails or is stopped is told to people by the Operations stack's
    ``TransformJobFailures`` rule, and a run its schedule could not start by the ``<prefix>-batch-dead-letters``
    alarm (``OperationsStack``) — the monitor cannot tell: a window without batch output is, to it, a quiet one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        title: str,
        mode: str,
        instance_type: Optional[str],
        settings: ServingAlarms,
        topic: sns.ITopic,
        max_model_loading_wait_ms: Optional[int] = None,
        self_capture: bool = False,
    ) -> None:
        """``instance_type`` is None for serverless endpoints (no host metrics); ``title``
        heads the dashboard widgets (the model, or the endpoint and its models);
        ``max_model_loading_wait_ms`` (multi-model endpoints; default: no such alarm) alarms when
        the p99 wait for a model to load stays above it for 15 minutes; ``self_capture`` (default: off), for an
        endpoint whose serving code captures its requests itself (``ServedModel.self_captures``: serverless with
        capture on), alarms on one capture write it could not make in 15 minutes and graphs them with its traffic.

        An async endpoint publishes no ``Invocations``: its traffic graph counts requests as ``ModelLatency``'s
        SampleCount (as the drift monitor does), and a backlog graph shows its queue."""
        if self_capture and mode != "serverless":
            raise ValueError(f"{endpoint_name}: only a serverless endpoint's serving code captures its requests itself "
                             f"(mode {mode!r} uses SageMaker's data capture); self_capture needs mode 'serverless'")
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.AlarmBase] = []
        self.widgets: list[cloudwatch.IWidget] = []
        cfg = settings
        name = endpoint_name
        notify = sns_action(topic)
        region = environment_of(scope).region
        look = first_look(name, region)

        def metric(metric_name: str, statistic: str, **kwargs) -> cloudwatch.Metric:
            return endpoint_metric(name, metric_name, statistic, **kwargs)

        def alarm(suffix: str, source, threshold: float, description: str, *, periods: int = 5,
                  comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD) -> None:
            created = self._alarm(name, suffix, source, threshold, description.rstrip(".") + "." + look,
                                  periods=periods, datapoints=periods,
                                  comparison=comparison, missing=cloudwatch.TreatMissingData.NOT_BREACHING)
            created.add_alarm_action(notify)
            self.alarms.append(created)

        latency = metric("ModelLatency", "p99")
        alarm("latency", latency, cfg.max_latency_p99_ms * 1000,  # ModelLatency is in microseconds
              f"p99 model latency above {cfg.max_latency_p99_ms} ms for 5 minutes")
        alarm("server-errors", error_rate(name, "Invocation5XXErrors", "5xx rate (%)"), cfg.max_error_rate_percent,
              f"5xx responses above {cfg.max_error_rate_percent}% of requests for 5 minutes")
        alarm("client-errors", error_rate(name, "Invocation4XXErrors", "4xx rate (%)"), cfg.max_client_error_rate_percent,
              f"4xx responses above {cfg.max_client_error_rate_percent}% of requests for 5 minutes (callers send bad requests)")
        if cfg.max_overhead_latency_p99_ms is not None:
            alarm("overhead-latency", metric("OverheadLatency", "p99"), cfg.max_overhead_latency_p99_ms * 1000,
                  f"p99 SageMaker overhead latency (a caller's wait besides the model's; serverless: cold starts) above "
                  f"{cfg.max_overhead_latency_p99_ms} ms for 5 minutes")
        if instance_type is not None:
            # CPUUtilization is summed over cores (400% on 4 vCPUs): compare per vCPU.
            vcpus = INSTANCE_TYPES[instance_type].vcpu
            alarm("cpu", metric("CPUUtilization", "Average", namespace=HOST_NAMESPACE, period=minutes(5)), cfg.max_cpu_percent * vcpus,
                  f"CPU above {cfg.max_cpu_percent}% of {vcpus} vCPUs for 15 minutes", periods=3)
            alarm("memory", metric("MemoryUtilization", "Average", namespace=HOST_NAMESPACE, period=minutes(5)), cfg.max_memory_percent,
                  f"memory above {cfg.max_memory_percent}% for 15 minutes", periods=3)
        if mode == "async":
            backlog = metric("ApproximateBacklogSize", "Average", per_variant=False, period=minutes(5))
            alarm("async-backlog", backlog, cfg.max_async_backlog,
                  f"more than {cfg.max_async_backlog} requests queued for 15 minutes", periods=3)
            # Scaled to zero, the endpoint publishes no host metric or latency: a scale-out from zero that keeps failing
            # (an instance quota of 0, no capacity, a broken policy) would leave a few requests waiting, far below the
            # backlog alarm, until they expire. 1 in every minute of 20 (a normal scale-out takes several minutes).
            stuck = metric("HasBacklogWithoutCapacity", "Minimum", per_variant=False, period=minutes(5))
            alarm("async-stuck-at-zero", stuck, 1,
                  "requests have waited with no instance to run them for 20 minutes: the scale-out from zero is failing "
                  f"(check the endpoint's scaling activities: aws application-autoscaling describe-scaling-activities "
                  f"--service-namespace sagemaker --resource-id endpoint/{name}/variant/{VARIANT} --region "
                  f"{region}, and the instance type's endpoint quota)", periods=4, comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
        if max_model_loading_wait_ms is not None:
            # Multi-model endpoints only; reported in microseconds like ModelLatency.
            loading = metric("ModelLoadingWaitTime", "p99", period=minutes(5))
            alarm("model-loading-wait", loading, max_model_loading_wait_ms * 1000,
                  f"p99 wait for a model to load above {max_model_loading_wait_ms} ms for 15 minutes "
                  "(models keep being evicted: more memory per instance, or split the endpoint)", periods=3)
        if self_capture:
            failures = capture_write_failures(name)
            alarm("capture-write-failures", failures, 1,
                  f"the serving code could not write captured requests to S3 in the last {CAPTURE_FAILURE_MINUTES} "
                  "minutes (S3 or KMS denied or throttled): the drift monitor judges what was captured, which may no "
                  f"longer be the traffic. Its log lines: aws logs filter-log-events --log-group-name "
                  f"/aws/sagemaker/Endpoints/{name} --filter-pattern '\"could not write capture\"' --region "
                  f"{region}", periods=1,
                  comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
        if cfg.min_invocations_per_hour is not None:
            self._low_traffic(name, cfg.min_invocations_per_hour, notify, look)
        # Async endpoints publish no Invocations: every request they process has a ModelLatency point.
        requests = (metric("ModelLatency", "SampleCount", label="requests (ModelLatency count)") if mode == "async"
                    else metric("Invocations", "Sum"))
        self.widgets = [
            cloudwatch.GraphWidget(
                title=f"{title}: traffic and errors",
                left=[requests],
                right=[metric("Invocation5XXErrors", "Sum"), metric("Invocation4XXErrors", "Sum"),
                       *([capture_write_failures(name).with_(period=minutes(1), label="capture write failures")]
                         if self_capture else [])],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title=f"{title}: model latency (µs)",
                left=[latency, metric("ModelLatency", "p50"),
                      *([metric("OverheadLatency", "p99")] if cfg.max_overhead_latency_p99_ms is not None else [])],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=cfg.max_latency_p99_ms * 1000, label="alarm")],
                width=12,
            ),
        ]
        if mode == "async":
            self.widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{title}: async backlog",
                    left=[metric("ApproximateBacklogSize", "Maximum", per_variant=False),
                          metric("HasBacklogWithoutCapacity", "Maximum", per_variant=False)],
                    left_annotations=[cloudwatch.HorizontalAnnotation(value=cfg.max_async_backlog, label="alarm")],
                    right=[metric("ApproximateAgeOfOldestRequest", "Maximum", per_variant=False)],
                    width=24,
                )
            )
        if max_model_loading_wait_ms is not None:
            self.widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{title}: model cache",
                    left=[metric("ModelCacheHit", "Average"), metric("LoadedModelCount", "Maximum")],
                    right=[metric("ModelLoadingWaitTime", "p99")],
                    width=24,
                )
            )

    def _alarm(self, name: str, suffix: str, source: cloudwatch.IMetric, threshold: float, description: str, *,
               periods: int, datapoints: int, comparison: cloudwatch.ComparisonOperator,
               missing: cloudwatch.TreatMissingData) -> cloudwatch.Alarm:
        """Alarm ``<endpoint>-<suffix>`` on ``source``: ``datapoints`` of the last ``periods`` beyond ``threshold``."""
        return cloudwatch.Alarm(
            self,
            suffix,
            alarm_name=f"{name}-{suffix}",
            alarm_description=f"{name}: {description}",
            metric=source,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            comparison_operator=comparison,
            treat_missing_data=missing,
        )

    def _low_traffic(self, name: str, minimum: int, notify: cw_actions.SnsAction, look: str) -> None:
        """``<endpoint>-low-traffic``, a composite alarm that pages people: fewer than ``minimum`` invocations an hour
        for 3 hours (none at all included) on an endpoint that has served in more than 3 hours of the last week.

        SageMaker publishes no ``Invocations`` point for an hour without requests, so an alarm that takes missing
        data as not breaching never sees traffic stop. Taking it as breaching, ``<endpoint>-under-min-traffic`` does,
        but it also breaches while no endpoint exists (no version approved yet), and in the first hours of traffic
        (the hours before it are empty, the current one is partial). ``<endpoint>-idle-for-a-week`` (at most 3 of
        the last 168 hours held an invocation) tells those apart, and the composite pages only while it is OK (not in
        ALARM, nor without a state yet). After a week of silence the composite returns to OK (the page has gone out; the idle alarm shows the
        endpoint stays unused). Neither part notifies anyone."""
        hourly = endpoint_metric(name, "Invocations", "Sum", period=hours(1))
        parts = []
        # 168 hourly periods: CloudWatch's limit on Period x EvaluationPeriods (7 days for periods of an hour or more).
        for suffix, threshold, periods, breaching, description in (
            ("under-min-traffic", minimum, 3, 3, f"fewer than {minimum} invocations per hour, none counting as "
             "fewer, for 3 hours (part of the low-traffic alarm; notifies no one)"),
            ("idle-for-a-week", 1, IDLE_HOURS, IDLE_HOURS - 3, f"at most 3 of the last {IDLE_HOURS} hours held an "
             "invocation (no endpoint yet, traffic just started, or unused for a week): the low-traffic alarm stays "
             "quiet (notifies no one)"),
        ):
            # No requests, no Invocations point: a missing hour is one without traffic.
            part = self._alarm(name, suffix, hourly, threshold, description, periods=periods, datapoints=breaching,
                               comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                               missing=cloudwatch.TreatMissingData.BREACHING)
            acknowledge(part, f"A part of the composite alarm {name}-low-traffic, which notifies people; alone it "
                              "would page while no endpoint exists.", "NIST.800.53.R5-CloudWatchAlarmAction")
            parts.append(part)
        under, idle = parts
        low = cloudwatch.CompositeAlarm(
            self,
            "low-traffic",
            composite_alarm_name=f"{name}-low-traffic",
            alarm_description=f"{name}: fewer than {minimum} invocations per hour for 3 hours (or none at all) after "
                              "serving in more than 3 hours of the last week: the callers stopped or cannot reach it "
                              "(its traffic graph on the loop dashboard); no alarm while no version is deployed." + look,
            alarm_rule=cloudwatch.AlarmRule.all_of(
                cloudwatch.AlarmRule.from_alarm(under, cloudwatch.AlarmState.ALARM),
                # OK, not "not ALARM": while the idle alarm has no state yet (INSUFFICIENT_DATA, just created) nothing pages.
                cloudwatch.AlarmRule.from_alarm(idle, cloudwatch.AlarmState.OK),
            ),
        )
        low.add_alarm_action(notify)
        self.alarms += [under, idle, low]

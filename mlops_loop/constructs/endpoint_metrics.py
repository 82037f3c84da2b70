"""The SageMaker endpoint metrics the rollback alarms, operational alarms and dashboard read."""

from __future__ import annotations

from typing import Optional

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from pipeline_code.core.contract import VARIANT

from .cdk_reads import minutes

INVOCATION_NAMESPACE = "AWS/SageMaker"
HOST_NAMESPACE = "/aws/sagemaker/Endpoints"  # CPUUtilization, MemoryUtilization


def endpoint_metric(
    endpoint: str,
    name: str,
    statistic: str,
    *,
    namespace: str = INVOCATION_NAMESPACE,
    per_variant: bool = True,
    period: Optional[Duration] = None,
    label: Optional[str] = None,
) -> cloudwatch.Metric:
    """``name`` of ``endpoint`` (and its one variant, unless ``per_variant`` is false), per ``period`` (default: a
    minute), shown as ``label`` (default: CloudWatch's)."""
    dims = {"EndpointName": endpoint, **({"VariantName": VARIANT} if per_variant else {})}
    return cloudwatch.Metric(namespace=namespace, metric_name=name, dimensions_map=dims, statistic=statistic,
                             period=period or minutes(1), label=label)


def error_rate(endpoint: str, errors: str, label: str, *, period: Optional[Duration] = None) -> cloudwatch.MathExpression:
    """Per minute, the share of requests answered with ``errors`` (e.g. ``Invocation5XXErrors``), in percent.

    SageMaker sends 1 for each request that got such a response and 0 for every other, so the metric's
    average is the rate. That holds for async endpoints too, which publish no ``Invocations`` metric
    (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html): a rate over
    ``Invocations`` would have no denominator there. No requests, no data points.
    """
    period = period or minutes(1)
    return cloudwatch.MathExpression(
        expression="100 * errors",
        using_metrics={"errors": endpoint_metric(endpoint, errors, "Average", period=period)},
        label=label,
        period=period,
    )


def guarded_error_rate(endpoint: str, errors: str, label: str, *, min_requests: int,
                       period: Optional[Duration] = None) -> cloudwatch.MathExpression:
    """Per minute, the share of requests answered with ``errors`` in percent, as :func:`error_rate`, but only for a
    minute with at least ``min_requests`` requests: a quieter minute has no data point (a rate of one refusal in
    three requests is noise, not a verdict).

    Both counts come from ``errors`` itself: SageMaker sends a 0 or a 1 for every request, so its ``Sum`` is the
    requests so answered and its ``SampleCount`` all requests (``Average``, the rate, is ``Sum / SampleCount``). That
    holds for async endpoints too, which publish no ``Invocations``. ``IF`` without a false branch drops the data
    point where the condition fails, and no requests at all is no data point either.
    """
    period = period or minutes(1)
    return guarded_rate(endpoint_metric(endpoint, errors, "Sum", period=period), label, min_requests=min_requests,
                        period=period)


def guarded_rate(per_request: cloudwatch.Metric, label: str, *, min_requests: int,
                 period: Duration, quiet_all_marked: bool = False) -> cloudwatch.MathExpression:
    """Per ``period``, the share in percent of requests ``per_request`` marks (a metric with one point per request, 1
    for a request so answered, else 0: SageMaker's ``Invocation5XXErrors``, the score-by-id front's
    ``ByIdServerErrors``), only for a period with at least ``min_requests`` requests; a quieter one has no data point -
    or, with ``quiet_all_marked`` (default off), 100 when every one of its requests was marked and 0 otherwise, so that
    a caller with little traffic whose every request fails is still seen (comparison operators between two time series
    give 1 or 0 per point: CloudWatch's metric math). ``Sum`` counts the marked requests, ``SampleCount`` all of them
    (see :func:`guarded_error_rate`)."""
    quiet = ", IF(errors == requests, 100, 0)" if quiet_all_marked else ""
    return cloudwatch.MathExpression(
        expression=f"IF(requests >= {min_requests}, 100 * errors / requests{quiet})",
        using_metrics={
            "errors": per_request.with_(statistic="Sum", period=period),
            "requests": per_request.with_(statistic="SampleCount", period=period),
        },
        label=label,
        period=period,
    )

"""endpoint_metric and error_rate: the SageMaker endpoint metrics the alarms and dashboards read, checked as
objects and as an alarm in a bare stack renders them."""

from __future__ import annotations

import pytest
from aws_cdk import Duration, Environment, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.endpoint_metrics import (
    HOST_NAMESPACE,
    INVOCATION_NAMESPACE,
    endpoint_metric,
    error_rate,
    guarded_error_rate,
)
from tests.support.cdk_outdirs import bare_outdir

ENDPOINT = "shop-dev-chargeback"
PER_VARIANT = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]


def _alarm_properties(metric: cloudwatch.IMetric) -> dict:
    """GIVEN a bare stack WHEN an alarm watches ``metric`` THEN the alarm's properties."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    cloudwatch.Alarm(stack, "Alarm", metric=metric, threshold=1, evaluation_periods=1)
    (alarm,) = Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").values()
    return alarm["Properties"]


# ------------------------------------------------------------------ endpoint_metric
def test_by_default_a_metric_is_the_invocation_metric_of_the_endpoints_one_variant_per_minute():
    metric = endpoint_metric(ENDPOINT, "Invocations", "Sum")
    assert (metric.namespace, metric.metric_name, metric.statistic) == (INVOCATION_NAMESPACE, "Invocations", "Sum")
    assert metric.dimensions == {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"}
    assert metric.period.to_seconds() == 60
    props = _alarm_properties(metric)
    assert (props["Namespace"], props["MetricName"], props["Statistic"], props["Period"]) == ("AWS/SageMaker", "Invocations", "Sum", 60)
    assert props["Dimensions"] == PER_VARIANT


def test_a_percentile_statistic_is_rendered_as_an_extended_statistic():
    props = _alarm_properties(endpoint_metric(ENDPOINT, "ModelLatency", "p99"))
    assert props["ExtendedStatistic"] == "p99" and "Statistic" not in props
    assert props["Dimensions"] == PER_VARIANT


def test_an_endpoint_level_metric_has_no_variant_dimension():
    """Async endpoints publish their backlog per endpoint, not per variant."""
    metric = endpoint_metric(ENDPOINT, "ApproximateBacklogSize", "Average", per_variant=False, period=Duration.minutes(5))
    assert metric.dimensions == {"EndpointName": ENDPOINT}
    props = _alarm_properties(metric)
    assert props["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}]
    assert props["Period"] == 300


def test_host_metrics_come_from_the_endpoints_namespace_on_the_given_period():
    metric = endpoint_metric(ENDPOINT, "CPUUtilization", "Average", namespace=HOST_NAMESPACE, period=Duration.minutes(5))
    props = _alarm_properties(metric)
    assert (props["Namespace"], props["MetricName"], props["Period"]) == ("/aws/sagemaker/Endpoints", "CPUUtilization", 300)
    assert props["Dimensions"] == PER_VARIANT


# ------------------------------------------------------------------ error_rate
def test_an_error_rate_is_the_share_of_requests_with_that_error_and_needs_no_invocations_metric():
    """SageMaker sends 1 per request with the error and 0 per other request: the average is the rate. Async
    endpoints publish no Invocations metric, so a rate over Invocations would never have a denominator there."""
    rate = error_rate(ENDPOINT, "Invocation5XXErrors", "5xx rate (%)")
    assert rate.expression == "100 * errors"
    assert rate.label == "5xx rate (%)"
    assert rate.period.to_seconds() == 60
    used = {name: (m.metric_name, m.statistic, m.dimensions, m.period.to_seconds()) for name, m in rate.using_metrics.items()}
    assert used == {"errors": ("Invocation5XXErrors", "Average", {"EndpointName": ENDPOINT, "VariantName": "AllTraffic"}, 60)}


@pytest.mark.parametrize("errors", ["Invocation5XXErrors", "Invocation4XXErrors"])
def test_an_error_rate_over_a_longer_period_averages_over_that_period(errors: str):
    props = _alarm_properties(error_rate(ENDPOINT, errors, "rate", period=Duration.minutes(5)))
    expression, *inputs = props["Metrics"]
    assert expression == {"Id": "expr_1", "Expression": "100 * errors", "Label": "rate", "ReturnData": True}
    assert {m["Id"]: (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Stat"], m["MetricStat"]["Period"]) for m in inputs} == {
        "errors": (errors, "Average", 300),
    }
    assert all(m["ReturnData"] is False and m["MetricStat"]["Metric"]["Dimensions"] == PER_VARIANT for m in inputs)


# ------------------------------------------------------------------ guarded_error_rate
@pytest.mark.parametrize("period", [None, Duration.minutes(5)], ids=["a-minute", "five-minutes"])
def test_a_guarded_error_rate_counts_only_periods_with_enough_requests_both_counted_from_the_error_metric(period):
    """Sum of the 0/1 values: the requests with the error; SampleCount: every request (async endpoints too, which
    publish no Invocations). IF without a false branch leaves a period under the minimum without a data point."""
    props = _alarm_properties(guarded_error_rate(ENDPOINT, "Invocation4XXErrors", "4xx rate (%)", min_requests=20, period=period))
    seconds = period.to_seconds() if period else 60
    expression, *inputs = props["Metrics"]
    assert expression == {"Id": "expr_1", "Expression": "IF(requests >= 20, 100 * errors / requests)", "Label": "4xx rate (%)",
                          "ReturnData": True}
    assert {m["Id"]: (m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Stat"], m["MetricStat"]["Period"]) for m in inputs} == {
        "errors": ("Invocation4XXErrors", "Sum", seconds),
        "requests": ("Invocation4XXErrors", "SampleCount", seconds),
    }
    assert all(m["ReturnData"] is False and m["MetricStat"]["Metric"]["Dimensions"] == PER_VARIANT for m in inputs)

"""EndpointAlarms, built in a bare stack: which alarms each kind of endpoint gets, their thresholds, and the widgets."""

from __future__ import annotations

from typing import Optional

from aws_cdk import Environment, Stack
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.config.serving import ServingAlarms
from mlops_loop.constructs.endpoint_alarms import EndpointAlarms

ENDPOINT = "shop-dev-churn"
ALWAYS = ["latency", "server-errors", "client-errors"]


def _alarms(mode: str = "realtime", instance_type: Optional[str] = "ml.m5.xlarge", *, settings: ServingAlarms = ServingAlarms(),
            loading_wait_ms: Optional[int] = None) -> tuple[Stack, EndpointAlarms, dict[str, dict], str]:
    """GIVEN a bare stack with a topic WHEN alarms for one endpoint are added THEN the alarms by name (and the topic's id)."""
    stack = Stack(new_app(), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    topic = sns.Topic(stack, "Topic")
    made = EndpointAlarms(stack, "Alarms", endpoint_name=ENDPOINT, title="churn", mode=mode, instance_type=instance_type,
                          settings=settings, topic=topic, max_model_loading_wait_ms=loading_wait_ms)
    resources = Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").values()
    by_name = {a["Properties"]["AlarmName"].removeprefix(f"{ENDPOINT}-"): a["Properties"] for a in resources}
    return stack, made, by_name, stack.get_logical_id(topic.node.default_child)


def test_a_realtime_endpoint_gets_latency_error_cpu_and_memory_alarms_that_all_notify_the_topic():
    _, made, alarms, topic = _alarms()
    assert list(alarms) == [*ALWAYS, "cpu", "memory"]
    assert len(made.alarms) == 5
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], name
        assert alarm["TreatMissingData"] == "notBreaching", "no endpoint yet, or no traffic, is not an incident"
        assert alarm["AlarmDescription"].startswith(f"{ENDPOINT}: ")


def test_latency_and_error_alarms_need_five_bad_minutes_in_a_row_at_the_configured_thresholds():
    settings = ServingAlarms(max_latency_p99_ms=250, max_error_rate_percent=2.5, max_client_error_rate_percent=7.0)
    _, _, alarms, _ = _alarms(settings=settings)
    latency = alarms["latency"]
    # ModelLatency is reported in microseconds.
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Threshold"]) == ("ModelLatency", "p99", 250_000)
    assert latency["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]
    for name, threshold, errors in (("server-errors", 2.5, "Invocation5XXErrors"), ("client-errors", 7.0, "Invocation4XXErrors")):
        alarm = alarms[name]
        assert alarm["Threshold"] == threshold
        assert [(m["MetricStat"]["Metric"]["MetricName"], m["MetricStat"]["Stat"]) for m in alarm["Metrics"] if "MetricStat" in m] == [
            (errors, "Average")]
        assert alarm["Metrics"][0]["Expression"] == "100 * errors"
    for name in ALWAYS:
        assert (alarms[name]["EvaluationPeriods"], alarms[name]["DatapointsToAlarm"]) == (5, 5), name
        assert alarms[name]["ComparisonOperator"] == "GreaterThanThreshold", name


def test_cpu_is_compared_per_vcpu_and_host_alarms_need_fifteen_minutes():
    """CPUUtilization is summed over cores: 80% on an instance type with 4 vCPUs is a threshold of 320."""
    _, _, alarms, _ = _alarms(instance_type="ml.m5.xlarge", settings=ServingAlarms(max_cpu_percent=80, max_memory_percent=75))
    cpu, memory = alarms["cpu"], alarms["memory"]
    assert cpu["Threshold"] == 320 and "of 4 vCPUs" in cpu["AlarmDescription"]
    assert memory["Threshold"] == 75
    for alarm in (cpu, memory):
        assert alarm["Namespace"] == "/aws/sagemaker/Endpoints"
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (300, 3, 3)
    _, _, larger, _ = _alarms(instance_type="ml.m5.2xlarge", settings=ServingAlarms(max_cpu_percent=80))
    assert larger["cpu"]["Threshold"] == 640


def test_a_serverless_endpoint_has_no_host_alarms():
    _, made, alarms, _ = _alarms(mode="serverless", instance_type=None)
    assert list(alarms) == ALWAYS and len(made.alarms) == 3


def test_an_async_endpoint_alarms_on_its_backlog_for_the_whole_endpoint():
    _, _, alarms, _ = _alarms(mode="async", settings=ServingAlarms(max_async_backlog=40))
    assert list(alarms) == [*ALWAYS, "cpu", "memory", "async-backlog"]
    backlog = alarms["async-backlog"]
    assert (backlog["MetricName"], backlog["Threshold"], backlog["Period"], backlog["EvaluationPeriods"]) == (
        "ApproximateBacklogSize", 40, 300, 3)
    # The backlog is the endpoint's, not a variant's.
    assert backlog["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}]


def test_a_multi_model_endpoint_alarms_when_models_wait_long_to_load_and_gets_a_cache_widget():
    stack, made, alarms, _ = _alarms(mode="multi_model", instance_type="ml.m5.large", loading_wait_ms=8000)
    assert list(alarms) == [*ALWAYS, "cpu", "memory", "model-loading-wait"]
    wait = alarms["model-loading-wait"]
    assert (wait["MetricName"], wait["ExtendedStatistic"], wait["Threshold"]) == ("ModelLoadingWaitTime", "p99", 8_000_000)
    assert (wait["Period"], wait["EvaluationPeriods"], wait["DatapointsToAlarm"]) == (300, 3, 3)
    titles = [stack.resolve(w.to_json())[0]["properties"]["title"] for w in made.widgets]
    assert titles == ["churn: traffic and errors", "churn: model latency (µs)", "churn: model cache"]


def test_a_low_traffic_alarm_only_when_a_minimum_is_configured_and_it_fires_below_it():
    _, _, without, _ = _alarms()
    assert "low-traffic" not in without
    _, _, alarms, _ = _alarms(settings=ServingAlarms(min_invocations_per_hour=30))
    low = alarms["low-traffic"]
    assert (low["MetricName"], low["Statistic"], low["Period"], low["Threshold"]) == ("Invocations", "Sum", 3600, 30)
    assert low["ComparisonOperator"] == "LessThanThreshold" and low["EvaluationPeriods"] == 3


def test_the_dashboard_widgets_are_titled_for_the_endpoint_and_mark_the_latency_alarm():
    stack, made, _, _ = _alarms(settings=ServingAlarms(max_latency_p99_ms=400))
    widgets = [stack.resolve(w.to_json())[0] for w in made.widgets]
    assert [w["properties"]["title"] for w in widgets] == ["churn: traffic and errors", "churn: model latency (µs)"]
    traffic, latency = widgets
    assert [m[1] for m in traffic["properties"]["metrics"]] == ["Invocations", "Invocation5XXErrors", "Invocation4XXErrors"]
    assert latency["properties"]["annotations"]["horizontal"] == [{"value": 400_000, "label": "alarm", "yAxis": "left"}]

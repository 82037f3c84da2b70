"""EndpointAlarms, built in a bare stack: which alarms each kind of endpoint gets, their thresholds, and the widgets."""

from __future__ import annotations

import functools
from typing import Callable, Optional

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_sns as sns

from mlops_loop.app_builder import new_app
from mlops_loop.config.serving import ServingAlarms
from mlops_loop.constructs.endpoint_alarms import EndpointAlarms, first_look
from tests.support.templates import of_type, template_of
from tests.support.alarm_eval import DAY, HOUR, MINUTE, MetricAlarm, Replay, Series, all_of, replay
from tests.support.cdk_outdirs import bare_outdir

ENDPOINT = "shop-dev-churn"
ALWAYS = ["latency", "server-errors", "client-errors"]


def _alarms(mode: str = "realtime", instance_type: Optional[str] = "ml.m5.xlarge", *, settings: ServingAlarms = ServingAlarms(),
            loading_wait_ms: Optional[int] = None, self_capture: bool = False) -> tuple[Stack, EndpointAlarms, dict[str, dict], str]:
    """GIVEN a bare stack with a topic WHEN alarms for one endpoint are added THEN the alarms by name (and the topic's id)."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    topic = sns.Topic(stack, "Topic")
    made = EndpointAlarms(stack, "Alarms", endpoint_name=ENDPOINT, title="churn", mode=mode, instance_type=instance_type,
                          settings=settings, topic=topic, max_model_loading_wait_ms=loading_wait_ms,
                          self_capture=self_capture)
    resources = of_type(template_of(stack), "AWS::CloudWatch::Alarm").values()
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
    assert list(alarms) == [*ALWAYS, "cpu", "memory", "async-backlog", "async-stuck-at-zero"]
    backlog = alarms["async-backlog"]
    assert (backlog["MetricName"], backlog["Threshold"], backlog["Period"], backlog["EvaluationPeriods"]) == (
        "ApproximateBacklogSize", 40, 300, 3)
    # The backlog is the endpoint's, not a variant's.
    assert backlog["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}]


def test_an_async_endpoint_at_zero_whose_waiting_requests_get_no_instance_for_20_minutes_pages_people():
    """GIVEN an async endpoint that scales to zero WHEN requests wait with no instance for 20 minutes (the scale-out
    from zero failing: an instance quota of 0, no capacity, a broken policy; a normal one takes several minutes) THEN
    people are told, whatever the backlog's size: a few documents waiting stay far below max_async_backlog, and
    nothing else pages while the endpoint has no instance to publish host metrics or latency."""
    _, _, alarms, topic = _alarms(mode="async", settings=ServingAlarms(max_async_backlog=100))
    stuck = alarms["async-stuck-at-zero"]
    assert (stuck["MetricName"], stuck["Namespace"], stuck["Statistic"]) == ("HasBacklogWithoutCapacity", "AWS/SageMaker", "Minimum")
    assert stuck["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}]
    assert (stuck["Period"], stuck["EvaluationPeriods"], stuck["DatapointsToAlarm"]) == (300, 4, 4)
    assert (stuck["ComparisonOperator"], stuck["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert stuck["TreatMissingData"] == "notBreaching" and stuck["AlarmActions"] == [{"Ref": topic}]
    # Real-time endpoints never wait without capacity.
    _, _, realtime, _ = _alarms(mode="realtime")
    assert "async-stuck-at-zero" not in realtime


def test_a_multi_model_endpoint_alarms_when_models_wait_long_to_load_and_gets_a_cache_widget():
    stack, made, alarms, _ = _alarms(mode="multi_model", instance_type="ml.m5.large", loading_wait_ms=8000)
    assert list(alarms) == [*ALWAYS, "cpu", "memory", "model-loading-wait"]
    wait = alarms["model-loading-wait"]
    assert (wait["MetricName"], wait["ExtendedStatistic"], wait["Threshold"]) == ("ModelLoadingWaitTime", "p99", 8_000_000)
    assert (wait["Period"], wait["EvaluationPeriods"], wait["DatapointsToAlarm"]) == (300, 3, 3)
    titles = [stack.resolve(w.to_json())[0]["properties"]["title"] for w in made.widgets]
    assert titles == ["churn: traffic and errors", "churn: model latency (µs)", "churn: model cache"]


@pytest.mark.parametrize("mode, instance_type", [("realtime", "ml.m5.xlarge"), ("serverless", None)])
def test_an_overhead_latency_alarm_only_when_a_maximum_is_configured(mode, instance_type):
    """GIVEN max_overhead_latency_p99_ms (SageMaker's own share of a caller's wait; serverless: cold starts included)
    THEN a p99 OverheadLatency alarm at that many ms (the metric is in microseconds) for 5 of 5 minutes notifies the
    topic, and the latency graph shows the metric; without it, neither."""
    stack, configured, alarms, topic = _alarms(mode, instance_type, settings=ServingAlarms(max_overhead_latency_p99_ms=150))
    overhead = alarms["overhead-latency"]
    assert (overhead["MetricName"], overhead["ExtendedStatistic"], overhead["Threshold"]) == ("OverheadLatency", "p99", 150_000)
    assert (overhead["EvaluationPeriods"], overhead["DatapointsToAlarm"]) == (5, 5)
    assert overhead["AlarmActions"] == [{"Ref": topic}] and overhead["TreatMissingData"] == "notBreaching"
    assert overhead["AlarmDescription"] == (f"{ENDPOINT}: p99 SageMaker overhead latency (a caller's wait besides the "
                                            "model's; serverless: cold starts) above 150 ms for 5 minutes."
                                            + first_look(ENDPOINT, "eu-west-1"))
    assert "OverheadLatency" in [m[1] for m in stack.resolve(configured.widgets[1].to_json())[0]["properties"]["metrics"]]
    bare, made, plain, _ = _alarms(mode, instance_type)
    assert "overhead-latency" not in plain
    assert "OverheadLatency" not in [m[1] for m in bare.resolve(made.widgets[1].to_json())[0]["properties"]["metrics"]]


def _low_traffic(minimum: int = 30) -> tuple[Stack, dict[str, dict], dict, str]:
    """The low-traffic parts by name, and the composite alarm's properties."""
    stack, _, alarms, topic = _alarms(settings=ServingAlarms(min_invocations_per_hour=minimum))
    (composite,) = of_type(template_of(stack), "AWS::CloudWatch::CompositeAlarm").values()
    return stack, alarms, composite["Properties"], topic


def test_a_low_traffic_alarm_only_when_a_minimum_is_configured():
    stack, made, alarms, _ = _alarms()
    assert not any(name.endswith("traffic") or name.startswith("idle") for name in alarms)
    assert of_type(template_of(stack), "AWS::CloudWatch::CompositeAlarm") == {}


def test_low_traffic_pages_through_a_composite_of_too_few_invocations_and_not_idle_for_a_week():
    stack, alarms, composite, topic = _low_traffic(30)
    under, idle = alarms["under-min-traffic"], alarms["idle-for-a-week"]
    assert (under["MetricName"], under["Statistic"], under["Period"], under["Threshold"]) == ("Invocations", "Sum", 3600, 30)
    assert (under["EvaluationPeriods"], under["DatapointsToAlarm"]) == (3, 3)
    # Idle: at most 3 of the last 168 hours held an invocation (168 hours: CloudWatch's 7-day limit).
    assert (idle["MetricName"], idle["Statistic"], idle["Period"], idle["Threshold"]) == ("Invocations", "Sum", 3600, 1)
    assert (idle["EvaluationPeriods"], idle["DatapointsToAlarm"]) == (168, 165)
    assert idle["Period"] * idle["EvaluationPeriods"] <= 604_800
    for part in (under, idle):
        assert part["ComparisonOperator"] == "LessThanThreshold"
        # SageMaker publishes no Invocations point for an hour without requests: silence is low traffic.
        assert part["TreatMissingData"] == "breaching"
        assert "AlarmActions" not in part, "the parts notify no one"
        assert part["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}]
    assert composite["AlarmName"] == f"{ENDPOINT}-low-traffic"
    assert composite["AlarmActions"] == [{"Ref": topic}]
    ids = {a["Properties"]["AlarmName"]: k for k, a in of_type(template_of(stack), "AWS::CloudWatch::Alarm").items()}
    rule = stack.resolve(composite["AlarmRule"])
    assert rule == {"Fn::Join": ["", ['(ALARM("', {"Fn::GetAtt": [ids[f"{ENDPOINT}-under-min-traffic"], "Arn"]},
                                      '") AND OK("', {"Fn::GetAtt": [ids[f"{ENDPOINT}-idle-for-a-week"], "Arn"]}, '"))']]}
    assert composite["AlarmDescription"].startswith(f"{ENDPOINT}: fewer than 30 invocations per hour for 3 hours (or none at all)")


# ------------------------------------------------------------------ low traffic, replayed
# The synthesized parts replayed with tests/support/alarm_eval.py (CloudWatch's sliding window and missing-data rules)
# and combined as the composite's rule says; SageMaker's Invocations as one Sum point per 5 minutes with requests.
EXTRAS = (0, 2, 6)
STEP = 5 * MINUTE


def _traffic(per_hour: Callable[[float], float], until: float) -> Series:
    """One Invocations point per 5 minutes holding requests, at ``per_hour(t)`` an hour (none when 0)."""
    return Series((t, per_hour(t) / 12) for t in range(0, int(until), STEP) if per_hour(t) > 0)


@functools.cache
def _low_traffic_parts() -> tuple[MetricAlarm, MetricAlarm]:
    """The synthesized parts of a 30-invocation minimum as the evaluator reads them (made once: they are frozen)."""
    _, alarms, _, _ = _low_traffic(30)
    return tuple(MetricAlarm.from_properties(alarms[n]) for n in ("under-min-traffic", "idle-for-a-week"))


def _low_traffic_replay(series: Series, until: float, extra: int) -> Replay:
    under, idle = _low_traffic_parts()
    made = [replay(a, series, 0, until, extra=extra, step=STEP) for a in (under, idle)]
    # OK(idle): the idle alarm's ALARM and its INSUFFICIENT_DATA (no state yet) both keep the composite quiet.
    return all_of(made[0], Replay(made[1].start, made[1].step, ["ALARM" if s == "OK" else "OK" for s in made[1].states]))


@pytest.mark.parametrize("extra", EXTRAS)
def test_replayed_an_endpoint_that_is_not_deployed_or_just_deployed_without_traffic_never_pages(extra):
    assert _low_traffic_replay(Series([]), 10 * DAY, extra).pages() == []


@pytest.mark.parametrize("extra", EXTRAS)
def test_replayed_the_first_hours_of_traffic_do_not_page_though_the_hours_before_them_are_empty(extra):
    start = 2 * DAY + 17 * MINUTE
    assert _low_traffic_replay(_traffic(lambda t: 600 if t >= start else 0, 6 * DAY), 6 * DAY, extra).pages() == []


@pytest.mark.parametrize("extra", EXTRAS)
def test_replayed_traffic_that_stops_completely_pages_once_three_to_a_few_hours_later(extra):
    stop = 3 * DAY + 5 * HOUR
    replayed = _low_traffic_replay(_traffic(lambda t: 600 if t < stop else 0, 20 * DAY), 20 * DAY, extra)
    (page,) = replayed.pages()
    assert 3 * HOUR <= page - stop <= (3 + extra + 1) * HOUR
    # A week of silence later the composite is quiet again (the idle alarm says the endpoint is unused): no new page.
    assert replayed.state_at(stop + 8 * DAY) == "OK"


@pytest.mark.parametrize("extra", EXTRAS)
def test_replayed_traffic_below_the_minimum_for_three_hours_pages_and_busy_hours_do_not(extra):
    dip = (4 * DAY, 4 * DAY + 4 * HOUR)
    replayed = _low_traffic_replay(_traffic(lambda t: 12 if dip[0] <= t < dip[1] else 120 + 60 * (t // HOUR % 3), 8 * DAY),
                                   8 * DAY, extra)
    (page,) = replayed.pages()
    assert dip[0] + 3 * HOUR <= page <= dip[1] + HOUR


def test_the_dashboard_widgets_are_titled_for_the_endpoint_and_mark_the_latency_alarm():
    stack, made, _, _ = _alarms(settings=ServingAlarms(max_latency_p99_ms=400))
    widgets = [stack.resolve(w.to_json())[0] for w in made.widgets]
    assert [w["properties"]["title"] for w in widgets] == ["churn: traffic and errors", "churn: model latency (µs)"]
    traffic, latency = widgets
    assert [m[1] for m in traffic["properties"]["metrics"]] == ["Invocations", "Invocation5XXErrors", "Invocation4XXErrors"]
    assert latency["properties"]["annotations"]["horizontal"] == [{"value": 400_000, "label": "alarm", "yAxis": "left"}]


# ------------------------------------------------------------------ capture write failures (self-capturing endpoints)
def test_a_self_capturing_endpoint_alarms_on_one_capture_write_failure_in_fifteen_minutes_and_graphs_them():
    """The serving code publishes each capture write it could not make (pipeline_code.serving.self_capture): one is
    enough to tell people, as the endpoint's other alarms do; a window of no failures is no point, not an incident."""
    stack, made, alarms, topic = _alarms(mode="serverless", instance_type=None, self_capture=True)
    assert list(alarms) == [*ALWAYS, "capture-write-failures"] and len(made.alarms) == 4
    failures = alarms["capture-write-failures"]
    assert (failures["Namespace"], failures["MetricName"], failures["Statistic"]) == ("mlops-loop/capture", "CaptureWriteFailures", "Sum")
    # The dimension set of the embedded-metric line: the endpoint only.
    assert failures["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT}]
    assert (failures["Period"], failures["EvaluationPeriods"], failures["DatapointsToAlarm"]) == (900, 1, 1)
    assert (failures["Threshold"], failures["ComparisonOperator"], failures["TreatMissingData"]) == (
        1, "GreaterThanOrEqualToThreshold", "notBreaching")
    assert failures["AlarmActions"] == [{"Ref": topic}]
    assert failures["AlarmDescription"] == (
        f"{ENDPOINT}: the serving code could not write captured requests to S3 in the last 15 minutes (S3 or KMS denied "
        "or throttled): the drift monitor judges what was captured, which may no longer be the traffic. Its log lines: "
        f"aws logs filter-log-events --log-group-name /aws/sagemaker/Endpoints/{ENDPOINT} --filter-pattern "
        "'\"could not write capture\"' --region eu-west-1." + first_look(ENDPOINT, "eu-west-1"))
    traffic = stack.resolve(made.widgets[0].to_json())[0]["properties"]
    assert [m[:4] for m in traffic["metrics"]][-1] == ["mlops-loop/capture", "CaptureWriteFailures", "EndpointName", ENDPOINT]
    assert traffic["metrics"][-1][4] == {"label": "capture write failures", "stat": "Sum", "yAxis": "right",
                                           "period": 60}


@pytest.mark.parametrize("mode", ["serverless", "realtime"])
def test_an_endpoint_that_does_not_capture_itself_has_no_capture_alarm_or_line(mode):
    stack, made, alarms, _ = _alarms(mode=mode, instance_type=None if mode == "serverless" else "ml.m5.xlarge")
    assert "capture-write-failures" not in alarms
    assert "CaptureWriteFailures" not in str(stack.resolve(made.widgets[0].to_json()))


@pytest.mark.parametrize("mode", ["realtime", "async", "multi_model"])
def test_self_capture_is_refused_for_an_endpoint_that_sagemaker_captures(mode):
    with pytest.raises(ValueError, match=rf"^{ENDPOINT}: only a serverless endpoint's serving code captures its requests "
                                         rf"itself \(mode '{mode}' uses SageMaker's data capture\); self_capture needs mode "
                                         r"'serverless'$"):
        _alarms(mode=mode, self_capture=True)


# ------------------------------------------------------------------ async endpoints' graphs
def test_an_async_endpoints_traffic_is_its_model_latency_count_and_its_backlog_has_a_graph():
    """Async endpoints publish no Invocations (SageMaker's async monitoring guide): the traffic graph counts the
    requests that have a ModelLatency point, and the queue the backlog alarm watches is drawn, per endpoint."""
    stack, made, _, _ = _alarms(mode="async", settings=ServingAlarms(max_async_backlog=40))
    widgets = [stack.resolve(w.to_json())[0]["properties"] for w in made.widgets]
    assert [w["title"] for w in widgets] == ["churn: traffic and errors", "churn: model latency (µs)", "churn: async backlog"]
    traffic, _, backlog = widgets
    assert traffic["metrics"][0] == ["AWS/SageMaker", "ModelLatency", "EndpointName", ENDPOINT, "VariantName", "AllTraffic",
                                     {"label": "requests (ModelLatency count)", "stat": "SampleCount", "period": 60}]
    assert "Invocations" not in [m[1] for m in traffic["metrics"]]
    assert [(m[1], m[2:4], len(m), m[4].get("yAxis", "left"), m[4]["stat"]) for m in backlog["metrics"]] == [
        ("ApproximateBacklogSize", ["EndpointName", ENDPOINT], 5, "left", "Maximum"),
        ("HasBacklogWithoutCapacity", ["EndpointName", ENDPOINT], 5, "left", "Maximum"),
        ("ApproximateAgeOfOldestRequest", ["EndpointName", ENDPOINT], 5, "right", "Maximum"),
    ]
    assert backlog["annotations"]["horizontal"] == [{"value": 40, "label": "alarm", "yAxis": "left"}]


# Every kind of endpoint, with every optional alarm it can have: (mode, instance type, alarm settings, loading wait, self-capture).
_EVERY_KIND = [
    ("realtime", "ml.m5.xlarge", ServingAlarms(min_invocations_per_hour=30, max_overhead_latency_p99_ms=200), None, False),
    ("serverless", None, ServingAlarms(min_invocations_per_hour=30, max_overhead_latency_p99_ms=200), None, True),
    ("async", "ml.m5.xlarge", ServingAlarms(), None, False),
    ("multi_model", "ml.m5.xlarge", ServingAlarms(), 500, False),
]


@pytest.mark.parametrize("mode, instance_type, settings, loading_wait_ms, self_capture", _EVERY_KIND)
def test_every_page_an_endpoint_sends_says_where_to_look_and_points_to_its_runbook(mode, instance_type, settings,
                                                                                   loading_wait_ms, self_capture):
    """GIVEN an endpoint's alarms WHEN one that notifies people fires (a 5xx rate, a p99 latency, ...) THEN its text
    gives on-call the endpoint's state and its containers' log in the environment's region, and the runbook section
    that says what to do for that alarm (docs/monitoring.md, Endpoint alarms), within CloudWatch's 1,024 characters."""
    stack, made, _, _ = _alarms(mode, instance_type, settings=settings, loading_wait_ms=loading_wait_ms,
                                self_capture=self_capture)
    template = template_of(stack)
    paging = [a["Properties"] for a in [*of_type(template, "AWS::CloudWatch::Alarm").values(),
                                        *of_type(template, "AWS::CloudWatch::CompositeAlarm").values()]
              if a["Properties"].get("AlarmActions")]
    assert paging
    for alarm in paging:
        description = alarm["AlarmDescription"]
        name = alarm.get("AlarmName") or alarm["CompositeAlarmName"]
        assert f"aws sagemaker describe-endpoint --endpoint-name {ENDPOINT} --region eu-west-1" in description, name
        assert f"aws logs tail /aws/sagemaker/Endpoints/{ENDPOINT} --since 1h --region eu-west-1" in description, name
        assert description.endswith("What to do: (docs/monitoring.md, Endpoint alarms)."), name
        assert len(description) <= 1024, (name, "CloudWatch's limit on AlarmDescription")


def test_the_endpoint_runbook_covers_every_alarm_that_pages():
    """The runbook section names every endpoint alarm that can page (each suffix, as ``<endpoint>-<suffix>``)."""
    from tests.support import docs

    runbook = docs.section("### Endpoint alarms: what to do").text
    for mode, instance_type, settings, loading_wait_ms, self_capture in _EVERY_KIND:
        stack, _, _, _ = _alarms(mode, instance_type, settings=settings, loading_wait_ms=loading_wait_ms,
                                 self_capture=self_capture)
        template = template_of(stack)
        for alarm in [*of_type(template, "AWS::CloudWatch::Alarm").values(),
                      *of_type(template, "AWS::CloudWatch::CompositeAlarm").values()]:
            props = alarm["Properties"]
            if props.get("AlarmActions"):
                suffix = (props.get("AlarmName") or props["CompositeAlarmName"]).removeprefix(f"{ENDPOINT}-")
                assert f"`<endpoint>-{suffix}`" in runbook, suffix

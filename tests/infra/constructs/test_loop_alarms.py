"""LoopAlarms, built in a bare stack: per model the alarms that start a retrain (drift, slow drift, quality) and the
three that call people about the monitor (an unhealthy report; no report; data-quality violations in the requests), replayed over weeks of jittered daily runs;
plus the retrain trigger's own alarms (``handler_alarms``), and the
drift monitor's metric series (``monitor_series``).

The stand-ins are minimal: the people's topic, and the trigger function and its dead-letter queue imported by name.
The models (two binary - one judged on PR-AUC -, two multiclass and a regression one) are declared here, not read from config/mlops-loop.yaml.
"""

from __future__ import annotations

import json
from dataclasses import replace
import random
from typing import Any

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from constructs import Construct

from mlops_loop.app_builder import new_app
from mlops_loop.constructs import loop_alarms
from mlops_loop.constructs.loop_alarms import (
    LoopAlarms,
    dead_letter_alarm,
    dead_letter_backlog,
    handler_alarms,
    monitor_series,
    report_window_hours,
)
from mlops_loop.constructs.drift_monitor import MAX_RUNTIME_SECONDS
from mlops_loop.constructs.scheduled_job import MAX_EVENT_AGE_SECONDS, job_name_stem
from pipeline_code.core.problem import quality_alarm_key
from tests.support.alarm_eval import DAY, HOUR, MINUTE, MetricAlarm, Series, replay
from tests.support.cdk_outdirs import bare_outdir

PREFIX = "shop-dev"
# name -> the monitor key its quality alarm watches, as the Operations stack derives it from the model's type and
# primary metric; "ranking" is multiclass judged on macro F1.
MODELS = {"returns": quality_alarm_key("binary_classification"), "routing": quality_alarm_key("multiclass_classification"),
          "ranking": quality_alarm_key("multiclass_classification", "macro_f1"), "basket": quality_alarm_key("regression"),
          "fraud": quality_alarm_key("binary_classification", "pr_auc")}
DRIFT = ("data-drift", "prediction-drift", "slow-drift")
TRIGGER, DEAD_LETTERS = "shop-dev-retrain-trigger", "shop-dev-retrain-dlq"


class _Built:
    def __init__(self, stack: Stack, alarms: LoopAlarms, topic: sns.Topic):
        self.stack, self.alarms = stack, alarms
        self.template = Template.from_stack(stack)
        self.topic_ref = {"Ref": stack.get_logical_id(topic.node.default_child)}
        resources = self.template.find_resources("AWS::CloudWatch::Alarm")
        self.by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in resources.values()}
        self._name_of_id = {k: a["Properties"]["AlarmName"] for k, a in resources.items()}

    def name_of(self, alarm: cloudwatch.Alarm) -> str:
        """The AlarmName in the template of the alarm construct ``alarm``."""
        return self._name_of_id[self.stack.get_logical_id(alarm.node.default_child)]


def _stand_ins(stack: Stack) -> dict[str, Any]:
    return dict(
        topic=sns.Topic(stack, "Topic"),
        trigger_function=lambda_.Function.from_function_name(stack, "Trigger", TRIGGER),
        dead_letter_queue=sqs.Queue.from_queue_arn(stack, "DeadLetters", f"arn:aws:sqs:eu-west-1:123456789012:{DEAD_LETTERS}"),
    )


def _build(models: dict[str, str] = MODELS, *, max_auc_drop: float = 0.04, max_quality_drop: float = 0.15,
           **options: str) -> _Built:
    """GIVEN a bare stack with the stand-ins WHEN the loop's alarms of ``models`` (name -> quality key) are added (with
    ``options``: project, monitor_schedule)."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    deps = _stand_ins(stack)
    alarms = LoopAlarms(stack, "Alarms", name_prefix=PREFIX, environment="dev", quality_keys=models, max_auc_drop=max_auc_drop,
                        max_quality_drop=max_quality_drop, **deps, **options)
    return _Built(stack, alarms, deps["topic"])


@pytest.fixture(scope="module")
def built() -> _Built:
    return _build()


def _filled(alarm: dict) -> dict:
    """A retrain alarm's properties with its metric where a single-metric alarm has it: the alarm reads
    ``FILL(m, 0)`` over the monitor's metric ``m`` (a day without a value is a 0: below every retrain threshold)."""
    expression, stat = alarm["Metrics"]
    assert expression == {"Id": "expr_1", "Expression": "FILL(m, 0)", "ReturnData": True,
                          "Label": f"{stat['MetricStat']['Metric']['MetricName']} (0 on a day without a value)"}
    assert (stat["Id"], stat["ReturnData"]) == ("m", False)
    assert not {"MetricName", "Namespace", "Dimensions", "Statistic", "Period"} & set(alarm), "Metrics replaces them"
    metric = stat["MetricStat"]
    return {**alarm, **metric["Metric"], "Statistic": metric["Stat"], "Period": metric["Period"]}


def _on_monitor_metric(alarm: dict, model: str, metric: str, statistic: str) -> None:
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (f"mlops-loop/dev/{model}/monitoring", metric, statistic)
    assert alarm["Dimensions"] == [{"Name": "Environment", "Value": "dev"}, {"Name": "Model", "Value": model}]
    # One point per daily monitor run, judged run by run.
    assert (alarm["Period"], alarm["EvaluationPeriods"]) == (86_400, 1)


# ------------------------------------------------------------------ retrain alarms
def _then(model: str) -> str:
    """What a retrain alarm's description says entering ALARM does: a request the trigger may refuse, and how to see
    which (the pause, the trigger's decision, the pipeline's runs), every AWS command in the stack's region."""
    return (f"Retraining is requested, not certain: the retrain trigger starts {PREFIX}-{model}-training unless retraining "
            "is paused, a run is executing, the cooldown after the last judged run or the daily start limit holds it; the "
            "hourly sweep asks again while this alarm stays in ALARM. Paused? python -m mlops_cli.retraining --env dev "
            f"status. Its decision: aws logs tail /aws/lambda/{PREFIX}-retrain-trigger --since 2h --region eu-west-1. "
            f"Runs: aws sagemaker list-pipeline-executions --pipeline-name {PREFIX}-{model}-training --sort-order "
            "Descending --max-items 5 --region eu-west-1")


def test_no_retrain_alarm_promises_a_retrain_and_each_fits_cloudwatchs_description_limit(built: _Built):
    """The trigger starts nothing while retraining is paused, a run executes, or the cooldown or daily limit holds:
    "retraining starts" was a promise the alarm cannot keep."""
    for model, alarms in built.alarms.retrain_alarms.items():
        for alarm in alarms:
            description = built.by_name[built.name_of(alarm)]["AlarmDescription"]
            assert "retraining starts" not in description and description.endswith(_then(model))
            assert len(description) <= 1024, "CloudWatch's limit on AlarmDescription"


def test_each_model_has_its_retrain_alarms_named_with_the_retrain_prefix(built: _Built):
    """Entering ALARM under ``<prefix>-<model>-retrain-`` is what starts the model's retraining."""
    assert list(built.alarms.retrain_alarms) == list(MODELS)
    for model, alarms in built.alarms.retrain_alarms.items():
        assert [built.name_of(a) for a in alarms] == [f"{PREFIX}-{model}-retrain-{name}" for name in (*DRIFT, "quality")]


@pytest.mark.parametrize(("name", "metric", "finding"), [
    ("data-drift", "DataDriftScore", "a feature drifted (PSI above its calibrated threshold)"),
    ("prediction-drift", "PredictionDriftScore", "predictions drifted (PSI above its calibrated threshold)"),
    ("slow-drift", "CumulativeDriftScore", "a feature or the predictions stayed near their drift threshold run after run (CUSUM)"),
])
def test_a_drift_alarm_fires_when_the_calibrated_score_reaches_one_and_reads_a_day_without_a_value_as_no_drift(built: _Built, name, metric, finding):
    alarm = _filled(built.by_name[f"{PREFIX}-returns-retrain-{name}"])
    _on_monitor_metric(alarm, "returns", metric, "Maximum")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "notBreaching", "no traffic, no drift"
    assert alarm["AlarmDescription"] == f"returns: {finding}. {_then('returns')}"
    assert alarm["AlarmActions"] == [built.topic_ref]


@pytest.mark.parametrize(("model", "metric", "threshold", "description"), [
    ("returns", "AucDrop", 0.04, "returns: AUC dropped by >= 0.04 on labelled traffic."),
    ("routing", "AucDrop", 0.04, "routing: AUC dropped by >= 0.04 on labelled traffic."),
    ("ranking", "QualityDrop", 0.15, "ranking: its primary metric dropped by >= 0.15 on labelled traffic."),
    ("basket", "QualityDrop", 0.15, "basket: its primary metric dropped by >= 0.15 on labelled traffic."),
    ("fraud", "QualityDrop", 0.15, "fraud: its primary metric dropped by >= 0.15 on labelled traffic."),
], ids=["binary", "multiclass", "multiclass-on-macro-f1", "regression", "binary-on-pr-auc"])
def test_the_quality_alarm_watches_the_auc_drop_of_a_classifier_and_the_primary_metric_drop_of_a_regression(
        built: _Built, model, metric, threshold, description):
    alarm = _filled(built.by_name[f"{PREFIX}-{model}-retrain-quality"])
    _on_monitor_metric(alarm, model, metric, "Maximum")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (threshold, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "notBreaching", "no labels yet is no quality loss"
    assert alarm["AlarmDescription"] == f"{description} {_then(model)}"
    assert alarm["AlarmActions"] == [built.topic_ref]


def test_the_quality_thresholds_follow_the_settings():
    made = _build({"returns": "auc_drop", "basket": "quality_drop"}, max_auc_drop=0.07, max_quality_drop=0.3)
    assert made.by_name[f"{PREFIX}-returns-retrain-quality"]["Threshold"] == 0.07
    assert made.by_name[f"{PREFIX}-basket-retrain-quality"]["Threshold"] == 0.3


@pytest.mark.parametrize("threshold", [0, -0.01])
def test_a_retrain_threshold_a_filled_day_would_breach_is_refused(threshold):
    """The config allows no such threshold (max_auc_drop, max_quality_drop > 0; drift at 1): the refusal guards the
    construct's own use."""
    with pytest.raises(ValueError, match=rf"^AucDrop: a retrain threshold of {threshold} would be breached by every day "
                                         r"without a value \(filled with 0\); use a threshold above 0$"):
        _build({"returns": "auc_drop"}, max_auc_drop=threshold)


# ------------------------------------------------------------------ people alarms
def test_an_unhealthy_report_pages_people_once_and_never_retrains(built: _Built):
    alarm = built.by_name[f"{PREFIX}-basket-monitor-unhealthy"]
    _on_monitor_metric(alarm, "basket", "MonitorHealthy", "Minimum")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "LessThanThreshold")
    # A report judges itself: a day without one is the no-report alarm's finding, not this one's.
    assert alarm["TreatMissingData"] == "ignore"
    description = alarm["AlarmDescription"]
    assert description.startswith("basket: the drift monitor's latest report says unhealthy")
    # Whether drift was judged at all: an error confined to one part (capture short of the endpoint's requests, a label
    # feed that stopped) leaves the window's drift judged and published, and the page must not say otherwise.
    assert ("If its 'trusted' is false, the window's drift and quality were not judged and no retrain can start; if "
            "true, one part failed (e.g. capture short of the endpoint's requests, a label feed that stopped) and the "
            "rest was judged and published as usual.") in description
    assert "fix the cause (baseline, capture, schema, traffic, labels)" in description
    # It says where to look: the report (its errors section) and the job's log.
    assert "s3://<inference bucket>/monitor/basket/<run>/" in description and "'Monitoring errors'" in description
    assert f"/aws/sagemaker/ProcessingJobs (streams {job_name_stem('processing', PREFIX, 'basket')}-<run>/" in description
    assert alarm["AlarmActions"] == [built.topic_ref]
    assert not f"{PREFIX}-basket-monitor-unhealthy".startswith(f"{PREFIX}-basket-retrain-")


def test_a_data_quality_violation_in_a_days_report_pages_people_and_never_retrains(built: _Built):
    """A field the callers stopped filling (or renamed), values outside the training range, unseen categories: the
    monitor counts them (DataQualityViolations) but PSI compares only the values present and a retrain learns from the
    curated data, so people are told, once per day with violations, and nothing retrains."""
    alarm = _filled(built.by_name[f"{PREFIX}-returns-monitor-data-quality"])
    _on_monitor_metric(alarm, "returns", "DataQualityViolations", "Maximum")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"
    description = alarm["AlarmDescription"]
    assert description.startswith("returns: the drift monitor found data-quality violations in the day's requests")
    assert "s3://<inference bucket>/monitor/returns/<run>/" in description and "'Data quality'" in description
    assert description.endswith("No retrain starts on this alarm.") and len(description) <= 1024
    assert alarm["AlarmActions"] == [built.topic_ref]
    assert not f"{PREFIX}-returns-monitor-data-quality".startswith(f"{PREFIX}-returns-retrain-")


@pytest.mark.parametrize("extra", [0, 3])
def test_replayed_a_day_of_data_quality_violations_pages_once_and_a_clean_day_clears_it(extra):
    made = _build({"returns": "auc_drop"})
    alarm = MetricAlarm.from_properties(made.by_name[f"{PREFIX}-returns-monitor-data-quality"])
    series = Series((d * DAY + SCHEDULED + HOUR, value) for d, value in {0: 2, 1: 3, 2: 0, 4: 1}.items())
    replayed = replay(alarm, series, SCHEDULED, 6 * DAY, extra=extra, initial="OK")
    # Days 0-1 keep one page open; day 2 is clean; day 3 publishes nothing (no evidence); day 4 pages again.
    assert len(replayed.pages()) == 2
    assert replayed.state_at(2 * DAY + SCHEDULED + 2 * HOUR) == "OK"


def test_a_monitor_that_stops_reporting_pages_after_a_day_plus_its_latest_report_plus_an_hour(built: _Built):
    """28 hourly periods for the default daily schedule: 24 h between runs, a start retried for up to an hour, a job
    stopped after 2 hours, an hour of slack."""
    alarm = built.by_name[f"{PREFIX}-basket-monitor-no-report"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("mlops-loop/dev/basket/monitoring", "MonitorHealthy", "SampleCount")
    assert alarm["Dimensions"] == [{"Name": "Environment", "Value": "dev"}, {"Name": "Model", "Value": "basket"}]
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3600, 28, 28)
    assert built.alarms.report_window_hours == 28
    # CloudWatch's limit for periods of an hour or more: Period x EvaluationPeriods at most 7 days.
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 604_800
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (1, "LessThanThreshold", "breaching")
    description = alarm["AlarmDescription"]
    assert description.startswith("basket: no drift-monitor report for 28 hours (it runs cron(0 3 * * ? *) UTC)")
    assert f"processing jobs {job_name_stem('processing', PREFIX, 'basket')}-*" in description
    assert "EventBridge Scheduler" in description and "/aws/sagemaker/ProcessingJobs" in description
    assert len(description) <= 1024, "CloudWatch's limit on AlarmDescription"
    assert alarm["AlarmActions"] == [built.topic_ref]
    assert not f"{PREFIX}-basket-monitor-no-report".startswith(f"{PREFIX}-basket-retrain-")


def test_each_monitor_page_names_the_reports_bucket_and_how_to_find_the_newest_run():
    """GIVEN the environment's inference bucket WHEN a monitor page goes out (unhealthy, data quality, no report) THEN it
    names the bucket itself, not "<inference bucket>", and the unhealthy and data-quality pages give the command that
    finds the newest run (the newest job of the model's stem: its name after the stem is the run's folder), in the
    environment's region, within CloudWatch's 1,024 characters."""
    bucket = "shop-dev-inference-123456789012-eu-west-1"
    made = _build({"basket": "quality_drop"}, inference_bucket=bucket)
    stem = job_name_stem("processing", PREFIX, "basket")
    newest = (f"aws sagemaker list-processing-jobs --name-contains {stem}- --sort-by CreationTime --sort-order "
              "Descending --max-results 1 --region eu-west-1")
    for name in ("monitor-unhealthy", "monitor-data-quality", "monitor-no-report"):
        description = made.by_name[f"{PREFIX}-basket-{name}"]["AlarmDescription"]
        assert f"s3://{bucket}/monitor/basket/" in description and "<inference bucket>" not in description, name
        assert (newest in description) == (name != "monitor-no-report"), name
        assert len(description) <= 1024, (name, "CloudWatch's limit on AlarmDescription")


@pytest.mark.parametrize("schedule", ["cron(30 5 * * ? *)", "rate(1 day)", "rate(24 hours)"])
def test_the_no_report_window_follows_the_configured_daily_schedule(schedule):
    made = _build({"basket": "quality_drop"}, monitor_schedule=schedule)
    alarm = made.by_name[f"{PREFIX}-basket-monitor-no-report"]
    assert alarm["EvaluationPeriods"] == report_window_hours(schedule) == 28
    assert f"(it runs {schedule} UTC)" in alarm["AlarmDescription"]


def test_a_schedule_that_is_not_daily_is_refused_with_the_schedule_check_message():
    with pytest.raises(ValueError, match=r"^'cron\(0 3 \? \* MON \*\)' does not run once a day; "):
        report_window_hours("cron(0 3 ? * MON *)")


def test_a_window_longer_than_cloudwatch_evaluates_is_refused(monkeypatch):
    """CloudWatch evaluates at most 7 days (Period x EvaluationPeriods <= 604,800 s for periods of an hour or more)."""
    monkeypatch.setattr(loop_alarms, "run_interval_seconds", lambda schedule: 7 * 86_400)
    with pytest.raises(ValueError, match=r"^monitoring.schedule 'rate\(1 day\)': a staleness window of 172 hours exceeds "
                                         r"the 7 days CloudWatch evaluates an alarm over; schedule the drift monitor at least weekly$"):
        report_window_hours("rate(1 day)")


def test_the_trigger_failing_is_on_the_dashboard_and_only_its_dead_letters_page_people(built: _Built):
    """Lambda retries a failed trigger invocation twice and dead-letters one that fails every attempt: an error a
    retry gets past pages nobody, an exhausted one pages once (the dead-letter alarm), not twice."""
    errors, dead = built.by_name[f"{PREFIX}-trigger-errors"], built.by_name[f"{PREFIX}-dead-letters"]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": TRIGGER}]
    assert errors["AlarmDescription"] == (
        "An attempt of the retrain trigger failed (e.g. the retraining pause could not be read); check its logs. Pages "
        "nobody: Lambda retries a failed invocation twice, and an event that fails every attempt reaches the dead-letter "
        f"queue, whose alarm {PREFIX}-dead-letters pages.")
    # Arrivals, not the backlog: a message kept in the queue must not silence the next one.
    assert (dead["Namespace"], dead["MetricName"], dead["Statistic"]) == ("AWS/SQS", "NumberOfMessagesSent", "Sum")
    assert dead["Dimensions"] == [{"Name": "QueueName", "Value": DEAD_LETTERS}]
    assert dead["AlarmDescription"] == ("A retrain request (drift alarm, schedule or sweep) was not processed by the retrain "
                                        "trigger, after three attempts or undelivered; see its DLQ (docs/monitoring.md, Dead-letter queues)")
    assert (errors["Period"], errors["EvaluationPeriods"], errors["Threshold"]) == (300, 1, 1)
    # Any 5 minutes of the last 20: a dead-letter queue idles, and SQS reports its first message's point late
    assert (dead["Period"], dead["EvaluationPeriods"], dead["DatapointsToAlarm"], dead["Threshold"]) == (300, 4, 1, 1)
    for alarm in (errors, dead):
        assert (alarm["ComparisonOperator"], alarm["TreatMissingData"]) == ("GreaterThanOrEqualToThreshold", "notBreaching")
    assert "AlarmActions" not in errors and "OKActions" not in errors and "InsufficientDataActions" not in errors
    assert dead["AlarmActions"] == [built.topic_ref]


def test_people_alarms_are_each_models_monitor_health_and_data_quality_then_the_trigger_alarms(built: _Built):
    assert [built.name_of(a) for a in built.alarms.people_alarms] == [
        *(f"{PREFIX}-{model}-{name}" for model in MODELS for name in ("monitor-unhealthy", "monitor-no-report", "monitor-data-quality")),
        f"{PREFIX}-trigger-errors", f"{PREFIX}-dead-letters"]


def test_all_alarms_lists_every_alarm_in_the_template_retrain_alarms_first(built: _Built):
    """The dashboard shows ``all_alarms``: an alarm left out of it would be invisible there."""
    names = [built.name_of(a) for a in built.alarms.all_alarms]
    retrain = [built.name_of(a) for alarms in built.alarms.retrain_alarms.values() for a in alarms]
    assert names == retrain + [built.name_of(a) for a in built.alarms.people_alarms]
    assert len(names) == 7 * len(MODELS) + 2
    assert sorted(names) == sorted(built.by_name)


def test_without_models_only_the_trigger_alarms_exist():
    made = _build({})
    assert made.alarms.retrain_alarms == {}
    assert sorted(made.by_name) == [f"{PREFIX}-dead-letters", f"{PREFIX}-trigger-errors"]
    assert [made.name_of(a) for a in made.alarms.all_alarms] == [f"{PREFIX}-trigger-errors", f"{PREFIX}-dead-letters"]


# ------------------------------------------------------------------ handler_alarms on its own
def _handler_alarms(**options: Any) -> tuple[list[cloudwatch.Alarm], dict[str, dict], dict]:
    """GIVEN a bare stack with the stand-ins WHEN handler_alarms is called for a deploy handler in a scope of its own
    (with ``options``) THEN the alarms, the template's alarms by name and the topic's reference."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    deps = _stand_ins(stack)
    scope = Construct(stack, "Deploy")
    alarms = handler_alarms(scope, name_prefix=PREFIX, names=("deploy-errors", "deploy-dead-letters"), function=deps["trigger_function"],
                            queue=deps["dead_letter_queue"], errors_description="deploy failed", dead_letters_description="deploy DLQ",
                            topic=deps["topic"], **options)
    resources = Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").values()
    topic_ref = {"Ref": stack.get_logical_id(deps["topic"].node.default_child)}
    return alarms, {a["Properties"]["AlarmName"]: a["Properties"] for a in resources}, topic_ref


def test_handler_alarms_names_both_alarms_after_the_prefix_in_the_given_scope_and_only_dead_letters_page():
    """The Operations stack reuses it for the deploy handler, with its own names, descriptions and scope. The errors
    alarm is for the dashboard: Lambda retries the handler, and what fails every attempt reaches the dead-letter queue,
    whose alarm pages once."""
    alarms, by_name, topic_ref = _handler_alarms()
    assert [a.node.path for a in alarms] == ["Bare/Deploy/deploy-errors", "Bare/Deploy/deploy-dead-letters"]
    assert {n: (a["MetricName"], a["AlarmDescription"]) for n, a in by_name.items()} == {
        f"{PREFIX}-deploy-errors": ("Errors", "deploy failed. Pages nobody: Lambda retries a failed invocation twice, and "
                                    "an event that fails every attempt reaches the dead-letter queue, whose alarm "
                                    f"{PREFIX}-deploy-dead-letters pages."),
        f"{PREFIX}-deploy-dead-letters": ("NumberOfMessagesSent", "deploy DLQ"),
    }
    assert "AlarmActions" not in by_name[f"{PREFIX}-deploy-errors"]
    assert by_name[f"{PREFIX}-deploy-dead-letters"]["AlarmActions"] == [topic_ref]


def test_handler_alarms_page_on_errors_too_when_asked():
    """For a handler whose retry may come too late to do its job (the rollout parity check)."""
    _, by_name, topic_ref = _handler_alarms(page_on_errors=True)
    assert by_name[f"{PREFIX}-deploy-errors"]["AlarmDescription"] == "deploy failed"
    assert [a["AlarmActions"] for a in by_name.values()] == [[topic_ref], [topic_ref]]


# ------------------------------------------------------------------ dead letters on their own
def test_a_dead_letter_alarm_pages_on_each_arrival_and_the_backlog_is_a_graph_that_pages_nobody():
    """GIVEN a queue WHEN a dead-letter alarm and the backlog graph are made for it THEN the alarm counts messages sent
    to the queue in 5 minutes (a message left in it does not hold the alarm in ALARM) and the graph shows what waits."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    deps = _stand_ins(stack)
    dead_letter_alarm(stack, name_prefix=PREFIX, name="monitor-dead-letters", queue=deps["dead_letter_queue"],
                      description="a monitor run did not start", topic=deps["topic"])
    widget = dead_letter_backlog({"monitor schedules": deps["dead_letter_queue"]})
    (alarm,) = Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").values()
    props = alarm["Properties"]
    assert (props["AlarmName"], props["MetricName"], props["Statistic"], props["Period"]) == (
        f"{PREFIX}-monitor-dead-letters", "NumberOfMessagesSent", "Sum", 300)
    assert (props["Threshold"], props["ComparisonOperator"], props["TreatMissingData"]) == (
        1, "GreaterThanOrEqualToThreshold", "notBreaching")
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": DEAD_LETTERS}] and len(props["AlarmActions"]) == 1
    rendered = json.dumps(stack.resolve(widget.to_json()))
    assert "ApproximateNumberOfMessagesVisible" in rendered and DEAD_LETTERS in rendered and "monitor schedules" in rendered


# ------------------------------------------------------------------ monitor_series
def test_monitor_series_is_one_models_monitor_metric_one_point_per_daily_run():
    metric = monitor_series("prod", "basket", "quality_drop")
    assert (metric.namespace, metric.metric_name, metric.statistic) == ("mlops-loop/prod/basket/monitoring", "QualityDrop", "Maximum")
    assert metric.dimensions == {"Environment": "prod", "Model": "basket"}
    assert metric.period.to_seconds() == 86_400
    assert monitor_series("prod", "basket", "records", "Sum").statistic == "Sum"


def test_each_models_alarms_watch_its_own_namespace_in_its_project_and_environment():
    """GIVEN the alarms of project "acme" WHEN synthesized THEN every alarm on a monitor metric reads the namespace of
    its own model in its environment (the one only that model's monitor role may publish in), never another's."""
    built = _build(project="acme")
    watched: dict[str, set[str]] = {}
    for alarm in built.template.find_resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        metrics = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m] or [props]
        for metric in metrics:
            if metric.get("Namespace", "").endswith("/monitoring"):
                model = next(d["Value"] for d in metric["Dimensions"] if d["Name"] == "Model")
                watched.setdefault(model, set()).add(metric["Namespace"])
    assert watched == {model: {f"acme/dev/{model}/monitoring"} for model in MODELS}


# ------------------------------------------------------------------ the health alarms, replayed
# The synthesized alarms replayed over weeks of daily runs with tests/support/alarm_eval.py (CloudWatch's sliding
# window and missing-data rules, evaluated every minute). The extra periods CloudWatch looks back over when data is
# missing are not documented per period: every claim holds for none, two and six of them.
EXTRAS = (0, 2, 6)
SCHEDULED = 3 * HOUR  # cron(0 3 * * ? *)
EARLIEST = 4 * MINUTE  # provisioning and a small window
LATEST = MAX_EVENT_AGE_SECONDS + MAX_RUNTIME_SECONDS  # started after an hour of retries, stopped at its maximum runtime
DAYS = 21


def _health() -> tuple[MetricAlarm, MetricAlarm]:
    made = _build({"basket": "quality_drop"})
    return (MetricAlarm.from_properties(made.by_name[f"{PREFIX}-basket-monitor-unhealthy"]),
            MetricAlarm.from_properties(made.by_name[f"{PREFIX}-basket-monitor-no-report"]))


def _reports(offsets: list[float], values: dict[int, float] | None = None) -> Series:
    """One MonitorHealthy point per day ``d`` at 03:00 + ``offsets[d]`` (the job publishes when it ends), 1 unless
    ``values`` says otherwise."""
    return Series((d * DAY + SCHEDULED + offset, (values or {}).get(d, 1.0)) for d, offset in enumerate(offsets))


def _jittered(days: int = DAYS) -> list[list[float]]:
    """Run end times: the worst alternation (earliest, then latest the next day: 24 h + 2 h 56 min between reports),
    and random ones between the earliest and the latest."""
    rng = random.Random(7)
    return [[EARLIEST if d % 2 == 0 else LATEST for d in range(days)],
            [rng.uniform(EARLIEST, LATEST) for _ in range(days)],
            [rng.uniform(EARLIEST, 2 * HOUR) for _ in range(days)]]


@pytest.fixture(scope="module")
def health() -> tuple[MetricAlarm, MetricAlarm]:
    return _health()


@pytest.mark.parametrize("extra", EXTRAS)
def test_replayed_a_healthy_monitor_whose_runs_end_up_to_three_hours_apart_never_pages(health, extra):
    unhealthy, silent = health
    for offsets in _jittered():
        reports = _reports(offsets)
        # From the first report on (before it, a fresh environment's no-report alarm is in ALARM: see below).
        start, end = SCHEDULED + offsets[0] + MINUTE, DAYS * DAY
        for alarm in (unhealthy, silent):
            assert replay(alarm, reports, start, end, extra=extra, initial="OK").pages() == [], (alarm.name, offsets[:4])


@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize("offsets", _jittered(8), ids=["alternating", "random", "within-two-hours"])
def test_replayed_a_monitor_that_stops_pages_once_between_28_hours_and_a_day_and_a_half_after_its_last_report(
        health, extra, offsets):
    unhealthy, silent = health
    reports = _reports(offsets)  # 8 runs, then nothing
    last = 7 * DAY + SCHEDULED + offsets[-1]
    replayed = replay(silent, reports, SCHEDULED + offsets[0] + MINUTE, 12 * DAY, extra=extra, initial="OK")
    (page,) = replayed.pages()
    assert 28 * HOUR <= page - last <= (28 + extra + 1) * HOUR <= 36 * HOUR
    # The next day's run was due at most 27 hours after the last report: the page comes a few hours after it.
    assert replay(unhealthy, reports, SCHEDULED + offsets[0] + MINUTE, 12 * DAY, extra=extra, initial="OK").pages() == []


@pytest.mark.parametrize("extra", EXTRAS)
def test_replayed_one_unhealthy_report_pages_once_within_minutes_and_clears_on_the_next_healthy_one(health, extra):
    unhealthy, silent = health
    offsets = _jittered()[1]
    reports = _reports(offsets, {10: 0.0})
    bad = 10 * DAY + SCHEDULED + offsets[10]
    start = SCHEDULED + offsets[0] + MINUTE
    replayed = replay(unhealthy, reports, start, DAYS * DAY, extra=extra, initial="OK")
    (page,) = replayed.pages()
    assert 0 < page - bad <= 2 * MINUTE
    # In ALARM until a healthy report is the newest one the window holds; OK from then on.
    assert replayed.state_at(bad + 20 * HOUR) == "ALARM"
    assert replayed.state_at(12 * DAY + SCHEDULED + offsets[12] + 2 * MINUTE) == "OK"
    assert replay(silent, reports, start, DAYS * DAY, extra=extra, initial="OK").pages() == []


@pytest.mark.parametrize("extra", EXTRAS)
def test_replayed_an_unhealthy_report_every_day_keeps_one_page_open_not_one_a_day(health, extra):
    unhealthy, _ = health
    offsets = _jittered(10)[0]
    replayed = replay(unhealthy, _reports(offsets, {d: 0.0 for d in range(2, 10)}), SCHEDULED + offsets[0] + MINUTE,
                      10 * DAY, extra=extra, initial="OK")
    assert len(replayed.pages()) == 1


def test_replayed_a_fresh_environment_shows_no_report_until_the_first_run(health):
    """Documented limitation: with no report yet every hour is missing, and missing hours are what the alarm counts."""
    _, silent = health
    replayed = replay(silent, _reports([HOUR, HOUR]), 0, 2 * DAY, extra=2)
    assert replayed.pages() == [0]
    assert replayed.state_at(SCHEDULED + HOUR + MINUTE) == "OK"


# ------------------------------------------------------------------ the retrain alarms, replayed with the retrain trigger
COOLDOWN = 24 * HOUR  # monitoring.retraining_cooldown_hours' default
RUN = HOUR  # a pipeline run; it succeeds (it answered the drift), so its start holds the cooldown


def _retrain_alarms() -> dict[str, MetricAlarm]:
    made = _build({"returns": "auc_drop"})
    return {name: MetricAlarm.from_properties(made.by_name[f"{PREFIX}-returns-retrain-{name}"]) for name in (*DRIFT, "quality")}


def _daily(values: dict[int, float], offset: float) -> Series:
    """The monitor's value of day ``d`` at 03:00 + ``offset`` (when its run ends); a day not in ``values`` publishes none
    (a window it did not trust, a quiet day, one under min_rows, a day without judged labels)."""
    return Series((d * DAY + SCHEDULED + offset, value) for d, value in values.items())


def _retrains(alarm: MetricAlarm, series: Series, start: float, days: int, *, extra: int) -> list[float]:
    """When the retrain trigger starts the pipeline: on the alarm's entry into ALARM (the EventBridge rule) and at every
    hourly sweep that finds it in ALARM, unless the last start is less than the cooldown ago (a run under way is too)."""
    replayed = replay(alarm, series, start, days * DAY, extra=extra, initial="OK")
    asks = sorted({*replayed.pages(), *(h * HOUR for h in range(int(start // HOUR) + 1, days * 24)
                                        if replayed.state_at(h * HOUR) == "ALARM")})
    starts: list[float] = []
    for now in asks:
        if not starts or now - starts[-1] >= max(COOLDOWN, RUN):
            starts.append(now)
    return starts


@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize("fill_empty", [False, True], ids=["fill-needs-a-point", "fill-fills-an-empty-range"])
@pytest.mark.parametrize("offset", [EARLIEST, LATEST], ids=["earliest", "latest"])
@pytest.mark.parametrize("name", [*DRIFT, "quality"])
def test_replayed_a_breaching_day_then_days_without_a_value_retrains_once_not_once_a_day(name, offset, fill_empty, extra):
    """The trial's replay: day 0 breaches (drift 1.9, or an AUC drop twice the threshold), days 1-3 publish no value,
    day 4 a low one. Each day's evidence is judged once: one retraining. Before FILL, CloudWatch kept judging day 0's
    point through the days without one (the newest real point of its range) and the sweep restarted the pipeline every
    day the cooldown allowed, on the same evidence."""
    alarm = replace(_retrain_alarms()[name], fill_empty=fill_empty)
    high, low = 2 * alarm.threshold, alarm.threshold / 3
    series = _daily({0: high, 4: low}, offset)
    start = SCHEDULED + offset - MINUTE
    (started,) = _retrains(alarm, series, start, 7, extra=extra)
    assert 0 < started - (SCHEDULED + offset) <= 2 * MINUTE, "the entry into ALARM asks at once"
    # The same alarm without FILL (the defect): one start a day for every extra day CloudWatch looks back over.
    stale = _retrains(replace(alarm, fill=None), series, start, 7, extra=extra)
    assert len(stale) == 1 + min(extra, 3)


@pytest.mark.parametrize("extra", EXTRAS)
def test_replayed_a_breach_every_day_still_asks_again_once_the_cooldown_is_over(extra):
    """Fresh evidence is not lost: a model that drifts day after day is retrained again each day the cooldown allows."""
    alarm = _retrain_alarms()["data-drift"]
    series = _daily({d: 1.9 for d in range(4)}, LATEST)
    starts = _retrains(alarm, series, SCHEDULED + LATEST - MINUTE, 6, extra=extra)
    assert len(starts) == 4 and all(COOLDOWN <= b - a < COOLDOWN + HOUR for a, b in zip(starts, starts[1:]))


def test_the_docs_count_the_loop_alarms_each_model_adds_to_the_dashboard(built: _Built):
    """The documentation's estimate of when the dashboard's alarm status rows split (100 alarms per widget) counts each
    model's loop alarms: retrain alarms and the monitor's people alarms, the trigger's two aside."""
    import re

    from tests.support import docs

    per_model = (len(built.alarms.all_alarms) - 2) // len(MODELS)
    words = {6: "six", 7: "seven", 8: "eight", 9: "nine"}
    said = re.search(r"about (\w+) loop alarms per\s+model", docs.all_text())
    assert said and said.group(1) == words.get(per_model, str(per_model))

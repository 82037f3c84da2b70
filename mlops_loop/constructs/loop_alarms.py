"""The alarms that close the loop (retrain on drift or quality loss) and the ones that call people."""

from __future__ import annotations

import functools
import math
from typing import Callable, Mapping, Optional

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code.core.commands import cli_command
from pipeline_code.core.contract import (
    DATA_QUALITY_ALARM,
    DATA_QUALITY_ALARM_KEY,
    DEFAULT_PROJECT,
    DRIFT_SCORE_ALARM,
    MONITOR_DIMENSIONS,
    QUALITY_RETRAIN_ALARM,
    RETRAIN_DRIFT_ALARMS,
    monitor_metric,
    monitor_namespace,
    inference_prefix,
    pipeline_name,
    retrain_alarm_prefix,
)

from ..config.schedules import run_interval_seconds
from ..config.monitoring import MonitoringConfig
from ..nag import acknowledge
from .cdk_reads import days, hours, minutes, once_per
from .drift_monitor import MAX_RUNTIME_SECONDS
from .retraining_trigger import retrain_trigger_function_name
from .scheduled_job import MAX_EVENT_AGE_SECONDS, job_name_stem

# What the monitor pages name as the reports' bucket when the stack does not give it.
INFERENCE_BUCKET_PLACEHOLDER = "<inference bucket>"
# The monitor runs daily: one evaluation period spans one run.
MONITOR_PERIOD = days(1)
DEFAULT_MONITOR_SCHEDULE: str = MonitoringConfig.model_fields["schedule"].default
# The staleness alarm counts reports per hour: with periods of an hour or more CloudWatch allows an evaluation
# range (Period x EvaluationPeriods) of up to 7 days (shorter periods: 1 day), and hour-sized buckets keep the
# extra periods CloudWatch looks back over when data is missing to hours, not days.
STALENESS_PERIOD = hours(1)
MAX_EVALUATION_SECONDS = 7 * 24 * 3600
# Beyond a run's latest possible report (start retried for up to an hour, job stopped after its maximum runtime):
# instance provisioning, the upload of the report and CloudWatch's ingestion delay.
REPORT_SLACK_SECONDS = 3600
# The value a retrain alarm reads for a day whose monitor run published none (filled_daily): no evidence, no retrain.
FILLED_DAY = 0
# The count of failed data-quality checks in a day's report that pages (the data-quality alarm): one.
DATA_QUALITY_THRESHOLD = 1
# What each drift alarm's ALARM state means, for its description.
DRIFT_ALARM_FINDINGS = {
    "data-drift": "a feature drifted (PSI above its calibrated threshold)",
    "prediction-drift": "predictions drifted (PSI above its calibrated threshold)",
    "slow-drift": "a feature or the predictions stayed near their drift threshold run after run (CUSUM)",
}


def monitor_series(environment: str, model: str, key: str, statistic: str = "Maximum", *,
                   project: str = DEFAULT_PROJECT, period: Duration = MONITOR_PERIOD) -> cloudwatch.Metric:
    """The drift monitor's metric ``key`` (``core.contract.monitor_metric``) for one model, one point per daily run
    (or per ``period``), in that model's namespace in ``environment`` (``core.contract.monitor_namespace`` of
    ``project``, default: the default project), which only the model's own monitor role may publish in."""
    return _series(monitor_namespace(project, environment, model), environment, model, key, statistic, period)


# Made once per process for each series: a Metric is an immutable value (``with_`` makes a new one), and the dashboard
# graphs the series its alarms watch (five per model); each one made is a round trip to the CDK's Node process.
@functools.cache
def _series(namespace: str, environment: str, model: str, key: str, statistic: str, period: Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=monitor_metric(key),
        dimensions_map=dict(zip(MONITOR_DIMENSIONS, (environment, model))),
        statistic=statistic,
        period=period,
    )


def retrain_request(name_prefix: str, environment: str, model: str, region: str, config: Optional[str] = None) -> str:
    """What a retrain alarm of ``model`` entering ALARM does, for its description: it asks the retrain trigger, which may
    start nothing (paused, a run executing, cooldown, daily limit), and the commands that show which (the pause, the
    trigger's decisions in its log, the pipeline's runs), in ``region``; the status command names ``config`` (default
    None: the default config, named by none)."""
    pipeline = pipeline_name(name_prefix, model)
    status = cli_command("retraining", "status", environment=environment, model_option=False, config=config)
    return (f"Retraining is requested, not certain: the retrain trigger starts {pipeline} unless retraining is paused, "
            "a run is executing, the cooldown after the last judged run or the daily start limit holds it; the hourly "
            "sweep asks again while this alarm stays in ALARM. Paused? "
            f"{status}. Its decision: aws logs tail /aws/lambda/{retrain_trigger_function_name(name_prefix)} "
            f"--since 2h --region {region}. Runs: aws sagemaker list-pipeline-executions --pipeline-name {pipeline} "
            f"--sort-order Descending --max-items 5 --region {region}")


# One action per topic, whatever the number of alarms that notify it: the action only names the topic, and each one
# made is a round trip to the CDK's Node process (an environment's alarms share one topic).
def sns_action(topic: sns.ITopic) -> cw_actions.SnsAction:
    """The alarm action that notifies ``topic``, made once per topic."""
    return once_per(topic, cw_actions.SnsAction, lambda: cw_actions.SnsAction(topic))


class LoopAlarms(Construct):
    """Per model, alarms on the drift monitor's metrics (the model's own namespace,
    ``<project>/<environment>/<model>/monitoring``, dimensions ``Environment`` and ``Model``), plus alarms on the
    trigger itself; ``all_alarms`` lists them all.

    * ``<prefix>-<model>-retrain-data-drift``: a feature's PSI reached its calibrated threshold (the monitor's
      ``DataDriftScore`` >= 1: the larger of the material PSI and the window-size noise level, see
      ``pipeline_code.monitoring.calibration``);
    * ``<prefix>-<model>-retrain-prediction-drift``: the same for the predictions (``PredictionDriftScore``);
    * ``<prefix>-<model>-retrain-slow-drift``: the CUSUM of those scores over the daily runs reached its
      decision level (``CumulativeDriftScore`` >= 1, ``pipeline_code.monitoring.cumulative``): a shift that stays
      just under the threshold day after day;
    * ``<prefix>-<model>-retrain-quality``: AUC drop >= ``max_auc_drop`` (once labels arrive); for a
      model whose ``quality_keys`` entry is ``quality_drop`` (regression, or a binary or multiclass model judged on
      a metric other than AUC: ``core.problem.quality_alarm_key``) the drop in its primary metric >= ``max_quality_drop``.
      Their names carry the retrain prefix, so entering ALARM asks the retrain trigger to start the model's
      retraining (see :class:`RetrainingTrigger`), which it does unless retraining is paused, a run is executing, or
      the cooldown or the daily start limit holds it; they also notify people, and their descriptions say so, with
      the commands that show the pause, the trigger's decisions and the pipeline's runs.
    * ``<prefix>-<model>-monitor-unhealthy``: the monitor's latest report said unhealthy (empty window, missing
      baseline, malformed capture, schema change): pages once per unhealthy report, stays in ALARM until a healthy one;
    * ``<prefix>-<model>-monitor-no-report``: no report for ``report_window_hours`` (28 for a daily schedule: a day,
      plus the latest a run may report, plus an hour), counted per hour: the scheduled monitor stopped. Both people
      only, never a retrain; their descriptions say where the reports and the job logs are.
    * ``<prefix>-<model>-monitor-data-quality``: the day's report failed a data-quality check of the requests
      (``DataQualityViolations`` >= 1: a feature's missing rate up on its baseline's, values outside the training
      range or of another type, unseen categories): an upstream change the model was not trained on, which neither
      PSI (it compares the values present) nor a retrain (it learns from the curated data, not the requests) answers.
      People only; a day without a value is a day without violations, as for the retrain alarms.
    * the trigger's errors (on the dashboard, paging nobody: Lambda retries them, see :func:`handler_alarms`) and
      its dead letters (people only).

    A day the monitor publishes no value is a day below the threshold for the retrain alarms (``FILL(m, 0)``,
    :func:`filled_daily`: no value, no evidence, so an ALARM lasts one day per breaching value), and missing data
    is ``notBreaching`` for them when no day in CloudWatch's range has a value; ``ignore`` for the
    unhealthy alarm (it judges reports, not their timing) and *breaching* for the no-report alarm (so a freshly
    deployed environment shows it until the monitor's first run).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        environment: str,
        quality_keys: Mapping[str, str],
        max_auc_drop: float,
        max_quality_drop: float,
        topic: sns.ITopic,
        trigger_function: lambda_.IFunction,
        topics: Optional[Mapping[str, sns.ITopic]] = None,
        dead_letter_queue: sqs.IQueue,
        project: str = DEFAULT_PROJECT,
        monitor_schedule: str = DEFAULT_MONITOR_SCHEDULE,
        inference_bucket: str = INFERENCE_BUCKET_PLACEHOLDER,
        cli_config: Optional[str] = None,
    ) -> None:
        """``topics``: a model's own topic (its team's, by model; default: none, every alarm notifies ``topic``);
        ``project`` (default: the default project): whose models' namespaces the alarms read
        (``core.contract.monitor_namespace``);
        ``monitor_schedule``: the drift monitor's schedule, ``monitoring.schedule`` (default: its default, daily at
        03:00 UTC), which sets how long a silence means the monitor stopped (:func:`report_window_hours`);
        ``inference_bucket``: the environment's inference bucket, where the monitor pages send people for its reports
        (default: a placeholder); ``cli_config``: the ``--config`` the retrain alarms' status command names (default
        None: the default config, named by none)."""
        super().__init__(scope, construct_id)
        self.inference_bucket, self.region = inference_bucket, Stack.of(self).region
        self.report_window_hours = report_window_hours(monitor_schedule)
        self.retrain_alarms: dict[str, list[cloudwatch.Alarm]] = {}
        self.people_alarms: list[cloudwatch.Alarm] = []
        for model, quality_key in quality_keys.items():

            def metric(key: str, statistic: str = "Maximum", period: Duration = MONITOR_PERIOD) -> cloudwatch.Metric:
                return monitor_series(environment, model, key, statistic, project=project, period=period)

            prefix = retrain_alarm_prefix(name_prefix, model)
            then = retrain_request(name_prefix, environment, model, Stack.of(self).region, config=cli_config)
            retrain = [
                *(self._alarm(f"{prefix}{name}", metric(key), DRIFT_SCORE_ALARM, f"{model}: {DRIFT_ALARM_FINDINGS[name]}. "
                              f"{then}") for name, key in RETRAIN_DRIFT_ALARMS),
                self._quality_alarm(f"{prefix}{QUALITY_RETRAIN_ALARM}", model, metric, quality_key,
                                    max_auc_drop, max_quality_drop, then),
            ]  # fmt: skip
            unhealthy, silent = self._health_alarms(name_prefix, model, metric, monitor_schedule)
            data_quality = self._data_quality_alarm(name_prefix, model, metric)
            # The model's own topic when ``topics`` names one (its team's), else the environment's.
            notify = sns_action((topics or {}).get(model, topic))
            for alarm in (*retrain, unhealthy, silent, data_quality):
                alarm.add_alarm_action(notify)
            self.retrain_alarms[model] = retrain
            self.people_alarms += [unhealthy, silent, data_quality]

        self.people_alarms += handler_alarms(
            self,
            name_prefix=name_prefix,
            names=("trigger-errors", "dead-letters"),
            function=trigger_function,
            queue=dead_letter_queue,
            errors_description="An attempt of the retrain trigger failed (e.g. the retraining pause could not be read); "
            "check its logs",
            dead_letters_description="A retrain request (drift alarm, schedule or sweep) was not processed by the retrain "
            "trigger, after three attempts or undelivered; see its DLQ (docs/monitoring.md, Dead-letter queues)",
            topic=topic,
        )
        self.all_alarms: list[cloudwatch.Alarm] = [a for alarms in self.retrain_alarms.values() for a in alarms] + self.people_alarms

    def _health_alarms(self, name_prefix: str, model: str, metric: Callable[..., cloudwatch.Metric],
                       schedule: str) -> tuple[cloudwatch.Alarm, cloudwatch.Alarm]:
        """``<prefix>-<model>-monitor-unhealthy`` (a report said unhealthy) and ``<prefix>-<model>-monitor-no-report``
        (no report for ``report_window_hours``): two alarms, so that neither judges a report by when it came.

        One alarm on ``MonitorHealthy`` per day with missing data *breaching* paged on healthy monitors: CloudWatch
        slides its 1-day window forward at every evaluation, so a run that reports a few minutes later than the day
        before leaves the window empty for those minutes. Here a missing point never makes the first alarm breach
        (``ignore``: it keeps its state until the next report), and the second counts reports per hour over a window
        longer than the time between two runs by the latest a run can report."""
        stem = job_name_stem("processing", name_prefix, model)
        where = self._report_location(name_prefix, model)
        unhealthy = cloudwatch.Alarm(
            self,
            f"{model}-monitor-unhealthy",
            alarm_name=f"{name_prefix}-{model}-monitor-unhealthy",
            alarm_description=f"{model}: the drift monitor's latest report says unhealthy. If its 'trusted' is false, "
                              "the window's drift and quality were not judged and no retrain can start; if true, one "
                              "part failed (e.g. capture short of the endpoint's requests, a label feed that stopped) "
                              "and the rest was judged and published as usual. Read 'Monitoring errors' in the newest "
                              f"{where}; fix the cause (baseline, capture, schema, traffic, labels) and let the next "
                              "daily run clear it.",
            metric=metric("monitor_healthy", "Minimum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            # A day without a report is the other alarm's finding: this one keeps its state until the next report,
            # so one unhealthy report pages once and a late healthy one never does.
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        hours = self.report_window_hours
        silent = cloudwatch.Alarm(
            self,
            f"{model}-monitor-no-report",
            alarm_name=f"{name_prefix}-{model}-monitor-no-report",
            alarm_description=f"{model}: no drift-monitor report for {hours} hours (it runs {schedule} UTC), so drift "
                              "goes unjudged. Check its schedule in EventBridge Scheduler (\"Drift monitor of "
                              f"{model}\"), then the SageMaker processing jobs {stem}-* (status, failure reason) and "
                              f"their logs in /aws/sagemaker/ProcessingJobs; the reports are under "
                              f"s3://{self.inference_bucket}/{inference_prefix(model, 'monitor')}. No retrain.",
            # Every run publishes MonitorHealthy (1 or 0) once: its count per hour says whether a report came.
            metric=metric("monitor_healthy", "SampleCount", STALENESS_PERIOD),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=hours,
            datapoints_to_alarm=hours,
            # The monitor runs every day in every environment (healthy "not serving" before the first approval):
            # hours without a report are what this alarm counts.
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        return unhealthy, silent

    def _report_location(self, name_prefix: str, model: str) -> str:
        """Where ``model``'s drift-monitor reports and job logs are, as the people alarms' descriptions name them, with
        the command that finds the newest run (a run's job is ``<stem>-<run>``, its reports ``monitor/<model>/<run>/``)."""
        stem = job_name_stem("processing", name_prefix, model)
        return (f"report.json and report.html under s3://{self.inference_bucket}/{inference_prefix(model, 'monitor')}"
                f"<run>/ (<run>: the newest job's name after '{stem}-': aws sagemaker list-processing-jobs --name-contains "
                f"{stem}- --sort-by CreationTime --sort-order Descending --max-results 1 --region {self.region}), the "
                f"job's log in CloudWatch Logs /aws/sagemaker/ProcessingJobs (streams {stem}-<run>/...)")

    def _data_quality_alarm(self, name_prefix: str, model: str, metric: Callable[..., cloudwatch.Metric]) -> cloudwatch.Alarm:
        """``<prefix>-<model>-monitor-data-quality``: the day's report counted a data-quality violation (people only)."""
        name = f"{name_prefix}-{model}-{DATA_QUALITY_ALARM}"
        return cloudwatch.Alarm(
            self,
            f"{model}-{DATA_QUALITY_ALARM}",
            alarm_name=name,
            alarm_description=f"{model}: the drift monitor found data-quality violations in the day's requests (a "
                              "feature's missing rate up on its baseline's, values outside the training range or of "
                              "another type, categories training never saw): the callers or the data upstream changed, "
                              "and the model scores what it was not trained on. Read 'Data quality' in the newest "
                              f"{self._report_location(name_prefix, model)}; fix the callers or the data, or declare the "
                              "change and retrain. No retrain starts on this alarm.",
            metric=filled_daily(metric(DATA_QUALITY_ALARM_KEY), DATA_QUALITY_THRESHOLD),
            threshold=DATA_QUALITY_THRESHOLD,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _quality_alarm(self, name: str, model: str, metric: Callable[[str], cloudwatch.Metric], key: str, max_auc_drop: float,
                       max_quality_drop: float, then: str) -> cloudwatch.Alarm:
        """Retrain on quality loss: the AUC drop (``key`` ``auc_drop``), or the primary metric's drop (``quality_drop``) of a
        regression model or a multiclass model judged on a metric other than AUC; ``then``: what entering ALARM does."""
        if key == "auc_drop":
            return self._alarm(name, metric(key), max_auc_drop,
                               f"{model}: AUC dropped by >= {max_auc_drop} on labelled traffic. {then}")
        return self._alarm(name, metric(key), max_quality_drop,
                           f"{model}: its primary metric dropped by >= {max_quality_drop} on labelled traffic. {then}")

    def _alarm(self, name: str, metric: cloudwatch.Metric, threshold: float, description: str) -> cloudwatch.Alarm:
        """A retrain alarm: ``metric``'s daily value >= ``threshold``, a day without a value counting as a day below it
        (:func:`filled_daily`)."""
        return cloudwatch.Alarm(
            self,
            name,
            alarm_name=name,
            alarm_description=description,
            metric=filled_daily(metric, threshold),
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )




def filled_daily(metric: cloudwatch.Metric, threshold: float) -> cloudwatch.MathExpression:
    """``FILL(m, 0)`` over ``metric`` (one point per daily monitor run): a day that publishes no value (a window the
    monitor did not trust, a quiet day, one under ``min_rows``, a day without judged labels) is a real point of 0,
    below ``threshold``, so a retrain alarm reads each day's evidence and nothing older.

    Why not ``TreatMissingData`` alone: CloudWatch reads a range longer than ``EvaluationPeriods`` and, when that range
    holds a real point, judges the most recent real point and never applies the missing-data setting; a drifted day
    then held the alarm in ALARM through the days after it, and the hourly sweep retrained again on that same day
    once the cooldown ended. Refused for a ``threshold`` of 0 or less: a filled day would breach it."""
    if threshold <= FILLED_DAY:
        raise ValueError(f"{metric.metric_name}: a retrain threshold of {threshold} would be breached by every day without "
                         f"a value (filled with {FILLED_DAY}); use a threshold above {FILLED_DAY}")
    return cloudwatch.MathExpression(expression=f"FILL(m, {FILLED_DAY})", using_metrics={"m": metric},
                                     label=f"{metric.metric_name} (0 on a day without a value)", period=metric.period)


def report_window_hours(schedule: str) -> int:
    """Hours without a drift-monitor report after which the monitor of ``schedule`` (``monitoring.schedule``, daily)
    counts as stopped: the time between two runs, plus the latest a run may report after its scheduled time (its start
    retried for up to ``MAX_EVENT_AGE_SECONDS``, the job stopped after ``MAX_RUNTIME_SECONDS``), plus an hour of slack;
    28 for a daily schedule. Refused when CloudWatch could not evaluate that many hourly periods (7 days at most)."""
    seconds = run_interval_seconds(schedule) + MAX_EVENT_AGE_SECONDS + MAX_RUNTIME_SECONDS + REPORT_SLACK_SECONDS
    hours = math.ceil(seconds / STALENESS_PERIOD.to_seconds())
    if hours * STALENESS_PERIOD.to_seconds() > MAX_EVALUATION_SECONDS:
        raise ValueError(f"monitoring.schedule {schedule!r}: a staleness window of {hours} hours exceeds the 7 days "
                         "CloudWatch evaluates an alarm over; schedule the drift monitor at least weekly")
    return hours


def handler_alarms(
    scope: Construct,
    *,
    name_prefix: str,
    names: tuple[str, str],
    function: lambda_.IFunction,
    queue: sqs.IQueue,
    errors_description: str,
    dead_letters_description: str,
    topic: sns.ITopic,
    page_on_errors: bool = False,
) -> list[cloudwatch.Alarm]:
    """Alarms ``<prefix>-<names[0]>`` (the handler failed: Lambda ``Errors`` >= 1 in 5 minutes) and
    ``<prefix>-<names[1]>`` (events it could not process reached its dead-letter queue, :func:`dead_letter_alarm`,
    which pages people on one arriving in any 5 minutes of the last 20).

    By default the errors alarm pages nobody (no action; its state is on the dashboard): the handlers are invoked
    asynchronously, and Lambda retries a failed invocation twice, then sends the event to the dead-letter queue. An
    error a retry gets past (a throttle, a 5xx) needs nobody, and one that fails every attempt pages once, through the
    dead-letter alarm. ``page_on_errors`` makes the errors alarm page too, for a handler whose retry may come too late
    to do its job (so a recovered error still needs a person); its exhausted events then page twice."""
    errors = cloudwatch.Alarm(
        scope,
        names[0],
        alarm_name=f"{name_prefix}-{names[0]}",
        alarm_description=errors_description if page_on_errors else (
            f"{errors_description}. Pages nobody: Lambda retries a failed invocation twice, and an event that fails "
            f"every attempt reaches the dead-letter queue, whose alarm {name_prefix}-{names[1]} pages."),
        metric=function.metric_errors(period=minutes(5)),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    if page_on_errors:
        errors.add_alarm_action(sns_action(topic))
    else:
        acknowledge(errors, f"Dashboard only, on purpose: Lambda retries a failed invocation twice and sends an event "
                    f"that fails every attempt to the dead-letter queue, whose alarm {name_prefix}-{names[1]} pages; an "
                    "action here would page for errors the retry gets past, and twice for the others.",
                    "NIST.800.53.R5-CloudWatchAlarmAction")
    return [errors, dead_letter_alarm(scope, name_prefix=name_prefix, name=names[1], queue=queue,
                                      description=dead_letters_description, topic=topic)]


def dead_letter_alarm(scope: Construct, *, name_prefix: str, name: str, queue: sqs.IQueue, description: str,
                      topic: sns.ITopic) -> cloudwatch.Alarm:
    """Alarm ``<prefix>-<name>``: a message *arrived* in ``queue`` (SQS ``NumberOfMessagesSent`` >= 1 in any 5 minutes
    of the last 20); pages people through ``topic``, and again for the next dead letter once it is back to OK.

    Not the backlog (``ApproximateNumberOfMessagesVisible``): one message kept for 14 days would hold that alarm
    in ALARM and the next dead letters would page nobody. EventBridge rules, Lambda's asynchronous invocations and
    EventBridge Scheduler all put dead letters with SendMessage, which ``NumberOfMessagesSent`` counts (only SQS's
    own redrive from a source queue is not counted, and no queue of this app has a source queue). The backlog is
    on the dashboard (:func:`dead_letter_backlog`)."""
    alarm = cloudwatch.Alarm(
        scope,
        name,
        alarm_name=f"{name_prefix}-{name}",
        alarm_description=description,
        metric=queue.metric_number_of_messages_sent(period=minutes(5), statistic="Sum"),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        # Any one of four periods: SQS reports a queue's metrics only while it is active, and a dead-letter queue idles
        # for days, so the point of its first message may reach CloudWatch late; a one-period window could miss it.
        evaluation_periods=4,
        datapoints_to_alarm=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(sns_action(topic))
    return alarm


def dead_letter_backlog(queues: Mapping[str, sqs.IQueue]) -> cloudwatch.GraphWidget:
    """A dashboard graph of the messages waiting in each dead-letter queue (label -> queue): what is left to
    inspect, replay or purge (docs/monitoring.md, *Dead-letter queues*); it pages nobody."""
    return cloudwatch.GraphWidget(
        title="Dead letters waiting (inspect, replay or purge: docs/monitoring.md, Dead-letter queues)",
        left=[queue.metric_approximate_number_of_messages_visible(label=label, period=minutes(5), statistic="Maximum")
              for label, queue in queues.items()],
        width=24,
    )

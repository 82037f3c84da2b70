"""The alarms that close the loop (retrain on drift or quality loss) and the ones that call people."""

from __future__ import annotations

from typing import Callable, Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code.core.contract import (
    DRIFT_SCORE_ALARM,
    MONITOR_DIMENSIONS,
    MONITOR_NAMESPACE,
    QUALITY_RETRAIN_ALARM,
    RETRAIN_DRIFT_ALARMS,
    monitor_metric,
    retrain_alarm_prefix,
)

# The monitor runs daily: one evaluation period spans one run.
MONITOR_PERIOD = Duration.days(1)
# What each drift alarm's ALARM state means, for its description.
DRIFT_ALARM_FINDINGS = {
    "data-drift": "a feature drifted (PSI above its calibrated threshold)",
    "prediction-drift": "predictions drifted (PSI above its calibrated threshold)",
    "slow-drift": "a feature or the predictions stayed near their drift threshold run after run (CUSUM)",
}


def monitor_series(environment: str, model: str, key: str, statistic: str = "Maximum", *,
                   namespace: str = MONITOR_NAMESPACE) -> cloudwatch.Metric:
    """The drift monitor's metric ``key`` (``core.contract.monitor_metric``) for one model, one point per daily run, in
    the project's ``namespace`` (``core.contract.monitor_namespace``; default: the default project's)."""
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=monitor_metric(key),
        dimensions_map=dict(zip(MONITOR_DIMENSIONS, (environment, model))),
        statistic=statistic,
        period=MONITOR_PERIOD,
    )


class LoopAlarms(Construct):
    """Per model, alarms on the drift monitor's metrics (the project's namespace, ``<project>/monitoring``,
    dimensions ``Environment`` and ``Model``), plus alarms on the trigger itself; ``all_alarms`` lists them all.

    * ``<prefix>-<model>-retrain-data-drift``: a feature's PSI reached its calibrated threshold (the monitor's
      ``DataDriftScore`` >= 1: the larger of the material PSI and the window-size noise level, see
      ``pipeline_code.monitoring.calibration``);
    * ``<prefix>-<model>-retrain-prediction-drift``: the same for the predictions (``PredictionDriftScore``);
    * ``<prefix>-<model>-retrain-slow-drift``: the CUSUM of those scores over the daily runs reached its
      decision level (``CumulativeDriftScore`` >= 1, ``pipeline_code.monitoring.cumulative``): a shift that stays
      just under the threshold day after day;
    * ``<prefix>-<model>-retrain-quality``: AUC drop >= ``max_auc_drop`` (once labels arrive); for a
      model whose ``quality_keys`` entry is ``quality_drop`` (regression, or multiclass judged on a metric
      other than AUC: ``core.problem.quality_alarm_key``) the drop in its primary metric >= ``max_quality_drop``.
      Their names carry the retrain prefix, so entering ALARM starts the model's retraining
      (see :class:`RetrainingTrigger`); they also notify people.
    * ``<prefix>-<model>-monitor-unhealthy``: the monitor reported an error (empty window, missing
      baseline, malformed capture, schema change) — people only, never a retrain.
    * trigger errors and dead letters — people only.

    Missing monitor data is ``notBreaching`` for the drift alarms (no traffic, no drift) and
    *breaching* for the health alarm (no report for a day means the scheduled monitor stopped).
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
        dead_letter_queue: sqs.IQueue,
        namespace: str = MONITOR_NAMESPACE,
    ) -> None:
        """``namespace``: the project's drift-monitor namespace (default: the default project's)."""
        super().__init__(scope, construct_id)
        notify = cw_actions.SnsAction(topic)
        self.retrain_alarms: dict[str, list[cloudwatch.Alarm]] = {}
        self.people_alarms: list[cloudwatch.Alarm] = []
        for model, quality_key in quality_keys.items():

            def metric(key: str, statistic: str = "Maximum") -> cloudwatch.Metric:
                return monitor_series(environment, model, key, statistic, namespace=namespace)

            prefix = retrain_alarm_prefix(name_prefix, model)
            retrain = [
                *(self._alarm(f"{prefix}{name}", metric(key), DRIFT_SCORE_ALARM, f"{model}: {DRIFT_ALARM_FINDINGS[name]}; "
                              "retraining starts") for name, key in RETRAIN_DRIFT_ALARMS),
                self._quality_alarm(f"{prefix}{QUALITY_RETRAIN_ALARM}", model, metric, quality_key,
                                    max_auc_drop, max_quality_drop),
            ]  # fmt: skip
            unhealthy = cloudwatch.Alarm(
                self,
                f"{model}-monitor-unhealthy",
                alarm_name=f"{name_prefix}-{model}-monitor-unhealthy",
                alarm_description=f"{model}: the drift monitor reported an error (see its report.json); no retrain",
                metric=metric("monitor_healthy", "Minimum"),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=1,
                # The monitor is scheduled daily in every environment (healthy "not serving" before
                # the first approval), so a missing report means it stopped running: page people.
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
            for alarm in (*retrain, unhealthy):
                alarm.add_alarm_action(notify)
            self.retrain_alarms[model] = retrain
            self.people_alarms.append(unhealthy)

        self.people_alarms += handler_alarms(
            self,
            name_prefix=name_prefix,
            names=("trigger-errors", "dead-letters"),
            function=trigger_function,
            queue=dead_letter_queue,
            errors_description="The retrain trigger failed; check its logs",
            dead_letters_description="A retrain request (drift alarm, schedule or sweep) was not processed by the retrain "
            "trigger; see its DLQ (README, Dead-letter queues)",
            topic=topic,
        )
        self.all_alarms: list[cloudwatch.Alarm] = [a for alarms in self.retrain_alarms.values() for a in alarms] + self.people_alarms

    def _quality_alarm(self, name: str, model: str, metric: Callable[[str], cloudwatch.Metric], key: str, max_auc_drop: float,
                       max_quality_drop: float) -> cloudwatch.Alarm:
        """Retrain on quality loss: the AUC drop (``key`` ``auc_drop``), or the primary metric's drop (``quality_drop``) of a
        regression model or a multiclass model judged on a metric other than AUC."""
        if key == "auc_drop":
            return self._alarm(name, metric(key), max_auc_drop,
                               f"{model}: AUC dropped by >= {max_auc_drop} on labelled traffic; retraining starts")
        return self._alarm(name, metric(key), max_quality_drop,
                           f"{model}: its primary metric dropped by >= {max_quality_drop} on labelled traffic; retraining starts")

    def _alarm(self, name: str, metric: cloudwatch.Metric, threshold: float, description: str) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            name,
            alarm_name=name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


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
) -> list[cloudwatch.Alarm]:
    """Alarms ``<prefix>-<names[0]>`` (the handler failed) and ``<prefix>-<names[1]>`` (events it could
    not process reached its dead-letter queue, :func:`dead_letter_alarm`); each pages people on one
    occurrence in 5 minutes."""
    errors = cloudwatch.Alarm(
        scope,
        names[0],
        alarm_name=f"{name_prefix}-{names[0]}",
        alarm_description=errors_description,
        metric=function.metric_errors(period=Duration.minutes(5)),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    errors.add_alarm_action(cw_actions.SnsAction(topic))
    return [errors, dead_letter_alarm(scope, name_prefix=name_prefix, name=names[1], queue=queue,
                                      description=dead_letters_description, topic=topic)]


def dead_letter_alarm(scope: Construct, *, name_prefix: str, name: str, queue: sqs.IQueue, description: str,
                      topic: sns.ITopic) -> cloudwatch.Alarm:
    """Alarm ``<prefix>-<name>``: a message *arrived* in ``queue`` (SQS ``NumberOfMessagesSent`` >= 1 in 5 minutes);
    pages people through ``topic``, and again for the next dead letter once it is back to OK.

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
        metric=queue.metric_number_of_messages_sent(period=Duration.minutes(5), statistic="Sum"),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(topic))
    return alarm


def dead_letter_backlog(queues: Mapping[str, sqs.IQueue]) -> cloudwatch.GraphWidget:
    """A dashboard graph of the messages waiting in each dead-letter queue (label -> queue): what is left to
    inspect, replay or purge (README, *Dead-letter queues*); it pages nobody."""
    return cloudwatch.GraphWidget(
        title="Dead letters waiting (inspect, replay or purge: README, Dead-letter queues)",
        left=[queue.metric_approximate_number_of_messages_visible(label=label, period=Duration.minutes(5), statistic="Maximum")
              for label, queue in queues.items()],
        width=24,
    )

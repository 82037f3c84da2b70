"""The environment's one dashboard: how each model's loop is doing, then how each endpoint serves."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, Sequence, cast

from aws_cdk import CfnResource
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from pipeline_code.core.contract import DEFAULT_PROJECT, DRIFT_SCORE_ALARM

from ..naming import loop_dashboard_name
from .loop_alarms import monitor_series

# The dashboard's logical id from before it had a construct of its own (it was built by LoopAlarms as
# "Alarms/Dashboard"). A new id would make CloudFormation replace the dashboard, and with a fixed name a
# replacement deletes the dashboard it has just written; pinning the id keeps an update in place.
LOGICAL_ID = "AlarmsDashboard690E1A42"
# CloudWatch takes 1-100 alarm ARNs in one alarm status widget (Dashboard Body Structure and Syntax, "Properties of an
# Alarm Status Widget Object"); PutDashboard refuses a body with more, failing the deploy. The loop's alarms number about
# six per model, an environment's endpoint alarms about five per endpoint: past that, the status continues in more widgets.
MAX_ALARMS_PER_WIDGET = 100


def alarm_status_widgets(title: str, alarms: Sequence[cloudwatch.IAlarm]) -> list[cloudwatch.AlarmStatusWidget]:
    """Full-width status widgets of ``alarms`` in order, at most :data:`MAX_ALARMS_PER_WIDGET` each: one titled ``title``
    when they fit in one, else ``<title> (1/n)``, ``<title> (2/n)``, ...; none for no alarms."""
    chunks = [list(alarms[i:i + MAX_ALARMS_PER_WIDGET]) for i in range(0, len(alarms), MAX_ALARMS_PER_WIDGET)]
    return [cloudwatch.AlarmStatusWidget(title=title if len(chunks) == 1 else f"{title} ({i}/{len(chunks)})",
                                         alarms=chunk, width=24)
            for i, chunk in enumerate(chunks, start=1)]


class LoopDashboard(Construct):
    """The dashboard ``<prefix>-loop``, by default one row with, per model of ``quality_keys`` (model -> the
    monitor key its quality alarm watches), three graphs of the drift monitor's metrics (drift scores against
    the retrain line; quality and the gap across the sensitive groups, ``fairness_keys``' key of the model, by default
    the parity difference; monitor health and record counts) and the status of every alarm in
    ``alarms``; :meth:`add_alarm_status` appends a row with the status of other alarms (e.g. the endpoints'), and
    :meth:`add_row` any other row (e.g. each endpoint's graphs)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        environment: str,
        quality_keys: Mapping[str, str],
        alarms: Sequence[cloudwatch.IAlarm],
        fairness_keys: Mapping[str, str] = MappingProxyType({}),
        project: str = DEFAULT_PROJECT,
    ) -> None:
        """``fairness_keys``: model -> the monitor key of its gap across the sensitive groups
        (``core.problem.FAIRNESS_GAP_KEY`` of its type; default for a model not in it: the parity difference);
        ``project`` (default: the default project): whose models' monitor namespaces the graphs read
        (``core.contract.monitor_namespace``, one per model and environment)."""
        super().__init__(scope, construct_id)
        widgets: list[cloudwatch.IWidget] = []
        for model, quality_key in quality_keys.items():

            def metric(key: str, statistic: str = "Maximum") -> cloudwatch.Metric:
                return monitor_series(environment, model, key, statistic, project=project)

            widgets += [
                cloudwatch.GraphWidget(
                    title=f"{model}: drift (PSI / calibrated threshold)",
                    left=[metric("data_drift_score"), metric("prediction_drift_score"), metric("cumulative_drift_score")],
                    left_annotations=[cloudwatch.HorizontalAnnotation(value=DRIFT_SCORE_ALARM, label="retrain")],
                    right=[metric("data_drift_max_psi"), metric("prediction_psi")],
                    left_y_axis=cloudwatch.YAxisProps(min=0),
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title=f"{model}: quality and fairness",
                    left=([metric("model_auc", "Average"), metric("auc_drop")] if quality_key == "auc_drop"
                          else [metric(quality_key)]),
                    right=[metric(fairness_keys.get(model, "demographic_parity_difference")),
                           metric("attribution_ndcg", "Minimum")],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title=f"{model}: monitor health",
                    left=[metric("monitor_healthy", "Minimum"), metric("monitoring_errors")],
                    right=[metric("records", "Sum"), metric("malformed_records", "Sum"), metric("refused_records", "Sum")],
                    width=8,
                ),
            ]
        widgets += alarm_status_widgets("Loop alarms", list(alarms))
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=loop_dashboard_name(name_prefix), widgets=[widgets])
        cast(CfnResource, self.dashboard.node.default_child).override_logical_id(LOGICAL_ID)

    def add_alarm_status(self, title: str, alarms: Sequence[cloudwatch.IAlarm]) -> None:
        """Append a full-width row showing the state of each of ``alarms`` under ``title``; none: no row."""
        if alarms:
            self.add_row(alarm_status_widgets(title, list(alarms)))

    def add_row(self, widgets: Sequence[cloudwatch.IWidget]) -> None:
        """Append ``widgets`` as a new row."""
        self.dashboard.add_widgets(*widgets)

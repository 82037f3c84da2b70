"""LoopDashboard, built in a bare stack: the environment's one dashboard, per model three graphs of the drift monitor's
metrics, then the status of the loop's alarms; ``add_row`` appends rows (each endpoint's widgets).

The alarms are stand-ins imported by ARN; the models (a binary and a regression one) are declared here, not read
from config/mlops-loop.yaml.
"""

from __future__ import annotations

import json
from typing import Sequence

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk.assertions import Template
from constructs import Construct

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.loop_dashboard import LoopDashboard
from tests.support.cdk_outdirs import bare_outdir

ENV = Environment(account="123456789012", region="eu-west-1")
PREFIX = "shop-dev"
MODELS = {"returns": "auc_drop", "basket": "quality_drop"}  # name -> the monitor key its quality alarm watches
FAIRNESS = {"basket": "bias_gap"}  # name -> the monitor key of its gap across the sensitive groups, when not the default
ALARM_ARNS = [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{PREFIX}-{name}"
              for name in ("returns-retrain-data-drift", "basket-retrain-quality", "trigger-errors")]


class _Built:
    def __init__(self, stack: Stack, dashboard: LoopDashboard):
        self.stack, self.dashboard = stack, dashboard
        self.resources = Template.from_stack(stack).find_resources("AWS::CloudWatch::Dashboard")

    def body(self) -> dict:
        (resource,) = self.resources.values()
        body = resource["Properties"]["DashboardBody"]
        # A plain string, or a Fn::Join when a graph names the stack's region.
        parts = [body] if isinstance(body, str) else body["Fn::Join"][1]
        return json.loads("".join(p if isinstance(p, str) else "${%s}" % p["Ref"] for p in parts))

    def widgets(self) -> list[dict]:
        return self.body()["widgets"]

    def graph(self, title: str) -> dict:
        (widget,) = [w for w in self.widgets() if w["properties"].get("title") == title]
        return widget["properties"]


def _build(models: dict[str, str] = MODELS, *, scope_path: Sequence[str] = (), construct_id: str = "LoopDashboard",
           rows: Sequence[Sequence[cloudwatch.IWidget]] = ()) -> _Built:
    """GIVEN a bare stack with three imported alarms WHEN the dashboard of ``models`` is added (under ``scope_path``)
    and then each of ``rows`` with ``add_row``."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=ENV)
    alarms = [cloudwatch.Alarm.from_alarm_arn(stack, f"Alarm{i}", arn) for i, arn in enumerate(ALARM_ARNS)]
    scope: Construct = stack
    for part in scope_path:
        scope = Construct(scope, part)
    dashboard = LoopDashboard(scope, construct_id, name_prefix=PREFIX, environment="dev", quality_keys=models, alarms=alarms,
                              fairness_keys={name: FAIRNESS[name] for name in models if name in FAIRNESS})
    for row in rows:
        dashboard.add_row(row)
    return _Built(stack, dashboard)


@pytest.fixture(scope="module")
def built() -> _Built:
    return _build()


def _series(graph: dict, model: str) -> list[tuple[str, str, str]]:
    """A graph's metrics as (metric name, statistic, axis), each checked to be ``model``'s daily monitor series in dev."""
    found = []
    for entry in graph["metrics"]:
        namespace, name, *dimensions, options = entry
        assert namespace == f"mlops-loop/dev/{model}/monitoring" and dimensions == ["Environment", "dev", "Model", model], entry
        assert options["period"] == 86_400, entry
        found.append((name, options.get("stat", "Average"), options.get("yAxis", "left")))
    return found


# ------------------------------------------------------------------ identity
@pytest.mark.parametrize("scope_path", [(), ("Operations", "Loop")], ids=["top-level", "nested"])
def test_the_dashboard_is_named_after_the_environment_and_keeps_the_logical_id_it_had_under_loop_alarms(scope_path):
    """Its name is fixed: a new logical id would replace it, and the replacement would delete the dashboard just written."""
    made = _build(scope_path=scope_path, construct_id="Dashboard")
    assert list(made.resources) == ["AlarmsDashboard690E1A42"]
    assert made.resources["AlarmsDashboard690E1A42"]["Properties"]["DashboardName"] == "shop-dev-loop"
    # The resource's own logical id (what a Ref to the dashboard renders) is the pinned one too.
    assert made.stack.resolve(made.dashboard.dashboard.node.default_child.logical_id) == "AlarmsDashboard690E1A42"


def test_the_pinned_logical_id_is_the_one_loop_alarms_gave_its_dashboard():
    direct = Stack(App(outdir=bare_outdir()), "Direct", env=ENV)
    old = cloudwatch.Dashboard(Construct(direct, "Alarms"), "Dashboard", dashboard_name="shop-dev-loop")
    assert direct.get_logical_id(old.node.default_child) == "AlarmsDashboard690E1A42"


# ------------------------------------------------------------------ layout
def test_each_model_gets_a_row_of_three_graphs_then_one_full_width_alarm_status(built: _Built):
    layout = [(w["type"], w["properties"].get("title"), w["x"], w["y"], w["width"]) for w in built.widgets()]
    assert layout == [
        ("metric", "returns: drift (PSI / calibrated threshold)", 0, 0, 8),
        ("metric", "returns: quality and fairness", 8, 0, 8),
        ("metric", "returns: monitor health", 16, 0, 8),
        ("metric", "basket: drift (PSI / calibrated threshold)", 0, 6, 8),
        ("metric", "basket: quality and fairness", 8, 6, 8),
        ("metric", "basket: monitor health", 16, 6, 8),
        ("alarm", "Loop alarms", 0, 12, 24),
    ]


def test_the_alarm_status_shows_every_given_alarm_in_order(built: _Built):
    (status,) = [w for w in built.widgets() if w["type"] == "alarm"]
    assert status["properties"]["alarms"] == ALARM_ARNS


def test_without_models_the_dashboard_holds_only_the_alarm_status():
    made = _build({})
    assert [(w["type"], w["width"]) for w in made.widgets()] == [("alarm", 24)]


# ------------------------------------------------------------------ graphs
def test_the_drift_graph_shows_the_scores_against_the_retrain_line_and_the_raw_psi_on_the_right(built: _Built):
    graph = built.graph("returns: drift (PSI / calibrated threshold)")
    assert _series(graph, "returns") == [
        ("DataDriftScore", "Maximum", "left"), ("PredictionDriftScore", "Maximum", "left"), ("CumulativeDriftScore", "Maximum", "left"),
        ("DataDriftMaxPsi", "Maximum", "right"), ("PredictionPsi", "Maximum", "right"),
    ]
    assert graph["annotations"] == {"horizontal": [{"value": 1, "label": "retrain", "yAxis": "left"}]}
    assert graph["yAxis"] == {"left": {"min": 0}}


@pytest.mark.parametrize(("model", "quality", "gap"), [
    ("returns", [("ModelAuc", "Average", "left"), ("AucDrop", "Maximum", "left")], "DemographicParityDifference"),
    ("basket", [("QualityDrop", "Maximum", "left")], "BiasGap"),
], ids=["binary", "regression"])
def test_the_quality_graph_shows_what_the_quality_alarm_watches_with_fairness_on_the_right(built: _Built, model, quality, gap):
    """A classifier's AUC and its drop and its parity difference (the default); a regression model (no AUC) its primary
    metric's drop and its bias gap (its fairness key)."""
    assert _series(built.graph(f"{model}: quality and fairness"), model) == [
        *quality, (gap, "Maximum", "right"), ("AttributionNdcg", "Minimum", "right")]


def test_the_health_graph_shows_the_monitors_health_and_the_records_it_read(built: _Built):
    """The records read, the capture lines that did not decode and the requests serving refused (each its own series:
    MalformedRecords no longer counts refusals)."""
    assert _series(built.graph("basket: monitor health"), "basket") == [
        ("MonitorHealthy", "Minimum", "left"), ("MonitoringErrors", "Maximum", "left"),
        ("CapturedRecords", "Sum", "right"), ("MalformedRecords", "Sum", "right"), ("RefusedRecords", "Sum", "right"),
    ]


# ------------------------------------------------------------------ add_row
def test_add_row_appends_each_call_as_a_new_row_below_what_is_there():
    made = _build({"returns": "auc_drop"}, rows=[
        [cloudwatch.TextWidget(markdown="# churn endpoint", width=12, height=2),
         cloudwatch.TextWidget(markdown="latency", width=12, height=2)],
        [cloudwatch.TextWidget(markdown="# basket endpoint", width=24, height=2)],
    ])
    widgets = made.widgets()
    assert [(w["type"], w["x"], w["y"], w["width"]) for w in widgets] == [
        ("metric", 0, 0, 8), ("metric", 8, 0, 8), ("metric", 16, 0, 8), ("alarm", 0, 6, 24),
        ("text", 0, 9, 12), ("text", 12, 9, 12),
        ("text", 0, 11, 24),
    ]
    assert [w["properties"]["markdown"] for w in widgets[4:]] == ["# churn endpoint", "latency", "# basket endpoint"]


# ------------------------------------------------------------------ add_alarm_status
def test_add_alarm_status_appends_a_full_width_row_of_the_given_alarms_and_nothing_for_none():
    more = [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{PREFIX}-churn-{name}" for name in ("latency", "low-traffic")]
    stack = Stack(new_app(bare_outdir()), "Bare", env=ENV)
    dashboard = LoopDashboard(stack, "LoopDashboard", name_prefix=PREFIX, environment="dev", quality_keys={}, alarms=[
        cloudwatch.Alarm.from_alarm_arn(stack, "Loop", ALARM_ARNS[0])])
    dashboard.add_alarm_status("Endpoint alarms", [cloudwatch.Alarm.from_alarm_arn(stack, f"More{i}", a) for i, a in enumerate(more)])
    dashboard.add_alarm_status("Score-by-id alarms", [])
    widgets = _Built(stack, dashboard).widgets()
    assert [(w["type"], w["properties"]["title"], w["x"], w["y"], w["width"]) for w in widgets] == [
        ("alarm", "Loop alarms", 0, 0, 24), ("alarm", "Endpoint alarms", 0, 3, 24)]
    assert widgets[1]["properties"]["alarms"] == more


# ------------------------------------------------------------------ CloudWatch's 100 alarms per status widget
def _alarm_arns(count: int, kind: str) -> list[str]:
    return [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{PREFIX}-m{i:03d}-{kind}" for i in range(count)]


@pytest.mark.parametrize(("count", "sizes"), [(100, [100]), (101, [100, 1]), (250, [100, 100, 50])])
def test_more_alarms_than_one_status_widget_takes_continue_in_more_widgets_in_order(count, sizes):
    """GIVEN more loop and endpoint alarms than CloudWatch shows in one alarm status widget (100: a PutDashboard with
    more fails the deploy), as an environment of about 17 models has WHEN the dashboard is built THEN each status
    continues in full-width widgets of at most 100 alarms, numbered when there is more than one, every alarm once
    and in order."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=ENV)
    loop, endpoint = _alarm_arns(count, "loop"), _alarm_arns(count, "endpoint")
    dashboard = LoopDashboard(stack, "LoopDashboard", name_prefix=PREFIX, environment="dev", quality_keys={}, alarms=[
        cloudwatch.Alarm.from_alarm_arn(stack, f"Loop{i}", a) for i, a in enumerate(loop)])
    dashboard.add_alarm_status("Endpoint alarms", [cloudwatch.Alarm.from_alarm_arn(stack, f"End{i}", a) for i, a in enumerate(endpoint)])
    widgets = _Built(stack, dashboard).widgets()
    numbered = lambda title: [title] if len(sizes) == 1 else [f"{title} ({i}/{len(sizes)})" for i in range(1, len(sizes) + 1)]  # noqa: E731
    assert [w["properties"]["title"] for w in widgets] == numbered("Loop alarms") + numbered("Endpoint alarms")
    assert [len(w["properties"]["alarms"]) for w in widgets] == sizes + sizes
    assert {w["type"] for w in widgets} == {"alarm"} and {w["width"] for w in widgets} == {24}
    assert [a for w in widgets for a in w["properties"]["alarms"]] == loop + endpoint

"""The cost floor's fixed column where it used to undercount or mislabel (mlops_loop/tools/cost_floor/fixed.py): the
alarms Application Auto Scaling creates for target tracking (not in the template), dashboards beyond the free tier's
50 metrics, and Feature Store online stores, whose storage is billed whatever the traffic."""

from __future__ import annotations

import json

import pytest

from mlops_loop.tools.cost_floor import PRICES, floor_report
from tests.support.assemblies import template, write_assembly

STANDARD, HIGH = PRICES["alarm_metric_standard"].usd, PRICES["alarm_metric_high_resolution"].usd


def fixed(tmp_path, resources: dict) -> dict:
    (env,) = floor_report(write_assembly(tmp_path / "cdk.out", {"prod": {"Operations": template(resources)}}))
    return {line.label: line for line in env.lines if line.category == "fixed"}


def policy(metric: str = "SageMakerVariantInvocationsPerInstance", policy_type: str = "TargetTrackingScaling") -> dict:
    return {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {
        "PolicyName": "p", "PolicyType": policy_type, "ScalingTargetId": {"Ref": "Target"},
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 200,
                                                     "PredefinedMetricSpecification": {"PredefinedMetricType": metric}}}}


def dashboard(metric_rows: int, expressions: int = 0) -> dict:
    rows = [["ns", f"M{i}", "Model", "churn"] for i in range(metric_rows)]
    rows += [[{"expression": f"m{i} * 2", "label": "x"}] for i in range(expressions)]
    body = {"Fn::Join": ["", ['{"widgets":[{"type":"metric","properties":{"region":"', {"Ref": "AWS::Region"},
                              '","metrics":' + json.dumps(rows) + '}},{"type":"alarm","properties":{"alarms":["a"]}}]}']]}
    return {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": body}}


def test_each_target_tracking_policy_counts_the_two_alarms_application_auto_scaling_creates(tmp_path):
    """GIVEN two target-tracking policies (one on a high-resolution metric) and a step policy WHEN priced THEN four
    alarms on a line of their own: two standard, two high resolution; the step policy's alarms are template alarms."""
    lines = fixed(tmp_path, {"A": policy(), "B": policy("SageMakerVariantConcurrentRequestsPerModelHighResolution"),
                             "Step": policy(policy_type="StepScaling")})
    line = lines["CloudWatch target-tracking alarms"]
    assert line.monthly_usd == pytest.approx(2 * STANDARD + 2 * HIGH)
    assert line.basis == ("2 target-tracking policies x 2 alarms Application Auto Scaling creates (scale out, scale in), "
                          "not in the template: 2 x $0.30/alarm-metric-month + 2 x $0.10/alarm-metric-month")
    assert line.resources == ("A", "B")


def test_a_dashboard_over_50_metrics_is_counted_as_billed_and_says_why(tmp_path):
    """GIVEN one dashboard of 51 metric rows and 3 math expressions WHEN priced THEN it may be billed whatever the free
    tier's 3 dashboards, and is counted at $3."""
    line = fixed(tmp_path, {"Board": dashboard(51, expressions=3)})["CloudWatch dashboards"]
    assert line.monthly_usd == PRICES["dashboard"].usd
    assert line.basis == ("1, first 3 per account free (up to 50 metrics each), $3.00/month each after; 1 over 50 "
                          "metrics (51 metrics): may be billed, counted at $3.00/month")


def test_dashboards_within_the_free_tier_cost_nothing(tmp_path):
    line = fixed(tmp_path, {"Board": dashboard(50, expressions=10)})["CloudWatch dashboards"]
    assert (line.monthly_usd, line.basis) == (0.0, "1, first 3 per account free (up to 50 metrics each), $3.00/month "
                                                   "each after")


def test_an_unreadable_dashboard_body_is_counted_as_billed(tmp_path):
    board = {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": {"Fn::GetAtt": ["X", "Body"]}}}
    line = fixed(tmp_path, {"Board": board})["CloudWatch dashboards"]
    assert line.monthly_usd == PRICES["dashboard"].usd and "(unreadable): may be billed" in line.basis


def test_online_stores_are_not_called_free_with_no_traffic(tmp_path):
    store = {"Type": "AWS::SageMaker::FeatureGroup", "Properties": {"OnlineStoreConfig": {"EnableOnlineStore": True}}}
    line = fixed(tmp_path, {"Store": store})["Feature Store online stores"]
    assert line.monthly_usd == 0.0
    assert line.basis == ("1 on demand: storage billed per GB-month whatever the traffic, not estimated (it needs the "
                          "data size); reads and writes per request: the feature job's nightly writes are scheduled "
                          "work, not traffic, and are not estimated either")
    assert "$0 with no traffic" not in line.basis


def test_a_cost_budget_without_actions_is_no_fixed_item(tmp_path):
    """GIVEN the environment's monthly cost budget (notifications to a topic, no budget action) WHEN priced THEN it adds
    nothing: AWS Budgets bills only action-enabled budgets and delivered reports (fixed.py says where that is read)."""
    budget = {"Type": "AWS::Budgets::Budget", "Properties": {
        "Budget": {"BudgetType": "COST", "TimeUnit": "MONTHLY", "BudgetLimit": {"Amount": 1000, "Unit": "USD"}},
        "NotificationsWithSubscribers": [{
            "Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80},
            "Subscribers": [{"SubscriptionType": "SNS", "Address": {"Ref": "Topic"}}]}]}}
    (env,) = floor_report(write_assembly(tmp_path / "cdk.out", {"prod": {"Operations": template({"MonthlyBudget": budget})}}))
    assert env.lines == [] and env.fixed_usd == 0.0

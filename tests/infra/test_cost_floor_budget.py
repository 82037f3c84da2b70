"""The cost floor's notes on each environment's AWS Budgets budget (mlops_loop/tools/cost_floor/): an environment with
none is named (nobody is told when its month goes wrong), and one whose lowest "actual" notice sits at or below the
floor with schedules is named too (that notice would fire every month, and people learn to ignore it).

GIVEN small cloud assemblies written by hand (``tests.support.assemblies``) WHEN the floor is rendered THEN the notes
say exactly that, in text, Markdown and JSON alike."""

from __future__ import annotations

from typing import Optional

import pytest

from mlops_loop.tools.cost_floor import floor_report, render_text, to_json
from tests.support.assemblies import template, write_assembly

KEY = {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {}}}  # $1.00 a month each, fixed


def budget(amount, actual=(80, 100), forecast=(100,), *, time_unit: str = "MONTHLY",
           threshold_type: str = "PERCENTAGE") -> dict:
    notices = [("ACTUAL", p) for p in actual] + [("FORECASTED", p) for p in forecast]
    return {"Type": "AWS::Budgets::Budget", "Properties": {
        "Budget": {"BudgetType": "COST", "TimeUnit": time_unit, "BudgetLimit": {"Amount": amount, "Unit": "USD"}},
        "NotificationsWithSubscribers": [{
            "Notification": {"NotificationType": kind, "ComparisonOperator": "GREATER_THAN", "Threshold": threshold,
                             "ThresholdType": threshold_type},
            "Subscribers": [{"SubscriptionType": "SNS", "Address": {"Ref": "Topic"}}]} for kind, threshold in notices]}}


def notes_of(tmp_path, keys: int, monthly_budget: Optional[dict]) -> list[str]:
    """The floor's notes for prod, holding ``keys`` KMS keys ($1 each) and the budget, if any."""
    resources = {f"Key{i}": KEY for i in range(keys)}
    if monthly_budget is not None:
        resources["MonthlyBudget"] = monthly_budget
    report = floor_report(write_assembly(tmp_path / "cdk.out", {"prod": {"Operations": template(resources)}}))
    text = render_text(report, assembly="cdk.out", hours=730)
    notes = [line.removeprefix("note: ") for line in text.splitlines() if line.startswith("note: ")]
    assert to_json(report, assembly="cdk.out", hours=730)["notes"] == notes
    return [n for n in notes if "budget" in n.lower()]


def test_an_environment_without_a_budget_is_named(tmp_path):
    assert notes_of(tmp_path, 3, None) == [
        "prod: no AWS Budgets cost budget in its templates: nobody is told when its month's spending passes any amount "
        "(floor with schedules 3.00 $/mo, ceiling 3.00 $/mo, before traffic); set environments.prod.budget "
        "(docs/serving.md, Budgets and cost anomalies)"]


def test_a_budget_whose_lowest_actual_notice_the_floor_already_reaches_is_named(tmp_path):
    """GIVEN a $5 budget noticing at 60 % and 100 % actual ($3 and $5) and a $4 floor THEN the 60 % notice fires
    every month before any traffic: named with its amount and the fix; the 100 % one is not reached."""
    assert notes_of(tmp_path, 4, budget(5, actual=(100, 60))) == [
        "prod: its budget's 60 % actual notice (3.00 $ of 5.00 $/mo) is reached by the floor with schedules alone (4.00 "
        "$/mo at us-east-1 list prices, before traffic): it would fire every month; raise environments.prod.budget."
        "monthly_usd or that percentage"]


@pytest.mark.parametrize("monthly_budget", [
    budget(10),  # 80 % is $8 against a $4 floor
    budget(5, actual=(), forecast=(100,)),  # no actual notice: a forecast says the month, not the floor alone
    budget(5, time_unit="QUARTERLY"),  # another period than the floor's month: not compared
    budget(5, threshold_type="ABSOLUTE_VALUE"),  # thresholds in dollars: $80 and $100 are above the floor
])
def test_a_budget_the_floor_does_not_reach_gets_no_note(tmp_path, monthly_budget):
    assert notes_of(tmp_path, 4, monthly_budget) == []


def test_an_absolute_threshold_the_floor_reaches_is_named_in_dollars(tmp_path):
    assert notes_of(tmp_path, 4, budget(50, actual=(2,), forecast=(), threshold_type="ABSOLUTE_VALUE")) == [
        "prod: its budget's 2.00 $ actual notice (of 50.00 $/mo) is reached by the floor with schedules alone (4.00 $/mo "
        "at us-east-1 list prices, before traffic): it would fire every month; raise that threshold"]

"""A monthly cost budget (AWS Budgets) that tells an environment's people through its encrypted topic."""

from __future__ import annotations

from typing import Optional, Sequence

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

from ..config.budget import MAX_EMAIL_SUBSCRIBERS
from ..naming import budget_name, email_order
from .cdk_reads import environment_of, read_once, service_principal

BUDGETS = "budgets.amazonaws.com"
# The cost AWS Budgets compares with the limit: what the invoice lists before discounts and credits are shared out.
METRIC = "UnblendedCost"


# A notice takes one SNS subscriber and at most MAX_EMAIL_SUBSCRIBERS EMAIL ones (defined once, with the config's check).


def _threshold(notification_type: str, percent: float, topic_arn: str,
               emails: Sequence[str]) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
    return budgets.CfnBudget.NotificationWithSubscribersProperty(
        notification=budgets.CfnBudget.NotificationProperty(
            notification_type=notification_type, comparison_operator="GREATER_THAN", threshold=percent,
            threshold_type="PERCENTAGE"),
        subscribers=[budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic_arn),
                     *(budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=e) for e in emails)],
    )


class CostBudget(Construct):
    """An ``AWS::Budgets::Budget`` of ``monthly_usd`` US dollars a month (COST, MONTHLY, unblended cost) counting this
    account's spending on what carries every one of ``tags`` (``None``: all of this account's spending), and a notice
    to ``topic`` (and an email to each of ``emails``, sent by AWS Budgets itself, not through the topic) when the month's
    actual cost passes each of ``actual_percent`` and when AWS forecasts it to end above each of ``forecast_percent``.

    The topic's policy gets a statement letting AWS Budgets publish for this account's budgets only (``aws:SourceAccount``
    and ``aws:SourceArn``, as the Budgets guide's budgets-sns-policy writes it). The topic's KMS key must let
    ``budgets.amazonaws.com`` use it (``kms:GenerateDataKey*`` and ``kms:Decrypt``): the key is the caller's, and a key
    that does not would drop every notice with no error anywhere (the Storage stack's ops key does when the
    environment has a budget). Tags filter only once they are activated as cost-allocation tags (docs/serving.md, Cost allocation and log retention).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        monthly_usd: float,
        topic: sns.ITopic,
        tags: Optional[Sequence[tuple[str, str]]],
        actual_percent: Sequence[float] = (80, 100),
        forecast_percent: Sequence[float] = (100,),
        emails: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if not monthly_usd > 0:
            raise ValueError(f"{construct_id}: monthly_usd must be more than 0, not {monthly_usd}")
        if not actual_percent and not forecast_percent:
            raise ValueError(f"{construct_id}: no actual_percent and no forecast_percent: the budget would tell nobody")
        if len(emails) > MAX_EMAIL_SUBSCRIBERS:
            raise ValueError(f"{construct_id}: {len(emails)} emails; a notice takes at most {MAX_EMAIL_SUBSCRIBERS} email subscribers "
                             "beside the topic")
        if tags is not None and not tags:
            raise ValueError(f"{construct_id}: tags is empty, which would count nothing; pass None to count all of the "
                             "account's spending")
        account = environment_of(self).account
        topic_arn = read_once(topic, "topic_arn")
        # Sorted (ignoring case), as the name's digest reads them: the same addresses listed in another order are the same
        # template, not a replacement of the budget under its own name. So are the notices below.
        emails = email_order(emails)
        # The notices sorted too, as the name's digest reads them: a reordered list would otherwise replace the budget
        # (its notices are create-only) under the name it already has, which Budgets refuses as a duplicate.
        notifications = ([_threshold("ACTUAL", p, topic_arn, emails) for p in sorted(actual_percent)]
                         + [_threshold("FORECASTED", p, topic_arn, emails) for p in sorted(forecast_percent)])
        # This account only: a budget made in an Organizations management account would otherwise count every member
        # account's spending.
        this_account = budgets.CfnBudget.ExpressionProperty(
            dimensions=budgets.CfnBudget.ExpressionDimensionValuesProperty(key="LINKED_ACCOUNT", values=[account]))
        # Cost Explorer's expression: a tag filter names the tag key as the resources carry it (no "user:" prefix, which
        # only the older CostFilters' TagKeyValue takes).
        tagged = [budgets.CfnBudget.ExpressionProperty(
            tags=budgets.CfnBudget.TagValuesProperty(key=key, values=[value], match_options=["EQUALS"]))
            for key, value in (tags or ())]
        self.budget_name = budget_name(name_prefix, actual_percent, forecast_percent, emails)
        self.budget = budgets.CfnBudget(
            self,
            "Resource",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=self.budget_name,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_usd, unit="USD"),
                filter_expression=budgets.CfnBudget.ExpressionProperty(and_=[this_account, *tagged]) if tagged else this_account,
                metrics=[METRIC],
            ),
            notifications_with_subscribers=notifications,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PublishBudgets",
                principals=[service_principal(BUDGETS)],
                actions=["sns:Publish"],
                resources=[topic_arn],
                # The source ARN as the Budgets guide gives it, any budget of this account: a pattern of this budget's
                # own name is not documented as what Budgets sends, and a condition it does not meet drops every notice
                # silently. Who else could publish is this account's own budgets, which its people make.
                conditions={
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:{environment_of(self).partition}:budgets::{account}:*"},
                },
            )
        )

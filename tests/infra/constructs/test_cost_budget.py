"""CostBudget, built in a bare stack beside an encrypted topic: a monthly COST budget of this account, filtered by the
environment's tags (or not), whose ACTUAL and FORECASTED notices go to the topic, which AWS Budgets may publish to for
this account's budgets only."""

from __future__ import annotations

from typing import Optional

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_sns as sns

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.cost_budget import CostBudget
from mlops_loop.constructs.service_key import service_key
from mlops_loop.nag import add_nag_packs
from mlops_loop.tools.cloud_assembly import nag_violations
from tests.support.built_stack import BuiltStack
from tests.support.cdk_outdirs import bare_outdir

ACCOUNT = "123456789012"
TAGS = (("project", "shop"), ("environment", "dev"), ("tier", "dev"))
THIS_ACCOUNT = {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [ACCOUNT]}}


def _made(tags: Optional[tuple] = TAGS, outdir: Optional[str] = None, **settings) -> tuple[Stack, CostBudget]:
    """GIVEN a bare stack with a topic under a key AWS Budgets may use (as the Storage stack's ops key is with a budget)
    WHEN the budget of ``settings`` (default $1,200 a month, the config's default notices) is made to tell it."""
    stack = Stack(new_app(outdir or bare_outdir()), "Bare", env=Environment(account=ACCOUNT, region="eu-west-1"))
    key = service_key(stack, "OpsKey", alias="alias/shop-dev/ops", description="ops", publishers=("budgets.amazonaws.com",),
                      unbound_publishers=("budgets.amazonaws.com",), log_groups=False, removal_policy=RemovalPolicy.RETAIN)
    topic = sns.Topic(stack, "Topic", master_key=key, enforce_ssl=True)
    budget = CostBudget(stack, "MonthlyBudget", name_prefix="shop-dev", topic=topic, tags=tags,
                        **{"monthly_usd": 1200, **settings})
    return stack, budget


def _budget(tags: Optional[tuple] = TAGS, **settings) -> tuple[BuiltStack, CostBudget]:
    stack, budget = _made(tags, **settings)
    return BuiltStack(stack), budget


def _notices(built: BuiltStack) -> list[tuple[str, float]]:
    return [(n["Notification"]["NotificationType"], n["Notification"]["Threshold"])
            for n in built.one("AWS::Budgets::Budget")["Properties"]["NotificationsWithSubscribers"]]


def test_a_monthly_cost_budget_of_the_environments_tagged_spending_in_this_account():
    """THEN one COST budget, MONTHLY, of the amount in USD, on unblended cost, counting what this account spends on
    resources carrying every tag of the environment (Cost Explorer's expression: tag keys as the resources carry them)."""
    built, budget = _budget()
    data = built.one("AWS::Budgets::Budget")["Properties"]["Budget"]
    assert data == {
        "BudgetName": budget.budget_name, "BudgetType": "COST", "TimeUnit": "MONTHLY",
        "BudgetLimit": {"Amount": 1200, "Unit": "USD"}, "Metrics": ["UnblendedCost"],
        "FilterExpression": {"And": [THIS_ACCOUNT, *({"Tags": {"Key": k, "Values": [v], "MatchOptions": ["EQUALS"]}}
                                                     for k, v in TAGS)]},
    }


def test_without_tags_it_counts_all_of_this_accounts_spending_and_no_other_accounts():
    """GIVEN tags None (config ``scope: account``) THEN the filter is this account alone: untagged spending counts, and
    a budget made in an Organizations management account still leaves the member accounts out."""
    built, _ = _budget(tags=None)
    assert built.one("AWS::Budgets::Budget")["Properties"]["Budget"]["FilterExpression"] == THIS_ACCOUNT


def test_each_percentage_is_one_notice_to_the_topic():
    """THEN an ACTUAL notice per actual percentage and a FORECASTED one per forecast percentage, each crossing upwards
    a percentage of the limit, each with the topic as its one subscriber."""
    built, _ = _budget(actual_percent=(50, 90, 110), forecast_percent=(100,))
    assert _notices(built) == [("ACTUAL", 50), ("ACTUAL", 90), ("ACTUAL", 110), ("FORECASTED", 100)]
    topic = {"Ref": built.id_of(built.stack.node.find_child("Topic"))}
    for notice in built.one("AWS::Budgets::Budget")["Properties"]["NotificationsWithSubscribers"]:
        assert notice["Notification"]["ComparisonOperator"] == "GREATER_THAN"
        assert notice["Notification"]["ThresholdType"] == "PERCENTAGE"
        assert notice["Subscribers"] == [{"SubscriptionType": "SNS", "Address": topic}]


def test_emails_are_subscribers_of_every_notice_beside_the_topic():
    """GIVEN email addresses (config ``budget.emails``: the FinOps owner, whom no topic subscription may reach) THEN each
    notice has the topic first and then each address as an EMAIL subscriber, sorted ignoring case (another order in the
    config is the same template): AWS Budgets emails them itself, so a topic nobody subscribed to does not leave the
    budget silent."""
    emails = ("finops@example.com", "Lead@example.org")
    built, _ = _budget(actual_percent=(80,), forecast_percent=(100,), emails=tuple(reversed(emails)))
    topic = {"Ref": built.id_of(built.stack.node.find_child("Topic"))}
    for notice in built.one("AWS::Budgets::Budget")["Properties"]["NotificationsWithSubscribers"]:
        assert notice["Subscribers"] == [{"SubscriptionType": "SNS", "Address": topic},
                                         *({"SubscriptionType": "EMAIL", "Address": e} for e in emails)]


def test_the_same_percentages_in_another_order_are_the_same_template():
    """GIVEN a budget deployed with actual_percent [80, 100] WHEN the config lists [100, 80] THEN the template is the
    same: its notices are create-only (a changed list replaces the budget, CloudFormation creating the new one first)
    and the name, digested from the sorted percentages, would not change, so a reordered list in the template would be
    a replacement under the same name, which AWS Budgets refuses as a duplicate."""
    in_order, _ = _budget(actual_percent=(80, 100), forecast_percent=(90, 100))
    reordered, _ = _budget(actual_percent=(100, 80), forecast_percent=(100, 90))
    notices = [n["Notification"] for n in in_order.one("AWS::Budgets::Budget")["Properties"]["NotificationsWithSubscribers"]]
    assert notices == [n["Notification"] for n in
                       reordered.one("AWS::Budgets::Budget")["Properties"]["NotificationsWithSubscribers"]]
    assert _notices(reordered) == [("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 90), ("FORECASTED", 100)]


def test_a_budget_deployed_from_a_list_out_of_order_is_renamed_as_its_template_changes_on_upgrade():
    """GIVEN a budget deployed from actual_percent [100, 80] by a version that wrote the notices in the config's order
    (100 then 80) under the name of the sorted percentages WHEN built now THEN its notices are written sorted, a change
    of create-only notices, so its name must not be the one it was deployed under (that of [80, 100]): a replacement
    under the same name is refused for a custom-named resource and the upgrade's deploy would fail."""
    out_of_order, renamed = _budget(actual_percent=(100, 80))
    _, in_order = _budget(actual_percent=(80, 100))
    assert _notices(out_of_order) == [("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)]
    assert renamed.budget_name != in_order.budget_name
    assert _budget(actual_percent=(100, 80))[1].budget_name == renamed.budget_name


def test_the_default_notices_are_80_and_100_percent_spent_and_100_percent_forecast():
    built, _ = _budget()
    assert _notices(built) == [("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)]


def test_only_this_accounts_budgets_may_publish_to_the_topic():
    """THEN the topic policy gains one statement: AWS Budgets, for this account (aws:SourceAccount) and its budgets
    (aws:SourceArn as the Budgets guide writes it: arn:aws:budgets::<account>:*); the TLS-only deny stays."""
    built, _ = _budget()
    topic = {"Ref": built.id_of(built.stack.node.find_child("Topic"))}
    statements = built.one("AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in statements] == ["AllowPublishThroughSSLOnly", "PublishBudgets"]
    assert statements[1] == {
        "Sid": "PublishBudgets", "Effect": "Allow", "Principal": {"Service": "budgets.amazonaws.com"},
        "Action": "sns:Publish", "Resource": topic,
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                      "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{ACCOUNT}:*"}},
    }


def test_the_name_follows_the_notices_so_a_replacement_can_be_created():
    """GIVEN two budgets that differ in their notices (create-only, like the name: CloudFormation replaces the budget,
    creating the new one first) THEN their names differ; the same notices (in any order out of ascending one) and
    another amount (an update in place) keep the name."""
    name = _budget()[1].budget_name
    assert name.startswith("shop-dev-monthly-cost-") and len(name) == len("shop-dev-monthly-cost-") + 8
    assert _budget(actual_percent=(80, 100, 120))[1].budget_name != name
    assert _budget(forecast_percent=(90,))[1].budget_name != name
    assert _budget(actual_percent=(80, 100), monthly_usd=5000)[1].budget_name == name
    out_of_order = _budget(actual_percent=(100, 120, 80))[1].budget_name
    assert _budget(actual_percent=(120, 80, 100))[1].budget_name == out_of_order


def test_the_name_follows_the_email_subscribers_too():
    """GIVEN budgets that differ in their email subscribers (create-only too: Update requires Replacement) THEN their
    names differ, and differ from the budget without emails; the same addresses in another order keep the name, so do
    no emails at all (a budget deployed before emails existed keeps its name and is not replaced)."""
    plain = _budget()[1].budget_name
    one = _budget(emails=("a@example.com",))[1].budget_name
    two = _budget(emails=("a@example.com", "b@example.com"))[1].budget_name
    assert len({plain, one, two}) == 3
    assert _budget(emails=("b@example.com", "a@example.com"))[1].budget_name == two
    assert _budget(emails=())[1].budget_name == plain


def test_an_address_whose_case_changes_is_a_new_template_and_so_a_new_name():
    """GIVEN a budget emailing Finops@example.com WHEN the config writes it finops@example.com THEN the subscribers in
    the template change (create-only: CloudFormation replaces the budget), so the name changes too; a name kept while
    the subscribers change would be a replacement under the same name, which CloudFormation refuses for a custom-named
    resource and the deploy fails."""
    upper, upper_budget = _budget(emails=("Finops@example.com",))
    lower, lower_budget = _budget(emails=("finops@example.com",))
    subscribers = [n["Subscribers"] for n in upper.one("AWS::Budgets::Budget")["Properties"]["NotificationsWithSubscribers"]]
    assert subscribers != [n["Subscribers"] for n in lower.one("AWS::Budgets::Budget")["Properties"]["NotificationsWithSubscribers"]]
    assert upper_budget.budget_name != lower_budget.budget_name


def test_it_adds_exactly_a_budget_and_the_topics_statement():
    built, budget = _budget()
    assert [r["Type"] for r in built.resources_of(budget).values()] == ["AWS::Budgets::Budget"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"monthly_usd": 0}, "MonthlyBudget: monthly_usd must be more than 0, not 0"),
    ({"monthly_usd": -10}, "MonthlyBudget: monthly_usd must be more than 0, not -10"),
    ({"actual_percent": (), "forecast_percent": ()},
     "MonthlyBudget: no actual_percent and no forecast_percent: the budget would tell nobody"),
    ({"emails": tuple(f"p{i}@example.com" for i in range(11))},
     "MonthlyBudget: 11 emails; a notice takes at most 10 email subscribers beside the topic"),
    ({"tags": ()}, "MonthlyBudget: tags is empty, which would count nothing; pass None to count all of the account's spending"),
])
def test_it_refuses_a_budget_that_could_not_count_or_tell(settings, message):
    """GIVEN an amount that is no limit, no notice at all, or an empty tag filter THEN the construct refuses it, naming
    what is wrong (the config refuses the same before synth: tests/infra/test_budget_config.py)."""
    tags = settings.pop("tags", TAGS)
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        _budget(tags=tags, **settings)


def test_cdk_nag_finds_nothing_to_acknowledge(tmp_path):
    """GIVEN the AwsSolutions and NIST 800-53 R5 packs, and beside the budget a plain topic they flag WHEN the bare stack
    synthesizes THEN the packs ran (on the plain topic) and every finding is the plain topic's: nothing of the budget or
    the statement it adds to its topic needs an acknowledgement."""
    stack, _ = _made(outdir=str(tmp_path))
    sns.Topic(stack, "Plain")
    add_nag_packs(stack.node.root)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        stack.node.root.synth()
    found = {(v["ruleName"], c["constructPath"]) for v in nag_violations(tmp_path) for c in v["violatingConstructs"]}
    assert ("AwsSolutions-SNS3", "Bare/Plain/Resource") in found
    assert all(path.startswith("Bare/Plain/") for _, path in found), found

"""The optional ``budget`` block: a monthly AWS Budgets cost budget per environment, off unless configured.

Each misconfiguration fails with one message naming the environment (or ``defaults``), the field and the fix. Built on
the one-model construct config (``tests.support.construct_configs``), not on the sample line-up.
"""

from __future__ import annotations

import pytest

from mlops_loop.config import ConfigError, parse_config
from mlops_loop.config.budget import BudgetConfig
from mlops_loop.tools.cloud_assembly import stacks
from mlops_loop.tools.lint import lint_cache, lint_stacks
from tests.support.construct_configs import NETWORK_ENVIRONMENT, network_environment_config, returns_config


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_no_budget_by_default():
    # GIVEN an environment without a budget block WHEN loaded THEN none is made (no number synth could derive is right)
    assert parse_config(returns_config()).environments["dev"].budget is None


def test_a_budget_takes_the_default_notices_and_the_tags_scope():
    budget = parse_config(returns_config(budget={"monthly_usd": 1200})).environments["dev"].budget
    assert budget == BudgetConfig(monthly_usd=1200, actual_percent=(80, 100), forecast_percent=(100,), scope="tags",
                                  emails=())


def test_emails_are_kept_in_order():
    # GIVEN the FinOps owner's addresses WHEN loaded THEN each notice will also be emailed to them (not only the topic)
    raw = returns_config(budget={"monthly_usd": 1200, "emails": ["finops@example.com", "Lead.Ops+aws@corp.example.org"]})
    assert parse_config(raw).environments["dev"].budget.emails == ("finops@example.com", "Lead.Ops+aws@corp.example.org")


def test_every_setting_is_kept():
    raw = returns_config(budget={"monthly_usd": 99.5, "actual_percent": [50, 120], "forecast_percent": [], "scope": "account"})
    budget = parse_config(raw).environments["dev"].budget
    assert (budget.monthly_usd, budget.actual_percent, budget.forecast_percent, budget.scope) == (99.5, (50, 120), (), "account")


def test_defaults_give_every_environment_the_budget_and_one_can_drop_it():
    # GIVEN a budget in defaults and a second environment (another account) that sets budget: null
    raw = returns_config()
    raw["defaults"] = {"budget": {"monthly_usd": 500}}
    raw["environments"]["lab"] = {**raw["environments"]["dev"], "account": "210987654321", "budget": None}
    config = parse_config(raw)
    assert config.environments["dev"].budget.monthly_usd == 500
    assert config.environments["lab"].budget is None


AMOUNT_FIX = "give the environment's monthly budget in US dollars, more than 0 (e.g. 1500), or remove 'budget' for none"
EMAIL_FIX = "is not an email address AWS Budgets can send a notice to; list addresses such as finops@example.com"
PERCENT_FIX = "is not a percentage of monthly_usd a notice can be sent at; use 1-1,000 (e.g. [80, 100])"


@pytest.mark.parametrize(("budget", "expected"), [
    ({"monthly_usd": -200}, f"field 'budget.monthly_usd': -200 is no monthly limit AWS Budgets can hold; {AMOUNT_FIX}"),
    ({"monthly_usd": 0}, f"field 'budget.monthly_usd': 0 is no monthly limit AWS Budgets can hold; {AMOUNT_FIX}"),
    ({}, "field 'budget.monthly_usd': required field is missing"),
    ({"monthly_usd": "1200"}, "field 'budget.monthly_usd': must be a number, not the string '1200'; write it without quotes"),
    ({"monthly_usd": 10, "actual_percent": [0, 100]}, f"field 'budget.actual_percent': 0 {PERCENT_FIX}"),
    ({"monthly_usd": 10, "actual_percent": [80, -5]}, f"field 'budget.actual_percent': -5 {PERCENT_FIX}"),
    ({"monthly_usd": 10, "forecast_percent": [1500]}, f"field 'budget.forecast_percent': 1500 {PERCENT_FIX}"),
    ({"monthly_usd": 10, "actual_percent": [80, True]},
     "field 'budget.actual_percent': True is not a percentage; list numbers (e.g. [80, 100])"),
    ({"monthly_usd": 10, "actual_percent": [80, 80, 100]},
     "field 'budget.actual_percent': lists 80 more than once; list each percentage once"),
    ({"monthly_usd": 10, "actual_percent": [], "forecast_percent": []},
     "field 'budget': actual_percent and forecast_percent are both empty: the budget would tell nobody; list at least one "
     "percentage (e.g. actual_percent: [80, 100]), or remove 'budget'"),
    ({"monthly_usd": 10, "actual_percent": [50, 80, 100, 120], "forecast_percent": [90, 100]},
     "field 'budget': actual_percent and forecast_percent ask for 6 notices (4 + 2); AWS Budgets takes at most 5 per budget: "
     "list at most 5 percentages in the two"),
    ({"monthly_usd": 10, "scope": "organization"},
     "field 'budget.scope': Input should be 'tags' or 'account' (got 'organization')"),
    ({"monthly_usd": 10, "emails": ["finops"]},
     f"field 'budget.emails': 'finops' {EMAIL_FIX}"),
    ({"monthly_usd": 10, "emails": ["fin ops@example.com"]},
     f"field 'budget.emails': 'fin ops@example.com' {EMAIL_FIX}"),
    ({"monthly_usd": 10, "emails": ["finops@example.com\nbcc@evil.example"]},
     f"field 'budget.emails': 'finops@example.com\\nbcc@evil.example' {EMAIL_FIX}"),
    ({"monthly_usd": 10, "emails": [42]}, f"field 'budget.emails': 42 {EMAIL_FIX}"),
    ({"monthly_usd": 10, "emails": "finops@example.com"},
     "field 'budget.emails': give a list of addresses (e.g. [finops@example.com]), not one string"),
    ({"monthly_usd": 10, "emails": ["a@example.com", "A@Example.com"]},
     "field 'budget.emails': lists 'A@Example.com' more than once (addresses are compared ignoring case); list each "
     "address once"),
    ({"monthly_usd": 10, "emails": [f"p{i}@example.com" for i in range(11)]},
     "field 'budget.emails': lists 11 addresses; AWS Budgets emails each notice to at most 10 (beside the topic): list "
     "at most 10, and subscribe anyone else to the environment's topic (NotificationTopicArn)"),
    ({"monthly_usd": 10, "currency": "EUR"},
     "field 'budget.currency': unknown field; check the spelling against the documented fields (docs/configuration.md: Configuration)"),
])
def test_a_bad_budget_names_the_environment_the_field_and_the_fix(budget, expected):
    assert problems_of(returns_config(budget=budget)) == [f"environment 'dev': {expected}"]


def test_a_mistake_in_a_default_budget_is_reported_once_as_defaults():
    raw = returns_config()
    raw["defaults"] = {"budget": {"monthly_usd": -1}}
    raw["environments"]["lab"] = {**raw["environments"]["dev"], "account": "210987654321"}
    assert problems_of(raw) == [
        f"defaults: field 'budget.monthly_usd': -1 is no monthly limit AWS Budgets can hold; {AMOUNT_FIX}"]


def _sharing(scope: str) -> dict:
    """dev with a budget of ``scope``, and lab in the same account."""
    raw = returns_config(budget={"monthly_usd": 800, "scope": scope})
    raw["environments"]["lab"] = {**raw["environments"]["dev"], "budget": None}
    return raw


def test_an_account_wide_budget_in_an_account_another_environment_shares_is_refused():
    assert problems_of(_sharing("account")) == [
        "environment 'dev': field 'budget.scope': 'account' counts everything account 123456789012 spends, and environment "
        "'lab' deploys there too, so this budget would count their spending as this environment's; use scope 'tags' (the "
        "default) while environments share the account"]


def test_the_fix_the_message_names_is_accepted():
    # WHEN the budget counts by the environment's tags THEN environments may share the account
    assert parse_config(_sharing("tags")).environments["dev"].budget.scope == "tags"


def test_the_configured_emails_reach_the_synthesized_budget_and_pass_cfn_lint(synthesize_once):
    """GIVEN an environment whose budget lists emails WHEN it is synthesized (nag packs on) THEN its Operations stack's
    budget emails every notice to each address beside the topic, and cfn-lint finds nothing in that template.

    The environment is tests/infra/test_network_environment.py's (``network_environment_config``: the same synth),
    whose budget lists ``ops@example.com`` and ``finops@example.com``."""
    raw = network_environment_config()
    assert raw["environments"]["dev"]["budget"]["emails"] == ["ops@example.com", "finops@example.com"]
    outdir = synthesize_once(NETWORK_ENVIRONMENT, parse_config(raw, source="network environment config"), ["dev"])
    (operations,) = [s for s in stacks(outdir) if s.construct_id == "Operations"]
    (budget,) = [r["Properties"] for r in operations.template["Resources"].values() if r["Type"] == "AWS::Budgets::Budget"]
    for notice in budget["NotificationsWithSubscribers"]:
        assert [s["SubscriptionType"] for s in notice["Subscribers"]] == ["SNS", "EMAIL", "EMAIL"]
        assert [s["Address"] for s in notice["Subscribers"][1:]] == ["finops@example.com", "ops@example.com"]
    result = lint_stacks([operations], cache=lint_cache())
    assert (result.errors, result.warnings) == (0, 0), "\n".join(result.lines)

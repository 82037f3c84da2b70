"""An environment's monthly cost budget (``budget``): what AWS Budgets counts and when it tells the environment's people.

No budget is the default: the right amount is the FinOps owner's to choose, not a number synth could derive (the cost
floor's figures leave out traffic, data volume and the account's discounts, so a budget built on them would either page
on ordinary months or stay silent on a bad one). docs/serving.md, *Cost allocation and log retention* and *Budgets and cost anomalies*.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, Mapping

from pydantic import Field, field_validator, model_validator

from ._strict import StrictModel

# What CreateBudget takes: "A budget can have up to five notifications" (its NotificationsWithSubscribers member; the
# Notification shape says ten, the stricter of the two is kept, see docs/serving.md, Budgets and cost anomalies).
MAX_NOTIFICATIONS = 5
# A threshold is a percentage of the monthly amount; past ten times the budget a notice says nothing the 100 % one has
# not said nine times over.
MIN_PERCENT, MAX_PERCENT = 1, 1000
BUDGET_SCOPES = ("tags", "account")
# "A notification can have one SNS subscriber and up to 10 email subscribers, for a total of 11 subscribers"
# (AWS::Budgets::Budget NotificationWithSubscribers; the Budgets API's NotificationWithSubscribers says the same).
MAX_EMAIL_SUBSCRIBERS = 10
# An address Budgets can send to: one @, a dotted domain, no whitespace (the Subscriber's Address may hold no line break).
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _emails(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError("give a list of addresses (e.g. [finops@example.com]), not one string")
    if not isinstance(value, (list, tuple)):
        return value  # the field's own type error names it
    for item in value:
        if not isinstance(item, str) or not _EMAIL.fullmatch(item):
            raise ValueError(f"{item!r} is not an email address AWS Budgets can send a notice to; list addresses such as "
                             "finops@example.com")
    seen: set[str] = set()
    for item in value:
        if item.lower() in seen:
            raise ValueError(f"lists {item!r} more than once (addresses are compared ignoring case); list each address once")
        seen.add(item.lower())
    if len(value) > MAX_EMAIL_SUBSCRIBERS:
        raise ValueError(f"lists {len(value)} addresses; AWS Budgets emails each notice to at most {MAX_EMAIL_SUBSCRIBERS} "
                         f"(beside the topic): list at most {MAX_EMAIL_SUBSCRIBERS}, and subscribe anyone else to the environment's topic "
                         "(NotificationTopicArn)")
    return value


def _percentages(value: Any) -> Any:
    if not isinstance(value, (list, tuple)):
        return value  # the field's own type error names it
    for item in value:
        # A tuple's items escape StrictModel's coercion check: true would be read as 1 %.
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ValueError(f"{item!r} is not a percentage; list numbers (e.g. [80, 100])")
        if not (MIN_PERCENT <= item <= MAX_PERCENT) or not math.isfinite(item):
            raise ValueError(f"{item:g} is not a percentage of monthly_usd a notice can be sent at; use "
                             f"{MIN_PERCENT}-{MAX_PERCENT:,} (e.g. [80, 100])")
    repeated = sorted({item for item in value if list(value).count(item) > 1}, key=str)
    if repeated:
        raise ValueError(f"lists {', '.join(f'{r:g}' if isinstance(r, (int, float)) else repr(r) for r in repeated)} "
                         f"more than once; list each percentage once")
    return value


class BudgetConfig(StrictModel):
    """A monthly COST budget in AWS Budgets (``monthly_usd`` US dollars, unblended) whose notices go to the environment's
    notification topic and to each of ``emails``. Defaults: a notice when the month's actual cost passes 80 % and 100 % of ``monthly_usd`` and when
    AWS forecasts the month to end above 100 %; counted over what carries the environment's cost-allocation tags
    (``scope: tags``: project, environment and tier), which must be activated in the Billing console first."""

    monthly_usd: float = Field(gt=0, allow_inf_nan=False)
    # ACTUAL notices: the month's cost so far passed this share of monthly_usd.
    actual_percent: tuple[float, ...] = (80.0, 100.0)
    # FORECASTED notices: AWS's forecast for the month passed this share (AWS forecasts only with enough cost history,
    # commonly not in an account's first billing cycle; until then only the actual notices can fire).
    forecast_percent: tuple[float, ...] = (100.0,)
    # tags: what carries every one of the environment's cost-allocation tags (environments may share the account);
    # account: everything the account spends, tagged or not (one environment per account).
    scope: Literal[BUDGET_SCOPES] = "tags"
    # Addresses AWS Budgets emails every notice to itself, beside the topic: the FinOps owner, who is on no ops topic
    # (the app subscribes nobody to it). Empty (default): the topic only.
    emails: tuple[str, ...] = ()

    @field_validator("monthly_usd", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        # Before the bound: pydantic's "Input should be greater than 0" names neither what the number is nor the fix.
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value <= 0:
            raise ValueError(f"{value:g} is no monthly limit AWS Budgets can hold; give the environment's monthly budget "
                             "in US dollars, more than 0 (e.g. 1500), or remove 'budget' for none")
        return value

    @field_validator("actual_percent", mode="before")
    @classmethod
    def _actual(cls, value: Any) -> Any:
        return _percentages(value)

    @field_validator("forecast_percent", mode="before")
    @classmethod
    def _forecast(cls, value: Any) -> Any:
        return _percentages(value)

    @field_validator("emails", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        return _emails(value)

    @model_validator(mode="after")
    def _notices(self) -> "BudgetConfig":
        count = len(self.actual_percent) + len(self.forecast_percent)
        if count == 0:
            raise ValueError("actual_percent and forecast_percent are both empty: the budget would tell nobody; list "
                             "at least one percentage (e.g. actual_percent: [80, 100]), or remove 'budget'")
        if count > MAX_NOTIFICATIONS:
            raise ValueError(f"actual_percent and forecast_percent ask for {count} notices ({len(self.actual_percent)} + "
                             f"{len(self.forecast_percent)}); AWS Budgets takes at most {MAX_NOTIFICATIONS} per budget: "
                             f"list at most {MAX_NOTIFICATIONS} percentages in the two")
        return self


def budget_problems(environments: Mapping[str, Any]) -> list[str]:
    """An account-wide budget (``scope: account``) in an account another environment of the config deploys to: each
    would count the other's spending as its own, one line per such environment."""
    problems = []
    for env in environments.values():
        if env.budget is None or env.budget.scope != "account":
            continue
        shared = [other.name for other in environments.values() if other is not env and other.account == env.account]
        if shared:
            others = (f"environment {shared[0]!r} deploys" if len(shared) == 1 else
                      f"environments {', '.join(repr(s) for s in shared)} deploy")
            problems.append(f"environment {env.name!r}: field 'budget.scope': 'account' counts everything account "
                            f"{env.account} spends, and {others} there too, so this budget would count their spending as "
                            "this environment's; use scope 'tags' (the default) while environments share the account")
    return problems

"""How often a schedule expression fires (mlops_loop.config.schedules.runs_per_year), which the cost floor's scheduled
estimate multiplies: every cron form EventBridge and Glue accept, counted over the reference year 2027."""

from __future__ import annotations

import pytest

from mlops_loop.config.schedules import REFERENCE_YEAR, runs_per_year


@pytest.mark.parametrize("expression,runs", [
    ("cron(0 2 * * ? *)", 365),            # daily
    ("cron(0 4 ? * SUN *)", 52),           # weekly: 2027 has 52 Sundays (and 53 Fridays)
    ("cron(0 4 ? * FRI *)", 53),
    ("cron(0 9 ? * MON-FRI *)", 261),      # weekdays
    ("cron(0/15 * * * ? *)", 365 * 96),    # every 15 minutes
    ("cron(0 0,12 1 * ? *)", 24),          # twice on the first of each month
    ("cron(0 3 L * ? *)", 12),             # last day of the month
    ("cron(0 3 LW * ? *)", 12),            # last weekday of the month
    ("cron(0 3 15W * ? *)", 12),           # weekday nearest the 15th
    ("cron(0 3 ? * 6L *)", 12),            # last Friday
    ("cron(0 3 ? * 2#1 *)", 12),           # first Monday
    ("cron(0 0 1 JAN,JUL ? *)", 2),        # month names (the L of JUL is no 'last')
    ("cron(0 0 ? * WED,FRI *)", 52 + 53),  # weekday names (the W of WED is no 'weekday')
    ("cron(0 0 29 2 ? *)", 0),             # 29 February: not in the (non-leap) reference year
    ("rate(1 hour)", 8760),
    ("rate(6 hours)", 1460),
    ("rate(1 day)", 365),
    ("rate(30 minutes)", 17520),
])
def test_runs_per_year_counts_each_firing_of_the_reference_year(expression, runs):
    assert REFERENCE_YEAR == 2027
    assert runs_per_year(expression) == runs


def test_the_nearest_weekday_never_leaves_the_month():
    """GIVEN '1W' WHEN the 1st is a Saturday (1 May 2027) THEN it fires Monday the 3rd, not Friday 30 April: still once
    a month, twelve a year."""
    assert runs_per_year("cron(0 0 1W * ? *)") == 12


@pytest.mark.parametrize("expression,message", [
    ("cron(0 2 * * *)", "is not a cron expression"),
    ("rate(0 hours)", "must be a whole number of at least 1"),
    ("at(2027-01-01T00:00:00)", "is not a cron expression"),
    ("cron(0 0 * * ? 2030)", "runs only in the years '2030', so it has no yearly rate"),
])
def test_an_expression_without_a_yearly_rate_raises_with_why(expression, message):
    with pytest.raises(ValueError, match=message):
        runs_per_year(expression)

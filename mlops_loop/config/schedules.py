"""Model Monitor schedules: which EventBridge cron expressions native Model Monitor can run, and as what."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
_HOUR = re.compile(r"^(\*|\d{1,2})(?:/(\d{1,2}))?$")
_SCHEDULE_HELP = ("allowed: an EventBridge cron at minute 0, every day of every month, with hours '*' (hourly), "
                  "'H' (daily at H UTC) or 'H/N' (every N hours from H), e.g. 'cron(0 3 * * ? *)'")


@dataclass(frozen=True)
class MonitorSchedule:
    """A Model Monitor ``ScheduleExpression`` and the time between two runs."""

    expression: str
    period_seconds: int


def monitoring_schedule(value: str) -> MonitorSchedule:
    """Convert an EventBridge ``cron(min hour dom month dow year)`` to a Model Monitor schedule.

    Model Monitor accepts only ``cron(0 * ? * * *)`` (hourly), ``cron(0 H ? * * *)`` (daily) and
    ``cron(0 H/N ? * * *)`` (every N hours); anything else raises ValueError saying why and what is allowed.
    """
    match = _CRON.match(value or "")
    if not match:
        raise ValueError(f"{value!r} is not a cron(...) expression; {_SCHEDULE_HELP}")
    minute, hour, day_of_month, month, day_of_week, year = match.groups()
    every_day = (day_of_month, day_of_week) in (("*", "?"), ("?", "*"))
    hours = _HOUR.match(hour)
    if minute != "0" or month != "*" or year != "*" or not every_day or not hours:
        raise ValueError(f"{value!r} cannot run as a Model Monitor schedule; {_SCHEDULE_HELP}")
    start, step = hours.groups()
    if start == "*":
        if step is not None:
            raise ValueError(f"{value!r}: use 'H/N' with a start hour, not '*/N'; {_SCHEDULE_HELP}")
        return MonitorSchedule("cron(0 * ? * * *)", 3600)
    if not 0 <= int(start) <= 23 or (step is not None and not 1 <= int(step) <= 24):
        raise ValueError(f"{value!r}: hour must be 0-23 and the step 1-24; {_SCHEDULE_HELP}")
    if step is None:
        return MonitorSchedule(f"cron(0 {int(start)} ? * * *)", 86_400)
    return MonitorSchedule(f"cron(0 {int(start)}/{int(step)} ? * * *)", int(step) * 3600)

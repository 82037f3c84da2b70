"""Schedule expressions, checked for the service that receives each: Glue triggers take ``cron(...)``
(:func:`check_cron`), EventBridge Scheduler also ``rate(...)`` (:func:`check_scheduler_expression`; the batch
transform's at most hourly, :func:`check_at_most_hourly`), and
native Model Monitor only three cron forms (:func:`monitoring_schedule`). A value AWS would reject at
deploy time fails here, with the part that is wrong, and so does one AWS accepts but that never fires (30 February,
a past year)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Optional

_CRON = re.compile(r"^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$")
_RATE = re.compile(r"^rate\((\S+) (\S+)\)$")
_RATE_UNITS = ("minute", "hour", "day")
_UNIT_MINUTES = {"minute": 1, "hour": 60, "day": 24 * 60}
_HOUR = re.compile(r"^(\*|\d{1,2})(?:/(\d{1,2}))?$")
# (day-of-month, day-of-week) of a cron that fires every day.
_EVERY_DAY = (("*", "?"), ("?", "*"))
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
    every_day = (day_of_month, day_of_week) in _EVERY_DAY
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


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# Field -> (lowest, highest, names for 1.., extra forms allowed), as EventBridge and Glue accept them
# (EventBridge User Guide, "Cron expressions").
_CRON_FIELDS = (
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _WEEKDAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
)


# What a user may write for "no ETL schedule" (YAML reads an unquoted off / no / false as false): null is the value.
_LOOKS_OFF = (False, "off", "none", "no", "false", "disabled", "never", "")


def check_cron_or_off(value: Any) -> Optional[str]:
    """:func:`check_cron`, or None (null: no schedule, the workflow runs only when started). A value written for "off"
    that is not null is refused naming null, rather than as a malformed cron expression."""
    if value is None:
        return None
    if value is False or (isinstance(value, str) and value.strip().lower() in _LOOKS_OFF):
        shown = "false" if value is False else repr(value)
        raise ValueError(f"{shown} is not a schedule; write null to switch the nightly workflow off (start it with aws "
                         "glue start-workflow-run --name <workflow>, the DataPipeline stack's <Dataset>WorkflowName "
                         "output), or a cron expression such as 'cron(0 2 * * ? *)'")
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a cron expression; use cron(Minutes Hours Day-of-month Month Day-of-week "
                         "Year), e.g. 'cron(0 2 * * ? *)', or null for none")
    return check_cron(value)


def check_cron(value: str) -> str:
    """Glue and EventBridge ``cron(min hour day-of-month month day-of-week year)``, every field checked.

    Each field takes ``*``, a value, a range ``a-b``, a step ``*/n`` or ``a/n`` or ``a-b/n`` and lists
    of these; day-of-month also ``?``, ``L``, ``LW`` and ``nW``; day-of-week also ``?``, ``nL`` and
    ``n#k``; months and weekdays also by name (``JAN``, ``SUN``). Exactly one of the two day fields
    is ``?``. Anything else is what AWS rejects at deploy time, so it fails here; so does an expression that never
    fires (days none of its months have, years all past), which AWS accepts.
    """
    match = _CRON.match(value)
    if not match:
        raise ValueError(
            f"{value!r} is not a cron expression; use cron(Minutes Hours Day-of-month Month Day-of-week Year), "
            "e.g. 'cron(0 2 * * ? *)'"
        )
    for text, (name, low, high, names, extra) in zip(match.groups(), _CRON_FIELDS):
        problem = _cron_field_problem(text, low, high, names, extra)
        if problem:
            raise ValueError(f"{value!r}: {name} {text!r} {problem}")
    day_of_month, month, day_of_week, year = match.group(3), match.group(4), match.group(5), match.group(6)
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError(f"{value!r}: exactly one of day-of-month and day-of-week must be '?'")
    # Valid field by field, yet never firing: AWS accepts these and the job silently never runs.
    days, months = _values(day_of_month, 1, 31, ()), _values(month, 1, 12, _MONTHS)
    if days and months and not any(day <= _MONTH_DAYS[m] for day in days for m in months):
        raise ValueError(f"{value!r}: day-of-month {day_of_month!r} falls in none of the months {month!r}, so the schedule "
                         "never runs; pick days those months have")
    years, this_year = _values(year, 1970, 2199, ()), dt.datetime.now(dt.timezone.utc).year
    if years and max(years) < this_year:
        raise ValueError(f"{value!r}: year {year!r} is past, so the schedule never runs again; use '*' or years from "
                         f"{this_year} on")
    return value


# The most days each month has (February in a leap year).
_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


def _rate_minutes(value: str) -> int:
    """The period of a valid ``rate(n unit)`` expression, in minutes."""
    amount, unit = _RATE.match(value).groups()
    return int(amount) * _UNIT_MINUTES[unit.rstrip("s")]


def _named_number(part: str, names: tuple[str, ...]) -> int:
    """A cron field's value: its digits, or its name's position (JAN and SUN are 1)."""
    return int(part) if part.isdigit() else names.index(part.upper()) + 1


def _values(text: str, low: int, high: int, names: tuple[str, ...]) -> set[int] | None:
    """Every value a valid cron field takes, for the forms that name them ('*', values, names, ranges, steps);
    None for the forms the calendar decides ('?', 'L', 'W', '#')."""
    marks = text.upper()
    for name in names:  # the L of JUL and the W of WED are no marks
        marks = marks.replace(name, "")
    if any(mark in marks for mark in "?LW#"):
        return None

    out: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            start, end = low, high
        else:
            first, _, last = base.partition("-")
            start = _named_number(first, names)
            end = _named_number(last, names) if last else (high if step else start)
        out.update(range(start, end + 1, int(step) if step else 1))
    return out


# The year :func:`runs_per_year` counts a cron's dates in: not a leap year, so a year is 365 days (8,760 hours) as
# the cost floor's month of 730 hours assumes.
REFERENCE_YEAR = 2027


def runs_per_year(value: str) -> float:
    """How many times a Scheduler or Glue schedule expression fires in a year of 365 days.

    ``rate(n unit)``: 365 days divided by its period. ``cron(...)``: its times of day (minutes x hours) on each date of
    :data:`REFERENCE_YEAR` its day-of-month, month and day-of-week fields select, ``L``, ``LW``, ``nW``, ``nL`` and
    ``n#k`` included. Raises ValueError for an expression :func:`check_scheduler_expression` refuses (with its
    message), and for a cron limited to certain years (it has no yearly rate).
    """
    check_scheduler_expression(value)
    if value.startswith("rate("):
        return 365 * _UNIT_MINUTES["day"] / _rate_minutes(value)
    minute, hour, day_of_month, month, day_of_week, year = _CRON.match(value).groups()
    if year != "*":
        raise ValueError(f"{value!r}: runs only in the years {year!r}, so it has no yearly rate; use '*' for the year")
    times = len(_values(minute, 0, 59, ())) * len(_values(hour, 0, 23, ()))
    months = _values(month, 1, 12, _MONTHS)
    day = dt.date(REFERENCE_YEAR, 1, 1)
    dates = 0
    while day.year == REFERENCE_YEAR:
        if day.month in months and (_day_matches(day, day_of_month) if day_of_week == "?"
                                    else _weekday_matches(day, day_of_week)):
            dates += 1
        day += dt.timedelta(days=1)
    return float(dates * times)


def _month_end(day: dt.date) -> dt.date:
    """The last date of ``day``'s month."""
    following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def _nearest_weekday(day: dt.date) -> dt.date:
    """The weekday nearest ``day`` within its month (``nW``): Saturday moves to Friday, Sunday to Monday, never across
    the month's edge (the 1st on a Saturday moves to Monday the 3rd, the last day on a Sunday to Friday)."""
    if day.weekday() == 5:
        return day - dt.timedelta(days=1) if day.day > 1 else day + dt.timedelta(days=2)
    if day.weekday() == 6:
        return day + dt.timedelta(days=1) if day != _month_end(day) else day - dt.timedelta(days=2)
    return day


def _day_matches(day: dt.date, field: str) -> bool:
    """Whether a valid day-of-month field (``*``, values, ranges, steps, ``L``, ``LW``, ``nW``) selects ``day``."""
    last = _month_end(day)
    for item in field.split(","):
        if item == "L" and day == last or item == "LW" and day == _nearest_weekday(last):
            return True
        if item.endswith("W") and item[:-1].isdigit():
            if int(item[:-1]) <= last.day and day == _nearest_weekday(day.replace(day=int(item[:-1]))):
                return True
        elif item not in ("L", "LW") and day.day in _values(item, 1, 31, ()):
            return True
    return False


def _weekday_matches(day: dt.date, field: str) -> bool:
    """Whether a valid day-of-week field (1 = SUN ... 7 = SAT: ``*``, values, names, ranges, ``nL``, ``n#k``) selects
    ``day``."""
    weekday = (day.weekday() + 1) % 7 + 1  # Python's Monday 0 ... Sunday 6 -> cron's SUN 1 ... SAT 7

    for item in field.split(","):
        if "#" in item:
            name, _, nth = item.partition("#")
            if weekday == _named_number(name, _WEEKDAYS) and (day.day - 1) // 7 + 1 == int(nth):
                return True
        elif item.endswith("L") and len(item) > 1:
            if weekday == _named_number(item[:-1], _WEEKDAYS) and day + dt.timedelta(days=7) > _month_end(day):
                return True
        elif weekday in _values(item, 1, 7, _WEEKDAYS):
            return True
    return False


# The forms each kind of field takes, for the help in a message (keyed by the field's extra forms).
_FORMS = {
    "": "'*', ranges and steps",
    "?LW": "'*', ranges, steps, '?', 'L', 'LW' and 'nW'",
    "?L#": "'*', ranges, '?', 'nL' and 'n#k'",
}


def _cron_field_problem(text: str, low: int, high: int, names: tuple[str, ...], extra: str) -> str:
    """Why one cron field is invalid ("" when it is valid)."""
    if text == "?":
        return "" if "?" in extra else "cannot be '?' (only day-of-month or day-of-week can)"
    allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")

    def number(part: str) -> int | None:
        return _named_number(part, names) if part.isdigit() or part.upper() in names else None

    # Only day-of-week takes '#', and with it also 'nL' (the last weekday n of the month); only
    # day-of-month takes 'W' ('nW', 'LW'). '#' allows one expression in its field ('3#1,6#3' is refused).
    day_of_week = "#" in extra
    if day_of_week and "#" in text and "," in text:
        return "uses '#' in a list; with '#' the day-of-week field is one expression, e.g. '2#1'"
    for item in text.split(","):
        if item == "L" and "L" in extra or item == "LW" and "W" in extra:
            continue
        if "W" in extra and item.endswith("W") and item[:-1].isdigit():
            item = item[:-1]
        if day_of_week and "#" in item:
            day, _, nth = item.partition("#")
            if number(day) is None or not nth.isdigit() or not 1 <= int(nth) <= 5:
                return f"uses '{item}'; '#' takes a weekday and an occurrence 1-5, e.g. '2#1'"
            item = day
        if day_of_week and "L" in extra and item.endswith("L") and len(item) > 1:
            item = item[:-1]
        base, _, step = item.partition("/")
        if step and day_of_week:
            # EventBridge's table lists no '/' for day-of-week (it does for every other field).
            return f"has the step '{item}'; day-of-week takes no steps, list the days instead, e.g. 'MON,WED,FRI'"
        if step and (not step.isdigit() or int(step) < 1):
            return f"has step '{step}'; a step is a positive whole number"
        bounds = [] if base == "*" else base.split("-", 1)
        for bound in bounds:
            n = number(bound)
            if n is None:
                return f"is not valid: '{bound}' is not a value; allowed: {allowed}, {_FORMS[extra]}"
            if not low <= n <= high:
                return f"is out of range: {bound} is not within {allowed}"
        if len(bounds) == 2 and number(bounds[0]) > number(bounds[1]):
            return f"has range '{base}' that ends before it starts"
    return ""


def check_scheduler_expression(value: str) -> str:
    """An EventBridge Scheduler expression: ``cron(...)`` as :func:`check_cron` checks it, or ``rate(value unit)``
    with a whole value of at least 1 and the unit ``minute``, ``hour`` or ``day`` - singular for 1, plural
    otherwise (``rate(1 hour)``, ``rate(6 hours)``), as EventBridge requires."""
    if not value.startswith("rate("):
        return check_cron(value)
    match = _RATE.match(value)
    help_ = "use rate(value unit) with a whole value and minute(s), hour(s) or day(s), e.g. 'rate(6 hours)'"
    if not match:
        raise ValueError(f"{value!r} is not a rate expression; {help_}")
    amount, unit = match.groups()
    if not amount.isdigit() or int(amount) < 1:
        raise ValueError(f"{value!r}: the value {amount!r} must be a whole number of at least 1; {help_}")
    if unit.rstrip("s") not in _RATE_UNITS:
        raise ValueError(f"{value!r}: the unit {unit!r} is not one of minute(s), hour(s), day(s); {help_}")
    expected = unit.rstrip("s") + ("" if int(amount) == 1 else "s")
    if unit != expected:
        raise ValueError(f"{value!r}: with the value {int(amount)} the unit must be {expected!r} "
                         f"(singular for 1, plural otherwise): 'rate({int(amount)} {expected})'")
    return value


def check_at_most_hourly(value: str) -> str:
    """A Scheduler expression (:func:`check_scheduler_expression`) whose runs are at least an hour apart: ``rate(...)``
    of at least an hour (``rate(1 hour)``, ``rate(60 minutes)``), or a cron at one minute of the hour
    (``cron(0 1 * * ? *)``, ``cron(30 */6 * * ? *)``).

    For the batch transform schedule: each run scores every file under the model's input prefix, as a job with no time
    limit, and a run starts whether or not the previous one is still running; runs minutes apart would score the same
    files over and over, side by side.
    """
    check_scheduler_expression(value)
    help_ = ("each batch transform run scores every file under input/ and a run starts even while the previous one "
             "runs; use one minute of the hour, e.g. 'cron(0 1 * * ? *)', or a rate of at least an hour, e.g. "
             "'rate(6 hours)'")
    if value.startswith("rate("):
        if _rate_minutes(value) < _UNIT_MINUTES["hour"]:
            raise ValueError(f"{value!r} runs more than once an hour; {help_}")
        return value
    minute = _CRON.match(value).group(1)
    if len(_values(minute, 0, 59, ()) or ()) != 1:  # two minutes of one hour: two runs less than an hour apart
        raise ValueError(f"{value!r} runs more than once an hour (minutes {minute!r}); {help_}")
    return value


def check_daily(value: str) -> str:
    """A Scheduler expression (:func:`check_scheduler_expression`) that fires once a day: ``rate(1 day)`` (or
    ``rate(24 hours)``, ``rate(1440 minutes)``) or a cron at one minute of one hour, every day of every month and year (``cron(0 3 * * ? *)``).

    The drift monitor judges the last 24 hours each run, calibrates its thresholds to one window a day and
    keeps its slow-drift sum run by run; its alarms take the day's maximum. More runs a day would judge
    overlapping windows and multiply the false alarms; fewer would leave days unjudged.
    """
    check_scheduler_expression(value)
    help_ = "the drift monitor judges the last 24 hours per run and its thresholds and alarms count one run a day; " \
            "use a daily cron such as 'cron(0 3 * * ? *)' or 'rate(1 day)'"
    if value.startswith("rate("):
        if _rate_minutes(value) != _UNIT_MINUTES["day"]:  # rate(24 hours) is a day too
            raise ValueError(f"{value!r} does not run once a day; {help_}")
        return value
    minute, hour, day_of_month, month, day_of_week, year = _CRON.match(value).groups()
    every_day = (day_of_month, day_of_week) in _EVERY_DAY
    if not (minute.isdigit() and hour.isdigit() and every_day and month == "*" and year == "*"):
        raise ValueError(f"{value!r} does not run once a day; {help_}")
    return value


def run_interval_seconds(value: str) -> int:
    """Seconds between two runs of a schedule :func:`check_daily` accepts (raising its error for any other): one day,
    whatever the form. What a staleness alarm on the drift monitor's reports measures its window from."""
    check_daily(value)
    return _UNIT_MINUTES["day"] * 60

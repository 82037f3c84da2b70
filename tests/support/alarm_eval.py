"""A small model of how CloudWatch evaluates a metric alarm, to replay an alarm's synthesized properties over days of
data points.

What it follows (CloudWatch User Guide, "Alarm evaluation window" and "How alarm state is evaluated when data is
missing"):

* Sliding window: each evaluation looks back from its own time, in ``Period``-long buckets ending at that time (the
  guide's example: a 1-hour alarm evaluates 13:07-14:07, then 13:08-14:08). The alarm is evaluated every minute.
* The *evaluation range*: CloudWatch retrieves more buckets than ``EvaluationPeriods`` (N), "depending on the length
  of the period"; the guide's worked example retrieves 5 for N = 3. The extra count is not documented per period, so
  it is a parameter (``extra``): tests replay an alarm with several values, and what must hold holds for each.
* If none of the N most recent buckets is missing, those N are evaluated. Otherwise, if the range holds at least N
  real points, the N most recent real points are evaluated (the missing-data setting is not used). Otherwise every
  real point in the range is evaluated with as few filled points as make N, filled as ``TreatMissingData`` says.
* ``ALARM`` when at least ``DatapointsToAlarm`` (M) evaluated points breach, else ``OK``; with no real point in the
  range, ``ignore`` keeps the current state and ``missing`` gives ``INSUFFICIENT_DATA``.
* Actions other than Auto Scaling's run on a change of state only: ``pages`` counts entries into ``ALARM``. Auto
  Scaling actions (a step policy) run again at every evaluation while the alarm stays in ``ALARM`` ("Except for Auto
  Scaling actions, the actions happen only on state transitions": the guide's "Alarm actions"): ``scaling_actions``
  counts one per evaluation in ``ALARM``.
* A composite alarm's ``ALARM(a) AND ALARM(b)`` rule: ``ALARM`` when both are.

* Metric math of one shape only, ``FILL(m, <number>)`` over one metric (the retrain alarms): every missing bucket of
  the range becomes that number before the rules above (the metric-math guide: "When you use this function in an
  alarm ... FILL replaces that missing data point with the requested value"). Whether FILL has anything to fill when
  the whole range holds no point is not documented: ``fill_empty`` says which (default: it does not, and the range
  stays missing); tests replay both.

* Metric math of one more shape, ``IF(a, b, <number>)`` over two metrics of one period (the idle scale-in): per period,
  b's value where a's is not 0, 0 where a's is not 0 and b has no point, the number where a's is 0, and no point where
  a has none (the metric-math guide, "Using IF expressions", ``IF(metric1, metric2, scalar3)``). ``IfExpression``
  computes its points from the two metrics' series on the period grid, and :func:`replay_inputs` replays the alarm on
  them (exact for evaluations on that grid: a one-minute alarm evaluated every minute).

Not modelled, refused instead: the "premature ALARM" rule for ``missing``/``ignore`` with fewer real points than N
(none of the alarms replayed here has it), other metric math, percentiles, and wall-clock windows.
"""

from __future__ import annotations

import bisect
import heapq
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

MINUTE = 60
HOUR = 3600
DAY = 86_400

_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_STATISTICS = {
    "Minimum": min,
    "Maximum": max,
    "Sum": sum,
    "SampleCount": len,
    "Average": lambda values: sum(values) / len(values),
}


@dataclass(frozen=True)
class MetricAlarm:
    """The properties of one ``AWS::CloudWatch::Alarm`` on a single metric that decide its state."""

    name: str
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str
    fill: Optional[float] = None  # FILL(m, fill): the value of a missing bucket (None: no metric math)
    fill_empty: bool = False  # whether FILL fills a range that holds no point at all (undocumented)
    # IF(a, b, <number>): the alarm reads the expression's points (IfExpression.series), one per period.
    expression: Optional["IfExpression"] = None

    @classmethod
    def from_properties(cls, props: Mapping) -> "MetricAlarm":
        """From a synthesized template's ``Properties``; refuses what this model does not cover."""
        if "ExtendedStatistic" in props or "EvaluationWindow" in props:
            raise NotImplementedError(f"{props.get('AlarmName')}: percentiles and wall-clock windows are not modelled")
        fill = expression = None
        if "Metrics" in props and IfExpression.matches(props):
            expression = IfExpression.from_properties(props)
            # One point per period: any statistic gives it back.
            props = {**props, "Statistic": "Maximum", "Period": expression.period}
        elif "Metrics" in props:
            stat, fill = _filled(props)
            props = {**props, "Statistic": stat["Stat"], "Period": stat["Period"]}
        if props["Statistic"] not in _STATISTICS or props["ComparisonOperator"] not in _COMPARE:
            raise NotImplementedError(f"{props.get('AlarmName')}: {props['Statistic']} / {props['ComparisonOperator']}")
        n = int(props["EvaluationPeriods"])
        return cls(name=props.get("AlarmName", "?"), statistic=props["Statistic"], period=int(props["Period"]),
                   evaluation_periods=n, datapoints_to_alarm=int(props.get("DatapointsToAlarm", n)),
                   threshold=float(props["Threshold"]), comparison=props["ComparisonOperator"],
                   treat_missing=props.get("TreatMissingData", "missing"), fill=fill, expression=expression)

    def breaches(self, value: float) -> bool:
        return _COMPARE[self.comparison](value, self.threshold)


def _filled(props: Mapping) -> tuple[Mapping, float]:
    """The metric's ``MetricStat`` and the fill value of an alarm on ``FILL(<id>, <number>)`` over one metric; any
    other metric math is refused."""
    queries = props["Metrics"]
    stats = [q for q in queries if "MetricStat" in q]
    shown = [q for q in queries if q.get("ReturnData", True)]
    found = re.fullmatch(r"FILL\((\w+), *(-?[0-9.]+)\)", shown[0].get("Expression", "")) if len(shown) == 1 else None
    if len(queries) != 2 or len(stats) != 1 or not found or found.group(1) != stats[0]["Id"] or "Unit" in stats[0]["MetricStat"]:
        raise NotImplementedError(f"{props.get('AlarmName')}: metric math other than FILL(m, <number>) over one metric is "
                                  "not modelled")
    return stats[0]["MetricStat"], float(found.group(2))


_IF = re.compile(r"IF\((\w+), *(\w+), *(-?[0-9.]+)\)")


@dataclass(frozen=True)
class IfExpression:
    """``IF(condition, value, otherwise)`` over two metrics of one period: the expression an alarm reads."""

    condition: str  # the Id of the metric whose point decides
    condition_statistic: str
    value: str  # the Id of the metric whose point is taken where the condition is true
    value_statistic: str
    otherwise: float
    period: int

    @staticmethod
    def matches(props: Mapping) -> bool:
        """Whether the alarm's returned expression is an ``IF(a, b, <number>)``."""
        shown = [q for q in props["Metrics"] if q.get("ReturnData", True)]
        return len(shown) == 1 and bool(_IF.fullmatch(shown[0].get("Expression", "")))

    @classmethod
    def from_properties(cls, props: Mapping) -> "IfExpression":
        """From a synthesized alarm's ``Properties``; refuses anything but two metrics of one period (no ``Unit``) and the
        expression over them."""
        queries = props["Metrics"]
        stats = {q["Id"]: q["MetricStat"] for q in queries if "MetricStat" in q}
        (shown,) = [q for q in queries if q.get("ReturnData", True)]
        found = _IF.fullmatch(shown["Expression"])
        condition, value, otherwise = found.group(1), found.group(2), float(found.group(3))
        if (len(queries) != 3 or set(stats) != {condition, value} or condition == value
                or len({s["Period"] for s in stats.values()}) != 1 or any("Unit" in s for s in stats.values())):
            raise NotImplementedError(f"{props.get('AlarmName')}: IF over other than two metrics of one period is not "
                                      "modelled")
        for stat in stats.values():
            if stat["Stat"] not in _STATISTICS:
                raise NotImplementedError(f"{props.get('AlarmName')}: {stat['Stat']}")
        return cls(condition=condition, condition_statistic=stats[condition]["Stat"], value=value,
                   value_statistic=stats[value]["Stat"], otherwise=otherwise, period=int(stats[condition]["Period"]))

    def point(self, condition: Optional[float], value: Optional[float]) -> Optional[float]:
        """The expression's value in one period from its metrics' (None: no point)."""
        if condition is None:
            return None
        if condition != 0:
            return 0.0 if value is None else value
        return self.otherwise

    def series(self, inputs: Mapping[str, "Series"], start: float, end: float) -> "Series":
        """The expression's points for the periods of the grid (multiples of ``period``) from the one holding ``start``
        to ``end``, each at the start of its period, from ``inputs`` (metric Id -> its data points)."""
        points = []
        first = int(start // self.period) * self.period
        for t in range(first, int(end), self.period):
            values = []
            for metric, statistic in ((self.condition, self.condition_statistic), (self.value, self.value_statistic)):
                bucket = inputs[metric].bucket(t, t + self.period)
                values.append(_STATISTICS[statistic](bucket) if bucket else None)
            point = self.point(*values)
            if point is not None:
                points.append((float(t), point))
        return Series(points)


class Series:
    """One metric's data points: (timestamp in seconds, value), in any order."""

    def __init__(self, points: Iterable[tuple[float, float]]):
        ordered = sorted(points)
        self.times = [t for t, _ in ordered]
        self.values = [v for _, v in ordered]

    def bucket(self, start: float, end: float) -> list[float]:
        """The values with ``start <= timestamp < end``."""
        return self.values[bisect.bisect_left(self.times, start):bisect.bisect_left(self.times, end)]


def buckets(alarm: MetricAlarm, series: Series, now: float, extra: int) -> list[Optional[float]]:
    """The evaluation range at ``now``: N + ``extra`` periods ending at ``now``, oldest first; None where missing."""
    out: list[Optional[float]] = []
    for k in range(alarm.evaluation_periods + extra, 0, -1):
        values = series.bucket(now - k * alarm.period, now - (k - 1) * alarm.period)
        out.append(_STATISTICS[alarm.statistic](values) if values else None)
    return out


def evaluate(alarm: MetricAlarm, series: Series, now: float, state: str, *, extra: int) -> str:
    """The alarm's state after an evaluation at ``now`` (``state``: its state before)."""
    window = buckets(alarm, series, now, extra)
    return _judge(alarm, window, [None if v is None else alarm.breaches(v) for v in window], state)


def _judge(alarm: MetricAlarm, window: Sequence[Optional[float]], breached: Sequence[Optional[bool]], state: str) -> str:
    """The state after an evaluation of the range ``window`` (see :func:`buckets`), ``breached`` saying of each of its
    real points whether it breaches (None where it is missing); ``state``: the state before."""
    n, m = alarm.evaluation_periods, alarm.datapoints_to_alarm
    if alarm.fill is not None and None in window and (alarm.fill_empty or any(v is not None for v in window)):
        breached = [alarm.breaches(alarm.fill) if v is None else b for v, b in zip(window, breached)]
        window = [alarm.fill if v is None else v for v in window]
    if None not in window[-n:]:
        evaluated = sum(breached[-n:])
    else:
        real = [b for b in breached if b is not None]
        if len(real) >= n:
            evaluated = sum(real[-n:])
        elif not real and alarm.treat_missing in ("ignore", "missing"):
            return state if alarm.treat_missing == "ignore" else "INSUFFICIENT_DATA"
        elif alarm.treat_missing in ("breaching", "notBreaching"):
            evaluated = sum(real) + (n - len(real)) * (alarm.treat_missing == "breaching")
        else:
            raise NotImplementedError(f"{alarm.name}: {alarm.treat_missing!r} with {len(real)} of {n} points is not modelled")
    return "ALARM" if evaluated >= m else "OK"


@dataclass(frozen=True)
class Replay:
    """The states of one replay, one per evaluation (every ``step`` seconds from ``start``)."""

    start: float
    step: int
    states: Sequence[str]

    def pages(self) -> list[float]:
        """When the alarm entered ALARM (its actions ran)."""
        return [self.start + i * self.step for i, (before, after) in enumerate(zip(("",) + tuple(self.states), self.states))
                if after == "ALARM" and before != "ALARM"]

    def scaling_actions(self) -> list[float]:
        """When an Auto Scaling action of the alarm ran: every evaluation in ALARM, as CloudWatch runs those again for as
        long as the alarm stays in ALARM (with ``step`` a minute, CloudWatch's evaluation interval)."""
        return [self.start + i * self.step for i, state in enumerate(self.states) if state == "ALARM"]

    def state_at(self, when: float) -> str:
        return self.states[int((when - self.start) // self.step)]


def replay(alarm: MetricAlarm, series: Series, start: float, end: float, *, extra: int, step: int = MINUTE,
           initial: str = "INSUFFICIENT_DATA") -> Replay:
    """Evaluate ``alarm`` every ``step`` seconds from ``start`` to ``end``: each state is :func:`evaluate`'s.

    Worked out without re-reading the whole range each time: the range's boundaries (``now - k * period``, as
    :func:`buckets` computes them) are watched one by one, and a bucket is read again only when one of its boundaries
    has passed a point. An evaluation whose buckets are those of the one before keeps its state: evaluating the same
    range again gives the state it gave (a missing-data ``ignore`` keeps it, no other case reads it).
    """
    times, values, count = series.times, series.values, len(series.times)
    statistic, breaches = _STATISTICS[alarm.statistic], alarm.breaches
    size = alarm.evaluation_periods + extra
    offsets = [k * alarm.period for k in range(size, -1, -1)]  # boundary j is now - offsets[j], oldest first
    states: list[str] = []
    if not start < end:
        return Replay(start, step, states)
    now = start
    indices = [bisect.bisect_left(times, now - offset) for offset in offsets]  # boundary j: the points before it
    # Bucket j lies between boundaries j and j + 1.
    window = [statistic(values[low:high]) if high > low else None for low, high in zip(indices, indices[1:])]
    breached = [None if value is None else breaches(value) for value in window]
    state = _judge(alarm, window, breached, initial)
    # Boundary j keeps its index until now - offsets[j] passes times[indices[j]]: it is checked again from a little
    # before then (a margin for rounding), never later.
    watched = [(times[i] + offset - 1.0 - abs(times[i] + offset) * 1e-9, j)
               for j, (i, offset) in enumerate(zip(indices, offsets)) if i < count]
    heapq.heapify(watched)
    while True:
        states.append(state)
        now += step
        if not now < end:
            return Replay(start, step, states)
        due = []
        while watched and watched[0][0] <= now:
            due.append(heapq.heappop(watched)[1])
        changed = set()
        for j in due:
            offset = offsets[j]
            found = bisect.bisect_left(times, now - offset, indices[j])  # the points before it stay before it
            if found != indices[j]:
                indices[j] = found
                if j:
                    changed.add(j - 1)
                if j < size:
                    changed.add(j)
            if found < count:
                passes = times[found] + offset
                heapq.heappush(watched, (passes - 1.0 - abs(passes) * 1e-9, j))
        if changed:
            for j in changed:
                low, high = indices[j], indices[j + 1]
                value = window[j] = statistic(values[low:high]) if high > low else None
                breached[j] = None if value is None else breaches(value)
            state = _judge(alarm, window, breached, state)


def replay_inputs(alarm: MetricAlarm, inputs: Mapping[str, Series], start: float, end: float, *, extra: int,
                  step: int = MINUTE, initial: str = "INSUFFICIENT_DATA") -> Replay:
    """:func:`replay` of an alarm on an ``IF`` expression (``alarm.expression``) over its metrics' data points
    ``inputs`` (metric Id -> series). The expression's points are computed on its period grid, so the evaluations must
    fall on it (``start`` and ``step`` multiples of the period); anything else is refused."""
    expression = alarm.expression
    if expression is None or start % expression.period or step % expression.period:
        raise NotImplementedError(f"{alarm.name}: only an IF alarm evaluated on its period grid is replayed from inputs")
    history = start - (alarm.evaluation_periods + extra) * expression.period
    return replay(alarm, expression.series(inputs, history, end), start, end, extra=extra, step=step, initial=initial)


def all_of(*replays: Replay) -> Replay:
    """A composite alarm whose rule is ``ALARM(a) AND ALARM(b) ...`` over replays of the same evaluations."""
    first = replays[0]
    assert all((r.start, r.step, len(r.states)) == (first.start, first.step, len(first.states)) for r in replays)
    return Replay(first.start, first.step,
                  ["ALARM" if all(s == "ALARM" for s in column) else "OK" for column in zip(*(r.states for r in replays))])

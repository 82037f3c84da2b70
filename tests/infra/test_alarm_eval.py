"""The alarm evaluator (tests/support/alarm_eval.py) against the worked examples of the CloudWatch User Guide
("How alarm state is evaluated when data is missing": evaluation range 5 for 3 evaluation periods).

Rows are the guide's, most recent point on the right: ``0`` not breaching, ``X`` breaching, ``-`` missing. Cells the
evaluator does not model (the premature-ALARM rule for missing/ignore) are left out of the tables, and refused."""

from __future__ import annotations

import pytest

from tests.support.alarm_eval import DAY, HOUR, MINUTE, IfExpression, MetricAlarm, Series, all_of, evaluate, replay, replay_inputs

PERIOD = 60


def _alarm(m: int, treat: str) -> MetricAlarm:
    return MetricAlarm(name="example", statistic="Maximum", period=PERIOD, evaluation_periods=3, datapoints_to_alarm=m,
                       threshold=1, comparison="GreaterThanOrEqualToThreshold", treat_missing=treat)


def _series(row: str) -> Series:
    """One point per period in the middle of its bucket; the evaluation happens at the end of the last one."""
    return Series((i * PERIOD + PERIOD / 2, 1.0 if c == "X" else 0.0) for i, c in enumerate(row.split()) if c != "-")


RETAIN = "retain"
# (row, MISSING, IGNORE, BREACHING, NOT BREACHING); None: not modelled.
THREE_OF_THREE = [
    ("0 - X - X", "OK", "OK", "OK", "OK"),
    ("0 - - - -", None, None, "OK", "OK"),
    ("- - - - -", "INSUFFICIENT_DATA", RETAIN, "ALARM", "OK"),
    ("0 X X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("- - X - -", None, None, "ALARM", "OK"),
]
TWO_OF_THREE = [
    ("0 - X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 0 X 0 X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 - X - -", None, None, "ALARM", "OK"),
    ("- - - - 0", None, None, "ALARM", "OK"),
    ("- - - X -", None, None, "ALARM", "OK"),
]


@pytest.mark.parametrize(("m", "table"), [(3, THREE_OF_THREE), (2, TWO_OF_THREE)], ids=["3-of-3", "2-of-3"])
def test_the_evaluator_reproduces_the_guides_missing_data_tables(m, table):
    for row, *expected in table:
        for treat, want in zip(("missing", "ignore", "breaching", "notBreaching"), expected):
            if want is None:
                with pytest.raises(NotImplementedError):
                    evaluate(_alarm(m, treat), _series(row), 5 * PERIOD, "OK", extra=2)
                continue
            for before in ("OK", "ALARM"):
                got = evaluate(_alarm(m, treat), _series(row), 5 * PERIOD, before, extra=2)
                assert got == (before if want == RETAIN else want), (row, treat, before)


def test_from_properties_reads_a_synthesized_alarm_and_refuses_what_it_does_not_model():
    props = {"AlarmName": "a", "Statistic": "SampleCount", "Period": 3600, "EvaluationPeriods": 28, "DatapointsToAlarm": 28,
             "Threshold": 1, "ComparisonOperator": "LessThanThreshold", "TreatMissingData": "breaching"}
    alarm = MetricAlarm.from_properties(props)
    assert (alarm.period, alarm.evaluation_periods, alarm.datapoints_to_alarm, alarm.treat_missing) == (3600, 28, 28, "breaching")
    # Without DatapointsToAlarm, CloudWatch needs all N to breach.
    assert MetricAlarm.from_properties({k: v for k, v in props.items() if k != "DatapointsToAlarm"}).datapoints_to_alarm == 28
    for extra in ({"Metrics": []}, {"ExtendedStatistic": "p99"}, {"EvaluationWindow": {"WallClockWindow": {}}}):
        with pytest.raises(NotImplementedError):
            MetricAlarm.from_properties({**props, **extra})


def test_a_replay_counts_entries_into_alarm_and_a_composite_needs_all_of_its_alarms():
    alarm = _alarm(1, "notBreaching")
    # One breaching point at minute 10: ALARM while it is the newest point in the 3-minute window.
    made = replay(alarm, Series([(10 * PERIOD + 1, 1.0)]), 0, 20 * PERIOD, extra=0)
    assert made.pages() == [11 * PERIOD]
    assert made.state_at(12 * PERIOD) == "ALARM" and made.state_at(14 * PERIOD) == "OK"
    never = replay(alarm, Series([]), 0, 20 * PERIOD, extra=0)
    assert all_of(made, never).pages() == [] and all_of(made, made).pages() == made.pages()


def test_a_replay_counts_an_auto_scaling_action_at_every_evaluation_in_alarm():
    """CloudWatch runs an Auto Scaling action again while the alarm stays in ALARM (the guide's "Alarm actions"), other
    actions on entering ALARM only: three breaching minutes in a row keep a 1-of-3 alarm in ALARM for five evaluations,
    one page and five scaling actions."""
    alarm = _alarm(1, "notBreaching")
    run = replay(alarm, Series([(t * PERIOD + 1, 1.0) for t in (10, 11, 12)]), 0, 20 * PERIOD, extra=0)
    assert run.pages() == [11 * PERIOD]
    assert run.scaling_actions() == [t * PERIOD for t in range(11, 16)]
    assert replay(alarm, Series([]), 0, 20 * PERIOD, extra=0).scaling_actions() == []


def test_the_evaluator_shows_a_one_day_breaching_alarm_paging_on_jittered_daily_reports():
    """The defect the monitor's health alarms (tests/infra/constructs/test_loop_alarms.py) replaced: MonitorHealthy
    Minimum per day, 1 period, missing data breaching, pages when a run ends later than the day before (the window
    slides past yesterday's point before today's arrives)."""
    old = MetricAlarm(name="old", statistic="Minimum", period=DAY, evaluation_periods=1, datapoints_to_alarm=1,
                      threshold=1, comparison="LessThanThreshold", treat_missing="breaching")
    scheduled = 3 * HOUR  # the monitor's cron(0 3 * * ? *)
    # One healthy report a day when the run ends: at 03:10 and 03:35 alternately.
    reports = Series((d * DAY + scheduled + 10 * MINUTE + (d % 2) * 25 * MINUTE, 1.0) for d in range(10))
    pages = replay(old, reports, scheduled + HOUR, 10 * DAY, extra=0, initial="OK").pages()
    # Each day whose run ends 25 minutes later than the day before's, as soon as yesterday's point leaves the window.
    assert [(p // DAY, p % DAY) for p in pages] == [(d, scheduled + 11 * MINUTE) for d in (1, 3, 5, 7, 9)]


def _filled(m: int, treat: str, *, fill_empty: bool = False) -> MetricAlarm:
    return MetricAlarm(name="filled", statistic="Maximum", period=PERIOD, evaluation_periods=3, datapoints_to_alarm=m,
                       threshold=1, comparison="GreaterThanOrEqualToThreshold", treat_missing=treat, fill=0.0,
                       fill_empty=fill_empty)


# FILL(m, 0): every missing point of the range is a 0 (not breaching); the missing-data setting applies only when the
# range holds no point, and then only if FILL leaves it empty.
FILLED = [("0 - X - X", 3, "OK"), ("- - X X X", 3, "ALARM"), ("X X X - -", 3, "OK"), ("X - - - -", 1, "OK"),
          ("- - - - X", 1, "ALARM"), ("0 - X - X", 2, "ALARM")]


@pytest.mark.parametrize("fill_empty", [False, True])
def test_a_fill_alarm_judges_a_missing_point_as_the_fill_value_whatever_the_missing_data_setting(fill_empty):
    for row, m, want in FILLED:
        for treat in ("missing", "ignore", "breaching", "notBreaching"):
            for before in ("OK", "ALARM"):
                got = evaluate(_filled(m, treat, fill_empty=fill_empty), _series(row), 5 * PERIOD, before, extra=2)
                assert got == want, (row, m, treat, before)
    # A range without any point: filled with 0s when FILL fills it, else the missing-data setting decides.
    empty = _series("- - - - -")
    assert evaluate(_filled(1, "breaching", fill_empty=True), empty, 5 * PERIOD, "ALARM", extra=2) == "OK"
    assert evaluate(_filled(1, "breaching"), empty, 5 * PERIOD, "OK", extra=2) == "ALARM"
    assert evaluate(_filled(1, "notBreaching"), empty, 5 * PERIOD, "ALARM", extra=2) == "OK"


def test_from_properties_reads_a_fill_expression_over_one_metric_and_refuses_other_metric_math():
    stat = {"Id": "m", "ReturnData": False, "MetricStat": {"Metric": {"MetricName": "DataDriftScore", "Namespace": "n"},
                                                           "Period": 86400, "Stat": "Maximum"}}
    props = {"AlarmName": "a", "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
             "TreatMissingData": "notBreaching",
             "Metrics": [{"Id": "expr_1", "Expression": "FILL(m, 0)", "ReturnData": True}, stat]}
    alarm = MetricAlarm.from_properties(props)
    assert (alarm.statistic, alarm.period, alarm.fill, alarm.fill_empty) == ("Maximum", 86400, 0.0, False)
    for expression in ("FILL(m, REPEAT)", "m * 2", "FILL(x, 0)", "FILL(m, 0) + 1"):
        with pytest.raises(NotImplementedError):
            MetricAlarm.from_properties({**props, "Metrics": [{"Id": "expr_1", "Expression": expression}, stat]})
    with pytest.raises(NotImplementedError):  # two metrics
        MetricAlarm.from_properties({**props, "Metrics": [*props["Metrics"], {**stat, "Id": "n"}]})


# ------------------------------------------------------------------ IF(a, b, <number>) over two metrics
def _if_props(expression: str = "IF(a, b, 5)", **overrides) -> dict:
    def stat(metric_id: str) -> dict:
        return {"Id": metric_id, "ReturnData": False,
                "MetricStat": {"Metric": {"MetricName": metric_id, "Namespace": "n"}, "Period": PERIOD, "Stat": "Maximum"}}
    return {"AlarmName": "if", "EvaluationPeriods": 3, "Threshold": 0, "ComparisonOperator": "LessThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "Metrics": [stat("a"), stat("b"), {"Id": "e", "Expression": expression, "ReturnData": True}], **overrides}


def test_an_if_expression_reproduces_the_guides_worked_example():
    """The metric-math guide's IF(metric1, metric2, scalar3): metric1 [1, 1, 0, 0, -], metric2 [30, -, 0, 0, 30],
    scalar3 5 give [30, 0, 5, 5, -] (a true condition without a value is 0; no condition, no point)."""
    expression = MetricAlarm.from_properties(_if_props()).expression
    assert expression == IfExpression(condition="a", condition_statistic="Maximum", value="b", value_statistic="Maximum",
                                      otherwise=5.0, period=PERIOD)
    inputs = {"a": _series("X X 0 0 -"), "b": Series([(0 * PERIOD + 1, 30.0), (2 * PERIOD + 1, 0.0), (3 * PERIOD + 1, 0.0),
                                                       (4 * PERIOD + 1, 30.0)])}
    got = expression.series(inputs, 0, 5 * PERIOD)
    assert list(zip(got.times, got.values)) == [(0.0, 30.0), (60.0, 0.0), (120.0, 5.0), (180.0, 5.0)]


def test_an_if_alarm_is_replayed_from_its_metrics_on_its_period_grid_only():
    """GIVEN an IF alarm breaching on a 0 in each of 3 minutes WHEN replayed from its metrics THEN it is in ALARM once
    three minutes of a true condition held no value, and never where the condition has no point (missing data does
    not breach); a replay off the period grid, and other expression shapes, are refused."""
    alarm = MetricAlarm.from_properties(_if_props("IF(a, b, 1)"))
    running = Series((t * PERIOD + 1, 1.0) for t in range(5, 20))
    run = replay_inputs(alarm, {"a": running, "b": Series([(12 * PERIOD + 1, 4.0)])}, 0, 20 * PERIOD, extra=1)
    # Minutes 5-7 hold 0s: ALARM at 8 until minute 12's value enters the window; minutes 13-15 again.
    assert run.scaling_actions() == [t * PERIOD for t in (8, 9, 10, 11, 12, 16, 17, 18, 19)]
    assert set(replay_inputs(alarm, {"a": Series([]), "b": Series([])}, 0, 20 * PERIOD, extra=1).states) == {"OK"}
    with pytest.raises(NotImplementedError):
        replay_inputs(alarm, {"a": running, "b": running}, 30, 20 * PERIOD, extra=1)
    with pytest.raises(NotImplementedError):  # an alarm without an IF expression
        replay_inputs(_alarm(1, "notBreaching"), {}, 0, PERIOD, extra=1)
    for expression in ("IF(a, a, 0)", "IF(a, c, 0)", "IF(a > 1, b, 0)", "IF(a, b)"):
        with pytest.raises(NotImplementedError):
            MetricAlarm.from_properties(_if_props(expression))

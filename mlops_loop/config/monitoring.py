"""Monitoring settings: the environment's ``monitoring`` section and a model's own ``monitoring`` (drift, quality,
retraining)."""

from __future__ import annotations

import difflib
import json
import math
from typing import Any, Literal

from pydantic import Field, field_validator

from pipeline_code.core.contract import (DEFAULT_DRIFT_WINDOW_DAYS, DEFAULT_MAX_MALFORMED_RATE,
                                         DEFAULT_MAX_REFUSED_RATE, DEFAULT_MAX_RETRAINING_STARTS_PER_DAY,
                                         DEFAULT_RETRAINING_COOLDOWN_HOURS, DEFAULT_RETRAINING_FAILURES_BEFORE_PAUSE,
                                         MAX_DRIFT_WINDOW_DAYS)

from ._strict import StrictModel, coercion_problem
from .schedules import check_daily


class MonitoringConfig(StrictModel):
    """Drift monitoring. Default: daily at 03:00 UTC (``schedule`` must run once a day: each run judges the last
    24 hours, see ``schedules.check_daily``); retrain when any feature's or the prediction's
    PSI exceeds its calibrated threshold - the larger of ``psi_threshold`` (0.1: the smallest drift worth a
    retrain) and the PSI that a window of that day's size with no drift reaches with probability
    ``false_alarm_rate`` (0.01 per window, shared among the model's features) - or test AUC drops by 0.05
    once labels arrive (a regression model, or a multiclass model judged on a metric other than AUC: its
    primary metric drops by 0.10, absolute for R² and the classification metrics, relative for RMSE and MAE) and by
    more than a window of that many labels with no change drops with probability ``false_alarm_rate``;
    at most one retrain per 24 hours after a run that answered the drift (``retraining_cooldown_hours``, at least 1) and
    at most 3 starts of a model's pipeline in any 24 hours whatever became of them (``retraining_max_starts_per_day``,
    1-6: the storm guard, whose window does not follow the cooldown); after 2 consecutive failed runs the trigger started
    (not the gate's rejection) it pauses the model's retraining and pages once (``retraining_failures_before_pause``,
    1-6: the circuit breaker); up to 1 % malformed capture lines are skipped
    and counted, and up to 5 % requests serving refused (``max_refused_rate``: a client's, judged apart); each run judges one day of traffic (``drift_window_days``, 1-14: 7 for a weekly rhythm)."""

    schedule: str = "cron(0 3 * * ? *)"
    psi_threshold: float = Field(default=0.1, gt=0.0, le=10.0)
    false_alarm_rate: float = Field(default=0.01, gt=0.0, le=0.2)
    max_auc_drop: float = Field(default=0.05, gt=0.0, le=0.5)
    max_quality_drop: float = Field(default=0.10, gt=0.0, le=1.0)
    ks_p_value: float = Field(default=0.01, gt=0.0, lt=1.0)
    # Malformed capture lines up to this share of a window are skipped and counted; above it the window is not judged.
    max_malformed_rate: float = Field(default=DEFAULT_MAX_MALFORMED_RATE, ge=0.0, le=1.0)
    # Requests serving refused (4xx, out of the invocation contract) up to this share of a window are counted per field
    # and not judged; above it the window is not judged. Their own limit: a client's bad requests are not a broken capture.
    max_refused_rate: float = Field(default=DEFAULT_MAX_REFUSED_RATE, ge=0.0, le=1.0)
    retraining_cooldown_hours: int = Field(default=DEFAULT_RETRAINING_COOLDOWN_HOURS, le=24 * 30)
    # More than one start every 4 hours is no guard against the hourly sweep restarting a failing pipeline.
    retraining_max_starts_per_day: int = Field(default=DEFAULT_MAX_RETRAINING_STARTS_PER_DAY, ge=1, le=6)
    # The circuit breaker: after this many consecutive failed runs the trigger started (not the gate's rejection), it
    # pauses the model's retraining and pages once (docs/monitoring.md, Pausing retraining). The count spans days: it
    # ends only with a success, a gate rejection or a person's resume.
    retraining_failures_before_pause: int = Field(default=DEFAULT_RETRAINING_FAILURES_BEFORE_PAUSE, ge=1, le=6)
    # Days of traffic each daily run judges for drift (1: the last 24 hours). 7 puts every weekday in each window as
    # the training data has them, so a weekly rhythm (weekend traffic that differs) is not drift; a model may set its
    # own (models.<name>.drift_window_days).
    drift_window_days: int = DEFAULT_DRIFT_WINDOW_DAYS

    _schedule = field_validator("schedule")(check_daily)

    @field_validator("drift_window_days")
    @classmethod
    def _drift_window(cls, value: int) -> int:
        return check_drift_window_days(value)

    @field_validator("retraining_cooldown_hours")
    @classmethod
    def _cooldown(cls, value: int) -> int:
        # The sweep runs hourly: under an hour the cooldown holds nothing (0 turns it off).
        if value < 1:
            raise ValueError(f"{value} turns the cooldown off: every hourly sweep would start a retrain while a drift "
                             "alarm stays in ALARM; use at least 1 (hours), e.g. 24 (the default: the drift monitor "
                             "judges once a day)")
        return value


def check_drift_window_days(value: int) -> int:
    """``value`` if it is a drift window the monitor can read (1..MAX_DRIFT_WINDOW_DAYS days), else the error saying why."""
    if not 1 <= value <= MAX_DRIFT_WINDOW_DAYS:
        raise ValueError(f"{value} is not a drift window the daily monitor can judge: give 1 to {MAX_DRIFT_WINDOW_DAYS} "
                         "(days of capture each run compares with the training baseline; 7 for a weekly rhythm, 1 for "
                         "the last 24 hours)")
    return value


# Values of models.<name>.monitoring.prediction_drift: "alarm" (the default) publishes PredictionDriftScore, whose alarm
# starts a retrain; "report_only" reports the predictions' PSI and publishes no score (docs/monitoring.md, Seasonal models).
PREDICTION_DRIFT_ALARM, PREDICTION_DRIFT_REPORT_ONLY = "alarm", "report_only"


# The material PSI a feature may be given (monitoring.feature_thresholds): monitoring.psi_threshold's bounds.
MAX_PSI_THRESHOLD = 10.0


class ModelMonitoringConfig(StrictModel):
    """What the drift monitor judges of one model (``models.<name>.monitoring``), over the environment's ``monitoring``:
    a feature's own material PSI (``feature_thresholds``), the features whose drift is reported but never judged
    (``drift_exempt_features``: a calendar feature such as ``week_of_year`` drifts by construction, each window holding
    one part of its cycle), and whether prediction drift alarms (``prediction_drift``: ``report_only`` for a model whose
    predictions follow a season; its labelled quality checks still judge it). Names are checked against the model's
    features by :class:`ModelConfig`."""

    feature_thresholds: dict[str, float] = {}
    drift_exempt_features: tuple[str, ...] = ()
    prediction_drift: Literal[PREDICTION_DRIFT_ALARM, PREDICTION_DRIFT_REPORT_ONLY] = PREDICTION_DRIFT_ALARM

    @field_validator("feature_thresholds", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        # The strict base checks a field's own value, not a mapping's: ``tenure_months: true`` would become 1.0.
        for name, psi in (value.items() if isinstance(value, dict) else ()):
            problem = coercion_problem(float, psi)
            if problem:
                raise ValueError(f"{name}: {problem}")
        return value

    @field_validator("feature_thresholds")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        for name, psi in value.items():
            if not (math.isfinite(psi) and 0.0 < psi <= MAX_PSI_THRESHOLD):
                raise ValueError(f"{name}: {psi:g} is not a PSI threshold; give a number > 0 and <= {MAX_PSI_THRESHOLD:g} "
                                 "(the smallest PSI of this feature worth a retrain; monitoring.psi_threshold, 0.1 by "
                                 "default, is every other feature's), or list the feature under drift_exempt_features to "
                                 "report its drift without judging it")
        return value

    @field_validator("drift_exempt_features")
    @classmethod
    def _exempt(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(map(repr, twice))} more than once")
        return value

    def problems(self, judged: tuple[str, ...]) -> list[tuple[str, str]]:
        """``(field, problem)`` of each name that is not one of ``judged`` (the features the monitor computes drift of:
        the model's inputs, its sensitive attribute and slices), and of a feature both exempt and given a threshold."""
        found: list[tuple[str, str]] = []
        for field, names in (("feature_thresholds", list(self.feature_thresholds)),
                             ("drift_exempt_features", list(self.drift_exempt_features))):
            for name in names:
                if name not in judged:
                    close = difflib.get_close_matches(name, judged, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    found.append((f"monitoring.{field}", f"{name!r} is not a feature of this model; {hint}the drift monitor "
                                  f"judges its features, sensitive attribute and slices: {', '.join(judged)}"))
        both = [name for name in self.drift_exempt_features if name in self.feature_thresholds]
        if both:
            found.append(("monitoring.feature_thresholds", f"{both[0]!r} is exempt from drift (drift_exempt_features), so "
                          "no threshold applies to it; remove one of the two"))
        if judged and set(judged) <= set(self.drift_exempt_features):
            found.append(("monitoring.drift_exempt_features", "exempts every feature, so data drift could never start a "
                          "retrain; exempt only the features that drift by construction (a calendar feature)"))
        return found

    def monitor_arguments(self) -> list[str]:
        """The drift monitor's arguments for these settings (none for the defaults): ``--feature-thresholds``,
        ``--drift-exempt-features`` and ``--prediction-drift``."""
        arguments: list[str] = []
        if self.feature_thresholds:
            arguments += ["--feature-thresholds", json.dumps(self.feature_thresholds, sort_keys=True)]
        if self.drift_exempt_features:
            arguments += ["--drift-exempt-features", json.dumps(list(self.drift_exempt_features))]
        if self.prediction_drift != PREDICTION_DRIFT_ALARM:
            arguments += ["--prediction-drift", self.prediction_drift]
        return arguments

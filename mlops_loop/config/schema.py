"""Typed, validated configuration of mlops-loop.

Every value the CDK app reads comes from these frozen pydantic models, validated
once in ``app.py`` (through :func:`mlops_loop.config.load_config`). Field
constraints carry the allowed values so that a misconfiguration fails synth with
one message naming the environment, the field and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from typing import Any, Collection, Literal, Optional

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from pipeline_code.catalog import FS_STRING, Dataset, target_problem
from pipeline_code.core.frameworks import FRAMEWORKS as FRAMEWORK_NAMES, PYTORCH, XGBOOST
from pipeline_code.core.hyperparameters import problems as hyperparameter_problems, tuned, tuning_range_problems, tuning_ranges
from pipeline_code.core.problem import (BINARY, LOSSES, MULTICLASS, REGRESSION, SQUARED_ERROR, default_primary_metric, floor_problem,
                                        in_own_units, loss_problem, primary_metric_problem)
from pipeline_code.core.contract import (DEFAULT_MAX_MALFORMED_RATE, DEFAULT_MAX_REFUSED_RATE,
                                         DEFAULT_MAX_RETRAINING_STARTS_PER_DAY,
                                         DEFAULT_RETRAINING_FAILURES_BEFORE_PAUSE,
                                         DEFAULT_RETRAINING_COOLDOWN_HOURS, DEFAULT_PROJECT,
                                         ENVIRONMENT_TAG, NAME_PATTERN, NAME_RULE, PROJECT_TAG, model_spec_document)
from pipeline_code.core.contract import DEFAULT_LABEL_DELAY_DAYS, monitor_label_window_hours, records_lookback_hours
from pipeline_code.core.contract import DEFAULT_DRIFT_WINDOW_DAYS, MAX_DRIFT_WINDOW_DAYS
from pipeline_code.core.contract import approver_role_name, environment_prefix, lake_bucket, team_approver_role_name
from pipeline_code.core.contract import RETRAIN_INFIX, REFREEZE_WHEN_STALE, TEST_SET_REFREEZE_POLICIES
from pipeline_code.core.contract import (DEFAULT_MONITOR_WINDOW_GIB, GIB, MAX_PROCESSING_VOLUME_GB, MONITOR_WINDOW_DOWNLOADS,
                                         MONITOR_WORKING_GB, monitor_volume_gb, monitor_window_bytes)
from pipeline_code.core.decision import DecisionError, DecisionPolicy, parse_decision
from pipeline_code.core.online_features import LookupSpec
from pipeline_code.core.record_kinds import RecordKinds
from pipeline_code.core.thresholds import DEFAULT_GATE, THRESHOLDS, GateThresholds

from ..naming import (LAKE_BUCKETS, analyst_role_name, budget_name, loop_dashboard_name, monitor_role_name,
                      serving_deployer_role_name)
from ._strict import StrictModel, coercion_problem
from .budget import BudgetConfig, budget_problems
from .instance_offers import load_offers
from .instance_types import ACCELERATOR_LABELS, FRAMEWORKS, INSTANCE_TYPES, NEURON_IMAGE_REGIONS, SUPPORTED_REGIONS, unknown_problem, unsupported_problem, volume_key_problem
from .schedules import check_cron, check_daily, check_scheduler_expression
from .serving import ById, MultiModelEndpointConfig, ServingConfig, check_endpoint_name, compiled_for_inferentia2, inferentia2_types

# An IAM role (any path) or user that may assume the approver role.
APPROVER_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/*-]{1,512}$")

_NAME = re.compile(NAME_PATTERN)

def _check_name(value: str) -> str:
    """Environment and model names become parts of AWS resource names."""
    if not _NAME.match(value):
        raise ValueError(f"must be {NAME_RULE}")
    return value


def _check_instance_type(value: str, info: ValidationInfo) -> str:
    if value not in INSTANCE_TYPES:
        raise ValueError(unknown_problem(value))
    purpose = "processing jobs" if info.field_name == "processing_instance_type" else "training jobs"
    # Accelerators a framework cannot train on are reported by accelerator_problems, naming the model.
    if purpose == "processing jobs" or INSTANCE_TYPES[value].accelerator == "none":
        problem = unsupported_problem(value, purpose)
        if problem:
            raise ValueError(problem)
    if purpose == "processing jobs":
        problem = volume_key_problem(value)
        if problem:
            raise ValueError(problem)
    return value


# --------------------------------------------------------------------------------------
# Per-environment settings
# --------------------------------------------------------------------------------------
class DataLakeConfig(StrictModel):
    """Retention of the S3 data lake. Defaults: raw data one year (and with it the copies of raw rows: the curate
    job's quarantine and the feature job's failed puts); inference traffic (capture, async, batch) 400 days
    (a year of monitoring windows to re-run or audit); ground-truth labels and monitor reports (with the drift
    monitor's prediction records, which late labels join: label_delay_problems) kept; a
    pipeline run's working data 400 days (an audit year plus slack); old object versions 90 days, except the curated
    data and feature snapshots rewritten each night, whose old versions are kept 3 days (a weekend to roll back a bad
    run; fewer when noncurrent_version_expiration_days is shorter) - null in a ``*_days`` field means never expire (for the noncurrent fields: keep every old version)."""

    raw_expiration_days: Optional[int] = Field(default=365, ge=1, le=3650)
    curated_infrequent_access_days: Optional[int] = Field(default=90, ge=30, le=3650)
    noncurrent_version_expiration_days: Optional[int] = Field(default=90, ge=1, le=3650)
    # The nightly runs rewrite curated dates and feature snapshots under new file names: each night's replaced
    # files become old versions, so the stored bytes are about 1 + this many times the data (null: as long as
    # noncurrent_version_expiration_days, i.e. 91 times by default).
    rewritten_noncurrent_days: Optional[int] = Field(default=3, ge=1, le=3650)
    access_log_expiration_days: int = Field(default=365, ge=1, le=3650)
    inference_expiration_days: Optional[int] = Field(default=400, ge=30, le=3650)
    inference_records_expiration_days: Optional[int] = Field(default=None, ge=30, le=3650)
    # At least a month: a run's later steps read its prepared sets (a training job may run a week).
    pipeline_work_expiration_days: Optional[int] = Field(default=400, ge=30, le=3650)

    @model_validator(mode="before")
    @classmethod
    def _rewritten_default(cls, data: Any) -> Any:
        # The 3-day default never exceeds a shorter noncurrent expiry the config chose (1 or 2 days): it follows it.
        if isinstance(data, dict) and "rewritten_noncurrent_days" not in data:
            noncurrent = data.get("noncurrent_version_expiration_days")
            default = cls.model_fields["rewritten_noncurrent_days"].default
            if type(noncurrent) is int and 1 <= noncurrent < default:
                return {**data, "rewritten_noncurrent_days": noncurrent}
        return data

    @model_validator(mode="after")
    def _rewritten_within_noncurrent(self) -> "DataLakeConfig":
        rewritten, noncurrent = self.rewritten_noncurrent_days, self.noncurrent_version_expiration_days
        if rewritten is not None and noncurrent is not None and rewritten > noncurrent:
            raise ValueError(f"rewritten_noncurrent_days: {rewritten} is longer than noncurrent_version_expiration_days "
                             f"({noncurrent}), which already expires every old version sooner; allowed: at most "
                             f"{noncurrent}, or null for the same")
        return self


class GlueConfig(StrictModel):
    """The Spark ETL and feature jobs. Defaults: 2 G.1X workers, nightly at 02:00 UTC."""

    worker_type: Literal["G.1X", "G.2X", "G.4X", "G.8X"] = "G.1X"
    number_of_workers: int = Field(default=2, ge=2, le=299)
    timeout_minutes: int = Field(default=120, ge=1, le=2880)
    etl_schedule: str = "cron(0 2 * * ? *)"
    max_quarantine_ratio: float = Field(default=0.05, ge=0.0, le=1.0)

    # A Glue trigger takes cron only.
    _cron = field_validator("etl_schedule")(check_cron)


class FeatureStoreConfig(StrictModel):
    """Feature Store settings. Default: online store on, records expire after 30 days."""

    online_store: bool = True
    online_ttl_days: Optional[int] = Field(default=30, ge=1, le=3650)


# With hyperparameter_tuning on, by default: training jobs of one tuning run in all, at once, and the search strategy.
TUNING_MAX_JOBS = 12
TUNING_PARALLEL_JOBS = 3
TUNING_STRATEGY = "Bayesian"
# What CreateHyperParameterTuningJob takes (ResourceLimits: at least 1 each; Automatic Model Tuning's limits: 750
# training jobs per tuning job with Bayesian search (Random's quota may be raised), 10 at once by default, 100 at most).
TUNING_STRATEGIES = ("Bayesian", "Random")
MAX_TUNING_JOBS = 750
MAX_TUNING_PARALLEL_JOBS = 100
# Hyperband stops a trial when it reaches MaxResource (its objective printed that many times); the trainer prints the
# kept model's objective and writes its model only after its last round, so a trial stopped there could leave no model.
_HYPERBAND = ("Hyperband stops every trial that reaches its MaxResource, and a trial that boosts all its rounds "
              "would be stopped at its last one, before it prints the kept model's objective and writes its model: the "
              "best trial could leave no model to evaluate; set early_stopping: true with Bayesian or Random instead")


class TuningConfig(StrictModel):
    """The budget and search of an environment's tuning jobs (used where ``hyperparameter_tuning`` is on). Default:
    12 training jobs, 3 at a time (at most ``max_jobs``), Bayesian search, no early stopping of trials by the tuning
    job (``early_stopping: true``: SageMaker's Auto, on the objective each trial prints after every round)."""

    max_jobs: int = Field(default=TUNING_MAX_JOBS, ge=1, le=MAX_TUNING_JOBS)
    max_parallel_jobs: int = Field(default=TUNING_PARALLEL_JOBS, ge=1, le=MAX_TUNING_PARALLEL_JOBS)
    strategy: str = TUNING_STRATEGY
    early_stopping: bool = False

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        if value == "Hyperband":
            raise ValueError(f"{_HYPERBAND}; allowed: {', '.join(TUNING_STRATEGIES)}")
        if value == "Grid":
            raise ValueError("Grid searches categorical values only, and every range here is integer or continuous; "
                             f"allowed: {', '.join(TUNING_STRATEGIES)}")
        if value not in TUNING_STRATEGIES:
            raise ValueError(f"unknown strategy {value!r}; allowed: {', '.join(TUNING_STRATEGIES)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_parallelism(cls, data: Any) -> Any:
        # The default parallelism is capped by a smaller budget (max_jobs: 2 runs 2 at once), not refused for a value
        # the user never set.
        if (isinstance(data, dict) and "max_parallel_jobs" not in data and isinstance(data.get("max_jobs"), int)
                and not isinstance(data["max_jobs"], bool) and 1 <= data["max_jobs"] < TUNING_PARALLEL_JOBS):
            return {**data, "max_parallel_jobs": data["max_jobs"]}
        return data

    @model_validator(mode="after")
    def _budget(self) -> "TuningConfig":
        if self.max_parallel_jobs > self.max_jobs:
            raise ValueError(f"max_parallel_jobs: {self.max_parallel_jobs} at a time is more than max_jobs "
                             f"({self.max_jobs} in all); set it to at most {self.max_jobs}")
        return self


class TrainingConfig(StrictModel):
    """Training capacity. Default: one ml.m5.xlarge on managed spot (checkpointed), no tuning job,
    retraining weekly, versions registered as PendingManualApproval (``auto_approve`` off), and a frozen test set
    re-frozen from the latest rows once it has gone stale (``test_set_refreeze: when_stale``)."""

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = Field(default=1, ge=1, le=20)
    processing_instance_type: str = "ml.m5.xlarge"
    use_spot: bool = True
    max_runtime_minutes: int = Field(default=120, ge=5, le=7 * 24 * 60)
    retraining_schedule: Optional[str] = "cron(0 4 ? * SUN *)"
    hyperparameter_tuning: bool = False
    # The tuning jobs' budget and search where hyperparameter_tuning is on (per environment: dev cheap, prod wider).
    tuning: TuningConfig = TuningConfig()
    auto_approve: bool = False
    # Prepare's rule for a model's frozen test set: when_stale replaces it by the latest rows once the rows after its
    # window are at least the test fraction, so challenger and champion are judged out-of-time on rows after their
    # training data; never keeps it until deleted (a fixed yardstick; the evaluation then notes it is not out-of-time).
    test_set_refreeze: Literal[TEST_SET_REFREEZE_POLICIES] = REFREEZE_WHEN_STALE
    # Per-model training instance types in this environment (model name -> type), over instance_type; e.g.
    # a network on ml.trn1.2xlarge beside XGBoost models on CPUs. Default: none, every model on instance_type.
    instance_types: dict[str, str] = {}

    _types = field_validator("instance_type", "processing_instance_type")(_check_instance_type)

    @field_validator("instance_types")
    @classmethod
    def _model_types(cls, value: dict[str, str]) -> dict[str, str]:
        for model, name in value.items():
            if name not in INSTANCE_TYPES:
                raise ValueError(f"{model}: {unknown_problem(name)}")
            problem = unsupported_problem(name, "training jobs") if INSTANCE_TYPES[name].accelerator == "none" else ""
            if problem:
                raise ValueError(f"{model}: {problem}")
        return value

    def instance_type_of(self, model: str) -> str:
        """The instance type ``model`` trains on here (its entry in instance_types, else instance_type)."""
        return self.instance_types.get(model, self.instance_type)

    def instance_type_field(self, model: str) -> str:
        """Where :meth:`instance_type_of` comes from, as the config file names it."""
        return f"training.instance_types.{model}" if model in self.instance_types else "training.instance_type"

    @field_validator("retraining_schedule")
    @classmethod
    def _schedule(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else check_scheduler_expression(value)


class GateConfig(StrictModel):
    """The evaluation gate. Defaults: AUC >= 0.70, beat the champion by 0.005 AUC, no slice worse by
    more than 0.02 AUC, demographic-parity difference <= 0.10 and disparate impact >= 0.80 (regression: bias gap
    <= 0.10 and error parity >= 0.80, both relative to each group's mean |target|); slices are gated
    with at least 50 test rows, 10 positives and 10 negatives; fairness compares groups of at least 100 test rows
    and is judged only on at least 10 predicted positives.

    The fields are :data:`~pipeline_code.core.thresholds.THRESHOLDS` with policy bounds, which may be
    tighter than what the gate code accepts (an AUC gate below 0.5 passes models worse than chance).
    """

    min_auc: float = Field(default=DEFAULT_GATE.min_auc, ge=0.5, le=1.0)
    challenger_margin: float = Field(default=DEFAULT_GATE.challenger_margin, ge=0.0, le=0.5)
    max_slice_regression: float = Field(default=DEFAULT_GATE.max_slice_regression, ge=0.0, le=1.0)
    max_demographic_parity_difference: float = Field(default=DEFAULT_GATE.max_demographic_parity_difference, ge=0.0, le=1.0)
    min_disparate_impact: float = Field(default=DEFAULT_GATE.min_disparate_impact, ge=0.0, le=1.0)
    # Classifiers: the largest expected calibration error of the challenger's probabilities on the frozen test set
    # (1, the default: no limit, no check). Above 0: no model's probabilities are perfectly calibrated on a sample.
    max_calibration_error: float = Field(default=DEFAULT_GATE.max_calibration_error, gt=0.0, le=1.0)
    # Multiclass: how much a class's recall may fall below the champion's beyond its noise (a share of the class's
    # test rows, whatever the primary metric); max_slice_regression does not move it.
    max_class_recall_drop: float = Field(default=DEFAULT_GATE.max_class_recall_drop, ge=0.0, le=1.0)
    # Evidence: a slice is gated with this many test rows and this many positives and negatives; fairness
    # compares the groups of the sensitive attribute with min_group_rows test rows (a test set needs two: prepare
    # refuses to freeze one with fewer); fewer predicted positives than min_predicted_positives fail the fairness
    # gate (a model that flags nothing is not fair, it is silent).
    min_slice_rows: int = Field(default=DEFAULT_GATE.min_slice_rows, ge=1, le=100_000)
    min_group_rows: int = Field(default=DEFAULT_GATE.min_group_rows, ge=1, le=100_000)
    min_slice_positives: int = Field(default=DEFAULT_GATE.min_slice_positives, ge=1, le=100_000)
    min_predicted_positives: int = Field(default=DEFAULT_GATE.min_predicted_positives, ge=0, le=100_000)

    def thresholds(self) -> GateThresholds:
        """These values as the type the pipeline and the jobs take."""
        return GateThresholds(**self.model_dump())


class OwnUnitsGateConfig(GateConfig):
    """The gate of a model judged on a metric in its own units (RMSE and MAE in the target's, log loss): its margin
    and slice regression are that metric's, as large as its scale, so only non-negative."""

    challenger_margin: float = Field(default=DEFAULT_GATE.challenger_margin, ge=0.0, allow_inf_nan=False)
    max_slice_regression: float = Field(default=DEFAULT_GATE.max_slice_regression, ge=0.0, allow_inf_nan=False)


def gate_config(metric: str) -> type[GateConfig]:
    """The gate's config type for a model judged on ``metric``."""
    return OwnUnitsGateConfig if in_own_units(metric) else GateConfig


# A leakage acknowledgement is a reason a reviewer reads, not a switch: "yes" or "ok" says nothing.
LEAKAGE_REASON_MIN_CHARS = 20
# A regression model's gate has no AUC floor (its floor is min_quality) and no positives; its fairness takes
# max_demographic_parity_difference (the bias gap's maximum) and min_disparate_impact (error parity's minimum).
_CLASSIFIER_GATE_KEYS = ("min_auc", "min_predicted_positives", "max_calibration_error")
# Why a classifier's gate key does not apply to a regression model (the fix is the same: remove it).
_NOT_FOR_REGRESSION = {
    "max_calibration_error": "it limits a classifier's expected calibration error: how far its probabilities are from "
                             "the rates observed",
}
# A gate key of multiclass models alone (a model's own gate of another type is refused with the reason).
_MULTICLASS_GATE_KEYS = {
    "max_class_recall_drop": "it limits how far a class's recall may fall below the champion's: multiclass models only",
}
_REGRESSION_GATE = ("its floor is min_quality, its fairness is error parity against min_disparate_impact and the bias gap "
                    "against max_demographic_parity_difference")


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


# What EC2 and SageMaker's VpcConfig take: at most 16 subnets and 5 security groups, ids of 8 or 17 hex digits
# (EC2's id formats, as the CloudFormation schemas' AWS::EC2::Subnet.Id and SecurityGroup.Id patterns say).
SUBNET_ID = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
SECURITY_GROUP_ID = re.compile(r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")
AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$")
MAX_SUBNETS, MAX_SECURITY_GROUPS = 16, 5


class NetworkConfig(StrictModel):
    """Run every job, endpoint and function of the environment inside your own VPC (default: none, AWS-managed
    networking). The subnets and security groups must exist already (the app creates neither) and the subnets need
    VPC endpoints for the AWS APIs the jobs call (docs/vpc.md: Running inside your VPC); ``availability_zone`` is the zone
    of the first subnet, where the Glue jobs and crawlers run (a Glue network connection names one subnet and its
    zone, which synth cannot look up)."""

    subnet_ids: tuple[str, ...] = Field(min_length=1)
    security_group_ids: tuple[str, ...] = Field(min_length=1)
    availability_zone: str

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(value, SUBNET_ID, "a subnet id (subnet- and 8 or 17 lowercase hex digits)", MAX_SUBNETS)

    @field_validator("security_group_ids")
    @classmethod
    def _security_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_ids(value, SECURITY_GROUP_ID, "a security group id (sg- and 8 or 17 lowercase hex digits)",
                          MAX_SECURITY_GROUPS)

    @field_validator("availability_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not AVAILABILITY_ZONE.match(value):
            raise ValueError(f"{value!r} is not an Availability Zone name such as 'eu-west-1a' (the zone of subnet_ids[0])")
        return value

    @property
    def glue_subnet_id(self) -> str:
        """The subnet the Glue jobs and crawlers run in (a Glue network connection takes one)."""
        return self.subnet_ids[0]


def _check_ids(value: tuple[str, ...], pattern: "re.Pattern[str]", what: str, limit: int) -> tuple[str, ...]:
    if len(value) > limit:
        raise ValueError(f"lists {len(value)} ids; SageMaker's and Lambda's VpcConfig take at most {limit}: list at most {limit}")
    for item in value:
        if not pattern.match(item):
            raise ValueError(f"{item!r} is not {what}")
    twice = sorted({item for item in value if value.count(item) > 1})
    if twice:
        raise ValueError(f"lists {', '.join(map(repr, twice))} more than once")
    return value


def _check_approvers(value: tuple[str, ...]) -> tuple[str, ...]:
    """IAM role or user ARNs (``*`` allowed in the name), each once."""
    for arn in value:
        if not APPROVER_ARN.match(arn):
            raise ValueError(f"{arn!r} is not the ARN of an IAM role or user (arn:aws:iam::<12-digit account>:role/<name> "
                             "or :user/<name>, * allowed in the name); an SSO user approves through its permission "
                             "set's role, e.g. role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_<permission set>_*")
    if len(set(value)) != len(value):
        raise ValueError("lists an approver twice")
    return value


class EnvironmentConfig(StrictModel):
    """One deployment target (a CDK Stage)."""

    name: str
    tier: Literal["dev", "staging", "prod"]
    account: str = Field(pattern=r"^\d{12}$")
    region: str
    removal_policy: Literal["destroy", "retain"] = "retain"
    termination_protection: bool = True
    # Who may assume the model-approver role (IAM role or user ARNs, with MFA); empty: any principal of the account
    # whose own policies allow it, which leaves separation of duties to the account's IAM.
    approvers: tuple[str, ...] = ()
    # By team (models.<model>.owner.team): who may assume that team's approver role, which decides the versions of the
    # team's models and no other's; the environment's approver role then decides none of them. Default: none (the
    # environment's approver role decides every model's versions).
    team_approvers: dict[str, tuple[str, ...]] = {}
    # Every retention CloudWatch Logs accepts (PutRetentionPolicy), in days.
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                                3288, 3653] = 90
    models: tuple[str, ...] = Field(min_length=1)
    data_lake: DataLakeConfig = DataLakeConfig()
    glue: GlueConfig = GlueConfig()
    feature_store: FeatureStoreConfig = FeatureStoreConfig()
    training: TrainingConfig = TrainingConfig()
    gate: GateConfig = GateConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    # Per model: the model's serving block with this environment's overrides merged in (the loader
    # does the merge, so every value here is complete and validated).
    serving: dict[str, ServingConfig] = {}
    # Shared multi-model endpoints, by name; only those some model of this environment names are built.
    multi_model_endpoints: dict[str, MultiModelEndpointConfig] = {}
    # Your VPC, for every job, endpoint and function; None (default, or null to drop one set in defaults): AWS-managed.
    network: Optional[NetworkConfig] = None
    # A monthly cost budget whose notices go to the environment's topic; None (default, or null to drop one set in
    # defaults): no budget (mlops_loop/config/budget.py says why none is derived).
    budget: Optional[BudgetConfig] = None

    _name = field_validator("name")(_check_name)

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_approvers(value)

    @field_validator("team_approvers")
    @classmethod
    def _team_approvers(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for arns in value.values():
            if not arns:
                raise ValueError("names a team without approvers; list at least one, or leave the team out")
            _check_approvers(arns)
        return value

    @field_validator("multi_model_endpoints")
    @classmethod
    def _endpoint_names(cls, value: dict[str, MultiModelEndpointConfig]) -> dict[str, MultiModelEndpointConfig]:
        for name in value:
            check_endpoint_name(name)
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in SUPPORTED_REGIONS:
            raise ValueError(f"unsupported region {value!r}; allowed: {', '.join(SUPPORTED_REGIONS)}")
        return value

    @model_validator(mode="after")
    def _governance(self) -> "EnvironmentConfig":
        # Stateful data may only be thrown away with the stack in a dev environment, and prod
        # stacks can never be deleted by accident.
        if self.removal_policy == "destroy" and self.tier != "dev":
            raise ValueError("removal_policy: 'destroy' is only allowed when tier is 'dev'; allowed here: 'retain'")
        if self.tier == "prod" and not self.termination_protection:
            raise ValueError("termination_protection: must be true when tier is 'prod'")
        if self.tier == "prod" and self.training.auto_approve:
            raise ValueError("training.auto_approve: must be false when tier is 'prod' (approval is a human gate)")
        if len(set(self.models)) != len(self.models):
            raise ValueError("models: lists a model twice")
        if self.network is not None and not self.network.availability_zone.startswith(self.region):
            raise ValueError(f"network.availability_zone: {self.network.availability_zone!r} is not a zone of the "
                             f"environment's region {self.region}; give the zone of subnet_ids[0]")
        return self


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
# What ``owner.contact`` may hold: it is a tag value (mlops-loop:contact) on the team's topic.
_CONTACT = re.compile(r"^[\w .:/=+\-@]{1,256}$")


class OwnerConfig(StrictModel):
    """The team a model belongs to (docs/configuration.md, Models of several teams): its notices and pages go to the
    team's own topic in each environment instead of the environment's, and its jobs are tagged with the team."""

    # The team's name: a tag value and part of its topic's id (one topic per team and environment).
    team: str
    # How to reach the team (an e-mail address, a chat channel, an on-call rota): tagged on the team's topic and
    # named in its output, for whoever subscribes people to it. Default: none.
    contact: Optional[str] = None

    _team = field_validator("team")(_check_name)

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _CONTACT.match(value):
            raise ValueError("say how to reach the team (an e-mail address, a chat channel, an on-call rota), 1-256 "
                             "characters of letters, digits, spaces and . : / = + - @ _ (it is a tag value)")
        return value


class ModelConfig(StrictModel):
    """One model: which dataset it learns from, its target, features and fairness attribute."""

    name: str
    description: str = ""
    dataset: str
    target: str
    features: tuple[str, ...] = Field(min_length=1)
    sensitive_attribute: str
    slices: tuple[str, ...] = ()
    # What the model predicts (pipeline_code/core/problem.py): binary_classification (default),
    # multiclass_classification or regression; the target column must fit it.
    problem_type: Literal["binary_classification", "multiclass_classification", "regression"] = "binary_classification"
    # The metric the champion/challenger margin and slice regressions compare, in its own direction.
    # Default: the type's first (auc for classifiers, r2 for regression).
    primary_metric: Optional[str] = None
    # A floor on the primary metric, besides the environment's gate.min_auc for classifiers. Default:
    # none, except r2 >= 0 for regression (no worse than predicting the mean).
    min_quality: Optional[float] = Field(default=None, allow_inf_nan=False)
    # A regression model's training loss (pipeline_code/core/problem.py LOSSES): squared_error, or for counts and skewed
    # amounts poisson, tweedie or gamma (XGBoost's count:poisson, reg:tweedie, reg:gamma: positive means); the target's
    # column must declare min: 0 or more (gamma: above 0). Default squared_error.
    loss: Literal[LOSSES] = SQUARED_ERROR
    # loss tweedie's variance power, strictly between 1 (poisson) and 2 (gamma). Default 1.5.
    tweedie_variance_power: Optional[float] = Field(default=None, allow_inf_nan=False)
    # Gate thresholds for this model only, over the environment's gate: (e.g. a per-class parity bound for
    # a many-class model). Same keys and bounds as an environment's gate. Default: none.
    gate: Optional[dict[str, Any]] = None
    # How scores become decisions (pipeline_code/core/decision.py). Default: a fixed threshold of 0.5.
    decision: Optional[dict[str, Any]] = None
    # "balanced" weights positives by negatives/positives in training (rare events). Default: none.
    class_weight: Literal["none", "balanced"] = "none"
    # Why a near-perfect test score (AUC or R² >= 0.995) or one feature holding most of the attribution is genuine,
    # not target leakage (pipeline_code/training/gate.py): the gate refuses such a model unless this says why, and the
    # report and model card carry the reason. Default: none (a suspected leak fails the gate).
    leakage_acknowledged: Optional[str] = None
    # Requests the model expects per 24-hour monitor window: fewer makes the drift monitor unhealthy (and
    # pages people). Default 0: a day without traffic is reported as quiet, not broken.
    min_daily_requests: int = Field(default=0, ge=0, le=1_000_000_000)
    # How long after its request the model's label may arrive (churn "within 30 days": 30; a 12-month default: 365):
    # the drift monitor joins the labels of each week to the predictions its runs recorded over this many days
    # (+ the label window and a day). Default 30: a month of look-back covers the usual business outcomes.
    label_delay_days: int = Field(default=DEFAULT_LABEL_DELAY_DAYS, ge=0, le=3650)
    # The drift monitor's download cap, in GiB (2**30 bytes): each of its downloads of a run (the day's traffic, the
    # week's labels, the by-id feature snapshots, the look-back's prediction records and its older labels) keeps at most
    # this much, the newest (records: the due) first, and the report warns when one was cut. Its job's volume is sized
    # from it (pipeline_code.core.contract.monitor_volume_gb: 5 x the cap + 10 GB, at least 30 GB). Default 2: a few
    # million requests a day; raise it when a report says a download was cut (docs/monitoring.md: late labels at scale).
    monitor_max_window_gib: float = Field(default=DEFAULT_MONITOR_WINDOW_GIB, gt=0, allow_inf_nan=False)
    # Days of traffic each daily drift run judges for this model, over the environment's monitoring.drift_window_days
    # (1..14; 7 for a weekly rhythm). Default None: the environment's. Its traffic download is capped at
    # monitor_max_window_gib like a day's: raise that with the window.
    drift_window_days: Optional[int] = None
    # What the drift monitor judges of this model: per-feature material PSI, features reported but never judged, and
    # whether prediction drift alarms (a seasonal model: docs/monitoring.md, Seasonal models). Default: all judged alike.
    monitoring: ModelMonitoringConfig = ModelMonitoringConfig()
    # What trains the model: "xgboost" (gradient-boosted trees) or "pytorch" (a tabular network,
    # pipeline_code/training/train_torch.py); decides the images and which accelerators fit. Default xgboost.
    framework: Literal[FRAMEWORK_NAMES] = XGBOOST
    # The trainer's hyperparameters this model sets (pipeline_code/core/hyperparameters.py lists each framework's,
    # with its bounds and default); the rest keep their defaults. Default: none set.
    hyperparameters: dict[str, Any] = {}
    # The ranges a tuning job searches for this model, hyperparameter -> [lowest, highest], over the framework's own
    # (pipeline_code/core/hyperparameters.py: eta, max_depth, min_child_weight for XGBoost); used in the environments
    # with training.hyperparameter_tuning. Default: none, the framework's ranges.
    tuning_ranges: dict[str, Any] = {}
    serving: ServingConfig = ServingConfig()
    # The team the model belongs to: its alarms and notices reach that team's topic, not the environment's.
    # Default: none (the environment's topic).
    owner: Optional[OwnerConfig] = None

    _name = field_validator("name")(_check_name)

    @field_validator("monitor_max_window_gib")
    @classmethod
    def _monitor_volume(cls, value: float) -> float:
        # The volume must hold every download at the cap; SageMaker refuses a larger one when the job starts, daily.
        needed = monitor_volume_gb(monitor_window_bytes(value))
        if needed > MAX_PROCESSING_VOLUME_GB:
            largest = (MAX_PROCESSING_VOLUME_GB - MONITOR_WORKING_GB) * 10**9 // (MONITOR_WINDOW_DOWNLOADS * GIB)
            raise ValueError(f"{value:g} GiB would need a {needed} GB volume for the drift monitor's job "
                             f"({MONITOR_WINDOW_DOWNLOADS} downloads at the cap + {MONITOR_WORKING_GB} GB), over SageMaker's "
                             f"{MAX_PROCESSING_VOLUME_GB} GB processing volume limit; set at most {largest}")
        return value

    @field_validator("drift_window_days")
    @classmethod
    def _drift_window(cls, value: Optional[int]) -> Optional[int]:
        return value if value is None else check_drift_window_days(value)

    def drift_window_days_in(self, monitoring: MonitoringConfig) -> int:
        """The days of traffic this model's drift runs judge under an environment's ``monitoring``: the model's own
        ``drift_window_days``, else the environment's."""
        return monitoring.drift_window_days if self.drift_window_days is None else self.drift_window_days

    @property
    def monitor_max_window_bytes(self) -> int:
        """The drift monitor's ``--max-window-bytes``: :attr:`monitor_max_window_gib` in bytes."""
        return monitor_window_bytes(self.monitor_max_window_gib)

    @model_validator(mode="after")
    def _hyperparameters(self) -> "ModelConfig":
        problems = hyperparameter_problems(self.framework, self.hyperparameters)
        if problems:
            name, problem = next(iter(problems.items()))
            raise ValueError(f"hyperparameters.{name}: {problem}")
        return self

    @model_validator(mode="after")
    def _tuning_ranges(self) -> "ModelConfig":
        if self.tuning_ranges and not tuned(self.framework):
            raise ValueError(f"tuning_ranges: a model of framework {self.framework!r} is not tuned (the tuning job searches "
                             "XGBoost's hyperparameters); remove tuning_ranges")
        problems = tuning_range_problems(self.framework, self.tuning_ranges)
        if problems:
            name, problem = next(iter(problems.items()))
            raise ValueError(f"tuning_ranges.{name}: {problem}")
        fixed = [name for name in self.tuning_ranges if name in self.hyperparameters]
        if fixed:
            name = fixed[0]
            raise ValueError(f"tuning_ranges.{name}: hyperparameters.{name} fixes {name} at {self.hyperparameters[name]!r} "
                             "for this model, and a tuning job searches it instead; remove one of the two")
        return self

    def tuning_ranges_searched(self) -> tuple[tuple[str, str, Any, Any, str], ...]:
        """The ranges a tuning job searches for this model (``core.hyperparameters.tuning_ranges``): its
        ``tuning_ranges`` over the framework's own."""
        return tuning_ranges(self.framework, self.tuning_ranges)

    @field_validator("leakage_acknowledged")
    @classmethod
    def _leakage_reason(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and len(value.strip()) < LEAKAGE_REASON_MIN_CHARS:
            raise ValueError(f"say why the near-perfect score or the dominant feature is genuine, not a leak of the label, "
                             f"in a sentence a reviewer can check (at least {LEAKAGE_REASON_MIN_CHARS} characters), e.g. "
                             f"\"cancel_reason is recorded when the customer calls, before the churn date\"; got {value!r}")
        return value

    @field_validator("decision")
    @classmethod
    def _decision(cls, value: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        try:
            parse_decision(value)
        except DecisionError as exc:
            raise ValueError("; ".join(p.removeprefix("decision.") for p in exc.problems)) from None
        return value

    @field_validator("gate")
    @classmethod
    def _gate(cls, value: Optional[dict[str, Any]], info: ValidationInfo) -> Optional[dict[str, Any]]:
        if value is None or "problem_type" not in info.data:  # a type that failed has its own message
            return value
        problem_type = info.data["problem_type"]
        if "min_quality" in value:
            raise ValueError("min_quality is a key of the model, not of its gate: move it up a level (models.<name>.min_quality)")
        misplaced = [key for key in _CLASSIFIER_GATE_KEYS if key in value and problem_type == REGRESSION]
        if misplaced:
            why = _NOT_FOR_REGRESSION.get(misplaced[0], _REGRESSION_GATE)
            raise ValueError(f"{misplaced[0]} does not apply to a regression model ({why}); remove it")
        for key, why in _MULTICLASS_GATE_KEYS.items():
            if key in value and problem_type != MULTICLASS:
                kind = "regression" if problem_type == REGRESSION else "binary"
                raise ValueError(f"{key} does not apply to a {kind} model ({why}); remove it")
        metric = info.data.get("primary_metric") or default_primary_metric(problem_type)
        # Its errors name the field, as under an environment; RMSE and MAE margins are in the target's units.
        gate_config(metric).model_validate(value)
        return value

    @property
    def judged_on(self) -> str:
        """The metric the gate and the monitor judge the model on: its primary metric, or its type's default."""
        return self.primary_metric or default_primary_metric(self.problem_type)

    def gate_in(self, environment_gate: "GateConfig") -> "GateConfig":
        """The gate this model is judged by in an environment: the environment's, with this model's keys over it."""
        if not self.gate:
            return environment_gate
        return gate_config(self.judged_on).model_validate({**environment_gate.model_dump(), **self.gate})

    @property
    def decision_policy(self) -> DecisionPolicy:
        return parse_decision(self.decision)

    # The dataset the name refers to, resolved while validating (see _matches_catalog).
    _dataset: Optional[Dataset] = PrivateAttr(default=None)

    @property
    def catalog_dataset(self) -> Dataset:
        """The declaration of :attr:`dataset` this model was validated against."""
        if self._dataset is None:
            raise RuntimeError("ModelConfig is only built by mlops_loop.config.load_config")
        return self._dataset

    def lookup_spec(self, settings: ById) -> LookupSpec:
        """What scoring this model by id looks up (its dataset's keys, its features and their types), which
        features a stored record must hold (those serving refuses missing: ``Dataset.required_features``), the rules
        its values must keep (those serving holds them to: ``Dataset.feature_rules``) and how it treats a miss
        (``settings``)."""
        ds = self.catalog_dataset
        return LookupSpec(
            record_identifier=ds.record_identifier,
            event_time=ds.event_time,
            features=tuple((name, ds.feature(name).feature_type) for name in self.features),
            policy=settings.missing,
            max_age_seconds=settings.max_age_hours * 3600 if settings.max_age_hours else None,
            max_ids=settings.max_ids,
            required=ds.required_features(self.features),
            rules=ds.feature_rules(self.features),
            # The raw fields a compute instance must carry: serving's own rule for a raw record, from the catalog.
            required_raw=ds.required_raw_fields(self.features) if settings.missing == "compute" else (),
            # And serving's rule telling a precomputed record from a raw one, when the dataset lets it refuse one.
            records=self._record_kinds() if settings.missing == "compute" else None,
        )

    def _record_kinds(self) -> Optional[RecordKinds]:
        """What serving's rule telling a precomputed record from raw fields needs of this model (its extras as serving
        reads them), or None when no record of its dataset could be read as a precomputed one lacking a feature."""
        ds = self.catalog_dataset
        extras = [name for name in (self.sensitive_attribute, *self.slices) if name not in self.features]
        kinds = ds.record_kinds(self.features, extras)
        return kinds if kinds.named_like_no_column or kinds.other_features else None

    def job_spec(self) -> dict[str, Any]:
        """The model as every job reads it (``--model-spec``), in the cloud and in the local run alike.

        It carries the dataset's whole declaration, so a job (and the model artefact it writes)
        never depends on a catalog that could have changed since.
        """
        spec = model_spec_document(
            name=self.name, dataset=self.catalog_dataset.to_declaration(), target=self.target, features=self.features,
            sensitive_attribute=self.sensitive_attribute, slices=self.slices, decision=self.decision_policy.to_dict(),
            class_weight=self.class_weight, problem_type=self.problem_type, primary_metric=self.primary_metric,
            min_quality=self.min_quality, leakage_acknowledged=self.leakage_acknowledged, loss=self.loss,
            tweedie_variance_power=self.tweedie_variance_power,
        )
        # Read by the model card (intended use); ignored by the other jobs.
        return {**spec, "description": self.description}

    @model_validator(mode="after")
    def _matches_catalog(self, info: ValidationInfo) -> "ModelConfig":
        # The loader validates models with the parsed ``datasets`` section as context; a dataset whose
        # own declaration failed maps to None (its problems are reported there, not again here).
        datasets: dict[str, Optional[Dataset]] = (info.context or {}).get("datasets", {})
        if self.dataset not in datasets:
            raise ValueError(f"dataset: unknown dataset {self.dataset!r}; allowed: {', '.join(sorted(datasets)) or '(none)'}"
                             " — declare it under 'datasets'")
        dataset = datasets[self.dataset]
        if dataset is None:
            return self
        self._dataset = dataset
        if self.target not in dataset.labels:
            raise ValueError(f"target: {self.target!r} is not a label of dataset {self.dataset!r}; allowed: "
                             f"{', '.join(dataset.labels)}")
        wrong_target = target_problem(dataset.column(self.target), self.problem_type)
        if wrong_target:
            raise ValueError(f"target: {wrong_target}")
        wrong_loss = loss_problem(self.problem_type, self.loss, self.tweedie_variance_power, self.target,
                                  dataset.column(self.target).minimum)
        if wrong_loss:
            raise ValueError(wrong_loss)
        if self.loss != SQUARED_ERROR and self.framework == PYTORCH:
            raise ValueError(f"loss: {self.loss} trains XGBoost models only; a network (framework pytorch) trains on squared error only "
                             "(it predicts the standardised target, and its stored format, numpy scoring and Inferentia2 "
                             "compilation have no log link for a positive mean): set framework: xgboost, or remove loss")
        wrong_metric = primary_metric_problem(self.problem_type, self.primary_metric, self.loss)
        if wrong_metric:
            raise ValueError(f"primary_metric: {wrong_metric}")
        impossible = self.min_quality is not None and floor_problem(self.judged_on, self.min_quality)
        if impossible:
            raise ValueError(f"min_quality: {impossible}")
        binary_only = [name for name, given in (("decision", self.decision is not None),
                                                 ("class_weight", self.class_weight != "none")) if given]
        if self.problem_type != BINARY and binary_only:
            raise ValueError(f"{binary_only[0]}: applies to {BINARY} models only (this one is {self.problem_type}); remove it")
        known = dataset.feature_names
        unknown = [f for f in self.features if f not in known]
        if unknown:
            raise ValueError(f"features: {unknown} are not defined for dataset {self.dataset!r}; allowed: "
                             f"{', '.join(known)}")
        if len(set(self.features)) != len(self.features):
            raise ValueError("features: lists a feature twice")
        if self.sensitive_attribute not in known:
            raise ValueError(f"sensitive_attribute: {self.sensitive_attribute!r} is not a feature of dataset "
                             f"{self.dataset!r}; allowed: {', '.join(known)}")
        if dataset.feature(self.sensitive_attribute).feature_type != FS_STRING:
            raise ValueError(f"sensitive_attribute: {self.sensitive_attribute!r} must be a categorical (String) feature")
        if self.sensitive_attribute in self.features:
            raise ValueError(f"sensitive_attribute: {self.sensitive_attribute!r} must not be a model input; "
                             "remove it from features (it is used for fairness slices only)")
        bad_slices = [s for s in self.slices if s not in known or dataset.feature(s).feature_type != FS_STRING]
        if bad_slices:
            categorical = [f.name for f in dataset.features if f.feature_type == FS_STRING]
            raise ValueError(f"slices: {bad_slices} must be categorical features of dataset {self.dataset!r}; "
                             f"allowed: {', '.join(categorical)}")
        # The columns the drift monitor computes drift of (the baseline's: ModelSpec.frame_features).
        monitored = self.monitoring.problems(tuple(dict.fromkeys((*self.features, self.sensitive_attribute, *self.slices))))
        if monitored:
            raise ValueError(f"{monitored[0][0]}: {monitored[0][1]}")
        # Serving tells a raw request from precomputed features by the feature names it holds.
        ambiguous = dataset.raw_request_problem(self.features, (self.sensitive_attribute, *self.slices))
        if ambiguous:
            raise ValueError(f"features: {ambiguous}")
        return self


# Validation-context key: the loader has already run AppConfig's cross-checks (see AppConfig._references).
CROSS_CHECKED = "cross_checked"


class AppConfig(StrictModel):
    """The whole app: a project name, the models and the environments that deploy them."""

    project: str = Field(default=DEFAULT_PROJECT, pattern=NAME_PATTERN)
    datasets: dict[str, Dataset]
    models: dict[str, ModelConfig]
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> "AppConfig":
        """Checks across models and environments. The loader runs them itself, before building this model,
        so that each problem is one line among all the config's problems; it says so in the context
        (``CROSS_CHECKED``) and they are not run twice. An AppConfig built any other way is checked here."""
        if info.context and info.context.get(CROSS_CHECKED):
            return self
        for env in self.environments.values():
            unknown = [m for m in env.models if m not in self.models]
            if unknown:
                raise ValueError(
                    f"environment {env.name!r}: models: references unknown model(s) {unknown}; "
                    f"allowed: {', '.join(sorted(self.models))}"
                )
        problems = (model_name_problems(self.models) + environment_name_problems(self.project, self.models, self.environments)
                    + account_wide_name_problems(self.project, self.models, self.environments)
                    + accelerator_problems(self.models, self.environments) + multi_model_problems(self.models, self.environments)
                    + training_problems(self.models, self.environments) + inferentia2_problems(self.models, self.environments)
                    + offer_problems(self.models, self.environments) + capture_problems(self.models, self.environments)
                    + label_delay_problems(self.models, self.environments) + budget_problems(self.environments)
                    + team_approver_problems(self.models, self.environments) + owner_contact_problems(self.models))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def models_of(self, env: EnvironmentConfig) -> tuple[ModelConfig, ...]:
        return tuple(self.models[m] for m in env.models)

    def tags_of(self, env: EnvironmentConfig) -> tuple[tuple[str, str], ...]:
        """The cost-allocation tags of everything ``env`` runs, as (key, value) pairs: ``project``, ``environment``
        and ``tier``. The stage puts them on every resource of its templates, and every SageMaker job that is
        created at run time (pipeline steps, scheduled monitor and batch transform jobs) carries them in its
        request: CloudFormation's tags never reach those jobs. The first two say whose a resource is
        (``contract.OWNER_TAGS``): the roles that reach resources by generated names are held to them."""
        return ((PROJECT_TAG, self.project), (ENVIRONMENT_TAG, env.name), ("tier", env.tier))

    def warnings(self) -> list[str]:
        """What synth accepts but a deployment should not go out with, one line each: an account id that is a
        placeholder (one digit repeated, or 123456789012), a prod environment sharing its account with a dev or
        staging environment (a mistake in one could then reach prod's data and roles; two prod environments, in two
        regions say, may share one), and an environment named like production whose tier is not prod (it would get
        none of prod's guards)."""
        lines = environment_pair_warnings(self.project, self.environments) + accelerator_warnings(self.models,
                                                                                                 self.environments)
        for env in self.environments.values():
            if len(set(env.account)) == 1 or env.account == "123456789012":
                lines.append(f"environment {env.name!r}: field 'account': {env.account!r} looks like a placeholder; put "
                             "the AWS account id of this environment there before `cdk deploy`")
        for env in self.environments.values():
            shared = [other.name for other in self.environments.values()
                      if other is not env and other.account == env.account and other.tier != "prod"]
            if env.tier == "prod" and shared:
                lines.append(f"environment {env.name!r}: field 'account': {env.account!r} is also the account of "
                             f"{', '.join(repr(s) for s in shared)}; give prod an account of its own")
            if env.tier == "prod":
                lines.extend(_gates_looser_than(env, self.models_of(env)))
            if env.tier != "prod" and env.name.lower().startswith(("prod", "prd")):
                lines.append(f"environment {env.name!r}: field 'tier': {env.tier!r}, so prod's guards are not enforced "
                             "(human approval, retained and termination-protected stacks are required for tier prod only); "
                             "set tier: prod if it serves production")
            for model in self.models_of(env):
                if _captures_nothing_it_monitors(self.serving_of(env, model)):
                    lines.append(f"{_capture_where(env, model)}: 0 captures no request, so the model's drift monitor will "
                                 "report every window quiet and never see drift; capture a sample (e.g. 10) to monitor it")
        return lines

    def serving_of(self, env: EnvironmentConfig, model: ModelConfig) -> ServingConfig:
        """The model's serving settings in ``env`` (its own block plus the environment's overrides)."""
        return env.serving.get(model.name, model.serving)

    def multi_model_members(self, env: EnvironmentConfig) -> dict[str, tuple[ModelConfig, ...]]:
        """Each multi-model endpoint ``env`` builds, with its member models (in ``env.models`` order)."""
        return _members(self.models, env)


def _gates_looser_than(env: EnvironmentConfig, models: Collection[ModelConfig]) -> list[str]:
    """A model's own gate key looser than ``env``'s configured threshold (set in the environment or its ``defaults``):
    the model's wins (``gate_in``), so a stricter policy written for the environment would not hold for that model
    without a word."""
    lines = []
    explicit = env.gate.model_fields_set
    for model in models:
        for t in THRESHOLDS:
            if t.field in (model.gate or {}) and t.field in explicit and t.looser(float(model.gate[t.field]),
                                                                                     float(getattr(env.gate, t.field))):
                lines.append(f"environment {env.name!r}: field 'gate.{t.field}': {getattr(env.gate, t.field):g} does not "
                             f"hold for model {model.name!r}, whose own gate.{t.field} {float(model.gate[t.field]):g} is "
                             "looser and wins; align the model's value if the environment's is the policy")
    return lines


def _members(models: dict[str, ModelConfig], env: EnvironmentConfig) -> dict[str, tuple[ModelConfig, ...]]:
    members: dict[str, list[ModelConfig]] = {}
    for model in (models[m] for m in env.models if m in models):
        serving = env.serving.get(model.name, model.serving)
        if serving.mode == "multi_model":
            members.setdefault(serving.multi_model.endpoint, []).append(model)
    return {name: tuple(group) for name, group in members.items()}


def model_name_problems(models: Collection[Any]) -> list[str]:
    """Model names IAM cannot tell apart: a name that is another model's followed by ``-v``, one message per pair.

    A version's model card is ``<project>-<env>-<model>-v<version>-<created>`` (``contract.model_card_name``) and the
    model's roles are granted its cards as ``<project>-<env>-<model>-v*``: IAM wildcards cannot say ``v<digits>``, so
    the grant would also cover every card of a model named ``<model>-v...`` in the same environment."""
    names = [m for m in models if isinstance(m, str)]  # a name of another type is reported by the name's own check
    problems = [
        f"model {other!r}: its name is the name of model {model!r} followed by '-v', so the roles of {model!r} could create "
        f"and update the model cards of {other!r} (a version's card is named <project>-<env>-{model}-v<version>-<time>, "
        f"granted as <project>-<env>-{model}-v*: IAM cannot match only digits after the 'v'); rename model {other!r} so "
        f"that it does not start with '{model}-v'"
        for model in names for other in names if other != model and other.startswith(f"{model}-v")
    ]
    # A model's retrain alarms are matched by the prefix <project>-<env>-<model>-retrain- (the retrain trigger's rule
    # and its grant, contract.retrain_alarm_prefix): a model named <model>-retrain[-...] has alarms under that prefix.
    infix = f"-{RETRAIN_INFIX}"
    problems += [
        f"model {other!r}: its name is the name of model {model!r} followed by '{infix}', so the alarms of {other!r} "
        f"(<project>-<env>-{other}-...) would start the retraining of model {model!r} when they fire (a model's retrain alarms are "
        f"found by their name's start, <project>-<env>-{model}{infix}-); rename model {other!r} so that it does not start "
        f"with '{model}{infix}'"
        for model in names for other in names
        if other != model and (other == f"{model}{infix}" or other.startswith(f"{model}{infix}-"))
    ]
    return problems


def _environment_pairs(environments: dict[str, "EnvironmentConfig"]):
    """(shorter, longer, rest) for each pair of environments in one account and region where ``longer`` is
    ``shorter`` followed by ``-`` and ``rest``."""
    for shorter in environments.values():
        for longer in environments.values():
            if longer.name.startswith(f"{shorter.name}-") and (longer.account, longer.region) == (
                    shorter.account, shorter.region):
                yield shorter, longer, longer.name[len(shorter.name) + 1:]


def environment_name_problems(project: str, models: dict[str, "ModelConfig"],
                              environments: dict[str, "EnvironmentConfig"]) -> list[str]:
    """Environments whose resources take each other's names, one message per pair: in one account and region, one
    named after another followed by ``-`` (``dev``, ``dev-eu``), and a model, dataset or team (its topic) of the first
    whose name starts with the rest (model ``eu-churn``, dataset ``eu_churn``, team ``eu-fraud`` of ``dev``).

    Every resource name is ``<project>-<env>-<rest>`` (``contract.environment_prefix``), and what varies after the
    environment starts with a model's or a dataset's name, or is one of the app's own words (``serving``,
    ``data-pipeline``...), the same in every environment and every config, so a clash of those would fail a pair's
    first deploy, not a later one. So a name of ``dev`` comes to be one of ``dev-eu`` through a model or dataset of
    ``dev`` named ``eu-...``/``eu_...``: that is refused; the pair alone is only warned about (``pair_warnings``), since a deployment made when it was accepted
    could otherwise go on only by renaming an environment, i.e. new, empty stacks."""
    problems = []
    for shorter, longer, rest in _environment_pairs(environments):
        mine = [m for m in shorter.models if m in models]
        # A team's topic is <prefix>-<team>-notifications: team eu-fraud of dev names dev-eu's team fraud's.
        teams = dict.fromkeys(sorted(models[m].owner.team for m in mine if models[m].owner is not None))
        taken = [("model", m) for m in mine if m == rest or m.startswith(f"{rest}-")] + [
            ("dataset", d) for d in dict.fromkeys(models[m].dataset for m in mine)
            if d.replace("_", "-") == rest or d.replace("_", "-").startswith(f"{rest}-")] + [
            ("team", t) for t in teams if t.startswith(f"{rest}-")]
        for kind, name in taken:
            joiner = "_" if kind == "dataset" else "-"
            problems.append(
                f"environments {shorter.name!r} and {longer.name!r}: both deploy to account {longer.account} in "
                f"{longer.region}, and {longer.name!r} is {shorter.name!r} followed by '-', so the names "
                f"{shorter.name!r} gives {kind} {name!r} ({project}-{shorter.name}-{name.replace('_', '-')}-...) are "
                f"names of the resources of {longer.name!r} ({project}-{longer.name}-...; CloudFormation refuses the "
                f"second at deploy); rename {kind} {name!r} so that it does not start with {rest + joiner!r}, or rename "
                f"one environment so that neither name is the other's followed by '-' (e.g. {longer.name!r} to "
                f"{longer.name.replace('-', '')!r}), or deploy them to another account or region")
    return problems


def account_wide_names(project: str, env: "EnvironmentConfig",
                       models: dict[str, "ModelConfig"]) -> dict[str, tuple[str, str]]:
    """Every fixed name ``env`` creates that is unique in its account whatever the region, as ``{name: (kind, what)}``:
    the model-approver, serving-deployer and analyst roles, each team's approver role (``team_approvers``), each
    native Model Monitor's role, the dashboard (CloudWatch dashboards are global), the budget and the lake buckets
    (unique across accounts; theirs end in ``<account>-<region>``). ``tests/infra/test_account_wide_names.py`` proves these are the names the templates write."""
    prefix = environment_prefix(project, env.name)
    names = {approver_role_name(prefix): ("IAM role", "the model approver role"),
             serving_deployer_role_name(prefix): ("IAM role", "the serving deployer role"),
             analyst_role_name(prefix): ("IAM role", "the analyst role"),
             loop_dashboard_name(prefix): ("CloudWatch dashboard", "the loop's dashboard")}
    for team in env.team_approvers:
        names[team_approver_role_name(prefix, team)] = ("IAM role", f"the approver role of team {team!r}")
    if env.budget is not None:
        names[budget_name(prefix, env.budget.actual_percent, env.budget.forecast_percent,
                          env.budget.emails)] = ("budget", "the cost budget")
    for model in env.models:
        if model in models and env.serving.get(model, models[model].serving).native_model_monitor:
            names[monitor_role_name(prefix, model)] = ("IAM role", f"the native Model Monitor role of model {model!r}")
    for kind in LAKE_BUCKETS:
        names[lake_bucket(prefix, kind, env.account, env.region)] = ("S3 bucket", f"the {kind} bucket")
    return names


def account_wide_name_problems(project: str, models: dict[str, "ModelConfig"],
                               environments: dict[str, "EnvironmentConfig"]) -> list[str]:
    """Two environments of one account, in any regions, that would both create a name unique in the account
    (:func:`account_wide_names`), one message per name. ``environment_name_problems`` compares environments in one
    account and region only, but IAM roles, dashboards and budgets meet across regions too: ``dev`` serving a model
    ``eu-churn`` and ``dev-eu`` serving ``churn``, both with native Model Monitor on, would both create the role
    ``<project>-dev-eu-churn-native-monitor``. Such a pair could never deploy both, so refusing it breaks no deployment.
    Pairs in one region are left to ``environment_name_problems``, which refuses every one whose names meet (they meet
    only through a model of one named after the rest of the other's name), so no cause is reported twice."""
    problems = []
    envs = list(environments.values())
    for i, first in enumerate(envs):
        mine = account_wide_names(project, first, models)
        for second in (e for e in envs[i + 1:] if e.account == first.account and e.region != first.region):
            theirs = account_wide_names(project, second, models)
            longer = max(first.name, second.name, key=len)
            for name in (n for n in mine if n in theirs):
                problems.append(
                    f"environments {first.name!r} ({first.region}) and {second.name!r} ({second.region}): both deploy to "
                    f"account {first.account} and both would create {mine[name][0]} {name!r} ({mine[name][1]} in "
                    f"{first.name!r}; {theirs[name][1]} in {second.name!r}); its name is unique in the account whatever "
                    "the region, so CloudFormation refuses the second deploy ('already exists'). Rename one of the "
                    f"models, or rename one environment so that neither name is the other's followed by '-' (e.g. "
                    f"{longer!r} to {longer.replace('-', '')!r}), or deploy the two environments to different accounts")
    return problems


def environment_pair_warnings(project: str, environments: dict[str, "EnvironmentConfig"]) -> list[str]:
    """The pairs ``environment_name_problems`` accepts: one environment named after another followed by ``-`` in one
    account and region, no name shared. What the first grants by name prefix (``<project>-<env>-*``: its alarms' use
    of its keys) reaches the second's resources, and a model, dataset or team added later could take the other's names."""
    return [
        f"environments {shorter.name!r} and {longer.name!r}: both deploy to account {longer.account} in "
        f"{longer.region}, and {longer.name!r} is {shorter.name!r} followed by '-', so what {shorter.name!r} grants by "
        f"name ({project}-{shorter.name}-*) reaches the resources of {longer.name!r}, and a dataset, model or team of "
        f"{shorter.name!r} whose name starts with {rest!r} and '_' or '-' would take names of {longer.name!r} (refused "
        f"then); no name is shared today, so a deployment of both keeps working. To part them, rename one (e.g. "
        f"{longer.name!r} to {longer.name.replace('-', '')!r}): a renamed environment is a new, empty stack beside the "
        "old one, which is left running with its data (the template diff calls it MOVED); or deploy them to another "
        "account or region"
        for shorter, longer, rest in _environment_pairs(environments)]


def multi_model_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """Models that name a multi-model endpoint their environment does not declare, and endpoints whose
    members need different container images (one endpoint runs one image), one message per problem."""
    problems = []
    for env in environments.values():
        for endpoint, members in _members(models, env).items():
            if endpoint not in env.multi_model_endpoints:
                declared = ", ".join(sorted(env.multi_model_endpoints)) or "(none)"
                for model in members:
                    problems.append(
                        f"environment {env.name!r}: field 'serving.{model.name}.multi_model.endpoint': {endpoint!r} is not a "
                        f"multi-model endpoint of this environment; allowed: {declared} — declare it under "
                        f"'multi_model_endpoints' in the environment or in 'defaults'"
                    )
                continue
            # A network is served by the XGBoost image too (scored with numpy), so trees and networks may share.
            images = {FRAMEWORKS[m.framework].serving_image if m.framework in FRAMEWORKS else m.framework for m in members}
            if len(images) > 1:
                problems.append(
                    f"environment {env.name!r}: field 'multi_model_endpoints.{endpoint}': its models need different images "
                    f"({', '.join(f'{m.name}: {m.framework}' for m in members)}); one endpoint runs one container image — "
                    "give each framework its own endpoint"
                )
    return problems


def _serving_types(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]):
    """(where, model, field, instance type) of every serving type set: a model's own block once, per environment only
    what the environment sets itself."""
    for model in models.values():
        for name in model.serving.instance_types:
            yield f"model {model.name!r}", model, model.serving.instance_type_field(), name
    for env in environments.values():
        for model in (models[m] for m in env.models if m in models):
            if model.name in env.serving:
                serving = env.serving[model.name]
                for name in serving.instance_types:
                    field = _override_field(model, serving, name)
                    if field is not None:
                        yield f"environment {env.name!r}", model, field, name


def accelerator_warnings(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """Serving types whose accelerator the model's framework serves on but does not use (``Framework.serving_idle``:
    an XGBoost model on a GPU), one line each."""
    lines = []
    for where, model, field, name in _serving_types(models, environments):
        framework = FRAMEWORKS[model.framework]
        accelerator = INSTANCE_TYPES[name].accelerator
        if accelerator in framework.serving_idle:
            lines.append(
                f"{where}: field '{field}': {name} is {ACCELERATOR_LABELS[accelerator]} instance, which serving with "
                f"framework {model.framework!r} does not use ({framework.why_not.get(accelerator, 'unsupported')}); "
                f"pick e.g. {framework.suggested['serving']} (an autoscaled endpoint cannot change its instance type in "
                "place: the template diff says UPDATE FAILS and what to do)")
    return lines


def accelerator_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """Accelerated instance types the model's framework cannot use, one message per problem.

    Inferentia2 (ml.inf2.*) serves only Neuron-compiled models in a Neuron image and Trainium
    (ml.trn1.*) trains only with the Neuron SDK; the stock XGBoost image has neither, so such a
    combination would fail at the first training job or deployment. Found here, it fails synth.
    """
    problems = []

    def check(where: str, model: ModelConfig, field: str, name: str, purpose: str) -> None:
        framework = FRAMEWORKS[model.framework]
        accelerator = INSTANCE_TYPES[name].accelerator
        allowed = framework.training_accelerators if purpose == "training" else framework.serving_accelerators
        if purpose == "serving" and accelerator in framework.serving_idle:
            return  # served, idle: accelerator_warnings
        if accelerator not in allowed:
            problems.append(
                f"{where}: field '{field}': {name} is {ACCELERATOR_LABELS[accelerator]} instance, which {purpose} "
                f"with framework {model.framework!r} cannot use ({framework.why_not.get(accelerator, 'unsupported')}); "
                f"allowed accelerators for {purpose}: {', '.join(allowed)} — pick e.g. {framework.suggested[purpose]}"
            )

    # A model's own serving block once; per environment only what the environment sets itself.
    for model in models.values():
        for name in model.serving.instance_types:
            check(f"model {model.name!r}", model, model.serving.instance_type_field(), name, "serving")
    for env in environments.values():
        for model in (models[m] for m in env.models if m in models):
            where = f"environment {env.name!r}: model {model.name!r}"
            check(where, model, env.training.instance_type_field(model.name), env.training.instance_type_of(model.name), "training")
            if model.name in env.serving:
                serving = env.serving[model.name]
                for name in serving.instance_types:
                    field = _override_field(model, serving, name)
                    if field is not None:
                        check(f"environment {env.name!r}", model, field, name, "serving")
    return problems


def _override_field(model: ModelConfig, serving: ServingConfig, instance_type: str) -> Optional[str]:
    """The field of an environment's serving override of ``model`` that sets ``instance_type``, named as in the
    file (``serving.<model>.<mode>.instance_type`` under the environment); None when the type is the model's own.

    An override holds the model's whole serving block once anything in it is overridden, so a type counts as
    the environment's only when the override changed the mode or the type.
    """
    if instance_type in model.serving.instance_types and serving.mode == model.serving.mode:
        return None
    return f"serving.{model.name}.{serving.instance_type_field().split('.', 1)[1]}"


def training_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig],
                      declared: Optional[Collection[str]] = None) -> list[str]:
    """How an environment's training settings do not fit its models, one message per problem: per-model instance
    types for names that are no model, a hyperparameter the tuning job would search anyway, and what a network (framework pytorch) cannot do yet - a
    tuning job (it searches XGBoost's hyperparameters), several instances (the trainer is not distributed), or
    Trainium in a region without AWS's Neuron training image."""
    problems = []
    for model in models.values():
        # Ranges no tuning job ever searches: refused, not warned about, as a hyperparameter the search would override
        # is - whoever wrote them believes the search is shaped. A model listed nowhere trains nowhere (not this check's).
        training = [env for env in environments.values() if model.name in env.models]
        if model.tuning_ranges and training and not any(env.training.hyperparameter_tuning for env in training):
            problems.append(f"model {model.name!r}: field 'tuning_ranges': no environment that trains {model.name!r} "
                            f"({', '.join(sorted(env.name for env in training))}) has training.hyperparameter_tuning on, so no tuning job searches "
                            "these ranges; set training.hyperparameter_tuning: true in the environment that should tune "
                            "it, or remove tuning_ranges")
    for env in environments.values():
        listed = [m for m in env.models if m in models]
        # An entry for a model of the app that this environment does not train is allowed (it may come from
        # defaults, for the environments that do); a name that is no model at all is a typo.
        # ``declared``: every model name the config has, valid or not (an invalid one has its own message).
        unknown = sorted(set(env.training.instance_types) - set(models if declared is None else declared))
        if unknown:
            problems.append(f"environment {env.name!r}: field 'training.instance_types': unknown model(s) {unknown}; "
                            f"models: {', '.join(sorted(models))}")
        for model in (models[m] for m in listed if env.training.hyperparameter_tuning):
            searched = [r for r in model.tuning_ranges_searched() if r[0] in model.hyperparameters]
            for name, _, low, high, _ in searched:
                problems.append(f"environment {env.name!r}: model {model.name!r}: field 'hyperparameters.{name}': the tuning "
                                f"job searches {name} ({low:g} to {high:g}) in this environment, so the "
                                "value set here would not be used; remove it, or set training.hyperparameter_tuning false")
        for model in (models[m] for m in listed if models[m].framework == PYTORCH):
            where = f"environment {env.name!r}: model {model.name!r}"
            if env.training.hyperparameter_tuning:
                problems.append(f"{where}: field 'training.hyperparameter_tuning': the tuning job searches XGBoost's "
                                "hyperparameters and a network (framework 'pytorch') is not tuned; set it false or "
                                f"train {model.name!r} in an environment without tuning")
            if env.training.instance_count > 1:
                problems.append(f"{where}: field 'training.instance_count': a network trains on one instance "
                                f"(train_torch is not distributed), not {env.training.instance_count}; set it to 1")
            instance_type = env.training.instance_type_of(model.name)
            cores_problem = _idle_neuron_cores_problem(instance_type)
            if cores_problem:
                problems.append(f"{where}: field '{env.training.instance_type_field(model.name)}': {cores_problem}")
            if INSTANCE_TYPES[instance_type].accelerator == "trainium" and env.region not in NEURON_IMAGE_REGIONS:
                problems.append(f"{where}: field '{env.training.instance_type_field(model.name)}': {instance_type} needs "
                                f"AWS's Neuron training image, which is not published in {env.region}; regions with it (each must also "
                                f"offer {instance_type}): {', '.join(NEURON_IMAGE_REGIONS)} — train on a CPU type there "
                                "(e.g. ml.m5.xlarge)")
    return problems


def _idle_neuron_cores_problem(instance_type: str) -> Optional[str]:
    """Why a network should not train on ``instance_type``: a Trainium type with more NeuronCores than the smallest
    one, of which train_torch (one process, one XLA device: one NeuronCore) would leave all but one idle; else None."""
    chosen = INSTANCE_TYPES[instance_type]
    trainium = [t for t in INSTANCE_TYPES.values() if t.accelerator == "trainium"]
    if chosen.accelerator != "trainium" or not trainium:
        return None
    smallest = min(trainium, key=lambda t: (t.neuron_cores, t.usd_per_hour))
    if chosen.neuron_cores <= smallest.neuron_cores:
        return None
    return (f"{instance_type} has {chosen.neuron_cores} NeuronCores, but a network trains in one process on one NeuronCore "
            f"(train_torch is not distributed): {chosen.neuron_cores - 1} would be paid for and idle; use {smallest.name} "
            f"({smallest.neuron_cores} NeuronCores), the same training for less")


# The parity check publishes its verdict within its 150-second budget after the first baking event (parity_check
# MAX_CHECK_SECONDS), and its alarm needs up to two minutes more to fire; a shorter bake would let a mismatching
# version through before the alarm could roll it back.
PARITY_MIN_BAKE_MINUTES = 5


def inferentia2_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """How a network served on ml.inf2 does not fit its environment, one message per problem: a mode the compiled
    lane does not serve (async, batch transform; multi-model endpoints refuse accelerators themselves), a region without
    AWS's Neuron inference image, or a rollout whose first bake is too short for the parity check to roll it back."""
    problems = []
    for env in environments.values():
        for model in (models[m] for m in env.models if m in models):
            serving = env.serving.get(model.name, model.serving)
            inf2 = inferentia2_types(serving)
            if not inf2 or model.framework != PYTORCH:
                continue  # an XGBoost model on inf2 is refused by accelerator_problems
            where = _serving_where(env, model, serving, inf2[0])
            if not compiled_for_inferentia2(serving):
                why = ("batch transform has no rollout in which the parity check could test the compiled model on the "
                       "device" if serving.mode == "batch" else "its rollouts are parity-checked with synchronous "
                       "InvokeEndpoint calls, which an async endpoint does not take")
                problems.append(f"{where}: {inf2[0]} serves a compiled network on real-time endpoints only, not "
                                f"{serving.mode} ({why}); use mode 'realtime', or a CPU type (e.g. ml.m5.xlarge)")
                continue
            if env.region not in NEURON_IMAGE_REGIONS:
                problems.append(f"{where}: {inf2[0]} needs AWS's Neuron inference image, which is not published in "
                                f"{env.region}; regions with it (each must also offer {inf2[0]}): {', '.join(NEURON_IMAGE_REGIONS)} "
                                "— serve on a CPU type there (e.g. ml.m5.large)")
            rollout = serving.rollout
            if rollout is not None and rollout.wait_minutes < PARITY_MIN_BAKE_MINUTES:
                field = f"serving.{serving.mode}.rollout.wait_minutes"
                overridden = rollout != model.serving.rollout
                problems.append(f"{_serving_where(env, model, serving, inf2[0], field, overridden=overridden)}: "
                                f"{rollout.wait_minutes} minutes is too short a bake for the parity check of a compiled model "
                                f"to roll a mismatching version back; at least {PARITY_MIN_BAKE_MINUTES}")
    return problems


def offer_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """Instance types an environment would train, process or host on that its region does not offer for that use,
    one message per field (:mod:`.instance_offers`). Regions the table does not hold are not checked; nor is
    batch transform."""
    offers = load_offers()
    problems: list[str] = []
    for env in environments.values():
        region = offers.get(env.region)
        if region is None:
            continue
        listed = [models[m] for m in env.models if m in models]
        here = f"environment {env.name!r}"
        uses = [(f"{here}: field '{env.training.instance_type_field(m.name)}'", "training", env.training.instance_type_of(m.name))
                for m in listed]
        uses.append((f"{here}: field 'training.processing_instance_type'", "processing", env.training.processing_instance_type))
        for model in listed:
            serving = env.serving.get(model.name, model.serving)
            if serving.mode not in ("realtime", "async"):
                continue
            uses += [(_serving_where(env, model, serving, name), "hosting", name) for name in serving.instance_types]
        # Only the shared endpoints a model here is served on are built (see EnvironmentConfig).
        uses += [(f"{here}: field 'multi_model_endpoints.{name}.instance_type'", "hosting",
                  env.multi_model_endpoints[name].instance_type)
                 for name in _members(models, env) if name in env.multi_model_endpoints]
        problems += [f"{where}: {problem}" for where, use, instance_type in dict.fromkeys(uses)
                     if (problem := region.problem(use, instance_type))]
    return problems


def capture_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """A model that expects daily requests (``min_daily_requests``) but captures none (batch aside: its monitor reads
    the transform's files): its monitor would count none and page people every day. (Capturing none at all is a
    warning: :meth:`AppConfig.warnings`.)"""
    problems = []
    for env in environments.values():
        for model in (models[m] for m in env.models if m in models):
            if model.min_daily_requests and _captures_nothing_it_monitors(env.serving.get(model.name, model.serving)):
                problems.append(f"{_capture_where(env, model)}: 0 captures no request, but model {model.name!r} declares "
                                f"min_daily_requests {model.min_daily_requests}, so its monitor would count none and page "
                                "people every day; capture a sample (e.g. 10) or remove min_daily_requests")
    return problems


def label_delay_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """A model whose labels come later than the environment keeps its drift monitor's prediction records
    (``data_lake.inference_records_expiration_days``, under ``monitor/``): its late labels would find no request."""
    problems = []
    for env in environments.values():
        kept = env.data_lake.inference_records_expiration_days
        for model in (models[m] for m in env.models if m in models):
            label_window = monitor_label_window_hours(model.drift_window_days_in(env.monitoring))
            needed = math.ceil(records_lookback_hours(model.label_delay_days, label_window_hours=label_window) / 24)
            if kept is not None and kept < needed:
                problems.append(f"environment {env.name!r}: field 'data_lake.inference_records_expiration_days': {kept} "
                                f"expires the drift monitor's prediction records before the labels of model {model.name!r} "
                                f"arrive (label_delay_days {model.label_delay_days} + the {label_window / 24:g}-day label window + a day: "
                                f"{needed} days); keep them at least {needed} days (or null: never), or lower "
                                f"models.{model.name}.label_delay_days")
    return problems


def owner_contact_problems(models: dict[str, ModelConfig]) -> list[str]:
    """Two models of one team naming different contacts (``owner.contact``), one line per later model: the contact is
    one tag value on the team's topic (``mlops-loop:contact``), and AWS tag values allow no separator to list two."""
    problems, contacts = [], {}
    for name, model in models.items():
        if model.owner is None or model.owner.contact is None:
            continue
        first = contacts.setdefault(model.owner.team, (name, model.owner.contact))
        if first[1] != model.owner.contact:
            problems.append(f"model {name!r}: field 'owner.contact': team {model.owner.team!r} already has the contact "
                            f"{first[1]!r} (model {first[0]!r}); a team has one contact (a tag value on its topic): "
                            "give its models the same one, or leave it out of all but one")
    return problems


def team_approver_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """``team_approvers`` naming a team none of the environment's models belongs to (a typo would leave the team's
    models with the environment's approver role), one line per team."""
    problems = []
    for env in environments.values():
        teams = sorted({models[m].owner.team for m in env.models if m in models and models[m].owner is not None})
        for team in env.team_approvers:
            if team not in teams:
                problems.append(f"environment {env.name!r}: field 'team_approvers.{team}': no model of this environment "
                                f"belongs to team {team!r} (models.<model>.owner.team); teams here: "
                                f"{', '.join(teams) or '(none)'}")
    return problems


def network_problems(models: dict[str, ModelConfig], environments: dict[str, EnvironmentConfig]) -> list[str]:
    """A model served serverless in an environment that runs inside a VPC (``network``): SageMaker Serverless
    Inference takes no VpcConfig (one of its documented feature exclusions), so that endpoint would run outside
    the VPC the environment asks for; found here, it fails synth naming the field."""
    problems = []
    for env in (e for e in environments.values() if e.network is not None):
        for model in (models[m] for m in env.models if m in models):
            serving = env.serving.get(model.name, model.serving)
            if serving.mode != "serverless":
                continue
            where = _serving_where(env, model, serving, None, "serving.mode", overridden=serving.mode != model.serving.mode)
            problems.append(f"{where}: serverless endpoints cannot run inside a VPC (SageMaker Serverless Inference does "
                            f"not support a model VpcConfig) and this environment sets 'network'; serve {model.name!r} "
                            f"with mode 'realtime' or 'async' here (environment field 'serving.{model.name}.mode'), or "
                            "remove 'network'")
    return problems


def _captures_nothing_it_monitors(serving: ServingConfig) -> bool:
    """Whether the monitor would see no traffic: no capture, except in batch mode, whose monitor reads the transform
    job's input and output files."""
    return serving.data_capture_percent == 0 and serving.mode != "batch"


def _capture_where(env: EnvironmentConfig, model: ModelConfig) -> str:
    """Where ``model``'s capture percentage in ``env`` is written: the environment's override when it changed it."""
    serving = env.serving.get(model.name, model.serving)
    return _serving_where(env, model, serving, None, "serving.data_capture_percent",
                          overridden=serving.data_capture_percent != model.serving.data_capture_percent)


def _serving_where(env: EnvironmentConfig, model: ModelConfig, serving: ServingConfig, instance_type: Optional[str],
                   field: Optional[str] = None, *, overridden: Optional[bool] = None) -> str:
    """Where a serving setting of ``model`` in ``env`` is written, as messages name it: the environment's override
    (``environment 'prod': field 'serving.<model>.realtime.instance_type'``) when it set ``instance_type``, or when
    ``overridden`` says so for another ``field``; else the model's own block (``environment 'prod': model 'm':
    field 'serving.realtime.instance_type'``). ``field`` defaults to the active mode's instance type."""
    field = field or serving.instance_type_field()
    if overridden is None:
        overridden = _override_field(model, serving, instance_type) is not None
    if overridden:
        return f"environment {env.name!r}: field 'serving.{model.name}.{field.split('.', 1)[1]}'"
    return f"environment {env.name!r}: model {model.name!r}: field '{field}'"

"""One model (``models.<name>``): its dataset, problem, owner, training, gate, monitoring and serving settings."""

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from pipeline_code.catalog import Dataset, FS_STRING, target_problem
from pipeline_code.core.contract import (DEFAULT_LABEL_DELAY_DAYS, DEFAULT_MONITOR_WINDOW_GIB, GIB,
                                         MAX_PROCESSING_VOLUME_GB, MONITOR_WINDOW_DOWNLOADS, MONITOR_WORKING_GB,
                                         model_spec_document, monitor_volume_gb, monitor_window_bytes)
from pipeline_code.core.decision import DecisionError, DecisionPolicy, parse_decision
from pipeline_code.core.frameworks import FRAMEWORKS as FRAMEWORK_NAMES, PYTORCH, XGBOOST
from pipeline_code.core.hyperparameters import (problems as hyperparameter_problems, tuned, tuning_range_problems,
                                                tuning_ranges)
from pipeline_code.core.online_features import LookupSpec
from pipeline_code.core.problem import (BINARY, LOSSES, MULTICLASS, REGRESSION, SQUARED_ERROR, default_primary_metric,
                                        floor_problem, loss_problem, primary_metric_problem)
from pipeline_code.core.record_kinds import RecordKinds

from ._common import check_name
from ._strict import StrictModel
from .gate import (CLASSIFIER_GATE_KEYS, GateConfig, LEAKAGE_REASON_MIN_CHARS, MULTICLASS_GATE_KEYS,
                   NOT_FOR_REGRESSION, REGRESSION_GATE, gate_config)
from .monitoring import ModelMonitoringConfig, MonitoringConfig, check_drift_window_days
from .serving import ById, ServingConfig


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

    _team = field_validator("team")(check_name)

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

    _name = field_validator("name")(check_name)

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
        misplaced = [key for key in CLASSIFIER_GATE_KEYS if key in value and problem_type == REGRESSION]
        if misplaced:
            why = NOT_FOR_REGRESSION.get(misplaced[0], REGRESSION_GATE)
            raise ValueError(f"{misplaced[0]} does not apply to a regression model ({why}); remove it")
        for key, why in MULTICLASS_GATE_KEYS.items():
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

"""Training settings: the environment's ``training`` section and its hyperparameter tuning (``training.tuning``)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from pipeline_code.core.contract import REFREEZE_WHEN_STALE, TEST_SET_REFREEZE_POLICIES

from ._common import check_instance_type
from ._strict import StrictModel
from .instance_types import INSTANCE_TYPES, unknown_problem, unsupported_problem
from .schedules import check_scheduler_expression


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

    _types = field_validator("instance_type", "processing_instance_type")(check_instance_type)

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

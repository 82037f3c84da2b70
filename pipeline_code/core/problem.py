"""What a model predicts, and how its quality is measured: one definition for the config, every job,
serving and the monitor.

Three problem types, declared per model (``problem_type:`` in the YAML):

* ``binary_classification`` (the default): the target is a boolean or an integer 0/1; the model scores
  P(target = 1) and a decision threshold (``core.decision``) turns scores into predictions.
* ``multiclass_classification``: the target is a string column with declared ``allowed`` values, or an
  integer column with ``min`` and ``max`` (classes ``min`` .. ``max``); 3 to :data:`MAX_CLASSES` classes,
  in declared order. The model gives one probability per class; the prediction is the most probable one.
* ``regression``: the target is a number (integer or double); the model predicts its value.

Each type has its primary metrics (:data:`PRIMARY_METRICS`, the first is the default): the one the
champion/challenger margin and the slice regressions compare, in its direction (:func:`higher_is_better`).
Classifiers keep AUC as the quality floor the environment's ``gate.min_auc`` sets (for multiclass, the
macro average of one-vs-rest AUCs); a regression model's floor is ``min_quality`` on its primary metric,
R² >= 0 (better than predicting the mean) unless the model sets another.

A regression model trains on a loss (:data:`LOSSES`, ``loss:`` in the YAML): ``squared_error`` (the default), or for
counts and skewed amounts ``poisson``, ``tweedie`` (with ``tweedie_variance_power`` strictly between 1 and 2) and
``gamma``, XGBoost's ``count:poisson``, ``reg:tweedie`` and ``reg:gamma`` (:func:`xgboost_objective`). Those three model
the log of the mean, so every prediction is a positive mean on the target's scale; the target must be declared
``min: 0`` or more (gamma: above 0) (:func:`loss_problem`). Their evaluation adds the loss's mean deviance
(:func:`deviance_metric`: ``poisson_deviance``, ``tweedie_deviance``, ``gamma_deviance``, scikit-learn's
mean_*_deviance), which may then be the primary metric (:func:`primary_metric_problem`); R² keeps its meaning (the
predictions are means) and its floor.

Standard library only: the configuration, the pipeline definition, the catalog and every job import it.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

BINARY = "binary_classification"
MULTICLASS = "multiclass_classification"
REGRESSION = "regression"
PROBLEM_TYPES = (BINARY, MULTICLASS, REGRESSION)

# A multiclass target needs at least 3 classes (2 is binary: declare it so) and at most this many: every
# class adds a tree per boosting round, a probability to every response and a row to every per-class report.
MAX_CLASSES = 100

# Primary metrics per type, default first. Names are the evaluation report's headline keys.
PRIMARY_METRICS: Dict[str, Tuple[str, ...]] = {
    BINARY: ("auc", "pr_auc", "log_loss", "f1"),
    MULTICLASS: ("auc", "macro_f1", "log_loss", "accuracy"),
    REGRESSION: ("r2", "rmse", "mae"),
}
# A regression model's losses (``loss:``), the default first, and the XGBoost objective each trains with.
SQUARED_ERROR, POISSON, TWEEDIE, GAMMA = "squared_error", "poisson", "tweedie", "gamma"
LOSSES = (SQUARED_ERROR, POISSON, TWEEDIE, GAMMA)
_LOSS_OBJECTIVE = {SQUARED_ERROR: "reg:squarederror", POISSON: "count:poisson", TWEEDIE: "reg:tweedie", GAMMA: "reg:gamma"}
# The mean deviance Evaluate reports for a loss other than squared error (its primary metric may be it), and XGBoost's
# per-round metric of the same loss the training job stops early on (tweedie's is written with its power).
DEVIANCE_METRICS = {POISSON: "poisson_deviance", TWEEDIE: "tweedie_deviance", GAMMA: "gamma_deviance"}
_XGBOOST_LOSS_METRIC = {POISSON: "poisson-nloglik", TWEEDIE: "tweedie-nloglik@{power:g}", GAMMA: "gamma-deviance"}
# tweedie_variance_power: strictly between 1 (poisson) and 2 (gamma); 1.5 when a tweedie model sets none.
DEFAULT_TWEEDIE_POWER = 1.5

# Lower is better for these (the reports' names and XGBoost's own, which the training job stops early on).
_LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "logloss", "mlogloss", "merror", *DEVIANCE_METRICS.values(),
                              "poisson-nloglik", "gamma-deviance"})
# How a metric reads in a sentence (gate messages, model cards); other names read as themselves.
_LABELS = {"auc": "AUC", "pr_auc": "PR-AUC", "r2": "R²", "rmse": "RMSE", "mae": "MAE", "f1": "F1", "macro_f1": "macro F1",
           "log_loss": "log loss", "logloss": "log loss", "poisson_deviance": "Poisson deviance",
           "tweedie_deviance": "Tweedie deviance", "gamma_deviance": "gamma deviance"}

# The headline metrics reports, the local registry and the model card show per type, in this order: every primary
# metric of the type among them (the one the gate judged a model on is always shown; PR-AUC, the rare-event metric).
HEADLINE_METRICS: Dict[str, Tuple[str, ...]] = {
    BINARY: ("auc", "pr_auc", "log_loss", "brier", "ece", "accuracy", "precision", "recall", "f1", "positive_rate"),
    MULTICLASS: ("auc", "log_loss", "brier", "ece", "accuracy", "macro_precision", "macro_recall", "macro_f1"),
    REGRESSION: ("r2", "rmse", "mae", "bias"),
}

# The XGBoost objective and evaluation metrics (the last one stops training early) per type.
XGBOOST_OBJECTIVE = {BINARY: "binary:logistic", MULTICLASS: "multi:softprob", REGRESSION: "reg:squarederror"}
XGBOOST_EVAL_METRICS = {BINARY: ("logloss", "auc"), MULTICLASS: ("merror", "mlogloss"), REGRESSION: ("mae", "rmse")}
# The training summary's name of a primary metric where it differs (log loss keeps XGBoost's spelling).
_SUMMARY_NAMES = {"log_loss": "logloss"}

# SageMaker's names: the model-quality block of ModelMetrics and the model card's problem type.
MODEL_QUALITY_KEY = {BINARY: "binary_classification_metrics", MULTICLASS: "multiclass_classification_metrics",
                     REGRESSION: "regression_metrics"}
DISPLAY_NAME = {BINARY: "Binary Classification", MULTICLASS: "Multiclass Classification", REGRESSION: "Regression"}

# The drift monitor's report key the retrain-on-quality alarm watches with each type's default primary metric:
# the AUC drop for classifiers, the drop in the primary metric (absolute for R², relative for RMSE/MAE) for
# regression, which has no AUC. A classifier's own primary metric can change it: see quality_alarm_key.
QUALITY_ALARM_KEY = {BINARY: "auc_drop", MULTICLASS: "auc_drop", REGRESSION: "quality_drop"}

# The drift monitor's report key of each type's gap across the sensitive groups, the one the gate bounds by
# max_demographic_parity_difference: of positive rates for classifiers (multiclass: the worst class's), of relative
# bias for regression (the bias gap).
FAIRNESS_GAP_KEY = {BINARY: "demographic_parity_difference", MULTICLASS: "demographic_parity_difference",
                    REGRESSION: "bias_gap"}

# The regression quality floor when the model sets none: R² >= 0, i.e. no worse than predicting the mean.
DEFAULT_REGRESSION_FLOOR = 0.0


def is_classification(problem_type: str) -> bool:
    return problem_type in (BINARY, MULTICLASS)


def default_primary_metric(problem_type: str) -> str:
    return PRIMARY_METRICS[problem_type][0]


def tuning_metric(problem_type: str, primary_metric: Optional[str] = None) -> str:
    """The kept model's validation metric hyperparameter tuning optimises: the model's primary metric (the one the
    gate compares challenger and champion on), on the validation split. The training job prints it as
    ``final_validation_<name>=<value>;`` (the training summary's ``validation_<name>``); ``log_loss`` is ``logloss``."""
    metric = primary_metric or default_primary_metric(problem_type)
    return _SUMMARY_NAMES.get(metric, metric)


def round_objective(problem_type: str, primary_metric: Optional[str] = None) -> str:
    """The tuning objective as the XGBoost trainer prints it, ``validation-<tuning_metric>=<v>;``: after every round
    (the model so far, so SageMaker's early stopping can compare trials round by round) and once more at the end (the
    kept model: a trial's objective is the last value it printed). ``final_validation_<name>`` is printed once, too."""
    return f"validation-{tuning_metric(problem_type, primary_metric)}"


def quality_alarm_key(problem_type: str, primary_metric: Optional[str] = None) -> str:
    """The monitor's key the model's retrain-on-quality alarm watches: a classifier (binary or multiclass) whose
    primary metric is not AUC is judged on that metric (``quality_drop``, the check the monitor fails it on), like
    regression; otherwise :data:`QUALITY_ALARM_KEY` of its type."""
    metric = primary_metric or default_primary_metric(problem_type)
    # A PR-AUC or F1 collapse can leave the AUC stable: the alarm watches what the model is judged on.
    if is_classification(problem_type) and metric != "auc":
        return "quality_drop"
    return QUALITY_ALARM_KEY[problem_type]


# The range each primary metric's values lie in (None: unbounded on that side): a floor outside it can never be met,
# and a margin or slice regression of a metric without an upper bound (RMSE, MAE: the target's units; log loss) is
# in its own units, as large as the target's scale makes it.
METRIC_RANGE: Dict[str, Tuple[Optional[float], Optional[float]]] = {
    "auc": (0.0, 1.0), "pr_auc": (0.0, 1.0), "f1": (0.0, 1.0), "macro_f1": (0.0, 1.0), "accuracy": (0.0, 1.0),
    "r2": (None, 1.0), "log_loss": (0.0, None), "rmse": (0.0, None), "mae": (0.0, None),
    **{name: (0.0, None) for name in DEVIANCE_METRICS.values()},
}


def floor_problem(metric: str, floor: float) -> Optional[str]:
    """Why ``floor`` can never be met by ``metric`` (None when it can)."""
    low, high = METRIC_RANGE[metric]
    if (low is not None and floor < low) or (high is not None and floor > high):
        span = f"between {low:g} and {high:g}" if low is not None and high is not None else (
            f"at most {high:g}" if high is not None else f"at least {low:g}")
        return f"{floor:g} is no possible {label(metric)} (it is {span}), so no model could pass"
    return None


def in_own_units(metric: str) -> bool:
    """Whether a margin of ``metric`` is in the metric's own, unbounded units (RMSE, MAE, log loss)."""
    return METRIC_RANGE.get(metric, (0.0, 1.0))[1] is None


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is a better model (AUC, R², F1) or a worse one (log loss, RMSE, MAE,
    deviances; XGBoost's ``tweedie-nloglik@<power>`` too)."""
    return metric not in _LOWER_IS_BETTER and not metric.startswith("tweedie-nloglik@")


def label(metric: str) -> str:
    """How ``metric`` reads in a sentence: ``auc`` -> ``AUC``, ``macro_f1`` -> ``macro F1``, ``accuracy`` as is."""
    return _LABELS.get(metric, metric)


def improvement(metric: str, challenger: float, champion: float) -> float:
    """How much better ``challenger`` is than ``champion`` in ``metric``'s direction (negative: worse)."""
    return challenger - champion if higher_is_better(metric) else champion - challenger


def reaches(metric: str, value: float, floor: float) -> bool:
    """Whether ``value`` is at least as good as ``floor`` in ``metric``'s direction."""
    return value >= floor if higher_is_better(metric) else value <= floor


def primary_metrics(problem_type: str, loss: str = SQUARED_ERROR) -> Tuple[str, ...]:
    """The metrics a ``problem_type`` model trained on ``loss`` may be judged on: its type's, and for a regression
    loss other than squared error that loss's deviance (a squared-error model may predict 0 or less, where a deviance
    is undefined)."""
    deviance = deviance_metric(problem_type, loss)
    return PRIMARY_METRICS[problem_type] + ((deviance,) if deviance else ())


def primary_metric_problem(problem_type: str, metric: Optional[str], loss: str = SQUARED_ERROR) -> Optional[str]:
    """Why ``metric`` cannot be the primary metric of a ``problem_type`` model trained on ``loss`` (None when it can,
    or is unset)."""
    if problem_type not in PROBLEM_TYPES:
        return f"problem_type {problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}"
    allowed = primary_metrics(problem_type, loss if loss in LOSSES else SQUARED_ERROR)
    if metric is None or metric in allowed:
        return None
    owner = next((name for name, deviance in DEVIANCE_METRICS.items() if deviance == metric), None)
    if problem_type == REGRESSION and owner:
        return (f"{metric!r} is the deviance of loss {owner}, and this model trains on {loss}: set loss: {owner} "
                f"or pick one of {', '.join(allowed)}")
    return f"{metric!r} is not a metric of a {problem_type} model; allowed: {', '.join(allowed)}"


def xgboost_objective(problem_type: str, loss: str = SQUARED_ERROR) -> str:
    """The XGBoost objective of a ``problem_type`` model trained on ``loss`` (a classifier's loss is its type's)."""
    return _LOSS_OBJECTIVE[loss] if problem_type == REGRESSION else XGBOOST_OBJECTIVE[problem_type]


def xgboost_eval_metrics(problem_type: str, loss: str = SQUARED_ERROR,
                         tweedie_variance_power: Optional[float] = None) -> Tuple[str, ...]:
    """XGBoost's evaluation metrics of such a model, the last the one training stops early on: a regression loss
    other than squared error stops on its own (negative log-likelihood or deviance), not on RMSE."""
    metrics = XGBOOST_EVAL_METRICS[problem_type]
    if problem_type != REGRESSION or loss not in _XGBOOST_LOSS_METRIC:
        return metrics
    power = DEFAULT_TWEEDIE_POWER if tweedie_variance_power is None else tweedie_variance_power
    return metrics + (_XGBOOST_LOSS_METRIC[loss].format(power=power),)


def deviance_metric(problem_type: str, loss: str = SQUARED_ERROR) -> Optional[str]:
    """The report's name of the mean deviance a ``problem_type`` model trained on ``loss`` adds (None: none)."""
    return DEVIANCE_METRICS.get(loss) if problem_type == REGRESSION else None


def loss_problem(problem_type: str, loss: str, tweedie_variance_power: Optional[float], target: str,
                 target_min: Optional[float]) -> Optional[str]:
    """Why a ``problem_type`` model cannot train on ``loss`` (and ``tweedie_variance_power``) with a target column
    ``target`` declared ``min: target_min`` (None: undeclared); None when it can. The message names the field."""
    if loss not in LOSSES:
        return f"loss: {loss!r} is not one of {', '.join(LOSSES)}"
    if loss != SQUARED_ERROR and problem_type != REGRESSION:
        return (f"loss: {loss} applies to {REGRESSION} models only (this one is {problem_type}, whose loss is its "
                f"type's); remove it")
    if tweedie_variance_power is not None:
        if loss != TWEEDIE:
            return f"tweedie_variance_power: applies to loss tweedie only (this model's loss is {loss}); remove it"
        if isinstance(tweedie_variance_power, bool) or not isinstance(tweedie_variance_power, (int, float)) or not (
                1.0 < tweedie_variance_power < 2.0):
            return (f"tweedie_variance_power: {tweedie_variance_power!r} must be a number strictly between 1 and 2 "
                    f"(1 is loss poisson, 2 is loss gamma); default {DEFAULT_TWEEDIE_POWER:g}")
    if loss == SQUARED_ERROR:
        return None
    positive = loss == GAMMA
    if target_min is None:
        return (f"loss: {loss} needs a target that is never negative{' or 0' if positive else ''}, and the dataset "
                f"declares no min for {target!r}: declare its column's min ({'a positive value' if positive else 'min: 0'}"
                f") so the ETL quarantines labels outside it")
    if positive and target_min <= 0:
        return (f"loss: gamma needs a target whose declared min is above 0, and {target!r} declares min: {target_min:g}; "
                f"for a target that can be 0 use loss: tweedie or poisson" + (", for one that can be negative loss: squared_error"
                                                                            if target_min < 0 else ""))
    if not positive and target_min < 0:
        return (f"loss: {loss} needs a target whose declared min is 0 or more, and {target!r} declares min: "
                f"{target_min:g}; for a target that can be negative use loss: squared_error")
    return None


def quality_floor(problem_type: str, metric: str, min_quality: Optional[float]) -> Optional[float]:
    """The primary metric's floor the gate checks besides ``min_auc``: the model's ``min_quality``; for a
    regression model with R² as its primary metric and no ``min_quality``, :data:`DEFAULT_REGRESSION_FLOOR`."""
    if min_quality is not None:
        return float(min_quality)
    if problem_type == REGRESSION and metric == "r2":
        return DEFAULT_REGRESSION_FLOOR
    return None

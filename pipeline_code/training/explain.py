"""Feature attributions: SHAP values per feature, averaged into a ranking.

* **XGBoost models**: TreeSHAP (xgboost ``pred_contribs=True``), exact.
* **PyTorch models** (the tabular network): Shapley values estimated by permutation sampling
  (Štrumbelj and Kononenko, "Explaining prediction models and individual predictions with feature
  contributions", 2014) against a background sample of the same frame: for each explained row,
  ``permutations`` times, a background row is drawn and the row's features are switched in from it
  one at a time in a random order (every other order is the previous one reversed, which halves the
  variance); each feature gets the change of the margin its switch caused. The estimate is unbiased
  for the interventional Shapley values, and per row the contributions plus the bias (the background's
  mean margin) add up to the row's margin exactly. A feature is its stored encoding as a whole (a
  numeric value with its missing flag; a category's embedding). It runs on the numpy network, so it
  needs no torch and no explainer library in the evaluation image.

For every row the values are in margin units (log-odds for classifiers, the target's units for
regression; the log of the predicted mean for one trained on a count or amount loss), in both methods, so the
rankings of an XGBoost champion and a PyTorch challenger compare.
The report holds the mean absolute SHAP value per feature and the resulting ranking - what the
explainability report and the attribution-drift monitor compare. Attributions are computed on a seeded
sample of at most ``max_rows`` rows (the mean |SHAP| ranking is stable at a few thousand rows).

A multiclass model has one margin per class: a feature's attribution is the sum over the classes of its
absolute SHAP values (how much it moves the class scores in all), the signed mean is over rows and classes.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from pipeline_code.core import problem
from pipeline_code.training.metrics import sample_indices
from pipeline_code.core.frameworks import PYTORCH, XGBOOST
from pipeline_code.training.model_io import TrainedModel, network_inputs, to_dmatrix
from pipeline_code.training.network import Inputs, TabularNetwork

DEFAULT_MAX_ROWS = 2_000
# Permutations per explained row for the sampled Shapley values of a network (an even number: antithetic
# pairs), and the background rows they draw from.
DEFAULT_PERMUTATIONS = 32
DEFAULT_BACKGROUND_ROWS = 256
_METHODS = {XGBOOST: "TreeSHAP (xgboost pred_contribs)",
            PYTORCH: f"sampled Shapley values ({DEFAULT_PERMUTATIONS} antithetic permutations per row, "
                     f"background: up to {DEFAULT_BACKGROUND_ROWS} rows of the same data)"}
_UNITS = {problem.BINARY: "log-odds (margin)", problem.MULTICLASS: "log-odds (margin), summed over the classes",
          problem.REGRESSION: "target units"}


def shap_values(model: TrainedModel, frame: pd.DataFrame, *, background: Optional[pd.DataFrame] = None, seed: int = 0) -> np.ndarray:
    """(rows, features + 1) SHAP contributions - (rows, classes, features + 1) for a multiclass model; the last
    column is the bias (expected margin). ``background`` (a network's reference rows) defaults to ``frame``."""
    if model.framework == PYTORCH:
        reference = frame if background is None else background
        rows = sample_indices(len(reference), DEFAULT_BACKGROUND_ROWS, seed + 1)
        return sampled_shapley(model.estimator, network_inputs(model, frame), network_inputs(model, reference.iloc[rows]),
                               model.feature_names, seed=seed)
    return model.estimator.predict(to_dmatrix(model, frame), pred_contribs=True, validate_features=True)


def sampled_shapley(network: TabularNetwork, inputs: Inputs, background: Inputs, features: List[str], *,
                    permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0) -> np.ndarray:
    """Shapley values of ``network``'s margin for each row of ``inputs`` by permutation sampling (see the module
    docstring), laid out as TreeSHAP's: (rows, [classes,] len(features) + 1), the bias last."""
    rows = len(inputs)
    if rows == 0 or len(background) == 0:
        width = (network.outputs,) if network.outputs > 1 else ()
        return np.zeros((rows, *width, len(features) + 1))
    columns = [("numeric", network.numeric.index(f)) if f in network.numeric else ("categorical", network.categorical.index(f))
               for f in features]
    rng = np.random.default_rng(seed)
    total = None
    bias = None
    order = np.arange(len(features))
    for m in range(permutations):
        if m % 2 == 0:
            order = rng.permutation(len(features))
            drawn = background.take(rng.integers(0, len(background), size=rows))
        else:
            order = order[::-1]  # the antithetic partner: same background rows, reversed order
        numeric, categorical = drawn.numeric.copy(), drawn.categorical.copy()
        previous = network.margin(Inputs(numeric, categorical)).astype(np.float64)
        if total is None:
            total = np.zeros((len(features), *previous.shape))
            bias = np.zeros(previous.shape)
        bias += previous
        for f in order:
            kind, j = columns[f]
            if kind == "numeric":
                numeric[:, j] = inputs.numeric[:, j]
            else:
                categorical[:, j] = inputs.categorical[:, j]
            current = network.margin(Inputs(numeric, categorical)).astype(np.float64)
            total[f] += current - previous
            previous = current
    phi = np.moveaxis(total / permutations, 0, -1)  # (rows, [classes,] features)
    return np.concatenate([phi, (bias / permutations)[..., None]], axis=-1)


def units(model: TrainedModel) -> str:
    """What a model's attributions are measured in: its margin's units, which for a regression model trained on a count
    or amount loss (poisson, tweedie, gamma: a log link) are the log of the predicted mean, not the target's units."""
    loss = (model.metadata.get("training") or {}).get("loss", problem.SQUARED_ERROR)
    if model.problem_type == problem.REGRESSION and loss != problem.SQUARED_ERROR:
        return "log of the predicted mean (margin)"
    return _UNITS.get(model.problem_type, _UNITS[problem.BINARY])


def attributions(model: TrainedModel, frame: pd.DataFrame, *, max_rows: int = DEFAULT_MAX_ROWS, seed: int = 0) -> Dict[str, Any]:
    """Mean |SHAP| per feature (margin units) and the ranking, on a seeded sample of ``frame``."""
    rows = sample_indices(len(frame), max_rows, seed)
    sample = frame.iloc[rows]
    contributions = shap_values(model, sample, background=frame, seed=seed).astype(np.float64)
    names = model.feature_names
    if contributions.ndim == 3:  # multiclass: (rows, classes, features + 1)
        per_feature = np.abs(contributions[:, :, : len(names)]).sum(axis=1)
        signed = contributions[:, :, : len(names)].mean(axis=1)
        bias = contributions[:, :, -1].mean(axis=1)
    else:
        per_feature, signed, bias = np.abs(contributions[:, : len(names)]), contributions[:, : len(names)], contributions[:, -1]
    mean_abs = per_feature.mean(axis=0) if len(sample) else np.zeros(len(names))
    mean_signed = signed.mean(axis=0) if len(sample) else np.zeros(len(names))
    order = sorted(range(len(names)), key=lambda i: (-mean_abs[i], names[i]))
    total = float(mean_abs.sum())
    features = {
        names[i]: {
            "mean_abs_shap": float(mean_abs[i]),
            "mean_shap": float(mean_signed[i]),
            "share": float(mean_abs[i] / total) if total else 0.0,
            "rank": rank + 1,
        }
        for rank, i in enumerate(order)
    }
    return {
        "method": _METHODS.get(model.framework, _METHODS[XGBOOST]),
        "units": units(model),
        "rows": int(len(sample)),
        "rows_available": int(len(frame)),
        "sample_seed": seed,
        "expected_value": float(bias.mean()) if len(sample) else None,
        "features": features,
        "ranking": [names[i] for i in order],
    }

"""The building blocks of the sample-data simulators: named random streams and the draws they share.

Every draw comes from a numpy generator keyed by the variable's name (:class:`Streams`), so changing how
one column is sampled never reshuffles another; categories are drawn by inverse CDF of one uniform per
row, so a category mix moves smoothly with ``drift``; labels are Bernoulli draws of a logistic model on
one fixed uniform per row, so concept drift flips only the labels near the decision edge.
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np

from pipeline_code.sample_data import from_schema


class Streams:
    """One independent numpy Generator per named variable, all derived from ``seed``.

    Keying streams by name (not by draw order) keeps each column's draws stable
    when another column's sampling changes, e.g. a Poisson whose mean depends on
    ``drift`` consumes a variable number of uniforms.
    """

    def __init__(self, seed: int) -> None:
        self._seed = int(seed)

    def get(self, name: str) -> np.random.Generator:
        return from_schema.keyed_stream(self._seed, name)


def mix(reference: Sequence[float], drifted: Sequence[float], weight: float) -> np.ndarray:
    """Probabilities linearly interpolated from ``reference`` (weight 0) to ``drifted`` (1)."""
    probs = (1.0 - weight) * np.asarray(reference, float) + weight * np.asarray(drifted, float)
    return probs / probs.sum()


def category_index(rng: np.random.Generator, n: int, probs: np.ndarray) -> np.ndarray:
    """Sample category indices by inverse CDF of one uniform per row.

    ``probs`` is either one distribution (k,) or one per row (n, k). Inverse-CDF
    sampling on a fixed uniform makes category mixes move smoothly with ``drift``.
    """
    u = rng.random(n)
    cdf = np.cumsum(probs, axis=-1)
    if cdf.ndim == 1:
        idx = np.searchsorted(cdf, u, side="right")
    else:
        idx = (u[:, None] >= cdf).sum(axis=1)
    return np.minimum(idx, probs.shape[-1] - 1)  # guards cdf[-1] == 0.9999999 rounding


def categorical(rng: np.random.Generator, n: int, categories: Sequence[str], probs: np.ndarray) -> np.ndarray:
    """Categories (object array) sampled with :func:`category_index`."""
    return np.asarray(categories, dtype=object)[category_index(rng, n, probs)]


def null_mask(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    return rng.random(n) < rate


def with_nulls(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copy of ``values`` with ``mask`` positions null (NaN for floats, None for objects)."""
    out = values.astype(object if values.dtype == object else float, copy=True)
    out[mask] = None if values.dtype == object else np.nan
    return out


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def labels(rng: np.random.Generator, logit: np.ndarray) -> np.ndarray:
    """Bernoulli draws of sigmoid(logit); one fixed uniform per row so that a change
    of the logit (concept drift) flips only the labels near the decision edge."""
    return (rng.random(logit.shape[0]) < sigmoid(logit)).astype(float)


def interpolate_weights(reference: Dict[str, float], drifted: Dict[str, float], weight: float) -> Dict[str, float]:
    return {k: (1.0 - weight) * reference[k] + weight * drifted[k] for k in reference}


# A dataset simulator: (streams, rows, drift, concept drift) -> every raw column except record id and event time.
Simulator = Callable[[Streams, int, float, float], Dict[str, np.ndarray]]

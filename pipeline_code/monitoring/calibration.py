"""Drift thresholds calibrated to the baseline and the window: when is a PSI more than sampling noise?

A fixed ``PSI > 0.2`` rule ignores the window size. PSI of a window drawn from the training distribution
itself is not 0: on ``k`` bins it is about ``(k - 1) (1/n + 1/m)`` (``n`` window values, ``m`` baseline
values), so 100 requests on 10 bins score 0.09 on average with no drift at all, and a model with 20
features false-alarms in about a third of its quiet windows; on a million requests the same rule misses a
real variance change at PSI 0.19.

The rule here decides per feature with two thresholds and takes the larger:

* **not noise** - the ``1 - alpha`` quantile of the feature's PSI under no drift, at this window's size:
  PSI on bins is Jeffreys' divergence of two multinomial samples, and ``n m / (n + m) * PSI`` tends to a
  chi-square with ``k - 1`` degrees of freedom (``k`` = bins the baseline fills). When a bin expects fewer
  than :data:`MIN_EXPECTED` window values the approximation fails in the tail (the ``1e-4`` smoothing of an
  empty bin dominates), so the quantile is then simulated exactly: baseline and window counts drawn from
  the baseline's own bin shares, the same PSI computed on each draw.
* **material** - the smallest PSI worth acting on (``monitoring.psi_threshold``, per-feature overrides),
  plus the PSI a window of this size shows with no drift at all (its expectation, ``(k - 1) (1/n + 1/m)``):
  PSI measured on a sample overstates the drift by about that much, so without it a small window would
  call a drift material that a large one measures below the line. On large windows the noise threshold
  tends to 0 and this one decides.

``alpha`` is the monitor's false-alarm budget shared out over every test of the window (Bonferroni:
``false_alarm_rate / tests``), so the chance that a window with no drift raises any alarm stays at or
below ``false_alarm_rate`` however many features the model has.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
from scipy import special, stats

from pipeline_code.training.baseline import psi_rows

# A bin expecting fewer window values than this gets the exact simulated null. Not the textbook 5: the
# smoothing of an empty bin puts a heavy tail on PSI that the chi-square misses at the small per-test false-alarm
# rates a many-feature model uses (at 10 expected per bin its 0.1 % quantile is 15 % too low).
MIN_EXPECTED = 25.0
MIN_DRAWS, MAX_DRAWS = 20_000, 100_000
# The most counts one simulated matrix holds at once (draws x bins; 32 MB of float64): a categorical of many levels
# (a postcode's 10,000 in training) at 100,000 draws would take 8 GB a matrix, and the monitor's job would be killed
# for memory. Larger simulations are drawn in chunks of rows; the time still grows with draws x bins (about 3 s per
# 1,000 draws at 10,000 levels).
MAX_CELLS = 4_000_000


@dataclass(frozen=True)
class Threshold:
    """The PSI above which one feature's (or the prediction's) window counts as drifted, and why."""

    value: float
    noise: float
    material: float
    p_value: float
    method: str
    bias: float = 0.0

    def as_dict(self) -> dict:
        return {"threshold": self.value, "noise_threshold": self.noise, "material_threshold": self.material,
                "sampling_bias": self.bias, "p_value": self.p_value, "null": self.method}


def threshold(baseline_counts: Sequence[float], window_rows: int, observed: float, *, alpha: float,
              material: float) -> Threshold:
    """The calibrated threshold of a PSI ``observed`` on ``window_rows`` values against ``baseline_counts``.

    ``alpha``: this test's false-alarm rate (already divided among the window's tests); ``material``: the
    smallest PSI that counts. The simulation is seeded by its inputs, so a report is reproducible.
    """
    counts = np.asarray(baseline_counts, dtype=np.float64)
    m, n = float(counts.sum()), int(window_rows)
    filled = counts[counts > 0]
    if m <= 0 or n <= 0 or len(filled) < 2:  # one bin: no distribution to drift from, only the material rule
        return Threshold(material, 0.0, material, 1.0 if observed <= material else 0.0, "none")
    scale = 1.0 / n + 1.0 / m
    dof = len(filled) - 1
    bias = dof * scale
    if n * filled.min() / m >= MIN_EXPECTED:
        noise = _chi2_isf(alpha, dof) * scale
        # stats.chi2.sf(x, dof) is special.chdtrc(dof, x) behind ~50x its cost in argument checks (a monitor
        # decides one threshold per feature, a calibration check tens of thousands); below 0 (outside the
        # support) sf gives 1.0, chdtrc NaN, so the statistic is floored at 0, where both give 1.0.
        p_value = float(special.chdtrc(dof, max(observed / scale, 0.0)))
        method = "chi-square"
    else:
        null = _simulated_null(tuple(int(c) for c in filled), n, _draws(alpha))
        noise = float(null[min(len(null) - 1, int(math.ceil((1.0 - alpha) * len(null))) - 1)])
        p_value = float((1 + len(null) - np.searchsorted(null, observed, side="left")) / (len(null) + 1))
        method = f"simulated ({len(null)} draws)"
    return Threshold(max(noise, material + bias), noise, material, p_value, method, bias)


@functools.lru_cache(maxsize=256)
def _chi2_isf(alpha: float, dof: int) -> float:
    return float(stats.chi2.isf(alpha, dof))


def _draws(alpha: float) -> int:
    """Enough draws for about 20 beyond the ``1 - alpha`` quantile, within [MIN_DRAWS, MAX_DRAWS]."""
    return int(min(MAX_DRAWS, max(MIN_DRAWS, math.ceil(20.0 / alpha))))


@functools.lru_cache(maxsize=64)
def _simulated_null(filled: Tuple[int, ...], rows: int, draws: int) -> np.ndarray:
    """Sorted PSIs of ``draws`` no-drift (baseline, window) pairs drawn from the baseline's own bin shares.

    Both sides are drawn: the baseline is a sample of the training data too. Cached: features binned on
    their deciles often share a baseline, and a window's tests share its size.
    """
    counts = np.asarray(filled, dtype=np.float64)
    rng = np.random.default_rng([zlib.crc32(counts.tobytes()), rows, draws])
    shares = counts / counts.sum()
    chunk = max(1, MAX_CELLS // len(counts))
    # psi_rows takes the integer counts as they are (a float copy of each matrix would give the same shares).
    if draws <= chunk:
        null = psi_rows(rng.multinomial(int(counts.sum()), shares, size=draws),
                        rng.multinomial(rows, shares, size=draws))
    else:  # many bins: the same draws, a chunk of rows at a time (MAX_CELLS)
        null = np.concatenate([
            psi_rows(rng.multinomial(int(counts.sum()), shares, size=size), rng.multinomial(rows, shares, size=size))
            for size in (min(chunk, draws - start) for start in range(0, draws, chunk))
        ])
    null.sort()
    null.setflags(write=False)
    return null

"""Plausible raw data for any catalog dataset, simulated from its schema alone.

The hand-written simulators in :mod:`pipeline_code.sample_data.generate` encode
domain knowledge (churn follows contracts, defaults follow loan-to-income). A
newly declared dataset has none yet, but its schema already says a lot: types,
ranges, allowed categories, nullability, which columns are labels and which
columns the features read. :func:`simulate` turns that into data with the same
value conventions as the hand-written simulators, so the new dataset can go
through ETL, feature ingestion, training and monitoring before real data exists.

What is simulated, column by column (record identifier and event time excluded:
the caller adds them):

* **numbers** come from a standard-normal *latent score* per row mapped through a
  shape chosen by the bounds: a logit-normal hump inside ``[minimum, maximum]``
  (on a log scale when the range spans more than two decades above a non-negative
  floor, as amounts and counts do), a log-normal tail above a lone ``minimum``
  (mirrored below a lone ``maximum``), a normal without bounds. Integers are
  whole numbers; doubles keep six significant digits. Bounds are inclusive and
  always respected.
* **booleans** are true above a seeded cut of a latent score (an uneven share that
  drift moves);
* **strings** with ``allowed`` take those values with uneven, seeded
  probabilities; without ``allowed`` they take readable tokens ``<column>-<k>``
  from a small vocabulary.
* **timestamps** fall inside :data:`TIMESTAMP_START` + :data:`TIMESTAMP_DAYS`
  days, as naive UTC ``datetime64[s]`` (``NaT`` for nulls).
* **dates** are ages of up to :data:`DATE_DAYS` days, driven by a latent score like a number:
  the generator places each before its record's event time (``days_since`` of it is the age).
* **nulls**: :data:`NULL_RATE` of the rows of every nullable input column;
  never in a ``nullable=False`` column, and never in a label (see below).
* **labels** follow a seeded random linear "true model" of the inputs the
  features read (see :func:`simulate`), so a model trained on the features has
  something to learn.

Every column draws from its own named stream (``"<dataset>.<column>"`` and
``"<dataset>.<column>:<purpose>"``), so adding, removing or reshaping a column
leaves the other columns' values unchanged. What defines the dataset's *world* - each column's shape,
category mix and drift direction, the true model's coefficients - is drawn from streams of a fixed seed
(:class:`_World`); only the rows depend on the run's seed. Two runs with different seeds are two samples
of one world, so a model trained on one is fairly judged on the other's frozen test set.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from pipeline_code import catalog


class StreamSource(Protocol):
    """Anything with ``get(name) -> numpy Generator``, e.g. ``streams.Streams``.

    ``get`` must be a pure function of ``name`` (and the caller's seed): every call
    returns a fresh generator in the same state. Streams are looked up by name, so
    the order in which they are asked for does not matter.
    """

    def get(self, name: str) -> np.random.Generator: ...  # pragma: no cover


# Share of rows left null in every nullable input column.
NULL_RATE = 0.03

# Window for timestamp columns other than the event time. The schema says nothing
# about when such a column happens, so a fixed two-year window keeps values
# plausible (recent, in the past) and reproducible.
TIMESTAMP_START = np.datetime64("2025-01-01T00:00:00", "s")
TIMESTAMP_DAYS = 730
# A date column is drawn as an age: whole days before its record's event time, 0 to DATE_DAYS (about 20 years), driven by
# the column's latent score (so days_since of it carries signal). The simulator returns the ages (timedelta64[D]);
# the generator turns them into dates once the event times are drawn (:func:`dates_before`).
DATE_DAYS = 7300

# Standard deviation of the true model's logit (binary and multiclass labels) at
# the reference distribution: ~1.5 gives a ROC AUC around 0.8 for a model that
# recovers it — clearly learnable, far from trivially separable.
SIGNAL_STRENGTH = 1.5

# Correlation between a regression label's latent score and the true model's
# signal; the rest is independent noise.
REGRESSION_SIGNAL_CORRELATION = 0.8

# Rows of the reference sample the label model is calibrated on. Calibrating on a
# sample of fixed size, drawn from its own streams, makes the true model a property
# of (dataset, seed, concept_drift) alone: it does not depend on n or on drift.
_CALIBRATION_ROWS = 100_000

_VOCABULARY_SIZES = (3, 8)  # inclusive range of the token vocabulary of a free string column
_SIGNIFICANT_DIGITS = 6
_SECONDS_PER_DAY = 86_400


def simulate(
    dataset: catalog.Dataset,
    streams: StreamSource,
    n: int,
    drift: float,
    concept_drift: float,
    *,
    positive_rate: float = 0.2,
    signal_features: Optional[Sequence[str]] = None,
) -> Dict[str, np.ndarray]:
    """Simulate ``n`` rows of every column of ``dataset`` except its record id and event time.

    Args:
        dataset: the catalog declaration; only its schema is used.
        streams: source of named, seeded numpy generators (``streams.Streams``).
        n: number of rows (>= 0).
        drift: input-distribution shift in [0, 1]. Each numeric column's latent
            score moves by ``drift`` standard deviations in a seeded direction
            (values then still respect the bounds); each category mix moves
            linearly towards another mix (the reference probabilities rotated by
            one category). 0 is the reference distribution.
        concept_drift: label-relationship change in [0, 1]: the true model's
            coefficients are blended from the reference vector (0) towards an
            independent seeded vector (1). Inputs are identical whatever its value.
        positive_rate: expected share of 1s of binary labels at the reference
            input distribution (default 0.2), for any ``concept_drift``; it
            moves with input drift, as a real prior shift would. Must be in (0, 1).
        signal_features: the features whose source columns the true model reads (default:
            every feature's); see :func:`_model_inputs`.

    Returns:
        Column name -> numpy array of length ``n``, in catalog order, in the
        conventions of ``generate._typed_frame``: integer and double columns as
        float arrays (NaN = null; integers hold whole numbers), strings as
        object arrays (None = null), timestamps as ``datetime64[s]`` (NaT = null).

    Labels, by schema:

    * boolean, or integer with ``minimum=0, maximum=1``: binary 0/1 from a logistic model whose
      intercept is solved (bracketed Newton search) so the positive rate is
      ``positive_rate``, on rare events (2 %) as on common ones;
    * string: multiclass over ``allowed`` (or generated tokens) from a softmax of
      one logit per class; class shares are uneven and seeded, every class keeps
      at least a 1/(2K) share at the reference distribution;
    * any other integer or double: regression, a latent score correlated
      :data:`REGRESSION_SIGNAL_CORRELATION` with the signal, mapped into the
      column's range like an input of the same schema;
    * timestamp labels are refused (ValueError).

    The true model reads the inputs the dataset's features read (all inputs when
    no feature reads any): each numeric input through its standardized latent
    score, each string input through one seeded effect per category (nulls count:
    the value existed, it was just not recorded). Labels are never null, even in
    a nullable label column: a training set needs its labels.

    Raises:
        ValueError: an argument out of range, a timestamp label, or a numeric
            column whose bounds leave no possible value.
    """
    _validate(n, drift, concept_drift, positive_rate)
    if not callable(getattr(streams, "get", None)):
        raise ValueError("streams must have a get(name) -> numpy.random.Generator method")
    streams = _World(streams)
    keys = {dataset.record_identifier, dataset.event_time}
    labels = set(dataset.labels)
    for name in dataset.labels:
        if dataset.column(name).dtype == catalog.TIMESTAMP:
            raise ValueError(f"dataset {dataset.name!r}: cannot simulate timestamp label {name!r}")

    out: Dict[str, np.ndarray] = {}
    drivers: Dict[str, _Driver] = {}
    for column in dataset.columns:
        if column.name in keys or column.name in labels:
            continue
        out[column.name], driver = _input_column(dataset.name, column, streams, n, drift)
        if driver is not None:
            drivers[column.name] = driver

    model_inputs = _model_inputs(dataset, drivers, signal_features)
    for name in dataset.labels:
        out[name] = _label_column(
            dataset.name, dataset.column(name), model_inputs, streams, n, concept_drift, positive_rate
        )
    return {c.name: out[c.name] for c in dataset.columns if c.name in out}


def keyed_stream(seed: int, name: str) -> np.random.Generator:
    """The generator of stream ``name`` under ``seed``: keyed by name, not by draw order, so each column's draws stay
    stable when another column's sampling changes (crc32, not Python's per-process salted ``hash``)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8"))]))


class _World:
    """A :class:`StreamSource` that answers the world-defining streams (names holding one of :data:`TAGS`) from a
    fixed seed and every other stream (the rows) from the run's ``streams``.

    The fixed seed is 0, and the streams are keyed like every other (:func:`keyed_stream`): at seed 0 both agree.
    """

    TAGS = (":shape", ":shares", ":truth", ":calibration")
    SEED = 0

    def __init__(self, rows: StreamSource) -> None:
        self._rows = rows

    def get(self, name: str) -> np.random.Generator:
        if any(tag in name for tag in self.TAGS):
            return keyed_stream(self.SEED, name)
        return self._rows.get(name)


def _validate(n: int, drift: float, concept_drift: float, positive_rate: float) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    for name, value in (("drift", drift), ("concept_drift", concept_drift)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if not 0.0 <= float(value) <= 1.0:  # also rejects NaN
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    if isinstance(positive_rate, bool) or not isinstance(positive_rate, (int, float, np.integer, np.floating)):
        raise ValueError(f"positive_rate must be a number in (0, 1), got {positive_rate!r}")
    if not 0.0 < float(positive_rate) < 1.0:
        raise ValueError(f"positive_rate must be in (0, 1), got {positive_rate!r}")


@dataclass(frozen=True)
class _Driver:
    """What the label model sees of one input column, row by row.

    Numeric inputs expose their latent score (standard normal at the reference
    distribution, a monotone function of the value); string inputs their category
    codes and the reference probabilities, which the model needs to centre and
    scale category effects and to draw its calibration sample.
    """

    name: str
    latent: Optional[np.ndarray] = None
    codes: Optional[np.ndarray] = None
    reference_probs: Optional[np.ndarray] = None

    @property
    def is_numeric(self) -> bool:
        return self.latent is not None


def _input_column(
    dataset_name: str, column: catalog.Column, streams: StreamSource, n: int, drift: float
) -> Tuple[np.ndarray, Optional[_Driver]]:
    """One input column's values and what the label model reads of it (None for timestamps)."""
    stream = f"{dataset_name}.{column.name}"
    shape = streams.get(f"{stream}:shape")
    nulls = streams.get(f"{stream}:null").random(n) < NULL_RATE if column.nullable else np.zeros(n, dtype=bool)

    if column.dtype == catalog.STRING:
        categories = _categories(column, shape)
        reference = _uneven_probs(shape, len(categories))
        # Rolling the mix by one category moves mass onto different categories for
        # any uneven mix, so drift always changes the distribution.
        probs = (1.0 - drift) * reference + drift * np.roll(reference, 1)
        codes = _category_codes(streams.get(stream).random(n), probs)
        values = np.asarray(categories, dtype=object)[codes]
        values[nulls] = None
        return values, _Driver(column.name, codes=codes, reference_probs=reference)

    # A seeded direction per column: under drift some columns rise, others fall.
    direction = 1.0 if shape.random() < 0.5 else -1.0
    latent = streams.get(stream).standard_normal(n) + direction * drift
    if column.dtype == catalog.TIMESTAMP:
        return _timestamps(latent, shape, nulls), None
    if column.dtype == catalog.DATE:
        center = shape.uniform(-0.5, 0.5)
        ages = np.floor(_sigmoid(center + shape.uniform(0.6, 1.0) * latent) * DATE_DAYS).astype("int64")
        values = ages.astype("timedelta64[D]")
        values[nulls] = np.timedelta64("NaT")
        return values, _Driver(column.name, latent=latent)
    if column.dtype == catalog.BOOLEAN:
        # True above a seeded cut of the latent score: an uneven share that drift moves.
        values = (latent > shape.normal(0.0, 0.7)).astype(float)
        values[nulls] = np.nan
        return values, _Driver(column.name, latent=latent)
    values = _numeric_values(column, latent, shape)
    values[nulls] = np.nan
    return values, _Driver(column.name, latent=latent)


def _categories(column: catalog.Column, shape: np.random.Generator) -> List[str]:
    if column.allowed:
        return list(column.allowed)
    size = int(shape.integers(_VOCABULARY_SIZES[0], _VOCABULARY_SIZES[1] + 1))
    return [f"{column.name}-{k}" for k in range(1, size + 1)]


def _uneven_probs(rng: np.random.Generator, k: int) -> np.ndarray:
    """Seeded, uneven probabilities over ``k`` categories, each at least 1/(2k).

    Half the mass is a Dirichlet draw (uneven), half is spread evenly so that no
    category is so rare that small samples miss it entirely.
    """
    return 0.5 / k + 0.5 * rng.dirichlet(np.full(k, 2.0))


def _category_codes(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Category index per row by inverse CDF of one uniform per row.

    ``probs`` is one distribution (k,) or one per row (k, n). A fixed uniform per
    row makes the drawn category move smoothly as the probabilities change (drift,
    concept drift) instead of being redrawn.
    """
    cdf = np.cumsum(probs, axis=0)
    if cdf.ndim == 1:
        idx = np.searchsorted(cdf, u, side="right")
    else:
        idx = (u[None, :] >= cdf).sum(axis=0)
    return np.minimum(idx, probs.shape[0] - 1)  # guards cdf[-1] == 0.9999999 rounding


def _numeric_values(column: catalog.Column, latent: np.ndarray, shape: np.random.Generator) -> np.ndarray:
    """Map latent scores to plausible values of a numeric column (float array, no nulls).

    The map is increasing in the latent score, so the label model's use of the
    latent is a monotone function of the observed value.
    """
    lo, hi = column.minimum, column.maximum
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"column {column.name!r}: minimum {lo} > maximum {hi}")
    lo_ok = -np.inf if lo is None else (float(np.ceil(lo)) if column.dtype == catalog.INTEGER else float(lo))
    hi_ok = np.inf if hi is None else (float(np.floor(hi)) if column.dtype == catalog.INTEGER else float(hi))
    if lo_ok > hi_ok:
        raise ValueError(f"column {column.name!r}: no whole number in [{lo}, {hi}]")

    # Drawn unconditionally so every bounds case consumes the shape stream alike.
    center = shape.uniform(-0.5, 0.5)
    spread = shape.uniform(0.6, 1.0)
    magnitude = 10.0 ** shape.uniform(0.5, 2.5)
    if lo is not None and hi is not None:
        u = _sigmoid(center + spread * latent)  # logit-normal: a hump inside (0, 1)
        span = float(hi) - float(lo)
        if lo >= 0 and hi > 100.0 * max(float(lo), 1.0):
            # Ranges spanning decades (amounts, counts) put most values near the floor.
            values = lo + np.expm1(u * np.log1p(span))
        else:
            values = lo + span * u
    elif lo is not None:
        values = lo + magnitude * np.exp(spread * latent)  # log-normal tail above the floor
    elif hi is not None:
        values = hi - magnitude * np.exp(-spread * latent)
    else:
        values = magnitude * (4.0 * center + latent)  # normal, mean within +-2 sd of 0

    if column.dtype == catalog.INTEGER:
        values = np.round(values)
    else:
        values = _round_significant(values, _SIGNIFICANT_DIGITS)
    # Rounding can step just past a bound; clipping after it keeps bounds inclusive.
    return np.clip(values, lo_ok, hi_ok).astype(float)


def _round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """Round to ``digits`` significant digits, so doubles render as short text in CSV."""
    magnitude = np.abs(values)
    exponent = np.floor(np.log10(np.where(magnitude > 0, magnitude, 1.0)))
    scale = 10.0 ** (digits - 1 - exponent)
    return np.round(values * scale) / scale


def dates_before(ages: np.ndarray, event_times: np.ndarray) -> np.ndarray:
    """The dates ``ages`` (timedelta64 days, NaT = null) before each record's event time's UTC day, as
    ``datetime.date`` objects (None = null): a date column as the curated data holds it."""
    days = np.asarray(event_times).astype("datetime64[D]") - np.asarray(ages).astype("timedelta64[D]")
    return np.asarray([None if np.isnat(day) else day.astype(object) for day in days], dtype=object)


def _timestamps(latent: np.ndarray, shape: np.random.Generator, nulls: np.ndarray) -> np.ndarray:
    center = shape.uniform(-0.5, 0.5)
    spread = shape.uniform(0.6, 1.0)
    window = TIMESTAMP_DAYS * _SECONDS_PER_DAY - 1
    seconds = np.floor(_sigmoid(center + spread * latent) * window).astype("int64")
    values = TIMESTAMP_START + seconds.astype("timedelta64[s]")
    values[nulls] = np.datetime64("NaT")
    return values


def _model_inputs(dataset: catalog.Dataset, drivers: Dict[str, _Driver],
                  signal_features: Optional[Sequence[str]] = None) -> List[_Driver]:
    """The inputs the true model reads: those the features read (only ``signal_features``, when given), else
    all of them.

    A signal carried by a column no feature reads could not be learnt from the
    feature store, so the features decide what matters.
    """
    features = [f for f in dataset.features if signal_features is None or f.name in signal_features]
    read = {source for feature in features for source in feature.expr.source_columns()}
    chosen = [d for name, d in drivers.items() if name in read]
    return chosen or list(drivers.values())


def _label_column(
    dataset_name: str,
    column: catalog.Column,
    inputs: Sequence[_Driver],
    streams: StreamSource,
    n: int,
    concept_drift: float,
    positive_rate: float,
) -> np.ndarray:
    stream = f"{dataset_name}.{column.name}"
    if column.dtype == catalog.STRING:
        classes = _categories(column, streams.get(f"{stream}:shape"))
        model = _TrueModel(dataset_name, column.name, inputs, streams, n, len(classes), concept_drift)
        codes = _multiclass(model, streams, stream, n, _uneven_probs(streams.get(f"{stream}:shares"), len(classes)))
        return np.asarray(classes, dtype=object)[codes]

    model = _TrueModel(dataset_name, column.name, inputs, streams, n, 1, concept_drift)
    if catalog.target_problem(column) is None:  # a binary target
        intercept = _solve_intercept(SIGNAL_STRENGTH * model.calibration_signal()[0], positive_rate)
        p = _sigmoid(intercept + SIGNAL_STRENGTH * model.signal()[0])
        # One fixed uniform per row: concept drift flips only labels near the edge.
        return (streams.get(stream).random(n) < p).astype(float)

    rho = REGRESSION_SIGNAL_CORRELATION
    latent = rho * model.signal()[0] + np.sqrt(1.0 - rho * rho) * streams.get(f"{stream}:noise").standard_normal(n)
    return _numeric_values(column, latent, streams.get(f"{stream}:shape"))


class _TrueModel:
    """Seeded linear scores of the inputs, one per output (1, or one per class).

    Coefficients: one standard-normal weight per (output, numeric input) and one
    standard-normal effect per (output, category) of a string input, drawn from a
    stream per (label, input) so that a new input adds a term without redrawing
    the others. ``concept_drift`` blends them towards a second, independent set.

    Each output's score is centred and scaled to unit variance at the reference
    input distribution, analytically (numeric latents are independent standard
    normals; category effects are centred on and scaled by their mean and
    variance under the reference mix), so the signal strength does not depend on
    how many inputs a dataset has, and input drift shows up as a shift in it.
    """

    def __init__(
        self,
        dataset_name: str,
        label: str,
        inputs: Sequence[_Driver],
        streams: StreamSource,
        n: int,
        outputs: int,
        concept_drift: float,
    ) -> None:
        self._inputs = list(inputs)
        self._n = n
        self._streams = streams
        self._dataset_name = dataset_name
        self._outputs = outputs
        self._weights: List[np.ndarray] = []
        variance = np.zeros(outputs)
        for driver in self._inputs:
            size = (outputs,) if driver.is_numeric else (outputs, len(driver.reference_probs))
            reference = streams.get(f"{dataset_name}.{label}:truth:{driver.name}").standard_normal(size)
            drifted = streams.get(f"{dataset_name}.{label}:truth-drifted:{driver.name}").standard_normal(size)
            weights = (1.0 - concept_drift) * reference + concept_drift * drifted
            if driver.is_numeric:
                variance += weights**2
            else:
                weights = weights - (weights @ driver.reference_probs)[:, None]  # mean 0 under the reference mix
                variance += (weights**2) @ driver.reference_probs
            self._weights.append(weights)
        # An output without inputs (or with all-zero weights) has no signal at all.
        self._scale = np.where(variance > 0, 1.0 / np.sqrt(np.where(variance > 0, variance, 1.0)), 0.0)

    def signal(self) -> np.ndarray:
        """(outputs, n) unit-variance scores of the simulated rows."""
        return self._score([(d.latent if d.is_numeric else d.codes) for d in self._inputs], self._n)

    def calibration_signal(self) -> np.ndarray:
        """(outputs, _CALIBRATION_ROWS) scores of a fresh sample of the reference distribution."""
        values = []
        for driver in self._inputs:
            rng = self._streams.get(f"{self._dataset_name}.{driver.name}:calibration")
            if driver.is_numeric:
                values.append(rng.standard_normal(_CALIBRATION_ROWS))
            else:
                values.append(_category_codes(rng.random(_CALIBRATION_ROWS), driver.reference_probs))
        return self._score(values, _CALIBRATION_ROWS)

    def _score(self, values: Sequence[np.ndarray], rows: int) -> np.ndarray:
        total = np.zeros((self._outputs, rows))
        for driver, weights, value in zip(self._inputs, self._weights, values):
            total += weights[:, None] * value[None, :] if driver.is_numeric else weights[:, value]
        return total * self._scale[:, None]


def _solve_intercept(scores: np.ndarray, rate: float) -> float:
    """Intercept ``b`` with mean(sigmoid(b + scores)) == ``rate``.

    The mean is increasing in ``b``, so a bracket [lo, hi] around the root shrinks
    with every evaluation, as in bisection; the next guess is the Newton step when
    it falls inside the bracket (a handful of steps suffice) and the midpoint when
    it does not, so the search cannot diverge whatever the rate (2 % or 98 %).
    At +-40 the mean is 0 or 1 for any score of a unit-variance signal.
    """
    lo, hi = -40.0, 40.0
    b = float(np.log(rate / (1.0 - rate)))  # exact when there is no signal
    for _ in range(200):
        p = _sigmoid(b + scores)
        gap = float(p.mean()) - rate
        if abs(gap) < 1e-9 or hi - lo < 1e-9:
            break
        if gap > 0:
            hi = b
        else:
            lo = b
        slope = float((p * (1.0 - p)).mean())
        newton = b - gap / slope if slope > 0 else lo - 1.0
        b = newton if lo < newton < hi else 0.5 * (lo + hi)
    return b


def _multiclass(model: _TrueModel, streams: StreamSource, stream: str, n: int, shares: np.ndarray) -> np.ndarray:
    """Class codes drawn from a softmax of one logit per class.

    Intercepts are fitted on the calibration sample so the reference class shares
    are ``shares``: the fixed point ``b += log(target / mean probability)``
    converges quickly for a softmax (each step is a generalised iterative-scaling
    update), typically in a few dozen steps; it stops when no share is off by more
    than one part in a million.
    """
    calibration = SIGNAL_STRENGTH * model.calibration_signal()
    intercepts = np.log(shares)
    for _ in range(200):
        correction = np.log(shares / _softmax(intercepts[:, None] + calibration).mean(axis=1))
        intercepts += correction
        if np.abs(correction).max() < 1e-6:
            break
    probs = _softmax(intercepts[:, None] + SIGNAL_STRENGTH * model.signal())
    return _category_codes(streams.get(stream).random(n), probs)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Column-wise softmax of (classes, rows) logits."""
    shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
    return shifted / shifted.sum(axis=0, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # The tanh form is the logistic function without exp() overflow for large |z|.
    return 0.5 * (1.0 + np.tanh(0.5 * z))

"""What the drift and data-quality checks need from a traffic window, counted one chunk of records at a time.

The monitor decodes capture a block at a time (:mod:`capture_columns`) and hands each chunk here instead of
collecting the window into one frame: every number below is a sum over records (bin counts on the baseline's cut
points, value counts, missing / out-of-range / non-integer counts, sums for means), so a window counted chunk by
chunk gives the statistics of the whole window at once (a test), and memory holds one chunk plus these counts
whatever the window's size.

:func:`pipeline_code.monitoring.drift.data_drift`, ``prediction_drift`` and ``data_quality`` decide on these
counts; given a frame, they count it here first.

One bound on exactness: a text column keeps the counts of at most :data:`MAX_DISTINCT` values besides those the
baseline knows (its levels and allowed values, always counted exactly). Past that, the rarest unknown values are
folded into one count: the unseen *totals* stay exact, only the list of the most frequent unseen values (the
report shows 20) may miss values rarer than the ones kept.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION
from pipeline_code.training.baseline import bin_counts

MAX_DISTINCT = 10_000


def present_text(values: pd.Series) -> pd.Series:
    """The non-missing values as text (a string column as it is: converting it to objects costs more than the
    statistics)."""
    present = values.dropna()
    return present if pd.api.types.is_string_dtype(present.dtype) and present.dtype != object else present.astype(str)


def _arrow_text(column: pd.Series) -> bool:
    """Whether ``column`` is text held by pyarrow (the decoder's text columns), whose counts pyarrow can take."""
    return isinstance(column.dtype, pd.StringDtype) and column.dtype.storage in ("pyarrow", "pyarrow_numpy")


def as_numbers(column: pd.Series) -> np.ndarray:
    """A column as float64 values, anything that is not a number NaN."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


class ColumnCounts:
    """One column's counts: rows and missing values; as numbers (``numeric``): the values, their sum, bin counts
    on ``edges``, values outside ``[low, high]`` and, ``integral``, non-integers; as text (``text``): the count of
    every value (see the module docstring for the bound; ``known`` values are never folded)."""

    def __init__(self, *, numeric: bool = False, text: bool = False, edges: Optional[Sequence[float]] = None,
                 low: Optional[float] = None, high: Optional[float] = None, integral: bool = False,
                 known: Iterable[str] = ()) -> None:
        self.numeric, self.text = numeric, text
        self.edges = np.asarray(edges, dtype=np.float64) if edges is not None else None
        self.low, self.high, self.integral = low, high, integral
        self.known = frozenset(known)
        self.rows = 0
        self.missing = 0
        self.numbers = 0
        self.total = 0.0
        self.bins = np.zeros(len(self.edges) + 1, dtype=np.int64) if self.edges is not None else None
        self.out_of_range = 0
        self.non_integer = 0
        self.values: Dict[str, int] = {}
        self.folded = 0

    @property
    def present(self) -> int:
        return self.rows - self.missing

    def add(self, column: pd.Series) -> None:
        self.rows += int(len(column))
        numbers = column.dtype == np.float64
        if self.numeric:
            values = column.to_numpy() if numbers else as_numbers(column)
            ok = ~np.isnan(values)
            if numbers:  # a number column's missing values are its NaNs: no second pass
                self.missing += int(len(values) - ok.sum())
            values = values[ok]
            self.numbers += int(len(values))
            self.total += float(values.sum())
            if self.bins is not None:
                self.bins += np.asarray(bin_counts(values, self.edges), dtype=np.int64)
            if self.low is not None:
                self.out_of_range += int((values < self.low).sum())
            if self.high is not None:
                self.out_of_range += int((values > self.high).sum())
            if self.integral:
                self.non_integer += int((np.floor(values) != values).sum())
        if self.text and _arrow_text(column):
            # Missing values and the count of every value in one pass of pyarrow's (pandas' dropna, isna and
            # value_counts cost ~1 ms each a call, however few the records: most of a chunked window's counting).
            import pyarrow as pa
            import pyarrow.compute as pc

            values = pa.array(column.array)  # the column's own arrow data, not a copy
            self.missing += int(values.null_count)
            counts = pc.value_counts(values)
            pairs = zip(counts.field(0).to_pylist(), counts.field(1).to_pylist())
            self._count((value, count) for value, count in pairs if value is not None)
        elif self.text:
            if not (self.numeric and numbers):
                self.missing += int(column.isna().sum())
            counts = present_text(column).value_counts(sort=False)
            self._count(zip(counts.index.tolist(), counts.to_numpy().tolist()))
        elif not (self.numeric and numbers):
            self.missing += int(column.isna().sum())

    def _count(self, counts: Iterable[Any]) -> None:
        """Add ``(value, count)`` pairs to the counts of the values (as text)."""
        for value, count in counts:
            key = str(value)
            self.values[key] = self.values.get(key, 0) + int(count)
        if len(self.values) > 2 * MAX_DISTINCT + len(self.known):
            self._fold()

    def _fold(self) -> None:
        unknown = sorted(((c, v) for v, c in self.values.items() if v not in self.known), reverse=True)
        for count, value in unknown[MAX_DISTINCT:]:
            self.folded += count
            del self.values[value]

    def mean(self) -> float:
        return self.total / self.numbers if self.numbers else float("nan")

    def unseen(self, known: Iterable[str]) -> Dict[str, Any]:
        """Counts of the values not in ``known``: ``{"count", "top"}`` (``top``: the 20 most frequent, by count then
        value)."""
        known = set(known)
        others = [(v, c) for v, c in self.values.items() if v not in known]
        top = sorted(others, key=lambda vc: (-vc[1], vc[0]))[:20]
        return {"count": sum(c for _, c in others) + self.folded, "top": dict(top)}


class PredictionCounts:
    """The window's predictions counted against the baseline's (``statistics["prediction"]``): binary and
    regression - bin counts on its cut points, count, sum and (regression) the spread, (binary) how many reach its
    threshold; multiclass - how many rows predicted each class code, and the sums of the class probabilities over
    the rows that carry all of them."""

    def __init__(self, statistics: Mapping[str, Any], problem_type: str, probability_columns: Sequence[str] = ()) -> None:
        prediction = statistics.get("prediction") or {}
        hist = prediction.get("histogram") or {}
        self.problem_type = problem_type
        self.edges = cut_points(hist.get("bin_edges"), "prediction") if problem_type != MULTICLASS else None
        self.threshold = prediction.get("threshold", 0.5)
        self.probability_columns = list(probability_columns)
        self.rows = 0  # non-missing predictions
        self.bins = np.zeros(len(self.edges) + 1, dtype=np.int64) if self.edges is not None else None
        self.total = 0.0
        self.squares = 0.0  # regression: sum of squared deviations from the running mean (Chan et al.)
        self.positives = 0
        self.codes = np.zeros(0, dtype=np.int64)
        self.complete = 0
        self.probability_sums = np.zeros(len(self.probability_columns), dtype=np.float64)

    def add(self, scores: Any, probabilities: Optional[pd.DataFrame] = None) -> None:
        if probabilities is not None and len(probabilities.columns):
            complete = probabilities.dropna()
            self.complete += int(len(complete))
            self.probability_sums += complete.to_numpy(dtype=np.float64).sum(axis=0)
        s = np.asarray(scores, dtype=np.float64)
        s = s[~np.isnan(s)]
        if not len(s):
            return
        if self.problem_type == MULTICLASS:
            codes = s.astype(np.int64)
            codes = np.bincount(codes[codes >= 0])
            if len(codes) > len(self.codes):
                codes[:len(self.codes)] += self.codes
                self.codes = codes
            else:
                self.codes[:len(codes)] += codes
        else:
            if self.bins is not None:
                self.bins += np.asarray(bin_counts(s, self.edges), dtype=np.int64)
            if self.problem_type == REGRESSION:
                n, mean = len(s), float(s.mean())
                squares = float(((s - mean) ** 2).sum())
                if self.rows:
                    delta = mean - self.mean()
                    squares += self.squares + delta * delta * self.rows * n / (self.rows + n)
                self.squares = squares
            else:
                self.positives += int((s >= self.threshold).sum())
        self.rows += int(len(s))
        self.total += float(s.sum())

    def mean(self) -> float:
        return self.total / self.rows if self.rows else float("nan")

    def std(self) -> float:
        """Population standard deviation (``numpy.std``) of the predictions."""
        return float(np.sqrt(self.squares / self.rows)) if self.rows else float("nan")

    def class_counts(self, k: int) -> List[int]:
        """Rows per class code ``0..k-1`` (codes outside are not counted)."""
        counts = np.zeros(k, dtype=np.int64)
        counts[:min(k, len(self.codes))] = self.codes[:k]
        return counts.astype(int).tolist()


DRIFT, QUALITY, PREDICTION = "drift", "quality", "prediction"


def cut_points(values: Any, what: str) -> np.ndarray:
    """A histogram's cut points as ascending numbers (a baseline that says otherwise is refused, naming ``what``)."""
    edges = np.asarray(values if values is not None else [], dtype=np.float64)
    if edges.ndim != 1 or np.isnan(edges).any() or (np.diff(edges) < 0).any():
        raise ValueError(f"{what}: the histogram's bin_edges are not ascending numbers: {np.atleast_1d(edges).tolist()[:12]}")
    return edges


def _limit(value: Any, what: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, not {value!r}")
    return float(value)


class WindowStats:
    """The counts of one window that :mod:`.drift` decides on: a :class:`ColumnCounts` per column the baselines
    describe (``statistics`` for drift, ``constraints`` for data quality) and, with ``problem_type``, a
    :class:`PredictionCounts` of the ``score`` column (and of ``probability_columns``).

    A baseline document that cannot be read this way is not counted against, and the check that needs it raises
    why (:meth:`problem`): a broken ``statistics.json`` fails data drift and prediction drift only, a broken
    ``constraints.json`` data quality only, as each check did on its own before it counted chunk by chunk."""

    def __init__(self, statistics: Optional[Mapping[str, Any]] = None, constraints: Optional[Mapping[str, Any]] = None, *,
                 problem_type: Optional[str] = None, probability_columns: Sequence[str] = (),
                 score_column: str = "score") -> None:
        self.columns: Dict[str, ColumnCounts] = {}
        self.seen: set = set()
        self.problems: Dict[str, Exception] = {}
        drift = self._read(DRIFT, lambda: _drift_columns(statistics)) or {}
        quality = self._read(QUALITY, lambda: _quality_columns(constraints)) or {}
        for name in dict.fromkeys([*drift, *quality]):
            d, q = drift.get(name) or {}, quality.get(name) or {}
            self.columns[name] = ColumnCounts(
                numeric=bool(d.get("numeric") or q.get("numeric")), text=bool(d.get("text") or q.get("text")),
                edges=d.get("edges"), low=q.get("low"), high=q.get("high"), integral=bool(q.get("integral")),
                known=[*d.get("known", ()), *q.get("known", ())])
        self.score_column = score_column
        self.prediction = self._read(PREDICTION, lambda: PredictionCounts(
            statistics or {}, problem_type or (statistics or {}).get("problem_type", BINARY), probability_columns)
        ) if problem_type is not None else None
        self.rows = 0

    def _read(self, part: str, read: Any) -> Any:
        try:
            return read()
        except Exception as exc:  # noqa: BLE001 - the check that needs this part raises it (problem)
            self.problems[part] = exc
            return None

    def problem(self, part: str) -> None:
        """Raise why the baseline of ``part`` (:data:`DRIFT`, :data:`QUALITY`, :data:`PREDICTION`) was not counted
        against, if it was not."""
        if part in self.problems:
            raise self.problems[part]

    def add(self, chunk: pd.DataFrame) -> None:
        """Count one chunk (every chunk with the same columns)."""
        self.rows += int(len(chunk))
        for name, counts in self.columns.items():
            if name in chunk.columns:
                self.seen.add(name)
                counts.add(chunk[name])
        if self.prediction is not None and self.score_column in chunk.columns:
            columns = self.prediction.probability_columns
            self.prediction.add(chunk[self.score_column], chunk[columns] if columns else None)

    def column(self, name: str) -> Optional[ColumnCounts]:
        """The counts of a column the window has (None: not in the traffic)."""
        return self.columns.get(name) if name in self.seen else None

    def predictions(self) -> "PredictionCounts":
        """The prediction counts (raising why there are none)."""
        self.problem(PREDICTION)
        if self.prediction is None:
            raise ValueError("the window's predictions were not counted (no problem type)")
        return self.prediction

    @classmethod
    def of(cls, frame: pd.DataFrame, statistics: Optional[Mapping[str, Any]] = None,
           constraints: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> "WindowStats":
        """The counts of a whole frame."""
        out = cls(statistics, constraints, **kwargs)
        out.add(frame)
        return out


def _drift_columns(statistics: Optional[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """What data drift counts per feature of ``statistics.json``: numbers on its cut points, text by value."""
    out: Dict[str, Dict[str, Any]] = {}
    for name, s in (statistics or {}).get("features", {}).items():
        if s.get("kind") == "numeric":
            out[name] = {"numeric": True, "edges": cut_points((s.get("histogram") or {}).get("bin_edges", []), f"feature {name!r}")}
        else:
            out[name] = {"text": True, "known": list((s.get("levels") or {}).keys())}
    return out


def _quality_columns(constraints: Optional[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """What data quality counts per feature of ``constraints.json``: numbers against their limits, text by value."""
    out: Dict[str, Dict[str, Any]] = {}
    for name, c in (constraints or {}).get("features", {}).items():
        if c.get("kind") == "numeric":
            out[name] = {"numeric": True, "low": _limit(c.get("min"), f"feature {name!r}: constraint min"),
                         "high": _limit(c.get("max"), f"feature {name!r}: constraint max"), "integral": bool(c.get("integral"))}
        else:
            out[name] = {"text": True, "known": [str(v) for v in (c.get("allowed") or [])]}
    return out


class RowSample:
    """A seeded uniform sample of at most ``size`` records of the window (their columns but ``skip``), in the
    window's order: every record while the window has no more (then it *is* the window), else ``size`` of them,
    each equally likely.

    Each record draws a random key and the sample keeps the ``size`` smallest (bottom-k sampling). Once ``size``
    records are held, the largest key among the ``size`` smallest so far is a limit no later record above can pass,
    so most records of a large window are dropped as they arrive (found on the keys alone); the others wait, and
    are cut back to ``size`` when ``size * 1.5`` wait, one column at a time (a frame-wide cut would copy every
    column at once). The draws follow the records, not the chunking: the same window gives the same sample however
    it was cut into chunks.
    """

    def __init__(self, size: int, seed: int = 0, skip: Iterable[str] = ()) -> None:
        if size < 1:
            raise ValueError(f"a row sample needs room for one record or more, not {size}")
        self.size = size
        self.skip = frozenset(skip)
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.columns: Dict[str, List[Any]] = {}  # per column, the values held (pandas arrays)
        self.keys = np.zeros(0)
        self.held = 0
        self.limit = np.inf

    def add(self, chunk: pd.DataFrame) -> None:
        keys = self.rng.random(len(chunk))
        self.seen += len(chunk)
        take = np.flatnonzero(keys < self.limit)
        if not len(take):
            return
        for name in chunk.columns:
            if name not in self.skip:
                self.columns.setdefault(name, []).append(chunk[name].array.take(take))
        self.keys = np.concatenate([self.keys, keys[take]])
        self.held = len(self.keys)
        if self.held > self.size:
            self.limit = float(np.partition(self.keys, self.size - 1)[self.size - 1])
            if self.held > self.size + self.size // 2:
                self._cut()

    def _cut(self) -> None:
        """Keep the records whose key is within the limit, each column on its own."""
        keep = np.flatnonzero(self.keys <= self.limit)
        if len(keep) == len(self.keys):
            return
        for name, parts in self.columns.items():
            self.columns[name] = [_joined(parts).take(keep)]
        self.keys = self.keys[keep]
        self.held = len(self.keys)

    def frame(self) -> Optional[pd.DataFrame]:
        """The sample in the window's order (None: no record arrived)."""
        if not self.columns:
            return None
        self._cut()
        return pd.DataFrame({name: pd.Series(_joined(parts), name=name, copy=False)
                             for name, parts in self.columns.items()}, copy=False)


def _joined(parts: List[Any]) -> Any:
    """A column's parts (its values, pandas arrays: a Series a part would cost more than taking its values) as one
    array: the dtype ``pd.concat`` of their columns gives."""
    if len(parts) == 1:
        return parts[0]
    if all(p.dtype == parts[0].dtype for p in parts):
        return type(parts[0])._concat_same_type(parts)
    return pd.concat([pd.Series(p, copy=False) for p in parts], ignore_index=True).array


def concat(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Frames of the same columns and dtypes as one, column by column: no all-missing part decides a column's dtype
    (pandas' frame concat warns that it one day will)."""
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    return pd.DataFrame({name: pd.concat([p[name] for p in parts], ignore_index=True) for name in parts[0].columns},
                        copy=False)

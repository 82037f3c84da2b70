"""The one interpreter of catalog feature expressions, in vectorised pandas.

Every place that computes features (the ingestion job, locally or inside Spark's
``mapInPandas``; batch scoring; tests) calls :func:`compute_features`, so a
feature means the same thing everywhere. Operators and their null semantics
follow the comments on ``catalog.OPERATORS``:

============ =====================================================================
``col``      the column itself
``ratio``    a / b; null when b is 0 or either side is null
``log1p``    log(1 + x); null when x < 0 or x is null
``clip``     x limited to [lo, hi]; null stays null
``coalesce`` first non-null argument, row by row
``bucket``   ``labels[i]`` for ``edges[i-1] <= x < edges[i]`` (half-open); null -> null
``product``  a * b; null when either side is null
``days_since`` whole days (floor) from a date / timestamp column to the record's own
             event time; null when the column is null; negative when the column is
             after the event time
============ =====================================================================

``days_since`` reads the record's event time (never the clock): a record of 2026-01-05 whose
``licence_issued`` is 2019-04-12 is 2460 days old in training, in a replay and at serving alike. A
date is the UTC midnight of its day, so for a date column it is the difference of the event's UTC
calendar day and the date; for a timestamp column the elapsed time in whole days, floored
(-0.5 days is -1). Dates arrive as ``datetime.date`` (parquet, Spark's ``mapInPandas``), datetimes
or ``yyyy-MM-dd`` text (a raw request); timestamps as datetimes (naive ones in
``naive_time_zone``) or ISO-8601 text. Computed in days / seconds (numpy), so any year 0001-9999 a
date column holds is exact.

Numbers are carried as float64 with NaN as null (integer columns stay nullable
``Int64`` through ``col``/``clip``/``coalesce`` so large integers are exact); text
as object arrays with ``None`` as null. The result is cast to the feature's
Feature Store type: Integral -> ``Int64``, Fractional -> ``float64``,
String -> ``object`` (``str`` or ``None``).

Serving's raw records take :func:`compute_arrays`: the same operators, null semantics and casts on numpy arrays
(a pandas Series per column and operation was most of a one-row request's CPU); it hands anything ending in an
error, and ``days_since``, to :func:`compute_features`. tests/serving/test_request_answers_unchanged.py holds the two
to the same values.

Standard library + numpy + pandas only, Python 3.9 compatible: it also runs in
Glue Python shell jobs and SageMaker containers.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from pipeline_code import catalog

# pandas dtype of each Feature Store type in a feature frame.
PANDAS_DTYPES: Dict[str, str] = {
    catalog.INTEGRAL: "Int64",
    catalog.FRACTIONAL: "float64",
    catalog.FS_STRING: "object",
}

Operand = Union[str, int, float, catalog.Expr]


class FeatureComputationError(ValueError):
    """A feature expression cannot be evaluated on the given frame."""


def feature_frame_schema(dataset: catalog.Dataset) -> Tuple[Tuple[str, str, str], ...]:
    """``(name, Feature Store type, pandas dtype)`` of every column of the feature frame.

    The record identifier and the event time (an ISO-8601 UTC string) come first,
    then every feature in catalog order - exactly ``dataset.feature_store_definitions()``.
    """
    return tuple((name, fs_type, PANDAS_DTYPES[fs_type]) for name, fs_type in dataset.feature_store_definitions())


def compute_features(
    curated: pd.DataFrame, dataset: catalog.Dataset, *, naive_time_zone: str = "UTC"
) -> pd.DataFrame:
    """Compute the feature frame of ``dataset`` from curated records.

    Args:
        curated: curated records; needs the record identifier, the event time and
            every column the features read. Extra columns are ignored.
        dataset: the catalog dataset.
        naive_time_zone: zone of tz-naive event times (default UTC, which is what
            the curated parquet holds; Spark hands ``mapInPandas`` naive values
            in the session time zone).

    Returns:
        A new frame (RangeIndex) with the columns of :func:`feature_frame_schema`,
        in that order and with those dtypes; the event time is formatted as
        ``2026-01-05T13:00:00Z`` (``.SSS`` added only when there are milliseconds).

    Raises:
        ValueError: a needed column is missing (all are named), a key is null, an
            operator is unknown or gets wrong arguments, or a value does not fit
            its feature type.
    """
    _check_columns(curated, dataset)
    frame = curated.reset_index(drop=True)
    for column in dataset.columns:
        if column.dtype == catalog.BOOLEAN and column.name in frame:
            # Parquet booleans with nulls arrive as objects (True/False/None); as pandas' nullable
            # boolean they read as numbers 1/0 like any Integral input.
            frame[column.name] = frame[column.name].astype("boolean")
    out: Dict[str, pd.Series] = {
        dataset.record_identifier: _record_ids(frame[dataset.record_identifier], dataset.record_identifier),
        dataset.event_time: format_event_time(frame[dataset.event_time], naive_time_zone=naive_time_zone),
    }
    if any(feature.expr.reads_event_time() for feature in dataset.features):
        # days_since: each date / timestamp column it reads and the event time as whole seconds since the epoch (UTC),
        # in hidden columns (no declared name starts with "_").
        frame[EVENT_SECONDS] = _epoch_seconds(frame[dataset.event_time], catalog.TIMESTAMP, naive_time_zone)
        for feature in dataset.features:
            for name in feature.expr.source_columns():
                column = dataset.column(name)
                if column.dtype in (catalog.DATE, catalog.TIMESTAMP) and _seconds_column(name) not in frame:
                    frame[_seconds_column(name)] = _epoch_seconds(frame[name], column.dtype, naive_time_zone)
    for feature in dataset.features:
        try:
            value = evaluate(feature.expr, frame)
            out[feature.name] = _cast(value, feature.feature_type)
        except FeatureComputationError as exc:
            raise FeatureComputationError(f"feature {feature.name!r}: {exc}") from None
    return pd.DataFrame(out, index=frame.index)


# The hidden columns compute_features adds for days_since: the event time, and each date / timestamp column it reads, as
# whole seconds since 1970-01-01 UTC (float64, NaN = null).
EVENT_SECONDS = "__event_time_seconds"
_SECONDS_PREFIX = "__seconds__"


def _seconds_column(name: str) -> str:
    return _SECONDS_PREFIX + name


def _epoch_seconds(values: pd.Series, dtype: str, naive_time_zone: str) -> pd.Series:
    """Seconds since 1970-01-01T00:00:00Z of each value (float64; NaN for a null), floored to whole seconds: a date
    as its UTC midnight (any year 1-9999: numpy days, not pandas nanoseconds), a timestamp as its instant (naive
    datetimes in ``naive_time_zone``, text as ISO-8601 with its offset, UTC without one)."""
    present = values.notna().to_numpy()
    out = np.full(len(values), np.nan)
    if not present.any():
        return pd.Series(out, index=values.index)
    if dtype == catalog.DATE:
        kept = values[present]
        if pd.api.types.is_datetime64_any_dtype(kept.dtype):
            if getattr(kept.dt, "tz", None) is not None:
                kept = kept.dt.tz_convert("UTC").dt.tz_localize(None)
            days = kept.to_numpy(dtype="datetime64[D]")
        else:
            text = [value.isoformat()[:10] if hasattr(value, "isoformat") else str(value).strip() for value in kept]
            try:
                days = np.asarray(text, dtype="datetime64[D]")
            except ValueError as exc:
                raise FeatureComputationError(f"date column {values.name!r} holds a value that is no date: {exc}") from None
        out[present] = days.astype("int64").astype("float64") * 86400.0
        return pd.Series(out, index=values.index)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        times = values if getattr(values.dt, "tz", None) is not None else values.dt.tz_localize(naive_time_zone)
    else:
        times = _parse_iso(values.where(values.notna(), None))
    instants = times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    seconds = instants[present].astype("datetime64[s]")
    # astype("datetime64[s]") truncates toward zero; floor a time before 1970 that has a fraction.
    early = instants[present] < seconds
    out[present] = seconds.astype("int64").astype("float64") - early
    return pd.Series(out, index=values.index)


def evaluate(expr: catalog.Expr, frame: pd.DataFrame) -> pd.Series:
    """Evaluate one expression over ``frame``; a Series aligned with ``frame``."""
    try:
        operator = _OPERATORS[expr.op]
    except KeyError:
        raise FeatureComputationError(
            f"unknown operator {expr.op!r} (known operators: {sorted(_OPERATORS)})"
        ) from None
    return operator(expr, frame)


def format_event_time(values: pd.Series, *, naive_time_zone: str = "UTC") -> pd.Series:
    """ISO-8601 UTC strings (``2026-01-05T13:00:00Z``) as Feature Store wants event times.

    Accepts datetimes (tz-aware, or naive in ``naive_time_zone``) and ISO-8601
    strings. Whole seconds are written without a fraction; rows with sub-second
    precision get milliseconds (``...:00.250Z``), the finest Feature Store takes.
    """
    if values.isna().any():
        raise FeatureComputationError(f"event time column {values.name!r} has null values")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        times = values
        if getattr(values.dt, "tz", None) is None:
            times = values.dt.tz_localize(naive_time_zone)
        times = times.dt.tz_convert("UTC")
    else:
        times = _parse_iso(values)
    instants = times.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    seconds = np.datetime_as_string(instants, unit="s")
    has_fraction = instants != instants.astype("datetime64[s]")
    if has_fraction.any():
        millis = np.datetime_as_string(instants, unit="ms")
        seconds = np.where(has_fraction, millis, seconds)
    return pd.Series(np.char.add(seconds.astype(str), "Z").astype(object), index=values.index, name=values.name)


def _parse_iso(values: pd.Series) -> pd.Series:
    """ISO-8601 strings -> UTC datetimes; mixed precisions/offsets allowed."""
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        pass  # pandas < 2 has no format="ISO8601"; its inference handles ISO-8601 too
    try:
        return pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise FeatureComputationError(f"event time column {values.name!r} is not ISO-8601: {exc}") from None


# --------------------------------------------------------------------------------------
# The same computation on plain numpy arrays (serving's records)
# --------------------------------------------------------------------------------------
class _Fallback(Exception):
    """Something :func:`compute_arrays` leaves to :func:`compute_features` (an error whose words that path gives)."""


class _Values:
    """A column in the interpreter's representation, as numpy: ``int`` (int64 values and a null mask: ``Int64``),
    ``float`` (float64, NaN = null) or ``text`` (object, ``None`` = null)."""

    __slots__ = ("kind", "values", "mask")

    def __init__(self, kind: str, values: np.ndarray, mask: Optional[np.ndarray] = None) -> None:
        self.kind, self.values, self.mask = kind, values, mask

    def numbers(self) -> np.ndarray:
        """:func:`_numbers`: float64, NaN for null; text is left to the general path (its error)."""
        if self.kind == "text":
            raise _Fallback
        if self.kind == "int":
            return _masked_float(self.values, self.mask)
        return self.values


def compute_arrays(columns: Dict[str, "_Values"], dataset: catalog.Dataset, size: int) -> Optional[Dict[str, np.ndarray]]:
    """Every feature of ``dataset`` over ``size`` records given as numpy columns (:func:`int_column`,
    :func:`float_column`, :func:`text_column`), or None when :func:`compute_features` must compute them instead.

    The values of :func:`compute_features` (its operators, null semantics and Feature Store casts) without a pandas
    Series per column and operation, which cost most of a one-row serving request. A feature is returned as the
    float64 (NaN = null) or object (``None`` = null) array serving takes from that frame. None - the caller runs
    :func:`compute_features` on the same records - for anything that path answers with an error (so its words are
    the only ones) and for a dataset whose features count days to the event time (``days_since``: its instants are
    pandas' to parse).
    """
    if any(feature.expr.reads_event_time() for feature in dataset.features):
        return None
    out: Dict[str, np.ndarray] = {}
    try:
        for feature in dataset.features:
            value = _fast_cast(_fast_evaluate(feature.expr, columns, size), feature.feature_type)
            out[feature.name] = value
    except (_Fallback, FeatureComputationError):
        return None
    return out


def int_column(numbers: np.ndarray, missing: np.ndarray) -> "_Values":
    """An integer (or boolean, 1 / 0) column: int64 ``numbers`` and its null mask, as ``Int64``."""
    return _Values("int", numbers, missing)


def float_column(numbers: np.ndarray) -> "_Values":
    """A float64 column, NaN = null."""
    return _Values("float", numbers)


def text_column(values: np.ndarray) -> "_Values":
    """A text column (object; a null is None or NaN)."""
    return _Values("text", values)


def _fast_evaluate(expr: catalog.Expr, columns: Dict[str, "_Values"], size: int) -> "_Values":
    op, args = expr.op, expr.args
    if op == "col":
        if len(args) != 1 or not isinstance(args[0], str):
            raise _Fallback
        return _fast_column(columns, args[0])
    if op in ("ratio", "product"):
        if len(args) != 2:
            raise _Fallback
        a = _fast_operand(args[0], columns, size).numbers()
        b = _fast_operand(args[1], columns, size).numbers()
        if op == "product":
            return _Values("float", a * b)
        out = np.full(size, np.nan)
        np.divide(a, b, out=out, where=~np.isnan(a) & ~np.isnan(b) & (b != 0))
        return _Values("float", out)
    if op == "log1p":
        if len(args) != 1:
            raise _Fallback
        x = _fast_operand(args[0], columns, size).numbers()
        out = np.full(size, np.nan)
        np.log1p(x, out=out, where=~np.isnan(x) & (x >= 0))
        return _Values("float", out)
    if op == "clip":
        if len(args) != 3:
            raise _Fallback
        lo, hi = (_literal_number(v, "clip bound") for v in args[1:])
        if lo > hi:
            raise _Fallback
        x = _fast_operand(args[0], columns, size)
        if x.kind == "int" and float(lo).is_integer() and float(hi).is_integer():
            if not (_INT64_MIN <= lo <= _INT64_MAX and _INT64_MIN <= hi <= _INT64_MAX):
                raise _Fallback
            return _Values("int", np.clip(x.values, int(lo), int(hi)), x.mask)
        return _Values("float", np.clip(x.numbers(), lo, hi))
    if op == "coalesce":
        if not args:
            raise _Fallback
        values = [_fast_operand(arg, columns, size) for arg in args]
        kinds = {v.kind for v in values}
        if "text" in kinds and kinds != {"text"}:
            raise _Fallback
        if kinds == {"int"}:
            result, mask = values[0].values, values[0].mask
            for value in values[1:]:
                result, mask = np.where(mask, value.values, result), mask & value.mask
            return _Values("int", result, mask)
        if kinds == {"text"}:
            result = values[0].values
            for value in values[1:]:
                result = np.where(pd.isna(result), value.values, result)
            return _Values("text", result)
        out = values[0].numbers().copy()
        for value in values[1:]:
            out = np.where(np.isnan(out), value.numbers(), out)
        return _Values("float", out)
    if op == "bucket":
        if len(args) != 3:
            raise _Fallback
        edges, labels = args[1], args[2]
        if not isinstance(edges, tuple) or not isinstance(labels, tuple) or len(labels) != len(edges) + 1:
            raise _Fallback
        if list(edges) != sorted(edges):
            raise _Fallback
        x = _fast_operand(args[0], columns, size).numbers()
        index = np.searchsorted(np.asarray(edges, dtype=float), x, side="right")
        out = np.asarray(labels, dtype=object)[np.minimum(index, len(labels) - 1)]
        out[np.isnan(x)] = None
        return _Values("text", out)
    raise _Fallback  # days_since (never reached: see compute_arrays) or an unknown operator


_INT64_MIN, _INT64_MAX = float(np.iinfo(np.int64).min), float(np.iinfo(np.int64).max)


def _fast_operand(arg: object, columns: Dict[str, "_Values"], size: int) -> "_Values":
    if isinstance(arg, catalog.Expr):
        return _fast_evaluate(arg, columns, size)
    if isinstance(arg, str):
        return _fast_column(columns, arg)
    if isinstance(arg, (int, np.integer)) and not isinstance(arg, bool):
        return _Values("int", np.full(size, int(arg), dtype=np.int64), np.zeros(size, dtype=bool))
    if isinstance(arg, (float, np.floating)):
        return _Values("float", np.full(size, float(arg)))
    raise _Fallback


def _fast_column(columns: Dict[str, "_Values"], name: str) -> "_Values":
    """:func:`_column`: a text column's nulls as None (a new array: the caller's is never changed)."""
    try:
        column = columns[name]
    except KeyError:
        raise _Fallback from None
    if column.kind != "text":
        return column
    return _Values("text", _none_for_nulls(column.values))


def _fast_cast(value: "_Values", feature_type: str) -> np.ndarray:
    """:func:`_cast`, then the array serving takes from the feature frame: float64 (NaN = null) for a number, object
    (None = null) for text."""
    if feature_type == catalog.INTEGRAL:
        if value.kind == "int":
            return value.numbers()
        numbers = value.numbers()
        present = ~np.isnan(numbers)
        if (present & (np.floor(numbers) != numbers)).any():
            raise _Fallback  # a non-integer value: compute_features' error
        return _masked_float(np.where(present, numbers, 0).astype("int64"), ~present)
    if feature_type == catalog.FRACTIONAL:
        return value.numbers()
    if feature_type == catalog.FS_STRING:
        if value.kind == "text":
            return _none_for_nulls(value.values)
        out = np.empty(len(value.values), dtype=object)
        if value.kind == "int":
            for k, (number, missing) in enumerate(zip(value.values.tolist(), value.mask.tolist())):
                out[k] = None if missing else str(number)
        else:
            for k, number in enumerate(value.values.tolist()):
                out[k] = None if number != number else repr(float(number))
        return out
    raise _Fallback


def _masked_float(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64)
    out[missing] = np.nan
    return out


# --------------------------------------------------------------------------------------
# Operators
# --------------------------------------------------------------------------------------
def _op_col(expr: catalog.Expr, frame: pd.DataFrame) -> pd.Series:
    _arity(expr, 1)
    name = expr.args[0]
    if not isinstance(name, str):
        raise FeatureComputationError(f"col needs a column name, got {name!r}")
    return _column(frame, name)


def _op_ratio(expr: catalog.Expr, frame: pd.DataFrame) -> pd.Series:
    _arity(expr, 2)
    a = _numbers(_operand(expr.args[0], frame), "ratio")
    b = _numbers(_operand(expr.args[1], frame), "ratio")
    out = np.full(len(frame), np.nan)
    defined = ~np.isnan(a) & ~np.isnan(b) & (b != 0)  # x / 0 is null, not inf
    np.divide(a, b, out=out, where=defined)
    return pd.Series(out, index=frame.index)


def _op_log1p(expr: catalog.Expr, frame: pd.DataFrame) -> pd.Series:
    _arity(expr, 1)
    x = _numbers(_operand(expr.args[0], frame), "log1p")
    out = np.full(len(frame), np.nan)
    defined = ~np.isnan(x) & (x >= 0)  # log1p(-0.5) exists, but the catalog says null below 0
    np.log1p(x, out=out, where=defined)
    return pd.Series(out, index=frame.index)


def _op_clip(expr: catalog.Expr, frame: pd.DataFrame) -> pd.Series:
    _arity(expr, 3)
    lo, hi = (_literal_number(v, "clip bound") for v in expr.args[1:])
    if lo > hi:
        raise FeatureComputationError(f"clip needs lo <= hi, got [{lo}, {hi}]")
    x = _operand(expr.args[0], frame)
    if isinstance(x.dtype, pd.Int64Dtype) and float(lo).is_integer() and float(hi).is_integer():
        return x.clip(int(lo), int(hi))  # stays an exact nullable integer
    return pd.Series(np.clip(_numbers(x, "clip"), lo, hi), index=frame.index)  # NaN stays NaN


def _op_coalesce(expr: catalog.Expr, frame: pd.DataFrame) -> pd.Series:
    if not expr.args:
        raise FeatureComputationError("coalesce needs at least one argument")
    values = [_operand(arg, frame) for arg in expr.args]
    text = [v.dtype == object for v in values]
    if any(text) and not all(text):
        raise FeatureComputationError("coalesce mixes text and numeric arguments")
    if all(isinstance(v.dtype, pd.Int64Dtype) for v in values):
        result = values[0]
        for value in values[1:]:
            result = result.fillna(value)
        return result
    if all(text):
        result = values[0]
        for value in values[1:]:
            result = result.where(result.notna(), value)
        return result
    out = _numbers(values[0], "coalesce").copy()
    for value in values[1:]:
        out = np.where(np.isnan(out), _numbers(value, "coalesce"), out)
    return pd.Series(out, index=frame.index)


def _op_bucket(expr: catalog.Expr, frame: pd.DataFrame) -> pd.Series:
    _arity(expr, 3)
    edges, labels = expr.args[1], expr.args[2]
    if not isinstance(edges, tuple) or not isinstance(labels, tuple) or len(labels) != len(edges) + 1:
        raise FeatureComputationError("bucket needs (x, edges, labels) with len(labels) == len(edges) + 1")
    if list(edges) != sorted(edges):
        raise FeatureComputationError(f"bucket edges must be ascending, got {edges}")
    x = _numbers(_operand(expr.args[0], frame), "bucket")
    # side="right": a value equal to an edge belongs to the bucket that starts there.
    index = np.searchsorted(np.asarray(edges, dtype=float), x, side="right")
    out = np.asarray(labels, dtype=object)[np.minimum(index, len(labels) - 1)]
    out[np.isnan(x)] = None
    return pd.Series(out, index=frame.index, dtype=object)


def _op_product(expr: catalog.Expr, frame: pd.DataFrame) -> pd.Series:
    _arity(expr, 2)
    a = _numbers(_operand(expr.args[0], frame), "product")
    b = _numbers(_operand(expr.args[1], frame), "product")
    return pd.Series(a * b, index=frame.index)  # NaN propagates: null * x is null


def _op_days_since(expr: catalog.Expr, frame: pd.DataFrame) -> pd.Series:
    _arity(expr, 1)
    name = expr.args[0]
    if not isinstance(name, str):
        raise FeatureComputationError(f"days_since needs a column name, got {name!r}")
    if EVENT_SECONDS not in frame.columns or _seconds_column(name) not in frame.columns:
        if name not in frame.columns:
            raise FeatureComputationError(f"missing source column {name!r}")
        raise FeatureComputationError("days_since needs the record's event time: compute it with compute_features")
    elapsed = frame[EVENT_SECONDS].to_numpy(dtype="float64") - frame[_seconds_column(name)].to_numpy(dtype="float64")
    return pd.Series(np.floor(elapsed / 86400.0), index=frame.index)  # NaN (a null date) stays NaN


_OPERATORS: Dict[str, Callable[[catalog.Expr, pd.DataFrame], pd.Series]] = {
    "col": _op_col,
    "ratio": _op_ratio,
    "log1p": _op_log1p,
    "clip": _op_clip,
    "coalesce": _op_coalesce,
    "bucket": _op_bucket,
    "product": _op_product,
    "days_since": _op_days_since,
}

# Importing this module fails loudly if the catalog grows an operator without an interpreter.
_missing_operators = set(catalog.OPERATORS) - set(_OPERATORS)
if _missing_operators:  # pragma: no cover - guards future catalog changes
    raise ImportError(f"pipeline_code.features.compute does not implement operators {sorted(_missing_operators)}")


def implemented_operators() -> Tuple[str, ...]:
    """Names of the operators this interpreter implements."""
    return tuple(sorted(_OPERATORS))


# --------------------------------------------------------------------------------------
# Operands and conversions
# --------------------------------------------------------------------------------------
def _operand(arg: object, frame: pd.DataFrame) -> pd.Series:
    """A nested expression, a column name, or a numeric literal broadcast to the frame."""
    if isinstance(arg, catalog.Expr):
        return evaluate(arg, frame)
    if isinstance(arg, str):
        return _column(frame, arg)
    if isinstance(arg, (int, np.integer)) and not isinstance(arg, bool):
        return pd.Series(np.full(len(frame), int(arg)), index=frame.index, dtype="Int64")
    if isinstance(arg, (float, np.floating)):
        return pd.Series(np.full(len(frame), float(arg)), index=frame.index)
    raise FeatureComputationError(f"unsupported operand {arg!r} ({type(arg).__name__})")


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A curated column in the interpreter's representation.

    Integer and boolean dtypes become ``Int64``; float dtypes ``float64`` with NaN
    for null (an integer column that a reader widened to float because of nulls
    is turned back into ``Int64`` by the Integral cast); everything else is text
    (object, ``None`` for null).
    """
    if name not in frame.columns:
        raise FeatureComputationError(f"missing source column {name!r}")
    series = frame[name]
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return series.astype("Int64")
    if pd.api.types.is_integer_dtype(dtype):
        return series.astype("Int64")
    if pd.api.types.is_float_dtype(dtype):
        return series.astype("float64")
    return _nulls_as_none(series.to_numpy(dtype=object), series)


def _nulls_as_none(values: np.ndarray, like: pd.Series, missing: Optional[np.ndarray] = None) -> pd.Series:
    """An object Series of ``values`` on ``like``'s index and name, ``None`` where ``missing`` (default: where a value is
    null - None, NaN, NaT, NA). What ``values.where(values.notna(), None)`` gives, in numpy: a pandas ``where`` per text
    column was most of the cost of computing the features of a one-row request."""
    return pd.Series(_none_for_nulls(values, missing), index=like.index, name=like.name, dtype=object)


def _none_for_nulls(values: np.ndarray, missing: Optional[np.ndarray] = None) -> np.ndarray:
    """A copy of ``values`` as objects with ``None`` where ``missing`` (default: where a value is null - None, NaN, NaT,
    NA); the caller's array is never changed."""
    out = np.array(values, dtype=object, copy=True)
    nulls = pd.isna(out) if missing is None else missing
    if nulls.any():
        out[nulls] = None
    return out


def _numbers(series: pd.Series, op: str) -> np.ndarray:
    """float64 numpy view of a numeric Series, NaN for null; text is an error."""
    if series.dtype == object:
        raise FeatureComputationError(f"{op} needs numbers, got text (column {series.name!r})")
    return series.to_numpy(dtype="float64", na_value=np.nan)


def _literal_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise FeatureComputationError(f"{what} must be a number, got {value!r}")
    return float(value)


def _arity(expr: catalog.Expr, n: int) -> None:
    if len(expr.args) != n:
        raise FeatureComputationError(f"{expr.op} takes {n} argument(s), got {len(expr.args)}: {expr.args!r}")


def _cast(value: pd.Series, feature_type: str) -> pd.Series:
    """Cast an evaluated Series to the pandas dtype of its Feature Store type."""
    if feature_type == catalog.INTEGRAL:
        return _to_int64(value)
    if feature_type == catalog.FRACTIONAL:
        return pd.Series(_numbers(value, "a Fractional feature"), index=value.index, dtype="float64")
    if feature_type == catalog.FS_STRING:
        return _to_text(value)
    raise FeatureComputationError(f"unknown Feature Store type {feature_type!r}")  # pragma: no cover


def _to_int64(value: pd.Series) -> pd.Series:
    if isinstance(value.dtype, pd.Int64Dtype):
        return value
    numbers = _numbers(value, "an Integral feature")
    present = ~np.isnan(numbers)
    fractional = present & (np.floor(numbers) != numbers)
    if fractional.any():
        example = numbers[fractional][0]
        raise FeatureComputationError(f"Integral feature has non-integer values (e.g. {example!r})")
    out = pd.array(np.where(present, numbers, 0).astype("int64"), dtype="Int64")
    out[~present] = pd.NA
    return pd.Series(out, index=value.index)


def _to_text(value: pd.Series) -> pd.Series:
    if value.dtype == object:
        out = value.astype(object)
    elif isinstance(value.dtype, pd.Int64Dtype):
        out = value.astype("string").astype(object)
    else:
        out = value.astype(object)
        # repr(float) is the shortest round-trip text ("0.1", not "0.10000000000000001").
        out = out.map(lambda v: repr(float(v)), na_action="ignore") if value.dtype.kind == "f" else out.astype(str)
    return _nulls_as_none(out.to_numpy(dtype=object), value, value.isna().to_numpy(dtype=bool))


def _record_ids(values: pd.Series, name: str) -> pd.Series:
    if values.isna().any():
        raise FeatureComputationError(f"record identifier column {name!r} has null values")
    if values.dtype == object:
        return values.astype(str).astype(object)
    return _to_text(_column(values.to_frame(), name))


def _check_columns(curated: pd.DataFrame, dataset: catalog.Dataset) -> None:
    needed: List[str] = [dataset.record_identifier, dataset.event_time]
    readers: Dict[str, List[str]] = {}
    for feature in dataset.features:
        for source in feature.expr.source_columns():
            readers.setdefault(source, []).append(feature.name)
            if source not in needed:
                needed.append(source)
    missing = [name for name in needed if name not in curated.columns]
    if missing:
        details = ", ".join(f"{m!r}" + (f" (read by {readers[m]})" if m in readers else " (key)") for m in missing)
        raise FeatureComputationError(f"curated frame of dataset {dataset.name!r} is missing columns: {details}")


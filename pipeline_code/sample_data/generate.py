"""Seeded, vectorised generator of realistic raw data for the catalog's datasets.

The generator produces exactly the raw columns of a :class:`catalog.Dataset`, in
catalog order, with:

* plausible marginal distributions and relationships between columns;
* a label drawn from a logistic model of the inputs (base rate ~15-25 %);
* a sensitive attribute (``gender`` / ``applicant_age``) with a mild effect on the
  label, so that fairness metrics computed downstream are not trivially zero;
* nulls only where the schema allows them.

Three knobs exist for monitoring and ETL tests:

``drift`` (0..1)
    shifts the *input* distributions (numeric means, category mixes) in proportion
    to its value; 0 is the reference distribution.
``concept_drift`` (0..1)
    changes the *label relationship* while leaving the inputs unchanged.
``bad_record_rate`` (0..1)
    corrupts that fraction of rows, each in one of :data:`CORRUPTION_KINDS`, in the
    ways the Glue ETL must quarantine. Corrupted values do not fit the typed
    columns, so corrupted data is returned as text (see :func:`to_text`).

Everything is drawn from numpy generators derived from ``seed``: the same
arguments always give the same rows. Each variable has its own random stream, so
turning one knob does not reshuffle unrelated columns (``drift`` changes values,
not which customer is which), and corruption/duplication is an overlay on the
clean rows of the same seed.

CLI (writes the raw lake layout ``OUT/<dataset>/ingest_date=YYYY-MM-DD/part-00000.csv``)::

    python -m pipeline_code.sample_data.generate --dataset customer_churn.json \\
        --rows 10000 --seed 7 --out /tmp/lake [--drift 0.3] [--bad-record-rate 0.01]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.core.contract import RAW_PARTITION_COLUMN
from pipeline_code.sample_data import credit_risk, customer_churn, from_schema
from pipeline_code.sample_data.streams import Simulator, Streams
from pipeline_code.argtypes import non_negative_int as _non_negative_int, positive_int as _positive_int, unit_interval as _unit_interval

# The ways a row can be corrupted; each is a rule the ETL quarantines on.
NON_NUMERIC = "non_numeric"  # text in an integer/double column
MISSING_REQUIRED = "missing_required"  # empty value in a nullable=False column
OUT_OF_RANGE = "out_of_range"  # number outside [minimum, maximum]
UNKNOWN_CATEGORY = "unknown_category"  # category not in ``allowed``
BAD_TIMESTAMP = "bad_timestamp"  # unparseable event time
CORRUPTION_KINDS = (NON_NUMERIC, MISSING_REQUIRED, OUT_OF_RANGE, UNKNOWN_CATEGORY, BAD_TIMESTAMP)
# The share of positive binary labels of a dataset simulated from its schema that declares no sample_positive_rate.
DEFAULT_POSITIVE_RATE = 0.2

# Values used for corruption. None of them is a pandas/Spark default null token
# ("NA", "N/A", "null", "NaN" ...), so a CSV reader never turns them into nulls.
_NON_NUMERIC_VALUES = ("abc", "twelve", "1O5", "12,5")
_UNKNOWN_CATEGORY_VALUES = ("unknown", "legacy", "tbd", "xx-unlisted")
_BAD_TIMESTAMP_VALUES = ("2026-13-45 25:61:00", "yesterday", "05/01/2026 13:00", "2026-02-30T10:00:00Z")

_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class GeneratedBatch:
    """A generated frame plus the ground truth of what was injected into it.

    ``corruptions`` has one row per corrupted record: ``row`` (position in
    ``frame``), ``kind`` (one of :data:`CORRUPTION_KINDS`), ``column`` and the
    raw ``value`` written. ``duplicates`` has one row per injected duplicate:
    ``row`` (the copy) and ``source_row`` (the record it copies).
    """

    frame: pd.DataFrame
    corruptions: pd.DataFrame
    duplicates: pd.DataFrame


def generate(
    dataset: catalog.Dataset,
    n_rows: int,
    *,
    seed: int = 0,
    start: str = "2026-01-01",
    days: int = 90,
    drift: float = 0.0,
    concept_drift: float = 0.0,
    bad_record_rate: float = 0.0,
    duplicate_rate: float = 0.0,
    as_text: Optional[bool] = None,
    positive_rate: Optional[float] = None,
    signal_features: Optional[Sequence[str]] = None,
) -> pd.DataFrame:
    """Generate ``n_rows`` raw records of ``dataset``; see :func:`generate_batch`."""
    return generate_batch(
        dataset,
        n_rows,
        seed=seed,
        start=start,
        days=days,
        drift=drift,
        concept_drift=concept_drift,
        bad_record_rate=bad_record_rate,
        duplicate_rate=duplicate_rate,
        as_text=as_text,
        positive_rate=positive_rate,
        signal_features=signal_features,
    ).frame


def generate_batch(
    dataset: catalog.Dataset,
    n_rows: int,
    *,
    seed: int = 0,
    start: str = "2026-01-01",
    days: int = 90,
    drift: float = 0.0,
    concept_drift: float = 0.0,
    bad_record_rate: float = 0.0,
    duplicate_rate: float = 0.0,
    as_text: Optional[bool] = None,
    positive_rate: Optional[float] = None,
    signal_features: Optional[Sequence[str]] = None,
) -> GeneratedBatch:
    """Generate raw records and report which were corrupted or duplicated.

    Args:
        dataset: the declared dataset (columns, keys, labels); the sample datasets have
            hand-written simulators, any other is simulated from its schema alone.
        n_rows: number of rows (>= 0).
        seed: non-negative seed; same arguments -> same output.
        start: first UTC day of the event window (``YYYY-MM-DD``).
        days: width of the event window; ``event_time`` is uniform over it, at
            whole seconds.
        drift: input-distribution shift in [0, 1]; 0 = reference distribution.
        concept_drift: label-relationship change in [0, 1]; inputs unchanged.
        bad_record_rate: fraction in [0, 1] of rows to corrupt; exactly
            ``round(bad_record_rate * n_rows)`` rows, spread evenly over the
            corruption kinds the dataset's schema allows.
        duplicate_rate: fraction in [0, 1] of rows replaced by an exact copy of
            another row (same record identifier and event time), as an
            at-least-once delivery would produce; exactly
            ``round(duplicate_rate * n_rows)`` rows. Never overlaps corruption.
        as_text: ``None`` (default) returns typed columns (Int64, float64,
            datetime64[ns, UTC], object strings) unless rows are corrupted, in
            which case every column is text (object of str/None) because
            corrupted values do not fit their column type. ``True`` forces text;
            ``False`` with ``bad_record_rate > 0`` is an error.
        positive_rate: share of positives of a binary label, for datasets simulated from their
            schema (the two sample datasets have their own base rates); e.g. 0.02 for rare events.
            Default: the dataset's ``sample_positive_rate``, else 0.2.
        signal_features: for datasets simulated from their schema, the features whose source columns
            drive the labels (default: every feature's). The local run passes the model's inputs, so
            a column read only by the sensitive attribute carries no label signal of its own.

    Raises:
        ValueError: an argument outside its valid range.
    """
    start_day = _validate(n_rows, seed, start, days, drift, concept_drift, bad_record_rate, duplicate_rate)
    if as_text is False and bad_record_rate > 0:
        raise ValueError("as_text=False is impossible with bad_record_rate > 0: corrupted values are text")
    if dataset.name in _SAMPLES and dataset.sample_positive_rate is not None:
        raise ValueError(f"dataset {dataset.name!r}: sample_positive_rate applies to datasets simulated from their schema; "
                         f"{dataset.name!r} has a hand-written simulator with its own base rate (remove the field, or "
                         "declare the dataset under another name to simulate it from its schema)")
    if positive_rate is None:
        positive_rate = dataset.sample_positive_rate if dataset.sample_positive_rate is not None else DEFAULT_POSITIVE_RATE
    simulate = _simulator(dataset, positive_rate, signal_features)

    streams = Streams(seed)
    columns = simulate(streams, n_rows, drift, concept_drift)
    columns[dataset.record_identifier] = _record_ids(dataset.name, seed, n_rows,
                                                     integer=dataset.column(dataset.record_identifier).dtype == catalog.INTEGER)
    columns[dataset.event_time] = _event_times(streams.get("event_time"), n_rows, start_day, days)
    for column in dataset.columns:
        if column.dtype == catalog.DATE and np.asarray(columns[column.name]).dtype.kind == "m":
            # Drawn as ages: each date lies before its own record's event time (days_since of it is the age).
            columns[column.name] = from_schema.dates_before(columns[column.name], columns[dataset.event_time])
    frame = _typed_frame(dataset, columns)

    n_dup = int(round(duplicate_rate * n_rows))
    n_bad = int(round(bad_record_rate * n_rows))
    if n_bad + 2 * n_dup > n_rows:
        raise ValueError(
            f"bad_record_rate + 2 * duplicate_rate must be <= 1 (got {bad_record_rate} + 2 * {duplicate_rate}): "
            "corrupted rows, duplicates and their sources must be distinct rows"
        )
    overlay_rng = streams.get("overlay")
    untouched = np.ones(n_rows, dtype=bool)
    duplicates = _inject_duplicates(frame, n_dup, overlay_rng, untouched)

    text = as_text if as_text is not None else n_bad > 0
    if text:
        frame = to_text(frame, dataset)
    corruptions = _corrupt(frame, dataset, n_bad, overlay_rng, untouched)
    return GeneratedBatch(frame=frame, corruptions=corruptions, duplicates=duplicates)


def to_text(frame: pd.DataFrame, dataset: catalog.Dataset) -> pd.DataFrame:
    """Render a typed generated frame as raw text: object columns of ``str``/``None``.

    Integers without a decimal point, doubles as their shortest round-trip repr,
    timestamps as ISO-8601 UTC (``2026-01-05T13:00:00Z``), dates as ``yyyy-MM-dd``, nulls as ``None``
    (an empty CSV field). Columns already holding text are left as they are.
    """
    out = {}
    for column in dataset.columns:
        series = frame[column.name]
        out[column.name] = _column_as_text(series, column)
    return pd.DataFrame(out, index=frame.index)


def write_raw(
    frame: pd.DataFrame,
    out_dir: str,
    dataset: catalog.Dataset,
    ingest_date: str,
    *,
    file_format: str = "csv",
    overwrite: bool = False,
) -> str:
    """Write ``frame`` to ``out_dir/<dataset>/ingest_date=<date>/part-00000.csv``; return the path.

    The frame is written as text (typed frames are rendered with :func:`to_text`),
    with a header row and empty fields for nulls. An existing file is only
    replaced when ``overwrite`` is true, so two runs landing on the same ingest
    date never silently clobber each other.
    """
    if file_format != "csv":
        raise ValueError(f"unsupported format {file_format!r}; supported: ['csv']")
    _parse_day(ingest_date, "ingest_date")
    directory = os.path.join(out_dir, dataset.name, f"{RAW_PARTITION_COLUMN}={ingest_date}")
    path = os.path.join(directory, "part-00000.csv")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (--overwrite) or another ingest date")
    os.makedirs(directory, exist_ok=True)
    text = to_text(frame, dataset)[[c.name for c in dataset.columns]]
    # The header the raw files give each column (its source, where declared), as the curate job reads it.
    text.columns = list(dataset.raw_header)
    # Write to a temporary name then rename, so a reader never sees half a file.
    tmp_path = path + ".tmp"
    text.to_csv(tmp_path, index=False)
    os.replace(tmp_path, path)
    return path


def _validate(
    n_rows: int,
    seed: int,
    start: str,
    days: int,
    drift: float,
    concept_drift: float,
    bad_record_rate: float,
    duplicate_rate: float,
) -> np.datetime64:
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 0:
        raise ValueError(f"n_rows must be a non-negative integer, got {n_rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise ValueError(f"days must be an integer >= 1, got {days!r}")
    for name, value in (
        ("drift", drift),
        ("concept_drift", concept_drift),
        ("bad_record_rate", bad_record_rate),
        ("duplicate_rate", duplicate_rate),
    ):
        _check_unit_interval(name, value)
    return _parse_day(start, "start")


def _check_unit_interval(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def _parse_day(value: str, name: str) -> np.datetime64:
    try:
        day = dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None
    return np.datetime64(day.isoformat(), "s")


def _record_ids(dataset_name: str, seed: int, n: int, *, integer: bool = False) -> np.ndarray:
    """Unique, readable ids ``PREFIX-<seed>-<00000001>``, or for an integer identifier (``integer``) the number
    ``<seed><00000001>``; the seed keeps batches distinct."""
    if integer:
        return (seed * 100_000_000 + np.arange(1, n + 1)).astype(np.int64)
    prefix = f"{_SAMPLES[dataset_name].ID_PREFIX if dataset_name in _SAMPLES else 'REC'}-{seed}-"
    if n == 0:  # np.char.zfill cannot size an empty array
        return np.array([], dtype=object)
    numbers = np.char.zfill(np.arange(1, n + 1).astype(str), 8)
    return np.char.add(prefix, numbers).astype(object)


def _event_times(rng: np.random.Generator, n: int, start_day: np.datetime64, days: int) -> np.ndarray:
    offsets = rng.integers(0, days * _SECONDS_PER_DAY, size=n)
    return start_day + offsets.astype("timedelta64[s]")


# The two samples' hand-written simulators; any other dataset is simulated from its schema.
_SAMPLES = {"customer_churn": customer_churn, "credit_risk": credit_risk}


def _simulator(dataset: catalog.Dataset, positive_rate: float, signal_features: Optional[Sequence[str]] = None) -> Simulator:
    """The dataset's hand-written simulator (the two samples), else one driven by its schema alone. A column declared
    beside a sample's own (a user's addition, a label too) is simulated from its declaration, carrying no signal of the
    sample's label."""
    def from_declaration(s: Any, n: int, drift: float, concept: float) -> Dict[str, np.ndarray]:
        return from_schema.simulate(dataset, s, n, drift, concept, positive_rate=positive_rate, signal_features=signal_features)

    if dataset.name not in _SAMPLES:
        return from_declaration

    def sample_and_declared(s: Any, n: int, drift: float, concept: float) -> Dict[str, np.ndarray]:
        columns = _SAMPLES[dataset.name].simulate(s, n, drift, concept)
        own = {dataset.record_identifier, dataset.event_time, *columns}  # ids and times come later
        added = [c.name for c in dataset.columns if c.name not in own]
        if added:
            declared = from_schema.simulate(dataset, s, n, drift, concept, positive_rate=positive_rate, signal_features=())
            columns.update({name: declared[name] for name in added})
        return columns

    return sample_and_declared


def _typed_frame(dataset: catalog.Dataset, columns: Dict[str, np.ndarray]) -> pd.DataFrame:
    """Assemble the simulator output into catalog order with the typed pandas dtypes."""
    missing = [c.name for c in dataset.columns if c.name not in columns]
    if missing:
        raise RuntimeError(f"simulator for {dataset.name!r} did not produce columns {missing}")
    data = {}
    for column in dataset.columns:
        values = columns[column.name]
        if column.dtype == catalog.INTEGER:
            data[column.name] = pd.array(values, dtype="float64").astype("Int64")
        elif column.dtype == catalog.DOUBLE:
            data[column.name] = pd.Series(values, dtype="float64")
        elif column.dtype == catalog.TIMESTAMP:
            data[column.name] = pd.to_datetime(values).tz_localize("UTC").astype("datetime64[ns, UTC]")
        elif column.dtype == catalog.BOOLEAN:
            data[column.name] = pd.array(values, dtype="float64").astype("boolean")
        elif column.dtype == catalog.DATE:
            data[column.name] = pd.Series(values, dtype=object)  # datetime.date / None, as parquet and Spark hand them
        else:
            data[column.name] = pd.Series(values, dtype=object)
    frame = pd.DataFrame({k: pd.Series(v).reset_index(drop=True) for k, v in data.items()})
    return frame[[c.name for c in dataset.columns]]


def _column_as_text(series: pd.Series, column: catalog.Column) -> pd.Series:
    if column.dtype == catalog.DATE:
        return series.map(lambda v: v.isoformat()[:10] if hasattr(v, "isoformat") else v).astype(object).where(
            series.notna(), None)
    if series.dtype == object:
        return series.astype(object).where(series.notna(), None)
    missing = series.isna().to_numpy()
    if column.dtype == catalog.TIMESTAMP or isinstance(series.dtype, pd.DatetimeTZDtype):
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[s]")
        text = np.char.add(np.datetime_as_string(naive, unit="s"), "Z").astype(object)
    elif isinstance(series.dtype, pd.Int64Dtype):
        text = series.fillna(0).astype("int64").astype(str).to_numpy(dtype=object)
    elif isinstance(series.dtype, pd.BooleanDtype):
        words = np.asarray([catalog.FALSE_WORDS[0], catalog.TRUE_WORDS[0]], dtype=object)
        text = words[series.fillna(False).astype(bool).to_numpy().astype(int)]
    else:
        text = series.astype(str).to_numpy(dtype=object)
    text[missing] = None
    return pd.Series(text, index=series.index, dtype=object)


def _inject_duplicates(
    frame: pd.DataFrame, n_dup: int, rng: np.random.Generator, untouched: np.ndarray
) -> pd.DataFrame:
    """Overwrite ``n_dup`` rows with exact copies of other rows; mark both as touched."""
    if n_dup == 0:
        return pd.DataFrame({"row": pd.Series([], dtype="int64"), "source_row": pd.Series([], dtype="int64")})
    picked = rng.choice(len(frame), size=2 * n_dup, replace=False)
    targets, sources = picked[:n_dup], picked[n_dup:]
    for j in range(frame.shape[1]):  # column by column keeps each column's dtype
        frame.iloc[targets, j] = frame.iloc[sources, j].to_numpy()
    untouched[picked] = False
    pairs = pd.DataFrame({"row": targets.astype("int64"), "source_row": sources.astype("int64")})
    return pairs.sort_values("row", ignore_index=True)


def _corruption_targets(dataset: catalog.Dataset) -> Dict[str, List[str]]:
    """For each corruption kind, the columns it can be applied to (from the schema only).

    Keys (record id, event time) are only corrupted by BAD_TIMESTAMP, and labels
    never, so that a corrupted record is still identifiable in the quarantine.
    """
    keys = {dataset.record_identifier, dataset.event_time, *dataset.labels}
    fields = [c for c in dataset.columns if c.name not in keys]
    numeric = [c for c in fields if c.dtype in (catalog.INTEGER, catalog.DOUBLE)]
    targets = {
        NON_NUMERIC: [c.name for c in numeric],
        MISSING_REQUIRED: [c.name for c in fields if not c.nullable],
        OUT_OF_RANGE: [c.name for c in numeric if c.minimum is not None or c.maximum is not None],
        UNKNOWN_CATEGORY: [c.name for c in fields if c.allowed],
        BAD_TIMESTAMP: [dataset.event_time] if dataset.column(dataset.event_time).dtype == catalog.TIMESTAMP else [],
    }
    return {kind: cols for kind, cols in targets.items() if cols}


def _corrupt(
    frame: pd.DataFrame, dataset: catalog.Dataset, n_bad: int, rng: np.random.Generator, untouched: np.ndarray
) -> pd.DataFrame:
    """Corrupt ``n_bad`` untouched rows of a text frame in place; return the ground truth.

    Rows are picked at random; kinds are assigned round-robin so every kind the
    schema allows appears (nearly) equally often, and the column within a kind
    rotates too, so every eligible column is exercised.
    """
    empty = pd.DataFrame({"row": pd.Series([], dtype="int64"), "kind": [], "column": [], "value": []})
    if n_bad == 0:
        return empty
    targets = _corruption_targets(dataset)
    kinds = list(targets)
    rows = np.sort(rng.choice(np.flatnonzero(untouched), size=n_bad, replace=False))
    kind_idx = np.arange(n_bad) % len(kinds)
    records = []
    for k, kind in enumerate(kinds):
        kind_rows = rows[kind_idx == k]
        columns = targets[kind]
        col_idx = np.arange(len(kind_rows)) % len(columns)
        for c, name in enumerate(columns):
            these = kind_rows[col_idx == c]
            if len(these) == 0:
                continue
            values = _bad_values(kind, dataset.column(name), len(these))
            frame.iloc[these, frame.columns.get_loc(name)] = values
            records.append(pd.DataFrame({"row": these, "kind": kind, "column": name, "value": values}))
    untouched[rows] = False
    return pd.concat(records, ignore_index=True).sort_values("row", ignore_index=True)


def _bad_values(kind: str, column: catalog.Column, n: int) -> np.ndarray:
    """``n`` raw values that break ``column`` in the way ``kind`` names."""
    cycle = np.arange(n)
    if kind == NON_NUMERIC:
        pool = np.asarray(_NON_NUMERIC_VALUES, dtype=object)
    elif kind == MISSING_REQUIRED:
        return np.full(n, None, dtype=object)
    elif kind == OUT_OF_RANGE:
        pool = np.asarray(_out_of_range_values(column), dtype=object)
    elif kind == UNKNOWN_CATEGORY:
        pool = np.asarray([v for v in _UNKNOWN_CATEGORY_VALUES if v not in (column.allowed or ())], dtype=object)
    elif kind == BAD_TIMESTAMP:
        pool = np.asarray(_BAD_TIMESTAMP_VALUES, dtype=object)
    else:  # pragma: no cover - kinds come from CORRUPTION_KINDS
        raise ValueError(f"unknown corruption kind {kind!r}")
    return pool[cycle % len(pool)]


def _out_of_range_values(column: catalog.Column) -> Tuple[str, ...]:
    values = []
    if column.minimum is not None:
        values.append(column.minimum - 1 - abs(column.minimum) * 0.5)
    if column.maximum is not None:
        values.append(column.maximum + 1 + abs(column.maximum) * 9)
    as_text = (str(int(v)) if column.dtype == catalog.INTEGER else repr(float(v)) for v in values)
    return tuple(as_text)


def _dataset_arg(value: str) -> catalog.Dataset:
    try:
        return catalog.load_dataset(value)
    except catalog.DeclarationError as exc:
        raise argparse.ArgumentTypeError("; ".join(exc.problems)) from None


def _day_arg(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.sample_data.generate",
        description="Write deterministic sample raw data in the lake layout "
        "OUT/<dataset>/ingest_date=YYYY-MM-DD/part-00000.csv.",
    )
    parser.add_argument("--dataset", required=True, type=_dataset_arg, help="the dataset's declaration: a JSON file or JSON text (the local run writes one per dataset)")
    parser.add_argument("--rows", required=True, type=_non_negative_int, help="number of rows")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="root directory of the raw lake")
    parser.add_argument("--start", type=_day_arg, default="2026-01-01", help="first event day (default 2026-01-01)")
    parser.add_argument("--days", type=_positive_int, default=90, help="event window in days (default 90)")
    parser.add_argument("--drift", type=_unit_interval, default=0.0, help="input drift in [0, 1] (default 0)")
    parser.add_argument(
        "--concept-drift", type=_unit_interval, default=0.0, help="label-relationship drift in [0, 1] (default 0)"
    )
    parser.add_argument(
        "--bad-record-rate", type=_unit_interval, default=0.0, help="fraction of corrupted rows (default 0)"
    )
    parser.add_argument(
        "--duplicate-rate", type=_unit_interval, default=0.0, help="fraction of duplicated rows (default 0)"
    )
    parser.add_argument(
        "--ingest-date",
        type=_day_arg,
        default=None,
        help="ingest_date partition (default: the day after the event window, start + days)",
    )
    parser.add_argument("--format", choices=("csv",), default="csv", help="raw file format (default csv)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing part file")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    ingest_date = args.ingest_date or (dt.date.fromisoformat(args.start) + dt.timedelta(days=args.days)).isoformat()
    try:
        batch = generate_batch(
            args.dataset,
            args.rows,
            seed=args.seed,
            start=args.start,
            days=args.days,
            drift=args.drift,
            concept_drift=args.concept_drift,
            bad_record_rate=args.bad_record_rate,
            duplicate_rate=args.duplicate_rate,
            as_text=True,
        )
        path = write_raw(batch.frame, args.out, args.dataset, ingest_date, file_format=args.format, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as exc:
        parser.error(str(exc))  # exits 2 with the usage line and the message
    print(
        f"wrote {len(batch.frame)} rows ({len(batch.corruptions)} corrupted, "
        f"{len(batch.duplicates)} duplicated) of {args.dataset.name} to {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

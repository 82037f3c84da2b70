"""Your own files into the local run: raw records of a declared dataset, landed as the Glue ETL reads them.

``--data <dataset>=<path>`` names a file, a directory (read recursively) or a glob of CSV
(``.csv``), Parquet (``.parquet``) or JSON Lines (``.jsonl`` / ``.ndjson``) files. Each file is
checked against the dataset's declaration and written, as text, into the run's raw lake
(``raw/<dataset>/ingest_date=<day>/part-NNNNN.csv``), so from there on the records go through
exactly the jobs that run in AWS: the ETL types, validates and quarantines them, the feature
job computes the declared features, and so on.

Checks, each failing with the file, the column and the fix: no file matched; an empty file; a
column the declaration needs that the file lacks (the record identifier, the event time, every
label and every non-nullable column). Declared nullable columns a file lacks are filled with
nulls, and columns the declaration does not know are dropped; both are reported, not silent.
Labels are columns of the records (as declared under ``labels``).
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import pandas as pd

from pipeline_code import catalog

READERS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class UserDataError(ValueError):
    """A data file that cannot be used as declared; the message names the file, the column and the fix."""


@dataclass
class Landed:
    """What :func:`land` wrote: the raw lake files and the adjustments made on the way."""

    files: List[str] = field(default_factory=list)
    rows: int = 0
    notes: List[str] = field(default_factory=list)


def parse_data_args(values: Sequence[str]) -> Dict[str, str]:
    """``["customer_churn=data/*.csv", ...]`` -> ``{"customer_churn": "data/*.csv"}``; a bad form is an error."""
    out: Dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UserDataError(f"--data {value!r}: write --data <dataset>=<file, directory or glob>")
        if name.strip() in out:
            raise UserDataError(f"--data: dataset {name.strip()!r} is given twice")
        out[name.strip()] = path.strip()
    return out


def find_files(spec: str) -> List[str]:
    """The data files ``spec`` names (a file, a directory read recursively, or a glob), sorted."""
    if os.path.isdir(spec):
        candidates = glob.glob(os.path.join(spec, "**", "*"), recursive=True)
    else:
        candidates = glob.glob(spec, recursive=True)
    files = sorted(p for p in candidates if os.path.isfile(p) and _kind(p) is not None)
    if not files:
        raise UserDataError(
            f"--data {spec!r}: no data file found; give a file, a directory or a glob of "
            f"{', '.join(sorted(READERS))} files"
        )
    return files


def read_file(path: str, dataset: catalog.Dataset) -> Tuple[pd.DataFrame, List[str]]:
    """The records of one file as text columns in declaration order, plus notes on what was adjusted."""
    kind = _kind(path)
    try:
        if kind == "csv":
            # Text as written: typing and validation are the ETL's job, exactly as in AWS.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    except (ValueError, OSError, pd.errors.EmptyDataError) as exc:
        if isinstance(exc, pd.errors.EmptyDataError):
            raise UserDataError(f"{path}: the file is empty; it needs a header row and at least one record") from None
        raise UserDataError(f"{path}: cannot be read as {kind}: {exc}") from None
    if frame.empty:
        raise UserDataError(f"{path}: the file has no records; remove it or add records")
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    declared = [c.name for c in dataset.columns]
    required = [c.name for c in dataset.columns
                if not c.nullable or c.name in (dataset.record_identifier, dataset.event_time, *dataset.labels)]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UserDataError(
            f"{path}: missing column(s) {missing} that dataset {dataset.name!r} requires (record identifier, event "
            f"time, labels and non-nullable columns); the file has {list(frame.columns)} — rename the file's "
            f"columns or change the declaration under datasets.{dataset.name}.columns"
        )
    notes = []
    absent = [c for c in declared if c not in frame.columns]
    if absent:
        notes.append(f"{path}: nullable column(s) {absent} absent, read as nulls")
    extra = [c for c in frame.columns if c not in declared]
    if extra:
        notes.append(f"{path}: column(s) {extra} not declared for {dataset.name!r}, ignored")
    text = pd.DataFrame({c: _as_text(frame[c]) if c in frame.columns else None for c in declared}, index=frame.index)
    return text, notes


def land(dataset: catalog.Dataset, spec: str, raw_root: str, ingest_date: str) -> Landed:
    """Check and write every file of ``spec`` into ``raw_root/<dataset>/ingest_date=<day>/`` as CSV."""
    directory = os.path.join(raw_root, dataset.name, f"ingest_date={ingest_date}")
    os.makedirs(directory, exist_ok=True)
    landed = Landed()
    for index, path in enumerate(find_files(spec)):
        frame, notes = read_file(path, dataset)
        target = os.path.join(directory, f"part-{index:05d}.csv")
        frame.to_csv(target, index=False)
        landed.files.append(target)
        landed.rows += len(frame)
        landed.notes.extend(notes)
    return landed


def _kind(path: str) -> Any:
    return READERS.get(os.path.splitext(path)[1].lower())


def _as_text(series: pd.Series) -> pd.Series:
    """Raw text of one column: JSON/Parquet values rendered the way a CSV export would write them."""
    if pd.api.types.is_datetime64_any_dtype(series):
        times = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
        return times.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").where(series.notna(), None)
    return series.map(_value_text).astype(object)


def _value_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))  # 3.0 from a JSON/Parquet integer column with nulls is the integer 3
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)

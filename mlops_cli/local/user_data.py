"""Your own files into the local run: raw records of a declared dataset, landed as the Glue ETL reads them.

``--data <dataset>=<path>`` names a file, a directory (read recursively) or a glob of CSV
(``.csv``), Parquet (``.parquet``) or JSON Lines (``.jsonl`` / ``.ndjson``) files. Each file is
checked against the dataset's declaration and written, as text, into the run's raw lake
(``raw/<dataset>/ingest_date=<day>/part-NNNNN.csv``), so from there on the records go through
exactly the jobs that run in AWS: the ETL types, validates and quarantines them, the feature
job computes the declared features, and so on.

Checks, each failing with the file, the column and the fix: no file matched; a file that looks like data but is not
read (``orders.csv.gz``: compressed, or another format), which would otherwise be left out; an empty file; a CSV
file separated by ``;``, a tab or ``|`` (its header reads as one column); a
column the declaration needs that the file lacks (the record identifier, the event time, every
label and every non-nullable column); a declared column missing beside an undeclared one of nearly
its name (``distance_kms`` for ``distance_km``: a typo, not an absent column). Declared nullable
columns a file lacks are filled with nulls, and columns the declaration does not know are dropped;
both are reported, not silent. A file's header is read as the curate job in AWS reads it
(:meth:`pipeline_code.catalog.Dataset.read_header`): a column from the cell giving its ``source`` (the export's
header text), else its name, trimmed and in any case; a header text given twice is refused.

Labels are columns of the records (as declared under ``labels``), or arrive in their own files
(``--labels <dataset>=<path>``: the record identifier and the label columns, and the event time where a record
identifier recurs), as confirmed outcomes usually do. They are joined to the records by record identifier, or by
record identifier and event time (read as times, any offset) when the label files carry the event time: label files
that match no record are an error naming the file and an example identifier; records without a label are counted
(they are kept, and prepare drops them from training); a record labelled twice is an error, and so are label files
without the event time for records whose identifier recurs (a customer recorded each month would otherwise get one
outcome on every month's record).
"""

from __future__ import annotations

import csv
import glob
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from pipeline_code import catalog
from pipeline_code.core import integrity
from pipeline_code.core.contract import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, TIMESTAMP_RANGE
from pipeline_code.core.contract import RAW_PARTITION_COLUMN, hidden_from_spark
from pipeline_code.core.spelling import misspellings

READERS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# The label files' event time read as a time (UTC), the key a timed label joins its record by.
_LABEL_TIME = "_label_time"


class UserDataError(ValueError):
    """A data file that cannot be used as declared; the message names the file, the column and the fix."""


@dataclass
class Landed:
    """What :func:`land` wrote: the raw lake files and the adjustments made on the way."""

    files: List[str] = field(default_factory=list)
    rows: int = 0
    notes: List[str] = field(default_factory=list)
    # The content hash of the files read (records, then label files): :func:`source_sha256`.
    sha256: str = ""


def source_sha256(paths: Sequence[str]) -> str:
    """One sha256 over the bytes of ``paths`` in order (each length-prefixed, so moving bytes from one file to the
    next changes it): the same files give the same hash wherever they sit; a changed byte gives another."""
    return integrity.sha256_concatenated(paths, length_prefixed=True)


def parse_data_args(values: Sequence[str], flag: str = "--data") -> Dict[str, str]:
    """``["customer_churn=data/*.csv", ...]`` -> ``{"customer_churn": "data/*.csv"}``; a bad form is an error."""
    out: Dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UserDataError(f"{flag} {value!r}: write {flag} <dataset>=<file, directory or glob>")
        if name.strip() in out:
            raise UserDataError(f"{flag}: dataset {name.strip()!r} is given twice")
        out[name.strip()] = path.strip()
    return out


def own_files(data_args: Sequence[str], label_args: Sequence[str], read: Sequence[str]) -> Tuple[Dict[str, str], Dict[str, str]]:
    """``--data`` and ``--labels`` (:func:`parse_data_args`) of the datasets in ``read`` (those the selected models
    read); a dataset none of them reads, or label files without records, is an error naming it."""
    data, labels = parse_data_args(data_args), parse_data_args(label_args, flag="--labels")
    stray = sorted(set(data) - set(read))
    if stray:
        raise UserDataError(f"--data: dataset(s) {stray} are not read by the selected models; they read: {sorted(read)}")
    orphans = sorted(set(labels) - set(data))
    if orphans:
        raise UserDataError(f"--labels: dataset(s) {orphans} have no --data; label files are joined to your records")
    return data, labels


def find_files(spec: str, flag: str = "--data") -> List[str]:
    """The data files ``spec`` (given as ``flag``: ``--data`` or ``--labels``) names (a file, a directory read recursively,
    or a glob), sorted; a file it names that
    looks like data but is not read (:func:`_unread_data`: ``orders.csv.gz``) is an error naming it, as the curate job
    in AWS refuses a raw file it would not read: left out, its records would be missing without a word."""
    if os.path.isdir(spec):
        found = glob.glob(os.path.join(spec, "**", "*"), recursive=True)
        # What Spark leaves out below the folder (an _archive/ folder, _SUCCESS), as the curate job in AWS would.
        candidates = [p for p in found if not hidden_from_spark(os.path.relpath(p, spec).split(os.sep))]
    else:
        candidates = [p for p in glob.glob(spec, recursive=True) if not hidden_from_spark([os.path.basename(p)])]
    unread = sorted(p for p in candidates if os.path.isfile(p) and _kind(p) is None and _unread_data(p))
    if unread:
        shown = ", ".join(unread[:5]) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
        raise UserDataError(
            f"{flag} {spec!r}: {len(unread)} file(s) look like data but are not read: {shown}; only uncompressed "
            f"{', '.join(sorted(READERS))} files are read, so their records would be left out without a word - "
            "decompress or convert them (an exporter's compression or format setting), or move them out, and run again")
    files = sorted(p for p in candidates if os.path.isfile(p) and _kind(p) is not None)
    if not files:
        raise UserDataError(
            f"{flag} {spec!r}: no data file found; give a file, a directory or a glob of "
            f"{', '.join(sorted(READERS))} files"
        )
    return files


def read_file(path: str, dataset: catalog.Dataset, *, labels_apart: bool = False) -> Tuple[pd.DataFrame, List[str]]:
    """The records of one file as text columns in declaration order, plus notes on what was adjusted.

    ``labels_apart``: the labels come from label files, so the records need not (and must not) carry them.
    """
    frame = _read(path, dataset)
    declared = [c.name for c in dataset.columns]
    required = [c.name for c in dataset.columns
                if not c.nullable or c.name in (dataset.record_identifier, dataset.event_time, *dataset.labels)]
    if labels_apart:
        both = [c for c in dataset.labels if c in frame.columns]
        if both:
            raise UserDataError(f"{path}: has label column(s) {both} although --labels gives the labels; give them "
                                "in one place")
        required = [c for c in required if c not in dataset.labels]
        declared = [c for c in declared if c not in dataset.labels]
    extra = list(frame.attrs[_IGNORED])
    # Typos are looked for among the ignored cells as the header compares them (trimmed, lower-cased).
    near = [catalog.header_key(c) for c in extra]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        apart = (f"; labels that arrive in files of their own go with --labels {dataset.name}=<label files>"
                 if set(missing) & set(dataset.labels) else "")
        raise UserDataError(
            f"{path}: missing column(s) [{dataset.described_headers(missing)}] that dataset {dataset.name!r} requires "
            f"(record identifier, event time, labels and non-nullable columns); the file has "
            f"{frame.attrs[_WRITTEN_HEADER]} — rename the file's columns or change the declaration under "
            f"datasets.{dataset.name}.columns (a column's source: is the header text the files give it)"
            f"{apart}{_misspelt(missing, near)}"
        )
    notes = []
    absent = [c for c in declared if c not in frame.columns]
    # A declared column missing while an undeclared one of nearly its name is there is a typo, not an absent column:
    # read as nulls, it would leave a model's input empty without an error.
    typos = _misspelt(absent, near)
    if typos:
        raise UserDataError(f"{path}: declared column(s) {absent} are absent{typos}; rename them in the file or the "
                            f"declaration under datasets.{dataset.name}.columns, or, if it is another column, drop it "
                            "from the file")
    if absent:
        notes.append(f"{path}: nullable column(s) {absent} absent, read as nulls")
    if extra:
        notes.append(f"{path}: column(s) {extra} not declared for {dataset.name!r}, ignored")
    if _kind(path) == "csv":
        notes += _as_raw_in_aws(path, absent)
    text = pd.DataFrame({c: _as_text(frame[c], dataset.column(c).dtype) if c in frame.columns else None
                         for c in declared}, index=frame.index)
    return text, notes


def _misspelt(absent: Sequence[str], present: Sequence[str]) -> str:
    """``"; the file's 'genders' looks like 'gender'"`` for each absent column one typo from a present one
    (:func:`pipeline_code.core.spelling.misspellings`); else ``""``."""
    pairs = [f"the file's {written!r} looks like {declared!r}" for written, declared in misspellings(absent, present)]
    return f"; {', '.join(pairs)}" if pairs else ""


def read_labels(spec: str, dataset: catalog.Dataset) -> Tuple[pd.DataFrame, List[str]]:
    """Every label file of ``spec``: the record identifier and the dataset's label columns, as text, and the event
    time when the files give it (all of them or none: a mix is an error naming a file of each kind)."""
    rid, event_time = dataset.record_identifier, dataset.event_time
    frames, notes, timed = [], [], {}
    for path in find_files(spec, "--labels"):
        frame = _read(path, dataset)
        wanted = [rid, *dataset.labels]
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise UserDataError(f"{path}: a label file needs the record identifier and the label column(s) {wanted}; "
                                f"missing {missing}, the file has {frame.attrs[_WRITTEN_HEADER]}")
        timed[path] = event_time in frame.columns
        if timed[path]:
            wanted.append(event_time)
        extra = [c for c in frame.columns if c not in wanted] + list(frame.attrs[_IGNORED])
        if extra:
            notes.append(f"{path}: column(s) {extra} ignored (a label file gives {wanted})")
        frames.append(pd.DataFrame({c: _as_text(frame[c]) for c in wanted}).assign(_file=path))
    if len(set(timed.values())) > 1:
        with_time, without = (next(p for p, t in timed.items() if t is flag) for flag in (True, False))
        raise UserDataError(f"{without}: has no {event_time!r} column while {with_time} has one; give the event time in "
                            "every label file or in none")
    labels = pd.concat(frames, ignore_index=True)
    key = [rid]
    if event_time in labels.columns:
        labels[_LABEL_TIME] = event_times(labels[event_time])
        unread = labels[labels[_LABEL_TIME].isna()]
        if len(unread):
            first = unread.iloc[0]
            written = re.match(catalog.TIMESTAMP_PATTERN, str(first[event_time]).strip())
            if written is not None and catalog.parse_date(written.group(1)) is not None:
                raise UserDataError(f"{first['_file']}: record {first[rid]!r} has {event_time} {first[event_time]!r}, "
                                    f"which is outside the times the jobs hold ({TIMESTAMP_RANGE}): the ETL quarantines "
                                    "a record of that time; correct the time in the records and their labels")
            raise UserDataError(f"{first['_file']}: record {first[rid]!r} has {event_time} {first[event_time]!r}, which is "
                                "not a timestamp the ETL reads; write it as the records do (e.g. 2026-01-31T09:00:00Z; "
                                "without an offset it is UTC)")
        key = [rid, _LABEL_TIME]
    twice = labels[labels.duplicated(subset=key, keep=False)]
    if len(twice):
        first = twice.iloc[0]
        same = (labels[key] == first[key]).all(axis=1)
        at = f" at {first[event_time]}" if event_time in labels.columns else ""
        raise UserDataError(f"{first['_file']}: record {first[rid]!r}{at} is labelled {int(same.sum())} times; give each "
                            "record one label row")
    return labels, notes


def attach_labels(records: pd.DataFrame, labels: pd.DataFrame, dataset: catalog.Dataset, spec: str
                  ) -> Tuple[pd.DataFrame, List[str]]:
    """``records`` with their label columns from ``labels`` (joined by record identifier, and by event time read as a
    time when ``labels`` gives it), in declaration order."""
    rid, event_time = dataset.record_identifier, dataset.event_time
    timed = _LABEL_TIME in labels.columns
    record_times = event_times(records[event_time])
    if not timed:
        # A copy re-sent with the same event time is the same record (the ETL keeps one): only other times recur.
        times = records.assign(**{_LABEL_TIME: record_times}).groupby(rid, sort=False)[_LABEL_TIME].nunique()
        recurring = times[times > 1]
        if len(recurring):
            example = recurring.index[0]
            raise UserDataError(
                f"--labels {spec}: record {example!r} appears at {int(recurring.iloc[0])} different {event_time!r} values "
                f"in your records, and the label files have no {event_time!r} column: each of its records would get the "
                f"same label; add {event_time!r} to the label files so each labels the record of its time")
    matched = labels[rid].isin(records[rid])
    if not matched.any():
        raise UserDataError(
            f"--labels {spec}: none of its {len(labels)} record identifiers (e.g. {labels[rid].iloc[0]!r}) matches a "
            f"record of {dataset.name!r} (e.g. {records[rid].iloc[0]!r}); check that both files use the same "
            f"{rid!r} values")
    if timed:
        keyed = records.assign(**{_LABEL_TIME: record_times})
        joined = keyed.merge(labels.drop(columns=["_file", event_time]), on=[rid, _LABEL_TIME], how="left")
        matched = pd.Series(pd.MultiIndex.from_frame(labels[[rid, _LABEL_TIME]]).isin(
            pd.MultiIndex.from_frame(keyed[[rid, _LABEL_TIME]])), index=labels.index)
        if not matched.any():
            example = labels[labels[rid].isin(records[rid])].iloc[0]
            recorded = ", ".join(str(t) for t in records.loc[records[rid] == example[rid], event_time])
            raise UserDataError(
                f"--labels {spec}: none of its {len(labels)} labels matches a record by identifier and {event_time} (e.g. "
                f"record {example[rid]!r}: labelled at {example[event_time]}, recorded at {recorded}); write the label "
                f"files' {event_time} as the records' (the same instant; a time without an offset is UTC)")
    else:
        joined = records.merge(labels.drop(columns="_file"), on=rid, how="left")
    notes = []
    unlabelled = int(joined[dataset.labels[0]].isna().sum())
    if unlabelled:
        notes.append(f"{unlabelled} of {len(records)} records have no label in --labels {spec} (kept; prepare leaves "
                     "them out of training)")
    if (~matched).sum():
        notes.append(f"{int((~matched).sum())} label rows of --labels {spec} match no record (ignored)")
    return joined[[c.name for c in dataset.columns]], notes


def event_times(values: pd.Series) -> pd.Series:
    """Each value read as the ETL reads a timestamp (``catalog.TIMESTAMP_PATTERN``; no offset: UTC), as a UTC time;
    NaT where it is not one (a date alone, ``03/15/2026 14:22``: the ETL would quarantine it) or where it is outside
    the times the jobs hold (``core.contract.TIMESTAMP_RANGE``: the ETL quarantines that too)."""
    text = values.astype("string").str.strip()
    readable = text.str.match(catalog.TIMESTAMP_PATTERN).fillna(False).astype(bool)
    times = pd.to_datetime(text.where(readable), utc=True, format="ISO8601", errors="coerce")
    return times.where((times >= EARLIEST_TIMESTAMP) & (times < LATEST_TIMESTAMP))


def _as_raw_in_aws(path: str, absent: Sequence[str]) -> List[str]:
    """A note when the CSV file ``path``, put in ``raw/<dataset>/`` in AWS as it is, would fail the Glue curate job: it
    reads the header by the same rule (:meth:`pipeline_code.catalog.Dataset.read_header`), but a declared column no
    cell gives (``absent``) fails it, where the local run lands a copy with the column empty and goes on."""
    if not absent:
        return []
    return [f"{path}: landed here with {list(absent)} added empty; as it is, the curate job in AWS would refuse it: a "
            "raw file's header must give every declared column (its name, or its source)"]


def _read(path: str, dataset: catalog.Dataset) -> pd.DataFrame:
    """The records of ``path``, its columns read from its header by the curate job's rule
    (:meth:`pipeline_code.catalog.Dataset.read_header`): each declared column under its name, the cells no column reads
    left out (``attrs[_IGNORED]``, as written); ``attrs[_WRITTEN_HEADER]`` is the header as written."""
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
    # The header as the curate job reads it: its cells as written (pandas renames an empty cell "Unnamed: 0" and a
    # repeated one "name.1").
    written = _csv_header(path) if kind == "csv" else None
    if written is None or len(written) != len(frame.columns):
        written = [str(c) for c in frame.columns]
    separated = _other_separator([catalog.header_key(c) for c in written]) if kind == "csv" else None
    if separated:
        raise UserDataError(f"{path}: the file looks {separated}-separated (its header reads as the one column "
                            f"{catalog.header_key(written[0])!r}); export it comma-separated (or as Parquet or JSON "
                            "Lines)")
    try:
        read = dataset.read_header(written)
    except ValueError as exc:
        raise UserDataError(f"{path}: {exc}") from None
    frame.columns = [name if name is not None else f"__ignored_{i}" for i, name in enumerate(read.names)]
    frame = frame[[name for name in read.names if name is not None]]
    frame.attrs[_WRITTEN_HEADER] = written
    frame.attrs[_IGNORED] = list(read.ignored)
    return frame


def _csv_header(path: str) -> Optional[List[str]]:
    """The first row of the CSV file ``path``, its cells as written (standard CSV, as the curate job reads it)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), None)


# Where _read keeps a file's header as written, and the cells of it no declared column reads (frame.attrs).
_WRITTEN_HEADER = "written_header"
_IGNORED = "ignored_cells"

# Separators a spreadsheet export may use instead of commas (a ';' one where ',' is the decimal mark).
_OTHER_SEPARATORS = {";": ";", "\t": "tab", "|": "|"}


def _other_separator(columns: Sequence[str]) -> Optional[str]:
    """The name of the separator a one-column CSV header holds (no dataset has one column), else None."""
    if len(columns) != 1:
        return None
    return next((name for sep, name in _OTHER_SEPARATORS.items() if sep in columns[0]), None)


def land(dataset: catalog.Dataset, spec: str, raw_root: str, ingest_date: str, labels: Optional[str] = None) -> Landed:
    """Check and write every file of ``spec`` into ``raw_root/<dataset>/ingest_date=<day>/`` as CSV, with the
    labels of ``labels`` (label files) joined in when given."""
    directory = os.path.join(raw_root, dataset.name, f"{RAW_PARTITION_COLUMN}={ingest_date}")
    landed = Landed()
    sources = find_files(spec)
    parts = [read_file(path, dataset, labels_apart=labels is not None) for path in sources]
    apart = _headers_apart_in_aws(sources) + _unreadable_in_aws(sources)
    landed.sha256 = source_sha256([*sources, *(find_files(labels, "--labels") if labels is not None else ())])
    if labels is not None:
        label_rows, notes = read_labels(labels, dataset)
        records, joined_notes = attach_labels(pd.concat([p[0] for p in parts], ignore_index=True), label_rows, dataset, labels)
        parts = [(records, [n for p in parts for n in p[1]] + notes + joined_notes)]
    # Created once every file passed its checks: a refused file leaves no empty raw folder behind.
    os.makedirs(directory, exist_ok=True)
    for index, (frame, notes) in enumerate(parts):
        target = os.path.join(directory, f"part-{index:05d}.csv")
        # Under the header the curate job reads each column from (its source, where declared), as an export in AWS.
        frame.set_axis(list(dataset.raw_header), axis=1).to_csv(target, index=False)
        landed.files.append(target)
        landed.rows += len(frame)
        landed.notes.extend(notes)
    landed.notes.extend(apart)
    return landed


def _unreadable_in_aws(paths: Sequence[str]) -> List[str]:
    """A note for each CSV file of ``paths`` the Glue curate job cannot read as written, though Python's csv here can:
    a line break in a quoted header cell that is not how the file's records end
    (:func:`pipeline_code.catalog.header_line_break_problem`)."""
    notes = []
    for path in paths:
        if _kind(path) != "csv":
            continue
        with open(path, "rb") as handle:
            problem = catalog.header_line_break_problem(handle.read(catalog.HEAD_BYTES))
        if problem:
            notes.append(f"{path}: landed here; as it is, the curate job in AWS would refuse it: {problem}")
    return notes


def _headers_apart_in_aws(paths: Sequence[str]) -> List[str]:
    """A note for each CSV file of ``paths`` that, put in ``raw/<dataset>/`` in AWS with the others as they are, would
    fail the Glue curate job: each file is read here by its own header, but the job reads every raw file against the
    header of the largest one (``glue_curate_job.read_raw_csv``: Spark's check compares the cells in order, ignoring
    case only)."""
    headers = {path: _csv_header(path) or [] for path in paths if _kind(path) == "csv"}
    if len(headers) < 2:
        return []
    largest = max(sorted(headers), key=os.path.getsize)  # the job's choice: the first of the largest, by path

    def cells(path: str) -> List[str]:
        return [cell.lower() for cell in headers[path]]

    return [f"{path}: landed here; as it is, the curate job in AWS would refuse it: it reads every raw file of a dataset "
            f"against the header of the largest one ({largest}: {headers[largest]}), the same cells in the same order "
            f"(in any case), and this file's is {headers[path]}; export the files with one header"
            for path in sorted(headers) if cells(path) != cells(largest)]


# Suffixes of compressed or archived exports: a file named so is data the reader does not take.
_COMPRESSED = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zip", ".snappy", ".lz4", ".tar")


def _unread_data(path: str) -> bool:
    """Whether ``path``, not of a kind the reader takes, looks like data (a compressed or archived file, or a name with
    a data extension before another suffix: ``orders.csv.gz``); :func:`find_files` has left out what Spark treats as
    hidden (``.part.parquet.crc``, ``_SUCCESS``)."""
    name = os.path.basename(path).lower()
    return name.endswith(_COMPRESSED) or any(f"{ext}." in name for ext in READERS)


def _kind(path: str) -> Any:
    return READERS.get(os.path.splitext(path)[1].lower())


def _as_text(series: pd.Series, dtype: Optional[str] = None) -> pd.Series:
    """Raw text of one column: JSON/Parquet values rendered the way a CSV export would write them. A Parquet date
    (``datetime.date``) is ``yyyy-MM-dd``; so is a datetime at midnight in a column declared ``date`` (pandas writes
    dates as datetimes), while one with a time of day stays a timestamp, which the ETL quarantines as not a date."""
    if dtype == catalog.DATE and pd.api.types.is_datetime64_any_dtype(series):
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz is not None else series
        midnight = naive == naive.dt.normalize()
        days = naive.dt.strftime("%Y-%m-%d").where(midnight, naive.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return days.astype(object).where(series.notna(), None)
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

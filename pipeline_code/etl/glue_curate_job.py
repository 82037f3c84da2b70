"""Glue job: raw CSV -> curated parquet + quarantine + run summary.

Arguments (identical names in Glue and locally):

``--dataset``               the dataset declaration: a JSON file, local or s3:// (required)
``--raw_path``              directory of raw CSV files, read recursively (required)
``--curated_path``          curated parquet root, partitioned by ``event_date`` (required)
``--quarantine_path``       quarantine root; each run writes ``run_id=<id>/`` under it (required)
``--summary_path``          file/object to write the JSON run summary to, or a prefix ending in ``/``
                            under which each run writes ``run_id=<id>/summary.json`` (optional)
``--max_quarantine_ratio``  fail the run when a raw batch's quarantined/input ratio is above this (default 0.05)
``--state_path``            file/object of the curate state (JSON): the raw files curated so far, which later runs
                            do not read again (optional; absent: every run reads every raw file)
``--recovery_path``         prefix under which a run keeps, until its state is written, a copy of every row it is about
                            to publish (``run_id=<id>/``; default: ``<state_path>.recovery/``; only with ``--state_path``)
``--full_read``             ``true`` reads every raw file whatever the state records (default false)
``--run_id``                run identifier (default: Glue's JOB_RUN_ID, else ``local-<UTC time>``)

Run locally::

    python -m pipeline_code.etl.glue_curate_job --dataset customer_churn.json \\
        --raw_path /tmp/lake/customer_churn --curated_path /tmp/curated/customer_churn \\
        --quarantine_path /tmp/quarantine/customer_churn --summary_path /tmp/summary.json \\
        --state_path /tmp/curate-state.json

Processing, in order:

1. List every ``*.csv`` under ``raw_path`` and read those this run reads (every one, or only what landed since the
   last successful run: see *Incremental runs* below) as strings (header row, no inference).
   Files whose header differs from the first file's fail the run (Spark's header check; the first file is the
   largest, or, in an incremental run that skips files, the header the curate state accepted: an export whose
   columns change, even only in order, fails the run it lands in, as it fails every full read from then on - which
   compares every file with the largest, so it may name another file); rows
   with a wrong number of fields are quarantined, not padded. The header's cells are read against the declaration
   (:meth:`pipeline_code.catalog.Dataset.read_header`, the local run's rule too): a column is read from the cell
   that gives its ``source`` (an export's ``Tenure (months)``), else its name, trimmed and in any case, in any order,
   and renamed to its declared name; the cells no column reads are left out, logged once and listed in the summary
   (``ignored_columns``); a declared column no cell gives, or a header text given twice, fails the run.
2. :func:`pipeline_code.etl.curate.curate` types, validates and de-duplicates.
3. The quarantine is written first, so rejected rows are never lost.
4. If ``outstanding / input > max_quarantine_ratio`` in any raw batch the summary is written with
   ``status="failed"`` and the run fails *without* publishing curated data (a bad
   batch must not half-land), without advancing the curate state and without committing the Glue job. A batch is
   the rows of the raw files under one
   ``ingest_date=<day>/`` folder (the innermost, when a path has several); the files under no such folder are one
   batch together. Judging each batch alone means a new batch that is all bad cannot pass under the good raw data
   of earlier days that a full read reads again; the whole-run ratio is still reported, and can never exceed the
   maximum when no batch does. A batch's outstanding rows are its quarantined rows but those whose record (identifier
   and event time) landed again later, valid: a correction re-sent in a later batch mends the earlier one, which
   stops failing the runs (``corrected_rows``). A batch of a few rows is judged like any other (1 bad row of 3 fails the run): a small
   batch is most often a correction or late record sent by hand, and a bad row in it is one that did not land; a
   minimum size would let every all-bad batch below it pass unseen. The summary's ``batches`` lists each batch's
   counts.
5. Otherwise curated parquet is written with dynamic partition overwrite: only
   the ``event_date`` partitions present in this run are replaced.
   Just before, with ``--state_path``, every row about to be published (the run's curated rows and the rows it keeps,
   below) is written as a *recovery copy* under ``--recovery_path`` (``run_id=<id>/``) and, once that write has
   returned, its manifest (``_recovery.json``: run, rows, event dates, time); then the curate state is written marked
   ``in_flight``: the run, the dates it replaces and the copies that hold them. Spark deletes each touched date's
   folder before moving its new files in, so a run stopped in between leaves a date emptied; the next run, finding the
   marker, does a full read and takes every row it does not curate anew back from the copies (as rows kept from
   curated data: ``recovered_from_interrupted_run`` in the summary), so a row whose raw file expired, or expires
   before that run, is not lost. A run that recovers and is stopped in turn names the earlier copies in its marker
   too, before its own (a record in a later copy wins, and the copies' rows win over the curated folders' - but a
   copy earlier than one that cannot be used only adds the records the folders lack: the run of the unusable copy may
   have moved newer values in before it stopped). A copy the marker names that is gone, unreadable or short of the
   rows it recorded - or a marker from a job version before copies - does not fail the run: it does the full read, and
   ``recovery_warning`` says which dates may miss rows whose raw expired (or hold an earlier copy's value), to be
   restored by hand from the curated bucket's old object versions.
   A complete copy (with its manifest) that no state accounts for - the state naming it was deleted, is of a layout
   this job does not read, or was replaced; or its run stopped just before its marker - is taken back too, but its
   rows only add the records the curated data lacks (nothing says what was published after it, so it never replaces a
   curated row), and ``recovery_warning`` names it. A copy without a manifest was stopped while being written (or
   written by a job version before manifests) and is never read: beside a usable state it is deleted (its run changed
   nothing, or published), with no usable state it is kept and named in ``recovery_warning``, to be checked by hand.
6. Then the curate state is written (one object, replaced whole: S3 never stores part of an object), without the
   marker, so a run that failed before step 5 leaves it as it was, and the next run reads again what this one read.
   It lists the copies the run deletes next (``published_copies``: those the marker named, those taken back, its own;
   one whose delete fails is stale to the next run, which deletes it), never a copy it keeps.

Touched partitions are *replaced* (Spark's reader, no Glue job bookmarks), so the rows of a touched date that this
run does not curate anew are read back from the curated data and kept (``kept_from_curated`` in the summary): a
record whose raw files this run did not read (an incremental run) or that expired from raw (the raw bucket deletes
objects after ``raw_expiration_days``) keeps its curated row, and a late record adds to its date instead of
replacing it. A record the run read - curated, quarantined or a duplicate - is the run's to decide. A run never
removes curated rows it did not read; a record gone from raw is removed from curated data by hand. Re-running the
job is idempotent.

Incremental runs (``--state_path``): the state records each raw file curated (its path under ``raw_path``, size and
modification time - S3's LastModified, which a rewrite changes) and what the curated rows depend on besides the raw
files (the dataset declaration, what curation does - :data:`CURATE_SEMANTICS_VERSION` and the rule values it applies,
not its source text -, ``raw_path`` and ``curated_path``). A run then reads only the
raw files not recorded as they are now - new, added later to a folder read before, or rewritten in place - and,
so that the result is the one a full read gives, every file whose path sorts after the first of them, and whole
batches (:func:`files_to_read`): the landing order is the path's (a record's copy in a later path wins), so a file
added to an older ``ingest_date=`` folder is read again with every later one, and a batch is judged on all its
files, ``corrected_rows`` seeing every later landing. The files of a new ``ingest_date=`` folder that sorts after
every other (the nightly case) are read alone. Every raw file is read (a full read) when there is
no state (first run, state deleted), when it is unreadable (the summary's ``read.reason`` says so in one line), when
it was written for another declaration, curation (version or rules), ``raw_path`` or ``curated_path`` (rows curated earlier were
typed by the old ones), when it is marked ``in_flight`` (the run that wrote it stopped while replacing curated
dates: step 5, which also takes back that run's recovery copy), or with ``--full_read true``. A raw file that is gone (expired, deleted) only leaves the
state: its records keep their curated rows, as a full read keeps them. One difference remains: when a file that
held a record's latest copy is deleted or rewritten without it while an earlier copy is still in raw, a full read
curates that earlier copy again and an incremental run keeps the latest; run with ``--full_read true`` after
removing records from raw. The summary's ``read`` says which mode ran, why, and how many files (and bytes) it read
and skipped.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from pipeline_code import catalog
from pipeline_code.core.contract import RAW_PARTITION_COLUMN, hidden_from_spark
from pipeline_code.etl.curate import (CORRUPT_RECORD_COLUMN, DATE_FORMS, EVENT_DATE_COLUMN, FUTURE_CAUSES,
                                      RULE_FUTURE, RULE_NOT_DATE, RULE_NOT_TIMESTAMP, TIMESTAMP_FORMS,
                                      BatchCounts, CurateResult, curate, raw_schema)
from pipeline_code import job_runtime
from pipeline_code.etl import curate as curation
from pipeline_code.argtypes import true_or_false
from pipeline_code.job_runtime import (
    LOG,
    Arg,
    configure_logging,
    dataset_declaration,
    default_run_id,
    glue_available,
    join_path,
    parse_job_args,
    start_spark,
    unit_fraction,
    write_json,
)

PROG = "python -m pipeline_code.etl.glue_curate_job"
SOURCE_FILE_COLUMN = "_source_file"
DEFAULT_MAX_QUARANTINE_RATIO = 0.05
ROWS_PER_FILE = 1_000_000  # target size of quarantine files
# A raw file's batch: the innermost <raw>/<dataset>/.../ingest_date=<day>/ folder of its path (Java regex, greedy: the
# last such folder), named as the folder is, so a failure names what to look for in the raw bucket.
_BATCH_FOLDER = f".*/({RAW_PARTITION_COLUMN}=[^/]+)/"
# How the failure message names the batch of the files under no ingest_date= folder (summary: batch null).
UNPARTITIONED_BATCH = f"files outside any {RAW_PARTITION_COLUMN}= folder"
# How many of the failing batches (the latest) or of the unread files a failure message names.
LISTED = 5
# Spark's messages when a file's header does not match the read schema (enforceSchema=false): other names, or another
# number of columns (a column added or dropped by a new export version).
_HEADER_MISMATCH = re.compile(r"(CSV header does not conform to the schema\.|Number of column in CSV header is not equal "
                              r"to number of fields in the schema).*?CSV file: \S+", re.DOTALL)
# Spark's error when mergeSchema meets a column typed differently in two files: its error class (Spark 3.5; Glue 5.0
# runs 3.5.4), and the message of Spark 3.3's untyped SparkException.
_CANNOT_MERGE_SCHEMAS = ("CANNOT_MERGE_SCHEMAS", "Failed merging schema")
# Spark's error (UNABLE_TO_INFER_SCHEMA) when the paths read hold no file of the format read (parquet, CSV).
_NO_FILES = "Unable to infer schema"
# A recovery copy's manifest, in its folder (Spark's reader skips a name starting with "_"): written once the copy's
# parquet write returned, so a folder without one was stopped while being written and is never read unless a marker
# names it (:func:`sort_recovery_folders`).
RECOVERY_MANIFEST = "_recovery.json"
# The curate state's layout; a state of another version is unreadable (a full read, which writes this one).
STATE_VERSION = 2
# What curation does, by hand: bump it with any change that curates the same raw data differently (curate.py's
# logic, this job's reading, ordering or batching) and that CURATE_RULES, the reader options and _BATCH_FOLDER do not
# already show; the next run is then a full read. A comment or docstring edit does not (a full read costs hours).
# 2: the timestamp range rule guards only the event time and the columns features read (records quarantined under 1
# for another timestamp column are curated by the full read).
CURATE_SEMANTICS_VERSION = 2
# The catalog values curate.py applies (patterns, boolean words, type names): a change to any one (catalog.py,
# core/value_rules.py) changes the state's code key. tests/jobs/test_curate_incremental.py checks that every catalog
# constant curate.py names is listed here.
CURATE_RULES = ("STRING", "INTEGER", "DOUBLE", "TIMESTAMP", "BOOLEAN", "INTEGER_PATTERN", "DOUBLE_PATTERN",
                "TIMESTAMP_PATTERN", "TRUE_WORDS", "FALSE_WORDS", "DATE", "DATE_PATTERN")
# How raw CSV is read (read_raw_csv): standard CSV (RFC 4180, what exporters, pandas and Excel write): a quote inside
# a quoted field is doubled, and a quoted field may hold line breaks. Spark's defaults (a backslash escape, one record
# per line) would keep the doubled quotes in the value and split such a record into malformed rows.
READER_OPTIONS = (("header", True), ("inferSchema", False), ("escape", '"'), ("multiLine", True))
# Then every file's header is checked against the read schema (a schema change fails the run instead of shifting
# values into the wrong columns), and a malformed row is kept whole in the corrupt-record column, to be quarantined.
# The most lines of a raw file read for its header row (line breaks in its quoted cells): read_raw_csv.
HEADER_LINES = 64
CHECK_OPTIONS = (("enforceSchema", False), ("mode", "PERMISSIVE"), ("columnNameOfCorruptRecord", CORRUPT_RECORD_COLUMN))


ARGS = (
    Arg("dataset", "the dataset's declaration: a JSON file (local or s3://) or JSON text", convert=dataset_declaration),
    Arg("raw_path", "directory of raw CSV files (read recursively)"),
    Arg("curated_path", "curated parquet root, partitioned by event_date"),
    Arg("quarantine_path", "quarantine root; this run writes run_id=<id>/ under it"),
    Arg("summary_path", "where to write the JSON run summary", required=False),
    Arg(
        "max_quarantine_ratio",
        "fail when a raw batch's (ingest_date= folder's) quarantined/input rows exceed this",
        required=False,
        default=DEFAULT_MAX_QUARANTINE_RATIO,
        convert=unit_fraction,
    ),
    Arg("state_path", "the curate state: JSON file/object of the raw files curated (absent: every run reads them all)",
        required=False),
    Arg("recovery_path", "where a run keeps a copy of the rows it is about to publish until its state is written "
        "(default: <state_path>.recovery/)", required=False),
    Arg("full_read", "true: read every raw file whatever the state records", required=False, default=False,
        convert=true_or_false),
    Arg("run_id", "run identifier (default: Glue JOB_RUN_ID or a UTC timestamp)", required=False),
)


class QuarantineThresholdExceeded(RuntimeError):
    """Too large a share of the input was quarantined; curated data was not published."""


@dataclass(frozen=True)
class RawFile:
    """One ``*.csv`` file under ``raw_path``, as the Hadoop file system the reader uses lists it."""

    path: str  # as the reader is given it (Hadoop's Path.toString())
    uri: str  # as Spark's input_file_name() names it (URL-encoded): its order is the landing order
    key: str  # its path under raw_path: how the state records it
    size: int
    modified: int  # milliseconds since the epoch (S3: LastModified, which every write of the object sets)

    @property
    def batch(self) -> Optional[str]:
        """Its batch, as :func:`ingest_batch` names it: the innermost ``ingest_date=`` folder, None outside one."""
        match = _BATCH_FOLDER_RE.match(self.uri)
        return match.group(1) if match else None

    @property
    def recorded_as(self) -> List[int]:
        return [self.size, self.modified]


_BATCH_FOLDER_RE = re.compile(_BATCH_FOLDER)


def list_raw(spark: Any, raw_path: str) -> Tuple[List[RawFile], List[str]]:
    """(the ``*.csv`` files under ``raw_path`` in landing order, the files the reader would skip: :func:`unread_files`),
    from one recursive listing with the Hadoop file system the reader uses (local paths and ``s3://`` alike); both
    empty when ``raw_path`` does not exist.

    What Spark itself treats as hidden is neither: a path part starting with ``.``, or with ``_`` and no ``=``, such
    as ``_SUCCESS``; an S3 folder marker ``..._$folder$``."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(raw_path)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return [], []
    prefix = fs.makeQualified(root).toString().rstrip("/") + "/"
    csv_files, skipped, files = [], [], fs.listFiles(root, True)
    while files.hasNext():
        status = files.next()
        path = status.getPath().toString()
        parts = path[len(prefix):].split("/") if path.startswith(prefix) else [path.rsplit("/", 1)[-1]]
        if hidden_from_spark(parts):
            continue
        if parts[-1].endswith(".csv"):
            csv_files.append(RawFile(path=path, uri=status.getPath().toUri().toString(), key="/".join(parts),
                                     size=int(status.getLen()), modified=int(status.getModificationTime())))
        else:
            skipped.append(path)
    return sorted(csv_files, key=lambda f: f.uri), sorted(skipped)


def unread_files(spark: Any, raw_path: str) -> List[str]:
    """The files under ``raw_path`` that the reader skips but a person would take for data, sorted: every file whose
    name does not end in ``.csv``, except what Spark itself treats as hidden (:func:`list_raw`); none when
    ``raw_path`` does not exist."""
    return list_raw(spark, raw_path)[1]


def check_no_unread_files(raw_path: str, skipped: Sequence[str]) -> None:
    """Raise ValueError naming the files under ``raw_path`` the job does not read, if any."""
    if skipped:
        shown = ", ".join(skipped[:LISTED]) + (f" and {len(skipped) - LISTED} more" if len(skipped) > LISTED else "")
        raise ValueError(
            f"raw_path {raw_path!r} holds {len(skipped)} file(s) the job does not read: {shown}; only uncompressed "
            "*.csv files (lower-case extension) are read, so their records would be left out without a word - convert "
            "them to CSV (an exporter's compression or format setting) or move them out of raw_path, and run again")


def read_raw_csv(spark: Any, files: Sequence[RawFile], dataset: catalog.Dataset,
                 header: Optional[Sequence[str]] = None) -> Tuple[Any, List[str], List[str]]:
    """The rows of ``files`` (:func:`list_raw`; at least one), every declared column as a string under its declared
    name, and the header every file must have, and the header cells no column reads (ignored).

    The header's cells are read against the declaration by :meth:`pipeline_code.catalog.Dataset.read_header` (a
    column's ``source``, else its name; trimmed, any case), the rule the local run's reader applies too: each declared
    column is renamed from its cell, the other cells are left out (listed in the summary: ``ignored_columns``).
    Adds :data:`CORRUPT_RECORD_COLUMN` (raw line of malformed rows) and
    :data:`SOURCE_FILE_COLUMN` (the file each row came from, for tracing
    quarantined rows). The files are named one by one, so no ``ingest_date=...`` folder becomes a partition column
    that is not in the catalog. The header (its cells as written, ``""`` for an empty one) is ``header`` when given
    (the curate state's, for a run that skips files curated under it), else the largest file's.

    Raises:
        ValueError: a header text given twice, or a declared column no cell gives.
    """
    from pyspark.sql import functions as F

    def reader() -> Any:
        return spark.read.options(**dict(READER_OPTIONS))

    paths = [f.path for f in files]
    if header is None:
        # The header of the largest file, so the read schema is the export's usual one and a smaller odd file fails the
        # header check below, named. Its cells as written: its first record, parsed as standard CSV (not Spark's own
        # header inference, which names an empty cell _c<n> and a repeated one <name><n>: names the per-file header
        # check below would not find), read in the driver (first_lines: no Spark job). Hadoop's line reader drops a
        # UTF-8 byte order mark, as Spark's CSV reader does.
        largest = max(files, key=lambda f: f.size).path
        # Its first lines, enough for a header whose quoted cells hold line breaks (a spreadsheet's wrapped header
        # text): the reader below (multiLine) reads such a header as one record, so it is parsed as one here too.
        # Not read so: such a header in a file whose lines end in CRLF (Spark's multiLine parser then takes the cell's
        # LF for the line separator, and the per-file header check fails: _curate names the file and the cause,
        # catalog.header_line_break_problem, which the local run's landing notes too).
        lines = first_lines(spark, largest, HEADER_LINES)
        if not lines or not lines[0].strip():  # the largest file is empty: every file is
            raise FileNotFoundError(f"no *.csv file with a header row among the {len(paths)} read")
        header = next(csv.reader(io.StringIO("\n".join(lines))))
    try:
        read = dataset.read_header(header)
    except ValueError as exc:
        raise ValueError(f"raw data of dataset {dataset.name!r}: {exc}") from None
    if read.missing:
        raise ValueError(
            f"raw data of dataset {dataset.name!r} lacks declared column(s) {dataset.described_headers(read.missing)}: "
            f"no header cell gives them (cells are compared trimmed, in any case); the cells read as no column: "
            f"{list(read.ignored)}; rename the export's header, or declare the header it has as the column's source "
            f"(datasets.{dataset.name}.columns.<column>.source)")
    # Every file's header checked against the first one's, cell by cell (CHECK_OPTIONS; Spark ignores case there).
    raw = reader().schema(raw_schema(header)).options(**dict(CHECK_OPTIONS)).csv(paths)
    # Renamed by position (a header cell may hold any character, a dot too), the ignored cells dropped.
    ignored = [f"__ignored_{i}" for i, name in enumerate(read.names) if name is None]
    renamed = [name if name is not None else f"__ignored_{i}" for i, name in enumerate(read.names)]
    raw = raw.toDF(*renamed, CORRUPT_RECORD_COLUMN).drop(*ignored)
    if read.ignored:
        LOG.info("raw header cell(s) %s are not declared columns of dataset %r (nor a column's source): ignored",
                 list(read.ignored), dataset.name)
    return raw.withColumn(SOURCE_FILE_COLUMN, F.input_file_name()), list(header), list(read.ignored)


def first_lines(spark: Any, path: str, limit: int) -> List[str]:
    """The first ``limit`` lines of the file at ``path`` (fewer when it has fewer), as ``spark.read.text(path)`` gives
    them, read in the driver: no Spark job (each is a scheduling round in Glue, issue #16).

    Spark's text reader's own line reader (Hadoop's ``LineRecordReader``: a line ends at LF, CR or CRLF; a UTF-8 byte
    order mark is dropped) over the whole file, with the Hadoop configuration Spark reads with; each line decoded as
    Spark decodes it (``UTF8String``: a byte that is not UTF-8 becomes U+FFFD)."""
    jvm = spark.sparkContext._jvm
    conf = spark._jsparkSession.sessionState().newHadoopConf()
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    size = hadoop_path.getFileSystem(conf).getFileStatus(hadoop_path).getLen()
    context = jvm.org.apache.hadoop.mapreduce.task.TaskAttemptContextImpl(
        conf, jvm.org.apache.hadoop.mapreduce.TaskAttemptID())
    reader = jvm.org.apache.hadoop.mapreduce.lib.input.LineRecordReader()
    lines: List[str] = []
    try:
        reader.initialize(jvm.org.apache.hadoop.mapreduce.lib.input.FileSplit(hadoop_path, 0, size, None), context)
        while len(lines) < limit and reader.nextKeyValue():
            line = reader.getCurrentValue()
            lines.append(jvm.org.apache.spark.unsafe.types.UTF8String.fromBytes(
                line.getBytes(), 0, line.getLength()).toString())
    finally:
        reader.close()
    return lines


# --------------------------------------------------------------------------------------
# Which raw files a run reads: the curate state
# --------------------------------------------------------------------------------------
_KEY_CHANGES = {
    "declaration": "the dataset declaration changed",
    "code": "curation changed (CURATE_SEMANTICS_VERSION or a rule it applies)",
    "raw_path": "raw_path changed",
    "curated_path": "curated_path changed",
}


def state_keys(dataset: catalog.Dataset, raw_path: str, curated_path: str) -> Dict[str, str]:
    """What the curated rows depend on besides the raw files: a change of any one makes the next run a full read.

    ``declaration``: the dataset declaration (rows curated earlier were typed and validated by it); ``code``: what
    curation does (:func:`curation_semantics`), not the text of its source, so a comment edit is no full read;
    ``raw_path`` and ``curated_path`` as given (another curated root holds none of the rows curated so far)."""
    declaration = json.dumps(dataset.to_declaration(), sort_keys=True)
    return {"declaration": _sha256(declaration), "code": _sha256(json.dumps(curation_semantics(), sort_keys=True)),
            "raw_path": raw_path.rstrip("/"), "curated_path": curated_path.rstrip("/")}


def curation_semantics(rules: Any = None) -> Dict[str, Any]:
    """What the curated rows depend on in the code: :data:`CURATE_SEMANTICS_VERSION`, the values of
    :data:`CURATE_RULES` as ``rules`` holds them (default: the catalog module curate reads them from, at call time),
    curate's timestamp format, the range of times it holds and its future-dated margin, the reader options and the
    batch folder pattern."""
    rules = catalog if rules is None else rules
    return {"version": CURATE_SEMANTICS_VERSION,
            "rules": {name: getattr(rules, name) for name in CURATE_RULES},
            # The format curate parses timestamps with is its own, not the catalog's.
            "timestamp_format": curation._TIMESTAMP_FORMAT,
            # The times the jobs hold and how far ahead an event time is future-dated (core/contract.py, as curate
            # applies them): a change quarantines or curates rows the state's files were judged on.
            "timestamp_range": [f"{curation.EARLIEST_TIMESTAMP:%Y-%m-%dT%H:%M:%SZ}",
                                f"{curation.LATEST_TIMESTAMP:%Y-%m-%dT%H:%M:%SZ}"],
            "future_seconds": curation.MAX_EVENT_TIME_AHEAD_SECONDS,
            "reader_options": [list(option) for option in READER_OPTIONS + CHECK_OPTIONS],
            "batch_folder": _BATCH_FOLDER}


@dataclass(frozen=True)
class ReadPlan:
    """The raw files a run reads, of those listed, and why all of them when it reads all."""

    files: Tuple[RawFile, ...]  # every *.csv file listed, in landing order
    read: Tuple[RawFile, ...]  # those this run reads, in landing order
    keys: Dict[str, str]
    full_reason: Optional[str]  # None: incremental
    # The header the files curated so far were read with (the state's), which every file this run reads must have
    # when it skips any: a full read checks every file against one header, so an incremental run checks its files
    # against theirs. None when the run reads every file (the largest file's header is then the reference).
    header: Optional[Tuple[str, ...]] = None

    @property
    def mode(self) -> str:
        return "incremental" if self.full_reason is None else "full"

    def counts(self) -> Dict[str, Any]:
        """The summary's ``read``: the mode, why a full read, and the files (and bytes) read and skipped."""
        read = {f.key for f in self.read}
        skipped = [f for f in self.files if f.key not in read]
        return {"mode": self.mode, "reason": self.full_reason, "files_read": len(self.read),
                "files_skipped": len(skipped), "bytes_read": sum(f.size for f in self.read),
                "bytes_skipped": sum(f.size for f in skipped)}

    def next_state(self, run_id: str, header: Sequence[str],
                   published_copies: Sequence[Tuple[str, Optional[str]]] = ()) -> Dict[str, Any]:
        """The state once this run published: every file listed, as listed (a file rewritten since the listing
        differs from it, so the next run reads it again; a file gone from raw is no longer recorded), the ``header``
        they were read with, and the recovery copies this run deletes next (``published_copies``: path and manifest
        time), so that a copy whose delete did not happen is known stale (:func:`sort_recovery_folders`)."""
        return {
            "state_version": STATE_VERSION,
            "keys": dict(self.keys),
            "header": list(header),
            "files": {f.key: f.recorded_as for f in self.files},
            "published_copies": [{"path": path, "written_at": written_at} for path, written_at in published_copies],
            "run_id": run_id,
            "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }


def plan_read(files: Sequence[RawFile], keys: Dict[str, str], state: Optional[Dict[str, Any]],
              problem: Optional[str], *, full_read: bool = False) -> ReadPlan:
    """Which of ``files`` a run reads: all of them for a full read (``full_read``; no usable ``state``, ``problem``
    saying why; a state written for other ``keys``), else :func:`files_to_read`."""
    reason = None
    if full_read:
        reason = "--full_read true was given"
    elif state is None:
        reason = problem or "no curate state"
    elif state.get("in_flight"):
        reason = _stopped_while_publishing(state["in_flight"])
    else:
        changed = [name for name in _KEY_CHANGES if state["keys"].get(name) != keys[name]]
        if changed:
            reason = "; ".join(_KEY_CHANGES[name] for name in changed) + ": the rows curated so far are read again"
    if reason is not None:
        LOG.warning("reading every raw file: %s", reason)
        return ReadPlan(tuple(files), tuple(files), keys, reason)
    read = tuple(files_to_read(files, state["files"]))
    return ReadPlan(tuple(files), read, keys, None, tuple(state["header"]) if len(read) < len(files) else None)


def in_flight_state(state: Optional[Dict[str, Any]], run_id: str, header: Sequence[str],
                    event_dates: Sequence[Any], files_read: int, *,
                    recoveries: Sequence["Recovery"] = ()) -> Dict[str, Any]:
    """The state a run writes just before it replaces curated dates: the state it started from (or, without one, an
    empty one), marked ``in_flight`` with the run, the ``event_date`` partitions it is about to replace and the
    ``recoveries`` that hold every row of them (:func:`_write_recovery`: its own copy, after those of the runs stopped
    before it, which stay until a run publishes). The final state write (:meth:`ReadPlan.next_state`) has no marker;
    a run that finds one does a full read (:func:`plan_read`) and takes back the rows of the copies
    (:func:`read_recoveries`)."""
    base = state or {"state_version": STATE_VERSION, "keys": {}, "header": list(header), "files": {}}
    dates = sorted(str(day) for day in event_dates if day is not None)
    return {**base, "in_flight": {"run_id": run_id, "event_dates": dates, "files_read": files_read,
                                  "recoveries": [r.to_json() for r in recoveries],
                                  "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}}


def _stopped_while_publishing(in_flight: Dict[str, Any]) -> str:
    dates = [str(day) for day in in_flight.get("event_dates") or []]
    which = (f"{len(dates)} event date(s), {dates[0]} to {dates[-1]}" if len(dates) > 1
             else f"event date {dates[0]}" if dates else "no event date recorded")
    return (f"the previous run stopped while publishing (run {in_flight.get('run_id')}, {which}): a full read "
            "rebuilds its dates")


# --------------------------------------------------------------------------------------
# What a run stopped while publishing leaves: its recovery copy
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recovery:
    """A run's copy of every row it was about to publish (its curated rows and those it kept), written before its
    marker (:func:`in_flight_state`) names it: at ``path``, ``rows`` rows of ``event_dates``; ``written_at`` is when
    its manifest (:data:`RECOVERY_MANIFEST`) was written (None for a copy known from a marker only)."""

    run_id: str
    path: str
    rows: int
    event_dates: Tuple[str, ...]
    written_at: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        return {"run_id": self.run_id, "path": self.path, "rows": self.rows, "event_dates": list(self.event_dates)}

    def describe(self) -> str:
        """``run <id> (<its dates>) at <path>``: how the summary names a copy."""
        dates = list(self.event_dates)
        which = (f"event dates {dates[0]} to {dates[-1]}" if len(dates) > 1 else f"event date {dates[0]}" if dates
                 else "no event date")
        return f"run {self.run_id} ({which}) at {self.path}"


@dataclass(frozen=True)
class Recovered:
    """The recovery copies a run took back (:func:`read_recoveries`): the rows that win over the curated folders'
    (``frame``, None when none), the rows that only add the records neither holds (``fill``), the copies used, their
    dates, one line per named copy it could not use (``problems``), the copies no marker named that it took back
    (``left``) and one line per such copy it could not take back, which it keeps (``kept``)."""

    frame: Optional[Any] = None
    used: Tuple[Recovery, ...] = ()
    problems: Tuple[str, ...] = ()
    fill: Optional[Any] = None
    left: Tuple[Recovery, ...] = ()
    kept: Tuple[str, ...] = ()
    # Whether a named copy earlier than an unusable one was used (its rows then only fill: see read_recoveries).
    earlier_only_fill: bool = False

    @property
    def event_dates(self) -> Tuple[str, ...]:
        return tuple(sorted({day for r in self.used for day in r.event_dates}))


def recovery_root(args: Dict[str, Any]) -> Optional[str]:
    """Where runs write their recovery copies (``run_id=<id>/`` under it): ``--recovery_path``, by default
    ``<state_path>.recovery/``; None without ``--state_path`` (no marker could name a copy to the next run)."""
    state_path = args.get("state_path")
    if not state_path:
        return None
    return (args.get("recovery_path") or state_path + ".recovery").rstrip("/") + "/"


def pending_recoveries(state: Optional[Dict[str, Any]]) -> Tuple[List[Recovery], Optional[str]]:
    """The recovery copies the marker of ``state`` names, oldest first, and why none could be when a run stopped
    while publishing and its marker names none (written by a job before recovery copies, or altered); ``([], None)``
    without a marker."""
    in_flight = (state or {}).get("in_flight")
    if not in_flight:
        return [], None
    entries = in_flight.get("recoveries")
    try:
        recoveries = [Recovery(run_id=str(e["run_id"]), path=str(e["path"]), rows=int(e["rows"]),
                               event_dates=tuple(str(day) for day in e["event_dates"])) for e in entries]
    except (TypeError, KeyError, ValueError):
        return [], f"the marker of run {in_flight.get('run_id')} names no recovery copy (written by a job version before them)"
    return recoveries, None


@dataclass(frozen=True)
class RecoveryFolders:
    """What a run does with the ``run_id=`` folders under the recovery root that the marker does not name
    (:func:`sort_recovery_folders`): take back ``left`` (complete copies no state accounts for, oldest first), delete
    ``stale`` (copies the state says a run published, or partial copies beside a usable state) once it publishes,
    and keep ``unproven`` (partial copies with no usable state to say they are not needed: one line each)."""

    left: Tuple[Recovery, ...] = ()
    stale: Tuple[str, ...] = ()
    unproven: Tuple[str, ...] = ()
    # Every folder found, named or not: a run's own copy takes another name.
    found: Tuple[str, ...] = ()


def list_recovery_folders(spark: Any, root: str) -> List[Tuple[str, Optional[Recovery]]]:
    """Each ``run_id=`` folder under ``root`` (named ``root`` + its name, as :func:`_write_recovery` names it) with
    its manifest (:data:`RECOVERY_MANIFEST`), None when it has none or an unreadable one; empty when ``root`` does not
    exist. The Hadoop file system Spark writes the copies with (local paths and ``s3://`` alike)."""
    jvm = spark.sparkContext._jvm
    folder = jvm.org.apache.hadoop.fs.Path(root)
    fs = folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(folder):
        return []
    found = []
    for status in fs.listStatus(folder):
        name = status.getPath().getName()
        if status.isDirectory() and name.startswith("run_id="):
            path = join_path(root, name)
            found.append((path, _read_manifest(spark, path)))
    return sorted(found, key=lambda pair: pair[0])


def sort_recovery_folders(found: Sequence[Tuple[str, Optional[Recovery]]], pending: Sequence[Recovery],
                          state: Optional[Dict[str, Any]]) -> RecoveryFolders:
    """Sort the folders ``found`` (:func:`list_recovery_folders`) that the marker (``pending``) does not name.

    A folder with a manifest is a complete copy. When the state the run read says the run that wrote it (or a later
    one) published it (``published_copies``: the path and the manifest's time) it is stale; else no state accounts
    for it - a run stopped mid-commit whose marker is gone with its state (deleted, of a layout this job does not
    read, replaced by hand), or a run stopped just before writing its marker - and it is taken back (``left``: its
    rows only add records the curated data lacks, :func:`read_recoveries`). A folder without one was stopped while
    being written (or was written by a job version before manifests): beside a usable state, whose marker would name
    it if it were needed, it is stale; with no usable state nothing says so, and it is kept, named in the summary."""
    named = {r.path for r in pending}
    published = {(e.get("path"), e.get("written_at")) for e in (state or {}).get("published_copies") or []
                 if isinstance(e, dict)}
    left, stale, unproven = [], [], []
    for path, manifest in found:
        if path in named:
            continue
        if manifest is None:
            if state is not None:
                stale.append(path)
            else:
                unproven.append(f"{path} (no {RECOVERY_MANIFEST}: stopped while being written, or written by a job "
                                "version before manifests; its event dates are not recorded)")
        elif (path, manifest.written_at) in published:
            stale.append(path)
        else:
            left.append(manifest)
    left.sort(key=lambda r: (r.written_at or "", r.run_id))
    return RecoveryFolders(tuple(left), tuple(stale), tuple(unproven), tuple(path for path, _ in found))


def read_recoveries(spark: Any, recoveries: Sequence[Recovery], schema: Any, dataset: catalog.Dataset, *,
                    left: Sequence[Recovery] = ()) -> Recovered:
    """The rows of the recovery copies in ``schema`` (cast as :func:`_read_curated_dates` does), each tagged with its
    location (:data:`_RECOVERED_FROM`).

    ``recoveries`` (the marker's, oldest first): a record in a later copy wins over the earlier copies' (that run had
    read them), and the copies' rows win over the curated folders' (those runs were replacing them) - but a copy
    earlier than one that cannot be used only fills (``fill``: the records the curated folders do not hold), as the
    run of the unusable copy may have moved newer rows into the folders before it stopped. A copy that is gone,
    cannot be read, or holds another number of rows than its marker recorded (partly written, or altered since) is
    left out, with one line saying so: the run goes on (the rows of the others, and raw, are not to be given up for
    it), and the summary says which dates may miss rows.

    ``left`` (copies no state accounts for: :func:`sort_recovery_folders`, oldest first) only fill, after the named
    ones (a later one first): nothing says what was published after them, so they never replace a curated row. One of
    them that cannot be read or holds another number of rows than its manifest recorded is not taken back and is kept
    (``kept``)."""
    from pyspark.sql import functions as F

    def read(recovery: Recovery, recorded: str) -> Tuple[Optional[Any], Optional[str]]:
        """(its rows, None), or (None, what is wrong with it: "is gone", ...)."""
        try:
            copy = spark.read.parquet(recovery.path)
            copy = copy.select(*[(F.col(f.name) if f.name in copy.columns else F.lit(None)).cast(f.dataType).alias(f.name)
                                 for f in schema.fields]).withColumn(_RECOVERED_FROM, F.lit(recovery.path))
            found = copy.count()
        except Exception as exc:  # noqa: BLE001 - a missing path, a corrupt file: reported, never fatal
            gone = _NO_FILES in str(exc) or "PATH_NOT_FOUND" in str(exc) or "Path does not exist" in str(exc)
            return None, "is gone" if gone else f"is unreadable ({str(exc).strip().splitlines()[0][:200]})"
        if found != recovery.rows:
            return None, (f"holds {found} rows, not the {recovery.rows} its {recorded} recorded (partly written or "
                          "altered)")
        return copy, None

    named = [(recovery, *read(recovery, "marker")) for recovery in recoveries]
    problems = [f"the recovery copy of run {r.run_id} at {r.path} {problem}" for r, _, problem in named if problem]
    unusable = [i for i, (_, copy, _) in enumerate(named) if copy is None]
    cut = unusable[-1] if unusable else -1  # the copies after the last unusable one win; the earlier ones fill
    winning = [(r, copy) for r, copy, _ in named[cut + 1:]]
    filling = [(r, copy) for r, copy, _ in named[:max(cut, 0)] if copy is not None]
    taken, kept = [], []
    for recovery in left:
        copy, problem = read(recovery, "manifest")
        if copy is None:
            kept.append(f"{recovery.describe()}, which {problem}")
        else:
            taken.append((recovery, copy))
    if problems:
        LOG.warning("recovery copies left out: %s", "; ".join(problems))
    if kept:
        LOG.warning("recovery copies no state names, kept: %s", "; ".join(kept))
    used = [r for r, copy, _ in named if copy is not None] + [r for r, _ in taken]
    # The left copies after the named ones: a left copy is most often the later (a run stopped before its marker
    # after reading the named ones).
    return Recovered(frame=_latest_first(winning, dataset), used=tuple(used), problems=tuple(problems),
                     fill=_latest_first(filling + taken, dataset), left=tuple(r for r, _ in taken), kept=tuple(kept),
                     earlier_only_fill=bool(filling))


def _latest_first(copies: Sequence[Tuple[Recovery, Any]], dataset: catalog.Dataset) -> Optional[Any]:
    """One frame of the rows of ``copies`` (oldest first) in which a record's row is the latest copy's; None when
    there is none."""
    frame = None
    for _, copy in reversed(copies):
        frame = copy if frame is None else frame.unionByName(_without(copy, frame, dataset))
    return frame


def _write_recovery(publishing: Any, root: str, run_id: str, rows: int, event_dates: Sequence[str], *,
                    taken: Set[str]) -> Optional[Recovery]:
    """Write ``publishing`` (``rows`` rows of ``event_dates``: every row the run is about to publish) as parquet
    under ``root`` at ``run_id=<run_id>/`` (another folder when one of that name is already there: a run started
    again with the same id must not replace a copy it may read), then its manifest (:func:`_write_manifest`); None
    when there is no row."""
    if rows == 0:
        return None
    path, attempt = join_path(root, f"run_id={run_id}"), 1
    while path in taken:
        attempt += 1
        path = join_path(root, f"run_id={run_id}-{attempt}")
    # A handful of files: a copy is read back only after a stop, and removed once the run publishes.
    publishing.coalesce(max(1, -(-rows // ROWS_PER_FILE))).write.mode("overwrite").parquet(path)
    recovery = Recovery(run_id=run_id, path=path, rows=rows, event_dates=tuple(event_dates),
                        written_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds"))
    _write_manifest(publishing.sparkSession, recovery)
    LOG.info("wrote the recovery copy of %d rows (%d event dates) to %s", rows, len(event_dates), path)
    return recovery


def _write_manifest(spark: Any, recovery: Recovery) -> None:
    """Write the manifest of ``recovery`` (:data:`RECOVERY_MANIFEST` in its folder: run, rows, event dates, time)
    once its parquet write has returned - Spark returns after the job commit has moved every file in - with the
    Hadoop file system that wrote the files (on S3 one PUT: an object is stored whole or not at all)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(join_path(recovery.path, RECOVERY_MANIFEST))
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    out = fs.create(path, True)
    try:
        out.write(bytearray(json.dumps({**recovery.to_json(), "written_at": recovery.written_at},
                                       sort_keys=True).encode("utf-8")))
    finally:
        out.close()


def _read_manifest(spark: Any, folder: str) -> Optional[Recovery]:
    """The manifest of the copy at ``folder`` (:func:`_write_manifest`), None when it has none or it cannot be read."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(join_path(folder, RECOVERY_MANIFEST))
    try:
        fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        if not fs.exists(path):
            return None
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(fs.open(path), "UTF-8"))
        try:
            lines, line = [], reader.readLine()
            while line is not None:
                lines.append(line)
                line = reader.readLine()
        finally:
            reader.close()
        text = "\n".join(lines)
        entry = json.loads(text)
        return Recovery(run_id=str(entry["run_id"]), path=folder, rows=int(entry["rows"]),
                        event_dates=tuple(str(day) for day in entry["event_dates"]), written_at=str(entry["written_at"]))
    except Exception as exc:  # noqa: BLE001 - a manifest cut short or altered: the copy is not proven complete
        LOG.warning("the manifest of the recovery copy at %s is unreadable: %s", folder, str(exc).splitlines()[0][:200])
        return None


def delete_recoveries(spark: Any, root: str, paths: Sequence[str]) -> Optional[str]:
    """Delete the recovery copies at ``paths`` (under ``root``: those the run took back or found stale, and its own);
    the problem in one line when a delete fails (the published state lists them, so the next run deletes them), else
    None."""
    jvm = spark.sparkContext._jvm
    try:
        for path in paths:
            folder = jvm.org.apache.hadoop.fs.Path(path)
            fs = folder.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
            if fs.exists(folder):
                fs.delete(folder, True)
    except Exception as exc:  # noqa: BLE001 - the state is published: a leftover copy is only storage
        problem = f"recovery copies under {root} not deleted ({str(exc).strip().splitlines()[0][:200]}): the next run deletes them"
        LOG.warning(problem)
        return problem
    return None


def _recovery_warning(state: Optional[Dict[str, Any]], marker_problem: Optional[str],
                      recovered: Optional[Recovered] = None, unproven: Sequence[str] = ()) -> Optional[str]:
    """The summary's line on recovery copies, None when there is nothing to say: when a run stopped while publishing
    and not every row it was publishing came back (which copies, which dates, what to do); the copies no state named
    that it took back; the copies it keeps because it could not prove them complete or take them back."""
    recovered = recovered or Recovered()
    parts = []
    if marker_problem or recovered.problems:
        in_flight = (state or {}).get("in_flight") or {}
        dates = [str(day) for day in in_flight.get("event_dates") or []]
        which = (f"event dates {dates[0]} to {dates[-1]}" if len(dates) > 1 else f"event date {dates[0]}" if dates
                 else "the dates it was replacing")
        parts.append("; ".join([marker_problem] if marker_problem else list(recovered.problems))
                     + f": this full read rebuilt {which} from raw and the copies it could read only, so rows whose "
                     "raw files expired may be missing there"
                     + (" or hold an earlier copy's value" if recovered.earlier_only_fill else "")
                     + " - restore them from the curated bucket's old object versions (docs/environment.md: Incremental runs)")
    if recovered.left:
        parts.append(f"took back {_copies(len(recovered.left))} no curate state named: "
                     + ", ".join(r.describe() for r in recovered.left)
                     + " - the state that named them is missing, unreadable or was replaced, so their rows only added "
                     "the records the curated data lacked (a record they were changing keeps its curated row)")
    kept = list(recovered.kept) + list(unproven)
    if kept:
        parts.append(f"kept {_copies(len(kept))} not read back: " + ", ".join(kept)
                     + " - check and delete by hand (docs/environment.md: Incremental runs)")
    return "; ".join(parts) or None


def _copies(count: int) -> str:
    return "1 recovery copy" if count == 1 else f"{count} recovery copies"


def files_to_read(files: Sequence[RawFile], recorded: Dict[str, Any]) -> List[RawFile]:
    """The files (in landing order) an incremental run reads for the result of a full read: none when every file is
    recorded as it is now; else every file from the first one that is not (new, or rewritten since), back to the
    first file of each batch it then reads.

    Why the files after it: a record's copy in a later path wins (:func:`curate`'s ``arrival_column``), so a file
    added to an older ``ingest_date=`` folder must not win over a later copy curated earlier - reading every later
    file lets the run decide each record it reads from all its copies that could win. Why whole batches: a batch is
    judged on all its rows, and its ``corrected_rows`` on every later landing."""
    changed = [f for f in files if recorded.get(f.key) != f.recorded_as]
    if not changed:
        return []
    first_of_batch: Dict[Optional[str], str] = {}
    for f in sorted(files, key=lambda f: f.uri):
        first_of_batch.setdefault(f.batch, f.uri)
    start = min(first_of_batch[f.batch] for f in changed)
    while True:  # the files under no ingest_date= folder are one batch that may straddle others: widen until whole
        tail = [f for f in files if f.uri >= start]
        widest = min(first_of_batch[f.batch] for f in tail)
        if widest == start:
            return sorted(tail, key=lambda f: f.uri)
        start = widest


def read_state(state_path: str, *, s3_client: Any = None) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """The curate state (:func:`job_runtime.read_state`): ``(state, None)``, or ``(None, why there is none usable)``."""
    return job_runtime.read_state(
        state_path, what="curate state", version=STATE_VERSION, s3_client=s3_client,
        valid=lambda state: isinstance(state.get("keys"), dict) and isinstance(state.get("files"), dict)
        and all(isinstance(k, str) and isinstance(v, list) for k, v in state["files"].items())
        and isinstance(state.get("header"), list) and all(isinstance(name, str) for name in state["header"])
        and isinstance(state.get("in_flight") or {}, dict))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run(spark: Any, args: Dict[str, Any]) -> Dict[str, Any]:
    """Curate the raw files of ``args["raw_path"]`` this run reads (:func:`plan_read`) and write the outputs, then
    the curate state; return the run summary.

    Raises:
        QuarantineThresholdExceeded: after writing the quarantine and the summary.
        FileNotFoundError: ``raw_path`` holds no CSV file.
        ValueError: ``raw_path`` holds files the reader would skip (:func:`unread_files`).
    """
    dataset = args["dataset"]
    run_id = args.get("run_id") or default_run_id(args)
    max_ratio = args.get("max_quarantine_ratio", DEFAULT_MAX_QUARANTINE_RATIO)
    raw_path, state_path = args["raw_path"], args.get("state_path")
    files, skipped = list_raw(spark, raw_path)
    check_no_unread_files(raw_path, skipped)
    if not files:
        raise FileNotFoundError(f"no *.csv file under raw_path {raw_path!r}")
    keys = state_keys(dataset, raw_path, args["curated_path"])
    if state_path:
        state, problem = read_state(state_path)
    else:
        state, problem = None, "no --state_path given: every run reads every raw file"
    pending, recovery_problem = pending_recoveries(state)
    root = recovery_root(args)
    # The run_id= folders the marker does not name: copies to take back (no state accounts for them), stale ones,
    # and partial ones no usable state vouches for (kept).
    found = list_recovery_folders(spark, root) if root else []
    folders = sort_recovery_folders(found, pending, state)
    # How the published state lists a copy it deletes: its path and its manifest's time (None without one).
    written = {path: manifest.written_at for path, manifest in found if manifest is not None}
    stale = [(path, written.get(path)) for path in folders.stale]
    plan = plan_read(files, keys, state, problem, full_read=bool(args.get("full_read")))
    if not plan.read:
        # Nothing landed or changed since the last successful run: nothing to curate, no date to rewrite (a marker
        # makes a full read, so none is pending here). A copy to take back waits for a run that rewrites dates.
        waiting = tuple(f"{r.describe()}, which this run, reading no raw file, did not take back (the next run that "
                        "reads one does)" for r in folders.left)
        summary = {**_summary(dataset, run_id, None, args, max_ratio, None, plan), "kept_from_curated": 0,
                   "recovered_from_interrupted_run": [],
                   "recovery_warning": _recovery_warning(state, None, Recovered(kept=waiting), folders.unproven)}
        _publish(summary, plan, args, run_id, plan.header, spark=spark, delete=folders.stale, published=stale)
        return summary
    raw, header, ignored = read_raw_csv(spark, plan.read, dataset, plan.header)
    result = _curate(raw, dataset)
    try:
        quarantine_location = _write_quarantine(result, args["quarantine_path"], run_id)
        summary = _summary(dataset, run_id, result, args, max_ratio, quarantine_location, plan)
        summary["ignored_columns"] = ignored
        # Each batch alone: the whole-run ratio would let a new batch hide under the earlier days' good rows.
        # A bad row whose record a later landing corrected is mended: only what is still outstanding counts.
        over = [batch for batch in result.batches if batch.outstanding_ratio > max_ratio]
        if over:
            summary["status"] = "failed"
            summary["error"] = _over_max_error(result, over, max_ratio, raw_path, quarantine_location)
            _write_summary(summary, args.get("summary_path"), run_id)
            raise QuarantineThresholdExceeded(summary["error"])
        # The copies a run stopped while publishing kept of what it was publishing (none without a marker), and the
        # complete copies no state accounts for (their rows only fill).
        recovered = read_recoveries(spark, pending, result.curated.schema, dataset, left=folders.left)
        kept = _rows_not_read(result, args["curated_path"], dataset, recovered)
        publishing = result.curated.unionByName(kept.frame) if kept.frame is not None else result.curated
        dates = sorted({str(day) for day in result.curated_dates if day is not None} | set(recovered.event_dates))
        own = None
        if root is not None:
            # Spark's dynamic overwrite deletes each touched event_date folder, then moves its new files in (on S3, a
            # copy per object): a run stopped in between leaves a date emptied and the state not advanced. A copy of
            # every row about to be published, then the marker naming it (and the copies of the runs stopped before,
            # which stay until a run publishes): the next run does a full read and takes the rows it does not curate
            # anew from the copies, so rows whose raw files expired are not lost.
            rows = result.curated_rows + kept.rows
            own = _write_recovery(publishing, root, run_id, rows, dates,
                                  taken={r.path for r in pending} | set(folders.found))
            write_json(state_path, in_flight_state(state, run_id, header, dates, len(plan.read),
                                                   recoveries=[*pending, *recovered.left, *([own] if own else [])]))
        _write_curated(publishing, args["curated_path"])
        LOG.info("wrote %d curated rows to %s (%d kept from earlier runs: their raw files were not read or expired)",
                 result.curated_rows + kept.rows, args["curated_path"], kept.rows)
        summary["kept_from_curated"] = kept.rows
        summary["recovered_from_interrupted_run"] = [
            {"run_id": r.run_id, "location": r.path, "rows": kept.recovered.get(r.path, 0)} for r in recovered.used]
        summary["recovery_warning"] = _recovery_warning(state, recovery_problem, recovered, folders.unproven)
        # Deleted once the state is published: the copies named, those taken back, the stale ones and its own - not
        # those it keeps (a left copy it could not read back, a partial one no usable state vouches for).
        done = [*pending, *recovered.left, *([own] if own else [])]
        _publish(summary, plan, args, run_id, header, spark=spark, delete=[r.path for r in done] + list(folders.stale),
                 published=[(r.path, r.written_at or written.get(r.path)) for r in done] + stale)
        return summary
    finally:
        result.unpersist()


def _publish(summary: Dict[str, Any], plan: ReadPlan, args: Dict[str, Any], run_id: str,
             header: Sequence[str], *, spark: Any = None, delete: Sequence[str] = (),
             published: Sequence[Tuple[str, Optional[str]]] = ()) -> None:
    """After the curated data is written: the state (one object replaced whole, so a run stopped before it leaves the
    last one), listing the ``published`` copies, then the recovery copies at ``delete`` (:func:`delete_recoveries`),
    then the summary."""
    if args.get("state_path"):
        write_json(args["state_path"], plan.next_state(run_id, header, published))
        root = recovery_root(args)
        if spark is not None and root is not None and delete:
            problem = delete_recoveries(spark, root, delete)
            if problem:
                summary["recovery_warning"] = "; ".join(filter(None, [summary.get("recovery_warning"), problem]))
    _write_summary(summary, args.get("summary_path"), run_id)


def _curate(raw: Any, dataset: catalog.Dataset) -> CurateResult:
    """curate(), with Spark's per-file header mismatch turned into a readable ValueError."""
    try:
        # The raw layout is <dataset>/ingest_date=<date>/...: the path sorting last landed last, and its batch is the
        # ingest_date= folder.
        return curate(raw, dataset, metadata_columns=(SOURCE_FILE_COLUMN,), arrival_column=SOURCE_FILE_COLUMN,
                      batch=ingest_batch())
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is the header check
        match = _HEADER_MISMATCH.search(str(exc))
        if match is None:
            raise
        named = match.group(0).rsplit("CSV file: ", 1)[1]
        problem = catalog.header_line_break_problem(_head_of(raw.sparkSession, named))
        if problem:  # not a schema change: a file Spark's reader cannot read as written
            raise ValueError(f"raw CSV file {named}: {problem}") from None
        raise ValueError(
            "a raw CSV file's header differs from the first file's (schema change?): " + " ".join(match.group(0).split())
        ) from None


def _head_of(spark: Any, path: str) -> bytes:
    """The first :data:`catalog.HEAD_BYTES` of the file at ``path``, read with the Hadoop file system Spark read it
    with (on S3 one ranged GET); b"" when it cannot be read (the header mismatch is then reported as it is)."""
    jvm = spark.sparkContext._jvm
    try:
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        stream = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(hadoop_path)
        try:
            return bytes(stream.readNBytes(catalog.HEAD_BYTES))
        finally:
            stream.close()
    except Exception:  # noqa: BLE001 - a diagnosis only: the run fails either way
        return b""


def ingest_batch() -> Any:
    """The batch of each raw row: the ``ingest_date=<day>`` folder of its source file (:data:`SOURCE_FILE_COLUMN`),
    null for a file under no such folder (those files are one batch together)."""
    from pyspark.sql import functions as F

    folder = F.regexp_extract(F.col(SOURCE_FILE_COLUMN), _BATCH_FOLDER, 1)
    return F.when(folder != "", folder)


def _write_quarantine(result: CurateResult, quarantine_path: str, run_id: str) -> Optional[str]:
    if result.quarantined_rows == 0:
        return None
    location = join_path(quarantine_path, f"run_id={run_id}")
    # Parquet keeps the rule list as an array and the raw strings exactly as read.
    # A handful of files, not one per shuffle partition: quarantines are usually small.
    files = max(1, -(-result.quarantined_rows // ROWS_PER_FILE))
    result.quarantine.coalesce(files).write.mode("overwrite").parquet(location)
    LOG.info("quarantined %d rows to %s", result.quarantined_rows, location)
    return location


def _write_curated(publishing: Any, curated_path: str) -> None:
    """Write ``publishing`` (the run's curated rows and those it keeps: :func:`_rows_not_read`), replacing the
    event_date partitions they touch; the other dates stay."""
    (
        # One task per event_date, so each date partition is written as one file
        # instead of one small file per shuffle partition.
        publishing.repartition(EVENT_DATE_COLUMN)
        .write.mode("overwrite")
        # Replace only the event_date partitions present in this batch; others stay.
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(EVENT_DATE_COLUMN)
        .parquet(curated_path)
    )


@dataclass(frozen=True)
class Kept:
    """The rows a run keeps (:func:`_rows_not_read`): the frame (None when none), how many, and how many of them came
    from each recovery copy (by location)."""

    frame: Optional[Any]
    rows: int
    recovered: Dict[str, int]


def _rows_not_read(result: CurateResult, curated_path: str, dataset: catalog.Dataset,
                   recovered: Optional["Recovered"] = None) -> Kept:
    """The curated rows of the dates this run touches whose record (identifier and event time, as :func:`curate` keys
    a record) this run does not curate anew, materialised apart from the files about to be replaced, and how many they
    are; none when none of the touched dates is curated yet. A record is more than its identifier: a customer
    recorded monthly keeps January's row when February's lands. A bad copy the run quarantines never displaces a
    curated record, as it never displaces a valid copy within a run.

    With ``recovered`` (the copies of runs stopped while publishing: :func:`read_recoveries`), their rows count as
    curated rows (a record in a winning copy wins over its row in the curated folders, which that run was replacing;
    a record in a copy that only fills counts only when neither holds it) and their dates as touched: the same rule
    keeps the records this run does not curate anew.

    Only the touched dates are read (``result.curated_dates``, found with the counts), so a run reads what it
    rewrites, not the whole curated history: see :func:`_read_curated_dates` for how each date's files' schema
    becomes this run's. The rows are counted while they are materialised (an observed metric of that job), not by a
    Spark job of their own."""
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    schema = result.curated.schema
    copies = recovered.frame if recovered is not None else None
    fill = recovered.fill if recovered is not None else None
    days = {str(day) for day in result.curated_dates if day is not None} | set(
        recovered.event_dates if recovered is not None else ())
    earlier = _read_curated_dates(result.curated.sparkSession, curated_path, sorted(days), schema)
    if earlier is not None:
        earlier = earlier.withColumn(_RECOVERED_FROM, F.lit(None).cast("string"))
        if copies is not None:
            earlier = copies.unionByName(_without(earlier, copies, dataset))
    else:
        earlier = copies
    if fill is not None:
        # Rows that never replace a row held already: only the records neither the winning copies nor the curated
        # folders hold (what a stop emptied).
        earlier = fill if earlier is None else earlier.unionByName(_without(fill, earlier, dataset))
    if earlier is None:
        return Kept(None, 0, {})
    missing = _without(earlier, result.curated, dataset)
    rows = Observation("kept_from_curated")
    paths = [r.path for r in recovered.used] if recovered is not None else []
    metrics = [F.count(F.lit(1)).alias("rows")] + [
        F.count(F.when(F.col(_RECOVERED_FROM) == path, 1)).alias(f"recovered_{i}") for i, path in enumerate(paths)]
    # Checkpointed: the rows must not be read lazily from the partitions the write is about to replace.
    kept = missing.observe(rows, *metrics).drop(_RECOVERED_FROM).localCheckpoint(eager=True)
    counts = rows.get
    return Kept(kept, counts["rows"], {path: counts[f"recovered_{i}"] for i, path in enumerate(paths)})


# The recovery copy a kept row came from (its location), null for a row read from the curated folders.
_RECOVERED_FROM = "__recovered_from"


def _without(frame: Any, newer: Any, dataset: catalog.Dataset) -> Any:
    """The rows of ``frame`` whose record (identifier and event time) is not in ``newer``."""
    from pyspark.sql import functions as F

    rid, event_time = dataset.record_identifier, dataset.event_time
    keys = newer.select(F.col(rid).alias("__rid"), F.col(event_time).alias("__event_time"))
    return frame.join(keys, on=(frame[rid] == keys["__rid"]) & frame[event_time].eqNullSafe(keys["__event_time"]),
                      how="left_anti")


def _read_curated_dates(spark: Any, curated_path: str, days: Sequence[Any], schema: Any) -> Optional[Any]:
    """The curated rows of ``days`` (the dates not curated yet skipped) in ``schema``: a column declared since the
    files were written is null, a retyped one cast; None when none of them is curated yet.

    The dates curated already are found with one listing of ``curated_path`` and read together, their files'
    schemas merged (``mergeSchema``): one schema-inference job, not one per date (each costs a Spark job, and a
    nightly run touches up to ``raw_expiration_days`` dates). Spark cannot merge a column whose type differs
    between the dates' files (declared with another type since); only then is each date read apart, with its own
    files' schema, and cast."""
    from pyspark.sql import functions as F

    def reader() -> Any:
        return spark.read.option("basePath", curated_path).option("mergeSchema", "true")

    def conformed(frame: Any) -> Any:
        return frame.select(*[(F.col(field.name) if field.name in frame.columns else F.lit(None))
                              .cast(field.dataType).alias(field.name) for field in schema.fields])

    paths = _curated_date_paths(spark, curated_path, days)
    if not paths:
        return None
    try:
        return conformed(reader().parquet(*paths))
    except Exception as exc:  # noqa: BLE001 - Spark raises a SparkException (Py4JJavaError) for the merge
        if _NO_FILES in str(exc):
            return None  # the date folders hold no parquet file
        if not any(marker in str(exc) for marker in _CANNOT_MERGE_SCHEMAS):
            raise
        LOG.info("the curated dates' schemas differ in a column's type (%s); reading the %d dates one by one",
                 _first_line(exc), len(paths))
    parts = []
    for path in paths:
        try:
            parts.append(conformed(reader().parquet(path)))
        except Exception as exc:  # noqa: BLE001 - AnalysisException for a date folder without parquet files
            if _NO_FILES not in str(exc):
                raise
    if not parts:
        return None
    earlier = parts[0]
    for part in parts[1:]:
        earlier = earlier.unionByName(part)
    return earlier


def _curated_date_paths(spark: Any, curated_path: str, days: Sequence[Any]) -> list:
    """The ``event_date=<day>`` folders of ``days`` that exist under ``curated_path`` (one listing of it, with the
    job's Hadoop file system: local or s3://), in date order; empty when ``curated_path`` does not exist yet.
    Spark's reader fails the whole read on a missing path, so the dates not curated yet are left out first."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(curated_path)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return []
    present = {status.getPath().getName() for status in fs.listStatus(root) if status.isDirectory()}
    wanted = sorted(f"{EVENT_DATE_COLUMN}={day}" for day in days)
    return [join_path(curated_path, name) for name in wanted if name in present]


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if any(marker in line for marker in _CANNOT_MERGE_SCHEMAS)]
    return (lines[0] if lines else str(exc).splitlines()[0]).strip()


def _summary(
    dataset: catalog.Dataset,
    run_id: str,
    result: Optional[CurateResult],
    args: Dict[str, Any],
    max_ratio: float,
    quarantine_location: Optional[str],
    plan: ReadPlan,
) -> Dict[str, Any]:
    """The run summary; ``result`` None for a run that read no file (every count 0)."""
    counts = result.counts() if result is not None else {
        "input_rows": 0, "curated_rows": 0, "quarantined_rows": 0, "duplicate_rows": 0, "quarantine_reasons": {},
        "batches": []}
    return {
        "dataset": dataset.name,
        "run_id": run_id,
        "status": "succeeded",
        **counts,
        "quarantine_ratio": round(result.quarantine_ratio, 6) if result is not None else 0.0,
        "max_quarantine_ratio": max_ratio,
        "raw_path": args["raw_path"],
        "curated_path": args["curated_path"],
        "quarantine_location": quarantine_location,
        "read": plan.counts(),
        "state_path": args.get("state_path"),
        # The raw header's cells no declared column reads (read_raw_csv), left out: none when no file was read.
        "ignored_columns": [],
    }


def _over_max_error(result: CurateResult, over: Sequence[BatchCounts], max_ratio: float, raw_path: str,
                    quarantine_location: Optional[str]) -> str:
    """Why the run failed: the batches over the maximum with their counts and ratios (the latest
    :data:`LISTED` of them: a backlog of bad days would otherwise fill the notice; the summary lists every
    batch), what to do, the whole run's ratio, and the top reasons of those batches' bad rows."""
    shown = over[-LISTED:]
    listed = ", ".join(f"{batch.batch or UNPARTITIONED_BATCH} ({batch.quarantined_rows}/{batch.input_rows} quarantined"
                       f"{f', {batch.corrected_rows} corrected since' if batch.corrected_rows else ''}: "
                       f"{batch.outstanding_ratio:.4f})" for batch in shown)
    if len(over) > len(shown):
        listed = f"{listed} and {len(over) - len(shown)} earlier (each batch's counts are in the run summary)"
    which, its = ("raw batch", "that batch's") if len(over) == 1 else (f"{len(over)} raw batches:", "those batches'")
    reasons: Dict[str, int] = {}
    for batch in over:
        for reason, count in batch.quarantine_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    return (
        f"quarantine ratio exceeds max_quarantine_ratio {max_ratio} in {which} {listed}; curated data NOT written; "
        f"fix or remove {its} raw files under {raw_path} and run the job again, or re-send the bad records corrected in a "
        "later batch (that mends a row whose bad value is not its record identifier or event time: such a row can "
        f"only be fixed in its file) - the quarantine keeps a copy of the bad rows, each with its reason and source "
        f"file: {quarantine_location}; the whole run's ratio: "
        f"{result.quarantine_ratio:.4f} ({result.quarantined_rows}/{result.input_rows}); "
        f"{'its' if len(over) == 1 else 'their'} top reasons: {_top_reasons(reasons)}"
    )


def _top_reasons(quarantine_reasons: Dict[str, int], limit: int = 5) -> str:
    top = sorted(quarantine_reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    listed = ", ".join(f"{reason} x{count}" for reason, count in top) or "none"
    if any(reason.endswith(f": {RULE_NOT_TIMESTAMP}") for reason, _ in top):
        listed += f" ({TIMESTAMP_FORMS})"
    if any(reason.endswith(f": {RULE_NOT_DATE}") for reason, _ in top):
        listed += f" ({DATE_FORMS})"
    if any(reason.endswith(f": {RULE_FUTURE}") for reason, _ in top):
        listed += f" ({FUTURE_CAUSES})"
    return listed


def _write_summary(summary: Dict[str, Any], summary_path: Optional[str], run_id: str) -> None:
    """Log the summary and write it to ``summary_path``; a path ending in ``/`` is a prefix that keeps
    every run's summary (``<prefix>run_id=<id>/summary.json``) instead of one object named by the prefix."""
    LOG.info("run summary: %s", json.dumps(summary, sort_keys=True))
    if summary_path:
        write_json(join_path(summary_path, f"run_id={run_id}", "summary.json") if summary_path.endswith("/") else summary_path,
                   summary)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point for Glue and ``python -m``; returns the exit code.

    In Glue, failures propagate as exceptions (the job run fails with the message);
    locally they are printed to stderr and turned into exit code 1.
    """
    configure_logging()
    glue = glue_available()
    args = parse_job_args(ARGS, argv, prog=PROG, glue=glue)
    runtime = start_spark("glue_curate_job", args, glue=glue)
    try:
        run(runtime.spark, args)
        runtime.commit()  # only a successful run advances the Glue job state
    except (QuarantineThresholdExceeded, FileNotFoundError, ValueError) as exc:
        if glue:
            raise
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        runtime.stop()
    return 0


if __name__ == "__main__":
    exit_code = main()
    if exit_code:  # never call sys.exit(0) in Glue: a clean return is the success signal
        sys.exit(exit_code)

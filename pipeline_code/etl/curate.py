"""Catalog-driven raw -> curated transformation, as pure PySpark functions.

:func:`curate` takes raw records whose columns are all strings (a CSV read with
a header and *no* schema inference) and splits them into three disjoint sets:

* **curated** - every value cast to its catalog dtype and valid, one record per
  ``(record_identifier, event_time)``, plus the ``event_date`` partition column;
* **quarantine** - records breaking at least one rule, with their original raw
  values, a human-readable ``_quarantine_reason`` naming every failing column and
  rule (``"tenure_months: not an integer: 'abc'; region: missing required value"``)
  and the machine-readable ``_quarantine_rules`` (``["tenure_months: not an integer", ...]``);
* **duplicates** - valid records whose key was already taken by the kept record.

Nothing is dropped silently: ``curated_rows + quarantined_rows + duplicate_rows
== input_rows`` holds by construction (every input row gets exactly one status)
and is reported on the result, for the whole input and for each batch it landed in (``batch``: the job names a
batch by the raw file's ``ingest_date=`` folder), so a caller can judge each landing on its own.

Rules, per catalog column (values are trimmed first; an empty string is null):

* ``integer``: optional sign and up to 18 digits, optionally followed by ``.0``
  (exporters often write integers as floats); cast to 64-bit ``bigint``.
* ``double``: a plain decimal or scientific number (no ``NaN``/``Infinity``, no
  Java suffixes like ``1d``), finite after the cast.
* ``timestamp``: ISO-8601 ``yyyy-MM-ddTHH:mm:ss[.fraction][Z|+HH:MM|+HHMM]`` or
  ``yyyy-MM-dd HH:mm:ss[...]``; a value without offset is UTC (whatever the Spark
  session time zone); impossible dates (Feb 30) fail; so does, in the event time or a column a feature reads
  (``days_since``), an instant outside the times the jobs hold (:data:`RULE_TIMESTAMP_RANGE`: before 1677-09-22 or
  from 2262-04-11 on, ``contract.EARLIEST_TIMESTAMP`` / ``LATEST_TIMESTAMP``), which the feature job's pandas could
  not hold. A timestamp column no feature reads never reaches pandas (the feature job selects only the columns it
  reads), so it keeps any year its pattern takes (an export's ``9999-12-31T23:59:59Z`` "no end", curated before the
  range rule came, is curated after it).
* ``date``: exactly ``yyyy-MM-dd`` (``catalog.DATE_PATTERN``), a real day (Feb 30 fails, so does
  ``2019-4-12``, ``12/04/2019`` or a timestamp); cast to a Spark ``date``, whatever the session time zone.
* ``string``: trimmed; categoricals (``allowed`` set) are also lower-cased before
  being checked against ``allowed``.
* ``boolean``: one of ``catalog.TRUE_WORDS`` / ``FALSE_WORDS`` in any case (``true``, ``1``, ``yes``
  ...); anything else fails ("not a boolean").
* ``nullable=False``: a null/empty value fails ("missing required value").
* the event time: more than ``MAX_EVENT_TIME_AHEAD_SECONDS`` (5 minutes) after the run started fails
  (:data:`RULE_FUTURE`): a future-dated record (a typo'd year, a local time without its offset) would stay in the
  online store over every later record of its id. Such a record is curated by a later full read once its time
  has come, like any record still in raw.
* ``minimum``/``maximum``: inclusive bounds on the cast number.

The casts go through regular expressions and ``try_*`` functions so the result
does not depend on ``spark.sql.ansi.enabled`` (Spark 4 turns it on by default).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from pyspark import StorageLevel
from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import WindowSpec

from pipeline_code import catalog
from pipeline_code.core.contract import (CURATED_PARTITION_COLUMN, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP,
                                        MAX_EVENT_TIME_AHEAD_SECONDS, RULE_TIMESTAMP_RANGE)

# Output column names.
EVENT_DATE_COLUMN = CURATED_PARTITION_COLUMN
QUARANTINE_REASON_COLUMN = "_quarantine_reason"
QUARANTINE_RULES_COLUMN = "_quarantine_rules"
# Spark's CSV reader puts the raw line of a row with the wrong number of fields in
# this column when it is part of the read schema; curate() quarantines such rows.
CORRUPT_RECORD_COLUMN = "_corrupt_record"

# Rule names, used in reasons and as keys of the reason counts.
RULE_MISSING = "missing required value"
RULE_NOT_INTEGER = "not an integer"
RULE_NOT_NUMBER = "not a number"
RULE_NOT_TIMESTAMP = "not a timestamp"
# What a failed timestamp needs, said once next to the reasons that count it (the reasons stay short, to count by).
TIMESTAMP_FORMS = ("a timestamp is yyyy-MM-ddTHH:mm:ss[.fraction][Z|+HH:MM] or yyyy-MM-dd HH:mm:ss (UTC without an "
                   "offset); a date alone or another layout (03/15/2025 14:22) is not one: export full ISO timestamps, "
                   "or declare the column a string")
# An event time later than the run's start by more than the clock skew allowed (contract.MAX_EVENT_TIME_AHEAD_SECONDS):
# curated, the online store would keep the record over every later one of its id.
RULE_FUTURE = f"more than {MAX_EVENT_TIME_AHEAD_SECONDS} s after the run started (future-dated)"
RULE_NOT_DATE = "not a date"
# What a failed date needs, said once next to the reasons that count it.
DATE_FORMS = ("a date is yyyy-MM-dd (2019-04-12), a real day; another layout (12/04/2019, 2019-4-12) or a date with a "
              "time is not one: export dates as yyyy-MM-dd, declare a column of dates with times a timestamp, or "
              "declare the column a string")
# What such a time usually is and what to do, said once next to the reasons that count it (as TIMESTAMP_FORMS).
FUTURE_CAUSES = ("an event time ahead of the run: a typo'd year, or a local time exported without its offset and read "
                 "as UTC - export the offset, e.g. 2026-03-15T14:22:00+02:00; a re-send with the right time is curated, "
                 "but the future-dated row counts toward its batch until its raw file is fixed or removed: "
                 "docs/environment.md, Future-dated records")
RULE_NOT_BOOLEAN = "not a boolean"
RULE_NOT_ALLOWED = "not an allowed value"
RULE_MALFORMED_ROW = "malformed CSV row (wrong number of fields)"
# A text value holding U+FFFD, the character a UTF-8 reader puts where bytes are not UTF-8 (a Windows-1252 "é"): the
# export was written in another encoding, and its text would be curated mangled.
RULE_NOT_UTF8 = "not UTF-8 text (export the file as UTF-8)"

# Row statuses (internal).
_CURATED, _QUARANTINED, _DUPLICATE = "curated", "quarantined", "duplicate"
_STATUS = "__status"
# Whether a quarantined row's record landed again later, valid (:func:`_corrected`).
_CORRECTED = "__corrected"
_TYPED_PREFIX = "__typed__"

_INTEGER_RE = catalog.INTEGER_PATTERN
_DOUBLE_RE = catalog.DOUBLE_PATTERN
_TIMESTAMP_RE = catalog.TIMESTAMP_PATTERN
_TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss[.SSSSSSSSS]XXX"
_DATE_RE = catalog.DATE_PATTERN
_DATE_FORMAT = "yyyy-MM-dd"

_SPARK_TYPES = {
    catalog.STRING: T.StringType(),
    catalog.INTEGER: T.LongType(),
    catalog.DOUBLE: T.DoubleType(),
    catalog.TIMESTAMP: T.TimestampType(),
    catalog.BOOLEAN: T.BooleanType(),
    catalog.DATE: T.DateType(),
}


@dataclass(frozen=True)
class BatchCounts:
    """The row counts of one batch of the input (the rows :func:`curate`'s ``batch`` expression gives one value):
    ``batch`` is that value, None for the rows it gives none (or for the whole input, when no ``batch`` is given)."""

    batch: Optional[str]
    input_rows: int
    curated_rows: int
    quarantined_rows: int
    duplicate_rows: int
    quarantine_reasons: Dict[str, int]
    # Of the quarantined rows, those whose record (identifier and event time) a later landing brought valid: a
    # correction re-sent, which the curated data holds instead.
    corrected_rows: int = 0

    @property
    def quarantine_ratio(self) -> float:
        """Quarantined / input rows of the batch (a batch has at least one row)."""
        return self.quarantined_rows / self.input_rows

    @property
    def outstanding_ratio(self) -> float:
        """Quarantined rows not corrected since / input rows: what a fix of this batch still has to mend."""
        return (self.quarantined_rows - self.corrected_rows) / self.input_rows

    def counts(self) -> Dict[str, object]:
        """The batch's name, row counts, ratio (rounded to 6 places) and reason counts, JSON-serialisable."""
        return {
            "batch": self.batch,
            "input_rows": self.input_rows,
            "curated_rows": self.curated_rows,
            "quarantined_rows": self.quarantined_rows,
            "duplicate_rows": self.duplicate_rows,
            "corrected_rows": self.corrected_rows,
            "quarantine_ratio": round(self.quarantine_ratio, 6),
            "quarantine_reasons": dict(sorted(self.quarantine_reasons.items())),
        }


@dataclass(frozen=True)
class CurateResult:
    """The three disjoint outputs of :func:`curate` and their counts.

    The DataFrames share one persisted intermediate, so counting and writing them
    does not re-read the raw data; call :meth:`unpersist` when done.
    ``quarantine_reasons`` counts quarantined records per ``"column: rule"``
    (a record failing two rules counts once for each). ``curated_dates`` are the distinct ``event_date`` values of
    the curated rows, sorted (the partitions a write of ``curated`` touches), found by the same Spark job as the
    counts. ``batches`` are the same counts per batch of the input (:class:`BatchCounts`, the batch without a name
    first, then by name), from the same Spark job too; an empty input has none.
    """

    curated: DataFrame
    quarantine: DataFrame
    duplicates: DataFrame
    input_rows: int
    curated_rows: int
    quarantined_rows: int
    duplicate_rows: int
    quarantine_reasons: Dict[str, int]
    curated_dates: Tuple[Optional[dt.date], ...] = ()
    batches: Tuple[BatchCounts, ...] = ()
    _staged: Optional[DataFrame] = field(default=None, repr=False, compare=False)

    @property
    def quarantine_ratio(self) -> float:
        """Quarantined / input rows; 0.0 for an empty input."""
        return self.quarantined_rows / self.input_rows if self.input_rows else 0.0

    def counts(self) -> Dict[str, object]:
        """The row counts and reason counts, then each batch's (``batches``: :meth:`BatchCounts.counts`), as JSON."""
        return {
            "input_rows": self.input_rows,
            "curated_rows": self.curated_rows,
            "quarantined_rows": self.quarantined_rows,
            "duplicate_rows": self.duplicate_rows,
            "quarantine_reasons": dict(sorted(self.quarantine_reasons.items())),
            "batches": [batch.counts() for batch in self.batches],
        }

    def unpersist(self) -> None:
        """Release the cached intermediate (the DataFrames stay usable, recomputed on demand)."""
        if self._staged is not None:
            self._staged.unpersist()


def spark_schema(dataset: catalog.Dataset) -> T.StructType:
    """The curated schema: every catalog column with its Spark type, then ``event_date``."""
    fields = [T.StructField(c.name, _SPARK_TYPES[c.dtype], True) for c in dataset.columns]
    return T.StructType(fields + [T.StructField(EVENT_DATE_COLUMN, T.DateType(), True)])


def raw_schema(columns: Sequence[str], with_corrupt_record: bool = True) -> T.StructType:
    """All-string read schema for a CSV with header ``columns``.

    With ``with_corrupt_record`` the schema ends with :data:`CORRUPT_RECORD_COLUMN`,
    which makes Spark's PERMISSIVE CSV reader keep the raw line of malformed rows
    (too many / too few fields) instead of silently padding or truncating them.
    """
    fields = [T.StructField(name, T.StringType(), True) for name in columns]
    if with_corrupt_record:
        fields.append(T.StructField(CORRUPT_RECORD_COLUMN, T.StringType(), True))
    return T.StructType(fields)


def check_raw_columns(
    columns: Iterable[str], dataset: catalog.Dataset, metadata_columns: Sequence[str] = ()
) -> None:
    """Raise ValueError naming every missing and unexpected raw column.

    A schema change upstream must stop the pipeline, not silently pass.
    ``metadata_columns`` (and :data:`CORRUPT_RECORD_COLUMN`) are allowed extras.
    Column order does not matter; names are compared exactly (case-sensitive).
    """
    present = list(columns)
    expected = [c.name for c in dataset.columns]
    allowed_extra = set(metadata_columns) | {CORRUPT_RECORD_COLUMN}
    missing = [name for name in expected if name not in present]
    unexpected = [name for name in present if name not in expected and name not in allowed_extra]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing expected columns {missing}")
        if unexpected:
            problems.append(f"unexpected columns {unexpected}")
        raise ValueError(
            f"raw data does not match the catalog schema of dataset {dataset.name!r}: "
            + "; ".join(problems)
            + f" (expected exactly {expected})"
        )


def curate(raw_df: DataFrame, dataset: catalog.Dataset, *, metadata_columns: Sequence[str] = (),
           arrival_column: Optional[str] = None, batch: Optional[SparkColumn] = None,
           now: Optional[dt.datetime] = None) -> CurateResult:
    """Type, validate and de-duplicate ``raw_df`` according to ``dataset``'s catalog schema.

    Args:
        raw_df: raw records, every column a string (read CSVs with
            ``header=True`` and no schema inference). Column order is free.
        dataset: the catalog dataset describing the columns and keys.
        metadata_columns: extra columns added by the reader (e.g. the source
            file name) that are not part of the schema; they are carried into
            the quarantine output for tracing and left out of the curated one.
            :data:`CORRUPT_RECORD_COLUMN` is always treated as one when present.
        arrival_column: a metadata column whose greater value marks a later landing (the source file's path,
            ``<dataset>/ingest_date=<date>/...``); by default None: no landing order is known.
        batch: an expression over ``raw_df``'s columns (metadata columns included) naming the batch each row landed
            in (the job's: the raw file's ``ingest_date=`` folder), null for a row of no named batch; by default None:
            the whole input is one batch, named None. Only the counting job evaluates it: it adds no column to the
            outputs or to the persisted intermediate.
        now: the run's start, which an event time may pass by at most ``MAX_EVENT_TIME_AHEAD_SECONDS``
            (:data:`RULE_FUTURE`); by default the time of the call.

    Returns:
        A :class:`CurateResult`; its counts, per batch too, are computed eagerly (one Spark job
        over a persisted intermediate).

    Raises:
        ValueError: missing or unexpected columns, or non-string raw columns.

    Duplicates of ``(record_identifier, event_time)`` among the valid records are
    resolved deterministically: the one that landed last wins (``arrival_column``: a correction re-sent later
    replaces the record), then the record with the fewest empty values, ties broken by the raw values in catalog
    column order.
    """
    check_raw_columns(raw_df.columns, dataset, metadata_columns)
    _check_string_columns(raw_df, dataset)
    if CORRUPT_RECORD_COLUMN in raw_df.columns and CORRUPT_RECORD_COLUMN not in metadata_columns:
        metadata_columns = tuple(metadata_columns) + (CORRUPT_RECORD_COLUMN,)

    now = now or dt.datetime.now(dt.timezone.utc)
    # Each column's trimmed text built once and used by its parse, its checks and the record window: the same
    # expression each time (a Column is immutable), at a third of the Py4J calls a fresh one cost at each use.
    texts = {c.name: _text(c.name) for c in dataset.columns}
    checks = _all_checks(dataset, texts, tuple(metadata_columns), now)
    staged = _stage(raw_df, dataset, tuple(metadata_columns), arrival_column, checks, texts).persist(
        StorageLevel.MEMORY_AND_DISK)
    status_counts, reasons, curated_dates, batches = _count(staged, batch)
    return CurateResult(
        curated=_curated_view(staged, dataset, _CURATED),
        quarantine=_quarantine_view(staged, dataset, metadata_columns, checks),
        duplicates=_curated_view(staged, dataset, _DUPLICATE),
        input_rows=sum(status_counts.values()),
        curated_rows=status_counts.get(_CURATED, 0),
        quarantined_rows=status_counts.get(_QUARANTINED, 0),
        duplicate_rows=status_counts.get(_DUPLICATE, 0),
        quarantine_reasons=reasons,
        curated_dates=curated_dates,
        batches=batches,
        _staged=staged,
    )


# --------------------------------------------------------------------------------------
# Staging: one row per input row with raw values, typed values, rules and a status.
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Check:
    """One rule on one column: ``failed`` is true when the rule is broken."""

    failed: SparkColumn
    key: str  # "column: rule" - the reason-count key
    message: SparkColumn  # the human-readable reason fragment


def _all_checks(dataset: catalog.Dataset, texts: Dict[str, SparkColumn], metadata_columns: Tuple[str, ...],
                now: dt.datetime) -> List[_Check]:
    """Every rule of every row, in reason order: each column's (:func:`_checks`, on its ``texts`` entry), the future
    event time's, then the malformed row's (when the reader keeps :data:`CORRUPT_RECORD_COLUMN`). They read the raw and
    typed columns :func:`_stage` keeps, so they can be evaluated on its rows."""
    held = _times_the_jobs_hold(dataset)
    checks = [check for column in dataset.columns
              for check in _checks(column, texts[column.name], held=column.name in held)]
    checks.append(_future_check(dataset, now))
    if CORRUPT_RECORD_COLUMN in metadata_columns:
        checks.append(_malformed_row_check())
    return checks


def _stage(raw_df: DataFrame, dataset: catalog.Dataset, metadata_columns: Tuple[str, ...],
           arrival_column: Optional[str], checks: Sequence[_Check], texts: Dict[str, SparkColumn]) -> DataFrame:
    """Raw values + typed values -> + rules (``checks``: :func:`_all_checks`), event date -> + status; ``texts``: each
    column's :func:`_text`.

    Three projections, so each typed value is parsed once and the checks refer to
    it by name (Spark keeps separate projections when an expensive expression is
    used several times, instead of inlining it into every check). The reason text is not staged: only a quarantined
    row has one, so :func:`_quarantine_view` writes it for those rows alone (about 1 % of a run's), not for every row
    the counting job stages (a quarter of that job's CPU in a local run).
    """
    raw_names = [c.name for c in dataset.columns] + list(metadata_columns)
    typed = raw_df.select(
        *[F.col(name) for name in raw_names],
        *[_parse(column, texts[column.name]).alias(_typed(column.name)) for column in dataset.columns],
    )

    rules = F.filter(F.array(*[F.when(c.failed, F.lit(c.key)) for c in checks]), lambda r: r.isNotNull())
    checked = typed.select(
        "*",
        _utc_date(F.col(_typed(dataset.event_time)), raw_df).alias(EVENT_DATE_COLUMN),
        rules.alias(QUARANTINE_RULES_COLUMN),
    )
    # One projection over one window (a record's rows, valid ones first): one shuffle and one sort for both.
    record = _record_window(dataset, texts, arrival_column)
    return checked.select("*", _status(record).alias(_STATUS), _corrected(dataset, arrival_column, record).alias(_CORRECTED))


def _typed(name: str) -> str:
    return _TYPED_PREFIX + name


def _text(name: str) -> SparkColumn:
    """The trimmed raw value of column ``name``, null when null or blank (``catalog.trimmed_text``, which serving
    applies to a request's text: Spark's trim removes spaces only)."""
    raw = F.col(name)
    trimmed = F.trim(raw)
    return F.when(raw.isNotNull() & (trimmed != ""), trimmed)


def _parse(column: catalog.Column, text: SparkColumn) -> SparkColumn:
    """The typed value of ``column`` from its ``text`` (:func:`_text`): null when blank or when the text does not
    parse."""
    if column.dtype == catalog.STRING:
        return F.lower(text) if column.allowed is not None else text
    if column.dtype == catalog.INTEGER:
        # Cast only the integer part of a well-shaped value: 18 digits always fit in a
        # long, so the cast cannot fail (or raise, under ANSI mode).
        return F.when(text.rlike(_INTEGER_RE), F.regexp_extract(text, r"^([+-]?[0-9]+)", 1).cast(T.LongType()))
    if column.dtype == catalog.DOUBLE:
        number = F.when(text.rlike(_DOUBLE_RE), text.cast(T.DoubleType()))
        # 1e999 is well-shaped but overflows to infinity: not a usable number.
        return F.when(F.abs(number) != float("inf"), number)
    if column.dtype == catalog.TIMESTAMP:
        return _parse_timestamp(text)
    if column.dtype == catalog.DATE:
        return _parse_date(text)
    if column.dtype == catalog.BOOLEAN:
        word = F.lower(text)
        return F.when(word.isin(*catalog.TRUE_WORDS), F.lit(True)).when(word.isin(*catalog.FALSE_WORDS), F.lit(False))
    raise ValueError(f"unsupported column dtype {column.dtype!r}")  # pragma: no cover - catalog validates dtypes


def _parse_timestamp(text: SparkColumn) -> SparkColumn:
    """Parse ISO-8601-like text to a timestamp, treating a missing offset as UTC.

    The text is normalised to ``yyyy-MM-dd HH:mm:ss[.f]+HH:MM`` so a single strict
    pattern (independent of the session time zone) does the parsing; impossible
    dates make ``try_to_timestamp`` return null instead of rolling over.
    """
    day = F.regexp_extract(text, _TIMESTAMP_RE, 1)
    clock = F.regexp_extract(text, _TIMESTAMP_RE, 2)
    offset = F.regexp_extract(text, _TIMESTAMP_RE, 4)
    offset = (
        F.when((offset == "") | (offset == "Z"), F.lit("+00:00"))
        .when(F.length(offset) == 5, F.concat(F.substring(offset, 1, 3), F.lit(":"), F.substring(offset, 4, 2)))
        .otherwise(offset)
    )
    normalised = F.concat(day, F.lit(" "), clock, offset)
    return F.when(text.rlike(_TIMESTAMP_RE), F.try_to_timestamp(normalised, F.lit(_TIMESTAMP_FORMAT)))


def _parse_date(text: SparkColumn) -> SparkColumn:
    """Parse ``yyyy-MM-dd`` text to a date; anything else (another layout, an impossible day) is null.

    The pattern gates the parser, as for timestamps: Spark's parser refuses ``2019-4-12``, but its legacy one reads
    it, which makes Spark 3's default policy raise (failing the job) instead of returning null. The text is parsed as midnight in the
    session time zone and converted back to a date in that zone: the same day in any zone.
    """
    # Parsed from the pattern's groups, not the text: Java's "$" lets a final line break through (2019-04-12\n), which
    # the parser would not take (and Spark 3's legacy check would fail the job on).
    day = F.concat_ws("-", *[F.regexp_extract(text, _DATE_RE, group) for group in (1, 2, 3)])
    return F.when(text.rlike(_DATE_RE), F.to_date(F.try_to_timestamp(day, F.lit(_DATE_FORMAT))))


_PARSE_RULES = {
    catalog.INTEGER: RULE_NOT_INTEGER,
    catalog.DOUBLE: RULE_NOT_NUMBER,
    catalog.TIMESTAMP: RULE_NOT_TIMESTAMP,
    catalog.BOOLEAN: RULE_NOT_BOOLEAN,
    catalog.DATE: RULE_NOT_DATE,
}


def _times_the_jobs_hold(dataset: catalog.Dataset) -> frozenset:
    """The columns the feature job hands to pandas as times: the event time and those its features read
    (``days_since``; the feature job selects no other column, ``features.ingestion.run.needed_columns``)."""
    return frozenset([dataset.event_time, *(name for feature in dataset.features
                                            for name in feature.expr.source_columns())])


def _checks(column: catalog.Column, text: SparkColumn, *, held: bool = True) -> List[_Check]:
    """The rules ``column`` must satisfy, in a fixed order: required, UTF-8 (text), parse/allowed, range; ``text`` is
    its :func:`_text`. ``held``: whether the jobs hold it as a time (:func:`_times_the_jobs_hold`), so a timestamp
    must be in their range."""
    blank = text.isNull()
    value = F.col(_typed(column.name))
    checks: List[_Check] = []
    if not column.nullable:
        key = f"{column.name}: {RULE_MISSING}"
        checks.append(_Check(blank, key, F.lit(key)))
    if column.dtype == catalog.STRING:
        checks.append(_value_check(column, F.col(column.name).contains("\ufffd"), RULE_NOT_UTF8))
    if column.dtype in _PARSE_RULES:
        checks.append(_value_check(column, ~blank & value.isNull(), _PARSE_RULES[column.dtype]))
    if column.dtype == catalog.TIMESTAMP and held:
        outside = (value < F.lit(EARLIEST_TIMESTAMP)) | (value >= F.lit(LATEST_TIMESTAMP))
        checks.append(_value_check(column, value.isNotNull() & outside, RULE_TIMESTAMP_RANGE))
    if column.allowed is not None:
        checks.append(_value_check(column, value.isNotNull() & ~value.isin(list(column.allowed)), RULE_NOT_ALLOWED))
    if column.minimum is not None:
        rule = f"below minimum {_number(column.minimum)}"
        checks.append(_value_check(column, value.isNotNull() & (value < column.minimum), rule))
    if column.maximum is not None:
        rule = f"above maximum {_number(column.maximum)}"
        checks.append(_value_check(column, value.isNotNull() & (value > column.maximum), rule))
    return checks


def _future_check(dataset: catalog.Dataset, now: dt.datetime) -> _Check:
    """The event time more than ``MAX_EVENT_TIME_AHEAD_SECONDS`` after ``now`` (an aware time: the comparison is of
    instants, whatever the session time zone)."""
    column = next(c for c in dataset.columns if c.name == dataset.event_time)
    if now.tzinfo is None:
        raise ValueError(f"now must be an aware time (UTC), got {now!r}")
    limit = now + dt.timedelta(seconds=MAX_EVENT_TIME_AHEAD_SECONDS)
    value = F.col(_typed(column.name))
    return _value_check(column, value.isNotNull() & (value > F.lit(limit)), RULE_FUTURE)


def _value_check(column: catalog.Column, failed: SparkColumn, rule: str) -> _Check:
    """A rule whose reason quotes the raw value: ``"col: rule: 'raw'"``."""
    message = F.concat(F.lit(f"{column.name}: {rule}: '"), F.col(column.name), F.lit("'"))
    return _Check(failed, f"{column.name}: {rule}", message)


def _malformed_row_check() -> _Check:
    """A row of the wrong number of fields; its reason quotes the raw row, and says when the row spans several lines:
    a quote opened and never closed makes the reader take the lines up to the next quote as one field."""
    line = F.col(CORRUPT_RECORD_COLUMN)
    key = f"{CORRUPT_RECORD_COLUMN}: {RULE_MALFORMED_ROW}"
    lines = F.size(F.split(line, "\n"))
    joined = F.when(lines > 1, F.concat(F.lit(" (it spans "), lines.cast("string"), F.lit(
        " lines: a quote opened and never closed joins the lines after it, up to the next quote, into this one row; "
        "those records are in it, not counted apart)"))).otherwise(F.lit(""))
    return _Check(line.isNotNull(), key, F.concat(F.lit(f"{key}: '"), line, F.lit("'"), joined))


def _number(value: float) -> str:
    """``0`` / ``600`` / ``0.5`` - bounds as written in the catalog, without ``.0`` or exponents."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _utc_date(timestamp: SparkColumn, raw_df: DataFrame) -> SparkColumn:
    """The UTC calendar date of ``timestamp``.

    to_date() uses the session time zone; shifting by that zone first yields the
    UTC date whatever the session is configured to.
    """
    session_tz = raw_df.sparkSession.conf.get("spark.sql.session.timeZone")
    return F.to_date(F.to_utc_timestamp(timestamp, session_tz))


def _record_window(dataset: catalog.Dataset, texts: Dict[str, SparkColumn],
                   arrival_column: Optional[str] = None) -> WindowSpec:
    """The rows of one record (typed identifier and event time), the valid ones first, then the latest landing
    (``arrival_column``, when given), the fewest blanks (``texts``: each column's :func:`_text`), the raw values in
    catalog column order."""
    valid = F.size(F.col(QUARANTINE_RULES_COLUMN)) == 0
    blanks = sum((F.when(texts[c.name].isNull(), 1).otherwise(0) for c in dataset.columns), F.lit(0))
    latest = [F.col(arrival_column).desc_nulls_last()] if arrival_column else []
    return Window.partitionBy(F.col(_typed(dataset.record_identifier)), F.col(_typed(dataset.event_time))).orderBy(
        valid.desc(), *latest, blanks.asc(), *[F.col(c.name).asc_nulls_last() for c in dataset.columns])


def _status(record: WindowSpec) -> SparkColumn:
    """quarantined | curated | duplicate for each staged row, over :func:`_record_window`.

    Duplicates are ranked only among valid rows (they come first in their record's window, so the first row is
    the first valid one): an invalid copy never displaces a valid record. The latest landing ranks first
    (``arrival_column``, when given).
    """
    valid = F.size(F.col(QUARANTINE_RULES_COLUMN)) == 0
    rank = F.row_number().over(record)
    return F.when(~valid, F.lit(_QUARANTINED)).when(rank == 1, F.lit(_CURATED)).otherwise(F.lit(_DUPLICATE))


def _corrected(dataset: catalog.Dataset, arrival_column: Optional[str], record: WindowSpec) -> SparkColumn:
    """Whether a quarantined row's record landed again later, valid: a row of the same record identifier and event
    time (as :func:`_status` keys a record) whose ``arrival_column`` is greater, a correction re-sent. False for every
    row when no landing order is known, and for a row whose identifier does not parse (it names no record).
    ``record`` (:func:`_record_window`) is taken whole: the same window as the status, so the same shuffle and sort."""
    if arrival_column is None:
        return F.lit(False)
    valid = F.size(F.col(QUARANTINE_RULES_COLUMN)) == 0
    whole = record.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    latest_valid = F.max(F.when(valid, F.col(arrival_column))).over(whole)
    return F.coalesce(~valid & F.col(_typed(dataset.record_identifier)).isNotNull()
                      & (latest_valid > F.col(arrival_column)), F.lit(False))


def _count(staged: DataFrame, batch: Optional[SparkColumn] = None) -> Tuple[
        Dict[str, int], Dict[str, int], Tuple[Optional[dt.date], ...], Tuple[BatchCounts, ...]]:
    """(rows per status, quarantined rows per rule, the curated rows' distinct event dates, the counts per batch) in a
    single Spark job.

    Grouping by the rule list itself keeps the result tiny (one row per distinct
    combination of broken rules) while giving both counts at once; the curated rows are grouped by their event
    date as well (one row per date), so the dates a write touches need no job of their own, and every row by its
    batch (one more grouping column: a batch of daily raw files spans a date or two), so judging each batch needs
    none either.
    """
    curated_date = F.when(F.col(_STATUS) == _CURATED, F.col(EVENT_DATE_COLUMN)).alias("__curated_date")
    batch_name = (batch if batch is not None else F.lit(None).cast(T.StringType())).alias("__batch")
    groups = staged.groupBy(_STATUS, QUARANTINE_RULES_COLUMN, curated_date, batch_name, _CORRECTED).count().collect()
    status_counts: Dict[str, int] = {}
    reasons: Dict[str, int] = {}
    dates = set()
    per_batch: Dict[Optional[str], Tuple[Dict[str, int], Dict[str, int]]] = {}
    for row in groups:
        status_counts[row[_STATUS]] = status_counts.get(row[_STATUS], 0) + row["count"]
        batch_statuses, batch_reasons = per_batch.setdefault(row["__batch"], ({}, {}))
        batch_statuses[row[_STATUS]] = batch_statuses.get(row[_STATUS], 0) + row["count"]
        if row[_CORRECTED]:
            batch_statuses[_CORRECTED] = batch_statuses.get(_CORRECTED, 0) + row["count"]
        for rule in row[QUARANTINE_RULES_COLUMN]:
            reasons[rule] = reasons.get(rule, 0) + row["count"]
            batch_reasons[rule] = batch_reasons.get(rule, 0) + row["count"]
        if row[_STATUS] == _CURATED:
            dates.add(row["__curated_date"])
    # The rows of no named batch first, then the batches by name (ingest_date=<day>: in landing order).
    batches = tuple(
        BatchCounts(batch=name, input_rows=sum(n for status, n in statuses.items() if status != _CORRECTED),
                    curated_rows=statuses.get(_CURATED, 0), quarantined_rows=statuses.get(_QUARANTINED, 0),
                    duplicate_rows=statuses.get(_DUPLICATE, 0), quarantine_reasons=batch_reasons,
                    corrected_rows=statuses.get(_CORRECTED, 0))
        for name, (statuses, batch_reasons) in sorted(
            per_batch.items(), key=lambda item: (item[0] is not None, item[0] or ""))
    )
    # None (curated rows without an event time, where it is declared nullable) sorts first.
    return (status_counts, reasons, tuple(sorted(dates, key=lambda day: (day is not None, day or dt.date.min))),
            batches)


# --------------------------------------------------------------------------------------
# Views of the staged rows
# --------------------------------------------------------------------------------------
def _curated_view(staged: DataFrame, dataset: catalog.Dataset, status: str) -> DataFrame:
    """Typed catalog columns in catalog order, plus ``event_date`` (the UTC date of the event)."""
    typed = [F.col(_typed(c.name)).alias(c.name) for c in dataset.columns]
    return staged.filter(F.col(_STATUS) == status).select(*typed, EVENT_DATE_COLUMN)


def _quarantine_view(staged: DataFrame, dataset: catalog.Dataset, metadata_columns: Sequence[str],
                     checks: Sequence[_Check]) -> DataFrame:
    """Original raw values, metadata columns, the reason text (the message of each of ``checks`` - those
    :func:`_stage` ruled with - that fails, in their order) and the rule keys."""
    columns = [c.name for c in dataset.columns] + list(metadata_columns)
    reason = F.concat_ws("; ", *[F.when(c.failed, c.message) for c in checks])
    return staged.filter(F.col(_STATUS) == _QUARANTINED).select(
        *columns, reason.alias(QUARANTINE_REASON_COLUMN), QUARANTINE_RULES_COLUMN
    )


def _check_string_columns(raw_df: DataFrame, dataset: catalog.Dataset) -> None:
    names = {c.name for c in dataset.columns}
    typed = [f.name for f in raw_df.schema.fields if f.name in names and not isinstance(f.dataType, T.StringType)]
    if typed:
        raise ValueError(
            f"raw columns {typed} are not strings: read the raw data with inferSchema=false "
            "(curate() does its own typing so that bad values are quarantined, not nulled)"
        )

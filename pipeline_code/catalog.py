"""The contract of every dataset, column and feature in mlops-loop, and the declarations it is read from.

Datasets are *configuration*: each is declared under ``datasets:`` in ``config/mlops-loop.yaml``
(columns, keys, labels and features) and parsed by :func:`parse_dataset`, the one code path that
turns a declaration into a :class:`Dataset`, at synth and in every job alike:

* the CDK app reads it to generate the SageMaker FeatureGroups (names, types,
  record identifier, event time) and to check each model against its dataset;
* the declaration travels to the jobs as JSON (:meth:`Dataset.to_declaration`): inside the
  model spec for the SageMaker jobs, as a small S3 object for the Glue jobs, and inside
  the model artefact for serving, so a deployed model always reads the dataset it was
  trained on;
* the Glue ETL job reads it to type, validate and quarantine raw records;
* the feature-ingestion job interprets each feature's expression to compute it;
* serving computes the same features from raw fields.

It is deliberately standard-library only (besides ``pipeline_code.core``, which is too) and Python 3.9
compatible: it is
imported by the CDK app (Python 3.11), by Glue 5 Spark jobs and by Glue Python
shell jobs (Python 3.9), and by SageMaker Processing containers.

Feature computations are *declarative* expressions in a closed language (``ratio(a, b)``,
``log1p(x)`` ...), parsed with :mod:`ast` and never evaluated as Python, so that one definition
is interpreted identically wherever features are computed, and the infrastructure can reason
about them (types, source columns) without running them.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core import record_kinds
from pipeline_code.core.contract import TRIMMED
from pipeline_code.core.problem import BINARY, MAX_CLASSES, MULTICLASS, PROBLEM_TYPES, REGRESSION
# normalise_category, shown and the boolean words: defined with the rules in the core (the by-id front checks and types
# stored values with them).
from pipeline_code.core.value_rules import (  # noqa: F401 - re-exported
    FALSE_WORDS, TRUE_WORDS, ValueRule, normalise_category, parse_boolean, shown,
)

# --------------------------------------------------------------------------------------
# Column types of the raw / curated schema and the Feature Store types they map to.
# --------------------------------------------------------------------------------------
STRING = "string"
INTEGER = "integer"
DOUBLE = "double"
TIMESTAMP = "timestamp"
# The text a timestamp column accepts (the curate job parses it; no offset means UTC): ISO-8601 date and time to the
# second, a fraction of up to 9 digits, ``T`` or a space between them, and ``Z`` or a ``+HH:MM`` / ``+HHMM`` offset. Year
# 0000 is none (Spark's parser reads it as 1 BC, a date Python cannot hold: collecting one crashed the curate job).
TIMESTAMP_PATTERN = r"^((?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?)(Z|[+-][0-9]{2}:?[0-9]{2})?$"
BOOLEAN = "boolean"
# A calendar date: the text a date column accepts is ``yyyy-MM-dd`` exactly (after trimming), a real day of the
# proleptic Gregorian calendar (``2026-02-30`` is not one). The curate job parses it to a date and quarantines any other
# text; serving reads a raw date field by the same rule (:func:`parse_date`). No time zone: a day, not an instant.
DATE = "date"
DATE_PATTERN = r"^(?!0000)([0-9]{4})-([0-9]{2})-([0-9]{2})$"  # year 0000 is none (Spark would read it as 1 BC)
# What Java's "$" (the curate job's rlike) lets through before the end of the text: one final line terminator.
_JAVA_LINE_END = re.compile("(\r\n|[\n\r\u0085\u2028\u2029])$")
# The text an integer / a double column accepts, after trimming (the curate job casts only text these match; serving
# refuses other numeric text): ASCII digits with an optional sign - an integer up to 18 digits (always fits in 64
# bits), optionally followed by ``.0`` (exporters write integers as floats); a double as a plain decimal or scientific
# number. No ``1_0`` or other digits Python's ``float()`` reads (Arabic-Indic, full-width), no NaN or Infinity words.
INTEGER_PATTERN = r"^[+-]?[0-9]{1,18}(\.0*)?$"
DOUBLE_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"

COLUMN_TYPES = (STRING, INTEGER, DOUBLE, TIMESTAMP, BOOLEAN, DATE)

# SageMaker Feature Store knows exactly three feature types.
INTEGRAL = "Integral"
FRACTIONAL = "Fractional"
FS_STRING = "String"

FEATURE_TYPES = (INTEGRAL, FRACTIONAL, FS_STRING)


@dataclass(frozen=True)
class Column:
    """One column of a dataset's raw (and curated) schema.

    ``nullable=False`` columns route a record to quarantine when missing;
    ``minimum``/``maximum`` and ``allowed`` route it to quarantine when violated.
    """

    name: str
    dtype: str
    nullable: bool = True
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    allowed: Optional[Tuple[str, ...]] = None
    description: str = ""
    # The header text the raw files give this column when it is not its name (an export's ``Tenure (months)``); the
    # readers take the column from the header cell it matches (:meth:`Dataset.read_header`).
    source: Optional[str] = None

    @property
    def header(self) -> str:
        """The header text the raw files give this column: its ``source``, else its name."""
        return self.source if self.source is not None else self.name

    def __post_init__(self) -> None:
        if self.dtype not in COLUMN_TYPES:
            raise ValueError(f"column {self.name!r}: dtype {self.dtype!r} is not one of {COLUMN_TYPES}")
        if self.allowed is not None and self.dtype != STRING:
            raise ValueError(f"column {self.name!r}: 'allowed' is only valid for string columns")
        if self.allowed is not None:
            odd = [v for v in self.allowed if normalise_category(v) != v]
            if odd:
                raise ValueError(f"column {self.name!r}: allowed values {odd} are not in normal form "
                                 f"(write {[normalise_category(v) for v in odd]})")

    def read_text(self, value: Optional[str]) -> Optional[str]:
        """A string value of this column as the ETL curates it (``etl.curate``): :func:`trimmed_text`, and a column
        with ``allowed`` values in normal form (:func:`normalise_category`). Serving reads a raw field with it, so
        ``" NYC"`` scores as ``"NYC"`` did in training and a blank coalesces like a null."""
        text = trimmed_text(value)
        return normalise_category(text) if text is not None and self.allowed is not None else text

    @property
    def rule(self) -> Optional[ValueRule]:
        """The rules a present value of this column keeps (bounds of a number column, ``allowed`` of a string one), or
        None when it declares none."""
        numeric = self.dtype in (INTEGER, DOUBLE)
        minimum, maximum = (self.minimum, self.maximum) if numeric else (None, None)
        if minimum is None and maximum is None and self.allowed is None:
            return None
        return ValueRule(minimum=minimum, maximum=maximum, allowed=self.allowed)

    def value_problem(self, value: Any) -> Optional[str]:
        """Why a present, typed value breaks this column's declared rules (None when it keeps them): the value
        rules the ETL quarantines on, for one value at a time (serving checks raw fields with it).

        ``value`` is already of the column's type (a number, a string, a bool); numbers are checked against
        ``minimum``/``maximum`` (inclusive), strings in normal form against ``allowed`` (:attr:`rule`). A missing
        value (None, NaN) has no problem here: whether it may be missing is the caller's rule (the ETL's
        ``nullable``, serving's required fields).
        """
        rule = self.rule
        return None if rule is None else rule.problem(value)


def target_classes(column: Column, problem_type: str = BINARY) -> Tuple[str, ...]:
    """The classes of a classification target, in the order the model numbers them (label code = position):
    ``("0", "1")`` for a binary target, the declared ``allowed`` values or ``min`` .. ``max`` for a multiclass
    one; ``()`` for regression. Assumes :func:`target_problem` found nothing wrong."""
    if problem_type == BINARY:
        return ("0", "1")
    if problem_type == MULTICLASS:
        if column.dtype == STRING:
            return tuple(column.allowed or ())
        return tuple(str(v) for v in range(int(column.minimum), int(column.maximum) + 1))
    return ()


class ClassCoder:
    """Class name -> code (position in ``classes``), the one rule prepare, capture decoding and the monitor's
    delayed labels share: a name in any case and spacing (:func:`normalise_category`), or a whole number for
    integer classes (``3``, ``3.0``, ``"3"``). :meth:`code` is None for anything that is not a class."""

    def __init__(self, classes: Tuple[str, ...]) -> None:
        self.classes = tuple(str(c) for c in classes)
        self._index = {c: i for i, c in enumerate(self.classes)}

    def code(self, value: Any) -> Optional[int]:
        if value is None or isinstance(value, (bool, dict, list)) or (isinstance(value, float) and value != value):
            return None
        name = normalise_category(str(value))
        if name not in self._index:
            try:
                number = float(name)
            except (ValueError, OverflowError):
                return None
            name = str(int(number)) if number.is_integer() else name
        return self._index.get(name)


def target_problem(column: Column, problem_type: str = BINARY) -> Optional[str]:
    """Why ``column`` cannot be the target of a ``problem_type`` model (None when it can).

    Binary: a boolean, or an integer declared with ``min: 0`` and ``max: 1``. Multiclass: a string with
    ``allowed`` values, or an integer with ``min`` and ``max``, 3 to ``MAX_CLASSES`` classes. Regression:
    an integer or a double.
    """
    shape = f"{column.dtype}" + (f" in [{column.minimum:g}, {column.maximum:g}]"
                                 if column.minimum is not None and column.maximum is not None else "")
    if problem_type == BINARY:
        if column.dtype == BOOLEAN or (column.dtype == INTEGER and column.minimum == 0 and column.maximum == 1):
            return None
        return (f"column {column.name!r} is {shape}; a binary target is a boolean column or an integer column "
                f"declared with min: 0 and max: 1 (or declare problem_type: {MULTICLASS} or {REGRESSION})")
    if problem_type == MULTICLASS:
        if column.dtype == STRING and column.allowed is not None:
            count = len(column.allowed)
        elif column.dtype == INTEGER and column.minimum is not None and column.maximum is not None:
            count = int(column.maximum) - int(column.minimum) + 1
        else:
            return (f"column {column.name!r} is {shape}; a multiclass target is a string column with 'allowed' "
                    "values or an integer column with min and max (its classes)")
        if count < 3:
            return (f"column {column.name!r} has {count} classes; a multiclass target has at least 3 "
                    f"(two classes: declare problem_type: {BINARY} with a boolean or 0/1 target)")
        if count > MAX_CLASSES:
            return f"column {column.name!r} has {count} classes; a multiclass target has at most {MAX_CLASSES}"
        return None
    if problem_type == REGRESSION:
        if column.dtype in (INTEGER, DOUBLE):
            return None
        return f"column {column.name!r} is {shape}; a regression target is an integer or double column"
    return f"problem_type {problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}"


def parse_date(value: str) -> Optional[dt.date]:
    """The calendar day ``value`` names when it is a date as the curate job reads one (trimmed of spaces,
    :data:`DATE_PATTERN` before one final line break, a real day from 0001-01-01 to 9999-12-31), else None:
    ``2019-4-12``, ``2026-02-30``, ``12/04/2019`` and a timestamp are not dates."""
    if not isinstance(value, str):
        return None
    # The curate job's rlike lets one final line terminator through (Java's "$") and reads the day from the groups.
    text = _JAVA_LINE_END.sub("", trimmed_text(value) or "", count=1)
    match = re.fullmatch(DATE_PATTERN, text)
    if match is None:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def trimmed_text(value: Optional[str]) -> Optional[str]:
    """Text as the ETL reads it: without leading and trailing spaces; None, empty or all spaces is missing."""
    if value is None:
        return None
    return value.strip(TRIMMED) or None


# --------------------------------------------------------------------------------------
# Feature expressions: a tiny, closed language. Interpreters live in the job code
# (pipeline_code.features.compute); every operator listed here must be implemented there.
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expr:
    """A node of a feature expression: ``op`` applied to ``args``.

    Args are column names (``str``), nested ``Expr`` or literal parameters.
    """

    op: str
    args: Tuple[object, ...] = ()

    def reads_event_time(self) -> bool:
        """Whether the expression reads the record's own event time (``days_since`` anywhere in it): computing it needs
        the record's event time, which a raw request at serving must then carry."""
        return self.op in EVENT_TIME_OPS or any(isinstance(a, Expr) and a.reads_event_time() for a in self.args)

    def missing_without(self, present: Any) -> bool:
        """Whether the expression is missing (null) whatever values the columns in ``present`` hold, because the others
        it reads are missing: ``coalesce`` when each of its arguments is, every other operator when one of its column
        arguments is (a literal parameter never is). A record read as raw fields lacking a column the expression reads
        is scored with it missing only when this holds (``coalesce(total_charges, ...)`` computes it otherwise).
        One definition with the by-id front: :func:`pipeline_code.core.record_kinds.missing_without` of
        :meth:`missing_tree`."""
        return record_kinds.missing_without(self.missing_tree(), present)

    def missing_tree(self) -> Any:
        """The expression's missing tree (:mod:`pipeline_code.core.record_kinds`): a column argument by its name, a
        literal as ``False``, a nested expression as its own tree, under ``all`` (coalesce) or ``any``."""
        def tree(arg: object) -> Any:
            if isinstance(arg, Expr):
                return arg.missing_tree()
            return arg if self.op in _COLUMN_ARG_OPS and isinstance(arg, str) else False

        return ["all" if self.op == "coalesce" else "any", *(tree(arg) for arg in self.args)]

    def source_columns(self) -> Tuple[str, ...]:
        """Names of the curated columns this expression reads, in first-seen order."""
        out: list = []
        for arg in self.args:
            if isinstance(arg, Expr):
                out.extend(c for c in arg.source_columns() if c not in out)
            elif self.op in _COLUMN_ARG_OPS and isinstance(arg, str) and arg not in out:
                out.append(arg)
        return tuple(out)


# Operators whose string arguments name columns (for the others, strings are literals).
_COLUMN_ARG_OPS = {"col", "ratio", "log1p", "clip", "coalesce", "bucket", "product", "days_since"}

OPERATORS = (
    "col",  # the column itself
    "ratio",  # a / b; null when b is 0 or either side is null
    "log1p",  # log(1 + x); null when x < 0 or null
    "clip",  # x limited to [lo, hi]
    "coalesce",  # first non-null of its args
    "bucket",  # label of the half-open interval [edge_i, edge_i+1) x falls in
    "product",  # a * b
    "days_since",  # whole days (floor) from a date / timestamp column to the record's own event time; null when null
)
# The operators that read the record's event time besides their arguments (:meth:`Expr.reads_event_time`).
EVENT_TIME_OPS = ("days_since",)


def col(name: str) -> Expr:
    return Expr("col", (name,))


def ratio(numerator: object, denominator: object) -> Expr:
    return Expr("ratio", (numerator, denominator))


def log1p(x: object) -> Expr:
    return Expr("log1p", (x,))


def clip(x: object, lo: float, hi: float) -> Expr:
    return Expr("clip", (x, float(lo), float(hi)))


def coalesce(*xs: object) -> Expr:
    return Expr("coalesce", tuple(xs))


def product(a: object, b: object) -> Expr:
    return Expr("product", (a, b))


def days_since(column: str) -> Expr:
    """Whole days (floor) from ``column`` (a date or timestamp) to the record's own event time."""
    return Expr("days_since", (column,))


def bucket(x: object, edges: Tuple[float, ...], labels: Tuple[str, ...]) -> Expr:
    """``labels[i]`` for ``edges[i-1] <= x < edges[i]``; len(labels) == len(edges) + 1."""
    if len(labels) != len(edges) + 1:
        raise ValueError("bucket: need exactly one more label than edges")
    if list(edges) != sorted(edges):
        raise ValueError("bucket: edges must be ascending")
    return Expr("bucket", (x, tuple(float(e) for e in edges), tuple(labels)))


@dataclass(frozen=True)
class FeatureDef:
    """One feature: its Feature Store name and type, and how it is computed."""

    name: str
    feature_type: str
    expr: Expr
    description: str = ""

    def __post_init__(self) -> None:
        if self.feature_type not in FEATURE_TYPES:
            raise ValueError(f"feature {self.name!r}: type {self.feature_type!r} is not one of {FEATURE_TYPES}")
        if self.expr.op not in OPERATORS:
            raise ValueError(f"feature {self.name!r}: unknown operator {self.expr.op!r}")

    @property
    def source_column(self) -> Optional[str]:
        """The raw column this feature is unchanged (``col(x)``), or None for any other expression."""
        expr = self.expr
        return expr.args[0] if expr.op == "col" and len(expr.args) == 1 and isinstance(expr.args[0], str) else None


# How much of a raw CSV file :func:`header_line_break_problem` reads: its header record and the line end after it.
HEAD_BYTES = 65536


def header_line_break_problem(head: bytes) -> str:
    """Why the Glue curate job cannot read a raw CSV file that starts with ``head`` ("" when it can): a line break
    inside a quoted header cell that is not how the file's records end (an LF in a cell, CRLF records: a Windows
    spreadsheet's export). Spark's multi-line CSV reader takes the first line break of a file, quoted or not, for its
    line separator (univocity's detection), so it would read every record with a stray carriage return, its header
    too, and fail the file's header check; the local reader (Python's csv) reads it."""
    text = head.decode("utf-8", errors="replace")
    first = next((i for i, ch in enumerate(text) if ch in "\r\n"), None)
    if first is None:
        return ""
    in_cell = False
    for i, ch in enumerate(text):
        if ch == '"':
            in_cell = not in_cell  # a doubled quote inside a cell toggles twice
        elif ch in "\r\n" and not in_cell:
            ends = "\r\n" if text[i:i + 2] == "\r\n" else ch
            break
    else:
        return ""  # the header record does not end within ``head``
    meets = "\r\n" if text[first:first + 2] == "\r\n" else text[first]
    if first == i or meets == ends:
        return ""
    return (f"its header holds a line break inside a quoted cell written as {meets!r}, and its records end in {ends!r}: "
            "Spark's multi-line CSV reader takes the first line break of a file for its line separator, so the curate "
            f"job would read every record with a stray {ends.replace(meets, '', 1) or ends!r}; export it with {meets!r} "
            "line endings, or without the line break in the header cell")


def header_key(text: Optional[str]) -> str:
    """How a raw header cell and a column's header text are compared: trimmed and lower-cased (Spark's check of each
    raw file's header ignores case; an exporter's padding is no other column)."""
    return (text or "").strip().lower()


@dataclass(frozen=True)
class RawHeader:
    """A raw file's header read against a dataset (:meth:`Dataset.read_header`)."""

    names: Tuple[Optional[str], ...]  # per header position: the declared column it holds, None for a cell ignored
    ignored: Tuple[str, ...]  # the cells no declared column reads, as written, in header order
    missing: Tuple[str, ...]  # the declared columns no cell gives, in declared order


@dataclass(frozen=True)
class Dataset:
    """A source dataset: its raw schema, its entity keys, its labels and its features.

    One SageMaker FeatureGroup is generated per dataset; models select features from it.
    """

    name: str
    description: str
    record_identifier: str
    event_time: str
    columns: Tuple[Column, ...]
    labels: Tuple[str, ...]
    features: Tuple[FeatureDef, ...]
    # Generated sample data only (the local run before real data exists): the share of 1s of its binary labels.
    # None: the generator's default (0.2). Real data never reads it.
    sample_positive_rate: Optional[float] = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset {self.name!r}: duplicate column names")
        for key in (self.record_identifier, self.event_time, *self.labels):
            if key not in names:
                raise ValueError(f"dataset {self.name!r}: {key!r} is not a column")
        feature_names = [f.name for f in self.features]
        if len(set(feature_names)) != len(feature_names):
            raise ValueError(f"dataset {self.name!r}: duplicate feature names")
        reserved = {self.record_identifier, self.event_time}
        for feature in self.features:
            if feature.name in reserved:
                raise ValueError(f"dataset {self.name!r}: feature {feature.name!r} clashes with a key column")
            if feature.name in self.labels:
                raise ValueError(f"dataset {self.name!r}: feature {feature.name!r} is a label (target leakage)")
            for source in feature.expr.source_columns():
                if source not in names:
                    raise ValueError(
                        f"dataset {self.name!r}: feature {feature.name!r} reads unknown column {source!r}"
                    )
                if source in self.labels:
                    raise ValueError(
                        f"dataset {self.name!r}: feature {feature.name!r} reads label {source!r} (target leakage)"
                    )

    def column(self, name: str) -> Column:
        return self._by_name[0][name]

    def feature(self, name: str) -> FeatureDef:
        return self._by_name[1][name]

    @property
    def _by_name(self) -> Tuple[Dict[str, Column], Dict[str, FeatureDef]]:
        """Columns and features by name, built once: serving looks a feature's rule up for every field of every record,
        and a scan of a wide dataset's hundreds of columns each time made a request's time grow with fields x features."""
        try:
            return self.__dict__["_by_name_cache"]
        except KeyError:
            built = ({c.name: c for c in self.columns}, {f.name: f for f in self.features})
            object.__setattr__(self, "_by_name_cache", built)
            return built

    @property
    def feature_names(self) -> Tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def column_names(self) -> Tuple[str, ...]:
        """Every raw column's name, in declared order: what a raw request's fields are named."""
        return tuple(c.name for c in self.columns)

    @property
    def raw_header(self) -> Tuple[str, ...]:
        """The header row a raw file of this dataset gives, in declared order: each column's :attr:`Column.header`
        (what the local run writes into its raw lake, generated or landed, for the curate job to read)."""
        return tuple(c.header for c in self.columns)

    def read_header(self, cells: Sequence[Optional[str]]) -> "RawHeader":
        """How a raw file whose header row is ``cells`` (as written; None or "" for an empty cell) is read: the
        column each position holds, the cells no column reads (ignored) and the columns no cell gives (missing).

        A cell gives the column whose :attr:`Column.header` (its ``source``, else its name) it equals, compared by
        :func:`header_key` (trimmed, any case). The one rule both readers apply: the curate job (Spark, every raw
        file) and the local run's reader of the user's files.

        Raises:
            ValueError: a header text given by two cells (compared by :func:`header_key`, an ignored one too: the
                curate job checks each file's header by its cells, so each must be distinct).
        """
        keys = [header_key(cell) for cell in cells]
        seen: Dict[str, List[int]] = {}
        for position, key in enumerate(keys):
            seen.setdefault(key, []).append(position)
        twice = [(key, positions) for key, positions in seen.items() if len(positions) > 1]
        if twice:
            key, positions = twice[0]
            written = cells[positions[0]] or ""
            numbers = ", ".join(str(p + 1) for p in positions)
            raise ValueError(f"its header gives {written!r} {len(positions)} times (columns {numbers}): each column of "
                             "the export needs a header of its own (the header is how each raw file's columns are "
                             "checked); rename or remove the copies in the export")
        by_key = {header_key(c.header): c.name for c in self.columns}
        names = tuple(by_key.get(key) for key in keys)
        ignored = tuple(cells[i] or "" for i, name in enumerate(names) if name is None)
        missing = tuple(c.name for c in self.columns if c.name not in names)
        return RawHeader(names=names, ignored=ignored, missing=missing)

    def described_headers(self, columns: Sequence[str]) -> str:
        """``'tenure_months' (header 'Tenure (months)'), 'region'``: columns named with the header text the files
        give them, where that is their ``source``."""
        return ", ".join(f"{name!r}" + (f" (header {self.column(name).source!r})"
                                        if self.column(name).source is not None else "") for name in columns)

    def shadowing_features(self, features: Sequence[str]) -> Tuple[str, ...]:
        """Those of ``features`` (in their order) that have the name of a raw column but are not that column unchanged
        (anything but ``col(<their own name>)``): ``num_open_accounts: clip(num_open_accounts, 0, 50)``,
        ``amount: log1p(amount)``, ``fee: amount``. A raw request's field of that name holds the column, not the
        feature."""
        columns = set(self.column_names)
        defined = {f.name: f for f in self.features}
        return tuple(name for name in features
                     if name in columns and name in defined and defined[name].source_column != name)

    def raw_request_problem(self, features: Sequence[str], extras: Sequence[str] = ()) -> Optional[str]:
        """Why serving would read a raw request for a model of ``features`` as precomputed features and score a raw
        value where training had a computed one, or None. ``extras``: the features the model's requests also carry
        for monitoring (its sensitive attribute and slices), read by name like the features.

        Serving takes an object that holds every model feature for precomputed (``pipeline_code.serving.records``,
        docs/invocation-contract.md "Which one?"). When every model feature has the name of a raw column, a raw
        request holds them all and is read that way: each field is taken as the feature of its name, as it is. That
        is the same value for a feature that is its column unchanged, and a value training never had for one that
        transforms it (:meth:`shadowing_features`): the refusal. A model with one feature named like no column is
        never read so (a raw request lacks that feature), whatever else shadows its column: neither refused nor
        warned about (the sample's models do it, and a rename costs a new Feature Group column and the frozen test
        sets).
        """
        columns = set(self.column_names)
        if not features or any(name not in columns for name in features):
            return None
        known = set(self.feature_names)
        read = [*features, *(name for name in extras if name not in features and name in known)]
        shadowing = list(dict.fromkeys(self.shadowing_features(read)))
        if not shadowing:
            return None
        first = shadowing[0]
        listed = ", ".join(f"{name!r} = {format_expression(self.feature(name).expr)}" for name in shadowing)
        one = len(shadowing) == 1
        it = "it" if one else "them"
        return (f"every feature has the name of a raw column of dataset {self.name!r}, so serving reads a raw request, "
                f"which holds those columns, as precomputed features: the model would score the raw "
                f"{'value' if one else 'values'} of {listed} instead of computing {it} as training did; rename {it} "
                f"(e.g. {first!r} to {_renamed(first, self.feature(first).expr)!r}) or add to the model a feature "
                "whose name is not a column")

    def required_column(self, feature: str) -> Optional[str]:
        """The column feature ``feature`` is never missing for, or None when it may be missing.

        A feature that is a column unchanged (``col(x)``) declared ``nullable: false`` was never missing in training
        (the ETL quarantines a record without it), so serving refuses it missing and the by-id front treats a stored
        record without it as unusable. Any other feature may be missing: a nullable column, or one computed (a
        ``ratio`` by 0, a ``log1p`` of a negative ...).
        """
        source = self.feature(feature).source_column
        return source if source is not None and not self.column(source).nullable else None

    def required_features(self, features: Sequence[str]) -> Tuple[str, ...]:
        """Those of ``features`` (in their order) that are never missing (:meth:`required_column`)."""
        return tuple(name for name in features if self.required_column(name) is not None)

    def raw_source_columns(self, features: Sequence[str]) -> List[str]:
        """The raw fields ``features`` are computed from, in order: the columns their expressions read, and the event
        time for one that counts days up to it (``days_since``)."""
        out: List[str] = []
        for name in features:
            expr = self.feature(name).expr
            for column in (*expr.source_columns(), *((self.event_time,) if expr.reads_event_time() else ())):
                if column not in out:
                    out.append(column)
        return out

    def record_kinds(self, features: Sequence[str], extras: Sequence[str] = ()) -> record_kinds.RecordKinds:
        """What serving's rule telling a precomputed record from a raw one (:meth:`record_source`) needs of a model
        reading ``features`` (and the frame-only ``extras``): the by-id front's spec carries it under policy
        ``compute`` (:attr:`pipeline_code.core.online_features.LookupSpec.records`), so the front refuses alone an
        instance serving would refuse. It walks the whole dataset: serving derives it once per model
        (:attr:`pipeline_code.serving.records.FeatureContract.record_kinds`), not per record."""
        raw_columns = set(self.column_names)
        read = {*features, *extras}
        others = tuple(f for f in self.feature_names if f not in raw_columns and f not in read)
        return record_kinds.RecordKinds(
            dataset=self.name, features=tuple(features),
            named_like_no_column=tuple(name for name in features if name not in raw_columns),
            other_features=others,
            missing_when=tuple((name, self.feature(name).expr.missing_tree()) for name in features) if others else ())

    def record_source(self, features: Sequence[str], extras: Sequence[str], record: Mapping[str, Any], *,
                      required: Optional[Sequence[str]] = None,
                      kinds: Optional[record_kinds.RecordKinds] = None) -> Tuple[str, List[str]]:
        """(``features`` | ``raw``, missing fields) of a JSON record (its keys, and whether a required raw field is null)
        sent to a model reading ``features`` (and the frame-only ``extras``): serving's rule
        (:func:`pipeline_code.serving.records.feature_rows`), which the template diff's MODEL CONTRACT call-out applies to
        a record of a model's old feature list, and the by-id front to an instance (one definition:
        :meth:`pipeline_code.core.record_kinds.RecordKinds.source`). A record holding every feature is precomputed; one
        holding a feature named like no column, or a record of another feature list, is precomputed lacking the missing
        features (refused); anything else is raw, lacking the required raw fields it does not carry.
        ``required`` (:meth:`required_raw_fields` of ``features``) and ``kinds`` (:meth:`record_kinds`) are derived here
        unless given: serving gives the ones its contract derived once, as deriving them per record made a request of
        many records hold a worker for minutes."""
        if all(name in record for name in features):
            return record_kinds.SOURCE_FEATURES, []
        kinds = self.record_kinds(features, extras) if kinds is None else kinds
        source, missing = kinds.source(record)
        if source == record_kinds.SOURCE_FEATURES:
            return source, missing
        required = self.required_raw_fields(features) if required is None else required
        return record_kinds.SOURCE_RAW, [c for c in required if record.get(c) is None]

    def required_raw_fields(self, features: Sequence[str]) -> Tuple[str, ...]:
        """The raw fields a raw record of a model of ``features`` must carry (non-null, not blank text): the non-nullable
        columns its features read, and the event time when one counts days up to it (``days_since``: without the
        record's own event time its value would be a guess). Serving refuses a raw record without one
        (:attr:`pipeline_code.serving.records.FeatureContract.required_raw_fields`); the by-id front, under policy
        ``compute``, refuses that one instance instead (its spec carries them)."""
        counts_days = any(self.feature(name).expr.reads_event_time() for name in features)
        return tuple(c for c in self.raw_source_columns(features)
                     if not self.column(c).nullable or (c == self.event_time and counts_days))

    def is_boolean_feature(self, feature: str) -> bool:
        """True for a feature that is a boolean column as it is (``col(x)``): its value is 1 / 0, and serving also reads
        JSON true / false and a boolean word (:func:`parse_boolean`) as it."""
        column = self.feature(feature).source_column
        return column is not None and self.column(column).dtype == BOOLEAN

    def feature_rule(self, feature: str) -> Optional[ValueRule]:
        """The declared rules a present value of feature ``feature`` keeps, or None: a column unchanged (``col(x)``)
        keeps its column's (:attr:`Column.rule`: bounds, allowed values), a boolean column as it is is true or false
        (:meth:`is_boolean_feature`), a ``bucket`` is one of its labels. Features computed otherwise have no declared
        range to hold them to. Serving checks a precomputed value with it and the by-id front a stored one (its
        environment carries :meth:`feature_rules`; the front types a boolean feature's stored text by it, as serving
        reads that feature)."""
        definition = self.feature(feature)
        if self.is_boolean_feature(feature):
            # A boolean column declares no bounds or allowed values (Column.rule): true or false is its whole rule.
            return ValueRule(boolean=True)
        if definition.source_column is not None:
            return self.column(definition.source_column).rule
        if definition.expr.op == "bucket":
            return ValueRule(allowed=tuple(str(label) for label in definition.expr.args[2]), buckets=True)
        return None

    def feature_rules(self, features: Sequence[str]) -> Tuple[Tuple[str, ValueRule], ...]:
        """(feature, rule) for those of ``features`` (in their order) that have one (:meth:`feature_rule`)."""
        ruled = ((name, self.feature_rule(name)) for name in features)
        return tuple((name, rule) for name, rule in ruled if rule is not None)

    def feature_store_definitions(self) -> Tuple[Tuple[str, str], ...]:
        """(name, Feature Store type) for every feature of the generated FeatureGroup.

        The record identifier and event time are stored as Strings (ISO-8601 event
        time), followed by every feature in definition order.
        """
        keys = ((self.record_identifier, FS_STRING), (self.event_time, FS_STRING))
        return keys + tuple((f.name, f.feature_type) for f in self.features)

    def to_declaration(self) -> Dict[str, Any]:
        """The dataset as a JSON-able declaration; :func:`parse_dataset` reads it back to an equal Dataset.

        Columns and features are lists of ``{"name": ..., ...}`` here (the config writes them as
        mappings): their order is part of the contract and must survive key-sorted JSON.
        """
        columns: List[Dict[str, Any]] = []
        for c in self.columns:
            body: Dict[str, Any] = {"name": c.name, "type": c.dtype}
            if not c.nullable:
                body["nullable"] = False
            if c.minimum is not None:
                body["min"] = c.minimum
            if c.maximum is not None:
                body["max"] = c.maximum
            if c.allowed is not None:
                body["allowed"] = list(c.allowed)
            if c.description:
                body["description"] = c.description
            if c.source is not None:
                body["source"] = c.source
            columns.append(body)
        features: List[Dict[str, Any]] = []
        for f in self.features:
            body = {"name": f.name, "expr": format_expression(f.expr), "type": f.feature_type}
            if f.description:
                body["description"] = f.description
            features.append(body)
        out = {
            "name": self.name,
            "description": self.description,
            "record_identifier": self.record_identifier,
            "event_time": self.event_time,
            "labels": list(self.labels),
            "columns": columns,
            "features": features,
        }
        if self.sample_positive_rate is not None:
            out["sample_positive_rate"] = self.sample_positive_rate
        return out


class DeclarationError(ValueError):
    """A dataset declaration that cannot be used; ``problems`` holds one line per mistake."""

    def __init__(self, problems: List[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# A feature group's definitions (CreateFeatureGroup's FeatureDefinitions: 1-2,500): the record identifier, the event
# time and every feature of the dataset (Dataset.feature_store_definitions).
MAX_FEATURE_DEFINITIONS = 2500
# Names must survive the Glue Data Catalog (which lower-cases column names), Athena and the
# Feature Store (FeatureName: 1-64 characters, never one of its reserved names).
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FEATURE_STORE_RESERVED = ("is_deleted", "write_time", "api_invocation_time")
# The keys serving's requests and the drift monitor's request frames give a role of their own, each with that role: a
# column a feature reads (a raw record's field) or a feature (a precomputed record's) of that name would be refused or
# misread, so no dataset may declare one (docs/configuration.md, Names serving's requests keep). The envelope's key is
# pipeline_code.serving.request_body's, a record's own keys pipeline_code.serving.records.META_KEYS, the provenance
# pipeline_code.core.online_features' PROVENANCE_KEYS, the monitor's own columns pipeline_code.monitoring.capture's
# SCORE and ANSWERED and quality's LABEL and LABEL_TIME (tests/infra/test_dataset_config.py holds them to this list).
_BY_ID_PROVENANCE = "provenance the by-id front writes into each record it sends, over any field of that name"
REQUEST_KEYS: Tuple[Tuple[str, str], ...] = (
    ("instances", 'the key of the request envelope {"instances": [...]}, which serving reads before any field of that '
                  "name"),
    ("inference_id", "a record's own id, which serving reads (and echoes in its answer) instead of a feature of that "
                     "name"),
    ("inference_time", "a record's own request time, which the drift monitor reads instead of a feature of that name"),
    ("entity_id", _BY_ID_PROVENANCE),
    ("feature_source", _BY_ID_PROVENANCE),
    ("feature_event_time", _BY_ID_PROVENANCE),
    ("feature_lookup", _BY_ID_PROVENANCE),
    ("score", "the model's score, which the drift monitor reads from the capture into a column of that name, over the "
              "field"),
    ("answered_by", "the version that answered, which the drift monitor reads from the capture into a column of that "
                    "name, over the field"),
    ("label", "the ground truth the drift monitor joins to each request as a column of that name, which the field "
              "would stand in for"),
    ("label_time", "the ground truth's time the drift monitor joins to each request as a column of that name, which "
                   "the field would stand in for"),
)
_REQUEST_KEY_ROLES = dict(REQUEST_KEYS)


def _request_key_problem(name: str) -> str:
    """Why ``name`` may not be a column or feature (the words after it: ``<fix>``), or ``""``."""
    role = _REQUEST_KEY_ROLES.get(name)
    return f"{name!r} is reserved in requests: {role}; " if role else ""


def suggested_name(written: str) -> Optional[str]:
    """The name a column or feature written ``written`` (an export's header: ``Policy ID``, ``Vehicle.Model``,
    ``Région``) could take: accents dropped, lower-cased, every run of other characters one ``_``, ``c_`` before a
    leading digit, at most 64 characters; None when nothing of it is left (``€``) or it is one of the Feature Store's
    reserved names. A name of :data:`REQUEST_KEYS` is suggested (``Label``: ``label``, as a label column may be named),
    and refused with its own fix where a feature would carry it."""
    text = unicodedata.normalize("NFKD", str(written)).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if name[:1].isdigit():
        name = "c_" + name
    name = name[:64].rstrip("_")
    return name if _NAME.match(name) and name not in FEATURE_STORE_RESERVED else None


def _write_instead(written: Any) -> str:
    """``"; write 'policy_id'"`` for a name that has a :func:`suggested_name`, else ``""``."""
    name = suggested_name(str(written))
    return f"; write {name!r}" if name and name != written else ""
_DATASET_KEYS = ("name", "description", "record_identifier", "event_time", "labels", "columns", "features",
                 "sample_positive_rate")
_COLUMN_KEYS = ("type", "nullable", "min", "max", "allowed", "description", "source")
_FEATURE_KEYS = ("expr", "type", "description")
_ARITY = {"col": (1, 1), "ratio": (2, 2), "log1p": (1, 1), "clip": (3, 3), "coalesce": (2, None), "bucket": (3, 3),
          "product": (2, 2), "days_since": (1, 1)}


def parse_dataset(name: str, declaration: Mapping[str, Any]) -> Dataset:
    """The :class:`Dataset` a declaration describes (the ``datasets.<name>`` block of the config).

    ::

        record_identifier: customer_id
        event_time: event_time
        labels: [churned]
        columns:
          tenure_months: {type: integer, nullable: false, min: 0, max: 600}
          contract_type: {type: string, allowed: [month-to-month, one-year]}
          churned: {type: integer, min: 0, max: 1}
        sample_positive_rate: 0.02                     # generated sample data only (default 0.2)
        features:
          tenure_months: tenure_months                 # a column as it is
          log_tenure: log1p(tenure_months)             # an expression; its type is inferred
          age_band: {expr: "bucket(age, [25, 40], [young, mid, old])", type: String, description: ...}

    Columns are ``nullable`` unless declared otherwise; ``min``/``max``/``allowed`` send violating
    records to quarantine. A feature's Feature Store type is inferred from its expression; a declared
    ``type`` must agree with it.

    Raises:
        DeclarationError: one line per mistake, each naming the field (``columns.tenure.min: ...``).
    """
    problems: List[str] = []
    if not isinstance(declaration, Mapping):
        raise DeclarationError([f"must be a mapping with keys {', '.join(_DATASET_KEYS[2:])}"])
    _unknown_keys(declaration, _DATASET_KEYS, "", problems)
    if declaration.get("name", name) != name:
        problems.append(f"name: {declaration['name']!r} differs from the dataset's key {name!r}")
    if not _NAME.match(str(name)):
        problems.append(f"name: {name!r} must be lower-case letters, digits and '_' (at most 64), starting with a letter")
    # A column with a mistake is reported once, here; whatever reads it is not reported again.
    refused: List[str] = []
    columns = _columns(declaration.get("columns"), problems, refused)
    by_name = {c.name: c for c in columns}
    keys = {}
    for key in ("record_identifier", "event_time"):
        value = declaration.get(key)
        keys[key] = value
        if value in refused:
            continue
        if not isinstance(value, str) or value not in by_name:
            problems.append(f"{key}: {value!r} must name a declared column; allowed: {', '.join(by_name) or '(none)'}")
            refused.append(str(value))
        elif key == "event_time" and by_name[value].dtype != TIMESTAMP:
            problems.append(f"event_time: column {value!r} must have type timestamp")
            refused.append(value)
        elif key == "record_identifier" and by_name[value].nullable:
            problems.append(f"columns.{value}.nullable: the record identifier must be declared nullable: false")
        elif key == "event_time" and by_name[value].nullable:
            # A record without its time has no place in time: the feature store refuses it, a point-in-time join cannot
            # place it, and the curated partition of no date (Hive's default) was overwritten by the next such run.
            problems.append(f"columns.{value}.nullable: the event time must be declared nullable: false (a record "
                            "without one is quarantined, as the feature store and the point-in-time join need it)")
    labels = declaration.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        problems.append("labels: must be a non-empty list of column names")
        labels = []
    for label in labels:
        if label in refused:
            continue
        if label not in by_name:
            problems.append(f"labels: {label!r} is not a declared column; allowed: {', '.join(by_name)}")
        elif label in keys.values():
            problems.append(f"labels: {label!r} is a key column, not a label")
    at = len(problems)
    features = _features(declaration.get("features"), by_name, set(labels), set(keys.values()) - set(refused),
                         refused, problems,
                         event_time=keys["event_time"] if isinstance(keys["event_time"], str) else None)
    # A column is in a raw request when a feature reads it: one of a reserved name is refused then (a record identifier
    # or a label that no feature reads never is), before the features' problems as the other column problems are.
    read = {column for feature in features for column in (
        *feature.expr.source_columns(), *((keys["event_time"],) if feature.expr.reads_event_time() else ()))}
    problems[at:at] = [f"columns.{column.name}: {reserved}declare the column as '{column.name}_value' with source: "
                       f"'{column.name}', the header the files give it (they keep it), and read it by that name in the "
                       "features" for column in columns if column.name in read
                       for reserved in [_request_key_problem(column.name)] if reserved]
    if len(features) + 2 > MAX_FEATURE_DEFINITIONS:
        problems.append(f"features: {len(features):,} features with the record identifier and the event time make "
                        f"{len(features) + 2:,} Feature Store definitions, over the {MAX_FEATURE_DEFINITIONS:,} a feature "
                        "group holds (CreateFeatureGroup's limit): the deploy would fail; declare at most "
                        f"{MAX_FEATURE_DEFINITIONS - 2:,} features, e.g. split them over two datasets of the same records "
                        "(each is its own feature group)")
    description = declaration.get("description", "")
    if not isinstance(description, str):
        problems.append("description: must be a string")
    rate = declaration.get("sample_positive_rate")
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
            problems.append(f"sample_positive_rate: {rate!r} must be a number between 0 and 1 (exclusive), the share of "
                            "positive labels in generated sample data, e.g. 0.02 for a rare event")
        elif not any(target_problem(by_name[label]) is None for label in labels if label in by_name):
            problems.append("sample_positive_rate: only a binary label (a boolean, or an integer with min: 0 and max: 1) "
                            "has a positive rate; remove it or declare such a label")
    if problems:
        raise DeclarationError(problems)
    try:
        return Dataset(name=name, description=description, record_identifier=keys["record_identifier"],
                       event_time=keys["event_time"], columns=columns, labels=tuple(labels), features=features,
                       sample_positive_rate=None if rate is None else float(rate))
    except ValueError as exc:  # pragma: no cover - every rule of Dataset is checked above, with its field
        raise DeclarationError([str(exc)]) from None


def load_dataset(value: Any) -> Dataset:
    """A dataset from its declaration: a mapping, its JSON text, or the path of a JSON file holding it.

    This is how a job receives its dataset (``--dataset``); the declaration carries its own ``name``.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("{"):
            try:
                with open(text, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError as exc:
                raise DeclarationError([f"{value[:200]!r} is neither a JSON dataset declaration nor a readable file "
                                        f"({exc.strerror})"]) from None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise DeclarationError([f"not a JSON dataset declaration: {exc}"]) from None
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
        raise DeclarationError(["a dataset declaration must be a JSON object with a 'name'"])
    return parse_dataset(value["name"], value)


def parse_expression(text: str) -> Expr:
    """The expression ``text`` denotes, e.g. ``ratio(loan_amount, annual_income)``; a bare name is ``col(name)``.

    Only operator calls, column names, numbers, quoted strings and lists of them are read; anything
    else (attributes, arithmetic, keywords) is a ValueError naming what is not allowed.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"{text!r} is not an expression of the form op(arg, ...); operators: "
                         f"{', '.join(OPERATORS)}") from None
    if isinstance(tree, ast.Name):
        return col(tree.id)
    node = _node(tree)
    if not isinstance(node, Expr):
        raise ValueError(f"{text!r} must be a column name or an operator call")
    return node


# The suffix a renamed shadowing feature is suggested (Dataset.raw_request_problem): what its operator does.
_RENAME_SUFFIX = {"clip": "clipped", "coalesce": "filled", "bucket": "band", "col": "feature"}


def _renamed(name: str, expr: Expr) -> str:
    return f"{name}_{_RENAME_SUFFIX.get(expr.op, expr.op)}"[:64]


def format_expression(expr: Expr) -> str:
    """The text form of ``expr`` that :func:`parse_expression` reads back; ``col(x)`` is written ``x``."""
    if expr.op == "col":
        return str(expr.args[0])
    return f"{expr.op}(" + ", ".join(_format_arg(a) for a in expr.args) + ")"


def infer_feature_type(expr: Expr, columns: Mapping[str, Column]) -> str:
    """The Feature Store type ``expr`` yields over ``columns``; ValueError names a type mismatch."""
    kind = _kind(expr, columns)
    return {"integral": INTEGRAL, "fractional": FRACTIONAL, "string": FS_STRING}[kind]


def _format_arg(arg: object) -> str:
    if isinstance(arg, Expr):
        return format_expression(arg)
    if isinstance(arg, tuple):
        return "[" + ", ".join(json.dumps(v) if isinstance(v, str) else repr(v) for v in arg) + "]"
    return arg if isinstance(arg, str) else repr(arg)


def _node(node: ast.AST) -> object:
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in OPERATORS:
            called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ValueError(f"unknown operator {called!r}; allowed: {', '.join(OPERATORS)}")
        if node.keywords:
            raise ValueError(f"{node.func.id}: takes positional arguments only")
        op = node.func.id
        lo, hi = _ARITY[op]
        if len(node.args) < lo or (hi is not None and len(node.args) > hi):
            wanted = f"{lo}" if lo == hi else f"at least {lo}"
            raise ValueError(f"{op} takes {wanted} argument(s), got {len(node.args)}")
        args = [_node(a) for a in node.args]
        if op == "col" and not isinstance(args[0], str):
            raise ValueError("col takes a column name")
        if op == "days_since" and not isinstance(args[0], str):
            raise ValueError(f"days_since takes a column name, got {_format_arg(args[0])}: write "
                             "days_since(<date or timestamp column>), and put it inside other operators instead "
                             "(clip(days_since(x), 0, 3650))")
        if op == "clip":
            if not all(isinstance(a, float) for a in args[1:]):
                raise ValueError("clip takes a value and two numbers: clip(x, lo, hi)")
            if args[1] > args[2]:
                raise ValueError(f"clip needs lo <= hi, got [{args[1]}, {args[2]}]")
            return clip(args[0], args[1], args[2])
        if op == "bucket":
            edges, labels = args[1], args[2]
            if not (isinstance(edges, tuple) and all(isinstance(e, float) for e in edges)):
                raise ValueError("bucket: the edges must be a list of numbers")
            if not (isinstance(labels, tuple) and all(isinstance(v, str) for v in labels)):
                raise ValueError("bucket: the labels must be a list of quoted strings")
            return bucket(args[0], edges, labels)
        if any(isinstance(a, (float, tuple)) for a in args):
            raise ValueError(f"{op} takes columns or expressions, not literals")
        return Expr(op, tuple(args))
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -_node(node.operand)  # type: ignore[operator]
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.List):
        return tuple(_node(e) for e in node.elts)
    raise ValueError(f"{ast.unparse(node)!r} is not allowed in a feature expression (operators, column names, "
                     "numbers, quoted labels and lists only)")


def _kind(arg: object, columns: Mapping[str, Column]) -> str:
    if isinstance(arg, str):
        if arg not in columns:
            raise ValueError(f"reads unknown column {arg!r}; allowed: {', '.join(columns)}")
        dtype = columns[arg].dtype
        if dtype in (TIMESTAMP, DATE):
            raise ValueError(f"reads {dtype} column {arg!r} as a value; a {dtype} is no feature value: "
                             f"days_since({arg}) gives the whole days from it to the record's event time")
        return {INTEGER: "integral", BOOLEAN: "integral", DOUBLE: "fractional", STRING: "string"}[dtype]
    if not isinstance(arg, Expr):
        raise ValueError(f"{arg!r} is not a column or an expression")
    op = arg.op
    if op == "col":
        return _kind(arg.args[0], columns)
    if op == "days_since":
        name = arg.args[0]
        if not isinstance(name, str) or name not in columns:
            return _kind(name, columns)  # names the unknown column
        dtype = columns[name].dtype
        if dtype not in (DATE, TIMESTAMP):
            article = "an" if dtype == INTEGER else "a"
            raise ValueError(f"days_since needs a date or timestamp column, but {name!r} is {article} {dtype} column; "
                             f"declare it type: {DATE} (yyyy-MM-dd) or type: {TIMESTAMP}")
        return "integral"
    if op == "bucket":
        _numeric(op, [arg.args[0]], columns)
        return "string"
    operands = list(arg.args[:1]) if op == "clip" else list(arg.args)
    kinds = [_kind(a, columns) for a in operands]
    if op == "coalesce":
        if len(set(k == "string" for k in kinds)) > 1:
            raise ValueError("coalesce mixes text and numeric arguments")
        return "string" if kinds[0] == "string" else ("integral" if set(kinds) == {"integral"} else "fractional")
    _numeric(op, operands, columns)
    if op == "clip":
        # An integer stays one between whole bounds only (features.compute): clip(n, 0.5, 3) can yield 0.5.
        whole = all(isinstance(b, (int, float)) and float(b).is_integer() for b in arg.args[1:])
        return "integral" if kinds == ["integral"] and whole else "fractional"
    if op == "product":
        return "integral" if set(kinds) == {"integral"} else "fractional"
    return "fractional"  # ratio, log1p


def _numeric(op: str, operands: List[object], columns: Mapping[str, Column]) -> None:
    text = [a for a in operands if _kind(a, columns) == "string"]
    if text:
        shown = ", ".join(a if isinstance(a, str) else format_expression(a) for a in text)  # type: ignore[arg-type]
        raise ValueError(f"{op} needs numbers but {shown} is text")


def _unknown_keys(body: Mapping[str, Any], allowed: Tuple[str, ...], where: str, problems: List[str]) -> None:
    for key in body:
        if key not in allowed:
            problems.append(f"{where}{key}: unknown field; allowed: {', '.join(allowed)}")


def _named(section: Any) -> Any:
    """A list of ``{"name": ..., ...}`` (the JSON form) as the ``{name: {...}}`` mapping the config writes."""
    if isinstance(section, list) and all(isinstance(e, Mapping) and "name" in e for e in section):
        return {e["name"]: {k: v for k, v in e.items() if k != "name"} for e in section}
    return section


def _entries(section: Any, key: str, form: str, problems: List[str]) -> Mapping[str, Any]:
    """The ``{name: body}`` entries of ``columns`` or ``features`` (either written form); {} with a problem."""
    section = _named(section)
    if not isinstance(section, Mapping) or not section:
        problems.append(f"{key}: must map each {form}")
        return {}
    return section


def _columns(section: Any, problems: List[str], refused: List[str]) -> Tuple[Column, ...]:
    out: List[Column] = []
    for name, body in _entries(section, "columns", "column name to {type: ..., ...}", problems).items():
        before = len(problems)
        column = _column(name, body, problems)
        if column is not None and len(problems) == before:
            out.append(column)
        else:
            refused.append(str(name))
    # Two columns the files would give by one header cell (a source written twice, or a source that is another
    # column's name): neither reader could tell which column a cell holds.
    headers: Dict[str, Column] = {}
    for column in sorted(out, key=lambda c: c.source is not None):  # a column's own name claims its header first
        key = header_key(column.header)
        other = headers.setdefault(key, column)
        if other is not column:
            whose = f"its source {other.source!r}" if other.source is not None else "its name"
            problems.append(f"columns.{column.name}.source: {column.source!r} is also the header of column "
                            f"{other.name!r} ({whose}); headers are compared trimmed and in any case, and each column "
                            "is read from a header of its own")
            refused.append(column.name)
    return tuple(c for c in out if c.name not in refused)


def _column(name: Any, body: Any, problems: List[str]) -> Optional[Column]:
    """One declared column, or None with its problems recorded."""
    where = f"columns.{name}."
    if not _NAME.match(str(name)):
        instead = suggested_name(str(name))
        problems.append(f"columns.{name}: names must be lower-case letters, digits and '_' (at most 64), "
                        "starting with a letter (the Glue Data Catalog lower-cases column names); "
                        + (f"declare it as {instead!r} with source: {str(name)!r}, the header the files give it (they "
                           "keep it)" if instead else f"name it and give source: {str(name)!r}, the header the files "
                           "give it"))
        return None
    if isinstance(body, str):
        body = {"type": body}
    if not isinstance(body, Mapping):
        problems.append(f"columns.{name}: must be a type ({', '.join(COLUMN_TYPES)}) or a mapping with 'type'")
        return None
    _unknown_keys(body, _COLUMN_KEYS, where, problems)
    dtype = body.get("type")
    if dtype not in COLUMN_TYPES:
        problems.append(f"{where}type: {dtype!r} is not a column type; allowed: {', '.join(COLUMN_TYPES)}")
        return None
    nullable = body.get("nullable", True)
    if not isinstance(nullable, bool):
        problems.append(f"{where}nullable: must be true or false, got {nullable!r}")
        return None
    bounds: Dict[str, Optional[float]] = {}
    for key in ("min", "max"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            problems.append(f"{where}{key}: must be a number, got {value!r}")
        elif value is not None and dtype not in (INTEGER, DOUBLE):
            problems.append(f"{where}{key}: only integer and double columns have bounds")
        else:
            bounds[key] = None if value is None else float(value)
    if len(bounds) < 2:
        return None
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        problems.append(f"{where}min: {bounds['min']} is above max {bounds['max']}")
        return None
    allowed = body.get("allowed")
    if allowed is not None:
        if dtype != STRING:
            problems.append(f"{where}allowed: only string columns have allowed values")
            return None
        if not isinstance(allowed, list) or not allowed or not all(isinstance(v, str) for v in allowed):
            unquoted = [f"allowed[{i}] as the boolean {v}" for i, v in enumerate(allowed if isinstance(allowed, list)
                                                                                  else []) if isinstance(v, bool)]
            problems.append(f"{where}allowed: must be a non-empty list of quoted strings"
                            + (f"; YAML read {', '.join(unquoted)}: quote yes/no/true/false/on/off" if unquoted else ""))
            return None
        odd = [v for v in allowed if normalise_category(v) != v]
        if odd:
            problems.append(f"{where}allowed: {odd} are not in normal form; values are trimmed and lower-cased "
                            f"before they are checked, so write {[normalise_category(v) for v in odd]}")
            return None
        if len(set(allowed)) != len(allowed):
            problems.append(f"{where}allowed: lists a value twice")
            return None
    description = body.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{where}description: must be a string")
        return None
    source = body.get("source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        problems.append(f"{where}source: must be the header text the files give the column (e.g. 'Tenure (months)'), "
                        f"a non-empty string; got {source!r}")
        return None
    return Column(str(name), dtype, nullable=nullable, minimum=bounds["min"], maximum=bounds["max"],
                  allowed=None if allowed is None else tuple(allowed), description=description, source=source)


def _features(section: Any, columns: Mapping[str, Column], labels: set, keys: set, refused: List[str],
              problems: List[str], event_time: Optional[str] = None) -> Tuple[FeatureDef, ...]:
    out = []
    form = "feature name to an expression, e.g. log_income: log1p(income)"
    for name, body in _entries(section, "features", form, problems).items():
        where = f"features.{name}"
        if not _NAME.match(str(name)) or name in FEATURE_STORE_RESERVED:
            problems.append(f"{where}: names must be lower-case letters, digits and '_' (at most 64), starting with a "
                            f"letter, and not one of the Feature Store's reserved names {', '.join(FEATURE_STORE_RESERVED)}"
                            + _write_instead(name))
            continue
        reserved = _request_key_problem(str(name))
        if reserved:
            problems.append(f"{where}: {reserved}rename the feature, e.g. '{name}_value'")
            continue
        if name in keys:
            problems.append(f"{where}: has the name of a key column; the record identifier and event time are stored "
                            "with every record already")
            continue
        if name in labels:
            problems.append(f"{where}: has the name of a label (target leakage); rename the feature")
            continue
        if isinstance(body, str):
            body = {"expr": body}
        if not isinstance(body, Mapping) or not isinstance(body.get("expr"), str):
            problems.append(f"{where}: must be an expression or a mapping with 'expr'")
            continue
        _unknown_keys(body, _FEATURE_KEYS, where + ".", problems)
        try:
            expr = parse_expression(body["expr"])
            if set(expr.source_columns()) & set(refused):
                continue  # it reads a column whose own mistake is reported already
            if event_time is not None and event_time in expr.source_columns():
                raise ValueError(f"reads the event time {event_time!r}, which says when a record happened, not what it "
                                 f"describes; days_since(<a date or timestamp column>) counts the days from another "
                                 f"column to it")
            inferred = infer_feature_type(expr, columns)
        except ValueError as exc:
            problems.append(f"{where}.expr: {exc}")
            continue
        leaked = [c for c in expr.source_columns() if c in labels]
        if leaked:
            problems.append(f"{where}.expr: reads label {leaked[0]!r} (target leakage)")
            continue
        identifying = [c for c in expr.source_columns() if c in keys]  # the event time is refused above
        if identifying:
            problems.append(f"{where}.expr: reads the record identifier {identifying[0]!r}, which names a record "
                            "instead of describing it (a model would learn the training ids); use other columns, or, "
                            "when an entity's identity is a real signal, a column of its own with allowed values")
            continue
        declared = body.get("type", inferred)
        if declared not in FEATURE_TYPES:
            problems.append(f"{where}.type: {declared!r} is not a Feature Store type; allowed: {', '.join(FEATURE_TYPES)}")
            continue
        if declared != inferred:
            problems.append(f"{where}.type: declared {declared} but {body['expr']} yields {inferred}; "
                            f"write type: {inferred} or leave it out")
            continue
        description = body.get("description", "")
        if not isinstance(description, str):
            problems.append(f"{where}.description: must be a string")
            continue
        out.append(FeatureDef(str(name), declared, expr, description))
    return tuple(out)

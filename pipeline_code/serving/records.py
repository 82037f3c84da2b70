"""Request records -> model features, without the model: validation, feature computation.

Shared by the serving hooks (:mod:`pipeline_code.serving.inference`) and usable by anything
that must read a request the way serving does - e.g. the drift monitor decoding captured
raw-field requests (:func:`complete_records`). Imports no xgboost. The records come from
:func:`pipeline_code.serving.request_body.parse_request`; a refusal is a
:class:`pipeline_code.serving.errors.BadRequestError`.

A JSON record is *precomputed* when it holds every model feature (or is a list of values in
feature order), else *raw*: the curated source columns the catalog's expressions read, turned
into features by :func:`pipeline_code.features.compute.compute_features` - the interpreter the
feature-ingestion job used for the training data.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pipeline_code import catalog
from pipeline_code.core.contract import (
    MAX_ERROR_MESSAGE,
    MORE_PROBLEMS,
    TIMESTAMP_RANGE,
    inference_id_problem,
    is_smoke_record,
    timestamp_in_range,
)
from pipeline_code.core.online_features import FEATURE_SOURCE, PROVENANCE_KEYS, SOURCE_MISSING
from pipeline_code.core.record_kinds import SOURCE_FEATURES, SOURCE_RAW, RecordKinds  # noqa: F401 - re-exported
from pipeline_code.core.spelling import misspellings
from pipeline_code.core.value_rules import FLOAT32_MAX
from pipeline_code.features import compute
from pipeline_code.features.compute import FeatureComputationError, compute_features
from pipeline_code.serving.errors import BadRequestError
from pipeline_code.serving.request_body import BLANK_RECORD, Record, Unreadable, blank_line_message, record_place

INFERENCE_ID = "inference_id"
INFERENCE_TIME = "inference_time"
META_KEYS = (INFERENCE_ID, INFERENCE_TIME)
_MAX_PROBLEMS = 10
# Placeholder for the event time compute_features insists on, for a raw record that need not carry its own: no feature
# of it reads the event time (days_since does: a model with one requires the record's, :attr:`FeatureContract.required_raw_fields`,
# and an extra that reads it is missing without it, never computed from the placeholder).
_PLACEHOLDER_EVENT_TIME = "1970-01-01T00:00:00Z"
_FLOAT32_MAX = FLOAT32_MAX  # one definition with the by-id front (pipeline_code.core.value_rules)


@dataclass(frozen=True)
class FeatureContract:
    """The fields a model's requests carry: its features in order, their catalog dataset, and
    the frame-only features (sensitive attribute, slices) monitoring keeps."""

    dataset: catalog.Dataset
    feature_order: Tuple[str, ...]
    extra_features: Tuple[str, ...] = ()

    @classmethod
    def create(cls, ds: catalog.Dataset, features: Sequence[str], extras: Sequence[str] = ()) -> "FeatureContract":
        """From feature names of ``ds``; extras that are model features or not dataset features are dropped.

        Raises:
            KeyError: a feature that is not in the dataset.
        """
        for name in features:
            ds.feature(name)
        kept: List[str] = []
        for name in extras:
            if name and name not in features and name not in kept and name in ds.feature_names:
                kept.append(name)
        return cls(dataset=ds, feature_order=tuple(features), extra_features=tuple(kept))

    def is_boolean_feature(self, name: str) -> bool:
        """True for a feature that is a boolean column as it is (its value is 1 / 0; JSON true / false is accepted):
        :meth:`pipeline_code.catalog.Dataset.is_boolean_feature`, which the by-id front's spec carries too."""
        return self.dataset.is_boolean_feature(name)

    def source_columns(self, features: Sequence[str]) -> List[str]:
        """The raw fields ``features`` are computed from (:meth:`pipeline_code.catalog.Dataset.raw_source_columns`)."""
        return self.dataset.raw_source_columns(features)

    def event_time_features(self, features: Sequence[str]) -> List[str]:
        """Those of ``features`` that read the record's event time (``days_since``)."""
        return [name for name in features if self.dataset.feature(name).expr.reads_event_time()]

    # The raw fields are derived from the catalog's expressions once per contract (the contract is frozen), not per
    # record: derived per record, a request of a million empty records kept a worker busy for minutes.
    @functools.cached_property
    def _required_raw_fields(self) -> Tuple[str, ...]:
        return tuple(self.dataset.required_raw_fields(self.feature_order))

    @functools.cached_property
    def record_kinds(self) -> RecordKinds:
        """Serving's rule telling a precomputed record from a raw one, of this model
        (:meth:`pipeline_code.catalog.Dataset.record_kinds`): derived once, as it walks the whole dataset."""
        return self.dataset.record_kinds(self.feature_order, self.extra_features)

    @functools.cached_property
    def _known_fields(self) -> frozenset:
        """The keys a record's dataset knows (columns, features), the contract's own and the by-id front's provenance:
        never typos (:func:`_misspelt_fields`)."""
        ds = self.dataset
        return frozenset({*ds.column_names, *ds.feature_names, *META_KEYS, *PROVENANCE_KEYS})

    @functools.cached_property
    def _optional_raw_fields(self) -> Tuple[str, ...]:
        required = set(self._required_raw_fields)
        return tuple(c for c in self.source_columns([*self.feature_order, *self.extra_features]) if c not in required)

    @functools.cached_property
    def raw_fields_needed(self) -> str:
        """What a raw record must and may carry, for a message naming a missing required field."""
        return (f"a raw record needs {self.required_raw_fields}, optionally {self.optional_raw_fields}; "
                f"or send every model feature {list(self.feature_order)}")

    @property
    def required_raw_fields(self) -> List[str]:
        """Curated columns a raw record must carry (non-null, not blank text):
        :meth:`pipeline_code.catalog.Dataset.required_raw_fields`, which the by-id front's spec carries too."""
        return list(self._required_raw_fields)

    @property
    def optional_raw_fields(self) -> List[str]:
        """Curated columns a raw record may carry (omitted or null = missing), incl. those of the extras."""
        return list(self._optional_raw_fields)

    def is_categorical(self, name: str) -> bool:
        return self.dataset.feature(name).feature_type == catalog.FS_STRING


class _FieldError(ValueError):
    pass


def _number(value: Any, *, integral: bool) -> float:
    """A JSON number or numeric text as float (null and blank text = missing, as NaN: the ETL reads blank text as
    null); booleans, NaN given as a value and other text are errors, numeric text the ETL would not cast too
    (:func:`_check_number_text`: ``1_0``, ``٢١``, ``1e1`` for an integer)."""
    if value is None or (isinstance(value, str) and catalog.trimmed_text(value) is None):
        return math.nan
    if isinstance(value, bool):
        raise _FieldError(f"expected a number, got boolean {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        try:
            number = float(value)
        except OverflowError:  # a JSON integer of hundreds of digits
            raise _FieldError(f"expected a finite number, got an integer of {len(str(value))} digits") from None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _FieldError(f"expected a number, got text {catalog.shown(value)}") from None
    else:
        raise _FieldError(f"expected a number, got {type(value).__name__}")
    if math.isnan(number):
        # Not a value training could have seen (the ETL quarantines NaN); read as missing, it would be scored.
        raise _FieldError(f"expected a number, got {catalog.shown(value)}; a missing value is null (an empty value in CSV)")
    if math.isinf(number):
        raise _FieldError(f"expected a finite number, got {catalog.shown(value)}")
    if isinstance(value, str):
        _check_number_text(value, number, integral=integral)
    if abs(number) > _FLOAT32_MAX:
        # The model computes in float32: beyond it the value would become infinity and score as nonsense.
        raise _FieldError(f"{number:g} is outside the float32 range the model computes in (±{_FLOAT32_MAX:.4g})")
    if integral and not math.isnan(number) and not number.is_integer():
        raise _FieldError(f"expected an integer, got {catalog.shown(value)}")
    return number


_INTEGER_TEXT = re.compile(catalog.INTEGER_PATTERN)
_DOUBLE_TEXT = re.compile(catalog.DOUBLE_PATTERN)


def _check_number_text(value: str, number: float, *, integral: bool) -> None:
    """Refuse numeric text the curate job would quarantine although ``float()`` read it as ``number``.

    The text is trimmed as the ETL trims it (spaces only) and must match :data:`catalog.DOUBLE_PATTERN` (for
    ``integral``, whole numbers: :data:`catalog.INTEGER_PATTERN`). ``re.match``'s ``$`` lets one final ``\\n``
    through, as Java's does in Spark's ``rlike`` (the ETL casts ``"12\\n"`` to 12); Java's also lets ``\\r\\n`` and other
    line terminators through, which this refuses (the safe side: a 400, never a score training could not have had).
    """
    text = catalog.trimmed_text(value) or ""
    if not _DOUBLE_TEXT.match(text):
        raise _FieldError(f"expected a number written as the ETL reads one (ASCII digits 0-9, an optional sign, "
                          f"decimal point and exponent), got text {catalog.shown(value)}")
    # A fraction ("1.5") is left to the caller's integer check, which names it.
    if integral and number.is_integer() and not _INTEGER_TEXT.match(text):
        raise _FieldError(f"expected an integer written as the ETL reads one (at most 18 digits 0-9 and an optional "
                          f"sign, optionally followed by .0), got text {catalog.shown(value)}")


def _boolean(value: Any) -> float:
    """JSON true / false, a boolean word (``catalog.TRUE_WORDS`` / ``FALSE_WORDS``) or 0 / 1, as 1.0 / 0.0
    (NaN = missing); anything else is an error, never a guess."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value) in (0.0, 1.0):
        return float(value)
    if isinstance(value, str) and catalog.parse_boolean(value) is not None:
        return 1.0 if catalog.parse_boolean(value) else 0.0
    raise _FieldError(f"expected true or false, got {catalog.shown(str(value))}")


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _FieldError(f"expected a string, got {type(value).__name__} {catalog.shown(str(value))}")
    return value


def _column_value(column: catalog.Column, value: Any) -> Any:
    """A raw field's value as the ETL types column ``column`` (missing: None or NaN); raises _FieldError."""
    if column.dtype == catalog.STRING:
        return column.read_text(_text(value))
    if column.dtype in (catalog.INTEGER, catalog.DOUBLE):
        return _number(value, integral=column.dtype == catalog.INTEGER)
    if column.dtype == catalog.BOOLEAN:
        return _boolean(value)
    if column.dtype == catalog.DATE:
        return _date(value)
    return _timestamp(value)


def _date(value: Any) -> Optional[str]:
    """A date field as the ETL reads one (:func:`pipeline_code.catalog.parse_date`: ``yyyy-MM-dd``, a real day), as
    that text (None = missing); anything else is an error naming the form."""
    if value is None or (isinstance(value, str) and catalog.trimmed_text(value) is None):
        return None
    day = catalog.parse_date(value) if isinstance(value, str) else None
    if day is None:
        raise _FieldError(f"expected a date written yyyy-MM-dd (a real day, e.g. 2019-04-12), got "
                          f"{type(value).__name__ if not isinstance(value, str) else 'text'} {catalog.shown(value)}")
    return day.isoformat()


_TIMESTAMP_TEXT = re.compile(catalog.TIMESTAMP_PATTERN)


def _timestamp(value: Any) -> Optional[str]:
    """A timestamp field as the ETL reads one (:data:`pipeline_code.catalog.TIMESTAMP_PATTERN`, a real day and time;
    UTC without an offset; an instant the jobs hold, :data:`pipeline_code.core.contract.TIMESTAMP_RANGE`), trimmed
    (None = missing); anything else is an error naming the form or the range."""
    if value is None or (isinstance(value, str) and catalog.trimmed_text(value) is None):
        return None
    text = catalog.trimmed_text(value) if isinstance(value, str) else None
    match = _TIMESTAMP_TEXT.match(text) if text is not None else None  # one final "\n" passes, as in the ETL
    day = catalog.parse_date(match.group(1)) if match is not None else None
    if day is not None:
        hour, minute, second = (int(part) for part in match.group(2)[:8].split(":"))
        if hour < 24 and minute < 60 and second < 60:
            offset = match.group(4) or "Z"
            minutes = 0 if offset == "Z" else (1 if offset[0] == "+" else -1) * (int(offset[1:3]) * 60 + int(offset[-2:]))
            try:
                instant = (dt.datetime.combine(day, dt.time(hour, minute, second))
                           - dt.timedelta(minutes=minutes)).replace(tzinfo=dt.timezone.utc)
            except OverflowError:  # before year 1 or after 9999 in UTC: outside the range too
                instant = None
            if instant is None or not timestamp_in_range(instant):
                raise _FieldError(f"{text} is outside the times the jobs hold ({TIMESTAMP_RANGE})")
            return text
    raise _FieldError(f"expected a timestamp written yyyy-MM-ddTHH:mm:ss[.fraction][Z|+HH:MM] (UTC without an offset), "
                      f"got {type(value).__name__ if not isinstance(value, str) else 'text'} {catalog.shown(value)}")


def feature_text(dataset: catalog.Dataset, name: str, value: Optional[str]) -> Optional[str]:
    """A precomputed text feature as the feature job stores it: a column unchanged (``col(x)``) as the ETL curates
    that column, any other text feature trimmed (it is computed from curated, trimmed columns)."""
    column = dataset.feature(name).source_column
    return dataset.column(column).read_text(value) if column else catalog.trimmed_text(value)


def _source(record: Dict[str, Any], contract: FeatureContract) -> Tuple[str, List[str]]:
    """(``features`` | ``raw``, missing fields) of one JSON object (:meth:`pipeline_code.catalog.Dataset.record_source`).

    An object holding every model feature is precomputed. A raw request holds them all too when every model feature
    has a raw column's name; synth refuses such a model when one of them transforms its column
    (:meth:`pipeline_code.catalog.Dataset.raw_request_problem`), so reading it as precomputed takes the same values,
    and :func:`feature_rows` computes the extras (sensitive attribute, slices) it does not give from its raw columns."""
    return contract.dataset.record_source(contract.feature_order, contract.extra_features, record,
                                          required=contract._required_raw_fields, kinds=contract.record_kinds)


@dataclass(frozen=True)
class RecordRefusal:
    """Why one record is refused: its fields at fault (none when the record as a whole is) and the 400's words."""

    fields: List[str]
    message: str


@dataclass
class FeatureRows:
    """The model's features (and the slice/sensitive columns) of every record, in request order.

    ``sources`` and ``inference_ids`` have one entry per record; ``frame`` one row per record of ``kept`` (every
    record, unless :func:`feature_rows` was told to refuse records one by one: those are in ``refused``, and blank
    lines, :data:`BLANK_RECORD`, in neither)."""

    frame: pd.DataFrame
    sources: List[str]
    inference_ids: List[Optional[str]]
    refused: Dict[int, RecordRefusal] = field(default_factory=dict)
    kept: List[int] = field(default_factory=list)
    # refuse_records: how many records are blank lines (BLANK_RECORD), in neither ``refused`` nor ``kept``.
    blank_lines: int = 0


def feature_rows(contract: FeatureContract, records: Sequence[Record], positions: Optional[Sequence[str]] = None, *,
                 refuse_records: bool = False) -> FeatureRows:
    """Validate ``records`` and compute their features (raw records through ``compute_features``).

    ``refuse_records`` (batch transform; default False): a record with a problem is left out of the frame and named in
    :attr:`FeatureRows.refused` (its fields, and the words the 400 would have used for it), and the others are
    computed, instead of a :class:`BadRequestError` for all of them.

    The frame has the model features in ``feature_order`` followed by the sensitive attribute
    and slice columns (the extras); numbers are float64 (NaN = missing), categories text (``None`` =
    missing). A raw record's extras are computed with its features. A precomputed record's are its own
    fields when it has them, else computed from the raw columns it holds when it holds every column
    the extra reads, each one the ETL would have curated (:func:`_raw_extras`: a raw request of a
    model whose features are all columns as they are is read as precomputed), else missing.

    Raises:
        BadRequestError: naming the record index and the field of (up to 10) problems.
    """
    positions = list(positions) if positions is not None else ["" for _ in records]
    features = list(contract.feature_order)
    columns = [*features, *contract.extra_features]
    problems: List[str] = []  # the first _MAX_PROBLEMS, which the 400 names (a request may hold millions)
    problem_count = 0
    refused: Dict[int, Tuple[List[str], List[str]]] = {}  # record -> (its fields at fault, its problems)

    def refuse(index: int, name: Optional[str], message: str, also: Sequence[str] = ()) -> None:
        nonlocal problem_count
        problem_count += 1
        if len(problems) < _MAX_PROBLEMS:
            problems.append(message)
        if not refuse_records:
            return
        fields, messages = refused.setdefault(index, ([], []))
        for at_fault in (name, *also):
            if at_fault is not None and at_fault not in fields:
                fields.append(at_fault)
        messages.append(message)
    sources: List[str] = []
    inference_ids: List[Optional[str]] = []
    feature_values: Dict[int, Dict[str, Any]] = {}
    precomputed: Dict[int, Dict[str, Any]] = {}  # the records read as precomputed, as objects
    raw_values: Dict[int, Dict[str, Any]] = {}
    raw_fields = [*contract.required_raw_fields, *contract.optional_raw_fields]

    blank_lines = 0
    for i, record in enumerate(records):
        if record is BLANK_RECORD:  # nothing made per blank line: its error line is rendered from a template
            blank_lines += 1
            if not refuse_records:
                refuse(i, None, blank_line_message(i, positions[i] if i < len(positions) else ""))
            sources.append(SOURCE_FEATURES)
            inference_ids.append(None)
            continue
        where = record_place(i, positions[i] if i < len(positions) else "")
        if isinstance(record, Unreadable):
            refuse(i, None, record.message, also=record.fields)
            sources.append(SOURCE_FEATURES)
            inference_ids.append(None)
            continue
        if isinstance(record, list):
            if len(record) != len(features):
                refuse(i, None, f"{where}: {len(record)} values, expected {len(features)} in feature order {features}")
                sources.append(SOURCE_FEATURES)
                inference_ids.append(None)
                continue
            record = dict(zip(features, record))
        if not isinstance(record, dict):
            refuse(i, None, f"{where}: expected an object keyed by field name, got {type(record).__name__}")
            sources.append(SOURCE_FEATURES)
            inference_ids.append(None)
            continue
        identifier = record.get(INFERENCE_ID)
        id_problem = inference_id_problem(identifier)
        if id_problem:
            refuse(i, INFERENCE_ID, f"{where}: field {INFERENCE_ID!r}: {id_problem}")
            sources.append(SOURCE_FEATURES)
            inference_ids.append(None)
            continue
        inference_ids.append(None if identifier is None else str(identifier))
        source, missing = _source(record, contract)
        sources.append(source)
        # A raw field written with a typo would be ignored and its value read as missing: name it instead.
        typos = _misspelt_fields(record, contract) if source == SOURCE_RAW else []
        if missing:
            if source == SOURCE_FEATURES:
                # Serving's words, one definition with the by-id front (core.record_kinds.RecordKinds.refusal).
                words, others = contract.record_kinds.refusal(record, missing)
                refuse(i, missing[0], f"{where}: {words}", also=others)
            else:
                counting = contract.event_time_features(features) if missing[0] == contract.dataset.event_time else []
                why = (f"; feature(s) {counting} count the days up to the record's own event time (days_since), which "
                       "a raw record must carry: an age counted to any other time would be a wrong value"
                       if counting else "")
                # The misspelt key (the fix) before the list of fields needed, which a 400 cut to MAX_ERROR_MESSAGE may
                # lose for a model of many features.
                refuse(
                    i, missing[0], f"{where}: missing required field {missing[0]!r}"
                    + "".join(f"; its {written!r} looks like {declared!r}" for written, declared in typos)
                    + f"{why} ({contract.raw_fields_needed})"
                )
            continue
        if typos:
            written, declared = typos[0]
            refuse(i, written, f"{where}: field {written!r} is not a field of this model and looks like {declared!r}, which "
                            "the record lacks (an optional field left out is scored as missing); correct its name")
            continue
        row: Dict[str, Any] = {}
        if source == SOURCE_FEATURES:
            wanted = [*features, *[c for c in contract.extra_features if c in record]]
            all_missing_on_purpose = _all_missing_on_purpose(record, features)
            for name in wanted:
                fs_type = contract.dataset.feature(name).feature_type
                try:
                    if fs_type == catalog.FS_STRING:
                        row[name] = feature_text(contract.dataset, name, _text(record.get(name)))
                    elif contract.is_boolean_feature(name):
                        row[name] = _boolean(record.get(name))
                    else:
                        row[name] = _number(record.get(name), integral=fs_type == catalog.INTEGRAL)
                except _FieldError as exc:
                    refuse(i, name, f"{where}: field {name!r}: {exc}")
                    continue
                # A feature that is a column as such keeps the column's declared rules, as a raw field does.
                problem = _feature_value_problem(contract.dataset, name, row[name])
                if problem is None and name in features and not all_missing_on_purpose:
                    problem = _feature_missing_problem(contract.dataset, name, row[name])
                if problem:
                    refuse(i, name, f"{where}: field {name!r}: {problem} (declared for dataset {contract.dataset.name!r})")
            feature_values[i] = row
            precomputed[i] = record
        else:
            required = set(contract.required_raw_fields)
            for name in raw_fields:
                column = contract.dataset.column(name)
                given = record.get(name)
                if name in required and isinstance(given, str) and catalog.trimmed_text(given) is None:
                    # The ETL reads blank text as null and quarantines the record: training never saw it either.
                    refuse(i, name, f"{where}: missing required field {name!r} (blank text {catalog.shown(given)} is a "
                                    f"missing value, as the ETL reads it; {contract.raw_fields_needed})")
                    continue
                try:
                    row[name] = _column_value(column, given)
                except _FieldError as exc:
                    refuse(i, name, f"{where}: field {name!r}: {exc}")
                    continue
                # The rules the ETL quarantines on: a value training never saw is refused, not scored.
                problem = column.value_problem(row[name])
                if problem:
                    refuse(i, name, f"{where}: field {name!r}: {problem} (declared for dataset {contract.dataset.name!r})")
            raw_values[i] = row
    if problems and not refuse_records:
        raise BadRequestError(refusal_message(problems, problem_count))
    for i in refused:  # refuse_records: the others are scored
        feature_values.pop(i, None)
        precomputed.pop(i, None)
        raw_values.pop(i, None)
    refusals = {i: RecordRefusal(fields=fields, message="; ".join(messages)) for i, (fields, messages) in refused.items()}
    kept = ([i for i in range(len(records)) if i not in refused and records[i] is not BLANK_RECORD] if blank_lines
            else [i for i in range(len(records)) if i not in refused])

    # A precomputed record's sensitive attribute and slices come from the record, else from the raw columns it holds
    # (a raw request of a model whose features are all columns as they are is read as precomputed).
    for i, (computed, _) in _computed_extras(contract, precomputed).items():
        feature_values[i].update(computed)
    parts = []
    if feature_values:
        parts.append(_feature_part(contract, feature_values, columns))
    if raw_values:
        parts.append(_computed_part(contract, raw_values, raw_fields, columns))
    if not parts:  # every record refused (refuse_records)
        parts.append(_feature_part(contract, {}, columns))
    frame = pd.concat(parts) if len(parts) > 1 else parts[0]
    if len(parts) > 1:  # one part is built in record order already (and is a new frame: nothing to copy)
        frame = frame.sort_index()
    frame.index = pd.RangeIndex(len(frame))
    return FeatureRows(frame=frame, sources=sources, inference_ids=inference_ids, refused=refusals, kept=kept,
                       blank_lines=blank_lines if refuse_records else 0)


def refusal_message(problems: Sequence[str], count: int, limit: int = MAX_ERROR_MESSAGE) -> str:
    """A 400's text: the first of ``problems`` (``count`` in all) joined by "; ", then how many it leaves out
    (``(+<n> more problems)``), in at most ``limit`` characters: SageMaker hands the caller at most 2048 characters of
    it (ModelError's ``OriginalMessage``), and a message cut there could end mid-field. Whole problems while they fit;
    a first problem longer than that alone is cut short after its record and field (`` ...``)."""
    def more(listed: int) -> str:
        return MORE_PROBLEMS.format(count - listed) if count > listed else ""

    listed, length = 0, 0
    for problem in problems:
        grown = length + (2 if listed else 0) + len(problem)
        if grown + len(more(listed + 1)) > limit:
            break
        listed, length = listed + 1, grown
    if listed:
        return "; ".join(problems[:listed]) + more(listed)
    tail = " ..." + more(1)
    return problems[0][:limit - len(tail)] + tail


def _all_missing_on_purpose(record: Dict[str, Any], features: Sequence[str]) -> bool:
    """Whether ``record`` is one of the two precomputed records meant to hold every feature missing: the deploy
    handler's smoke request (:func:`pipeline_code.core.contract.is_smoke_record`) and a by-id miss the model's
    ``missing`` policy scores that way (``feature_source: missing``, :mod:`pipeline_code.core.online_features`)."""
    if is_smoke_record(record):
        return True
    return record.get(FEATURE_SOURCE) == SOURCE_MISSING and all(record.get(name) is None for name in features)


def _feature_missing_problem(dataset: catalog.Dataset, name: str, value: Any) -> Optional[str]:
    """Why a missing precomputed value of feature ``name`` is refused (None when it may be missing): a feature that is
    a column unchanged (``col(x)``) declared ``nullable: false`` was never missing in training (the ETL quarantines
    such records), so a score for it would be a guess. Computed features may be missing (``ratio`` by 0 ...). The rule
    is :meth:`pipeline_code.catalog.Dataset.required_column`, which the by-id front's spec carries too."""
    if not (value is None or (isinstance(value, float) and math.isnan(value))):
        return None
    source = dataset.required_column(name)
    if source is None:
        return None
    return (f"missing (null, or an empty CSV field), but its column {source!r} is declared nullable: false, so "
            "training never saw it missing; send its value")


def _misspelt_fields(record: Dict[str, Any], contract: FeatureContract) -> List[Tuple[str, str]]:
    """``(written, declared)`` for each raw field the record lacks that one of its keys the dataset does not know is
    a typo of (:func:`pipeline_code.core.spelling.misspellings`). Keys the dataset knows (columns, features: ids,
    times, labels, slices), the contract's own (``inference_id``) and the by-id front's provenance are never typos."""
    known = contract._known_fields
    unknown = [key for key in record if key not in known]
    if not unknown:
        return []
    absent = [f for f in (*contract.required_raw_fields, *contract.optional_raw_fields) if f not in record]
    return misspellings(absent, unknown)


def _feature_value_problem(dataset: catalog.Dataset, name: str, value: Any) -> Optional[str]:
    """Why a precomputed value of feature ``name`` breaks a declared rule (None when it keeps them): a feature that is
    a column unchanged (``col(x)``) keeps that column's rules (allowed values, bounds); a bucket feature is one of
    its labels. Features computed otherwise have no declared range to hold them to. The rule is
    :meth:`pipeline_code.catalog.Dataset.feature_rule`, which the by-id front's spec carries too."""
    rule = dataset.feature_rule(name)
    return None if rule is None else rule.problem(value)


def _feature_part(contract: FeatureContract, rows: Dict[int, Dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    index = list(rows)
    data: Dict[str, Any] = {}
    for name in columns:
        values = [rows[i].get(name) for i in index]
        if contract.dataset.feature(name).feature_type == catalog.FS_STRING:
            data[name] = _object_array(values)
        else:
            data[name] = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    # Arrays, not a Series each: the frame takes them as its columns without aligning indexes (the same frame).
    return pd.DataFrame(data, index=pd.Index(index, dtype=np.int64))


def _object_array(values: Sequence[Any]) -> np.ndarray:
    """``values`` as a 1-d object array, each value kept as it is (a list or tuple value too: one cell, not a row)."""
    out = np.empty(len(values), dtype=object)
    for k, value in enumerate(values):  # not out[:] = values, which would spread a list value over cells
        out[k] = value
    return out


def _computed_part(
    contract: FeatureContract, rows: Dict[int, Dict[str, Any]], raw_fields: Sequence[str], columns: Sequence[str]
) -> pd.DataFrame:
    """The features of raw records, by the catalog's expressions (the ingestion job's interpreter)."""
    dataset = contract.dataset
    index = list(rows)
    # The record's own event time where it gives one (a model reading it requires it: days_since), else a placeholder.
    times = [rows[i].get(dataset.event_time) if dataset.event_time in raw_fields else None for i in index]
    ids = _object_array([str(i) for i in index])
    event_times = _object_array([_PLACEHOLDER_EVENT_TIME if t is None else t for t in times])
    typed: Dict[str, Any] = {}  # each column's values as the interpreter reads it: compute.int_column, ...
    for column in dataset.columns:
        if column.name in (dataset.record_identifier, dataset.event_time) or column.name in dataset.labels:
            continue
        values = [rows[i].get(column.name) for i in index] if column.name in raw_fields else [None] * len(index)
        if column.dtype in (catalog.INTEGER, catalog.BOOLEAN, catalog.DOUBLE):
            numbers = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
            if column.dtype == catalog.DOUBLE:
                typed[column.name] = compute.float_column(numbers)
            else:  # a boolean is 1 / 0, as the interpreter reads one
                missing = np.isnan(numbers)
                typed[column.name] = compute.int_column(np.where(missing, 0, numbers).astype("int64"), missing)
        else:
            typed[column.name] = compute.text_column(_object_array(values))
    # Without an event time to read (the placeholder's, always valid), the features are computed on the arrays
    # themselves (compute.compute_arrays: the same values); anything else - an error included - by compute_features.
    arrays = None if dataset.event_time in raw_fields else compute.compute_arrays(
        {dataset.record_identifier: compute.text_column(ids), dataset.event_time: compute.text_column(event_times),
         **typed}, dataset, len(index))
    if arrays is not None:
        return pd.DataFrame({name: arrays[name] for name in columns}, index=pd.Index(index, dtype=np.int64))
    curated: Dict[str, Any] = {dataset.record_identifier: ids, dataset.event_time: event_times}
    for column in dataset.columns:
        if column.name not in typed:
            continue
        values = typed[column.name]
        if column.dtype == catalog.INTEGER:
            ints = pd.array(values.values, dtype="Int64")
            ints[values.mask] = pd.NA
            curated[column.name] = ints
        elif column.dtype == catalog.BOOLEAN:
            curated[column.name] = pd.array(np.where(values.mask, math.nan, values.values.astype(np.float64)),
                                            dtype="float64").astype("boolean")
        else:
            curated[column.name] = values.values
    try:
        computed = compute_features(pd.DataFrame(curated), dataset)
    except FeatureComputationError as exc:
        raise BadRequestError(f"records {index[:5]}{'...' if len(index) > 5 else ''}: cannot compute features: {exc}") from None
    data: Dict[str, Any] = {}
    timeless = np.asarray([t is None for t in times], dtype=bool)
    for name in columns:
        series = computed[name]
        if timeless.any() and dataset.feature(name).expr.reads_event_time():
            # An extra counting days up to an event time the record does not give: missing, never counted from the
            # placeholder (a model feature that reads it is required, refused above when absent).
            series = compute._nulls_as_none(series.to_numpy(dtype=object), series, timeless)
        if dataset.feature(name).feature_type == catalog.FS_STRING:
            data[name] = series.to_numpy(dtype=object)
        else:
            data[name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame(data, index=pd.Index(index, dtype=np.int64))


def _raw_column(column: catalog.Column, given: Any) -> Tuple[bool, Any]:
    """(readable, value) of a precomputed record's field ``given`` of raw column ``column``: readable when it is a value
    the ETL would have curated (typed as the column, within its declared rules, present where the column is
    ``nullable: false``: else the ETL quarantines the row and the feature job computes nothing); value None when
    missing."""
    try:
        value = _column_value(column, given)
    except _FieldError:
        return False, None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return column.nullable, None
    return column.value_problem(value) is None, value


def _extra_sources(contract: FeatureContract) -> Dict[str, Tuple[str, ...]]:
    """extra -> the raw columns it reads, for those of the contract's extras (sensitive attribute, slices) a precomputed
    record's fields can compute. Not those reading the record identifier (serving has a placeholder there, no record's
    value) or a column a feature of its name is not (``tenure: log1p(tenure)``: in a precomputed record the field may hold
    that feature, so reading it as the column would be a guess)."""
    dataset = contract.dataset
    unreadable = {dataset.record_identifier, *dataset.shadowing_features(dataset.column_names)}
    # An extra counting days (days_since) reads the record's event time too (no expression reads it as a column).
    sources = {name: (*expr.source_columns(), *((dataset.event_time,) if expr.reads_event_time() else ()))
               for name, expr in ((name, dataset.feature(name).expr) for name in contract.extra_features)}
    return {name: columns for name, columns in sources.items() if unreadable.isdisjoint(columns)}


def computable_extras(contract: FeatureContract, keys: Iterable[str]) -> List[str]:
    """The extras (sensitive attribute, slices) :func:`complete_records` may compute for a precomputed record holding
    no other keys than ``keys`` when it lacks them: those whose every raw column is one of ``keys`` (and not the extra
    itself: a record lacking it lacks that column)."""
    given = set(keys)
    return [name for name, columns in _extra_sources(contract).items() if (given - {name}).issuperset(columns)]


def _raw_extras(record: Dict[str, Any], dataset: catalog.Dataset,
                sources: Dict[str, Tuple[str, ...]]) -> Tuple[List[str], Dict[str, Any]]:
    """(extras, raw values): those of the extras of ``sources`` (:func:`_extra_sources`) a precomputed record does not
    give whose every column it holds readable (:func:`_raw_column`), and those columns' values. An extra the record
    gives is kept as given."""
    extras: List[str] = []
    values: Dict[str, Any] = {}
    readable: Dict[str, Tuple[bool, Any]] = {}
    for name, columns in sources.items():
        if name in record or not all(column in record for column in columns):
            continue
        for column in columns:
            if column not in readable:
                readable[column] = _raw_column(dataset.column(column), record[column])
        if all(readable[column][0] for column in columns):
            extras.append(name)
            values.update({column: readable[column][1] for column in columns})
    return extras, values


def _computed_extras(
    contract: FeatureContract, records: Dict[int, Dict[str, Any]]
) -> Dict[int, Tuple[Dict[str, Any], List[str]]]:
    """``{position: ({extra: value}, columns read)}`` for those of ``records`` (precomputed, by position) whose
    missing extras their raw columns compute (:func:`_raw_extras`), computed as a raw record's are
    (:func:`_computed_part`: ``compute_features``, the feature job's interpreter); values plain (None = missing).
    Anything else stays missing: never a guess, and never a refusal (no model input depends on them)."""
    sources = _extra_sources(contract) if records else {}
    if not sources:
        return {}
    dataset = contract.dataset
    read_any = frozenset(column for columns in sources.values() for column in columns)
    wanted: Dict[int, List[str]] = {}
    rows: Dict[int, Dict[str, Any]] = {}
    for i, record in records.items():
        # Most precomputed records hold none of these columns: nothing is built for them (the monitor decodes
        # millions; objects kept per record would cost more in garbage collection than the reading).
        if read_any.isdisjoint(record):
            continue
        extras, values = _raw_extras(record, dataset, sources)
        if extras:
            wanted[i], rows[i] = extras, values
    if not rows:
        return {}
    names = list(dict.fromkeys(name for extras in wanted.values() for name in extras))
    try:
        frame = _computed_part(contract, rows, dataset.column_names, names)
    except BadRequestError:  # the values were read as the ETL reads them: not expected, and not worth a 400
        return {}
    position = {i: k for k, i in enumerate(frame.index)}
    computed = {name: [_plain(value) for value in frame[name].tolist()] for name in names}
    return {i: ({name: computed[name][position[i]] for name in extras}, list(rows[i])) for i, extras in wanted.items()}


def complete_records(records: Sequence[Any], contract: FeatureContract) -> List[Any]:
    """``records`` with every *raw* object replaced by its computed features; never raises.

    For readers of captured requests (the drift monitor): a raw record becomes
    ``{feature: value, ..., extra: value, inference_id, inference_time}`` (features computed as
    serving computed them); a precomputed record gets the extras serving computed for it from the
    raw columns it holds (:func:`feature_rows`), those columns removed, and is otherwise unchanged; lists,
    other precomputed records and records serving would reject are returned unchanged, so the caller's
    own checks still see them.
    """
    out = list(records)
    raw_positions: List[int] = []
    precomputed: Dict[int, Dict[str, Any]] = {}
    for i, record in enumerate(out):
        if isinstance(record, dict):
            source = _source(record, contract)
            if source == (SOURCE_RAW, []):
                raw_positions.append(i)
            elif source == (SOURCE_FEATURES, []):
                precomputed[i] = record
    # Read as serving reads them (feature_rows): missing extras computed from the raw columns the record holds, and
    # those columns consumed, as a raw record's are (they are no keys of the model's frame: not a schema change).
    kept = {*contract.feature_order, *contract.extra_features}
    for i, (computed, read) in _computed_extras(contract, precomputed).items():
        out[i] = {**{k: v for k, v in out[i].items() if k in kept or k not in read}, **computed}
    if not raw_positions:
        return out
    for i, row in zip(raw_positions, _computed_rows(contract, [out[i] for i in raw_positions])):
        if row is None:
            continue  # serving would have answered 400: leave it for the caller to count
        for key in META_KEYS:
            if key in out[i]:
                row[key] = out[i][key]
        out[i] = row
    return out


def _computed_rows(contract: FeatureContract, records: List[Dict[str, Any]]) -> List[Optional[Dict[str, Any]]]:
    """Each raw record's computed row (plain values), None for one serving refuses. All in one :func:`feature_rows`
    call when serving takes them all; a refused record splits the batch in halves, so a few bad records among the
    thousands of a capture window cost a few calls more, not one call per record (~4 ms each)."""
    try:
        frame = feature_rows(contract, records).frame
    except BadRequestError:
        if len(records) == 1:
            return [None]
        half = len(records) // 2
        return _computed_rows(contract, records[:half]) + _computed_rows(contract, records[half:])
    return [{name: _plain(value) for name, value in row.items()} for row in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value

"""Decode a window of captured traffic into a frame of model features + score.

Two sources, found by walking ``capture_dir`` recursively:

**SageMaker data capture** (real-time, serverless, async endpoints): ``*.jsonl`` files, one
capture record per line::

    {"captureData": {"endpointInput":  {"observedContentType": "application/json", "mode": "INPUT",
                                        "data": "...", "encoding": "JSON"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "0.42", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2026-05-01T10:00:00Z"},
     "eventVersion": "0"}

``encoding`` ``BASE64`` is decoded first; the content type then says how to parse ``data``.

**Batch transform**: an input file ``X`` (any name but ``*.jsonl`` / ``*.out``) next to its
output ``X.out``; line ``i`` of the output is the score of line ``i`` of the input, or the error object of a record
serving refused (``core.contract.record_error``; in a CSV output, that JSON as one quoted field). A refused record is
no prediction and not malformed (the capture is sound; the caller's request was refused): it is counted refused
(``CaptureWindow.refused``, ``summary()["refused"]``) and per field at fault (``CaptureWindow.refused_fields``), and its
input is not judged. So is a captured request an endpoint refused.

Request format (the contract with serving)
------------------------------------------
* ``application/json``: one object keyed by feature name (``{"tenure_months": 12, ...}``),
  a list of such objects, or ``{"instances": [...]}``. An object may also carry
  ``inference_id`` / ``inference_time`` and the non-input frame features (the sensitive
  attribute and slice columns) - those are known keys, used for bias monitoring - or, read as
  serving read them (``records.complete_records``), the raw columns they are computed from.
* ``text/csv``: one record per line, the model's input features in ``feature_order``
  (no header). Empty fields are missing values.

Response format, per the model's problem type (``read_capture(problem_type=...)``):

* binary (the default): ``text/csv`` scores (one per record, comma- or newline-separated) or JSON:
  a number, a list of numbers, ``{"score": p}`` or ``{"predictions": [p | {"score": p}, ...]}``.
  The frame's ``score`` is P(target = 1).
* multiclass: ``text/csv`` one class name per record (per line); JSON ``{"predictions": [{"label": c,
  "score": p, "probabilities": {class: p, ...}}, ...]}`` (or a list of such objects, one object, or
  class names). The frame's ``score`` is the predicted class's code (its position in ``classes``), the
  probabilities (when the response has them) go to one ``proba:<class>`` column per class. A label that
  is not one of the model's classes, or probabilities that are not one number per class, are malformed.
* regression: ``text/csv`` one value per record; JSON a number, a list of numbers, ``{"value": y}`` or
  ``{"predictions": [y | {"value": y}, ...]}``. The frame's ``score`` is the predicted value; a value
  that is not a finite number is malformed.

A record's ``inference_id`` is the record's own ``inference_id`` key, else the event's
``inferenceId`` (suffixed ``:i`` when one request holds several records), else the ``eventId``.

Which model answered (``core.contract.ANSWERED_BY``): the artefact digest in a JSON response's ``model``
object, else in the record's ``eventMetadata.model`` (self-capture writes it for every response type), goes
to the frame's ``answered_by`` column; a CSV or JSON Lines response captured by SageMaker names none (missing).
The window counts the records per answering model (``summary()["answered_by"]``).

Robustness: nothing in a capture file raises. A line that cannot be decoded is *malformed*:
counted per reason and sampled (file, line, reason, excerpt) into the report. Unknown keys,
missing input keys and CSV rows of the wrong width are a *schema change*, counted per key.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_code import catalog
from pipeline_code.core import media_types
from pipeline_code.core.contract import (ANSWERED_BY, ANSWERED_BY_DIGEST, ANSWERED_BY_VERSION, BATCH_OUTPUT_SUFFIX,
                                         RECORD_ERROR_FIELDS, RECORD_ERROR_MESSAGE, REFUSED_FIELD, record_error_of)
from pipeline_code.core.lines import record_lines
from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION
from pipeline_code.core import online_features
from pipeline_code.monitoring import capture_columns
from pipeline_code.monitoring.window_stats import concat
from pipeline_code.serving.records import FeatureContract, complete_records, feature_text
from pipeline_code.serving.request_body import BLANK_LINE

SCORE = "score"
# A multiclass model's class probabilities: one column per class, ``proba:<class>`` (``:`` is in no
# feature name, so a request cannot clash with them).
PROBABILITY_PREFIX = "proba:"
INFERENCE_ID = "inference_id"
INFERENCE_TIME = "inference_time"
META_KEYS = (INFERENCE_ID, INFERENCE_TIME)
# The artefact digest of the model that answered the record (missing: the capture does not say).
ANSWERED = "answered_by"
# Whose features a by-id request carries and where they came from (the score-by-id front adds them): expected,
# not a schema change.
PROVENANCE_KEYS = frozenset(online_features.PROVENANCE_KEYS)
CAPTURE_SUFFIXES = (".jsonl",)
DEFAULT_MAX_SAMPLES = 20
# Records the line decoder holds before it hands them on as one chunk (the columnar reader hands on each block).
CHUNK_RECORDS = 50_000


def request_times(values: pd.Series) -> pd.Series:
    """Times as UTC datetimes: each ISO-8601 string on its own (mixed precisions and offsets alike; inferring one
    format from the first value would miss the others), anything else missing (NaT).

    Values that are datetimes already (a records file's times, read from parquet) are converted without pandas'
    cache of unique values: the cache only saves parsing text, and deciding whether to build it (a Timestamp object
    per value of a sample) costs ~40x the conversion itself. The times are the same either way."""
    cache = not pd.api.types.is_datetime64_any_dtype(values.dtype)
    try:
        return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601", cache=cache)
    except (TypeError, ValueError):  # pandas < 2 has no format="ISO8601"; its inference reads ISO-8601 too
        return pd.to_datetime(values, utc=True, errors="coerce", cache=cache)


def probability_column(name: str) -> str:
    """The frame column holding the probability of class ``name`` (multiclass models)."""
    return f"{PROBABILITY_PREFIX}{name}"


@dataclass
class CaptureWindow:
    """The decoded window plus everything that went wrong decoding it.

    ``frame`` holds every record when :func:`read_capture` collected them (the default); a window streamed
    to a ``consume`` callback keeps an empty frame, and its counts (``records``, the scored records, the
    time span) are the same either way: they are taken chunk by chunk (:meth:`observe`)."""

    frame: pd.DataFrame
    lines: int = 0
    malformed: int = 0
    malformed_reasons: Counter = field(default_factory=Counter)
    malformed_samples: List[Dict[str, Any]] = field(default_factory=list)
    # Requests serving refused (error lines in X.out, captured 4xx answers), per field at fault (RECORD_AS_A_WHOLE:
    # none named).
    refused_fields: Counter = field(default_factory=Counter)
    # The lines that are requests serving refused (not malformed: judged against their own limit), and a few of them.
    refused: int = 0
    refused_samples: List[Dict[str, Any]] = field(default_factory=list)
    unknown_keys: Counter = field(default_factory=Counter)
    missing_keys: Counter = field(default_factory=Counter)
    csv_width_mismatch: int = 0
    type_violations: Dict[str, int] = field(default_factory=dict)
    files: Dict[str, int] = field(default_factory=lambda: {"data_capture": 0, "batch_input": 0})
    problem_type: str = BINARY
    classes: Tuple[str, ...] = ()
    # Blocks the columnar reader handed to the line decoder after an unexpected error, per reason.
    columnar_fallbacks: Dict[str, int] = field(default_factory=dict)
    records: int = 0
    records_with_score: int = 0
    records_with_probabilities: int = 0
    start: Optional[pd.Timestamp] = None
    end: Optional[pd.Timestamp] = None
    # Records per answering model's artefact digest, and the registry version each digest's responses named.
    answered: Counter = field(default_factory=Counter)
    versions: Dict[str, Optional[str]] = field(default_factory=dict)

    def note_version(self, digest: str, version: Any) -> None:
        """The registry version a response of artefact ``digest`` named (None: not named); a named one wins."""
        if self.versions.get(digest) is None:
            self.versions[digest] = None if version is None else str(version)

    @property
    def schema_changed(self) -> bool:
        return bool(self.unknown_keys or self.missing_keys or self.csv_width_mismatch)

    @property
    def probability_columns(self) -> List[str]:
        """The class-probability columns of the frame (multiclass models; none otherwise)."""
        return [probability_column(c) for c in self.classes] if self.problem_type == MULTICLASS else []

    def observe(self, chunk: pd.DataFrame) -> None:
        """Count one chunk of decoded records (as decoded: before any rescoring)."""
        if not len(chunk):
            return
        self.records += int(len(chunk))
        self.records_with_score += int(chunk[SCORE].notna().sum())
        columns = self.probability_columns
        if columns:
            self.records_with_probabilities += int(chunk[columns].notna().all(axis=1).sum())
        answered = chunk[ANSWERED]
        if answered.notna().any():
            self.answered.update({str(k): int(v) for k, v in answered.value_counts(dropna=True).items()})
        times = request_times(chunk[INFERENCE_TIME])
        first, last = times.min(), times.max()  # NaT: no time (min and max skip missing times)
        if not pd.isna(first):
            self.start = first if self.start is None else min(self.start, first)
            self.end = last if self.end is None else max(self.end, last)

    def summary(self) -> Dict[str, Any]:
        out = {
            "files": dict(self.files),
            "lines": self.lines,
            "records": self.records,
            "records_with_score": self.records_with_score,
            "start": self.start.isoformat() if self.start is not None else None,
            "end": self.end.isoformat() if self.end is not None else None,
            "malformed": {
                "count": self.malformed,
                "rate": self.malformed / self.lines if self.lines else 0.0,
                "reasons": dict(self.malformed_reasons),
                "samples": list(self.malformed_samples),
            },
            # The lines that are requests serving refused (a caller's, not a broken capture): not malformed.
            "refused": {
                "count": self.refused,
                "rate": self.refused / self.lines if self.lines else 0.0,
                "fields": dict(self.refused_fields),
                "samples": list(self.refused_samples),
            },
            "schema": {
                "changed": self.schema_changed,
                "unknown_keys": dict(self.unknown_keys),
                "missing_keys": dict(self.missing_keys),
                "csv_width_mismatch": self.csv_width_mismatch,
            },
            "type_violations": dict(self.type_violations),
        }
        if self.columnar_fallbacks:
            out["columnar_fallbacks"] = dict(self.columnar_fallbacks)
        if self.answered:
            out["answered_by"] = {
                "models": {d: {"version": self.versions.get(d), "records": n} for d, n in sorted(self.answered.items())},
                "unattributed": self.records - sum(self.answered.values()),
            }
        if self.problem_type != BINARY:
            out["problem_type"] = self.problem_type
        if self.problem_type == MULTICLASS:
            out["records_with_probabilities"] = self.records_with_probabilities
        return out


class _Malformed(ValueError):
    """One capture line that cannot be decoded (the message is the reason)."""


# The malformed reason of a batch record serving refused, and its field count when the record as a whole was (not JSON,
# not an object, a CSV line of the wrong width).
REFUSED_RECORD = "refused_record"
RECORD_AS_A_WHOLE = "(record)"


class _Refused(_Malformed):
    """A batch input line whose output line is serving's error object for it (``core.contract.record_error``)."""

    def __init__(self, fields: List[str], message: str) -> None:
        self.fields = fields
        super().__init__(f"{REFUSED_RECORD}: {message}")


# The field each problem of serving's 400 names (core.contract.REFUSED_FIELD, the documented pattern: "field 'x'",
# "missing required field 'x'", "missing feature 'x'"), the same a batch error line names first.
_FIELD_NAMED = re.compile(REFUSED_FIELD)


def refused_response(block: Dict[str, Any]) -> Optional[Tuple[List[str], str]]:
    """(fields, message) of a captured endpointOutput that is serving's answer to a request it refused, None for any
    other: the message as text (``media_types.REFUSAL``, how the serving hooks answer a 400/406/415 on an endpoint;
    SageMaker's capture stores it BASE64-encoded), its fields those its problems name (``REFUSED_FIELD``), or a JSON
    error object (``core.contract.record_error``)."""
    data = block.get("data")
    if not isinstance(data, str):
        return None
    if str(block.get("encoding") or "").upper() == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
    content_type = media_types.base_type(str(block.get("observedContentType") or ""))
    if content_type == media_types.REFUSAL:
        named = (match.group(3) for match in _FIELD_NAMED.finditer(data) if match.group(3))
        return list(dict.fromkeys(named)), data.strip()
    return refused_output(data.strip()) if media_types.canonical(content_type) == media_types.JSON else None


def refused_output(text: str) -> Optional[Tuple[List[str], str]]:
    """(fields, message) of a batch output line that is serving's error object for its record (JSON Lines: the
    object; CSV: the object's JSON as one quoted field); None for any other line."""
    if text.startswith('"{'):
        try:
            row = next(csv.reader([text]), [])
        except csv.Error:
            return None
        if len(row) != 1:
            return None
        text = row[0]
    if not text.startswith("{") or '"error"' not in text:
        return None
    try:
        error = record_error_of(json.loads(text))
    except ValueError:
        return None
    if error is None:
        return None
    fields = error.get(RECORD_ERROR_FIELDS)
    names = [str(f) for f in fields] if isinstance(fields, list) else []
    return names, str(error[RECORD_ERROR_MESSAGE])


class _Decoder:
    def __init__(
        self, feature_order: Sequence[str], known_keys: Sequence[str], max_samples: int, dataset: Optional[catalog.Dataset] = None,
        problem_type: str = BINARY, classes: Sequence[str] = (), categorical: Iterable[str] = (),
    ) -> None:
        # With the dataset known, requests that carry raw source fields (the serving contract also
        # accepts those) are turned into features exactly as serving computed them.
        self.contract = FeatureContract.create(dataset, feature_order, known_keys) if dataset else None
        self.features = list(feature_order)
        self.width = len(self.features)
        self.known: Set[str] = set(known_keys) | set(self.features) | set(META_KEYS)
        self.feature_set = set(self.features)
        self.max_samples = max_samples
        self.csv_lines: List[str] = []  # parsed once, at the end, by pandas' C parser
        self.csv_meta: List[Tuple[Any, Any, Any, Any, Any]] = []  # (inference_id, time, score, probabilities, answered)
        self.json_rows: List[Dict[str, Any]] = []
        # JSON requests waiting for their raw records' features (with the dataset known): computed together at the
        # next flush, one vectorised computation for thousands of requests instead of one per request.
        self.pending: List[Tuple[List[Dict[str, Any]], Optional[List["Output"]], Any, Any, Optional[str]]] = []
        self.pending_records = 0
        self.parts: List[pd.DataFrame] = []  # typed frames of decoded records (blocks of the columnar reader)
        self.categorical: Set[str] = set(categorical)
        self.extra_columns = [c for c in known_keys if c not in self.feature_set]
        self.problem_type = problem_type
        self.classes = tuple(str(c) for c in classes)
        self.class_index = {c: i for i, c in enumerate(self.classes)}
        self.coder = catalog.ClassCoder(self.classes)
        self.window = CaptureWindow(frame=pd.DataFrame(), problem_type=problem_type, classes=self.classes)
        self.sink: Callable[[pd.DataFrame], None] = lambda chunk: None

    # ----------------------------------------------------------------------------------
    def refused(self, source: str, line_no: int, refusal: "_Refused", text: str) -> None:
        """A line that is a request serving refused: counted on its own (and per field at fault), not malformed."""
        w = self.window
        w.refused += 1
        w.refused_fields.update(refusal.fields or [RECORD_AS_A_WHOLE])
        if len(w.refused_samples) < self.max_samples:
            w.refused_samples.append({"file": source, "line": line_no, "reason": str(refusal), "excerpt": text[:200]})

    def undecoded(self, source: str, line_no: int, exc: "_Malformed", text: str) -> None:
        """A line that did not decode: refused by serving (:meth:`refused`) or malformed (:meth:`malformed`)."""
        if isinstance(exc, _Refused):
            self.refused(source, line_no, exc, text)
        else:
            self.malformed(source, line_no, str(exc), text)

    def malformed(self, source: str, line_no: int, reason: str, text: str) -> None:
        w = self.window
        w.malformed += 1
        kind = reason.split(":", 1)[0]
        w.malformed_reasons[kind] += 1
        if len(w.malformed_samples) < self.max_samples:
            w.malformed_samples.append({"file": source, "line": line_no, "reason": reason, "excerpt": text[:200]})

    def decode_capture_line(self, text: str, source: str, line_no: int) -> None:
        """One line of a capture file: blank lines skipped, a line that does not decode counted (:meth:`undecoded`)."""
        if not text.strip():
            return
        self.window.lines += 1
        try:
            self.add_capture_line(text)
        except _Malformed as exc:
            self.undecoded(source, line_no, exc, text)
        self.flush_when_full()

    def flush_when_full(self) -> None:
        """Flush once :data:`CHUNK_RECORDS` records wait (the line decoder's part of a chunk stays bounded)."""
        if len(self.csv_lines) + len(self.json_rows) + self.pending_records >= CHUNK_RECORDS:
            self.flush()

    def add_frame(self, part: pd.DataFrame) -> None:
        """Records decoded elsewhere (:mod:`capture_columns`): feature columns as numbers or text, id, time, score."""
        self.parts.append(self._typed(part, text_is_str=True))

    # ----------------------------------------------------------------------------------
    def add_capture_line(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError as exc:
            raise _Malformed(f"invalid_json: {exc}") from None
        if not isinstance(event, dict) or not isinstance(event.get("captureData"), dict):
            raise _Malformed("not_a_capture_record: no captureData object")
        capture = event["captureData"]
        meta = event.get("eventMetadata") if isinstance(event.get("eventMetadata"), dict) else {}
        inp = capture.get("endpointInput")
        if not isinstance(inp, dict) or "data" not in inp:
            raise _Malformed("missing_input: captureData.endpointInput.data absent")
        out = capture.get("endpointOutput")
        refused = refused_response(out) if isinstance(out, dict) else None
        if refused is not None:  # serving answered no prediction for this request: nothing to judge
            raise _Refused(*refused)
        kind, payload = decode_payload(inp)
        scores: Optional[List[Output]] = None
        answered = meta.get(ANSWERED_BY)
        if isinstance(out, dict) and out.get("data") not in (None, ""):
            out_kind, out_payload = decode_payload(out)
            scores = self.outputs(out_kind, out_payload)
            if isinstance(out_payload, dict) and isinstance(out_payload.get(ANSWERED_BY), dict):
                answered = out_payload[ANSWERED_BY]
        base_id = meta.get("inferenceId") or meta.get("eventId")
        when = meta.get("inferenceTime")
        self._add_payload(kind, payload, scores, base_id, when, self._answered_by(answered))

    def _answered_by(self, identity: Any) -> Optional[str]:
        """The artefact digest of a response's (or record's) model identity, its version noted (None: none given)."""
        if not isinstance(identity, dict) or not isinstance(identity.get(ANSWERED_BY_DIGEST), str):
            return None
        digest = identity[ANSWERED_BY_DIGEST]
        version = identity.get(ANSWERED_BY_VERSION)
        self.window.note_version(digest, version)
        return digest

    def add_batch_line(self, text: str, out_text: Optional[str], source: str, line_no: int) -> None:
        refused = refused_output(out_text.strip()) if out_text is not None else None
        if refused is not None:  # serving answered no prediction for this record: nothing to judge
            raise _Refused(*refused)
        stripped = text.strip()
        kind = "json" if stripped.startswith(("{", "[")) else "csv"
        payload: Any = stripped
        if kind == "json":
            try:
                payload = _json(stripped)
            except ValueError as exc:
                raise _Malformed(f"invalid_json: {exc}") from None
        scores = None
        if out_text is not None and out_text.strip():
            out_stripped = out_text.strip()
            out_kind = "json" if out_stripped.startswith(("{", "[")) else "csv"
            try:
                out_payload = _json(out_stripped) if out_kind == "json" else out_stripped
            except ValueError as exc:
                raise _Malformed(f"invalid_output: {exc}") from None
            scores = self.outputs(out_kind, out_payload)
        self._add_payload(kind, payload, scores, f"{source}:{line_no}", None)

    # ----------------------------------------------------------------------------------
    def outputs(self, kind: str, payload: Any) -> List["Output"]:
        """One (score, class probabilities or None) per record of a response, per the problem type."""
        if self.problem_type == MULTICLASS:
            return self._class_outputs(kind, payload)
        if self.problem_type == REGRESSION:
            return [(v, None) for v in _values(kind, payload)]
        return [(v, None) for v in _scores(kind, payload)]

    def _class_outputs(self, kind: str, payload: Any) -> List["Output"]:
        if kind == "csv":
            names: List[Any] = []
            for line in record_lines(str(payload)):
                text = line.strip()
                if not text:
                    continue
                if text in self.class_index or ("," not in text and '"' not in text):
                    names.append(text)
                else:  # a quoted class name (serving quotes one holding a comma or a quote), or several on a line
                    names.extend(v for v in _csv_row(text) if v.strip())
            return [(float(self._class_code(name)), None) for name in names]
        if isinstance(payload, dict):
            payload = payload.get("predictions", payload)
        values = payload if isinstance(payload, list) else [payload]
        out: List[Output] = []
        for value in values:
            if not isinstance(value, dict):
                out.append((float(self._class_code(value)), None))
                continue
            raw = value.get("probabilities")
            probabilities = self._probabilities(raw) if raw is not None else None
            label = value.get("label", value.get("predicted_label"))
            if label is not None:
                code = self._class_code(label)
            elif probabilities is not None:
                code = int(np.argmax(probabilities))
            else:
                raise _Malformed(f"bad_prediction: neither a label nor probabilities in {json.dumps(value)[:80]}")
            out.append((float(code), probabilities))
        return out

    def _class_code(self, value: Any) -> int:
        """The code of a class named in a response (:class:`catalog.ClassCoder`)."""
        code = self.coder.code(value)
        if code is None:
            raise _Malformed(f"unknown_class: {str(value).strip()[:50]!r} is not one of the model's classes")
        return code

    def _probabilities(self, raw: Any) -> List[float]:
        """One probability per class, in class order, from ``{class: p}`` (or a list in class order)."""
        if isinstance(raw, list):
            if len(raw) != len(self.classes):
                raise _Malformed(f"bad_probabilities: {len(raw)} values for {len(self.classes)} classes")
            pairs = list(zip(self.classes, raw))
        elif isinstance(raw, dict):
            unknown = [str(k) for k in raw if str(k) not in self.class_index]
            missing = [c for c in self.classes if c not in raw]
            if unknown or missing:
                raise _Malformed(f"bad_probabilities: unknown classes {unknown[:3]}, missing classes {missing[:3]}")
            pairs = [(c, raw[c]) for c in self.classes]
        else:
            raise _Malformed(f"bad_probabilities: expected an object of class -> probability, got {type(raw).__name__}")
        out = []
        for name, value in pairs:
            try:
                number = float(value) if not isinstance(value, bool) else float("nan")
            except (TypeError, ValueError):
                number = float("nan")
            if not (0.0 <= number <= 1.0):  # NaN fails too
                raise _Malformed(f"bad_probabilities: {str(value)[:30]!r} for class {name!r} is not a probability")
            out.append(number)
        return out

    def _add_payload(self, kind: str, payload: Any, scores: Optional[List["Output"]], base_id: Any, when: Any,
                     answered: Optional[str] = None) -> None:
        if kind == "csv":
            lines = _csv_lines(payload)
            if not lines:
                raise _Malformed("empty_input: no CSV record in the request")
            widths = [_csv_width(line) for line in lines]
            bad = [w for w in widths if w != self.width]
            if bad:
                self.window.csv_width_mismatch += len(bad)
                raise _Malformed(f"schema_csv_width: {bad[0]} fields, expected {self.width} ({', '.join(self.features)})")
            self._check_scores(scores, len(lines))
            many = len(lines) > 1
            for i, line in enumerate(lines):
                self.csv_lines.append(line)
                rid = f"{base_id}:{i}" if many and base_id is not None else base_id
                score, probabilities = scores[i] if scores is not None else (None, None)
                self.csv_meta.append((rid, when, score, probabilities, answered))
            return
        records = payload.get("instances") if isinstance(payload, dict) and "instances" in payload else payload
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list) or not records:
            raise _Malformed("empty_input: no JSON record in the request")
        decoded: List[Dict[str, Any]] = []
        for record in records:
            if isinstance(record, list):  # a list of values in feature order
                if len(record) != self.width:
                    self.window.csv_width_mismatch += 1
                    raise _Malformed(f"schema_array_width: {len(record)} values, expected {self.width}")
                record = dict(zip(self.features, record))
            if not isinstance(record, dict):
                raise _Malformed(f"bad_record: expected an object keyed by feature, got {type(record).__name__}")
            decoded.append(record)
        self._check_scores(scores, len(decoded))
        if self.contract is not None:
            self.pending.append((decoded, scores, base_id, when, answered))
            self.pending_records += len(decoded)
            return
        self._add_records(decoded, scores, base_id, when, answered)

    def _complete_pending(self) -> None:
        """The waiting JSON requests' records completed (:func:`complete_records`: raw ones as serving computed their
        features) in one call, then added in the order they came."""
        if not self.pending:
            return
        completed = complete_records([r for records, *_ in self.pending for r in records], self.contract)
        start = 0
        for records, scores, base_id, when, answered in self.pending:
            self._add_records(completed[start:start + len(records)], scores, base_id, when, answered)
            start += len(records)
        self.pending, self.pending_records = [], 0

    def _add_records(self, decoded: List[Dict[str, Any]], scores: Optional[List["Output"]], base_id: Any, when: Any,
                     answered: Optional[str]) -> None:
        many = len(decoded) > 1
        for i, record in enumerate(decoded):
            keys = set(record)
            for key in keys - self.known - PROVENANCE_KEYS:
                self.window.unknown_keys[key] += 1
            for key in self.feature_set - keys:
                self.window.missing_keys[key] += 1
            row = {k: record.get(k) for k in self.known if k in record}
            if row.get(INFERENCE_ID) is None:
                row[INFERENCE_ID] = f"{base_id}:{i}" if many and base_id is not None else base_id
            if row.get(INFERENCE_TIME) is None:
                row[INFERENCE_TIME] = when
            score, probabilities = scores[i] if scores is not None else (None, None)
            row[SCORE] = score
            if answered is not None:
                row[ANSWERED] = answered
            if probabilities is not None:
                for name, p in zip(self.classes, probabilities):
                    row[probability_column(name)] = p
            self.json_rows.append(row)

    @staticmethod
    def _check_scores(scores: Optional[List["Output"]], n: int) -> None:
        if scores is not None and len(scores) != n:
            raise _Malformed(f"output_mismatch: {len(scores)} scores for {n} records")

    # ----------------------------------------------------------------------------------
    def columns(self) -> List[str]:
        return [*self.features, *self.extra_columns, INFERENCE_ID, INFERENCE_TIME, SCORE, ANSWERED,
                *self.window.probability_columns]

    def flush(self) -> None:
        """Type the records decoded since the last flush and hand them to the sink as one chunk (none: nothing)."""
        self._complete_pending()
        parts = self.parts
        if self.csv_lines:
            part = pd.read_csv(io.StringIO("\n".join(self.csv_lines)), header=None, names=self.features, dtype=str,
                               keep_default_na=False, na_values=[""], skipinitialspace=True)
            self.csv_lines = []
            meta = list(zip(*self.csv_meta))
            self.csv_meta = []
            part[INFERENCE_ID], part[INFERENCE_TIME], part[SCORE] = list(meta[0]), list(meta[1]), list(meta[2])
            part[ANSWERED] = list(meta[4])
            if self.problem_type == MULTICLASS:
                empty = [None] * len(self.classes)
                matrix = [list(p) if p is not None else empty for p in meta[3]]
                for k, name in enumerate(self.classes):
                    part[probability_column(name)] = [row[k] for row in matrix]
            parts.append(self._typed(part))
        if self.json_rows:
            # Every column as the values JSON gave (object): pandas' inference would make a column of whole numbers
            # and nulls floats, and a category's text "12.0" or "12" by what records shared the chunk.
            parts.append(self._typed(pd.DataFrame(self.json_rows, dtype=object)))
            self.json_rows = []
        self.parts = []
        if parts:
            chunk = concat(parts)
            self.window.observe(chunk)
            self.sink(chunk)

    def empty(self) -> pd.DataFrame:
        """A frame of no records with this decoder's columns."""
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in self.columns()})

    def _as_served(self, name: str, text: pd.Series) -> pd.Series:
        """A text feature's captured values as serving read them (``records.feature_text``: trimmed, blank missing, a
        closed-set column's in normal form), so `` North`` counts as the ``north`` the model scored, not as unseen.
        Raw records were read so already; without the dataset, as captured."""
        if self.contract is None:
            return text
        if text.dtype == capture_columns.TEXT:
            # The distinct values read in Arrow (a twentieth of pandas' isna / dropna / unique: a chunk per small
            # capture file pays it per text feature).
            values = pa.array(text.array)
            distinct = pc.unique(values.drop_null()).to_pylist() if values.null_count < len(values) else []
        else:
            distinct = list(text.dropna().unique())
        if not distinct:
            return text
        dataset = self.contract.dataset
        read = {value: feature_text(dataset, name, value) for value in distinct}
        if all(value == served for value, served in read.items()):
            return text
        return text.map(read).astype(capture_columns.TEXT)

    def _typed(self, part: pd.DataFrame, text_is_str: bool = False) -> pd.DataFrame:
        """``part`` with every column of :meth:`columns`, in order: numbers as float64 (text in a numeric feature
        is missing and counted as a type violation), categories, ids and times as text (``TEXT``: any JSON value
        a request sent as an id is its text). ``text_is_str``: the text columns are ``TEXT`` already."""
        # The typed columns are gathered and made one frame at the end: a frame's column assignment costs about
        # 0.1 ms whatever the column's length, a dozen per chunk, which adds up over a window of many small capture
        # files (a chunk each). The input frame is left as it was.
        columns = self.columns()
        text_columns = self.categorical | set(META_KEYS) | {ANSWERED}
        present = set(part.columns)
        probability_columns = set(self.window.probability_columns)
        out: Dict[str, pd.Series] = {}
        for name in columns:
            if name in present:
                column = part[name]
            elif text_is_str and name in text_columns:
                column = pd.Series(pd.NA, index=part.index, dtype=capture_columns.TEXT, name=name)
            else:  # as a frame's column assigned None: every value None
                column = pd.Series([None] * len(part), index=part.index, dtype=object, name=name)
            if name == SCORE or name in probability_columns:
                column = pd.to_numeric(column, errors="coerce").astype(np.float64)
            elif name in text_columns:
                text = column if text_is_str else _category_text(column)
                column = self._as_served(name, text) if name in self.feature_set else text
            elif column.dtype != np.float64:  # the columnar reader casts clean number columns itself
                column, violations = _as_number(column)
                if violations:
                    self.window.type_violations[name] = self.window.type_violations.get(name, 0) + violations
            elif not text_is_str:
                # Records whose values were all numbers come as a float column: an infinity in it is a violation all
                # the same (as in a column that also held text), whichever records shared the chunk.
                infinite = np.isinf(column.to_numpy())
                if infinite.any():
                    column = column.where(~infinite, np.nan)
                    self.window.type_violations[name] = self.window.type_violations.get(name, 0) + int(infinite.sum())
            out[name] = column
        return pd.DataFrame(out, index=part.index)


def decode_payload(block: Dict[str, Any]) -> Tuple[str, Any]:
    """(``csv`` | ``json``, parsed payload) of an endpointInput / endpointOutput block (BASE64 decoded first); a
    ValueError when it does not decode."""
    data = block.get("data")
    encoding = str(block.get("encoding") or "").upper()
    content_type = str(block.get("observedContentType") or "")
    if not isinstance(data, str):
        raise _Malformed(f"bad_data: data must be a string, got {type(data).__name__}")
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise _Malformed(f"bad_base64: {exc}") from None
    # As serving reads a body: a leading byte-order mark dropped, every JSON Lines spelling it accepts.
    data = data.lstrip("\ufeff")
    kind = media_types.canonical(content_type)
    if kind == media_types.JSONLINES:
        try:
            return "json", [_json(line) for line in record_lines(data) if line.strip()]
        except ValueError as exc:
            raise _Malformed(f"invalid_payload_jsonlines: {exc}") from None
    if kind == media_types.JSON or (not content_type and encoding == "JSON"):
        try:
            return "json", _json(data)
        except ValueError as exc:
            raise _Malformed(f"invalid_payload_json: {exc}") from None
    if kind == media_types.CSV or encoding == "CSV" or not content_type:
        return "csv", data
    raise _Malformed(f"unsupported_content_type: {content_type!r}")


def _csv_lines(text: str) -> List[str]:
    return [line for line in record_lines(text) if line.strip()]


def _csv_width(line: str) -> int:
    # A carriage return left inside a line (record_lines drops only the one before its \n) is read by the csv module
    # (an error outside quotes), never counted as one line: pandas' reader at the flush would end a row at it.
    if '"' not in line and "\r" not in line:
        return line.count(",") + 1
    return len(_csv_row(line))


def _csv_row(line: str) -> List[str]:
    """One captured CSV line's fields; a line the csv module cannot read (a bare carriage return outside quotes, a
    field over its size limit: a caller's bytes) is malformed, never an exception that fails the monitor run."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error as exc:
        raise _Malformed(f"unreadable_csv: {exc}") from None


# One decoded prediction: the frame's score (binary P(target = 1), multiclass class code, regression value)
# and, multiclass only, the class probabilities in class order when the response has them.
Output = Tuple[float, Optional[List[float]]]


def _values(kind: str, payload: Any) -> List[float]:
    """A regression response's predicted values (every one a finite number)."""
    if kind == "csv":
        values: List[Any] = [v for line in record_lines(str(payload)) for v in line.split(",") if v.strip()]
    else:
        if isinstance(payload, dict):
            payload = payload.get("predictions", payload)
        values = payload if isinstance(payload, list) else [payload]
        values = [v.get("value", v.get("score")) if isinstance(v, dict) else v for v in values]
    out = []
    for v in values:
        try:
            value = float(v) if not isinstance(v, bool) else float("nan")
        except (TypeError, ValueError):
            value = float("nan")
        if not np.isfinite(value):
            raise _Malformed(f"bad_value: {str(v)[:50]!r} is not a finite number")
        out.append(value)
    return out


def _scores(kind: str, payload: Any) -> List[float]:
    if kind == "csv":
        values: List[Any] = [v for line in record_lines(str(payload)) for v in line.split(",") if v.strip()]
    else:
        if isinstance(payload, dict):
            payload = payload.get("predictions", payload.get("scores", payload))
        values = payload if isinstance(payload, list) else [payload]
        values = [v.get("score", v.get("probability")) if isinstance(v, dict) else v for v in values]
    out = []
    for v in values:
        try:
            score = float(v)
        except (TypeError, ValueError):
            raise _Malformed(f"bad_score: {str(v)[:50]!r} is not a number") from None
        out.append(score)
    return out


def _as_number(series: pd.Series) -> Tuple[pd.Series, int]:
    """Float column; non-null values that are not finite numbers (text, booleans, integers beyond float range,
    infinities) become NaN and are counted."""
    if series.dtype.kind in "iu":  # numpy integers (a JSON column of whole numbers): every one a finite float
        return series.astype(np.float64), 0
    raw = series.astype(object)
    kind = pd.api.types.infer_dtype(raw, skipna=True)
    if kind not in ("string", "integer", "floating", "mixed-integer-float", "decimal", "empty"):
        is_bool = raw.map(lambda v: isinstance(v, bool)).to_numpy(dtype=bool)  # rare: mixed types
        raw = raw.where(~is_bool, "<bool>")
    try:
        numbers = pd.to_numeric(raw, errors="coerce")
        if kind == "mixed-integer-float" and numbers.dtype.kind in "iu":
            # Whole numbers and whole floats, no null: pandas made them integers, and a -0.0 lost its sign (0.0 beside
            # a 14, -0.0 beside a 14.5 or a null: the value hung on what records shared its chunk). Each as a float.
            numbers = pd.Series(np.asarray(raw.to_numpy(), dtype=np.float64), index=raw.index)
        numbers = numbers.astype(np.float64)
    except OverflowError:  # an integer of hundreds of digits: one value at a time (rare)
        numbers = pd.Series([_finite_or_nan(v) for v in raw], index=raw.index, dtype=np.float64)
    if kind not in ("integer", "floating", "mixed-integer-float", "decimal", "empty", "boolean"):
        # Numbers sent as text (CSV requests, or quoted in JSON): pandas decides which texts are numbers, Python's float
        # gives their values. pandas' own text parser is off by one unit in the last place for some 17-digit numbers,
        # and by what else a chunk holds reads "-0" as 0 (through int64) and a 19-digit integer through int64 or
        # float64: the same text would be two values, and another one than the columnar reader's.
        values = raw.to_numpy()
        texts = np.flatnonzero(numbers.notna().to_numpy() & np.fromiter((type(v) is str for v in values), bool, len(values)))
        if len(texts):
            exact = numbers.to_numpy(dtype=np.float64, copy=True)
            exact[texts] = [_text_number(values[i], exact[i]) for i in texts]
            numbers = pd.Series(exact, index=raw.index)
    numbers = numbers.where(np.isfinite(numbers.to_numpy()), np.nan)
    suspect = np.flatnonzero(raw.notna().to_numpy() & numbers.isna().to_numpy())  # usually empty
    violations = sum(1 for v in raw.iloc[suspect] if str(v).strip() != "")
    return numbers, int(violations)


def _big_int(text: str) -> Any:
    """An integer literal of a request or response: beyond float range (hundreds of digits) it is infinite, which
    the number columns count as a violation, instead of a Python int no numeric column can hold."""
    return int(text) if len(text) < 300 else math.inf


# One decoder for every document: json.loads(text, parse_int=...) builds a decoder per call, two thirds of its cost
# on a request of a few features.
_DECODER = json.JSONDecoder(parse_int=_big_int)


def _json(text: str) -> Any:
    """A JSON document of the capture, integers beyond float range read as infinite (see :func:`_big_int`):
    ``json.loads(text, parse_int=_big_int)``, its leading byte-order-mark error included."""
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


def _text_number(text: str, parsed: float) -> float:
    """The float ``text`` denotes, correctly rounded (Python's float), which pandas read as ``parsed``; ``parsed`` if
    Python reads no number there."""
    try:
        return float(text)
    except ValueError:
        return parsed


def _finite_or_nan(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _category_text(series: pd.Series) -> pd.Series:
    """A category, id or time column as ``TEXT``: every present value as its text (:func:`_as_category_text`).
    Values that are text already (JSON strings: the usual case) are taken as they are, without the round trip
    through objects that costs ten times the conversion."""
    if not (series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")):
        series = _as_category_text(series)
    try:
        return series.astype(capture_columns.TEXT)
    except UnicodeEncodeError:
        # A lone surrogate (a request's "\\ud800": Python's json reads it, UTF-8 and so Arrow's text have no such
        # character) is read as the replacement character U+FFFD, never a failed window; rare, so one value at a time.
        return series.map(lambda v: _SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v).astype(capture_columns.TEXT)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _as_category_text(series: pd.Series) -> pd.Series:
    """Every present value as its text (pandas' ``astype(str)``), missing ones kept, as an object column."""
    # On the array, not by a masked assignment into the Series: that costs about 0.3 ms a column whatever its
    # length, which adds up over a window of many small capture files (a chunk each).
    values = series.astype(object).to_numpy(copy=True)
    present = pd.notna(values)
    if present.any():
        values[present] = pd.Series(values[present], dtype=object).astype(str).to_numpy()
    return pd.Series(values, index=series.index, name=series.name, dtype=object)


def _files(root: str) -> List[str]:
    out = []
    for directory, _dirs, names in os.walk(root):
        for name in names:
            out.append(os.path.join(directory, name))
    return sorted(out)


def data_capture_files(capture_dir: Optional[str]) -> List[str]:
    """The data-capture files (``*.jsonl``) under ``capture_dir``, sorted; none when it does not exist."""
    if not capture_dir or not os.path.isdir(capture_dir):
        return []
    return [path for path in _files(capture_dir) if path.endswith(CAPTURE_SUFFIXES)]


def _read_lines(path: str) -> Iterable[Tuple[int, str]]:
    with open(path, "rb") as handle:
        for i, raw in enumerate(handle, start=1):
            try:
                yield i, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield i, "\x00<non-utf8>"


def read_capture(
    capture_dir: str,
    feature_order: Sequence[str],
    *,
    categorical: Iterable[str] = (),
    extra_columns: Sequence[str] = (),
    max_samples: int = DEFAULT_MAX_SAMPLES,
    dataset: Optional[catalog.Dataset] = None,
    problem_type: str = BINARY,
    classes: Sequence[str] = (),
    columnar: bool = True,
    consume: Optional[Callable[[pd.DataFrame], None]] = None,
) -> CaptureWindow:
    """Decode every capture file under ``capture_dir`` (missing dir = empty window).

    ``feature_order``: the model's inputs (CSV order); ``extra_columns``: further known
    keys kept from JSON requests (sensitive attribute, slices); ``categorical``: columns kept
    as text (the others are parsed as numbers, non-numbers counted as type violations);
    ``problem_type`` / ``classes``: how to read the responses (see the module docstring; ``classes`` in
    label-code order, needed for a multiclass model); ``columnar``: data-capture files go through the
    columnar reader (:mod:`capture_columns`, the default) or one line at a time (the reference it is tested
    against; the same records, counts and malformed lines); ``consume``: called with each chunk of decoded
    records (one columnar block, or about :data:`CHUNK_RECORDS` line-decoded records; every column of the frame,
    typed alike) instead of collecting them into ``frame``, so memory does not grow with the window.
    """
    decoder = _Decoder(feature_order, extra_columns, max_samples, dataset, problem_type, classes, categorical)
    w = decoder.window
    chunks: List[pd.DataFrame] = []
    background = _Background(consume) if consume is not None else None
    decoder.sink = background.put if background is not None else chunks.append
    try:
        _decode(decoder, capture_dir, columnar)
    except BaseException:
        if background is not None:
            background.close(raise_error=False)  # the worker ends; the caller sees the decoding error
        raise
    if background is not None:
        background.close()
    w.frame = concat(chunks) if chunks else decoder.empty()
    return w


def _decode(decoder: _Decoder, capture_dir: str, columnar: bool) -> None:
    """Every capture and batch file under ``capture_dir`` into ``decoder``, its last records flushed."""
    w = decoder.window
    paths = _files(capture_dir) if capture_dir and os.path.isdir(capture_dir) else []
    path_set = set(paths)
    for path in paths:
        rel = os.path.relpath(path, capture_dir)
        if path.endswith(CAPTURE_SUFFIXES):
            w.files["data_capture"] += 1
            if columnar:
                capture_columns.decode_file(decoder, path, rel)
                continue
            for line_no, text in _read_lines(path):
                decoder.decode_capture_line(text, rel, line_no)
        elif not path.endswith(BATCH_OUTPUT_SUFFIX) and os.path.basename(path)[0] not in "._":
            w.files["batch_input"] += 1
            out_path = path + BATCH_OUTPUT_SUFFIX
            _decode_batch(decoder, path, out_path if out_path in path_set else None, rel)
    decoder.flush()


def _filled_lines(path: str) -> Iterator[Tuple[int, str]]:
    return ((i, t) for i, t in _read_lines(path) if t.strip())


def _answers_a_blank_line(text: str) -> bool:
    """Whether a batch output line is serving's error line for a blank input line (``request_body.BLANK_LINE``)."""
    refused = refused_output(text.strip()) if "blank line" in text else None
    return refused is not None and not refused[0] and refused[1].endswith(BLANK_LINE)


def _decode_batch(decoder: _Decoder, path: str, out_path: Optional[str], rel: str) -> None:
    """A batch-transform input file and its output, line ``i`` scoring line ``i``, read side by side (a first pass
    only counts their lines: outputs that do not pair up with the inputs make every input line malformed).

    Blank output lines are no answers (AssembleWith=Line may add them). A blank input line is no record: serving answers
    it with an error line of its own in its place (``request_body.BLANK_LINE``), which is passed over with it; outputs
    written by serving code that skipped blank lines (one line fewer per blank line) pair with the filled lines, and so
    do outputs answering only some of them (a splitter that does not hand on the empty line after a file's last line
    feed): the outputs pair when, their blank lines' error lines aside, they are one per record."""
    w = decoder.window
    inputs = sum(1 for _ in _filled_lines(path))
    outputs = sum(1 for _ in _filled_lines(out_path)) if out_path else None
    blank_answers = (sum(1 for _, t in _filled_lines(out_path) if _answers_a_blank_line(t))
                     if out_path and outputs != inputs else 0)
    paired = outputs is not None and outputs - blank_answers == inputs
    answers = ((t for _, t in _filled_lines(out_path)) if out_path and paired else iter(()))
    mismatch = ""
    if outputs is not None and not paired:
        every_line = sum(1 for _ in _read_lines(path))
        shown = inputs if every_line == inputs else f"{inputs} (and {every_line - inputs} blank)"
        mismatch = f"output_mismatch: {outputs} output lines for {shown} input lines"
    pending: Optional[str] = None  # an answer read ahead at a blank input line, not its error line: the next record's
    for line_no, text in (_read_lines(path) if blank_answers else _filled_lines(path)):
        if not text.strip():  # a blank line: its error line, when the output holds one, is passed over with it
            pending = next(answers, None) if pending is None else pending
            if pending is not None and _answers_a_blank_line(pending):
                pending = None
            continue
        w.lines += 1
        if mismatch:
            decoder.malformed(rel, line_no, mismatch, text)
            continue
        score = None
        if paired:
            score, pending = (pending if pending is not None else next(answers)), None
        try:
            decoder.add_batch_line(text, score, rel, line_no)
        except _Malformed as exc:
            decoder.undecoded(rel, line_no, exc, text)
        decoder.flush_when_full()


class _Background:
    """Hands chunks to ``consume`` on one worker thread, in order, while the caller decodes the next block: most of
    decoding runs in pyarrow's C++ without the GIL, so the two overlap on a second core. At most two chunks wait
    (memory stays bounded); an exception in ``consume`` is raised in the caller (at the next chunk or at
    :meth:`close`)."""

    def __init__(self, consume: Callable[[pd.DataFrame], None]) -> None:
        import queue
        import threading

        self.consume = consume
        self.queue: "queue.Queue[Optional[pd.DataFrame]]" = queue.Queue(maxsize=2)
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name="capture-consumer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            chunk = self.queue.get()
            if chunk is None:
                return
            if self.error is None:
                try:
                    self.consume(chunk)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    self.error = exc

    def put(self, chunk: pd.DataFrame) -> None:
        self._raise()
        self.queue.put(chunk)

    def close(self, raise_error: bool = True) -> None:
        """Wait for the chunks handed over to be consumed and end the worker; then raise what ``consume`` raised."""
        self.queue.put(None)
        self.thread.join()
        if raise_error:
            self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

"""A request body -> records, before any model check: JSON (a record, a list of records or ``{"instances": [...]}``),
JSON Lines (one record per line) or CSV (one record per line, its values in feature order), as
:func:`parse_request` decodes them; :func:`pipeline_code.serving.records.feature_rows` then checks each record
against the model's features.

A blank line is answered in its place in a batch transform's mini-batch (:data:`BLANK_RECORD`, :data:`BLANK_LINE`)
and refused in an endpoint's request when a record follows it (:data:`BLANK_LINE_BEFORE_A_RECORD`); a line that is
no record is, in a batch transform, refused on its own (:class:`Unreadable`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from pipeline_code.core.lines import record_lines
from pipeline_code.core.media_types import CONTENT_TYPES, JSON, JSONLINES, canonical
from pipeline_code.core.value_rules import RepeatedKey, json_object, repeated_key_problem
from pipeline_code.serving.errors import BadRequestError, UnsupportedContentTypeError, not_utf8

ACCEPT_TYPES = CONTENT_TYPES


Record = Union[Dict[str, Any], List[Any]]


@dataclass
class ParsedRequest:
    """What :func:`input_fn` hands to :func:`predict_fn`: the records, before any model check."""

    content_type: str
    records: List[Record]
    # Human position of each record for messages: "line 3" (jsonlines/CSV) or "" (JSON).
    positions: List[str] = field(default_factory=list)
    # The request as received (text), kept for self-capture (serverless endpoints).
    raw: Optional[str] = None


def parse_request(body: Union[bytes, bytearray, str, None], content_type: Optional[str], *,
                  per_record: bool = False) -> ParsedRequest:
    """Decode a request body into records (see the module docstring for the formats).

    ``per_record`` (batch transform; default False): a JSON Lines line that is not a record (not JSON, an ``instances``
    envelope), or a CSV line the csv module cannot read, becomes an :class:`Unreadable` record, which :func:`feature_rows` refuses on its own, instead of a
    :class:`BadRequestError` for the whole body; a blank line becomes :data:`BLANK_RECORD`.

    Raises:
        UnsupportedContentTypeError: ``content_type`` is not JSON, JSON Lines or CSV.
        BadRequestError: empty body, not UTF-8, or not parseable as ``content_type``; without ``per_record``, a
            JSON Lines / CSV blank line with a record after it (:data:`BLANK_LINE_BEFORE_A_RECORD`).
    """
    kind = canonical(content_type)
    if kind is None:
        raise UnsupportedContentTypeError(
            f"unsupported Content-Type {content_type!r}: send one of {', '.join(CONTENT_TYPES)}"
        )
    if isinstance(body, (bytes, bytearray)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise not_utf8(exc) from None
    elif isinstance(body, str):
        text = body
    elif body is None:
        text = ""
    else:
        raise BadRequestError(f"request body must be bytes or text, got {type(body).__name__}")
    text = text.lstrip("\ufeff")
    if not text.strip() and not (per_record and text and kind != JSON):
        raise BadRequestError(f"request body is empty: send at least one record as {kind}")
    if kind == JSON:
        return ParsedRequest(kind, *_json_records(text))
    if kind == JSONLINES:
        return ParsedRequest(kind, *_jsonlines_records(text, per_record=per_record))
    return ParsedRequest(kind, *_csv_records(text, per_record=per_record))


def _refuse_repeated(value: Any, where: str) -> None:
    """A 400 for a record (or envelope) holding a field twice (:func:`pipeline_code.core.value_rules.repeated_key_problem`).
    Only a record's own keys (and the envelope's) are refused for it: a key repeated inside a field the model does not
    read (a caller's metadata object) puts no value it scores in doubt."""
    problem = repeated_key_problem(value)
    if problem:
        raise BadRequestError(f"{where}: {problem}")


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=json_object)
    except ValueError as exc:
        raise BadRequestError(f"{where}: not valid JSON: {exc}") from None
    except RecursionError:
        # The C decoder recurses per nesting level; a record is a flat object, so this is never one.
        raise BadRequestError(f"{where}: JSON nested too deeply (a record is a flat object of fields)") from None


def _json_records(text: str) -> Tuple[List[Record], List[str]]:
    payload = _loads(text, "request body")
    if isinstance(payload, dict) and "instances" in payload:
        _refuse_repeated(payload, "request body")
        payload = payload["instances"]
        if not isinstance(payload, list):
            raise BadRequestError(f"field 'instances' must be a list of records, got {type(payload).__name__}")
    elif isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not payload:
        raise BadRequestError('request body must hold a record, a list of records or {"instances": [...]} with at least one record')
    for i, record in enumerate(payload):
        _refuse_repeated(record, record_place(i, ""))
    return payload, ["" for _ in payload]


# A blank line of a batch transform's mini-batch (per_record): an error line of its own, in its place. SageMaker's
# SplitType=Line hands blank lines on; skipped, each later answer would land on the row above its own (docs/
# invocation-contract.md, Batch transform).
BLANK_LINE = ("a blank line is not a record; remove blank lines from the input (each output line answers the input line "
              "in its place)")
# A blank line before a record in an endpoint's request: a 400 (answers come one per record; passed over, each later
# answer would pair with the line above its own for a caller pairing them with its lines). Blank lines ending the body
# have no record after them to shift: they are passed over (docs/invocation-contract.md, Requests).
BLANK_LINE_BEFORE_A_RECORD = (
    "a blank line is not a record; remove blank lines between records (answers come one per record, in order: a blank "
    "line passed over would put each later answer on the line above its own); line feeds ending the body are fine")


def _lines(text: str) -> List[str]:
    """The lines of ``text`` (:func:`record_lines`), without the empty piece after a final line feed (it ends the last
    line; it is no line of its own)."""
    lines = record_lines(text)
    return lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines


@dataclass(frozen=True)
class Unreadable:
    """A JSON Lines line that is no record (:func:`parse_request` with ``per_record``), refused on its own; ``fields``
    the fields at fault when one is known (a field held twice), none when the line as a whole is."""

    message: str
    fields: Tuple[str, ...] = ()


class _BlankLine:
    """The record of every blank line of a batch transform's mini-batch (:data:`BLANK_RECORD`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BLANK_RECORD"


# A blank line of a batch transform's mini-batch (:func:`parse_request` with ``per_record``): one object shared by every
# blank line, its place kept by its position ("line n"). It is answered by its error line (:data:`BLANK_LINE`, fields
# []) rendered from one template per output type with only its place filled in (inference.Prediction): a mini-batch of
# a million blank lines costs its output lines and nothing per line beyond them (a record object, a refusal, a dict and
# a JSON encoding each cost it +1.45 GB and ~15 s).
BLANK_RECORD = _BlankLine()


def blank_line_message(index: int, position: str) -> str:
    """The error message of the blank line that is record ``index`` at ``position``."""
    return f"{record_place(index, position)}: {BLANK_LINE}"


def _jsonlines_records(text: str, *, per_record: bool = False) -> Tuple[List[Record], List[str]]:
    records: List[Any] = []
    positions: List[str] = []
    blank: Optional[str] = None  # an endpoint's request: the first blank line, refused once a record follows it
    for line_no, line in enumerate(_lines(text), start=1):
        if not line.strip():
            if per_record:  # batch transform: answered in its place, so each later output line stays on its input line
                records.append(BLANK_RECORD)
                positions.append(f"line {line_no}")
            elif blank is None:
                blank = f"record {len(records)} (line {line_no}): {BLANK_LINE_BEFORE_A_RECORD}"
            continue
        if blank is not None:
            raise BadRequestError(blank)
        value = None
        try:
            value = _loads(line, f"record {len(records)} (line {line_no})")
            _refuse_repeated(value, f"record {len(records)} (line {line_no})")
            if isinstance(value, dict) and "instances" in value:
                raise BadRequestError(f"record {len(records)} (line {line_no}): an 'instances' envelope is not allowed "
                                      "in JSON Lines - one record per line")
        except BadRequestError as exc:
            if not per_record:
                raise
            value = Unreadable(str(exc), (value.repeated,) if isinstance(value, RepeatedKey) else ())
        records.append(value)
        positions.append(f"line {line_no}")
    return records, positions


def _csv_records(text: str, *, per_record: bool = False) -> Tuple[List[Record], List[str]]:
    records: List[Record] = []
    positions: List[str] = []
    lines = _lines(text)
    # Each line with its line feed: a quoted field that holds a line break keeps it (given the bare lines, the csv
    # module joins them without it: "1<LF>2" would be read, and scored, as 12).
    reader = csv.reader((f"{line}\n" for line in lines), skipinitialspace=True)
    blank: Optional[str] = None  # an endpoint's request: the first blank line, refused once a record follows it
    for line_no in range(1, len(lines) + 1):
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # never a 500: the caller's bytes, which the 400 says how to fix
            where = f"record {len(records)} (line {reader.line_num})"  # as every 400 naming a record starts
            problem = BadRequestError(blank or f"{where}: not readable as CSV: {_csv_problem(exc)}")
            if not per_record:
                raise problem from None
            # Batch transform: that line alone is refused (the reader goes on at the next line), as a JSON Lines line
            # that is not JSON is.
            records.append(Unreadable(str(problem)))
            positions.append(f"line {reader.line_num}")
            continue
        if not row or all(not v.strip() for v in row) and len(row) <= 1:
            if per_record:  # batch transform: answered in its place, as a JSON Lines blank line is
                records.append(BLANK_RECORD)
                positions.append(f"line {reader.line_num}")
            elif blank is None:
                blank = f"record {len(records)} (line {reader.line_num}): {BLANK_LINE_BEFORE_A_RECORD}"
            continue
        if blank is not None:
            raise BadRequestError(blank)
        # CSV carries no types: empty is missing, the rest stays text and is typed per feature.
        records.append([None if v.strip() == "" else v for v in row])
        positions.append(f"line {line_no}")
    if not records:
        raise BadRequestError("request body holds no CSV record")
    return records, positions


def _csv_problem(error: csv.Error) -> str:
    """The csv module's complaint in the caller's words (its own speaks of files and modes)."""
    text = str(error)
    if text.startswith("new-line character seen in unquoted field"):
        return ("a carriage return (\\r) outside quotes that does not end the line; end each line with \\n or \\r\\n, "
                "and quote a field that holds a line break")
    if text.startswith("field larger than field limit"):
        return f"a field longer than {csv.field_size_limit()} characters"
    return text


def record_place(index: int, position: str) -> str:
    """How a refusal names record ``index`` (and where the body holds it, e.g. ``line 4``): ``record 3 (line 4)``, the
    start of every per-record refusal (core.contract.REFUSED_FIELD reads it)."""
    return f"record {index}" + (f" ({position})" if position else "")

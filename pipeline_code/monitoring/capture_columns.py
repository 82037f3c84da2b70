"""Columnar decoding of SageMaker data-capture files: the common records at C speed, every other line as before.

Decoding capture one line at a time in Python costs about 20 s per million records, most of the monitor's
run. Nearly all records of a real-time endpoint look alike - a CSV request of one record and a CSV
response of one number - so this reader takes a file in blocks of whole lines and:

1. parses the block's JSON with pyarrow (``pyarrow.json``, C++) into the few fields the decoder reads;
2. picks, with vectorised string kernels, the records the fast path decodes exactly like
   :meth:`capture._Decoder.add_capture_line` would: input ``text/csv`` with encoding ``CSV``, one line of
   exactly the model's width with no quote, leading space or line break; output absent or one plain number
   (binary and regression models);
3. parses those requests as one CSV text (``pyarrow.csv``), casts the numeric columns, and hands the block
   to the decoder as one typed frame;
4. does the same for ``application/json`` requests of one object (:func:`_json_rows`): read as one JSON text by
   pyarrow with the model's features, extra columns, id and time as strict explicit schema, then checked
   (:func:`_json_requests`: a key missing, null, unknown or twice, a value of another type, a number the two
   readers could read apart, escapes, a byte-order mark or a line break go line by line);
5. hands every other line of the block - another content type, several records, Base64, quotes, a
   bad score, a multiclass response - to the line decoder, which counts and samples the malformed ones.

A block pyarrow cannot parse (one malformed line, invalid UTF-8, a field of another JSON type) is decoded
line by line, so a bad line still costs only itself; so is a block the fast path fails on for any other
reason (say, a pyarrow in the job's image without one of these kernels), counted per reason in the
window's summary (``columnar_fallbacks``) - slower, never a failed window. Memory is bounded by the block, not the file.
Equivalence with the line decoder on the same files is a test (``tests/monitoring/test_capture_columns.py``).
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from pipeline_code.core.contract import ANSWERED_BY, ANSWERED_BY_DIGEST, ANSWERED_BY_VERSION
from pipeline_code.core.problem import MULTICLASS

if TYPE_CHECKING:  # the decoder imports this module
    from pipeline_code.monitoring.capture import _Decoder

BLOCK_BYTES = 16 * 1024 * 1024
# Category columns of the decoded frame: pandas strings kept in Arrow memory (missing = pd.NA), a fraction of
# object columns' memory and time (missing checks read a bitmap, counts run in C).
TEXT = pd.StringDtype("pyarrow")
_BLOCK = pa.struct([("data", pa.string()), ("encoding", pa.string()), ("observedContentType", pa.string())])
# Which model answered (self-capture writes it; SageMaker's own capture has none: null).
_ANSWERED = pa.struct([(ANSWERED_BY_DIGEST, pa.string()), (ANSWERED_BY_VERSION, pa.string())])
SCHEMA = pa.schema([
    ("captureData", pa.struct([("endpointInput", _BLOCK), ("endpointOutput", _BLOCK)])),
    ("eventMetadata", pa.struct([("eventId", pa.string()), ("inferenceId", pa.string()), ("inferenceTime", pa.string()),
                                 (ANSWERED_BY, _ANSWERED)])),
])
_PARSE = pa_json.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
# A field without quoting, a line break (several records) or a leading space; those are left to the line decoder's
# CSV handling.
_PLAIN_FIELD = r'(?:[^ ",\r\n][^",\r\n]*)?'
# One plain decimal number: what float() and the cast below read alike (anything else goes line by line).
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_JSON_TYPE = "application/json"


def blocks(path: str, block_bytes: int = BLOCK_BYTES) -> Iterator[memoryview]:
    """Whole lines of ``path``, about ``block_bytes`` at a time (views of one buffer, copied once from the file)."""
    rest = b""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(block_bytes)
            if not chunk:
                break
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            view = memoryview(data)
            yield view[:cut]
            rest = bytes(view[cut:])
    if rest:
        yield memoryview(rest)


def decode_file(decoder: "_Decoder", path: str, rel: str, block_bytes: Optional[int] = None) -> None:
    """Decode every line of one capture file into ``decoder`` (lines, records, malformed counts), a block
    of :data:`BLOCK_BYTES` at a time, each block's records handed on as one chunk."""
    line_no = 1
    for block in blocks(path, block_bytes or BLOCK_BYTES):
        line_no += decode_block(decoder, block, rel, line_no)
        decoder.flush()
    # Arrow keeps freed blocks for reuse; the statistics that follow allocate with numpy, not Arrow.
    pa.default_memory_pool().release_unused()


class _Lines:
    """The lines of a block, located only when some must be decoded one at a time."""

    def __init__(self, block: memoryview) -> None:
        self.block = block
        self.count = block.obj.count(b"\n", 0, len(block)) + (0 if block[-1:] == b"\n" else 1)
        self._spans: Optional[Tuple[np.ndarray, np.ndarray]] = None

    @property
    def spans(self) -> Tuple[np.ndarray, np.ndarray]:
        """Start and end offsets of every line (the end excludes the line feed)."""
        if self._spans is None:
            ends = np.flatnonzero(np.frombuffer(self.block, dtype=np.uint8) == 10)
            if self.block[-1:] != b"\n":
                ends = np.append(ends, len(self.block))
            starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64) if len(ends) else np.zeros(0, dtype=np.int64)
            self._spans = (starts, ends)
        return self._spans

    def filled(self, rows: int) -> np.ndarray:
        """Indexes of the lines pyarrow read as ``rows`` rows: all but the empty ones (it skips those)."""
        if rows == self.count:
            return np.arange(self.count)
        starts, ends = self.spans
        lengths = ends - starts
        carriage_return = np.zeros(len(starts), dtype=bool)
        nonempty = lengths > 0
        carriage_return[nonempty] = np.frombuffer(self.block, dtype=np.uint8)[ends[nonempty] - 1] == 13
        return np.flatnonzero(lengths - carriage_return > 0)

    def decode(self, decoder: "_Decoder", rows: np.ndarray, rel: str, first_line: int) -> None:
        """Hand lines ``rows`` to the line decoder, each with its line feed, as the line reader yields it."""
        starts, ends = self.spans
        for i in rows:
            raw = bytes(self.block[starts[i]:ends[i] + 1])
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = "\x00<non-utf8>"
            decoder.decode_capture_line(text, rel, first_line + int(i))


def decode_block(decoder: "_Decoder", block: memoryview, rel: str, first_line: int) -> int:
    """Decode one block of whole lines (see the module docstring); returns its number of lines."""
    lines = _Lines(block)
    table = _parse(block) if decoder.problem_type != MULTICLASS else None
    filled = lines.filled(table.num_rows) if table is not None else None
    # A line of spaces: pyarrow skips it, the filled lines count it - the counts differ, the block goes line by line.
    if table is None or filled is None or table.num_rows != len(filled):
        lines.decode(decoder, np.arange(lines.count), rel, first_line)
        return lines.count
    violations: Dict[str, int] = {}
    try:
        fast = _fast_rows(table, decoder.width)
        part = _frame(table.filter(pa.array(fast)) if not fast.all() else table, decoder, violations) if fast.any() else None
        json_part = None
        candidates = _json_rows(table) & ~fast
        if candidates.any() and _json_schema(decoder) is not None:
            picked = np.flatnonzero(candidates)
            requests = pc.struct_field(pc.struct_field(table.column("captureData"), "endpointInput"), "data")
            records, sure = _json_requests(requests.filter(pa.array(candidates)), decoder)
            if sure.any():
                read = np.zeros(len(fast), dtype=bool)
                read[picked[sure]] = True
                json_part = _frame(table.filter(pa.array(read)), decoder, violations, records)
                fast = fast | read
    except Exception as exc:  # noqa: BLE001 - e.g. a kernel an older pyarrow lacks: this block goes line by line
        reason = f"{type(exc).__name__}: {str(exc)[:160]}"
        decoder.window.columnar_fallbacks[reason] = decoder.window.columnar_fallbacks.get(reason, 0) + 1
        lines.decode(decoder, np.arange(lines.count), rel, first_line)
        return lines.count
    slow = np.flatnonzero(~fast)
    if len(slow):
        lines.decode(decoder, filled[slow], rel, first_line)
    if part is not None or json_part is not None:
        decoder.window.lines += len(fast) - len(slow)
        for name, count in violations.items():
            decoder.window.type_violations[name] = decoder.window.type_violations.get(name, 0) + count
        for frame in (part, json_part):
            if frame is not None:
                decoder.add_frame(frame)
    return lines.count


def _parse(block: memoryview) -> Optional[pa.Table]:
    try:
        return pa_json.read_json(pa.BufferReader(pa.py_buffer(block)), parse_options=_PARSE)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return None


def _fast_rows(table: pa.Table, width: int) -> np.ndarray:
    """Which rows the fast path decodes exactly as the line decoder would (see the module docstring)."""
    capture = table.column("captureData")
    inp = pc.struct_field(capture, "endpointInput")
    out = pc.struct_field(capture, "endpointOutput")
    data = pc.struct_field(inp, "data")
    ok = pc.and_kleene(pc.equal(pc.struct_field(inp, "encoding"), "CSV"),
                       pc.starts_with(pc.struct_field(inp, "observedContentType"), "text/csv"))
    # Exactly the model's width of plain fields, in one pass of the regex engine (a count of the commas and a
    # search for what is not plain took two).
    ok = pc.and_kleene(ok, pc.match_substring_regex(data, f"^{_PLAIN_FIELD}(?:,{_PLAIN_FIELD}){{{width - 1}}}$"))
    if width == 1:  # one field: it must not be blank (no comma tells a record from a blank line)
        ok = pc.and_kleene(ok, pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(data)), 0))
    else:
        ok = pc.and_kleene(ok, pc.greater(pc.binary_length(data), 0))
    ok = pc.and_kleene(ok, _plain_score(out))
    return ok.to_numpy(zero_copy_only=False) == True  # noqa: E712 - nulls (missing fields) are False


def _plain_score(out: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whether each response is absent or one plain finite number as ``text/csv`` (null: a field missing)."""
    score = pc.struct_field(out, "data")
    no_score = pc.or_kleene(pc.is_null(score), pc.equal(score, ""))
    plain_score = pc.and_kleene(
        pc.and_kleene(pc.equal(pc.struct_field(out, "encoding"), "CSV"),
                      pc.starts_with(pc.struct_field(out, "observedContentType"), "text/csv")),
        pc.match_substring_regex(score, _NUMBER))
    # A number beyond float range (1e999): a regression response the line decoder refuses; binary ones it reads.
    finite = pc.is_finite(pc.cast(pc.if_else(plain_score, score, pa.scalar(None, pa.string())), pa.float64()))
    return pc.or_kleene(no_score, pc.and_kleene(plain_score, finite))


def _json_rows(table: pa.Table) -> np.ndarray:
    """The rows whose request the JSON fast path may read (:func:`_json_requests` decides which it does): input
    ``application/json`` (any parameters) with encoding ``JSON``, the request text one object on one
    line without escapes or a byte-order mark, and a response the CSV fast path reads too (absent or one number)."""
    capture = table.column("captureData")
    inp = pc.struct_field(capture, "endpointInput")
    data = pc.struct_field(inp, "data")
    kind = pc.struct_field(inp, "observedContentType")
    ok = pc.and_kleene(pc.equal(pc.struct_field(inp, "encoding"), "JSON"),
                       pc.or_kleene(pc.equal(kind, _JSON_TYPE), pc.starts_with(kind, _JSON_TYPE + ";")))
    ok = pc.and_kleene(ok, pc.and_kleene(pc.starts_with(data, "{"), pc.ends_with(data, "}")))
    # A line break would make pyarrow's reader (one object per line) read one request as several rows or none; an
    # escape (\u, \") is decoded by the line decoder's json module (lone surrogates too), a byte-order mark dropped.
    ok = pc.and_kleene(ok, pc.invert(pc.match_substring_regex(data, "[\\n\\r\\\\\ufeff]")))
    ok = pc.and_kleene(ok, _plain_score(pc.struct_field(capture, "endpointOutput")))
    return ok.to_numpy(zero_copy_only=False) == True  # noqa: E712 - nulls (missing fields) are False


def _frame(table: pa.Table, decoder: "_Decoder", violations: Dict[str, int],
           records: Optional[pa.Table] = None) -> pd.DataFrame:
    """The fast rows as the decoder's typed frame columns (features, id, time, score, answering model); ``violations``
    gets the type violations per feature (added to the window only once the whole block decoded). The requests are
    CSV lines, read here, unless ``records`` holds them (:func:`_json_requests`: one row per row of ``table``)."""
    from pipeline_code.monitoring.capture import ANSWERED, INFERENCE_ID, INFERENCE_TIME, SCORE

    capture = table.column("captureData")
    if records is None:
        requests = pc.struct_field(pc.struct_field(capture, "endpointInput"), "data")
        text = pc.binary_join_element_wise(requests, pa.scalar(""), "\n").combine_chunks()
        parsed = _requests(_concatenated(text), decoder)
        names = decoder.features
    else:
        parsed, names = records, [*decoder.features, *decoder.extra_columns]
    # The frame is made once, from every column (assigning a column to a frame costs ~0.1 ms, whatever its length:
    # a block per small capture file pays it per column).
    columns = {name: _feature(parsed.column(i), name in decoder.categorical, name, violations)
               for i, name in enumerate(names)}
    meta = table.column("eventMetadata")
    inference_id = pc.struct_field(meta, "inferenceId")
    # ``inferenceId or eventId``: an empty inference id falls back too
    inference_id = pc.if_else(pc.or_kleene(pc.is_null(inference_id), pc.equal(inference_id, "")),
                              pc.struct_field(meta, "eventId"), inference_id)
    inference_time = pc.struct_field(meta, "inferenceTime")
    if records is not None:  # a record's own id and time (not null) win over the event's
        inference_id = pc.coalesce(records.column(INFERENCE_ID), inference_id)
        inference_time = pc.coalesce(records.column(INFERENCE_TIME), inference_time)
    score = pc.struct_field(pc.struct_field(capture, "endpointOutput"), "data")
    score = pc.cast(pc.if_else(pc.equal(score, ""), pa.scalar(None, pa.string()), score), pa.float64())
    columns[INFERENCE_ID] = _text(inference_id)
    columns[INFERENCE_TIME] = _text(inference_time)
    columns[SCORE] = score.to_numpy(zero_copy_only=False)
    answered = pc.struct_field(meta, ANSWERED_BY)
    digests = pc.struct_field(answered, ANSWERED_BY_DIGEST)
    columns[ANSWERED] = _text(digests)
    frame = pd.DataFrame(columns)
    if digests.null_count < len(digests):
        pairs = pa.table({"d": digests, "v": pc.struct_field(answered, ANSWERED_BY_VERSION)}).group_by(["d", "v"]).aggregate([])
        for digest, version in zip(pairs.column("d").to_pylist(), pairs.column("v").to_pylist()):
            if digest is not None:
                decoder.window.note_version(digest, version)
    return frame


def _json_schema(decoder: "_Decoder") -> Optional[pa.Schema]:
    """The keys a JSON request's record may hold for the fast path, typed strictly: the model's features and the extra
    columns (text for categories, else numbers), and the record's own id and time (text); None when names clash (with
    each other or with the request envelope's key)."""
    from pipeline_code.monitoring.capture import META_KEYS

    names = [*decoder.features, *decoder.extra_columns, *META_KEYS]
    # "instances" is the key of the request envelope ({"instances": [...]}), which the line decoder (as serving) reads
    # before any feature of that name.
    if len(set(names)) != len(names) or "instances" in names:
        return None
    return pa.schema([(name, pa.string() if name in decoder.categorical or name in META_KEYS else pa.float64())
                      for name in names])


# Whole numbers from 2**53 on: Python's json reads an integer literal as an int, which the line decoder's numeric
# columns convert by rules of their own (int64, or beyond it one value at a time); pyarrow reads it as a double.
_EXACT = float(2 ** 53)
# The fewest requests a failed parse is split for (fewer are decoded line by line: a parse call costs ~0.2 ms CPU, the
# line decoder ~20 us a line), and the splits any block may take beyond one per 128 requests.
_SPLIT_MIN = 8
_SPLITS = 8


def _json_requests(requests: pa.ChunkedArray, decoder: "_Decoder") -> Tuple[pa.Table, np.ndarray]:
    """(records, sure) of JSON request texts (those of :func:`_json_rows`): ``sure`` says which the fast path decodes
    exactly as the line decoder would, ``records`` holds their records (features, extra columns, id, time).

    pyarrow's JSON reader reads the requests as one text, one line each, with :func:`_json_schema` as explicit
    schema: it refuses a key of no column (an unknown key), a key given twice (Python's json keeps the last value), a
    value of another JSON type (a number as text, text as a number, a boolean, a list, an object) and anything that
    is not JSON. A text it refuses is split in halves, so a bad request costs a few parses, not the block. A request
    read as other than one row (``{..}{..}``) is not sure either, nor a record the line decoder reads differently
    from its values: a feature missing or null (missing keys are counted; this reader cannot tell null from
    absent), an extra column missing or null that its raw columns among the record's keys would compute
    (:func:`_computable_extras`), a number that is not finite (``NaN``, ``Infinity``), a whole number beyond :data:`_EXACT`, or
    ``-0`` (an int there, 0.0; a double here, -0.0)."""
    schema = _json_schema(decoder)
    if schema is None or not len(requests):
        return pa.table({}), np.zeros(len(requests), dtype=bool)
    text = pc.binary_join_element_wise(requests, pa.scalar(""), "\n").combine_chunks()
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    parsed: List[Tuple[int, pa.Table]] = []
    # Halves in breadth-first order, at most _SPLITS + 1 per 128 requests: refused requests spread over the whole block
    # stop the splitting (the rest goes line by line) before the parses cost more than the line decoder would.
    pending = collections.deque([(0, len(text))])
    splits = _SPLITS + len(text) // 128
    while pending:
        lo, hi = pending.popleft()
        try:
            part = pa_json.read_json(pa.BufferReader(_concatenated(text.slice(lo, hi - lo))), parse_options=options)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            part = None
        if part is not None and part.num_rows == hi - lo:
            parsed.append((lo, part))
        elif hi - lo >= _SPLIT_MIN and splits > 0:
            splits -= 1
            middle = (lo + hi) // 2
            pending.extend([(lo, middle), (middle, hi)])
    sure = np.zeros(len(text), dtype=bool)
    if not parsed:
        return pa.table({}), sure
    parsed.sort(key=lambda item: item[0])
    for lo, part in parsed:
        sure[lo:lo + part.num_rows] = True
    records = pa.concat_tables([part for _, part in parsed])
    good = np.ones(records.num_rows, dtype=bool)
    required = [*decoder.features, *_computable_extras(decoder, schema.names)]
    for field in schema:
        column = records.column(field.name)
        if field.name in required:
            good &= column.is_valid().to_numpy(zero_copy_only=False)
        if field.type == pa.float64():
            values = column.to_numpy(zero_copy_only=False)  # nulls NaN: not odd, only missing
            with np.errstate(invalid="ignore"):
                odd = ~(np.abs(values) < _EXACT) | ((values == 0) & np.signbit(values))
            good &= ~(odd & column.is_valid().to_numpy(zero_copy_only=False))
    sure[np.flatnonzero(sure)[~good]] = False
    return records.filter(pa.array(good)) if not good.all() else records, sure


def _computable_extras(decoder: "_Decoder", keys: List[str]) -> List[str]:
    """The extra columns the line decoder computes from a record's raw columns when the record lacks them (with the
    dataset known: ``records.complete_records``), a record's keys being some of ``keys``: those a fast record must give
    (null or absent, the others are missing alike)."""
    if decoder.contract is None:
        return []
    from pipeline_code.serving.records import computable_extras

    return computable_extras(decoder.contract, keys)


def _concatenated(text: pa.Array) -> pa.Buffer:
    """The values of a string array without nulls, back to back (each already ends in ``\\n``); no copy."""
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:text.offset + len(text) + 1]
    return text.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _requests(csv: pa.Buffer, decoder: "_Decoder") -> pa.Table:
    """The CSV requests as columns: numeric features parsed as numbers when every value of the block is one
    (one pass, in C), else every column as text for :func:`_feature` to sort out."""
    names = [f"c{i}" for i in range(decoder.width)]
    numeric = {f"c{i}": pa.float64() for i, name in enumerate(decoder.features) if name not in decoder.categorical}
    for types in ({**{n: pa.string() for n in names}, **numeric}, {n: pa.string() for n in names}):
        try:
            return pa_csv.read_csv(
                pa.BufferReader(csv), read_options=pa_csv.ReadOptions(column_names=names),
                convert_options=pa_csv.ConvertOptions(column_types=types, strings_can_be_null=True, null_values=[""],
                                                      quoted_strings_can_be_null=False),
                parse_options=pa_csv.ParseOptions(quote_char=False, newlines_in_values=False))
        except pa.ArrowInvalid:
            continue
    raise AssertionError("unreachable: every column parses as text")


def _feature(column: pa.ChunkedArray, categorical: bool, name: str, violations: Dict[str, int]) -> pd.Series:
    """A feature column: numbers as float64, a value that is not a finite number (``inf``, ``nan``, 1e999)
    missing and counted as a type violation - what the decoder does to the line decoder's records; text that
    is not a number at all (and categories) as text, which the decoder types itself."""
    if not categorical:
        try:
            numbers = column if column.type == pa.float64() else pc.cast(column, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _text(column)
        values = numbers.to_numpy(zero_copy_only=False)
        bad = np.isinf(values) | (np.isnan(values) & ~pc.is_null(numbers).to_numpy(zero_copy_only=False))
        if bad.any():
            values = np.where(bad, np.nan, values)
            violations[name] = violations.get(name, 0) + int(bad.sum())
        return pd.Series(values, dtype=np.float64)
    return _text(column)


def _text(column: pa.ChunkedArray) -> pd.Series:
    return pd.Series(column.to_pandas(types_mapper={pa.string(): TEXT}.get), dtype=TEXT)

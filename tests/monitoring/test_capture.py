"""The capture decoder under hostile input: every line is a record or counted and skipped, never a crash.

A seeded fuzz (no extra dependency) of real SageMaker data-capture lines of each problem type's responses:
truncation, junk bytes, swapped types, nesting, huge numbers, separators inside values, base64 claims,
missing and extra keys. The invariant is the issue's: nothing may crash, nothing may be lost — every
non-empty line read is either decoded into exactly one record (one record per request here) or counted
as malformed with a reason.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION
from pipeline_code.monitoring import capture
from tests.support.capture import fuzz_spec, mutate_capture_line, valid_capture_lines

LINES = 400


@pytest.mark.parametrize("problem_type", [BINARY, MULTICLASS, REGRESSION])
def test_fuzzed_capture_lines_are_decoded_or_counted_never_a_crash(problem_type, tmp_path):
    spec = fuzz_spec(problem_type)
    rand = random.Random(f"capture-fuzz-{problem_type}")
    valid = valid_capture_lines(spec, LINES, np.random.default_rng(3))
    mutated = [(mutate_capture_line(line, rand) if i % 2 else line) for i, line in enumerate(valid)]
    path = Path(tmp_path, spec.name, "AllTraffic", "capture.jsonl")
    path.parent.mkdir(parents=True)
    # A line separator inside a value is a character of that value, not a line break of the file.
    path.write_text("\n".join(mutated) + "\n", encoding="utf-8")
    categorical = [f for f in spec.frame_features if spec.is_categorical(f)]
    extra = [f for f in spec.frame_features if f not in spec.features]
    # WHEN the window is read (never raises)
    window = capture.read_capture(str(tmp_path), spec.features, categorical=categorical, extra_columns=extra,
                                  dataset=spec.catalog_dataset, problem_type=spec.problem_type, classes=spec.classes)
    # THEN every line read is a record or counted as malformed with a reason, and every valid line is a record
    assert window.lines == LINES
    assert window.records + window.malformed == window.lines, (window.records, window.malformed, dict(window.malformed_reasons))
    assert window.records >= LINES // 2
    assert sum(window.malformed_reasons.values()) == window.malformed


@pytest.mark.parametrize("columnar", [True, False], ids=["columnar", "line by line"])
@pytest.mark.parametrize("quoted", [True, False], ids=["with a quote", "without a quote"])
def test_a_captured_csv_request_the_csv_module_cannot_read_is_counted_not_a_crash(tmp_path, columnar, quoted):
    """GIVEN a window holding a captured CSV request with a bare carriage return outside quotes, with or without a
    quote elsewhere on its line (what an
    endpoint answered with a 500 before serving refused it with a 400: any caller could send it) among valid ones
    WHEN the monitor reads the window THEN that request is counted malformed (``unreadable_csv``) and the others are
    records; before: csv.Error escaped the decoder and every monitor run over that window failed."""
    import datetime as dt
    import uuid

    from pipeline_code.serving.self_capture import capture_record

    spec = fuzz_spec(BINARY)
    width = len(spec.features)

    def line(body: str) -> str:
        return json.dumps(capture_record(request_body=body, request_type="text/csv", response_body="0.5",
                                         response_type="text/csv", event_id=str(uuid.uuid4()),
                                         when=dt.datetime(2026, 5, 20, 8, tzinfo=dt.timezone.utc)))

    valid = ",".join(["1"] * width)
    path = Path(tmp_path, spec.name, "AllTraffic", "capture.jsonl")
    path.parent.mkdir(parents=True)
    path.write_text("\n".join([line(valid), line(('"x",1\r' if quoted else "x,1\r") + ",1" * (width - 2)), line(valid)]) + "\n", encoding="utf-8")
    window = capture.read_capture(str(tmp_path), spec.features, problem_type=spec.problem_type, classes=spec.classes,
                                  columnar=columnar)
    assert (window.lines, window.records, window.malformed) == (3, 2, 1)
    assert dict(window.malformed_reasons) == {"unreadable_csv": 1}


def _generated_times(rng: np.random.Generator, n: int):
    """Request times as the monitor meets them: datetimes of every unit and zone (a records file's, read from parquet),
    with missing ones, repeated ones and times near the epoch's edges, and the same as text."""
    import pandas as pd

    seconds = rng.choice([rng.integers(0, 4_000_000_000, n), rng.integers(1_790_000_000, 1_790_000_100, n)])
    fraction = rng.integers(0, 10**9, n) * rng.choice([0, 1])
    times = pd.Series(pd.to_datetime(seconds * 10**9 + fraction, unit="ns"))
    times[rng.random(n) < 0.1] = pd.NaT
    unit = rng.choice(["ns", "us", "ms", "s"])
    zone = rng.choice([None, "UTC", "Europe/Berlin", "America/Sao_Paulo", "Asia/Kolkata"])
    times = times.astype(f"datetime64[{unit}]")
    if zone is not None:
        times = times.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    return [times, times.astype(object), times.dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z"), times.astype(str)]


def test_request_times_of_datetimes_are_the_times_pandas_converts_them_to():
    # GIVEN 40 generated series of request times (datetimes of each unit and zone, as objects and as text)
    import pandas as pd

    rng = np.random.default_rng(16)
    for case in range(40):
        for values in _generated_times(rng, int(rng.choice([1, 7, 60, 600]))):
            # WHEN read as request times THEN they are pandas' UTC conversion of them (cached or not)
            expected = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
            pd.testing.assert_series_equal(capture.request_times(values), expected, obj=f"case {case} {values.dtype}")


@pytest.mark.parametrize("text", [
    '{"a": 1, "b": [2.5, null, true], "c": {"d": "e\\u00e9"}}', "12", '"x"', "[]",
    '{"big": ' + "9" * 299 + ", \"bigger\": " + "9" * 300 + ", \"neg\": -" + "9" * 400 + "}",
    '\ufeff{"a": 1}', '{"a": 1} x', '{"a": ', "", "   ", "NaN", '{"a": Infinity}', '{"a": 1e999}', " {\"a\": 1} ",
])
def test_a_capture_document_decodes_as_json_loads_with_big_integers_infinite_did(text):
    # GIVEN a document of a capture line: valid, with integers around float range, a leading byte-order mark, invalid
    def before(document):
        try:
            return "value", json.loads(document, parse_int=capture._big_int)
        except ValueError as exc:
            return "error", f"{type(exc).__name__}: {exc}"

    # WHEN the decoder reads it
    try:
        after = "value", capture._json(text)
    except ValueError as exc:
        after = "error", f"{type(exc).__name__}: {exc}"

    # THEN it is what json.loads(text, parse_int=_big_int) gave: the same value, or the same error
    assert repr(after) == repr(before(text))


def test_a_number_sent_as_a_category_has_one_text_whatever_records_share_its_chunk(tmp_path):
    # GIVEN JSON requests whose category is a whole number, in one file beside a record without it, in another beside
    # a record naming it in text
    def event(record):
        return json.dumps({"captureData": {"endpointInput": {"observedContentType": "application/json", "encoding": "JSON",
                                                              "data": json.dumps(record)}},
                           "eventMetadata": {"eventId": "e", "inferenceTime": "2026-01-01T00:00:00Z"}})

    for name, other in (("alone", {"x": 1.0}), ("beside_text", {"x": 1.0, "kind": "web"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "capture.jsonl").write_text(event({"x": 1.0, "kind": 123456789012345}) + "\n" + event(other) + "\n")
    # WHEN each is read (line by line, one chunk each)
    texts = [capture.read_capture(str(tmp_path / name), ["x", "kind"], categorical=["kind"], columnar=False)
             .frame["kind"].tolist()[0] for name in ("alone", "beside_text")]
    # THEN the number's text is its JSON text both times (not a float's, as a column of numbers and nulls made it)
    assert texts == ["123456789012345", "123456789012345"]


@pytest.mark.parametrize("columnar", [False, True])
def test_a_lone_surrogate_in_a_captured_category_is_the_replacement_character_not_a_crash(tmp_path, columnar):
    # GIVEN a JSON request whose category is the escape of a lone surrogate (Python's json reads it; UTF-8 has none)
    data = '{"x": 1.0, "kind": "web\\ud800"}'
    line = json.dumps({"captureData": {"endpointInput": {"observedContentType": "application/json", "encoding": "JSON",
                                                          "data": data}},
                       "eventMetadata": {"eventId": "e", "inferenceTime": "2026-01-01T00:00:00Z"}})
    (tmp_path / "capture.jsonl").write_text(line + "\n")
    # WHEN the window is read
    window = capture.read_capture(str(tmp_path), ["x", "kind"], categorical=["kind"], columnar=columnar)
    # THEN the record is decoded, its category's lone surrogate read as U+FFFD
    assert (window.records, window.malformed) == (1, 0)
    assert window.frame["kind"].tolist() == ["web\ufffd"]


def test_a_negative_zero_sent_as_a_number_keeps_its_sign_whatever_records_share_its_chunk(tmp_path):
    # GIVEN a JSON request whose number is -0.0, in one file beside a record with a whole number, in another beside one
    # with a fraction, in a third beside one without it
    def event(record):
        return json.dumps({"captureData": {"endpointInput": {"observedContentType": "application/json", "encoding": "JSON",
                                                              "data": json.dumps(record)}},
                           "eventMetadata": {"eventId": "e", "inferenceTime": "2026-01-01T00:00:00Z"}})

    others = {"whole": {"x": 14}, "fraction": {"x": 14.5}, "missing": {"x": None}}
    for name, other in others.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "capture.jsonl").write_text(event(other) + "\n" + event({"x": -0.0}) + "\n")
    # WHEN each is read (line by line, one chunk each)
    signs = [bool(np.signbit(capture.read_capture(str(tmp_path / name), ["x"], columnar=False).frame["x"].iloc[1]))
             for name in others]
    # THEN it is -0.0 each time, as JSON gave it (pandas made a column of whole numbers integers: 0.0 beside a 14)
    assert signs == [True, True, True]


@pytest.mark.parametrize("text", ["-0", "9223372036854775809", "9223372036854775807", "1.8704474134700457", "1e-320"])
def test_a_number_sent_as_text_is_the_float_it_denotes_whatever_records_share_its_chunk(tmp_path, text):
    # GIVEN a CSV request holding the number as text, in one file beside a record with a whole number, in another
    # beside one with a fraction, in a third beside one without it
    def event(value):
        return json.dumps({"captureData": {"endpointInput": {"observedContentType": "text/csv", "encoding": "CSV",
                                                              "data": value}},
                           "eventMetadata": {"eventId": "e", "inferenceTime": "2026-01-01T00:00:00Z"}})

    others = {"whole": "14,1", "fraction": "14.5,1", "missing": ",1"}
    for name, other in others.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "capture.jsonl").write_text(event(other) + "\n" + event(f"{text},1") + "\n")
    # WHEN each is read (line by line, one chunk each)
    values = [capture.read_capture(str(tmp_path / name), ["x", "y"], columnar=False).frame["x"].iloc[1]
              for name in others]
    # THEN it is the float Python reads from the text, to the bit (sign included) each time: pandas' own text parser is
    # off by one unit in the last place for some 17-digit numbers, reads "-0" as 0 beside whole numbers, and 19-digit
    # integers through int64 or float64 by what else the chunk holds
    assert [(float(v).hex(), bool(np.signbit(v))) for v in values] == [(float(text).hex(), text.startswith("-"))] * 3

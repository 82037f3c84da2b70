"""The columnar capture reader decodes exactly what the line decoder does: same records, counts, malformed lines."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code.core.contract import ANSWERED_BY, ANSWERED_BY_DIGEST, ANSWERED_BY_VERSION
from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION
from pipeline_code.monitoring import capture, capture_columns
from mlops_cli.local import replay
from tests.support.capture import fuzz_spec as _spec, mutate_capture_line as _mutate

LINES = 600


def _csv_mutate(line: str, rand: random.Random) -> str:
    """A CSV request or response the fast path must hand to the line decoder, or decode identically."""
    event = json.loads(line)
    inp, out = event["captureData"]["endpointInput"], event["captureData"]["endpointOutput"]
    values = inp["data"].split(",")
    kind = rand.randrange(12)
    if kind == 0:
        values[rand.randrange(len(values))] = rand.choice(["abc", "inf", "nan", "1e999", "-0", "1" + "0" * 400, "", " 7", "7 "])
    elif kind == 1:
        values.append("extra")  # wrong width
    elif kind == 2:
        values[0] = '"' + values[0] + '"'  # quoted
    elif kind == 3:
        inp["data"] = inp["data"] + "\n" + inp["data"]  # two records in one request
    elif kind == 4:
        out["data"] = rand.choice(["abc", " 0.5", "0.5,0.3", "", "1e999", "nan", "+.5", "5.", "1E-3", "0x10"])
    elif kind == 5:
        out["encoding"] = rand.choice(["JSON", "BASE64"])
    elif kind == 6:
        inp["observedContentType"] = rand.choice(["TEXT/CSV", "text/csv; charset=utf-8", "application/json"])
    elif kind == 7:
        event["eventMetadata"]["inferenceId"] = ""  # falls back to the event id
    elif kind == 8:
        del event["eventMetadata"]["inferenceId"]
    elif kind == 9:
        return json.dumps(event) + "\r"  # a CRLF file
    elif kind == 10:
        return rand.choice(["", "   ", "\r", "{not json"])
    else:
        del event["captureData"]["endpointOutput"]
    inp["data"] = ",".join(values) if kind in (0, 1, 2) else inp["data"]
    return json.dumps(event)


def _lines(spec, rand: random.Random) -> list:
    rng = np.random.default_rng(3)
    frame = replay.traffic(spec, LINES, seed=5, start="2026-01-01", days=2)
    outputs = rng.random(LINES) if spec.problem_type == BINARY else rng.gamma(2.0, 20.0, LINES)
    if spec.problem_type == MULTICLASS:
        raw = rng.random((LINES, len(spec.classes)))
        outputs = raw / raw.sum(axis=1, keepdims=True)
    csv_lines = replay.capture_lines(spec, frame, outputs, content_type="text/csv", response_type="text/csv")
    json_lines = replay.capture_lines(spec, frame, outputs)
    out = []
    for i in range(LINES):
        csv = bool(i % 3)  # two thirds CSV requests, a third JSON
        line = csv_lines[i] if csv else json_lines[i]
        if i % 5 == 1:  # self-capture's answering model, well-formed or not
            event = json.loads(line)
            event["eventMetadata"][ANSWERED_BY] = rand.choice(IDENTITIES)
            line = json.dumps(event)
        out.append(line if i % 4 == 0 else _csv_mutate(line, rand) if csv else _mutate(line, rand))
    return out


IDENTITIES = [{ANSWERED_BY_DIGEST: "a" * 64, ANSWERED_BY_VERSION: "6"}, {ANSWERED_BY_DIGEST: "b" * 64, ANSWERED_BY_VERSION: None},
              {ANSWERED_BY_DIGEST: "c" * 64}, {ANSWERED_BY_DIGEST: 5, ANSWERED_BY_VERSION: "6"}, {ANSWERED_BY_VERSION: "6"},
              {ANSWERED_BY_DIGEST: "d" * 64, ANSWERED_BY_VERSION: 6}, "not an object", None]


def _read(spec, root: Path, columnar: bool) -> capture.CaptureWindow:
    categorical = [f for f in spec.frame_features if spec.is_categorical(f)]
    extra = [f for f in spec.frame_features if f not in spec.features]
    return capture.read_capture(str(root), spec.features, categorical=categorical, extra_columns=extra,
                                dataset=spec.catalog_dataset, problem_type=spec.problem_type, classes=spec.classes,
                                columnar=columnar)


@pytest.mark.parametrize("block_bytes", [3_000, 10_000_000])  # many blocks (lines cut across reads) and one
@pytest.mark.parametrize("problem_type", [BINARY, REGRESSION, MULTICLASS])
def test_the_columnar_reader_decodes_what_the_line_decoder_does(problem_type, block_bytes, tmp_path, monkeypatch):
    # GIVEN a capture file of CSV and JSON requests, a quarter untouched, the rest mutated (CSV-specific traps
    # and the decoder fuzz), with blank, CRLF and invalid UTF-8 lines
    spec = _spec(problem_type)
    lines = _lines(spec, random.Random(f"columns-{problem_type}"))
    path = tmp_path / spec.name / "AllTraffic" / "capture.jsonl"
    path.parent.mkdir(parents=True)
    body = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(body[:200] + b"\xff\xfe" + body[200:] + b"\n" + lines[1].encode("utf-8"))  # no final newline
    monkeypatch.setattr(capture_columns, "BLOCK_BYTES", block_bytes)
    # WHEN the window is read both ways
    fast, reference = _read(spec, tmp_path, True), _read(spec, tmp_path, False)
    # THEN the records are the same (order aside), and so is every count the report shows
    assert fast.records > LINES // 3 and fast.malformed > 0
    assert fast.summary() == reference.summary()
    assert fast.summary()["answered_by"]["models"]["a" * 64]["version"] == "6"
    pd.testing.assert_frame_equal(_sorted(fast.frame, spec), _sorted(reference.frame, spec), check_exact=True)


def _sorted(frame: pd.DataFrame, spec) -> pd.DataFrame:
    """Rows in one order (ids and values compared as text: a hostile event id may be any JSON value)."""
    key = [capture.INFERENCE_ID, *spec.features, capture.SCORE]
    return frame.iloc[np.lexsort([frame[c].astype(str).to_numpy() for c in reversed(key)])].reset_index(drop=True)


def test_a_clean_csv_file_is_decoded_by_the_fast_path(tmp_path):
    spec = _spec(BINARY)
    frame = replay.traffic(spec, 200, seed=5, start="2026-01-01", days=2)
    lines = replay.capture_lines(spec, frame, np.linspace(0, 1, 200), content_type="text/csv", response_type="text/csv")
    path = tmp_path / "capture.jsonl"
    path.write_text("\n".join(lines) + "\n")
    decoder = capture._Decoder(spec.features, [], 20, spec.catalog_dataset,
                               categorical=[f for f in spec.features if spec.is_categorical(f)])
    chunks, line_decoded = [], []
    decoder.sink = chunks.append
    decoder.decode_capture_line = lambda *line: line_decoded.append(line)
    capture_columns.decode_file(decoder, str(path), "capture.jsonl")
    # every record arrived as one typed chunk, none through the line decoder
    assert [len(c) for c in chunks] == [200] and line_decoded == []
    assert decoder.window.lines == 200 and decoder.window.records == 200 and decoder.window.malformed == 0


def test_the_fast_path_reads_which_model_answered_a_self_captured_csv_request(tmp_path):
    # GIVEN self-captured CSV requests and responses, two versions answering (the record's eventMetadata says which)
    spec = _spec(BINARY)
    frame = replay.traffic(spec, 100, seed=5, start="2026-01-01", days=2)
    lines = replay.capture_lines(spec, frame, np.linspace(0, 1, 100), content_type="text/csv", response_type="text/csv")
    events = [json.loads(line) for line in lines]
    for i, event in enumerate(events):
        event["eventMetadata"][ANSWERED_BY] = {ANSWERED_BY_DIGEST: "a" * 64 if i < 30 else "b" * 64,
                                               ANSWERED_BY_VERSION: "6" if i < 30 else "7", "name": spec.name}
    (tmp_path / "capture.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    decoder = capture._Decoder(spec.features, [], 20, spec.catalog_dataset,
                               categorical=[f for f in spec.features if spec.is_categorical(f)])
    chunks, line_decoded = [], []
    decoder.sink = chunks.append
    decoder.decode_capture_line = lambda *line: line_decoded.append(line)
    # WHEN the fast path decodes them
    capture_columns.decode_file(decoder, str(tmp_path / "capture.jsonl"), "capture.jsonl")
    # THEN every record (none went line by line) carries its answering artefact, and the versions are noted
    assert line_decoded == [] and chunks[0][capture.ANSWERED].tolist() == ["a" * 64] * 30 + ["b" * 64] * 70
    assert decoder.window.versions == {"a" * 64: "6", "b" * 64: "7"}


def test_a_block_the_fast_path_fails_on_is_decoded_line_by_line_and_counted(tmp_path, monkeypatch):
    # GIVEN a pyarrow without a kernel the fast path uses (simulated)
    spec = _spec(BINARY)
    frame = replay.traffic(spec, 50, seed=5, start="2026-01-01", days=2)
    lines = replay.capture_lines(spec, frame, np.linspace(0, 1, 50), content_type="text/csv", response_type="text/csv")
    (tmp_path / "capture.jsonl").write_text("\n".join(lines) + "\n")

    def missing_kernel(*args, **kwargs):
        raise AttributeError("module 'pyarrow.compute' has no attribute 'match_substring_regex'")

    reference = _read(spec, tmp_path, False)
    monkeypatch.setattr(capture_columns.pc, "match_substring_regex", missing_kernel)
    window = _read(spec, tmp_path, True)
    # THEN the window is the line decoder's, and the summary says the fast path was skipped and why
    assert window.records == reference.records == 50 and window.malformed == 0
    assert window.summary()["columnar_fallbacks"] == {
        "AttributeError: module 'pyarrow.compute' has no attribute 'match_substring_regex'": 1}
    pd.testing.assert_frame_equal(_sorted(window.frame, spec), _sorted(reference.frame, spec), check_exact=True)


def _json_mutate(line: str, rand: random.Random) -> str:
    """A JSON request the JSON fast path must hand to the line decoder, or decode identically: the awkward cases
    (text spelt by hand where ``json.dumps`` would not write it)."""
    event = json.loads(line)
    inp = event["captureData"]["endpointInput"]
    record = json.loads(inp["data"])
    keys = list(record)
    key = rand.choice(keys)
    body = json.dumps(record)
    kind = rand.randrange(16)
    if kind == 0:  # a key twice (Python's json keeps the last value), or a feature missing or null
        body = rand.choice([body[:-1] + f", {json.dumps(key)}: {json.dumps(record[key])}}}",
                            "{" + f"{json.dumps(key)}: 1, " + body[1:],
                            json.dumps({k: v for k, v in record.items() if k != key}),
                            json.dumps({**record, key: None})])
    elif kind == 1:  # an unknown or a known non-input key, which may be null or not text
        body = json.dumps({**record, rand.choice(["unknown", "inference_id", "inference_time"]):
                           rand.choice([None, "r-1", "2026-01-01T05:00:00Z", 5, "", [1], {"a": {"b": None}}])})
    elif kind == 2:  # a value of another JSON type: nested, a number as text, text as a number, a boolean
        body = json.dumps({**record, key: rand.choice([[1], {"a": 1}, "12", "1.5", "", " 3", 12, 1.5, True, False])})
    elif kind == 3:  # numbers Python's json and pyarrow might read apart
        value = rand.choice(["-0", "-0.0", "0", "0.0", "2e-400", "1e400", "-1e400", "NaN", "Infinity", "-Infinity",
                             str(2 ** 53 - 1), str(2 ** 53), str(2 ** 53 + 1), str(10 ** 20), "1" + "0" * 400,
                             "1E+2", "1.0e-5", "0.12345678901234567", "123456789.12345678", "-3", "01", "1.", ".5",
                             "+1", "0x10"])
        body = json.dumps({**record, key: "@@"}).replace('"@@"', value)
    elif kind == 4:  # escapes (a unicode one, a lone surrogate, a quote), a byte-order mark, a raw control character
        text = rand.choice(["\\u00e9t\\u00e9", "\\ud800", 'a\\"b', "south\\t", "caf\u00e9", "a\tb", "x\u2028y"])
        body = rand.choice([json.dumps({**record, key: "@@"}).replace("@@", text),
                            "\ufeff" + body, body.replace(", ", ", \ufeff", 1), "\ufeff\ufeff" + body])
    elif kind == 5:  # several records, or more than one JSON document
        body = rand.choice([json.dumps([record]), json.dumps([record, record]), json.dumps({"instances": [record]}),
                            body + body, body + " " + body, body + "\n" + body, "[]", "{}", body + " x"])
    elif kind == 6:  # white space where JSON allows it (and where it does not), a record spread over lines
        body = rand.choice([" " + body, body + " ", "\t" + body, body.replace(", ", ",\n  "), body.replace(": ", ":\t"),
                            body.replace(", ", ",\r\n"), body.replace("{", "{ ", 1), json.dumps(record, indent=2)])
    elif kind == 7:  # JSON the json module refuses
        body = rand.choice([body[:-1] + ",}", body.replace('"', "'"), body[:-1], body + "}", "{" + body[1:-1] + ",}",
                            body.replace(":", " : ", 1), body.replace('", "', '" "', 1)])
    elif kind == 8:  # content types and encodings the fast path leaves (or reads) as the line decoder does
        inp["observedContentType"] = rand.choice(["application/json; charset=utf-8", "Application/JSON", "application/jsonlines",
                                                  "application/json;", "application/jsonx", "", None])
        if rand.random() < 0.5:
            inp["encoding"] = rand.choice(["CSV", "json", None, "BASE64"])
            if inp["encoding"] == "BASE64":
                body = base64.b64encode(body.encode()).decode()
    elif kind == 9:  # the text of a category that is a number, a keyword or non-ASCII
        body = json.dumps({**record, key: rand.choice(["12", "null", "true", "NaN", "Ωmega", "\u2028", " x ", "a,b", "{}"])},
                          ensure_ascii=rand.random() < 0.5)
    elif kind == 10:  # a response the fast path does not read
        event["captureData"]["endpointOutput"] = rand.choice([
            {"observedContentType": "application/json", "mode": "OUTPUT", "data": '{"predictions": [{"score": 0.3}]}',
             "encoding": "JSON"}, {"observedContentType": "text/csv", "data": "0.2,0.3", "encoding": "CSV"}])
    elif kind == 11:  # keys in another order, a record id and time of its own
        items = list(record.items())
        rand.shuffle(items)
        body = json.dumps({**dict(items), "inference_id": f"own-{rand.randrange(10)}",
                           "inference_time": rand.choice(["2026-01-01T05:00:00Z", None, ""])})
    elif kind == 12:  # a long record
        body = json.dumps({**record, key: "x" * rand.choice([1000, 20_000])})
    inp["data"] = body
    return json.dumps(event, ensure_ascii=rand.random() < 0.5)


def _json_lines(spec, rows: int, rand: random.Random) -> list:
    """JSON requests (the replayed traffic's records), a third of them untouched, the rest awkward."""
    frame = replay.traffic(spec, rows, seed=7, start="2026-01-01", days=2)
    rng = np.random.default_rng(4)
    outputs = rng.random(rows) if spec.problem_type == BINARY else rng.gamma(2.0, 20.0, rows)
    lines = replay.capture_lines(spec, frame, outputs)
    return [line if i % 3 == 0 else _json_mutate(line, rand) for i, line in enumerate(lines)]


@pytest.mark.parametrize("block_bytes", [30_000, 10_000_000])  # several blocks (lines cut across reads) and one
@pytest.mark.parametrize("problem_type", [BINARY, REGRESSION])
def test_the_columnar_reader_decodes_json_requests_as_the_line_decoder_does(problem_type, block_bytes, tmp_path,
                                                                            monkeypatch):
    # GIVEN a capture file of JSON requests, a third untouched, the rest awkward: keys twice, missing or unknown,
    # values null, nested or of another type, numbers either reader might read apart, escapes, byte-order marks,
    # several records, line breaks, invalid JSON, other content types and encodings
    spec = _spec(problem_type)
    lines = _json_lines(spec, LINES, random.Random(f"json-{problem_type}"))
    path = tmp_path / spec.name / "AllTraffic" / "capture.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(capture_columns, "BLOCK_BYTES", block_bytes)
    # WHEN the window is read both ways
    fast, reference = _read(spec, tmp_path, True), _read(spec, tmp_path, False)
    # THEN the records, counts and malformed lines are the same
    assert fast.records > LINES // 2 and fast.malformed > 0 and fast.summary()["schema"]["changed"]
    assert fast.summary() == reference.summary()
    pd.testing.assert_frame_equal(_sorted(fast.frame, spec), _sorted(reference.frame, spec), check_exact=True)


def _awkward_bodies(record: dict, number: str, category: str) -> list:
    """Each awkward request once: ``record`` (a clean one) changed at its numeric feature ``number`` or its category."""
    body = json.dumps(record)

    def at(key, text):  # the record with ``text`` as the JSON text of ``key``'s value
        return json.dumps({**record, key: "@@"}).replace('"@@"', text)

    numbers = ["-0", "-0.0", "0", "0.0", "2e-400", "1e400", "-1e400", "NaN", "Infinity", "-Infinity", str(2 ** 53 - 1),
               str(2 ** 53), str(2 ** 53 + 1), str(-2 ** 53 - 1), str(10 ** 20), "1" + "0" * 400, "1E+2", "1.0e-5",
               "0.12345678901234567", "123456789.12345678", "5e-324", "1.7976931348623157e308", "01", "1.", ".5", "+1",
               "0x10", "true", "false", '"12"', '"1.5"', '""', '" 3"', "[1]", '{"a": 1}', "null"]
    texts = ['"12"', "12", "1.5", "true", "null", '""', '" x "', '"\\u00e9t\\u00e9"', '"\\ud800"', '"a\\"b"', '"a\\\\b"',
             '"south\\t"', '"caf\u00e9"', '"a\tb"', '"x\u2028y"', '"\u0000"', '"a,b"', '"{}"', "[]"]
    reordered = dict(reversed(list(record.items())))
    return [
        *(at(number, text) for text in numbers), *(at(category, text) for text in texts),
        body[:-1] + f", {json.dumps(number)}: 7}}", "{" + f"{json.dumps(number)}: 7, " + body[1:],  # a key twice
        body[:-1] + f", {json.dumps(category)}: {json.dumps(record[category])}}}",
        json.dumps({k: v for k, v in record.items() if k != number}), json.dumps({k: v for k, v in record.items() if k != category}),
        json.dumps({**record, "unknown": 1}), json.dumps({**record, "unknown": None}), json.dumps({**record, "inference_id": "own"}),
        json.dumps({**record, "inference_id": None}), json.dumps({**record, "inference_id": 5}), json.dumps({**record, "inference_id": ""}),
        json.dumps({**record, "inference_time": "2026-01-01T05:00:00Z"}), json.dumps({**record, "inference_time": None}),
        json.dumps(reordered), "\ufeff" + body, "\ufeff\ufeff" + body, body.replace(", ", ", \ufeff", 1), body + "\ufeff",
        json.dumps([record]), json.dumps([record, record]), json.dumps({"instances": [record]}), json.dumps({"instances": record}),
        body + body, body + " " + body, body + "\n" + body, body + "\r\n" + body, "[]", "{}", "", " ", body + " x", "null",
        " " + body, body + " ", "\t" + body, body + "\n", body.replace(", ", ",\n  "), body.replace(": ", ":\t"),
        body.replace(", ", ",\r\n"), json.dumps(record, indent=2), body.replace("{", "{ ", 1), body.replace(": ", ":"),
        body[:-1] + ",}", body.replace('"', "'"), body[:-1], body + "}", body.replace('", "', '" "', 1), body.replace(": ", " : "),
        body.replace(":", "\u00a0:", 1), "/* c */" + body, body.replace(" ", "\x0b", 1),
    ]


@pytest.mark.parametrize("block_bytes", [30_000, 10_000_000])
def test_each_awkward_json_request_is_decoded_as_the_line_decoder_does(block_bytes, tmp_path, monkeypatch):
    # GIVEN each awkward request (a key twice, missing or unknown; values of another type; numbers either reader might
    # read apart; escapes; byte-order marks; several records or documents; white space and line breaks; invalid JSON),
    # each between clean requests, then the same under other content types and encodings
    spec = _spec(BINARY)
    frame = replay.traffic(spec, 300, seed=5, start="2026-01-01", days=2)
    clean = replay.capture_lines(spec, frame, np.linspace(0, 1, 300))
    record = json.loads(json.loads(clean[0])["captureData"]["endpointInput"]["data"])
    number = next(f for f in spec.features if not spec.is_categorical(f))
    category = next(f for f in spec.features if spec.is_categorical(f))
    lines = []
    for i, body in enumerate(_awkward_bodies(record, number, category)):
        for kind, encoding in (("application/json", "JSON"), ("application/json; charset=utf-8", "JSON"),
                               ("application/jsonlines", "JSON"), ("Application/JSON", "JSON"), ("application/json", "CSV"),
                               ("", "JSON"), ("application/json", "BASE64")):
            event = json.loads(clean[(7 * i) % len(clean)])
            data = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode() if encoding == "BASE64" else body
            event["captureData"]["endpointInput"].update(observedContentType=kind, encoding=encoding, data=data)
            lines += [json.dumps(event, ensure_ascii=i % 2 == 0), clean[(7 * i + 1) % len(clean)]]
    path = tmp_path / spec.name / "AllTraffic" / "capture.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    monkeypatch.setattr(capture_columns, "BLOCK_BYTES", block_bytes)
    # WHEN the window is read both ways
    fast, reference = _read(spec, tmp_path, True), _read(spec, tmp_path, False)
    # THEN the records, counts and malformed lines are the same, and so is every number to the bit (-0.0 is not 0.0)
    assert fast.summary()["malformed"]["count"] > 0 and fast.summary()["schema"]["changed"]
    assert fast.summary() == reference.summary()
    fast_frame, reference_frame = _sorted(fast.frame, spec), _sorted(reference.frame, spec)
    pd.testing.assert_frame_equal(fast_frame, reference_frame, check_exact=True)
    for name in fast_frame.columns:
        if fast_frame[name].dtype == np.float64:
            assert np.signbit(fast_frame[name]).tolist() == np.signbit(reference_frame[name]).tolist(), name


def _split_decoder(spec):
    """A decoder whose line-decoded lines are only collected (what the fast path did not decode)."""
    decoder = capture._Decoder(spec.features, [f for f in spec.frame_features if f not in spec.features], 20,
                               spec.catalog_dataset, categorical=[f for f in spec.frame_features if spec.is_categorical(f)])
    chunks, line_decoded = [], []
    decoder.sink = chunks.append
    decoder.decode_capture_line = lambda text, rel, line_no: line_decoded.append(line_no)
    return decoder, chunks, line_decoded


def test_a_clean_json_file_is_decoded_by_the_fast_path(tmp_path):
    # GIVEN JSON requests as clients send them (one record of the model's features and extra columns)
    spec = _spec(BINARY)
    frame = replay.traffic(spec, 300, seed=5, start="2026-01-01", days=2)
    lines = replay.capture_lines(spec, frame, np.linspace(0, 1, 300))
    (tmp_path / "capture.jsonl").write_text("\n".join(lines) + "\n")
    decoder, chunks, line_decoded = _split_decoder(spec)
    # WHEN the columnar reader decodes them
    capture_columns.decode_file(decoder, str(tmp_path / "capture.jsonl"), "capture.jsonl")
    # THEN every record arrived as one typed chunk, none through the line decoder
    assert [len(c) for c in chunks] == [300] and line_decoded == []
    assert decoder.window.lines == 300 and decoder.window.records == 300 and decoder.window.malformed == 0


def test_a_few_requests_pyarrow_refuses_leave_the_rest_of_their_block_on_the_fast_path(tmp_path):
    # GIVEN 2,000 clean JSON requests and three pyarrow refuses (a key twice, a number as text, an unknown key)
    spec = _spec(BINARY)
    frame = replay.traffic(spec, 2000, seed=5, start="2026-01-01", days=2)
    lines = replay.capture_lines(spec, frame, np.linspace(0, 1, 2000))
    feature = spec.features[0]
    for i, change in ((100, lambda r: r[:-1] + f', "{feature}": 1}}'), (1000, lambda r: r.replace(f'"{feature}": ', f'"{feature}": "1", "x": ', 1)),
                      (1500, lambda r: r[:-1] + ', "unknown": 1}')):
        event = json.loads(lines[i])
        event["captureData"]["endpointInput"]["data"] = change(event["captureData"]["endpointInput"]["data"])
        lines[i] = json.dumps(event)
    (tmp_path / "capture.jsonl").write_text("\n".join(lines) + "\n")
    decoder, chunks, line_decoded = _split_decoder(spec)
    # WHEN the columnar reader decodes them (one block)
    capture_columns.decode_file(decoder, str(tmp_path / "capture.jsonl"), "capture.jsonl")
    # THEN the three went line by line, with no more than a few neighbours each; the rest came as one chunk
    assert {101, 1001, 1501} <= set(line_decoded) and len(line_decoded) < 3 * capture_columns._SPLIT_MIN
    assert sum(len(c) for c in chunks) == 2000 - len(line_decoded)


@pytest.mark.parametrize("text", ['"-0"', '"9223372036854775809"', '"9223372036854775807"'])
def test_a_number_sent_as_text_reads_the_same_both_ways(tmp_path, text):
    # GIVEN clean JSON requests (tenure_months whole numbers), one of them 7.5, and far from it one request whose
    # tenure_months is a number spelt as text (the line decoder reads text numbers: no type violation)
    spec = _spec(BINARY)
    frame = replay.traffic(spec, 60, seed=5, start="2026-01-01", days=2)
    clean = [line for line in replay.capture_lines(spec, frame, np.linspace(0, 1, 60))
             if all(json.loads(json.loads(line)["captureData"]["endpointInput"]["data"]).get(f) is not None
                    for f in spec.frame_features)]
    record = json.loads(json.loads(clean[0])["captureData"]["endpointInput"]["data"])

    def event(i, body):
        e = json.loads(clean[i])
        e["eventMetadata"]["inferenceId"] = f"crafted-{i}"
        e["captureData"]["endpointInput"]["data"] = body
        return json.dumps(e)

    lines = [event(0, json.dumps({**record, "tenure_months": 7.5}))] + clean[1:]
    lines.append(event(1, json.dumps({**record, "tenure_months": "@@"}).replace('"@@"', text)))
    path = tmp_path / spec.name / "AllTraffic" / "capture.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    # WHEN the window is read both ways
    fast, reference = _read(spec, tmp_path, True), _read(spec, tmp_path, False)
    pick = lambda w: w.frame.loc[w.frame[capture.INFERENCE_ID] == "crafted-1", "tenure_months"].iloc[0]
    # THEN that value is the same, to the bit
    assert fast.summary() == reference.summary()
    assert (float(pick(fast)).hex(), bool(np.signbit(pick(fast)))) == (float(pick(reference)).hex(), bool(np.signbit(pick(reference))))


def test_a_feature_named_instances_reads_the_same_both_ways(tmp_path):
    # GIVEN JSON requests of a model with a feature named "instances", the key of the request envelope
    # ({"instances": [...]}) the line decoder (as serving) reads first
    def line(i):
        data = json.dumps({"instances": "a", "x": 1.0 + i})
        return json.dumps({"captureData": {"endpointInput": {"observedContentType": "application/json", "encoding": "JSON",
                                                             "data": data},
                                           "endpointOutput": {"observedContentType": "text/csv", "encoding": "CSV", "data": "0.5"}},
                           "eventMetadata": {"eventId": f"e{i}", "inferenceTime": "2026-01-01T00:00:00Z"}})
    (tmp_path / "capture.jsonl").write_text("\n".join(line(i) for i in range(3)) + "\n")
    # WHEN read both ways THEN the same records and malformed lines
    fast, reference = (capture.read_capture(str(tmp_path), ["instances", "x"], categorical=["instances"], columnar=c)
                       for c in (True, False))
    assert (fast.records, fast.malformed) == (reference.records, reference.malformed)

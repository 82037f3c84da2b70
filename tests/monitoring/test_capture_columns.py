"""The columnar capture reader decodes exactly what the line decoder does: same records, counts, malformed lines."""

from __future__ import annotations

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
    pd.testing.assert_frame_equal(_sorted(fast.frame, spec), _sorted(reference.frame, spec))


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
    pd.testing.assert_frame_equal(_sorted(window.frame, spec), _sorted(reference.frame, spec))

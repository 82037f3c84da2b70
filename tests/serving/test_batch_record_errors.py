"""Batch transform: one record the contract refuses is answered by an error line of its own, not a 400 for its
mini-batch (which, with InvocationsMaxRetries 1, fails the night's job); every other record is scored as alone.

The container knows it runs in a transform job by core.contract.BATCH_RECORD_ERRORS_ENV, which the serving stack sets on
a batch model's SageMaker Model only (tests/infra/constructs: the construct test); endpoints keep answering whole or
refusing whole. Each test runs the hooks on a really trained model (tests/serving/conftest.py).
"""

from __future__ import annotations

import csv
import json
from typing import Any, Dict, List, Tuple

import pytest

from pipeline_code import catalog
from pipeline_code.core.contract import BATCH_RECORD_ERRORS_ENV, record_error_of
from pipeline_code.serving import inference as inf
from tests.support.capture import batch_transform, decode_capture


@pytest.fixture
def in_batch(monkeypatch):
    monkeypatch.setenv(BATCH_RECORD_ERRORS_ENV, "1")


def _numeric_required(model) -> str:
    return next(c for c in model.required_raw_fields
                if model.dataset.column(c).dtype in (catalog.INTEGER, catalog.DOUBLE))


def _outside_declaration(model) -> Tuple[str, Any]:
    """A required raw field with a declared rule, and a value breaking it."""
    for name in model.required_raw_fields:
        column = model.dataset.column(name)
        if column.allowed:
            return name, "not-a-declared-value"
        if column.minimum is not None:
            return name, column.minimum - 1
        if column.maximum is not None:
            return name, column.maximum + 1
    raise AssertionError(f"no required raw field of {model.dataset.name} declares allowed/min/max")


def _jsonl_batch(trained, model) -> Tuple[List[str], Dict[int, str]]:
    """Good raw records with bad ones among them: {input line index: the field at fault ('' for the line itself)}."""
    lines = [json.dumps(dict(r, inference_id=f"row-{i}")) for i, r in enumerate(trained.raw_records(12))]
    numeric = _numeric_required(model)
    declared, outside = _outside_declaration(model)
    blank = model.required_raw_fields[0]
    raw = trained.raw_records(1)[0]
    bad = {
        0: (dict(raw, **{blank: "   "}, inference_id="bad-blank"), blank),
        5: (dict(raw, **{numeric: "1_0"}, inference_id="bad-text"), numeric),
        9: (dict(raw, **{declared: outside}, inference_id="bad-declared"), declared),
        14: (None, ""),  # not JSON at all
    }
    for index in sorted(bad):
        record, _ = bad[index]
        lines.insert(index, '{"inference_id": "cut-off", ' if record is None else json.dumps(record))
    return lines, {i: field for i, (_, field) in bad.items()}


def _refusal_messages(model, body: str, content_type: str) -> str:
    """What an endpoint answers the same mini-batch today: a 400 naming every refused record."""
    with pytest.raises(inf.BadRequestError) as refused:
        inf.invoke(model, body, content_type=content_type, accept=content_type)
    return str(refused.value)


def test_a_refused_record_gets_an_error_line_and_the_others_score_as_alone(trained, in_batch, monkeypatch):
    """GIVEN a JSON Lines mini-batch of good records and four bad ones (blank required field, numeric text the ETL does
    not read, a value outside its declaration, a line that is not JSON) WHEN a batch container answers it THEN one output
    line per input line: error objects where the bad ones were, naming the field in the 400's words, inference id
    echoed, and every other line the same answer as the good records scored alone."""
    model = inf.model_fn(trained.model_dir)
    lines, bad = _jsonl_batch(trained, model)
    body, kind = inf.invoke(model, "\n".join(lines), content_type=inf.JSONLINES, accept=inf.JSONLINES)
    assert kind == inf.JSONLINES
    out = body.decode().split("\n")
    assert len(out) == len(lines)
    monkeypatch.delenv(BATCH_RECORD_ERRORS_ENV)
    good = [line for i, line in enumerate(lines) if i not in bad]
    alone, _ = inf.invoke(model, "\n".join(good), content_type=inf.JSONLINES, accept=inf.JSONLINES)
    assert [line for i, line in enumerate(out) if i not in bad] == alone.decode().split("\n")
    errors = [json.loads(out[i]) for i in sorted(bad)]
    # Today's 400s: the line that is not JSON refuses the body before any record is read; without it, the other three.
    assert errors[-1]["error"]["message"] == _refusal_messages(model, "\n".join(lines), inf.JSONLINES)
    readable = "\n".join(lines[:14] + lines[15:])
    assert "; ".join(e["error"]["message"] for e in errors[:-1]) == _refusal_messages(model, readable, inf.JSONLINES)
    for i, line in zip(sorted(bad), errors):
        error = record_error_of(line)
        assert error is not None and error["status"] == 400
        assert error["message"].startswith(f"record {i} (line {i + 1}): ")
        assert error["fields"] == ([bad[i]] if bad[i] else [])
        if bad[i]:
            assert repr(bad[i]) in error["message"]
    assert [e.get("inference_id") for e in errors] == ["bad-blank", "bad-text", "bad-declared", None]


def test_a_csv_mini_batch_keeps_its_lines_with_a_refused_record_as_one_quoted_field(trained, in_batch, monkeypatch):
    """GIVEN a CSV mini-batch (precomputed features) with a line of the wrong width and one of numeric text the ETL does
    not read WHEN a batch container answers it THEN each output line is one CSV field: the good lines' answers as alone,
    the bad ones the error object's JSON."""
    model = inf.model_fn(trained.model_dir)
    order = model.feature_order
    numeric = next(f for f in order if not model.is_categorical(f) and not model.contract.is_boolean_feature(f))
    records = trained.feature_records(10)
    lines = [",".join("" if r[f] is None else str(r[f]) for f in order) for r in records]
    lines.insert(3, ",".join(["1"] * (len(order) + 1)))
    bad_text = dict(records[0], **{numeric: "1_0"})
    lines.insert(7, ",".join("" if bad_text[f] is None else str(bad_text[f]) for f in order))
    body, _ = inf.invoke(model, "\n".join(lines), content_type=inf.CSV, accept=inf.CSV)
    out = body.decode().split("\n")
    assert len(out) == len(lines)
    monkeypatch.delenv(BATCH_RECORD_ERRORS_ENV)
    alone, _ = inf.invoke(model, "\n".join(lines[:3] + lines[4:7] + lines[8:]), content_type=inf.CSV, accept=inf.CSV)
    assert out[:3] + out[4:7] + out[8:] == alone.decode().split("\n")
    errors = [record_error_of(json.loads(next(csv.reader([out[i]]))[0])) for i in (3, 7)]
    assert [e["fields"] for e in errors] == [[], [numeric]]
    assert "; ".join(e["message"] for e in errors) == _refusal_messages(model, "\n".join(lines), inf.CSV)


def test_a_csv_line_the_reader_cannot_read_is_an_error_line_not_a_refused_mini_batch(trained, in_batch, monkeypatch):
    """GIVEN a CSV mini-batch with a line holding a bare carriage return outside quotes (a stray \\r in a value), which
    an endpoint refuses with a 400 naming the line, WHEN a batch container answers it THEN that line alone is an error
    line in the 400's words and every other line is answered as alone (before: the 400 refused the whole mini-batch,
    which fails the night's transform job, though a line that is not JSON in JSON Lines is only an error line)."""
    model = inf.model_fn(trained.model_dir)
    order = model.feature_order
    records = trained.feature_records(6)
    lines = [",".join("" if r[f] is None else str(r[f]) for f in order) for r in records]
    lines.insert(3, lines[0] + "\r" + lines[1])
    body, _ = inf.invoke(model, "\n".join(lines), content_type=inf.CSV, accept=inf.CSV)
    out = body.decode().split("\n")
    assert len(out) == len(lines)
    monkeypatch.delenv(BATCH_RECORD_ERRORS_ENV)
    alone, _ = inf.invoke(model, "\n".join(lines[:3] + lines[4:]), content_type=inf.CSV, accept=inf.CSV)
    assert out[:3] + out[4:] == alone.decode().split("\n")
    error = record_error_of(json.loads(next(csv.reader([out[3]]))[0]))
    assert error is not None and error["fields"] == []
    assert error["message"] == _refusal_messages(model, "\n".join(lines), inf.CSV) == (
        "record 3 (line 4): not readable as CSV: a carriage return (\\r) outside quotes that does not end the line; end each line "
        "with \\n or \\r\\n, and quote a field that holds a line break")

def test_a_mini_batch_of_only_refused_records_is_all_error_lines(trained, in_batch):
    model = inf.model_fn(trained.model_dir)
    numeric = _numeric_required(model)
    lines = [json.dumps(dict(r, **{numeric: "1_0"})) for r in trained.raw_records(3)]
    body, _ = inf.invoke(model, "\n".join(lines), content_type=inf.JSONLINES, accept=inf.JSONLINES)
    out = [json.loads(line) for line in body.decode().split("\n")]
    assert [record_error_of(line)["fields"] for line in out] == [[numeric]] * 3


def test_an_endpoint_still_refuses_the_whole_request(trained):
    """GIVEN no batch setting (real-time, serverless, async endpoints) WHEN one record is refused THEN the request is a
    400: an endpoint's caller gets every answer or none."""
    model = inf.model_fn(trained.model_dir)
    lines, _ = _jsonl_batch(trained, model)
    assert _refusal_messages(model, "\n".join(lines), inf.JSONLINES).startswith("record 14 (line 15): not valid JSON")
    readable = "\n".join(lines[:14] + lines[15:])
    assert _refusal_messages(model, readable, inf.JSONLINES).startswith("record 0 (line 1): missing required field")


def test_the_monitor_counts_error_lines_per_field_and_judges_the_rest(trained, in_batch, tmp_path):
    """GIVEN a batch input file and its X.out holding error lines WHEN the drift monitor decodes the pair THEN the
    refused records are counted refused (not malformed), per field, and no prediction; every other record is
    decoded with its score."""
    model = inf.model_fn(trained.model_dir)
    lines, bad = _jsonl_batch(trained, model)
    batch = batch_transform(model, lines, tmp_path / "batch", per_invocation=7, content_type=inf.JSONLINES)
    window = decode_capture(trained, batch)
    summary = window.summary()["refused"]
    assert window.records == len(lines) - len(bad)
    assert window.frame["inference_id"].tolist() == [json.loads(lines[i])["inference_id"]
                                                     for i in range(len(lines)) if i not in bad]
    assert window.frame["score"].notna().all()
    assert summary["count"] == len(bad) and window.summary()["malformed"]["count"] == 0
    expected: Dict[str, int] = {}
    for field in bad.values():
        expected[field or "(record)"] = expected.get(field or "(record)", 0) + 1
    assert summary["fields"] == expected


def _request_lines(trained, model, content_type: str, n: int) -> list[str]:
    """``n`` records as lines of ``content_type``: raw fields with an inference id (JSON Lines), or the features in
    the model's order (CSV)."""
    if content_type == inf.JSONLINES:
        return [json.dumps(dict(r, inference_id=f"row-{i}")) for i, r in enumerate(trained.raw_records(n))]
    return [",".join("" if r[f] is None else str(r[f]) for f in model.feature_order) for r in trained.feature_records(n)]


@pytest.mark.parametrize("content_type", [inf.JSONLINES, inf.CSV])
def test_a_blank_line_in_a_mini_batch_answers_its_own_error_line_so_later_scores_stay_on_their_rows(
        trained, in_batch, monkeypatch, content_type):
    """GIVEN a mini-batch with blank lines among its records (an export with an empty line, a file ending in two line
    feeds; SplitType=Line hands them on) WHEN a batch container answers it THEN each blank line gets an error line in its
    place and line i of the output still answers line i of the input (before: the blank line was skipped, so every later
    score landed on the row above its own - a caller joining outputs to inputs by position, as the contract says,
    scored the wrong rows, and a transform job with JoinSource=Input failed on the count)."""
    model = inf.model_fn(trained.model_dir)
    lines = _request_lines(trained, model, content_type, 6)
    blanks = (0, 3, 4, 8)
    for index in blanks:
        lines.insert(index, "" if index != 4 else "  ")
    body, _ = inf.invoke(model, "\n".join(lines) + "\n", content_type=content_type, accept=content_type)
    out = body.decode().split("\n")
    assert len(out) == len(lines)
    monkeypatch.delenv(BATCH_RECORD_ERRORS_ENV)
    for i, line in enumerate(lines):
        if i in blanks:
            value = json.loads(out[i] if content_type == inf.JSONLINES else next(csv.reader([out[i]]))[0])
            error = record_error_of(value)
            assert error is not None and error["status"] == 400 and error["fields"] == []
            where = f"record {i} (line {i + 1})"
            assert error["message"] == (f"{where}: a blank line is not a record; remove blank lines from the input "
                                        "(each output line answers the input line in its place)")
        else:
            alone, _ = inf.invoke(model, line, content_type=content_type, accept=content_type)
            assert out[i] == alone.decode(), f"output line {i + 1} does not answer input line {i + 1}"


def test_a_mini_batch_of_blank_lines_only_is_answered_line_by_line(trained, in_batch):
    model = inf.model_fn(trained.model_dir)
    body, _ = inf.invoke(model, "\n \n", content_type=inf.JSONLINES, accept=inf.JSONLINES)
    assert [record_error_of(json.loads(line))["fields"] for line in body.decode().split("\n")] == [[], []]


def test_the_monitor_pairs_outputs_with_inputs_holding_blank_lines(trained, in_batch, tmp_path):
    """GIVEN a batch input file with blank lines and the X.out a transform job wrote for it (an error line for each
    blank line) WHEN the drift monitor decodes the pair THEN each record gets its own score (ids and scores as scored
    alone), the blank lines are neither records nor malformed; an X.out written before blank lines had error lines
    (one line fewer per blank line) still pairs."""
    model = inf.model_fn(trained.model_dir)
    records = [dict(r, inference_id=f"row-{i}") for i, r in enumerate(trained.raw_records(9))]
    lines = [json.dumps(r) for r in records]
    for index in (2, 3, 7):
        lines.insert(index, "")
    batch = batch_transform(model, lines, tmp_path / "batch", per_invocation=4, content_type=inf.JSONLINES)
    window = decode_capture(trained, batch)
    assert window.records == len(records) and window.summary()["malformed"]["count"] == 0
    assert window.frame["inference_id"].tolist() == [r["inference_id"] for r in records]
    alone = [json.loads(inf.invoke(model, json.dumps(r), content_type=inf.JSONLINES, accept=inf.JSONLINES)[0])["score"]
             for r in records]
    assert window.frame["score"].tolist() == pytest.approx(alone)
    out = batch / "part-0001.out"
    out.write_text("\n".join(line for line in out.read_text().split("\n") if "blank line" not in line))
    old = decode_capture(trained, batch)
    assert old.frame["inference_id"].tolist() == [r["inference_id"] for r in records]
    assert old.summary()["malformed"]["count"] == 0


@pytest.mark.parametrize("content_type", [inf.JSONLINES, inf.CSV])
def test_the_monitor_pairs_outputs_that_answer_only_some_blank_lines(trained, in_batch, tmp_path, content_type):
    """GIVEN a batch input file with a blank line between records and one ending it, and an X.out holding the error
    line of the first but not of the last (a splitter that hands on blank lines between records but not the empty line
    after the file's last line feed) WHEN the drift monitor decodes the pair THEN each record still gets its own score
    and nothing is malformed (before: neither one line per input line nor one per record, so every line of the file was
    counted malformed, output_mismatch, and the window distrusted)."""
    model = inf.model_fn(trained.model_dir)
    rows = _request_lines(trained, model, content_type, 5)
    lines = [*rows[:2], "", *rows[2:], ""]
    batch = batch_transform(model, lines, tmp_path / "batch", per_invocation=3, content_type=content_type)
    out = batch / "part-0001.out"
    answers = [line for line in out.read_text().split("\n") if line.strip()]
    assert len(answers) == len(lines)
    out.write_text("\n".join(answers[:-1]) + "\n")  # the last blank line's error line never written
    window = decode_capture(trained, batch)
    assert (window.records, window.summary()["malformed"]["count"]) == (len(rows), 0), window.summary()["malformed"]
    scored = decode_capture(trained, batch_transform(model, rows, tmp_path / "alone", per_invocation=5,
                                                     content_type=content_type))
    assert window.frame["score"].tolist() == pytest.approx(scored.frame["score"].tolist())


def test_a_record_holding_a_field_twice_names_that_field_in_its_error_line(trained, in_batch):
    """GIVEN a JSON Lines mini-batch where one record holds a field twice (a gateway in front may have checked the other
    value) WHEN a batch container answers it THEN its error line names that field in `fields`, as every other refusal
    of one field does (before: `"fields": []`, as if the record as a whole were at fault, so the monitor counted it
    under "(record)" and a reader filtering error lines by field missed it), in the 400's words."""
    model = inf.model_fn(trained.model_dir)
    field = model.required_raw_fields[0]
    good = [json.dumps(r) for r in trained.raw_records(2)]
    twice = json.dumps(trained.raw_records(1)[0])[:-1] + f', {json.dumps(field)}: null}}'
    body, _ = inf.invoke(model, "\n".join([good[0], twice, good[1]]), content_type=inf.JSONLINES,
                         accept=inf.JSONLINES)
    error = record_error_of(json.loads(body.decode().split("\n")[1]))
    assert error["fields"] == [field]
    assert error["message"] == (f"record 1 (line 2): field {field!r} is given more than once in one object (JSON "
                                "parsers disagree on which value counts); send each field once")


@pytest.mark.parametrize("content_type", [inf.JSONLINES, inf.CSV])
def test_blank_lines_of_a_mini_batch_cost_their_error_lines_and_no_work_per_line(trained, in_batch, monkeypatch,
                                                                                  content_type):
    """GIVEN two mini-batches of one record among blank lines, 20 and 2,000 of them WHEN a batch container answers
    them THEN each blank line is answered by its exact error line, and the work done for them does not grow with their
    number: no record object, refusal, error dict, JSON or CSV encoding per blank line (before: each of those per line,
    so a mini-batch of a million blank lines - 1 MB - took ~15 s and +1.45 GB, enough at max_payload_mb 6 to run the
    container out of memory)."""
    from pipeline_code.serving import records as serving_records

    model = inf.model_fn(trained.model_dir)
    if content_type == inf.JSONLINES:
        record = json.dumps(dict(trained.raw_records(1)[0], inference_id="row-0"))
    else:
        record = ",".join("" if trained.feature_records(1)[0][f] is None else str(trained.feature_records(1)[0][f])
                          for f in model.feature_order)
    calls: Dict[str, int] = {}

    def counted(owner, name):
        """Count the calls of ``owner.name`` (a class: its instances made)."""
        label, real = name, getattr(owner, name)
        if isinstance(real, type):
            owner, name, real = real, "__init__", real.__init__

        def call(*args, **kwargs):
            calls[label] = calls.get(label, 0) + 1
            return real(*args, **kwargs)
        monkeypatch.setattr(owner, name, call)
    counted(inf, "record_error")
    counted(inf, "_csv_field")
    counted(json, "dumps")
    counted(serving_records, "RecordRefusal")
    counted(serving_records, "Unreadable")

    def answer(blanks: int) -> Tuple[Dict[str, int], str]:
        calls.clear()
        lines = ["" if i % 2 else " " for i in range(blanks)]
        lines.insert(blanks // 2, record)
        body, _ = inf.invoke(model, "\n".join(lines) + "\n", content_type=content_type, accept=content_type)
        out = body.decode().split("\n")
        assert len(out) == len(lines)
        for i, line in enumerate(out):
            if i != blanks // 2:
                value = json.loads(line if content_type == inf.JSONLINES else next(csv.reader([line]))[0])
                assert value == {"error": {"status": 400, "fields": [], "message": (
                    f"record {i} (line {i + 1}): a blank line is not a record; remove blank lines from the input (each "
                    "output line answers the input line in its place)")}}, line
        return dict(calls), out[blanks // 2]

    few, scored = answer(20)
    assert answer(2000) == (few, scored)
    alone, _ = inf.invoke(model, record, content_type=content_type, accept=content_type)
    assert scored == alone.decode()

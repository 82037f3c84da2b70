"""Hostile and out-of-contract requests through the real serving chain: a 4xx naming what to fix, or a
score — never a 500 (which would also count toward the alarm that rolls a release back).

A fixed corpus of the known traps plus a seeded fuzz of 600 mutations of real records (types swapped,
huge and tiny numbers, deep nesting, separators inside values, truncation, junk bytes).
"""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from pipeline_code.serving import inference as inf

CORPUS = [
    ("deep nesting", "[" * 50_000 + "]" * 50_000, inf.JSON, "JSON nested too deeply"),
    ("400-digit integer", None, inf.JSON, "expected a finite number, got an integer of 401 digits"),
    ("beyond float32", None, inf.JSON, "is outside the float32 range the model computes in"),
    ("NaN literal", '[{"x": NaN}]', inf.JSON, None),
    # A NaN in a field is not a missing value (that is null): read as one, a required field would be scored without it
    ("NaN literal in a field", None, inf.JSON, "got nan; a missing value is null (an empty value in CSV)"),
    ("NaN text in a field", None, inf.JSON, "got 'NaN'; a missing value is null (an empty value in CSV)"),
    ("not UTF-8", b"\xff\xfe\x00", inf.JSON, "request body is not UTF-8 text"),
    ("empty", "", inf.JSONLINES, "request body is empty"),
    ("instances not a list", '{"instances": 5}', inf.JSON, "field 'instances' must be a list of records"),
]


@pytest.fixture
def served(trained):
    return inf.model_fn(trained.model_dir)


@pytest.mark.parametrize("name, body, content_type, message", CORPUS, ids=[c[0] for c in CORPUS])
def test_each_known_trap_is_a_4xx_naming_it(trained, served, name, body, content_type, message):
    record = trained.raw_records(1)[0]
    numeric = next(c for c in served.required_raw_fields if trained.dataset.column(c).dtype in ("integer", "double"))
    if name == "400-digit integer":
        body = json.dumps([{**record, numeric: "BIG"}]).replace('"BIG"', "1" + "0" * 400)
    if name == "beyond float32":
        body = json.dumps([{**record, numeric: 1e39}])
    if name == "NaN literal in a field":
        body = json.dumps([{**record, numeric: float("nan")}])  # Python's json writes the NaN literal
    if name == "NaN text in a field":
        body = json.dumps([{**record, numeric: "NaN"}])
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, body, content_type=content_type)
    assert 400 <= caught.value.status_code < 500
    if message:
        assert message in str(caught.value)
        if name.startswith("NaN") and name.endswith("in a field"):
            assert f"field {numeric!r}: expected a number" in str(caught.value)


def test_a_line_separator_inside_a_value_is_part_of_the_value(trained, served):
    """U+2028 is legal inside a JSON string; splitting lines at it cut a valid record in two."""
    records = trained.raw_records(2)
    text = next(c for c, v in records[0].items() if isinstance(v, str))
    records[0][text] = records[0][text] + "\u2028"
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    try:
        out, _ = inf.invoke(served, body, content_type=inf.JSONLINES, accept=inf.JSONLINES)
    except inf.InvocationError as exc:  # the value is then not an allowed category: a 400 naming it, not a parse error
        assert exc.status_code == 400 and "record 0 (line 1)" in str(exc) and "not valid JSON" not in str(exc)
    else:
        assert len(out.decode().split("\n")) == 2


def test_a_huge_value_is_named_in_the_400_not_repeated_whole(trained, served):
    """GIVEN a text field of a megabyte, or a number written with 100,000 digits WHEN scored THEN the 400 names the
    field and shows the value's start and length: the message (and the log line it becomes) stays short."""
    record = trained.raw_records(1)[0]
    numeric = next(c for c in served.required_raw_fields if trained.dataset.column(c).dtype in ("integer", "double"))
    text = next(c for c in served.required_raw_fields if trained.dataset.column(c).dtype == "string")
    for field, value in ((text, "x" * 1_000_000), (numeric, "9" * 100_000)):
        with pytest.raises(inf.InvocationError) as caught:
            inf.invoke(served, json.dumps([{**record, field: value}]), content_type=inf.JSON)
        message = str(caught.value)
        assert caught.value.status_code == 400 and f"field {field!r}: " in message and len(message) < 600, message[:600]
        assert f"{value[:40]!r}... ({len(value)} characters)" in message


def test_a_raw_field_written_with_a_typo_is_named_not_read_as_missing(trained_models):
    """GIVEN a raw record whose optional field's name has a typo (it would be ignored, the value scored as missing)
    WHEN scored THEN a 400 names the key and the field it looks like; a required field's typo is named beside the
    missing field; keys that are no typo of a field (a caller's own id) are still ignored."""
    trained = next(t for t in trained_models.values() if inf.model_fn(t.model_dir).optional_raw_fields)
    served = inf.model_fn(trained.model_dir)
    record = trained.raw_records(1)[0]
    optional, required = served.optional_raw_fields[0], served.required_raw_fields[0]
    typo = dict(record, **{optional[:-1]: record[optional]})
    del typo[optional]
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, json.dumps([typo]), content_type=inf.JSON)
    assert str(caught.value) == (
        f"record 0: field {optional[:-1]!r} is not a field of this model and looks like {optional!r}, which the record "
        "lacks (an optional field left out is scored as missing); correct its name")
    typo = dict(record, **{required + "s": record[required]})
    del typo[required]
    with pytest.raises(inf.InvocationError, match=f"missing required field {required!r}; its {required + 's'!r} looks like "
                                                  f"{required!r} \\(a raw record needs "):
        inf.invoke(served, json.dumps([typo]), content_type=inf.JSON)
    unrelated = dict(record, request_source="mobile-app")  # no typo of the optional field it lacks: ignored
    del unrelated[optional]
    inf.invoke(served, json.dumps([unrelated]), content_type=inf.JSON)


def test_a_precomputed_number_outside_its_columns_declared_range_is_refused(trained_models):
    """GIVEN precomputed features whose numeric feature is its column unchanged WHEN it is above the column's declared
    maximum THEN a 400 names the field and the bound (before: scored, the model never having seen such a value)."""
    for trained in trained_models.values():
        served = inf.model_fn(trained.model_dir)
        dataset = trained.dataset
        bounded = [f for f in served.feature_order if dataset.feature(f).expr.op == "col"
                   and dataset.column(dataset.feature(f).expr.args[0]).maximum is not None]
        if bounded:
            break
    name = bounded[0]
    maximum = dataset.column(dataset.feature(name).expr.args[0]).maximum
    record = dict(trained.feature_records(1)[0], **{name: maximum + 1})
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, json.dumps([record]), content_type=inf.JSON)
    assert str(caught.value) == (f"record 0: field {name!r}: {maximum + 1!r} is above the maximum {maximum:g} "
                                 f"(declared for dataset {dataset.name!r})")


HOSTILE_VALUES = [None, True, "", " ", "1e999", "-1e308", 1e308, -1e-320, 10**30, "٣", "\u2028", "\x00", [], {},
                  {"$ref": 1}, "NaN", "inf", "0x10", "1_000", " 12 ", "１２", 2**63, -(2**63) - 1]


def test_fuzzed_records_are_answered_with_a_score_or_a_4xx(trained, served):
    rng = random.Random(20261202)
    base = trained.raw_records(20)
    statuses = {"scored": 0, "4xx": 0}
    for _ in range(600):
        record = dict(rng.choice(base))
        for _ in range(rng.randint(1, 3)):
            action = rng.random()
            key = rng.choice(list(record))
            if action < 0.6:
                record[key] = rng.choice(HOSTILE_VALUES)
            elif action < 0.8:
                record.pop(key)
            else:
                record[f"x{rng.randint(0, 9)}"] = rng.choice(HOSTILE_VALUES)
        body = json.dumps([record], ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.1:
            body = body[: rng.randint(1, len(body))]  # truncated on the wire
        content_type = rng.choice([inf.JSON, inf.JSONLINES])
        try:
            out, _ = inf.invoke(served, body if content_type == inf.JSON else body[1:-1], content_type=content_type)
        except inf.InvocationError as exc:
            assert 400 <= exc.status_code < 500, (record, exc)
            statuses["4xx"] += 1
        else:
            scores = [p["score"] for p in json.loads(out)["predictions"]]
            assert all(np.isfinite(scores)) and all(0 <= s <= 1 for s in scores), record
            statuses["scored"] += 1
    assert statuses["scored"] > 50 and statuses["4xx"] > 50  # both paths really exercised


def test_a_field_given_twice_in_one_record_is_refused_naming_it(trained, served):
    """GIVEN a record holding one field twice with two values (JSON keeps either: Python's parser the last, others - a
    gateway or WAF that validated the request - the first) WHEN scored THEN a 400 names the field, in a JSON body and
    on its JSON Lines line (before: scored silently with the last value, not the one a validator in front had read)."""
    record = trained.raw_records(1)[0]
    numeric = next(c for c in served.required_raw_fields if trained.dataset.column(c).dtype in ("integer", "double"))
    twice = json.dumps(record)[:-1] + f', "{numeric}": 0}}'
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, f'{{"instances": [{json.dumps(record)}, {twice}]}}', content_type=inf.JSON)
    assert caught.value.status_code == 400 and str(caught.value) == (
        f"record 1: field {numeric!r} is given more than once in one object (JSON parsers disagree on which value "
        "counts); send each field once")
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, json.dumps(record) + "\n" + twice, content_type=inf.JSONLINES)
    assert str(caught.value) == (f"record 1 (line 2): field {numeric!r} is given more than once in one object (JSON "
                                 "parsers disagree on which value counts); send each field once")



def test_a_key_given_twice_inside_a_field_the_model_does_not_read_is_scored_as_before(trained, served):
    """GIVEN a record carrying a field the model does not read (a caller's own metadata, which serving ignores) whose
    object value holds one key twice WHEN scored THEN it is answered as the record without that field is, in a JSON
    body and in JSON Lines: no value the model reads is in doubt (before the fix: a 400 for the whole request, though
    only a record's own fields decide its score)."""
    record = trained.raw_records(1)[0]
    extra = '"caller_meta": {"trace": "a", "trace": "b", "tags": [{"k": 1, "k": 2}]}'
    body = json.dumps(record)[:-1] + ", " + extra + "}"
    expected, _ = inf.invoke(served, json.dumps([record]), content_type=inf.JSON)
    answer, _ = inf.invoke(served, f"[{body}]", content_type=inf.JSON)
    assert answer == expected
    expected, _ = inf.invoke(served, json.dumps(record), content_type=inf.JSONLINES)
    answer, _ = inf.invoke(served, body, content_type=inf.JSONLINES)
    assert answer == expected

@pytest.mark.parametrize("record", ["{}", "[]"], ids=["empty objects", "empty lists"])
def test_the_work_of_a_refused_request_does_not_grow_with_what_the_400_leaves_out(trained, served, monkeypatch, record):
    """GIVEN requests of 10 and then of 2,000 bad records WHEN refused THEN the model's raw fields and serving's
    precomputed-or-raw rule are derived from the catalog no more often for the larger one (once per model, not per
    record) and the 400 names the first 10 problems and counts the
    rest. Before: derived 3 times per record and every message kept, a 3 MB body of a million {} held a worker for
    about 4 minutes and 1 GB, past the endpoint's invocation timeout (a 5xx, which rolls a rollout back)."""
    from pipeline_code import catalog

    calls = {"n": 0}

    def counting(derive):
        def counted(self, *args, **kwargs):
            calls["n"] += 1
            return derive(self, *args, **kwargs)
        return counted

    # The raw fields (85dc2bb), and what tells a precomputed record from a raw one: each walks the whole dataset, so
    # derived per record a million {} to a model of a wide dataset (500 features) held a worker for minutes again.
    for derived_once in ("raw_source_columns", "record_kinds"):
        monkeypatch.setattr(catalog.Dataset, derived_once, counting(getattr(catalog.Dataset, derived_once)))
    served = inf.model_fn(trained.model_dir)
    derived, messages = [], []
    for n in (10, 2000):
        calls["n"] = 0
        with pytest.raises(inf.InvocationError) as caught:
            inf.invoke(served, "[" + ",".join([record] * n) + "]", content_type=inf.JSON)
        derived.append(calls["n"])
        messages.append(str(caught.value))
    assert derived[1] <= derived[0], derived
    # The same problems listed (as many as fit in the 2048 characters of a 400: records.refusal_message), the rest counted.
    shown = messages[0].rsplit(" (+", 1)[0] if messages[0].endswith(" more problems)") else messages[0]
    assert messages[1] == f"{shown} (+{2000 - (shown.count('; record ') + 1)} more problems)"


def test_a_quoted_csv_field_keeps_the_line_break_it_holds(trained, served):
    """GIVEN a CSV record whose quoted numeric feature holds a line break (docs/invocation-contract.md: quote a field that
    holds a line break) WHEN scored THEN the value is read with its line break, so refused as no
    number, naming its record and field (before: the line break was dropped, "1<LF>2" scored as 12, silently); the same
    record without the line break is scored."""
    import re

    from pipeline_code.core.contract import REFUSED_FIELD

    record = trained.feature_records(1)[0]
    numeric = next(f for f in served.feature_order
                   if isinstance(record[f], (int, float)) and not isinstance(record[f], bool))

    def row(value: str) -> str:
        return ",".join(value if f == numeric else "" if record[f] is None else str(record[f])
                        for f in served.feature_order)

    value = str(record[numeric])
    assert len(value) > 1
    assert inf.invoke(served, row(value) + "\n", content_type=inf.CSV, accept=inf.CSV)[1] == inf.CSV
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, row(f'"{value[:1]}\n{value[1:]}"') + "\n", content_type=inf.CSV, accept=inf.CSV)
    read = re.match(REFUSED_FIELD, str(caught.value))
    assert caught.value.status_code == 400 and read and read.group(1, 3) == ("0", numeric), str(caught.value)


def test_csv_the_reader_cannot_read_is_a_400_naming_the_line(trained, served):
    """GIVEN a CSV body with a bare carriage return outside quotes (old Mac line ends, a stray \\r in a value) or a field
    longer than the csv module's limit WHEN scored THEN a 400 names the line and what to fix (before: csv.Error
    escaped the hooks, a 500 that any caller could repeat at will to page people and roll a rollout back)."""
    features = trained.feature_records(2)
    lines = [",".join("" if r[f] is None else str(r[f]) for f in served.feature_order) for r in features]
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, lines[0] + "\n" + lines[1] + "\r" + lines[0], content_type=inf.CSV)
    assert caught.value.status_code == 400 and str(caught.value) == (
        "record 1 (line 2): not readable as CSV: a carriage return (\\r) outside quotes that does not end the line; end each line "
        "with \\n or \\r\\n, and quote a field that holds a line break")
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, lines[0] + "\n" + "x" * 200_000 + lines[1], content_type=inf.CSV)
    assert caught.value.status_code == 400 and str(caught.value) == (
        f"record 1 (line 2): not readable as CSV: a field longer than {csv.field_size_limit()} characters")


@pytest.mark.parametrize("identifier", [{"a": [1, 2]}, ["x"], True],
                         ids=["object", "list", "boolean"])
def test_an_inference_id_that_is_no_text_or_whole_number_is_refused(trained, served, identifier):
    """GIVEN a record whose inference_id is an object, a list, a boolean or a fraction WHEN scored THEN a 400 names the
    field (before: echoed as Python's repr, e.g. "{'a': [1, 2]}", an id no caller sent); text and whole numbers are
    echoed as text."""
    record = trained.raw_records(1)[0]
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, json.dumps([dict(record, inference_id=identifier)]), content_type=inf.JSON)
    assert caught.value.status_code == 400 and str(caught.value) == (
        f"record 0: field 'inference_id': expected text or a whole number, got {type(identifier).__name__} "
        f"{json.dumps(identifier)}")
    for given, echoed in (("crm-9c01", "crm-9c01"), (12345678901234567890, "12345678901234567890")):
        out, _ = inf.invoke(served, json.dumps([dict(record, inference_id=given)]), content_type=inf.JSON)
        assert json.loads(out)["predictions"][0]["inference_id"] == echoed


@pytest.mark.parametrize("written, shown", [("1.5", "1.5"), ("1000.0", "1000.0"), ("1e3", "1000.0")],
                         ids=["fraction", "whole number with a point", "exponent"])
def test_an_inference_id_written_with_a_point_or_exponent_is_refused_saying_how_to_send_it(trained, served, written,
                                                                                             shown):
    """GIVEN a record whose inference_id is a JSON number with a decimal point or an exponent (1000.0: a whole number,
    as a float id column of a data frame writes it) WHEN scored THEN the 400 names the field, the number and the fix
    (text, or a whole number without a point or exponent); before the fix it said 'expected text or a whole number,
    got float 1000.0', refusing a whole number as not one."""
    record = trained.raw_records(1)[0]
    body = json.dumps([dict(record, inference_id="ID")]).replace('"ID"', written)
    with pytest.raises(inf.InvocationError) as caught:
        inf.invoke(served, body, content_type=inf.JSON)
    assert caught.value.status_code == 400 and str(caught.value) == (
        f"record 0: field 'inference_id': got the number {shown}, written with a decimal point or an exponent, which "
        "would not be echoed as sent; send the id as text or as a whole number without a point or exponent")

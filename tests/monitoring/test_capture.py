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
from pipeline_code.monitoring import capture, replay
from tests.support.problem_types import make_spec

LINES = 400


def _spec(problem_type: str):
    if problem_type == BINARY:
        from tests.support.datasets import get_dataset
        from pipeline_code.training.spec import parse_model_spec

        dataset = get_dataset("customer_churn")
        return parse_model_spec({"name": "churn", "dataset": dataset.to_declaration(), "target": "churned",
                                 "features": ["tenure_months", "monthly_charges", "contract_type", "region"],
                                 "sensitive_attribute": "gender", "slices": ["contract_type"]})
    return make_spec(problem_type)


def _valid_lines(spec, rows: int, rng: np.random.Generator) -> list:
    frame = replay.traffic(spec, rows, seed=5, start="2026-01-01", days=2)
    if spec.problem_type == MULTICLASS:
        raw = rng.random((rows, len(spec.classes)))
        outputs = raw / raw.sum(axis=1, keepdims=True)
    elif spec.problem_type == REGRESSION:
        outputs = rng.gamma(2.0, 20.0, rows)
    else:
        outputs = rng.random(rows)
    return replay.capture_lines(spec, frame, outputs)


def _mutate(line: str, rand: random.Random) -> str:
    """One hostile variant of a capture line."""
    event = json.loads(line)
    kind = rand.randrange(12)
    if kind == 0:
        return line[: rand.randrange(1, len(line))]  # truncated
    if kind == 1:
        i = rand.randrange(len(line))
        return line[:i] + rand.choice(["\x00", "\ufffd", "}", "\u2028", "\"", "\\", "ÿ"]) + line[i + 1:]
    if kind == 2:
        event["captureData"] = rand.choice([None, [], 5, "x", {"endpointInput": None}])
    elif kind == 3:
        event["captureData"]["endpointInput"]["data"] = rand.choice([None, 7, [], {"a": 1}, "", "[" * 300 + "]" * 300])
    elif kind == 4:
        event["captureData"]["endpointOutput"]["data"] = rand.choice(
            [None, "", "nan", "1e999", "[" * 300 + "]" * 300, '{"predictions": [{}]}', '{"predictions": 5}',
             '{"label": {"x": 1}}', '{"value": "fast"}', '{"probabilities": {"nope": 1.0}}', "1" + "0" * 400])
    elif kind == 5:
        event["captureData"]["endpointInput"]["encoding"] = "BASE64"  # claims base64, is not
    elif kind == 6:
        del event["captureData"]["endpointOutput"]
    elif kind == 7:
        data = json.loads(event["captureData"]["endpointInput"]["data"])
        key = rand.choice(sorted(data))
        data[key] = rand.choice([10 ** 400, -1e308 * 10, "\u2028", True, [1, 2], {"deep": {"er": 1}}, "x" * 10_000])
        event["captureData"]["endpointInput"]["data"] = json.dumps(data)
    elif kind == 8:
        event["eventMetadata"] = rand.choice([None, 3, {"inferenceTime": "yesterday"}, {"eventId": []}])
    elif kind == 9:
        event["captureData"]["endpointInput"]["observedContentType"] = rand.choice(["text/csv", "image/png", None, 4])
    elif kind == 10:
        return rand.choice(["null", "[]", "42", '"a string"', "{}", "{" * 1000])
    else:
        event["unexpected"] = {"key": [1, 2, 3]}
    return json.dumps(event)


@pytest.mark.parametrize("problem_type", [BINARY, MULTICLASS, REGRESSION])
def test_fuzzed_capture_lines_are_decoded_or_counted_never_a_crash(problem_type, tmp_path):
    spec = _spec(problem_type)
    rand = random.Random(f"capture-fuzz-{problem_type}")
    valid = _valid_lines(spec, LINES, np.random.default_rng(3))
    mutated = [(_mutate(line, rand) if i % 2 else line) for i, line in enumerate(valid)]
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

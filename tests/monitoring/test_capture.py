"""The capture decoder under hostile input: every line is a record or counted and skipped, never a crash.

A seeded fuzz (no extra dependency) of real SageMaker data-capture lines of each problem type's responses:
truncation, junk bytes, swapped types, nesting, huge numbers, separators inside values, base64 claims,
missing and extra keys. The invariant is the issue's: nothing may crash, nothing may be lost — every
non-empty line read is either decoded into exactly one record (one record per request here) or counted
as malformed with a reason.
"""

from __future__ import annotations

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

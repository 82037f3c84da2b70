"""Reading captured traffic back as the drift monitor does, for the serving tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION
from mlops_cli.local import replay
from pipeline_code.monitoring.capture import read_capture
from pipeline_code.serving import inference as inf
from tests.support.problem_types import make_spec


def decode_capture(trained, capture_dir: Path):
    """The captured requests under ``capture_dir`` as the monitor reads them for ``trained``'s model."""
    spec = trained.spec
    categorical = [f for f in spec.frame_features if spec.is_categorical(f)]
    extra = [f for f in spec.frame_features if f not in spec.features]
    return read_capture(str(capture_dir), spec.features, categorical=categorical, extra_columns=extra,
                        dataset=spec.catalog_dataset, problem_type=spec.problem_type, classes=spec.classes)


def batch_transform(model, lines: list, dest: Path, *, per_invocation: int, content_type: str) -> Path:
    """What a batch transform job leaves for ``lines`` (one input file): the records sent ``per_invocation`` at a time
    through the serving hooks (BatchStrategy=MultiRecord; SplitType=Line: each record with the line feed that ends it),
    the input as ``part-0001`` and the answers joined line by line as ``part-0001.out`` (AssembleWith=Line) in the new
    folder ``dest``, which it returns."""
    outputs = []
    for k in range(0, len(lines), per_invocation):
        mini_batch = "".join(f"{line}\n" for line in lines[k:k + per_invocation])
        body, _ = inf.invoke(model, mini_batch, content_type=content_type, accept=content_type)
        outputs.append(body.decode())
    dest.mkdir()
    (dest / "part-0001").write_text("\n".join(lines) + "\n")
    (dest / "part-0001.out").write_text("\n".join(outputs) + "\n")
    return dest


def fuzz_spec(problem_type: str):
    """A model spec of each problem type for the capture fuzz tests (binary: churn with its sensitive attribute)."""
    if problem_type == BINARY:
        from tests.support.datasets import get_dataset
        from pipeline_code.training.spec import parse_model_spec

        dataset = get_dataset("customer_churn")
        return parse_model_spec({"name": "churn", "dataset": dataset.to_declaration(), "target": "churned",
                                 "features": ["tenure_months", "monthly_charges", "contract_type", "region"],
                                 "sensitive_attribute": "gender", "slices": ["contract_type"]})
    return make_spec(problem_type)


def valid_capture_lines(spec, rows: int, rng: np.random.Generator) -> list:
    frame = replay.traffic(spec, rows, seed=5, start="2026-01-01", days=2)
    if spec.problem_type == MULTICLASS:
        raw = rng.random((rows, len(spec.classes)))
        outputs = raw / raw.sum(axis=1, keepdims=True)
    elif spec.problem_type == REGRESSION:
        outputs = rng.gamma(2.0, 20.0, rows)
    else:
        outputs = rng.random(rows)
    return replay.capture_lines(spec, frame, outputs)


def mutate_capture_line(line: str, rand: random.Random) -> str:
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

"""The monitor's decoding of a window of many small capture files: CPU seconds per file.

SageMaker writes a data-capture file per instance every few minutes, so a day of a 4-instance endpoint is about
1,000 small files, each a block (a chunk) of its own: what such a window costs is the reader's fixed cost per
file, not its cost per record. Measured: :func:`capture.read_capture` (the columnar reader, the monitor's
default, each chunk handed to a consumer as the monitor does) over 1,000 files of 10 records each of the churn
model's traffic (4 features, 2 categorical), once with CSV requests (the fast path) and once with JSON requests
(line by line), the median of ``--repeats`` runs of each in this process (CPU time: process_time).

    python bench/small_files_bench.py [--repeats 3] [--files 1000] [--records 10]

-> bench/results/small_files.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _spec():
    from pipeline_code.training.spec import parse_model_spec
    from tests.support.datasets import get_dataset

    dataset = get_dataset("customer_churn")
    return parse_model_spec({"name": "churn", "dataset": dataset.to_declaration(), "target": "churned",
                             "features": ["tenure_months", "monthly_charges", "contract_type", "region"],
                             "sensitive_attribute": "gender", "slices": ["contract_type"]})


def write_window(root: Path, spec, content_type: str, files: int, records: int) -> None:
    from mlops_cli.local import replay

    rows = files * records
    frame = replay.traffic(spec, rows, seed=5, start="2026-01-01", days=2)
    lines = replay.capture_lines(spec, frame, np.random.default_rng(1).random(rows), content_type=content_type)
    root.mkdir(parents=True)
    for f in range(files):
        (root / f"capture-{f:04d}.jsonl").write_text("\n".join(lines[f * records:(f + 1) * records]) + "\n")


def decode(root: Path, spec) -> float:
    from pipeline_code.monitoring import capture

    categorical = [f for f in spec.frame_features if spec.is_categorical(f)]
    extra = [f for f in spec.frame_features if f not in spec.features]
    start = time.process_time()
    window = capture.read_capture(str(root), spec.features, categorical=categorical, extra_columns=extra,
                                  dataset=spec.catalog_dataset, problem_type=spec.problem_type, classes=spec.classes,
                                  consume=lambda chunk: None)
    spent = time.process_time() - start
    assert window.malformed == 0 and window.records == window.lines, window.summary()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--records", type=int, default=10)
    args = parser.parse_args()
    spec = _spec()
    result = {"files": args.files, "records_per_file": args.records, "repeats": args.repeats,
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True).stdout.strip()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, content_type in (("csv_requests", "text/csv"), ("json_requests", "application/json")):
            root = Path(tmp) / name
            write_window(root, spec, content_type, args.files, args.records)
            decode(root, spec)  # imports and first-call costs out of the measurement
            runs = [decode(root, spec) for _ in range(args.repeats)]
            result[name] = {"cpu_s": round(statistics.median(runs), 3), "runs_cpu_s": [round(r, 3) for r in runs],
                            "cpu_ms_per_file": round(1000 * statistics.median(runs) / args.files, 3)}
            print(name, result[name], flush=True)
    out = ROOT / "bench" / "results" / "small_files.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Benchmark: the loop's prepare -> train -> evaluate -> baseline core at 100k and 1M rows.

Each stage runs as its own child process through its real CLI (``python -m
pipeline_code.training.<stage>``), exactly as SageMaker would run it, so its wall time and
its peak resident memory (``ru_maxrss`` of that child, via ``os.wait4``) are measured in
isolation. The input data (curated labels + computed features as parquet) is generated
first, per size, in its own child (reported separately as ``setup``).

Usage (after scripts/bootstrap.sh)::

    python bench/local_run_bench.py [--sizes 100000 1000000] [--num-round 300] [--with-spark] \
        [--model churn] [--config config/mlops-loop.yaml] [--positive-rate 0.2]

``--model`` may be any model of ``--config`` (a dataset without a hand-written simulator is simulated
from its declaration at ``--positive-rate``, e.g. 0.02 for the rare-event fraud model of docs/add-your-own-model.md).

``--with-spark`` also times the full local loop (generate -> Spark ETL -> features ->
prepare -> train -> evaluate -> baseline) once at the smallest size.

Writes bench/results/local_run.json and prints a table. Nothing is asserted: the numbers are
tracked over time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

ROOT = Path(__file__).resolve().parents[1]
MODEL = "churn"
CONFIG = ROOT / "config" / "mlops-loop.yaml"
if str(ROOT) not in sys.path:  # run as `python bench/local_run_bench.py`: the config loader lives at the root
    sys.path.insert(0, str(ROOT))

_SETUP = """
import sys
from mlops_loop.config import load_config
from pipeline_code.features.compute import compute_features
from pipeline_code.features.ingestion.pandas_engine import write_features_parquet
from pipeline_code.sample_data.generate import generate
import os
rows, root, config, model, positive_rate = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
entry = load_config(config).models[model]
dataset = entry.catalog_dataset
# As the local run does: the label follows the model's inputs (sample datasets keep their own simulators).
curated = generate(dataset, rows, seed=7, positive_rate=positive_rate, signal_features=entry.features)
write_features_parquet(compute_features(curated, dataset), os.path.join(root, "features"), dataset)
os.makedirs(os.path.join(root, "labels"), exist_ok=True)
curated.to_parquet(os.path.join(root, "labels", "part-00000.parquet"), index=False)
"""


def measure(cmd: List[str], log_path: Path) -> Dict[str, Any]:
    """Run ``cmd`` as a child; its wall time, exit code and peak RSS (MiB, that child only)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    with open(log_path, "w", encoding="utf-8") as log:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed with {child.returncode}; see {log_path}")
    peak_kib = usage.ru_maxrss  # Linux: KiB
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(peak_kib / 1024, 1)}


def model_spec(config: Path, model: str) -> str:
    """The model's spec as the pipeline hands it to the jobs, through the loader synth uses."""
    from mlops_loop.config import load_config

    return json.dumps(load_config(config).models[model].job_spec())


def bench_size(rows: int, work: Path, num_round: int, config: Path = CONFIG, model: str = MODEL,
               positive_rate: float = 0.2) -> Dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    py = sys.executable
    spec = model_spec(config, model)
    data = work / "data"
    out = work / "out"
    setup = measure([py, "-c", _SETUP, str(rows), str(data), str(config), model, str(positive_rate)], logs / "setup.log")
    stages = {
        "prepare": [py, "-m", "pipeline_code.training.prepare", "--model-spec", spec,
                    "--features-dir", str(data / "features"), "--labels-dir", str(data / "labels"),
                    "--frozen-test-dir", str(work / "frozen-none"), "--output-dir", str(out / "prepared")],
        "train": [py, "-m", "pipeline_code.training.train", "--model-spec", spec,
                  "--train-dir", str(out / "prepared" / "train"), "--validation-dir", str(out / "prepared" / "validation"),
                  "--model-dir", str(out / "model"), "--checkpoint-dir", str(out / "checkpoints"),
                  "--num-round", str(num_round)],
        "evaluate": [py, "-m", "pipeline_code.training.evaluate", "--model-spec", spec, "--model-dir", str(out / "model"),
                     "--test-dir", str(out / "prepared" / "test"), "--champion-dir", "", "--output-dir", str(out / "evaluation")],
        "baseline": [py, "-m", "pipeline_code.training.baseline", "--model-spec", spec, "--model-dir", str(out / "model"),
                     "--train-dir", str(out / "prepared" / "train"), "--validation-dir", str(out / "prepared" / "validation"),
                     "--output-dir", str(out / "baseline")],
    }  # fmt: skip
    results = {name: measure(cmd, logs / f"{name}.log") for name, cmd in stages.items()}
    summary = json.loads((out / "prepared" / "summary" / "prepare.json").read_text())
    evaluation = json.loads((out / "evaluation" / "evaluation.json").read_text())
    metadata = json.loads((out / "model" / "feature_metadata.json").read_text())
    return {
        "rows": rows,
        "setup": setup,
        "stages": results,
        "core_wall_s": round(sum(r["wall_s"] for r in results.values()), 2),
        "core_peak_rss_mib": max(r["peak_rss_mib"] for r in results.values()),
        "input_bytes": {
            "features": sum(f.stat().st_size for f in (data / "features").rglob("*.parquet")),
            "labels": sum(f.stat().st_size for f in (data / "labels").rglob("*.parquet")),
        },
        "splits": {k: v["rows"] for k, v in summary["splits"].items()},
        "rounds_kept": metadata["training"]["rounds_kept"],
        # The model's primary metric on the frozen test set (AUC for a binary model, as before problem types).
        "test_metric": evaluation.get("primary_metric", "auc"),
        "test_value": round(evaluation["challenger"]["metrics"][evaluation.get("primary_metric", "auc")], 4),
    }


def bench_full_loop(rows: int, work: Path, config: Path = CONFIG, model: str = MODEL, positive_rate: float = 0.2
                    ) -> Dict[str, Any]:
    """The whole local loop (with Spark) once; stage timings from its run record."""
    result = measure(
        [sys.executable, "-m", "mlops_cli.local.run_loop", "--workdir", str(work), "--rows", str(rows), "--model", model,
         "--config", str(config), "--positive-rate", str(positive_rate)],
        work.parent / f"full-loop-{rows}.log",
    )
    runs = [json.loads(line) for line in (work / "registry" / "runs.jsonl").read_text().splitlines()]
    return {"rows": rows, **result, "stage_wall_s": runs[-1]["timings_s"], "note": "peak RSS is the Python driver; Spark's JVM is a grandchild and not included"}


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--num-round", type=int, default=300, help="training rounds (early stopping may keep fewer)")
    parser.add_argument("--with-spark", action="store_true", help="also time the full local loop at the smallest size")
    parser.add_argument("--keep", action="store_true", help="keep the generated data and outputs")
    parser.add_argument("--model", default=MODEL, help="model of --config to run (default %(default)s)")
    parser.add_argument("--config", type=Path, default=CONFIG, help="configuration file (default config/mlops-loop.yaml)")
    parser.add_argument("--positive-rate", type=float, default=0.2,
                        help="positive share for a dataset simulated from its declaration (default 0.2)")
    args = parser.parse_args(argv)

    work_root = Path(tempfile.mkdtemp(prefix="mlops-loop-bench-"))
    result: Dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "model": args.model,
        "positive_rate": args.positive_rate,
        "num_round": args.num_round,
        "sizes": {},
    }
    try:
        for rows in args.sizes:
            result["sizes"][str(rows)] = bench_size(rows, work_root / str(rows), args.num_round, args.config, args.model,
                                                    args.positive_rate)
            print_size(result["sizes"][str(rows)])
        if args.with_spark:
            result["full_loop"] = bench_full_loop(min(args.sizes), work_root / "full-loop", args.config, args.model,
                                                  args.positive_rate)
            print(f"full local loop at {min(args.sizes)} rows (Spark ETL included): {result['full_loop']['wall_s']} s; "
                  f"stages {result['full_loop']['stage_wall_s']}")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(work_root, ignore_errors=True)
    if len(args.sizes) >= 2:
        small, large = (result["sizes"][str(n)] for n in (min(args.sizes), max(args.sizes)))
        factor = max(args.sizes) / min(args.sizes)
        result["scaling"] = {
            "rows_factor": factor,
            "core_wall_factor": round(large["core_wall_s"] / small["core_wall_s"], 2),
            "core_peak_rss_factor": round(large["core_peak_rss_mib"] / small["core_peak_rss_mib"], 2),
            "per_stage_peak_rss_factor": {
                k: round(large["stages"][k]["peak_rss_mib"] / small["stages"][k]["peak_rss_mib"], 2) for k in small["stages"]
            },
        }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = "local_run.json" if args.model == MODEL else f"local_run_{args.model}.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / name}")
    return 0


def print_size(entry: Dict[str, Any]) -> None:
    print(f"\n{entry['rows']:>9} rows (train/validation/test {entry['splits']}, {entry['rounds_kept']} rounds kept, test {entry['test_metric']} {entry['test_value']})")
    print(f"  {'stage':<10} {'wall s':>8} {'peak RSS MiB':>13}")
    print(f"  {'setup':<10} {entry['setup']['wall_s']:>8} {entry['setup']['peak_rss_mib']:>13}   (data generation, not part of the loop)")
    for name, r in entry["stages"].items():
        print(f"  {name:<10} {r['wall_s']:>8} {r['peak_rss_mib']:>13}")
    print(f"  {'core':<10} {entry['core_wall_s']:>8} {entry['core_peak_rss_mib']:>13}   (sum of wall; max of peaks)")


if __name__ == "__main__":
    sys.exit(main())

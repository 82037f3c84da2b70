"""XGBoost and the PyTorch network on the same data: local training and evaluation time, peak memory, test AUC.

For each size (default 100k and 1M generated records of the sample config's first binary model's dataset), the
records are generated, their features computed and prepared (time split, frozen test set) once; then each
framework's training job (its ``main``, default hyperparameters, on the CPU) and the evaluation job (no
champion) run in their own spawned child, whose ``VmHWM`` is the peak memory. The evaluation scores the model
on the test split and computes its attributions (TreeSHAP for trees, sampled Shapley values for the network).

    python bench/framework_bench.py [--rows 100000 1000000]   -> bench/results/frameworks.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child(job: str, argv: list, queue: "mp.Queue") -> None:
    import contextlib
    import io

    if job == "xgboost":
        from pipeline_code.training.train import main
    elif job == "pytorch":
        from pipeline_code.training.train_torch import main
    else:
        from pipeline_code.training.evaluate import main
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    queue.put({"exit_code": code, "wall_s": round(time.perf_counter() - started, 2), "peak_mb": round(_peak_mb(), 1)})


def _run(job: str, argv: list) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(job, argv, queue))
    process.start()
    result = queue.get()
    process.join()
    if result["exit_code"]:
        raise SystemExit(f"{job} failed with exit code {result['exit_code']}")
    return result


def _spec():
    from mlops_loop.config import load_config
    from pipeline_code.core import problem
    from pipeline_code.training.spec import parse_model_spec

    config = load_config(ROOT / "config" / "mlops-loop.yaml")
    for name in next(iter(config.environments.values())).models:
        if config.models[name].problem_type == problem.BINARY:
            return parse_model_spec(config.models[name].job_spec())
    raise SystemExit("no binary model in the config's first environment")


def _prepare(spec, rows: int, root: Path) -> dict:
    from pipeline_code.features.compute import compute_features
    from pipeline_code.features.ingestion.pandas_engine import write_features_parquet
    from pipeline_code.sample_data.generate import generate
    from pipeline_code.training import prepare

    dataset = spec.catalog_dataset
    curated = generate(dataset, rows, seed=11, signal_features=spec.features)
    write_features_parquet(compute_features(curated, dataset), str(root / "features"), dataset)
    (root / "labels").mkdir(parents=True)
    curated.to_parquet(root / "labels" / "part-00000.parquet", index=False)
    code = prepare.main(["--model-spec", spec.to_json(), "--features-dir", str(root / "features"), "--labels-dir",
                         str(root / "labels"), "--frozen-test-dir", str(root / "frozen"), "--output-dir", str(root / "prepared")])
    if code:
        raise SystemExit(f"prepare failed with exit code {code}")
    return {split: str(root / "prepared" / split) for split in ("train", "validation", "test")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "frameworks.json"))
    args = parser.parse_args(argv)
    spec = _spec()
    results = {"model": spec.name, "dataset": spec.dataset, "cpus": os.cpu_count(), "sizes": {}}
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="framework-bench-") as scratch:
            root = Path(scratch)
            started = time.perf_counter()
            splits = _prepare(spec, rows, root)
            entry = {"prepare_s": round(time.perf_counter() - started, 1)}
            for framework in ("xgboost", "pytorch"):
                model_dir = root / framework
                train = _run(framework, ["--model-spec", spec.to_json(), "--train-dir", splits["train"], "--validation-dir",
                                         splits["validation"], "--model-dir", str(model_dir), "--checkpoint-dir",
                                         str(root / f"{framework}-checkpoints")])
                evaluation = _run("evaluate", ["--model-spec", spec.to_json(), "--model-dir", str(model_dir), "--test-dir",
                                               splits["test"], "--champion-dir", "", "--output-dir", str(root / f"{framework}-eval")])
                report = json.loads((root / f"{framework}-eval" / "evaluation.json").read_text())
                entry[framework] = {
                    "train": train,
                    "evaluate": evaluation,
                    "test_auc": round(report["challenger"]["metrics"]["auc"], 4),
                    "model": {k: v for k, v in report["challenger"]["model_info"].items() if k in ("rounds", "parameters")},
                }
                print(rows, framework, json.dumps(entry[framework]), flush=True)
            results["sizes"][str(rows)] = entry
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

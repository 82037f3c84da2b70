"""The monitor on 1M captured rows x 20 features (14 numeric, 6 categorical): wall time + peak RSS.

Each measurement runs in its own spawned child process; peak memory is that child's
``VmHWM``. Measured:

* ``monitor_full``: decode 1M SageMaker data-capture lines (CSV requests + scores) with
  :func:`capture.read_capture` (the columnar reader) into the monitor's :class:`WindowPass` - counts for
  data drift (PSI with calibrated thresholds + binned KS / chi-square), prediction drift and data quality,
  and the row sample - then decide each section against baselines computed from 200k reference rows (read
  from JSON, as the job reads them);
  (the median of three runs; ``monitor_full_runs_wall_s`` has all three);
* ``decode_only``: the same decoding with nothing consuming the records (median of three, alternating with
  the runs above), the yardstick for the monitor's own cost on a machine whose speed varies;
* ``decode_only_json``: the same records captured as JSON requests (one object of the 20 features each, a CSV
  score), decoded with nothing consuming them (median of three, wall and CPU); ``python bench/monitor_bench.py
  --json`` measures only this;
* ``monitor_full_10m``: the same on 10M lines (the 1M file read ten times); ``peak_10m_over_1m`` is the
  ratio of the two peaks (the target: within 10 %, memory does not grow with the window);
* ``monitor_drift_only``: the drift + quality computation on an in-memory 1M-row frame;
* ``scipy_reference``: ``scipy.stats.ks_2samp`` per numeric feature (200k baseline sample vs
  the 1M window) + ``chi2_contingency`` per categorical, on the same in-memory data.

-> bench/results/monitor.json
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import tempfile
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROWS, BASE_ROWS, NUM, CAT = 1_000_000, 200_000, 14, 6
LEVELS = ["a", "b", "c", "d", "e"]


def frame(n, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    cols = {f"x{i}": rng.normal(shift * (i % 3 == 0), 1.0, n) for i in range(NUM)}
    for j in range(CAT):
        cols[f"c{j}"] = rng.choice(LEVELS, n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    return pd.DataFrame(cols)


def baseline_docs(base):
    from pipeline_code.training.baseline import categorical_statistics, numeric_statistics
    stats, cons = {}, {}
    for c in base.columns:
        if c.startswith("x"):
            s = numeric_statistics(base[c].to_numpy())
            cons[c] = {"kind": "numeric", "min": s["min"], "max": s["max"], "integral": False, "completeness": 1.0}
        else:
            s = categorical_statistics(base[c], LEVELS)
            cons[c] = {"kind": "categorical", "allowed": LEVELS, "completeness": 1.0}
        stats[c] = s
    return {"features": stats}, {"features": cons}


def peak_mb():
    """This process's peak resident memory (VmHWM). Not ``ru_maxrss``: Linux keeps that across exec, so a spawned
    child would report the parent's peak when it was larger."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


CAPTURE = os.path.join(tempfile.gettempdir(), "monitor-bench-capture")


def write_capture():
    """1M data-capture lines (CSV requests, CSV score), the drifted window of :func:`ours`."""
    win = frame(ROWS, 2, 0.05)
    scores = np.random.default_rng(9).beta(2, 5, ROWS)
    csv_lines = win.to_csv(header=False, index=False, float_format="%.5g").splitlines()
    os.makedirs(CAPTURE, exist_ok=True)
    with open(os.path.join(CAPTURE, "capture.jsonl"), "w") as handle:
        for i, (line, sc) in enumerate(zip(csv_lines, scores)):
            handle.write('{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"%s",'
                         '"encoding":"CSV"},"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":"%.5f",'
                         '"encoding":"CSV"}},"eventMetadata":{"eventId":"e%d","inferenceId":"i%d","inferenceTime":'
                         '"2026-05-01T00:00:00Z"},"eventVersion":"0"}\n' % (line, sc, i, i))
    return os.path.getsize(os.path.join(CAPTURE, "capture.jsonl"))


CAPTURE_JSON = os.path.join(tempfile.gettempdir(), "monitor-bench-capture-json")


def write_json_capture():
    """The window of :func:`write_capture` with each request a JSON object (as a client sends one record)."""
    win = frame(ROWS, 2, 0.05)
    scores = np.random.default_rng(9).beta(2, 5, ROWS)
    keys = [json.dumps(json.dumps(c) + ": ")[1:-1] for c in win.columns]  # escaped once more: the request is text
    columns = [win[c].map(repr).tolist() if c.startswith("x") else [json.dumps(json.dumps(v))[1:-1] for v in win[c]]
               for c in win.columns]
    os.makedirs(CAPTURE_JSON, exist_ok=True)
    with open(os.path.join(CAPTURE_JSON, "capture.jsonl"), "w") as handle:
        for i, (values, sc) in enumerate(zip(zip(*columns), scores)):
            request = "{" + ", ".join(k + v for k, v in zip(keys, values)) + "}"
            handle.write('{"captureData":{"endpointInput":{"observedContentType":"application/json","mode":"INPUT","data":"%s",'
                         '"encoding":"JSON"},"endpointOutput":{"observedContentType":"text/csv","mode":"OUTPUT","data":"%.5f",'
                         '"encoding":"CSV"}},"eventMetadata":{"eventId":"e%d","inferenceId":"i%d","inferenceTime":'
                         '"2026-05-01T00:00:00Z"},"eventVersion":"0"}\n' % (request, sc, i, i))
    return os.path.getsize(os.path.join(CAPTURE_JSON, "capture.jsonl"))


BASELINE = os.path.join(tempfile.gettempdir(), "monitor-bench-baseline.json")


def write_baseline():
    """The baseline documents of 200k reference rows, written once so the monitor child only reads them (as the
    monitor job does)."""
    from pipeline_code.training.baseline import bin_counts, quantile_edges
    st, co = baseline_docs(frame(BASE_ROWS, 1))
    ref_scores = np.random.default_rng(8).beta(2, 5, BASE_ROWS)
    edges = quantile_edges(ref_scores)
    st["prediction"] = {"histogram": {"bin_edges": edges, "counts": bin_counts(ref_scores, edges)}}
    Path(BASELINE).write_text(json.dumps({"statistics": st, "constraints": co}))


def full(q, copies=1):
    """The monitor's path: capture decoded chunk by chunk into a :class:`WindowPass` (counts + a row sample), then
    the three sections decide on the counts. ``copies``: the capture file read that many times (hard links), so
    ``copies=10`` is a 10M-line window without 4.5 GB more on disk."""
    from pipeline_code.monitoring import capture, drift
    from pipeline_code.monitoring.window_pass import WindowPass

    docs = json.loads(Path(BASELINE).read_text())
    st, co = docs["statistics"], docs["constraints"]
    root = CAPTURE
    if copies > 1:
        root = tempfile.mkdtemp(prefix="monitor-bench-copies-")
        for i in range(copies):
            os.link(os.path.join(CAPTURE, "capture.jsonl"), os.path.join(root, f"capture-{i}.jsonl"))
    start_rss = peak_mb()
    t = time.perf_counter()
    window_pass = WindowPass(problem_type="binary_classification", statistics=st, constraints=co)
    w = capture.read_capture(root, list(st["features"]), categorical=[c for c in st["features"] if c.startswith("c")],
                             consume=window_pass)
    decode = time.perf_counter() - t
    d = drift.data_drift(window_pass.stats, st, window_sample=window_pass.sample.frame())
    drift.prediction_drift(window_pass.stats.prediction, st)
    drift.data_quality(window_pass.stats, co, type_violations=w.type_violations)
    wall = time.perf_counter() - t
    if copies > 1:
        for name in os.listdir(root):
            os.unlink(os.path.join(root, name))
        os.rmdir(root)
    q.put({"wall_s": wall, "decode_s": decode, "records": w.records, "malformed": w.malformed, "drifted": d["drifted_features"],
           "rss_before_mb": start_rss, "peak_rss_mb": peak_mb()})


def full_10m(q):
    full(q, copies=10)


def decode_only(q):
    """The same decoding with nothing consuming the records: what the monitor's own work is measured against
    (this machine's speed varies from hour to hour; the two move together)."""
    from pipeline_code.monitoring import capture

    docs = json.loads(Path(BASELINE).read_text())
    st = docs["statistics"]
    t = time.perf_counter()
    capture.read_capture(CAPTURE, list(st["features"]), categorical=[c for c in st["features"] if c.startswith("c")],
                         consume=lambda chunk: None)
    q.put({"wall_s": time.perf_counter() - t, "peak_rss_mb": peak_mb()})


def decode_only_json(q):
    """:func:`decode_only` on the JSON-request capture (:func:`write_json_capture`)."""
    from pipeline_code.monitoring import capture

    docs = json.loads(Path(BASELINE).read_text())
    st = docs["statistics"]
    t, cpu = time.perf_counter(), time.process_time()
    w = capture.read_capture(CAPTURE_JSON, list(st["features"]), categorical=[c for c in st["features"] if c.startswith("c")],
                             consume=lambda chunk: None)
    q.put({"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - cpu, "records": w.records,
           "malformed": w.malformed, "peak_rss_mb": peak_mb()})


def json_runs():
    """``decode_only_json`` three times, the median by wall time first, then all three."""
    runs = sorted((child(decode_only_json) for _ in range(3)), key=lambda r: r["wall_s"])
    return runs[1], runs


def ours(q):
    from pipeline_code.monitoring import drift
    base, win = frame(BASE_ROWS, 1), frame(ROWS, 2, 0.05)
    st, co = baseline_docs(base)
    del base
    t = time.perf_counter()
    d = drift.data_drift(win, st)
    drift.data_quality(win, co)
    wall = time.perf_counter() - t
    q.put({"wall_s": wall, "drifted": d["drifted_features"], "peak_rss_mb": peak_mb()})


def reference(q):
    from scipy import stats
    base, win = frame(BASE_ROWS, 1), frame(ROWS, 2, 0.05)
    t = time.perf_counter()
    for c in base.columns:
        if c.startswith("x"):
            stats.ks_2samp(base[c].to_numpy(), win[c].to_numpy())
        else:
            table = np.array([[int((base[c] == l).sum()) for l in LEVELS], [int((win[c] == l).sum()) for l in LEVELS]])
            stats.chi2_contingency(table)
    q.put({"wall_s": time.perf_counter() - t, "peak_rss_mb": peak_mb()})


def child(target):
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=target, args=(q,))
    p.start()
    out = q.get()
    p.join()
    return out


def main():
    if "--json" in sys.argv[1:]:  # the JSON-request decoding only
        json_size = write_json_capture()
        write_baseline()
        median, runs = json_runs()
        print(json.dumps({"rows": ROWS, "capture_json_bytes": json_size, "decode_only_json": median,
                          "decode_only_json_runs": runs}, indent=2))
        return
    t = time.perf_counter()
    size = write_capture()
    json_size = write_json_capture()
    write_baseline()
    written = time.perf_counter() - t
    # The 1M run three times, the median reported (this machine's speed varies by a quarter from hour to hour).
    runs, bare = [], []
    for _ in range(3):  # alternating, so machine noise hits both alike
        runs.append(child(full))
        bare.append(child(decode_only))
    runs.sort(key=lambda r: r["wall_s"])
    bare.sort(key=lambda r: r["wall_s"])
    json_median, json_all = json_runs()
    f, f10, a, b = runs[1], child(full_10m), child(ours), child(reference)
    out = {"rows": ROWS, "features": NUM + CAT, "baseline_rows": BASE_ROWS, "capture_bytes": size, "capture_write_s": written,
           "monitor_full": f, "monitor_full_runs_wall_s": [r["wall_s"] for r in runs],
           "decode_only": bare[1], "decode_only_runs_wall_s": [r["wall_s"] for r in bare],
           "capture_json_bytes": json_size, "decode_only_json": json_median,
           "decode_only_json_runs_wall_s": [r["wall_s"] for r in json_all],
           "monitor_over_decode_only": f["wall_s"] / bare[1]["wall_s"], "monitor_full_10m": f10,
           "peak_10m_over_1m": f10["peak_rss_mb"] / f["peak_rss_mb"],
           "monitor_drift_only": a, "scipy_reference": b,
           "ratio_drift_only_over_scipy": a["wall_s"] / b["wall_s"],
           "ratio_full_over_scipy": f["wall_s"] / b["wall_s"],
           "note": "monitor_full: the child reads the baseline documents and decodes the capture file (rss_before_mb: "
                   "after imports and reading the baseline); monitor_drift_only and scipy_reference: peak RSS includes "
                   "generating the synthetic data in the child; scipy covers the tests only (no PSI, quality, decoding)"}
    print(json.dumps(out, indent=2))
    (Path(__file__).parent / "results").mkdir(exist_ok=True)
    (Path(__file__).parent / "results" / "monitor.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

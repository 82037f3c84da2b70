"""The window's counts (pipeline_code.monitoring.window_stats): a window counted chunk by chunk decides drift and
data quality exactly as the whole window at once, and the row sample is a bounded, seeded, uniform sample."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterator, List, Sequence

import numpy as np
import pandas as pd
import pytest

from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION
from pipeline_code.monitoring import drift, window_stats
from pipeline_code.monitoring.window_stats import ColumnCounts, PredictionCounts, RowSample, WindowStats
from pipeline_code.training.baseline import (OTHER_LEVEL, bin_counts, categorical_statistics, numeric_statistics,
                                             quantile_edges)

TEXT = pd.StringDtype("pyarrow")
CHANNELS = ["web", "app", "store"]
PLANS = ["basic", "plus"]
NUMERIC = ["amount", "ratio", "visits", "sparse", "absent"]
CATEGORICAL = ["channel", "plan"]
CLASSES = ["bronze", "silver", "gold"]
PROBABILITIES = [f"proba:{c}" for c in CLASSES]


def chunks(frame: Any, size: int) -> Iterator[Any]:
    """``frame`` (a frame or a series) cut into consecutive chunks of ``size`` records."""
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def reference_bins(values: Any, edges: Sequence[float]) -> List[int]:
    """Bin counts by a binary search per value (the definition :func:`bin_counts` must match)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return np.bincount(np.searchsorted(np.asarray(edges, dtype=np.float64), v, side="right"),
                       minlength=len(edges) + 1).tolist()


def baseline_docs(seed: int) -> Dict[str, Dict[str, Any]]:
    """statistics.json / constraints.json of a generated training frame, written as the baseline job writes them
    (its per-feature functions; binary score histogram on the training scores' quantile cut points)."""
    rng = np.random.default_rng(seed)
    n = 4000
    train = {
        "amount": rng.gamma(2.0, 10.0, n),
        "ratio": rng.normal(0.0, 1.0, n),
        "visits": rng.integers(0, 20, n).astype(np.float64),
        "sparse": rng.normal(5.0, 1.0, n),
        "absent": rng.normal(0.0, 1.0, n),
        "channel": rng.choice(CHANNELS, n, p=[0.5, 0.3, 0.2]).astype(object),
        "plan": rng.choice(PLANS, n).astype(object),
    }
    train["amount"][rng.random(n) < 0.05] = np.nan
    train["channel"][rng.random(n) < 0.02] = None
    features, constraints = {}, {}
    for name in NUMERIC:
        entry = numeric_statistics(train[name])
        features[name] = {**entry, "role": "input"}
        constraints[name] = {"kind": "numeric", "min": entry["min"], "max": entry["max"], "integral": name == "visits",
                             "completeness": 1.0 - entry["missing_rate"]}
    for name, levels in (("channel", CHANNELS), ("plan", PLANS)):
        entry = categorical_statistics(train[name], levels)
        features[name] = {**entry, "role": "input"}
        constraints[name] = {"kind": "categorical", "allowed": list(levels), "completeness": 1.0 - entry["missing_rate"]}
    scores = rng.beta(2.0, 5.0, n)
    edges = quantile_edges(scores)
    counts = bin_counts(scores, edges)
    statistics = {"model": "m", "rows": n, "features": features,
                  "prediction": {"mean": float(scores.mean()), "threshold": 0.5,
                                 "positive_rate_at_threshold": float((scores >= 0.5).mean()),
                                 "histogram": {"bin_edges": edges, "counts": counts}}}
    return {"statistics": statistics, "constraints": {"model": "m", "rows": n, "features": constraints}}


def window_frame(statistics: Dict[str, Any], seed: int, n: int = 1500) -> pd.DataFrame:
    """A traffic window that is hard to count: NaN, infinities and values exactly on the cut points in number
    columns, unseen levels and missing values in text columns (Arrow strings and objects), out-of-range and
    non-integer values, a feature with too few values, a baseline feature the traffic lacks, binary scores with
    NaN."""
    rng = np.random.default_rng(seed)
    features = statistics["features"]

    def on_edges(values: np.ndarray, name: str, share: float) -> np.ndarray:
        edges = features[name]["histogram"]["bin_edges"]
        hit = rng.random(n) < share
        values[hit] = rng.choice(edges, int(hit.sum()))
        return values

    amount = on_edges(rng.gamma(2.0, 12.0, n), "amount", 0.1)
    amount[rng.random(n) < 0.08] = np.nan
    amount[rng.choice(n, 5, replace=False)] = np.inf
    amount[rng.choice(n, 3, replace=False)] = -np.inf
    ratio = on_edges(rng.normal(0.3, 1.2, n), "ratio", 0.1)
    ratio[rng.random(n) < 0.03] = np.nan
    visits = rng.integers(0, 26, n).astype(np.float64)  # 20..25: above the training maximum
    visits[rng.random(n) < 0.05] += 0.5  # non-integers
    visits[rng.random(n) < 0.05] = np.nan
    sparse = np.full(n, np.nan)
    sparse[rng.choice(n, 50, replace=False)] = rng.normal(5.0, 1.0, 50)  # fewer than min_rows values
    channel = rng.choice(CHANNELS + ["kiosk", "phone"], n, p=[0.4, 0.25, 0.2, 0.1, 0.05]).astype(object)
    channel[rng.random(n) < 0.07] = None
    plan = rng.choice(PLANS + ["gold", "legacy"], n, p=[0.45, 0.45, 0.07, 0.03]).astype(object)
    plan[rng.random(n) < 0.04] = None
    score = rng.beta(2.2, 5.0, n)
    score[rng.random(n) < 0.05] = np.nan
    score[rng.choice(n, 10, replace=False)] = rng.choice(statistics["prediction"]["histogram"]["bin_edges"], 10)
    return pd.DataFrame({
        "amount": amount, "ratio": ratio, "visits": visits, "sparse": sparse,
        "channel": pd.Series(channel, dtype=TEXT), "plan": pd.Series(plan, dtype=object),
        "inference_id": pd.Series([f"r{i}" for i in range(n)], dtype=TEXT), "score": score,
    })


def counted_in_chunks(frame: pd.DataFrame, size: int, docs: Dict[str, Dict[str, Any]]) -> WindowStats:
    stats = WindowStats(docs["statistics"], docs["constraints"], problem_type=BINARY)
    for chunk in chunks(frame, size):
        stats.add(chunk)
    return stats


def pop_means(section: Dict[str, Any]) -> Dict[str, float]:
    """The per-feature window means (sums, re-ordered by chunking), taken out of a data-drift section."""
    return {name: entry.pop("window_mean") for name, entry in section["features"].items() if "window_mean" in entry}


@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")  # inf + -inf: a NaN mean
@pytest.mark.parametrize("size", [1, 7, 1000])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_window_counted_in_chunks_drifts_exactly_as_the_whole_window(seed, size):
    # GIVEN baselines and a window full of edge cases
    docs = baseline_docs(seed)
    statistics = docs["statistics"]
    frame = window_frame(statistics, seed + 10, n=1500 if size > 1 else 200)
    # WHEN the window is counted chunk by chunk (one WindowStats for drift, quality and predictions, as the monitor
    # does) and, for reference, given whole to the checks
    stats = counted_in_chunks(frame, size, docs)
    whole, chunked = drift.data_drift(frame, statistics), drift.data_drift(stats, statistics)
    # THEN every decision is the same: PSI, bins, calibration, status, unseen values, tests - exactly; the means
    # (sums in another order) to 1e-12
    whole_means, chunked_means = pop_means(whole), pop_means(chunked)
    assert set(chunked_means) == {"amount", "ratio", "visits"}
    assert math.isnan(whole_means.pop("amount")) and math.isnan(chunked_means.pop("amount"))  # +inf and -inf
    assert chunked_means == pytest.approx(whole_means, rel=1e-12, abs=0)
    assert chunked == whole
    # AND the counts are the window's (not only alike): bins by binary search, levels by pandas
    features = chunked["features"]
    for name in ("amount", "ratio", "visits"):
        assert features[name]["bins"]["window"] == reference_bins(frame[name], statistics["features"][name]["histogram"]["bin_edges"])
    assert chunked_means["ratio"] == pytest.approx(float(np.nanmean(frame["ratio"])), rel=1e-12)
    channel = frame["channel"].dropna().astype(str).value_counts()
    assert features["channel"]["bins"]["levels"] == [*CHANNELS, OTHER_LEVEL]
    assert features["channel"]["bins"]["window"] == [int(channel.get(c, 0)) for c in CHANNELS] + [int(channel["kiosk"] + channel["phone"])]
    assert features["channel"]["unseen"] == {"kiosk": int(channel["kiosk"]), "phone": int(channel["phone"])}
    assert features["sparse"]["status"] == "skipped" and features["sparse"]["detail"] == "50 values < min_rows 100"
    assert features["absent"] == {"kind": "numeric", "role": "input", "psi_threshold": 0.1, "status": "skipped",
                                  "detail": "no values in the window"}


@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")  # inf + -inf: a NaN mean
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_a_window_counted_in_chunks_has_the_data_quality_of_the_whole_window(size):
    docs = baseline_docs(2)
    constraints = docs["constraints"]
    frame = window_frame(docs["statistics"], 12, n=1500 if size > 1 else 200)
    stats = counted_in_chunks(frame, size, docs)
    whole, chunked = drift.data_quality(frame, constraints), drift.data_quality(stats, constraints)
    assert chunked == whole
    # the counts are the window's: missing values, range and integrality violations, unseen values
    features = chunked["features"]
    visits = frame["visits"].dropna()
    assert features["visits"]["missing_rate"] == frame["visits"].isna().sum() / len(frame)
    assert features["visits"]["out_of_range"] == int((visits > constraints["features"]["visits"]["max"]).sum()) > 0
    assert features["visits"]["non_integer"] == int((visits % 1 != 0).sum()) > 0
    assert features["amount"]["out_of_range"] == int((frame["amount"] > constraints["features"]["amount"]["max"]).sum()
                                                     + (frame["amount"] < constraints["features"]["amount"]["min"]).sum())
    plan = frame["plan"].dropna()
    assert features["plan"]["unseen_rate"] == (~plan.isin(PLANS)).sum() / len(plan)
    assert features["plan"]["unseen"] == plan[~plan.isin(PLANS)].value_counts().to_dict()
    assert features["absent"] == {"status": "skipped", "detail": "not sent in the requests"}


@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")  # inf + -inf: a NaN mean
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_binary_scores_counted_in_chunks_drift_exactly_as_the_whole_window(size):
    docs = baseline_docs(3)
    statistics = docs["statistics"]
    frame = window_frame(statistics, 13, n=1500 if size > 1 else 200)
    stats = counted_in_chunks(frame, size, docs)
    whole, chunked = drift.prediction_drift(frame["score"], statistics), drift.prediction_drift(stats.prediction, statistics)
    assert chunked.pop("window_mean_score") == pytest.approx(whole.pop("window_mean_score"), rel=1e-12, abs=0)
    assert chunked == whole
    scores = frame["score"].dropna()
    assert chunked["rows"] == len(scores) and chunked["window_positive_rate"] == (scores >= 0.5).sum() / len(scores)
    assert chunked["bins"]["window"] == reference_bins(scores, statistics["prediction"]["histogram"]["bin_edges"])


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_regression_predictions_counted_in_chunks_have_the_whole_windows_mean_and_spread(size):
    # GIVEN predictions far from zero (a naive sum of squares loses their spread) with NaN and values on the cuts
    rng = np.random.default_rng(4)
    train = 1e6 + rng.normal(0.0, 3.0, 5000)
    edges = quantile_edges(train)
    statistics = {"problem_type": REGRESSION, "features": {},
                  "prediction": {"mean": float(train.mean()), "std": float(train.std()),
                                 "histogram": {"binning": "quantile", "bin_edges": edges, "counts": bin_counts(train, edges)}}}
    values = 1e6 + 0.5 + rng.normal(0.0, 3.5, 1200)
    values[rng.random(1200) < 0.05] = np.nan
    values[:len(edges)] = edges
    window = pd.Series(values)
    # WHEN counted in chunks
    counts = PredictionCounts(statistics, REGRESSION)
    for chunk in chunks(window, size):
        counts.add(chunk)
    whole = drift.prediction_drift(window, statistics, problem_type=REGRESSION)
    chunked = drift.prediction_drift(counts, statistics, problem_type=REGRESSION)
    # THEN the spread is numpy's population std of the values (Chan's merge: off by ~1e-11 with one value per
    # chunk here; a running sum of squares about zero would be off by ~1e-4), the mean the values' mean
    present = values[~np.isnan(values)]
    assert chunked.pop("window_std_prediction") == pytest.approx(float(np.std(present)), rel=1e-9)
    assert whole.pop("window_std_prediction") == pytest.approx(float(np.std(present)), rel=1e-9)
    assert chunked.pop("window_mean_prediction") == pytest.approx(whole.pop("window_mean_prediction"), rel=1e-12, abs=0)
    assert chunked == whole
    assert chunked["rows"] == len(present) and chunked["bins"]["window"] == reference_bins(present, edges)


@pytest.mark.parametrize("size", [1, 7, 1000])
def test_multiclass_predictions_counted_in_chunks_have_the_whole_windows_shares_and_mean_probabilities(size):
    # GIVEN class codes (NaN: no prediction; 3: no class of the model's) and probabilities, some rows incomplete
    rng = np.random.default_rng(5)
    statistics = {"problem_type": MULTICLASS, "features": {},
                  "prediction": {"classes": CLASSES, "histogram": {"levels": CLASSES, "counts": [500, 300, 200]},
                                 "mean_probabilities": {"bronze": 0.5, "silver": 0.3, "gold": 0.2}}}
    n = 1200
    codes = rng.choice([0.0, 1.0, 2.0, 3.0, np.nan], n, p=[0.45, 0.3, 0.2, 0.02, 0.03])
    raw = rng.random((n, 3))
    probabilities = pd.DataFrame(raw / raw.sum(axis=1, keepdims=True), columns=PROBABILITIES)
    probabilities = probabilities.mask(rng.random((n, 3)) < 0.05)
    frame = probabilities.assign(score=codes)
    # WHEN counted in chunks
    counts = PredictionCounts(statistics, MULTICLASS, PROBABILITIES)
    for chunk in chunks(frame, size):
        counts.add(chunk["score"], chunk[PROBABILITIES])
    whole = drift.prediction_drift(frame["score"], statistics, problem_type=MULTICLASS, classes=CLASSES,
                                   probabilities=frame[PROBABILITIES])
    chunked = drift.prediction_drift(counts, statistics, problem_type=MULTICLASS, classes=CLASSES)
    # THEN the class shares are exact, the mean probabilities (over the complete rows) the same to 1e-12
    assert chunked.pop("window_mean_probabilities") == pytest.approx(whole.pop("window_mean_probabilities"), rel=1e-12, abs=0)
    assert chunked == whole
    assert chunked["bins"]["window"] == [int((codes == k).sum()) for k in range(3)]
    complete = probabilities.dropna()
    assert counts.complete == len(complete) < n
    assert counts.probability_sums == pytest.approx(complete.to_numpy().sum(axis=0), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_bin_counts_equals_a_binary_search_per_value(seed):
    rng = np.random.default_rng(seed)
    # edges with duplicates (and, for odd seeds, infinite cut points); values on the edges, infinities and NaN
    pool = rng.normal(0, 1, int(rng.integers(1, 6)))
    edges = np.sort(np.concatenate([pool, rng.choice(pool, 3)]))
    if seed % 2:
        edges = np.concatenate([[-np.inf], edges, [np.inf]])
    values = rng.normal(0, 1.5, 500)
    on_edge = rng.random(500) < 0.2
    values[on_edge] = rng.choice(edges, int(on_edge.sum()))
    values[rng.random(500) < 0.05] = np.inf
    values[rng.random(500) < 0.05] = -np.inf
    values[rng.random(500) < 0.1] = np.nan
    assert bin_counts(values, edges) == reference_bins(values, edges)
    assert sum(bin_counts(values, edges)) == int((~np.isnan(values)).sum())


@pytest.mark.parametrize("values, edges, expected", [
    ([], [0.0, 1.0], [0, 0, 0]),
    ([np.nan, np.nan], [0.0], [0, 0]),
    ([3.0, -1.0, np.inf, np.nan], [], [3]),
    ([], [], [0]),
    ([1.0, 1.0, 2.0], [1.0, 1.0, 2.0], [0, 0, 2, 1]),  # a value on a cut point belongs to the bin above it
    ([-np.inf, np.inf], [-np.inf, 0.0, np.inf], [0, 1, 0, 1]),
])
def test_bin_counts_of_empty_input_no_edges_and_values_on_edges(values, edges, expected):
    assert bin_counts(values, edges) == expected == reference_bins(values, edges)


def test_a_column_of_many_unseen_values_keeps_the_exact_unseen_total_every_known_level_and_the_most_frequent(monkeypatch):
    # GIVEN room for 5 unknown values, and chunks of 3 frequent unseen values, one rare known level and 20 new
    # unseen values each
    monkeypatch.setattr(window_stats, "MAX_DISTINCT", 5)
    known = ["web", "app", "rare-known"]
    counts = ColumnCounts(text=True, known=known)
    everything = []
    for k in range(30):
        values = ["hot-a"] * 9 + ["hot-b"] * 7 + ["hot-c"] * 5 + ["web"] * 4 + ["app"] * 2 + [f"once-{k}-{i}" for i in range(20)]
        if k == 0:
            values.append("rare-known")
        values.append(None)
        chunk = pd.Series(values, dtype=TEXT)
        everything.append(chunk)
        counts.add(chunk)
        # WHEN it adds a chunk THEN it holds a bounded number of values
        assert len(counts.values) <= 2 * 5 + len(known)
    window = pd.concat(everything, ignore_index=True).dropna()
    exact = window.value_counts()
    unseen = counts.unseen(known)
    # THEN values were folded, yet the unseen total is exact
    assert counts.folded > 0 and len(counts.values) < len(exact)
    assert unseen["count"] == int((~window.isin(known)).sum()) == 30 * 41
    # AND no known level was folded, not even the rarest value of the window
    assert {v: counts.values[v] for v in known} == {"web": 120, "app": 60, "rare-known": 1}
    # AND the top of the unseen list is the most frequent values with their exact counts
    assert list(unseen["top"].items())[:3] == [("hot-a", 270), ("hot-b", 210), ("hot-c", 150)]
    assert counts.present == len(window) and counts.missing == 30


def records(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    text = pd.Series(rng.choice(["a", "b", None], n), dtype=TEXT)
    amount = rng.normal(0, 1, n)
    amount[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"row": np.arange(n), "amount": amount, "channel": text,
                         "tag": pd.Series([f"t{i % 7}" for i in range(n)], dtype=object),
                         "inference_id": [f"id-{i}" for i in range(n)]})


def sampled(frame: pd.DataFrame, size: int, seed: int, chunk: int, skip: Sequence[str] = ()) -> pd.DataFrame:
    sample = RowSample(size, seed, skip=skip)
    for part in chunks(frame, chunk):
        sample.add(part)
    return sample.frame()


@pytest.mark.parametrize("chunk", [1, 13, 1000])
@pytest.mark.parametrize("n", [1, 40, 100])
def test_a_window_no_larger_than_the_sample_comes_back_whole_and_in_order(n, chunk):
    frame = records(n)
    out = sampled(frame, 100, seed=3, chunk=chunk)
    pd.testing.assert_frame_equal(out, frame)
    assert out["channel"].dtype == TEXT


def test_a_sample_of_no_record_is_none_and_a_size_below_one_is_refused():
    assert RowSample(5).frame() is None
    for size in (0, -3):
        with pytest.raises(ValueError) as refused:
            RowSample(size)
        assert str(refused.value) == f"a row sample needs room for one record or more, not {size}"


def test_a_larger_window_gives_size_records_in_order_the_same_for_a_seed_whatever_the_chunking():
    # GIVEN a window of 3000 records and room for 120
    frame = records(3000)
    # WHEN sampled with chunks of 1, 13 and 1000 records
    samples = [sampled(frame, 120, seed=7, chunk=chunk, skip=["inference_id"]) for chunk in (1, 13, 1000)]
    # THEN exactly 120 records of the window, in its order, without the skipped column
    first = samples[0]
    assert len(first) == 120 and list(first.columns) == ["row", "amount", "channel", "tag"]
    assert first["row"].is_monotonic_increasing and first["row"].is_unique
    pd.testing.assert_frame_equal(first, frame.drop(columns="inference_id").iloc[first["row"].to_numpy()].reset_index(drop=True))
    # AND the same records whatever the chunking
    for other in samples[1:]:
        pd.testing.assert_frame_equal(other, first)
    # AND another seed picks others
    assert sampled(frame, 120, seed=8, chunk=13)["row"].tolist() != first["row"].tolist()


def test_the_sample_holds_at_most_half_its_size_more_than_its_size_between_chunks():
    # GIVEN room for 100 records and a window of 20,000 arriving in chunks of 1 to 400 records
    sample = RowSample(100, seed=1)
    rng = np.random.default_rng(0)
    frame = records(20_000)
    start, held = 0, []
    while start < len(frame):
        part = frame.iloc[start:start + int(rng.integers(1, 400))]
        start += len(part)
        sample.add(part)
        held.append(sample.held)
        # THEN after every chunk at most size + size // 2 records wait (add cuts back to size past that), every column
        # holding exactly them
        assert sample.held <= 100 + 100 // 2
        assert all(sum(len(p) for p in parts) == sample.held for parts in sample.columns.values())
    # (records did wait beyond the size, and were cut back to it more than once)
    assert max(held) > 100 and held.count(100) > 1
    assert sample.seen == 20_000 and len(sample.frame()) == 100 and sample.held == 100


def test_every_record_is_equally_likely_to_be_sampled():
    # GIVEN 400 seeded samples of 50 records from a window of 1000, each sampled in chunks of 64
    n, size, seeds = 1000, 50, 400
    frame = pd.DataFrame({"row": np.arange(n)})
    first_half = second_half = 0
    for seed in range(seeds):
        rows = sampled(frame, size, seed=seed, chunk=64)["row"].to_numpy()
        assert len(rows) == size
        first_half += int((rows < n // 2).sum())
        second_half += int((rows >= n // 2).sum())
    # THEN each half's inclusion rate is size / n. The records of one sample from the first half are hypergeometric:
    # mean size / 2, variance size / 4 * (n - size) / (n - 1); over independent seeds the total's sd is
    # sqrt(seeds) times that (~ 68 here). Six sd allow a wrong sampler nothing: taking the first records would give
    # 20,000 and 0, a sampler favouring either half by 3 % of its rate would already be outside.
    sd = math.sqrt(seeds * size / 4 * (n - size) / (n - 1))
    for count in (first_half, second_half):
        assert abs(count - seeds * size / 2) <= 6 * sd
        assert abs(count / (seeds * n / 2) - size / n) <= 6 * sd / (seeds * n / 2)


@pytest.mark.parametrize("edges", [[2.0, 1.0], [0.0, np.nan, 1.0]])
def test_bin_counts_refuses_edges_that_are_not_ascending_numbers(edges):
    with pytest.raises(ValueError) as raised:
        bin_counts([1.0, 2.0, 3.0], edges)
    assert str(raised.value) == f"bin edges must be ascending numbers, not {np.asarray(edges).tolist()}"


def broken(docs: Dict[str, Dict[str, Any]], which: str, feature: str, key: str, value: Any) -> Dict[str, Dict[str, Any]]:
    """``docs`` with one value of one baseline document replaced."""
    import copy

    out = copy.deepcopy(docs)
    entry = out[which]["features"][feature]
    if key == "bin_edges":
        entry["histogram"]["bin_edges"] = value
    else:
        entry[key] = value
    return out


@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")  # inf + -inf: a NaN mean
def test_a_broken_statistics_document_fails_data_drift_only_with_the_feature_named():
    # GIVEN statistics whose cut points for 'ratio' run backwards, and sound constraints
    docs = broken(baseline_docs(5), "statistics", "ratio", "bin_edges", [1.0, 0.0])
    frame = window_frame(docs["statistics"], 6)
    # WHEN the window is counted against them
    counts = WindowStats.of(frame, docs["statistics"], docs["constraints"], problem_type=BINARY)
    # THEN data drift says why it cannot be decided; data quality and prediction drift are decided as usual
    with pytest.raises(ValueError) as raised:
        drift.data_drift(counts, docs["statistics"])
    assert str(raised.value) == "feature 'ratio': the histogram's bin_edges are not ascending numbers: [1.0, 0.0]"
    assert drift.data_quality(counts, docs["constraints"]) == drift.data_quality(frame, docs["constraints"])
    assert drift.prediction_drift(counts.predictions(), docs["statistics"])["rows"] == int(frame["score"].notna().sum())


@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")  # inf + -inf: a NaN mean
def test_a_broken_constraints_document_fails_data_quality_only_with_the_feature_named():
    # GIVEN constraints whose minimum of 'amount' is text
    docs = broken(baseline_docs(5), "constraints", "amount", "min", "0")
    frame = window_frame(docs["statistics"], 6)
    counts = WindowStats.of(frame, docs["statistics"], docs["constraints"], problem_type=BINARY)
    # THEN only data quality fails, naming the feature and the fix's subject
    with pytest.raises(TypeError) as raised:
        drift.data_quality(counts, docs["constraints"])
    assert str(raised.value) == "feature 'amount': constraint min must be a number, not '0'"
    decided, whole = drift.data_drift(counts, docs["statistics"]), drift.data_drift(frame, docs["statistics"])
    pop_means(decided), pop_means(whole)  # ±inf in the window: both means are NaN, which never compares equal
    assert decided == whole


def test_a_prediction_histogram_without_cut_points_counts_every_score_in_one_bin():
    statistics = {"prediction": {"histogram": {"bin_edges": [], "counts": [50]}}, "features": {}}
    counts = PredictionCounts(statistics, BINARY)
    counts.add(np.array([0.1, 0.9, np.nan, 0.5]))
    assert counts.bins.tolist() == [3] == bin_counts([0.1, 0.9, np.nan, 0.5], [])


@pytest.mark.parametrize("numeric", [False, True])
def test_text_counts_of_arrow_text_are_those_of_the_same_values_as_objects(numeric):
    """GIVEN the same chunks of text (empty strings, nulls, all-null, empty, sliced, numbers as text, enough distinct
    values to fold) as Arrow-backed text (the decoder's columns: counted by pyarrow) and as objects WHEN counted THEN
    every count is the same."""
    values = [["", None, "a", "", "é", "😀"], [None, None], [], ["1", "1.0", "-0", " 1", None],
              [f"v{i}" for i in range(2 * window_stats.MAX_DISTINCT + 100)], ["a", None, "b", "c", None][1:4]]
    arrow, objects = ColumnCounts(text=True, numeric=numeric), ColumnCounts(text=True, numeric=numeric)
    for chunk in values:
        arrow.add(pd.Series(chunk, dtype=pd.StringDtype("pyarrow")))
        objects.add(pd.Series(chunk, dtype=object))
    state = lambda c: (c.rows, c.missing, c.numbers, c.total, dict(sorted(c.values.items())), c.folded)  # noqa: E731
    assert state(arrow) == state(objects)

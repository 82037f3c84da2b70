"""The calibrated drift thresholds (pipeline_code.monitoring.calibration) and the drift decision built on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline_code.monitoring import calibration, drift
from pipeline_code.training.baseline import OTHER_LEVEL, bin_counts, numeric_statistics, psi, psi_rows

DECILES = [1000.0] * 10  # a baseline of 10,000 values on its own deciles


def stable_window_alarms(features: int, rows: int, windows: int, seed: int, *, false_alarm_rate: float = 0.05) -> int:
    """Windows (of ``features`` features, ``rows`` values each, all drawn from the baseline) with any drift.

    The baseline is large (a million values) so that its own sampling noise, which the threshold allows for,
    is negligible here: the windows are drawn from exactly its shares.
    """
    baseline = [100_000.0] * 10
    rng = np.random.default_rng(seed)
    alpha = false_alarm_rate / features
    alarms = 0
    for _ in range(windows):
        counts = rng.multinomial(rows, np.full(10, 0.1), size=features)
        # Each feature's PSI, the window's features at once (psi_rows is what psi computes, a row at a time).
        observed = psi_rows(np.tile(baseline, (features, 1)), counts.astype(np.float64))
        alarms += any(
            value > calibration.threshold(baseline, rows, value, alpha=alpha, material=1e-9).value
            for value in observed.tolist()
        )
    return alarms


@pytest.mark.parametrize("rows", [100, 2_000])  # the simulated null and the chi-square one
@pytest.mark.parametrize("features", [5, 40])
def test_windows_without_drift_stay_within_the_false_alarm_budget_however_many_features(features, rows):
    # GIVEN 1,000 windows drawn from the baseline itself (no drift), no material floor
    # WHEN each feature is tested at false_alarm_rate (5 %) / features
    alarms = stable_window_alarms(features, rows=rows, windows=1_000, seed=features + rows)
    # THEN the share of windows with any alarm stays at the 5 % budget (within the sampling error of 1,000
    # windows, sd 0.7 %) for 5 features as for 40; per-test 5 % would alarm in 87 % of the 40-feature windows
    assert alarms / 1_000 <= 0.065


def test_the_fixed_rule_it_replaces_false_alarms_on_small_windows():
    # GIVEN the same no-drift windows of 100 values; the old rule called a feature drifted at PSI > 0.2
    rng = np.random.default_rng(7)
    counts = rng.multinomial(100, np.full(10, 0.1), size=(400, 20))
    fixed = sum(any(psi(DECILES, c) > 0.2 for c in window) for window in counts)
    # THEN it alarmed in a large share of quiet windows of a 20-feature model - what calibration removes
    assert fixed / 400 > 0.2


def test_the_noise_threshold_shrinks_with_the_window_and_the_material_one_takes_over():
    small = calibration.threshold(DECILES, 100, 0.0, alpha=0.001, material=0.1)
    large = calibration.threshold(DECILES, 1_000_000, 0.0, alpha=0.001, material=0.1)
    assert small.noise > 0.2 and small.value == small.noise
    # the material threshold plus the PSI sampling alone gives a window this size: (bins - 1)(1/n + 1/m)
    assert large.noise < 0.01 and large.value == pytest.approx(0.1 + 9 * (1 / 1_000_000 + 1 / 10_000))


def test_materiality_does_not_depend_on_the_window_size():
    # GIVEN one real shift of the bin shares (true PSI about 0.08), sampled in windows of 400 and of 40,000 values
    shifted = np.array([0.06, 0.07, 0.08, 0.09, 0.1, 0.1, 0.11, 0.12, 0.13, 0.14])
    baseline = [100_000.0] * 10
    true_psi = psi(baseline, shifted * 1e6)
    rng = np.random.default_rng(21)
    for rows in (400, 40_000):
        measured = np.mean([psi(baseline, rng.multinomial(rows, shifted)) for _ in range(2_000)])
        bias = calibration.threshold(baseline, rows, measured, alpha=0.01, material=0.1).bias
        # THEN the measured PSI overstates the shift by about the sampling bias the material threshold adds
        assert measured - bias == pytest.approx(true_psi, rel=0.05)
    assert calibration.threshold(baseline, 400, 0.0, alpha=0.01, material=0.1).bias > 0.02


def test_the_chi_square_null_agrees_with_the_exact_simulation_where_bins_are_well_filled():
    # GIVEN a window whose every bin expects >= 5 values: the chi-square approximation is used
    rows = 500
    approx = calibration.threshold(DECILES, rows, 0.05, alpha=0.01, material=1e-9)
    assert approx.method == "chi-square"
    # THEN its 99 % quantile matches a direct simulation of the PSI of no-drift windows within 10 %
    rng = np.random.default_rng(3)
    shares = np.full(10, 0.1)
    null = psi_rows(rng.multinomial(10_000, shares, size=50_000).astype(float),
                                rng.multinomial(rows, shares, size=50_000).astype(float))
    assert approx.noise == pytest.approx(np.quantile(null, 0.99), rel=0.10)


def test_sparse_bins_get_the_exact_simulated_null_and_a_reproducible_answer():
    # GIVEN a category level of 1 % and a window of 200 values (2 expected): the approximation would fail
    baseline = [9_900, 100]
    first = calibration.threshold(baseline, 200, 0.01, alpha=0.001, material=1e-9)
    assert first.method.startswith("simulated")
    assert calibration.threshold(baseline, 200, 0.01, alpha=0.001, material=1e-9) == first
    # THEN no-drift windows exceed it at most about alpha of the time
    rng = np.random.default_rng(11)
    windows = rng.multinomial(200, [0.99, 0.01], size=20_000)
    exceed = np.mean([psi(baseline, w) > first.noise for w in windows])
    assert exceed <= 0.002


def test_a_single_filled_bin_is_decided_by_the_material_threshold_alone():
    t = calibration.threshold([500, 0, 0], 100, 0.0, alpha=0.01, material=0.1)
    assert (t.value, t.noise, t.method) == (0.1, 0.0, "none")


def frame_of(values: dict) -> pd.DataFrame:
    return pd.DataFrame(values)


def test_a_variance_change_the_fixed_rule_missed_is_drift_and_a_stable_feature_is_not():
    # GIVEN a baseline of N(0, 1) and a window of 200,000 values where one feature's spread grew x1.5
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, 200_000)
    statistics = {"features": {"spread": numeric_statistics(base), "stable": numeric_statistics(base)}}
    window = frame_of({"spread": rng.normal(0, 1.5, 200_000), "stable": rng.normal(0, 1, 200_000)})
    # WHEN drift is decided with the default material PSI (0.1)
    result = drift.data_drift(window, statistics)
    spread = result["features"]["spread"]
    # THEN the spread change (PSI just under the old fixed 0.2) is drift, the stable feature is not
    assert 0.1 < spread["psi"] < 0.2 and spread["drifted"] and spread["drift_score"] > 1
    assert not result["features"]["stable"]["drifted"] and result["drifted_features"] == ["spread"]
    assert result["drift_score"] == spread["drift_score"]
    assert spread["calibration"]["material_threshold"] == 0.1
    assert spread["psi_threshold"] == pytest.approx(0.1 + spread["calibration"]["sampling_bias"])


def test_a_small_quiet_window_is_not_drift_under_calibration():
    # GIVEN 100 values drawn from the baseline for 20 features (the old rule alarmed on a third of such windows)
    rng = np.random.default_rng(12)
    base = rng.normal(0, 1, 50_000)
    statistics = {"features": {f"x{i}": numeric_statistics(base) for i in range(20)}}
    quiet = 0
    for seed in range(20):
        window = frame_of({f"x{i}": np.random.default_rng(seed * 100 + i).normal(0, 1, 100) for i in range(20)})
        quiet += not drift.data_drift(window, statistics)["drifted_features"]
    # THEN nearly every window is quiet, and each feature's threshold is the noise level of 100 values
    assert quiet >= 19
    entry = drift.data_drift(window, statistics)["features"]["x0"]
    assert entry["psi_threshold"] == entry["calibration"]["noise_threshold"] > 0.2


def test_the_prediction_drift_is_calibrated_and_scored_like_a_feature():
    rng = np.random.default_rng(9)
    scores = rng.beta(1, 40, 100_000)  # a rare-event model: scores crowd near 0
    edges = [float(e) for e in np.unique(np.quantile(scores, np.linspace(0, 1, 11)[1:-1]))]
    statistics = {"features": {}, "prediction": {"histogram": {"bin_edges": edges, "counts": bin_counts(scores, edges)}}}
    stable = drift.prediction_drift(rng.beta(1, 40, 5_000), statistics)
    shifted = drift.prediction_drift(rng.beta(1, 25, 5_000), statistics)
    assert stable["status"] == drift.PASS and stable["drift_score"] < 1
    assert shifted["status"] == drift.FAIL and shifted["drift_score"] > 1
    assert shifted["checks"][0]["threshold"] == shifted["psi_threshold"]


def test_the_detectable_auc_drop_matches_the_spread_of_simulated_windows():
    from scipy import stats

    from pipeline_code.monitoring.quality import detectable_auc_drop

    # GIVEN windows of 40 positives and 960 negatives (a 4 % event) from a binormal model of AUC about 0.8
    rng = np.random.default_rng(2)
    aucs, detectable = [], []
    y = np.r_[np.ones(40), np.zeros(960)]
    for _ in range(400):
        p = np.r_[rng.normal(1.19, 1, 40), rng.normal(0, 1, 960)]
        aucs.append(stats.mannwhitneyu(p[:40], p[40:]).statistic / (40 * 960))
        detectable.append(detectable_auc_drop(y, p))
    # THEN the DeLong standard error behind each window's detectable drop matches the spread of the AUCs within 15 %
    z = stats.norm.ppf(0.95) + stats.norm.ppf(0.8)
    assert np.mean(detectable) / z == pytest.approx(np.std(aucs), rel=0.15)
    # AND few positives make a small limit unverifiable: 0.05 is detectable with 400 positives, not with 40
    many = np.r_[rng.normal(1.19, 1, 400), rng.normal(0, 1, 9_600)]
    assert np.mean(detectable) > 0.05 > detectable_auc_drop(np.r_[np.ones(400), np.zeros(9_600)], many)
    assert detectable_auc_drop([0, 0, 1], [0.1, 0.2, 0.3]) == float("inf")


def test_the_detectable_quality_drop_of_an_error_metric_is_relative_and_shrinks_with_the_labels():
    from pipeline_code.monitoring.quality import detectable_quality_drop
    from pipeline_code.training import metrics_regression

    # GIVEN normal prediction errors of sd 10: RMSE 10, whose standard error is RMSE / sqrt(2 n)
    rng = np.random.default_rng(4)
    z = 1.6449 + 0.8416
    for rows in (300, 30_000):
        y = rng.normal(50, 20, rows)
        p = y + rng.normal(0, 10, rows)
        detectable = detectable_quality_drop("rmse", lambda idx: metrics_regression.headline(y[idx], p[idx])["rmse"], rows, 10.0)
        # THEN the bootstrap (capped at 1,000 rows a draw and scaled) matches it, relative to the baseline RMSE
        assert detectable == pytest.approx(z / np.sqrt(2 * rows), rel=0.25)
    assert detectable_quality_drop("rmse", lambda idx: 1.0, 1, 10.0) is None


def _peak_bytes(func):
    import tracemalloc

    tracemalloc.start()
    try:
        result = func()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_high_cardinality_categorical_is_simulated_in_bounded_memory_with_the_same_null():
    # GIVEN a categorical of many levels seen a few times each (a postcode: 40,000 levels, 10,000 of them in training;
    # here 300 levels), a small window and a many-feature model's per-test false-alarm rate: every bin is sparse, so the
    # null is simulated, draws x levels counts at once (100,000 x 10,000 levels: 8 GB a matrix; the monitor was killed)
    rng = np.random.default_rng(3)
    levels = 300
    baseline = rng.zipf(1.6, size=4000) % levels
    counts = np.bincount(baseline, minlength=levels).astype(float)
    window = np.bincount(rng.choice(baseline, size=200), minlength=levels)
    observed = psi(counts, window)
    alpha = 1e-3  # 20,000 draws
    calibration._simulated_null.cache_clear()
    whole, whole_peak = _peak_bytes(lambda: calibration.threshold(counts, 200, observed, alpha=alpha, material=0.2))
    calibration._simulated_null.cache_clear()
    # WHEN the matrices may hold at most 100,000 counts at once (the monitor's bound is 4,000,000: 32 MB)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calibration, "MAX_CELLS", 100_000)
        chunked, chunked_peak = _peak_bytes(lambda: calibration.threshold(counts, 200, observed, alpha=alpha, material=0.2))
    calibration._simulated_null.cache_clear()
    # THEN it draws as many no-drift windows in bounded memory, and the threshold is the same within simulation noise
    assert whole.method == chunked.method == "simulated (20000 draws)"
    assert whole_peak > 40_000_000 and chunked_peak < 10_000_000, (whole_peak, chunked_peak)
    assert chunked.noise == pytest.approx(whole.noise, rel=0.05)


def test_a_categorical_of_thousands_of_levels_is_judged_on_its_frequent_levels_without_simulating_every_level(monkeypatch):
    # GIVEN a long-tailed categorical of 5,000 levels in training (a merchant id), a 300-feature model's alarm budget
    # and windows of 20,000 values: most levels expect a few values a window, so its null was simulated over every
    # level - 100,000 draws x levels counts, about 11 s per 1,000 draws at 10,000 levels and 77 s at 100,000 on two
    # cores: hours per feature and window, past the monitor job's 2-hour limit (no report, no drift alarm)
    from pipeline_code.training.baseline import categorical_statistics

    rng = np.random.default_rng(21)
    levels = np.array([f"m{i:05d}" for i in range(5000)])
    shares = 1 / np.arange(1, 5001) ** 1.1
    shares /= shares.sum()
    statistics = {"features": {"merchant": categorical_statistics(rng.choice(levels, 200_000, p=shares), None)}}
    quiet = frame_of({"merchant": rng.choice(levels, 20_000, p=shares)})
    moved = shares.copy()
    moved[:10], moved[10:20] = shares[10:20].sum() / 10, shares[:10].sum() / 10  # the top ten levels lose traffic
    shifted = frame_of({"merchant": rng.choice(levels, 20_000, p=moved / moved.sum())})
    simulate = calibration._simulated_null

    def bounded(filled, rows, draws):
        assert len(filled) <= drift.MAX_DRIFT_LEVELS + 2, f"simulated over {len(filled)} bins"
        return simulate(filled, rows, draws)

    monkeypatch.setattr(calibration, "_simulated_null", bounded)
    # WHEN each window's drift is decided
    calm, moved_entry = (drift.data_drift(w, statistics, tests=301)["features"]["merchant"] for w in (quiet, shifted))
    # THEN it is judged on at most MAX_DRIFT_LEVELS bins: its most frequent levels, each expecting enough values of
    # the window for the chi-square null, the rarer ones pooled (the report says how many), unseen values apart
    kept = calm["bins"]["levels"][:-2]
    assert calm["bins"]["levels"][-2:] == [drift.RARE_LEVELS, OTHER_LEVEL] and 0 < len(kept) <= drift.MAX_DRIFT_LEVELS - 2
    assert min(calm["bins"]["baseline"][:-1]) * 20_000 / 200_000 >= calibration.MIN_EXPECTED
    known = len(statistics["features"]["merchant"]["levels"]) - 1  # the levels training saw
    assert known > 4900 and calm["pooled_levels"] == known - len(kept)
    assert sum(calm["bins"]["window"]) == 20_000 and sum(calm["bins"]["baseline"]) == 200_000
    # (the unseen bucket expects training's share of levels seen once, 243 of 200,000: 24 of the window's values, so
    # the null is simulated over these bins, at most MAX_DRIFT_LEVELS + 2 of them: the bound above)
    # and a quiet window is quiet while traffic moving off its top ten levels is drift
    assert not calm["drifted"] and moved_entry["drifted"], (calm["psi"], moved_entry["psi"], moved_entry["psi_threshold"])


def test_a_categorical_of_few_levels_keeps_every_level_as_its_bin():
    # GIVEN a categorical of four levels WHEN its drift is decided THEN every level is its own bin, nothing is pooled
    statistics = {"features": {"channel": {"kind": "categorical", "count": 400, "missing": 0, "missing_rate": 0.0,
                                           "distinct": 4, "levels": {k: {"count": 100, "fraction": 0.25} for k in "abcd"}
                                           | {OTHER_LEVEL: {"count": 0, "fraction": 0.0}}}}}
    entry = drift.data_drift(frame_of({"channel": list("abcd") * 50}), statistics)["features"]["channel"]
    assert entry["bins"]["levels"] == [*"abcd", OTHER_LEVEL] and "pooled_levels" not in entry


def test_a_rare_training_level_that_takes_a_share_of_the_window_is_drift_not_hidden_in_the_pooled_bin():
    # GIVEN a long-tailed categorical of 5,000 levels in training (a merchant id), one merchant seen once among 200,000
    # training values, and a 300-feature model's alarm budget
    from pipeline_code.training.baseline import categorical_statistics

    rng = np.random.default_rng(21)
    levels = np.array([f"m{i:05d}" for i in range(5000)])
    shares = 1 / np.arange(1, 5001) ** 1.1
    shares /= shares.sum()
    statistics = {"features": {"merchant": categorical_statistics(rng.choice(levels, 200_000, p=shares), None)}}
    seen_once = next(k for k, v in statistics["features"]["merchant"]["levels"].items() if v["count"] == 1)
    quiet = rng.choice(levels, 20_000, p=shares).astype(object)
    surged = quiet.copy()
    surged[:600] = seen_once  # WHEN that merchant takes 3 % of a window of 20,000 (a fraud ring's shop)
    calm, entry = (drift.data_drift(frame_of({"merchant": list(w)}), statistics, tests=301)["features"]["merchant"]
                   for w in (quiet, surged))
    # THEN it is drift, judged in a bin of its own rather than lost among the pooled rare levels (before: PSI 0.0095
    # against a threshold of 0.10, not drift), while the quiet window stays quiet with nothing carved out
    assert entry["drifted"] and seen_once in entry["bins"]["levels"], (entry["psi"], entry["psi_threshold"])
    assert entry["pooled_levels"] == calm["pooled_levels"] - 1 and entry["surging_levels"] == [seen_once]
    assert not calm["drifted"] and "surging_levels" not in calm
    assert sum(entry["bins"]["window"]) == 20_000 and sum(entry["bins"]["baseline"]) == 200_000


def test_a_categorical_of_exactly_max_drift_levels_levels_is_judged_on_every_level_as_before():
    # GIVEN a categorical of MAX_DRIFT_LEVELS levels, most of them rare (each expecting a few of the window's values)
    levels = [f"l{i:03d}" for i in range(drift.MAX_DRIFT_LEVELS)]
    counts = {lvl: 1000 if i < 5 else 3 for i, lvl in enumerate(levels)}
    total = sum(counts.values())
    statistics = {"features": {"code": {
        "kind": "categorical", "count": total, "missing": 0, "missing_rate": 0.0, "distinct": len(levels),
        "levels": {k: {"count": c, "fraction": c / total} for k, c in counts.items()} | {OTHER_LEVEL: {"count": 0, "fraction": 0.0}}}}}
    window = frame_of({"code": [lvl for lvl, c in counts.items() for _ in range(c // 2 or 1)]})
    # WHEN its drift is decided THEN every level is its own bin and the null is simulated, exactly as before pooling
    entry = drift.data_drift(window, statistics)["features"]["code"]
    assert entry["bins"]["levels"] == [*levels, OTHER_LEVEL] and "pooled_levels" not in entry
    assert entry["bins"]["baseline"] == [*counts.values(), 0] and entry["calibration"]["null"].startswith("simulated")
    # and one level more is pooled
    statistics["features"]["code"]["levels"] = {"extra": {"count": 3, "fraction": 0.0}} | statistics["features"]["code"]["levels"]
    assert "pooled_levels" in drift.data_drift(window, statistics)["features"]["code"]


def test_a_categorical_of_many_declared_levels_but_few_seen_in_training_is_judged_on_every_level_as_before(monkeypatch):
    # GIVEN a country feature of 250 declared allowed values of which training saw 60 (the baseline lists all 250, the
    # ones training never saw at count 0): an ordinary feature, whose null over its 60 filled bins is cheap
    from pipeline_code.training.baseline import categorical_statistics

    rng = np.random.default_rng(3)
    declared = [f"c{i:03d}" for i in range(250)]
    statistics = {"features": {"country": categorical_statistics(rng.choice(declared[:60], 30_000), declared)}}
    window = frame_of({"country": list(rng.choice(declared[:60], 3_000))})
    # WHEN its drift is decided THEN nothing is pooled: every declared level is its own bin, as before pooling
    entry = drift.data_drift(window, statistics)["features"]["country"]
    assert "pooled_levels" not in entry and entry["bins"]["levels"] == [*declared, OTHER_LEVEL]
    # and its verdict is the one it had before any pooling
    monkeypatch.setattr(drift, "MAX_DRIFT_LEVELS", 10**9)
    assert entry == drift.data_drift(window, statistics)["features"]["country"]


def _zipf_merchant_ids():
    """A merchant id of 20,000 levels and its Zipf-like traffic shares (s = 1.1): (levels, shares)."""
    shares = 1 / np.arange(1, 20_001) ** 1.1
    return np.array([f"m{i:05d}" for i in range(20_000)]), shares / shares.sum()


def test_a_long_tailed_categorical_whose_window_holds_values_training_never_saw_is_quiet_until_one_of_them_surges():
    # GIVEN a merchant id of 20,000 levels with Zipf-like traffic, of which 200,000 training values saw about 14,000:
    # every window holds about 2.7 % values training never saw (the tail it missed), which the unseen bucket compared
    # with a baseline count of 0 (PSI about 0.15 against 0.10: 197 of 200 quiet windows of 2,000 values drifted, 200 of 200 of 50,000)
    from pipeline_code.training.baseline import categorical_statistics

    rng = np.random.default_rng(37)
    levels, shares = _zipf_merchant_ids()
    statistics = {"features": {"merchant": categorical_statistics(rng.choice(levels, 200_000, p=shares), None)}}
    quiet = rng.choice(levels, 20_000, p=shares).astype(object)
    surged = quiet.copy()
    surged[:600] = "m-new-shop"  # a merchant training never saw takes 3 % of the window
    calm, entry = (drift.data_drift(frame_of({"merchant": list(w)}), statistics, tests=2)["features"]["merchant"]
                   for w in (quiet, surged))
    # WHEN each window's drift is decided THEN the quiet one is quiet: the unseen bucket expects the share of values
    # training saw once (Good-Turing), which is what a same-distribution window brings that training lacked
    assert calm["unseen"] and not calm["drifted"], (calm["psi"], calm["psi_threshold"])
    assert "surging_levels" not in calm
    # and the never-seen merchant taking 3 % of the window is drift, in a bin of its own
    assert entry["drifted"] and entry["surging_levels"] == ["m-new-shop"], (entry["psi"], entry["psi_threshold"])
    assert "m-new-shop" in entry["bins"]["levels"] and sum(entry["bins"]["window"]) == 20_000


def test_a_small_window_of_a_long_tailed_categorical_is_quiet_though_its_unseen_share_expects_few_values():
    # GIVEN the merchant id of 20,000 Zipf-like levels (200,000 training values saw about 14,000) and windows of 200
    # values: the share training never saw (about 2.7 %, 5 values) expects fewer than 25 of them, and against a
    # baseline count of 0 it alone is PSI about 0.15 (before: 141 of 200 quiet windows drifted)
    from pipeline_code.training.baseline import categorical_statistics

    rng = np.random.default_rng(37)
    levels, shares = _zipf_merchant_ids()
    statistics = {"features": {"merchant": categorical_statistics(rng.choice(levels, 200_000, p=shares), None)}}
    windows = [frame_of({"merchant": list(rng.choice(levels, 200, p=shares))}) for _ in range(20)]
    # WHEN each window's drift is decided
    entries = [drift.data_drift(w, statistics, tests=2)["features"]["merchant"] for w in windows]
    # THEN none drifts, the unseen bucket expecting its share (its null simulated over the few bins it has)
    drifted = [e["psi"] for e in entries if e["drifted"]]
    assert not drifted and all(e["bins"]["baseline"][-1] > 0 for e in entries), drifted
    assert all(len(e["bins"]["levels"]) <= drift.MAX_DRIFT_LEVELS + 2 for e in entries)


def test_a_window_too_small_for_any_frequent_level_still_judges_a_many_level_categorical_on_its_top_levels():
    # GIVEN a categorical of 1,000 Zipf-like levels (200,000 training values) and windows of 120 values: no level
    # expects 25 of them, so every level was pooled, the feature judged on one bin (PSI 0, null "none") and a window
    # whose ten most frequent levels lost 70 % of their traffic (45 % of it to 20 %) passed (0 of 100 such windows drifted)
    from pipeline_code.training.baseline import categorical_statistics

    rng = np.random.default_rng(41)
    levels = np.array([f"c{i:04d}" for i in range(1000)])
    shares = 1 / np.arange(1, 1001) ** 1.1
    shares /= shares.sum()
    statistics = {"features": {"code": categorical_statistics(rng.choice(levels, 200_000, p=shares), None)}}
    moved = np.where(np.arange(1000) < 10, 0.3 * shares, shares)
    moved /= moved.sum()
    # WHEN the drift of 20 such windows is decided
    entries = [drift.data_drift(frame_of({"code": list(rng.choice(levels, 120, p=moved))}), statistics,
                                tests=2)["features"]["code"] for _ in range(20)]
    # THEN the feature is judged on its most frequent levels (each expecting a few values, the null simulated over
    # these few bins) and most of those windows are drift
    assert all(len(e["bins"]["levels"]) > 3 and e["calibration"]["null"].startswith("simulated") for e in entries)
    assert sum(e["drifted"] for e in entries) >= 10, [round(e["psi"], 3) for e in entries]


def test_a_long_tailed_categorical_does_not_fail_data_quality_on_the_unseen_share_every_window_brings():
    # GIVEN a merchant id of 20,000 Zipf-like levels without declared allowed values, whose 200,000 training values saw
    # about 14,000: every window brings about 2.7 % values training never saw, over --max-unseen-rate's 1 %, so the
    # data-quality check failed in every window of 2,000 values (40 of 40) and paged the monitor-data-quality alarm daily
    from pipeline_code.training.baseline import categorical_constraint, categorical_statistics

    rng = np.random.default_rng(37)
    levels, shares = _zipf_merchant_ids()
    entry = categorical_statistics(rng.choice(levels, 200_000, p=shares).astype(object), None)
    constraints = {"features": {"merchant": {**categorical_constraint(entry, declared=False), "completeness": 1.0}}}
    # WHEN the data quality of quiet windows, and of one where a tenth of the values are ids training never saw, is judged
    quiet = [drift.data_quality(frame_of({"merchant": list(rng.choice(levels, 2_000, p=shares))}), constraints)
             for _ in range(10)]
    novel = rng.choice(levels, 2_000, p=shares).astype(object)
    novel[:200] = [f"x{i}" for i in range(200)]
    # THEN the quiet ones pass, the limit counted over the share training saw once (Good-Turing), and the other fails
    assert not [q["features"]["merchant"]["unseen_rate"] for q in quiet if q["failed_features"]]
    assert 0.02 < constraints["features"]["merchant"]["expected_unseen_rate"] < 0.035
    assert drift.data_quality(frame_of({"merchant": list(novel)}), constraints)["failed_features"] == ["merchant"]
    # and a feature of declared allowed values keeps the plain limit
    assert "expected_unseen_rate" not in categorical_constraint(entry, declared=True)

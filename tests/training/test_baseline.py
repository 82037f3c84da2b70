"""Monitoring baselines: statistics/constraints/attributions a drift monitor can compare traffic to."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code.features.compute import compute_features
from pipeline_code.sample_data.generate import generate
from pipeline_code.training import baseline
from tests.support import datasets as samples


@pytest.fixture(scope="module")
def docs(churn_spec, strong_model, prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    code = baseline.main(["--model-spec", churn_spec.to_json(), "--model-dir", strong_model,
                          "--train-dir", prepared["train"], "--validation-dir", prepared["validation"],
                          "--output-dir", str(out)])  # fmt: skip
    assert code == 0
    docs = {name: json.loads((out / f"{name}.json").read_text()) for name in ("statistics", "constraints", "attributions")}
    docs["digests"] = {name: "sha256:" + hashlib.sha256((out / f"{name}.json").read_bytes()).hexdigest() for name in docs}
    docs["digests.json"] = json.loads((out / "digests.json").read_text())
    return docs


def test_the_digests_are_those_of_the_documents_written(docs):
    """GIVEN the baseline job run on real training data THEN digests.json holds each document's sha256 as a
    ContentDigest: what the register step records with the package's data-quality statistics and constraints."""
    assert docs["digests.json"] == docs["digests"]


def test_statistics_cover_every_feature_with_consistent_counts(docs, churn_spec, prepared):
    train = pd.read_parquet(Path(prepared["train"]) / "train.parquet")
    stats = docs["statistics"]
    assert stats["rows"] == len(train)
    assert set(stats["features"]) == set(churn_spec.frame_features)
    tenure = stats["features"]["avg_charge_per_month"]
    assert tenure["missing"] == train["avg_charge_per_month"].isna().sum() > 0  # tenure 0 -> null ratio
    assert sum(tenure["histogram"]["counts"]) == len(train) - tenure["missing"]
    assert len(tenure["histogram"]["counts"]) == len(tenure["histogram"]["bin_edges"]) + 1
    contract = stats["features"]["contract_type"]
    assert set(contract["levels"]) == {"month-to-month", "one-year", "two-year", baseline.OTHER_LEVEL}
    assert sum(v["count"] for v in contract["levels"].values()) == len(train)
    validation = pd.read_parquet(Path(prepared["validation"]) / "validation.parquet")
    assert sum(stats["prediction"]["histogram"]["counts"]) == len(validation) == stats["prediction"]["rows"]
    assert stats["prediction"]["split"] == "validation"
    assert stats["features"]["gender"]["role"] == "sensitive_attribute"


def test_constraints_hold_catalog_categories_and_training_ranges(docs, prepared):
    train = pd.read_parquet(Path(prepared["train"]) / "train.parquet")
    constraints = docs["constraints"]["features"]
    assert constraints["payment_method"]["allowed"] == list(samples.CUSTOMER_CHURN.column("payment_method").allowed)
    assert constraints["tenure_months"]["min"] == train["tenure_months"].min()
    assert constraints["tenure_months"]["integral"] is True
    assert constraints["payment_method"]["completeness"] == pytest.approx(train["payment_method"].notna().mean())


def test_psi_is_near_zero_on_fresh_reference_data_and_large_on_drifted_data(docs):
    """The baseline's bins applied with bin_counts() to new traffic: same distribution -> PSI ~ 0,
    the generator's input drift -> PSI above the configured 0.2 alarm threshold."""
    dataset = samples.CUSTOMER_CHURN
    entry = docs["statistics"]["features"]["monthly_charges"]["histogram"]
    psi = {}
    for drift in (0.0, 1.0):
        traffic = compute_features(generate(samples.CUSTOMER_CHURN, 5000, seed=99, drift=drift), dataset)
        psi[drift] = baseline.psi(entry["counts"], baseline.bin_counts(traffic["monthly_charges"], entry["bin_edges"]))
    assert psi[0.0] < 0.05
    assert psi[1.0] > 0.2


@pytest.mark.parametrize("bins, pairs, block", [(1, 5, None), (10, 300, None), (300, 40, None), (10, 300, 70), (300, 40, 100)])
def test_psi_rows_is_the_clipped_share_formula_bit_for_bit_on_integer_or_float_counts(monkeypatch, bins, pairs, block):
    # GIVEN count matrices of every shape a calibration simulation draws (sparse rows, all-zero rows, one bin), taken
    # in one block or in blocks of a few rows (the last one shorter; a row wider than a block goes alone)
    if block is not None:
        monkeypatch.setattr(baseline, "PSI_BLOCK_CELLS", block)
    rng = np.random.default_rng(bins)
    expected = rng.multinomial(5 * bins, np.full(bins, 1 / bins), size=pairs)
    actual = rng.poisson(0.5, size=(pairs, bins))
    expected[0], actual[1] = 0, 0
    # WHEN PSI is taken of each row pair, on the integer counts and on them as floats
    rows = baseline.psi_rows(expected, actual)
    as_floats = baseline.psi_rows(expected.astype(np.float64), actual.astype(np.float64))
    # THEN it is (a - e) * log(a / e) summed over the shares clipped at eps, exactly (every float the same)
    def shares(counts):
        totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
        return np.clip(counts / np.where(totals > 0, totals, 1), baseline.PSI_EPSILON, None)

    e, a = shares(expected.astype(np.float64)), shares(actual.astype(np.float64))
    formula = np.sum((a - e) * np.log(a / e), axis=1)
    assert rows.tobytes() == as_floats.tobytes() == formula.tobytes()
    # and one pair is psi's answer
    assert baseline.psi(expected[2], actual[2]) == rows[2]
    assert np.isfinite(rows).all() and rows.shape == (pairs,)
    assert baseline.psi_rows(expected[:0], actual[:0]).shape == (0,)


def test_attribution_baseline_ranks_the_models_features(docs, churn_spec):
    attributions = docs["attributions"]
    assert sorted(attributions["ranking"]) == sorted(churn_spec.features)
    assert attributions["rows"] == min(docs["statistics"]["rows"], 2000)


def test_bin_counts_uses_half_open_bins():
    assert baseline.bin_counts([0.0, 1.0, 1.5, 2.0, np.nan], [1.0, 2.0]) == [1, 2, 1]


def test_quantile_edges_give_a_point_mass_its_own_bin():
    """Regression predictions of a tree model sit on few values: quantile cut points that coincide would
    merge bins, so a value holding whole quantiles gets a bin of its own ([value, halfway to the next))."""
    values = np.array([1.0] * 10 + [5.0] * 70 + [6.0, 7.0, 8.0, 9.0] * 5)
    edges = baseline.quantile_edges(values, 10)
    assert edges == sorted(set(edges)) and 5.0 in edges and 5.5 in edges
    counts = baseline.bin_counts(values, edges)
    assert counts[edges.index(5.0) + 1] == 70  # the mass alone in [5.0, 5.5)
    assert sum(counts) == len(values)
    # continuous values: ten bins of a tenth each
    spread = np.random.default_rng(0).normal(size=10_000)
    assert baseline.bin_counts(spread, baseline.quantile_edges(spread, 10)) == [1000] * 10
    assert baseline.quantile_edges([], 10) == []


def test_the_binary_score_bins_are_the_training_scores_quantiles(docs):
    prediction = docs["statistics"]["prediction"]
    counts = prediction["histogram"]["counts"]
    # GIVEN the churn model's training scores: each of the ten bins holds about a tenth of them
    assert len(counts) == 10 and max(counts) <= 1.2 * min(counts)
    assert prediction["histogram"]["bin_edges"] == sorted(prediction["histogram"]["bin_edges"])


def test_quantile_score_bins_see_a_drift_of_a_rare_event_models_scores_that_fixed_bins_do_not():
    # GIVEN a rare-event model: almost every training score is below 0.1 (one 0.1-wide bin)
    rng = np.random.default_rng(4)
    train, drifted = rng.beta(1, 200, 100_000), rng.beta(1, 100, 5_000)  # scores doubled, still under 0.1
    fixed = [round(0.1 * i, 1) for i in range(1, 10)]
    quantile = baseline.quantile_edges(train)
    # WHEN the window's PSI is taken on each set of bins
    on_fixed = baseline.psi(baseline.bin_counts(train, fixed), baseline.bin_counts(drifted, fixed))
    on_quantiles = baseline.psi(baseline.bin_counts(train, quantile), baseline.bin_counts(drifted, quantile))
    # THEN the fixed bins show no change, the quantile bins a large one
    assert on_fixed < 0.01 and on_quantiles > 0.25


@pytest.fixture(scope="module")
def overfit_baseline(churn_spec, prepared, tmp_path_factory):
    """GIVEN a model that overfits its training rows (deep trees, a large step, no early stopping): surer of them
    than of any row it did not fit. WHEN the baseline job runs on the prepared splits."""
    from tests.support.training import train_model

    model_dir = train_model(churn_spec, prepared, tmp_path_factory.mktemp("models") / "overfit",
                            "--num-round", "40", "--max-depth", "10", "--eta", "1.0", "--min-child-weight", "0")
    out = tmp_path_factory.mktemp("overfit-baseline")
    assert baseline.main(["--model-spec", churn_spec.to_json(), "--model-dir", model_dir, "--train-dir", prepared["train"],
                          "--validation-dir", prepared["validation"], "--output-dir", str(out),
                          # The tests read statistics.json only: attributions of a few rows, not TreeSHAP of 2,000 rows
                          # through 40 full depth-10 trees (~4 CPU-s).
                          "--shap-sample-rows", "50"]) == 0
    return model_dir, json.loads((out / "statistics.json").read_text())


def test_the_prediction_baseline_is_of_the_validation_scores_not_the_training_scores(overfit_baseline, churn_spec, prepared):
    from pipeline_code.training.model_io import load_model, predict, read_split

    model_dir, statistics = overfit_baseline
    model = load_model(model_dir)
    columns = [*churn_spec.frame_features, churn_spec.target]
    train = read_split(prepared["train"], churn_spec, what="train", columns=columns)
    validation = read_split(prepared["validation"], churn_spec, what="validation", columns=[*churn_spec.features, churn_spec.target])
    in_sample, out_of_sample = predict(model, train), predict(model, validation)
    # The model is overfit: its training scores are far surer than its validation scores.
    sure = lambda s: float(np.mean(np.minimum(s, 1 - s) < 0.02))  # noqa: E731 - share within 0.02 of 0 or 1
    assert sure(in_sample) > sure(out_of_sample) + 0.2
    # THEN the prediction baseline is the validation scores' (computed here independently), and says so
    prediction = statistics["prediction"]
    assert (prediction["split"], prediction["rows"]) == ("validation", len(validation))
    assert prediction["mean"] == pytest.approx(float(np.mean(out_of_sample)))
    assert prediction["positive_rate_at_threshold"] == pytest.approx(float(np.mean(out_of_sample >= model.threshold)))
    edges = prediction["histogram"]["bin_edges"]
    cuts = np.quantile(out_of_sample, np.linspace(0, 1, 11)[1:-1])
    assert set(np.round(cuts, 12)) <= set(np.round(edges, 12))
    counts = [int(np.sum((out_of_sample >= lo) & (out_of_sample < hi)))
              for lo, hi in zip([-np.inf, *edges], [*edges, np.inf])]
    assert prediction["histogram"]["counts"] == counts
    # ... not the training scores', and the features' and target's baselines stay the training rows'
    assert edges != baseline.quantile_edges(in_sample)
    assert prediction["quantiles"]["p50"] == pytest.approx(float(np.quantile(out_of_sample, 0.5)))
    assert statistics["rows"] == len(train)
    assert statistics["features"]["tenure_months"]["count"] == len(train)
    assert statistics["target"]["positive_rate"] == pytest.approx(float(train[churn_spec.target].mean()))


def test_an_empty_validation_split_is_refused_naming_why(churn_spec, strong_model, prepared, tmp_path, capsys):
    empty = tmp_path / "validation"
    empty.mkdir()
    pd.read_parquet(Path(prepared["validation"]) / "validation.parquet").head(0).to_parquet(empty / "validation.parquet")
    code = baseline.main(["--model-spec", churn_spec.to_json(), "--model-dir", strong_model, "--train-dir", prepared["train"],
                          "--validation-dir", str(empty), "--output-dir", str(tmp_path / "out")])
    assert code == 1
    assert f"validation split at {str(empty)!r} is empty: the prediction baseline is of the model's scores on it" in capsys.readouterr().err

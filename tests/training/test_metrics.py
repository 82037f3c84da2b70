"""metrics / fairness / SHAP: cross-checked against scikit-learn and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from pipeline_code.training import explain, metrics, train


@pytest.fixture(scope="module")
def scored(strong_model, test_frame, churn_spec):
    """Real predictions of the trained model on the real frozen test set."""
    model = train.load_model(strong_model)
    y = test_frame[churn_spec.target].to_numpy()
    return {"model": model, "y": y, "p": train.predict(model, test_frame), "frame": test_frame}


def test_headline_metrics_match_scikit_learn(scored):
    y, p = scored["y"], scored["p"]
    h = metrics.headline(y, p)
    predicted = (p >= 0.5).astype(int)
    assert h["auc"] == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)
    assert h["pr_auc"] == pytest.approx(sk.average_precision_score(y, p), abs=1e-12)
    assert h["log_loss"] == pytest.approx(sk.log_loss(y, p), abs=1e-9)
    assert h["brier"] == pytest.approx(sk.brier_score_loss(y, p), abs=1e-12)
    assert h["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    assert h["precision"] == pytest.approx(sk.precision_score(y, predicted, zero_division=0))
    assert h["recall"] == pytest.approx(sk.recall_score(y, predicted, zero_division=0))
    assert h["f1"] == pytest.approx(sk.f1_score(y, predicted, zero_division=0))
    assert h["positive_rate"] == pytest.approx(predicted.mean())
    tn, fp, fn, tp = sk.confusion_matrix(y, predicted).ravel()
    assert h["confusion"] == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def test_auc_handles_ties_like_scikit_learn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    p = np.round(rng.random(2000) * 0.3 + 0.5 * y * rng.random(2000), 1)  # heavy ties
    assert metrics.roc_auc(y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)
    assert metrics.pr_auc(y, p) == pytest.approx(sk.average_precision_score(y, p), abs=1e-12)
    assert metrics.roc_auc(np.ones(5), np.linspace(0, 1, 5)) is None  # one class: undefined


def test_slice_metrics_match_scikit_learn_per_slice(scored):
    y, p, frame = scored["y"], scored["p"], scored["frame"]
    report = metrics.slice_metrics({"contract_type": frame["contract_type"]}, y, p, min_rows=50)
    values = report["contract_type"]["values"]
    assert set(values) == set(frame["contract_type"].unique())
    for value, entry in values.items():
        mask = (frame["contract_type"] == value).to_numpy()
        assert entry["rows"] == mask.sum()
        assert entry["auc"] == pytest.approx(sk.roc_auc_score(y[mask], p[mask]), abs=1e-12)
        assert entry["gated"] is (entry["rows"] >= 50)


def test_missing_values_form_their_own_reported_group(scored):
    y, p, frame = scored["y"], scored["p"], scored["frame"]
    assert frame["gender"].isna().any()
    report = metrics.fairness(frame["gender"], y, p, attribute="gender", min_group_rows=50)
    assert metrics.MISSING_GROUP in report["groups"]
    assert metrics.MISSING_GROUP not in report["eligible_groups"]
    assert sum(g["rows"] for g in report["groups"].values()) == len(frame)


def test_fairness_on_a_hand_built_example_has_the_known_values():
    """Group a: 4 rows, 2 flagged (rate 0.5), positives [1,1,0,0] flagged [1,0,1,0] -> TPR 0.5.
    Group b: 4 rows, 1 flagged (rate 0.25), positives [1,0,0,0] flagged [1,0,0,0] -> TPR 1.0.
    Group c: 2 rows (below min_group_rows=3): reported, not used."""
    groups = ["a"] * 4 + ["b"] * 4 + ["c"] * 2
    y = [1, 1, 0, 0, 1, 0, 0, 0, 1, 0]
    p = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.2, 0.1, 0.99, 0.99]
    report = metrics.fairness(groups, y, p, attribute="g", min_group_rows=3)
    assert report["eligible_groups"] == ["a", "b"]
    assert report["groups"]["a"]["positive_rate"] == 0.5
    assert report["groups"]["b"]["positive_rate"] == 0.25
    assert report["demographic_parity_difference"] == pytest.approx(0.25)
    assert report["disparate_impact"] == pytest.approx(0.5)
    assert report["equal_opportunity_difference"] == pytest.approx(0.5)
    assert report["groups"]["c"]["eligible"] is False and report["groups"]["c"]["positive_rate"] == 1.0
    assert report["most_favoured_group"] == "a" and report["least_favoured_group"] == "b"


def test_fairness_per_group_rates_match_scikit_learn(scored):
    y, p, frame = scored["y"], scored["p"], scored["frame"]
    report = metrics.fairness(frame["gender"], y, p, attribute="gender", min_group_rows=50)
    for group in report["eligible_groups"]:
        mask = (frame["gender"] == group).to_numpy()
        predicted = (p[mask] >= 0.5).astype(int)
        assert report["groups"][group]["true_positive_rate"] == pytest.approx(sk.recall_score(y[mask], predicted))
        assert report["groups"][group]["positive_rate"] == pytest.approx(predicted.mean())
    rates = [report["groups"][g]["positive_rate"] for g in report["eligible_groups"]]
    assert report["demographic_parity_difference"] == pytest.approx(max(rates) - min(rates))
    assert report["disparate_impact"] == pytest.approx(min(rates) / max(rates))


def test_fairness_cannot_be_assessed_with_fewer_than_two_groups():
    report = metrics.fairness(["a"] * 10 + [None] * 5, [0, 1] * 7 + [1], [0.6] * 15, attribute="g", min_group_rows=5)
    assert report["demographic_parity_difference"] is None and report["disparate_impact"] is None
    assert "cannot be assessed" in report["note"]


def test_shap_contributions_sum_to_the_margin(scored):
    model, frame = scored["model"], scored["frame"].head(500)
    contributions = explain.shap_values(model, frame)
    margin = model.estimator.predict(train.to_dmatrix(model, frame), output_margin=True)
    np.testing.assert_allclose(contributions.sum(axis=1), margin, atol=1e-4)
    assert contributions.shape == (500, len(model.feature_names) + 1)


def test_attributions_rank_features_by_mean_absolute_shap(scored):
    report = explain.attributions(scored["model"], scored["frame"], max_rows=800)
    ranked = [report["features"][name]["mean_abs_shap"] for name in report["ranking"]]
    assert ranked == sorted(ranked, reverse=True)
    assert report["ranking"][0] in ("contract_type", "tenure_months")  # the generator's strongest drivers
    assert report["rows"] == 800
    assert sum(f["share"] for f in report["features"].values()) == pytest.approx(1.0)


def test_model_quality_block_has_the_registry_format(scored):
    block = metrics.model_quality(scored["y"], scored["p"])
    for key in ("auc", "accuracy", "precision", "recall", "f1", "true_positive_rate", "false_positive_rate"):
        assert set(block[key]) == {"value", "standard_deviation"}
        assert block[key]["standard_deviation"] == "NaN"
    assert block["auc"]["value"] == pytest.approx(sk.roc_auc_score(scored["y"], scored["p"]))
    cm = block["confusion_matrix"]
    assert cm["0"]["0"] + cm["0"]["1"] + cm["1"]["0"] + cm["1"]["1"] == len(scored["y"])
    curve = block["receiver_operating_characteristic_curve"]
    assert curve["false_positive_rates"][0] == 0.0 and curve["true_positive_rates"][-1] == 1.0


def test_metrics_helpers_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.headline([0, 1], [0.5])


def _sklearn_ece(y, p, bins=10):
    """ECE from scikit-learn's reliability curve (uniform bins) weighted by numpy's bin counts."""
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    counts = np.histogram(p, bins=bins, range=(0.0, 1.0))[0]
    counts = counts[counts > 0]
    return float(np.sum(counts / len(p) * np.abs(observed - predicted)))


def test_expected_calibration_error_matches_scikit_learns_reliability_curve(scored):
    """GIVEN the real model's scores on the real test set, and scores squashed towards 0.5 (miscalibrated, same
    ranking) WHEN the ECE is computed THEN it is scikit-learn's reliability curve weighted by each bin's rows, and the
    squashed scores' ECE is larger while their AUC is unchanged."""
    y, p = scored["y"], scored["p"]
    h = metrics.headline(y, p)
    assert h["ece"] == pytest.approx(_sklearn_ece(y, p), abs=1e-12)
    squashed = 0.5 + (p - 0.5) * 0.3
    assert metrics.expected_calibration_error(y, squashed) == pytest.approx(_sklearn_ece(y, squashed), abs=1e-12)
    assert metrics.expected_calibration_error(y, squashed) > h["ece"] + 0.02
    assert metrics.roc_auc(y, squashed) == pytest.approx(h["auc"], abs=1e-12)


def test_expected_calibration_error_on_hand_built_bins():
    # Bin (0.1, 0.2]: 4 rows at 0.2, one positive (observed 0.25, off by 0.05); bin (0.8, 0.9]: 6 rows at 0.9, all
    # positive (off by 0.1). Weighted: 0.4 * 0.05 + 0.6 * 0.1 = 0.08. A score on a bin's upper edge is in that bin.
    y = np.array([1, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    p = np.array([0.2] * 4 + [0.9] * 6)
    assert metrics.expected_calibration_error(y, p) == pytest.approx(0.08, abs=1e-12)
    assert metrics.expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0
    assert np.isnan(metrics.expected_calibration_error(np.array([]), np.array([])))

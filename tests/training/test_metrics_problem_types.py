"""Multiclass and regression metrics, fairness and SHAP: cross-checked against scikit-learn and hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from pipeline_code.core import problem
from pipeline_code.training import explain, metrics_multiclass, metrics_regression, train
from tests.support.problem_types import make_spec


@pytest.fixture(scope="module")
def multiclass():
    """Probabilities with signal for 4 classes (one of them rare), 3000 rows."""
    rng = np.random.default_rng(7)
    y = rng.choice(4, 3000, p=[0.5, 0.3, 0.15, 0.05])
    logits = rng.normal(size=(3000, 4)) + 1.5 * np.eye(4)[y]
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, P


def test_multiclass_headline_matches_scikit_learn(multiclass):
    y, P = multiclass
    h = metrics_multiclass.headline(y, P, ["a", "b", "c", "d"])
    predicted = P.argmax(axis=1)
    assert h["auc"] == pytest.approx(sk.roc_auc_score(y, P, multi_class="ovr", average="macro"), abs=1e-12)
    assert h["log_loss"] == pytest.approx(sk.log_loss(y, P), abs=1e-9)
    assert h["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    for ours, theirs in (("macro_f1", sk.f1_score), ("macro_precision", sk.precision_score), ("macro_recall", sk.recall_score)):
        assert h[ours] == pytest.approx(theirs(y, predicted, labels=range(4), average="macro", zero_division=0))
    assert h["confusion"]["matrix"] == sk.confusion_matrix(y, predicted, labels=range(4)).tolist()
    assert h["brier"] == pytest.approx(np.mean(((P - np.eye(4)[y]) ** 2).sum(axis=1)))
    assert h["per_class"]["d"]["recall"] == pytest.approx(sk.recall_score(y == 3, predicted == 3))
    assert h["class_counts"] == {c: int((y == i).sum()) for i, c in enumerate("abcd")}


def test_multiclass_auc_averages_the_classes_present_and_is_undefined_with_one(multiclass):
    y, P = multiclass
    present = y != 3
    expected = np.mean([sk.roc_auc_score(y[present] == k, P[present, k]) for k in range(3)])
    assert metrics_multiclass.macro_auc(y[present], P[present]) == pytest.approx(expected)
    assert metrics_multiclass.macro_auc(np.zeros(10), P[:10]) is None


def test_multiclass_fairness_is_per_class_parity_of_the_predicted_classes():
    # GIVEN two groups of 200: group x is predicted class 0 half the time, group y a quarter of the time
    P = np.zeros((400, 2 + 1))
    P[:100, 0] = P[100:200, 1] = 1.0
    P[200:250, 0] = P[250:400, 2] = 1.0
    groups = np.array(["x"] * 200 + ["y"] * 200)
    report = metrics_multiclass.fairness(groups, np.zeros(400), P, ["p", "q", "r"], attribute="g", min_group_rows=100)
    assert report["per_class"]["p"]["demographic_parity_difference"] == pytest.approx(0.25)
    assert report["per_class"]["p"]["disparate_impact"] == pytest.approx(0.5)
    # THEN the worst class decides: class r (0 vs 0.75) has the largest gap and the smallest ratio
    assert (report["demographic_parity_difference"], report["demographic_parity_class"]) == (0.75, "r")
    assert (report["disparate_impact"], report["disparate_impact_class"]) == (0.0, "q")
    assert report["per_class"]["q"]["predicted"] == 100


def test_multiclass_model_quality_is_the_registry_format(multiclass):
    y, P = multiclass
    block = metrics_multiclass.model_quality(y, P, ["a", "b", "c", "d"])
    predicted = P.argmax(axis=1)
    assert block["weighted_f1"]["value"] == pytest.approx(sk.f1_score(y, predicted, average="weighted"))
    assert block["weighted_recall"]["value"] == pytest.approx(sk.recall_score(y, predicted, average="weighted"))
    assert block["confusion_matrix"]["a"]["b"] == int(((y == 0) & (predicted == 1)).sum())
    assert block["accuracy_best_constant_classifier"]["value"] == pytest.approx((y == 0).mean())


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(3)
    y = rng.gamma(2.0, 20.0, 2500)
    return y, y + rng.normal(2.0, 10.0, 2500)


def test_regression_headline_matches_scikit_learn(regression):
    y, p = regression
    h = metrics_regression.headline(y, p)
    assert h["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, p)))
    assert h["mae"] == pytest.approx(sk.mean_absolute_error(y, p))
    assert h["r2"] == pytest.approx(sk.r2_score(y, p))
    assert h["bias"] == pytest.approx(np.mean(p - y))
    assert h["abs_error_quantiles"]["p90"] == pytest.approx(np.quantile(np.abs(p - y), 0.9))
    assert metrics_regression.r2(np.full(5, 3.0), np.arange(5.0)) is None  # a constant target: undefined, not 1 or -inf


def test_regression_fairness_is_parity_of_errors_relative_to_each_groups_values(regression):
    y, p = regression
    groups = np.where(np.arange(len(y)) % 2, "odd", "even")
    worse = np.where(groups == "odd", p + 3 * (p - y), p)  # the odd rows' errors are 4x as large
    report = metrics_regression.fairness(groups, y, worse, attribute="g", min_group_rows=100)
    relative = {g: np.abs(worse - y)[groups == g].mean() / np.abs(y[groups == g]).mean() for g in ("even", "odd")}
    assert report["error_measure"] == "relative"
    assert report["groups"]["odd"]["mae"] == pytest.approx(np.abs(worse - y)[groups == "odd"].mean())
    assert report["error_parity_ratio"] == pytest.approx(relative["even"] / relative["odd"])
    assert report["highest_error_group"] == "odd"
    small = metrics_regression.fairness(groups, y, p, attribute="g", min_group_rows=10**6)
    assert small["error_parity_ratio"] is None and small["bias_gap"] is None and "cannot be assessed" in small["note"]


def test_on_a_skewed_target_equal_shares_of_error_are_parity_and_opposite_biases_are_not():
    """GIVEN house prices three times higher in one group WHEN every price is predicted 10 % too high in both groups
    THEN error parity holds (absolute MAE would read 0.33) and there is no bias gap; WHEN one group is under- and the
    other over-valued by the same amount THEN error parity fails (absolute MAE would read 1.0) and the gap shows it."""
    rng = np.random.default_rng(3)
    groups = np.repeat(["city", "rural"], 2000)
    y = np.where(groups == "city", 300_000.0, 100_000.0) * rng.lognormal(0.0, 0.3, groups.size)
    proportional = metrics_regression.fairness(groups, y, y * 1.1, attribute="area", min_group_rows=100)
    assert proportional["error_parity_ratio"] == pytest.approx(1.0) and proportional["bias_gap"] == pytest.approx(0.0, abs=1e-9)
    opposite = metrics_regression.fairness(groups, y, y + np.where(groups == "city", -30_000.0, 30_000.0), attribute="area",
                                           min_group_rows=100)
    assert opposite["error_parity_ratio"] < 0.5 and opposite["mae_difference"] == pytest.approx(0.0, abs=1e-6)
    assert (opposite["most_over_estimated_group"], opposite["most_under_estimated_group"]) == ("rural", "city")
    assert opposite["bias_gap"] > 0.3


@pytest.mark.parametrize("near_zero", [0.0, 0.01])
def test_a_group_whose_target_is_near_zero_makes_it_absolute_errors_and_a_bias_gap_over_the_shared_scale(near_zero):
    """A group whose mean |target| is 0, or a sliver of the others' (here 0.01 against 4), has no meaningful relative
    error: a ratio of relative errors would be 1e-7 and fail every model, so the measure is absolute MAE, and the bias
    gap is of absolute bias over the compared groups' mean |target| (one scale, still a share of the target's size)."""
    rng = np.random.default_rng(4)
    groups = np.repeat(["a", "b"], 500)
    y = np.where(groups == "a", near_zero, rng.normal(0.0, 5.0, groups.size))
    report = metrics_regression.fairness(groups, y, y + 1.0, attribute="g", min_group_rows=100)
    assert report["error_measure"] == "absolute" and report["error_parity_ratio"] == pytest.approx(1.0)
    assert report["bias_gap"] == pytest.approx(0.0, abs=1e-9)  # both over-estimated by 1: no gap
    # WHEN group a is over-estimated by 1 and group b under-estimated by 1 THEN the gap is 2 over the shared scale
    opposite = metrics_regression.fairness(groups, y, y + np.where(groups == "a", 1.0, -1.0), attribute="g",
                                           min_group_rows=100)
    scale = (abs(near_zero) + np.abs(y[groups == "b"]).mean()) / 2
    assert opposite["error_parity_ratio"] == pytest.approx(1.0) and opposite["bias_gap"] == pytest.approx(2.0 / scale)
    assert (opposite["most_over_estimated_group"], opposite["most_under_estimated_group"]) == ("a", "b")
    assert metrics_regression.bias_measure_text(opposite) == "mean error over the compared groups' mean |target|"


def test_a_target_of_zero_in_every_compared_group_has_no_bias_gap():
    """GIVEN every compared row's target 0 THEN no scale makes its bias a share: the gap is None (the gate refuses the
    report as incomplete), while error parity, a ratio of MAE, is still computed."""
    groups = np.repeat(["a", "b"], 200)
    report = metrics_regression.fairness(groups, np.zeros(400), np.where(groups == "a", 1.0, 2.0), attribute="g",
                                         min_group_rows=100)
    assert report["error_parity_ratio"] == pytest.approx(0.5) and report["bias_gap"] is None


def test_regression_model_quality_is_the_registry_format(regression):
    y, p = regression
    block = metrics_regression.model_quality(y, p)
    assert block["mse"]["value"] == pytest.approx(sk.mean_squared_error(y, p))
    assert set(block) == {"mae", "mse", "rmse", "r2"}


@pytest.mark.parametrize("problem_type", [problem.MULTICLASS, problem.REGRESSION])
def test_shap_attributions_rank_the_features_of_every_type(problem_type, tmp_path):
    """GIVEN a small model of each type WHEN explained THEN one attribution per feature, in the type's units, and a
    multiclass model's contributions summed over its classes."""
    import xgboost as xgb

    spec = make_spec(problem_type)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"visits_30d": rng.integers(0, 50, 600).astype(float), "log_session_minutes": rng.normal(2, 1, 600),
                          "discount_rate": rng.random(600), "channel": rng.choice(["web", "app", "store"], 600),
                          "age_band": rng.choice(["young", "middle", "senior"], 600)})
    signal = frame["visits_30d"].to_numpy()
    label = np.digitize(signal, [15, 30]) if problem_type == problem.MULTICLASS else 3 * signal + rng.normal(0, 1, 600)
    metadata = train.build_feature_metadata(spec, frame)
    params = train.Hyperparameters(num_round=20).xgb_params(1, problem_type, len(spec.classes))
    params.pop("eval_metric")
    booster = xgb.train(params, xgb.DMatrix(train.encode(frame, metadata), label=label, enable_categorical=True), 20)
    report = explain.attributions(train.TrainedModel(booster, metadata), frame, max_rows=200)
    assert report["ranking"][0] == "visits_30d"
    assert set(report["features"]) == set(spec.features)
    assert report["units"] == {problem.MULTICLASS: "log-odds (margin), summed over the classes",
                               problem.REGRESSION: "target units"}[problem_type]


def test_multiclass_expected_calibration_error_is_the_top_label_ece(multiclass):
    """The top-label ECE: the binary ECE of "the predicted class is right" against the predicted class's probability,
    cross-checked with scikit-learn's reliability curve."""
    from sklearn.calibration import calibration_curve

    y, P = multiclass
    confidence, correct = P.max(axis=1), (P.argmax(axis=1) == y).astype(int)
    observed, predicted = calibration_curve(correct, confidence, n_bins=10, strategy="uniform")
    counts = np.histogram(confidence, bins=10, range=(0.0, 1.0))[0]
    expected = float(np.sum(counts[counts > 0] / len(y) * np.abs(observed - predicted)))
    assert metrics_multiclass.headline(y, P, ["a", "b", "c", "d"])["ece"] == pytest.approx(expected, abs=1e-12)

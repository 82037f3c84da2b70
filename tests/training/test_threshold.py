"""Decision thresholds chosen on validation data: each policy against a brute-force search over every cut."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline_code.core.decision import DecisionError, DecisionPolicy, parse_decision, parse_class_weight
from pipeline_code.training.threshold import choose


@pytest.fixture(scope="module")
def rare():
    """5,000 validation rows at ~2 % positives whose scores rank positives higher but stay far below 0.5."""
    rng = np.random.default_rng(7)
    y = (rng.random(5000) < 0.02).astype(float)
    logit = -5.0 + 1.5 * y + rng.normal(0, 0.8, 5000)
    return y, 1 / (1 + np.exp(-logit))


def brute_force(y, p, score):
    """The threshold among all distinct scores with the best ``score(tp, fp, fn)`` (ties: the highest threshold)."""
    best = None
    for t in sorted(set(p), reverse=True):
        predicted = p >= t
        tp, fp = float((predicted & (y == 1)).sum()), float((predicted & (y == 0)).sum())
        value = score(tp, fp, float(y.sum()) - tp)
        if best is None or value > best[0] + 1e-12:
            best = (value, t)
    return best[1]


def test_at_a_fixed_half_a_rare_event_model_flags_nothing(rare):
    y, p = rare
    decided = choose(y, p, parse_decision(None))
    assert decided["threshold"] == 0.5 and decided["validation"]["predicted_positives"] == 0


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_max_f_beta_is_the_best_f_beta_over_every_cut(rare, beta):
    y, p = rare
    b2 = beta ** 2
    expected = brute_force(y, p, lambda tp, fp, fn: (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp) if tp else 0.0)
    decided = choose(y, p, parse_decision({"policy": "max_f_beta", "beta": beta}))
    assert decided["threshold"] == expected
    assert decided["validation"]["recall"] > 0 and decided["validation"]["predicted_positives"] > 0


def test_target_recall_is_the_highest_threshold_that_reaches_it(rare):
    y, p = rare
    decided = choose(y, p, parse_decision({"policy": "target_recall", "target": 0.6}))
    t = decided["threshold"]
    assert decided["validation"]["recall"] >= 0.6
    higher = np.unique(p[p > t]).min()
    assert ((p >= higher) & (y == 1)).sum() / y.sum() < 0.6  # one step up misses the target


def test_target_precision_is_the_lowest_threshold_still_precise_enough():
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0], dtype=float)
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    # precision at each cut: 1, 1, 2/3, 3/4, 3/5, 1/2, 4/7, 1/2
    assert choose(y, p, parse_decision({"policy": "target_precision", "target": 0.75}))["threshold"] == 0.6
    assert choose(y, p, parse_decision({"policy": "target_recall", "target": 0.75}))["threshold"] == 0.6


def test_target_precision_unreachable_takes_the_most_precise_cut_and_says_so():
    y = np.array([0, 1, 0, 1, 0], dtype=float)
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    decided = choose(y, p, parse_decision({"policy": "target_precision", "target": 0.9}))
    assert decided["threshold"] == 0.6  # precision 1/2 at 0.8 and at 0.6: of equals, the cut that catches more
    assert decided["note"] == ("no threshold reaches precision 0.9 on the validation set; took the most precise one "
                               "(0.5000)")


def test_min_expected_cost_minimises_the_cost_over_every_cut(rare):
    y, p = rare
    expected = brute_force(y, p, lambda tp, fp, fn: -(1.0 * fp + 25.0 * fn))
    decided = choose(y, p, parse_decision({"policy": "min_expected_cost", "false_negative_cost": 25}))
    assert decided["threshold"] == expected


def test_without_validation_positives_the_fixed_threshold_is_kept_with_a_note():
    decided = choose(np.zeros(10), np.linspace(0, 1, 10), parse_decision({"policy": "max_f_beta"}))
    assert decided["threshold"] == 0.5
    assert decided["note"] == "the validation set has no positives: kept the fixed threshold 0.5"


@pytest.mark.parametrize("block, problems", [
    ({"policy": "best"}, ["decision.policy: 'best' is not a policy; allowed: fixed, max_f_beta, target_recall, "
                          "target_precision, min_expected_cost"]),
    ({"policy": "target_recall"}, ["decision.target: required by policy 'target_recall', e.g. target: 0.8"]),
    ({"policy": "max_f_beta", "target": 0.8}, ["decision.target: not read by policy 'max_f_beta' (it reads: beta)"]),
    ({"policy": "fixed", "threshold": 1.0}, ["decision.threshold: must be in (0, 1), got 1.0"]),
    ({"policy": "target_recall", "target": "high"}, ["decision.target: must be a number, got 'high'"]),
    ({"policy": "fixed", "cutoff": 0.3}, ["decision.cutoff: unknown field; allowed: policy, threshold, beta, target, "
                                          "false_positive_cost, false_negative_cost"]),
])
def test_a_policy_mistake_is_one_line_per_field(block, problems):
    with pytest.raises(DecisionError) as caught:
        parse_decision(block)
    assert caught.value.problems == problems


def test_defaults_are_a_fixed_half_and_no_class_weighting():
    assert parse_decision(None) == DecisionPolicy() and DecisionPolicy().fixed_threshold == 0.5
    assert parse_decision({"policy": "max_f_beta"}).beta == 1.0
    assert parse_class_weight(None) == "none"
    with pytest.raises(DecisionError, match="class_weight: 'auto' is not a class weighting; allowed: none, balanced"):
        parse_class_weight("auto")

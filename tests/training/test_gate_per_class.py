"""A multiclass challenger that loses one class: the gate's per-class recall check (generated 40-class test sets with a
long tail, fixed seeds). The margin on macro F1 hardly moves when one rare class is lost, so without a check aimed at
each class a challenger a little better elsewhere destroyed a class unseen."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline_code.training import metrics_multiclass
from pipeline_code.training.gate import CLASS_RECALL_FALSE_FAILURE, class_recall_check
from pipeline_code.training.spec import DEFAULT_GATE

CLASSES = [f"c{i:02d}" for i in range(40)]


def _test_set(rng, rows: int = 4500):
    """Labels of a 40-class test set: one class 25 %, ten under 1 % (two at 0.2 %, four at 0.6 %, four at 0.8 %)."""
    tail = [0.002, 0.002] + [0.006] * 4 + [0.008] * 4
    middle = np.array([1 / (k + 1) ** 0.6 for k in range(29)])
    shares = np.array([0.25, *(middle / middle.sum() * (1 - 0.25 - sum(tail))), *tail])
    return rng.choice(len(shares), rows, p=shares)


def _model(rng, y, signal: float = 2.5, *, lost: int = -1, lost_signal: float = 0.0):
    """One model's per-class metrics on ``y``: each row's true class ``signal`` above standard normal noise (the class
    ``lost``: ``lost_signal`` only, a model that has (nearly) not learnt it)."""
    margins = rng.normal(0.0, 1.0, (len(y), len(CLASSES)))
    boost = np.full(len(y), signal)
    if lost >= 0:
        boost[y == lost] = lost_signal
    margins[np.arange(len(y)), y] += boost
    P = np.exp(margins) / np.exp(margins).sum(axis=1, keepdims=True)
    return metrics_multiclass.headline(y, P, CLASSES)["per_class"]


def _equal_models(rng, y):
    """Two models of the same true per-class recall (from 0.3 to 0.99 over the classes) whose hits on each class's test
    rows are drawn independently: the worst case for a false failure (correlated errors differ less)."""
    rows = np.bincount(y, minlength=len(CLASSES))
    truth = np.linspace(0.3, 0.99, len(CLASSES))[rng.permutation(len(CLASSES))]
    def per_class():
        hits = rng.binomial(rows, truth)
        return {c: {"rows": int(n), "recall": (h / n if n else None)} for c, n, h in zip(CLASSES, rows, hits)}
    return per_class(), per_class()


def test_two_equally_good_models_fail_the_per_class_recall_check_by_chance_less_than_5_percent_over_all_classes():
    # GIVEN 2,000 fresh 40-class test sets, each scored by two models of the same quality, and no tolerance beyond the
    # noise bound
    rng = np.random.default_rng(20261207)
    strict = dataclasses.replace(DEFAULT_GATE, max_class_recall_drop=0.0)
    failures, tested = 0, []
    for _ in range(2000):
        check, _notes = class_recall_check(*_equal_models(rng, _test_set(rng)), strict)
        failures += not check["passed"]
        tested.append(check["classes"])
    # THEN the check failed on fewer than 5 % of them over all the classes it tested
    assert failures / 2000 < CLASS_RECALL_FALSE_FAILURE, failures
    # (and it tested the tail classes with enough rows: more than 35 of the 40 on each set)
    assert min(tested) > 35


def test_a_challenger_that_destroys_a_tail_class_is_refused_naming_the_class_both_recalls_the_rows_and_the_bound():
    # GIVEN a champion and a challenger as good on every class but one of 0.6 % (27 of 4,500 test rows), whose recall
    # the challenger loses (its signal for that class is gone)
    rng = np.random.default_rng(7)
    y = _test_set(rng)
    lost = 32
    champion, challenger = _model(rng, y), _model(rng, y, lost=lost)
    mine, theirs, rows = challenger[CLASSES[lost]]["recall"], champion[CLASSES[lost]]["recall"], champion[CLASSES[lost]]["rows"]
    assert theirs - mine > 0.5, (mine, theirs)  # precondition: the class is (nearly) lost
    # WHEN gated with the default tolerance
    check, _notes = class_recall_check(challenger, champion, DEFAULT_GATE)
    # THEN the check fails, naming the class, both recalls, its rows and the bound
    assert not check["passed"]
    assert check["class"] == CLASSES[lost]
    allowed = check["allowed_drop"]
    assert check["message"] == (
        f"per-class recall: class {CLASSES[lost]} recall {mine:.4f} vs champion {theirs:.4f} on {rows} test rows: drop "
        f"{theirs - mine:.4f} > allowed {allowed:.4f} (gate.max_class_recall_drop 0.0200 + {check['z']:.2f} standard "
        f"errors of {check['se']:.4f} + 1/{rows}: two equally good models differ by more with probability 0.05 over the "
        f"{check['classes']} classes with >= 10 test rows)")


def test_a_class_with_fewer_test_rows_than_the_minimum_is_reported_not_gated():
    # GIVEN a challenger that loses one of the two 0.2 % classes (about 9 test rows, fewer than min_slice_positives)
    rng = np.random.default_rng(11)
    y = _test_set(rng)
    champion, challenger = _model(rng, y), _model(rng, y, lost=31)
    small = sorted(c for c in CLASSES if champion[c]["rows"] < DEFAULT_GATE.min_slice_positives)
    assert CLASSES[31] in small, small  # precondition
    check, notes = class_recall_check(challenger, champion, DEFAULT_GATE)
    # THEN it is not judged, and a note names it
    assert check["passed"], check["message"]
    assert notes == [f"per-class recall not compared for {len(small)} class(es) with < 10 test rows "
                     f"(gate.min_slice_positives): {', '.join(small)}"]
    assert check["message"].startswith(f"per-class recall: no class of the {40 - len(small)} with >= 10 test rows drops "
                                       "below the champion's by more than gate.max_class_recall_drop 0.0200 plus its noise")


def test_recall_traded_for_precision_against_a_champion_that_predicts_a_class_widely_is_no_loss():
    # GIVEN a champion that predicts class a for nearly every row (recall 1, F1 0.5) and a challenger that predicts it
    # only where it is right (recall 0.66, F1 0.8)
    champion = {"a": {"rows": 228, "recall": 1.0, "f1": 0.5}, "b": {"rows": 300, "recall": 0.1, "f1": 0.18}}
    challenger = {"a": {"rows": 228, "recall": 0.66, "f1": 0.8}, "b": {"rows": 300, "recall": 0.9, "f1": 0.85}}
    check, _notes = class_recall_check(challenger, champion, DEFAULT_GATE)
    # THEN it passes, saying so
    assert check["passed"], check["message"]
    assert check["message"].endswith("; recall traded for precision (F1 no lower than the champion's, who predicts the "
                                      "class more widely): class a 0.6600 vs 1.0000")
    # GIVEN the same recall with a lower F1 than the champion's THEN it is a loss
    challenger["a"]["f1"] = 0.45
    check, _notes = class_recall_check(challenger, champion, DEFAULT_GATE)
    assert not check["passed"] and check["class"] == "a"


def _slice_report(challenger_margins, champion_margins, y, region):
    """A macro-F1-judged report with only the slices of two models' margins over ``region``."""

    def block(margins):
        P = np.exp(margins) / np.exp(margins).sum(axis=1, keepdims=True)
        return {"slices": metrics_multiclass.slice_metrics({"region": region}, y, P, CLASSES, min_rows=50,
                                                           min_positives=10, primary_metric="macro_f1")}
    return {"challenger": block(challenger_margins), "champion": block(champion_margins)}


def test_a_long_tail_slice_is_compared_on_macro_f1_over_the_classes_it_has_enough_rows_of():
    from pipeline_code.training.gate import _slice_checks

    # GIVEN a 40-class test set over two regions (no slice holds every class 10 times) and a champion
    rng = np.random.default_rng(3)
    y = _test_set(rng, 9000)
    region = rng.choice(["eu", "us"], len(y))
    margins = rng.normal(0.0, 1.0, (len(y), len(CLASSES)))
    margins[np.arange(len(y)), y] += 2.5
    # WHEN the challenger is the champion with its answers for eu shuffled
    degraded = margins.copy()
    eu = region == "eu"
    degraded[eu] = margins[eu][rng.permutation(int(eu.sum()))]
    notes: list = []
    checks = _slice_checks(_slice_report(degraded, margins, y, region), DEFAULT_GATE, notes, "multiclass_classification",
                           "macro_f1")
    # THEN the eu slice is compared on the classes it holds 10 times or more, and fails; us passes
    assert [c["slice"] for c in checks] == ["region=eu", "region=us"], notes
    eu_check, us_check = checks
    assert not eu_check["passed"] and us_check["passed"]
    classes = eu_check["classes"]
    assert 20 < len(classes) < 40
    assert eu_check["message"].startswith(
        f"slice region=eu ({int(eu.sum())} rows): challenger macro F1 over the {len(classes)} classes with >= 10 rows "
        "there 0.")


AFTER = "2026-03-01T00:00:00+00:00"


def _out_of_time(monkeypatch, metric: str, challenger_signal: float, *, rows: int = 1500, early: int = 300):
    """The out-of-time comparison evaluate makes of two models (margins over a generated 40-class long tail: the
    champion's true class ``2.5`` above noise, the challenger's ``challenger_signal``) on a frozen test set of
    ``rows`` of which the first ``early`` are at or before ``AFTER`` (the end of the challenger's training data), and
    the multiclass report the gate is given."""
    import pandas as pd
    from types import SimpleNamespace

    from pipeline_code.training import evaluate

    rng = np.random.default_rng(11)
    y = _test_set(rng, rows)
    outputs = {}
    for role, signal in (("champion", 2.5), ("challenger", challenger_signal)):
        margins = rng.normal(0.0, 1.0, (rows, len(CLASSES)))
        margins[np.arange(rows), y] += signal
        outputs[role] = np.exp(margins) / np.exp(margins).sum(axis=1, keepdims=True)
    spec = SimpleNamespace(problem_type="multiclass_classification", primary_metric=metric, target="label",
                           classes=CLASSES)

    def score(model, frame, spec, **sizes):  # the models' outputs on the frame's rows, as evaluate.score reports them
        P = outputs[model][frame["row"].to_numpy()]
        return {"metrics": metrics_multiclass.headline(frame["label"], P, CLASSES), "slices": {}, "_scores": P}

    monkeypatch.setattr(evaluate, "score", score)
    test = pd.DataFrame({"row": np.arange(rows), "label": y})
    times = pd.Series(pd.date_range(end=AFTER, periods=early, freq="h").append(
        pd.date_range(start="2026-03-02T00:00:00+00:00", periods=rows - early, freq="h")))
    block = evaluate.out_of_time_comparison(spec, DEFAULT_GATE, test, times, AFTER, "challenger", "champion",
                                            {"challenger": AFTER, "champion": "2026-01-01T00:00:00+00:00"},
                                            {"min_rows": 50, "min_group_rows": 50})
    whole = {role: {"metrics": metrics_multiclass.headline(y, P, CLASSES), "slices": {}} for role, P in outputs.items()}
    groups = rng.choice(["a", "b"], rows)
    whole["challenger"]["fairness"] = metrics_multiclass.fairness(groups, y, outputs["challenger"], CLASSES,
                                                                  attribute="group", min_group_rows=50)
    report = {"problem_type": "multiclass_classification", "primary_metric": metric, **whole,
              "out_of_time": {"challenger": False, "champion": True, "comparison": block}}
    return block, report, y[early:]


@pytest.mark.parametrize("metric, label", [("macro_f1", "macro F1"), ("auc", "AUC")])
def test_a_long_tail_model_is_compared_out_of_time_on_its_macro_metric_over_the_classes_seen_often_enough(
        monkeypatch, metric, label):
    from pipeline_code.training.gate import decide

    # GIVEN a 40-class long tail whose rows after the challenger's training data lack ten classes 10 times, and a
    # challenger worse than the champion there
    block, report, later = _out_of_time(monkeypatch, metric, challenger_signal=1.5)
    counts = np.bincount(later, minlength=len(CLASSES))
    enough = [c for c, n in zip(CLASSES, counts) if n >= 10]
    left_out = {c: int(n) for c, n in zip(CLASSES, counts) if n < 10}
    assert 2 <= len(enough) < len(CLASSES) and left_out
    # WHEN evaluate compares them and the gate decides
    decision = decide(report, DEFAULT_GATE)
    # THEN the comparison is on the 1200 rows after the cut, on the metric over the classes seen 10 times there
    assert block["basis"] == "out_of_time_rows"
    assert block["compared"]["metric"] == f"compared_{metric}"
    assert (block["compared"]["classes"], block["compared"]["left_out"]) == (enough, left_out)
    assert block["reason"].endswith(
        f"; {label} over the {len(enough)} classes seen >= 10 times there (gate.min_slice_positives); left out: "
        f"{len(left_out)} seen fewer times ({', '.join(f'{c}: {n}' for c, n in left_out.items())}), whose {label} a row "
        "or two would swing while weighing as much as any other class's in the mean")
    # AND the worse challenger is refused there, the message naming the rows and how many classes
    margin = next(c for c in decision.checks if c["name"] == "challenger_margin")
    mine, theirs = block["challenger"]["metrics"][f"compared_{metric}"], block["champion"]["metrics"][f"compared_{metric}"]
    assert not decision.passed and not margin["passed"] and margin["classes"] == enough
    assert margin["message"] == (
        f"challenger {label} over the {len(enough)} classes with >= 10 rows there {mine:.4f} < champion {theirs:.4f} + "
        f"margin {DEFAULT_GATE.challenger_margin:.4f} = {theirs + DEFAULT_GATE.challenger_margin:.4f} on the 1200 test "
        f"rows after {AFTER}")


def test_a_long_tail_model_judged_on_accuracy_is_compared_out_of_time_on_every_row(monkeypatch):
    from pipeline_code.training.gate import decide

    # GIVEN the same long tail judged on accuracy, a mean over rows
    block, report, later = _out_of_time(monkeypatch, "accuracy", challenger_signal=1.5)
    decision = decide(report, DEFAULT_GATE)
    # THEN it is compared after the cut on accuracy over all the rows there, no class left out of it
    assert block["basis"] == "out_of_time_rows" and block["compared"]["metric"] == "accuracy"
    assert block["compared"]["why"].startswith("accuracy over all 1200 rows, a mean over rows in which a class seen fewer "
                                               "than 10 times (")
    margin = next(c for c in decision.checks if c["name"] == "challenger_margin")
    assert not margin["passed"] and margin["message"].startswith(
        f"challenger accuracy {block['challenger']['metrics']['accuracy']:.4f} < champion accuracy ")
    assert margin["message"].endswith(f" on the 1200 test rows after {AFTER}")


def test_a_long_tail_model_whose_rows_after_the_cut_hold_one_class_often_enough_is_compared_on_the_whole_set(
        monkeypatch):
    # GIVEN only 60 rows after the cut: one class seen 10 times there (the head's 25 %), none other
    block, _report, later = _out_of_time(monkeypatch, "macro_f1", challenger_signal=1.5, rows=360, early=300)
    assert sum(np.bincount(later) >= 10) == 1
    # THEN the comparison is on the whole set, and the reason says what a comparison after the cut needs
    assert block["basis"] == "whole_set_favours_challenger" and "compared" not in block
    assert block["reason"].endswith(
        f"(60 after {AFTER}) needs at least 2 classes with 10 rows or more each (gate.min_slice_positives: 10, what a "
        "gated slice of a long tail needs; 1 among the 60)")

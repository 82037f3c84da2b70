"""quality.model_quality on simulated labels with a known truth: a quality drop retrains only when it is more than the
noise of the window's labels (the retrain-quality alarm reads the published auc_drop / quality_drop)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline_code.core.problem import MULTICLASS
from pipeline_code.monitoring import capture, quality
from pipeline_code.monitoring.capture import INFERENCE_TIME, SCORE
from pipeline_code.monitoring.drift import DEFAULT_FALSE_ALARM_RATE
from pipeline_code.training import metrics_multiclass, metrics_regression

DAY = "2026-12-01T10:00:00Z"
BASELINE_AUC = 0.80  # a score shift of 1.19 sd between the classes: AUC = Phi(1.19 / sqrt(2))


def _binary(rng, rows: int, prevalence: float, shift: float = 1.19):
    y = (rng.random(rows) < prevalence).astype(float)
    score = rng.normal(0.0, 1.0, rows) + shift * y
    return pd.DataFrame({"label": y, SCORE: 1.0 / (1.0 + np.exp(-(score - 3.0))), INFERENCE_TIME: DAY})


def _regression(rng, rows: int, noise_scale: float = 1.0):
    x = rng.normal(0.0, 1.0, rows)
    y = 10.0 + 2.0 * x + noise_scale * rng.standard_t(3, rows)  # heavy-tailed errors, as real targets have
    return pd.DataFrame({"label": y, SCORE: 10.0 + 2.0 * x, INFERENCE_TIME: DAY})


@pytest.mark.parametrize("prevalence", [0.5, 0.02])
def test_a_model_whose_auc_has_not_changed_fails_its_quality_check_about_as_often_as_the_false_alarm_rate(prevalence):
    # GIVEN 300 labelled windows of 200 rows (monitoring's min_labeled_rows) from a model whose AUC is still the
    # baseline's: balanced classes, and a rare event (2 % positives: about 4 a window)
    rng = np.random.default_rng(20261201)
    statuses = [quality.model_quality(_binary(rng, 200, prevalence), {"auc": BASELINE_AUC}, min_labeled_rows=200,
                                      max_auc_drop=0.05)["status"] for _ in range(300)]
    # THEN the quality check (and the retrain it asks for) fails on noise at most about monitoring.false_alarm_rate
    # of the time (it failed in 7.5 % of the balanced and 29 % of the rare-event windows when a drop over
    # max_auc_drop failed however few labels measured it)
    failed = statuses.count("fail") / len(statuses)
    assert failed <= 3 * DEFAULT_FALSE_ALARM_RATE, failed


def test_a_real_auc_drop_on_enough_labels_still_fails_and_is_published():
    # GIVEN 1000 labelled rows of a model whose AUC fell from 0.80 to about 0.64
    section = quality.model_quality(_binary(np.random.default_rng(7), 1000, 0.3, shift=0.5), {"auc": BASELINE_AUC},
                                    min_labeled_rows=200, max_auc_drop=0.05)
    # THEN it fails, and auc_drop (the metric the retrain alarm reads) holds the drop
    assert section["status"] == "fail"
    assert section["auc_drop"] > 0.1 and "auc_drop_within_noise" not in section


def test_a_drop_within_the_noise_of_one_positive_is_reported_not_published():
    # GIVEN 200 labelled rows with a single positive, ranked below most negatives: the window's AUC is far under the
    # baseline's, but one positive's rank is all it measures
    frame = pd.DataFrame({"label": [1.0] + [0.0] * 199, SCORE: np.r_[0.1, np.linspace(0.01, 0.99, 199)],
                          INFERENCE_TIME: DAY})
    section = quality.model_quality(frame, {"auc": BASELINE_AUC}, min_labeled_rows=200, max_auc_drop=0.05)
    # THEN the check passes with the drop reported as within the noise, and no auc_drop is published for the alarm
    assert section["status"] == "pass"
    assert "auc_drop" not in section and section["auc_drop_within_noise"] > 0.5
    auc_check = next(c for c in section["checks"] if c["check"] == "auc_drop")
    assert auc_check["status"] == "pass" and auc_check["threshold"] is None  # an infinite noise: no limit reachable
    assert auc_check["detail"].endswith(
        "limit 0.05 raised to the noise inf of 200 labelled rows (1 positives): a window without any change drops that "
        "much with probability 0.01 (monitoring.false_alarm_rate); label more traffic to judge smaller drops")


def test_the_noise_threshold_follows_the_configured_false_alarm_rate():
    y = np.r_[np.ones(10), np.zeros(190)]
    assert quality.auc_drop_noise(BASELINE_AUC, y, alpha=0.001) > quality.auc_drop_noise(BASELINE_AUC, y, alpha=0.05) > 0.05
    assert quality.auc_drop_noise(BASELINE_AUC, np.r_[np.ones(500), np.zeros(500)]) < 0.05
    assert quality.auc_drop_noise(BASELINE_AUC, np.r_[np.ones(1), np.zeros(199)]) == float("inf")


@pytest.mark.parametrize("metric", ["rmse", "mae"])
def test_a_regression_model_that_has_not_changed_fails_its_quality_check_about_as_often_as_the_false_alarm_rate(metric):
    # GIVEN 120 windows of 200 labelled rows with heavy-tailed errors whose distribution has not changed
    rng = np.random.default_rng(11)
    population = _regression(rng, 200_000)
    baseline = metrics_regression.headline(population["label"].to_numpy(), population[SCORE].to_numpy())
    statuses = [quality.model_quality(_regression(rng, 200), baseline, problem_type="regression", primary_metric=metric,
                                      min_labeled_rows=200)["status"] for _ in range(120)]
    # THEN it fails on noise at most about the false-alarm rate (RMSE failed in 12.5 %, MAE in 8.5 % before)
    assert statuses.count("fail") / len(statuses) <= 3 * DEFAULT_FALSE_ALARM_RATE


def test_a_regression_model_whose_errors_doubled_still_fails():
    rng = np.random.default_rng(5)
    population = _regression(rng, 200_000)
    baseline = metrics_regression.headline(population["label"].to_numpy(), population[SCORE].to_numpy())
    section = quality.model_quality(_regression(rng, 1000, noise_scale=2.0), baseline, problem_type="regression",
                                    primary_metric="mae", min_labeled_rows=200)
    assert section["status"] == "fail" and section["quality_drop"] > 0.5


def test_the_verdict_says_a_drop_within_the_noise_asks_no_retrain():
    from pipeline_code.monitoring import report as report_mod

    summary = {"auc_drop": None, "auc_drop_within_noise": 0.71, "auc_drop_noise": None, "model_auc": 0.09}
    assert report_mod.quality_change({"summary": summary, "thresholds": {"max_auc_drop": 0.05}}) == (
        "AUC worse by 0.71 than the evaluation's, within the noise of this window's labels (too few labels to measure "
        "any drop): no retrain")
    summary = {"problem_type": "regression", "primary_metric": "mae", "quality_drop_within_noise": 0.12,
               "quality_drop_noise": 0.15}
    assert report_mod.quality_change({"summary": summary, "thresholds": {"max_quality_drop": 0.1}}) == (
        "MAE worse by 0.12 than the evaluation's, within the noise of this window's labels (a window without any change "
        "is this much worse with probability monitoring.false_alarm_rate up to 0.15): no retrain")


def test_a_regression_model_without_baseline_metrics_is_not_judged():
    """GIVEN labels enough but no baseline evaluation metrics THEN the primary metric's drop is skipped and so is the
    section, though label coverage and power pass: its due days are not counted as judged on nothing."""
    section = quality.model_quality(_regression(np.random.default_rng(5), 400), None, problem_type="regression",
                                    primary_metric="rmse", min_labeled_rows=200)
    assert {c["check"]: c["status"] for c in section["checks"]}["quality_drop"] == "skipped"
    assert "pass" in {c["status"] for c in section["checks"]}
    assert section["status"] == "skipped"


LONG_TAIL_CLASSES = [f"c{i:02d}" for i in range(40)]


def _long_tail_shares():
    # 40 classes: one at 25 %, ten under 1 % (two at 0.2 %), the rest a decaying middle
    tail = [0.002, 0.002] + [0.006] * 4 + [0.008] * 4
    middle = np.array([1 / (k + 1) ** 0.6 for k in range(29)])
    middle = middle / middle.sum() * (1 - 0.25 - sum(tail))
    return np.array([0.25, *middle, *tail])


def _long_tail(rng, rows: int, right: float = 0.8):
    """A 40-class model that is right ``right`` of the time and otherwise names a class drawn by the class shares."""
    shares = _long_tail_shares()
    k = len(shares)
    y = rng.choice(k, rows, p=shares)
    predicted = np.where(rng.random(rows) < right, y, rng.choice(k, rows, p=shares))
    P = np.tile(shares * (1 - right), (rows, 1))
    P[np.arange(rows), predicted] += right
    P = P / P.sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"label": y.astype(float), SCORE: predicted.astype(float), INFERENCE_TIME: DAY})
    for i, name in enumerate(LONG_TAIL_CLASSES):
        frame[capture.probability_column(name)] = P[:, i]
    return frame, y, P


def test_a_long_tail_multiclass_model_that_has_not_changed_is_not_failed_for_the_classes_a_window_lacks():
    # GIVEN a 40-class model judged on macro F1 whose test set (the baseline) holds every class, and 20 labelled windows
    # of 200 rows (monitoring's min_labeled_rows) from the same model on the same traffic: each lacks a few tail classes
    rng = np.random.default_rng(20261207)
    _, y, P = _long_tail(rng, 20_000)
    baseline = metrics_multiclass.headline(y, P, LONG_TAIL_CLASSES)
    sections = [quality.model_quality(_long_tail(rng, 200)[0], baseline, min_labeled_rows=200, problem_type=MULTICLASS,
                                      classes=LONG_TAIL_CLASSES, primary_metric="macro_f1", max_quality_drop=0.10)
                for _ in range(20)]
    # THEN the macro F1 drop is judged on the classes the window has, and fails on noise at most about
    # monitoring.false_alarm_rate of the time (every class a window lacked counted as F1 0 against the baseline's,
    # a drop of about 0.1 with nothing changed, and a retrain asked for on half of them)
    failed = [s for s in sections if s["status"] == "fail"]
    assert len(failed) / len(sections) <= 3 * DEFAULT_FALSE_ALARM_RATE, [s["quality_drop"] for s in failed]
    lacking = next(s for s in sections if s["classes_not_judged"])
    assert set(lacking["classes_not_judged"]) < set(LONG_TAIL_CLASSES)
    check = next(c for c in lacking["checks"] if c["check"] == "quality_drop")
    assert f"{len(lacking['classes_not_judged'])} class(es) neither labelled nor predicted in the window" in check["detail"]


def test_a_long_tail_class_the_model_stops_predicting_still_fails_the_macro_f1_drop():
    # GIVEN the same baseline, and a window of 2,000 labelled rows where the model now names the top class for every
    # record of the ten tail classes (they are labelled, never predicted)
    rng = np.random.default_rng(20261208)
    _, y, P = _long_tail(rng, 20_000)
    baseline = metrics_multiclass.headline(y, P, LONG_TAIL_CLASSES)
    window, wy, _ = _long_tail(rng, 2_000)
    tail = wy >= 30
    window.loc[tail, SCORE] = 0.0
    for i, name in enumerate(LONG_TAIL_CLASSES):
        window.loc[tail, capture.probability_column(name)] = 0.9 if i == 0 else 0.1 / 39
    section = quality.model_quality(window, baseline, min_labeled_rows=200, problem_type=MULTICLASS,
                                    classes=LONG_TAIL_CLASSES, primary_metric="macro_f1", max_quality_drop=0.10)
    # THEN the classes it lost are judged (labelled in the window), and the drop fails
    assert section["classes_not_judged"] == []
    assert section["status"] == "fail" and section["quality_drop"] > 0.10


def _counting(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("metric", ["rmse", "mae", "r2", "poisson_deviance"])
def test_a_regression_windows_bootstrap_draws_its_primary_metric_alone_with_the_same_values(metric, monkeypatch):
    """GIVEN a regression window judged on ``metric`` WHEN its noise is bootstrapped (100 draws) THEN each draw computes
    that metric alone (not every headline metric: quantiles, means), and the metric is the headline's own value."""
    from pipeline_code.training import metrics_regression as mr

    rng = np.random.default_rng(3)
    frame = _regression(rng, 400).assign(label=lambda f: f["label"].abs(), **{SCORE: lambda f: f[SCORE].abs() + 0.1})
    y, p = frame["label"].to_numpy(), frame[SCORE].to_numpy()
    deviance = ("poisson_deviance", 1.0) if metric == "poisson_deviance" else None
    baseline = mr.headline(y, p, deviance)
    calls = _counting(monkeypatch, mr, "headline")
    section = quality.model_quality(frame, baseline, problem_type="regression", primary_metric=metric,
                                     min_labeled_rows=200, deviance=deviance)
    assert section["detectable_quality_drop"] > 0 and len(calls) == 1  # the window's headline; no draw's
    monkeypatch.undo()
    for rows in (np.arange(400), rng.integers(0, 400, 400), np.arange(0)):
        assert mr.metric_alone(y[rows], p[rows], metric, deviance) == mr.headline(y[rows], p[rows], deviance).get(metric)


@pytest.mark.parametrize("metric", ["macro_f1", "accuracy", "log_loss", "auc"])
def test_a_multiclass_windows_bootstraps_rank_classes_only_for_the_auc(metric, monkeypatch):
    """GIVEN a 40-class window with probabilities judged on ``metric`` WHEN its auc_drop noise and its primary metric's
    noise are bootstrapped (100 draws each) THEN only the AUC's draws rank the classes (macro one-vs-rest AUC): one
    bootstrap of them (the AUC's noise and, when it is the primary metric, its power are one bootstrap: the same draws),
    and a draw of another metric is the headline's value without the AUC."""
    from pipeline_code.training import metrics_multiclass as mm

    rng = np.random.default_rng(20261207)
    _, y, P = _long_tail(rng, 5_000)
    baseline = mm.headline(y, P, LONG_TAIL_CLASSES)
    window, wy, wP = _long_tail(rng, 400)
    calls = _counting(monkeypatch, mm, "macro_auc")
    section = quality.model_quality(window, baseline, min_labeled_rows=200, problem_type=MULTICLASS,
                                    classes=LONG_TAIL_CLASSES, primary_metric=metric, max_quality_drop=0.10)
    assert section["detectable_quality_drop"] > 0
    assert len(calls) <= 101 + 1  # the window's AUC and one bootstrap's draws (at most one more: rows without probabilities)
    monkeypatch.undo()
    for rows in (np.arange(400), rng.integers(0, 400, 400)):
        assert mm.headline(wy[rows], wP[rows], LONG_TAIL_CLASSES, with_auc=False) == {
            **mm.headline(wy[rows], wP[rows], LONG_TAIL_CLASSES), "auc": None}


@pytest.mark.parametrize("metric", ["auc", "macro_f1", "accuracy", "log_loss"])
def test_a_multiclass_windows_detectable_drop_is_the_bootstrap_of_its_own_primary_metric(metric):
    """GIVEN a 4-class window with probabilities, every class labelled, judged on ``metric`` WHEN its quality is measured
    (the auc_drop noise bootstraps the macro AUC first) THEN the drop its labels can detect is the bootstrap of ``metric``
    itself on those rows (quality.detectable_quality_drop of the headline's value): the AUC's bootstrap serves the AUC
    alone, never another metric's power or noise."""
    classes = ["a", "b", "c", "d"]

    def window(rng, rows):
        y = rng.choice(4, rows, p=[0.4, 0.3, 0.2, 0.1])
        P = rng.dirichlet(np.ones(4), rows) * 0.6 + np.eye(4)[y] * 0.4
        frame = pd.DataFrame({"label": y.astype(float), SCORE: P.argmax(axis=1).astype(float), INFERENCE_TIME: DAY})
        for i, name in enumerate(classes):
            frame[capture.probability_column(name)] = P[:, i]
        return frame, y, P

    rng = np.random.default_rng(20261207)
    _, by, bP = window(rng, 5_000)
    baseline = metrics_multiclass.headline(by, bP, classes)
    frame, y, P = window(rng, 600)
    section = quality.model_quality(frame, baseline, min_labeled_rows=200, problem_type=MULTICLASS, classes=classes,
                                    primary_metric=metric, max_quality_drop=0.10)
    assert section["classes_not_judged"] == [] and {c["check"]: c["status"] for c in section["checks"]}["auc_drop"] != "skipped"
    own = quality.detectable_quality_drop(metric, lambda rows: metrics_multiclass.headline(y[rows], P[rows], classes)[metric],
                                          len(y), baseline[metric])
    assert own is not None and section["detectable_quality_drop"] == own


def test_the_macro_auc_of_a_small_draw_is_the_mean_of_each_classes_one_vs_rest_auc_exactly():
    # GIVEN 300 generated draws of up to a bootstrap's 1,000 rows (and a few past it): 2 to 40 classes, tied and
    # missing probabilities, classes absent or alone, codes of no class
    from pipeline_code.training.metrics import roc_auc

    rng = np.random.default_rng(16)
    for case in range(300):
        rows = int(rng.choice([1, 2, 3, 8, 50, 200, 999, 1000, 1001]))
        k = int(rng.choice([2, 3, 5, 40]))
        y = rng.integers(0, k, rows) if rng.random() < 0.8 else rng.choice(rng.integers(0, k, 2), rows)
        if rng.random() < 0.1:
            y[: max(1, rows // 10)] = rng.choice([-1, k])
        P = rng.random((rows, k))
        if rng.random() < 0.3:
            P = np.round(P, int(rng.integers(0, 3)))  # ties
        if rng.random() < 0.1:
            P[rng.random((rows, k)) < 0.05] = np.nan
        # WHEN its macro AUC is taken THEN it is, to the bit, the mean of metrics.roc_auc of each class present
        aucs = [a for a in (roc_auc(y == c, P[:, c]) for c in range(k) if (y == c).any()) if a is not None]
        expected = float(np.mean(aucs)) if len(aucs) >= 2 else None
        got = metrics_multiclass.macro_auc(y, P)
        assert (got is None) == (expected is None), case
        assert got is None or got == expected or (np.isnan(got) and np.isnan(expected)), (case, got, expected)


@pytest.mark.parametrize("metric, power", [("rmse", None), ("mae", None), ("r2", None), ("bias", None),
                                           ("poisson_deviance", 1.0), ("gamma_deviance", 2.0), ("tweedie_deviance", 1.5)])
def test_a_regression_windows_draws_taken_at_once_give_the_section_one_draw_at_a_time_gave(metric, power, monkeypatch):
    """GIVEN regression windows judged on ``metric`` (a few rows, a bootstrap's 1,000 and more; targets of 0 and a
    constant target, where a deviance or R² is undefined on some draws) WHEN the bootstrap computes its 100 draws in one
    pass over their index matrix (metrics_regression.metric_over_draws) THEN every draw's value is metric_alone's to the
    bit, and the model-quality section is the one the draws computed one at a time give."""
    from pipeline_code.training import metrics_regression as mr

    deviance = (metric, power) if power is not None else None
    rng = np.random.default_rng(20261207)
    judged, undefined = [], 0
    for rows, zeros, constant in ((2, False, False), (7, True, False), (240, True, False), (240, False, True),
                                  (1000, False, False), (1733, True, False)):
        frame = _regression(rng, rows).assign(label=lambda f: f["label"].abs(), **{SCORE: lambda f: f[SCORE].abs() + 0.1})
        if zeros:
            frame.loc[frame.index[::5], "label"] = 0.0
            frame.loc[frame.index[3::97], "label"] = -1.0  # outside every deviance's domain
        if constant:
            frame["label"] = 3.0
        y, p = frame["label"].to_numpy(), frame[SCORE].to_numpy()
        draws = np.stack([rng.integers(0, rows, min(rows, 1000)) for _ in range(20)])
        at_once = mr.metric_over_draws(y, p, draws, metric, deviance)
        one_at_a_time = [mr.metric_alone(y[d], p[d], metric, deviance) for d in draws]
        assert [None if np.isnan(v) else float(v) for v in at_once] == one_at_a_time, rows
        undefined += int(np.isnan(at_once).sum())
        if rows not in (240, 1733):
            continue
        # the section of a window whose draws are partly undefined, and of one past the bootstrap's 1,000 rows
        baseline = mr.headline(np.r_[y, 1.0], np.r_[p, 2.0], deviance)  # a defined baseline, even for a constant target
        kwargs = dict(problem_type="regression", primary_metric=metric, min_labeled_rows=2, deviance=deviance)
        section = quality.model_quality(frame, baseline, **kwargs)
        with monkeypatch.context() as patched:
            patched.setattr(mr, "metric_over_draws", lambda *args, **kw: None)  # each draw alone, as before
            assert quality.model_quality(frame, baseline, **kwargs) == section, rows
        judged.append(section.get("detectable_quality_drop") is not None)
    # the bootstrap ran (a standard error), and the draws a metric is undefined on were met where it has any
    assert any(judged) and (undefined > 0) == (metric not in ("rmse", "mae", "bias"))



@pytest.mark.parametrize("metric", ["accuracy", "log_loss", "macro_precision", "macro_recall", "macro_f1"])
def test_draws_of_class_codes_outside_the_classes_are_left_to_one_at_a_time(metric):
    """GIVEN labels coded outside 0..k-1 (a -1 would index the last class's probability) WHEN the draws are asked for
    at once THEN none are given (None), so the caller computes each draw alone, which refuses such codes."""
    from pipeline_code.training import metrics_multiclass as mm

    P = np.full((6, 3), 1 / 3)
    for y in ([0, 1, 2, -1, 1, 0], [0, 1, 3, 1, 1, 0]):
        assert mm.metric_over_draws(np.array(y), P, np.array([[0, 1, 2, 3, 4, 5]]), 3, metric) is None

@pytest.mark.parametrize("metric", ["macro_f1", "macro_precision", "macro_recall", "accuracy", "log_loss"])
def test_a_multiclass_windows_draws_taken_at_once_give_the_section_one_draw_at_a_time_gave(metric, monkeypatch):
    """GIVEN multiclass windows judged on ``metric`` (a 40-class long tail whose windows lack classes, tied
    probabilities, rows without probabilities) WHEN the bootstrap computes its 100 draws at once
    (metrics_multiclass.metric_over_draws) THEN every draw's value is the headline's (macro averages over the classes
    taken) to the bit, and the model-quality section is the one the draws computed one at a time give."""
    from pipeline_code.training import metrics_multiclass as mm

    rng = np.random.default_rng(20261208)
    _, by, bP = _long_tail(rng, 5_000)
    # no baseline AUC: its noise (macro AUC draws, untouched here) is not bootstrapped twice a window
    baseline = {k: v for k, v in mm.headline(by, bP, LONG_TAIL_CLASSES).items() if k != "auc"}
    for rows, ties, unscored in ((200, False, False), (600, True, False), (1_400, False, True)):
        frame, y, P = _long_tail(rng, rows)
        if ties:
            P = np.round(P, 2)
            for i, name in enumerate(LONG_TAIL_CLASSES):
                frame[capture.probability_column(name)] = P[:, i]
        if unscored:  # a tenth of the rows name only their class
            frame.loc[frame.index[::10], [capture.probability_column(n) for n in LONG_TAIL_CLASSES]] = np.nan
        draws = np.stack([rng.integers(0, rows, min(rows, 1000)) for _ in range(10)])
        taken = sorted(set(np.unique(y[: rows // 2]).tolist()))  # a subset of the classes, as a window's
        at_once = mm.metric_over_draws(y, P, draws, len(LONG_TAIL_CLASSES), metric, over=taken)
        names = [LONG_TAIL_CLASSES[i] for i in taken]
        for values, d in zip(at_once, draws):
            headline = mm.headline(y[d], P[d], LONG_TAIL_CLASSES, with_auc=False)
            assert values == (quality._macro_over(headline["per_class"], names)[metric] if metric.startswith("macro")
                              else headline[metric]), rows
        if rows == 600:  # the section, once (the window the draws' ties make hardest)
            kwargs = dict(min_labeled_rows=200, problem_type=MULTICLASS, classes=LONG_TAIL_CLASSES,
                          primary_metric=metric, max_quality_drop=0.10)
            section = quality.model_quality(frame, baseline, **kwargs)
            assert section["detectable_quality_drop"] > 0 and section["classes_not_judged"]
            with monkeypatch.context() as patched:
                patched.setattr(mm, "metric_over_draws", lambda *args, **kw: None)  # each draw alone, as before
                assert quality.model_quality(frame, baseline, **kwargs) == section

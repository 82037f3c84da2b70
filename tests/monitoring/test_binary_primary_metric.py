"""A binary model judged on another metric than AUC (``primary_metric: pr_auc``, ``f1``, ``log_loss``): the monitor
fails it on that metric's drop (``quality_drop``, published as ``QualityDrop``, the metric its retrain alarm watches),
so a PR-AUC collapse with a stable AUC retrains; a binary model judged on AUC keeps its AUC drop alone.

A small real churn model is trained and its traffic scored (tests/support/monitoring.py); the spec's primary metric is
set here, not read from the sample config."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code.monitoring import quality
from pipeline_code.monitoring import report as report_mod
from pipeline_code.monitoring.capture import INFERENCE_TIME, SCORE
from pipeline_code.training import metrics
from tests.support.monitoring import churn_spec, check, run, write_window

DAY = "2026-12-01T10:00:00Z"


def _scores(rng, rows: int, prevalence: float, shift: float = 1.19) -> pd.DataFrame:
    """Labelled scores whose AUC (about 0.80) does not depend on ``prevalence``; their PR-AUC falls with it."""
    y = (rng.random(rows) < prevalence).astype(float)
    score = rng.normal(0.0, 1.0, rows) + shift * y
    return pd.DataFrame({"label": y, SCORE: 1.0 / (1.0 + np.exp(-score)), INFERENCE_TIME: DAY})


@pytest.fixture(scope="module")
def collapse():
    """GIVEN a baseline evaluated at 30 % positives and a window of the same model at 3 %: the same AUC, a far lower
    PR-AUC (the positives are now few among as many negatives)."""
    rng = np.random.default_rng(5)
    evaluated = _scores(rng, 4000, 0.30)
    baseline = metrics.headline(evaluated["label"].to_numpy(), evaluated[SCORE].to_numpy())
    return _scores(rng, 4000, 0.03), baseline


def test_a_pr_auc_collapse_with_a_stable_auc_fails_the_quality_check_its_alarm_watches(collapse):
    window, baseline = collapse
    section = quality.model_quality(window, baseline, min_labeled_rows=200, max_auc_drop=0.05, primary_metric="pr_auc",
                                    max_quality_drop=0.10)
    # THEN the AUC held (its check passes) but the PR-AUC drop fails, over the larger of the limit and the labels' noise
    assert check(section, "auc_drop")["status"] == "pass"
    judged = check(section, "quality_drop")
    assert judged["status"] == "fail" and judged["feature"] == "pr_auc"
    assert judged["threshold"] == max(0.10, section["quality_drop_noise"]) and section["quality_drop_noise"] > 0
    assert section["quality_drop"] > 0.3 and section["primary_metric"] == "pr_auc" and section["status"] == "fail"
    # AND the retrain decision (CloudWatch's, and the local twin's) follows that check
    report = {"healthy": True, "trusted": True, "summary": {}, "sections": {"model_quality": section}}
    assert report_mod.retrain_alarms(report) == ["quality"]
    # AND the same window of a model judged on AUC is what it always was: no primary-metric check, nothing to retrain on
    on_auc = quality.model_quality(window, baseline, min_labeled_rows=200, max_auc_drop=0.05, primary_metric="auc")
    assert [c["check"] for c in on_auc["checks"]] == ["label_coverage", "auc_drop", "auc_drop_power", "log_loss_increase"]
    assert "quality_drop" not in on_auc and "primary_metric" not in on_auc and on_auc["status"] == "pass"


def test_a_binary_model_judged_on_f1_with_too_few_labels_skips_that_check_too():
    window = _scores(np.random.default_rng(3), 50, 0.3)
    section = quality.model_quality(window, {"auc": 0.8, "f1": 0.6}, min_labeled_rows=200, primary_metric="f1")
    assert {c["check"]: c["status"] for c in section["checks"]} == {
        "label_coverage": "pass", "auc_drop": "skipped", "quality_drop": "skipped"}


def test_a_binary_model_judged_on_pr_auc_without_baseline_metrics_is_not_judged(collapse):
    # GIVEN labels enough, but no baseline evaluation metrics to compare the AUC or the PR-AUC with
    window, _ = collapse
    section = quality.model_quality(window, None, min_labeled_rows=200, primary_metric="pr_auc")
    # THEN both drops are skipped and so is the section (a passing label coverage judges nothing): its due days are
    # not counted as judged (late_labels.EarlierRequests.annotate reads the status)
    assert {c["check"]: c["status"] for c in section["checks"]} == {
        "label_coverage": "pass", "auc_drop": "skipped", "quality_drop": "skipped"}
    assert section["status"] == "skipped"


def test_the_monitor_publishes_the_pr_auc_drop_and_the_local_replay_reads_it(tmp_path: Path, reference):
    # GIVEN churn judged on PR-AUC, a window of its own traffic (AUC as evaluated) and an evaluation whose PR-AUC was
    # 0.3 higher than the window's: the collapse the AUC does not show
    spec = dataclasses.replace(churn_spec(), primary_metric="pr_auc")
    window = write_window(tmp_path, spec, reference["model"], rows=3000, seed=41, label_coverage=1.0)
    evaluation = json.loads(Path(reference["baseline_dir"], "evaluation.json").read_text())
    first = run(spec, reference, window, str(tmp_path / "first"))
    evaluation["challenger"]["metrics"]["pr_auc"] = first["sections"]["model_quality"]["metrics"]["pr_auc"] + 0.3
    baseline_dir = tmp_path / "baseline"
    baseline_dir.mkdir()
    for path in Path(reference["baseline_dir"]).iterdir():
        (baseline_dir / path.name).write_text(path.read_text())
    (baseline_dir / "evaluation.json").write_text(json.dumps(evaluation))
    # WHEN the monitor judges the window
    report = run(spec, reference, window, str(tmp_path / "out"), baseline_dir=str(baseline_dir),
                 extra=["--max-quality-drop", "0.1"])
    # THEN its summary carries the PR-AUC drop the QualityDrop alarm reads, at the limit it fires at
    summary = report["summary"]
    assert summary["primary_metric"] == "pr_auc" and summary["quality_drop"] == pytest.approx(0.3)
    assert report["thresholds"]["max_quality_drop"] == 0.1
    assert check(report, "quality_drop", "pr_auc")["status"] == "fail"
    # AND the local replay retrains on it and says so in the metric's words
    assert "quality" in report_mod.retrain_alarms(report)
    assert report_mod.quality_change(report) == "PR-AUC down 0.300 from the evaluation's (alarm at 0.1)"

"""Multiclass and regression models through the training jobs: prepare, train, evaluate, gate (GIVEN / WHEN / THEN).

Every stage runs through its job entry point on generated records of a dataset declared in
tests/support/problem_types.py; the gate is applied to the reports the evaluate job wrote.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline_code.core import approval, problem
from pipeline_code.core.problem import MULTICLASS, REGRESSION
from pipeline_code.training import data_io, evaluate, metrics_multiclass, metrics_regression, prepare, train
from pipeline_code.training.data_io import InputError
from pipeline_code.training.gate import GateInputError, decide
from pipeline_code.training.spec import DEFAULT_GATE, SpecError, parse_model_spec
from tests.support import problem_type_reports as reports
from tests.support.problem_types import DATASET, dataset, make_spec
from tests.support.training import UNREAD_SHAP_ROWS, train_model, write_inputs

# The dataset's groups and classes are generated with no signal of their own: parity is judged on noise only. On
# ~200 test rows per group a regression group's mean error over its mean |target| alone varies by ~0.08, so the gap
# between the most over- and most under-estimated of three groups is allowed more than the environment's 0.10.
GATE = dataclasses.replace(DEFAULT_GATE, min_disparate_impact=0.6, max_demographic_parity_difference=0.3)


@pytest.fixture(scope="module")
def built():
    """{problem type: what :func:`trained` gives}, filled once per module: the tests narrowed to one problem type
    (``indirect``) set ``trained`` up again, out of the parametrized order, and read the same models and reports."""
    return {}


@pytest.fixture(scope="module", params=[MULTICLASS, REGRESSION])
def trained(request, built, tmp_path_factory):
    """GIVEN generated orders prepared by the prepare job, a realistic and a deliberately weak model trained by the
    training job, for one problem type, and the evaluate job's reports: first model, better and worse challenger."""
    if request.param not in built:
        root = tmp_path_factory.mktemp(request.param)
        models = reports.shared(request.param, tmp_path_factory)
        built[request.param] = {
            "spec": models.spec, "prepared": models.prepared, "strong": models.strong, "weak": models.weak,
            "first": models.evaluate(root / "first", gate=GATE, champion=None, shap_rows=UNREAD_SHAP_ROWS),
            "better": models.evaluate(root / "better", gate=GATE, shap_rows=UNREAD_SHAP_ROWS),
            "worse": models.evaluate(root / "worse", gate=GATE, challenger="weak", champion="strong",
                                     shap_rows=UNREAD_SHAP_ROWS)}
    return built[request.param]


def failed(decision):
    return [c["name"] for c in decision.checks if not c["passed"]]


def test_prepare_writes_the_target_as_the_model_learns_it(trained):
    spec, test_dir = trained["spec"], Path(trained["prepared"]["test"])
    y = pd.read_parquet(test_dir / "test.parquet")[spec.target]
    manifest = json.loads((test_dir / "manifest.json").read_text())
    if spec.problem_type == MULTICLASS:
        # THEN the class names became their codes in declared order, and the manifest counts each class
        assert y.dtype == np.int64 and set(y.unique()) == {0, 1, 2}
        assert set(manifest["class_counts"]) == {"bronze", "silver", "gold"}
        assert sum(manifest["class_counts"].values()) == manifest["rows"]
    else:
        assert y.dtype == np.float64 and y.nunique() > 100
        assert manifest["target_mean"] == pytest.approx(float(y.mean()))
    assert "positives" not in manifest


def test_the_artefact_records_its_problem_type_and_predicts_in_its_shape(trained, tmp_path):
    spec = trained["spec"]
    model = train.load_model(trained["strong"])
    frame = pd.read_parquet(Path(trained["prepared"]["test"]) / "test.parquet")
    out = train.predict(model, frame)
    assert model.problem_type == spec.problem_type and model.classes == list(spec.classes)
    assert "threshold" not in model.metadata
    if spec.problem_type == MULTICLASS:
        assert out.shape == (len(frame), 3)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
        # ... and its primary metric (macro AUC, the type's default), the tuning objective
        assert model.metadata["training"]["final_metrics"] == ["validation_logloss", "validation_accuracy", "validation_auc"]
    else:
        assert out.shape == (len(frame),)
        assert model.metadata["training"]["validation_r2"] > 0  # better than predicting the mean
    # the kept model's tuning metric is among the final lines the training job prints (SageMaker metric definitions)
    assert f"validation_{problem.tuning_metric(spec.problem_type, spec.primary_metric)}" in model.metadata["training"]["final_metrics"]
    assert train.predict(model, frame.iloc[:0]).shape == ((0, 3) if spec.problem_type == MULTICLASS else (0,))


def test_the_first_model_is_judged_on_its_own_type_and_floor(trained):
    report, spec = trained["first"], trained["spec"]
    decision = decide(report, GATE)
    assert decision.passed, decision.reasons
    assert report["problem_type"] == spec.problem_type and report["primary_metric"] == spec.primary_metric
    assert problem.MODEL_QUALITY_KEY[spec.problem_type] in report and "binary_classification_metrics" not in report
    names = [c["name"] for c in decision.checks]
    if spec.problem_type == MULTICLASS:
        assert names == ["min_auc", "fairness_evidence", "demographic_parity", "disparate_impact"]
        assert report["challenger"]["metrics"]["auc"] > 0.7
        auc = decision.checks[0]
        assert auc["message"] == (f"challenger macro one-vs-rest AUC {report['challenger']['metrics']['auc']:.4f} >= "
                                 f"minimum {GATE.min_auc:.4f}")  # not the primary metric, which the floor judges
    else:
        assert names == ["min_quality", "bias_parity", "error_parity"]
        assert report["quality_floor"] == 0.0
        floor = decision.checks[0]
        assert (floor["value"], floor["threshold"]) == (report["challenger"]["metrics"]["r2"], 0.0)


def test_a_better_challenger_passes_and_a_worse_one_is_rejected_in_the_primary_metrics_direction(trained):
    spec = trained["spec"]
    better, worse = decide(trained["better"], GATE), decide(trained["worse"], GATE)
    assert better.passed, better.reasons
    assert "challenger_margin" in [c["name"] for c in better.checks]
    assert not worse.passed and "challenger_margin" in failed(worse)
    label = {"auc": "AUC", "r2": "R²"}[spec.primary_metric]
    assert any(f"< champion {label}" in reason for reason in worse.reasons)


def test_a_lower_is_better_primary_metric_is_compared_downwards(trained):
    # GIVEN the same reports judged on log loss (multiclass) or RMSE (regression)
    metric = "log_loss" if trained["spec"].problem_type == MULTICLASS else "rmse"
    for name, passes in (("better", True), ("worse", False)):
        report = {**copy.deepcopy(trained[name]), "primary_metric": metric}
        decision = decide(report, GATE)
        margin = next(c for c in decision.checks if c["name"] == "challenger_margin")
        assert margin["passed"] is passes
        assert margin["threshold"] == pytest.approx(report["champion"]["metrics"][metric] - GATE.challenger_margin)
        assert (" <= " if passes else " > ") + "champion" in margin["message"]


def test_a_slice_regression_in_the_primary_metric_is_rejected(trained):
    """GIVEN the champion's and the challenger's own reports where the challenger's predictions for one channel are
    the champion's with the answers shuffled WHEN gated (margin relaxed) THEN only that slice fails."""
    spec = trained["spec"]
    frame = pd.read_parquet(Path(trained["prepared"]["test"]) / "test.parquet")
    y = frame[spec.target].to_numpy(dtype=np.float64)
    out = train.predict(train.load_model(trained["strong"]), frame)
    app = (frame["channel"] == "app").to_numpy()
    degraded = out.copy()
    degraded[app] = np.random.default_rng(0).permutation(out[app])
    slices = {"channel": frame["channel"]}
    report = copy.deepcopy(trained["better"])
    if spec.problem_type == MULTICLASS:
        def block(o):
            return {"metrics": metrics_multiclass.headline(y, o, spec.classes),
                    "slices": metrics_multiclass.slice_metrics(slices, y, o, spec.classes, min_rows=50, min_positives=10)}
    else:
        def block(o):
            return {"metrics": metrics_regression.headline(y, o),
                    "slices": metrics_regression.slice_metrics(slices, y, o, min_rows=50)}
    report["champion"].update(block(out))
    report["challenger"].update(block(degraded))
    report.pop("quality_floor", None)  # a third of the rows scrambled may sink R² overall: the slice is under test
    decision = decide(report, dataclasses.replace(GATE, challenger_margin=-1.0))
    assert not decision.passed
    # (a multiclass challenger wrong on a third of the rows also loses recall on a class overall: that check fails too)
    assert [c for c in failed(decision) if c != "class_recall"] == ["slice_regression"]
    assert [c["slice"] for c in decision.checks if not c["passed"] and c["name"] == "slice_regression"] == ["channel=app"]


def test_a_fairness_regression_is_rejected(trained):
    """GIVEN the challenger's predictions made worse for one age band WHEN fairness is recomputed and gated
    THEN the parity checks fail (multiclass: per class; regression: the bias gap and error parity)."""
    spec = trained["spec"]
    frame = pd.read_parquet(Path(trained["prepared"]["test"]) / "test.parquet")
    y = frame[spec.target].to_numpy(dtype=np.float64)
    out = train.predict(train.load_model(trained["strong"]), frame)
    senior = (frame["age_band"] == "senior").to_numpy()
    report = copy.deepcopy(trained["first"])
    if spec.problem_type == MULTICLASS:
        biased = out.copy()
        biased[senior] = np.eye(3)[2]  # every senior predicted "gold"
        report["challenger"]["fairness"] = metrics_multiclass.fairness(frame["age_band"], y, biased, spec.classes,
                                                                       attribute="age_band", min_group_rows=100)
        expected = {"demographic_parity", "disparate_impact"}
    else:
        biased = np.where(senior, out + 3 * np.std(y), out)
        report["challenger"]["fairness"] = metrics_regression.fairness(frame["age_band"], y, biased, attribute="age_band",
                                                                       min_group_rows=100)
        expected = {"bias_parity", "error_parity"}
    decision = decide(report, GATE)
    assert set(failed(decision)) == expected
    assert any("across age_band" in reason for reason in decision.reasons)


def _with_fairness(report, groups, y, p, *, min_group_rows=100):
    """``report`` with the challenger's fairness recomputed across ``area`` from ``groups``, ``y`` and ``p``."""
    report = copy.deepcopy(report)
    report["challenger"]["fairness"] = metrics_regression.fairness(np.array(groups, dtype=object), np.asarray(y, float),
                                                                   np.asarray(p, float), attribute="area",
                                                                   min_group_rows=min_group_rows)
    return report


def _fairness_checks(decision):
    return {c["name"]: c for c in decision.checks if c["name"] in ("fairness_evidence", "bias_parity", "error_parity")}


@pytest.mark.parametrize("trained", [REGRESSION], indirect=True)
def test_a_regression_models_bias_gap_is_gated_by_the_maximum_parity_difference(trained):
    """GIVEN two groups of 200 rows, every target 100 WHEN group a is over-estimated by 30 % and group b under-estimated
    by 30 % (equal relative errors: error parity 1.0) THEN the bias gap 0.6 fails the gate, naming both groups; WHEN
    their errors are as large but balanced around a gap of 0.01 THEN it passes."""
    groups = ["a"] * 200 + ["b"] * 200
    y = np.full(400, 100.0)
    opposite = decide(_with_fairness(trained["first"], groups, y, np.where(np.array(groups) == "a", 130.0, 70.0)), GATE)
    checks = _fairness_checks(opposite)
    assert not opposite.passed and failed(opposite) == ["bias_parity"]
    assert checks["error_parity"]["passed"] and checks["error_parity"]["value"] == pytest.approx(1.0)
    assert checks["bias_parity"]["message"] == (
        "bias gap across area (most over-estimated group a, most under-estimated b; mean error over its mean |target|) "
        "0.6000 > maximum 0.3000")
    assert (checks["bias_parity"]["value"], checks["bias_parity"]["threshold"]) == (pytest.approx(0.6), 0.3)
    # a: errors +5 and +1 (bias +3, MAE 3); b: +5 and -1 (bias +2, MAE 3)
    errors = np.where(np.array(groups) == "a", np.tile([5.0, 1.0], 200), np.tile([5.0, -1.0], 200))
    balanced = decide(_with_fairness(trained["first"], groups, y, y + errors), GATE)
    assert balanced.passed, balanced.reasons
    assert _fairness_checks(balanced)["bias_parity"]["message"] == (
        "bias gap across area (most over-estimated group a, most under-estimated b; mean error over its mean |target|) "
        "0.0100 <= maximum 0.3000")


@pytest.mark.parametrize("trained", [REGRESSION], indirect=True)
def test_the_bias_gap_leaves_out_small_groups_and_the_missing_group(trained):
    """GIVEN groups a and b of 200 rows, a over-estimated by 4 % and b off by 4 % either way (no bias), a group c of 50
    rows (< min_group_rows) and 300 rows with no value, both under-estimated by 50 % WHEN gated THEN the gap is a's and
    b's, 0.04, and passes."""
    groups = ["a"] * 200 + ["b"] * 200 + ["c"] * 50 + [None] * 300
    y = np.full(len(groups), 100.0)
    p = np.concatenate([np.full(200, 104.0), np.tile([104.0, 96.0], 100), np.full(350, 50.0)])
    decision = decide(_with_fairness(trained["first"], groups, y, p), GATE)
    assert decision.passed, decision.reasons
    assert _fairness_checks(decision)["bias_parity"]["message"] == (
        "bias gap across area (most over-estimated group a, most under-estimated b; mean error over its mean |target|) "
        "0.0400 <= maximum 0.3000")


@pytest.mark.parametrize("trained", [REGRESSION], indirect=True)
def test_fewer_than_two_groups_to_compare_fail_as_insufficient_evidence_without_a_bias_check(trained):
    """GIVEN one group of 200 rows and one of 50 (< min_group_rows) WHEN gated THEN neither parity check is made: the
    gate fails on insufficient evidence alone, as it does for error parity."""
    groups = ["a"] * 200 + ["b"] * 50
    y = np.full(250, 100.0)
    decision = decide(_with_fairness(trained["first"], groups, y, np.where(np.array(groups) == "a", 130.0, 70.0)), GATE)
    assert not decision.passed and failed(decision) == ["fairness_evidence"]
    assert list(_fairness_checks(decision)) == ["fairness_evidence"]
    assert decision.reasons[0] == ("fairness across area cannot be judged on the test set: 1 group has >= 100 rows "
                                   "(a: 200, b: 50), and a comparison takes two (insufficient evidence, not a pass); "
                                   "provide more labelled data or lower gate.min_group_rows")


@pytest.mark.parametrize("trained", [REGRESSION], indirect=True)
def test_a_group_whose_target_is_near_zero_makes_the_bias_gap_absolute_over_the_shared_scale(trained):
    """GIVEN group a's target 0 (no relative error) and group b's 10, a over-estimated by 1 and b under-estimated by 1
    WHEN gated THEN the gap is 2 over the groups' mean |target| 5, 0.4, and fails; error parity (absolute MAE) holds."""
    groups = ["a"] * 200 + ["b"] * 200
    y = np.where(np.array(groups) == "a", 0.0, 10.0)
    decision = decide(_with_fairness(trained["first"], groups, y, y + np.where(np.array(groups) == "a", 1.0, -1.0)), GATE)
    assert failed(decision) == ["bias_parity"]
    assert decision.reasons[0] == ("bias gap across area (most over-estimated group a, most under-estimated b; mean error "
                                   "over the compared groups' mean |target|) 0.4000 > maximum 0.3000")
    # AND a report whose compared targets are all 0 has no gap: incomplete, never a pass
    with pytest.raises(GateInputError, match="'challenger.fairness.bias_gap' is null"):
        decide(_with_fairness(trained["first"], groups, np.zeros(400), np.ones(400)), GATE)


@pytest.mark.parametrize("trained", [REGRESSION], indirect=True)
def test_evaluate_on_a_test_set_where_one_group_is_over_estimated_fails_the_bias_gap(trained, tmp_path):
    """GIVEN the frozen test set with every senior's basket value cut to 70 % (the model, which does not see the age
    band, now over-estimates seniors by ~40 % of their values) WHEN the evaluate job runs THEN its gate fails the bias
    gap, naming seniors as the most over-estimated group."""
    source, test_dir = Path(trained["prepared"]["test"]), tmp_path / "test"
    shutil.copytree(source, test_dir)
    frame = pd.read_parquet(test_dir / "test.parquet")
    senior = frame["age_band"] == "senior"
    frame.loc[senior, "basket_value"] = frame.loc[senior, "basket_value"] * 0.7
    frame.to_parquet(test_dir / "test.parquet", index=False)
    manifest = json.loads((test_dir / "manifest.json").read_text())
    (test_dir / "manifest.json").write_text(json.dumps({**manifest, "sha256": data_io.sha256_file(str(test_dir / "test.parquet"))}))
    models = reports.Trained(trained["spec"], {**trained["prepared"], "test": str(test_dir)}, trained["strong"], trained["weak"])
    report = models.evaluate(tmp_path / "evaluation", gate=GATE, champion=None, shap_rows=UNREAD_SHAP_ROWS)
    fairness = report["challenger"]["fairness"]
    assert fairness["most_over_estimated_group"] == "senior" and fairness["bias_gap"] > GATE.max_demographic_parity_difference
    assert not report["gate"]["passed"] and "bias_parity" in [c["name"] for c in report["gate"]["checks"] if not c["passed"]]
    assert (f"bias gap across age_band (most over-estimated group senior, most under-estimated "
            f"{fairness['most_under_estimated_group']}; mean error over its mean |target|) {fairness['bias_gap']:.4f} > "
            "maximum 0.3000") in report["gate"]["reasons"]


def test_a_class_never_predicted_is_insufficient_evidence_not_parity(trained):
    report = copy.deepcopy(trained["first"])
    if trained["spec"].problem_type == REGRESSION:
        # THEN error parity needs no such evidence: every row has an error
        assert "fairness_evidence" not in [c["name"] for c in decide(report, GATE).checks]
        return
    report["challenger"]["fairness"]["per_class"]["gold"]["predicted"] = 3
    decision = decide(report, GATE)
    assert failed(decision) == ["fairness_evidence"]
    assert decision.reasons[0].startswith(
        "fairness across age_band cannot be judged for class gold: the challenger predicts it for 3 test rows")


def test_a_champion_of_another_problem_type_is_not_compared(trained, tmp_path):
    """GIVEN a champion trained as the other problem type on the same dataset WHEN the challenger is evaluated
    THEN it is judged as the first model and the report says why."""
    spec = trained["spec"]
    other = REGRESSION if spec.problem_type == MULTICLASS else MULTICLASS
    champion = tmp_path / "champion"
    model = train.load_model(trained["weak"])
    model.metadata["problem_type"] = other
    train.save_model(model, str(champion))
    report = evaluate.evaluate(spec, trained["strong"], trained["prepared"]["test"], str(tmp_path / "out"), GATE,
                               champion_dir=str(champion), log=lambda line: None, shap_sample_rows=UNREAD_SHAP_ROWS)
    assert report["champion"] is None
    assert report["champion_not_compared"] == (f"the champion is a {other} model, "
                                               f"the challenger a {spec.problem_type} one")


@pytest.mark.parametrize("problem_type, labels, message", [
    (MULTICLASS, ["bronze", "Platinum", None],
     "column 'segment' holds classes ['platinum'] that are not declared; allowed: bronze, silver, gold (add them to the "
     "column's allowed values, or fix the labels)"),
    (REGRESSION, [1.5, float("inf"), 2.0], "column 'basket_value' must hold finite numbers, found [inf]"),
])
def test_labels_the_problem_type_cannot_learn_are_refused_naming_the_file_and_column(problem_type, labels, message):
    spec = make_spec(problem_type)
    with pytest.raises(InputError) as caught:
        prepare.encode_labels(pa.array(labels), spec, what="labels (s3://lake/labels/part-0.parquet)")
    assert str(caught.value) == f"labels (s3://lake/labels/part-0.parquet): {message}"


def test_multiclass_string_labels_are_normalised_like_every_category():
    codes = prepare.encode_labels(pa.array([" Gold", "bronze", None, "SILVER"]), make_spec(MULTICLASS), what="labels")
    np.testing.assert_array_equal(codes, [2.0, 0.0, np.nan, 1.0])


def test_an_integer_multiclass_target_counts_its_classes_from_min():
    declaration = copy.deepcopy(DATASET)
    declaration["columns"]["stars"] = {"type": "integer", "min": 1, "max": 5}
    declaration["labels"].append("stars")
    spec = parse_model_spec({**make_spec(MULTICLASS).to_dict(), "dataset": declaration, "target": "stars"})
    assert spec.classes == ("1", "2", "3", "4", "5")
    np.testing.assert_array_equal(prepare.encode_labels(pa.array([1, 5, 3]), spec, what="labels"), [0.0, 4.0, 2.0])
    with pytest.raises(InputError, match=r"column 'stars' holds \[0.0, 2.5\], not classes; allowed: 1, 2, 3, 4, 5"):
        prepare.encode_labels(pa.array([0, 2.5, 3]), spec, what="labels")


@pytest.mark.parametrize("overrides, message", [
    ({"primary_metric": "rmse"}, "primary_metric: 'rmse' is not a metric of a multiclass_classification model; allowed: auc, "
                                 "macro_f1, log_loss, accuracy"),
    ({"decision": {"policy": "max_f_beta"}}, "decision and class_weight apply to binary_classification models only (this one "
                                             "is multiclass_classification)"),
    ({"min_quality": "high"}, "min_quality must be a number, got 'high'"),
    ({"target": "basket_value"}, "target 'basket_value': column 'basket_value' is double in [0, 10000]; a multiclass target "
                                 "is a string column with 'allowed' values or an integer column with min and max (its classes)"),
])
def test_a_model_spec_that_does_not_fit_its_problem_type_is_refused(overrides, message):
    with pytest.raises(SpecError) as caught:
        make_spec(MULTICLASS, **overrides)
    assert str(caught.value) == f"invalid --model-spec for model 'order-segment': {message}"


def test_a_regression_target_that_is_not_numeric_fails_the_first_job_naming_the_file_and_column(tmp_path, capsys):
    # GIVEN label files whose basket_value arrived as text (an export that quoted every field)
    spec = make_spec(REGRESSION)
    inputs = write_inputs(tmp_path / "inputs", dataset(), 300, seed=1, signal_features=spec.features)
    labels = pd.read_parquet(inputs["labels"])
    labels["basket_value"] = labels["basket_value"].map(lambda v: f"{v:.2f}")
    text_labels = tmp_path / "text-labels"
    text_labels.mkdir()
    labels.to_parquet(text_labels / "part-0.parquet", index=False)
    # WHEN prepare runs THEN it stops before anything is trained, naming the file's column and the type it needs
    code = prepare.main(["--model-spec", spec.to_json(), "--features-dir", inputs["features"], "--labels-dir",
                         str(text_labels), "--frozen-test-dir", str(tmp_path / "none"), "--output-dir", str(tmp_path / "out")])
    assert code == 1
    assert f"labels ({text_labels}): column 'basket_value' has type string, expected a number (the target)" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# Registration: a version that answers its callers in another shape awaits a person
# --------------------------------------------------------------------------------------
def _evaluate_requesting(trained, out, champion: str, requested: str) -> dict:
    """The evaluate job (its CLI) on the strong challenger against ``champion``, asked to register as ``requested``."""
    code = evaluate.main(
        ["--model-spec", trained["spec"].to_json(), "--model-dir", trained["strong"], "--test-dir",
         trained["prepared"]["test"], "--champion-dir", champion, "--output-dir", str(out),
         "--approval-status", requested, "--shap-sample-rows", str(UNREAD_SHAP_ROWS), *GATE.to_args()]
    )  # fmt: skip
    assert code == 0
    return json.loads((out / "evaluation.json").read_text())


def _relabelled(trained, directory, **metadata) -> str:
    """The weak model saved with ``metadata`` changed: a champion that predicts something else."""
    model = train.load_model(trained["weak"])
    model.metadata.update(metadata)
    train.save_model(model, str(directory))
    return str(directory)


@pytest.mark.parametrize("requested", [approval.APPROVED, approval.PENDING])
def test_a_challenger_of_another_problem_type_than_the_binary_champion_is_registered_pending(
    trained, tmp_path, capsys, requested
):
    """GIVEN a binary champion and a challenger of another problem type (its callers would get answers of another
    shape) WHEN the evaluate job is asked to register it as ``requested`` THEN the report's registration is
    PendingManualApproval whatever was asked, saying why, and the job's summary says it too."""
    spec = trained["spec"]
    champion = _relabelled(trained, tmp_path / "champion", problem_type=problem.BINARY)
    report = _evaluate_requesting(trained, tmp_path / "out", champion, requested)
    assert report["gate"]["passed"], "precondition: the challenger passes the gate as the first model"
    change = f"the champion is a {problem.BINARY} model, the challenger a {spec.problem_type} one"
    assert report["champion_not_compared"] == change
    assert report["registration"] == {"requested": requested, "approval_status": approval.PENDING,
                                      "contract_change": change}
    out = capsys.readouterr().out
    assert f"  registration: {approval.registration_note(report['registration'], shown=change)}" in out
    (registered,) = [line for line in out.splitlines() if line.startswith("  registration: ")]
    assert change not in registered and f"  champion:   not compared: {change}; " in out  # given once, on its own line


def test_a_multiclass_challenger_with_other_classes_than_the_champion_is_registered_pending(trained, tmp_path):
    """GIVEN a multiclass champion that predicts other classes WHEN auto-approval is asked for THEN PendingManualApproval:
    the callers' ``label`` and ``probabilities`` would name other classes."""
    if trained["spec"].problem_type != MULTICLASS:
        return
    champion = _relabelled(trained, tmp_path / "champion", classes=["bronze", "silver"])
    report = _evaluate_requesting(trained, tmp_path / "out", champion, approval.APPROVED)
    assert report["registration"] == {
        "requested": approval.APPROVED, "approval_status": approval.PENDING,
        "contract_change": "the champion predicts classes ['bronze', 'silver'], the challenger ['bronze', 'silver', 'gold']",
    }


def test_a_challenger_with_its_features_in_another_order_is_compared_and_registered_pending(trained, tmp_path):
    """GIVEN a champion trained on the same features in another order WHEN auto-approval is asked for THEN the two are
    compared on the same rows (same target, same scale), but the version is registered PendingManualApproval: a CSV or
    list request is positional in feature_order, so a caller's unchanged request would be read as other features."""
    spec = trained["spec"]
    reordered = list(reversed(spec.features))
    champion = train_model(make_spec(spec.problem_type, features=reordered), trained["prepared"], tmp_path / "champion",
                           "--num-round", "2", "--max-depth", "1")
    report = _evaluate_requesting(trained, tmp_path / "out", champion, approval.APPROVED)
    assert report["champion"] is not None and "champion_not_compared" not in report
    assert report["registration"] == {
        "requested": approval.APPROVED, "approval_status": approval.PENDING,
        "contract_change": f"the champion takes features {reordered}, the challenger {list(spec.features)}, in that "
                           "order: a CSV or list request, positional in feature_order, would be read differently",
    }


@pytest.mark.parametrize("requested", [approval.APPROVED, approval.PENDING])
def test_a_challenger_that_answers_like_the_champion_is_registered_as_requested(trained, tmp_path, capsys, requested):
    """GIVEN a champion of the same problem type, classes and feature order THEN the requested status passes through:
    Approved where the environment auto-approves, PendingManualApproval where it does not (never more)."""
    report = _evaluate_requesting(trained, tmp_path / "out", trained["weak"], requested)
    assert report["champion"] is not None
    assert report["gate"]["passed"], "precondition: the strong challenger beats the weak champion"
    assert report["registration"] == {"requested": requested, "approval_status": requested}
    assert f"  registration: {requested}\n" in capsys.readouterr().out


def test_the_evaluate_job_registers_pending_unless_asked_and_refuses_another_status(trained, tmp_path, capsys):
    """GIVEN no --approval-status THEN the report asks for PendingManualApproval (a run that does not say never
    auto-approves); a status no version is registered with is a usage error (exit 2)."""
    assert trained["first"]["registration"] == {"requested": approval.PENDING, "approval_status": approval.PENDING}
    with pytest.raises(SystemExit) as exc:
        evaluate.build_parser().parse_args(["--approval-status", "Rejected"])
    assert exc.value.code == 2
    assert ("argument --approval-status/--approval_status: invalid choice: 'Rejected' (choose from "
            "'PendingManualApproval', 'Approved')") in capsys.readouterr().err


def test_a_calibration_limit_gates_a_multiclass_models_top_label_ece_and_never_a_regression_model(trained):
    """GIVEN a calibration limit below the first model's ECE WHEN decided THEN a multiclass model fails the calibration
    check on its top-label ECE; a regression model has no ECE and gets no calibration check (its gate has no such key)."""
    report = trained["first"]
    if trained["spec"].problem_type == MULTICLASS:
        ece = report["challenger"]["metrics"]["ece"]
        decision = decide(report, dataclasses.replace(GATE, max_calibration_error=round(ece / 2, 4)))
        assert failed(decision) == ["calibration"] and decision.checks[-1]["value"] == ece
    else:
        assert "ece" not in report["challenger"]["metrics"]
        decision = decide(report, dataclasses.replace(GATE, max_calibration_error=0.01))
        assert decision.passed and "calibration" not in [c["name"] for c in decision.checks]


@pytest.mark.parametrize("trained", [REGRESSION], indirect=True)
def test_a_regression_model_judged_on_rmse_keeps_the_floor_of_predicting_the_mean(trained):
    # GIVEN the first regression model's report judged on RMSE, which has no floor of its own (no min_quality)
    report = {**copy.deepcopy(trained["first"]), "primary_metric": "rmse"}
    report.pop("quality_floor", None)
    decision = decide(report, GATE)
    assert decision.passed, decision.reasons
    assert [c["name"] for c in decision.checks][0] == "min_r2"
    # WHEN its predictions are worse than the test set's mean for every record
    report["challenger"]["metrics"]["r2"] = -0.25
    decision = decide(report, GATE)
    # THEN the gate refuses it, as it refuses a model judged on R² below 0
    assert failed(decision) == ["min_r2"]
    assert decision.checks[0]["message"] == (
        "challenger R² -0.2500 < 0.0000: worse than predicting the test set's mean for every record; a regression model "
        "judged on rmse without min_quality keeps this floor (min_quality sets one on rmse itself instead)")


@pytest.mark.parametrize("trained", [REGRESSION], indirect=True)
def test_a_regression_model_judged_on_rmse_is_gated_when_its_test_targets_are_all_one_value(trained):
    # GIVEN a regression report judged on RMSE whose test set's target is one value throughout (a count that was 0 in
    # every test week): R² is then undefined and metrics_regression reports it as None
    report = {**copy.deepcopy(trained["first"]), "primary_metric": "rmse"}
    report.pop("quality_floor", None)
    report["challenger"]["metrics"]["r2"] = None
    # WHEN the gate judges it THEN it decides on the metric it is judged on (no GateInputError stopping Evaluate): the
    # R² floor is not judged, and the decision says why
    decision = decide(report, GATE)
    assert decision.passed, decision.reasons
    assert "min_r2" not in [c["name"] for c in decision.checks]
    assert ("min_r2 not judged: R² is undefined on a test set whose target has one value throughout (every prediction "
            "of its mean would be exact); the model is judged on rmse alone") in decision.reasons


@pytest.mark.parametrize("trained", [REGRESSION], indirect=True)
def test_a_regression_model_judged_on_rmse_with_its_own_floor_is_not_held_to_r2(trained):
    # GIVEN a forecaster judged on RMSE with min_quality set (a floor in the target's units) whose out-of-time test set's
    # level moved, so the test set's own mean, an oracle of that period, beats it: R² below 0
    report = {**copy.deepcopy(trained["first"]), "primary_metric": "rmse"}
    rmse = report["challenger"]["metrics"]["rmse"]
    report["quality_floor"] = rmse * 2
    report["challenger"]["metrics"]["r2"] = -0.25
    # WHEN the gate judges it THEN its own floor judges it, as min_quality replaces an R²-judged model's default floor:
    # without this, no challenger of such a model could ever pass while the frozen test set stays
    decision = decide(report, GATE)
    assert decision.passed, decision.reasons
    assert "min_r2" not in [c["name"] for c in decision.checks] and "min_quality" in [c["name"] for c in decision.checks]
    # AND a challenger over that floor still fails it
    report["quality_floor"] = rmse / 2
    assert failed(decide(report, GATE)) == ["min_quality"]


FORTY_CLASSES = [f"c{i:02d}" for i in range(40)]


def _forty_class_rows(rng: np.random.Generator, signal: float) -> tuple:
    """(true classes, margins) of a 40-class model on 4,500 generated test rows with a long tail (one class 25 %, ten
    under 1 %): each row's true class gets ``signal`` more margin than the others, which get standard normal noise."""
    tail = [0.002, 0.002] + [0.006] * 4 + [0.008] * 4
    middle = np.array([1 / (k + 1) ** 0.6 for k in range(29)])
    shares = np.array([0.25, *(middle / middle.sum() * (1 - 0.25 - sum(tail))), *tail])
    y = rng.choice(len(shares), 4500, p=shares)
    margins = rng.normal(0.0, 1.0, (len(y), len(shares)))
    margins[np.arange(len(y)), y] += signal
    return y, margins


def _softmax(margins: np.ndarray) -> np.ndarray:
    return np.exp(margins) / np.exp(margins).sum(axis=1, keepdims=True)


def _forty_class_headline(signal: float, seed: int) -> dict:
    """The evaluation metrics of the generated 40-class model (:func:`_forty_class_rows`)."""
    y, margins = _forty_class_rows(np.random.default_rng(seed), signal)
    return metrics_multiclass.headline(y, _softmax(margins), FORTY_CLASSES)


def _with_headline(report: dict, test: dict, validation: dict) -> dict:
    report = copy.deepcopy(report)
    report["challenger"]["metrics"].update({key: test[key] for key in ("auc", "accuracy", "macro_f1")})
    report["challenger"]["model_info"]["validation_auc"] = validation["auc"]
    report["challenger"]["model_info"]["validation"].update(
        {"validation_accuracy": validation["accuracy"], "validation_macro_f1": validation["macro_f1"]})
    return report


def test_a_many_class_model_is_suspected_of_leakage_by_a_near_perfect_top_label_not_by_its_macro_auc_alone(trained):
    if trained["spec"].problem_type != MULTICLASS:
        return
    # GIVEN a 40-class model wrong on one test row in ten: its macro one-vs-rest AUC is above 0.995 all the same (each
    # class's many easy negatives), on test and validation rows
    honest = [_forty_class_headline(3.5, seed) for seed in (1, 2)]
    assert min(h["auc"] for h in honest) >= 0.995 and max(h["accuracy"] for h in honest) < 0.95
    # WHEN gated THEN it is not refused as suspected leakage (it was, and its config had to acknowledge a leak to pass,
    # which then let a real one through unseen)
    decision = decide(_with_headline(trained["first"], *honest), GATE)
    assert "suspected_leakage" not in [c["name"] for c in decision.checks], decision.reasons
    # AND a model right on nearly every row (a label in disguise) still is, naming both of its scores
    leaked = [_forty_class_headline(8.0, seed) for seed in (1, 2)]
    decision = decide(_with_headline(trained["first"], *leaked), GATE)
    assert failed(decision) == ["suspected_leakage"]
    test, validation = leaked
    assert decision.reasons[0].startswith(
        f"suspected target leakage: test macro one-vs-rest AUC {test['auc']:.4f} >= 0.995 with accuracy "
        f"{test['accuracy']:.4f} >= 0.995; validation macro one-vs-rest AUC {validation['auc']:.4f} >= 0.995 with "
        f"accuracy {validation['accuracy']:.4f} >= 0.995; a score this close to perfect")


def _forty_class_fairness(seed: int, *, biased_class: int = -1):
    """Fairness across four regions of the generated 40-class model (:func:`_forty_class_rows`): the
    regions are drawn independently of everything, so the model is fair; ``biased_class``: half of one region's
    predictions of that class are moved to the top class."""
    rng = np.random.default_rng(seed)
    y, margins = _forty_class_rows(rng, 3.5)
    regions = rng.choice(["eu", "us", "apac", "latam"], len(y))
    if biased_class >= 0:
        moved = (regions == "eu") & (margins.argmax(axis=1) == biased_class) & (rng.random(len(y)) < 0.5)
        margins[moved, 0] = margins[moved].max(axis=1) + 1.0
    return metrics_multiclass.fairness(regions, y, _softmax(margins), FORTY_CLASSES, attribute="region",
                                       min_group_rows=100)


def _disparate_impact(decision):
    return next(c for c in decision.checks if c["name"] == "disparate_impact")


def test_a_fair_long_tail_model_passes_disparate_impact_and_a_class_one_group_is_denied_fails_it(trained):
    if trained["spec"].problem_type != MULTICLASS:
        return
    gate = dataclasses.replace(DEFAULT_GATE, min_predicted_positives=2)  # the four-fifths bound stays 0.8
    # GIVEN a 40-class model (ten classes under 1 % of 4,500 test rows) whose predictions do not depend on the region
    report = copy.deepcopy(trained["first"])
    report["challenger"]["fairness"] = _forty_class_fairness(3)
    # (its worst class's ratio is noise: a class predicted a few dozen times splits unevenly over four regions)
    assert report["challenger"]["fairness"]["disparate_impact"] < 0.5
    # WHEN gated THEN disparate impact passes: each class is held to the four-fifths bound, or to the ratio a model
    # with one rate for every region falls below by chance for that class's predictions (it failed at 0.8, and at
    # any bound a fair model of this many classes could pass short of disabling the check)
    check = _disparate_impact(decide(report, gate))
    assert check["passed"], check["message"]
    assert check["message"].startswith("disparate impact across region: every class >= minimum 0.8000 or within the noise")
    # GIVEN the same model predicting a class of about 9 % half as often for one region as for the others
    report["challenger"]["fairness"] = _forty_class_fairness(3, biased_class=1)
    # THEN disparate impact fails, naming that class, though rarer classes' ratios are lower
    check = _disparate_impact(decide(report, gate))
    assert not check["passed"]
    assert check["message"].startswith("disparate impact across region (class c01) 0.")
    assert "< minimum 0.8000" in check["message"]


def test_a_multiclass_challenger_that_loses_a_class_is_refused_by_the_per_class_recall_check(trained):
    if trained["spec"].problem_type != MULTICLASS:
        return
    # GIVEN the better challenger's report, passing (per-class recall judged on every class with enough test rows)
    report = copy.deepcopy(trained["better"])
    check = next(c for c in decide(report, GATE).checks if c["name"] == "class_recall")
    assert check["passed"], check["message"]
    # WHEN the challenger's recall of the champion's best-recalled class with enough rows falls to a fifth of it
    per_class = report["champion"]["metrics"]["per_class"]
    name = max((c for c in per_class if per_class[c]["rows"] >= GATE.min_slice_positives),
               key=lambda c: (per_class[c]["recall"], c))
    report["challenger"]["metrics"]["per_class"][name].update(recall=per_class[name]["recall"] / 5,
                                                               f1=per_class[name]["f1"] / 5)
    # THEN the gate refuses it naming the class
    decision = decide(report, GATE)
    assert "class_recall" in failed(decision)
    assert any(r.startswith(f"per-class recall: class {name} recall ") for r in decision.reasons), decision.reasons


def test_the_class_recall_tolerance_is_its_own_gate_threshold_and_moves_class_recalls_verdict_alone(trained):
    if trained["spec"].problem_type != MULTICLASS:
        return
    # GIVEN the better challenger's report, its recall of the champion's best-recalled class with enough rows fallen to
    # a fifth of it
    report = copy.deepcopy(trained["better"])
    per_class = report["champion"]["metrics"]["per_class"]
    name = max((c for c in per_class if per_class[c]["rows"] >= GATE.min_slice_positives),
               key=lambda c: (per_class[c]["recall"], c))
    report["challenger"]["metrics"]["per_class"][name].update(recall=per_class[name]["recall"] / 5,
                                                               f1=per_class[name]["f1"] / 5)

    def verdicts(gate):
        return {c["name"]: c["passed"] for c in decide(report, gate).checks}
    judged = verdicts(GATE)
    assert judged["class_recall"] is False
    # WHEN gate.max_class_recall_drop allows any drop THEN class_recall passes and no other check's verdict moves
    assert verdicts(dataclasses.replace(GATE, max_class_recall_drop=1.0)) == {**judged, "class_recall": True}
    # WHEN the slices are loosened as far as the config allows THEN the class is still refused: not the same switch
    assert verdicts(dataclasses.replace(GATE, max_slice_regression=1.0))["class_recall"] is False


def test_a_class_with_fewer_test_rows_than_the_evidence_minimum_is_not_enough_evidence_not_a_refusal(trained):
    if trained["spec"].problem_type != MULTICLASS:
        return
    report = copy.deepcopy(trained["first"])
    rows = report["challenger"]["metrics"]["per_class"]
    rarest = min(rows, key=lambda c: (rows[c]["rows"], c))
    # GIVEN the rarest class with fewer test rows than gate.min_predicted_positives, predicted for 3 of them
    rows[rarest]["rows"] = GATE.min_predicted_positives - 1
    report["challenger"]["fairness"]["per_class"][rarest]["predicted"] = 3
    # THEN fairness evidence passes, naming it as not enough evidence
    decision = decide(report, GATE)
    check = next(c for c in decision.checks if c["name"] == "fairness_evidence")
    assert check["passed"], check["message"]
    assert check["message"].endswith(
        f"; not enough evidence for 1 class with fewer than {GATE.min_predicted_positives} test rows, not judged on "
        f"how often it is predicted: {rarest}")
    # GIVEN every class that short THEN nothing can be judged: insufficient evidence, a refusal
    for name in rows:
        rows[name]["rows"] = GATE.min_predicted_positives - 1
    check = next(c for c in decide(report, GATE).checks if c["name"] == "fairness_evidence")
    assert not check["passed"]
    assert check["message"] == (
        f"fairness across age_band cannot be judged: no class has {GATE.min_predicted_positives} test rows or more "
        "(insufficient evidence, not a pass); provide more labelled data")


def test_a_multiclass_model_judged_on_log_loss_has_class_recall_judged_on_its_own_recall_tolerance(trained):
    if trained["spec"].problem_type != MULTICLASS:
        return
    # GIVEN a multiclass model judged on log loss, whose gate.max_slice_regression is in log loss units (1.5: a
    # slice's log loss may rise that much), and a challenger whose recall of a class with enough rows falls to a fifth
    report = copy.deepcopy(trained["better"])
    report["primary_metric"] = "log_loss"
    per_class = report["champion"]["metrics"]["per_class"]
    name = max((c for c in per_class if per_class[c]["rows"] >= GATE.min_slice_positives),
               key=lambda c: (per_class[c]["recall"], c))
    report["challenger"]["metrics"]["per_class"][name].update(recall=per_class[name]["recall"] / 5,
                                                               f1=per_class[name]["f1"] / 5)
    loose = dataclasses.replace(GATE, max_slice_regression=1.5)
    # THEN the per-class recall check still refuses it: a recall's tolerance is a share of the class's rows, not log
    # loss units (gate.max_class_recall_drop, whatever the slices' tolerance, and it says so)
    check = next(c for c in decide(report, loose).checks if c["name"] == "class_recall")
    assert not check["passed"], check["message"]
    assert check["class"] == name
    assert f"(gate.max_class_recall_drop {GATE.max_class_recall_drop:.4f} + " in check["message"], check["message"]

"""Counts and skewed amounts: a regression model trained on loss poisson, tweedie or gamma (XGBoost's count:poisson,
reg:tweedie, reg:gamma) predicts positive means, beats squared error on its deviance, and Evaluate, the gate and the
monitor judge it on that deviance when it is the primary metric (GIVEN / WHEN / THEN).

The data are tests/support/claims.py's: Poisson claim counts (53 % zeros) and compound Poisson-gamma claim amounts
from a known log-linear mean, fixed seed.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from pipeline_code.core import problem
from pipeline_code.monitoring import quality
from pipeline_code.training import evaluate, metrics_regression, model_card, model_io, train, train_torch
from pipeline_code.training.data_io import InputError
from pipeline_code.training.gate import decide
from pipeline_code.training.spec import DEFAULT_GATE, SpecError
from tests.support import claims
from tests.support.training import UNREAD_SHAP_ROWS, train_model

# The generated groups carry no signal of their own; parity is not what is under test here.
GATE = dataclasses.replace(DEFAULT_GATE, min_disparate_impact=0.5, max_demographic_parity_difference=0.5)
# No test reads an attribution beyond its units; on 100 of the 900 test rows the leakage check sees the same shares.
SHAP = ["--shap-sample-rows", str(UNREAD_SHAP_ROWS)]


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    """GIVEN claim counts prepared by the Prepare job WHEN a squared-error and a Poisson model train on them (same
    splits: the spec's loss does not change what Prepare writes)."""
    root = tmp_path_factory.mktemp("counts")
    poisson = claims.make_spec(loss="poisson", primary_metric="poisson_deviance")
    prepared = claims.prepared(root / "data", poisson)
    squared = claims.make_spec()
    return {"prepared": prepared, "poisson_spec": poisson, "squared_spec": squared,
            "poisson": train_model(poisson, prepared, root / "poisson"),
            "squared": train_model(squared, prepared, root / "squared")}


def _test_rows(counts):
    spec = counts["poisson_spec"]
    return model_io.read_split(counts["prepared"]["test"], spec, what="test")


def _raw_means(model_dir: str, frame: pd.DataFrame) -> np.ndarray:
    """The booster's own output (no clipping to the target's declared range)."""
    model = model_io.load_model(model_dir)
    return model.estimator.predict(model_io.to_dmatrix(model, frame)).astype(np.float64)


def test_the_poisson_model_predicts_positive_means_without_clipping(counts):
    frame = _test_rows(counts)
    poisson, squared = _raw_means(counts["poisson"], frame), _raw_means(counts["squared"], frame)
    assert poisson.min() > 0, poisson.min()
    # count:poisson's output is the mean itself: it tracks the generator's expected count, on average and per row
    truth = claims.true_mean(frame.assign(region=frame["region"].astype(str)))
    assert poisson.mean() == pytest.approx(truth.mean(), rel=0.15)
    assert np.corrcoef(np.log(poisson), np.log(truth))[0, 1] > 0.8
    # squared error, on the same splits, answers a negative count before the clip (what the clip hid)
    assert squared.min() < 0, squared.min()


def test_the_poisson_model_beats_squared_error_on_poisson_deviance(counts):
    frame = _test_rows(counts)
    y = frame["claim_count"].to_numpy(np.float64)
    poisson, squared = _raw_means(counts["poisson"], frame), _raw_means(counts["squared"], frame)
    # squared error's deviance is undefined where it predicts 0 or less: compare on the rows where it is defined
    # (which favours squared error), then on every row as Evaluate does
    rows = squared > 0
    assert metrics_regression.mean_tweedie_deviance(y[rows], poisson[rows], 1.0) < metrics_regression.mean_tweedie_deviance(
        y[rows], squared[rows], 1.0)
    assert metrics_regression.mean_tweedie_deviance(y, squared, 1.0) is None


def test_the_trained_xgboost_model_records_its_objective_and_stopping_metric(counts, tmp_path):
    model = model_io.load_model(counts["poisson"])
    config = json.loads(model.estimator.save_config())["learner"]
    assert config["objective"]["name"] == "count:poisson"
    training = model.metadata["training"]
    assert training["loss"] == "poisson"
    assert training["final_metrics"] == ["validation_rmse", "validation_mae", "validation_r2", "validation_poisson_deviance"]
    assert training["validation_poisson_deviance"] > 0


@pytest.mark.parametrize("loss, power, expected", [
    ("squared_error", None, {"objective": "reg:squarederror", "eval_metric": ["mae", "rmse"]}),
    ("poisson", None, {"objective": "count:poisson", "eval_metric": ["mae", "rmse", "poisson-nloglik"]}),
    ("tweedie", None, {"objective": "reg:tweedie", "eval_metric": ["mae", "rmse", "tweedie-nloglik@1.5"],
                       "tweedie_variance_power": 1.5}),
    ("tweedie", 1.2, {"objective": "reg:tweedie", "eval_metric": ["mae", "rmse", "tweedie-nloglik@1.2"],
                      "tweedie_variance_power": 1.2}),
    ("gamma", None, {"objective": "reg:gamma", "eval_metric": ["mae", "rmse", "gamma-deviance"]}),
])
def test_the_booster_parameters_follow_the_loss(loss, power, expected):
    params = train.Hyperparameters().xgb_params(1, problem.REGRESSION, loss=loss, tweedie_variance_power=power)
    emitted = {k: params[k] for k in ("objective", "eval_metric", "tweedie_variance_power") if k in params}
    assert emitted == expected


def test_a_classifiers_booster_keeps_its_types_objective():
    params = train.Hyperparameters().xgb_params(1, problem.BINARY)
    assert (params["objective"], params["eval_metric"], "tweedie_variance_power" in params) == (
        "binary:logistic", ["logloss", "auc"], False)


@pytest.mark.parametrize("target, loss, extra, deviance", [
    ("claim_amount", "tweedie", {"tweedie_variance_power": 1.5}, "tweedie_deviance"),
    ("repair_cost", "gamma", {}, "gamma_deviance"),
])
def test_a_tweedie_or_gamma_model_trains_on_amounts_and_reports_its_deviance(tmp_path, target, loss, extra, deviance):
    spec = claims.make_spec(target, loss=loss, primary_metric=deviance, **extra)
    prepared = claims.prepared(tmp_path / "data", spec, rows=3000)
    model_dir = train_model(spec, prepared, tmp_path / "model")
    frame = model_io.read_split(prepared["test"], spec, what="test")
    assert _raw_means(model_dir, frame).min() > 0
    summary = model_io.load_model(model_dir).metadata["training"]
    assert summary[f"validation_{deviance}"] > 0 and f"validation_{deviance}" in summary["final_metrics"]


@pytest.fixture(scope="module")
def first_report(counts, tmp_path_factory):
    """WHEN the Poisson model is evaluated as the first model, judged on Poisson deviance."""
    out = tmp_path_factory.mktemp("first")
    code = evaluate.main(["--model-spec", counts["poisson_spec"].to_json(), "--model-dir", counts["poisson"], "--test-dir",
                          counts["prepared"]["test"], "--output-dir", str(out), *GATE.to_args(), *SHAP])
    assert code == 0
    return json.loads((out / "evaluation.json").read_text())


def test_evaluate_reports_the_deviance_and_the_gate_judges_the_model_on_it(first_report):
    report = first_report
    # THEN the report carries the deviance (per slice too), the loss it trained on, and the gate judges it: R² >= 0
    # still applies (the predictions are means), as for any regression model judged on another metric
    metrics = report["challenger"]["metrics"]
    assert report["primary_metric"] == "poisson_deviance" and metrics["poisson_deviance"] > 0
    assert report["challenger"]["model_info"]["loss"] == "poisson"
    # TreeSHAP attributes the margin, which for count:poisson is the log of the mean, not the target's units
    assert report["attributions"]["units"] == "log of the predicted mean (margin)"
    assert all("poisson_deviance" in value for value in report["challenger"]["slices"]["region"]["values"].values())
    decision = decide(report, GATE)
    assert decision.passed, decision.reasons
    assert [c["name"] for c in decision.checks][:1] == ["min_r2"]


def test_the_model_card_shows_the_deviance_and_the_loss(counts, first_report):
    card = model_card.build_model_card(evaluation_report=first_report, model_spec=counts["poisson_spec"])
    (evaluation,) = card["evaluation_details"]
    groups = {g["name"]: {m["name"]: m["value"] for m in g["metric_data"]} for g in evaluation["metric_groups"]}
    shown = groups["challenger (this version)"]
    assert shown["poisson_deviance"] == pytest.approx(first_report["challenger"]["metrics"]["poisson_deviance"])
    assert "Poisson deviance by region" in groups
    assert ("Trained on loss poisson (XGBoost count:poisson): its predictions are means of the target, always above 0."
            in card["training_details"]["training_observations"])
    trained = {m["name"] for m in card["training_details"]["training_job_details"]["training_metrics"]}
    assert "validation_poisson_deviance" in trained


def test_a_challenger_with_a_worse_deviance_than_its_champion_fails_the_margin(counts, tmp_path):
    # GIVEN the Poisson model as champion and, as challenger, the same trained for a tenth of the rounds
    spec = counts["poisson_spec"]
    weak = train_model(spec, counts["prepared"], tmp_path / "weak", "--num-round", "3")
    code = evaluate.main(["--model-spec", spec.to_json(), "--model-dir", weak, "--test-dir", counts["prepared"]["test"],
                          "--champion-dir", counts["poisson"], "--output-dir", str(tmp_path / "out"), *GATE.to_args(), *SHAP])
    assert code == 0
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    margin = next(c for c in decide(report, GATE).checks if c["name"] == "challenger_margin")
    assert margin["passed"] is False
    assert margin["message"].startswith("challenger Poisson deviance ") and " > champion Poisson deviance " in margin["message"]


def test_the_monitor_measures_the_deviance_and_its_drop(counts):
    """The drift monitor's quality section of a Poisson model judged on its deviance: measured on the labelled window
    and compared with the evaluation's, relative (lower is better) like RMSE."""
    frame = _test_rows(counts)
    y = frame["claim_count"].to_numpy(np.float64)
    p = model_io.predict(model_io.load_model(counts["poisson"]), frame)
    baseline = metrics_regression.headline(y, p, ("poisson_deviance", 1.0))
    day = pd.Timestamp("2026-01-05", tz="UTC")
    joined = pd.DataFrame({quality.LABEL: y, quality.SCORE: p * 1.6, quality.INFERENCE_TIME: day})  # a model gone wrong
    section = quality.model_quality(joined, baseline, problem_type=problem.REGRESSION, primary_metric="poisson_deviance",
                                    min_labeled_rows=100, deviance=("poisson_deviance", 1.0))
    assert section["metrics"]["poisson_deviance"] > baseline["poisson_deviance"]
    assert section["changes"]["poisson_deviance_increase"] > 0.1
    assert section["quality_drop"] > 0.1
    assert [(c["feature"], c["status"]) for c in section["checks"] if c["check"] == "quality_drop"] == [("poisson_deviance", "fail")]


def test_a_network_refuses_a_loss_it_cannot_train_on(counts, tmp_path):
    with pytest.raises(InputError) as caught:
        train_torch.train(counts["poisson_spec"], counts["prepared"]["train"], counts["prepared"]["validation"],
                          str(tmp_path / "model"))
    assert str(caught.value) == ("loss poisson is XGBoost's: the network trains on squared error only (it predicts the "
                                 "standardised target, with no log link for a positive mean); train it with train.py, or "
                                 "remove loss from the model spec")


@pytest.mark.parametrize("overrides, expected", [
    ({"target": "loss_ratio", "loss": "poisson"},
     "loss: poisson needs a target that is never negative, and the dataset declares no min for 'loss_ratio': declare "
     "its column's min (min: 0) so the ETL quarantines labels outside it"),
    ({"loss": "gamma"}, "loss: gamma needs a target whose declared min is above 0, and 'claim_count' declares min: 0; "
                        "for a target that can be 0 use loss: tweedie or poisson"),
    ({"loss": "tweedie", "tweedie_variance_power": 2}, "tweedie_variance_power: 2 must be a number strictly between 1 "
                                                       "and 2 (1 is loss poisson, 2 is loss gamma); default 1.5"),
    ({"primary_metric": "poisson_deviance"}, "primary_metric: 'poisson_deviance' is the deviance of loss poisson, and "
                                             "this model trains on squared_error: set loss: poisson or pick one of r2, rmse, mae"),
    ({"loss": "huber"}, "loss: 'huber' is not one of squared_error, poisson, tweedie, gamma"),
])
def test_a_job_refuses_a_spec_whose_loss_does_not_fit(overrides, expected):
    target = overrides.pop("target", "claim_count")
    with pytest.raises(SpecError) as caught:
        claims.make_spec(target, **overrides)
    assert str(caught.value) == f"invalid --model-spec for model 'claims': {expected}"


def test_serving_answers_a_count_models_mean_in_the_usual_contract(counts):
    """The endpoint's answer for a Poisson model: the same response shape as any regression model's, its ``value``
    the model's positive mean (no clip involved: the mean is above the declared min 0 already)."""
    from pipeline_code.serving import inference

    frame = _test_rows(counts).iloc[:25]
    records = [{k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()}
               for row in frame[claims.FEATURES].astype(object).to_dict("records")]
    served = inference.model_fn(counts["poisson"])
    body, _ = inference.output_fn(inference.predict_fn(inference.input_fn(json.dumps(records), "application/json"), served),
                                  "application/json")
    answers = json.loads(body)["predictions"]
    assert [sorted(a) for a in answers] == [["value"]] * 25
    np.testing.assert_allclose([a["value"] for a in answers], _raw_means(counts["poisson"], frame), rtol=1e-6)
    assert min(a["value"] for a in answers) > 0


def test_a_champion_trained_on_squared_error_without_a_deviance_is_not_compared_on_it(counts, tmp_path):
    """GIVEN a model switched to loss poisson and judged on Poisson deviance, and its champion trained on squared error,
    which predicts a count of 0 for some test rows (its deviance there is infinite: undefined) WHEN evaluated THEN the
    champion is not compared, the report says why, and the challenger is judged as the first model (not a crash)."""
    code = evaluate.main(["--model-spec", counts["poisson_spec"].to_json(), "--model-dir", counts["poisson"],
                          "--test-dir", counts["prepared"]["test"], "--champion-dir", counts["squared"],
                          "--output-dir", str(tmp_path), *GATE.to_args(), *SHAP])
    assert code == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert report["champion"] is None
    assert report["champion_not_compared"] == (
        "the champion's Poisson deviance is undefined on the frozen test set: it predicts a mean of 0 or less for some "
        "rows (a model trained on another loss); the challenger is judged on poisson_deviance, whose champion starts "
        "with it")
    assert report["gate"]["passed"], report["gate"]["reasons"]


def test_an_auto_approving_environment_holds_a_challenger_not_compared_with_the_champion(counts, tmp_path):
    """GIVEN the same pair in an environment that registers passing versions Approved (auto_approve) WHEN evaluated
    THEN the challenger, which the gate could not compare with the serving champion, is registered
    PendingManualApproval: only the floors judged it, so a person decides whether it replaces the champion."""
    code = evaluate.main(["--model-spec", counts["poisson_spec"].to_json(), "--model-dir", counts["poisson"],
                          "--test-dir", counts["prepared"]["test"], "--champion-dir", counts["squared"],
                          "--output-dir", str(tmp_path), "--approval-status", "Approved", *GATE.to_args(), *SHAP])
    assert code == 0
    registration = json.loads((tmp_path / "evaluation.json").read_text())["registration"]
    assert registration["requested"] == "Approved"
    assert registration["approval_status"] == "PendingManualApproval"
    assert registration["champion_not_compared"].startswith("the champion's Poisson deviance is undefined")


def test_the_audit_shows_the_deviance_the_version_was_judged_on(first_report):
    """The audit's evaluation table lists the type's headline metrics and, like the model card, the primary metric."""
    from mlops_cli.audit import render

    lines = render._evaluation_markdown({"report": first_report})
    value = first_report["challenger"]["metrics"]["poisson_deviance"]
    assert [line for line in lines if line.startswith("| poisson_deviance |")] == [
        f"| poisson_deviance | {value:.4f} | no champion | — |"]


def test_the_reason_a_champion_was_not_compared_is_printed_once_in_the_summary_the_model_card_and_the_audit(
        counts, tmp_path):
    """GIVEN a challenger the gate could not compare with the serving champion, held PendingManualApproval where the
    environment auto-approves WHEN the evaluate job's summary, the model card's limitations and the audit's evaluation
    section are written THEN each gives the reason once (on its own line; the registration note says the version is
    held, not the reason again)."""
    from mlops_cli.audit import render
    from pipeline_code.training.model_card import content

    code = evaluate.main(["--model-spec", counts["poisson_spec"].to_json(), "--model-dir", counts["poisson"],
                          "--test-dir", counts["prepared"]["test"], "--champion-dir", counts["squared"],
                          "--output-dir", str(tmp_path), "--approval-status", "Approved", *GATE.to_args(), *SHAP])
    assert code == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    reason = "Poisson deviance is undefined on the frozen test set"
    assert reason in report["registration"]["champion_not_compared"]  # precondition: held for that reason
    for surface, lines in (("summary", evaluate.summary_lines(report)), ("model card", content.limitations(report)),
                           ("audit", render._evaluation_markdown({"report": report}))):
        text = "\n".join(lines)
        assert text.count(reason) == 1, (surface, text)
        assert "PendingManualApproval, not the Approved requested" in text, (surface, text)

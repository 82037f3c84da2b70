"""The evaluate CLI end to end: reports on disk, exit codes, champion from a directory or archive."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline_code.training import evaluate
from tests.support.training import UNREAD_SHAP_ROWS


# TreeSHAP of a sample of the test set, not of all of it (the default takes up to 2,000 rows, every row of these test
# sets): no test here reads more of the attributions than their ranking, and the first one below evaluates with the
# default, so the job's own sample size stays covered.
SHAP_SAMPLE = ["--shap-sample-rows", str(UNREAD_SHAP_ROWS)]


def argv(spec, model, test, out, gate, champion="", shap=SHAP_SAMPLE):
    return ["--model-spec", spec.to_json(), "--model-dir", model, "--test-dir", test,
            "--champion-dir", champion, "--output-dir", str(out), *gate.to_args(), *shap]  # fmt: skip


def test_given_a_first_model_when_evaluated_then_every_report_is_written(churn_spec, dev_gate, strong_model, prepared, tmp_path, capsys):
    out = tmp_path / "evaluation"
    code = evaluate.main(argv(churn_spec, strong_model, prepared["test"], out, dev_gate, shap=[]))
    assert code == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert isinstance(report["gate"]["passed"], bool)  # the ConditionStep's JsonGet path: gate.passed
    assert report["gate"]["passed"] is True
    assert report["champion"] is None
    manifest = json.loads((Path(prepared["test"]) / "manifest.json").read_text())
    assert report["test_set"]["sha256"] == manifest["sha256"] and report["test_set"]["rows"] == manifest["rows"]
    assert set(report["challenger"]) >= {"metrics", "slices", "fairness"}
    assert set(report["challenger"]["slices"]) == set(churn_spec.slices)
    assert report["challenger"]["fairness"]["attribute"] == "gender"
    assert report["attributions"]["ranking"][0] in churn_spec.features
    quality = report["binary_classification_metrics"]
    assert quality["auc"]["value"] == pytest.approx(report["challenger"]["metrics"]["auc"])
    assert quality["auc"]["standard_deviation"] == "NaN"
    assert json.loads((out / "model_quality.json").read_text()) == {"binary_classification_metrics": quality}
    bias = json.loads((out / "bias.json").read_text())
    assert bias["challenger"]["demographic_parity_difference"] == report["challenger"]["fairness"]["demographic_parity_difference"]
    assert json.loads((out / "explainability.json").read_text())["attributions"]["ranking"] == report["attributions"]["ranking"]
    printed = capsys.readouterr().out
    assert "gate: PASSED" in printed and "evaluation-auc=" in printed


def test_given_an_evaluation_then_its_digests_are_those_of_the_bytes_written(churn_spec, dev_gate, strong_model, prepared,
                                                                             tmp_path):
    """GIVEN a real model evaluated on a prepared test set WHEN the reports are written THEN digests.json holds the
    sha256 of each report as a ContentDigest (what the register step records in the package), and bias.json - whose
    digest the package keeps - carries evaluation.json's, the one report ModelMetrics does not name."""
    out = tmp_path / "evaluation"
    assert evaluate.main(argv(churn_spec, strong_model, prepared["test"], out, dev_gate)) == 0
    digests = json.loads((out / "digests.json").read_text())
    assert digests == {name.removesuffix(".json"): "sha256:" + hashlib.sha256((out / name).read_bytes()).hexdigest()
                       for name in ("evaluation.json", "model_quality.json", "bias.json", "explainability.json")}
    bias = json.loads((out / "bias.json").read_text())
    assert bias["evaluation_digest"] == digests["evaluation"]
    # The register step reads the test set's digest from the report (test_set.sha256): the data file's bytes.
    report = json.loads((out / "evaluation.json").read_text())
    assert report["test_set"]["sha256"] == hashlib.sha256((Path(prepared["test"]) / "test.parquet").read_bytes()).hexdigest()


def test_given_a_champion_archive_then_both_are_scored_on_the_same_rows(churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path):
    champion = tmp_path / "champion"
    champion.mkdir()
    with tarfile.open(champion / "model.tar.gz", "w:gz") as tar:  # what SageMaker stores
        for path in Path(strong_model).iterdir():
            tar.add(path, arcname=path.name)
    out = tmp_path / "evaluation"
    code = evaluate.main(argv(churn_spec, weak_model, prepared["test"], out, dev_gate, champion=str(champion)))
    assert code == 0, "a failed gate is a decision, not an error"
    report = json.loads((out / "evaluation.json").read_text())
    assert report["champion"] is not None
    assert report["champion"]["metrics"]["rows"] == report["challenger"]["metrics"]["rows"] == report["test_set"]["rows"]
    assert report["gate"]["passed"] is False
    assert report["comparison"]["auc_delta"] < 0
    assert report["champion"]["source"]["kind"] == "directory"


def test_given_a_modified_test_set_then_evaluate_exits_1(churn_spec, dev_gate, strong_model, prepared, tmp_path, capsys):
    test = tmp_path / "test"
    shutil.copytree(prepared["test"], test)
    table = pq.read_table(test / "test.parquet")
    pq.write_table(table.slice(0, table.num_rows - 1), test / "test.parquet")
    code = evaluate.main(argv(churn_spec, strong_model, str(test), tmp_path / "out", dev_gate))
    assert code == 1
    assert "was modified" in capsys.readouterr().err
    assert not (tmp_path / "out" / "evaluation.json").exists()


def test_given_a_model_for_another_spec_then_evaluate_exits_1(churn_spec, dev_gate, strong_model, prepared, tmp_path, capsys):
    other = churn_spec.to_dict()
    other["features"] = other["features"][:-1]
    code = evaluate.main(
        ["--model-spec", json.dumps(other), "--model-dir", strong_model, "--test-dir", prepared["test"],
         "--champion-dir", "", "--output-dir", str(tmp_path / "out")]
    )  # fmt: skip
    assert code == 1
    assert "uses features" in capsys.readouterr().err


def test_given_no_model_then_the_error_says_what_was_expected(churn_spec, dev_gate, prepared, tmp_path, capsys):
    code = evaluate.main(argv(churn_spec, str(tmp_path), prepared["test"], tmp_path / "out", dev_gate))
    assert code == 1
    assert "model.json" in capsys.readouterr().err


def _copy_with_digest(model: str, where: Path) -> tuple[str, str]:
    from pipeline_code.core import integrity

    shutil.copytree(model, where)
    return str(where), integrity.model_digest(str(where))


def test_given_a_registry_champion_with_its_recorded_digest_then_the_report_names_its_version_and_rule(
    churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path
):
    champion, digest = _copy_with_digest(strong_model, tmp_path / "champion")
    out = tmp_path / "evaluation"
    code = evaluate.main([*argv(churn_spec, weak_model, prepared["test"], out, dev_gate, champion=champion),
                          "--champion-version", "3", "--champion-model-sha256", digest])
    assert code == 0
    source = json.loads((out / "evaluation.json").read_text())["champion"]["source"]
    assert source == {"kind": "directory", "location": champion, "version": 3, "rule": "approved-last", "model_sha256": digest}


def test_given_a_champion_whose_model_changed_since_registration_then_evaluate_refuses_it(
    churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path, capsys
):
    """GIVEN the local registry's champion v3 WHEN its model.json no longer has the digest recorded at registration
    THEN evaluate exits 1 naming the version and both digests, and writes no report (no verdict against changed bytes)."""
    from pipeline_code.core import integrity

    champion, recorded = _copy_with_digest(strong_model, tmp_path / "champion")
    model = Path(champion) / "model.json"
    model.write_text(model.read_text() + " ")  # still loadable: only the bytes differ
    actual = integrity.model_digest(champion)
    out = tmp_path / "evaluation"
    code = evaluate.main([*argv(churn_spec, weak_model, prepared["test"], out, dev_gate, champion=champion),
                          "--champion-version", "3", "--champion-model-sha256", recorded])
    assert code == 1
    assert capsys.readouterr().err == (
        f"ERROR: champion v3 at {champion}: its model has sha256 {actual}, but {recorded} was recorded at registration "
        "(model_sha256); its model was changed, so it cannot be the champion\n"
    )
    assert not (out / "evaluation.json").exists()


def test_a_champion_digest_must_be_a_sha256(churn_spec, dev_gate, weak_model, prepared, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        evaluate.main([*argv(churn_spec, weak_model, prepared["test"], tmp_path / "out", dev_gate),
                       "--champion-model-sha256", "ABC"])
    assert exited.value.code == 2
    assert ("argument --champion-model-sha256/--champion_model_sha256: expected a sha256 (64 lower-case hex digits), "
            "got 'ABC'") in capsys.readouterr().err


def _period(model: str) -> dict:
    return json.loads((Path(model) / "feature_metadata.json").read_text())["training"]["data_period"]


def test_a_challenger_trained_before_the_frozen_window_is_evaluated_out_of_time(churn_spec, dev_gate, strong_model,
                                                                                prepared, tmp_path):
    """GIVEN the model trained on the run that froze the test set WHEN evaluated THEN the report carries the period it
    learnt from and says the evaluation is out-of-time (its data ends before the set begins): no note."""
    out = tmp_path / "evaluation"
    assert evaluate.main(argv(churn_spec, strong_model, prepared["test"], out, dev_gate)) == 0
    report = json.loads((out / "evaluation.json").read_text())
    period = _period(strong_model)
    assert report["challenger"]["model_info"]["data_period"] == period
    window = json.loads((Path(prepared["test"]) / "manifest.json").read_text())["time_range"]
    assert report["out_of_time"] == {"test_set": window, "challenger": True,
                                     "challenger_data_until": period["validation"]["max"]}
    assert not [r for r in report["gate"]["reasons"] if "out-of-time" in r]


def _more_rows(count: int) -> str:
    return f"{count} more row{'' if count == 1 else 's'}"


def test_a_challenger_whose_training_data_reaches_the_frozen_window_is_noted_and_compared_on_the_whole_set(
    churn_spec, dev_gate, strong_model, later_model, prepared, tmp_path, capsys
):
    """GIVEN a later challenger whose train and validation run through the frozen test set's window, and the champion
    trained before it WHEN evaluated THEN the report and the gate's reasons say the challenger's evaluation is not
    out-of-time (where its data ends, the set's window); the test rows after its data are too few to compare the two
    on (fewer than gate.min_slice_rows), so the champion comparison (margin, slices) is made on the whole set, which
    favours the challenger - the note says so, and how many more rows a comparison after both models' data needs -
    and the challenger's own checks are on all rows."""
    import pandas as pd

    out = tmp_path / "evaluation"
    assert evaluate.main(argv(churn_spec, later_model, prepared["test"], out, dev_gate, champion=strong_model)) == 0
    report = json.loads((out / "evaluation.json").read_text())
    window = json.loads((Path(prepared["test"]) / "manifest.json").read_text())["time_range"]
    until, champion_until = _period(later_model)["validation"]["max"], _period(strong_model)["validation"]["max"]
    test = pd.read_parquet(Path(prepared["test"]) / "test.parquet")
    after = int((pd.to_datetime(test["event_time"], utc=True) > pd.Timestamp(until)).sum())
    assert after < dev_gate.min_slice_rows
    reason = ("the champion comparison is on the whole test set, where the challenger's training data reaches (it "
              "learnt from the set's period, not from its rows): it favours the challenger; a comparison on rows after "
              f"both models' training data ({after} after {until}) needs {_more_rows(dev_gate.min_slice_rows - after)} "
              f"(gate.min_slice_rows: {dev_gate.min_slice_rows}, what a gated slice needs)")
    note = (f"evaluation is not out-of-time for this challenger: its training data reaches {until}, the frozen test set "
            f"covers {window['min']}–{window['max']}; {reason}")
    assert report["out_of_time"] == {
        "test_set": window, "challenger": False, "challenger_data_until": until, "champion": True,
        "champion_data_until": champion_until, "note": note,
        "comparison": {"after": until, "rows": after, "test_rows": len(test), "basis": "whole_set_favours_challenger",
                       "reason": reason}}
    checks = {c["name"]: c for c in report["gate"]["checks"]}
    mine, theirs = report["challenger"]["metrics"]["auc"], report["champion"]["metrics"]["auc"]
    assert report["challenger"]["metrics"]["rows"] == report["champion"]["metrics"]["rows"] == len(test)
    margin = checks["challenger_margin"]
    assert (margin["value"], margin["champion_value"], margin["basis"]) == (mine, theirs, "whole_set_favours_challenger")
    assert margin["message"].endswith(" on the whole test set, which favours the challenger")
    assert any(c["name"] == "slice_regression" for c in report["gate"]["checks"]) and "min_auc" in checks
    assert report["comparison"]["auc_delta"] == pytest.approx(mine - theirs)  # the deltas of the set compared on
    assert report["gate"]["reasons"][-1] == note
    if report["gate"]["passed"]:
        assert report["gate"]["reasons"][0].endswith(
            "; beats the champion on the whole test set, which favours the challenger (see the note)")
    printed = capsys.readouterr().out.splitlines()
    assert f"    - {note}" in printed
    assert (f"  compared:   on the whole test set, which favours the challenger (the {after} of {len(test)} test rows "
            f"after {until}: too few)") in printed


def test_the_whole_set_favours_the_champion_only_where_its_training_data_reaches_it():
    """GIVEN test rows over four days WHEN too few rows follow both models' data THEN the whole set favours the
    champion when its data reaches the set (on how many rows it is in-sample), else the challenger - also when the
    champion's period is not recorded (then said so)."""
    import pandas as pd

    times = pd.Series(pd.to_datetime(["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"], utc=True))
    late = "2026-03-04T12:00:00Z"
    assert evaluate.whole_set_basis(times, {"challenger": late, "champion": "2026-03-02T00:00:00Z"}) == (
        "whole_set_favours_champion", "the champion's training data reaches (2 of 4 rows in-sample)")
    assert evaluate.whole_set_basis(times, {"challenger": None, "champion": late}) == (
        "whole_set_favours_champion", "the champion's training data reaches (4 of 4 rows in-sample)")
    assert evaluate.whole_set_basis(times, {"challenger": late, "champion": "2026-02-01T00:00:00Z"}) == (
        "whole_set_favours_challenger",
        "the challenger's training data reaches (it learnt from the set's period, not from its rows)")
    assert evaluate.whole_set_basis(times, {"challenger": late, "champion": None}) == (
        "whole_set_favours_challenger", "the challenger's training data reaches (it learnt from the set's period, not "
        "from its rows; the champion's period is not recorded)")


def test_the_primary_metric_and_pr_auc_are_compared_and_shown_for_the_champion(churn_spec, dev_gate, weak_model,
                                                                              strong_model, prepared, tmp_path, capsys):
    """GIVEN a binary model judged on PR-AUC WHEN evaluated against a champion THEN the gate compares PR-AUC, the report's
    challenger-minus-champion block holds its delta and the summary's champion line shows it."""
    import dataclasses

    spec = dataclasses.replace(churn_spec, primary_metric="pr_auc")
    out = tmp_path / "evaluation"
    assert evaluate.main(argv(spec, strong_model, prepared["test"], out, dev_gate, champion=weak_model)) == 0
    report = json.loads((out / "evaluation.json").read_text())
    mine, theirs = report["challenger"]["metrics"]["pr_auc"], report["champion"]["metrics"]["pr_auc"]
    assert report["comparison"]["pr_auc_delta"] == pytest.approx(mine - theirs)
    margin = next(c for c in report["gate"]["checks"] if c["name"] == "challenger_margin")
    assert margin["champion_value"] == pytest.approx(theirs)
    champion_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  champion:"))
    assert f"pr_auc={theirs:.4f}" in champion_line.split()


def test_a_multiclass_champion_line_shows_the_primary_metric(tmp_path_factory, capsys):
    """GIVEN a multiclass model judged on macro F1 (outside the champion line's first four metrics) WHEN evaluated
    against a champion THEN the summary's champion line shows its macro F1 too."""
    from pipeline_code.core import problem
    from tests.support import problem_type_reports as reports

    trained = reports.shared(problem.MULTICLASS, tmp_path_factory)
    spec = reports.make_spec(problem.MULTICLASS, primary_metric="macro_f1")
    report = trained.evaluate(tmp_path_factory.mktemp("macro-f1"), spec=spec, shap_rows=UNREAD_SHAP_ROWS)
    champion_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  champion:"))
    assert f"macro_f1={report['champion']['metrics']['macro_f1']:.4f}" in champion_line.split()
    assert "macro_f1_delta" in report["comparison"]
    # Its headline scores stay in view: accuracy, not the calibration error the gate reports on a line of its own.
    shown = {item.partition("=")[0] for item in champion_line.split()[1:]}
    assert {"auc", "log_loss", "brier", "accuracy"} <= shown and "ece" not in shown


# --- A model evolved by config: the champion was trained before the change ----------------------------------------


def _champion_with(model_dir, directory, edit) -> str:
    """The model in ``model_dir`` saved to ``directory`` with ``edit`` applied to its metadata: a champion trained
    before a config change (its ``feature_metadata.json`` records what it was trained with)."""
    from pipeline_code.training import train

    model = train.load_model(model_dir)
    edit(model.metadata)
    train.save_model(model, str(directory))
    return str(directory)


def test_a_champion_trained_when_a_feature_had_another_expression_is_not_scored_on_the_new_values(
        churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path):
    """GIVEN a champion trained while one of its features had another expression (the user changed a feature's
    transformation since) WHEN the challenger is evaluated on a test set computed by the new expression THEN the
    champion is not scored on values it never learnt from (serving computes its features its own way): it is not
    compared, the report says which feature and both definitions, and the version is registered pending."""
    from pipeline_code.core import approval
    from pipeline_code.training.prepare import feature_definitions

    name = churn_spec.features[0]
    now = feature_definitions(churn_spec)[name]
    old_type = now.split(" ", 1)[0]

    def earlier_expression(meta):
        for feature in meta["dataset"]["features"]:
            if feature["name"] == name:
                feature["expr"] = f"clip({name}, 0, 1)"

    champion = _champion_with(weak_model, tmp_path / "champion", earlier_expression)
    report = evaluate.evaluate(churn_spec, strong_model, prepared["test"], str(tmp_path / "out"), dev_gate,
                               champion_dir=champion, approval_status=approval.APPROVED, log=lambda line: None,
                               shap_sample_rows=UNREAD_SHAP_ROWS)
    reason = (f"the champion's features [{name!r}] were computed by other definitions (type or expression) than the "
              f"dataset declares now: {name}: '{old_type} clip({name}, 0, 1)', now {now!r}")
    assert report["champion"] is None
    assert report["champion_not_compared"] == reason
    assert report["registration"] == {"requested": approval.APPROVED, "approval_status": approval.PENDING,
                                      "contract_change": reason}


def test_a_champion_trained_for_another_target_is_not_compared_and_the_version_waits_for_a_person(
        churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path):
    """GIVEN a champion trained for another target (the user redefined the label) WHEN the challenger is evaluated
    THEN the champion's score is not judged against labels it does not predict, and the version - whose score means
    something else to its callers - is registered pending whatever was asked."""
    from pipeline_code.core import approval

    champion = _champion_with(weak_model, tmp_path / "champion", lambda meta: meta.update(target="churned_60d"))
    report = evaluate.evaluate(churn_spec, strong_model, prepared["test"], str(tmp_path / "out"), dev_gate,
                               champion_dir=champion, approval_status=approval.APPROVED, log=lambda line: None,
                               shap_sample_rows=UNREAD_SHAP_ROWS)
    reason = f"the champion predicts target 'churned_60d', the challenger {churn_spec.target!r}"
    assert report["champion"] is None
    assert report["champion_not_compared"] == reason
    # The run's summary says so, not "none (first model)" as if there were no champion.
    assert f"  champion:   not compared: {reason}; judged as the first model" in evaluate.summary_lines(report)
    assert report["gate"]["reasons"] == [f"passed all {len(report['gate']['checks'])} checks; champion not compared "
                                         "(judged as the first model)"]
    assert report["registration"] == {"requested": approval.APPROVED, "approval_status": approval.PENDING,
                                      "contract_change": reason}


def test_a_champion_recorded_with_another_positive_class_is_not_compared_and_the_version_waits_for_a_person(
        churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path):
    """GIVEN a binary champion whose metadata records the other class as positive (classes ["1", "0"]) WHEN the
    challenger is evaluated THEN the champion is not scored against labels whose positive it does not score (its AUC
    would read as 1 - AUC, and the challenger would win and could be approved unseen): the version waits for a person."""
    from pipeline_code.core import approval

    champion = _champion_with(weak_model, tmp_path / "champion", lambda meta: meta.update(classes=["1", "0"]))
    report = evaluate.evaluate(churn_spec, strong_model, prepared["test"], str(tmp_path / "out"), dev_gate,
                               champion_dir=champion, approval_status=approval.APPROVED, log=lambda line: None,
                               shap_sample_rows=UNREAD_SHAP_ROWS)
    reason = "the champion scores class '0' as positive (classes ['1', '0']), the challenger '1' (classes ['0', '1'])"
    assert report["champion"] is None
    assert report["champion_not_compared"] == reason
    assert report["registration"] == {"requested": approval.APPROVED, "approval_status": approval.PENDING,
                                      "contract_change": reason}


def test_after_a_feature_is_removed_and_the_test_set_frozen_again_the_champion_that_used_it_does_not_stop_the_run(
        churn_spec, dev_gate, strong_model, churn_inputs, tmp_path):
    """GIVEN a champion that uses a feature the model no longer uses, and a test set frozen since for the new
    feature list (re-frozen when stale, or deleted as a changed feature set asks) WHEN the challenger is evaluated
    THEN the run goes on: the champion is not compared (it cannot be scored without that column), the report says
    why, and the version is registered pending (its callers' positional requests change)."""
    from pipeline_code.core import approval
    from pipeline_code.training import prepare
    from pipeline_code.training.spec import parse_model_spec
    from tests.support.training import train_model

    dropped = next(f for f in churn_spec.features if f not in churn_spec.slices)
    spec = parse_model_spec({**json.loads(churn_spec.to_json()),
                             "features": [f for f in churn_spec.features if f != dropped]})
    out = tmp_path / "prepared"
    prepare.prepare(spec, churn_inputs["features"], churn_inputs["labels"], str(out),
                    frozen_test_dir=str(tmp_path / "none"), data_origin={"kind": "generated"})
    prepared = {"root": str(out), **{s: str(out / s) for s in ("train", "validation", "test")}}
    challenger = train_model(spec, prepared, tmp_path / "challenger")
    report = evaluate.evaluate(spec, challenger, prepared["test"], str(tmp_path / "out"), dev_gate,
                               champion_dir=strong_model, approval_status=approval.APPROVED, log=lambda line: None,
                               shap_sample_rows=UNREAD_SHAP_ROWS)
    reason = f"the champion takes features [{dropped!r}] that the frozen test set lacks (frozen for the challenger's features)"
    assert report["champion"] is None
    assert report["champion_not_compared"] == reason
    assert report["registration"]["approval_status"] == approval.PENDING
    assert report["registration"]["contract_change"].startswith(f"the champion takes features {list(churn_spec.features)}")


def test_a_champion_registered_before_models_carried_their_declaration_is_still_compared(
        churn_spec, dev_gate, weak_model, strong_model, prepared, tmp_path):
    """GIVEN a champion registered before models carried their dataset's declaration (its ``feature_metadata.json``
    names the dataset, ``"dataset": "customer_churn"``, as every artefact before 2026-12-02 did) WHEN a challenger is
    evaluated after the upgrade THEN the champion is compared as before (nothing records another definition): Evaluate
    neither crashes on it nor sets it aside, and a challenger with the same contract keeps the status asked for."""
    from pipeline_code.core import approval

    champion = _champion_with(weak_model, tmp_path / "champion", lambda meta: meta.update(dataset=churn_spec.dataset))
    report = evaluate.evaluate(churn_spec, strong_model, prepared["test"], str(tmp_path / "out"), dev_gate,
                               champion_dir=champion, approval_status=approval.APPROVED, log=lambda line: None,
                               shap_sample_rows=UNREAD_SHAP_ROWS)
    assert "champion_not_compared" not in report
    assert report["champion"] is not None and report["comparison"] is not None
    assert report["registration"] == {"requested": approval.APPROVED, "approval_status": approval.APPROVED}


def test_the_approval_status_help_names_every_reason_a_passing_version_is_held_pending():
    """The step's --help says what the report does with the request: Pending when the callers' contract changes or
    when the serving champion was not compared (registration.champion_not_compared), never Approved from Pending."""
    (action,) = [a for a in evaluate.build_parser()._actions if a.dest == "approval_status"]
    assert action.help == (
        "the status the environment asks a passing challenger to be registered with; the report's "
        "registration.approval_status is PendingManualApproval instead when the callers' contract changes "
        "(registration.contract_change) or the serving champion was not compared (registration.champion_not_compared) "
        "(default: PendingManualApproval)")

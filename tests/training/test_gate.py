"""The gate on real evaluation reports (real models, real frozen test rows)."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest

from pipeline_code.training import evaluate, metrics, train
from pipeline_code.training.gate import GateInputError, decide
from tests.support.training import UNREAD_SHAP_ROWS


@pytest.fixture(scope="module")
def reports(churn_spec, dev_gate, strong_model, weak_model, prepared, tmp_path_factory):
    """Evaluation reports from the evaluate job: first model, better and worse challengers."""
    out = tmp_path_factory.mktemp("gate-reports")

    def run(name, model, champion):
        # The tests read the attributions' top feature and largest share only: on 100 of the 900 test rows both are
        # those of all 900 (strong model: contract_type, 0.378 / 0.384; weak: contract_type, 1.0 / 1.0).
        return evaluate.evaluate(churn_spec, model, prepared["test"], str(out / name), dev_gate,
                                 champion_dir=champion, log=lambda line: None, shap_sample_rows=UNREAD_SHAP_ROWS)  # fmt: skip

    return {
        "first": run("first", strong_model, None),
        "better": run("better", strong_model, weak_model),
        "worse": run("worse", weak_model, strong_model),
    }


def failed(decision):
    return [c["name"] for c in decision.checks if not c["passed"]]


def test_given_no_champion_then_the_first_model_needs_only_the_minimum_auc_and_fairness(reports, dev_gate):
    decision = decide(reports["first"], dev_gate)
    assert decision.passed, decision.reasons
    assert [c["name"] for c in decision.checks] == ["min_auc", "fairness_evidence", "demographic_parity", "disparate_impact"]
    assert "no champion" in decision.reasons[0]
    strict = dataclasses.replace(dev_gate, min_auc=0.99)
    decision = decide(reports["first"], strict)
    assert not decision.passed and failed(decision) == ["min_auc"]
    assert "< minimum 0.9900" in decision.reasons[0]


def test_a_run_may_tighten_the_configured_gate_but_never_loosen_it(reports, dev_gate):
    # GIVEN the environment's configured gate as the policy
    policy = json.loads(dev_gate.policy_arg())
    # WHEN a run uses the configured thresholds, or stricter ones, THEN the policy check passes
    for run in (dev_gate, dataclasses.replace(dev_gate, min_auc=dev_gate.min_auc + 0.05, max_slice_regression=0.0)):
        decision = decide(reports["first"], run, policy)
        assert decision.passed and decision.checks[0]["name"] == "gate_policy" and decision.checks[0]["passed"]
    # WHEN a run passes looser pipeline parameters (a lower AUC minimum, a higher parity gap, a lower four-fifths bound)
    loose = dataclasses.replace(dev_gate, min_auc=0.0, max_demographic_parity_difference=1.0, min_disparate_impact=0.0)
    decision = decide(reports["first"], loose, policy)
    # THEN the gate fails on that alone, naming each loosened threshold and the way to change the gate
    assert not decision.passed and failed(decision) == ["gate_policy"]
    assert decision.reasons[0] == (
        f"the run's thresholds loosen the environment's gate: min_auc 0 is looser than the environment's configured "
        f"{dev_gate.min_auc:g}; max_demographic_parity_difference 1 is looser than the environment's configured "
        f"{dev_gate.max_demographic_parity_difference:g}; min_disparate_impact 0 is looser than the environment's "
        f"configured {dev_gate.min_disparate_impact:g}. A run may tighten the gate, never loosen it: change "
        "gate.<threshold> in the configuration (a reviewed change) instead")


def test_evaluate_refuses_a_gate_policy_that_is_not_an_object_of_thresholds(capsys):
    for bad in ('{"min_auc": "high"}', '{"min_aucc": 0.7}', "[0.7]", "{}", "not json", '{"min_auc": NaN}'):
        with pytest.raises(SystemExit) as exit_info:
            evaluate.build_parser().parse_args(["--model-spec", "{}", "--model-dir", "m", "--test-dir", "t",
                                                "--output-dir", "o", "--gate-policy", bad])
        assert exit_info.value.code == 2
        assert "--gate-policy" in capsys.readouterr().err


def test_given_a_better_challenger_then_it_passes(reports, dev_gate):
    report = reports["better"]
    assert report["challenger"]["metrics"]["auc"] > report["champion"]["metrics"]["auc"] + dev_gate.challenger_margin
    decision = decide(report, dev_gate)
    assert decision.passed, decision.reasons
    assert "challenger_margin" in [c["name"] for c in decision.checks]
    assert any(c["name"] == "slice_regression" for c in decision.checks)


def test_an_evaluation_that_is_not_out_of_time_is_a_note_not_a_check(reports, dev_gate):
    # GIVEN a report whose out_of_time block notes that the challenger learnt from the frozen test set's period
    report = copy.deepcopy(reports["better"])
    note = ("evaluation is not out-of-time for this challenger: its training data reaches 2026-03-31T23:04:27Z, the "
            "frozen test set covers 2026-03-18T18:32:20Z–2026-03-31T23:43:09Z")
    report["out_of_time"] = {"challenger": False, "note": note}
    # WHEN decided THEN the verdict and the checks are those without it, and the reasons end with the note
    noted, plain = decide(report, dev_gate), decide(reports["better"], dev_gate)
    assert (noted.passed, noted.checks) == (plain.passed, plain.checks)
    assert noted.reasons == [*plain.reasons, note]


AFTER = "2026-03-25T00:00:00Z"


def _compared(report, basis, **scored):
    """``report`` with an out_of_time comparison block (as evaluate writes when a model's data reaches the set)."""
    report = copy.deepcopy(report)
    block = {"basis": basis, "after": AFTER, "rows": 321, "test_rows": report["test_set"]["rows"], "reason": "why",
             **{role: {"metrics": r["metrics"], "slices": r["slices"]} for role, r in scored.items()}}
    report["out_of_time"] = {"challenger": True, "champion": False, "comparison": block, "note": "the note"}
    return report


def test_the_margin_and_slices_are_judged_on_the_rows_after_both_models_data_when_the_report_says_so(reports, dev_gate):
    """GIVEN the better challenger's report whose comparison block (the rows after both models' training data) holds
    the worse report's figures - there the challenger loses - WHEN decided THEN the margin and slice checks read the
    block, not the whole set's metrics, and say on which rows; the challenger's own checks still read the whole set."""
    worse = reports["worse"]
    report = _compared(reports["better"], "out_of_time_rows", challenger=worse["challenger"], champion=worse["champion"])

    decision = decide(report, dev_gate)

    assert not decision.passed and "challenger_margin" in failed(decision)
    margin = next(c for c in decision.checks if c["name"] == "challenger_margin")
    mine, theirs = worse["challenger"]["metrics"]["auc"], worse["champion"]["metrics"]["auc"]
    assert (margin["value"], margin["champion_value"], margin["rows"], margin["after"]) == (mine, theirs, 321, AFTER)
    assert margin["message"] == (f"challenger AUC {mine:.4f} < champion AUC {theirs:.4f} + margin "
                                 f"{dev_gate.challenger_margin:.4f} = {theirs + dev_gate.challenger_margin:.4f} on the 321 "
                                 f"test rows after {AFTER}")
    assert all(f" rows after {AFTER}): " in c["message"] for c in decision.checks if c["name"] == "slice_regression")
    own = next(c for c in decision.checks if c["name"] == "min_auc")
    assert own["value"] == reports["better"]["challenger"]["metrics"]["auc"]
    assert decision.reasons[-1] == "the note"


def test_too_few_rows_after_both_models_data_keep_the_champion_comparison_on_the_whole_set(reports, dev_gate):
    """GIVEN the worse challenger's report whose comparison is on the whole set (too few rows after both models' data;
    the champion's data reaches the set, so the set favours it) WHEN decided THEN the margin and slice checks are made
    on the whole set as without the block - the worse challenger fails the margin, never passes for want of rows -
    and the margin's message says the whole set favours the champion; the reasons end with the note."""
    worse = reports["worse"]
    plain = decide(worse, dev_gate)
    report = _compared(worse, "whole_set_favours_champion")

    decision = decide(report, dev_gate)

    assert not decision.passed and "challenger_margin" in failed(decision)
    margin = next(c for c in decision.checks if c["name"] == "challenger_margin")
    mine, theirs = worse["challenger"]["metrics"]["auc"], worse["champion"]["metrics"]["auc"]
    assert (margin["value"], margin["champion_value"], margin["basis"]) == (mine, theirs, "whole_set_favours_champion")
    assert margin["message"] == (f"challenger AUC {mine:.4f} < champion AUC {theirs:.4f} + margin "
                                 f"{dev_gate.challenger_margin:.4f} = {theirs + dev_gate.challenger_margin:.4f} on the "
                                 "whole test set, which favours the champion")
    # The same checks as without the block: only the margin's message (and its basis) name the rows' bias.
    unmarked = [{k: v for k, v in c.items() if k not in ("message", "basis")} for c in decision.checks]
    assert unmarked == [{k: v for k, v in c.items() if k != "message"} for c in plain.checks]
    assert [c["message"] for c in decision.checks if c["name"] == "slice_regression"] == [
        c["message"] for c in plain.checks if c["name"] == "slice_regression"]
    assert decision.reasons[-1] == "the note"


def test_a_challenger_that_beats_the_champion_on_the_whole_set_passes_with_the_set_named_in_its_reason(reports,
                                                                                                      dev_gate):
    """GIVEN the better challenger's report compared on the whole set WHEN decided THEN it passes, and the pass reason
    says on which rows it beat the champion and which model they favour (the champion; or the challenger, whose data
    reaches the set while the champion's does not)."""
    for basis, favoured in (("whole_set_favours_champion", "champion"), ("whole_set_favours_challenger", "challenger")):
        decision = decide(_compared(reports["better"], basis), dev_gate)

        assert decision.passed, decision.reasons
        assert decision.reasons[0] == (f"passed all {len(decision.checks)} checks; beats the champion on the whole test "
                                       f"set, which favours the {favoured} (see the note)")
        margin = next(c for c in decision.checks if c["name"] == "challenger_margin")
        assert margin["message"].endswith(f" on the whole test set, which favours the {favoured}")


@pytest.mark.parametrize("basis", ["whole", "advisory"])
def test_a_comparison_of_an_unknown_basis_is_refused(reports, dev_gate, basis):
    """GIVEN a basis evaluate does not write - 'advisory' only reports from before the whole-set bases held, which
    the gate is never given again - THEN the gate refuses the report, naming the bases it knows."""
    with pytest.raises(GateInputError, match=rf"^evaluation report's out_of_time\.comparison\.basis is '{basis}', not "
                                             r"one of \['out_of_time_rows', 'whole_set_favours_champion', "
                                             r"'whole_set_favours_challenger'\]$"):
        decide(_compared(reports["better"], basis), dev_gate)


@pytest.mark.parametrize("kind, metrics, expected", [
    ("binary_classification", {"rows": 49, "positives": 20, "auc": 0.8},
     "1 more row (gate.min_slice_rows: 50, what a gated slice needs)"),
    ("binary_classification", {"rows": 0}, "50 more rows (gate.min_slice_rows: 50, what a gated slice needs)"),
    ("binary_classification", {"rows": 300, "positives": 9, "auc": 0.8},
     "1 more positive row (gate.min_slice_positives: 10 of each class, what a gated slice needs; 9 among the 300)"),
    ("binary_classification", {"rows": 300, "positives": 295, "auc": 0.8},
     "5 more negative rows (gate.min_slice_positives: 10 of each class, what a gated slice needs; 5 among the 300)"),
    ("binary_classification", {"rows": 300, "positives": 30, "auc": None}, "rows on which the AUC can be computed"),
    ("binary_classification", {"rows": 300, "positives": 30, "auc": 0.8}, None),
    ("multiclass_classification", {"rows": 300, "class_counts": {"a": 291, "b": 6, "c": 3}, "auc": 0.8},
     "at least 2 classes with 10 rows or more each (gate.min_slice_positives: 10, what a gated slice of a long tail "
     "needs; 1 among the 300)"),
    # A long tail: two classes seen 10 times are enough; the macro AUC over them is what is compared.
    ("multiclass_classification", {"rows": 300, "class_counts": {"a": 200, "b": 97, "c": 3}, "auc": 0.8,
                                   "compared_auc": 0.8}, None),
    ("multiclass_classification", {"rows": 300, "class_counts": {"a": 200, "b": 97, "c": 3}, "auc": 0.8,
                                   "compared_auc": None}, "rows on which the AUC can be computed"),
    ("multiclass_classification", {"rows": 300, "class_counts": {"a": 200, "b": 90, "c": 10}, "auc": 0.8}, None),
    ("regression", {"rows": 12, "r2": 0.5}, "38 more rows (gate.min_slice_rows: 50, what a gated slice needs)"),
    ("regression", {"rows": 60, "r2": 0.5}, None),
])
def test_the_rows_a_comparison_needs_are_those_a_gated_slice_needs(kind, metrics, expected):
    """The minimums of check 4 (a slice's rows, each class's count, a computable primary metric) decide whether the
    rows after both models' training data can carry the champion comparison; short of them, the text says how many
    more rows of what a comparison there needs, and which minimum asks for them."""
    from pipeline_code.core import problem
    from pipeline_code.training.gate import comparison_shortfall
    from pipeline_code.training.spec import DEFAULT_GATE

    gate = dataclasses.replace(DEFAULT_GATE, min_slice_rows=50, min_slice_positives=10)
    assert comparison_shortfall(kind, problem.default_primary_metric(kind), metrics, gate) == expected


def test_given_a_worse_challenger_then_it_is_rejected_for_the_margin(reports, dev_gate):
    decision = decide(reports["worse"], dev_gate)
    assert not decision.passed
    assert "challenger_margin" in failed(decision)
    assert any("< champion AUC" in reason for reason in decision.reasons)


def test_given_a_fairness_regression_then_it_is_rejected(reports, dev_gate, strong_model, test_frame, churn_spec):
    """GIVEN the passing challenger's scores shifted up for one gender (a biased model),
    fairness recomputed on the real test rows WHEN gated THEN only the fairness checks fail."""
    report = copy.deepcopy(reports["better"])
    y = test_frame[churn_spec.target].to_numpy()
    p = train.predict(train.load_model(strong_model), test_frame)
    biased = np.clip(p + 0.35 * (test_frame["gender"] == "female").to_numpy(), 0, 1)
    report["challenger"]["fairness"] = metrics.fairness(
        test_frame["gender"], y, biased, attribute="gender", min_group_rows=dev_gate.min_group_rows
    )
    decision = decide(report, dev_gate)
    assert not decision.passed
    assert set(failed(decision)) == {"demographic_parity", "disparate_impact"}
    assert any("demographic parity difference across gender" in r for r in decision.reasons)


def test_given_a_slice_regression_then_it_is_rejected(reports, dev_gate, strong_model, test_frame, churn_spec):
    """GIVEN a challenger equal to the champion except that it ranks the two-year contracts
    backwards (same scores, reversed order) WHEN gated (margin relaxed) THEN only that slice fails."""
    y = test_frame[churn_spec.target].to_numpy()
    p = train.predict(train.load_model(strong_model), test_frame)
    two_year = (test_frame["contract_type"] == "two-year").to_numpy()
    degraded = p.copy()
    inside = p[two_year]
    reversed_scores = np.empty_like(inside)
    reversed_scores[np.argsort(inside)] = np.sort(inside)[::-1]
    degraded[two_year] = reversed_scores
    report = copy.deepcopy(reports["better"])
    report["champion"]["metrics"] = metrics.headline(y, p)
    report["champion"]["slices"] = metrics.slice_metrics({s: test_frame[s] for s in churn_spec.slices}, y, p, min_rows=50)
    report["challenger"]["metrics"] = metrics.headline(y, degraded)
    report["challenger"]["slices"] = metrics.slice_metrics(
        {s: test_frame[s] for s in churn_spec.slices}, y, degraded, min_rows=50
    )
    # (the two-year slice holds few churners: any count of them is evidence enough for this test)
    relaxed = dataclasses.replace(dev_gate, challenger_margin=-0.2, min_slice_positives=1)
    decision = decide(report, relaxed)
    assert not decision.passed
    assert failed(decision) == ["slice_regression"]
    assert [c["slice"] for c in decision.checks if not c["passed"]] == ["contract_type=two-year"]
    assert "slice contract_type=two-year" in decision.reasons[0]
    # WHEN the slice's rarer class is below min_slice_positives THEN it is reported, not gated, and said so
    positives = report["challenger"]["slices"]["contract_type"]["values"]["two-year"]["positives"]
    cautious = dataclasses.replace(relaxed, min_slice_positives=positives + 1)
    decision = decide(report, cautious)
    assert "contract_type=two-year" not in [c.get("slice") for c in decision.checks]
    assert any(f"< {positives + 1} positives or negatives were reported, not gated" in r for r in decision.reasons)


def test_small_slices_are_reported_but_not_gated(reports, dev_gate):
    report = copy.deepcopy(reports["better"])
    values = report["challenger"]["slices"]["region"]["values"]
    for entry in values.values():
        entry["auc"] = 0.0  # catastrophic, but...
    huge = dataclasses.replace(dev_gate, min_slice_rows=10**9)  # ...every slice is "too small"
    decision = decide(report, huge)
    assert decision.passed, decision.reasons
    assert any("reported, not gated" in r for r in decision.reasons)


@pytest.mark.parametrize(
    "path",
    [
        ("challenger", "metrics", "auc"),
        ("challenger", "fairness", "demographic_parity_difference"),
        ("challenger", "fairness", "disparate_impact"),
        ("champion", "metrics", "auc"),
        ("champion", "slices"),
        ("champion",),
    ],
)
def test_a_report_missing_a_required_metric_raises_naming_it(reports, dev_gate, path):
    report = copy.deepcopy(reports["better"])
    node = report
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    with pytest.raises(GateInputError) as excinfo:
        decide(report, dev_gate)
    assert ".".join(path) in str(excinfo.value)


def test_a_test_set_without_two_groups_big_enough_to_compare_fails_the_gate_as_insufficient_evidence(
    churn_spec, dev_gate, strong_model, prepared, tmp_path
):
    """GIVEN a gate whose min_group_rows no group of the test set reaches WHEN the challenger is evaluated THEN
    the report is written and the gate fails on the evidence, naming the groups and the fix; the parity checks,
    whose metrics do not exist, are not run (before: the evaluate job failed on a null metric, with no report)."""
    gate = dataclasses.replace(dev_gate, min_group_rows=100_000)
    report = evaluate.evaluate(churn_spec, strong_model, prepared["test"], str(tmp_path), gate, champion_dir=None,
                               log=lambda line: None, shap_sample_rows=UNREAD_SHAP_ROWS)
    assert (tmp_path / "evaluation.json").exists()
    decision = decide(report, gate)
    assert not decision.passed and report["gate"]["passed"] is False and report["gate"]["reasons"] == decision.reasons
    assert [c["name"] for c in decision.checks] == ["min_auc", "fairness_evidence"]
    groups = {g: v["rows"] for g, v in report["challenger"]["fairness"]["groups"].items() if g != metrics.MISSING_GROUP}
    sizes = ", ".join(f"{g}: {n}" for g, n in sorted(groups.items(), key=lambda item: (-item[1], item[0])))
    assert decision.reasons == [
        f"fairness across {churn_spec.sensitive_attribute} cannot be judged on the test set: 0 groups have >= 100000 "
        f"rows ({sizes}), and a comparison takes two (insufficient evidence, not a pass); provide more labelled data "
        "or lower gate.min_group_rows"]


def test_a_null_or_nan_metric_is_never_a_pass(reports, dev_gate):
    report = copy.deepcopy(reports["first"])
    report["challenger"]["fairness"]["disparate_impact"] = None
    with pytest.raises(GateInputError, match="challenger.fairness.disparate_impact"):
        decide(report, dev_gate)
    report["challenger"]["fairness"]["disparate_impact"] = float("nan")
    with pytest.raises(GateInputError, match="NaN"):
        decide(report, dev_gate)


def test_a_near_perfect_score_is_refused_as_suspected_leakage_unless_the_config_says_why(reports, dev_gate):
    """GIVEN a first model whose test AUC is 1.0 and whose validation AUC 0.998 (a column that is the label in
    disguise) WHEN gated THEN it fails on suspected leakage alone, naming both scores and the two ways out; WITH the
    model's acknowledgement in the report it passes, the reason in the decision's notes."""
    report = copy.deepcopy(reports["first"])
    report["challenger"]["metrics"]["auc"] = 1.0
    report["challenger"]["model_info"]["validation_auc"] = 0.998
    decision = decide(report, dev_gate)
    assert not decision.passed and failed(decision) == ["suspected_leakage"]
    assert decision.reasons == [
        "suspected target leakage: test AUC 1.0000 >= 0.995; validation AUC 0.9980 >= 0.995; a score this close to "
        "perfect, or one feature carrying the model, usually means an input holds the label or is recorded after it (e.g. "
        "a cancellation reason for churn): remove that input, or, if the score is genuine, say why in "
        "models.churn.leakage_acknowledged"]
    report["leakage_acknowledged"] = "the contract type is fixed at signup, long before any churn"
    decision = decide(report, dev_gate)
    assert decision.passed, decision.reasons
    assert decision.reasons[-1] == (
        "suspected target leakage (test AUC 1.0000 >= 0.995; validation AUC 0.9980 >= 0.995) acknowledged by the "
        "model's config: the contract type is fixed at signup, long before any churn")


def test_one_feature_holding_most_of_the_attribution_is_suspected_leakage(reports, dev_gate):
    # GIVEN a report in which one input carries 95 % of the mean |SHAP| (the others next to nothing)
    report = copy.deepcopy(reports["first"])
    features = report["attributions"]["features"]
    top, *rest = report["attributions"]["ranking"]
    features[top]["share"] = 0.95
    for name in rest:
        features[name]["share"] = 0.05 / len(rest)
    # WHEN gated THEN it fails, naming the feature and its share
    decision = decide(report, dev_gate)
    assert failed(decision) == ["suspected_leakage"]
    assert decision.reasons[0].startswith(f"suspected target leakage: feature {top!r} holds 95% of the attribution (>= 90%);")
    # AND the sample's spread attributions raise no suspicion
    assert "suspected_leakage" not in [c["name"] for c in decide(reports["first"], dev_gate).checks]


def test_zero_attribution_features_are_no_top_features():
    attributions = {"ranking": ["leak", "age", "plan"],
                    "features": {"leak": {"mean_abs_shap": 2.5}, "age": {"mean_abs_shap": 0.0}, "plan": {"mean_abs_shap": 0.0}}}
    assert evaluate.top_features(attributions) == ["leak"]


def test_a_calibration_limit_gates_the_challengers_expected_calibration_error(reports, dev_gate):
    """GIVEN the real first model's report (its ECE on the frozen test set) WHEN the gate has no calibration limit
    (max_calibration_error 1, the default) THEN no calibration check is made; WHEN the limit is below the model's ECE
    THEN the gate fails on it alone, naming the value and the limit; at or above it, it passes with the check."""
    report = reports["first"]
    ece = report["challenger"]["metrics"]["ece"]
    assert 0.0 < ece < 0.5
    assert dev_gate.max_calibration_error == 1.0
    assert "calibration" not in [c["name"] for c in decide(report, dev_gate).checks]

    strict = dataclasses.replace(dev_gate, max_calibration_error=round(ece / 2, 4))
    decision = decide(report, strict)
    assert not decision.passed and failed(decision) == ["calibration"]
    assert decision.reasons[0] == (f"challenger expected calibration error {ece:.4f} > maximum "
                                   f"{strict.max_calibration_error:.4f} (10 equal-width probability bins)")

    loose = dataclasses.replace(dev_gate, max_calibration_error=round(ece + 0.01, 4))
    decision = decide(report, loose)
    assert decision.passed, decision.reasons
    check = next(c for c in decision.checks if c["name"] == "calibration")
    assert (check["value"], check["threshold"]) == (ece, loose.max_calibration_error)


def test_a_run_may_not_lift_the_configured_calibration_limit(reports, dev_gate):
    """GIVEN an environment whose configured gate limits the ECE WHEN a run passes the default (no limit) THEN the
    policy check fails naming it; a tighter limit passes the policy check."""
    configured = dataclasses.replace(dev_gate, max_calibration_error=0.2)
    policy = json.loads(configured.policy_arg())
    decision = decide(reports["first"], dev_gate, policy)
    assert failed(decision) == ["gate_policy"]
    assert "max_calibration_error 1 is looser than the environment's configured 0.2" in decision.reasons[0]
    assert decide(reports["first"], dataclasses.replace(configured, max_calibration_error=0.1), policy).checks[0]["passed"]


def test_a_report_without_the_challengers_ece_is_refused_when_calibration_is_gated(reports, dev_gate):
    report = copy.deepcopy(reports["first"])
    del report["challenger"]["metrics"]["ece"]
    with pytest.raises(GateInputError, match=r"^evaluation report lacks required metric 'challenger\.metrics\.ece' "
                                             r"\(no key 'ece'\)$"):
        decide(report, dataclasses.replace(dev_gate, max_calibration_error=0.1))
    assert decide(report, dev_gate).passed  # no limit: not read

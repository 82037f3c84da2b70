"""A rare event (~2 % positives) through train, evaluate and gate on real reports: the fraud model of docs/add-your-own-model.md.

At the default fixed threshold of 0.5 the model flags nothing, so its parity metrics read as perfect; the
gate must call that insufficient evidence. With that page's decision policy the threshold is chosen on
validation data, recall is real and the fairness verdict rests on real predicted positives.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_loop.config import parse_config
from pipeline_code.training import evaluate, prepare, train
from pipeline_code.training.spec import DEFAULT_GATE, parse_model_spec

from tests.support.training import UNREAD_SHAP_ROWS, train_model, write_inputs
from tests.support.walkthrough import config_with_walkthrough

ROWS = 20_000


@pytest.fixture(scope="module")
def fraud_entry():
    return parse_config(config_with_walkthrough(), source="walk-through config").models["fraud"].job_spec()


@pytest.fixture(scope="module")
def prepared(fraud_entry, tmp_path_factory):
    """GIVEN 20,000 transactions simulated from docs/add-your-own-model.md's declaration at 2 % fraud, prepared once."""
    spec = parse_model_spec(fraud_entry)
    inputs = write_inputs(tmp_path_factory.mktemp("fraud-inputs"), spec.catalog_dataset, ROWS, seed=3, positive_rate=0.02)
    out = tmp_path_factory.mktemp("fraud-prepared")
    assert prepare.main(["--model-spec", spec.to_json(), "--features-dir", inputs["features"], "--labels-dir",
                         inputs["labels"], "--frozen-test-dir", str(out / "none"), "--output-dir", str(out)]) == 0
    return {s: str(out / s) for s in ("train", "validation", "test")}


def evaluated(entry: dict, prepared: dict, directory: Path) -> dict:
    """WHEN a model of ``entry`` is trained and evaluated (no champion) with the default gate: its report."""
    spec = parse_model_spec(entry)
    model = train_model(spec, prepared, directory / "model")
    assert evaluate.main(["--model-spec", spec.to_json(), "--model-dir", model, "--test-dir", prepared["test"],
                          "--champion-dir", "", "--output-dir", str(directory / "evaluation"), "--shap-sample-rows", str(UNREAD_SHAP_ROWS),
                          *DEFAULT_GATE.to_args()]) == 0
    report = json.loads((directory / "evaluation" / evaluate.EVALUATION_FILE).read_text())
    report["model_metadata"] = train.load_model(model).metadata
    return report


@pytest.fixture(scope="module")
def readme_policy(fraud_entry, prepared, tmp_path_factory) -> dict:
    """WHEN the walk-through's fraud model (its page's decision policy, no class weight) is trained and evaluated: the
    report two tests read (trained once: the same entry, splits and flags give the same model)."""
    return evaluated(fraud_entry, prepared, tmp_path_factory.mktemp("readme-policy"))


def check(report: dict, name: str) -> dict:
    (found,) = [c for c in report["gate"]["checks"] if c["name"] == name]
    return found


def test_at_the_default_threshold_the_silent_model_is_refused_for_insufficient_evidence(fraud_entry, prepared, tmp_path):
    report = evaluated({**fraud_entry, "decision": {"policy": "fixed"}}, prepared, tmp_path)
    metrics = report["challenger"]["metrics"]
    assert metrics["prevalence"] < 0.04 and metrics["threshold"] == 0.5
    assert metrics["recall"] < 0.1  # it flags (almost) nothing...
    assert report["challenger"]["fairness"]["disparate_impact"] >= 0.8  # ...so parity looks perfect
    evidence = check(report, "fairness_evidence")
    assert not evidence["passed"] and evidence["value"] < DEFAULT_GATE.min_predicted_positives
    assert not report["gate"]["passed"]
    assert any("cannot be judged" in r and "insufficient evidence, not a pass" in r for r in report["gate"]["reasons"])


def test_with_the_readme_policy_the_threshold_is_chosen_on_validation_and_recall_is_real(readme_policy):
    report = readme_policy
    metadata = report["model_metadata"]
    assert metadata["decision"]["policy"] == {"policy": "max_f_beta", "beta": 2.0}
    assert metadata["threshold"] == report["challenger"]["metrics"]["threshold"] < 0.5
    metrics = report["challenger"]["metrics"]
    assert metrics["recall"] > 0.15 and metrics["positive_rate"] > metrics["prevalence"]  # beta 2: recall first
    assert metrics["pr_auc"] > 2 * metrics["prevalence"]  # the ranking is worth something where the event lives
    evidence = check(report, "fairness_evidence")
    assert evidence["passed"] and evidence["value"] >= DEFAULT_GATE.min_predicted_positives
    fairness = report["challenger"]["fairness"]
    flagged = [fairness["groups"][g]["predicted_positives"] for g in fairness["eligible_groups"]]
    assert sum(flagged) == evidence["value"] and min(flagged) > 0  # a verdict on real decisions in every group


def test_balanced_class_weight_is_applied_in_training(fraud_entry, prepared, readme_policy, tmp_path):
    plain = readme_policy  # the same model without the weight
    weighted = evaluated({**fraud_entry, "class_weight": "balanced"}, prepared, tmp_path / "weighted")
    assert weighted["model_metadata"]["training"]["class_weight"] == "balanced"
    # Positives weigh as much as all negatives: scores move up, far above the prevalence.
    assert weighted["challenger"]["metrics"]["mean_score"] > 5 * plain["challenger"]["metrics"]["mean_score"]

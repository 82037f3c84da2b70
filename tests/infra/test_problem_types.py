"""A multiclass and a regression model added through configuration alone: they synthesize clean with what their
type needs, and run through the local loop (GIVEN / WHEN / THEN).

The config is the frozen sample plus the dataset of tests/support/problem_types.py and one model of each type in
dev, so this is also the proof that adding models of other types leaves the app synthesizing clean. Its dev environment
is synthesized with the walk-through's model too (tests/support/added_models.py: one synth for both modules).
"""

from __future__ import annotations

import io
import json

import pytest
import yaml

from mlops_loop.config import ConfigError, parse_config
from mlops_loop.tools.cloud_assembly import stacks
from mlops_loop.tools.lint import lint_cache, lint_stacks
from pipeline_code.core.contract import pascal
from mlops_cli.local import run_loop
from tests.support.configs import SAMPLE_CONFIG
from tests.support.local_run import DAYS, lenient_local_run
from tests.support.added_models import ADDED_MODELS, added_models_config
from tests.support.problem_types import MODELS, with_problem_types
from tests.support.request_shapes import pipeline_definition


def config_with_problem_types() -> dict:
    return with_problem_types(yaml.safe_load(SAMPLE_CONFIG.read_text()))


@pytest.fixture(scope="module")
def assembly(synthesize_once):
    """WHEN the dev environment is synthesized with both models, nag packs on (once per test run: raises on any
    unacknowledged cdk-nag finding). Together with the walk-through's model (tests.support.added_models): the tests
    here read only what their own models add, by name."""
    return list(stacks(synthesize_once(ADDED_MODELS, added_models_config(), ["dev"])))


def resources(assembly, cfn_type):
    return [r["Properties"] for s in assembly for r in s.template["Resources"].values() if r["Type"] == cfn_type]


def test_they_synthesize_clean(assembly):
    result = lint_stacks(assembly, cache=lint_cache())
    assert (result.errors, result.warnings) == (0, 0), result.lines


def test_each_training_job_reports_and_each_tuning_job_would_optimise_its_primary_metric(assembly):
    """Per round the type's early-stopping metric; at the end the model's primary metric on validation data, the one
    the gate compares (macro F1 as order-segment declares, R² as basket-value's type defaults to)."""
    pipelines = {p["PipelineName"]: pipeline_definition(p) for p in resources(assembly, "AWS::SageMaker::Pipeline")}
    expected = {"order-segment": ["validation-mlogloss", "validation-macro_f1", "final-validation-macro_f1"],
                "basket-value": ["validation-rmse", "validation-r2", "final-validation-r2"],
                "churn": ["validation-auc", "final-validation-auc"]}
    for model, names in expected.items():
        (train,) = [s for s in pipelines[f"mlops-loop-dev-{model}-training"]["Steps"] if s["Type"] == "Training"]
        definitions = train["Arguments"]["AlgorithmSpecification"]["MetricDefinitions"]
        assert [d["Name"] for d in definitions] == names


def test_the_model_spec_each_job_reads_says_the_problem_type():
    config = parse_config(config_with_problem_types())
    specs = {name: config.models[name].job_spec() for name in MODELS}
    assert specs["order-segment"]["problem_type"] == "multiclass_classification"
    assert specs["order-segment"]["primary_metric"] == "macro_f1"
    assert specs["basket-value"]["problem_type"] == "regression"
    assert "primary_metric" not in specs["basket-value"]  # its type's default, r2
    assert "problem_type" not in config.models["churn"].job_spec()  # a binary spec reads as it always has


def test_each_version_is_registered_with_its_types_task(assembly):
    """The registry (and the model card) show a regression model as REGRESSION, the classifiers as CLASSIFICATION."""
    pipelines = {p["PipelineName"]: pipeline_definition(p) for p in resources(assembly, "AWS::SageMaker::Pipeline")}

    def steps(listed):  # the gate's condition step holds the register step in its branches
        for step in listed:
            yield step
            yield from steps(step.get("Arguments", {}).get("IfSteps", []) + step.get("Arguments", {}).get("ElseSteps", []))

    def task(model):
        (register,) = [s for s in steps(pipelines[f"mlops-loop-dev-{model}-training"]["Steps"]) if s["Type"] == "RegisterModel"]
        return register["Arguments"]["Task"]

    assert (task("order-segment"), task("basket-value"), task("churn")) == ("CLASSIFICATION", "REGRESSION", "CLASSIFICATION")


def test_a_models_gate_reaches_its_pipeline_only(assembly):
    pipelines = {p["PipelineName"]: pipeline_definition(p) for p in resources(assembly, "AWS::SageMaker::Pipeline")}

    def impact(model):
        (parameter,) = [p for p in pipelines[f"mlops-loop-dev-{model}-training"]["Parameters"] if p["Name"] == "MinDisparateImpact"]
        return parameter["DefaultValue"]

    assert (impact("order-segment"), impact("basket-value"), impact("churn")) == (0.6, 0.8, 0.8)


def test_each_quality_alarm_watches_the_drop_of_the_metric_the_model_is_judged_on(assembly):
    """Regression and a multiclass model judged on macro F1: the drop in their primary metric (the check the monitor
    fails them on); a binary model: its AUC drop."""
    alarms = {a["AlarmName"]: a for a in resources(assembly, "AWS::CloudWatch::Alarm")}
    quality = {model: alarms[f"mlops-loop-dev-{model}-retrain-quality"] for model in ("basket-value", "order-segment", "churn")}
    # Each reads its metric through FILL(m, 0): a day without labels judged is no quality loss.
    watched = {m: next(q["MetricStat"]["Metric"]["MetricName"] for q in a["Metrics"] if "MetricStat" in q)
               for m, a in quality.items()}
    assert {m: (watched[m], a["Threshold"]) for m, a in quality.items()} == {
        "basket-value": ("QualityDrop", 0.1),  # monitoring.max_quality_drop
        "order-segment": ("QualityDrop", 0.1),  # primary metric macro_f1, monitoring.max_quality_drop
        "churn": ("AucDrop", 0.05),  # monitoring.max_auc_drop
    }


def test_the_monitor_of_a_model_that_is_not_binary_judges_the_same_quality_drop_as_its_alarm(assembly):
    monitors = {logical_id: json.dumps(r["Properties"]["Target"]["Input"]) for s in assembly
                for logical_id, r in s.template["Resources"].items()
                if r["Type"] == "AWS::Scheduler::Schedule" and "pipeline_code.monitoring.monitor" in json.dumps(r["Properties"])}
    flagged = {pascal(model): any(i.startswith(pascal(model) + "Monitor") and '\\"--max-quality-drop\\",\\"0.1\\"' in text
                                  for i, text in monitors.items())
               for model in ("basket-value", "order-segment", "churn", "credit-risk")}
    assert flagged == {"BasketValue": True, "OrderSegment": True, "Churn": False, "CreditRisk": False}


def test_native_model_monitor_is_refused_for_a_model_that_is_not_binary():
    raw = config_with_problem_types()
    raw["models"]["order-segment"]["serving"] = {"mode": "realtime", "native_model_monitor": True}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert caught.value.problems == [
        "model 'order-segment': field 'serving.native_model_monitor': supported for binary_classification models only "
        "(this one is multiclass_classification); our own drift monitor covers every problem type"]


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_a_model_judged_on_rmse_sets_its_margin_and_slice_regression_in_the_targets_units():
    """GIVEN a regression model judged on RMSE WHEN its gate sets a margin of 1000 and a slice regression of 5000 (the
    target's units, as the README says) THEN they are its gate; the same values on an AUC model are refused."""
    raw = config_with_problem_types()
    raw["models"]["basket-value"].update(primary_metric="rmse", gate={"challenger_margin": 1000, "max_slice_regression": 5000})
    config = parse_config(raw)
    gate = config.models["basket-value"].gate_in(config.environments["dev"].gate).thresholds()
    assert (gate.challenger_margin, gate.max_slice_regression) == (1000, 5000)
    raw["models"]["order-segment"]["gate"] = {"challenger_margin": 1000}
    assert _problems(raw) == ["model 'order-segment': field 'gate.challenger_margin': Input should be less than or equal "
                              "to 0.5 (got 1000)"]
    raw["models"]["order-segment"]["gate"] = {}
    raw["models"]["basket-value"]["gate"] = {"challenger_margin": float("inf")}  # YAML's .inf: a gate nothing passes
    assert _problems(raw) == ["model 'basket-value': field 'gate.challenger_margin': Input should be a finite number "
                              "(got inf)"]


@pytest.mark.parametrize("model, metric, floor, expected", [
    ("basket-value", "r2", 1.5, "1.5 is no possible R² (it is at most 1), so no model could pass"),
    ("basket-value", "rmse", -5000, "-5000 is no possible RMSE (it is at least 0), so no model could pass"),
    ("order-segment", "auc", 1.7, "1.7 is no possible AUC (it is between 0 and 1), so no model could pass"),
])
def test_a_quality_floor_no_model_could_reach_is_refused(model, metric, floor, expected):
    raw = config_with_problem_types()
    raw["models"][model].update(primary_metric=metric, min_quality=floor)
    assert _problems(raw) == [f"model {model!r}: field 'min_quality': {expected}"]


@pytest.mark.parametrize("gate, expected", [
    ({"min_quality": 0.5}, "min_quality is a key of the model, not of its gate: move it up a level "
                           "(models.<name>.min_quality)"),
    ({"min_auc": 0.9}, "min_auc does not apply to a regression model (its floor is min_quality, its fairness is error "
                       "parity against min_disparate_impact and the bias gap against max_demographic_parity_difference); "
                       "remove it"),
    ({"max_calibration_error": 0.05}, "max_calibration_error does not apply to a regression model (it limits a "
                                      "classifier's expected calibration error: how far its probabilities are from the "
                                      "rates observed); remove it"),
    ({"max_class_recall_drop": 0.1}, "max_class_recall_drop does not apply to a regression model (it limits how far a "
                                     "class's recall may fall below the champion's: multiclass models only); remove it"),
])
def test_a_gate_key_in_the_wrong_place_or_for_another_type_is_refused_saying_where_it_belongs(gate, expected):
    raw = config_with_problem_types()
    raw["models"]["basket-value"]["gate"] = gate
    assert _problems(raw) == [f"model 'basket-value': field 'gate': {expected}"]


def test_a_regression_model_sets_the_maximum_of_its_bias_gap_with_max_demographic_parity_difference():
    """GIVEN a regression model whose own gate sets max_demographic_parity_difference WHEN the config loads THEN it is
    that model's bias-gap maximum (the gate's bias_parity check), not a classifier key refused."""
    raw = config_with_problem_types()
    raw["models"]["basket-value"]["gate"] = {"max_demographic_parity_difference": 0.05}
    config = parse_config(raw)
    gate = config.models["basket-value"].gate_in(config.environments["dev"].gate).thresholds()
    assert gate.max_demographic_parity_difference == 0.05


@pytest.mark.spark
@pytest.mark.slow
def test_the_local_run_takes_each_type_through_every_stage(spark, tmp_path, monkeypatch):
    # GIVEN generated orders WHEN the local run trains, evaluates, gates and registers each model
    from pipeline_code.etl import glue_curate_job

    curations = []
    curate = glue_curate_job.main
    monkeypatch.setattr(glue_curate_job, "main", lambda argv: curations.append(argv) or curate(argv))
    out = io.StringIO()
    with lenient_local_run(tmp_path, raw=config_with_problem_types()) as path:
        records = run_loop.run(["--model", "order-segment", "--model", "basket-value", "--rows", "4000", "--days", DAYS,
                                "--num-round", "30", "--config", path, "--workdir", str(tmp_path / "run")], out=out)
    # THEN each is judged in its own metrics and registered
    segment, value = records
    assert segment["report"]["problem_type"] == "multiclass_classification"
    assert segment["report"]["challenger"]["metrics"]["macro_f1"] > 0.4
    assert value["report"]["problem_type"] == "regression"
    assert value["report"]["challenger"]["metrics"]["r2"] > 0.2
    assert [r["version"] for r in records] == [1, 1]
    printed = out.getvalue()
    assert "challenger: auc=" in printed and "macro_f1=" in printed and "challenger: r2=" in printed
    # AND the orders both read (the same generated records: one dataset, the same features) went through the Glue job
    # once: the second run read the first's curated records and features, and says so
    assert len(curations) == 1
    shared = (f"the same raw records of shop_orders as run {segment['run_id']}: its curated records "
              "and features are this run's (curated once)")
    assert value["data"] == {**segment["data"], "notes": [shared]} and f"note: {shared}" in printed


def test_the_class_recall_tolerance_is_refused_on_a_binary_models_gate_and_taken_on_a_multiclass_ones():
    """GIVEN max_class_recall_drop in a model's own gate WHEN the config loads THEN a binary model's is refused naming the
    key (it has no classes to compare: the key would be silently unused), a multiclass model's is its gate's."""
    raw = config_with_problem_types()
    raw["models"]["order-segment"]["gate"] = {"max_class_recall_drop": 0.1}
    config = parse_config(raw)
    assert config.models["order-segment"].gate_in(config.environments["dev"].gate).thresholds().max_class_recall_drop == 0.1
    binary = next(name for name, model in raw["models"].items()
                  if model.get("problem_type", "binary_classification") == "binary_classification")
    raw["models"][binary]["gate"] = {**raw["models"][binary].get("gate", {}), "max_class_recall_drop": 0.1}
    assert _problems(raw) == [f"model {binary!r}: field 'gate': max_class_recall_drop does not apply to a binary model "
                              "(it limits how far a class's recall may fall below the champion's: multiclass models "
                              "only); remove it"]

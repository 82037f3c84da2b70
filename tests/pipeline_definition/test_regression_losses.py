"""The pipeline of a model trained on a count or amount loss: its training and tuning jobs read the loss's own
per-round metric (the one training stops early on) and its primary metric, and the spec every job reads carries the
loss (the training job derives the XGBoost objective from it)."""

from __future__ import annotations

import json
import re

import pytest

from mlops_loop.training import build_pipeline_definition, names as d, step_graph
from pipeline_code.training import train
from tests.support import claims
from tests.support import pipeline_specs as specs


def _definition(spec_doc: dict, **changes):
    spec = specs.base_spec(model_name="claims", model_spec_json=json.dumps(spec_doc), **changes)
    return dict(step_graph(build_pipeline_definition(spec)))


@pytest.mark.parametrize("loss_fields, primary, per_round, objective", [
    ({"loss": "poisson"}, "poisson_deviance", "validation-poisson-nloglik", ("Minimize", "validation-poisson_deviance")),
    ({"loss": "tweedie", "tweedie_variance_power": 1.3}, "r2", "validation-tweedie-nloglik@1.3",
     ("Maximize", "validation-r2")),
    ({}, "rmse", "validation-rmse", ("Minimize", "validation-rmse")),
])
def test_the_training_and_tuning_jobs_read_the_losss_metrics(loss_fields, primary, per_round, objective):
    target = "claim_amount" if loss_fields.get("loss") == "tweedie" else "claim_count"
    doc = claims.make_spec(target, primary_metric=primary, **loss_fields).to_dict()
    # The spec the jobs read carries the loss (and tweedie's power) as the config wrote it
    assert {k: doc[k] for k in ("loss", "tweedie_variance_power") if k in doc} == loss_fields
    training = _definition(doc)[d.STEP_TRAIN]["Arguments"]["AlgorithmSpecification"]["MetricDefinitions"]
    names = [m["Name"] for m in training]
    assert names == [per_round, *([objective[1]] if objective[1] != per_round else []), f"final-{objective[1]}"]
    tuning = _definition(doc, enable_tuning=True)[d.STEP_TUNE]["Arguments"]
    config = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert (config["Type"], config["MetricName"]) == objective
    assert tuning["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"] == training
    # Each regex reads the line the training job prints (callback per round; the final summary line)
    power = loss_fields.get("tweedie_variance_power")
    params = train.Hyperparameters().xgb_params(1, "regression", loss=loss_fields.get("loss", "squared_error"),
                                                tweedie_variance_power=power)
    printed = f"[3/60] validation-{params['eval_metric'][-1]}=1.234500; validation-mae=0.9;"
    assert re.search(training[0]["Regex"], printed).group(1) == "1.234500"
    final = f"final_validation_{primary}=0.812000; {objective[1]}=0.813000; final_rounds=40;"
    assert re.search(training[-1]["Regex"], final).group(1) == "0.812000"
    regex = {m["Name"]: m["Regex"] for m in training}
    assert re.search(regex[objective[1]], final).group(1) == "0.813000"

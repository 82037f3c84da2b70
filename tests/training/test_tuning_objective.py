"""The tuning job keeps the trial that is best on the metric the gate then compares (GIVEN / WHEN / THEN).

The gate judges a challenger on the model's ``primary_metric`` (the champion margin, the slice regressions), so the
tuning job must rank its trials by that metric - on the validation split, never the frozen test set. Each case builds
the pipeline definition with tuning on, takes the objective's metric definition from it, runs the training job's
entry point and reads the objective from the job's log with SageMaker's regex: the trainer prints it after every
round (for early stopping) and once more for the kept model, and SageMaker takes the last value a job emits as its
objective, so the last value found must be the primary metric of the kept model's validation predictions, as the
evaluation computes it.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout

import pytest

from mlops_loop.training import build_pipeline_definition, step_graph
from mlops_loop.training import names as d
from pipeline_code.core import problem
from pipeline_code.core.problem import BINARY, MULTICLASS, REGRESSION
from pipeline_code.training import metrics as metric_lib, metrics_multiclass, metrics_regression, train
from pipeline_code.training.spec import parse_model_spec
from tests.support import pipeline_specs as specs
from tests.support import problem_type_reports as reports
from tests.support.problem_types import make_spec
from tests.support.training import train_model

# Every primary metric a model may declare (a metric added to core.problem is covered without editing this list).
CASES = [(kind, metric) for kind, metrics in problem.PRIMARY_METRICS.items() for metric in metrics]


def _objective(name: str, model_spec_json: str):
    """(objective, its metric definition's regex) of the tuning job of a pipeline for this model spec."""
    text = build_pipeline_definition(specs.base_spec(model_name=name, model_spec_json=model_spec_json, enable_tuning=True))
    tune = dict(step_graph(text))[d.STEP_TUNE]["Arguments"]
    objective = tune["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    regexes = {m["Name"]: m["Regex"] for m in tune["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]}
    assert objective["MetricName"] in regexes, "the objective must be one of the job's metric definitions"
    return objective, regexes[objective["MetricName"]]


def _validation_metric(spec, model_dir: str, prepared, metric: str) -> float:
    """``metric`` of the kept model on the validation split, computed as the evaluation computes it on the test set."""
    model = train.load_model(model_dir)
    _, validation = train.read_splits(spec, prepared["train"], prepared["validation"])
    y, p = validation[spec.target].to_numpy(), train.predict(model, validation)
    if spec.problem_type == BINARY:
        return metric_lib.headline(y, p, model.metadata["threshold"])[metric]
    if spec.problem_type == MULTICLASS:
        return metrics_multiclass.headline(y, p, spec.classes)[metric]
    return metrics_regression.headline(y, p)[metric]


@pytest.mark.parametrize("kind,primary", CASES, ids=[f"{k.split('_')[0]}-{m}" for k, m in CASES])
def test_the_tuning_objective_is_the_primary_metric_on_validation(kind, primary, churn_spec, prepared, tmp_path,
                                                                   tmp_path_factory):
    # GIVEN a model judged on a primary metric other than its type's default
    if kind == BINARY:
        spec = parse_model_spec({**churn_spec.to_dict(), "primary_metric": primary})
        splits = prepared
    else:
        spec = make_spec(kind, primary_metric=primary)
        splits = reports.shared(kind, tmp_path_factory).prepared
    model_spec_json = json.dumps({**specs.CHURN_SPEC, "primary_metric": primary}) if kind == BINARY else spec.to_json()
    # WHEN its pipeline tunes it
    objective, regex = _objective(spec.name, model_spec_json)
    # THEN the tuning job keeps the trial with the best primary metric, in its direction
    assert objective["Type"] == ("Maximize" if problem.higher_is_better(primary) else "Minimize")
    # ... and a trial's log line carries it: the kept model's primary metric on validation data
    out = io.StringIO()
    with redirect_stdout(out):
        model_dir = train_model(spec, splits, tmp_path / "model")
    found = re.findall(regex, out.getvalue())
    assert len(found) >= 2, out.getvalue()[-2000:]  # one per round, then the kept model's
    # Printed to six decimals, and summed in another order than Evaluate sums it: an RMSE in the hundreds agrees to
    # about 1e-9 of itself, not to 1e-6 absolute.
    assert float(found[-1]) == pytest.approx(_validation_metric(spec, model_dir, splits, primary), rel=1e-8, abs=1e-6)


def test_a_trial_worse_than_the_mean_still_reports_its_objective(tmp_path, tmp_path_factory):
    """GIVEN a regression model judged on R² whose kept model predicts its validation split worse than the mean does
    (R² < 0: the validation target is mirrored, so every prediction points the wrong way) WHEN a tuning trial trains it
    THEN the objective's regex reads that negative R² from the job's log: a trial whose objective SageMaker cannot read
    is not counted (ObjectiveStatus Failed), so a search whose trials all stay below 0 would end without a best job and a
    better trial would be ranked against nothing."""
    import pandas as pd

    spec = make_spec(REGRESSION, primary_metric="r2")
    splits = dict(reports.shared(REGRESSION, tmp_path_factory).prepared)
    validation = pd.read_parquet(splits["validation"])
    target = validation[spec.target]
    validation[spec.target] = target.max() + target.min() - target
    (tmp_path / "validation").mkdir()
    validation.to_parquet(tmp_path / "validation" / "validation.parquet", index=False)
    splits["validation"] = str(tmp_path / "validation")
    _, regex = _objective(spec.name, spec.to_json())
    out = io.StringIO()
    with redirect_stdout(out):
        model_dir = train_model(spec, splits, tmp_path / "model")
    r2 = _validation_metric(spec, model_dir, splits, "r2")
    assert r2 < 0
    found = re.findall(regex, out.getvalue())
    assert len(found) >= 2, out.getvalue()[-2000:]  # one per round, then the kept model's: SageMaker takes the last
    assert float(found[-1]) == pytest.approx(r2, abs=1e-6)

"""A regression model's loss (``loss: poisson | tweedie | gamma``) in the configuration: refused where it cannot hold,
with the field and the fix; carried to every job; and the whole local loop runs with a count model (GIVEN / WHEN / THEN).

The config is the frozen sample plus tests/support/claims.py's dataset and models of it in dev: no test depends on the
sample model line-up.
"""

from __future__ import annotations

import copy
import io

import pytest
import yaml

from mlops_cli.local import run_loop
from mlops_loop.config import ConfigError, parse_config
from tests.support import claims
from tests.support.configs import SAMPLE_CONFIG
from tests.support.local_run import DAYS, lenient_local_run

MODELS = {
    "claim-count": {"target": "claim_count", "loss": "poisson", "primary_metric": "poisson_deviance"},
    "claim-amount": {"target": "claim_amount", "loss": "tweedie", "tweedie_variance_power": 1.6},
}


def config_with_losses(**models: dict) -> dict:
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["datasets"]["motor_claims"] = {k: v for k, v in copy.deepcopy(claims.DECLARATION).items() if k != "name"}
    for name, extra in (models or MODELS).items():
        raw["models"][name] = {"description": f"{name}: a count or amount model.", "dataset": "motor_claims",
                               "problem_type": "regression", "features": claims.FEATURES, "sensitive_attribute": "age_band",
                               "slices": ["region"], "serving": {"mode": "serverless"}, **extra}
    raw["environments"]["dev"]["models"] = [*raw["environments"]["dev"]["models"], *(models or MODELS)]
    return raw


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_the_job_spec_carries_the_loss_and_only_when_it_is_not_squared_error():
    config = parse_config(config_with_losses(**MODELS, plain={"target": "claim_count"}))
    specs = {name: config.models[name].job_spec() for name in (*MODELS, "plain")}
    assert (specs["claim-count"]["loss"], specs["claim-count"]["primary_metric"]) == ("poisson", "poisson_deviance")
    assert (specs["claim-amount"]["loss"], specs["claim-amount"]["tweedie_variance_power"]) == ("tweedie", 1.6)
    assert "loss" not in specs["plain"] and "tweedie_variance_power" not in specs["plain"]  # reads as it always has


@pytest.mark.parametrize("model, expected", [
    ({"target": "loss_ratio", "loss": "poisson"},
     "field 'loss': poisson needs a target that is never negative, and the dataset declares no min for "
     "'loss_ratio': declare its column's min (min: 0) so the ETL quarantines labels outside it"),
    ({"target": "loss_ratio", "loss": "gamma"},
     "field 'loss': gamma needs a target that is never negative or 0, and the dataset declares no min for "
     "'loss_ratio': declare its column's min (a positive value) so the ETL quarantines labels outside it"),
    ({"target": "claim_amount", "loss": "gamma"},
     "field 'loss': gamma needs a target whose declared min is above 0, and 'claim_amount' declares min: 0; for a "
     "target that can be 0 use loss: tweedie or poisson"),
    ({"target": "claim_amount", "loss": "tweedie", "tweedie_variance_power": 1.0},
     "field 'tweedie_variance_power': 1.0 must be a number strictly between 1 and 2 (1 is loss "
     "poisson, 2 is loss gamma); default 1.5"),
    ({"target": "claim_amount", "loss": "poisson", "tweedie_variance_power": 1.5},
     "field 'tweedie_variance_power': applies to loss tweedie only (this model's loss is "
     "poisson); remove it"),
    ({"target": "claim_count", "primary_metric": "poisson_deviance"},
     "field 'primary_metric': 'poisson_deviance' is the deviance of loss poisson, and this model trains on "
     "squared_error: set loss: poisson or pick one of r2, rmse, mae"),
    ({"target": "claim_count", "loss": "poisson", "framework": "pytorch"},
     "field 'loss': poisson trains XGBoost models only; a network (framework pytorch) trains on squared error only (it predicts the "
     "standardised target, and its stored format, numpy scoring and Inferentia2 compilation have no log link for a "
     "positive mean): set framework: xgboost, or remove loss"),
])
def test_a_loss_that_cannot_hold_is_refused_naming_the_field_and_the_fix(model, expected):
    assert _problems(config_with_losses(bad=model)) == [f"model 'bad': {expected}"]


def test_a_loss_on_a_classifier_is_refused():
    raw = config_with_losses(bad={"target": "has_claim", "problem_type": "binary_classification", "loss": "poisson"})
    assert _problems(raw) == ["model 'bad': field 'loss': poisson applies to regression models only (this one is "
                              "binary_classification, whose loss is its type's); remove it"]


def test_an_unknown_loss_is_refused_with_the_allowed_ones():
    (problem,) = _problems(config_with_losses(bad={"target": "claim_count", "loss": "huber"}))
    assert problem.startswith("model 'bad': field 'loss': ") and all(
        name in problem for name in ("'squared_error'", "'poisson'", "'tweedie'", "'gamma'"))


def test_the_local_run_takes_a_count_model_through_every_stage(spark, tmp_path):
    # GIVEN generated claims WHEN the local run trains, evaluates, gates and registers a Poisson count model
    out = io.StringIO()
    raw = config_with_losses(**{"claim-count": MODELS["claim-count"]})
    with lenient_local_run(tmp_path, raw=raw) as path:
        (record,) = run_loop.run(["--model", "claim-count", "--rows", "4000", "--days", DAYS, "--num-round", "30",
                                  "--config", path, "--workdir", str(tmp_path / "run")], out=out)
    # THEN it is judged on its Poisson deviance, registered, and its model predicts positive means
    report = record["report"]
    assert (report["problem_type"], report["primary_metric"]) == ("regression", "poisson_deviance")
    assert report["challenger"]["metrics"]["poisson_deviance"] > 0
    assert report["challenger"]["model_info"]["loss"] == "poisson"
    assert record["version"] == 1
    assert record["metrics"]["poisson_deviance"] == report["challenger"]["metrics"]["poisson_deviance"]  # runs.jsonl
    assert "poisson_deviance=" in out.getvalue()

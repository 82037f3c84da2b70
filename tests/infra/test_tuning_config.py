"""Tuning a user can shape: an environment's tuning budget and strategy (``training.tuning``) and a model's ranges
(``tuning_ranges``), checked at load with one message per mistake naming the field and the fix. The sample's first
environment and its first XGBoost model stand for any (no line-up pinned)."""

from __future__ import annotations

import copy

import pytest
import yaml
from mlops_loop.config import ConfigError, parse_config
from tests.support.configs import SAMPLE_CONFIG

SAMPLE = yaml.safe_load(SAMPLE_CONFIG.read_text())


def _tuned(tuning: dict | None = None, ranges: dict | None = None, **model: object) -> tuple[dict, str, str]:
    """GIVEN the sample config whose first environment tunes (with ``tuning``) its first XGBoost model (with
    ``tuning_ranges: ranges`` and the other ``model`` keys)."""
    raw = copy.deepcopy(SAMPLE)
    environment = next(iter(raw["environments"]))
    name = next(m for m in raw["environments"][environment]["models"]
                if raw["models"][m].get("framework", "xgboost") == "xgboost")
    training = raw["environments"][environment].setdefault("training", {})
    training["hyperparameter_tuning"] = True
    if tuning is not None:
        training["tuning"] = tuning
    for key in ("eta", "max_depth", "min_child_weight"):  # the search sets these: a sample value would be refused
        (raw["models"][name].get("hyperparameters") or {}).pop(key, None)
    if ranges is not None:
        raw["models"][name]["tuning_ranges"] = ranges
    raw["models"][name].update(model)
    return raw, environment, name


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_a_budget_strategy_and_narrowed_range_load():
    raw, environment, model = _tuned({"max_jobs": 50, "max_parallel_jobs": 5, "strategy": "Random"},
                                     {"max_depth": [3, 6], "eta": [0.05, 0.2]})
    config = parse_config(raw)
    tuning = config.environments[environment].training.tuning
    assert (tuning.max_jobs, tuning.max_parallel_jobs, tuning.strategy, tuning.early_stopping) == (50, 5, "Random", False)
    assert config.models[model].tuning_ranges_searched() == (
        ("eta", "continuous", 0.05, 0.2, "Logarithmic"), ("max_depth", "integer", 3, 6, "Auto"),
        ("min_child_weight", "continuous", 1.0, 10.0, "Auto"))


def test_without_the_new_fields_the_search_is_the_one_before():
    """Backwards compatible: a config that only sets hyperparameter_tuning keeps 12 jobs, 3 at once, Bayesian."""
    raw, environment, model = _tuned()
    config = parse_config(raw)
    tuning = config.environments[environment].training.tuning
    assert (tuning.max_jobs, tuning.max_parallel_jobs, tuning.strategy, tuning.early_stopping) == (12, 3, "Bayesian", False)
    assert config.models[model].tuning_ranges_searched() == (
        ("eta", "continuous", 0.01, 0.3, "Logarithmic"), ("max_depth", "integer", 3, 10, "Auto"),
        ("min_child_weight", "continuous", 1.0, 10.0, "Auto"))


@pytest.mark.parametrize("ranges, field, message", [
    ({"gamma": [0, 5]}, "gamma",
     "not a hyperparameter the tuning job searches; tunable: eta, max_depth, min_child_weight"),
    ({"max_depth": [6, 3]}, "max_depth", "the lowest value must be below the highest, got [6, 3]"),
    ({"max_depth": [4, 4]}, "max_depth", "the lowest value must be below the highest, got [4, 4]"),
    ({"eta": [0, 0.5]}, "eta", "each bound must be a value eta takes: expected a number in (0, 1], got 0"),
    ({"max_depth": [0, 6]}, "max_depth", "each bound must be a value max_depth takes: expected a whole number >= 1, got 0"),
    ({"max_depth": [3.5, 6]}, "max_depth", "max_depth is an integer hyperparameter, searched over whole numbers "
                                           "(IntegerParameterRanges): give whole-number bounds, got [3.5, 6]"),
    ({"eta": 0.1}, "eta", "expected [lowest, highest], two numbers, got 0.1"),
])
def test_a_range_the_tuning_job_cannot_search_is_one_line(ranges, field, message):
    raw, _, model = _tuned(ranges=ranges)
    assert _problems(raw) == [f"model {model!r}: field 'tuning_ranges.{field}': {message}"]


def test_a_range_for_a_hyperparameter_the_model_fixes_is_refused():
    raw, environment, model = _tuned(ranges={"max_depth": [3, 6]}, hyperparameters={"max_depth": 4})
    raw["environments"][environment]["training"]["hyperparameter_tuning"] = False
    assert _problems(raw) == [f"model {model!r}: field 'tuning_ranges.max_depth': hyperparameters.max_depth fixes "
                              "max_depth at 4 for this model, and a tuning job searches it instead; remove one of the two"]


def test_ranges_of_a_model_no_environment_tunes_are_refused_naming_the_model_the_field_and_the_fix():
    """GIVEN a model's tuning_ranges and no environment that trains it with training.hyperparameter_tuning on WHEN the
    config loads THEN it is refused: the ranges would never be searched, while whoever wrote them believes the search is
    shaped. One environment that tunes it is enough (dev may train it untuned while prod tunes it)."""
    raw, environment, model = _tuned(ranges={"max_depth": [3, 6]})
    for env in raw["environments"].values():
        env.setdefault("training", {})["hyperparameter_tuning"] = False
    raw.get("defaults", {}).get("training", {}).pop("hyperparameter_tuning", None)
    training = sorted(name for name, env in raw["environments"].items() if model in env["models"])
    assert _problems(raw) == [
        f"model {model!r}: field 'tuning_ranges': no environment that trains {model!r} ({', '.join(training)}) has "
        "training.hyperparameter_tuning on, so no tuning job searches these ranges; set "
        "training.hyperparameter_tuning: true in the environment that should tune it, or remove tuning_ranges"]
    raw["environments"][environment]["training"]["hyperparameter_tuning"] = True
    assert parse_config(raw).models[model].tuning_ranges == {"max_depth": [3, 6]}


def test_a_network_has_no_tuning_ranges():
    raw, environment, model = _tuned(ranges={"learning_rate": [0.001, 0.01]}, framework="pytorch")
    raw["environments"][environment]["training"]["hyperparameter_tuning"] = False
    assert _problems(raw) == [f"model {model!r}: field 'tuning_ranges': a model of framework 'pytorch' is not tuned (the "
                              "tuning job searches XGBoost's hyperparameters); remove tuning_ranges"]


HYPERBAND = ("Hyperband stops every trial that reaches its MaxResource, and a trial that boosts all its rounds would be "
             "stopped at its last one, before it prints the kept model's objective and writes its model: the best trial "
             "could leave no model to evaluate; set early_stopping: true with Bayesian or Random instead")


@pytest.mark.parametrize("tuning, field, message", [
    ({"strategy": "Hyperband"}, "strategy", f"{HYPERBAND}; allowed: Bayesian, Random"),
    ({"strategy": "Hyperband", "early_stopping": True}, "strategy", f"{HYPERBAND}; allowed: Bayesian, Random"),
    ({"strategy": "Grid"}, "strategy", "Grid searches categorical values only, and every range here is integer or "
                                       "continuous; allowed: Bayesian, Random"),
    ({"strategy": "bayesian"}, "strategy", "unknown strategy 'bayesian'; allowed: Bayesian, Random"),
    ({"max_jobs": 20, "max_parallel_jobs": 30}, "max_parallel_jobs",
     "30 at a time is more than max_jobs (20 in all); set it to at most 20"),
])
def test_a_budget_or_strategy_sagemaker_would_refuse_or_ignore_is_one_line(tuning, field, message):
    raw, environment, _ = _tuned(tuning)
    assert _problems(raw) == [f"environment {environment!r}: field 'training.tuning.{field}': {message}"]


@pytest.mark.parametrize("tuning, field", [({"max_jobs": 0}, "max_jobs"), ({"max_jobs": 751}, "max_jobs"),
                                           ({"max_parallel_jobs": 101, "max_jobs": 200}, "max_parallel_jobs")])
def test_a_budget_outside_the_api_limits_is_refused(tuning, field):
    raw, environment, _ = _tuned(tuning)
    (problem,) = _problems(raw)
    assert problem.startswith(f"environment {environment!r}: field 'training.tuning.{field}': ")


@pytest.mark.parametrize("max_jobs", [1, 2])
def test_a_budget_below_the_default_parallelism_runs_that_many_at_once(max_jobs):
    """GIVEN a cheap environment that sets only ``max_jobs`` below the default parallelism (3) THEN it loads, running
    at most ``max_jobs`` at once (the default is capped, not refused as if the user had set it)."""
    raw, environment, _ = _tuned({"max_jobs": max_jobs})
    tuning = parse_config(raw).environments[environment].training.tuning
    assert (tuning.max_jobs, tuning.max_parallel_jobs) == (max_jobs, max_jobs)


@pytest.mark.parametrize("strategy", ["Bayesian", "Random"])
def test_early_stopping_is_accepted_with_either_search(strategy):
    """Each trial prints the objective after every round (pipeline_code/training/train.py), which SageMaker's Auto early
    stopping compares across trials."""
    raw, environment, _ = _tuned({"strategy": strategy, "early_stopping": True})
    tuning = parse_config(raw).environments[environment].training.tuning
    assert (tuning.strategy, tuning.early_stopping) == (strategy, True)

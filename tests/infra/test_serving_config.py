"""Serving config validation: every invalid serving knob fails synth with one line naming where, the field and the fix.

Fast tests: the sample YAML is modified in memory and validated with ``parse_config`` (no synth).
"""

from __future__ import annotations

import copy
from typing import Callable

import pytest
import yaml

from mlops_loop.config import ConfigError, parse_config
from mlops_loop.config.serving import FLEET_START_SECONDS, MAX_ROLLOUT_SECONDS, Rollout

from tests.support.configs import SAMPLE_CONFIG

SAMPLE = yaml.safe_load(SAMPLE_CONFIG.read_text())

INF2_SERVING = (
    "ml.inf2.xlarge is an Inferentia2 instance, which serving with framework 'xgboost' cannot use "
    "(Inferentia2 runs only Neuron-compiled models from a Neuron image; the XGBoost image has no Neuron support); "
    "allowed accelerators for serving: none — pick e.g. ml.m5.large or ml.c5.xlarge"
)
TRN1_TRAINING = (
    "ml.trn1.2xlarge is a Trainium instance, which training with framework 'xgboost' cannot use "
    "(Trainium runs only Neuron SDK training code; the XGBoost image has no Neuron support); "
    "allowed accelerators for training: none, gpu — pick e.g. ml.m5.xlarge or ml.g5.xlarge"
)


def _raw() -> dict:
    return copy.deepcopy(SAMPLE)


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def _serving(raw: dict, model: str) -> dict:
    return raw["models"][model]["serving"]


def _set(path: str, value) -> Callable[[dict], None]:
    """A change to the raw config: ``path`` is dotted, e.g. ``models.churn.serving.mode``."""

    def change(raw: dict) -> None:
        *parents, leaf = path.split(".")
        node = raw
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    return change


def _only_churn_in_staging_but_override_credit_risk(raw: dict) -> None:
    raw["environments"]["staging"]["models"] = ["churn"]
    raw["environments"]["staging"]["serving"] = {"credit-risk": {"mode": "serverless"}}


# (change, the exact start of each expected problem line)
INVALID_KNOBS = {
    "unknown mode": (
        _set("models.churn.serving.mode", "streaming"),
        ["model 'churn': field 'serving.mode': Input should be 'realtime', 'serverless', 'async', 'batch' or 'multi_model' (got 'streaming')"],
    ),
    "unknown mode in an environment override": (
        _set("environments.dev.serving.churn.mode", "streaming"),
        ["environment 'dev': field 'serving.churn.mode': Input should be 'realtime', 'serverless', 'async', 'batch' or 'multi_model' (got 'streaming')"],
    ),
    "realtime instance_count above the autoscaling range": (
        _set("models.churn.serving.realtime.instance_count", 5),
        ["model 'churn': field 'serving.realtime.instance_count': 5 is outside autoscaling 1-4; allowed: "
         "autoscaling.min_instances <= instance_count <= autoscaling.max_instances"],
    ),
    "realtime instance_count outside the range an environment overrides": (
        _set("environments.prod.serving.churn.realtime.instance_count", 9),
        ["environment 'prod': field 'serving.churn.realtime.instance_count': 9 is outside autoscaling 2-6"],
    ),
    "autoscaling max below min": (
        _set("models.churn.serving.realtime.autoscaling", {"min_instances": 3, "max_instances": 2}),
        ["model 'churn': field 'serving.realtime.autoscaling.max_instances': 2 is below min_instances 3; "
         "allowed: min_instances <= max_instances"],
    ),
    "unknown realtime instance type": (
        _set("models.churn.serving.realtime.instance_type", "ml.m99.huge"),
        ["model 'churn': field 'serving.realtime.instance_type': unknown instance type 'ml.m99.huge'; allowed: ml.c5.2xlarge, "],
    ),
    "serverless memory not a whole GB": (
        _set("models.credit-risk.serving.serverless.memory_mb", 1500),
        ["model 'credit-risk': field 'serving.serverless.memory_mb': Input should be 1024, 2048, 3072, 4096, 5120 or 6144 (got 1500)"],
    ),
    "serverless max_concurrency 0": (
        _set("models.credit-risk.serving.serverless.max_concurrency", 0),
        ["model 'credit-risk': field 'serving.serverless.max_concurrency': Input should be greater than or equal to 1 (got 0)"],
    ),
    "serverless max_concurrency 201": (
        _set("models.credit-risk.serving.serverless.max_concurrency", 201),
        ["model 'credit-risk': field 'serving.serverless.max_concurrency': Input should be less than or equal to 200 (got 201)"],
    ),
    "provisioned concurrency above max concurrency": (
        _set("models.credit-risk.serving.serverless.provisioned_concurrency", 11),
        ["model 'credit-risk': field 'serving.serverless.provisioned_concurrency': 11 exceeds max_concurrency 10; allowed: 1-10"],
    ),
    "provisioned concurrency above max concurrency in an environment override": (
        _set("environments.prod.serving.credit-risk.serverless.provisioned_concurrency", 50),
        ["environment 'prod': field 'serving.credit-risk.serverless.provisioned_concurrency': 50 exceeds max_concurrency 10; "
         "allowed: 1-10"],
    ),
    "serverless canary rollout": (
        _set("models.credit-risk.serving.serverless.rollout", {"strategy": "canary"}),
        ["model 'credit-risk': field 'serving.serverless.rollout.strategy': 'canary' shifts traffic in instance steps, which "
         "a serverless endpoint does not have; allowed: 'all_at_once'"],
    ),
    "async max_instances 0": (
        _set("models.churn.serving.async", {"max_instances": 0}),
        ["model 'churn': field 'serving.async.max_instances': Input should be greater than or equal to 1 (got 0)"],
    ),
    "batch schedule not a cron expression": (
        _set("models.credit-risk.serving.batch", {"schedule": "daily"}),
        ["model 'credit-risk': field 'serving.batch.schedule': 'daily' is not a cron expression; use cron(Minutes Hours "
         "Day-of-month Month Day-of-week Year), e.g. 'cron(0 2 * * ? *)'"],
    ),
    "batch cron with both day fields set": (
        _set("models.credit-risk.serving.batch", {"schedule": "cron(0 1 * * * *)"}),
        ["model 'credit-risk': field 'serving.batch.schedule': 'cron(0 1 * * * *)': exactly one of day-of-month and "
         "day-of-week must be '?'"],
    ),
    "data capture above 100 percent": (
        _set("models.churn.serving.data_capture_percent", 101),
        ["model 'churn': field 'serving.data_capture_percent': Input should be less than or equal to 100 (got 101)"],
    ),
    "canary of 60 percent": (
        _set("models.churn.serving.realtime.rollout.canary_percent", 60),
        ["model 'churn': field 'serving.realtime.rollout.canary_percent': Input should be less than or equal to 50 (got 60)"],
    ),
    "linear step below 5 percent": (
        _set("models.churn.serving.realtime.rollout", {"strategy": "linear", "linear_step_percent": 9}),
        ["model 'churn': field 'serving.realtime.rollout.linear_step_percent': Input should be greater than or equal to 10 (got 9)"],
    ),
    "linear rollout waiting longer than a rollout may take": (
        _set("models.churn.serving.realtime.rollout", {"strategy": "linear", "linear_step_percent": 20, "wait_minutes": 60}),
        ["model 'churn': field 'serving.realtime.rollout.wait_minutes': a linear rollout waits 305 min (5 x wait_minutes 60 "
         "+ termination_wait_minutes 5), over the 210 min it may take (240 min in all, 30 of them to start the new fleet); "
         "lower wait_minutes or termination_wait_minutes, or raise linear_step_percent"],
    ),
    "rollout waiting longer than a rollout may take in an environment override": (
        _set("environments.prod.serving.churn.realtime.rollout", {"strategy": "linear", "linear_step_percent": 25,
                                                                  "wait_minutes": 60, "termination_wait_minutes": 0}),
        ["environment 'prod': field 'serving.churn.realtime.rollout.wait_minutes': a linear rollout waits 240 min (4 x "
         "wait_minutes 60 + termination_wait_minutes 0), over the 210 min it may take"],
    ),
    "misspelt serving knob": (
        _set("models.churn.serving.realtime.instances", 3),
        ["model 'churn': field 'serving.realtime.instances': unknown field; check the spelling"],
    ),
    "environment overrides a model it does not deploy": (
        _only_churn_in_staging_but_override_credit_risk,
        ["environment 'staging': field 'serving.credit-risk': overrides a model this environment does not deploy; allowed: churn"],
    ),
    "environment serving block is not a mapping": (
        _set("environments.staging.serving", ["churn"]),
        ["environment 'staging': field 'serving': must map model names to serving overrides"],
    ),
    "Inferentia2 serving for an XGBoost model (environment override)": (
        _set("environments.prod.serving.churn.realtime.instance_type", "ml.inf2.xlarge"),
        [f"environment 'prod': field 'serving.churn.realtime.instance_type': {INF2_SERVING}"],
    ),
    "Inferentia2 async serving for an XGBoost model": (
        _set("environments.staging.serving", {"churn": {"mode": "async", "async": {"instance_type": "ml.inf2.xlarge"}}}),
        [f"environment 'staging': field 'serving.churn.async.instance_type': {INF2_SERVING}"],
    ),
    "Inferentia2 batch transform for an XGBoost model": (
        _set("environments.staging.serving", {"credit-risk": {"mode": "batch", "batch": {"instance_type": "ml.inf2.xlarge"}}}),
        [f"environment 'staging': field 'serving.credit-risk.batch.instance_type': {INF2_SERVING}"],
    ),
    "a model on a multi-model endpoint the environment does not declare": (
        _set("environments.staging.serving", {"churn": {"mode": "multi_model", "multi_model": {"endpoint": "pool"}}}),
        ["environment 'staging': field 'serving.churn.multi_model.endpoint': 'pool' is not a multi-model endpoint of this "
         "environment; allowed: (none) — declare it under 'multi_model_endpoints' in the environment or in 'defaults'"],
    ),
    "a multi-model endpoint on Inferentia2": (
        _set("environments.staging.multi_model_endpoints", {"shared": {"instance_type": "ml.inf2.xlarge"}}),
        ["environment 'staging': field 'multi_model_endpoints.shared.instance_type': ml.inf2.xlarge is an Inferentia2 "
         "instance; multi-model endpoints with the stock framework images run on CPU instances only"],
    ),
    "a multi-model endpoint on a GPU": (
        _set("environments.staging.multi_model_endpoints", {"shared": {"instance_type": "ml.g5.xlarge"}}),
        ["environment 'staging': field 'multi_model_endpoints.shared.instance_type': ml.g5.xlarge is a GPU instance; "
         "multi-model endpoints with the stock framework images run on CPU instances only (GPU models need a Triton image"],
    ),
    "a multi-model endpoint name that cannot be part of resource names": (
        _set("environments.staging.multi_model_endpoints", {"Pool_1": {}}),
        ["environment 'staging': field 'multi_model_endpoints': 'Pool_1' is not a valid multi-model endpoint name; "
         "allowed: 1-30 characters"],
    ),
    "a model naming an invalid multi-model endpoint": (
        _set("models.churn.serving.multi_model", {"endpoint": "a" * 31}),
        ["model 'churn': field 'serving.multi_model.endpoint': " + repr("a" * 31) + " is not a valid multi-model endpoint name"],
    ),
    "a multi-model endpoint's instance_count outside its autoscaling range": (
        _set("environments.staging.multi_model_endpoints", {"shared": {"instance_count": 7}}),
        ["environment 'staging': field 'multi_model_endpoints.shared.instance_count': 7 is outside autoscaling 1-4"],
    ),
    "a multi-model endpoint's model-loading alarm at 0 ms": (
        _set("environments.staging.multi_model_endpoints", {"shared": {"max_model_loading_wait_p99_ms": 0}}),
        ["environment 'staging': field 'multi_model_endpoints.shared.max_model_loading_wait_p99_ms': Input should be "
         "greater than or equal to 1"],
    ),
    "native Model Monitor on a multi-model endpoint": (
        _set("environments.staging.serving", {"churn": {"mode": "multi_model", "native_model_monitor": True}}),
        ["environment 'staging': field 'serving.churn.native_model_monitor': needs SageMaker data capture, i.e. mode "
         "'realtime' or 'async'"],
    ),
    "Trainium training for XGBoost models": (
        _set("environments.staging.training", {"instance_type": "ml.trn1.2xlarge"}),
        [f"environment 'staging': model 'churn': field 'training.instance_type': {TRN1_TRAINING}",
         f"environment 'staging': model 'credit-risk': field 'training.instance_type': {TRN1_TRAINING}"],
    ),
}


@pytest.mark.parametrize(("change", "expected"), list(INVALID_KNOBS.values()), ids=list(INVALID_KNOBS))
def test_each_invalid_serving_knob_fails_with_one_line_naming_where_field_and_fix(change, expected):
    """GIVEN the sample config with one invalid serving knob WHEN it is validated
    THEN validation fails with exactly the expected problem line(s), each one line."""
    raw = _raw()
    change(raw)
    problems = problems_of(raw)
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected):
        assert "\n" not in problem
        assert problem.startswith(start), problem


def test_alarms_of_a_model_on_a_multi_model_endpoint_are_refused_naming_the_endpoints():
    """The endpoint's alarms watch a multi-model endpoint; a member's own would silently not exist."""
    raw = _raw()
    raw["environments"]["staging"].setdefault("serving", {})["credit-risk"] = {
        "mode": "multi_model", "multi_model": {"endpoint": "shared"}, "alarms": {"min_invocations_per_hour": 10}}
    raw["environments"]["staging"]["multi_model_endpoints"] = {"shared": {}}
    assert problems_of(raw) == [
        "environment 'staging': field 'serving.credit-risk.alarms': a model on a multi-model endpoint is alarmed by its "
        "endpoint, so these would not apply; set them under multi_model_endpoints.shared.alarms (or remove them here)"]


def test_a_models_own_alarms_do_not_stop_an_environment_putting_it_on_a_multi_model_endpoint():
    """The model's alarms watch its own endpoint where it has one; an environment sharing an endpoint is no mistake."""
    raw = _raw()
    _serving(raw, "credit-risk")["alarms"] = {"min_invocations_per_hour": 10}
    raw["environments"]["staging"].setdefault("serving", {})["credit-risk"] = {
        "mode": "multi_model", "multi_model": {"endpoint": "shared"}}
    raw["environments"]["staging"]["multi_model_endpoints"] = {"shared": {}}
    config = parse_config(raw)
    assert config.serving_of(config.environments["staging"], config.models["credit-risk"]).mode == "multi_model"
    assert config.models["credit-risk"].serving.alarms.min_invocations_per_hour == 10


def test_a_batch_model_takes_no_capture_sample():
    """A transform job writes no capture (its monitor reads every input beside its output): a sample percentage would
    promise a sampling that does not happen."""
    raw = _raw()
    _serving(raw, "credit-risk").update({"mode": "batch", "data_capture_percent": 50})
    assert problems_of(raw) == [
        "model 'credit-risk': field 'serving.data_capture_percent': a batch model writes no capture (its drift monitor "
        "reads every transform input beside its output), so 50 would sample nothing; set 100 (the default) or 0"]


def test_a_model_that_expects_daily_requests_but_captures_none_is_refused_and_capturing_none_is_warned_about():
    """GIVEN an environment that turns a model's capture off WHEN the model declares min_daily_requests THEN synth
    refuses (its monitor would count nothing and page every day), naming the environment's field; without
    min_daily_requests the config loads with a warning that the monitor will see nothing."""
    raw = _raw()
    raw["environments"]["prod"].setdefault("serving", {})["churn"] = {"data_capture_percent": 0}
    config = parse_config(raw)
    assert ("environment 'prod': field 'serving.churn.data_capture_percent': 0 captures no request, so the model's drift "
            "monitor will report every window quiet and never see drift; capture a sample (e.g. 10) to monitor it"
            ) in config.warnings()
    raw["models"]["churn"]["min_daily_requests"] = 500
    batch = copy.deepcopy(raw)  # a batch model's monitor reads the transform's input and output files instead
    batch["environments"]["prod"]["serving"]["churn"] = {"mode": "batch", "data_capture_percent": 0}
    assert not [w for w in parse_config(batch).warnings() if "data_capture_percent" in w]
    assert problems_of(raw) == [
        "environment 'prod': field 'serving.churn.data_capture_percent': 0 captures no request, but model 'churn' "
        "declares min_daily_requests 500, so its monitor would count none and page people every day; capture a "
        "sample (e.g. 10) or remove min_daily_requests"]


def test_unknown_instance_type_lists_every_known_type():
    raw = _raw()
    _serving(raw, "churn")["realtime"]["instance_type"] = "ml.m99.huge"
    (problem,) = problems_of(raw)
    for known in ("ml.m5.large", "ml.m5d.xlarge", "ml.g5.xlarge", "ml.inf2.xlarge"):
        assert known in problem


def test_a_model_level_error_is_reported_once_not_per_environment():
    """GIVEN churn's own serving block is invalid and three environments deploy churn (prod with an
    override merged over it) WHEN validated THEN the problem is reported once, against the model."""
    raw = _raw()
    del raw["environments"]["dev"]["serving"]
    _serving(raw, "churn")["realtime"]["instance_type"] = "ml.nope"
    assert sum(env["models"].count("churn") for env in raw["environments"].values()) == 3
    problems = problems_of(raw)
    assert len(problems) == 1, problems
    assert problems[0].startswith("model 'churn': field 'serving.realtime.instance_type': unknown instance type 'ml.nope'")


def test_an_incompatible_accelerator_in_the_models_own_block_is_reported_once():
    raw = _raw()
    del raw["environments"]["dev"]["serving"]
    del raw["environments"]["prod"]["serving"]
    _serving(raw, "churn")["realtime"]["instance_type"] = "ml.inf2.xlarge"
    problems = problems_of(raw)
    assert len(problems) == 1, problems
    assert "model 'churn'" in problems[0] and "field 'serving.realtime.instance_type'" in problems[0]
    assert INF2_SERVING in problems[0]


def test_environment_overrides_are_deep_merged_over_the_models_serving_block():
    """GIVEN prod overrides only churn's instance type, count and autoscaling bounds WHEN validated
    THEN the model block's other knobs (target, rollout) survive the merge."""
    config = parse_config(_raw())
    prod, staging = config.environments["prod"], config.environments["staging"]
    churn, credit = config.models["churn"], config.models["credit-risk"]
    merged = config.serving_of(prod, churn).realtime
    assert (merged.instance_type, merged.instance_count) == ("ml.m5.xlarge", 2)
    assert (merged.autoscaling.min_instances, merged.autoscaling.max_instances) == (2, 6)
    assert merged.autoscaling.target_invocations_per_instance == churn.serving.realtime.autoscaling.target_invocations_per_instance
    assert merged.rollout == churn.serving.realtime.rollout
    assert config.serving_of(prod, credit).serverless.provisioned_concurrency == 2
    assert config.serving_of(prod, credit).serverless.max_concurrency == credit.serving.serverless.max_concurrency
    # No override: the model's own block, unchanged.
    assert config.serving_of(staging, churn) == churn.serving
    assert config.serving_of(config.environments["dev"], churn).mode == "serverless"


def test_every_mode_is_accepted_with_its_knobs():
    raw = _raw()
    raw["environments"]["staging"]["serving"] = {
        "churn": {"mode": "async", "async": {"max_instances": 3, "max_concurrent_invocations_per_instance": 8}},
        "credit-risk": {"mode": "batch", "batch": {"schedule": "cron(30 2 * * ? *)", "content_type": "text/csv"}},
    }
    config = parse_config(raw)
    staging = config.environments["staging"]
    churn = config.serving_of(staging, config.models["churn"])
    credit = config.serving_of(staging, config.models["credit-risk"])
    assert (churn.mode, churn.async_.max_instances, churn.async_.max_concurrent_invocations_per_instance) == ("async", 3, 8)
    assert churn.instance_types == (churn.async_.instance_type,)
    assert (credit.mode, credit.batch.schedule, credit.batch.content_type) == ("batch", "cron(30 2 * * ? *)", "text/csv")
    assert config.serving_of(config.environments["dev"], config.models["credit-risk"]).instance_types == ()


def test_multi_model_endpoints_in_defaults_are_merged_under_each_environment():
    """GIVEN an endpoint declared in ``defaults`` and resized in prod WHEN two models join it in prod and
    one in staging THEN each environment builds exactly the endpoints its models name, with its own size."""
    raw = _raw()
    raw["defaults"]["multi_model_endpoints"] = {"shared": {"instance_type": "ml.c5.xlarge", "model_cache": False}}
    raw["environments"]["prod"]["multi_model_endpoints"] = {"shared": {"autoscaling": {"min_instances": 2, "max_instances": 6}}}
    raw["environments"]["prod"]["serving"] = {"churn": {"mode": "multi_model"}, "credit-risk": {"mode": "multi_model"}}
    raw["environments"]["staging"]["serving"] = {"credit-risk": {"mode": "multi_model"}}
    config = parse_config(raw)
    prod, staging, dev = (config.environments[e] for e in ("prod", "staging", "dev"))
    assert {k: [m.name for m in v] for k, v in config.multi_model_members(prod).items()} == {"shared": ["churn", "credit-risk"]}
    assert {k: [m.name for m in v] for k, v in config.multi_model_members(staging).items()} == {"shared": ["credit-risk"]}
    assert config.multi_model_members(dev) == {}
    shared = prod.multi_model_endpoints["shared"]
    assert (shared.instance_type, shared.model_cache, shared.instance_count, shared.autoscaling.max_instances) == (
        "ml.c5.xlarge", False, 2, 6)
    assert staging.multi_model_endpoints["shared"].instance_count == 1
    assert config.serving_of(prod, config.models["churn"]).instance_types == ()


def test_one_multi_model_endpoint_runs_one_image():
    """Members needing different container images cannot share an endpoint (every framework today is served by the
    XGBoost image, so a framework with another image is forced past validation); a network shares with trees."""
    from mlops_loop.config.cross_checks import multi_model_problems

    raw = _raw()
    raw["environments"]["staging"]["multi_model_endpoints"] = {"shared": {}}
    raw["environments"]["staging"]["serving"] = {"churn": {"mode": "multi_model"}, "credit-risk": {"mode": "multi_model"}}
    config = parse_config(raw)
    models = dict(config.models)
    assert multi_model_problems(models, config.environments) == []
    models["credit-risk"] = models["credit-risk"].model_copy(update={"framework": "pytorch"})
    assert multi_model_problems(models, config.environments) == []
    models["credit-risk"] = models["credit-risk"].model_copy(update={"framework": "sklearn"})
    (problem,) = multi_model_problems(models, config.environments)
    assert problem == (
        "environment 'staging': field 'multi_model_endpoints.shared': its models need different images (churn: xgboost, "
        "credit-risk: sklearn); one endpoint runs one container image — give each framework its own endpoint"
    )


def test_realtime_instance_count_defaults_to_the_autoscaling_minimum():
    raw = _raw()
    del raw["environments"]["prod"]["serving"]["churn"]["realtime"]["instance_count"]
    config = parse_config(raw)
    assert config.serving_of(config.environments["prod"], config.models["churn"]).realtime.instance_count == 2


@pytest.mark.parametrize("strategy", [{"strategy": "linear", "linear_step_percent": 34}, {"strategy": "canary"},
                                      {"strategy": "all_at_once"}], ids=lambda s: s["strategy"])
def test_a_rollout_waits_what_it_is_given_and_may_wait_up_to_its_bound(strategy):
    """GIVEN rollouts whose waits fill (linear: 3 x 60 + 30 min) or stay under the 210 minutes they may take THEN each
    is accepted, and SageMaker gets every wait plus the fleet's start as its timeout: the bound, when filled."""
    rollout = Rollout(**strategy, wait_minutes=60, termination_wait_minutes=30)
    waits = (rollout.steps * 60 + 30) * 60
    assert rollout.timeout_seconds == waits + FLEET_START_SECONDS <= MAX_ROLLOUT_SECONDS
    assert (rollout.timeout_seconds == MAX_ROLLOUT_SECONDS) == (strategy["strategy"] == "linear")


def test_a_serverless_rollout_block_without_strategy_keeps_all_at_once():
    raw = _raw()
    _serving(raw, "credit-risk")["serverless"]["rollout"] = {"wait_minutes": 5}
    config = parse_config(raw)
    rollout = config.models["credit-risk"].serving.serverless.rollout
    assert (rollout.strategy, rollout.wait_minutes) == ("all_at_once", 5)


CROSS_FIELD = {
    "instance_count": (
        _set("models.churn.serving.realtime.instance_count", 5),
        "model 'churn': field 'serving.realtime.instance_count': 5 is outside autoscaling 1-4",
    ),
    "max_instances": (
        _set("models.churn.serving.realtime.autoscaling", {"min_instances": 3, "max_instances": 2}),
        "model 'churn': field 'serving.realtime.autoscaling.max_instances': 2 is below min_instances 3",
    ),
    "provisioned_concurrency": (
        _set("models.credit-risk.serving.serverless.provisioned_concurrency", 11),
        "model 'credit-risk': field 'serving.serverless.provisioned_concurrency': 11 exceeds max_concurrency 10",
    ),
}


@pytest.mark.parametrize(("change", "expected"), list(CROSS_FIELD.values()), ids=list(CROSS_FIELD))
def test_cross_field_errors_name_the_full_path_of_the_field(change, expected):
    raw = _raw()
    change(raw)
    (problem,) = problems_of(raw)
    assert problem.startswith(expected), problem


# --- Scoring by id (serving.by_id) -------------------------------------------------------------------------

BY_ID_NEEDS_AN_ONLINE_ENDPOINT = (
    "field 'serving.{where}by_id.enabled': scoring by id answers callers synchronously, so it needs mode 'realtime' or "
    "'serverless' (got {mode!r}); allowed: false here"
)
BY_ID_NEEDS_THE_ONLINE_STORE = (
    "environment {env!r}: field 'serving.{model}.by_id.enabled': scoring by id reads the online Feature Store, which "
    "feature_store.online_store turns off here; turn it on or set by_id.enabled: false"
)


def test_scoring_by_id_is_off_by_default_rejects_misses_has_no_max_age_and_takes_100_ids_10_at_a_time():
    """GIVEN the sample config, which says nothing about by_id WHEN validated THEN every model in every
    environment has the defaults."""
    from mlops_loop.config.serving import ById

    config = parse_config(_raw())
    assert ById() == ById(enabled=False, missing="reject", max_age_hours=None, max_ids=100, max_concurrency=10)
    for env in config.environments.values():
        for model in config.models_of(env):
            by_id = config.serving_of(env, model).by_id
            assert (by_id.enabled, by_id.missing, by_id.max_age_hours, by_id.max_ids, by_id.max_concurrency) == (
                False, "reject", None, 100, 10), (env.name, model.name)


def _all(*changes: Callable[[dict], None]) -> Callable[[dict], None]:
    """Several changes to the raw config, in order."""

    def change(raw: dict) -> None:
        for one in changes:
            one(raw)

    return change


# (change, the exact problem lines)
INVALID_BY_ID = {
    "max_ids 0": (
        _set("models.churn.serving.by_id", {"max_ids": 0}),
        ["model 'churn': field 'serving.by_id.max_ids': Input should be greater than or equal to 1 (got 0)"],
    ),
    "max_ids 101 (BatchGetRecord's limit is 100)": (
        _set("models.churn.serving.by_id", {"max_ids": 101}),
        ["model 'churn': field 'serving.by_id.max_ids': Input should be less than or equal to 100 (got 101)"],
    ),
    "max_age_hours 0": (
        _set("models.churn.serving.by_id", {"max_age_hours": 0}),
        ["model 'churn': field 'serving.by_id.max_age_hours': Input should be greater than or equal to 1 (got 0)"],
    ),
    "max_age_hours above a year": (
        _set("models.churn.serving.by_id", {"max_age_hours": 8761}),
        ["model 'churn': field 'serving.by_id.max_age_hours': Input should be less than or equal to 8760 (got 8761)"],
    ),
    "max_concurrency 0": (
        _set("models.churn.serving.by_id", {"max_concurrency": 0}),
        ["model 'churn': field 'serving.by_id.max_concurrency': Input should be greater than or equal to 1 (got 0)"],
    ),
    "max_concurrency above what Lambda lets an account reserve": (
        _set("models.churn.serving.by_id", {"max_concurrency": 901}),
        ["model 'churn': field 'serving.by_id.max_concurrency': Input should be less than or equal to 900 (got 901)"],
    ),
    "unknown missing policy": (
        _set("models.churn.serving.by_id", {"missing": "impute"}),
        ["model 'churn': field 'serving.by_id.missing': Input should be 'reject', 'missing' or 'compute' (got 'impute')"],
    ),
    "unknown missing policy in an environment override": (
        _set("environments.staging.serving", {"credit-risk": {"by_id": {"missing": "zero"}}}),
        ["environment 'staging': field 'serving.credit-risk.by_id.missing': Input should be 'reject', 'missing' or "
         "'compute' (got 'zero')"],
    ),
    "enabled on an async model": (
        _set("models.churn.serving", {"mode": "async", "by_id": {"enabled": True}}),
        ["model 'churn': " + BY_ID_NEEDS_AN_ONLINE_ENDPOINT.format(where="", mode="async")],
    ),
    "enabled on a batch model": (
        _set("models.credit-risk.serving", {"mode": "batch", "by_id": {"enabled": True}}),
        ["model 'credit-risk': " + BY_ID_NEEDS_AN_ONLINE_ENDPOINT.format(where="", mode="batch")],
    ),
    "enabled by an environment that serves the model async": (
        _set("environments.staging.serving", {"churn": {"mode": "async", "by_id": {"enabled": True}}}),
        ["environment 'staging': " + BY_ID_NEEDS_AN_ONLINE_ENDPOINT.format(where="churn.", mode="async")],
    ),
    "enabled on the model, which an environment serves in batch": (
        _all(_set("models.churn.serving.by_id", {"enabled": True}),
             _set("environments.staging.serving", {"churn": {"mode": "batch"}})),
        ["environment 'staging': " + BY_ID_NEEDS_AN_ONLINE_ENDPOINT.format(where="churn.", mode="batch")],
    ),
}


@pytest.mark.parametrize(("change", "expected"), list(INVALID_BY_ID.values()), ids=list(INVALID_BY_ID))
def test_each_invalid_by_id_setting_fails_with_exactly_its_problem_line(change, expected):
    raw = _raw()
    change(raw)
    assert problems_of(raw) == expected


@pytest.mark.parametrize("model", ["churn", "credit-risk"])
def test_by_id_is_accepted_on_realtime_and_serverless_models(model):
    """GIVEN the sample's real-time churn (serverless in dev) or serverless credit-risk with by_id on WHEN validated
    THEN every environment serving it has it on, in mode realtime or serverless."""
    raw = _raw()
    _serving(raw, model)["by_id"] = {"enabled": True, "missing": "compute", "max_age_hours": 48, "max_ids": 20,
                                     "max_concurrency": 50}
    config = parse_config(raw)
    modes = set()
    for env in config.environments.values():
        by_id = config.serving_of(env, config.models[model]).by_id
        assert (by_id.enabled, by_id.missing, by_id.max_age_hours, by_id.max_ids, by_id.max_concurrency) == (
            True, "compute", 48, 20, 50), env.name
        modes.add(config.serving_of(env, config.models[model]).mode)
    assert modes <= {"realtime", "serverless"} and modes


def test_by_id_can_be_turned_on_in_one_environment_only():
    raw = _raw()
    raw["environments"]["prod"]["serving"]["credit-risk"]["by_id"] = {"enabled": True, "max_concurrency": 200}
    config = parse_config(raw)
    credit = config.models["credit-risk"]
    assert {name: config.serving_of(env, credit).by_id.enabled for name, env in config.environments.items()} == {
        "dev": False, "staging": False, "prod": True}
    prod = config.serving_of(config.environments["prod"], credit)
    # The environment's by_id is merged over the model's, and the rest of its override survives.
    assert (prod.by_id.max_concurrency, prod.by_id.max_ids, prod.serverless.provisioned_concurrency) == (200, 100, 2)


def test_by_id_in_an_environment_without_the_online_store_is_refused_naming_the_environment_and_model():
    """GIVEN churn scores by id everywhere and dev turns the online store off WHEN validated THEN exactly dev's
    line (the loader's cross-check); staging and prod keep their online store."""
    raw = _raw()
    _serving(raw, "churn")["by_id"] = {"enabled": True}
    raw["environments"]["dev"]["feature_store"]["online_store"] = False
    assert problems_of(raw) == [BY_ID_NEEDS_THE_ONLINE_STORE.format(env="dev", model="churn")]


def test_the_online_store_turned_off_in_defaults_refuses_by_id_in_every_environment_serving_the_model():
    raw = _raw()
    raw["defaults"]["feature_store"]["online_store"] = False
    _serving(raw, "credit-risk")["by_id"] = {"enabled": True}
    assert problems_of(raw) == [BY_ID_NEEDS_THE_ONLINE_STORE.format(env=env, model="credit-risk")
                                for env in ("dev", "staging", "prod")]


def test_an_environment_without_the_online_store_may_skip_a_model_that_scores_by_id():
    raw = _raw()
    _serving(raw, "credit-risk")["by_id"] = {"enabled": True}
    raw["environments"]["staging"]["models"] = ["churn"]
    raw["environments"]["staging"]["feature_store"] = {"online_store": False}
    config = parse_config(raw)
    assert config.environments["staging"].feature_store.online_store is False
    assert config.serving_of(config.environments["prod"], config.models["credit-risk"]).by_id.enabled


def test_the_lookup_spec_carries_the_datasets_keys_and_the_models_features_with_their_feature_store_types():
    from mlops_loop.config.serving import ById

    config = parse_config(_raw())
    churn, credit = config.models["churn"], config.models["credit-risk"]
    spec = churn.lookup_spec(ById())
    assert (spec.record_identifier, spec.event_time) == ("customer_id", "event_time")
    assert spec.features == (
        ("tenure_months", "Integral"), ("monthly_charges", "Fractional"), ("total_charges", "Fractional"),
        ("avg_charge_per_month", "Fractional"), ("log_support_calls_90d", "Fractional"), ("contract_type", "String"),
        ("payment_method", "String"), ("region", "String"),
    )
    assert spec.feature_names == list(churn.features)
    assert (spec.policy, spec.max_age_seconds, spec.max_ids) == ("reject", None, 100)
    spec = credit.lookup_spec(ById(enabled=True, missing="compute", max_age_hours=840, max_ids=7))
    assert (spec.record_identifier, spec.event_time) == ("application_id", "event_time")
    assert spec.features == (
        ("loan_amount", "Fractional"), ("log_annual_income", "Fractional"), ("loan_to_income", "Fractional"),
        ("credit_history_months", "Integral"), ("num_open_accounts", "Integral"), ("employment_type", "String"),
        ("purpose", "String"),
    )
    assert (spec.policy, spec.max_age_seconds, spec.max_ids) == ("compute", 840 * 3600, 7)


@pytest.mark.parametrize(("hours", "seconds"), [(None, None), (1, 3600), (8760, 8760 * 3600)])
def test_the_lookup_spec_turns_max_age_hours_into_seconds(hours, seconds):
    from mlops_loop.config.serving import ById

    config = parse_config(_raw())
    spec = config.models["churn"].lookup_spec(ById(max_age_hours=hours, missing="missing"))
    assert (spec.max_age_seconds, spec.policy) == (seconds, "missing")


def test_the_lookup_spec_follows_the_models_feature_order_not_the_datasets():
    raw = _raw()
    raw["models"]["churn"]["features"] = ["region", "tenure_months", "monthly_charges"]
    config = parse_config(raw)
    spec = config.models["churn"].lookup_spec(config.models["churn"].serving.by_id)
    assert spec.features == (("region", "String"), ("tenure_months", "Integral"), ("monthly_charges", "Fractional"))


def test_a_max_age_the_online_stores_ttl_makes_unreachable_is_refused_naming_both_settings():
    """GIVEN dev keeps online records 7 days WHEN churn treats records older than 168 hours as stale THEN dev is
    refused: a record expires before it could turn stale, so the setting would never apply."""
    raw = _raw()
    _serving(raw, "churn")["by_id"] = {"enabled": True, "max_age_hours": 168}
    raw["environments"]["dev"]["feature_store"]["online_ttl_days"] = 7
    raw["defaults"]["feature_store"]["online_ttl_days"] = 30
    assert problems_of(raw) == [
        "environment 'dev': field 'serving.churn.by_id.max_age_hours': 168 hours is not below the online store's TTL "
        "(feature_store.online_ttl_days 7 = 168 hours), so records expire before they turn stale and it never applies; "
        "set it below 168 or remove it"
    ]


def test_more_reserved_concurrency_than_an_account_can_give_is_refused_per_environment():
    raw = _raw()
    for model in ("churn", "credit-risk"):
        _serving(raw, model)["by_id"] = {"enabled": True, "max_concurrency": 450}
    serving_both = [env for env, body in raw["environments"].items() if {"churn", "credit-risk"} <= set(body["models"])]
    assert serving_both
    assert problems_of(raw) == [
        f"environment {env!r}: fields 'serving.<model>.by_id.max_concurrency' reserve 900 concurrent executions in all; "
        "an account with Lambda's default limit can reserve at most 898 for them (100 stay unreserved, the app's "
        "handlers hold 2): lower them"
        for env in serving_both
    ]


def test_a_default_serving_override_applies_where_the_model_is_deployed_and_is_no_mistake_elsewhere():
    # GIVEN defaults that make credit-risk serverless with 5 workers, and staging deploying churn only
    raw = _raw()
    raw["defaults"]["serving"] = {"credit-risk": {"mode": "serverless", "serverless": {"max_concurrency": 5}}}
    raw["environments"]["staging"]["models"] = ["churn"]
    app = parse_config(raw)
    # THEN the environments deploying credit-risk take it, and staging (which does not) is not told off for it
    for env in ("dev", "prod"):
        served = app.serving_of(app.environments[env], app.models["credit-risk"])
        assert (served.mode, served.serverless.max_concurrency) == ("serverless", 5), env
    assert [m.name for m in app.models_of(app.environments["staging"])] == ["churn"]


def test_a_default_serving_override_for_a_model_no_environment_deploys_is_reported_once_as_defaults():
    raw = _raw()
    raw["defaults"]["serving"] = {"fruad": {"mode": "serverless"}}
    assert problems_of(raw) == [
        "defaults: field 'serving.fruad': overrides a model no environment deploys; deployed: churn, credit-risk"]


def _listed_by_framework(message: str) -> dict[str, set[str]]:
    """The instance types an 'allowed:' list offers each framework: groups ``<types> (<accelerator>, any framework)``
    or ``<types> (<accelerator>, framework '<name>' only)``, separated by '; '."""
    from mlops_loop.config.instance_types import FRAMEWORKS

    offered: dict[str, set[str]] = {f: set() for f in FRAMEWORKS}
    for group in message.split("allowed: ", 1)[1].split("; "):
        types, _, label = group.rstrip(")").rpartition(" (")
        who = label.split(", ", 1)[1]
        frameworks = list(FRAMEWORKS) if who == "any framework" else [who.split("'")[1]]
        for framework in frameworks:
            offered[framework] |= set(types.split(", "))
    return offered


@pytest.mark.parametrize("purpose", ["endpoints", "batch transform"])
def test_the_types_a_serving_refusal_offers_each_framework_are_ones_it_serves_on_without_a_word(purpose):
    """GIVEN the message refusing a type SageMaker does not take for ``purpose`` WHEN a model of each framework is
    served on each type it offers that framework THEN the config neither refuses it (accelerator_problems) nor warns
    about it (accelerator_warnings): the list names no GPU (idle for XGBoost, unusable for the network), Trainium or,
    for XGBoost, Inferentia2 type."""
    from mlops_loop.config.instance_types import FRAMEWORKS, UNSUPPORTED_FOR, unsupported_problem
    from mlops_loop.config.cross_checks import accelerator_problems, accelerator_warnings

    refused = sorted(UNSUPPORTED_FOR[purpose])[0]
    offered = _listed_by_framework(unsupported_problem(refused, purpose))
    churn = parse_config(_raw()).models["churn"]
    mode = "batch" if purpose == "batch transform" else "realtime"
    checked = 0
    for framework, types in offered.items():
        assert types, framework
        for name in sorted(types):
            serving = churn.serving.model_copy(update={"mode": mode, mode: getattr(churn.serving, mode).model_copy(
                update={"instance_type": name})})
            model = churn.model_copy(update={"framework": framework, "serving": serving})
            assert serving.instance_types == (name,)
            assert accelerator_problems({"churn": model}, {}) == [], (framework, name)
            assert accelerator_warnings({"churn": model}, {}) == [], (framework, name)
            checked += 1
    assert checked >= len(FRAMEWORKS)


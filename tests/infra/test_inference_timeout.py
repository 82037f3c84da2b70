"""A model's declared inference time (``serving.inference_timeout_seconds``): how long its serving container lets one
request run.

Both images the app serves with stop a request after 60 s unless the model's container environment says otherwise
(``SAGEMAKER_MODEL_SERVER_TIMEOUT``): the XGBoost image's gunicorn ``--timeout`` and nginx ``proxy_read_timeout``
(sagemaker-containers 2.8.6.post2 ``_server.start``), the Neuron inference image's TorchServe
``default_response_timeout`` (sagemaker-pytorch-inference 2.0.25 ``torchserve._generate_ts_config_properties``).
So an async model that takes two minutes failed every request. These tests hold the config (synth refuses what
cannot work, naming the field and the fix); what it writes on the Model and the transform job is held by
``tests/infra/constructs/test_served_model.py`` and ``test_batch_transform.py``.

Fast tests: the sample YAML is modified in memory and validated with ``parse_config``. None pins the sample model
line-up.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from mlops_loop.config import ConfigError, parse_config
from mlops_loop.config.serving import ServingConfig
from tests.support.configs import SAMPLE_CONFIG

SAMPLE = yaml.safe_load(SAMPLE_CONFIG.read_text())


def _problems(serving: dict) -> list[str]:
    """The problems of the sample with model churn served as ``serving`` in every environment."""
    raw = copy.deepcopy(SAMPLE)
    raw["models"]["churn"]["serving"] = serving
    for env in raw["environments"].values():
        env.get("serving", {}).pop("churn", None)
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


# ------------------------------------------------------------------ config
def test_by_default_a_model_keeps_the_containers_own_sixty_seconds():
    assert ServingConfig().inference_timeout_seconds == 60


@pytest.mark.parametrize("mode", ["async", "batch"])
def test_an_async_or_batch_model_may_declare_up_to_an_hour(mode):
    assert ServingConfig(mode=mode, inference_timeout_seconds=3600).inference_timeout_seconds == 3600


@pytest.mark.parametrize("mode", ["realtime", "serverless"])
def test_a_realtime_or_serverless_model_over_a_minute_is_refused_naming_the_limit_and_the_modes_that_allow_it(mode):
    assert _problems({"mode": mode, "inference_timeout_seconds": 61}) == [
        f"model 'churn': field 'serving.inference_timeout_seconds': 61 s is over the 60 s a {mode} endpoint waits for "
        "an answer (InvokeEndpoint's limit), so a request running longer fails whatever the container allows; "
        "allowed: 1-60 here (a model that needs longer: mode 'async' or 'batch', up to 3600)"]


@pytest.mark.parametrize("mode", ["async", "batch"])
def test_over_an_hour_is_refused(mode):
    assert _problems({"mode": mode, "inference_timeout_seconds": 3601}) == [
        "model 'churn': field 'serving.inference_timeout_seconds': Input should be less than or equal to 3600 (got 3601)"]


def test_a_multi_model_member_may_not_declare_it_its_endpoints_model_server_runs_it():
    with pytest.raises(ValueError, match=(
            r"inference_timeout_seconds: a model on a multi-model endpoint runs in that endpoint's model server, which "
            r"this setting does not reach; remove it here")):
        ServingConfig(mode="multi_model", inference_timeout_seconds=30)


def test_an_async_latency_alarm_above_the_inference_time_is_refused_naming_the_time_to_declare():
    """The trial's config: an async model that answers in about two minutes, its alarms raised, its inference time
    left at the container's 60 s: every request over a minute would fail and the alarm could never see one."""
    assert _problems({"mode": "async", "alarms": {"max_latency_p99_ms": 180_000},
                      "async": {"rollout": {"max_latency_p99_ms": 180_000}}}) == [
        "model 'churn': field 'serving.alarms.max_latency_p99_ms': 180000 ms is above inference_timeout_seconds 60 s, "
        "after which the serving container stops a request (it fails: a latency above it is never measured); set "
        "inference_timeout_seconds to at least 180 (at most 3600 for mode 'async'), or lower the alarm"]


def test_an_async_rollout_latency_above_the_inference_time_is_refused_too():
    assert _problems({"mode": "async", "inference_timeout_seconds": 120,
                      "async": {"rollout": {"max_latency_p99_ms": 300_000}}}) == [
        "model 'churn': field 'serving.async.rollout.max_latency_p99_ms': 300000 ms is above inference_timeout_seconds "
        "120 s, after which the serving container stops a request (it fails: a latency above it is never measured); "
        "set inference_timeout_seconds to at least 300 (at most 3600 for mode 'async'), or lower the alarm"]


def test_a_realtime_latency_alarm_above_a_minute_is_refused_as_never_reachable():
    assert _problems({"mode": "realtime", "alarms": {"max_latency_p99_ms": 90_000},
                      "realtime": {"rollout": {"max_latency_p99_ms": 1000}}}) == [
        "model 'churn': field 'serving.alarms.max_latency_p99_ms': 90000 ms is above inference_timeout_seconds 60 s, "
        "after which the serving container stops a request (it fails: a latency above it is never measured); lower "
        "it to at most 60000 (a realtime endpoint answers within 60 s; a slower model: mode 'async')"]


def test_an_async_model_declaring_its_time_with_alarms_within_it_is_accepted():
    serving = ServingConfig.model_validate({"mode": "async", "inference_timeout_seconds": 180,
                                            "alarms": {"max_latency_p99_ms": 150_000},
                                            "async": {"rollout": {"max_latency_p99_ms": 180_000}}})
    assert (serving.inference_timeout_seconds, serving.rollout.max_latency_p99_ms) == (180, 180_000)


# ------------------------------------------------------------------ the refusals a user follows, in order
def test_a_realtime_alarm_over_a_minute_is_refused_first_not_after_the_rollout_was_told_to_follow_it():
    """A realtime model whose latency alarm was raised to 90 s: the first refusal is the alarm's (nothing above 60 s
    is ever measured), not the rollout default's asking for 90000 ms, which the next refusal would then take back."""
    assert _problems({"mode": "realtime", "alarms": {"max_latency_p99_ms": 90_000}}) == [
        "model 'churn': field 'serving.alarms.max_latency_p99_ms': 90000 ms is above inference_timeout_seconds 60 s, "
        "after which the serving container stops a request (it fails: a latency above it is never measured); lower "
        "it to at most 60000 (a realtime endpoint answers within 60 s; a slower model: mode 'async')"]


@pytest.mark.parametrize("mode", ["realtime", "serverless", "async"])
def test_the_rollout_default_below_the_alarm_asks_for_a_value_within_the_inference_time(mode):
    # Set as asked, the rollout latency is accepted: the bound given is the one the inference time allows.
    assert _problems({"mode": mode, "alarms": {"max_latency_p99_ms": 45_000}, "inference_timeout_seconds": 50}) == [
        f"model 'churn': field 'serving.{mode}.rollout.max_latency_p99_ms': 1000 ms (the default) is below "
        "alarms.max_latency_p99_ms 45000 ms, so a new version as slow as the endpoint is allowed to be rolls back "
        "whenever it serves during its rollout; set it to at least 45000 (at most 50000: inference_timeout_seconds "
        "50 s)"]


@pytest.mark.parametrize("mode, alarm_ms", [("realtime", 90_000), ("serverless", 90_000), ("async", 180_000)])
def test_following_each_refusal_of_a_raised_latency_alarm_in_turn_ends_in_a_config_that_is_accepted(mode, alarm_ms):
    """The user's walk: each refusal's fix applied as it says (the lowest value it allows), none taken back later."""
    serving = {"mode": mode, "alarms": {"max_latency_p99_ms": alarm_ms}}
    first = _problems(serving)
    if mode == "async":
        assert "set inference_timeout_seconds to at least 180 (at most 3600 for mode 'async')" in first[0]
        serving["inference_timeout_seconds"] = 180
    else:
        assert "field 'serving.alarms.max_latency_p99_ms'" in first[0] and "lower it to at most 60000" in first[0]
        serving["alarms"]["max_latency_p99_ms"] = 60_000
    second = _problems(serving)
    bound = serving["alarms"]["max_latency_p99_ms"]
    assert f"field 'serving.{mode}.rollout.max_latency_p99_ms'" in second[0]
    assert f"set it to at least {bound} (at most {bound}: inference_timeout_seconds {bound // 1000} s)" in second[0]
    serving[mode] = {"rollout": {"max_latency_p99_ms": bound}}
    raw = copy.deepcopy(SAMPLE)
    raw["models"]["churn"]["serving"] = serving
    for env in raw["environments"].values():
        env.get("serving", {}).pop("churn", None)
    config = parse_config(raw)
    served = config.serving_of(config.environments["prod"], config.models["churn"])
    assert (served.mode, served.rollout.max_latency_p99_ms) == (mode, bound)


def test_a_model_declaring_its_inference_time_may_join_a_multi_model_endpoint_in_one_environment():
    """The model's own inference time is its own container's: an environment that serves it on a shared multi-model
    endpoint (whose model server the setting does not reach) leaves it out, as it does the model's own alarms, instead
    of refusing a value the environment's block does not write and could not remove."""
    raw = copy.deepcopy(SAMPLE)
    raw["models"]["churn"]["serving"] = {"mode": "async", "inference_timeout_seconds": 300}
    raw["environments"]["dev"]["multi_model_endpoints"] = {"shared": {}}
    raw["environments"]["dev"]["serving"]["churn"] = {"mode": "multi_model", "multi_model": {"endpoint": "shared"}}
    raw["environments"]["prod"].get("serving", {}).pop("churn", None)
    config = parse_config(raw)
    dev, prod = (config.serving_of(config.environments[env], config.models["churn"]) for env in ("dev", "prod"))
    assert (dev.mode, "inference_timeout_seconds" in dev.model_fields_set) == ("multi_model", False)
    assert (prod.mode, prod.inference_timeout_seconds) == ("async", 300)


def test_an_environment_that_sets_it_on_a_multi_model_member_is_still_refused():
    raw = copy.deepcopy(SAMPLE)
    raw["environments"]["dev"]["multi_model_endpoints"] = {"shared": {}}
    raw["environments"]["dev"]["serving"]["churn"] = {"mode": "multi_model", "multi_model": {"endpoint": "shared"},
                                                      "inference_timeout_seconds": 120}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert caught.value.problems == [
        "environment 'dev': field 'serving.churn.inference_timeout_seconds': a model on a multi-model endpoint runs in "
        "that endpoint's model server, which this setting does not reach; remove it here"]


# ------------------------------------------------------------------ a multi-model endpoint's own latency alarms
def _endpoint_problems(endpoint: dict) -> list[str]:
    raw = copy.deepcopy(SAMPLE)
    raw["environments"]["dev"]["multi_model_endpoints"] = {"shared": endpoint}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_a_multi_model_endpoints_latency_alarm_above_a_minute_is_refused_as_never_reachable():
    """Its model server stops a request after 60 s (InvokeEndpoint's limit too): an alarm above it could never fire."""
    assert _endpoint_problems({"alarms": {"max_latency_p99_ms": 90_000}}) == [
        "environment 'dev': field 'multi_model_endpoints.shared.alarms.max_latency_p99_ms': 90000 ms is above the 60 s "
        "after which a multi-model endpoint's model server stops a request (it fails: a latency above it is never "
        "measured); lower it to at most 60000"]


def test_a_multi_model_endpoints_rollout_latency_set_above_a_minute_is_refused_too():
    assert _endpoint_problems({"rollout": {"max_latency_p99_ms": 120_000}}) == [
        "environment 'dev': field 'multi_model_endpoints.shared.rollout.max_latency_p99_ms': 120000 ms is above the 60 s "
        "after which a multi-model endpoint's model server stops a request (it fails: a latency above it is never "
        "measured); lower it to at most 60000"]


def test_a_multi_model_endpoints_rollout_default_below_its_raised_alarm_is_refused_naming_the_value_to_set():
    assert _endpoint_problems({"alarms": {"max_latency_p99_ms": 30_000}}) == [
        "environment 'dev': field 'multi_model_endpoints.shared.rollout.max_latency_p99_ms': 1000 ms (the default) is "
        "below alarms.max_latency_p99_ms 30000 ms, so an update of the endpoint as slow as it is allowed to be rolls "
        "back whenever it serves during its rollout; set it to at least 30000 (at most 60000)"]


def test_a_multi_model_endpoint_with_its_latencies_within_a_minute_is_accepted():
    raw = copy.deepcopy(SAMPLE)
    raw["environments"]["dev"]["multi_model_endpoints"] = {
        "shared": {"alarms": {"max_latency_p99_ms": 30_000}, "rollout": {"max_latency_p99_ms": 30_000}}}
    endpoint = parse_config(raw).environments["dev"].multi_model_endpoints["shared"]
    assert (endpoint.alarms.max_latency_p99_ms, endpoint.rollout.max_latency_p99_ms) == (30_000, 30_000)

"""What the config loader refuses about native Model Monitor (``serving.native_model_monitor``) beyond the serving
mode: a decision threshold only training chooses, and a label delay that reaches past the captured requests kept.

GIVEN the one-model construct config (``tests.support.construct_configs``: model ``returns``, environment ``dev``)
opting into native Model Monitor WHEN it is loaded THEN a monitor that can judge what the endpoint decides passes, and
each refusal is one line naming the field that opts in, the field that conflicts and the fix.
"""

from __future__ import annotations

import pytest

from mlops_loop.config import ConfigError, parse_config
from tests.support.construct_configs import returns_config

REALTIME = {"mode": "realtime", "realtime": {"instance_type": "ml.m5.large", "autoscaling": None}}
# The environment's monitoring.schedule runs daily (the drift monitor needs it), so is native Model Monitor's.
DAILY = "cron(0 3 * * ? *)"
# In the model's own serving block / in the environment's override of it.
MODEL_FIELD = "environment 'dev': model 'returns': field 'serving.native_model_monitor'"
ENV_FIELD = "environment 'dev': field 'serving.returns.native_model_monitor'"


def native(*, decision=None, label_delay_days=None, expiration="default", schedule=DAILY, in_env=False) -> dict:
    """The construct config with native Model Monitor on (in the model's block, or in the environment's)."""
    serving = {**REALTIME, "native_model_monitor": True}
    raw = returns_config(serving if in_env else None, model_serving=REALTIME if in_env else serving,
                         monitoring={"schedule": schedule})
    model = raw["models"]["returns"]
    if decision is not None:
        model["decision"] = decision
    if label_delay_days is not None:
        model["label_delay_days"] = label_delay_days
    if expiration != "default":
        raw["environments"]["dev"]["data_lake"] = {"inference_expiration_days": expiration}
    return raw


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        parse_config(raw)
    return refused.value.problems


@pytest.mark.parametrize("decision", [None, {"policy": "fixed"}, {"policy": "fixed", "threshold": 0.3}])
def test_a_threshold_the_config_fixes_passes(decision):
    config = parse_config(native(decision=decision))
    assert config.serving_of(config.environments["dev"], config.models["returns"]).native_model_monitor


@pytest.mark.parametrize("in_env,where", [(False, MODEL_FIELD), (True, ENV_FIELD)])
@pytest.mark.parametrize("decision", [{"policy": "max_f_beta", "beta": 2}, {"policy": "target_precision", "target": 0.9}])
def test_a_threshold_only_training_chooses_is_refused_naming_both_fields(decision, in_env, where):
    """Was: the job definitions judged at 0.5 whatever threshold each version chose and serves with."""
    assert problems_of(native(decision=decision, in_env=in_env)) == [
        f"{where}: decision.policy {decision['policy']!r} chooses the decision threshold each time a version trains "
        "(stored in its artefact), but native Model Monitor's model-quality and bias jobs compare the score with one "
        "threshold written into their job definitions at deploy, so they would judge decisions the endpoint does not "
        "make; use models.returns.decision policy 'fixed' (with its threshold), or turn native_model_monitor off for "
        "this model (the drift monitor judges each version at its own threshold)"
    ]


@pytest.mark.parametrize("delay,expiration,schedule,needed", [
    (400, "default", DAILY, 401),  # the default 400 days of capture: a 400-day delay reads day 401
    (365, 365, DAILY, 366),
    (30, 30, "cron(0 2 ? * * *)", 31),  # churn's month with the shortest capture retention the config takes
])
def test_a_label_delay_past_the_capture_kept_is_refused_naming_both_fields(delay, expiration, schedule, needed):
    kept = 400 if expiration == "default" else expiration
    assert problems_of(native(label_delay_days=delay, expiration=expiration, schedule=schedule)) == [
        f"{MODEL_FIELD}: model 'returns' has label_delay_days {delay}, so its native model-quality and bias jobs read "
        f"the requests captured {needed} days back (the schedule period that ended {delay} days ago), but "
        f"data_lake.inference_expiration_days {kept} expires captured requests after {kept} days, so each run would "
        f"find that window's requests (partly) deleted; keep them at least {needed} days (environment field "
        "'data_lake.inference_expiration_days', or null: never), lower models.returns.label_delay_days, or turn "
        "native_model_monitor off for this model"
    ]


@pytest.mark.parametrize("delay,expiration,schedule", [
    (365, "default", DAILY),   # credit-risk's year within the default 400 days
    (399, "default", DAILY),
    (3650, None, DAILY),       # capture never expires: the longest delay the config takes
    (30, 31, "cron(0 2 ? * * *)"),
])
def test_a_label_delay_within_the_capture_kept_passes(delay, expiration, schedule):
    parse_config(native(label_delay_days=delay, expiration=expiration, schedule=schedule))


def test_without_native_monitoring_a_long_delay_and_a_trained_threshold_are_the_drift_monitor_s_business():
    raw = returns_config(model_serving=REALTIME)
    raw["models"]["returns"].update(label_delay_days=500, decision={"policy": "max_f_beta"})
    raw["environments"]["dev"]["data_lake"] = {"inference_records_expiration_days": None}
    parse_config(raw)

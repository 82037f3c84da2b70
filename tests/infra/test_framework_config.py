"""framework: pytorch in the config: what a network may train and serve on, and per-model training instance types."""

from __future__ import annotations

import copy

import pytest
import yaml
from mlops_loop.config import ConfigError, parse_config
from mlops_loop.config.serving import compiled_for_inferentia2
from tests.support.configs import SAMPLE_CONFIG

SAMPLE = yaml.safe_load(SAMPLE_CONFIG.read_text())


def _with_network(**environment_training) -> tuple[dict, str, str]:
    """GIVEN the sample config whose first model of the first environment trains a network."""
    raw = copy.deepcopy(SAMPLE)
    environment = next(iter(raw["environments"]))
    model = raw["environments"][environment]["models"][0]
    raw["models"][model]["framework"] = "pytorch"
    raw["environments"][environment].setdefault("training", {}).update(environment_training)
    return raw, environment, model


def test_a_network_may_train_on_trainium():
    raw, environment, model = _with_network(instance_type="ml.trn1.2xlarge")
    raw["environments"][environment]["models"] = [model]  # the environment's training type applies to all its models
    config = parse_config(raw)
    assert config.models[model].framework == "pytorch"
    assert config.environments[environment].training.instance_type == "ml.trn1.2xlarge"


def _on_inferentia2(serving: dict, *, framework: str = "pytorch", region: str | None = None) -> tuple[dict, str, str]:
    """GIVEN the sample config whose first environment serves its first model as ``serving`` says (a network by default)."""
    raw, environment, model = _with_network()
    raw["models"][model]["framework"] = framework
    raw["environments"][environment].setdefault("serving", {})[model] = serving
    if region:
        raw["environments"][environment]["region"] = region
    return raw, environment, model


def test_a_network_may_be_served_on_a_real_time_inferentia2_endpoint():
    raw, environment, model = _on_inferentia2({"mode": "realtime", "realtime": {"instance_type": "ml.inf2.xlarge"}})
    config = parse_config(raw)
    assert compiled_for_inferentia2(config.serving_of(config.environments[environment], config.models[model]))


def test_trees_on_inferentia2_are_refused_naming_what_the_xgboost_image_lacks():
    raw, environment, model = _on_inferentia2({"mode": "realtime", "realtime": {"instance_type": "ml.inf2.xlarge"}},
                                              framework="xgboost")
    assert _problems(raw) == [
        f"environment {environment!r}: field 'serving.{model}.realtime.instance_type': ml.inf2.xlarge is an "
        "Inferentia2 instance, which serving with framework 'xgboost' cannot use (Inferentia2 runs only Neuron-compiled "
        "models from a Neuron image; the XGBoost image has no Neuron support); allowed accelerators for serving: none "
        "— pick e.g. ml.m5.large or ml.c5.xlarge"
    ]


def test_trees_served_on_a_gpu_are_accepted_with_a_warning_since_the_serving_hooks_score_on_the_cpu():
    """A GPU serving type for an XGBoost model serves (on the CPU: the hooks load a CPU booster, the GPU idles) and was
    accepted before 219a9a3, so a deployed endpoint on one must keep synthesizing: a refusal would leave it no way
    forward but a change of instance type, which SageMaker refuses for an autoscaled endpoint (UPDATE FAILS)."""
    # GIVEN an XGBoost model whose endpoint is a GPU instance
    raw, environment, model = _on_inferentia2({"mode": "realtime", "realtime": {"instance_type": "ml.g5.xlarge"}},
                                              framework="xgboost")
    # WHEN the config is read THEN it is accepted, and one warning names what scores, what it costs and what to pick
    # (the sample's placeholder accounts and open prod approval are warned about too: not this test's subject)
    warnings = [w for w in parse_config(raw).warnings()
                if "looks like a placeholder" not in w and "field 'approvers'" not in w]
    assert warnings == [
        f"environment {environment!r}: field 'serving.{model}.realtime.instance_type': ml.g5.xlarge is a GPU instance, "
        "which serving with framework 'xgboost' does not use (the serving hooks score the trees on the CPU, so the GPU "
        "would be paid for and idle); pick e.g. ml.m5.large or ml.c5.xlarge (an autoscaled endpoint cannot change its "
        "instance type in place: the template diff says UPDATE FAILS and what to do)"
    ]


def test_a_network_served_on_trainium_is_refused_naming_what_serves_it_on_neuron():
    raw, environment, model = _on_inferentia2({"mode": "realtime", "realtime": {"instance_type": "ml.trn1.2xlarge"}})
    assert _problems(raw) == [
        f"environment {environment!r}: field 'serving.{model}.realtime.instance_type': ml.trn1.2xlarge is a Trainium "
        "instance, which serving with framework 'pytorch' cannot use (Trainium trains the network; the Compile step builds "
        "it for Inferentia2 (torch-neuronx --target inf2), which is what serves it on Neuron); allowed accelerators for "
        "serving: none, inferentia2 — pick e.g. ml.m5.large, ml.c5.xlarge or ml.inf2.xlarge"
    ]


@pytest.mark.parametrize("mode", ["async", "batch"])
def test_a_compiled_network_is_served_on_real_time_endpoints_only(mode):
    """Async endpoints do not take the parity check's InvokeEndpoint, and batch transform has no rollout to check;
    the field is named where the environment's override sets it."""
    raw, environment, model = _on_inferentia2({"mode": mode, mode: {"instance_type": "ml.inf2.xlarge"}})
    why = {"async": "its rollouts are parity-checked with synchronous InvokeEndpoint calls, which an async endpoint does "
                    "not take",
           "batch": "batch transform has no rollout in which the parity check could test the compiled model on the device"}
    assert _problems(raw) == [
        f"environment {environment!r}: field 'serving.{model}.{mode}.instance_type': ml.inf2.xlarge serves a compiled "
        f"network on real-time endpoints only, not {mode} ({why[mode]}); use mode 'realtime', or a CPU type (e.g. "
        "ml.m5.xlarge)"
    ]


def test_inferentia2_in_a_region_without_the_neuron_inference_image_is_refused():
    raw, environment, model = _on_inferentia2({"mode": "realtime", "realtime": {"instance_type": "ml.inf2.xlarge"}},
                                              region="eu-north-1")
    assert _problems(raw) == [
        f"environment {environment!r}: field 'serving.{model}.realtime.instance_type': ml.inf2.xlarge needs AWS's "
        "Neuron inference image, which is not published in eu-north-1; regions with it (each must also offer ml.inf2.xlarge): us-east-1, us-east-2, us-west-2, "
        "eu-west-1, eu-west-3, eu-central-1, ap-south-1, ap-northeast-1, ap-southeast-1, ap-southeast-2, sa-east-1 — serve "
        "on a CPU type there (e.g. ml.m5.large)"
    ]


def test_a_bake_too_short_for_the_parity_check_to_roll_back_is_refused():
    raw, environment, model = _on_inferentia2(
        {"mode": "realtime", "realtime": {"instance_type": "ml.inf2.xlarge", "rollout": {"strategy": "canary", "wait_minutes": 3}}})
    assert _problems(raw) == [
        f"environment {environment!r}: field 'serving.{model}.realtime.rollout.wait_minutes': 3 minutes is too short a "
        "bake for the parity check of a compiled model to roll a mismatching version back; at least 5"
    ]


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_a_network_is_not_tuned():
    raw, environment, model = _with_network(hyperparameter_tuning=True)
    assert _problems(raw) == [
        f"environment {environment!r}: model {model!r}: field 'training.hyperparameter_tuning': the tuning job searches "
        f"XGBoost's hyperparameters and a network (framework 'pytorch') is not tuned; set it false or train {model!r} in an "
        "environment without tuning"
    ]


def test_a_network_trains_on_one_instance():
    raw, environment, model = _with_network(instance_count=2)
    assert _problems(raw) == [
        f"environment {environment!r}: model {model!r}: field 'training.instance_count': a network trains on one instance "
        "(train_torch is not distributed), not 2; set it to 1"
    ]


def test_a_trainium_type_with_more_neuron_cores_than_the_trainer_uses_is_refused_naming_the_smallest():
    """GIVEN a network on ml.trn1.32xlarge (32 NeuronCores, 16x the price of ml.trn1.2xlarge) WHEN the config is read
    THEN it is refused: train_torch is one process on one NeuronCore, so the other cores would be paid for and idle."""
    raw, environment, model = _with_network()
    raw["environments"][environment]["region"] = "us-east-1"
    raw["environments"][environment]["training"]["instance_types"] = {model: "ml.trn1.32xlarge"}
    assert _problems(raw) == [
        f"environment {environment!r}: model {model!r}: field 'training.instance_types.{model}': ml.trn1.32xlarge has 32 "
        "NeuronCores, but a network trains in one process on one NeuronCore (train_torch is not distributed): 31 would "
        "be paid for and idle; use ml.trn1.2xlarge (2 NeuronCores), the same training for less"
    ]


def test_trainium_in_a_region_without_the_neuron_image_is_refused_naming_the_regions_that_have_it():
    raw, environment, model = _with_network()
    raw["environments"][environment]["region"] = "eu-west-2"
    raw["environments"][environment]["training"]["instance_types"] = {model: "ml.trn1.2xlarge"}
    assert _problems(raw) == [
        f"environment {environment!r}: model {model!r}: field 'training.instance_types.{model}': ml.trn1.2xlarge needs AWS's "
        "Neuron training image, which is not published in eu-west-2; regions with it (each must also offer ml.trn1.2xlarge): us-east-1, us-east-2, us-west-2, "
        "eu-west-1, eu-west-3, eu-central-1, ap-south-1, ap-northeast-1, ap-southeast-1, ap-southeast-2, sa-east-1 — train "
        "on a CPU type there (e.g. ml.m5.xlarge)"
    ]


def test_a_per_model_training_type_is_checked_against_that_models_framework():
    raw = copy.deepcopy(SAMPLE)
    environment = next(iter(raw["environments"]))
    model = raw["environments"][environment]["models"][0]
    raw["environments"][environment].setdefault("training", {})["instance_types"] = {model: "ml.trn1.2xlarge"}
    assert _problems(raw) == [
        f"environment {environment!r}: model {model!r}: field 'training.instance_types.{model}': ml.trn1.2xlarge is a "
        "Trainium instance, which training with framework 'xgboost' cannot use (Trainium runs only Neuron SDK training "
        "code; the XGBoost image has no Neuron support); allowed accelerators for training: none, gpu — pick e.g. "
        "ml.m5.xlarge or ml.g5.xlarge"
    ]


def test_a_per_model_training_type_for_a_name_that_is_no_model_is_refused():
    raw = copy.deepcopy(SAMPLE)
    environment = next(iter(raw["environments"]))
    raw["environments"][environment].setdefault("training", {})["instance_types"] = {"not-a-model": "ml.m5.xlarge"}
    assert _problems(raw) == [
        f"environment {environment!r}: field 'training.instance_types': unknown model(s) ['not-a-model']; models: "
        f"{', '.join(sorted(raw['models']))}"
    ]


def test_a_model_with_a_mistake_of_its_own_is_not_also_called_unknown_by_its_training_type():
    """GIVEN a network with a typo'd framework and a per-model training type WHEN the config is read THEN the one
    line names the framework; the model is declared, so its training type is not refused as an unknown model's."""
    raw, environment, model = _with_network()
    raw["environments"][environment]["training"]["instance_types"] = {model: "ml.m5.xlarge"}
    raw["models"][model]["framework"] = "torch"
    problems = _problems(raw)
    assert problems == [f"model {model!r}: field 'framework': Input should be 'xgboost' or 'pytorch' (got 'torch')"]


def test_a_models_hyperparameters_are_checked_against_its_frameworks_trainer():
    """GIVEN a network's config setting its trainer's hyperparameters WHEN read THEN valid ones are kept and a name the
    framework does not have, or a value of the wrong kind, is one line naming the field and what it takes."""
    raw, environment, model = _with_network()
    raw["models"][model]["hyperparameters"] = {"epochs": 12, "hidden": [128, 64]}
    assert parse_config(raw).models[model].hyperparameters == {"epochs": 12, "hidden": [128, 64]}
    raw["models"][model]["hyperparameters"] = {"epochs": "fifty"}
    assert _problems(raw) == [f"model {model!r}: field 'hyperparameters.epochs': expected a whole number >= 1, got 'fifty'"]
    raw["models"][model]["hyperparameters"] = {"num_round": 50}
    assert _problems(raw) == [
        f"model {model!r}: field 'hyperparameters.num_round': not a hyperparameter of framework 'pytorch'; allowed: "
        "batch_size, dropout, embedding_dim, epochs, hidden, learning_rate, patience, seed, weight_decay"]


def test_a_hyperparameter_the_tuning_job_searches_is_refused_where_tuning_is_on():
    """The search's value would replace the one set: say so rather than ignore it."""
    raw = copy.deepcopy(SAMPLE)
    environment = next(iter(raw["environments"]))
    model = raw["environments"][environment]["models"][0]
    raw["models"][model]["hyperparameters"] = {"eta": 0.05, "num_round": 500}
    raw["environments"][environment].setdefault("training", {})["hyperparameter_tuning"] = True
    assert _problems(raw) == [
        f"environment {environment!r}: model {model!r}: field 'hyperparameters.eta': the tuning job searches eta (0.01 to "
        "0.3) in this environment, so the value set here would not be used; remove it, or set "
        "training.hyperparameter_tuning false"]


def test_per_model_training_types_in_defaults_apply_where_the_model_is_trained_and_nowhere_else():
    raw, environment, model = _with_network()
    raw["environments"][environment]["training"].pop("instance_types", None)
    raw.setdefault("defaults", {}).setdefault("training", {})["instance_types"] = {model: "ml.m5.2xlarge"}
    other = next(name for name in raw["environments"] if name != environment)
    raw["environments"][other]["models"] = [m for m in raw["environments"][other]["models"] if m != model]
    raw["environments"][other].get("serving", {}).pop(model, None)
    config = parse_config(raw)
    assert config.environments[environment].training.instance_type_of(model) == "ml.m5.2xlarge"
    assert model not in config.environments[other].models  # accepted: the entry simply does not apply there


def test_the_per_model_training_type_is_what_the_model_trains_on():
    raw, environment, model = _with_network()
    raw["environments"][environment]["training"]["instance_types"] = {model: "ml.m5.2xlarge"}
    training = parse_config(raw).environments[environment].training
    others = [m for m in raw["environments"][environment]["models"] if m != model]
    assert training.instance_type_of(model) == "ml.m5.2xlarge"
    assert {training.instance_type_of(m) for m in others} <= {training.instance_type}


def test_the_local_run_reads_each_models_framework(tmp_path):
    from mlops_cli.local import run_loop

    raw, environment, model = _with_network()
    path = tmp_path / "mlops-loop.yaml"
    path.write_text(yaml.safe_dump(raw))
    loaded = run_loop.load_config(str(path), environment)
    assert loaded["frameworks"][model] == "pytorch"
    assert {f for name, f in loaded["frameworks"].items() if name != model} <= {"xgboost", "pytorch"}

"""The local run and replay read the configuration through the loader synth uses: same model, same errors."""

from __future__ import annotations

import pytest
import yaml

from mlops_loop.config import ConfigError
from mlops_loop.config import load_config as load_app_config
from mlops_cli.local import run_loop
from tests.support.configs import SAMPLE_CONFIG


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "mlops-loop.yaml"
    path.write_text(text)
    return str(path)


def test_given_the_sample_config_then_every_model_reaches_the_jobs_as_synth_writes_it(tmp_path):
    app = load_app_config(SAMPLE_CONFIG)
    local = run_loop.load_config(str(SAMPLE_CONFIG), "dev")
    assert local["models"] == {name: model.job_spec() for name, model in app.models.items()}
    assert all(spec["description"] == app.models[name].description for name, spec in local["models"].items())
    assert local["environment"]["gate"] == app.environments["dev"].gate.model_dump()


def test_the_hyperparameters_a_model_sets_are_the_local_trainers_flags(tmp_path):
    """GIVEN a model setting hyperparameters WHEN the local run reads the config THEN its trainer gets them as the
    pipeline's training step does (the rest are the trainer's defaults, which are the pipeline's)."""
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    model = next(name for name, body in raw["models"].items() if body.get("framework", "xgboost") == "xgboost")
    raw["models"][model]["hyperparameters"] = {"max_depth": 7, "eta": 0.05}
    local = run_loop.load_config(_write(tmp_path, yaml.safe_dump(raw)), "dev")
    flags = local["hyperparameters"][model]
    assert dict(zip(flags[::2], flags[1::2])) == {"--max-depth": "7", "--eta": "0.05"}
    assert all(flags == [] for name, flags in local["hyperparameters"].items() if name != model)


def test_the_local_run_trains_with_the_configured_seed_not_the_data_seed(tmp_path):
    """GIVEN one model of each framework setting its training seed and the others not WHEN the local run builds their
    trainer flags THEN each trains with the pipeline's seed - its configured one, else none given, so the trainer's
    default, which is the pipeline's too - whatever the data seed (--seed); --training-seed overrides it, last."""
    from pipeline_code.core import hyperparameters

    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    seeded = {}
    for name, body in raw["models"].items():
        framework = body.get("framework", "xgboost")
        if framework not in seeded:
            seeded[framework] = name
            body["hyperparameters"] = {**(body.get("hyperparameters") or {}), "seed": 5}
    local = run_loop.load_config(_write(tmp_path, yaml.safe_dump(raw)), "dev")

    def seed_given(flags: list) -> object:
        given = [value for flag, value in zip(flags[::2], flags[1::2]) if flag == "--seed"]
        return given[-1] if given else None  # the trainer's argparse: the last flag wins

    args = run_loop.build_parser().parse_args(["--seed", "8"])
    assert args.training_seed is None
    for name in local["models"]:
        flags = run_loop.training_args(local, name, training_seed=args.training_seed)
        assert seed_given(flags) == ("5" if name in seeded.values() else None)
        assert seed_given(run_loop.training_args(local, name, training_seed=11)) == "11"
    # No seed given is the trainer's default seed, which is the one the pipeline trains with (it passes none).
    for framework in seeded:
        assert "seed" not in hyperparameters.PIPELINE_DEFAULTS[framework]
        assert hyperparameters.defaults(framework)["seed"] == 0


@pytest.mark.parametrize("value", ["-1", "x"])
def test_a_training_seed_the_trainer_refuses_is_refused_by_the_local_run(value, capsys):
    with pytest.raises(SystemExit):
        run_loop.build_parser().parse_args(["--training-seed", value])
    assert f"argument --training-seed: expected a whole number >= 0, got '{value}'" in capsys.readouterr().err


def test_a_threshold_synth_refuses_is_refused_by_the_local_run_naming_the_field(tmp_path):
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["environments"]["dev"]["gate"] = {"min_auc": 0.3}
    with pytest.raises(ConfigError) as error:
        run_loop.load_config(_write(tmp_path, yaml.safe_dump(raw)), "dev")
    assert "environment 'dev': field 'gate.min_auc': Input should be greater than or equal to 0.5 (got 0.3)" in str(error.value)


def test_a_duplicate_key_is_refused_by_the_local_run(tmp_path):
    text = SAMPLE_CONFIG.read_text().replace("project: mlops-loop\n", "project: mlops-loop\nproject: other\n", 1)
    with pytest.raises(ConfigError, match=r"field 'project': duplicate key at line 6 \(first at line 5\)"):
        run_loop.load_config(_write(tmp_path, text), "dev")


def test_an_unknown_environment_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown environment 'qa'; known: \['dev', 'prod', 'staging'\]"):
        run_loop.load_config(str(SAMPLE_CONFIG), "qa")


def test_the_cli_prints_one_error_and_fails(tmp_path, capsys):
    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["environments"]["dev"]["gate"] = {"min_auc": 0.3}
    assert run_loop.main(["--config", _write(tmp_path, yaml.safe_dump(raw)), "--workdir", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ERROR: invalid configuration in ") and "field 'gate.min_auc'" in err

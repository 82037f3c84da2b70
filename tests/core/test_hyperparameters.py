"""Each framework's hyperparameters: one table for the trainers' flags, the config's check and the pipeline."""

from __future__ import annotations

import argparse

import pytest

from pipeline_code.core import hyperparameters as hp
from pipeline_code.core.frameworks import FRAMEWORKS, PYTORCH, XGBOOST


def test_every_framework_has_a_table_and_its_pipeline_defaults_are_in_it():
    assert set(hp.HYPERPARAMETERS) == set(FRAMEWORKS)
    for framework in FRAMEWORKS:
        assert set(hp.PIPELINE_DEFAULTS[framework]) <= set(hp.of(framework))
        # every default is a valid setting, and reads back as itself from its flag text
        for setting in hp.HYPERPARAMETERS[framework]:
            assert setting.problem(list(setting.default) if setting.kind == "widths" else setting.default) is None
            assert setting.parse(setting.text(setting.default)) == setting.default


def test_the_training_arguments_are_the_pipeline_defaults_with_the_models_settings_over_and_beside_them():
    defaults = dict(hp.training_arguments(PYTORCH, {}))
    assert list(defaults) == list(hp.PIPELINE_DEFAULTS[PYTORCH])
    chosen = dict(hp.training_arguments(PYTORCH, {"epochs": 12, "hidden": [128, 64, 16], "weight_decay": 0.0001}))
    assert chosen == {**defaults, "epochs": "12", "hidden": "128,64,16", "weight_decay": "0.0001"}
    assert dict(hp.training_arguments(XGBOOST, {"min_child_weight": 2.0}))["min_child_weight"] == "2"


@pytest.mark.parametrize("framework, settings, expected", [
    (PYTORCH, {"epoch": 3}, {"epoch": "not a hyperparameter of framework 'pytorch'; allowed: batch_size, dropout, "
                                      "embedding_dim, epochs, hidden, learning_rate, patience, seed, weight_decay"}),
    (PYTORCH, {"epochs": "fifty"}, {"epochs": "expected a whole number >= 1, got 'fifty'"}),
    (PYTORCH, {"epochs": 2.5}, {"epochs": "expected a whole number >= 1, got 2.5"}),
    (PYTORCH, {"epochs": True}, {"epochs": "expected a whole number >= 1, got True"}),
    (PYTORCH, {"dropout": 1.0}, {"dropout": "expected a number in [0, 1), got 1.0"}),
    (PYTORCH, {"hidden": [64, 0]}, {"hidden": "expected a list of layer widths, each a whole number >= 1 (e.g. [64, 32]), "
                                               "got [64, 0]"}),
    (XGBOOST, {"eta": 0}, {"eta": "expected a number in (0, 1], got 0"}),
    (XGBOOST, {"min_child_weight": float("inf")}, {"min_child_weight": "expected a number >= 0, got inf"}),
    # PyYAML reads 1e-05 (no decimal point) as text
    (PYTORCH, {"weight_decay": "1e-05"}, {"weight_decay": "expected a number >= 0, got '1e-05'; YAML read it as text "
                                                          "(1e-05 needs a decimal point there: write 1.0e-5, or 0.00001)"}),
    (XGBOOST, {"max_depth": 0, "subsample": 0.5}, {"max_depth": "expected a whole number >= 1, got 0"}),
])
def test_a_setting_outside_its_hyperparameter_is_named_with_what_it_takes(framework, settings, expected):
    assert hp.problems(framework, settings) == expected


def test_the_flag_types_read_what_sagemaker_passes_and_refuse_the_rest_naming_what_they_take():
    rounds, depth_of_network = hp.of(XGBOOST)["num_round"], hp.of(PYTORCH)["hidden"]
    assert rounds.parse("300.0") == 300 and isinstance(rounds.parse("300.0"), int)
    assert depth_of_network.parse("64,32") == (64, 32)
    with pytest.raises(argparse.ArgumentTypeError, match=r"^expected a whole number >= 1, got '0'$"):
        rounds.parse("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^expected a whole number >= 1, got '2.5'$"):
        rounds.parse("2.5")


def test_only_the_trees_are_tuned_and_their_ranges_lie_inside_their_bounds():
    assert hp.tuned(PYTORCH) == ()
    for setting in hp.tuned(XGBOOST):
        low, high, _ = setting.tuning
        assert setting.problem(setting.default) is None and setting.problem(low) is None and setting.problem(high) is None


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_readmes_table_lists_each_hyperparameter_with_its_default(framework):
    import re

    from tests.support import docs

    row = next(line for line in docs.all_text().splitlines() if line.startswith(f"| `{framework}` | `"))
    listed = dict(re.findall(r"`(\w+)` \(([^;)]+)", row))
    assert set(listed) == set(hp.of(framework))
    for setting in hp.HYPERPARAMETERS[framework]:
        shown = listed[setting.name]
        assert shown == str(list(setting.default)) if setting.kind == "widths" else float(shown) == setting.default, shown

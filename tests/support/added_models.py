"""One synthesis of dev for the two test modules that add models to the frozen sample through configuration alone.

tests/infra/test_add_your_own_model.py adds the walk-through's dataset and model (docs/add-your-own-model.md) and
tests/infra/test_problem_types.py a multiclass and a regression model (tests/support/problem_types.py); each reads, by
name, only the resources its own models add, and that cfn-lint finds nothing in any template. One config holding both
additions is synthesized (and linted: the second module's lint is a cache hit) once instead of twice, each time with
the sample's own dev models besides. Adding models cannot hide a finding another model's resources would raise.
"""

from __future__ import annotations

from mlops_loop.config import AppConfig, parse_config
from tests.support.problem_types import with_problem_types
from tests.support.walkthrough import config_with_walkthrough

# The name of its synth (the ``synthesize_once`` fixture of tests/infra/conftest.py): one per distinct config.
ADDED_MODELS = "added-models"


def added_models_config() -> AppConfig:
    """The frozen sample with the walk-through's dataset and model (in the environments its block lists) and the
    problem-type models (in dev)."""
    return parse_config(with_problem_types(config_with_walkthrough()), source="walk-through and problem-type models")

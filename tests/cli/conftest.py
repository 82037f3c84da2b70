"""The local-loop tests of this folder start from one champion, trained once per test process.

The run_loop, PyTorch and replay tests each used to train the same first model (the same config, data,
seed and rounds) before doing what they test; now one run serves them all, each test on its own copy.
"""

from __future__ import annotations

from typing import Callable

import pytest

from tests.support.local_run import Champion, build_champion


@pytest.fixture(scope="session")
def champion(spark, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Champion]:
    """``champion(model)``: the :class:`Champion` of ``model`` (trained at the first ask, then shared).

    ``spark``: the run's Curate job uses the tests' Spark session, and the tests asking for a champion run on
    the Spark worker (tests/conftest.py)."""
    built: dict[str, Champion] = {}

    def get(model: str) -> Champion:
        if model not in built:
            built[model] = build_champion(tmp_path_factory.mktemp(f"champion-{model}"), model)
        return built[model]

    return get

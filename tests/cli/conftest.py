"""The local-loop tests of this folder start from one champion, trained once per test process.

The run_loop, PyTorch and replay tests each used to train the same first model (the same config, data,
seed and rounds) before doing what they test; now one run serves them all, each test on its own copy.
Their later runs that generate the same raw records (the same dataset, rows, days, seed and drift) curate them once:
:func:`curations`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

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


@pytest.fixture(scope="session")
def curations() -> Dict[Any, Dict[str, str]]:
    """The ``curated`` mapping of ``run_loop.run`` (``run_loop.shared_curation``) shared by this folder's local runs: a
    run whose landed raw records are byte for byte an earlier run's reads that run's curated records and features
    instead of running the Spark curate job and the feature job again on them (the jobs are deterministic in those
    inputs). No test writes into a run's lake/ or features/ (they tamper with registry entries, frozen test sets and
    prepared splits, each in its own copy), so what one test's run curated is what another's would."""
    return {}

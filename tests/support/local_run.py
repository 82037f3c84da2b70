"""A local run whose gate every reasonable model passes, for tests of the loop's mechanics, and the one
champion those tests start from."""

from __future__ import annotations

import contextlib
import copy
import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import yaml

from mlops_cli.local import run_loop
from tests.support.configs import SAMPLE_CONFIG

# Fairness on a ~450-row test set is too noisy to pin, and a challenger trained on drifted data may
# trail the champion on the frozen test set: the mechanics tests need both to register.
LENIENT_GATE = {
    "min_auc": 0.6,
    "challenger_margin": -1.0,
    "max_slice_regression": 1.0,
    "max_demographic_parity_difference": 1.0,
    "min_disparate_impact": 0.0,
}


@contextlib.contextmanager
def lenient_local_run(directory: Path, *, training: Mapping[str, Any] = {}, raw: Optional[Mapping[str, Any]] = None
                      ) -> Iterator[str]:
    """Yield the path of the frozen sample config (or ``raw``; with ``training`` merged into ``dev``) while
    the local run applies :data:`LENIENT_GATE`.

    The gate is lowered after the config is loaded and validated, because the config rightly refuses
    a negative challenger margin; what is under test is the loop, not the gate policy.
    """
    config = copy.deepcopy(dict(raw)) if raw is not None else yaml.safe_load(SAMPLE_CONFIG.read_text())
    config["environments"]["dev"].setdefault("training", {}).update(training)
    path = directory / "mlops-loop.yaml"
    path.write_text(yaml.safe_dump(config))
    load = run_loop.load_config

    def lenient(path: str, environment: str) -> dict:
        loaded = load(path, environment)
        for gate in loaded["gates"].values():  # each model's gate in the environment, which the run applies
            gate.update(LENIENT_GATE)
        return loaded

    with _patched(run_loop, "load_config", lenient):
        yield str(path)


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


# The event window (--days) of the local runs of the loop tests: ten days, not the default ninety. The curate job writes
# one partition per event date (a Spark task's worth of work each), and what these tests check is the loop, not the
# dates; tests/cli/test_run_loop.py checks the window reaches the generator.
DAYS = "10"
# How the champion is trained: generated data, a quick XGBoost model, a fixed seed.
CHAMPION_ARGS = ("--rows", "3000", "--num-round", "30", "--seed", "7", "--days", DAYS)


@dataclass(frozen=True)
class Champion:
    """A local run of the frozen sample config holding one approved version of ``model``: its workdir (copy it
    with :meth:`copy_to` before running anything in it), the run's record and what it printed."""

    workdir: Path
    record: dict
    printed: str

    def copy_to(self, directory: Path) -> Path:
        """A copy of the workdir at ``directory/local-run`` for one test to run on."""
        return Path(shutil.copytree(self.workdir, directory / "local-run"))


def build_champion(directory: Path, model: str) -> Champion:
    """Train ``model`` as the first local run in ``directory`` (:data:`LENIENT_GATE`, dev auto-approves it)."""
    workdir, out = directory / "local-run", io.StringIO()
    with lenient_local_run(directory) as path:
        (record,) = run_loop.run(["--workdir", str(workdir), "--model", model, *CHAMPION_ARGS, "--config", path], out=out)
    return Champion(workdir=workdir, record=record, printed=out.getvalue())


def assert_online_holds(workdir: Path, config: str, features: Path, model: str = "churn") -> None:
    """The local online store of ``workdir`` holds every record identifier of the features parquet at ``features``
    (those of ``model``'s dataset, ``config``'s dev environment)."""
    import pandas as pd

    from mlops_cli.local.online_store import STORE_FILE, LocalOnlineStore, local_feature_group
    from pipeline_code.training.spec import parse_model_spec

    loaded = run_loop.load_config(config, "dev")
    ds = parse_model_spec(loaded["models"][model]).catalog_dataset
    ids = pd.read_parquet(features)[ds.record_identifier].drop_duplicates().tolist()
    got = LocalOnlineStore(str(workdir / STORE_FILE)).batch_get_record(Identifiers=[
        {"FeatureGroupName": local_feature_group(loaded["project"], "dev", ds.name), "RecordIdentifiersValueAsString": ids}])
    assert len(got["Records"]) == len(ids) > 0

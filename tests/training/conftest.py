"""Fixtures for the training-side tests: real generated data, prepared once, trained once.

Everything runs on data from the seeded generator and the real feature interpreter; the
expensive artefacts (prepared splits, a trained model, an evaluation) are session-scoped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

import pandas as pd

from mlops_cli.local.run_loop import load_config
from tests.support.configs import SAMPLE_CONFIG
from pipeline_code.training.spec import GateThresholds, ModelSpec, parse_model_spec
from tests.support.training import train_model, train_torch_model, write_inputs

ROWS = 6000


@pytest.fixture(scope="session")
def config() -> Dict:
    return load_config(str(SAMPLE_CONFIG), "dev")


@pytest.fixture(scope="session")
def churn_spec(config) -> ModelSpec:
    return parse_model_spec(config["models"]["churn"])


@pytest.fixture(scope="session")
def dev_gate(config) -> GateThresholds:
    return GateThresholds.from_mapping(config["environment"]["gate"])


@pytest.fixture(scope="session")
def churn_inputs(tmp_path_factory) -> Dict[str, str]:
    """GIVEN 6000 generated customer_churn records, their features and labels as parquet."""
    return write_inputs(tmp_path_factory.mktemp("churn-inputs"), "customer_churn", ROWS, seed=11)


@pytest.fixture(scope="session")
def prepared(churn_spec, churn_inputs, tmp_path_factory) -> Dict[str, str]:
    """The prepared splits of ``churn_inputs`` (a new frozen test set)."""
    from pipeline_code.training import prepare

    out = tmp_path_factory.mktemp("prepared")
    code = prepare.main(
        [
            "--model-spec", churn_spec.to_json(),
            "--features-dir", churn_inputs["features"],
            "--labels-dir", churn_inputs["labels"],
            "--frozen-test-dir", str(out / "no-frozen-test"),
            "--output-dir", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    return {"root": str(out), **{s: str(out / s) for s in ("train", "validation", "test")}}


@pytest.fixture(scope="session")
def strong_model(churn_spec, prepared, tmp_path_factory) -> str:
    """A 60-round depth-6 model: the realistic candidate."""
    return train_model(churn_spec, prepared, tmp_path_factory.mktemp("models") / "strong")


@pytest.fixture(scope="session")
def weak_model(churn_spec, prepared, tmp_path_factory) -> str:
    """A deliberately weak model (2 stumps): same features, clearly lower AUC."""
    return train_model(
        churn_spec, prepared, tmp_path_factory.mktemp("models") / "weak", "--num-round", "2", "--max-depth", "1", "--eta", "0.05"
    )


@pytest.fixture(scope="session")
def network_model(churn_spec, prepared, tmp_path_factory) -> str:
    """A PyTorch network trained on ``prepared`` on the CPU (``FAST_TORCH_TRAIN``): the one the network's training,
    compilation and sealing tests read (test_train_torch.py, test_compile_neuron.py), trained once."""
    return train_torch_model(churn_spec, prepared, tmp_path_factory.mktemp("torch") / "network")


@pytest.fixture(scope="session")
def two_epoch_network(churn_spec, prepared, tmp_path_factory) -> str:
    """A PyTorch network trained on ``prepared`` for two epochs: the one the artefact and attribution tests read
    (test_network.py copies it before editing, test_explain_network.py loads it), trained once."""
    return train_torch_model(churn_spec, prepared, tmp_path_factory.mktemp("torch-2-epochs") / "net", "--epochs", "2")


@pytest.fixture(scope="session")
def test_frame(prepared) -> pd.DataFrame:
    return pd.read_parquet(Path(prepared["test"]) / "test.parquet")


@pytest.fixture(scope="session")
def later_prepared(churn_spec, prepared, tmp_path_factory) -> Dict:
    """A later run's splits: another generated batch over the same months (distinct record ids by design), prepared
    against ``prepared``'s frozen test set, so its train and validation run through the frozen window."""
    from pipeline_code.training import prepare

    root = tmp_path_factory.mktemp("later")
    inputs = write_inputs(root / "inputs", "customer_churn", ROWS // 2, seed=12)
    summary = prepare.prepare(churn_spec, inputs["features"], inputs["labels"], str(root / "prepared"),
                              frozen_test_dir=prepared["test"], data_origin={"kind": "generated"})
    return {"root": str(root / "prepared"), "summary": summary,
            **{s: str(root / "prepared" / s) for s in ("train", "validation", "test")}}


@pytest.fixture(scope="session")
def later_model(churn_spec, later_prepared, tmp_path_factory) -> str:
    """A model trained on ``later_prepared``: a challenger whose training data reaches the frozen test set's window."""
    return train_model(churn_spec, later_prepared, tmp_path_factory.mktemp("models") / "later")

"""Fixtures: both sample models trained with the project's own prepare/train code on generated data, and a network.

For each model (churn, credit-risk, churn-net: churn's spec trained by train_torch, and churn-inf2: that network
compiled as for ml.inf2 by torch-neuronx's CPU stand-in and served compiled) the session builds, once: generated curated records ->
catalog features (``compute_features``) -> ``prepare`` -> ``train`` (the helpers of
``tests/support/training.py``), then keeps the prepared test split, the curated (raw) rows
behind each test row, and the scores the evaluation code gives those rows.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import pytest
from tests.support import datasets as samples

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before xgboost loads (see pipeline_code.training)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline_code import catalog  # noqa: E402
from pipeline_code.core.compiled import SERVE_COMPILED_ENV  # noqa: E402
from mlops_cli.local.run_loop import load_config  # noqa: E402
from tests.support.configs import SAMPLE_CONFIG  # noqa: E402
from pipeline_code.training import compile_neuron, data_io, evaluate, model_io, neuron, prepare  # noqa: E402
from pipeline_code.training.spec import ModelSpec, parse_model_spec  # noqa: E402
from pipeline_code.training.train import load_model  # noqa: E402
from tests.support.training import COMPILED_SERVING_MODELS, train_model, train_torch_model, write_inputs  # noqa: E402

MODELS = ("churn", "credit-risk", "churn-net", "churn-inf2")
# A network (framework pytorch) on a sample model's data and question: the same contract, executed the same way.
NETWORKS = {"churn-net": "churn", "churn-inf2": "churn"}
# A network compiled as for ml.inf2 (by the CPU stand-in of torch-neuronx) and served as an inf2 endpoint serves it:
# its dense layers run in the traced module, requests padded to the compiled batch.
COMPILED = COMPILED_SERVING_MODELS
ROWS = 2500


@dataclass
class Trained:
    """One trained sample model and the rows to score it on."""

    name: str
    spec: ModelSpec
    dataset: catalog.Dataset
    model_dir: str
    test: pd.DataFrame  # the prepared test split (features as training saw them)
    raw: pd.DataFrame  # the curated record behind each test row, same order, label dropped
    evaluation_scores: np.ndarray  # evaluate.score(...)["_scores"] on ``test``

    def feature_records(self, n: int | None = None, *, with_extras: bool = False) -> List[Dict[str, Any]]:
        columns = list(self.spec.frame_features if with_extras else self.spec.features)
        return frame_records(self.test[columns].iloc[:n])

    def raw_records(self, n: int | None = None) -> List[Dict[str, Any]]:
        return frame_records(self.raw.iloc[:n])


def json_value(value: Any) -> Any:
    """A cell as the JSON value a client would send (missing -> null, timestamps -> ISO-8601)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    return value


def frame_records(frame: pd.DataFrame) -> List[Dict[str, Any]]:
    columns = list(frame.columns)
    return [{c: json_value(v) for c, v in zip(columns, row)} for row in frame.astype(object).itertuples(index=False)]


def _train(name: str, root: Path) -> Trained:
    config = load_config(str(SAMPLE_CONFIG), "dev")
    spec = parse_model_spec({**config["models"][NETWORKS.get(name, name)], "name": name})
    dataset = samples.get_dataset(spec.dataset)
    inputs = write_inputs(root / "inputs", spec.dataset, ROWS, seed=23)
    out = root / "prepared"
    code = prepare.main(
        [
            "--model-spec", spec.to_json(),
            "--features-dir", inputs["features"],
            "--labels-dir", inputs["labels"],
            "--frozen-test-dir", str(out / "no-frozen-test"),
            "--output-dir", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    splits = {s: str(out / s) for s in ("train", "validation", "test")}
    if name in NETWORKS:
        model_dir = train_torch_model(spec, splits, root / "model")
        if name in COMPILED:
            compile_neuron.compile_model(model_dir, str(root / "compiled"), compiler_name=COMPILED[name], log=lambda _: None)
            model_dir = str(root / "compiled" / "model")
            data_io.extract_tar_safely(str(root / "compiled" / "model.tar.gz"), model_dir)
    else:
        model_dir = train_model(spec, splits, root / "model", "--num-round", "25")
    test = pd.read_parquet(Path(splits["test"]) / "test.parquet").reset_index(drop=True)
    curated = pd.read_parquet(Path(inputs["labels"]))
    keys = test[[dataset.record_identifier, "feature_event_time"]].rename(columns={"feature_event_time": dataset.event_time})
    keys[dataset.event_time] = pd.to_datetime(keys[dataset.event_time], utc=True)
    curated[dataset.event_time] = pd.to_datetime(curated[dataset.event_time], utc=True)
    raw = keys.merge(curated, on=[dataset.record_identifier, dataset.event_time], how="left", validate="one_to_one")
    required = [c.name for c in dataset.columns if not c.nullable and c.name not in keys.columns]
    assert len(raw) == len(test) and raw[required].notna().all().all(), "every test row must map to its curated record"
    raw = raw.drop(columns=list(dataset.labels))
    cpu = load_model(model_dir)
    scores = evaluate.score(cpu, test, spec, min_rows=50, min_group_rows=100)["_scores"]
    if name in COMPILED:
        # What the compiled model gives the evaluation's inputs: the contract tests hold serving to it exactly;
        # test_inference holds it to the CPU model's scores within the parity tolerance.
        compiled = neuron.load_compiled(model_dir, cpu.estimator, COMPILED[name])
        scores = compiled.predict(model_io.network_inputs(cpu, test[list(spec.features)]))
    return Trained(name, spec, dataset, model_dir, test, raw, np.asarray(scores))


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> Dict[str, Trained]:
    return {name: _train(name, tmp_path_factory.mktemp(f"serving-{name}")) for name in MODELS}


@pytest.fixture(params=MODELS)
def trained(request, trained_models, monkeypatch) -> Trained:
    if request.param in COMPILED:
        monkeypatch.setenv(SERVE_COMPILED_ENV, COMPILED[request.param])
    return trained_models[request.param]


@pytest.fixture(scope="session")
def problem_models(tmp_path_factory):
    """The multiclass (``plan``) and regression (``spend``) models of ``tests/support/problem_models.py``."""
    from tests.support import problem_models as built

    root = tmp_path_factory.mktemp("serving-problem-types")
    return {name: built.train(name, root) for name in built.MODELS}

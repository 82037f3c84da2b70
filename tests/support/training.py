"""Job inputs and models for the tests: generated records turned into features and labels, and a
quickly trained model (the same job entry points the pipeline runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

from pipeline_code import catalog
from pipeline_code.features.compute import compute_features
from pipeline_code.features.ingestion.pandas_engine import write_features_parquet
from pipeline_code.sample_data.generate import generate
from pipeline_code.training.spec import ModelSpec
from tests.support import datasets as samples


# Depth 6 (the pipeline's default is 5): the fixtures' models are the ones the tests' expectations were set on.
FAST_TRAIN = ["--num-round", "60", "--max-depth", "6", "--early-stopping-rounds", "0", "--checkpoint-interval", "10"]
# The evaluate job's SHAP sample (``--shap-sample-rows``) for the tests that read no attribution of its report (only its
# metrics, gate, registration or card): TreeSHAP is most of an evaluation's CPU, and on 100 rows the leakage check
# still sees each feature's share of the attribution (on the problem-type models the same dominant share, to 1 %).
UNREAD_SHAP_ROWS = 100
# The serving fixtures' network compiled as for ml.inf2 (by torch-neuronx's CPU stand-in), by fixture name.
COMPILED_SERVING_MODELS = {"churn-inf2": "cpu-stand-in"}


def write_inputs(root: Path, dataset: "str | catalog.Dataset", rows: int, seed: int, **generate_kwargs) -> Dict[str, str]:
    """Generated curated-like labels and computed features as parquet directories under ``root``
    (``dataset``: a sample dataset's name or any declared dataset)."""
    if isinstance(dataset, str):
        dataset = samples.get_dataset(dataset)
    curated = generate(dataset, rows, seed=seed, **generate_kwargs)
    features_dir, labels_dir = root / "features", root / "labels"
    write_features_parquet(compute_features(curated, dataset), str(features_dir), dataset)
    labels_dir.mkdir(parents=True, exist_ok=True)
    curated.to_parquet(labels_dir / "part-00000.parquet", index=False)
    return {"features": str(features_dir), "labels": str(labels_dir), "root": str(root)}


def prepare_splits(root: Path, spec: ModelSpec, curated) -> Dict[str, str]:
    """The Prepare job's train / validation / test splits of ``curated`` (records of ``spec``'s dataset, labels
    included) under ``root``: its features computed and written as the feature job does, then Prepare run on them."""
    from pipeline_code.training import prepare

    write_features_parquet(compute_features(curated, spec.catalog_dataset), str(root / "features"), spec.catalog_dataset)
    (root / "labels").mkdir(parents=True)
    curated.to_parquet(root / "labels" / "part-00000.parquet", index=False)
    out = root / "prepared"
    code = prepare.main(["--model-spec", spec.to_json(), "--features-dir", str(root / "features"),
                         "--labels-dir", str(root / "labels"), "--frozen-test-dir", str(root / "frozen"),
                         "--output-dir", str(out)])
    assert code == 0
    return {"root": str(out), **{s: str(out / s) for s in ("train", "validation", "test")}}


def _run_trainer(main, spec: ModelSpec, prepared: Dict[str, str], model_dir: Path, *flags: str) -> str:
    """``model_dir`` after a trainer's entry point ran on ``prepared`` (checkpoints beside it)."""
    code = main(
        [
            "--model-spec", spec.to_json(),
            "--train-dir", prepared["train"],
            "--validation-dir", prepared["validation"],
            "--model-dir", str(model_dir),
            "--checkpoint-dir", str(model_dir.parent / (model_dir.name + "-checkpoints")),
            *flags,
        ]
    )  # fmt: skip
    assert code == 0
    return str(model_dir)


def train_model(spec: ModelSpec, prepared: Dict[str, str], model_dir: Path, *extra: str) -> str:
    """An XGBoost model trained on ``prepared`` by train.py's entry point, with :data:`FAST_TRAIN`."""
    from pipeline_code.training import train

    return _run_trainer(train.main, spec, prepared, model_dir, *FAST_TRAIN, *extra)


# A small network and few epochs: the tests check behaviour, not the best model.
FAST_TORCH_TRAIN = ["--epochs", "8", "--hidden", "32,16", "--patience", "3", "--batch-size", "256"]


def train_torch_model(spec: ModelSpec, prepared: Dict[str, str], model_dir: Path, *extra: str) -> str:
    """A PyTorch network trained on ``prepared`` by train_torch's entry point, on the CPU."""
    from pipeline_code.training import train_torch

    return _run_trainer(train_torch.main, spec, prepared, model_dir, "--device", "cpu", *FAST_TORCH_TRAIN, *extra)

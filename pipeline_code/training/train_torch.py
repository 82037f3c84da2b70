"""PyTorch training of the tabular network (``framework: pytorch``), on CPU or a Trainium (XLA) device.

The same prepared splits, features and catalog as an XGBoost model; the same artefact layout
(``model.json`` + ``feature_metadata.json``, see :mod:`.model_io`). SageMaker runs this in script mode
with the channels under ``/opt/ml/input/data/<channel>`` and each hyperparameter as ``--name value``::

    python3 sagemaker_entry.py pipeline_code.training.train_torch --model-spec '{...}' --epochs 30

**The network** (:mod:`.network`): standardised numerics with missing flags, an embedding per
categorical feature (``min(--embedding-dim, levels // 2 + 1)`` wide), ``--hidden`` ReLU layers with
dropout, and one output per class (multiclass) or one (binary logit, regression value on the
standardised target). Loss: binary cross-entropy on the logit (``class_weight: balanced`` weighs
positives by negatives/positives), cross-entropy, or squared error. Adam with weight decay.

**Early stopping and the kept model.** After every epoch the weights are exported to the portable
network and the validation loss is computed *from that export* with numpy, so the epoch kept (the best
validation loss; ``--patience`` epochs without improvement stop training) is exactly the model that
evaluation, the baseline, the monitor and serving score. The binary decision threshold is chosen on
validation scores, as for XGBoost models.

**Device** (``--device``): ``auto`` takes a Neuron/XLA device when ``torch_xla`` is installed (the
Neuron training image on ``ml.trn1``), else CUDA when present, else the CPU. :class:`Device` is the
one small interface the XLA calls hide behind (``xm.xla_device``, ``xm.optimizer_step``,
``xm.mark_step``); on XLA every training batch has the same shape (the last partial batch is
dropped), because each new shape is a new graph for the Neuron compiler. Neuron's compile cache is
kept in ``<checkpoint dir>/neuron-compile-cache`` (``NEURON_CC_FLAGS=--cache_dir=...``, set before the XLA
device is created; Neuron docs "Neuron Persistent Cache"), which SageMaker syncs to S3 with the checkpoints of a spot job, so a
restarted or retried job does not compile again (a retraining on new data has a new checkpoint prefix
and compiles once).

**Checkpoints** (managed spot training): after every epoch the module, optimiser, the random state of
the CPU and the device, and the early-stopping state are saved to ``--checkpoint-dir`` (two kept). A
restarted job resumes from the newest checkpoint whose fingerprint (hyperparameters + encoding + data
hash) matches and ends where an uninterrupted run would (bit for bit on the CPU, as a test shows).

**Metrics**, regex-friendly as in the XGBoost trainer: per epoch ``[3/30] train-loss=0.41;
validation-loss=0.43;``, at the end the same ``final_<metric>=<value>;`` lines per problem type
(``final_validation_auc`` for binary) and ``final_epochs=<n>;``.

torch is imported by this module only: no other job needs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from pipeline_code.core import hyperparameters, problem
from pipeline_code.training import data_io, metrics as metric_lib, metrics_multiclass
from pipeline_code.training.data_io import InputError
from pipeline_code.training.model_io import (
    CATEGORICAL,
    PYTORCH,
    TrainedModel,
    build_feature_metadata,
    encode,
    save_model,
    training_summary,
    within_target_range,
)
from pipeline_code.training.network import Z_LIMIT, TabularNetwork, inputs_from_encoded
from pipeline_code.training.spec import ModelSpec
from pipeline_code.training.trainers import (  # noqa: F401 - TrainingInterrupted re-exported for the tests' hook
    TrainingInterrupted,
    add_hyperparameter_arguments,
    add_job_arguments,
    checkpoints,
    data_period,
    finish,
    positive_weight,
    prune_checkpoints,
    read_splits,
    record_decision,
    record_tuning_metric,
)

PROG = "python -m pipeline_code.training.train_torch"
CHECKPOINT_PREFIX = "torch-checkpoint-"
NEURON_CACHE_DIR = "neuron-compile-cache"


_DEFAULTS = hyperparameters.defaults(PYTORCH)


@dataclass(frozen=True)
class Hyperparameters:
    """The network's settings; each default is :mod:`pipeline_code.core.hyperparameters`' (the pipeline's)."""

    epochs: int = _DEFAULTS["epochs"]
    batch_size: int = _DEFAULTS["batch_size"]
    learning_rate: float = _DEFAULTS["learning_rate"]
    weight_decay: float = _DEFAULTS["weight_decay"]
    hidden: Tuple[int, ...] = _DEFAULTS["hidden"]
    embedding_dim: int = _DEFAULTS["embedding_dim"]
    dropout: float = _DEFAULTS["dropout"]
    patience: int = _DEFAULTS["patience"]  # 0 disables early stopping
    seed: int = _DEFAULTS["seed"]

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out


class Device:
    """Where the network trains: the CPU as plain torch; :class:`CudaDevice` and :class:`XlaDevice` for accelerators."""

    name = "cpu"
    static_shapes = False

    def __init__(self, device: Optional[torch.device] = None) -> None:
        self.device = device or torch.device("cpu")

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.step()

    def sync(self) -> None:
        """Run what is queued (XLA records lazily); nothing to do on eager devices."""

    def rng_state(self) -> Dict[str, Any]:
        """The random state dropout draws from, for a checkpoint: a resumed run continues it."""
        return {"cpu": torch.get_rng_state()}

    def set_rng_state(self, state: Dict[str, Any]) -> None:
        torch.set_rng_state(state["cpu"])


class CudaDevice(Device):
    name = "cuda"

    def __init__(self) -> None:
        super().__init__(torch.device("cuda"))

    def rng_state(self) -> Dict[str, Any]:
        return {**super().rng_state(), "cuda": torch.cuda.get_rng_state(self.device)}

    def set_rng_state(self, state: Dict[str, Any]) -> None:
        super().set_rng_state(state)
        torch.cuda.set_rng_state(state["cuda"], self.device)


class XlaDevice(Device):
    """torch-neuronx's XLA device (the Neuron training image on ml.trn1). Not executable here: no
    NeuronCores and no torch_xla; :class:`Device` stands in for it in the tests."""

    name = "xla"
    static_shapes = True

    def __init__(self) -> None:
        import torch_xla.core.xla_model as xm  # only in the Neuron image

        self._xm = xm
        super().__init__(xm.xla_device())

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        # barrier=True marks the step here: without a data loader of torch_xla's to do it, each batch's graph
        # would otherwise grow into the next one's until the epoch ends.
        self._xm.optimizer_step(optimizer, barrier=True)

    def sync(self) -> None:
        self._xm.mark_step()

    def rng_state(self) -> Dict[str, Any]:
        return {**super().rng_state(), "xla": int(self._xm.get_rng_state(self.device))}

    def set_rng_state(self, state: Dict[str, Any]) -> None:
        super().set_rng_state(state)
        self._xm.set_rng_state(int(state["xla"]), self.device)


def resolve_device(choice: str) -> Device:
    """``cpu``, ``cuda``, ``xla``, or ``auto`` (xla when torch_xla is installed, else cuda when present, else cpu)."""
    if choice == "auto":
        choice = "xla" if importlib.util.find_spec("torch_xla") else ("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "xla":
        return XlaDevice()
    if choice == "cuda":
        return CudaDevice()
    return Device()


class TorchTabular(nn.Module):
    """The training form of :class:`~pipeline_code.training.network.TabularNetwork` (same operations)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, levels: Sequence[int], hp: Hyperparameters, outputs: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.embeddings = nn.ModuleList(nn.Embedding(n + 1, min(hp.embedding_dim, n // 2 + 1)) for n in levels)
        width = 2 * len(mean) + sum(e.embedding_dim for e in self.embeddings)
        layers: List[nn.Module] = []
        for size in hp.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(hp.dropout)]
            width = size
        layers.append(nn.Linear(width, outputs))
        self.body = nn.Sequential(*layers)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        missing = torch.isnan(numeric)
        z = torch.where(missing, torch.zeros_like(numeric), torch.clamp((numeric - self.mean) / self.std, -Z_LIMIT, Z_LIMIT))
        parts = [z, missing.to(numeric.dtype)] + [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
        return self.body(torch.cat(parts, dim=1))

    def export(self, numeric: Sequence[str], categorical: Sequence[str], problem_type: str, target: Tuple[float, float]) -> TabularNetwork:
        linears = [m for m in self.body if isinstance(m, nn.Linear)]
        as_numpy = lambda t: t.detach().to("cpu").numpy().astype(np.float32).copy()  # noqa: E731
        return TabularNetwork(
            numeric=tuple(numeric),
            categorical=tuple(categorical),
            mean=as_numpy(self.mean),
            std=as_numpy(self.std),
            embeddings=tuple(as_numpy(e.weight) for e in self.embeddings),
            layers=tuple((as_numpy(m.weight), as_numpy(m.bias)) for m in linears),
            problem_type=problem_type,
            target_mean=target[0],
            target_scale=target[1],
        )


def standardisation(numeric: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of the observed values (0 and 1 when a column has none or is constant)."""
    mean = np.zeros(numeric.shape[1], np.float32)
    std = np.ones(numeric.shape[1], np.float32)
    for j in range(numeric.shape[1]):
        column = numeric[:, j][np.isfinite(numeric[:, j])].astype(np.float64)
        if column.size:
            mean[j] = column.mean()
            spread = column.std()
            std[j] = spread if spread > 1e-12 else 1.0
    return mean, std


def validation_loss(spec: ModelSpec, y: np.ndarray, scores: np.ndarray) -> float:
    """What early stopping minimises, from the exported network's scores: log loss, or RMSE for regression."""
    if spec.problem_type == problem.BINARY:
        return metric_lib.log_loss(y, scores)
    if spec.problem_type == problem.MULTICLASS:
        return metrics_multiclass.log_loss(y.astype(np.int64), scores)
    return float(np.sqrt(np.mean((scores - y) ** 2)))


def train(
    spec: ModelSpec,
    train_dir: str,
    validation_dir: str,
    model_dir: str,
    *,
    hyperparameters: Hyperparameters = Hyperparameters(),
    checkpoint_dir: Optional[str] = None,
    device: Optional[Device] = None,
    interrupt_after: Optional[int] = None,
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Train, save ``model.json`` (the network) + ``feature_metadata.json`` to ``model_dir``; return the summary.

    ``interrupt_after`` (tests only) raises :class:`TrainingInterrupted` after that many epochs, after that
    epoch's checkpoint was written - a simulated spot interruption.
    """
    hp = hyperparameters
    if spec.loss != problem.SQUARED_ERROR:
        # The config refuses it too (models.<name>.loss); a hand-written spec gets the same reason.
        raise InputError(f"loss {spec.loss} is XGBoost's: the network trains on squared error only (it predicts the "
                         "standardised target, with no log link for a positive mean); train it with train.py, or "
                         "remove loss from the model spec")
    keep_compile_cache(checkpoint_dir)
    device = device or Device()
    train_frame, validation_frame = read_splits(spec, train_dir, validation_dir)
    metadata = build_feature_metadata(spec, train_frame, framework=PYTORCH, torch_version=torch.__version__)
    numeric_names = [f["name"] for f in metadata["features"] if f["kind"] != CATEGORICAL]
    categorical = [f for f in metadata["features"] if f["kind"] == CATEGORICAL]
    categorical_names = [f["name"] for f in categorical]
    x_train = inputs_from_encoded(numeric_names, categorical_names, encode(train_frame, metadata))
    x_val = inputs_from_encoded(numeric_names, categorical_names, encode(validation_frame, metadata))
    y_train = train_frame[spec.target].to_numpy(dtype=np.float64)
    y_val = validation_frame[spec.target].to_numpy(dtype=np.float64)
    del train_frame, validation_frame

    mean, std = standardisation(x_train.numeric)
    target = (0.0, 1.0)
    if spec.problem_type == problem.REGRESSION:
        spread = float(y_train.std())
        target = (float(y_train.mean()), spread if spread > 1e-12 else 1.0)
    outputs = len(spec.classes) if spec.problem_type == problem.MULTICLASS else 1
    torch.manual_seed(hp.seed)
    module = TorchTabular(mean, std, [len(f["categories"]) for f in categorical], hp, outputs).to(device.device)
    optimizer = torch.optim.Adam(module.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay)
    loss_fn = _loss(spec, y_train, device.device)

    def export() -> TabularNetwork:
        return module.export(numeric_names, categorical_names, spec.problem_type, target)

    fingerprint = _fingerprint(hp, metadata, train_dir, validation_dir)
    state = {"epoch": 0, "best_loss": float("inf"), "best_epoch": -1, "best": None, "stale": 0}
    resumed = latest_checkpoint(checkpoint_dir, fingerprint, log=log)
    if resumed is not None:
        module.load_state_dict(resumed["module"])
        optimizer.load_state_dict(resumed["optimizer"])
        state = {k: resumed[k] for k in state}
        device.set_rng_state(resumed["rng"])  # dropout continues as in an uninterrupted run
        log(f"resuming from checkpoint after epoch {state['epoch']} of {hp.epochs}")

    features_n = torch.from_numpy(x_train.numeric)
    features_c = torch.from_numpy(x_train.categorical)
    labels = torch.from_numpy(_training_target(spec, y_train, target))
    rows = len(labels)
    batch = min(hp.batch_size, rows)
    while state["epoch"] < hp.epochs and not (hp.patience and state["stale"] >= hp.patience):
        epoch = state["epoch"]
        module.train()
        # The order depends on the seed and the epoch only, so a resumed run sees the same batches.
        order = torch.randperm(rows, generator=torch.Generator().manual_seed(hp.seed * 100_003 + epoch))
        stop = rows - rows % batch if device.static_shapes else rows
        # The loss is summed where it is computed and read once per epoch: reading it per batch would make an XLA
        # device run each batch's graph on its own.
        total, seen = torch.zeros((), device=device.device), 0
        for start in range(0, stop, batch):
            index = order[start : start + batch]
            optimizer.zero_grad()
            out = module(features_n[index].to(device.device), features_c[index].to(device.device))
            loss = loss_fn(out, labels[index].to(device.device))
            loss.backward()
            device.step(optimizer)
            total += loss.detach() * len(index)
            seen += len(index)
        device.sync()
        total = float(total.to("cpu"))
        module.eval()
        network = export()
        val = validation_loss(spec, y_val, network.predict(x_val))
        state["epoch"] = epoch + 1
        if np.isfinite(val) and val < state["best_loss"]:
            state.update(best_loss=val, best_epoch=epoch, best=network.to_json(), stale=0)
        else:
            state["stale"] += 1
        log(f"[{epoch + 1}/{hp.epochs}] train-loss={total / max(seen, 1):.6f}; validation-loss={val:.6f};")
        if checkpoint_dir:
            save_checkpoint(checkpoint_dir, {**state, "module": module.state_dict(), "optimizer": optimizer.state_dict(),
                                             "rng": device.rng_state(), "fingerprint": fingerprint})
        if interrupt_after is not None and state["epoch"] >= interrupt_after and state["epoch"] < hp.epochs:
            raise TrainingInterrupted(f"simulated interruption after epoch {state['epoch']}")
    if state["best"] is None:
        raise InputError("training produced no finite validation loss (check the features for extreme values)")
    if hp.patience and state["stale"] >= hp.patience:
        log(f"early stop after epoch {state['epoch']}: best validation loss {state['best_loss']:.6f} at epoch {state['best_epoch'] + 1}")
    network = TabularNetwork.from_json(state["best"])
    metadata["network"] = {"hidden": list(hp.hidden), "embedding_dims": [int(e.shape[1]) for e in network.embeddings],
                           "parameters": network.parameters, "device": device.name}
    model = TrainedModel(estimator=network, metadata=metadata)
    p_val = within_target_range(metadata, network.predict(x_val))
    p_train = within_target_range(metadata, network.predict(x_train))
    summary = training_summary(spec, y_train, y_val, p_train, p_val, epochs_trained=state["epoch"],
                               epochs_kept=state["best_epoch"] + 1, best_epoch=state["best_epoch"])
    record_decision(spec, metadata, summary, y_val, p_val)
    record_tuning_metric(spec, summary, y_val, p_val)
    summary.update({
        "resumed_from_epoch": None if resumed is None else int(resumed["epoch"]),
        "stopped_early": state["epoch"] < hp.epochs,
        "validation_loss": state["best_loss"],
        "class_weight": spec.class_weight,
        "hyperparameters": hp.to_dict(),
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        # The event-time span of the rows learnt from: evaluate checks it against the frozen test set's.
        "data_period": data_period(spec, train_dir, validation_dir),
    })
    metadata["training"] = summary
    save_model(model, model_dir)
    log(" ".join(f"final_{key}={summary[key]:.6f};" for key in summary["final_metrics"]) + f" final_epochs={summary['epochs_kept']};")
    return summary


def keep_compile_cache(checkpoint_dir: Optional[str]) -> None:
    """Name Neuron's persistent compile cache in ``NEURON_CC_FLAGS``: ``<checkpoint_dir>/neuron-compile-cache``, which
    travels with the checkpoints (synced to S3 by SageMaker). An explicit ``--cache_dir`` wins. Called before the XLA
    device is created (:func:`main`), as Neuron's own examples set it before torch_xla starts, and again by
    :func:`train` (a no-op once set)."""
    if checkpoint_dir:
        flags = os.environ.get("NEURON_CC_FLAGS", "")
        if "--cache_dir" not in flags:
            os.environ["NEURON_CC_FLAGS"] = f"{flags} --cache_dir={os.path.join(checkpoint_dir, NEURON_CACHE_DIR)}".strip()


def _loss(spec: ModelSpec, y_train: np.ndarray, device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if spec.problem_type == problem.BINARY:
        weight = None
        if spec.class_weight == "balanced":
            weight = torch.tensor([positive_weight(y_train)], device=device)
        inner = nn.BCEWithLogitsLoss(pos_weight=weight)
        return lambda out, y: inner(out[:, 0], y)
    if spec.problem_type == problem.MULTICLASS:
        return nn.CrossEntropyLoss()
    inner_mse = nn.MSELoss()
    return lambda out, y: inner_mse(out[:, 0], y)


def _training_target(spec: ModelSpec, y: np.ndarray, target: Tuple[float, float]) -> np.ndarray:
    if spec.problem_type == problem.MULTICLASS:
        return y.astype(np.int64)
    if spec.problem_type == problem.REGRESSION:
        return ((y - target[0]) / target[1]).astype(np.float32)
    return y.astype(np.float32)


def save_checkpoint(directory: str, content: Dict[str, Any]) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{CHECKPOINT_PREFIX}{content['epoch']:06d}.pt")
    tmp = path + ".tmp"
    torch.save(content, tmp)
    os.replace(tmp, path)  # a half-written checkpoint is never picked up
    prune_checkpoints(directory, CHECKPOINT_PREFIX, ".pt")
    return path


def latest_checkpoint(directory: Optional[str], fingerprint: str, log: Callable[[str], None] = print) -> Optional[Dict[str, Any]]:
    """The newest loadable checkpoint made by *this* configuration and data, if any."""
    for _epoch, path in checkpoints(directory or "", CHECKPOINT_PREFIX, ".pt"):
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain values only
        except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, the reason logged
            log(f"skipping unreadable checkpoint {path}: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(content, dict) or content.get("fingerprint") != fingerprint:
            log(f"skipping checkpoint {path}: made by another configuration or dataset")
            continue
        return content
    return None


def _fingerprint(hp: Hyperparameters, metadata: Dict[str, Any], train_dir: str, validation_dir: str) -> str:
    content = {
        "hyperparameters": hp.to_dict(),
        "torch": torch.__version__,
        "features": metadata["features"],
        "train": data_io.sha256_files(data_io.list_parquet_files(train_dir)),
        "validation": data_io.sha256_files(data_io.list_parquet_files(validation_dir)),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_job_arguments(parser)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "xla"), default="auto",
                        help="where to train (default auto: xla with torch_xla installed, else cuda when present, else cpu)")
    add_hyperparameter_arguments(parser, PYTORCH)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    hp = Hyperparameters(**{h.name: getattr(args, h.name) for h in hyperparameters.HYPERPARAMETERS[PYTORCH]})
    keep_compile_cache(args.checkpoint_dir)  # before the device: torch_xla's Neuron client starts with it
    try:
        train(args.model_spec, args.train_dir, args.validation_dir, args.model_dir, hyperparameters=hp,
              checkpoint_dir=args.checkpoint_dir, device=resolve_device(args.device), log=lambda line: print(line, flush=True))
    except InputError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finish(args.model_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

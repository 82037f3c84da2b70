"""The tabular network of ``framework: pytorch`` models, in its portable form: weights in JSON, forward in numpy.

PyTorch trains the network (:mod:`.train_torch`, on CPU or a Trainium XLA device); what it writes to
``model.json`` is this module's format, and everything that scores the model afterwards - evaluation
against the champion, the baseline, the drift monitor's rescoring, the serving hooks on a CPU
endpoint - runs this numpy forward pass. So those jobs run in the same stock image as an XGBoost
model's, a PyTorch challenger and an XGBoost champion are scored side by side in one evaluation job,
and no job but training needs torch. The forward pass is the PyTorch module's, operation for
operation, in float32: a test holds the two within 1e-5 on every problem type.

**Inputs** come from the stored feature encoding (:func:`pipeline_code.training.model_io.encode`):

* a numeric feature is standardised with the training mean and standard deviation (and held within
  :data:`Z_LIMIT` of it); a missing value becomes 0 (the mean) and sets the feature's missing flag, so
  missingness can carry signal, as it does in XGBoost's default directions;
* a categorical feature is looked up in its embedding table: row 0 for a missing or unseen level,
  row ``i + 1`` for the ``i``-th stored level.

**Layers**: the standardised numerics, their missing flags and the embeddings, concatenated, go
through ``Linear -> ReLU`` hidden layers and a last ``Linear``. Its output, the *margin*, is one logit
for a binary model (``sigmoid`` gives P(target = 1)), one logit per class for a multiclass model
(``softmax``), and for a regression model the standardised target, which :meth:`TabularNetwork.margin`
scales back to the target's units.

Weights are stored as base64 of little-endian float32 bytes: exact, about a third larger than raw. A record's
score does not depend on the other records scored with it (see :meth:`TabularNetwork.margin`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from pipeline_code.core import problem
from pipeline_code.training.data_io import InputError

FORMAT = "mlops-loop/tabular-network/v1"
# Standardised numbers are held within this many standard deviations of the mean: a record far outside anything
# seen in training (or an infinity) then still gets a finite score instead of a NaN from an overflowing float32.
Z_LIMIT = 1e4
# The numbers whose order every stored tensor follows.
_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class Inputs:
    """A batch in the network's input form: ``numeric`` (rows, numeric features) float32 with NaN for
    missing, ``categorical`` (rows, categorical features) int64 level indices, 0 = missing or unseen."""

    numeric: np.ndarray
    categorical: np.ndarray

    def __len__(self) -> int:
        return int(self.numeric.shape[0])

    def take(self, rows: np.ndarray) -> "Inputs":
        return Inputs(self.numeric[rows], self.categorical[rows])


@dataclass(frozen=True)
class TabularNetwork:
    """A trained network: feature names in input order, standardisation, embeddings and dense layers."""

    numeric: Tuple[str, ...]
    categorical: Tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    embeddings: Tuple[np.ndarray, ...]
    layers: Tuple[Tuple[np.ndarray, np.ndarray], ...]  # (weight (out, in), bias (out,)), as torch.nn.Linear
    problem_type: str
    target_mean: float = 0.0
    target_scale: float = 1.0

    @property
    def outputs(self) -> int:
        """Margins per record: the classes of a multiclass model, else 1."""
        return int(self.layers[-1][1].shape[0])

    @property
    def parameters(self) -> int:
        return int(sum(e.size for e in self.embeddings) + sum(w.size + b.size for w, b in self.layers))

    def margin(self, inputs: Inputs) -> np.ndarray:
        """Logits (binary: (n,), multiclass: (n, K)) or, for regression, the value in the target's units (n,)."""
        return self.head(self.dense(self.dense_input(inputs)))

    def dense_input(self, inputs: Inputs) -> np.ndarray:
        """The first dense layer's input, float32 (n, width): standardised numerics, their missing flags, embeddings.

        Compiled for Inferentia2, only the dense layers run on the NeuronCore (:mod:`.neuron`); this part (NaN
        handling, table look-ups) stays on the host, in this code, for the CPU model and the compiled one alike.
        """
        numeric = inputs.numeric.astype(np.float32, copy=False)
        missing = np.isnan(numeric)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN rows are replaced, infinities clipped just below
            z = np.where(missing, np.float32(0.0), np.clip((numeric - self.mean) / self.std, -Z_LIMIT, Z_LIMIT))
        z = z.astype(np.float32)
        parts = [z, missing.astype(np.float32)]
        for j, table in enumerate(self.embeddings):
            parts.append(table[inputs.categorical[:, j]])
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(inputs), 0), np.float32)

    def dense(self, h: np.ndarray) -> np.ndarray:
        """The dense layers (``Linear -> ReLU`` ..., ``Linear``) on :meth:`dense_input`'s output: (n, outputs)."""
        for i, (weight, bias) in enumerate(self.layers):
            # einsum's own loop, not BLAS: each record's sums run in the same order whatever batch it came in
            # (BLAS kernels change the order with the batch size), so serving, evaluation and the monitor give a
            # record the very same score; on these small layers it is also faster than BLAS.
            h = np.einsum("ij,kj->ik", h, weight, optimize=False) + bias
            if i < len(self.layers) - 1:
                np.maximum(h, np.float32(0.0), out=h)
        return h

    def head(self, out: np.ndarray) -> np.ndarray:
        """The margin from the dense layers' output: as is for multiclass, the one column otherwise (for
        regression scaled back to the target's units)."""
        if self.problem_type == problem.MULTICLASS:
            return out
        column = out[:, 0]
        if self.problem_type == problem.REGRESSION:
            column = column * np.float32(self.target_scale) + np.float32(self.target_mean)
        return column

    def predict(self, inputs: Inputs) -> np.ndarray:
        """float64 scores as :func:`pipeline_code.training.model_io.predict` returns them per problem type."""
        return scores(self.problem_type, self.margin(inputs))

    def to_json(self) -> Dict[str, Any]:
        return {
            "format": FORMAT,
            "problem_type": self.problem_type,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "mean": _tensor(self.mean),
            "std": _tensor(self.std),
            "embeddings": [_tensor(e) for e in self.embeddings],
            "layers": [{"weight": _tensor(w), "bias": _tensor(b)} for w, b in self.layers],
            "target_mean": self.target_mean,
            "target_scale": self.target_scale,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, where: str = "model.json") -> "TabularNetwork":
        """The network a :meth:`to_json` document describes, its shapes checked against each other.

        Raises:
            InputError: another format, a missing or undecodable tensor, shapes that do not chain.
        """
        if not isinstance(doc, Mapping):
            raise InputError(f"{where}: not a tabular network (a JSON {type(doc).__name__}, expected an object with "
                             f"format {FORMAT!r})")
        if doc.get("format") != FORMAT:
            raise InputError(f"{where}: not a tabular network (format {doc.get('format')!r}, expected {FORMAT!r})")
        try:
            numeric = tuple(str(n) for n in doc["numeric"])
            categorical = tuple(str(n) for n in doc["categorical"])
            network = cls(
                numeric=numeric,
                categorical=categorical,
                mean=_array(doc["mean"], "mean"),
                std=_array(doc["std"], "std"),
                embeddings=tuple(_array(e, f"embeddings[{i}]") for i, e in enumerate(doc["embeddings"])),
                layers=tuple((_array(layer["weight"], f"layers[{i}].weight"), _array(layer["bias"], f"layers[{i}].bias"))
                             for i, layer in enumerate(doc["layers"])),
                problem_type=str(doc["problem_type"]),
                target_mean=float(doc.get("target_mean", 0.0)),
                target_scale=float(doc.get("target_scale", 1.0)),
            )
        except KeyError as exc:
            raise InputError(f"{where}: unreadable tabular network (missing key {exc})") from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: unreadable tabular network ({exc})") from None
        problems = network.shape_problems()
        if problems:
            raise InputError(f"{where}: " + "; ".join(problems))
        return network

    def shape_problems(self) -> List[str]:
        """Why the stored tensors cannot form this network (empty when they can)."""
        found = []
        if self.problem_type not in problem.PROBLEM_TYPES:
            found.append(f"problem_type {self.problem_type!r} is not one of {', '.join(problem.PROBLEM_TYPES)}")
        if self.mean.shape != (len(self.numeric),) or self.std.shape != (len(self.numeric),):
            found.append(f"mean/std must hold one number per numeric feature ({len(self.numeric)})")
        elif not (np.isfinite(self.std).all() and (self.std > 0).all() and np.isfinite(self.mean).all()):
            found.append("mean/std must be finite with std > 0")
        if not (np.isfinite(self.target_mean) and np.isfinite(self.target_scale) and self.target_scale > 0):
            found.append(f"target_mean/target_scale must be finite with target_scale > 0, got {self.target_mean} and "
                         f"{self.target_scale}")
        if len(self.embeddings) != len(self.categorical):
            found.append(f"{len(self.embeddings)} embedding tables for {len(self.categorical)} categorical features")
        flat = [i for i, e in enumerate(self.embeddings) if e.ndim != 2]
        if flat:
            found.append(f"embeddings[{flat[0]}] must be a table (levels + 1, width), got shape {self.embeddings[flat[0]].shape}")
            return found
        width = 2 * len(self.numeric) + sum(int(e.shape[1]) for e in self.embeddings)
        if not self.layers:
            found.append("no layers")
        for i, (weight, bias) in enumerate(self.layers):
            if weight.ndim != 2 or bias.shape != (weight.shape[0],) or weight.shape[1] != width:
                found.append(f"layer {i}: weight {weight.shape} and bias {bias.shape} do not take {width} inputs")
                break
            width = int(weight.shape[0])
        if not found and (self.outputs != 1) != (self.problem_type == problem.MULTICLASS):
            found.append(f"a {self.problem_type} network cannot have {self.outputs} output{'s' if self.outputs != 1 else ''}")
        return found


def scores(problem_type: str, margin: np.ndarray) -> np.ndarray:
    """float64 scores from margins: P(target = 1) (binary), class probabilities (multiclass), the value (regression)."""
    m = margin.astype(np.float64)
    if problem_type == problem.BINARY:
        # The logistic function on each sign's side of 0, so that no exp overflows on an extreme record.
        e = np.exp(-np.abs(m))
        return np.where(m >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if problem_type == problem.MULTICLASS:
        shifted = np.exp(m - m.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    return m


def inputs_from_encoded(numeric: Sequence[str], categorical: Sequence[str], encoded: Any) -> Inputs:
    """The network's inputs from :func:`pipeline_code.training.model_io.encode`'s frame (float32 numerics,
    categoricals with the stored levels) for the named columns: level codes shift by one so that 0 is missing
    or unseen."""
    rows = len(encoded)
    numbers = (np.column_stack([encoded[n].to_numpy(dtype=np.float32) for n in numeric])
               if numeric else np.zeros((rows, 0), np.float32))
    levels = (np.column_stack([np.asarray(encoded[n].cat.codes, dtype=np.int64) + 1 for n in categorical])
              if categorical else np.zeros((rows, 0), np.int64))
    return Inputs(numbers.astype(np.float32, copy=False), levels)


def save(network: TabularNetwork, path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(network.to_json(), handle)
    os.replace(tmp, path)


def load(path: str) -> TabularNetwork:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the network ({exc})") from None
    return TabularNetwork.from_json(doc, where=path)


def _tensor(values: np.ndarray) -> Dict[str, Any]:
    array = np.ascontiguousarray(values, dtype=_DTYPE)
    return {"shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode("ascii")}


def _array(doc: Mapping[str, Any], name: str) -> np.ndarray:
    shape: Sequence[int] = [int(s) for s in doc["shape"]]
    try:
        raw = base64.b64decode(doc["data"], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{name}: its data is not base64 ({exc})") from None
    if len(raw) % _DTYPE.itemsize:
        raise ValueError(f"{name}: {len(raw)} bytes are not whole float32 numbers")
    array = np.frombuffer(raw, dtype=_DTYPE)
    if array.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"{name}: a tensor of shape {list(shape)} holds {array.size} numbers")
    return array.reshape(shape).astype(np.float32)

"""The Neuron-only calls of the Inferentia2 lane, behind one small interface, and the network they run.

Only the network's dense layers are compiled (:func:`dense_module`): NaN handling, standardisation and
embedding look-ups stay on the host in :meth:`TabularNetwork.dense_input`, so the NeuronCore gets one dense
float32 matrix of a fixed shape, the form Neuron compiles best (static shapes, matrix multiplications).

Two :class:`Compiler` implementations, chosen by name (``compiled.json`` records which one built an artefact):

* :class:`NeuronCompiler` (``torch-neuronx``): ``torch_neuronx.trace(module, example, compiler_args=[...],
  cpu_backend=True)`` compiles for the ``inf2`` target on a CPU host (the Compile step runs on a CPU
  processing instance in AWS's Neuron inference image); ``--auto-cast none`` keeps float32 matrix
  multiplications, where neuronx-cc would cast them to bfloat16 by default (Neuron docs, "Mixed Precision and
  Performance-accuracy Tuning (neuronx-cc)"), so the parity check can hold the endpoint to the CPU model's
  scores. Loading imports ``torch_neuronx`` first: it registers the operators ``torch.jit.load`` needs. The
  result runs only on a NeuronCore.
* :class:`CpuStandIn` (``cpu-stand-in``): ``torch.jit.trace`` of the same module at the same batch, loaded
  with ``torch.jit.load``. It runs anywhere; the tests and the local run use it for everything around the
  compiler (the artefact, padding to the static batch, the serving hooks, the parity sample). A serving
  container told to serve a Neuron-compiled model refuses a stand-in artefact (:func:`load_compiled`).

torch is imported by the functions that need it: the module itself imports with numpy alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Mapping, Tuple

import numpy as np

from pipeline_code.core.compiled import (
    COMPILED_FILE,
    COMPILED_FORMAT,
    COMPILERS,
    CPU_STAND_IN,
    INF2_TARGET,
    NEURON_COMPILER,
    TRACED_FILE,
)
from pipeline_code.core.integrity import MODEL_ARCHIVE, sha256_file
from pipeline_code.training import data_io
from pipeline_code.training.data_io import InputError
from pipeline_code.training.network import Inputs, TabularNetwork, scores


@contextmanager
def torchscript() -> Iterator[None]:
    """Silence TorchScript's deprecation warnings (torch >= 2.10): torch-neuronx 2.9 compiles to TorchScript, and
    the stand-in must produce the same kind of module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


class CompileError(InputError):
    """The network could not be compiled, or a compiled artefact cannot be served."""


class Compiler:
    """Traces a module at a fixed input shape and loads what it traced."""

    name = ""
    args: Tuple[str, ...] = ()

    def trace(self, module: Any, example: Any) -> Any:
        raise NotImplementedError

    def load(self, path: str) -> Callable[[Any], Any]:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError


class NeuronCompiler(Compiler):
    name = NEURON_COMPILER
    args = ("--target", INF2_TARGET, "--auto-cast", "none")

    def trace(self, module: Any, example: Any) -> Any:  # pragma: no cover - needs torch_neuronx (AWS's Neuron images)
        import torch_neuronx

        return torch_neuronx.trace(module, example, compiler_args=list(self.args), cpu_backend=True)

    def load(self, path: str) -> Callable[[Any], Any]:  # pragma: no cover - needs torch_neuronx and a NeuronCore
        import torch
        import torch_neuronx  # noqa: F401 - registers the Neuron operators the traced module calls

        return torch.jit.load(path)

    def version(self) -> str:  # pragma: no cover - needs torch_neuronx
        from importlib.metadata import version

        return version("torch-neuronx")


class CpuStandIn(Compiler):
    name = CPU_STAND_IN

    def trace(self, module: Any, example: Any) -> Any:
        import torch

        with torchscript():
            return torch.jit.trace(module, example)

    def load(self, path: str) -> Callable[[Any], Any]:
        import torch

        with torchscript():
            return torch.jit.load(path, map_location="cpu")

    def version(self) -> str:
        import torch

        return f"torch.jit {torch.__version__}"


def compiler(name: str) -> Compiler:
    """The compiler called ``name`` (one of :data:`pipeline_code.core.compiled.COMPILERS`)."""
    if name == NEURON_COMPILER:
        return NeuronCompiler()
    if name == CPU_STAND_IN:
        return CpuStandIn()
    raise CompileError(f"unknown compiler {name!r}; known: {', '.join(COMPILERS)}")


def dense_module(network: TabularNetwork) -> Any:
    """The network's dense layers as a ``torch.nn.Sequential`` in eval mode (no dropout), weights copied."""
    import torch
    from torch import nn

    layers: List[nn.Module] = []
    for i, (weight, bias) in enumerate(network.layers):
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
            linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias)))
        layers.append(linear)
        if i < len(network.layers) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def input_width(network: TabularNetwork) -> int:
    return int(network.layers[0][0].shape[1])


class CompiledNetwork:
    """A :class:`TabularNetwork` whose dense layers run in a traced module of ``batch`` rows per call.

    Scores like the network (same host-side inputs, same head, same :func:`scores`); a request of n records is
    padded with zero rows to whole batches and the padding's output dropped.
    """

    def __init__(self, network: TabularNetwork, traced: Callable[[Any], Any], batch: int) -> None:
        self.network = network
        self.traced = traced
        self.batch = batch

    @property
    def numeric(self) -> Tuple[str, ...]:
        return self.network.numeric

    @property
    def categorical(self) -> Tuple[str, ...]:
        return self.network.categorical

    @property
    def problem_type(self) -> str:
        return self.network.problem_type

    @property
    def outputs(self) -> int:
        return self.network.outputs

    def dense(self, h: np.ndarray) -> np.ndarray:
        import torch

        n = h.shape[0]
        padded = -(-n // self.batch) * self.batch
        if padded != n:
            h = np.concatenate([h, np.zeros((padded - n, h.shape[1]), np.float32)])
        parts = []
        with torch.no_grad():
            for start in range(0, padded, self.batch):
                chunk = torch.from_numpy(np.ascontiguousarray(h[start:start + self.batch], dtype=np.float32))
                parts.append(np.asarray(self.traced(chunk).detach().cpu().numpy(), dtype=np.float32))
        return np.concatenate(parts)[:n] if parts else np.zeros((0, self.outputs), np.float32)

    def margin(self, inputs: Inputs) -> np.ndarray:
        return self.network.head(self.dense(self.network.dense_input(inputs)))

    def predict(self, inputs: Inputs) -> np.ndarray:
        return scores(self.problem_type, self.margin(inputs))


def compiled_info(model_dir: str) -> Dict[str, Any]:
    """``compiled.json`` of a model directory, or {} when the model was not compiled."""
    path = os.path.join(model_dir, COMPILED_FILE)
    return data_io.read_json(path, what="compiled model") if os.path.exists(path) else {}


def load_compiled(model_dir: str, network: TabularNetwork, expected_compiler: str) -> CompiledNetwork:
    """The compiled form of ``network`` from ``model_dir`` (``compiled.json`` + the traced module).

    Raises:
        CompileError: no compiled model, one built by another compiler than ``expected_compiler`` (a CPU
            stand-in on an Inferentia2 endpoint), one whose shapes are not the network's, or a traced module whose
            bytes are not those ``compiled.json`` records.
    """
    archive = os.path.join(model_dir, MODEL_ARCHIVE)
    if not os.path.exists(os.path.join(model_dir, COMPILED_FILE)) and os.path.isfile(archive):
        # A directory holding the archive (a local run; SageMaker extracts it to /opt/ml/model first).
        scratch = tempfile.mkdtemp(prefix="mlops-loop-compiled-")
        try:
            data_io.extract_tar_safely(archive, scratch)
            return load_compiled(scratch, network, expected_compiler)  # the module is read into memory
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    info = compiled_info(model_dir)
    if not info:
        raise CompileError(f"the model in {model_dir!r} has no {COMPILED_FILE}: it was not compiled, and this "
                           f"container serves only a model compiled by {expected_compiler}")
    traced = os.path.join(model_dir, TRACED_FILE)
    built_by = _checked(info, network, expected_compiler)
    if not os.path.isfile(traced):
        raise CompileError(f"the model in {model_dir!r} has {COMPILED_FILE} but no {TRACED_FILE}")
    found = sha256_file(traced)
    if found != info.get("traced_sha256"):
        raise CompileError(f"{TRACED_FILE}: sha256 {found}, but {COMPILED_FILE} records {info.get('traced_sha256')!r}: "
                           "the compiled module is not the one the Compile step built")
    return CompiledNetwork(network, compiler(built_by).load(traced), int(info["batch"]))


def _checked(info: Mapping[str, Any], network: TabularNetwork, expected_compiler: str) -> str:
    if info.get("format") != COMPILED_FORMAT:
        raise CompileError(f"{COMPILED_FILE}: unsupported format {info.get('format')!r}, expected {COMPILED_FORMAT!r}")
    built_by = info.get("compiler")
    if built_by != expected_compiler:
        raise CompileError(f"{COMPILED_FILE}: the model was compiled by {built_by!r}, but this container serves "
                           f"models compiled by {expected_compiler!r}")
    shape = (info.get("input_width"), info.get("outputs"))
    if shape != (input_width(network), network.outputs):
        raise CompileError(f"{COMPILED_FILE}: compiled for {shape[0]} inputs and {shape[1]} outputs, but the network "
                           f"has {input_width(network)} and {network.outputs}")
    batch = info.get("batch")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise CompileError(f"{COMPILED_FILE}: batch must be a positive integer, got {batch!r}")
    return str(built_by)

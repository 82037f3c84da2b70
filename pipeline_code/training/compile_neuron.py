"""Compile a trained network for Inferentia2: the pipeline's *Compile* step for models served on ``ml.inf2``.

Reads the training job's ``model.tar.gz`` (``--model-dir``), traces the network's dense layers at a fixed
batch (:mod:`.neuron`) and writes ``<output-dir>/model.tar.gz``: every file of the input archive (the CPU
model, its metadata, the serving code) plus the traced module and ``compiled.json``
(:mod:`pipeline_code.core.compiled`). The evaluation job scores, gates and seals that archive, so the model
package holds the CPU model and the compiled one together.

``--compiler torch-neuronx`` (what the pipeline runs, in AWS's ``pytorch-inference-neuronx`` image on a CPU
processing instance: there are no ml.inf2 processing instances) compiles for the ``inf2`` target; its output
runs only on a NeuronCore, so this job cannot execute it. ``--compiler cpu-stand-in`` traces the same module
with ``torch.jit.trace``; the job then also runs it on random inputs and fails unless it gives the network's
own outputs (within 1e-5), which is how the tests and the local run prove the rest of the lane.

Exit status 0 on success, 1 for an input the job refuses (an XGBoost model, no model, a failed compile),
with the reason on stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from pipeline_code.argtypes import positive_int
from pipeline_code.core.compiled import (
    COMPILED_FILE,
    COMPILED_FORMAT,
    COMPILERS,
    CPU_STAND_IN,
    DEFAULT_BATCH,
    INF2_TARGET,
    NEURON_COMPILER,
    TRACED_FILE,
)
from pipeline_code.core.frameworks import PYTORCH, XGBOOST
from pipeline_code.core.integrity import METADATA_FILE, MODEL_ARCHIVE, MODEL_FILE, sha256_file
from pipeline_code.training import data_io, network as network_lib
from pipeline_code.training.data_io import InputError
from pipeline_code.training.neuron import CompileError, compiler as make_compiler, dense_module, input_width, torchscript

PROG = "compile_neuron"
# The stand-in's traced module must reproduce the numpy layers this closely (float32, other summation order).
STAND_IN_TOLERANCE = 1e-5


def compile_model(model_dir: str, output_dir: str, *, compiler_name: str = NEURON_COMPILER, batch: int = DEFAULT_BATCH,
                  log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Compile the network in ``model_dir`` (a directory or its ``model.tar.gz``) into ``output_dir/model.tar.gz``;
    return what ``compiled.json`` records.

    Raises:
        InputError: no model, not a PyTorch network, or a compile that failed (:class:`CompileError`).
    """
    import torch

    chosen = make_compiler(compiler_name)
    scratch = tempfile.mkdtemp(prefix="mlops-loop-compile-")
    try:
        content = os.path.join(scratch, "model")
        data_io.unpack_model(model_dir, content)
        metadata = data_io.read_json(os.path.join(content, METADATA_FILE), what="feature metadata")
        framework = metadata.get("framework", XGBOOST)
        if framework != PYTORCH:
            raise CompileError(f"the model in {model_dir!r} is a {framework} model: only framework: {PYTORCH} networks "
                               f"are compiled for Inferentia2")
        network = network_lib.load(os.path.join(content, MODEL_FILE))
        module = dense_module(network)
        example = torch.zeros(batch, input_width(network), dtype=torch.float32)
        try:
            traced = chosen.trace(module, example)
        except Exception as exc:  # the compiler's own errors have no common base class
            raise CompileError(f"{chosen.name} could not compile the network of {metadata.get('model')!r} "
                               f"({input_width(network)} inputs, batch {batch}): {type(exc).__name__}: {exc}") from exc
        traced_path = os.path.join(content, TRACED_FILE)
        with torchscript():
            torch.jit.save(traced, traced_path)
        if chosen.name == CPU_STAND_IN:
            _check_stand_in(network, chosen.load(traced_path), batch)
        info = {
            "format": COMPILED_FORMAT,
            "compiler": chosen.name,
            "compiler_version": chosen.version(),
            "compiler_args": list(chosen.args),
            "target": INF2_TARGET,
            "batch": batch,
            "input_width": input_width(network),
            "outputs": network.outputs,
            "torch_version": torch.__version__,
            # Checked when the container loads it: the bytes compiled are the bytes that run.
            "traced_sha256": sha256_file(traced_path),
        }
        data_io.write_json(os.path.join(content, COMPILED_FILE), info)
        data_io.write_archive(content, os.path.join(output_dir, MODEL_ARCHIVE))
        log(f"compiled {metadata.get('model')!r} with {chosen.name} for {INF2_TARGET} at batch {batch}: "
            f"{os.path.join(output_dir, MODEL_ARCHIVE)}")
        return info
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_stand_in(network: network_lib.TabularNetwork, traced: Any, batch: int) -> None:
    import torch

    h = np.random.default_rng(0).normal(size=(batch, input_width(network))).astype(np.float32)
    with torch.no_grad():
        got = traced(torch.from_numpy(h)).numpy()
    gap = float(np.max(np.abs(got - network.dense(h)))) if got.size else 0.0
    if not gap <= STAND_IN_TOLERANCE:
        raise CompileError(f"the traced module differs from the network by {gap:.3g} (> {STAND_IN_TOLERANCE:g})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default="/opt/ml/processing/input/model",
                        help="the trained model: a directory holding model.tar.gz, or model.json + feature_metadata.json")
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir", default="/opt/ml/processing/output/compiled",
                        help="where model.tar.gz (the model plus its compiled form) is written")
    parser.add_argument("--compiler", choices=COMPILERS, default=NEURON_COMPILER,
                        help=f"{NEURON_COMPILER} (default; needs torch_neuronx) or {CPU_STAND_IN} (torch.jit.trace, runs anywhere)")
    parser.add_argument("--batch", type=positive_int, default=DEFAULT_BATCH,
                        help=f"rows per call of the compiled model (default {DEFAULT_BATCH}); requests are padded to it")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        compile_model(args.model_dir, args.output_dir, compiler_name=args.compiler, batch=args.batch,
                      log=lambda line: print(line, flush=True))
    except InputError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

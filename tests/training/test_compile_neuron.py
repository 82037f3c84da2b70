"""compile_neuron and neuron: a network compiled for Inferentia2 (here with the CPU stand-in) carries both forms,
scores as the CPU model does at any request size, and refuses what it cannot serve.

What cannot run here: torch_neuronx's compiler and a NeuronCore. The Neuron calls are the two methods of
NeuronCompiler; the test below checks the arguments they are made with against a recording stand-in module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# The session's networks (network_model, two_epoch_network: tests/training/conftest.py) are trained by the worker
# that runs these modules (one xdist group), once per run instead of once on each pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("torch")

from pipeline_code.core import problem  # noqa: E402
from pipeline_code.core.compiled import COMPILED_FILE, COMPILED_FORMAT, CPU_STAND_IN, NEURON_COMPILER, TRACED_FILE  # noqa: E402
from pipeline_code.training import compile_neuron, model_io, neuron  # noqa: E402
from pipeline_code.training.network import Inputs, TabularNetwork  # noqa: E402


@pytest.fixture(scope="module")
def compiled_dir(network_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compiled")
    compile_neuron.compile_model(network_model, str(out), compiler_name=CPU_STAND_IN, batch=8, log=lambda _: None)
    unpacked = out / "unpacked"
    with tarfile.open(out / "model.tar.gz") as archive:
        archive.extractall(unpacked, filter="data")
    return unpacked


def _network(problem_type: str, outputs: int, seed: int = 0) -> TabularNetwork:
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    width = 2 * 2 + 2
    return TabularNetwork(numeric=("a", "b"), categorical=("c",), mean=f32(2), std=np.abs(f32(2)) + 0.5,
                          embeddings=(f32(4, 2),), layers=((f32(5, width), f32(5)), (f32(outputs, 5), f32(outputs))),
                          problem_type=problem_type, target_mean=3.0, target_scale=2.0)


def _inputs(rows: int, seed: int = 1) -> Inputs:
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, 2)).astype(np.float32)
    numeric[::5, 0] = np.nan
    return Inputs(numeric, rng.integers(0, 4, size=(rows, 1)))


def test_given_a_trained_network_when_compiled_then_the_archive_holds_the_cpu_model_the_traced_module_and_how_it_was_built(compiled_dir, network_model):
    for name in ("model.json", "feature_metadata.json", TRACED_FILE, COMPILED_FILE, "code/serve_entry.py"):
        assert (compiled_dir / name).is_file(), name
    assert (compiled_dir / "model.json").read_bytes() == (Path(network_model) / "model.json").read_bytes()
    info = json.loads((compiled_dir / COMPILED_FILE).read_text())
    network = model_io.load_model(str(compiled_dir)).estimator
    assert info["format"] == COMPILED_FORMAT and info["compiler"] == CPU_STAND_IN and info["target"] == "inf2"
    assert (info["batch"], info["input_width"], info["outputs"]) == (8, neuron.input_width(network), 1)
    assert info["traced_sha256"] == hashlib.sha256((compiled_dir / TRACED_FILE).read_bytes()).hexdigest()


def test_a_traced_module_other_than_the_one_compiled_is_refused(compiled_dir, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(compiled_dir, changed)
    with open(changed / TRACED_FILE, "ab") as handle:
        handle.write(b"\0")
    network = model_io.load_model(str(changed)).estimator
    with pytest.raises(neuron.CompileError) as error:
        neuron.load_compiled(str(changed), network, CPU_STAND_IN)
    found = hashlib.sha256((changed / TRACED_FILE).read_bytes()).hexdigest()
    recorded = json.loads((changed / COMPILED_FILE).read_text())["traced_sha256"]
    assert str(error.value) == (f"model_neuron.pt: sha256 {found}, but compiled.json records {recorded!r}: the compiled "
                                "module is not the one the Compile step built")


@pytest.mark.parametrize("rows", [1, 7, 8, 9, 50])
def test_the_compiled_model_scores_the_test_set_as_the_cpu_model_does_at_every_request_size(compiled_dir, test_frame, rows):
    cpu = model_io.load_model(str(compiled_dir))
    compiled = neuron.load_compiled(str(compiled_dir), cpu.estimator, CPU_STAND_IN)
    frame = test_frame.head(rows)
    inputs = model_io.network_inputs(cpu, frame)
    np.testing.assert_allclose(compiled.predict(inputs), cpu.estimator.predict(inputs), atol=1e-6, rtol=0)
    assert compiled.predict(inputs).shape == (rows,)


@pytest.mark.parametrize("problem_type,outputs", [(problem.BINARY, 1), (problem.MULTICLASS, 3), (problem.REGRESSION, 1)])
def test_every_problem_type_keeps_its_head_on_the_host(problem_type, outputs, tmp_path):
    network = _network(problem_type, outputs)
    module = neuron.dense_module(network)
    traced = neuron.CpuStandIn().trace(module, torch.zeros(4, neuron.input_width(network)))
    compiled = neuron.CompiledNetwork(network, traced, batch=4)
    inputs = _inputs(11)
    np.testing.assert_allclose(compiled.predict(inputs), network.predict(inputs), atol=1e-5, rtol=1e-6)


def test_an_xgboost_model_is_refused_naming_the_framework(strong_model, tmp_path):
    trees = strong_model  # the session's XGBoost model of churn (tests/training/conftest.py); compiling only reads it
    with pytest.raises(neuron.CompileError) as error:
        compile_neuron.compile_model(trees, str(tmp_path / "out"), compiler_name=CPU_STAND_IN)
    assert str(error.value) == (f"the model in {trees!r} is a xgboost model: only framework: pytorch networks are "
                                "compiled for Inferentia2")
    assert compile_neuron.main(["--model-dir", trees, "--output-dir", str(tmp_path / "out"), "--compiler", CPU_STAND_IN]) == 1


def test_a_compiler_failure_is_an_input_error_naming_the_compiler_and_shapes(network_model, tmp_path, monkeypatch):
    class Failing(neuron.CpuStandIn):
        def trace(self, module, example):
            raise RuntimeError("NCC_EVRF009: unsupported operator")

    monkeypatch.setattr(compile_neuron, "make_compiler", lambda name: Failing())
    network = model_io.load_model(network_model).estimator
    with pytest.raises(neuron.CompileError) as error:
        compile_neuron.compile_model(network_model, str(tmp_path / "out"), batch=4)
    assert str(error.value) == (f"cpu-stand-in could not compile the network of 'churn' ({neuron.input_width(network)} inputs, "
                                "batch 4): RuntimeError: NCC_EVRF009: unsupported operator")
    assert not (tmp_path / "out" / "model.tar.gz").exists()


def test_the_neuron_compiler_compiles_for_inf2_in_fp32_on_the_cpu_host(monkeypatch):
    calls = []
    fake = types.ModuleType("torch_neuronx")
    fake.trace = lambda module, example, **kwargs: calls.append((module, example, kwargs)) or "traced"
    monkeypatch.setitem(sys.modules, "torch_neuronx", fake)
    module, example = object(), object()
    assert neuron.NeuronCompiler().trace(module, example) == "traced"
    assert calls == [(module, example, {"compiler_args": ["--target", "inf2", "--auto-cast", "none"], "cpu_backend": True})]


def test_a_container_serving_neuron_models_refuses_a_stand_in_artefact(compiled_dir):
    network = model_io.load_model(str(compiled_dir)).estimator
    with pytest.raises(neuron.CompileError) as error:
        neuron.load_compiled(str(compiled_dir), network, NEURON_COMPILER)
    assert str(error.value) == ("compiled.json: the model was compiled by 'cpu-stand-in', but this container serves models "
                                "compiled by 'torch-neuronx'")


def test_an_uncompiled_model_or_other_shapes_are_refused(network_model, compiled_dir, tmp_path):
    network = model_io.load_model(network_model).estimator
    with pytest.raises(neuron.CompileError, match="has no compiled.json: it was not compiled"):
        neuron.load_compiled(network_model, network, CPU_STAND_IN)
    other = _network(problem.BINARY, 1)
    with pytest.raises(neuron.CompileError) as error:
        neuron.load_compiled(str(compiled_dir), other, CPU_STAND_IN)
    assert str(error.value) == (f"compiled.json: compiled for {neuron.input_width(network)} inputs and 1 outputs, but the "
                                "network has 6 and 1")


def test_given_a_compiled_challenger_when_evaluated_and_sealed_then_the_artefact_carries_the_cpu_models_parity_answers(
        network_model, churn_spec, dev_gate, prepared, tmp_path, monkeypatch):
    """GIVEN the Compile step's archive WHEN evaluate gates and seals it THEN the sealed archive holds parity.json (the
    first test records as one request, the CPU model's answers through the serving code), the report records the same
    answers, and the compiled model served as on ml.inf2 answers that request within the tolerance."""
    from pipeline_code.core.compiled import PARITY_FILE, PARITY_RECORDS, SERVE_COMPILED_ENV, parity_mismatches
    from pipeline_code.serving import inference
    from pipeline_code.training import evaluate

    mounted = tmp_path / "mounted"
    compile_neuron.compile_model(network_model, str(mounted), compiler_name=CPU_STAND_IN, log=lambda _: None)
    location = tmp_path / "registered"
    code = evaluate.main(["--model-spec", churn_spec.to_json(), "--model-dir", str(mounted), "--test-dir", prepared["test"],
                          "--output-dir", str(tmp_path / "out"), "--seal-uri", f"{location}/", *dev_gate.to_args()])
    assert code == 0
    report = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert report["gate"]["passed"] is True
    sealed = Path(report["artifact"]["uri"])
    content = tmp_path / "sealed"
    with tarfile.open(sealed) as archive:
        archive.extractall(content, filter="data")
    parity = json.loads((content / PARITY_FILE).read_text())
    assert len(parity["request"]["instances"]) == PARITY_RECORDS == report["parity"]["test_rows"]
    assert parity["expected"] == report["parity"]["expected"]
    assert parity["request"]["instances"][0]["inference_id"] == "mlops-loop-parity-0"
    cpu = inference.load_serving_model(str(content))
    body, _ = inference.invoke(cpu, json.dumps(parity["request"]), content_type=inference.JSON)
    assert json.loads(body)["predictions"] == parity["expected"]
    monkeypatch.setenv(SERVE_COMPILED_ENV, CPU_STAND_IN)
    compiled = inference.load_serving_model(str(content))
    body, _ = inference.invoke(compiled, json.dumps(parity["request"]), content_type=inference.JSON)
    assert parity_mismatches(parity["expected"], json.loads(body)["predictions"], parity["tolerance"]) == []


def test_an_uncompiled_model_is_sealed_without_a_parity_sample(network_model, churn_spec, dev_gate, prepared, tmp_path):
    from pipeline_code.training import evaluate

    code = evaluate.main(["--model-spec", churn_spec.to_json(), "--model-dir", network_model, "--test-dir", prepared["test"],
                          "--output-dir", str(tmp_path / "out"), *dev_gate.to_args()])
    assert code == 0
    assert "parity" not in json.loads((tmp_path / "out" / "evaluation.json").read_text())


def test_the_compile_job_and_the_serving_hooks_import_without_pyarrow_pandas_or_xgboost_for_the_neuron_image():
    """AWS's Neuron inference image has torch, numpy and pandas 1.x but no pyarrow or xgboost: the Compile job must import
    with none of the three, the serving hooks without pyarrow and xgboost (they read no parquet)."""
    import subprocess

    blocker = ("import sys\n"
               "class Block:\n"
               "    def __init__(self, names): self.names = names\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name.split('.')[0] in self.names: raise ImportError('blocked ' + name)\n")
    for names, module in ((("pyarrow", "pandas", "xgboost"), "pipeline_code.training.compile_neuron"),
                          (("pyarrow", "xgboost"), "pipeline_code.serving.inference")):
        code = blocker + f"sys.meta_path.insert(0, Block({names!r}))\nimport {module}\n"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
        assert result.returncode == 0, result.stderr[-2000:]

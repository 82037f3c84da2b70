"""network: the portable form of a PyTorch model - its JSON round trip, its forward pass against the torch module
it was exported from, its scores per problem type, and the documents and artefacts it refuses, with the reasons."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import special

torch = pytest.importorskip("torch")
# The session's networks (network_model, two_epoch_network: tests/training/conftest.py) are trained by the worker
# that runs these modules (one xdist group), once per run instead of once on each pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("torch")

from pipeline_code.core import problem  # noqa: E402
from pipeline_code.core.integrity import METADATA_FILE, MODEL_FILE  # noqa: E402
from pipeline_code.training import model_io, network, train_torch  # noqa: E402
from pipeline_code.training.data_io import InputError  # noqa: E402

NUMERIC = ("tenure", "charges", "calls")
CATEGORICAL = ("contract", "region")
LEVELS = (3, 5)  # stored levels per categorical feature; the embedding has one row more (row 0: missing/unseen)
OUTPUTS = {problem.BINARY: 1, problem.MULTICLASS: 3, problem.REGRESSION: 1}


def _f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def make_network(problem_type: str, *, seed: int = 0, target_mean: float = 0.0, target_scale: float = 1.0) -> network.TabularNetwork:
    """Random weights for 3 numeric and 2 categorical features, a hidden layer of 6, the outputs of the problem type."""
    rng = np.random.default_rng(seed)
    embeddings = tuple(_f32(rng.normal(size=(n + 1, 2))) for n in LEVELS)
    width = 2 * len(NUMERIC) + sum(e.shape[1] for e in embeddings)
    outputs = OUTPUTS[problem_type]
    return network.TabularNetwork(
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        mean=_f32([12.0, 70.0, 1.5]),
        std=_f32([9.0, 25.0, 1.2]),
        embeddings=embeddings,
        layers=((_f32(rng.normal(size=(6, width))), _f32(rng.normal(size=6))),
                (_f32(rng.normal(size=(outputs, 6))), _f32(rng.normal(size=outputs)))),
        problem_type=problem_type,
        target_mean=target_mean,
        target_scale=target_scale,
    )


def make_inputs(rows: int = 40, *, seed: int = 1) -> network.Inputs:
    """Numbers around the standardisation with about a fifth missing; level indices 0 (missing) .. n, each present."""
    rng = np.random.default_rng(seed)
    numeric = _f32(rng.normal(loc=[12.0, 70.0, 1.5], scale=[9.0, 25.0, 1.2], size=(rows, len(NUMERIC))))
    numeric[rng.random(numeric.shape) < 0.2] = np.nan
    numeric[0, :] = np.nan  # a row with every number missing
    categorical = np.stack([np.arange(rows) % (n + 1) for n in LEVELS], axis=1).astype(np.int64)
    return network.Inputs(numeric, categorical)


def test_the_inputs_used_here_hold_missing_numbers_and_missing_categories():
    x = make_inputs()
    assert np.isnan(x.numeric).any() and (~np.isnan(x.numeric)).any()
    assert (x.categorical == 0).any(axis=0).all(), "index 0 (missing/unseen) in every categorical column"
    assert x.numeric.dtype == np.float32 and x.categorical.dtype == np.int64


@pytest.mark.parametrize(
    "problem_type, target",
    [(problem.BINARY, (0.0, 1.0)), (problem.MULTICLASS, (0.0, 1.0)), (problem.REGRESSION, (1234.5, 87.25))],
)
def test_given_a_network_when_its_json_text_is_read_back_then_it_scores_identically(problem_type, target):
    original = make_network(problem_type, target_mean=target[0], target_scale=target[1])
    x = make_inputs()

    text = json.dumps(original.to_json())  # what lands in model.json: plain JSON
    restored = network.TabularNetwork.from_json(json.loads(text))

    assert np.array_equal(restored.margin(x), original.margin(x)), "float32 weights are stored bit for bit"
    assert restored.margin(x).shape == ((40, 3) if problem_type == problem.MULTICLASS else (40,))
    assert (restored.numeric, restored.categorical, restored.problem_type) == (NUMERIC, CATEGORICAL, problem_type)
    assert (restored.target_mean, restored.target_scale) == target
    assert restored.outputs == OUTPUTS[problem_type] and restored.parameters == original.parameters


def test_given_a_saved_network_when_loaded_from_the_file_then_it_scores_identically(tmp_path):
    original = make_network(problem.REGRESSION, target_mean=-3.5, target_scale=0.125)
    path = str(tmp_path / "model.json")

    network.save(original, path)
    restored = network.load(path)

    assert json.loads(Path(path).read_text())["format"] == "mlops-loop/tabular-network/v1"
    assert not Path(path + ".tmp").exists(), "the temporary file is renamed into place"
    assert np.array_equal(restored.margin(make_inputs()), original.margin(make_inputs()))


def test_the_regression_target_scale_survives_the_round_trip_and_is_applied():
    """A restored network that dropped target_mean/target_scale would score in standardised units."""
    scaled = network.TabularNetwork.from_json(make_network(problem.REGRESSION, target_mean=500.0, target_scale=40.0).to_json())
    unscaled = make_network(problem.REGRESSION)
    x = make_inputs()
    assert np.array_equal(scaled.margin(x), unscaled.margin(x) * np.float32(40.0) + np.float32(500.0))


def _torch_module(outputs: int, numeric: np.ndarray) -> "train_torch.TorchTabular":
    mean, std = train_torch.standardisation(numeric)
    torch.manual_seed(7)
    hp = train_torch.Hyperparameters(hidden=(16, 8), embedding_dim=4, dropout=0.5)  # eval(): dropout must be off
    module = train_torch.TorchTabular(mean, std, list(LEVELS), hp, outputs).eval()
    with torch.no_grad():  # weights larger than torch's initialisation: margins of a few units, rows far apart
        for parameter in module.parameters():
            torch.nn.init.normal_(parameter, std=0.7)
    return module


def _torch_forward(module, x: network.Inputs) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x.numeric), torch.from_numpy(x.categorical)).numpy()


def test_given_a_multiclass_torch_module_when_exported_then_the_numpy_margins_are_its_outputs():
    x = make_inputs(200)
    module = _torch_module(3, x.numeric)
    expected = _torch_forward(module, x)

    exported = module.export(NUMERIC, CATEGORICAL, problem.MULTICLASS, (0.0, 1.0))

    assert exported.outputs == 3 and [e.shape[1] for e in exported.embeddings] == [2, 3]  # min(4, n // 2 + 1)
    np.testing.assert_allclose(exported.margin(x), expected, rtol=1e-5, atol=1e-5)
    assert len(np.unique(expected.argmax(axis=1))) > 1, "random weights that favour more than one class"


def test_given_a_regression_torch_module_when_exported_then_the_margin_is_its_output_in_target_units():
    x = make_inputs(200)
    module = _torch_module(1, x.numeric)
    standardised = _torch_forward(module, x)[:, 0]
    target_mean, target_scale = 1500.0, 320.0

    exported = module.export(NUMERIC, CATEGORICAL, problem.REGRESSION, (target_mean, target_scale))
    margin = exported.margin(x)

    # The module predicts the standardised target; the network's margin is in the target's units.
    np.testing.assert_allclose((margin - target_mean) / target_scale, standardised, rtol=1e-5, atol=1e-5)
    unscaled = dataclasses.replace(exported, target_mean=0.0, target_scale=1.0).margin(x)
    np.testing.assert_allclose(unscaled, standardised, rtol=1e-5, atol=1e-5)
    assert np.array_equal(margin, unscaled * np.float32(target_scale) + np.float32(target_mean))


def test_the_torch_module_and_the_network_agree_on_a_missing_number_and_a_missing_category():
    """Rows that differ only in a missing value: the missing flag and embedding row 0 move both scores alike."""
    x = make_inputs(4)
    x.numeric[:] = _f32([10.0, 60.0, 2.0])
    x.categorical[:] = [1, 2]
    x.numeric[1, 0] = np.nan
    x.categorical[2, 1] = 0
    x.numeric[3, :] = np.nan
    x.categorical[3, :] = 0
    module = _torch_module(3, make_inputs(200).numeric)
    expected = _torch_forward(module, x)
    margin = module.export(NUMERIC, CATEGORICAL, problem.MULTICLASS, (0.0, 1.0)).margin(x)
    np.testing.assert_allclose(margin, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(margin[1], margin[0]) and not np.allclose(margin[2], margin[0])


def test_a_binary_network_predicts_the_sigmoid_of_its_margin_in_float64():
    net, x = make_network(problem.BINARY), make_inputs()
    p = net.predict(x)
    assert p.dtype == np.float64 and p.shape == (40,)
    np.testing.assert_allclose(p, special.expit(net.margin(x).astype(np.float64)), rtol=1e-12)
    assert ((p > 0) & (p < 1)).all()


def test_a_multiclass_network_predicts_the_softmax_of_its_margins_in_float64():
    net, x = make_network(problem.MULTICLASS), make_inputs()
    p = net.predict(x)
    assert p.dtype == np.float64 and p.shape == (40, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p, special.softmax(net.margin(x).astype(np.float64), axis=1), rtol=1e-12)


def test_a_multiclass_network_does_not_overflow_on_large_margins():
    net = make_network(problem.MULTICLASS)
    big = dataclasses.replace(net, layers=(net.layers[0], (net.layers[1][0] * np.float32(400.0), net.layers[1][1])))
    p = big.predict(make_inputs())
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_a_regression_network_predicts_its_margin_in_float64():
    net, x = make_network(problem.REGRESSION, target_mean=10.0, target_scale=3.0), make_inputs()
    p = net.predict(x)
    assert p.dtype == np.float64 and p.shape == (40,)
    assert np.array_equal(p, net.margin(x).astype(np.float64))


def _doc(**changes):
    """A binary network's document (one output, 10 inputs to the first layer) with ``changes``."""
    doc = make_network(problem.BINARY).to_json()
    doc.update(changes)
    return doc


def _with_layer(index: int, weight: np.ndarray, bias: np.ndarray):
    doc = _doc()
    doc["layers"][index] = {"weight": network._tensor(weight), "bias": network._tensor(bias)}
    return doc


def _short_mean():
    doc = _doc()
    doc["mean"] = {"shape": [3], "data": network._tensor(_f32([1.0, 2.0]))["data"]}  # 8 bytes for 3 numbers
    return doc


def _binary_with_two_outputs():
    doc = _doc()
    doc["layers"][1] = {"weight": network._tensor(np.ones((2, 6), np.float32)), "bias": network._tensor(np.zeros(2, np.float32))}
    return doc


@pytest.mark.parametrize(
    "doc, message",
    [
        pytest.param({"format": "x"}, "model.json: not a tabular network (format 'x', expected 'mlops-loop/tabular-network/v1')",
                     id="another-format"),
        pytest.param({"numeric": []}, "model.json: not a tabular network (format None, expected 'mlops-loop/tabular-network/v1')",
                     id="no-format"),
        pytest.param(_short_mean(), "model.json: unreadable tabular network (mean: a tensor of shape [3] holds 2 numbers)",
                     id="bytes-do-not-fill-the-shape"),
        pytest.param(_with_layer(0, np.ones((6, 9), np.float32), np.zeros(6, np.float32)),
                     "model.json: layer 0: weight (6, 9) and bias (6,) do not take 10 inputs", id="first-layer-width"),
        pytest.param(_with_layer(1, np.ones((1, 5), np.float32), np.zeros(1, np.float32)),
                     "model.json: layer 1: weight (1, 5) and bias (1,) do not take 6 inputs", id="hidden-layer-width"),
        pytest.param(_with_layer(0, np.ones((6, 10), np.float32), np.zeros(5, np.float32)),
                     "model.json: layer 0: weight (6, 10) and bias (5,) do not take 10 inputs", id="bias-length"),
        pytest.param(_doc(std=network._tensor(_f32([9.0, 0.0, 1.2]))), "model.json: mean/std must be finite with std > 0",
                     id="std-zero"),
        pytest.param(_doc(mean=network._tensor(_f32([12.0, 70.0]))),
                     "model.json: mean/std must hold one number per numeric feature (3)", id="mean-length"),
        pytest.param(_doc(problem_type=problem.MULTICLASS),
                     "model.json: a multiclass_classification network cannot have 1 output", id="multiclass-one-output"),
        pytest.param(_binary_with_two_outputs(), "model.json: a binary_classification network cannot have 2 outputs",
                     id="binary-two-outputs"),
        pytest.param(_doc(problem_type="ranking"),
                     "model.json: problem_type 'ranking' is not one of binary_classification, multiclass_classification, regression",
                     id="unknown-problem-type"),
        pytest.param(_doc(layers=[]), "model.json: no layers", id="no-layers"),
        pytest.param({k: v for k, v in _doc().items() if k != "std"}, "model.json: unreadable tabular network (missing key 'std')",
                     id="missing-tensor"),
        pytest.param(_doc(target_scale=0.0), "model.json: target_mean/target_scale must be finite with target_scale > 0, got "
                     "0.0 and 0.0", id="zero-target-scale"),
        pytest.param(_doc(target_mean=float("nan")), "model.json: target_mean/target_scale must be finite with target_scale > 0, "
                     "got nan and 1.0", id="nan-target-mean"),
        pytest.param(_doc(mean={"shape": [2], "data": "!!"}), "model.json: unreadable tabular network (mean: its data is not "
                     "base64 (Only base64 data is allowed))", id="bad-base64"),
        pytest.param(_doc(mean={"shape": [1], "data": "AAA="}), "model.json: unreadable tabular network (mean: 2 bytes are not "
                     "whole float32 numbers)", id="partial-number"),
    ],
)
def test_a_document_that_cannot_form_a_network_is_refused_with_the_reason(doc, message):
    with pytest.raises(InputError) as refused:
        network.TabularNetwork.from_json(doc)
    assert str(refused.value) == message


def test_a_json_value_that_is_not_an_object_is_named_as_such():
    with pytest.raises(InputError) as refused:
        network.TabularNetwork.from_json([1])
    assert str(refused.value) == ("model.json: not a tabular network (a JSON list, expected an object with format "
                                  "'mlops-loop/tabular-network/v1')")


def test_an_embedding_that_is_not_a_table_is_named():
    doc = _doc()
    doc["embeddings"][0] = network._tensor(np.zeros(4, np.float32))
    with pytest.raises(InputError) as refused:
        network.TabularNetwork.from_json(doc)
    assert str(refused.value) == "model.json: embeddings[0] must be a table (levels + 1, width), got shape (4,)"


def test_the_refusal_names_where_the_document_came_from():
    with pytest.raises(InputError) as refused:
        network.TabularNetwork.from_json(_doc(layers=[]), where="s3://models/churn/model.json")
    assert str(refused.value) == "s3://models/churn/model.json: no layers"


def test_given_a_file_that_is_not_json_when_loaded_then_the_error_names_the_path(tmp_path):
    path = tmp_path / "model.json"
    path.write_text("<html>not a model</html>", encoding="utf-8")
    with pytest.raises(InputError) as refused:
        network.load(str(path))
    assert str(refused.value) == f"{path}: cannot read the network (Expecting value: line 1 column 1 (char 0))"


def test_given_a_json_file_of_another_format_when_loaded_then_the_error_names_the_path(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"learner": {}, "version": [2, 1, 0]}), encoding="utf-8")  # e.g. an XGBoost booster
    with pytest.raises(InputError) as refused:
        network.load(str(path))
    assert str(refused.value) == f"{path}: not a tabular network (format None, expected 'mlops-loop/tabular-network/v1')"


@pytest.fixture
def artefact(two_epoch_network, tmp_path) -> Path:
    """A copy of the trained artefact (the session's two-epoch network, tests/training/conftest.py) to edit."""
    return Path(shutil.copytree(two_epoch_network, tmp_path / "model"))


def _edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_the_unedited_artefact_loads_as_a_pytorch_model(artefact, test_frame):
    model = model_io.load_model(str(artefact))
    assert model.framework == "pytorch" and isinstance(model.estimator, network.TabularNetwork)
    assert list(model.estimator.numeric) + list(model.estimator.categorical) == model.feature_names
    assert model_io.predict(model, test_frame.head(5)).shape == (5,)


def test_given_a_network_reading_other_features_than_the_metadata_encodes_when_loaded_then_it_is_refused(artefact):
    _edit_json(artefact / MODEL_FILE, lambda doc: doc["numeric"].__setitem__(0, "tenure_days"))
    metadata = json.loads((artefact / METADATA_FILE).read_text())
    numeric = [f["name"] for f in metadata["features"] if f["kind"] == "numeric"]
    categorical = [f["name"] for f in metadata["features"] if f["kind"] == "categorical"]
    with pytest.raises(InputError) as refused:
        model_io.load_model(str(artefact))
    assert str(refused.value) == (
        f"{artefact / MODEL_FILE}: the network reads numeric {['tenure_days', *numeric[1:]]} and categorical {categorical}, "
        f"but {METADATA_FILE} encodes {numeric} and {categorical}"
    )


def test_given_an_embedding_sized_for_other_levels_than_the_metadata_stores_when_loaded_then_it_is_refused(artefact):
    metadata = json.loads((artefact / METADATA_FILE).read_text())
    feature = next(f for f in metadata["features"] if f["kind"] == "categorical")
    levels = len(feature["categories"])
    _edit_json(artefact / METADATA_FILE, lambda doc: next(f for f in doc["features"] if f["name"] == feature["name"])
               ["categories"].append("a level added after training"))
    with pytest.raises(InputError) as refused:
        model_io.load_model(str(artefact))
    assert str(refused.value) == (
        f"{artefact / MODEL_FILE}: the embedding of {feature['name']!r} has {levels + 1} rows, but the {levels + 1} "
        f"levels {METADATA_FILE} stores need {levels + 2} (one more for missing)"
    )


@pytest.mark.parametrize("kind", [problem.BINARY, problem.MULTICLASS, problem.REGRESSION])
def test_a_records_score_does_not_depend_on_the_batch_it_comes_in(kind):
    """Serving scores a record alone or in a request of many, evaluation in the whole test set: the same bits."""
    net = make_network(kind)
    x = make_inputs(300, seed=9)
    whole = net.predict(x)
    alone = np.concatenate([net.predict(x.take(np.array([i]))) for i in range(len(x))])
    in_37s = np.concatenate([net.predict(x.take(np.arange(i, min(i + 37, len(x))))) for i in range(0, len(x), 37)])
    assert np.array_equal(whole, alone) and np.array_equal(whole, in_37s)


def test_an_extreme_logit_scores_0_or_1_without_overflow():
    net = make_network(problem.BINARY)
    x = make_inputs(4, seed=2)
    x.numeric[:, 0] = np.float32([1e30, -1e30, 3e38, -3e38])
    with np.errstate(over="raise", invalid="raise"):
        p = net.predict(x)
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()


def test_a_number_far_outside_training_or_an_infinity_still_gets_a_finite_score_in_both_forwards():
    """Standardised values are held within Z_LIMIT in the torch module and the numpy network alike."""
    net = make_network(problem.BINARY)
    x = make_inputs(4, seed=3)
    x.numeric[:, :] = np.float32([[3e38], [-3e38], [np.inf], [-np.inf]])
    margin = net.margin(x)
    assert np.isfinite(margin).all()
    module_inputs = x.numeric.copy()
    z_torch = torch.clamp((torch.from_numpy(module_inputs) - torch.from_numpy(net.mean)) / torch.from_numpy(net.std),
                          -network.Z_LIMIT, network.Z_LIMIT)
    assert torch.isfinite(z_torch).all() and float(z_torch.abs().max()) == network.Z_LIMIT


def test_metadata_without_the_levels_of_a_categorical_feature_is_refused_naming_it(artefact):
    feature = _edit_first_categorical(artefact)
    with pytest.raises(InputError) as refused:
        model_io.load_model(str(artefact))
    assert str(refused.value) == (f"{artefact / MODEL_FILE}: {METADATA_FILE} stores no list of levels ('categories') for "
                                  f"the categorical feature {feature!r}")


def _edit_first_categorical(artefact) -> str:
    metadata = json.loads((artefact / METADATA_FILE).read_text())
    feature = next(f for f in metadata["features"] if f["kind"] == "categorical")
    del feature["categories"]
    (artefact / METADATA_FILE).write_text(json.dumps(metadata))
    return feature["name"]

"""train_torch: the PyTorch tabular network trains on the prepared splits, stores the artefact every job reads,
resumes from checkpoints, and its portable form scores as the torch module does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# The session's networks (network_model, two_epoch_network: tests/training/conftest.py) are trained by the worker
# that runs these modules (one xdist group), once per run instead of once on each pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("torch")

from pipeline_code.core.frameworks import ALGORITHMS  # noqa: E402
from pipeline_code.core.integrity import METADATA_FILE, MODEL_FILE  # noqa: E402
from pipeline_code.training import metrics, model_io, train_torch  # noqa: E402
from pipeline_code.training.network import inputs_from_encoded  # noqa: E402
from tests.support.training import FAST_TORCH_TRAIN  # noqa: E402


def test_given_generated_churn_data_when_the_network_is_trained_then_test_auc_is_well_above_chance(network_model, test_frame, churn_spec):
    model = model_io.load_model(network_model)
    p = model_io.predict(model, test_frame)
    auc = metrics.roc_auc(test_frame[churn_spec.target], p)
    assert model.framework == "pytorch"
    assert auc > 0.72, f"AUC {auc:.3f} on the frozen test set"
    assert ((p > 0) & (p < 1)).all() and p.dtype == np.float64


def test_the_artefact_names_its_framework_and_keeps_the_shared_encoding(network_model, churn_spec, prepared):
    metadata = json.loads((Path(network_model) / METADATA_FILE).read_text())
    assert metadata["framework"] == "pytorch" and metadata["torch_version"] == torch.__version__
    assert metadata["feature_order"] == list(churn_spec.features)
    assert metadata["training"]["epochs_trained"] >= metadata["training"]["epochs_kept"] >= 1
    assert 0 < metadata["threshold"] < 1 and metadata["decision"]["threshold"] == metadata["threshold"]
    assert metadata["network"]["parameters"] > 0
    # the event-time span of the rows it learnt from, as the XGBoost trainer records it (evaluate's out-of-time check)
    summary = json.loads((Path(prepared["root"]) / "summary" / "prepare.json").read_text())
    assert metadata["training"]["data_period"] == {n: summary["splits"][n]["time_range"] for n in ("train", "validation")}
    assert json.loads((Path(network_model) / MODEL_FILE).read_text())["format"] == "mlops-loop/tabular-network/v1"


def test_the_model_card_of_a_network_names_its_algorithm(network_model, churn_spec, dev_gate, prepared, tmp_path):
    """GIVEN the network evaluated WHEN its model card is built THEN the card (what approvers read) names the network
    as its algorithm, from the framework evaluation records, and the torch version that trained it."""
    from pipeline_code.training import evaluate, model_card

    evaluate.evaluate(churn_spec, network_model, prepared["test"], str(tmp_path), dev_gate, champion_dir=None,
                      log=lambda line: None)
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert report["challenger"]["model_info"]["framework"] == "pytorch"
    card = model_card.build_model_card(evaluation_report=report, model_spec=churn_spec)
    assert card["model_overview"]["algorithm_type"] == ALGORITHMS["pytorch"]
    import torch

    assert card["additional_information"]["custom_details"]["framework_version"] == f"torch {torch.__version__}"


def test_the_portable_network_scores_as_the_torch_module_does(churn_spec, prepared, test_frame):
    """The numpy forward pass that every later job runs is the module's, within float32 rounding."""
    frame = model_io.read_split(prepared["train"], churn_spec, what="train")
    metadata = model_io.build_feature_metadata(churn_spec, frame)
    numeric = [f["name"] for f in metadata["features"] if f["kind"] == model_io.NUMERIC]
    categorical = [f for f in metadata["features"] if f["kind"] == model_io.CATEGORICAL]
    names = [f["name"] for f in categorical]
    x = inputs_from_encoded(numeric, names, model_io.encode(test_frame, metadata))
    mean, std = train_torch.standardisation(x.numeric)
    torch.manual_seed(3)
    module = train_torch.TorchTabular(mean, std, [len(f["categories"]) for f in categorical], train_torch.Hyperparameters(), 1).eval()
    with torch.no_grad():
        expected = module(torch.from_numpy(x.numeric), torch.from_numpy(x.categorical)).numpy()[:, 0]
    network = module.export(numeric, names, "binary_classification", (0.0, 1.0))
    assert np.isnan(x.numeric).any(), "the test frame should hold missing numbers (missing flags exercised)"
    np.testing.assert_allclose(network.margin(x), expected, rtol=1e-5, atol=1e-5)


def test_given_an_interrupted_run_when_restarted_then_it_resumes_and_ends_as_an_uninterrupted_run(churn_spec, prepared, tmp_path):
    hp = train_torch.Hyperparameters(epochs=4, patience=0, hidden=(16,))
    quiet = lambda line: None  # noqa: E731
    with pytest.raises(train_torch.TrainingInterrupted):
        train_torch.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "a"), hyperparameters=hp,
                          checkpoint_dir=str(tmp_path / "ckpt"), interrupt_after=2, log=quiet)
    lines = []
    resumed = train_torch.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "a"), hyperparameters=hp,
                                checkpoint_dir=str(tmp_path / "ckpt"), log=lines.append)
    straight = train_torch.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "b"), hyperparameters=hp,
                                 checkpoint_dir=str(tmp_path / "ckpt-b"), log=quiet)
    assert "resuming from checkpoint after epoch 2 of 4" in lines
    assert resumed["resumed_from_epoch"] == 2 and resumed["epochs_trained"] == 4
    assert (Path(tmp_path / "a" / MODEL_FILE).read_bytes() == Path(tmp_path / "b" / MODEL_FILE).read_bytes())
    assert resumed["validation_logloss"] == straight["validation_logloss"]


def test_a_checkpoint_of_another_configuration_is_not_resumed(churn_spec, prepared, tmp_path):
    quiet = lambda line: None  # noqa: E731
    train_torch.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "a"),
                      hyperparameters=train_torch.Hyperparameters(epochs=1, hidden=(8,)), checkpoint_dir=str(tmp_path / "ckpt"), log=quiet)
    lines = []
    summary = train_torch.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "b"),
                                hyperparameters=train_torch.Hyperparameters(epochs=1, hidden=(4,)), checkpoint_dir=str(tmp_path / "ckpt"),
                                log=lines.append)
    assert summary["resumed_from_epoch"] is None
    assert any("made by another configuration or dataset" in line for line in lines)


def test_the_metric_lines_match_the_xgboost_trainers(churn_spec, prepared, tmp_path, capsys):
    code = train_torch.main(["--model-spec", churn_spec.to_json(), "--train-dir", prepared["train"], "--validation-dir",
                             prepared["validation"], "--model-dir", str(tmp_path / "m"), "--checkpoint-dir", str(tmp_path / "c"),
                             "--device", "cpu", *FAST_TORCH_TRAIN])
    out = capsys.readouterr().out
    assert code == 0
    assert "[1/" in out and "validation-loss=" in out
    assert "final_validation_auc=" in out and "final_epochs=" in out


def test_the_compile_cache_of_neuron_is_kept_with_the_checkpoints(churn_spec, prepared, tmp_path, monkeypatch):
    monkeypatch.delenv("NEURON_CC_FLAGS", raising=False)
    train_torch.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "m"),
                      hyperparameters=train_torch.Hyperparameters(epochs=1, hidden=(4,)), checkpoint_dir=str(tmp_path / "c"),
                      log=lambda line: None)
    import os

    assert os.environ["NEURON_CC_FLAGS"] == f"--cache_dir={tmp_path / 'c' / train_torch.NEURON_CACHE_DIR}"


def test_the_compile_cache_is_named_before_the_neuron_device_is_created(churn_spec, prepared, tmp_path, monkeypatch):
    """GIVEN the training job's command line WHEN it runs THEN NEURON_CC_FLAGS names the cache beside the checkpoints
    before the device (torch_xla's Neuron client) exists: a flag set after it may not reach the compiler."""
    monkeypatch.setenv("NEURON_CC_FLAGS", "")  # recorded, so the value main() sets is undone after the test
    monkeypatch.delenv("NEURON_CC_FLAGS")
    seen = []

    def device(choice):
        import os

        seen.append(os.environ.get("NEURON_CC_FLAGS"))
        return train_torch.Device()

    monkeypatch.setattr(train_torch, "resolve_device", device)
    checkpoints = tmp_path / "c"
    assert train_torch.main(["--model-spec", churn_spec.to_json(), "--train-dir", prepared["train"],
                             "--validation-dir", prepared["validation"], "--model-dir", str(tmp_path / "m"),
                             "--checkpoint-dir", str(checkpoints), "--epochs", "1", "--hidden", "4"]) == 0
    assert seen == [f"--cache_dir={checkpoints / train_torch.NEURON_CACHE_DIR}"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--hidden", "64,0"], "argument --hidden: expected comma-separated layer widths, each a whole number >= 1 (e.g. "
                               "64,32), got '64,0'"),
        (["--dropout", "1"], "argument --dropout: expected a number in [0, 1), got '1'"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu' (choose from 'auto', 'cpu', 'cuda', 'xla')"),
    ],
)
def test_bad_arguments_name_the_flag(argv, message, churn_spec, capsys):
    with pytest.raises(SystemExit):
        train_torch.build_parser().parse_args(["--model-spec", churn_spec.to_json(), *argv])
    assert message in capsys.readouterr().err


def test_the_device_choice_falls_back_to_the_cpu_without_torch_xla_or_cuda():
    device = train_torch.resolve_device("auto")
    assert device.name == "cpu" and not device.static_shapes


def test_the_trainers_flags_are_the_hyperparameter_table_with_its_defaults():
    """One definition: every hyperparameter of the table is a flag of the network's trainer, defaulting to the
    table's value, and the trainer's own defaults are the table's."""
    from pipeline_code.core import hyperparameters
    from pipeline_code.core.frameworks import PYTORCH

    table = hyperparameters.defaults(PYTORCH)
    flags = {action.dest: action.default for action in train_torch.build_parser()._actions}
    assert {name: flags.get(name) for name in table} == table
    assert {name: getattr(train_torch.Hyperparameters(), name) for name in table} == table

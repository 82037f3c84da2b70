"""train: a useful model on generated data, a stored encoding that is re-applied, checkpoint resume."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import tarfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from pipeline_code.core import problem
from pipeline_code.training import metrics, train
from pipeline_code.training.data_io import InputError


def test_given_generated_churn_data_when_trained_then_test_auc_is_well_above_chance(strong_model, test_frame, churn_spec):
    model = train.load_model(strong_model)
    p = train.predict(model, test_frame)
    auc = metrics.roc_auc(test_frame[churn_spec.target], p)
    assert auc > 0.75, f"AUC {auc:.3f} on the frozen test set"
    assert model.estimator.num_boosted_rounds() == 60
    assert ((p > 0) & (p < 1)).all()


def test_the_encoding_is_stored_with_the_model(strong_model, churn_spec):
    metadata = json.loads((Path(strong_model) / train.METADATA_FILE).read_text())
    assert metadata["feature_order"] == list(churn_spec.features)
    by_name = {f["name"]: f for f in metadata["features"]}
    assert by_name["contract_type"]["categories"] == ["month-to-month", "one-year", "two-year"]  # catalog order
    assert by_name["contract_type"]["categories_source"] == "catalog"
    assert by_name["tenure_months"]["kind"] == "numeric"
    assert churn_spec.sensitive_attribute not in metadata["feature_order"]
    assert metadata["training"]["rounds_kept"] == 60


def test_given_a_differently_shaped_frame_then_predictions_are_identical(strong_model, test_frame):
    """Column order, extra columns, plain strings instead of categories, case/whitespace as the
    ETL would normalise them: the stored encoding maps them all to the same model input."""
    model = train.load_model(strong_model)
    expected = train.predict(model, test_frame)
    reshaped = test_frame[list(reversed(test_frame.columns))].copy()
    reshaped["unrelated"] = "x"
    reshaped["contract_type"] = reshaped["contract_type"].str.upper().radd("  ")
    np.testing.assert_array_equal(train.predict(model, reshaped), expected)


def test_an_unknown_category_is_scored_as_missing(strong_model, test_frame):
    model = train.load_model(strong_model)
    unknown, missing = test_frame.head(50).copy(), test_frame.head(50).copy()
    unknown["payment_method"] = "crypto"
    missing["payment_method"] = None
    np.testing.assert_array_equal(train.predict(model, unknown), train.predict(model, missing))


def test_a_frame_without_a_feature_is_rejected_by_name(strong_model, test_frame):
    with pytest.raises(InputError, match="lacks feature columns \\['region'\\]"):
        train.predict(train.load_model(strong_model), test_frame.drop(columns=["region"]))


def test_given_the_model_as_sagemaker_stores_it_then_model_tar_gz_loads_identically(strong_model, test_frame, tmp_path):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in Path(strong_model).iterdir():
            tar.add(path, arcname=path.name)
    from_dir = train.predict(train.load_model(strong_model), test_frame)
    np.testing.assert_array_equal(train.predict(train.load_model(str(archive)), test_frame), from_dir)
    (tmp_path / "holder").mkdir()
    archive.rename(tmp_path / "holder" / "model.tar.gz")
    np.testing.assert_array_equal(train.predict(train.load_model(str(tmp_path / "holder")), test_frame), from_dir)


def test_given_a_spot_interruption_when_restarted_then_training_resumes_and_ends_with_all_rounds(
    churn_spec, prepared, tmp_path
):
    """GIVEN checkpoints every 10 rounds and an interruption after round 25
    WHEN the job is started again THEN it resumes from round 20 and the model has 60 rounds."""
    hp = train.Hyperparameters(num_round=60, early_stopping_rounds=0, checkpoint_interval=10)
    checkpoints, model_dir = tmp_path / "checkpoints", tmp_path / "model"
    first: list = []
    with pytest.raises(train.TrainingInterrupted):
        train.train(churn_spec, prepared["train"], prepared["validation"], str(model_dir),
                    hyperparameters=hp, checkpoint_dir=str(checkpoints), interrupt_after=25, log=first.append)  # fmt: skip
    assert not (model_dir / train.MODEL_FILE).exists()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-000010.json", "checkpoint-000020.json"]

    second: list = []
    summary = train.train(churn_spec, prepared["train"], prepared["validation"], str(model_dir),
                          hyperparameters=hp, checkpoint_dir=str(checkpoints), log=second.append)  # fmt: skip
    assert "resuming from checkpoint at round 20 of 60" in second
    assert second[1].startswith("[21/60] ")
    assert summary["resumed_from_round"] == 20
    assert train.load_model(str(model_dir)).estimator.num_boosted_rounds() == 60
    assert summary["validation_auc"] > 0.75


def test_given_the_same_data_and_settings_when_trained_twice_then_the_content_digest_is_the_same(
    churn_spec, prepared, tmp_path
):
    """GIVEN one data set and one configuration (its seed included) WHEN trained twice, at different times
    THEN the model bytes and the content digest are the same, while trained_at, and so the model digest, differ;
    another seed gives another content digest."""
    from pipeline_code.core import integrity

    hp = train.Hyperparameters(num_round=15, early_stopping_rounds=0)
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("other-seed", 1)):
        runs[name] = tmp_path / name
        train.train(churn_spec, prepared["train"], prepared["validation"], str(runs[name]),
                    hyperparameters=dataclasses.replace(hp, seed=seed), log=lambda line: None)  # fmt: skip
    a, b = (json.loads((runs[n] / train.METADATA_FILE).read_text())["training"] for n in ("a", "b"))

    assert a["trained_at"] != b["trained_at"]
    assert (runs["a"] / train.MODEL_FILE).read_bytes() == (runs["b"] / train.MODEL_FILE).read_bytes()
    assert integrity.model_content_digest(str(runs["a"])) == integrity.model_content_digest(str(runs["b"]))
    assert integrity.model_digest(str(runs["a"])) != integrity.model_digest(str(runs["b"]))
    assert integrity.model_content_digest(str(runs["other-seed"])) != integrity.model_content_digest(str(runs["a"]))


def test_a_checkpoint_from_another_configuration_is_not_resumed(churn_spec, prepared, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(train.TrainingInterrupted):
        train.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "m1"),
                    hyperparameters=train.Hyperparameters(num_round=30, early_stopping_rounds=0, max_depth=3),
                    checkpoint_dir=str(checkpoints), interrupt_after=10, log=lambda s: None)  # fmt: skip
    lines: list = []
    summary = train.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "m2"),
                          hyperparameters=train.Hyperparameters(num_round=30, early_stopping_rounds=0, max_depth=4),
                          checkpoint_dir=str(checkpoints), log=lines.append)  # fmt: skip
    assert summary["resumed_from_round"] is None
    assert any("made by another configuration" in line for line in lines)


def test_early_stopping_keeps_the_best_rounds(churn_spec, prepared, tmp_path):
    summary = train.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "m"),
                          hyperparameters=train.Hyperparameters(num_round=400, eta=0.3, early_stopping_rounds=5),
                          log=lambda s: None)  # fmt: skip
    assert summary["stopped_early"] is True
    assert summary["rounds_kept"] == summary["best_iteration"] + 1 < summary["rounds_trained"] < 400


def test_given_sagemaker_script_mode_then_channels_env_and_hyperparameter_args_work(churn_spec, prepared, tmp_path, monkeypatch):
    """SageMaker passes channels/model dir as SM_* variables and hyperparameters as --args
    (underscore spellings, numbers as text, the spec possibly as str(dict))."""
    monkeypatch.setenv("SM_CHANNEL_TRAIN", prepared["train"])
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", prepared["validation"])
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    out = io.StringIO()
    with redirect_stdout(out):
        code = train.main(
            [
                "--model_spec", str(churn_spec.to_dict()),
                "--max_depth", "3", "--eta", "0.2", "--num_round", "20.0", "--subsample", "0.9",
                "--min_child_weight", "1", "--early_stopping_rounds", "0", "--seed", "3",
                "--checkpoint-dir", str(tmp_path / "ckpt"),
            ]
        )  # fmt: skip
    assert code == 0
    assert (tmp_path / "model" / train.MODEL_FILE).exists() and (tmp_path / "model" / train.METADATA_FILE).exists()
    text = out.getvalue()
    per_round = re.findall(r"(?<![_a-z])validation-auc=([0-9.]+);", text)
    assert len(per_round) == 20 + 1  # each round's, then the kept model's (the tuning objective is the last printed)
    final = re.search(r"final_validation_auc=([0-9.]+);", text)
    assert final and float(final.group(1)) > 0.7 and per_round[-1] == final.group(1)


def test_the_trainers_flags_are_the_hyperparameter_table_with_its_defaults():
    """One definition: every hyperparameter of the table is a flag of its trainer, defaulting to the table's value
    (which the pipeline passes), and a trainer's own defaults are the table's."""
    from pipeline_code.core import hyperparameters
    from pipeline_code.core.frameworks import XGBOOST

    table = hyperparameters.defaults(XGBOOST)
    flags = {action.dest: action.default for action in train.build_parser()._actions}
    assert {name: flags.get(name) for name in table} == table
    assert {name: getattr(train.Hyperparameters(), name) for name in table} == table


def test_the_model_records_the_event_time_span_of_the_splits_it_learnt_from(strong_model, prepared):
    """GIVEN a model trained on prepared splits THEN its training summary records each split's event-time span, the one
    Prepare's summary gives: evaluate compares it with the frozen test set's (out-of-time or not), the card states it."""
    summary = json.loads((Path(prepared["root"]) / "summary" / "prepare.json").read_text())
    recorded = json.loads((Path(strong_model) / train.METADATA_FILE).read_text())["training"]["data_period"]
    assert recorded == {name: summary["splits"][name]["time_range"] for name in ("train", "validation")}


def test_splits_without_an_event_time_leave_the_data_period_unknown(churn_spec, prepared, tmp_path):
    """GIVEN splits without the event time column (not Prepare's output) THEN the period is not guessed: None."""
    import pyarrow.parquet as pq

    from pipeline_code.training.trainers import data_period

    for name in ("train", "validation"):
        (tmp_path / name).mkdir()
        table = pq.read_table(Path(prepared[name]) / f"{name}.parquet")
        pq.write_table(table.drop_columns([churn_spec.event_time]), tmp_path / name / f"{name}.parquet")
    assert data_period(churn_spec, str(tmp_path / "train"), str(tmp_path / "validation")) is None


def _spy_on_xgb_train(monkeypatch) -> list:
    """Record the params each ``xgb.train`` call gets, then train on the CPU (this machine has no GPU)."""
    seen: list = []
    real = train.xgb.train

    def spy(params, *args, **kwargs):
        seen.append(dict(params))
        return real({**params, "device": "cpu"}, *args, **kwargs)

    monkeypatch.setattr(train.xgb, "train", spy)
    return seen


def _run_main(churn_spec, prepared, tmp_path, *extra: str) -> int:
    with redirect_stdout(io.StringIO()):
        return train.main(["--model-spec", churn_spec.to_json(), "--train-dir", prepared["train"],
                           "--validation-dir", prepared["validation"], "--model-dir", str(tmp_path / "model"),
                           "--checkpoint-dir", str(tmp_path / "ckpt"), "--num-round", "3", *extra])


def _fake_nvidia_smi(tmp_path, monkeypatch, gpus: int) -> None:
    """An ``nvidia-smi`` first on PATH listing ``gpus`` GPUs, as on a GPU host whose job runs no SageMaker toolkit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lines = "".join(f"GPU {i}: NVIDIA A10G (UUID: GPU-{i})\\n" for i in range(gpus))
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n[ \"$1\" = --list-gpus ] && printf '{lines}'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")


@pytest.mark.parametrize("num_gpus, device", [("1", "cuda"), ("4", "cuda"), ("0", "cpu")])
def test_a_training_job_trains_on_the_gpu_when_sagemaker_says_the_instance_has_one(
        churn_spec, prepared, tmp_path, monkeypatch, num_gpus, device):
    """GIVEN SageMaker's SM_NUM_GPUS (set by the toolkit in script mode: tuning trials) THEN xgb.train gets
    device=cuda with the hist tree method when it is above 0, device=cpu when it is 0 (the summary records where
    xgboost then ran: test_the_summary_records_the_device_xgboost_trained_on_not_the_one_asked_for)."""
    monkeypatch.setenv("SM_NUM_GPUS", num_gpus)
    seen = _spy_on_xgb_train(monkeypatch)
    assert _run_main(churn_spec, prepared, tmp_path) == 0
    assert [(p["device"], p["tree_method"]) for p in seen] == [(device, "hist")]


@pytest.mark.parametrize("gpus, device", [(1, "cuda"), (0, "cpu"), (None, "cpu")])
def test_without_the_toolkit_the_gpus_are_counted_with_nvidia_smi(churn_spec, prepared, tmp_path, monkeypatch, gpus, device):
    """GIVEN no SM_NUM_GPUS (the single training job runs its own entrypoint, not the toolkit that sets it) THEN the
    GPUs are those ``nvidia-smi --list-gpus`` lists, as the toolkit counts them; none when nvidia-smi is absent."""
    monkeypatch.delenv("SM_NUM_GPUS", raising=False)
    if gpus is None:
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no nvidia-smi (nor anything else) to run
    else:
        _fake_nvidia_smi(tmp_path, monkeypatch, gpus)
    seen = _spy_on_xgb_train(monkeypatch)
    assert _run_main(churn_spec, prepared, tmp_path) == 0
    assert [p["device"] for p in seen] == [device]


@pytest.mark.parametrize("script, why", [
    ("echo 'NVIDIA-SMI has failed because it couldn'\\''t communicate with the NVIDIA driver.' >&2; exit 9",
     "nvidia-smi --list-gpus failed (exit 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
     "driver.), so no GPU was counted; --device cuda trains on a GPU regardless"),
    ("sleep 30", "nvidia-smi --list-gpus did not answer within 1 s, so no GPU was counted; --device cuda trains on a "
                 "GPU regardless"),
], ids=["fails", "hangs"])
def test_an_nvidia_smi_that_fails_or_hangs_trains_on_the_cpu_and_the_log_says_why(
        churn_spec, prepared, tmp_path, monkeypatch, capsys, script, why):
    """GIVEN no SM_NUM_GPUS and an nvidia-smi that is there but fails (a GPU instance whose driver does not answer) or
    hangs THEN the job trains on the CPU without waiting longer than the probe's timeout, and the log says why, not
    the bare line of a CPU instance (a GPU instance paid for and idle would otherwise go unexplained)."""
    monkeypatch.delenv("SM_NUM_GPUS", raising=False)
    monkeypatch.setattr(train, "NVIDIA_SMI_TIMEOUT_SECONDS", 1)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    seen = _spy_on_xgb_train(monkeypatch)
    started = time.monotonic()
    assert train.main(["--model-spec", churn_spec.to_json(), "--train-dir", prepared["train"],
                       "--validation-dir", prepared["validation"], "--model-dir", str(tmp_path / "model"),
                       "--checkpoint-dir", str(tmp_path / "ckpt"), "--num-round", "3"]) == 0
    assert time.monotonic() - started < 20
    assert [p["device"] for p in seen] == ["cpu"]
    assert f"training on device cpu (--device auto): {why}" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("hidden", ["", "-1"])
@pytest.mark.parametrize("counted_by", ["SM_NUM_GPUS", "nvidia-smi"])
def test_cuda_visible_devices_hiding_every_gpu_trains_on_the_cpu_and_the_log_says_why(
        churn_spec, prepared, tmp_path, monkeypatch, capsys, hidden, counted_by):
    """GIVEN a host with GPUs (SM_NUM_GPUS, or nvidia-smi, which lists every GPU whatever CUDA_VISIBLE_DEVICES says)
    and CUDA_VISIBLE_DEVICES "" or "-1" (CUDA: no device visible) THEN --device auto trains on the CPU, as asked,
    instead of handing xgboost device=cuda with no device to run on, and the log says which variable chose it."""
    if counted_by == "SM_NUM_GPUS":
        monkeypatch.setenv("SM_NUM_GPUS", "2")
    else:
        monkeypatch.delenv("SM_NUM_GPUS", raising=False)
        _fake_nvidia_smi(tmp_path, monkeypatch, 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
    seen = _spy_on_xgb_train(monkeypatch)
    assert train.main(["--model-spec", churn_spec.to_json(), "--train-dir", prepared["train"],
                       "--validation-dir", prepared["validation"], "--model-dir", str(tmp_path / "model"),
                       "--checkpoint-dir", str(tmp_path / "ckpt"), "--num-round", "3"]) == 0
    assert [p["device"] for p in seen] == ["cpu"]
    assert (f"training on device cpu (--device auto): CUDA_VISIBLE_DEVICES is {hidden!r}, which makes none of the "
            "host's 2 GPUs visible; unset it to train on them") in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("visible, count", [("0,1", 2), ("1", 1), ("2,-1,3", 1), ("GPU-5d3c,MIG-1", 2), ("0,1,2,3,4,5", 4),
                                            ("", 0), ("-1", 0), (None, 4),
                                            ("4", 0), ("0,4,1", 1), ("none", 0), ("0,gpu1", 1)])
def test_the_gpus_counted_are_those_cuda_visible_devices_leaves_visible(visible, count):
    """CUDA's rule: the devices listed, up to the first that is not one (-1, an index the host has not, anything
    neither an index nor a GPU-/MIG- UUID: it and what follows are ignored), at most the host's; unset, every GPU of
    the host."""
    environ = {"SM_NUM_GPUS": "4", **({"CUDA_VISIBLE_DEVICES": visible} if visible is not None else {})}
    assert train.visible_gpus(environ) == count


@pytest.mark.parametrize("flag, num_gpus, device", [("cpu", "1", "cpu"), ("cuda", "0", "cuda"), ("auto", "1", "cuda")])
def test_the_device_flag_overrides_what_the_instance_has(churn_spec, prepared, tmp_path, monkeypatch, flag, num_gpus, device):
    monkeypatch.setenv("SM_NUM_GPUS", num_gpus)
    seen = _spy_on_xgb_train(monkeypatch)
    assert _run_main(churn_spec, prepared, tmp_path, "--device", flag) == 0
    assert [p["device"] for p in seen] == [device]


def test_an_sm_num_gpus_that_is_not_a_count_is_refused_by_name(churn_spec, prepared, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SM_NUM_GPUS", "one")
    seen = _spy_on_xgb_train(monkeypatch)
    assert _run_main(churn_spec, prepared, tmp_path) == 1
    assert seen == []
    assert capsys.readouterr().err.strip() == (
        "ERROR: SM_NUM_GPUS is 'one', not a number of GPUs: unset it or set it to the instance's GPU count, "
        "or pass --device cpu or --device cuda")


def test_a_model_trained_with_device_cuda_loads_and_explains_on_a_cpu(churn_spec, prepared, test_frame, tmp_path):
    """GIVEN a model trained with device=cuda (on a host without a GPU xgboost warns and trains on the CPU; on a GPU
    host this trains on it) THEN model.json does not carry the device (xgboost keeps it in the booster's run-time
    configuration), so Evaluate, attributions and serving load it as a CPU booster and score it there."""
    from pipeline_code.training import explain

    from contextlib import nullcontext

    # Without a GPU the CUDA-built wheel says so ("No visible GPU is found, setting device to CPU") and carries on.
    with nullcontext() if train.visible_gpus({}) else pytest.warns(UserWarning, match="GPU"):
        train.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "m"),
                    hyperparameters=train.Hyperparameters(num_round=5), device="cuda", log=lambda s: None)
    saved = (tmp_path / "m" / train.MODEL_FILE).read_text()
    assert '"device"' not in saved and "cuda" not in saved
    model = train.load_model(str(tmp_path / "m"))
    assert json.loads(model.estimator.save_config())["learner"]["generic_param"]["device"] == "cpu"
    contributions = explain.shap_values(model, test_frame.head(50))
    assert np.allclose(contributions.sum(axis=1), model.estimator.predict(train.to_dmatrix(model, test_frame.head(50)),
                                                                           output_margin=True), atol=1e-4)



def test_a_checkpoint_written_on_one_device_is_resumed_on_the_other(churn_spec, prepared, tmp_path, monkeypatch):
    """GIVEN a spot job interrupted after its checkpoint at round 10 WHEN it restarts on the other device (a GPU
    trial's checkpoint read on a CPU, or the reverse) THEN it resumes from that checkpoint: the device is where the
    rounds run, not what they learn, so it is no part of the fingerprint (as nthread is not)."""
    hp = train.Hyperparameters(num_round=20, early_stopping_rounds=0, checkpoint_interval=10)
    checkpoints = tmp_path / "checkpoints"
    seen = _spy_on_xgb_train(monkeypatch)  # trains on this machine's CPU whatever device it is given
    for first, then in (("cuda", "cpu"), ("cpu", "cuda")):
        shutil.rmtree(checkpoints, ignore_errors=True)
        with pytest.raises(train.TrainingInterrupted):
            train.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / first),
                        hyperparameters=hp, checkpoint_dir=str(checkpoints), device=first, interrupt_after=12,
                        log=lambda s: None)
        summary = train.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / then),
                              hyperparameters=hp, checkpoint_dir=str(checkpoints), device=then, log=lambda s: None)
        assert summary["resumed_from_round"] == 10
    assert [p["device"] for p in seen] == ["cuda", "cpu", "cpu", "cuda"]


def test_the_summary_records_the_device_xgboost_trained_on_not_the_one_asked_for(churn_spec, prepared, tmp_path):
    """GIVEN device=cuda on a host where xgboost finds no usable GPU (--device cuda locally, CUDA_VISIBLE_DEVICES hiding
    the GPUs nvidia-smi lists, a driver that does not answer) THEN xgboost trains on the CPU, and the training summary,
    which says which device trained a version, records cpu and the log says so."""
    if train.visible_gpus({}):
        pytest.skip("this host has a GPU: device=cuda trains on it")
    lines: list = []
    with pytest.warns(UserWarning, match="GPU"):
        summary = train.train(churn_spec, prepared["train"], prepared["validation"], str(tmp_path / "m"),
                              hyperparameters=train.Hyperparameters(num_round=3), device="cuda", log=lines.append)
    assert summary["device"] == "cpu"
    assert json.loads((tmp_path / "m" / train.METADATA_FILE).read_text())["training"]["device"] == "cpu"
    assert "xgboost trained on the cpu, not on cuda as asked: it found no usable GPU" in lines


def test_a_gpu_with_an_xgboost_built_without_cuda_trains_on_the_cpu_and_says_why(churn_spec, prepared, tmp_path, monkeypatch, capsys):
    """GIVEN a GPU but an xgboost built without CUDA (which would refuse device=cuda) THEN auto trains on the CPU and
    the log says why."""
    monkeypatch.setenv("SM_NUM_GPUS", "1")
    monkeypatch.setattr(train.xgb, "build_info", lambda: {"USE_CUDA": False})
    seen = _spy_on_xgb_train(monkeypatch)
    assert train.main(["--model-spec", churn_spec.to_json(), "--train-dir", prepared["train"],
                       "--validation-dir", prepared["validation"], "--model-dir", str(tmp_path / "model"),
                       "--checkpoint-dir", str(tmp_path / "ckpt"), "--num-round", "3"]) == 0
    assert [p["device"] for p in seen] == ["cpu"]
    assert ("training on device cpu (--device auto): the host has 1 GPU but this xgboost "
            f"{train.xgb.__version__} is built without CUDA") in capsys.readouterr().out.splitlines()


def _objective_lines(spec, prepared, model_dir, hp):
    lines: list = []
    summary = train.train(spec, prepared["train"], prepared["validation"], str(model_dir), hyperparameters=hp, log=lines.append)
    name = re.escape(problem.round_objective(spec.problem_type, spec.primary_metric))
    values = [float(v) for line in lines for v in re.findall(rf"(?<![_a-z]){name}=(-?[0-9.eE+-]+);", line)]
    return summary, values


def test_the_tuning_objective_is_printed_every_round_and_last_for_the_kept_model(churn_spec, prepared, tmp_path):
    """SageMaker's early stopping reads the objective after every round, and a trial's objective is the last value it
    printed: one line per round, then the kept model's value (the best rounds, not the round boosting stopped at),
    as Evaluate computes it on the same split (F1 at the decision threshold chosen on validation data)."""
    import pandas as pd

    spec = dataclasses.replace(churn_spec, primary_metric="f1")
    hp = train.Hyperparameters(num_round=400, eta=0.3, early_stopping_rounds=5)
    summary, values = _objective_lines(spec, prepared, tmp_path / "m", hp)
    assert summary["stopped_early"] is True
    assert len(values) == summary["rounds_trained"] + 1
    model = train.load_model(str(tmp_path / "m"))
    validation = pd.read_parquet(prepared["validation"])
    evaluated = metrics.headline(validation[spec.target], train.predict(model, validation), model.threshold)["f1"]
    assert values[-1] == pytest.approx(evaluated, abs=1e-6)
    assert values[-1] == pytest.approx(values[summary["best_iteration"]], abs=1e-6)
    assert values[-1] != pytest.approx(values[-2], abs=1e-9)  # the round it stopped at is not the kept model

    # Round k's value is the k-round model's, judged the same way.
    k = 7
    _, shorter = _objective_lines(spec, prepared, tmp_path / "k", dataclasses.replace(hp, num_round=k, early_stopping_rounds=0))
    assert len(shorter) == k + 1 and shorter[:k] == pytest.approx(values[:k], abs=1e-6)

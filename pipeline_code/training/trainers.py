"""What the two trainers share (:mod:`.train` for XGBoost, :mod:`.train_torch` for the network): the training
job's inputs and outputs as SageMaker passes them, the checks on the prepared splits, and the checkpoint files.

Neither xgboost nor torch is imported here.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from pipeline_code.core import hyperparameters, problem
from pipeline_code.training import data_io, threshold as threshold_lib
from pipeline_code.training.data_io import InputError
from pipeline_code.training.model_io import read_split
from pipeline_code.training.spec import ModelSpec, add_model_spec_argument

class TrainingInterrupted(RuntimeError):
    """Raised by a trainer's test hook that simulates a spot interruption after N rounds or epochs."""


# How many checkpoints a trainer keeps: the newest, and the one before it in case the newest is half-synced.
KEEP_CHECKPOINTS = 2


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model-spec`` and the directories of a SageMaker training job (channels, model, checkpoints), each
    defaulting to where SageMaker puts it (``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_VALIDATION``, ``SM_MODEL_DIR``)."""
    add_model_spec_argument(parser)
    env = os.environ
    parser.add_argument("--train-dir", "--train_dir", "--train", dest="train_dir", default=env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument(
        "--validation-dir", "--validation_dir", "--validation", dest="validation_dir",
        default=env.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"),
    )  # fmt: skip
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument("--checkpoint-dir", "--checkpoint_dir", dest="checkpoint_dir", default="/opt/ml/checkpoints")


def add_hyperparameter_arguments(parser: argparse.ArgumentParser, framework: str) -> None:
    """One flag per hyperparameter of ``framework`` (``--max-depth`` and ``--max_depth``), typed, bounded and
    defaulted by :mod:`pipeline_code.core.hyperparameters`."""
    for h in hyperparameters.HYPERPARAMETERS[framework]:
        default = h.text(h.default)
        parser.add_argument(*dict.fromkeys((h.flag, "--" + h.name)), dest=h.name, type=h.parse, default=h.parse(default),
                            help=f"{h.help} ({h.expected()}; default {default})")


def read_splits(spec: ModelSpec, train_dir: str, validation_dir: str) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """The train and validation splits, each refused when it is empty or its label holds a single value."""
    frames = (read_split(train_dir, spec, what="train"), read_split(validation_dir, spec, what="validation"))
    for name, frame in zip(("train", "validation"), frames):
        if len(frame) == 0:
            raise InputError(f"the {name} split is empty")
        if frame[spec.target].nunique() < 2:
            what = "a single value" if spec.problem_type == problem.REGRESSION else "a single class"
            raise InputError(f"the {name} split has {what} in {spec.target!r}")
    return frames


def data_period(spec: ModelSpec, train_dir: str, validation_dir: str) -> Optional[Dict[str, Dict[str, Optional[str]]]]:
    """The event-time span of each split a model learnt from, ``{"train": {"min", "max"}, "validation": {...}}`` (ISO
    8601 UTC, :func:`~pipeline_code.training.data_io.time_range`), which the trainers record in the model's training
    summary: evaluation compares it with the frozen test set's span (an evaluation is out-of-time only when the
    training data ends before the test set begins), and the model card states it. Read from the splits themselves
    (the label's event time column Prepare writes), so it is the period of the rows this model saw; None when a split
    lacks that column (not Prepare's output), and the period is then unknown, never guessed."""
    period: Dict[str, Dict[str, Optional[str]]] = {}
    for name, directory in (("train", train_dir), ("validation", validation_dir)):
        dataset = data_io.parquet_dataset(directory, what=name)
        if spec.event_time not in dataset.schema.names:
            return None
        period[name] = data_io.time_range(data_io.read_columns(dataset, [spec.event_time], what=name).column(0))
    return period


def positive_weight(y_train: np.ndarray) -> float:
    """``class_weight: balanced``: positives weigh as much as all negatives together (negatives / positives); the
    scores are then no longer calibrated probabilities."""
    positives = float(y_train.sum())
    return (len(y_train) - positives) / positives


def record_decision(spec: ModelSpec, metadata: Dict[str, Any], summary: Dict[str, Any], y_val: np.ndarray,
                    p_val: np.ndarray) -> None:
    """A binary model's decision threshold, chosen on validation data (the frozen test set judges it), into the
    artefact's metadata and the training summary: evaluation, fairness, serving and monitoring all decide with
    this number. Other problem types have no threshold."""
    if spec.problem_type != problem.BINARY:
        metadata.pop("threshold", None)
        return
    decision = threshold_lib.choose(y_val, p_val, spec.decision)
    metadata["threshold"] = decision["threshold"]
    metadata["decision"] = decision
    summary["decision"] = decision


def record_tuning_metric(spec: ModelSpec, summary: Dict[str, Any], y_val: np.ndarray, p_val: np.ndarray) -> None:
    """The model's primary metric on validation data (``validation_<name>``, :func:`problem.tuning_metric`) into the
    training summary and its printed ``final_`` lines: the objective a tuning job keeps its best trial by, computed as
    the evaluation computes it on the frozen test set (binary: at the decision threshold :func:`record_decision`
    chose), so the trial kept is the best on what the gate compares. Call it after :func:`record_decision`."""

    from pipeline_code.training import metrics as metric_lib

    key = f"validation_{problem.tuning_metric(spec.problem_type, spec.primary_metric)}"
    if summary.get(key) is None:
        summary[key] = tuning_value(spec, y_val, p_val,
                                    (summary.get("decision") or {}).get("threshold", metric_lib.DEFAULT_THRESHOLD))
    finals = summary.setdefault("final_metrics", [])
    if summary[key] is not None and key not in finals:
        finals.append(key)


def tuning_value(spec: ModelSpec, y_val: np.ndarray, p_val: np.ndarray, threshold: Optional[float] = None) -> Any:
    """The model's primary metric on validation predictions ``p_val``, as the evaluation computes it (its headline
    metrics). Binary: at ``threshold``; None: the one :func:`record_decision` would choose on these predictions (a
    trainer's per-round objective, judged as the model would be were it kept at that round)."""
    from pipeline_code.training import metrics as metric_lib, metrics_multiclass, metrics_regression

    primary = spec.primary_metric
    if spec.problem_type == problem.BINARY:
        if threshold is None:
            threshold = threshold_lib.choose(y_val, p_val, spec.decision)["threshold"]
        return metric_lib.headline(y_val, p_val, threshold)[primary]
    if spec.problem_type == problem.MULTICLASS:
        return metrics_multiclass.headline(y_val.astype(np.int64), p_val, spec.classes)[primary]
    return metrics_regression.headline(y_val, p_val, spec.deviance)[primary]


def checkpoints(directory: str, prefix: str, suffix: str) -> List[Tuple[int, str]]:
    """(progress, path) of the files ``<prefix><number><suffix>`` in ``directory``, newest first; a file still being
    written (``.tmp`` before or in the suffix) is not one."""
    if not directory or not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        if name.startswith(prefix) and name.endswith(suffix) and ".tmp" not in name:
            try:
                found.append((int(name[len(prefix) : -len(suffix)]), os.path.join(directory, name)))
            except ValueError:
                continue
    return sorted(found, reverse=True)


def prune_checkpoints(directory: str, prefix: str, suffix: str) -> None:
    """Remove all but the :data:`KEEP_CHECKPOINTS` newest checkpoints."""
    for _progress, old in checkpoints(directory, prefix, suffix)[KEEP_CHECKPOINTS:]:
        try:
            os.remove(old)
        except OSError:
            pass


def finish(model_dir: str) -> None:
    """The artefact carries the code that serves it (see pipeline_code/serving/package.py)."""
    from pipeline_code.serving.package import write_serving_code

    write_serving_code(model_dir)

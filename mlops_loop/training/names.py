"""The names the pipeline definition shares with triggers, job code, tests and readers: steps,
parameters, job modules, container paths, API limits, metrics and training defaults."""

from __future__ import annotations

import re
from typing import Optional, Tuple

from pipeline_code.core import approval, frameworks, hyperparameters, images
from pipeline_code.core.contract import GATE_FAIL_STEP, GATE_PARAMETERS

from ..config.training import TUNING_MAX_JOBS as _MAX_JOBS, TUNING_PARALLEL_JOBS, TUNING_STRATEGY
from pipeline_code.core.problem import XGBOOST_EVAL_METRICS, higher_is_better, label, round_objective, tuning_metric




STEP_PREPARE = "Prepare"
STEP_TRAIN = "Train"
STEP_TUNE = "Tune"
STEP_COMPILE = "Compile"
STEP_EVALUATE = "Evaluate"
STEP_GATE = "CheckGate"
STEP_BASELINE = "Baseline"
STEP_REGISTER = "Register"
STEP_FAIL = GATE_FAIL_STEP
STEP_MODEL_CARD = "ModelCard"

PARAM_INPUT_FEATURES = "InputFeatures"
PARAM_INPUT_LABELS = "InputLabels"
PARAM_PROCESSING_INSTANCE_TYPE = "ProcessingInstanceType"
PARAM_TRAINING_INSTANCE_TYPE = "TrainingInstanceType"
PARAM_TRAINING_INSTANCE_COUNT = "TrainingInstanceCount"
PARAM_APPROVAL_STATUS = "ModelApprovalStatus"
PARAM_TRIGGER_REASON = "TriggerReason"

PARAMETER_NAMES = (
    PARAM_INPUT_FEATURES,
    PARAM_INPUT_LABELS,
    PARAM_PROCESSING_INSTANCE_TYPE,
    PARAM_TRAINING_INSTANCE_TYPE,
    PARAM_TRAINING_INSTANCE_COUNT,
    *GATE_PARAMETERS.values(),
    PARAM_APPROVAL_STATUS,
    PARAM_TRIGGER_REASON,
)

EVALUATION_PROPERTY_FILE = "EvaluationReport"
# The evaluate and baseline steps' digests of their documents (core.integrity.DIGESTS_FILE), read by the register step.
EVALUATION_DIGESTS_PROPERTY_FILE = "EvaluationDigests"
BASELINE_DIGESTS_PROPERTY_FILE = "BaselineDigests"
# Prepare's summary (contract.PREPARE_SUMMARY_FILE), where the register step reads each split's digest.
PREPARE_SUMMARY_PROPERTY_FILE = "PrepareSummary"

# The statuses ModelApprovalStatus admits: the evaluate job answers one of them for the register step.
APPROVAL_STATUSES = approval.REGISTRATION_STATUSES
XGBOOST_FRAMEWORK = frameworks.XGBOOST
# The stock SageMaker XGBoost image every job runs in (also serving and the monitor): its tag, defined once in
# pipeline_code/core/images.py (with the XGBoost and Python it holds and its end of patch).
XGBOOST_VERSION = images.XGBOOST_IMAGE_VERSION

# A network's (framework pytorch) training image: the SDK's stock PyTorch training image on CPU and GPU
# instances, at the PyTorch of the Neuron line so that both train the same way; on Trainium, AWS's Neuron
# training image, pinned by tag (the SDK's Trainium table stops at PyTorch 1.11). PyTorch 2.9 with Neuron
# SDK 2.30 is the last XLA-based training release (Neuron docs; Inf2/Trn1 are in maintenance mode, and the
# native TorchNeuron backend is Trn2/Trn3 only). Tags: aws/deep-learning-containers
# docs/src/data/pytorch-training-neuronx/2.9-neuronx-sdk2.30.0.yml (2026-05-22).
PYTORCH_FRAMEWORK = frameworks.PYTORCH
PYTORCH_VERSION = "2.9.0"
PYTORCH_PY_VERSION = "py312"
NEURON_TRAINING_REPOSITORY = "pytorch-training-neuronx"
NEURON_TRAINING_TAG = "2.9.0-neuronx-py312-sdk2.30.0-ubuntu24.04"
# A network served on ml.inf2: compiled (the Compile step, on a CPU processing instance: there are no ml.inf2
# processing instances) and served in AWS's Neuron inference image, pinned by tag. SDK 2.31.1 is the last one AWS
# published for Inf2/Trn1 (maintenance mode from Neuron 2.32, Aug 2026; aws-neuron/deep-learning-containers README).
NEURON_INFERENCE_REPOSITORY = "pytorch-inference-neuronx"
NEURON_INFERENCE_TAG = "2.9.0-neuronx-py312-sdk2.31.1-ubuntu24.04"

# Job settings every pipeline uses (the training job's runtime and instances come from the config).
PROCESSING_MAX_RUNTIME_SECONDS = 3600
JOB_VOLUME_SIZE_GB = 30
# Hyperparameter tuning, when the config turns it on: the defaults of its budget (jobs in all, at a time) and search
# strategy; an environment's training.tuning sets its own (the config's facts: the workstation's quota preflight counts
# the parallel jobs too).
TUNING_MAX_JOBS = _MAX_JOBS
TUNING_MAX_PARALLEL_JOBS = TUNING_PARALLEL_JOBS
TUNING_DEFAULT_STRATEGY = TUNING_STRATEGY

# Job modules (pipeline_code, shipped in the library zip).
MODULE_PREPARE = "pipeline_code.training.prepare"
MODULE_TRAIN = "pipeline_code.training.train"
MODULE_TRAIN_TORCH = "pipeline_code.training.train_torch"
MODULE_COMPILE_NEURON = "pipeline_code.training.compile_neuron"
MODULE_EVALUATE = "pipeline_code.training.evaluate"
MODULE_BASELINE = "pipeline_code.training.baseline"
MODULE_MODEL_CARD = "pipeline_code.training.model_card"

PROC_INPUT = "/opt/ml/processing/input"
PROC_OUTPUT = "/opt/ml/processing/output"
PROC_ENTRY_DIR = f"{PROC_INPUT}/entry"
PROC_LIB_DIR = f"{PROC_INPUT}/lib"
PROC_MODEL_SPEC_DIR = f"{PROC_INPUT}/model_spec"

TRAIN_DATA = "/opt/ml/input/data"
TRAIN_ENTRY_DIR = f"{TRAIN_DATA}/entry"
TRAIN_MODEL_SPEC_DIR = f"{TRAIN_DATA}/model_spec"
TRAIN_MODEL_DIR = "/opt/ml/model"
TRAIN_CHECKPOINT_DIR = "/opt/ml/checkpoints"

# Script mode (tuning): the module the entry script runs when it gets only --flags.

# SageMaker API limits the definition must respect.
MAX_CONTAINER_ARGUMENT = 256  # AppSpecification/AlgorithmSpecification ContainerArguments[i]
MAX_HYPERPARAMETER_VALUE = 2500  # HyperParameters / StaticHyperParameters values
MAX_DEFINITION_CHARS = 1_048_576  # CreatePipeline PipelineDefinition

# Metrics the training module prints: the early-stopping metric of every round (a binary model's
# validation AUC; XGBoost's own "validation-auc:0.81" log form matches too), the tuning objective
# (validation-<primary metric>) after every round and, last, the kept model's (with early stopping the last round is not
# the kept one; SageMaker takes a trial's objective from the last value printed), and final_validation_<metric>. Signed: a model worse than
# predicting the mean has a negative R², and a trial whose objective the regex cannot read is not counted by the
# tuning job (ObjectiveStatus Failed), so a search whose trials all stay below 0 would end without a best job.
_NUMBER = r"(-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def problem_metrics(kind: str, primary_metric: Optional[str] = None,
                    stop_metric: Optional[str] = None) -> Tuple[Tuple[Tuple[str, str], ...], str, str, str]:
    """(metric definitions, tuning objective, its direction, what it reads as) of a model of problem type ``kind``
    judged on ``primary_metric`` (None: the type's default): the per-round early-stopping metric (``stop_metric``,
    None: the type's; a regression loss's own, ``PipelineSpec.stop_metric``) and the kept model's primary metric on
    validation data (``core.problem.tuning_metric``), as the training job prints them. The tuning objective is that
    primary metric, the one the gate compares challenger and champion on, as ``core.problem.round_objective`` (printed
    every round, for the tuning job's early stopping, and last for the kept model)."""
    per_round, final = stop_metric or XGBOOST_EVAL_METRICS[kind][-1], tuning_metric(kind, primary_metric)
    objective = round_objective(kind, primary_metric)
    definitions = (
        (f"validation-{per_round}", rf"(?<![_a-z])validation-{re.escape(per_round)}[=:]\s*" + _NUMBER),
        *(() if objective == f"validation-{per_round}" else
          ((objective, rf"(?<![_a-z]){re.escape(objective)}=\s*" + _NUMBER),)),
        (f"final-validation-{final}", rf"final_validation_{final}=\s*" + _NUMBER),
    )
    return definitions, objective, "Maximize" if higher_is_better(final) else "Minimize", f"validation {label(final)}"


def torch_metrics(kind: str, primary_metric: Optional[str] = None) -> Tuple[Tuple[str, str], ...]:
    """A network's training job's metric definitions: its validation loss per epoch and the same final metric."""
    return (("validation-loss", r"(?<![_a-z])validation-loss=\s*" + _NUMBER),) + problem_metrics(kind, primary_metric)[0][-1:]


# What the training step passes when a model's config sets no hyperparameters (pipeline_code.core.hyperparameters).
DEFAULT_HYPERPARAMETERS: Tuple[Tuple[str, str], ...] = hyperparameters.training_arguments(XGBOOST_FRAMEWORK, {})
DEFAULT_TORCH_HYPERPARAMETERS: Tuple[Tuple[str, str], ...] = hyperparameters.training_arguments(PYTORCH_FRAMEWORK, {})

# Hyperparameter ranges searched when tuning (name, kind, min, max, scaling).
TUNING_RANGES: Tuple[Tuple[str, str, float, float, str], ...] = hyperparameters.tuning_ranges(XGBOOST_FRAMEWORK)

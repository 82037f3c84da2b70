"""The SageMaker Pipeline of one model, generated offline as definition JSON.

``build_pipeline_definition(spec)`` turns a :class:`PipelineSpec` (plain strings and numbers,
no CDK objects) into the JSON body of an ``AWS::SageMaker::Pipeline``::

    Prepare ─▶ Train | Tune ─▶ Evaluate ─▶ CheckGate ─┬─▶ Baseline ─▶ Register (Model Registry)
                                                      └─▶ GateFailed (FailStep)

Every job runs the stock SageMaker XGBoost image; the job code is *not* packaged by the SDK
(no ``sourcedir.tar.gz``, no upload at definition time). Each job instead receives two
inputs, the entry script and the zip of the ``pipeline_code`` package (both S3 assets owned
by the CDK app), and runs::

    python3 <entry-dir>/<entry file> <module> <args...>

with ``<entry-dir>`` = ``/opt/ml/processing/input/entry`` (processing input "entry") or
``/opt/ml/input/data/entry`` (training channel "entry"); the entry script finds the zip in
the "lib" input/channel. File names are those of the S3 objects (a CDK asset key is
``<hash>.py``), so the definition changes - and the steps' caches miss - exactly when the
code changes.

Contract with the job code (pipeline_code/sagemaker_entry.py and pipeline_code/training):

* ``--model-spec`` is the *path* of the model spec's JSON file delivered from ``model_spec_s3_uri``
  (``/opt/ml/processing/input/model_spec/<name>.json``, ``/opt/ml/input/data/model_spec/<name>.json``
  in training): it holds the dataset's whole declaration, far beyond the 256 characters SageMaker
  allows a container argument.
* Prepare's ``test`` output *is* the frozen test set: it is uploaded to
  ``frozen_test_s3_uri`` (a reused set is written back unchanged), which Prepare also reads
  (``--frozen-test-dir s3://...``) through the S3 API rather than as a mounted input:
  SageMaker fails a job whose input prefix is empty, and it is empty until the first run. A stale set is
  replaced by a new one from the latest rows (``--test-set-refreeze``, from ``test_set_refreeze``), uploaded
  there under the same object names.
* Train gets every hyperparameter as a ``--<name> <value>`` flag (and in the job's
  HyperParameters), writes checkpoints to ``--checkpoint-dir`` (synced to S3 for managed
  spot) and prints ``validation-auc=<v>;`` and ``validation-<primary metric>=<v>;`` (the tuning objective) per round,
  then the kept model's ``final_validation_<metric>=<v>;`` and its objective once more (SageMaker keeps a trial's last).
* Tuning jobs cannot set an entrypoint: they run the entry script in the XGBoost
  container's script mode (module in ``MLOPS_LOOP_MODULE``, the spec and hyperparameters
  as ``--name value`` flags from the toolkit, directories from ``SM_CHANNEL_*``).
* Evaluate writes ``evaluation.json`` (``gate.passed``, ``gate.reasons``),
  ``model_quality.json`` (Model Registry ModelQuality format), ``bias.json`` and
  ``explainability.json``; Baseline writes ``statistics.json`` and ``constraints.json``; each also writes
  ``digests.json`` (a property file), whose digests Register records as the ModelMetrics ContentDigests.

The definition is deterministic (same spec, same bytes) and generated without any AWS call
(:mod:`mlops_loop.training.sdk_offline`). Values that are CDK tokens (``${Token[...]}``,
e.g. a KMS key ARN or bucket name known only at deploy) are allowed in the resource fields;
they are replaced by placeholders for the SDK and put back verbatim in the JSON, where CDK
resolves them like any other token in a string.

This module does not import AWS CDK, and the SageMaker SDK only inside the build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from pipeline_code.core.contract import (
    APPROVAL_STATUS_PATH,
    ARCHIVE_SHA256_PROPERTY,
    ATTRIBUTIONS_FILE,
    ATTRIBUTIONS_SHA256_PROPERTY,
    BIAS_FILE,
    CODE_VERSION_PROPERTY,
    CONTAINER_SHA256_PROPERTY,
    CONSTRAINTS_FILE,
    FROZEN_TEST_PROPERTY,
    INPUT_FEATURES_PROPERTY,
    INPUT_LABELS_PROPERTY,
    JOB_CODE_HASH_PROPERTY,
    JOB_CODE_SHA256_PROPERTY,
    MODEL_CONTENT_SHA256_PROPERTY,
    MODEL_SHA256_PROPERTY,
    MODEL_SPEC_SHA256_PROPERTY,
    PIPELINE_EXECUTION_ID_PROPERTY,
    PIPELINE_NAME_PROPERTY,
    PREPARE_SUMMARY_DIR,
    PREPARE_SUMMARY_FILE,
    SPLIT_PROPERTIES,
    SPLIT_SHA256_PROPERTIES,
    TEST_SET_SHA256_PROPERTY,
    TRIGGER_REASON_PROPERTY,
    EVALUATION_FILE,
    EXPLAINABILITY_FILE,
    GATE_PASSED_PATH,
    MODEL_QUALITY_FILE,
    STATISTICS_FILE,
)
from pipeline_code.core.integrity import (
    ARCHIVE_SHA256_PATH,
    BASELINE_SEGMENT,
    DIGESTS_FILE,
    EVALUATE_SEGMENT,
    MODEL_CARD_SEGMENT,
    MODEL_CONTENT_SHA256_PATH,
    MODEL_SHA256_PATH,
    SEALED_URI_PATH,
    TEST_SET_SHA256_PATH,
    container_digest,
    digest_key,
    model_prefix,
    sealed_prefix,
    split_sha256_path,
    work_prefix,
)
from pipeline_code.core.compiled import DEFAULT_BATCH, INF2_TARGET, NEURON_COMPILER
from pipeline_code.core.problem import REGRESSION
from pipeline_code.core.thresholds import THRESHOLDS, evidence_flag
from pipeline_code.sagemaker_entry import CODE_DIGEST_ENV as ENV_CODE_DIGEST
from pipeline_code.sagemaker_entry import container_entrypoint
from pipeline_code.sagemaker_entry import ENTRY_MODULE_ENV as ENV_ENTRY_MODULE

from . import sdk_helper
from .sdk_cache import sdk_cache
from .sdk_offline import offline_sdk
from .names import (
    APPROVAL_STATUSES,
    BASELINE_DIGESTS_PROPERTY_FILE,
    EVALUATION_DIGESTS_PROPERTY_FILE,
    EVALUATION_PROPERTY_FILE,
    GATE_PARAMETERS,
    PREPARE_SUMMARY_PROPERTY_FILE,
    JOB_VOLUME_SIZE_GB,
    MAX_DEFINITION_CHARS,
    NEURON_INFERENCE_TAG,
    MODULE_BASELINE,
    MODULE_COMPILE_NEURON,
    MODULE_EVALUATE,
    MODULE_MODEL_CARD,
    MODULE_PREPARE,
    MODULE_TRAIN,
    MODULE_TRAIN_TORCH,
    PARAM_APPROVAL_STATUS,
    PARAM_INPUT_FEATURES,
    PARAM_INPUT_LABELS,
    PARAM_PROCESSING_INSTANCE_TYPE,
    PARAM_TRAINING_INSTANCE_COUNT,
    PARAM_TRAINING_INSTANCE_TYPE,
    PARAM_TRIGGER_REASON,
    PROCESSING_MAX_RUNTIME_SECONDS,
    PYTORCH_FRAMEWORK,
    PYTORCH_VERSION,
    PROC_ENTRY_DIR,
    PROC_INPUT,
    PROC_LIB_DIR,
    PROC_MODEL_SPEC_DIR,
    PROC_OUTPUT,
    STEP_BASELINE,
    STEP_COMPILE,
    STEP_EVALUATE,
    STEP_FAIL,
    STEP_GATE,
    STEP_MODEL_CARD,
    STEP_PREPARE,
    STEP_REGISTER,
    STEP_TRAIN,
    STEP_TUNE,
    TRAIN_CHECKPOINT_DIR,
    TRAIN_DATA,
    TRAIN_ENTRY_DIR,
    TRAIN_MODEL_DIR,
    TRAIN_MODEL_SPEC_DIR,
    XGBOOST_FRAMEWORK,
    XGBOOST_VERSION,
    problem_metrics,
    torch_metrics,
)
from ..config.instance_types import INSTANCE_TYPES
from .sdk_offline import neuron_inference_image_uri, training_image_uri
from .spec import PipelineSpec
from .tokens import restore_tokens, with_placeholders


def build_pipeline_definition(spec: PipelineSpec) -> str:
    """The pipeline definition JSON for ``spec`` (deterministic, generated offline).

    Answered from :mod:`~.sdk_cache` when this spec (tokens aside) was built before with the same
    generator and SDK, otherwise generated by :func:`generate_pipeline_definition` and kept.

    Raises:
        ValueError: ``spec`` is invalid (raised by PipelineSpec itself) or the region has no
            XGBoost image of :data:`~.names.XGBOOST_VERSION`.
        mlops_loop.training.sdk_offline.OfflineViolation: the SDK tried to reach AWS.
    """
    return pipeline_definition_later(spec)()


def pipeline_definition_later(spec: PipelineSpec) -> Callable[[], str]:
    """:func:`build_pipeline_definition`, begun now: the returned function gives the definition (or raises).

    When the cache lacks it and the SDK helper runs (:mod:`.sdk_helper`: ``app.py`` on a cold cache), it is
    generated there while the caller goes on; otherwise it is built before this returns.
    """
    return _build_later(spec, cached=True)


def generate_pipeline_definition(spec: PipelineSpec) -> str:
    """:func:`build_pipeline_definition` without the cache: always runs the SDK (for tests of the SDK path)."""
    return _build_later(spec, cached=False)()


def _build_later(spec: PipelineSpec, *, cached: bool) -> Callable[[], str]:
    if not isinstance(spec, PipelineSpec):
        raise TypeError(f"build_pipeline_definition expects a PipelineSpec, got {type(spec).__name__}")
    safe_spec, replacements = with_placeholders(spec)
    if cached:
        text = sdk_cache().get_or_create_later("pipeline-definition", dataclasses.asdict(safe_spec),
                                               lambda: sdk_helper.later(_generate, safe_spec))
    else:
        generated = _generate(safe_spec)

        def text() -> str:
            return generated

    def definition() -> str:
        restored = restore_tokens(text(), replacements)
        if len(restored) > MAX_DEFINITION_CHARS:
            raise ValueError(f"the pipeline definition has {len(restored)} characters, over {MAX_DEFINITION_CHARS}")
        return restored

    return definition


def _generate(spec: PipelineSpec) -> str:
    """The SDK's definition of ``spec`` (tokens already replaced by placeholders), offline."""
    with offline_sdk(spec.region, spec.artifacts_bucket) as session:
        return _Builder(spec, session).definition()


class _Builder:
    """Builds the SDK objects of one pipeline; only used inside :func:`offline_sdk`."""

    def __init__(self, spec: PipelineSpec, session: Any) -> None:
        # SDK imports happen here, after offline_sdk() has set the region.
        from sagemaker.core import image_uris
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

        self.spec = spec
        self.session = session
        self.exec_id = ExecutionVariables.PIPELINE_EXECUTION_ID
        try:
            self.image_uri = image_uris.retrieve(XGBOOST_FRAMEWORK, region=spec.region, version=XGBOOST_VERSION)
        except ValueError as exc:
            raise ValueError(
                f"PipelineSpec.region: no SageMaker XGBoost {XGBOOST_VERSION} image in "
                f"{spec.region}: {exc}"
            ) from None
        # Processing, evaluation and serving run in the XGBoost image for every framework (a network is scored
        # with numpy there); only the training job's image follows the framework.
        try:
            self.training_image = training_image_uri(spec.framework, spec.region, spec.training_instance_type)
            # A model served on ml.inf2 is compiled, and registered to be served, in AWS's Neuron inference image.
            self.neuron_image = neuron_inference_image_uri(spec.region) if spec.compile_for_inferentia2 else None
        except ValueError as exc:
            raise ValueError(f"PipelineSpec.region: {exc}") from None

        s = spec
        self.p_features = ParameterString(PARAM_INPUT_FEATURES, default_value=s.feature_data_s3_uri)
        self.p_labels = ParameterString(PARAM_INPUT_LABELS, default_value=s.labels_s3_uri)
        self.p_processing_type = ParameterString(
            PARAM_PROCESSING_INSTANCE_TYPE, default_value=s.processing_instance_type
        )
        # A network's training image and a local-NVMe type's missing volume key follow the configured type: an
        # execution may not switch to another (the enum admits only it); XGBoost on EBS types may.
        pinned = s.framework == PYTORCH_FRAMEWORK or INSTANCE_TYPES[s.training_instance_type].local_nvme
        self.p_training_type = ParameterString(PARAM_TRAINING_INSTANCE_TYPE, default_value=s.training_instance_type,
                                               enum_values=[s.training_instance_type] if pinned else None)
        self.p_training_count = ParameterInteger(PARAM_TRAINING_INSTANCE_COUNT, default_value=s.training_instance_count)
        self.p_gate = {field: ParameterFloat(name, default_value=float(getattr(s.gate, field))) for field, name in GATE_PARAMETERS.items()}
        # Governance: where registration defaults to manual approval, an execution cannot
        # override it to self-approve (the enum admits only the default).
        approval_enum = ["PendingManualApproval"]
        if s.default_approval_status == "Approved":
            approval_enum = list(APPROVAL_STATUSES)
        self.p_approval = ParameterString(
            PARAM_APPROVAL_STATUS, default_value=s.default_approval_status, enum_values=approval_enum
        )
        self.p_trigger = ParameterString(PARAM_TRIGGER_REASON, default_value="manual")
        self.parameters = [
            self.p_features,
            self.p_labels,
            self.p_processing_type,
            self.p_training_type,
            self.p_training_count,
            *self.p_gate.values(),
            self.p_approval,
            self.p_trigger,
        ]

    # Paths ---------------------------------------------------------------------------
    def out(self, *parts: str) -> Any:
        """s3://<bucket>/pipelines/<model>/<execution id>/<parts...> (a Join): what a registered version points at
        (evaluation and baseline reports, the model card; each below one of ``integrity.RUN_REPORT_SEGMENTS``, whose
        every version the artifacts bucket keeps)."""
        return self._uri(model_prefix(self.spec.model_name), self.exec_id, *parts)

    def work(self, *parts: Any) -> Any:
        """s3://<bucket>/pipelines/<model>/work/<parts...> (a Join): the run's working data, which the artifacts
        bucket expires after ``data_lake.pipeline_work_expiration_days`` (a passing model is sealed elsewhere)."""
        return self._uri(work_prefix(self.spec.model_name), *parts)

    def _uri(self, prefix: str, *parts: Any) -> Any:
        """s3://<artifacts bucket>/<prefix><parts...> as a Join, the prefix's segments as separate values (one layout
        with the lifecycle rules that expire them: pipeline_code.core.integrity)."""
        from sagemaker.core.workflow.functions import Join

        return Join(on="/", values=["s3:/", self.spec.artifacts_bucket, *prefix.strip("/").split("/"), *parts])

    @staticmethod
    def basename(uri: str) -> str:
        return uri.rsplit("/", 1)[-1]

    def model_spec_arg(self, spec_dir: str) -> str:
        return f"{spec_dir}/{self.basename(self.spec.model_spec_s3_uri)}"

    def job_tags(self) -> Optional[List[Dict[str, str]]]:
        return [{"Key": k, "Value": v} for k, v in self.spec.tags] or None

    # Policies ------------------------------------------------------------------------
    def cache(self) -> Any:
        from sagemaker.mlops.workflow import CacheConfig

        return CacheConfig(enable_caching=True, expire_after=self.spec.cache_expire_after)

    @staticmethod
    def job_retries() -> List[Any]:
        from sagemaker.mlops.workflow import (
            SageMakerJobExceptionTypeEnum,
            SageMakerJobStepRetryPolicy,
            StepExceptionTypeEnum,
            StepRetryPolicy,
        )

        return [
            StepRetryPolicy(
                exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
                interval_seconds=10,
                backoff_rate=2.0,
                max_attempts=5,
            ),
            SageMakerJobStepRetryPolicy(
                exception_types=[
                    SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                    SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                    SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                ],
                interval_seconds=60,
                backoff_rate=2.0,
                max_attempts=3,
            ),
        ]

    @staticmethod
    def service_retries() -> List[Any]:
        from sagemaker.mlops.workflow import StepExceptionTypeEnum, StepRetryPolicy

        return [
            StepRetryPolicy(
                exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
                interval_seconds=10,
                backoff_rate=2.0,
                max_attempts=5,
            )
        ]

    # Processing ----------------------------------------------------------------------
    def processor(self, network_isolation: bool, image_uri: Optional[str] = None) -> Any:
        """A processing job in the XGBoost image, or in ``image_uri``."""
        from sagemaker.core.network import NetworkConfig
        from sagemaker.core.processing import Processor

        s = self.spec
        entry = f"{PROC_ENTRY_DIR}/{self.basename(s.code_entry_s3_uri)}"
        return Processor(
            role=s.role_arn,
            image_uri=image_uri or self.image_uri,
            instance_count=1,
            instance_type=self.p_processing_type,
            # The entry script runs only if its bytes are the ones synth hashed (an inline check, not in the bucket).
            entrypoint=container_entrypoint(entry, s.code_entry_sha256),
            # The entry script runs nothing of the "lib" zip unless its files have the digest synth computed.
            env={ENV_CODE_DIGEST: s.code_sha256},
            volume_size_in_gb=JOB_VOLUME_SIZE_GB,
            volume_kms_key=s.kms_key_arn,
            output_kms_key=s.kms_key_arn,
            max_runtime_in_seconds=PROCESSING_MAX_RUNTIME_SECONDS,
            base_job_name=f"{s.model_name}-processing",
            sagemaker_session=self.session,
            tags=self.job_tags(),
            network_config=NetworkConfig(
                enable_network_isolation=network_isolation,
                encrypt_inter_container_traffic=True,
                # The environment's VPC (None: AWS-managed networking, and the request has no VpcConfig).
                subnets=list(s.subnet_ids) or None,
                security_group_ids=list(s.security_group_ids) or None,
            ),
        )

    @staticmethod
    def proc_input(name: str, source: Any, local_path: str) -> Any:
        from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

        return ProcessingInput(
            input_name=name,
            s3_input=ProcessingS3Input(
                s3_uri=source,
                local_path=local_path,
                s3_data_type="S3Prefix",
                s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
            ),
        )

    @staticmethod
    def proc_output(name: str, local_path: str, destination: Any) -> Any:
        from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(s3_uri=destination, local_path=local_path, s3_upload_mode="EndOfJob"),
        )

    def code_inputs(self) -> List[Any]:
        s = self.spec
        inputs = [
            self.proc_input("entry", s.code_entry_s3_uri, PROC_ENTRY_DIR),
            self.proc_input("lib", s.code_library_s3_uri, PROC_LIB_DIR),
        ]
        inputs.append(self.proc_input("model_spec", s.model_spec_s3_uri, PROC_MODEL_SPEC_DIR))
        return inputs

    def processing_step(
        self,
        name: str,
        description: str,
        module: str,
        arguments: List[Any],
        inputs: List[Any],
        outputs: List[Any],
        *,
        network_isolation: bool,
        property_files: Optional[List[Any]] = None,
        cache: bool = True,
        image_uri: Optional[str] = None,
    ) -> Any:
        from sagemaker.mlops.workflow import ProcessingStep

        step_args = self.processor(network_isolation, image_uri).run(
            inputs=self.code_inputs() + inputs,
            outputs=outputs,
            arguments=[module, *arguments],
        )
        return ProcessingStep(
            name=name,
            description=description,
            step_args=step_args,
            property_files=property_files,
            cache_config=self.cache() if cache else None,
            retry_policies=self.job_retries(),
        )

    def prepare_step(self) -> Any:
        from sagemaker.core.workflow.properties import PropertyFile

        s = self.spec
        # The summary holds each split's digest as written, which the register step records (a property file).
        summary = PropertyFile(name=PREPARE_SUMMARY_PROPERTY_FILE, output_name=PREPARE_SUMMARY_DIR, path=PREPARE_SUMMARY_FILE)
        return self.processing_step(
            STEP_PREPARE,
            "Point-in-time join of feature snapshots and labels; time split; frozen test set.",
            MODULE_PREPARE,
            [
                "--model-spec", self.model_spec_arg(PROC_MODEL_SPEC_DIR),
                "--features-dir", f"{PROC_INPUT}/features",
                "--labels-dir", f"{PROC_INPUT}/labels",
                # Read by the job itself (S3 API), not mounted: SageMaker fails a job whose
                # input prefix is empty, and it is empty until the first run freezes a test set.
                "--frozen-test-dir", s.frozen_test_s3_uri,
                # A stale frozen set is replaced by the latest rows (the config's training.test_set_refreeze); the new
                # one goes back to frozen_test_s3_uri like a reused one, the replaced bytes an old object version.
                "--test-set-refreeze", s.test_set_refreeze,
                "--output-dir", PROC_OUTPUT,
                evidence_flag("min_group_rows"), str(s.gate.min_group_rows),
            ],  # fmt: skip
            [
                self.proc_input("features", self.p_features, f"{PROC_INPUT}/features"),
                self.proc_input("labels", self.p_labels, f"{PROC_INPUT}/labels"),
            ],
            [
                self.proc_output("train", f"{PROC_OUTPUT}/train", self.work(self.exec_id, "prepare", "train")),
                self.proc_output("validation", f"{PROC_OUTPUT}/validation", self.work(self.exec_id, "prepare", "validation")),
                # The test split is the frozen test set: Prepare reuses the one under
                # frozen_test_s3_uri (copied unchanged) or creates it, and it goes back there
                # so that every later run - and every champion - is scored on the same rows.
                self.proc_output("test", f"{PROC_OUTPUT}/test", s.frozen_test_s3_uri),
                self.proc_output(PREPARE_SUMMARY_DIR, f"{PROC_OUTPUT}/{PREPARE_SUMMARY_DIR}",
                                 self.work(self.exec_id, "prepare", PREPARE_SUMMARY_DIR)),
            ],
            # Network access for the S3 read of the frozen test set (see above).
            network_isolation=False,
            property_files=[summary],
        )

    def compile_step(self, model_data: Any) -> Tuple[Any, Any]:
        """Compile the trained network for Inferentia2 (torch-neuronx on a CPU instance, in the Neuron inference
        image); returns the step and the S3 prefix of the archive holding the CPU model and the compiled one."""
        step = self.processing_step(
            STEP_COMPILE,
            f"Compile the network for {INF2_TARGET} (torch-neuronx, static batch {DEFAULT_BATCH}); the archive keeps the CPU model too.",
            MODULE_COMPILE_NEURON,
            [
                "--model-dir", f"{PROC_INPUT}/model",
                "--compiler", NEURON_COMPILER,
                "--batch", str(DEFAULT_BATCH),
                "--output-dir", f"{PROC_OUTPUT}/compiled",
            ],  # fmt: skip
            [self.proc_input("model", model_data, f"{PROC_INPUT}/model")],
            [self.proc_output("compiled", f"{PROC_OUTPUT}/compiled", self.work(self.exec_id, "compile"))],
            network_isolation=True,
            image_uri=self.neuron_image,
        )
        return step, step.properties.ProcessingOutputConfig.Outputs["compiled"].S3Output.S3Uri

    def evaluate_step(self, model_data: Any, prepare: Any) -> Tuple[Any, Any]:
        from sagemaker.core.workflow.properties import PropertyFile

        report = PropertyFile(name=EVALUATION_PROPERTY_FILE, output_name="evaluation", path=EVALUATION_FILE)
        digests = PropertyFile(name=EVALUATION_DIGESTS_PROPERTY_FILE, output_name="evaluation", path=DIGESTS_FILE)
        test_uri = prepare.properties.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri
        step = self.processing_step(
            STEP_EVALUATE,
            "Challenger vs champion on the frozen test set: quality, slices, fairness, SHAP; the gate.",
            MODULE_EVALUATE,
            [
                "--model-spec", self.model_spec_arg(PROC_MODEL_SPEC_DIR),
                "--model-dir", f"{PROC_INPUT}/model",
                "--test-dir", f"{PROC_INPUT}/test",
                "--model-package-group", self.spec.model_package_group_name,
                "--region", self.spec.region,
                *[part for t in THRESHOLDS for part in (t.flag, self.p_gate[t.field].to_string())],
                # The configured gate: a run's parameters may tighten it, never loosen it (gate.decide).
                "--gate-policy", self.spec.gate.policy_arg(),
                *self.spec.gate.evidence_args(),
                # The status the execution asks for: the job answers it, or PendingManualApproval when the version
                # would answer the serving one's callers in another shape (the register step reads its answer).
                "--approval-status", self.p_approval,
                "--seal-uri", f"s3://{self.spec.artifacts_bucket}/{sealed_prefix(self.spec.model_name)}",
                "--output-dir", f"{PROC_OUTPUT}/evaluation",
            ],  # fmt: skip
            [
                self.proc_input("model", model_data, f"{PROC_INPUT}/model"),
                self.proc_input("test", test_uri, f"{PROC_INPUT}/test"),
            ],
            [self.proc_output("evaluation", f"{PROC_OUTPUT}/evaluation", self.out(EVALUATE_SEGMENT, "evaluation"))],
            # Looks up the champion in the Model Registry and reads its artifacts: needs the network.
            network_isolation=False,
            property_files=[report, digests],
            # The verdict depends on the registry's current champion, which is not part of the
            # step's cache key: a cache hit would replay a stale gate decision, so Evaluate is never cached.
            cache=False,
        )
        return step, report

    def baseline_step(self, model_data: Any, prepare: Any) -> Any:
        from sagemaker.core.workflow.properties import PropertyFile

        outputs = prepare.properties.ProcessingOutputConfig.Outputs
        train_uri, validation_uri = outputs["train"].S3Output.S3Uri, outputs["validation"].S3Output.S3Uri
        digests = PropertyFile(name=BASELINE_DIGESTS_PROPERTY_FILE, output_name="baseline", path=DIGESTS_FILE)
        return self.processing_step(
            STEP_BASELINE,
            "Statistics and constraints of the training data, and of the model's scores on the validation split, for "
            "the drift monitors.",
            MODULE_BASELINE,
            [
                "--model-spec", self.model_spec_arg(PROC_MODEL_SPEC_DIR),
                "--model-dir", f"{PROC_INPUT}/model",
                "--train-dir", f"{PROC_INPUT}/train",
                # The predictions' baseline: scores on rows the model did not fit, as traffic's are.
                "--validation-dir", f"{PROC_INPUT}/validation",
                "--output-dir", f"{PROC_OUTPUT}/baseline",
            ],  # fmt: skip
            [
                self.proc_input("model", model_data, f"{PROC_INPUT}/model"),
                self.proc_input("train", train_uri, f"{PROC_INPUT}/train"),
                self.proc_input("validation", validation_uri, f"{PROC_INPUT}/validation"),
            ],
            [self.proc_output("baseline", f"{PROC_OUTPUT}/baseline", self.out(BASELINE_SEGMENT))],
            network_isolation=True,
            property_files=[digests],
        )

    # Training ------------------------------------------------------------------------
    def train_arguments(self) -> List[str]:
        arguments = [
            MODULE_TRAIN_TORCH if self.spec.framework == PYTORCH_FRAMEWORK else MODULE_TRAIN,
            "--model-spec", self.model_spec_arg(TRAIN_MODEL_SPEC_DIR),
            "--train-dir", f"{TRAIN_DATA}/train",
            "--validation-dir", f"{TRAIN_DATA}/validation",
            "--model-dir", TRAIN_MODEL_DIR,
            "--checkpoint-dir", TRAIN_CHECKPOINT_DIR,
        ]  # fmt: skip
        for name, value in self.spec.hyperparameters:
            arguments += [f"--{name}", value]
        return arguments

    def train_channels(self, prepare: Any) -> List[Any]:
        from sagemaker.core.training.configs import InputData

        s = self.spec
        outputs = prepare.properties.ProcessingOutputConfig.Outputs
        channels = [
            InputData(channel_name="train", data_source=outputs["train"].S3Output.S3Uri),
            InputData(channel_name="validation", data_source=outputs["validation"].S3Output.S3Uri),
            InputData(channel_name="entry", data_source=s.code_entry_s3_uri),
            InputData(channel_name="lib", data_source=s.code_library_s3_uri),
        ]
        channels.append(InputData(channel_name="model_spec", data_source=s.model_spec_s3_uri))
        return channels

    def config_digest(self) -> str:
        """Short hash of everything that shapes a training run except its data."""
        s = self.spec
        material = json.dumps(
            [
                self.training_image,
                s.code_entry_s3_uri,
                s.code_library_s3_uri,
                s.model_spec_s3_uri,
                list(map(list, s.hyperparameters)),
            ]
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    def model_trainer(
        self,
        *,
        environment: Dict[str, str],
        hyperparameters: Dict[str, str],
        checkpoint: Any,
        network_isolation: bool,
        output_path: Any,
    ) -> Any:
        from sagemaker.core.shapes import MetricDefinition, Tag
        from sagemaker.core.training.configs import (
            CheckpointConfig,
            Compute,
            Networking,
            OutputDataConfig,
            StoppingCondition,
        )
        from sagemaker.train import ModelTrainer

        s = self.spec
        stopping = StoppingCondition(max_runtime_in_seconds=s.max_runtime_seconds)
        if s.use_spot:
            # Managed spot: the wait includes time queued for capacity; it must be >= the
            # runtime and a job lives at most 28 days.
            max_wait = max(s.max_runtime_seconds, min(2 * s.max_runtime_seconds, 28 * 24 * 3600))
            stopping = StoppingCondition(
                max_runtime_in_seconds=s.max_runtime_seconds, max_wait_time_in_seconds=max_wait
            )
        trainer = ModelTrainer(
            sagemaker_session=self.session,
            role=s.role_arn,
            base_job_name=f"{s.model_name}-train",
            training_image=self.training_image,
            training_input_mode="File",
            compute=Compute(
                instance_type=self.p_training_type,
                instance_count=self.p_training_count,
                # Local NVMe instance stores (e.g. ml.trn1.2xlarge, ml.g5) are encrypted by a hardware module and
                # "you can't request a VolumeKmsKeyId" there (API reference, ResourceConfig); the size stays (at most
                # the local store's, which every such type exceeds).
                volume_size_in_gb=JOB_VOLUME_SIZE_GB,
                volume_kms_key_id=None if INSTANCE_TYPES[s.training_instance_type].local_nvme else s.kms_key_arn,
                enable_managed_spot_training=s.use_spot,
            ),
            stopping_condition=stopping,
            output_data_config=OutputDataConfig(
                s3_output_path=output_path, kms_key_id=s.kms_key_arn, compression_type="GZIP"
            ),
            checkpoint_config=(
                CheckpointConfig(s3_uri=checkpoint, local_path=TRAIN_CHECKPOINT_DIR) if checkpoint is not None else None
            ),
            networking=Networking(
                enable_network_isolation=network_isolation,
                enable_inter_container_traffic_encryption=True,
                subnets=list(s.subnet_ids) or None,
                security_group_ids=list(s.security_group_ids) or None,
            ),
            environment=environment,
            hyperparameters=hyperparameters,
            tags=[Tag(key=k, value=v) for k, v in s.tags] or None,
        )
        definitions = (torch_metrics(s.problem_type, s.primary_metric) if s.framework == PYTORCH_FRAMEWORK
                       else problem_metrics(s.problem_type, s.primary_metric, s.stop_metric)[0])
        return trainer.with_metric_definitions([MetricDefinition(name=name, regex=regex) for name, regex in definitions])

    def training_step(self, prepare: Any) -> Tuple[Any, Any]:
        """Single training job: ContainerEntrypoint runs the entry script (no SDK-managed code)."""
        from sagemaker.mlops.workflow import TrainingStep

        s = self.spec
        checkpoint = None
        if s.use_spot:
            # Keyed by the data (the Prepare job that produced it) and the training config: a
            # spot restart, a step retry or a later run on the same data and config resumes
            # from it, other data or config never does, and the step cache (which hashes
            # CheckpointConfig) still hits - an execution id here would defeat it.
            checkpoint = self.work("checkpoints", prepare.properties.ProcessingJobName, self.config_digest())
        trainer = self.model_trainer(
            environment={ENV_CODE_DIGEST: s.code_sha256},
            hyperparameters=dict(s.hyperparameters),
            checkpoint=checkpoint,
            network_isolation=True,
            output_path=self.work(self.exec_id, "train"),
        )
        step_args = trainer.train(input_data_config=self.train_channels(prepare))
        step = TrainingStep(
            name=STEP_TRAIN,
            description=self.training_description(),
            step_args=step_args,
            cache_config=self.cache(),
            retry_policies=self.job_retries(),
        )
        return step, step.properties.ModelArtifacts.S3ModelArtifacts

    def training_description(self) -> str:
        if self.spec.framework != PYTORCH_FRAMEWORK:
            return "XGBoost training (stock image; entry script + pipeline_code zip as input channels)."
        image = "Neuron training image, XLA device" if INSTANCE_TYPES[self.spec.training_instance_type].accelerator == "trainium" else "stock image"
        return f"PyTorch {PYTORCH_VERSION} network training ({image}; entry script + pipeline_code zip as input channels)."

    def tuning_step(self, prepare: Any) -> Tuple[Any, Any]:
        """Automatic Model Tuning over the spec's ranges (eta / max_depth / min_child_weight), its budget and strategy,
        keeping the trial whose kept model is best
        on the model's primary metric on validation data (the metric the gate compares; ``names.problem_metrics``).

        A tuning job cannot set ContainerEntrypoint, so its training jobs run the XGBoost
        image in *script mode*: ``sagemaker_program`` is the entry script and
        ``sagemaker_submit_directory`` the local path of the "entry" channel (no tarball).
        The toolkit passes every non-``sagemaker_`` hyperparameter as a ``--name value`` flag
        (the model spec included: it is a JSON-encoded string so that the toolkit's JSON
        decoding hands the JSON text back) and sets ``SM_CHANNEL_TRAIN``/``..._VALIDATION``/
        ``SM_MODEL_DIR``; the entry script takes the module from ``MLOPS_LOOP_MODULE``.
        """
        from sagemaker.core.parameter import ContinuousParameter, IntegerParameter
        from sagemaker.core.workflow.functions import Join
        from sagemaker.mlops.workflow import TuningStep
        from sagemaker.train.tuner import HyperparameterTuner

        s = self.spec
        # The spec (which holds the dataset's whole declaration) travels as the model_spec channel;
        # the hyperparameter holds only its path, JSON-encoded for the toolkit's decoding.
        model_spec = json.dumps(self.model_spec_arg(TRAIN_MODEL_SPEC_DIR))
        tuned = {name for name, *_ in s.tuning_ranges}
        hyperparameters = {"model_spec": model_spec}
        hyperparameters.update((k, v) for k, v in s.hyperparameters if k not in tuned)
        hyperparameters.update(
            {
                "sagemaker_program": self.basename(s.code_entry_s3_uri),
                "sagemaker_submit_directory": TRAIN_ENTRY_DIR,
            }
        )
        trainer = self.model_trainer(
            environment={ENV_ENTRY_MODULE: MODULE_TRAIN, ENV_CODE_DIGEST: s.code_sha256},
            hyperparameters=hyperparameters,
            checkpoint=None,  # parallel tuning jobs must not share a checkpoint prefix
            # Script mode pip-installs the entry directory at start-up; keep the network.
            network_isolation=False,
            output_path=self.work(self.exec_id, "tune"),
        )
        definitions, objective, direction, reads_as = problem_metrics(s.problem_type, s.primary_metric, s.stop_metric)
        ranges: Dict[str, Any] = {}
        for name, kind, lo, hi, scaling in s.tuning_ranges:
            cls = ContinuousParameter if kind == "continuous" else IntegerParameter
            ranges[name] = cls(lo, hi, scaling_type=scaling)
        tuner = HyperparameterTuner(
            model_trainer=trainer,
            objective_metric_name=objective,
            objective_type=direction,
            hyperparameter_ranges=ranges,
            metric_definitions=[{"Name": name, "Regex": regex} for name, regex in definitions],
            strategy=s.tuning_strategy,
            max_jobs=s.tuning_max_jobs,
            max_parallel_jobs=s.tuning_max_parallel_jobs,
            # Auto: SageMaker stops a trial whose objective after a round is worse than the median of the earlier
            # trials' running averages at that round (each trial prints it every round; names.problem_metrics).
            early_stopping_type="Auto" if s.tuning_early_stopping else "Off",
            random_seed=42,
            base_tuning_job_name=f"{s.model_name}-tune",
            tags=self.job_tags(),
        )
        step_args = tuner.tune(inputs=self.train_channels(prepare))
        step = TuningStep(
            name=STEP_TUNE,
            description=f"Automatic Model Tuning of XGBoost ({direction.lower()} the kept model's {reads_as}).",
            step_args=step_args,
            cache_config=self.cache(),
            retry_policies=self.job_retries(),
        )
        props = step.properties
        # The best job's model: <output path>/<best training job>/output/model.tar.gz, from
        # properties only, so a cached tuning step still points at its own artifacts.
        model_data = Join(
            on="/",
            values=[
                props.TrainingJobDefinition.OutputDataConfig.S3OutputPath,
                props.BestTrainingJob.TrainingJobName,
                "output",
                "model.tar.gz",
            ],
        )
        return step, model_data

    # Registration --------------------------------------------------------------------
    def register_step(self, evaluate: Any, evaluation: Any, baseline: Any, prepare: Any) -> Any:
        """Register the sealed artefact (the evaluation's ``artifact.uri``) with its two digests, its model's content
        digest (for comparing versions) and the digest of its inference container (image and environment) in the
        package's customer metadata, next to its lineage
        (``contract.REGISTERED_PROPERTIES``: the commit, the job code's asset hash and the model spec's digest among
        them), each ModelMetrics document with its digest (ContentDigest, from the
        evaluate and baseline steps' ``digests.json``), and the test set's digest and the prepared splits'
        locations and digests (Prepare's summary) in the customer metadata (:mod:`pipeline_code.core.integrity`)."""
        from sagemaker.core.drift_check_baselines import DriftCheckBaselines
        from sagemaker.core.metadata_properties import MetadataProperties
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join, JsonGet
        from sagemaker.mlops.workflow import ModelStep
        from sagemaker.serve.model_builder import ModelBuilder

        s = self.spec

        def reported(path: str) -> Any:
            return JsonGet(step_name=evaluate.name, property_file=evaluation, json_path=path)

        evaluation_dir = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
        baseline_dir = baseline.properties.ProcessingOutputConfig.Outputs["baseline"].S3Output.S3Uri

        def report(step: Any, directory: Any, filename: str) -> Any:
            # The digest the job wrote as the document was final: SageMaker keeps it with the package for good
            # (UpdateModelPackage takes no ModelMetrics), so the audit can tell a document rewritten since.
            (digests,) = [f for f in step.property_files if f.path == DIGESTS_FILE]  # the evaluate's has two
            return MetricsSource(
                content_type="application/json",
                s3_uri=Join(on="/", values=[directory, filename]),
                content_digest=JsonGet(step_name=step.name, property_file=digests, json_path=digest_key(filename)),
            )

        (baseline_digests,) = [f for f in baseline.property_files if f.path == DIGESTS_FILE]
        statistics = report(baseline, baseline_dir, STATISTICS_FILE)
        constraints = report(baseline, baseline_dir, CONSTRAINTS_FILE)
        metrics = ModelMetrics(
            model_statistics=report(evaluate, evaluation_dir, MODEL_QUALITY_FILE),
            model_data_statistics=statistics,
            model_data_constraints=constraints,
            bias=report(evaluate, evaluation_dir, BIAS_FILE),
            explainability=report(evaluate, evaluation_dir, EXPLAINABILITY_FILE),
        )
        splits = prepare.properties.ProcessingOutputConfig.Outputs
        (prepare_summary,) = prepare.property_files
        image, environment = self.neuron_image or self.image_uri, dict(s.inference_environment)
        builder = ModelBuilder(
            s3_model_data_url=reported(SEALED_URI_PATH),
            image_uri=image,
            role_arn=s.role_arn,
            sagemaker_session=self.session,
            env_vars=environment,
            log_level=logging.ERROR,  # ModelBuilder otherwise sets the SDK's logger to DEBUG
        )
        step_args = builder.register(
            model_package_group_name=s.model_package_group_name,
            content_types=list(s.content_types),
            response_types=list(s.response_types),
            # The evaluation's answer to the execution's ModelApprovalStatus: never Approved when that asked for
            # PendingManualApproval, and PendingManualApproval when the callers' contract changes.
            approval_status=reported(APPROVAL_STATUS_PATH),
            model_metrics=metrics,
            drift_check_baselines=DriftCheckBaselines(
                model_data_statistics=statistics, model_data_constraints=constraints
            ),
            metadata_properties=MetadataProperties(
                commit_id=s.code_version,
                generated_by=ExecutionVariables.PIPELINE_EXECUTION_ARN,
                project_id=s.pipeline_name,
            ),
            # Exactly contract.REGISTERED_PROPERTIES: the keys the approver role may not set or remove.
            customer_metadata_properties={
                CODE_VERSION_PROPERTY: s.code_version,
                # What the build was, whatever git says: the job code every step imported, and the model spec
                # every job read (the bytes of the model_spec_s3_uri object).
                JOB_CODE_HASH_PROPERTY: s.code_asset_hash,
                # ... and by content: the digest every job verified the zip against before running it.
                JOB_CODE_SHA256_PROPERTY: s.code_sha256,
                MODEL_SPEC_SHA256_PROPERTY: hashlib.sha256(s.model_spec_json.encode()).hexdigest(),
                TRIGGER_REASON_PROPERTY: self.p_trigger,
                INPUT_FEATURES_PROPERTY: self.p_features,
                INPUT_LABELS_PROPERTY: self.p_labels,
                FROZEN_TEST_PROPERTY: s.frozen_test_s3_uri,
                PIPELINE_NAME_PROPERTY: s.pipeline_name,
                PIPELINE_EXECUTION_ID_PROPERTY: ExecutionVariables.PIPELINE_EXECUTION_ID,
                ARCHIVE_SHA256_PROPERTY: reported(ARCHIVE_SHA256_PATH),
                MODEL_SHA256_PROPERTY: reported(MODEL_SHA256_PATH),
                CONTAINER_SHA256_PROPERTY: container_digest(image, environment),
                # What the model is without its training time: versions trained alike share it (reproducibility).
                MODEL_CONTENT_SHA256_PROPERTY: reported(MODEL_CONTENT_SHA256_PATH),
                TEST_SET_SHA256_PROPERTY: reported(TEST_SET_SHA256_PATH),
                **{key: splits[split].S3Output.S3Uri for split, key in SPLIT_PROPERTIES.items()},
                **{key: JsonGet(step_name=prepare.name, property_file=prepare_summary, json_path=split_sha256_path(split))
                   for split, key in SPLIT_SHA256_PROPERTIES.items()},
                # The monitor's attribution baseline has no ModelMetrics slot: its ContentDigest as Baseline wrote it.
                ATTRIBUTIONS_SHA256_PROPERTY: JsonGet(step_name=baseline.name, property_file=baseline_digests,
                                                      json_path=digest_key(ATTRIBUTIONS_FILE)),
            },
            description=(
                f"{s.model_name}: {self.model_description()}, code {s.code_version}, passed the promotion gate"
            ),
            domain="MACHINE_LEARNING",
            # The model package's ML task (CreateModelPackage Task): what the registry and model cards show.
            task="REGRESSION" if s.problem_type == REGRESSION else "CLASSIFICATION",
        )
        return ModelStep(name=STEP_REGISTER, step_args=step_args, retry_policies=self.service_retries())

    def model_description(self) -> str:
        if self.spec.compile_for_inferentia2:
            return (f"PyTorch {PYTORCH_VERSION} network compiled for {INF2_TARGET} with torch-neuronx, served in the Neuron "
                    f"inference image ({NEURON_INFERENCE_TAG})")
        if self.spec.framework == PYTORCH_FRAMEWORK:
            return f"PyTorch {PYTORCH_VERSION} network served with numpy in the XGBoost {XGBOOST_VERSION} image"
        return f"XGBoost {XGBOOST_VERSION}"

    def model_card_step(self, evaluate: Any, register: Any) -> Any:
        """A SageMaker Model Card (Draft) for the registered version, filled from its evaluation."""
        s = self.spec
        evaluation_dir = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
        step = self.processing_step(
            STEP_MODEL_CARD,
            "Model card of the registered version: intended use, evaluation, fairness, limitations.",
            MODULE_MODEL_CARD,
            [
                "--model-spec", self.model_spec_arg(PROC_MODEL_SPEC_DIR),
                "--evaluation-dir", f"{PROC_INPUT}/evaluation",
                "--model-package-arn", register.properties.ModelPackageArn,
                "--test-set-uri", s.frozen_test_s3_uri,
                "--kms-key-id", s.kms_key_arn,
                "--region", s.region,
                "--output-dir", f"{PROC_OUTPUT}/model-card",
                "--create",
            ],  # fmt: skip
            [self.proc_input("evaluation", evaluation_dir, f"{PROC_INPUT}/evaluation")],
            [self.proc_output("model_card", f"{PROC_OUTPUT}/model-card", self.out(MODEL_CARD_SEGMENT))],
            # Creates the card through the SageMaker API.
            network_isolation=False,
            cache=False,
        )
        return step

    # Pipeline ------------------------------------------------------------------------
    def definition(self) -> str:
        from sagemaker.core.workflow.conditions import ConditionEquals
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join, JsonGet
        from sagemaker.mlops.workflow import (
            ConditionStep,
            FailStep,
            Pipeline,
            PipelineExperimentConfig,
        )

        s = self.spec
        prepare = self.prepare_step()
        train, model_data = self.tuning_step(prepare) if s.enable_tuning else self.training_step(prepare)
        steps = [prepare, train]
        evaluated = model_data
        if s.compile_for_inferentia2:
            compiled, evaluated = self.compile_step(model_data)
            steps.append(compiled)
        evaluate, report = self.evaluate_step(evaluated, prepare)
        baseline = self.baseline_step(model_data, prepare)
        register = self.register_step(evaluate, report, baseline, prepare)
        model_card = self.model_card_step(evaluate, register)
        evaluation_dir = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
        fail = FailStep(
            name=STEP_FAIL,
            description="The challenger did not pass the promotion gate; nothing is registered.",
            error_message=Join(
                on="",
                values=[
                    f"Model {s.model_name} did not pass the promotion gate (quality, champion margin, slices or "
                    "fairness); the reasons are under gate.reasons in ",
                    evaluation_dir,
                    f"/{EVALUATION_FILE}",
                ],
            ),
        )
        gate = ConditionStep(
            name=STEP_GATE,
            description="Register only a challenger whose evaluation says gate.passed = true.",
            conditions=[
                ConditionEquals(
                    left=JsonGet(step_name=evaluate.name, property_file=report, json_path=GATE_PASSED_PATH),
                    right=True,
                )
            ],
            if_steps=[baseline, register, model_card],
            else_steps=[fail],
        )
        pipeline = Pipeline(
            name=s.pipeline_name,
            parameters=self.parameters,
            steps=[*steps, evaluate, gate],
            pipeline_experiment_config=PipelineExperimentConfig(
                ExecutionVariables.PIPELINE_NAME, ExecutionVariables.PIPELINE_EXECUTION_ID
            ),
            sagemaker_session=self.session,
        )
        definition = json.loads(pipeline.definition())
        self.complete(definition)
        return json.dumps(definition)

    def complete(self, definition: Dict[str, Any]) -> None:
        """Add to the SDK's output what SDK v3 cannot express (each addition is explained)."""
        s = self.spec
        by_name = _steps_by_name(definition)
        if STEP_TRAIN in by_name:
            # ModelTrainer only sets ContainerEntrypoint together with SDK-managed source code
            # (a driver directory it uploads at definition time): add the entrypoint here.
            algorithm = by_name[STEP_TRAIN]["Arguments"]["AlgorithmSpecification"]
            algorithm["ContainerEntrypoint"] = container_entrypoint(
                f"{TRAIN_ENTRY_DIR}/{self.basename(s.code_entry_s3_uri)}", s.code_entry_sha256)
            algorithm["ContainerArguments"] = self.train_arguments()
        if STEP_TUNE in by_name:
            # The SDK's tuner rebuilds ResourceConfig without the volume key and drops the
            # ModelTrainer's networking flags.
            job = by_name[STEP_TUNE]["Arguments"]["TrainingJobDefinition"]
            if not INSTANCE_TYPES[s.training_instance_type].local_nvme:  # as in model_trainer
                job["ResourceConfig"]["VolumeKmsKeyId"] = s.kms_key_arn
            job["EnableInterContainerTrafficEncryption"] = True
            job["EnableNetworkIsolation"] = False
            if s.vpc_config is not None:  # ... and the VPC with them
                job["VpcConfig"] = s.vpc_config
        # ModelBuilder always writes empty script-mode variables (SAGEMAKER_PROGRAM="" ...)
        # into the registered container: keep exactly the configured inference environment.
        container = by_name[STEP_REGISTER]["Arguments"]["InferenceSpecification"]["Containers"][0]
        container.pop("Environment", None)
        if s.inference_environment:
            container["Environment"] = dict(s.inference_environment)


def _steps_by_name(definition: Mapping[str, Any]) -> Dict[str, Any]:
    steps: Dict[str, Any] = {}

    def walk(items: Sequence[Mapping[str, Any]]) -> None:
        for step in items:
            steps[step["Name"]] = step
            if step["Type"] == "Condition":
                walk(step["Arguments"].get("IfSteps", []))
                walk(step["Arguments"].get("ElseSteps", []))

    walk(definition["Steps"])
    return steps


def step_graph(definition: str) -> Mapping[str, Any]:
    """``{step name: step}`` of a definition JSON, condition branches included."""
    return _steps_by_name(json.loads(definition))

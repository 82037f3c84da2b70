"""What a pipeline definition is built from (:class:`PipelineSpec`), and its validation: every
problem reported at once, naming the field."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from pipeline_code.core.contract import REFREEZE_WHEN_STALE, TEST_SET_REFREEZE_POLICIES
from pipeline_code.core.problem import BINARY, PROBLEM_TYPES, SQUARED_ERROR, default_primary_metric, xgboost_eval_metrics
from pipeline_code.core.thresholds import GateThresholds

from ..config.instance_types import volume_key_problem
from ..config.network import MAX_SECURITY_GROUPS, MAX_SUBNETS, SECURITY_GROUP_ID, SUBNET_ID
from ..config.training import MAX_TUNING_JOBS, MAX_TUNING_PARALLEL_JOBS, TUNING_STRATEGIES
from .tokens import CDK_TOKEN, PASS_THROUGH_FIELDS, TOKEN_FIELDS, has_token
from .names import (APPROVAL_STATUSES, DEFAULT_HYPERPARAMETERS, PYTORCH_FRAMEWORK, TUNING_DEFAULT_STRATEGY, TUNING_MAX_JOBS,
                    TUNING_MAX_PARALLEL_JOBS, TUNING_RANGES, XGBOOST_FRAMEWORK)


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_URI = re.compile(r"^s3://([^/]+)(/.*)?$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[A-Za-z0-9-]+|alias/[\w/-]+)$")
_PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_MODEL_NAME = re.compile(r"^[a-z0-9](-?[a-z0-9]){0,62}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z][a-z0-9-]*\.[a-z0-9]+$")
# CustomerMetadataProperties values: letters, separators, digits and _.:/=+-@ (max 256).
_METADATA_VALUE = re.compile(r"^[\w .:/=+\-@]{1,256}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_HYPERPARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,255}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")
_TAG_VALUE = re.compile(r"^[\w .:/=+\-@]{0,256}$")

_MODEL_SPEC_KEYS = ("name", "dataset", "target", "features")

@dataclass(frozen=True)
class PipelineSpec:
    """Everything the training pipeline of one model needs; plain values only.

    Resource fields (ARNs, bucket, S3 URIs, group name, account) may contain CDK tokens;
    every other field must be a literal. Invalid values raise ``ValueError`` naming the
    field(s) at construction.
    """

    # Identity
    pipeline_name: str
    region: str
    account: str
    # Execution role of every job (and of the model package's lineage).
    role_arn: str
    # Artifacts: every output lives under s3://<artifacts_bucket>/pipelines/<model_name>/: a run's working data
    # (prepared sets, training/tuning/compile outputs, checkpoints) under work/, which expires; the reports a
    # registered version points at under <execution id>/.
    artifacts_bucket: str
    kms_key_arn: str  # volumes of every job and every job output
    # The model
    model_name: str
    model_spec_json: str  # the model's config entry (name, dataset declaration, target, features, ...)
    # The same spec as an S3 JSON object, which is what the jobs read: it carries the dataset's whole
    # declaration, far beyond the 256 characters of a SageMaker container argument.
    model_spec_s3_uri: str
    model_package_group_name: str
    # Data
    feature_data_s3_uri: str  # feature snapshots prefix (default of InputFeatures)
    labels_s3_uri: str  # curated labels prefix (default of InputLabels)
    frozen_test_s3_uri: str  # frozen test set prefix (read, and written back by Prepare)
    # Code (S3 assets): the entry script and the zip holding the pipeline_code package.
    code_entry_s3_uri: str
    code_library_s3_uri: str
    code_version: str  # git commit captured at synth; recorded on the model package
    code_asset_hash: str  # the library zip's CDK asset hash (64 hex digits); recorded on the model package
    # The digest of the library zip's files (integrity.files_digest: each file's path and sha256), computed at synth:
    # every job's entry script refuses a zip whose files digest to anything else; recorded on the model package.
    code_sha256: str
    # The sha256 of the entry script's bytes: every job's command (sagemaker_entry.container_entrypoint) runs it only
    # if it has it.
    code_entry_sha256: str
    # Gate thresholds (defaults of the pipeline parameters; validated by their own type)
    gate: GateThresholds
    # Prepare's rule for the frozen test set (its --test-set-refreeze argument): replace a stale one by the latest
    # rows (when_stale), or keep it until deleted (never).
    test_set_refreeze: str = REFREEZE_WHEN_STALE
    default_approval_status: str = "PendingManualApproval"
    # Compute
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = 1
    use_spot: bool = False
    max_runtime_seconds: int = 3600  # training (and each tuning job)
    # Training: what trains the model ("xgboost", or "pytorch": the tabular network of train_torch, whose
    # hyperparameters are names.DEFAULT_TORCH_HYPERPARAMETERS), with these hyperparameters.
    framework: str = XGBOOST_FRAMEWORK
    hyperparameters: Tuple[Tuple[str, str], ...] = DEFAULT_HYPERPARAMETERS
    enable_tuning: bool = False
    # With enable_tuning: the ranges searched ((name, "integer" | "continuous", lowest, highest, scaling), the model's
    # config over the framework's), the budget (training jobs in all, at once) and the search strategy.
    tuning_ranges: Tuple[Tuple[str, str, Any, Any, str], ...] = TUNING_RANGES
    tuning_max_jobs: int = TUNING_MAX_JOBS
    tuning_max_parallel_jobs: int = TUNING_MAX_PARALLEL_JOBS
    tuning_strategy: str = TUNING_DEFAULT_STRATEGY
    # SageMaker's Auto early stopping of trials, on the objective each prints after every round (names.problem_metrics).
    tuning_early_stopping: bool = False
    # A network served on ml.inf2 in this environment: a Compile step after training (torch-neuronx, in the Neuron
    # inference image), whose archive is evaluated, sealed with its parity sample and registered with that image.
    compile_for_inferentia2: bool = False
    # Step caching: Prepare, Train/Tune and Baseline are cached for cache_expire_after. The
    # cache key holds S3 URIs, not contents, and the app's data prefixes are fixed: a long expiry
    # would replay last week's Prepare/Train on a scheduled or drift-triggered retrain, so the
    # default is one hour, which still makes a retried execution cheap. Evaluate is not cached
    # (its verdict also depends on the current champion in the Model Registry, which the cache
    # key does not capture).
    cache_expire_after: str = "PT1H"
    # Registration
    inference_environment: Tuple[Tuple[str, str], ...] = ()
    content_types: Tuple[str, ...] = ("text/csv", "application/json")
    response_types: Tuple[str, ...] = ("text/csv", "application/json")
    # Tags of every job.
    tags: Tuple[Tuple[str, str], ...] = ()
    # The VPC every processing, training and tuning job runs in (both set, or neither: AWS-managed networking).
    # Part of the definition cache's key like every field.
    subnet_ids: Tuple[str, ...] = ()
    security_group_ids: Tuple[str, ...] = ()

    @property
    def vpc_config(self) -> Optional[Dict[str, List[str]]]:
        """The jobs' ``VpcConfig`` (PascalCase, as a request takes it), or None without subnets."""
        if not self.subnet_ids:
            return None
        return {"SecurityGroupIds": list(self.security_group_ids), "Subnets": list(self.subnet_ids)}

    @property
    def problem_type(self) -> str:
        """What the model predicts, as its spec says (``core.problem``; binary when the spec does not say)."""
        return str(json.loads(self.model_spec_json).get("problem_type", BINARY))

    @property
    def primary_metric(self) -> str:
        """The metric the gate compares challenger and champion on, as the spec says (else its type's default)."""
        return str(json.loads(self.model_spec_json).get("primary_metric") or default_primary_metric(self.problem_type))

    @property
    def stop_metric(self) -> str:
        """XGBoost's per-round metric the training job stops early on: its type's, or a regression ``loss``'s own
        (``core.problem.xgboost_eval_metrics``: ``poisson-nloglik``, ``tweedie-nloglik@1.5``, ``gamma-deviance``)."""
        data = json.loads(self.model_spec_json)
        return xgboost_eval_metrics(self.problem_type, data.get("loss", SQUARED_ERROR), data.get("tweedie_variance_power"))[-1]

    def __post_init__(self) -> None:
        problems = _validate(self)
        if problems:
            raise ValueError("invalid PipelineSpec: " + "; ".join(problems))

    # Derived values ------------------------------------------------------------------
    @property
    def model_spec(self) -> Dict[str, Any]:
        return json.loads(self.model_spec_json)

    @property
    def artifacts_prefix(self) -> str:
        return f"s3://{self.artifacts_bucket}/pipelines/{self.model_name}"


def _validate(spec: PipelineSpec) -> List[str]:
    """Every problem of ``spec``, each starting with the field name."""
    problems: List[str] = []

    def bad(name: str, message: str) -> None:
        problems.append(f"{name}: {message}")

    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        # A pass-through field may hold its generation placeholder, never a CDK token.
        token = bool(CDK_TOKEN.search(value)) if f.name in PASS_THROUGH_FIELDS and isinstance(value, str) else has_token(value)
        if token and f.name not in TOKEN_FIELDS:
            bad(f.name, "must be a literal value, not a CDK token")

    def text(name: str, pattern: "re.Pattern[str]", what: str, *, token_ok: bool = False) -> Optional[str]:
        value = getattr(spec, name)
        if not isinstance(value, str) or not value:
            bad(name, f"must be a non-empty string ({what}), got {value!r}")
            return None
        if token_ok and has_token(value):
            return value
        if not pattern.match(value):
            bad(name, f"{value!r} is not {what}")
            return None
        return value

    text("pipeline_name", _PIPELINE_NAME, "a SageMaker pipeline name (letters, digits, hyphens; max 256)")
    text("region", _REGION, "an AWS region such as 'eu-west-1'")
    text("account", _ACCOUNT, "a 12-digit AWS account id", token_ok=True)
    text("role_arn", _ROLE_ARN, "an IAM role ARN (arn:aws:iam::<account>:role/<name>)", token_ok=True)
    text("kms_key_arn", _KMS_ARN, "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)", token_ok=True)
    text("artifacts_bucket", _BUCKET, "an S3 bucket name", token_ok=True)
    text("model_name", _MODEL_NAME, "a model name (lowercase letters, digits, single hyphens; max 63)")
    text(
        "model_package_group_name",
        _GROUP_NAME,
        "a model package group name (letters, digits, hyphens; max 63)",
        token_ok=True,
    )
    text("processing_instance_type", _INSTANCE_TYPE, "a SageMaker instance type such as 'ml.m5.xlarge'")
    text("training_instance_type", _INSTANCE_TYPE, "a SageMaker instance type such as 'ml.m5.xlarge'")
    text("code_version", _METADATA_VALUE, "a version string (max 256 of letters, digits, space, _.:/=+-@)")
    # token_ok: the generation placeholder of a pass-through field (a CDK token is refused above).
    text("code_asset_hash", _SHA256, "a CDK asset hash (64 lower-case hex digits)", token_ok=True)
    text("code_sha256", _SHA256, "a files digest (64 lower-case hex digits)", token_ok=True)
    text("code_entry_sha256", _SHA256, "a sha256 (64 lower-case hex digits)", token_ok=True)
    text("cache_expire_after", _ISO_DURATION, "an ISO 8601 duration such as 'P30D'")

    for name in ("feature_data_s3_uri", "labels_s3_uri", "frozen_test_s3_uri"):
        _check_s3_uri(spec, name, bad)
    _check_s3_uri(spec, "code_entry_s3_uri", bad, suffix=".py")
    _check_s3_uri(spec, "code_library_s3_uri", bad, suffix=".zip")
    _check_s3_uri(spec, "model_spec_s3_uri", bad, suffix=".json")

    _check_model_spec(spec, bad)

    if spec.default_approval_status not in APPROVAL_STATUSES:
        bad(
            "default_approval_status",
            f"must be one of {list(APPROVAL_STATUSES)}, got {spec.default_approval_status!r}",
        )

    if not isinstance(spec.gate, GateThresholds):
        bad("gate", f"must be a GateThresholds, got {type(spec.gate).__name__}")
    if spec.test_set_refreeze not in TEST_SET_REFREEZE_POLICIES:
        bad("test_set_refreeze", f"must be one of {list(TEST_SET_REFREEZE_POLICIES)}, got {spec.test_set_refreeze!r}")

    for name, lo, hi in (
        ("training_instance_count", 1, 100),
        ("max_runtime_seconds", 60, 28 * 24 * 3600),
    ):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int):
            bad(name, f"must be an integer, got {value!r}")
        elif not lo <= value <= hi:
            bad(name, f"must be within [{lo}, {hi}], got {value!r}")

    for name, lo, hi in (("tuning_max_jobs", 1, MAX_TUNING_JOBS), ("tuning_max_parallel_jobs", 1, MAX_TUNING_PARALLEL_JOBS)):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            bad(name, f"must be an integer within [{lo}, {hi}], got {value!r}")
    if spec.tuning_strategy not in TUNING_STRATEGIES:
        bad("tuning_strategy", f"must be one of {list(TUNING_STRATEGIES)}, got {spec.tuning_strategy!r}")
    if not isinstance(spec.tuning_ranges, tuple) or not all(
            isinstance(r, tuple) and len(r) == 5 and r[1] in ("integer", "continuous") and r[2] < r[3]
            for r in spec.tuning_ranges):
        bad("tuning_ranges", f"must be a tuple of (name, 'integer' | 'continuous', lowest, highest, scaling) with "
                             f"lowest < highest, got {spec.tuning_ranges!r}")

    for name in ("use_spot", "enable_tuning", "tuning_early_stopping"):
        if not isinstance(getattr(spec, name), bool):
            bad(name, f"must be a bool, got {getattr(spec, name)!r}")

    _check_pairs(spec, "hyperparameters", bad, key_pattern=_HYPERPARAMETER_NAME, value_max=2500)
    for reserved in [name for name, _ in _pairs(spec.hyperparameters) if name.startswith("sagemaker_")]:
        bad("hyperparameters", f"{reserved!r} is reserved (sagemaker_* hyperparameters are set by the pipeline)")
    _check_pairs(spec, "inference_environment", bad, key_pattern=_ENV_NAME, value_max=1024)
    _check_pairs(spec, "tags", bad, key_pattern=_TAG_KEY, value_pattern=_TAG_VALUE, max_items=45)
    for name in ("content_types", "response_types"):
        value = getattr(spec, name)
        if not isinstance(value, tuple) or not value or not all(isinstance(v, str) and "/" in v for v in value):
            bad(name, f"must be a non-empty tuple of MIME types, got {value!r}")

    _check_network(spec, bad)

    # The training job leaves the volume key out on local NVMe (definition.model_trainer); processing jobs always set it.
    value = spec.processing_instance_type
    if isinstance(value, str) and _INSTANCE_TYPE.match(value) and volume_key_problem(value):
        bad("processing_instance_type", volume_key_problem(value))
    if spec.framework not in (XGBOOST_FRAMEWORK, PYTORCH_FRAMEWORK):
        bad("framework", f"must be {XGBOOST_FRAMEWORK!r} or {PYTORCH_FRAMEWORK!r}, got {spec.framework!r}")
    elif spec.framework == PYTORCH_FRAMEWORK:
        if spec.enable_tuning:
            bad("enable_tuning", "the tuning job searches XGBoost's hyperparameters; a network is not tuned")
        if spec.training_instance_count != 1:
            bad("training_instance_count", f"a network trains on one instance, not {spec.training_instance_count}")
    if spec.compile_for_inferentia2 and spec.framework != PYTORCH_FRAMEWORK:
        bad("compile_for_inferentia2", f"only a {PYTORCH_FRAMEWORK!r} network is compiled for Inferentia2, not {spec.framework!r}")

    return problems


def _check_network(spec: PipelineSpec, bad: Any) -> None:
    """Subnets and security groups together (1-16 and 1-5 ids, as VpcConfig takes them), or neither."""
    for name, pattern, limit in (("subnet_ids", SUBNET_ID, MAX_SUBNETS),
                                 ("security_group_ids", SECURITY_GROUP_ID, MAX_SECURITY_GROUPS)):
        value = getattr(spec, name)
        if not isinstance(value, tuple) or not all(isinstance(v, str) and pattern.match(v) for v in value):
            bad(name, f"must be a tuple of ids matching {pattern.pattern}, got {value!r}")
        elif len(value) > limit or len(set(value)) != len(value):
            bad(name, f"must hold at most {limit} distinct ids, got {value!r}")
    if bool(spec.subnet_ids) != bool(spec.security_group_ids):
        bad("subnet_ids", "subnet_ids and security_group_ids go together (a VpcConfig needs both)")


def _check_s3_uri(spec: PipelineSpec, name: str, bad: Any, *, suffix: Optional[str] = None) -> None:
    value = getattr(spec, name)
    if not isinstance(value, str) or not value:
        bad(name, f"must be an s3:// URI, got {value!r}")
        return
    if has_token(value) and CDK_TOKEN.fullmatch(value):
        if suffix:
            bad(name, f"must end with a literal object name ending in {suffix!r} (jobs open it by name)")
        return
    match = _S3_URI.match(value)
    if not match:
        bad(name, f"must be an s3:// URI, got {value!r}")
        return
    bucket, key = match.group(1), (match.group(2) or "")
    if not has_token(bucket) and not _BUCKET.match(bucket):
        bad(name, f"{bucket!r} is not a valid S3 bucket name")
    if any(ch.isspace() for ch in value):
        bad(name, "must not contain whitespace")
    if suffix:
        basename = key.rsplit("/", 1)[-1]
        if not key or has_token(basename) or not basename.endswith(suffix) or basename == suffix:
            bad(name, f"must point at an object whose name ends in {suffix!r}, got {value!r}")


def _check_model_spec(spec: PipelineSpec, bad: Any) -> None:
    value = spec.model_spec_json
    if not isinstance(value, str):
        bad("model_spec_json", f"must be a JSON string, got {type(value).__name__}")
        return
    try:
        data = json.loads(value)
    except ValueError as exc:
        bad("model_spec_json", f"is not valid JSON ({exc})")
        return
    if not isinstance(data, dict):
        bad("model_spec_json", "must be a JSON object")
        return
    missing = [k for k in _MODEL_SPEC_KEYS if k not in data]
    if missing:
        bad("model_spec_json", f"is missing keys {missing}")
    features = data.get("features")
    if "features" in data and (not isinstance(features, list) or not features):
        bad("model_spec_json", "'features' must be a non-empty list")
    if data.get("problem_type", BINARY) not in PROBLEM_TYPES:
        bad("model_spec_json", f"'problem_type' must be one of {list(PROBLEM_TYPES)}, got {data.get('problem_type')!r}")
    if isinstance(spec.model_name, str) and data.get("name") not in (None, spec.model_name):
        bad("model_spec_json", f"'name' is {data.get('name')!r} but model_name is {spec.model_name!r}")


def _pairs(value: Any) -> List[Tuple[str, str]]:
    if not isinstance(value, tuple):
        return []
    return [p for p in value if isinstance(p, tuple) and len(p) == 2]


def _check_pairs(
    spec: PipelineSpec,
    name: str,
    bad: Any,
    *,
    key_pattern: "re.Pattern[str]",
    value_pattern: Optional["re.Pattern[str]"] = None,
    value_max: int = 256,
    max_items: int = 100,
) -> None:
    value = getattr(spec, name)
    if not isinstance(value, tuple) or len(_pairs(value)) != len(value):
        bad(name, f"must be a tuple of (name, value) string pairs, got {value!r}")
        return
    if len(value) > max_items:
        bad(name, f"at most {max_items} entries, got {len(value)}")
    keys = [k for k, _ in value]
    if len(set(keys)) != len(keys):
        bad(name, f"duplicate names {sorted({k for k in keys if keys.count(k) > 1})}")
    for key, val in value:
        if not isinstance(key, str) or not key_pattern.match(key):
            bad(name, f"invalid name {key!r}")
        if not isinstance(val, str) or len(val) > value_max or (value_pattern and not value_pattern.match(val)):
            bad(name, f"invalid value for {key!r}: {val!r}")

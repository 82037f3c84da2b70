"""Invalid PipelineSpec values fail at construction with a ValueError naming the field."""

from __future__ import annotations

import json
import re

import pytest

from mlops_loop.training import PipelineSpec, build_pipeline_definition, step_graph
from mlops_loop.training import names as d

from tests.support import pipeline_specs as specs


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("code_entry_s3_uri", "/home/me/pipeline_code/sagemaker_entry.py", "must be an s3:// URI"),
        ("code_entry_s3_uri", "https://bucket.s3.amazonaws.com/entry.py", "must be an s3:// URI"),
        ("code_entry_s3_uri", f"s3://{specs.ASSETS_BUCKET}/code.tar.gz", "ends in '.py'"),
        ("code_library_s3_uri", "pipeline_code.zip", "must be an s3:// URI"),
        ("code_library_s3_uri", f"s3://{specs.ASSETS_BUCKET}/lib/", "ends in '.zip'"),
        ("model_spec_s3_uri", f"s3://{specs.ASSETS_BUCKET}/spec.yaml", "ends in '.json'"),
        ("feature_data_s3_uri", "s3://Bad_Bucket/features/", "not a valid S3 bucket name"),
        ("labels_s3_uri", "file:///data/labels", "must be an s3:// URI"),
        ("frozen_test_s3_uri", "", "must be an s3:// URI"),
        ("processing_instance_type", "m5.xlarge", "not a SageMaker instance type"),
        ("training_instance_type", "ml.m5", "not a SageMaker instance type"),
        ("processing_instance_type", "ml.m5d.xlarge", "local NVMe"),
        ("default_approval_status", "Rejected", "must be one of ['PendingManualApproval', 'Approved']"),
        ("default_approval_status", "approved", "must be one of"),
        ("region", "europe", "not an AWS region"),
        ("account", "1234", "12-digit"),
        ("role_arn", "mlops-loop-role", "IAM role ARN"),
        ("kms_key_arn", "alias/mlops", "KMS key ARN"),
        ("artifacts_bucket", "s3://mlops-loop-dev-artifacts", "S3 bucket name"),
        ("pipeline_name", "my pipeline", "pipeline name"),
        ("model_package_group_name", "group_with_underscores", "model package group name"),
        ("model_name", "Churn Model", "model name"),
        ("model_spec_json", "{not json", "not valid JSON"),
        ("model_spec_json", "[1, 2]", "must be a JSON object"),
        ("model_spec_json", json.dumps({"name": "churn", "dataset": "x"}), "missing keys ['target', 'features']"),
        ("model_spec_json", json.dumps({**specs.CHURN_SPEC, "name": "credit-risk"}), "'name' is 'credit-risk'"),
        ("gate", {"min_auc": 0.7}, "must be a GateThresholds, got dict"),
        ("test_set_refreeze", "always", "must be one of ['when_stale', 'never'], got 'always'"),
        ("training_instance_count", 0, "within [1, 100]"),
        ("max_runtime_seconds", 3600.0, "must be an integer"),
        ("use_spot", "yes", "must be a bool"),
        ("cache_expire_after", "30 days", "ISO 8601 duration"),
        ("code_version", "", "non-empty string"),
        ("code_version", "v1 (dirty!)", "version string"),
        ("code_asset_hash", "3f2a9c1", "not a CDK asset hash (64 lower-case hex digits)"),
        ("code_asset_hash", "${Token[TOKEN.12]}", "must be a literal value, not a CDK token"),
        ("code_sha256", "3f2a9c1", "not a files digest (64 lower-case hex digits)"),
        ("code_entry_sha256", "3f2a9c1", "not a sha256 (64 lower-case hex digits)"),
        ("code_sha256", "${Token[TOKEN.12]}", "must be a literal value, not a CDK token"),
        ("hyperparameters", (("eta", 0.1),), "invalid value for 'eta'"),
        ("hyperparameters", (("sagemaker_program", "x.py"),), "reserved"),
        ("hyperparameters", {"eta": "0.1"}, "tuple of (name, value) string pairs"),
        ("tags", (("a", "1"), ("a", "2")), "duplicate names ['a']"),
        ("content_types", (), "non-empty tuple of MIME types"),
        ("pipeline_name", "${Token[TOKEN.12]}", "must be a literal value, not a CDK token"),
    ],
)
def test_invalid_values_name_the_field(field, value, message):
    with pytest.raises(ValueError) as excinfo:
        specs.base_spec(**{field: value})
    text = str(excinfo.value)
    assert f"{field}: " in text
    assert message in text


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError) as excinfo:
        specs.base_spec(region="nowhere", training_instance_count=0, default_approval_status="Yes")
    text = str(excinfo.value)
    for field in ("region", "training_instance_count", "default_approval_status"):
        assert f"{field}: " in text


def test_the_model_spec_always_travels_as_its_s3_file():
    """The spec holds the dataset's declaration: far over the 256 characters of a container argument."""
    assert len(json.dumps(specs.CHURN_SPEC, separators=(",", ":"))) > d.MAX_CONTAINER_ARGUMENT
    steps = step_graph(build_pipeline_definition(specs.base_spec()))
    spec_file = specs.MODEL_SPEC_URI.rsplit("/", 1)[1]
    for name in (d.STEP_PREPARE, d.STEP_EVALUATE, d.STEP_BASELINE):
        args = steps[name]["Arguments"]
        arguments = args["AppSpecification"]["ContainerArguments"]
        assert arguments[arguments.index("--model-spec") + 1] == f"/opt/ml/processing/input/model_spec/{spec_file}"
        inputs = {i["InputName"]: i for i in args["ProcessingInputs"]}
        assert inputs["model_spec"]["S3Input"]["S3Uri"] == specs.MODEL_SPEC_URI
    train = steps[d.STEP_TRAIN]["Arguments"]
    arguments = train["AlgorithmSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--model-spec") + 1] == f"/opt/ml/input/data/model_spec/{spec_file}"
    channels = {c["ChannelName"]: c for c in train["InputDataConfig"]}
    assert channels["model_spec"]["DataSource"]["S3DataSource"]["S3Uri"] == specs.MODEL_SPEC_URI


def test_build_rejects_anything_but_a_spec():
    with pytest.raises(TypeError):
        build_pipeline_definition({"pipeline_name": "x"})  # type: ignore[arg-type]


def test_spec_is_frozen():
    spec = specs.base_spec()
    with pytest.raises(Exception):
        spec.use_spot = False  # type: ignore[misc]
    assert isinstance(spec, PipelineSpec)


def test_a_region_without_the_xgboost_image_is_reported():
    spec = specs.base_spec(region="xx-nowhere-9", kms_key_arn=f"arn:aws:kms:xx-nowhere-9:{specs.ACCOUNT}:key/abc")
    with pytest.raises(ValueError, match=rf"PipelineSpec.region: no SageMaker XGBoost {re.escape(d.XGBOOST_VERSION)} image in xx-nowhere-9"):
        build_pipeline_definition(spec)


def test_every_instance_type_the_table_marks_local_nvme_is_refused_for_processing_jobs_and_no_other():
    """The rule reads config/instance_types.py (was a heuristic copy of it, kept equal by a pin test). Processing jobs
    always set a volume key; the training job leaves it out on local NVMe (test_pytorch_training.py)."""
    from mlops_loop.config.instance_types import INSTANCE_TYPES

    for name, instance in INSTANCE_TYPES.items():
        if not name.startswith("ml."):
            continue
        try:
            specs.base_spec(processing_instance_type=name)
        except ValueError as exc:
            refused = "local NVMe" in str(exc)
        else:
            refused = False
        assert refused == instance.local_nvme, name


def test_the_local_nvme_column_agrees_with_the_sagemaker_sdks_own_rule():
    """The SDK leaves out a job's VolumeKmsKeyId and VolumeSizeInGB for instance types with local NVMe storage
    (the whole trn1/trn2 family included): the table must say the same for every type it lists."""
    from sagemaker.core.common_utils import instance_supports_kms, volume_size_supported

    from mlops_loop.config.instance_types import INSTANCE_TYPES

    disagree = {name: instance.local_nvme for name, instance in INSTANCE_TYPES.items() if name.startswith("ml.")
                and (instance.local_nvme == instance_supports_kms(name) or instance.local_nvme == volume_size_supported(name))}
    assert disagree == {}
    assert INSTANCE_TYPES["ml.trn1.2xlarge"].local_nvme

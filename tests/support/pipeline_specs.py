"""Sample PipelineSpecs shared by the tests and by the hermetic subprocess build."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from mlops_loop.config import load_config
from mlops_loop.training import PipelineSpec
from pipeline_code.core.thresholds import DEFAULT_GATE
from tests.support.configs import SAMPLE_CONFIG

ACCOUNT = "111111111111"
REGION = "eu-west-1"
ARTIFACTS_BUCKET = "mlops-loop-dev-artifacts"
LAKE_BUCKET = "mlops-loop-dev-lake"
ASSETS_BUCKET = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
KMS_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlops-loop-dev-churn-pipeline"

# The churn entry of the frozen sample config as the jobs read it: the dataset's whole declaration
# included, so far over the 256-character limit of a container argument (it travels as model_spec_s3_uri).
CHURN_SPEC = load_config(SAMPLE_CONFIG).models["churn"].job_spec()

ENTRY_URI = f"s3://{ASSETS_BUCKET}/0f3c9d1e2b7a4c5d6e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6.py"
LIBRARY_HASH = "9a8b7c6d5e4f30211f2e3d4c5b6a79880f1e2d3c4b5a69788796a5b4c3d2e1f0"
LIBRARY_URI = f"s3://{ASSETS_BUCKET}/{LIBRARY_HASH}.zip"
# The sha256 of the entry script's bytes, which every job's command checks before running it.
ENTRY_SHA256 = "7e5a" * 16
# The digest of the zip's files (integrity.files_digest), which every job verifies the zip against.
LIBRARY_SHA256 = "1f0e2d3c4b5a69788796a5b4c3d2e1f09a8b7c6d5e4f30211f2e3d4c5b6a7988"
MODEL_SPEC_URI = f"s3://{ASSETS_BUCKET}/5d41402abc4b2a76b9719d911017c592ae5b1c2d3e4f5a6b7c8d9e0f1a2b3c4d.json"
FEATURES_URI = f"s3://{LAKE_BUCKET}/features/customer_churn/"
LABELS_URI = f"s3://{LAKE_BUCKET}/curated/customer_churn/"
FROZEN_TEST_URI = f"s3://{ARTIFACTS_BUCKET}/pipelines/churn/frozen-test/"

BUCKETS = {ARTIFACTS_BUCKET, LAKE_BUCKET, ASSETS_BUCKET}


def base_spec(**overrides: Any) -> PipelineSpec:
    """The dev churn pipeline: spot training, manual approval, model spec as an S3 file."""
    values: dict[str, Any] = dict(
        pipeline_name="mlops-loop-dev-churn",
        region=REGION,
        account=ACCOUNT,
        role_arn=ROLE_ARN,
        artifacts_bucket=ARTIFACTS_BUCKET,
        kms_key_arn=KMS_KEY_ARN,
        model_name="churn",
        model_spec_json=json.dumps(CHURN_SPEC),
        model_spec_s3_uri=MODEL_SPEC_URI,
        model_package_group_name="mlops-loop-dev-churn",
        feature_data_s3_uri=FEATURES_URI,
        labels_s3_uri=LABELS_URI,
        frozen_test_s3_uri=FROZEN_TEST_URI,
        code_entry_s3_uri=ENTRY_URI,
        code_library_s3_uri=LIBRARY_URI,
        code_version="3f2a9c1",
        code_asset_hash=LIBRARY_HASH,
        code_sha256=LIBRARY_SHA256,
        code_entry_sha256=ENTRY_SHA256,
        gate=DEFAULT_GATE,
        default_approval_status="PendingManualApproval",
        processing_instance_type="ml.m5.xlarge",
        training_instance_type="ml.m5.xlarge",
        training_instance_count=1,
        use_spot=True,
        max_runtime_seconds=3600,
        tags=(("project", "mlops-loop"), ("model", "churn")),
    )
    values.update(overrides)
    return PipelineSpec(**values)


def replace(spec: PipelineSpec, **changes: Any) -> PipelineSpec:
    return dataclasses.replace(spec, **changes)

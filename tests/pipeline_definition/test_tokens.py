"""CDK tokens in resource fields survive generation verbatim (CDK resolves them at synth)."""

from __future__ import annotations

import json

import pytest

from mlops_loop.training import build_pipeline_definition, step_graph
from mlops_loop.training import names as d

from tests.support import pipeline_specs as specs

ROLE = "${Token[TOKEN.101]}"
KEY = "${Token[TOKEN.202]}"
BUCKET = "${Token[TOKEN.303]}"
GROUP = "${Token[TOKEN.404]}"
ASSETS = "${Token[TOKEN.505]}"


@pytest.fixture(scope="module")
def tokenized():
    spec = specs.base_spec(
        account="${Token[AWS.AccountId.7]}",
        role_arn=ROLE,
        kms_key_arn=KEY,
        artifacts_bucket=BUCKET,
        model_package_group_name=GROUP,
        frozen_test_s3_uri=f"s3://{BUCKET}/pipelines/churn/frozen-test/",
        code_entry_s3_uri=f"s3://{ASSETS}/abc.py",
        code_library_s3_uri=f"s3://{ASSETS}/def.zip",
        model_spec_s3_uri=f"s3://{ASSETS}/spec.json",
    )
    return build_pipeline_definition(spec)


def test_tokens_come_back_verbatim(tokenized):
    assert "mlopsloop-cdktoken" not in tokenized
    steps = step_graph(tokenized)
    prepare = steps[d.STEP_PREPARE]["Arguments"]
    assert prepare["RoleArn"] == ROLE
    assert prepare["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY
    assert prepare["ProcessingOutputConfig"]["KmsKeyId"] == KEY
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in prepare["ProcessingInputs"]}
    assert inputs["entry"] == f"s3://{ASSETS}/abc.py"
    assert f"s3://{BUCKET}/pipelines/churn/frozen-test/" in prepare["AppSpecification"]["ContainerArguments"]
    outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in prepare["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["train"]["Std:Join"]["Values"][1] == BUCKET
    register = steps[d.STEP_REGISTER]["Arguments"]
    assert register["ModelPackageGroupName"] == GROUP
    evaluate_args = steps[d.STEP_EVALUATE]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert evaluate_args[evaluate_args.index("--model-package-group") + 1] == GROUP
    train = steps[d.STEP_TRAIN]["Arguments"]
    assert train["RoleArn"] == ROLE
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert train["CheckpointConfig"]["S3Uri"]["Std:Join"]["Values"][1] == BUCKET


def test_every_token_is_still_a_json_string(tokenized):
    """Tokens sit inside JSON strings, where CDK's string-token resolution applies."""
    doc = json.loads(tokenized)
    assert doc["Steps"]
    for token in (ROLE, KEY, BUCKET, GROUP, ASSETS):
        assert token in tokenized


@pytest.mark.parametrize("field", ["code_entry_s3_uri", "code_library_s3_uri"])
def test_code_object_names_must_be_literal(field):
    with pytest.raises(ValueError, match=f"{field}: "):
        specs.base_spec(**{field: "${Token[TOKEN.9]}"})


def test_tokens_inside_arns_and_uris():
    """e.g. f"arn:aws:iam::{Aws.ACCOUNT_ID}:role/..." built in the CDK app."""
    account = "${Token[AWS.AccountId.7]}"
    role = f"arn:aws:iam::{account}:role/mlops-loop-pipeline"
    key = f"arn:aws:kms:eu-west-1:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    frozen = f"s3://mlops-loop-{account}-artifacts/pipelines/churn/frozen-test/"
    text = build_pipeline_definition(
        specs.base_spec(account=account, role_arn=role, kms_key_arn=key, frozen_test_s3_uri=frozen)
    )
    assert "mlopsloop-cdktoken" not in text
    prepare = step_graph(text)[d.STEP_PREPARE]["Arguments"]
    assert prepare["RoleArn"] == role
    assert prepare["ProcessingOutputConfig"]["KmsKeyId"] == key
    assert frozen in prepare["AppSpecification"]["ContainerArguments"]

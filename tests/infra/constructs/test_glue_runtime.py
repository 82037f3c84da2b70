"""GlueRuntime, built in a bare stack: encryption of everything Glue writes, its log groups, the crawler role, and a
role per job, each starting with no data access."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.glue_runtime import GlueJobRole, GlueRuntime
from pipeline_code.catalog import parse_dataset
from tests.support.cdk_outdirs import bare_outdir
from tests.support.construct_configs import NETWORK, WEB_ORDERS, network_arns, network_config, vpc_statements_of

ACCOUNT, REGION = "123456789012", "eu-west-1"
ARTIFACTS = "shop-dev-artifacts-bucket"
JOB_LOGS = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/shop-dev/*"
ORDERS, RETURNS = parse_dataset("web_orders", WEB_ORDERS), parse_dataset("returns", WEB_ORDERS)
CURATE, INGEST = "etl/glue_curate_job.py", "features/ingest.py"


def _runtime(**overrides: Any) -> tuple[Stack, GlueRuntime]:
    """GIVEN a bare stack with a key and an imported artifacts bucket WHEN a GlueRuntime is added."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account=ACCOUNT, region=REGION))
    props: dict[str, Any] = dict(
        name_prefix="shop-dev",
        key=kms.Key(stack, "Key"),
        artifacts_bucket=s3.Bucket.from_bucket_name(stack, "Artifacts", ARTIFACTS),
        database_name="shop_dev",
        log_retention=logs.RetentionDays.TWO_WEEKS,
        removal_policy=RemovalPolicy.DESTROY,
    )
    props.update(overrides)
    return stack, GlueRuntime(stack, "Glue", **props)


def _job_role(runtime: GlueRuntime, job_name: str = "shop-dev-web-orders-curate", script: str = CURATE,
              dataset=ORDERS) -> GlueJobRole:
    """WHEN a job's role is made (in the runtime's stack, as a workflow makes it)."""
    return runtime.job_role(runtime.node.scope, f"Job{len(runtime.node.scope.node.children)}", job_name=job_name,
                            script=script, dataset=dataset)


def _statements(stack: Stack, access) -> dict[str, dict]:
    policy = Template.from_stack(stack).to_json()["Resources"][stack.get_logical_id(access.managed_policy)]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def _key_arn(stack: Stack, runtime: GlueRuntime) -> dict:
    return {"Fn::GetAtt": [stack.get_logical_id(runtime.key.node.default_child), "Arn"]}


def _object_arn(stack: Stack, asset) -> str:
    return f"arn:aws:s3:::cdk-hnb659fds-assets-{ACCOUNT}-{REGION}/{stack.resolve(asset.s3_object_key)}"


@pytest.fixture(scope="module")
def built() -> tuple[Stack, GlueRuntime, GlueJobRole]:
    stack, runtime = _runtime()
    return stack, runtime, _job_role(runtime)


def test_the_security_configuration_encrypts_s3_output_logs_and_bookmarks_with_the_key(built):
    stack, runtime, job = built
    (config,) = Template.from_stack(stack).find_resources("AWS::Glue::SecurityConfiguration").values()
    key_arn = _key_arn(stack, runtime)
    assert config["Properties"] == {
        "Name": "shop-dev-glue",
        "EncryptionConfiguration": {
            "S3Encryptions": [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": key_arn}],
            "CloudWatchEncryption": {"CloudWatchEncryptionMode": "SSE-KMS", "KmsKeyArn": key_arn},
            "JobBookmarksEncryption": {"JobBookmarksEncryptionMode": "CSE-KMS", "KmsKeyArn": key_arn},
        },
    }


def test_job_logs_go_to_two_encrypted_log_groups_under_the_prefix_kept_for_the_retention(built):
    stack, runtime, job = built
    assert runtime.log_group_prefix == "/aws-glue/shop-dev"
    groups = {g["Properties"]["LogGroupName"]: g for g in Template.from_stack(stack).find_resources("AWS::Logs::LogGroup").values()}
    assert set(groups) == {"/aws-glue/shop-dev/output", "/aws-glue/shop-dev/error"}
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == _key_arn(stack, runtime)
        assert group["Properties"]["RetentionInDays"] == 14
        assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Delete", "Delete")
    resources = Template.from_stack(stack).to_json()["Resources"]
    assert [resources[stack.get_logical_id(g.node.default_child)]["Properties"]["LogGroupName"] for g in runtime.log_groups] == [
        "/aws-glue/shop-dev/output", "/aws-glue/shop-dev/error"]


def test_with_retain_the_log_groups_outlive_the_stack():
    stack, _ = _runtime(removal_policy=RemovalPolicy.RETAIN, log_retention=logs.RetentionDays.ONE_YEAR)
    groups = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup").values()
    assert {(g["DeletionPolicy"], g["Properties"]["RetentionInDays"]) for g in groups} == {("Retain", 365)}


def test_a_jobs_temp_dir_is_its_own_prefix_under_glue_temp_in_the_artifacts_bucket(built):
    _, _, job = built
    assert job.temp_dir == f"s3://{ARTIFACTS}/glue-temp/shop-dev-web-orders-curate/"


def test_each_job_role_and_the_crawler_role_are_glue_roles(built):
    stack, runtime, job = built
    roles = Template.from_stack(stack).to_json()["Resources"]
    for role, description in ((job.role, "shop-dev: Glue job shop-dev-web-orders-curate"),
                              (runtime.crawler_role, "shop-dev: Glue crawlers over the raw zone")):
        props = roles[stack.get_logical_id(role.node.default_child)]["Properties"]
        assert props["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "glue.amazonaws.com"}
        assert props["Description"] == description


def test_a_job_role_starts_with_the_key_its_logs_its_temp_dir_glue_metrics_and_its_code_only(built):
    stack, runtime, job = built
    statements = _statements(stack, job.access)
    assert list(statements) == ["DataKey", "GlueLogs", "GlueTemp", "GlueTempList", "GlueJobMetrics", "JobLibrary",
                                "CodeEtlGlueCurateJobPy", "CodeDatasetWebOrders"]
    assert statements["DataKey"]["Resource"] == _key_arn(stack, runtime)
    assert statements["GlueTemp"]["Resource"] == f"arn:aws:s3:::{ARTIFACTS}/glue-temp/shop-dev-web-orders-curate/*"
    assert "s3:PutObject" in statements["GlueTemp"]["Action"]
    assert statements["GlueTempList"]["Condition"] == {"StringLike": {"s3:prefix": ["glue-temp/shop-dev-web-orders-curate/*"]}}
    assert statements["GlueJobMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Glue"}}
    for sid, asset in (("JobLibrary", runtime.code.library), ("CodeEtlGlueCurateJobPy", runtime.code.script(CURATE)),
                       ("CodeDatasetWebOrders", runtime.code.dataset(ORDERS))):
        assert statements[sid] == {"Sid": sid, "Effect": "Allow", "Action": "s3:GetObject", "Resource": _object_arn(stack, asset)}
    assert statements["GlueLogs"]["Resource"] == JOB_LOGS, "its own log groups (--custom-logGroup-prefix) and no crawler's"
    assert "logs:AssociateKmsKey" in statements["GlueLogs"]["Action"], "the security configuration's log encryption needs it"
    roles = Template.from_stack(stack).to_json()["Resources"][stack.get_logical_id(job.access.managed_policy)]
    assert roles["Properties"]["Roles"] == [{"Ref": stack.get_logical_id(job.role.node.default_child)}]


def test_the_crawler_role_starts_with_the_key_its_logs_and_this_databases_catalog_only(built):
    stack, runtime, job = built
    statements = _statements(stack, runtime.crawler_access)
    assert list(statements) == ["DataKey", "GlueLogs", "CrawlerCatalog"]
    assert statements["CrawlerCatalog"]["Resource"] == [
        f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:database/shop_dev",
        f"arn:aws:glue:{REGION}:{ACCOUNT}:table/shop_dev/*",
    ]
    assert not [a for a in statements["CrawlerCatalog"]["Action"] if a.startswith("glue:Delete")], "crawls never delete tables"
    # With the security configuration's CloudWatch encryption, Glue writes a crawler's logs to
    # /aws-glue/crawlers-role/<role name>-<configuration name>, not /aws-glue/crawlers.
    assert statements["GlueLogs"]["Resource"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/crawlers-role/*-shop-dev-glue:*"
    assert "logs:AssociateKmsKey" in statements["GlueLogs"]["Action"]


def test_every_job_gets_a_role_of_its_own_reading_only_its_own_script_declaration_and_temp_dir():
    """GIVEN two jobs of two datasets on one runtime WHEN their roles are made THEN they are two roles, and neither
    reads the other's script or dataset declaration, nor writes the other's temporary directory; the crawler role reads
    no code at all."""
    stack, runtime = _runtime()
    curate = _job_role(runtime)
    features = _job_role(runtime, "shop-dev-returns-features", INGEST, RETURNS)
    assert stack.get_logical_id(curate.role.node.default_child) != stack.get_logical_id(features.role.node.default_child)
    mine, theirs = _statements(stack, curate.access), _statements(stack, features.access)
    assert {"CodeEtlGlueCurateJobPy", "CodeDatasetWebOrders"} <= set(mine) and not {"CodeFeaturesIngestPy", "CodeDatasetReturns"} & set(mine)
    assert {"CodeFeaturesIngestPy", "CodeDatasetReturns"} <= set(theirs) and not {"CodeEtlGlueCurateJobPy", "CodeDatasetWebOrders"} & set(theirs)
    assert theirs["GlueTemp"]["Resource"] == f"arn:aws:s3:::{ARTIFACTS}/glue-temp/shop-dev-returns-features/*"
    assert features.temp_dir == f"s3://{ARTIFACTS}/glue-temp/shop-dev-returns-features/"
    assert not [s for s in _statements(stack, runtime.crawler_access).values() if s["Action"] == "s3:GetObject"]


def test_the_database_name_scopes_the_crawler_catalog_statement():
    stack, runtime = _runtime(database_name="shop_prod")
    resources = _statements(stack, runtime.crawler_access)["CrawlerCatalog"]["Resource"]
    assert resources[1:] == [f"arn:aws:glue:{REGION}:{ACCOUNT}:database/shop_prod",
                             f"arn:aws:glue:{REGION}:{ACCOUNT}:table/shop_prod/*"]


# ------------------------------------------------------------------ the environment's VPC
GLUE_VPC_ACTIONS = {"ec2:DescribeVpcEndpoints", "ec2:DescribeRouteTables", "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcAttribute",
                    "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:CreateTags", "ec2:DeleteTags"}


def test_with_a_network_a_network_connection_in_its_first_subnet_and_zone_and_every_role_may_use_it():
    """GIVEN the environment's network WHEN the runtime is built THEN one NETWORK connection holds its first subnet, its
    zone and its security groups, and the crawler role and every job role may read that connection and hold
    AWSGlueServiceRole's EC2 actions (interfaces only in the configured subnets, tags only with Glue's own key)."""
    stack, runtime = _runtime(network=network_config())
    job = _job_role(runtime)
    (connection,) = Template.from_stack(stack).find_resources("AWS::Glue::Connection").values()
    assert connection["Properties"] == {"CatalogId": ACCOUNT, "ConnectionInput": {
        "Name": "shop-dev-vpc", "Description": "shop-dev: Glue jobs and crawlers run in the environment's VPC",
        "ConnectionType": "NETWORK", "PhysicalConnectionRequirements": {
            "SubnetId": NETWORK["subnet_ids"][0], "AvailabilityZone": "eu-west-1a",
            "SecurityGroupIdList": NETWORK["security_group_ids"]}}}
    arns = network_arns(ACCOUNT, REGION)
    for access in (job.access, runtime.crawler_access):
        statements = _statements(stack, access)
        vpc = vpc_statements_of(statements)
        assert {a for s in vpc.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} == GLUE_VPC_ACTIONS
        assert sorted(vpc["VpcCreateInterfaces"]["Resource"]) == sorted(arns["subnets"] + arns["security_groups"] + arns["interfaces"])
        assert vpc["VpcTagInterfaces"]["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}}
        assert statements["ReadConnection"]["Resource"] == [f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog",
                                                            f"arn:aws:glue:{REGION}:{ACCOUNT}:connection/shop-dev-vpc"]


def test_without_a_network_there_is_no_connection_and_no_interface_permissions(built):
    stack, runtime, job = built
    assert runtime.connection is None
    assert not Template.from_stack(stack).find_resources("AWS::Glue::Connection")
    for access in (job.access, runtime.crawler_access):
        statements = _statements(stack, access)
        assert not vpc_statements_of(statements) and "ReadConnection" not in statements

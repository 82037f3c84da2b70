"""The lifecycle command: stacks a failed first deploy left behind, and the dev teardown.

S3 runs on moto (versions, delete markers, bucket policies and logging). CloudFormation and SageMaker run on botocore
Stubbers, which also hold the exact calls and their order: moto has no stack states such as ROLLBACK_COMPLETE, no
UpdateTerminationProtection and no DeleteModelPackage. STS is stubbed too (the environment's account).
"""

from __future__ import annotations

import datetime
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber
from moto import mock_aws

from mlops_cli import lifecycle, retained
from mlops_cli.environment import teardown
from mlops_loop.config import load_config
from pipeline_code.core.contract import (
    environment_prefix,
    environment_stack_names,
    model_card_name,
    package_group_name,
    pascal,
    pipeline_name,
)
from tests.support.configs import SAMPLE_CONFIG, sample_account
from tests.support.credentials import moto_credentials
from tests.support.cli_output import after_target_line

REGION = "eu-west-1"
CONFIG = ["--config", str(SAMPLE_CONFIG)]
DEV = environment_prefix("mlops-loop", "dev")
STAGING = environment_prefix("mlops-loop", "staging")
# The sample config's dev models (frozen copy: a model added to the user's config changes nothing here).
DEV_MODELS = yaml.safe_load(SAMPLE_CONFIG.read_text())["environments"]["dev"]["models"]


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


class Session:
    """What main() makes its clients with: the given ones, and an STS that answers as ``account``."""

    def __init__(self, account: str, **clients: Any) -> None:
        self.clients = clients
        self.sts = _client("sts")
        self.sts_stub = Stubber(self.sts)
        self.sts_stub.add_response("get_caller_identity", {"Account": account, "Arn": f"arn:aws:iam::{account}:user/ops",
                                                            "UserId": "AIDA"})
        self.sts_stub.activate()

    def client(self, service: str) -> Any:
        return self.sts if service == "sts" else self.clients[service]


@pytest.fixture(autouse=True)
def _no_user_cdk_defaults(tmp_path_factory, monkeypatch):
    """The user's ~/.cdk.json is a context source of the CDK CLI, so of the bootstrap qualifier: an empty home here."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


def _write_assembly(root: Path, templates: Dict[str, Dict[str, Dict[str, Dict[str, Any]]]]) -> Path:
    """A synthesized app at ``root`` as `cdk synth` lays it out: per environment of the sample config a stage with its
    five stacks, whose resources are ``templates[env][component]`` (none when not given)."""
    config = load_config(SAMPLE_CONFIG)
    stages = {}
    for env, environment in config.environments.items():
        stage = root / f"assembly-{env}"
        stage.mkdir(parents=True)
        stacks = {}
        for component, name in environment_stack_names(environment_prefix("mlops-loop", env)).items():
            artifact = f"{env}{pascal(component)}0A1B2C3D"
            (stage / f"{artifact}.template.json").write_text(json.dumps(
                {"Resources": templates.get(env, {}).get(component, {}), "Parameters": {"BootstrapVersion": {"Type": "String"}}}))
            stacks[artifact] = {"type": "aws:cloudformation:stack", "displayName": f"{env}/{pascal(component)}",
                                "environment": f"aws://{environment.account}/{environment.region}",
                                "properties": {"templateFile": f"{artifact}.template.json", "stackName": name}}
        (stage / "manifest.json").write_text(json.dumps({"artifacts": stacks}))
        stages[f"assembly-{env}"] = {"type": "cdk:cloud-assembly",
                                     "properties": {"directoryName": f"assembly-{env}", "displayName": env}}
    (root / "manifest.json").write_text(json.dumps({"artifacts": stages}))
    return root


@pytest.fixture(autouse=True)
def _assembly_retaining_nothing(tmp_path_factory, monkeypatch):
    """The default assembly: every stack retains nothing, so a stack that does not exist is looked up nowhere (the
    repository's own cdk.out, whatever is synthesized there, is never read)."""
    monkeypatch.setattr(retained, "DEFAULT_ASSEMBLY", _write_assembly(tmp_path_factory.mktemp("cdk.out"), {}))


def _run(argv: List[str], session: Any) -> tuple[int, str]:
    out = io.StringIO()
    return lifecycle.main([*argv], session=session, out=out), out.getvalue()


# ------------------------------------------------------------------------------------------------------------ stacks


def _stack(name: str, status: str, protected: bool) -> Dict[str, Any]:
    return {"StackName": name, "StackId": _id(name), "StackStatus": status, "EnableTerminationProtection": protected,
            "CreationTime": "2026-01-01T00:00:00Z", "StackStatusReason": "The following resource(s) failed to create"}


def _id(name: str) -> str:
    return f"arn:aws:cloudformation:{REGION}:{sample_account('staging')}:stack/{name}/0a1b"


def _describe(stub: Stubber, states: Dict[str, Any]) -> None:
    """One DescribeStacks per stack of staging, in creation order; ``states``: component -> (status, protected)."""
    for component, name in environment_stack_names(STAGING).items():
        if component in states:
            stub.add_response("describe_stacks", {"Stacks": [_stack(name, *states[component])]}, {"StackName": name})
        else:
            stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {name} does not exist",
                                  expected_params={"StackName": name})


def _delete(stub: Stubber, component: str, left: Sequence[Tuple[str, str, str]] = ()) -> None:
    """The repair's calls for one stack; ``left``: for a ROLLBACK_FAILED one, its resources (type, physical id,
    status) listed first."""
    stack_id = _id(environment_stack_names(STAGING)[component])
    if left:
        stub.add_response("list_stack_resources", {"StackResourceSummaries": [
            {"LogicalResourceId": f"R{i}", "PhysicalResourceId": physical, "ResourceType": kind, "ResourceStatus": status,
             "LastUpdatedTimestamp": "2026-01-01T00:00:00Z"} for i, (kind, physical, status) in enumerate(left)]},
            {"StackName": stack_id})
    stub.add_response("update_termination_protection", {"StackId": stack_id},
                      {"StackName": stack_id, "EnableTerminationProtection": False})
    stub.add_response("delete_stack", {}, {"StackName": stack_id, "ClientRequestToken": ANY})
    # The waiter's first look finds it gone.
    deleted = {**_stack(environment_stack_names(STAGING)[component], "DELETE_COMPLETE", False), "StackId": stack_id}
    stub.add_response("describe_stacks", {"Stacks": [deleted]}, {"StackName": stack_id})


def test_a_failed_first_create_under_termination_protection_is_reported_as_blocking_and_left_alone_without_the_flag():
    """GIVEN staging's Storage stack in ROLLBACK_COMPLETE with termination protection on (the CDK CLI turned it on
    before the create ran) and no other stack WHEN the stacks are checked THEN it says that stack blocks cdk deploy and
    how to repair it, changes nothing (no call but the five DescribeStacks) and exits 1."""
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _describe(stub, {"storage": ("ROLLBACK_COMPLETE", True)})
        code, out = _run(["--env", "staging", *CONFIG, "stacks"], Session(sample_account("staging"), cloudformation=cloudformation))
        stub.assert_no_pending_responses()
    assert code == 1
    assert out.splitlines()[0] == f"Stacks of environment 'staging' (account {sample_account('staging')}, {REGION}): 1 block cdk deploy"
    storage = next(line for line in out.splitlines() if f"{STAGING}-storage " in line)
    assert "ROLLBACK_COMPLETE (protected)" in storage
    assert ("BLOCKS cdk deploy: its first create failed and termination protection stops cdk deploy deleting it; "
            "--delete-failed-creates turns protection off and deletes it") in storage
    assert f"{STAGING}-operations" in out and "not deployed" in out


def test_the_repair_deletes_exactly_the_protected_failed_creates_last_created_first_and_reports_the_rest():
    """GIVEN staging with Storage fine, DataPipeline ROLLBACK_FAILED and Training ROLLBACK_COMPLETE (both protected),
    Serving UPDATE_ROLLBACK_FAILED (protected) and no Operations WHEN the stacks are checked with
    --delete-failed-creates THEN Training then DataPipeline get protection turned off and are deleted by stack id (each
    waited for), Storage and Serving are not touched, Serving's line gives continue-update-rollback with the CDK
    cfn-exec role, and the exit is 1 (Serving still blocks)."""
    cloudformation = _client("cloudformation")
    states = {"storage": ("CREATE_COMPLETE", True), "data-pipeline": ("ROLLBACK_FAILED", True),
              "training": ("ROLLBACK_COMPLETE", True), "serving": ("UPDATE_ROLLBACK_FAILED", True)}
    with Stubber(cloudformation) as stub:
        _describe(stub, states)
        _delete(stub, "training")
        _delete(stub, "data-pipeline", left=[("AWS::Glue::Job", "gone", "DELETE_COMPLETE")])
        _describe(stub, {"storage": states["storage"], "serving": states["serving"]})
        code, out = _run(["--env", "staging", *CONFIG, "stacks", "--delete-failed-creates"],
                         Session(sample_account("staging"), cloudformation=cloudformation))
        stub.assert_no_pending_responses()
    assert code == 1
    names = environment_stack_names(STAGING)
    assert f"{names['training']}: termination protection off, deleting (ROLLBACK_COMPLETE)\n{names['training']}: deleted" in out
    assert f"{names['data-pipeline']}: deleted" in out
    account = sample_account("staging")
    assert (f"aws cloudformation continue-update-rollback --stack-name {names['serving']} --role-arn "
            f"arn:aws:iam::{account}:role/cdk-hnb659fds-cfn-exec-role-{account}-{REGION} --region {REGION} (add "
            "--resources-to-skip") in out


def test_under_a_custom_bootstrap_qualifier_the_repairs_name_that_bootstraps_cfn_exec_role(tmp_path, monkeypatch):
    """GIVEN a cdk.json whose context sets a central team's bootstrap qualifier, staging's Serving stack
    UPDATE_ROLLBACK_FAILED and its Training stack DELETE_FAILED WHEN the stacks are checked THEN both repairs name the
    cfn-exec role of that bootstrap (the one that exists), not the CDK default's."""
    from mlops_loop import cdk_json

    (tmp_path / "cdk.json").write_text(json.dumps({"app": "python app.py", "context": {
        "@aws-cdk/core:bootstrapQualifier": "corp12345"}}))
    monkeypatch.setattr(cdk_json, "CDK_JSON", tmp_path / "cdk.json")
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _describe(stub, {"training": ("DELETE_FAILED", True), "serving": ("UPDATE_ROLLBACK_FAILED", True)})
        code, out = _run(["--env", "staging", *CONFIG, "stacks"], Session(sample_account("staging"), cloudformation=cloudformation))
        stub.assert_no_pending_responses()
    account, names = sample_account("staging"), environment_stack_names(STAGING)
    role = f"arn:aws:iam::{account}:role/cdk-corp12345-cfn-exec-role-{account}-{REGION}"
    assert code == 1 and "hnb659fds" not in out
    assert (f"aws cloudformation continue-update-rollback --stack-name {names['serving']} --role-arn {role} "
            f"--region {REGION} (add --resources-to-skip") in out
    assert (f"aws cloudformation delete-stack --stack-name {names['training']} --role-arn {role} --region {REGION} (add "
            "--retain-resources") in out


def test_a_qualifier_no_bootstrap_can_have_is_refused_before_any_aws_call(tmp_path, monkeypatch, capsys):
    from mlops_loop import cdk_json

    (tmp_path / "cdk.json").write_text(json.dumps({"app": "python app.py", "context": {}}))
    (tmp_path / "cdk.context.json").write_text(json.dumps({"@aws-cdk/core:bootstrapQualifier": "Corp12345"}))
    monkeypatch.setattr(cdk_json, "CDK_JSON", tmp_path / "cdk.json")
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        code, out = _run(["--env", "staging", *CONFIG, "stacks"], Session(sample_account("staging"), cloudformation=cloudformation))
        stub.assert_no_pending_responses()
    assert code == 2 and out == ""
    assert capsys.readouterr().err == (
        f"lifecycle: error: {tmp_path / 'cdk.context.json'}: context '@aws-cdk/core:bootstrapQualifier': 'Corp12345' is "
        "not a CDK bootstrap qualifier: give 1-10 lowercase letters, digits or '-' (the bootstrap template takes at most 10 "
        "characters, and the qualifier names the bootstrap bucket, which takes no capitals or '_'), the one the account was "
        "bootstrapped with (cdk bootstrap --qualifier)\n")


def test_a_failed_rollbacks_leftovers_are_named_and_the_retry_is_not_said_to_proceed(capsys):
    """GIVEN staging's Storage stack ROLLBACK_FAILED (protected) whose rollback could not delete a fixed-name bucket
    WHEN the stacks are repaired THEN the stack is deleted, but the bucket its deletion keeps (RetainExceptOnCreate) is
    named with what to do, "can proceed" is not said and the exit is 1: the next create would fail on that name."""
    cloudformation = _client("cloudformation")
    bucket = f"{STAGING}-artifacts-{sample_account('staging')}-{REGION}"
    with Stubber(cloudformation) as stub:
        _describe(stub, {"storage": ("ROLLBACK_FAILED", True)})
        _delete(stub, "storage", left=[("AWS::S3::Bucket", bucket, "DELETE_FAILED"),
                                        ("AWS::KMS::Key", "k-1", "DELETE_COMPLETE")])
        _describe(stub, {})
        code, out = _run(["--env", "staging", *CONFIG, "stacks", "--delete-failed-creates"],
                         Session(sample_account("staging"), cloudformation=cloudformation))
        stub.assert_no_pending_responses()
    storage = environment_stack_names(STAGING)["storage"]
    assert code == 1 and f"{storage}: deleted" in out and "can proceed" not in out
    assert after_target_line(capsys.readouterr().err) == (
        f"lifecycle: {storage}: its failed rollback left 1 resources, which its deletion may have kept "
        f"(RetainExceptOnCreate), and a fixed name among them makes the next create fail: AWS::S3::Bucket {bucket}; "
        "delete those still there by hand, then cdk deploy\n")


def test_an_unprotected_failed_create_is_left_to_cdk_deploy():
    """GIVEN dev's Storage stack in ROLLBACK_COMPLETE without termination protection WHEN the stacks are checked with
    --delete-failed-creates THEN nothing is deleted (cdk deploy deletes it itself) and the exit is 0."""
    cloudformation = _client("cloudformation")
    name = environment_stack_names(DEV)["storage"]
    with Stubber(cloudformation) as stub:
        for component, stack in environment_stack_names(DEV).items():
            if component == "storage":
                stub.add_response("describe_stacks", {"Stacks": [{**_stack(stack, "ROLLBACK_COMPLETE", False)}]}, {"StackName": stack})
            else:
                stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {stack} does not exist")
        for component, stack in environment_stack_names(DEV).items():
            if component == "storage":
                stub.add_response("describe_stacks", {"Stacks": [{**_stack(stack, "ROLLBACK_COMPLETE", False)}]}, {"StackName": stack})
            else:
                stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {stack} does not exist")
        code, out = _run(["--env", "dev", *CONFIG, "stacks", "--delete-failed-creates"],
                         Session(sample_account("dev"), cloudformation=cloudformation))
        stub.assert_no_pending_responses()
    assert code == 0
    assert f"{name}" in out and "its first create failed; cdk deploy deletes it and creates it again" in out
    assert "nothing to delete: no stack is a failed first create under termination protection" in out
    assert "cdk deploy 'dev/*' can proceed" in out


def test_credentials_of_another_account_are_refused_before_any_stack_is_read(capsys):
    code, _ = _run(["--env", "staging", *CONFIG, "stacks"], Session(sample_account("prod"), cloudformation=None))
    assert code == 2
    assert after_target_line(capsys.readouterr().err) == (
        f"lifecycle: error: the credentials are of account {sample_account('prod')}, environment 'staging' is account "
        f"{sample_account('staging')}; use that account's credentials (e.g. AWS_PROFILE) and run again\n")


# ---------------------------------------------------------------------------------------------------------- teardown


class Refusing:
    def client(self, service: str) -> Any:
        raise AssertionError(f"no AWS client may be made, not even {service}")


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_teardown_is_refused_outside_tier_dev_naming_the_field_before_any_aws_call(env, capsys):
    code, out = _run(["--env", env, *CONFIG, "teardown", "--execute"], Refusing())
    assert code == 2 and out == ""
    assert capsys.readouterr().err == (
        f"lifecycle: error: environment '{env}' of {SAMPLE_CONFIG}: field 'tier' is '{env}'; teardown deletes its data "
        "and model versions, so it runs only where tier is 'dev' (a staging or prod environment is taken down by hand, "
        "see docs/deploying.md \"Recovering an environment\")\n")


@pytest.mark.parametrize("option,value,own", [("--project", "payments", "project mlops-loop"),
                                               ("--region", "us-east-1", f"region {REGION}"),
                                               ("--account", "123456789012", f"account {sample_account('dev')}")])
def test_teardown_refuses_an_override_of_the_environment_whose_tier_it_read_before_any_aws_call(option, value, own,
                                                                                                 capsys):
    """GIVEN dev (tier dev) WHEN teardown is pointed at another project, region or account THEN it is refused before
    any AWS call: the tier it checked is the config environment's, not that of what it would empty."""
    code, out = _run(["--env", "dev", *CONFIG, option, value, "teardown", "--execute"], Refusing())
    assert code == 2 and out == ""
    assert capsys.readouterr().err == (
        f"lifecycle: error: {option} {value}: environment 'dev' of {SAMPLE_CONFIG} has {own}; teardown acts only on an "
        f"environment as its config names it (its tier is read there): drop {option}\n")


TLS_GUARD = {"Sid": "TlsOnly", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
TLS_VERSION = {"Sid": "Tls12", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "*",
               "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}}


ALLOW_ACCOUNT = {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{sample_account('dev')}:root"},
                 "Action": "s3:GetObject", "Resource": "*"}


def _write_once(bucket: str) -> List[Dict[str, Any]]:
    """The statements SecureBucket writes for write-once prefixes (whichever prefixes they are)."""
    objects = [f"arn:aws:s3:::{bucket}/approval-ledger/*", f"arn:aws:s3:::{bucket}/anything/else/*"]
    return [
        {"Sid": "WriteOnceOnlyIfNoneMatch", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:PutObject",
         "Resource": objects, "Condition": {"Null": {"s3:if-none-match": "true"}}},
        {"Sid": "WriteOnceNoDelete", "Effect": "Deny", "Principal": {"AWS": "*"},
         "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"], "Resource": objects},
    ]


def test_the_policy_loses_only_the_statements_that_deny_deleting_objects():
    """GIVEN a policy with TLS guards, the write-once statements and other denies WHEN the statements denying deletes
    are picked THEN the unconditional delete denies go (also by wildcard or NotAction), the TLS guards and the
    PutObject-only denies stay."""
    wildcard = {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:Delete*", "Resource": "*"}
    not_action = {"Sid": "ReadOnly", "Effect": "Deny", "Principal": "*", "NotAction": ["s3:Get*", "s3:List*"], "Resource": "*"}
    mfa = {"Sid": "Mfa", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObjectVersion", "Resource": "*",
           "Condition": {"Null": {"aws:MultiFactorAuthAge": "true"}}}
    policy = {"Version": "2012-10-17", "Statement": [TLS_GUARD, TLS_VERSION, *_write_once("b"), wildcard, not_action, mfa]}
    kept, removed = teardown.statements_denying_deletes(policy)
    assert [s["Sid"] for s in kept] == ["TlsOnly", "Tls12", "WriteOnceOnlyIfNoneMatch"]
    assert [s["Sid"] for s in removed] == ["WriteOnceNoDelete", "NoDeletes", "ReadOnly", "Mfa"]
    assert teardown.statements_denying_deletes({"Statement": _write_once("b")[1]}) == ([], [_write_once("b")[1]])


class DevWorld:
    """Dev's Storage stack: an artifacts bucket (write-once policy, logging to the access-logs bucket) with versions and
    a delete marker, the access-logs bucket, and one model package group per dev model, each with versions and cards."""

    def __init__(self) -> None:
        self.account = sample_account("dev")
        self.s3 = boto3.client("s3", region_name=REGION)
        self.artifacts = f"{DEV}-artifacts-{self.account}-{REGION}"
        self.logs = f"{DEV}-access-logs-{self.account}-{REGION}"
        for bucket in (self.logs, self.artifacts):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
            self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            self.tag(bucket, "dev")
        # moto enforces bucket policies but not their conditions (a conditional deny denies everything there): the
        # policies here hold no TLS guard, test_the_policy_loses_only_the_statements_that_deny_deleting_objects does.
        self.logs_policy = {"Version": "2012-10-17", "Statement": [{
            "Sid": "S3ServerAccessLogsPolicy", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": ["s3:PutObject"], "Resource": f"arn:aws:s3:::{self.logs}/*"}]}
        self.s3.put_bucket_policy(Bucket=self.logs, Policy=json.dumps(self.logs_policy))
        self.s3.put_bucket_logging(Bucket=self.artifacts, BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": self.logs, "TargetPrefix": "artifacts/"}})
        self.s3.put_object(Bucket=self.artifacts, Key="approval-ledger/m/1/record.json", Body=b"one")
        self.s3.put_object(Bucket=self.artifacts, Key="pipelines/m/work/part-0.csv", Body=b"one")
        self.s3.put_object(Bucket=self.artifacts, Key="pipelines/m/work/part-0.csv", Body=b"two")
        self.s3.delete_object(Bucket=self.artifacts, Key="pipelines/m/work/part-0.csv")
        # The write-once deny, after the writes (moto would refuse a conditional write too): with it, moto refuses
        # to delete the ledger record, as S3 does.
        self.s3.put_bucket_policy(Bucket=self.artifacts, Policy=json.dumps(
            {"Version": "2012-10-17", "Statement": [ALLOW_ACCOUNT, _write_once(self.artifacts)[1]]}))
        self.s3.put_object(Bucket=self.logs, Key="artifacts/2026-01-01-log", Body=b"log")
        self.groups = [package_group_name(DEV, m) for m in DEV_MODELS]
        self.packages = {g: [f"arn:aws:sagemaker:{REGION}:{self.account}:model-package/{g}/{v}" for v in (1, 2)]
                         for g in self.groups}
        # One card per version, one as cards were named before they carried the package's creation time, a card of
        # another group that shares the prefix (never deleted), and a group-less name.
        self.protected: set = set()  # stacks still termination-protected (a dev config that left the default on)
        self.cards = {g: [model_card_name(g, 1, "2026-01-01T00:00:00Z"), model_card_name(g, 2, "2026-01-02T00:00:00Z"),
                          f"{g}-v1"] for g in self.groups}
        # The Storage stack's feature groups: each offline store's Glue table (SageMaker made it; None: no table).
        self.feature_groups = {f"{DEV}-customer-churn": f"{DEV.replace('-', '_')}_customer_churn_1767225600",
                               f"{DEV}-deliveries": None}
        self.glue = boto3.client("glue", region_name=REGION)
        self.glue.create_database(DatabaseInput={"Name": "sagemaker_featurestore"})
        for table in filter(None, self.feature_groups.values()):
            self.glue.create_table(DatabaseName="sagemaker_featurestore", TableInput={"Name": table})
        # The DataPipeline stack's Glue crawler, job and triggers (the nightly start, a conditional one), idle.
        self.crawler, self.job = f"{DEV}-customer-churn-raw", f"{DEV}-customer-churn-curate"
        self.triggers = [f"{DEV}-customer-churn-start", f"{DEV}-customer-churn-after-crawl"]
        self.glue.create_crawler(Name=self.crawler, Role=f"arn:aws:iam::{self.account}:role/crawler",
                                 Targets={"S3Targets": [{"Path": f"s3://{DEV}-raw/customer-churn/"}]})
        self.glue.create_job(Name=self.job, Role="curate", Command={"Name": "glueetl", "ScriptLocation": "s3://c/s.py"})
        self.glue.create_trigger(Name=self.triggers[0], Type="SCHEDULED", Schedule="cron(0 2 * * ? *)",
                                 Actions=[{"CrawlerName": self.crawler}], StartOnCreation=True)
        self.glue.create_trigger(Name=self.triggers[1], Type="CONDITIONAL", Actions=[{"JobName": self.job}],
                                 Predicate={"Logical": "ANY", "Conditions": [{
                                     "LogicalOperator": "EQUALS", "CrawlerName": self.crawler, "CrawlState": "SUCCEEDED"}]},
                                 StartOnCreation=True)
        # Another table of that account-wide database (another group's, another project's): never deleted.
        self.glue.create_table(DatabaseName="sagemaker_featurestore",
                               TableInput={"Name": "risk_ml_dev_payments_1767225600"})
        # The Operations stack's functions (the retrain trigger starts pipeline runs, the deploy handler writes
        # approval-ledger records on every model package state change), on a stubbed Lambda (exact calls).
        self.functions = [f"{DEV}-retrain-trigger", f"{DEV}-deploy-on-approval"]
        self.lam = _client("lambda")
        self.lambda_stub = Stubber(self.lam)
        self.lambda_stub.activate()
        # The Training stack's pipelines, and per pipeline its executions (id, status) that have not ended.
        self.pipelines = [pipeline_name(DEV, m) for m in DEV_MODELS]
        self.running: Dict[str, List[Tuple[str, str]]] = {}

    def tag(self, bucket: str, tier: str, environment: str = "dev", project: str = "mlops-loop") -> None:
        """The tags the app puts on every resource of an environment."""
        self.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
            {"Key": "project", "Value": project}, {"Key": "environment", "Value": environment},
            {"Key": "tier", "Value": tier}]})

    def stub_plan(self, cloudformation: Stubber, sagemaker: Stubber, *, protection: bool = True) -> None:
        """The teardown's look (``protection``: with its look at the stacks' termination protection, which a second
        look, after stopping executions, does not take)."""
        storage = environment_stack_names(DEV)["storage"]
        resources = [("AWS::S3::Bucket", self.logs), ("AWS::S3::Bucket", self.artifacts), ("AWS::KMS::Key", "k-1")]
        resources += [("AWS::SageMaker::ModelPackageGroup", f"arn:aws:sagemaker:{REGION}:{self.account}:model-package-group/{g}")
                      for g in self.groups]
        resources += [("AWS::SageMaker::FeatureGroup", g) for g in self.feature_groups]
        summaries = [{"LogicalResourceId": f"R{i}", "PhysicalResourceId": physical, "ResourceType": kind,
                      "LastUpdatedTimestamp": "2026-01-01T00:00:00Z", "ResourceStatus": "CREATE_COMPLETE"}
                     for i, (kind, physical) in enumerate(resources)]
        # Two pages: the second is read too.
        cloudformation.add_response("list_stack_resources", {"StackResourceSummaries": summaries[:2], "NextToken": "t"},
                                    {"StackName": storage})
        cloudformation.add_response("list_stack_resources", {"StackResourceSummaries": summaries[2:]},
                                    {"StackName": storage, "NextToken": "t"})
        training = environment_stack_names(DEV)["training"]
        cloudformation.add_response("list_stack_resources", {"StackResourceSummaries": [
            {"LogicalResourceId": f"P{i}", "PhysicalResourceId": self.pipeline_arn(p),
             "ResourceType": "AWS::SageMaker::Pipeline", "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
             "ResourceStatus": "CREATE_COMPLETE"}
            for i, p in enumerate(self.pipelines)]}, {"StackName": training})
        data_pipeline = environment_stack_names(DEV)["data-pipeline"]
        glue_resources = [("AWS::Glue::Crawler", self.crawler), ("AWS::Glue::Job", self.job)]
        glue_resources += [("AWS::Glue::Trigger", t) for t in self.triggers]
        cloudformation.add_response("list_stack_resources", {"StackResourceSummaries": [
            {"LogicalResourceId": f"G{i}", "PhysicalResourceId": physical, "ResourceType": kind,
             "LastUpdatedTimestamp": "2026-01-01T00:00:00Z", "ResourceStatus": "CREATE_COMPLETE"}
            for i, (kind, physical) in enumerate(glue_resources)]}, {"StackName": data_pipeline})
        operations = environment_stack_names(DEV)["operations"]
        cloudformation.add_response("list_stack_resources", {"StackResourceSummaries": [
            {"LogicalResourceId": f"F{i}", "PhysicalResourceId": f, "ResourceType": "AWS::Lambda::Function",
             "LastUpdatedTimestamp": "2026-01-01T00:00:00Z", "ResourceStatus": "CREATE_COMPLETE"}
            for i, f in enumerate(self.functions)]}, {"StackName": operations})
        for name in environment_stack_names(DEV).values() if protection else ():  # the look at termination protection
            cloudformation.add_response("describe_stacks", {"Stacks": [{
                "StackName": name, "StackId": f"arn:aws:cloudformation:{REGION}:{self.account}:stack/{name}/1",
                "StackStatus": "CREATE_COMPLETE", "EnableTerminationProtection": name in self.protected,
                "CreationTime": "2026-01-01T00:00:00Z"}]}, {"StackName": name})
        for pipeline in self.pipelines:
            # An ended execution first (never stopped), the running ones on a second page.
            ended = [self.execution(pipeline, "old", "Succeeded")]
            sagemaker.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": ended, "NextToken": "e"},
                                   {"PipelineName": pipeline})
            sagemaker.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
                self.execution(pipeline, run, status) for run, status in self.running.get(pipeline, [])]},
                {"PipelineName": pipeline, "NextToken": "e"})
        for group in self.groups:
            listed = [{"ModelPackageGroupName": group, "ModelPackageVersion": int(arn.rsplit("/", 1)[1]),
                       "ModelPackageArn": arn, "CreationTime": "2026-01-01", "ModelPackageStatus": "Completed"}
                      for arn in self.packages[group]]
            first, second = listed[:1], listed[1:]
            sagemaker.add_response("list_model_packages", {"ModelPackageSummaryList": first, "NextToken": "p"},
                                   {"ModelPackageGroupName": group, "ModelPackageType": "Versioned"})
            sagemaker.add_response("list_model_packages", {"ModelPackageSummaryList": second},
                                   {"ModelPackageGroupName": group, "ModelPackageType": "Versioned", "NextToken": "p"})
        for group in sorted(self.groups):
            listed = [*self.cards[group], f"{group}-v2-draft", f"{group}-extra-v1"]
            summary = [{"ModelCardName": n, "ModelCardArn": f"arn:aws:sagemaker:{REGION}:{self.account}:model-card/{n}",
                        "ModelCardStatus": "Draft", "CreationTime": "2026-01-01"} for n in listed]
            sagemaker.add_response("list_model_cards", {"ModelCardSummaries": summary[:2], "NextToken": "c"},
                                   {"NameContains": f"{group}-v"})
            sagemaker.add_response("list_model_cards", {"ModelCardSummaries": summary[2:]},
                                   {"NameContains": f"{group}-v", "NextToken": "c"})
        for group, table in self.feature_groups.items():
            offline: Dict[str, Any] = {"S3StorageConfig": {"S3Uri": f"s3://{DEV}-features/offline-store"},
                                       "DisableGlueTableCreation": table is None, "TableFormat": "Iceberg"}
            if table:
                offline["DataCatalogConfig"] = {"TableName": table, "Catalog": "AwsDataCatalog",
                                                "Database": "sagemaker_featurestore"}
            sagemaker.add_response("describe_feature_group", {
                "FeatureGroupArn": f"arn:aws:sagemaker:{REGION}:{self.account}:feature-group/{group}",
                "FeatureGroupName": group, "RecordIdentifierFeatureName": "id", "EventTimeFeatureName": "t",
                "FeatureDefinitions": [{"FeatureName": "id", "FeatureType": "String"}], "CreationTime": "2026-01-01",
                "NextToken": "", "OfflineStoreConfig": offline}, {"FeatureGroupName": group})

    def stub_look(self, cloudformation: Stubber, sagemaker: Stubber) -> None:
        """The teardown's look at what runs, once the environment is quiet (functions throttled, triggers
        deactivated): the Training stack's pipelines and their executions that have not ended, the DataPipeline
        stack's crawlers and job runs (Glue: moto)."""
        training = environment_stack_names(DEV)["training"]
        cloudformation.add_response("list_stack_resources", {"StackResourceSummaries": [
            {"LogicalResourceId": f"P{i}", "PhysicalResourceId": self.pipeline_arn(p),
             "ResourceType": "AWS::SageMaker::Pipeline", "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
             "ResourceStatus": "CREATE_COMPLETE"}
            for i, p in enumerate(self.pipelines)]}, {"StackName": training})
        for pipeline in self.pipelines:
            sagemaker.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": [
                self.execution(pipeline, run, status) for run, status in self.running.get(pipeline, [])]},
                {"PipelineName": pipeline})
        data_pipeline = environment_stack_names(DEV)["data-pipeline"]
        glue_resources = [("AWS::Glue::Crawler", self.crawler), ("AWS::Glue::Job", self.job)]
        glue_resources += [("AWS::Glue::Trigger", t) for t in self.triggers]
        cloudformation.add_response("list_stack_resources", {"StackResourceSummaries": [
            {"LogicalResourceId": f"G{i}", "PhysicalResourceId": physical, "ResourceType": kind,
             "LastUpdatedTimestamp": "2026-01-01T00:00:00Z", "ResourceStatus": "CREATE_COMPLETE"}
            for i, (kind, physical) in enumerate(glue_resources)]}, {"StackName": data_pipeline})

    def pipeline_arn(self, pipeline: str) -> str:
        return f"arn:aws:sagemaker:{REGION}:{self.account}:pipeline/{pipeline}"

    def execution(self, pipeline: str, run: str, status: str) -> Dict[str, Any]:
        return {"PipelineExecutionArn": f"{self.pipeline_arn(pipeline)}/execution/{run}",
                "StartTime": datetime.datetime(2026, 1, 5, 3, 0, tzinfo=datetime.timezone.utc),
                "PipelineExecutionStatus": status}

    def first_run(self, monkeypatch: pytest.MonkeyPatch) -> Tuple[str, str]:
        """(the first pipeline, the ARN of its execution ``run1``), with the teardown's stop wait polling without delay:
        the GIVEN of every scenario that stops a run."""
        monkeypatch.setitem(teardown.STOP_WAIT, "Delay", 0)
        pipeline = self.pipelines[0]
        return pipeline, f"{self.pipeline_arn(pipeline)}/execution/run1"

    def stub_stop(self, sagemaker: Stubber, execution: str, *statuses: str) -> None:
        """The teardown stopping ``execution`` and the wait reading ``statuses`` in turn (e.g. Stopping, Stopped)."""
        sagemaker.add_response("stop_pipeline_execution", {"PipelineExecutionArn": execution},
                               {"PipelineExecutionArn": execution, "ClientRequestToken": ANY})
        for status in statuses:
            sagemaker.add_response("describe_pipeline_execution", {"PipelineExecutionArn": execution,
                                                                   "PipelineExecutionStatus": status},
                                   {"PipelineExecutionArn": execution})

    def stub_emptied(self, cloudformation: Stubber, sagemaker: Stubber) -> None:
        """Nothing runs any more: the teardown's last look (without termination protection), its deletes, and the
        throttling it began with."""
        self.running = {}
        self.stub_plan(cloudformation, sagemaker, protection=False)
        self.stub_deletes(sagemaker)
        self.expect_throttle()

    def stub_deletes(self, sagemaker: Stubber) -> None:
        """The teardown's deletes once the buckets are empty: every version of every group, then every card."""
        for group in self.groups:
            for arn in self.packages[group]:
                sagemaker.add_response("delete_model_package", {}, {"ModelPackageName": arn})
        for card in sorted(c for g in self.groups for c in self.cards[g]):
            sagemaker.add_response("delete_model_card", {}, {"ModelCardName": card})

    def teardown(self, cloudformation: Any, sagemaker: Any, *, execute: bool = True) -> tuple[int, str]:
        """``lifecycle --env dev teardown --execute`` (the dry run without ``execute``) on these clients (moto's S3 and
        Glue, the stubbed Lambda)."""
        return _run(["--env", "dev", *CONFIG, "teardown", *(["--execute"] if execute else [])],
                    Session(self.account, cloudformation=cloudformation, sagemaker=sagemaker, s3=self.s3,
                            glue=self.glue, **{"lambda": self.lam}))

    def expect_throttle(self) -> None:
        """The teardown's first calls: every function of the Operations stack gets reserved concurrency 0."""
        for function in self.functions:
            self.lambda_stub.add_response("put_function_concurrency", {"ReservedConcurrentExecutions": 0},
                                          {"FunctionName": function, "ReservedConcurrentExecutions": 0})

    def trigger_states(self) -> List[str]:
        return [self.glue.get_trigger(Name=t)["Trigger"]["State"] for t in self.triggers]

    def tables(self) -> List[str]:
        return sorted(t["Name"] for t in self.glue.get_tables(DatabaseName="sagemaker_featurestore")["TableList"])

    def versions(self, bucket: str) -> int:
        listed = self.s3.list_object_versions(Bucket=bucket)
        return len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))


@pytest.fixture()
def dev(monkeypatch):
    moto_credentials(monkeypatch, REGION)
    with mock_aws():
        yield DevWorld()


def test_the_dry_run_lists_what_the_teardown_deletes_and_changes_nothing(dev, capsys):
    """GIVEN dev's Storage stack (resources listed over two pages), its buckets and its groups WHEN teardown runs
    without --execute THEN it lists, per bucket, the logging it stops, the write-once statement it removes and the
    versions and markers it deletes (the access-logs bucket, the others' log target, last), each group's versions and
    the cards of exactly the groups' versions, the Glue table of each feature group's offline store, then the cdk
    destroy command; nothing changes."""
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        code, out = dev.teardown(cloudformation, sagemaker, execute=False)
        cfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Teardown of environment 'dev' (account {dev.account}, {REGION}): DRY RUN, nothing is changed; --execute deletes:"
    # The offline store's Glue table SageMaker made for a group (neither DeleteFeatureGroup nor cdk destroy deletes
    # it), deleted first; a group with no table has no line.
    table = dev.feature_groups[f"{DEV}-customer-churn"]
    assert lines[2] == (f"  Glue triggers {', '.join(dev.triggers)}: deactivate them, first: the nightly start would "
                        "run the crawlers and jobs again, writing after the emptying (if you keep the environment: aws "
                        "glue start-trigger --name <trigger>)")
    assert [line for line in lines if "Glue table" in line] == [lines[3]] == [
        f"  feature group {DEV}-customer-churn: delete its offline store's Glue table sagemaker_featurestore.{table} "
        "(SageMaker made it; deleting the group leaves it)"]
    assert lines[1] == (f"  functions {', '.join(dev.functions)}: stop them from running (reserved concurrency 0), "
                        "first: a retraining they start, or an approval-ledger record they write on a model "
                        "package state change, would land after the emptying and fail cdk destroy (if you keep the "
                        "environment: aws lambda delete-function-concurrency --function-name <function>)")
    assert lines[4] == (f"  bucket {dev.artifacts}: stop its server access logging (to {dev.logs}); remove the policy "
                        "statements that deny deleting objects (WriteOnceNoDelete); delete 3 object versions (9 B) and "
                        "1 delete markers")
    # moto delivers the artifacts bucket's access logs as requests are made: the log bucket fills while it is read.
    assert re.fullmatch(rf"  bucket {dev.logs}: delete \d+ object versions \(.*\) and 0 delete markers", lines[5])
    for group in dev.groups:
        assert f"  model package group {group}: delete its 2 versions (v1, v2)" in lines
    cards = sorted(c for g in dev.groups for c in dev.cards[g])
    assert f"  model cards: delete {len(cards)} ({', '.join(cards)})" in lines
    assert lines[-1] == f"Then: npx cdk destroy -c mlops-loop:config={SAMPLE_CONFIG} 'dev/*'"
    assert dev.versions(dev.artifacts) == 4 and dev.versions(dev.logs) >= 1
    # Before all of it, on stderr: whose environment this is (in an account projects share, the project tells them apart).
    assert capsys.readouterr().err == (f"project=mlops-loop environment=dev account={dev.account} region={REGION} "
                                       f"(config {SAMPLE_CONFIG})\n")
    assert "WriteOnceNoDelete" in dev.s3.get_bucket_policy(Bucket=dev.artifacts)["Policy"]
    assert "LoggingEnabled" in dev.s3.get_bucket_logging(Bucket=dev.artifacts)
    assert len(dev.tables()) == 2
    assert dev.trigger_states() == ["ACTIVATED", "ACTIVATED"]


def test_execute_stops_logging_lifts_the_write_once_deny_empties_every_bucket_then_deletes_versions_and_cards(dev):
    """GIVEN the same dev environment WHEN teardown runs with --execute THEN logging stops, the artifacts policy keeps
    only its statement that denies no delete (the access-logs policy is untouched), every object version and delete marker is gone from both
    buckets, every version of every group is deleted, then the cards (exact calls, in order), the feature groups'
    offline-store tables are deleted (and no other table of SageMaker's account-wide database), and it prints the
    cdk destroy command."""
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        dev.stub_look(cfn_stub, sm_stub)  # the look once quiet
        dev.stub_deletes(sm_stub)
        dev.expect_throttle()
        code, out = dev.teardown(cloudformation, sagemaker)
        cfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 0, out
    dev.lambda_stub.assert_no_pending_responses()  # every function throttled
    assert f"functions: {len(dev.functions)} stopped from running (reserved concurrency 0)" in out
    assert dev.trigger_states() == ["DEACTIVATED", "DEACTIVATED"] and "Glue triggers: 2 deactivated" in out
    # Logging stopped before the emptying: none of the teardown's own deletes refilled the log bucket.
    assert dev.versions(dev.artifacts) == 0 and dev.versions(dev.logs) == 0
    assert [s["Sid"] for s in json.loads(dev.s3.get_bucket_policy(Bucket=dev.artifacts)["Policy"])["Statement"]] == ["Account"]
    assert json.loads(dev.s3.get_bucket_policy(Bucket=dev.logs)["Policy"]) == dev.logs_policy
    assert "LoggingEnabled" not in dev.s3.get_bucket_logging(Bucket=dev.artifacts)
    assert f"bucket {dev.artifacts}: 4 object versions and delete markers deleted" in out
    # The dev groups' offline-store tables are gone from the account-wide database; another's is not.
    assert dev.tables() == ["risk_ml_dev_payments_1767225600"]
    assert "Glue tables: 1 deleted" in out
    assert f"Now: npx cdk destroy -c mlops-loop:config={SAMPLE_CONFIG} 'dev/*'" in out


def test_execute_reports_what_s3_refused_and_exits_1(dev, capsys):
    """GIVEN a bucket whose DeleteObjects answers an error for one key WHEN teardown runs with --execute THEN that key
    is named on stderr, the rest goes on, and the exit is 1."""
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    real = dev.s3.delete_objects

    def refusing(**kwargs: Any) -> Dict[str, Any]:
        first = kwargs["Delete"]["Objects"][0]
        kwargs["Delete"]["Objects"] = kwargs["Delete"]["Objects"][1:]
        answer = real(**kwargs) if kwargs["Delete"]["Objects"] else {}
        return {**answer, "Errors": [{"Key": first["Key"], "VersionId": first["VersionId"], "Code": "AccessDenied",
                                      "Message": "Access Denied"}]}

    dev.s3.delete_objects = refusing
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        dev.stub_look(cfn_stub, sm_stub)  # the look once quiet
        for group in dev.groups:
            for arn in dev.packages[group]:
                sm_stub.add_response("delete_model_package", {}, {"ModelPackageName": arn})
        for card in sorted(c for g in dev.groups for c in dev.cards[g]):
            sm_stub.add_client_error("delete_model_card", "ResourceNotFound", "gone", expected_params={"ModelCardName": card})
        dev.expect_throttle()
        code, out = dev.teardown(cloudformation, sagemaker)
    err = capsys.readouterr().err
    assert code == 1
    assert f"lifecycle: could not delete s3://{dev.artifacts}/" in err and "AccessDenied: Access Denied" in err
    assert "model card" in err
    assert "could not be deleted (above); fix the cause and run the teardown again" in out


def test_the_dry_run_names_each_pipeline_execution_still_running_which_would_fail_the_destroy(dev):
    """GIVEN a dev pipeline with a running execution and one already stopping (SageMaker's DeletePipeline refuses a
    pipeline with a running execution, and CloudFormation's handler only calls it: cdk destroy would stop with the
    Training stack in DELETE_FAILED) WHEN the teardown's dry run runs THEN it names that pipeline and both executions,
    and stops nothing."""
    pipeline = dev.pipelines[0]
    dev.running = {pipeline: [("run1", "Executing"), ("run2", "Stopping")]}
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        code, out = dev.teardown(cloudformation, sagemaker, execute=False)
        cfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 0
    assert (f"  pipeline {pipeline}: stop its executions that have not ended and wait until they have (run1: Executing "
            "since 2026-01-05 03:00 UTC; run2: Stopping since 2026-01-05 03:00 UTC)") in out.splitlines()
    assert sum(line.startswith("  pipeline ") for line in out.splitlines()) == 1


def test_execute_stops_running_executions_and_waits_for_them_before_emptying_then_deletes_what_they_registered(
        dev, monkeypatch):
    """GIVEN a dev pipeline with a running execution (it would write to the buckets after they were emptied, register
    a version after the group's were deleted, and keep the Training stack from being deleted) WHEN teardown runs with
    --execute THEN it stops exactly the Executing one, waits until SageMaker says it ended, and only then looks again:
    the version that run registered meanwhile (v3) is deleted with the others, and the buckets are emptied."""
    pipeline, run = dev.first_run(monkeypatch)
    dev.running = {pipeline: [("run1", "Executing")]}
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        dev.stub_look(cfn_stub, sm_stub)  # the look once quiet
        dev.stub_stop(sm_stub, run, "Stopping", "Stopped")
        # The second look: the run ended, and had registered a third version of the first group.
        dev.running = {}
        third = f"arn:aws:sagemaker:{REGION}:{dev.account}:model-package/{dev.groups[0]}/3"
        dev.packages[dev.groups[0]].append(third)
        dev.stub_plan(cfn_stub, sm_stub, protection=False)
        dev.stub_deletes(sm_stub)
        dev.expect_throttle()
        code, out = dev.teardown(cloudformation, sagemaker)
        cfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 0, out
    assert f"pipeline {pipeline}: 1 execution stopped and ended (run1: Stopped)" in out
    assert f"model package group {dev.groups[0]}: 3 versions deleted" in out
    assert dev.versions(dev.artifacts) == 0


def test_a_run_the_second_look_finds_is_stopped_and_waited_for_too_before_anything_is_emptied(dev, monkeypatch):
    """GIVEN a running execution, and a second one the retrain trigger started while the first was being stopped (an
    invocation already under way when its function was throttled) WHEN teardown runs with --execute THEN the second
    look finds the new run and stops it and waits for it too, and only a look that finds nothing running lets the
    buckets be emptied: emptying under it would leave the Training stack undeletable and the buckets written again."""
    monkeypatch.setitem(teardown.STOP_WAIT, "Delay", 0)
    pipeline = dev.pipelines[0]
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        for run in ("run1", "run2"):
            dev.running = {pipeline: [(run, "Executing")]}
            dev.stub_plan(cfn_stub, sm_stub, protection=run == "run1")
            if run == "run1":
                dev.stub_look(cfn_stub, sm_stub)  # the look once quiet
            arn = f"{dev.pipeline_arn(pipeline)}/execution/{run}"
            dev.stub_stop(sm_stub, arn, "Stopped")
        dev.stub_emptied(cfn_stub, sm_stub)  # the third look: nothing running
        code, out = dev.teardown(cloudformation, sagemaker)
        cfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 0, out
    assert f"pipeline {pipeline}: 1 execution stopped and ended (run1: Stopped)" in out
    assert f"pipeline {pipeline}: 1 execution stopped and ended (run2: Stopped)" in out
    assert dev.versions(dev.artifacts) == 0


def test_runs_that_keep_starting_stop_the_teardown_before_anything_is_emptied(dev, monkeypatch, capsys):
    """GIVEN a new execution at every look (something the teardown does not quiet keeps starting them) WHEN teardown
    runs with --execute THEN after three rounds of stopping it names what is still running on stderr, empties and
    deletes nothing, and exits 1."""
    monkeypatch.setitem(teardown.STOP_WAIT, "Delay", 0)
    pipeline = dev.pipelines[0]
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        for number in range(1, teardown.STOP_ROUNDS + 1):
            run = f"run{number}"
            dev.running = {pipeline: [(run, "Executing")]}
            dev.stub_plan(cfn_stub, sm_stub, protection=number == 1)
            if number == 1:
                dev.stub_look(cfn_stub, sm_stub)  # the look once quiet
            arn = f"{dev.pipeline_arn(pipeline)}/execution/{run}"
            dev.stub_stop(sm_stub, arn, "Stopped")
        dev.running = {pipeline: [("run4", "Executing")]}
        dev.stub_plan(cfn_stub, sm_stub, protection=False)
        dev.expect_throttle()
        code, out = dev.teardown(cloudformation, sagemaker)
        cfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 1
    assert after_target_line(capsys.readouterr().err) == (
        f"lifecycle: still running after {teardown.STOP_ROUNDS} rounds of stopping what the environment runs: "
        f"pipeline {pipeline} (run4); something the teardown does not stop keeps starting runs (a pipeline started by "
        "hand, a Glue job or crawler started by hand): nothing was emptied or deleted; stop that, then run the teardown "
        "again\n")
    assert dev.versions(dev.artifacts) == 4


def test_an_execution_that_ends_between_the_look_and_the_stop_does_not_fail_the_teardown(dev, monkeypatch):
    """GIVEN an execution listed Executing that succeeds before the teardown stops it (SageMaker then refuses the stop
    with a ConflictException) WHEN teardown runs with --execute THEN that refusal is not an error: the wait reads the
    execution's end, and the teardown goes on and empties the buckets."""
    pipeline, run = dev.first_run(monkeypatch)
    dev.running = {pipeline: [("run1", "Executing")]}
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        dev.stub_look(cfn_stub, sm_stub)  # the look once quiet
        sm_stub.add_client_error("stop_pipeline_execution", "ConflictException",
                                 "Pipeline execution is not in a state that can be stopped",
                                 expected_params={"PipelineExecutionArn": run, "ClientRequestToken": ANY})
        sm_stub.add_response("describe_pipeline_execution", {"PipelineExecutionArn": run,
                                                             "PipelineExecutionStatus": "Succeeded"},
                             {"PipelineExecutionArn": run})
        dev.stub_emptied(cfn_stub, sm_stub)
        code, out = dev.teardown(cloudformation, sagemaker)
        cfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 0, out
    assert f"pipeline {pipeline}: 1 execution stopped and ended (run1: Succeeded)" in out
    assert dev.versions(dev.artifacts) == 0


def test_a_run_started_between_the_first_look_and_the_quieting_is_stopped_before_anything_is_emptied(dev, monkeypatch):
    """GIVEN nothing running when the teardown first looks, and a retraining the retrain trigger starts before it is
    throttled (its hourly sweep, a drift alarm) WHEN teardown runs with --execute THEN it looks again once the
    environment is quiet, stops that run and waits for it, and only then empties the buckets: emptied under it, the
    run writes again and keeps cdk destroy from deleting the Training stack."""
    pipeline, run = dev.first_run(monkeypatch)
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        dev.running = {pipeline: [("run1", "Executing")]}
        dev.stub_look(cfn_stub, sm_stub)
        dev.stub_stop(sm_stub, run, "Stopped")
        dev.stub_emptied(cfn_stub, sm_stub)
        code, out = dev.teardown(cloudformation, sagemaker)
        cfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 0, out
    assert f"pipeline {pipeline}: 1 execution stopped and ended (run1: Stopped)" in out
    assert dev.versions(dev.artifacts) == 0


def test_an_execution_that_has_not_ended_within_the_wait_stops_the_teardown_before_anything_is_deleted(
        dev, monkeypatch, capsys):
    """GIVEN a running execution that is still Stopping when the wait is over WHEN teardown runs with --execute THEN
    nothing is emptied or deleted (the run would write and register again), the execution is named on stderr with
    what to do, and the exit is 1."""
    monkeypatch.setitem(teardown.STOP_WAIT, "MaxAttempts", 2)
    pipeline, run = dev.first_run(monkeypatch)
    dev.running = {pipeline: [("run1", "Executing")]}
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        dev.stub_look(cfn_stub, sm_stub)  # the look once quiet
        dev.stub_stop(sm_stub, run, "Stopping", "Stopping")
        dev.expect_throttle()
        code, out = dev.teardown(cloudformation, sagemaker)
        sm_stub.assert_no_pending_responses()
    assert code == 1
    assert after_target_line(capsys.readouterr().err) == (
        f"lifecycle: pipeline execution {run} is still Stopping after the wait: nothing was emptied or deleted (it "
        "would write to the buckets and register versions again); run the teardown again once it has ended "
        f"(aws sagemaker describe-pipeline-execution --pipeline-execution-arn {run} --region {REGION})\n")
    assert dev.versions(dev.artifacts) == 4
    assert "WriteOnceNoDelete" in dev.s3.get_bucket_policy(Bucket=dev.artifacts)["Policy"]


def test_execute_stops_a_running_crawler_and_job_run_and_waits_for_them_before_emptying(dev, monkeypatch):
    """GIVEN the nightly Glue run under way: its crawler RUNNING (Glue deletes no running crawler, so cdk destroy would
    stop on the DataPipeline stack) and a curate job run RUNNING (it writes to the buckets being emptied) WHEN teardown
    runs with --execute THEN it names both, stops them, waits until the crawler is READY and the run STOPPED, and only
    then empties the buckets."""
    monkeypatch.setitem(teardown.STOP_WAIT, "Delay", 0)
    crawler_states = iter(["RUNNING", "RUNNING", "STOPPING", "READY"])  # the plan's look, the look once quiet, the wait's two
    run_states = iter(["STOPPING", "STOPPED"])
    stopped: List[Any] = []
    dev.glue.get_crawler = lambda Name: {"Crawler": {"Name": Name, "State": next(crawler_states, "READY")}}
    dev.glue.stop_crawler = lambda Name: stopped.append(("crawler", Name)) or {}
    looks = {"count": 0}

    def get_job_runs(JobName: str, **kwargs: Any) -> Dict[str, Any]:
        looks["count"] += 1
        running = looks["count"] <= 2  # the plan's look and the look once quiet
        return {"JobRuns": [{"Id": "jr_2", "JobName": JobName, "JobRunState": "RUNNING"}] if running else []}

    dev.glue.get_job_runs = get_job_runs
    dev.glue.get_paginator = lambda name: type("P", (), {"paginate": staticmethod(lambda **kw: [get_job_runs(**kw)])})()
    dev.glue.batch_stop_job_run = lambda JobName, JobRunIds: stopped.append(("job", JobName, JobRunIds)) or {
        "SuccessfulSubmissions": [{"JobName": JobName, "JobRunId": i} for i in JobRunIds], "Errors": []}
    dev.glue.get_job_run = lambda JobName, RunId: {"JobRun": {"Id": RunId, "JobRunState": next(run_states, "STOPPED")}}
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        dev.stub_look(cfn_stub, sm_stub)  # the look once quiet
        dev.stub_plan(cfn_stub, sm_stub, protection=False)  # the second look, once the Glue work has ended
        dev.stub_deletes(sm_stub)
        dev.expect_throttle()
        code, out = dev.teardown(cloudformation, sagemaker)
        cfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 0, out
    assert (f"  Glue crawler {dev.crawler}: stop it and wait until it has (a running crawler cannot be deleted: cdk "
            "destroy would stop on the DataPipeline stack)") in out.splitlines()
    assert f"  Glue job {dev.job}: stop its runs that have not ended and wait until they have (jr_2)" in out.split("\n")
    assert stopped == [("crawler", dev.crawler), ("job", dev.job, ["jr_2"])]
    assert f"Glue crawler {dev.crawler}: stopped (READY)" in out
    assert f"Glue job {dev.job}: 1 run stopped (jr_2: STOPPED)" in out
    assert dev.versions(dev.artifacts) == 0


def test_a_dev_stack_still_termination_protected_gets_the_commands_that_turn_it_off_before_the_destroy(dev):
    """GIVEN a dev environment whose config left termination_protection at its default (on) WHEN the teardown's dry
    run ends THEN the command it gives turns protection off on each protected stack (with --region) before cdk destroy,
    which CloudFormation would otherwise refuse, and says which config field keeps it off."""
    names = environment_stack_names(DEV)
    dev.protected = {names["storage"], names["serving"]}
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        code, out = dev.teardown(cloudformation, sagemaker, execute=False)
        cfn_stub.assert_no_pending_responses()
    off = [f"aws cloudformation update-termination-protection --no-enable-termination-protection --stack-name {n} "
           f"--region {REGION}" for n in names.values() if n in dev.protected]
    assert code == 0 and out.splitlines()[-1] == (
        f"Then: {' && '.join(off)} && npx cdk destroy -c mlops-loop:config={SAMPLE_CONFIG} 'dev/*'  (termination "
        "protection is on; set termination_protection: false for 'dev' in the config so the next deploy keeps it off)")


@pytest.mark.parametrize("tier,environment,project", [("prod", "dev", "mlops-loop"), ("dev", "staging", "mlops-loop"),
                                                       ("dev", "dev", "risk-ml")])
def test_a_bucket_not_tagged_as_this_dev_environments_is_refused_and_nothing_is_changed(dev, tier, environment, project,
                                                                                       capsys):
    """GIVEN dev's Storage stack whose artifacts bucket is tagged as another tier, environment or project's (the stack
    is not what the config says; in an account two projects share, the account check passes) WHEN teardown runs with
    --execute THEN it is refused naming the bucket and its tags, before anything is changed."""
    dev.tag(dev.artifacts, tier, environment, project)
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        code, out = dev.teardown(cloudformation, sagemaker)
    assert code == 2 and out == ""
    storage = environment_stack_names(DEV)["storage"]
    assert after_target_line(capsys.readouterr().err) == (
        f"lifecycle: error: bucket {dev.artifacts} of stack {storage} is tagged project={project}, "
        f"environment={environment}, tier={tier}, not project=mlops-loop, environment=dev, tier=dev: teardown empties only "
        "the buckets of a dev environment of the config's project; check --env and the config (MLOPS_LOOP_CONFIG, "
        "--config; an environment whose resources carry no such tags is taken down by hand)\n")
    assert dev.versions(dev.artifacts) == 4 and "WriteOnceNoDelete" in dev.s3.get_bucket_policy(Bucket=dev.artifacts)["Policy"]


def test_without_lifting_the_write_once_deny_the_ledger_record_cannot_be_deleted(dev):
    """Non-vacuity: GIVEN the plan with its policy step dropped WHEN it is executed THEN S3 (moto enforces the policy)
    refuses to delete the write-once record: the step is what makes the bucket emptiable."""
    cloudformation, sagemaker = _client("cloudformation"), _client("sagemaker")
    with Stubber(cloudformation) as cfn_stub, Stubber(sagemaker) as sm_stub:
        dev.stub_plan(cfn_stub, sm_stub)
        plan = teardown.plan_teardown(cloudformation=cloudformation, s3=dev.s3, sagemaker=sagemaker, glue=dev.glue,
                                       prefix=DEV,
                                       project="mlops-loop", environment="dev", models=DEV_MODELS)
    for bucket in plan.buckets:
        bucket.denying = []
    plan.packages, plan.cards, plan.tables = {}, [], {}
    problems = teardown.execute_teardown(plan, s3=dev.s3, sagemaker=sagemaker, glue=dev.glue, out=io.StringIO())
    assert [p.split(" (version")[0] for p in problems] == [f"s3://{dev.artifacts}/approval-ledger/m/1/record.json"]
    assert "AccessDenied" in problems[0]


# ------------------------------------------------------------------------------------------------- deleted stacks

PROD = environment_prefix("mlops-loop", "prod")
RETAIN = {"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"}
KEY_TAGS = [{"Key": "environment", "Value": "prod"}, {"Key": "project", "Value": "mlops-loop"}]
STORE_TRUST = {"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}],
               "Version": "2012-10-17"}
# The generated name the offline-store role got when the deleted stack created it (the group's RoleArn names it).
STORE_ROLE = f"{PROD}-storage-StoreRole-A1B2C3D4E5F6"


def _storage_template() -> Dict[str, Dict[str, Any]]:
    """A Storage stack of prod shaped as the app's (retained key, buckets and their policies, database, model package
    and feature groups, and the feature group's offline-store role, whose name is generated; the group depends on the
    role's policy, which the stack's deletion deleted), with names of its own: the sample model line-up plays no part."""
    return {
        "DataKey": {"Type": "AWS::KMS::Key", **RETAIN, "Properties": {"Description": f"{PROD}: data", "Tags": KEY_TAGS}},
        "DataKeyAlias": {"Type": "AWS::KMS::Alias", "Properties": {"AliasName": f"alias/{PROD}/data",
                                                                   "TargetKeyId": {"Fn::GetAtt": ["DataKey", "Arn"]}}},
        "LogsBucket": {"Type": "AWS::S3::Bucket", **RETAIN, "Properties": {"BucketName": f"{PROD}-logs"}},
        "LogsPolicy": {"Type": "AWS::S3::BucketPolicy", **RETAIN, "Properties": {"Bucket": {"Ref": "LogsBucket"}}},
        "DataBucket": {"Type": "AWS::S3::Bucket", **RETAIN, "Properties": {
            "BucketName": f"{PROD}-data", "LoggingConfiguration": {"DestinationBucketName": {"Ref": "LogsBucket"}},
            "BucketEncryption": {"KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]}}}},
        "DataPolicy": {"Type": "AWS::S3::BucketPolicy", **RETAIN, "Properties": {"Bucket": {"Ref": "DataBucket"}}},
        "Database": {"Type": "AWS::Glue::Database", **RETAIN, "Properties": {"DatabaseInput": {
            "Name": "mlops_loop_prod", "LocationUri": {"Fn::Join": ["", ["s3://", {"Ref": "DataBucket"}]]}}}},
        "Group": {"Type": "AWS::SageMaker::ModelPackageGroup", **RETAIN, "Properties": {"ModelPackageGroupName": f"{PROD}-m"}},
        "StoreRole": {"Type": "AWS::IAM::Role", **RETAIN, "DependsOn": ["DataPolicy"], "Properties": {
            "AssumeRolePolicyDocument": STORE_TRUST, "Description": "Feature Store's offline store", "Tags": KEY_TAGS}},
        "StorePolicy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"Roles": [{"Ref": "StoreRole"}]}},
        "Features": {"Type": "AWS::SageMaker::FeatureGroup", **RETAIN, "DependsOn": ["DataPolicy", "StorePolicy"],
                     "Properties": {"FeatureGroupName": f"{PROD}-d", "RoleArn": {"Fn::GetAtt": ["StoreRole", "Arn"]}}},
    }


def _operations_template() -> Dict[str, Dict[str, Any]]:
    return {"TriggerLogs": {"Type": "AWS::Logs::LogGroup", **RETAIN, "Properties": {"LogGroupName": f"/aws/lambda/{PROD}-t"}},
            # A generated name: a new queue is made, the old one stays orphaned; nothing to look for.
            "DeadLetters": {"Type": "AWS::SQS::Queue", **RETAIN, "Properties": {}}}


class DeletedProd:
    """prod's five stacks deleted; the account still holds what Storage and Operations retained (moto), except the
    logs bucket's policy (deleted with the stack before policies were retained), and the offline-store role when
    ``role`` is False (deleted with a stack before roles were retained)."""

    def __init__(self, assembly: Path, keys: int = 1, role: bool = True) -> None:
        self.assembly = _write_assembly(assembly, {"prod": {"storage": _storage_template(),
                                                            "operations": _operations_template()}})
        self.account = sample_account("prod")
        self.s3, self.kms, self.glue, self.logs = (boto3.client(s, region_name=REGION) for s in ("s3", "kms", "glue", "logs"))
        self.sagemaker, self.iam = boto3.client("sagemaker", region_name=REGION), boto3.client("iam", region_name=REGION)
        if role:
            self.iam.create_role(RoleName=STORE_ROLE, AssumeRolePolicyDocument=json.dumps(STORE_TRUST))
        location = {"LocationConstraint": REGION}
        for bucket in (f"{PROD}-logs", f"{PROD}-data"):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
        self.s3.put_bucket_policy(Bucket=f"{PROD}-data", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "KeepEveryVersion", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObjectVersion",
             "Resource": f"arn:aws:s3:::{PROD}-data/*"}]}))
        tags = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in KEY_TAGS]
        self.keys = [self.kms.create_key(Description=f"{PROD}: data", Tags=tags)["KeyMetadata"]["KeyId"] for _ in range(keys)]
        # Same description, another environment's tag; and staging's key: neither is prod's.
        self.kms.create_key(Description=f"{PROD}: data", Tags=[{"TagKey": "environment", "TagValue": "staging"}])
        self.kms.create_key(Description=f"{STAGING}: data", Tags=tags)
        self.glue.create_database(DatabaseInput={"Name": "mlops_loop_prod"})
        self.group_arn = self.sagemaker.create_model_package_group(ModelPackageGroupName=f"{PROD}-m")["ModelPackageGroupArn"]
        self.sagemaker.create_feature_group(
            FeatureGroupName=f"{PROD}-d", RecordIdentifierFeatureName="id", EventTimeFeatureName="t",
            FeatureDefinitions=[{"FeatureName": "id", "FeatureType": "String"}, {"FeatureName": "t", "FeatureType": "String"}],
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{PROD}-data/features"}},
            RoleArn=f"arn:aws:iam::{self.account}:role/{STORE_ROLE}")
        self.logs.create_log_group(logGroupName=f"/aws/lambda/{PROD}-t")

    def session(self, cloudformation: Any) -> Session:
        return Session(self.account, cloudformation=cloudformation, s3=self.s3, kms=self.kms, glue=self.glue,
                       logs=self.logs, sagemaker=self.sagemaker, iam=self.iam)


def _none_deployed(stub: Stubber, prefix: str = PROD, only: Sequence[str] = ()) -> None:
    for component, name in environment_stack_names(prefix).items():
        if not only or component in only:
            stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {name} does not exist",
                                  expected_params={"StackName": name})


@pytest.fixture
def moto_aws(monkeypatch):
    moto_credentials(monkeypatch, REGION)
    with mock_aws():
        yield


PROD_CDK = f"-c mlops-loop:config={SAMPLE_CONFIG}"
PROD_CLI = f"python -m mlops_cli.lifecycle --env prod --config {SAMPLE_CONFIG} --region {REGION}"


def test_a_deleted_stack_whose_retained_resources_are_left_blocks_and_gets_the_adoption_commands(moto_aws, tmp_path):
    """GIVEN prod's stacks all deleted, its Storage stack's key, buckets, database and groups and its Operations stack's
    log group still there WHEN the stacks are checked THEN Storage and Operations BLOCK, each naming what it left,
    the other three may be created, the adoption commands come Storage first, and the exit is 1 ("can proceed" is not
    said: a deploy would fail on every name and make a new data key)."""
    world = DeletedProd(tmp_path / "cdk.out")
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub)
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(world.assembly)],
                         world.session(cloudformation))
        stub.assert_no_pending_responses()
    names = environment_stack_names(PROD)
    lines = out.splitlines()
    assert code == 1 and "can proceed" not in out
    assert lines[0] == f"Stacks of environment 'prod' (account {world.account}, {REGION}): 2 block cdk deploy"
    storage = next(line for line in lines if line.startswith(f"  {names['storage']} "))
    assert storage.endswith(
        f"BLOCKS cdk deploy: retained resources of {names['storage']} exist: adopt them before deploying (see below): "
        f"AWS::S3::Bucket {PROD}-logs; AWS::S3::Bucket {PROD}-data; AWS::S3::BucketPolicy {PROD}-data; "
        f"AWS::Glue::Database mlops_loop_prod; AWS::SageMaker::ModelPackageGroup {PROD}-m; "
        f"AWS::SageMaker::FeatureGroup {PROD}-d; AWS::KMS::Key {world.keys[0]}; AWS::IAM::Role {STORE_ROLE}")
    operations = next(line for line in lines if line.startswith(f"  {names['operations']} "))
    assert operations.endswith(f"retained resources of {names['operations']} exist: adopt them before deploying (see "
                               f"below): AWS::Logs::LogGroup /aws/lambda/{PROD}-t")
    training = next(line for line in lines if line.startswith(f"  {names['training']} "))
    assert training.endswith("not deployed; nothing an earlier stack of this name retained is left")
    assert lines[lines.index(next(line for line in lines if line.startswith("Adopt what they left"))) + 1:] == [
        f"  {PROD_CLI} adopt --stack storage  (writes {names['storage']}.resource-mapping.json)",
        f"  npx cdk import {PROD_CDK} --resource-mapping {names['storage']}.resource-mapping.json 'prod/Storage'",
        f"  npx cdk deploy {PROD_CDK} --exclusively --import-existing-resources 'prod/Storage'",
        f"  {PROD_CLI} adopt --stack operations  (writes {names['operations']}.resource-mapping.json)",
        f"  npx cdk import {PROD_CDK} --resource-mapping {names['operations']}.resource-mapping.json 'prod/Operations'",
        f"  npx cdk deploy {PROD_CDK} --exclusively --import-existing-resources 'prod/Operations'",
        f"  then: npx cdk deploy {PROD_CDK} 'prod/*'",
        *RECONCILE_AFTER_DEPLOY,
        *SUBSCRIBE_AFTER_DEPLOY,
    ]


# What `stacks` says to run once the deploy has created the Serving and Operations stacks again while the registry was
# kept: the Serving stack comes back with no version set, before the rule that would reconcile it exists.
RECONCILE_AFTER_DEPLOY = [
    "Then reconcile each model's group: the Serving stack is created again with no version set, before the Operations "
    "stack whose rule reconciles a new Serving stack, so no approved version serves until then (the reconcile sets the "
    "group's latest approved version and creates its endpoint):",
    f"  aws lambda invoke --function-name {PROD}-deploy-on-approval --cli-binary-format raw-in-base64-out --payload "
    f"'{{\"action\": \"reconcile\", \"group\": \"{PROD}-m\"}}' --region {REGION} {PROD}-m.reconcile.json",
]
# ... and, the Operations stack being created again, to subscribe people to its new topics.
OUTPUT = (f"$(aws cloudformation describe-stacks --region {REGION} --stack-name {PROD}-operations --query "
          "\"Stacks[0].Outputs[?OutputKey=='{}'].OutputValue\" --output text)")
SUBSCRIBE_AFTER_DEPLOY = [
    "Then subscribe people again: the Operations stack's topics are created again (the notices' and the watchdog's "
    "under new ARNs) with no subscription (the app subscribes nobody), so no alarm, failed rollout or dead letter "
    "reaches anyone until then; for each address that was subscribed (an email subscription waits for its "
    "confirmation):",
    f"  aws sns subscribe --region {REGION} --protocol email --notification-endpoint <address> --topic-arn "
    + OUTPUT.format("NotificationTopicArn"),
    f"  aws sns subscribe --region {REGION} --protocol email --notification-endpoint <address> --topic-arn "
    + OUTPUT.format("WatchdogTopicArn"),
]


def test_a_whole_deleted_stage_whose_registry_was_kept_is_told_to_reconcile_each_group_after_the_deploy(moto_aws, tmp_path):
    """GIVEN prod's stacks all deleted and its model package group kept (with its approved versions) WHEN the stacks
    are checked THEN, after the adoption commands, one reconcile per group of the synthesized Storage stack is given:
    `cdk deploy 'prod/*'` creates Serving before Operations, so the Serving stack's CREATE_COMPLETE reaches no rule
    and no champion would serve again. A Serving stack deleted alone is reconciled by the Operations stack's rule:
    no command then."""
    world = DeletedProd(tmp_path / "cdk.out")
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub)
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(world.assembly)],
                         world.session(cloudformation))
    assert code == 1
    after = RECONCILE_AFTER_DEPLOY + SUBSCRIBE_AFTER_DEPLOY
    assert out.splitlines()[-len(after):] == after
    # WHEN only the Serving stack is gone (the Operations stack and its rule are there) THEN no reconcile is asked for
    cloudformation = _client("cloudformation")
    names = environment_stack_names(PROD)
    with Stubber(cloudformation) as stub:
        for component, name in names.items():
            if component == "serving":
                stub.add_client_error("describe_stacks", "ValidationError", f"Stack with id {name} does not exist",
                                      expected_params={"StackName": name})
            else:
                stub.add_response("describe_stacks", {"Stacks": [{
                    "StackName": name, "StackId": f"arn:aws:cloudformation:{REGION}:{world.account}:stack/{name}/1",
                    "CreationTime": datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc),
                    "StackStatus": "UPDATE_COMPLETE", "EnableTerminationProtection": True}]},
                    expected_params={"StackName": name})
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(world.assembly)],
                         world.session(cloudformation))
    assert "reconcile" not in out and "subscribe" not in out, out


def test_deleted_stacks_that_left_nothing_may_be_created(moto_aws, tmp_path):
    """GIVEN prod's stacks deleted and nothing they retained left (an empty account) WHEN the stacks are checked THEN
    none blocks and cdk deploy can proceed (exit 0)."""
    assembly = _write_assembly(tmp_path / "cdk.out", {"prod": {"storage": _storage_template(),
                                                               "operations": _operations_template()}})
    cloudformation = _client("cloudformation")
    clients = {s: boto3.client(s, region_name=REGION) for s in ("s3", "kms", "glue", "logs")}
    # SageMaker's answers for groups that do not exist (moto's DescribeFeatureGroup fails on one with a KeyError).
    sagemaker = _client("sagemaker")
    with Stubber(cloudformation) as stub, Stubber(sagemaker) as sm_stub:
        _none_deployed(stub)
        sm_stub.add_client_error("describe_model_package_group", "ValidationException",
                                 f"ModelPackageGroup {PROD}-m does not exist.",
                                 expected_params={"ModelPackageGroupName": f"{PROD}-m"})
        sm_stub.add_client_error("describe_feature_group", "ResourceNotFound", f"Resource Not Found: {PROD}-d",
                                 expected_params={"FeatureGroupName": f"{PROD}-d"})
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(assembly)],
                         Session(sample_account("prod"), cloudformation=cloudformation, sagemaker=sagemaker, **clients))
        stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert code == 0
    assert out.splitlines()[0].endswith("none blocks cdk deploy")
    assert out.splitlines()[-1] == "cdk deploy 'prod/*' can proceed"
    # A new environment: no registry kept, nothing approved to serve again, nobody subscribed before (Monitoring says
    # to subscribe people).
    assert "reconcile" not in out and "subscribe" not in out


def test_without_a_synthesized_app_a_stack_that_does_not_exist_blocks(tmp_path):
    """GIVEN no synthesized app WHEN the stacks of prod (none deployed) are checked THEN each BLOCKS: whether an
    earlier stack left retained resources is not known, and the line says how to find out."""
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub)
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(tmp_path / "none")],
                         Session(sample_account("prod"), cloudformation=cloudformation))
    assert code == 1 and "can proceed" not in out
    storage = next(line for line in out.splitlines() if f"{PROD}-storage " in line)
    assert storage.endswith(
        "BLOCKS cdk deploy: not deployed, and whether an earlier stack of this name left retained resources was not "
        f"checked: no synthesized app at {tmp_path / 'none'}: run bash scripts/synth.sh (or pass --assembly <cdk.out>)")


def test_an_app_synthesized_for_another_account_is_not_trusted(tmp_path):
    assembly = _write_assembly(tmp_path / "cdk.out", {})
    manifest = assembly / "assembly-prod" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f"aws://{sample_account('prod')}/", "aws://999999999999/"))
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub)
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(assembly)],
                         Session(sample_account("prod"), cloudformation=cloudformation))
    assert code == 1
    assert (f"not checked: the synthesized app at {assembly} deploys 'prod' to aws://999999999999/{REGION}, not "
            f"aws://{sample_account('prod')}/{REGION}: synthesize it again (bash scripts/synth.sh)") in out


def test_adopt_writes_the_import_mapping_of_everything_the_import_can_hold_and_names_what_the_deploy_adopts(moto_aws, tmp_path):
    """GIVEN prod's Storage stack deleted and what it retained left WHEN adopt runs for it THEN the mapping file holds,
    per logical id, CloudFormation's import identifier of the old key, both buckets, the data bucket's surviving
    policy, the database, the model package group (by ARN) and the offline-store role by the name in the feature
    group's RoleArn (its name is generated: the template has none); the feature group, which depends on the role's
    policy the deletion deleted, is left to the deploy's import by name; the logs bucket's policy, gone, is not mapped
    (the deploy creates it). Nothing in the account changes; exit 0."""
    world = DeletedProd(tmp_path / "cdk.out")
    mapping = tmp_path / "storage.json"
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub, only=["storage"])
        code, out = _run(["--env", "prod", *CONFIG, "adopt", "--stack", "storage", "--assembly", str(world.assembly),
                          "--mapping", str(mapping)], world.session(cloudformation))
        stub.assert_no_pending_responses()
    assert code == 0, out
    assert json.loads(mapping.read_text()) == {
        "DataKey": {"KeyId": world.keys[0]},
        "LogsBucket": {"BucketName": f"{PROD}-logs"},
        "DataBucket": {"BucketName": f"{PROD}-data"},
        "DataPolicy": {"Bucket": f"{PROD}-data"},
        "Database": {"DatabaseName": "mlops_loop_prod"},
        "Group": {"ModelPackageGroupArn": world.group_arn},
        "StoreRole": {"RoleName": STORE_ROLE},
    }
    lines = out.splitlines()
    assert lines[0] == f"{PROD}-storage (prod/Storage): 7 retained resources to import, written to {mapping}:"
    assert ("adopted by name by the deploy after the import (--import-existing-resources): "
            f"AWS::SageMaker::FeatureGroup {PROD}-d") in lines
    assert lines[-2:] == [f"  npx cdk import {PROD_CDK} --resource-mapping {mapping} 'prod/Storage'",
                          f"  npx cdk deploy {PROD_CDK} --exclusively --import-existing-resources 'prod/Storage'"]
    assert world.s3.get_bucket_policy(Bucket=f"{PROD}-data")  # untouched


def test_a_deleted_serving_stack_that_left_its_fixed_name_dead_letter_queue_blocks_and_adopt_maps_it_by_url(moto_aws, tmp_path):
    """GIVEN prod's Serving stack deleted, which kept its batch schedules' dead-letter queue under its fixed name
    (``<prefix>-batch-dead-letters``: the Operations stack alarms on it by name) WHEN the stacks are checked THEN the
    Serving stack BLOCKS, naming the queue (a plain deploy would fail "already exists" on it), and adopt maps it by its
    URL, CloudFormation's import identifier of a queue (the template can only give its name)."""
    queue = f"{PROD}-batch-dead-letters"
    serving = {"BatchDeadLetters": {"Type": "AWS::SQS::Queue", **RETAIN, "Properties": {"QueueName": queue}},
               "FreshDeadLetters": {"Type": "AWS::SQS::Queue", **RETAIN, "Properties": {}}}
    assembly = _write_assembly(tmp_path / "cdk.out", {"prod": {"serving": serving}})
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    session = lambda cloudformation: Session(sample_account("prod"), cloudformation=cloudformation, sqs=sqs)  # noqa: E731
    names = environment_stack_names(PROD)
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub)
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(assembly)], session(cloudformation))
        stub.assert_no_pending_responses()
    assert code == 1
    assert next(line for line in out.splitlines() if line.startswith(f"  {names['serving']} ")).endswith(
        f"BLOCKS cdk deploy: retained resources of {names['serving']} exist: adopt them before deploying (see below): "
        f"AWS::SQS::Queue {queue}")
    mapping = tmp_path / "serving.json"
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub, only=["serving"])
        code, out = _run(["--env", "prod", *CONFIG, "adopt", "--stack", "serving", "--assembly", str(assembly),
                          "--mapping", str(mapping)], session(cloudformation))
    assert code == 0, out
    assert json.loads(mapping.read_text()) == {"BatchDeadLetters": {"QueueUrl": url}}
    # WHEN the queue is gone too THEN nothing blocks the Serving stack's create
    sqs.delete_queue(QueueUrl=url)
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub, only=["serving"])
        code, out = _run(["--env", "prod", *CONFIG, "adopt", "--stack", "serving", "--assembly", str(assembly),
                          "--mapping", str(tmp_path / "none.json")], session(cloudformation))
    assert code == 0 and out.startswith(f"{names['serving']}: nothing it retains is left over; cdk deploy creates it"), out


def test_a_monitor_table_a_storage_stack_kept_before_its_tables_went_with_it_blocks_and_is_deleted_first(moto_aws, tmp_path):
    """GIVEN prod's Storage stack deleted by a version that kept the drift monitor's Glue tables (RetainExceptOnCreate),
    and a template that now deletes them with the stack (DeletionPolicy Delete: not adopted) WHEN the stacks are checked
    THEN the Storage stack BLOCKS and the table still there is named with the command that deletes it (the records stay
    in the bucket; the deploy defines the table again), first: a deploy would fail "already exists" on its fixed name.
    A table that is gone is not named."""
    database = "mlops_loop_prod"
    storage = {"Database": {"Type": "AWS::Glue::Database", **RETAIN,
                            "Properties": {"CatalogId": "123456789012", "DatabaseInput": {"Name": database}}},
               "PredictionsTable": {"Type": "AWS::Glue::Table", "DeletionPolicy": "Delete",
                                    "Properties": {"DatabaseName": database, "TableInput": {"Name": "predictions"}}},
               "ResultsTable": {"Type": "AWS::Glue::Table", "DeletionPolicy": "Delete",
                                "Properties": {"DatabaseName": database, "TableInput": {"Name": "monitor_results"}}}}
    assembly = _write_assembly(tmp_path / "cdk.out", {"prod": {"storage": storage}})
    glue = boto3.client("glue", region_name=REGION)
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(DatabaseName=database, TableInput={"Name": "predictions"})
    names = environment_stack_names(PROD)
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub)
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(assembly)],
                         Session(sample_account("prod"), cloudformation=cloudformation, glue=glue))
    assert code == 1
    assert "BLOCKS cdk deploy" in next(line for line in out.splitlines() if line.startswith(f"  {names['storage']} "))
    firsts = [line for line in out.splitlines() if line.startswith("  first: ")]
    assert firsts == [
        f"  first: AWS::Glue::Table {database}.predictions (PredictionsTable): kept by a Storage stack deleted before "
        "the drift monitor's tables were deleted with it; the template no longer keeps it, so it cannot be adopted and "
        f"the deploy would fail \"already exists\" on it: delete it (a definition: the records stay in the bucket, and "
        f"the deploy defines it again): aws glue delete-table --region {REGION} --database-name {database} --name "
        "predictions"]
    # WHEN nothing else of the stack is left (the database kept no more: the table alone is in the way) THEN it still
    # BLOCKS with that line, and adopt, which has nothing to import, says so and exits 1
    storage["Database"]["DeletionPolicy"] = "Delete"
    assembly = _write_assembly(tmp_path / "cdk.out.2", {"prod": {"storage": storage}})
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub)
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(assembly)],
                         Session(sample_account("prod"), cloudformation=cloudformation, glue=glue))
    assert code == 1 and "can proceed" not in out
    assert "BLOCKS cdk deploy" in next(line for line in out.splitlines() if line.startswith(f"  {names['storage']} "))
    assert [line for line in out.splitlines() if line.startswith("  first: ")] == firsts
    assert "cdk import" not in out  # nothing to import
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub, only=["storage"])
        code, out = _run(["--env", "prod", *CONFIG, "adopt", "--stack", "storage", "--assembly", str(assembly),
                          "--mapping", str(tmp_path / "none.json")],
                         Session(sample_account("prod"), cloudformation=cloudformation, glue=glue))
    assert code == 1 and out.startswith(f"{names['storage']}: nothing it retains is left over, but first: "
                                        f"{firsts[0].removeprefix('  first: ')}"), out


def test_adopt_leaves_a_key_it_cannot_tell_apart_to_the_operator(moto_aws, tmp_path, capsys):
    """GIVEN two keys with the data key's description and tags (the stack was deleted and recreated before) WHEN adopt
    runs THEN the key is not guessed: it is left out of the mapping, both ids are named with how to choose, exit 1."""
    world = DeletedProd(tmp_path / "cdk.out", keys=2)
    mapping = tmp_path / "storage.json"
    code = _adopt_storage(world, mapping)
    assert code == 1
    # The rest is mapped as if the key were: the operator adds it, and what refers to it is imported with it.
    assert set(json.loads(mapping.read_text())) == MAPPED_WITHOUT_THE_KEY
    assert after_target_line(capsys.readouterr().err) == (
        f"lifecycle: not adopted: DataKey ({PROD}: data): 2 keys match ({', '.join(world.keys)}); add the one that "
        "encrypted the data to the mapping as \"DataKey\": {\"KeyId\": \"<key id>\"} (aws s3api get-bucket-encryption "
        "on a bucket of the stack names it)\n")


# What adopt maps of prod's storage stack when it leaves the data key out (several match, or it is pending deletion):
# everything else, what refers to the key included (imported with it once the operator names it or it is back).
MAPPED_WITHOUT_THE_KEY = {"LogsBucket", "DataBucket", "DataPolicy", "Database", "Group", "StoreRole"}


def _adopt_storage(world: DeletedProd, mapping: Path) -> int:
    """WHEN ``lifecycle --env prod adopt --stack storage`` runs with no prod stack deployed: its exit code (the mapping
    written to ``mapping``)."""
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub, only=["storage"])
        code, _ = _run(["--env", "prod", *CONFIG, "adopt", "--stack", "storage", "--assembly", str(world.assembly),
                        "--mapping", str(mapping)], world.session(cloudformation))
    return code


def _scheduled_for_deletion(world: DeletedProd) -> tuple[str, str]:
    """GIVEN prod's data key scheduled for deletion (its 30-day minimum): (its id, until when as the tool says it)."""
    key = world.keys[0]
    when = world.kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=30)["DeletionDate"]
    return key, f"until {when.astimezone(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"


def test_a_key_of_the_environment_pending_deletion_is_named_with_how_to_cancel_it(moto_aws, tmp_path):
    """GIVEN prod's stacks deleted and the Storage stack's data key, still there, scheduled for deletion WHEN the stacks
    are checked THEN Storage BLOCKS and names the key, when it goes and how to get it back (a cancelled key is
    disabled: cancel, enable, then adopt) instead of leaving it out unsaid: a deploy would make a new key, and what the
    old one encrypted would be unreadable once it is deleted."""
    world = DeletedProd(tmp_path / "cdk.out")
    key, until = _scheduled_for_deletion(world)
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub)
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(world.assembly)],
                         world.session(cloudformation))
    storage = next(line for line in out.splitlines() if line.startswith(f"  {PROD}-storage "))
    assert code == 1
    assert storage.endswith(
        f"AWS::SageMaker::FeatureGroup {PROD}-d; AWS::IAM::Role {STORE_ROLE}; key {key} of this environment is pending "
        f"deletion {until}: aws kms "
        f"cancel-key-deletion --key-id {key}, then aws kms enable-key --key-id {key}, then adopt")
    assert f"AWS::KMS::Key {key}" not in out


def test_adopt_leaves_a_key_pending_deletion_out_of_the_mapping_and_says_how_to_cancel_it(moto_aws, tmp_path, capsys):
    """GIVEN the Storage stack's only data key scheduled for deletion WHEN adopt runs THEN the key is not imported (the
    stack would hold a key about to go), what refers to it is mapped as if it were (adopt, run again once the deletion
    is cancelled, maps it too), the key is named with how to cancel its deletion, and the exit is 1."""
    world = DeletedProd(tmp_path / "cdk.out")
    key, until = _scheduled_for_deletion(world)
    mapping = tmp_path / "storage.json"
    code = _adopt_storage(world, mapping)
    assert code == 1
    assert set(json.loads(mapping.read_text())) == MAPPED_WITHOUT_THE_KEY
    assert after_target_line(capsys.readouterr().err) == (
        f"lifecycle: not adopted: DataKey: key {key} of this environment is pending deletion {until}: aws kms "
        f"cancel-key-deletion --key-id {key}, then aws kms enable-key --key-id {key}, then adopt\n")
    # WHEN the deletion is cancelled and the key enabled THEN adopt maps it
    world.kms.cancel_key_deletion(KeyId=key)
    world.kms.enable_key(KeyId=key)
    code = _adopt_storage(world, mapping)
    assert code == 0 and json.loads(mapping.read_text())["DataKey"] == {"KeyId": key}


def test_a_multi_region_primary_key_pending_its_replicas_deletion_says_its_waiting_period():
    # PendingReplicaDeletion has no DeletionDate: the waiting period starts once the last replica is deleted.
    assert retained._until({"KeyState": "PendingReplicaDeletion", "PendingDeletionWindowInDays": 30}) == (
        "until 30 days after its replica keys are deleted")
    assert retained._until({"KeyState": "PendingDeletion",
                            "DeletionDate": datetime.datetime(2027, 1, 5, 19, 3, tzinfo=datetime.timezone(
                                datetime.timedelta(hours=1)))}) == "until 2027-01-05 18:03 UTC"


def test_adopt_refuses_a_stack_that_exists(tmp_path, capsys):
    cloudformation = _client("cloudformation")
    name = environment_stack_names(PROD)["storage"]
    with Stubber(cloudformation) as stub:
        stub.add_response("describe_stacks", {"Stacks": [_stack(name, "UPDATE_COMPLETE", True)]}, {"StackName": name})
        code, out = _run(["--env", "prod", *CONFIG, "adopt", "--stack", "storage"],
                         Session(sample_account("prod"), cloudformation=cloudformation))
    assert code == 2 and out == ""
    assert after_target_line(capsys.readouterr().err) == (f"lifecycle: error: stack {name} exists (UPDATE_COMPLETE): adopt is for a stack "
                                       "that was deleted; its resources are its own, nothing to adopt\n")


# The line for prod's offline-store role when it is gone (exact: the command is run as printed).
MISSING_ROLE = (
    f"AWS::IAM::Role {STORE_ROLE} (StoreRole) does not exist: feature group {PROD}-d writes its offline store as that "
    "role (RoleArn, fixed when the group was created), so Feature Store cannot write it until a role of exactly that "
    f"name is back; create it again (aws iam create-role --role-name {STORE_ROLE} --assume-role-policy-document "
    "'{\"Statement\":[{\"Action\":\"sts:AssumeRole\",\"Effect\":\"Allow\",\"Principal\":{\"Service\":"
    "\"sagemaker.amazonaws.com\"}}],\"Version\":\"2012-10-17\"}' --description 'Feature Store'\"'\"'s offline store' "
    "--tags '[{\"Key\":\"environment\",\"Value\":\"prod\"},{\"Key\":\"project\",\"Value\":\"mlops-loop\"}]'), then run "
    "adopt again, which imports it: the deploy after the import attaches its permissions (StorePolicy)")


def test_adopt_names_a_feature_groups_role_that_is_gone_and_how_to_create_it_again(moto_aws, tmp_path, capsys):
    """GIVEN prod's Storage stack deleted before the offline-store role was kept: its feature group is left, writing its
    offline store (RoleArn, create-only) as a role that no longer exists WHEN adopt runs THEN the role is not mapped
    (there is nothing to import), the rest is, and the operator is told what is broken and the create-role command that
    makes the role again under exactly that name, as the template has it (trust, description, tags), then to adopt
    again; exit 1. After that command, adopt maps it."""
    world = DeletedProd(tmp_path / "cdk.out", role=False)
    mapping = tmp_path / "storage.json"
    code = _adopt_storage(world, mapping)
    assert code == 1
    assert "StoreRole" not in json.loads(mapping.read_text())
    assert after_target_line(capsys.readouterr().err) == f"lifecycle: not adopted: {MISSING_ROLE}\n"

    # WHEN the printed command is run (as a shell splits it; each option is create-role's parameter) and adopt runs
    # again THEN the role is as the template has it, and imported.
    command = shlex.split(MISSING_ROLE.split("create it again (")[1].split("), then run adopt")[0])
    assert command[:3] == ["aws", "iam", "create-role"]
    options = dict(zip(command[3::2], command[4::2]))
    world.iam.create_role(RoleName=options["--role-name"], AssumeRolePolicyDocument=options["--assume-role-policy-document"],
                          Description=options["--description"], Tags=json.loads(options["--tags"]))
    role = world.iam.get_role(RoleName=STORE_ROLE)["Role"]
    assert (role["AssumeRolePolicyDocument"], role["Description"]) == (STORE_TRUST, "Feature Store's offline store")
    # The ARN the group names, but for the account (moto's own, not the sample config's).
    group_role = world.sagemaker.describe_feature_group(FeatureGroupName=f"{PROD}-d")["RoleArn"]
    assert role["Arn"].split(":")[-1] == group_role.split(":")[-1] == f"role/{STORE_ROLE}"
    code = _adopt_storage(world, mapping)
    assert code == 0
    assert json.loads(mapping.read_text())["StoreRole"] == {"RoleName": STORE_ROLE}


def test_stacks_puts_re_creating_a_gone_role_before_the_adoption_of_its_stack(moto_aws, tmp_path):
    """GIVEN prod deleted, its feature group's offline-store role gone WHEN the stacks are checked THEN Storage BLOCKS,
    and its adoption commands are preceded by the line that says what is broken and how to create the role again."""
    world = DeletedProd(tmp_path / "cdk.out", role=False)
    cloudformation = _client("cloudformation")
    with Stubber(cloudformation) as stub:
        _none_deployed(stub)
        code, out = _run(["--env", "prod", *CONFIG, "stacks", "--assembly", str(world.assembly)],
                         world.session(cloudformation))
    lines = out.splitlines()
    assert code == 1
    adopt = lines.index(f"  {PROD_CLI} adopt --stack storage  (writes {environment_stack_names(PROD)['storage']}"
                        ".resource-mapping.json)")
    assert lines[adopt - 1] == f"  first: {MISSING_ROLE}"
    assert sum(line.startswith("  first: ") for line in lines) == 1


def test_a_role_the_template_does_not_keep_is_not_imported_and_is_named(moto_aws, tmp_path, capsys):
    """GIVEN the role the feature group names exists, but the synthesized template does not keep its role (an app
    before the role was kept: an import needs a retaining DeletionPolicy) WHEN adopt runs THEN it is not mapped, and the
    operator is told the deploy would make a role the group does not use; exit 1."""
    world = DeletedProd(tmp_path / "cdk.out")
    template_file = next((world.assembly / "assembly-prod").glob("prodStorage*.template.json"))
    template = json.loads(template_file.read_text())
    for attribute in RETAIN:
        del template["Resources"]["StoreRole"][attribute]
    template_file.write_text(json.dumps(template))
    mapping = tmp_path / "storage.json"
    code = _adopt_storage(world, mapping)
    assert code == 1
    assert "StoreRole" not in json.loads(mapping.read_text())
    assert after_target_line(capsys.readouterr().err) == (
        f"lifecycle: not adopted: AWS::IAM::Role {STORE_ROLE} (StoreRole): the template does not keep it, so it cannot be "
        f"imported and the deploy would make a role of another name, which feature group {PROD}-d would not use: "
        "synthesize the app with a version that keeps it (outside dev), then adopt again\n")


def test_credentials_that_may_not_read_the_role_stop_adopt_before_any_mapping_is_written(moto_aws, tmp_path, capsys):
    """GIVEN credentials IAM refuses GetRole WHEN adopt runs THEN it stops (exit 2) with IAM's answer, and writes no
    mapping: one without the role would import the groups' store without the role they write as."""
    world = DeletedProd(tmp_path / "cdk.out")
    mapping = tmp_path / "storage.json"
    cloudformation, iam = _client("cloudformation"), _client("iam")
    with Stubber(cloudformation) as stub, Stubber(iam) as iam_stub:
        _none_deployed(stub, only=["storage"])
        iam_stub.add_client_error("get_role", "AccessDenied", "not authorized to perform: iam:GetRole",
                                  expected_params={"RoleName": STORE_ROLE})
        session = world.session(cloudformation)
        session.clients["iam"] = iam
        code, out = _run(["--env", "prod", *CONFIG, "adopt", "--stack", "storage", "--assembly", str(world.assembly),
                          "--mapping", str(mapping)], session)
        iam_stub.assert_no_pending_responses()
    assert code == 2 and out == "" and not mapping.exists()
    err = after_target_line(capsys.readouterr().err)
    assert err.startswith("lifecycle: error: ") and "AccessDenied" in err and "iam:GetRole" in err, err


def test_groups_that_write_as_different_roles_leave_the_choice_to_the_operator(moto_aws, tmp_path, capsys):
    """GIVEN two retained feature groups of the one template role whose RoleArns name different roles (created by
    different generations of the stack) WHEN adopt runs THEN neither role is guessed into the mapping; both are named,
    with how to choose; exit 1."""
    world = DeletedProd(tmp_path / "cdk.out")
    template_file = next((world.assembly / "assembly-prod").glob("prodStorage*.template.json"))
    template = json.loads(template_file.read_text())
    template["Resources"]["Features2"] = {**template["Resources"]["Features"], "Properties": {
        **template["Resources"]["Features"]["Properties"], "FeatureGroupName": f"{PROD}-e"}}
    template_file.write_text(json.dumps(template))
    world.iam.create_role(RoleName="other", AssumeRolePolicyDocument=json.dumps(STORE_TRUST))
    world.sagemaker.create_feature_group(
        FeatureGroupName=f"{PROD}-e", RecordIdentifierFeatureName="id", EventTimeFeatureName="t",
        FeatureDefinitions=[{"FeatureName": "id", "FeatureType": "String"}, {"FeatureName": "t", "FeatureType": "String"}],
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{PROD}-data/features"}},
        RoleArn=f"arn:aws:iam::{world.account}:role/other")
    mapping = tmp_path / "storage.json"
    code = _adopt_storage(world, mapping)
    assert code == 1
    assert "StoreRole" not in json.loads(mapping.read_text())
    assert after_target_line(capsys.readouterr().err) == (
        f"lifecycle: not adopted: StoreRole: the feature groups write their offline store as different roles ({PROD}-d: "
        f"{STORE_ROLE}; {PROD}-e: other), and the template has one role for all: add the one to keep to the mapping as "
        "\"StoreRole\": {\"RoleName\": \"<name>\"}; the groups naming the other keep writing as it, outside the stack (it "
        "must stay)\n")


def test_teardown_deactivates_the_triggers_that_fire_and_passes_over_an_on_demand_one(monkeypatch):
    """GIVEN an environment whose ETL schedule is off (glue.etl_schedule: null: its workflow's first trigger is
    ON_DEMAND, which never fires by itself and which Glue does not activate or deactivate) beside a conditional trigger
    WHEN the teardown deactivates the triggers THEN the conditional one is deactivated and the on-demand one is left
    as it is, counted apart."""
    from types import SimpleNamespace

    moto_credentials(monkeypatch)
    with mock_aws():
        glue = boto3.client("glue", region_name="eu-west-1")
        glue.create_job(Name="job", Role="arn:aws:iam::123456789012:role/r", Command={"Name": "glueetl"})
        glue.create_trigger(Name="wf-start-on-demand", Type="ON_DEMAND", Actions=[{"JobName": "job"}])
        glue.create_trigger(Name="wf-after-crawl", Type="CONDITIONAL", Actions=[{"JobName": "job"}], StartOnCreation=True,
                            Predicate={"Logical": "AND", "Conditions": [{"LogicalOperator": "EQUALS", "JobName": "job",
                                                       "State": "SUCCEEDED"}]})
        calls: list = []
        real_stop = glue.stop_trigger
        monkeypatch.setattr(glue, "stop_trigger", lambda **kw: (calls.append(kw["Name"]), real_stop(**kw))[1])
        out = io.StringIO()
        teardown.deactivate_triggers(SimpleNamespace(triggers=["wf-start-on-demand", "wf-after-crawl"]), glue=glue, out=out)
        assert calls == ["wf-after-crawl"]
        assert glue.get_trigger(Name="wf-after-crawl")["Trigger"]["State"] == "DEACTIVATED"
        assert out.getvalue() == "Glue triggers: 1 deactivated (1 on demand: it starts nothing by itself)\n"


def test_a_failed_create_whose_deletion_fails_is_reported_with_the_events_command_in_its_region():
    """GIVEN a protected failed first create WHEN its deletion ends DELETE_FAILED THEN the problem names the command
    that shows why, in the stack's region (as every AWS command the tool prints: a shell's default may be another)."""
    from mlops_cli.environment import stacks

    client = boto3.client("cloudformation", region_name="us-east-2")
    stack_id = f"arn:aws:cloudformation:{REGION}:111111111111:stack/shop-dev-training/0a1b2c3d"
    state = stacks.StackState(name="shop-dev-training", stack_id=stack_id, status="ROLLBACK_COMPLETE", protected=True)
    with Stubber(client) as stub:
        stub.add_response("update_termination_protection", {"StackId": stack_id},
                          {"StackName": stack_id, "EnableTerminationProtection": False})
        stub.add_response("delete_stack", {}, {"StackName": stack_id, "ClientRequestToken": ANY})
        stub.add_response("describe_stacks", {"Stacks": [{
            "StackName": "shop-dev-training", "StackId": stack_id, "StackStatus": "DELETE_FAILED",
            "CreationTime": datetime.datetime(2026, 1, 1)}]}, {"StackName": stack_id})
        problems = stacks.delete_failed_creates(client, [state], out=io.StringIO())
    assert problems == [f"shop-dev-training: the deletion ended DELETE_FAILED: see aws cloudformation describe-stack-events "
                        f"--stack-name {stack_id} --region {REGION}"]

"""The audit report, against moto plus recorded responses for the calls moto 5.2.5 lacks.

moto serves the registry (groups, packages, approval updates), pipelines and executions,
S3, CloudFormation stacks, endpoints and STS. It has no CloudTrail ``LookupEvents``, no
``ListPipelineExecutionSteps``, no lineage (``ListArtifacts`` / ``ListAssociations``), and
its ``DescribeStackEvents`` holds stack-level events only; those calls are answered from the
recorded responses in ``fixtures/audit/`` through botocore's ``before-call`` hook, with the
timestamps parsed by the operation's output shape as botocore would. moto answers as the account
MOTO_ACCOUNT_ID names: prod's account in the sample config, unless a test says otherwise.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
from botocore.awsrequest import AWSResponse
from botocore.utils import parse_timestamp
from moto import mock_aws

from pipeline_code.core import integrity, problem
from pipeline_code.core.contract import legacy_model_card_name, model_card_name, package_created
from pipeline_code.training.model_card.content import PACKAGE_CREATED_DETAIL
from pipeline_code.handlers.deploy.ledger import Ledger, record_decision
from pipeline_code.handlers.deploy.notices import Notifier
from pipeline_code.handlers.deploy.run_records import record_run
from mlops_cli import audit
from tests.support import problem_type_reports as reports
from tests.support.configs import SAMPLE_CONFIG, sample_account
from tests.support.multi_model import keep_package_metadata, model_archive, replace_inference_specification, seal_archive
from tests.support.credentials import without_credentials
from tests.support.moto_clients import SharedClients, keep_model_card_fields
from tests.support.cli_output import after_target_line

REGION = "eu-west-1"
# A frozen copy of the sample config names the environments: prod is in eu-west-1, like the moto world.
CONFIG = ["--config", str(SAMPLE_CONFIG)]
ACCOUNT = sample_account("prod")
OTHER_ACCOUNT = sample_account("staging")
GROUP = "mlops-loop-prod-churn"
PIPELINE = "mlops-loop-prod-churn-training"
STACK = "mlops-loop-prod-serving"
BUCKET = f"mlops-loop-prod-artifacts-{ACCOUNT}-{REGION}"
FIXTURES = Path(__file__).parent / "fixtures" / "audit"
COMMIT = "4f2a9c1e7b3d5a6f8e9d0c1b2a3f4e5d6c7b8a90"
JOB_CODE_ASSET_HASH = "5c" * 32
MODEL_SPEC_SHA256 = "a7" * 32
FROZEN_TEST = "pipelines/churn/frozen-test/"
FROZEN_TEST_ROWS = b"PAR1 the frozen test rows PAR1"
# Where version 2's execution prepared its splits (Prepare's outputs, under the expiring work/ prefix), as written.
SPLIT_ROWS = {"train": b"PAR1 the train rows PAR1", "validation": b"PAR1 the validation rows PAR1"}
GATE_DEFAULTS = {"MinAuc": 0.7, "ChallengerMargin": 0.005, "MaxSliceRegression": 0.02,
                 "MaxDemographicParityDifference": 0.1, "MinDisparateImpact": 0.8}
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
RESOLVED_IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost@sha256:" + "d" * 64
MALICIOUS = '<script>alert("pwned")</script> | <img src=x onerror=alert(1)> [x](javascript:alert(1))'


def fixture_text(name: str, values: Dict[str, str]) -> str:
    text = (FIXTURES / name).read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _typed(shape: Any, value: Any) -> Any:
    """A recorded JSON value with botocore's types (timestamps as datetimes)."""
    if shape is None or value is None:
        return value
    if shape.type_name == "structure":
        return {k: _typed(shape.members.get(k), v) for k, v in value.items()}
    if shape.type_name == "list":
        return [_typed(shape.member, v) for v in value]
    if shape.type_name == "map":
        return {k: _typed(shape.value, v) for k, v in value.items()}
    if shape.type_name == "timestamp" and isinstance(value, str):
        return parse_timestamp(value)
    return value


def replay(client: Any, operation: str, respond: Callable[[Dict[str, Any]], Dict[str, Any]], calls: list) -> None:
    """Answer ``operation`` on ``client`` with ``respond(request params)`` instead of sending it."""
    service = client.meta.service_model.service_id.hyphenize()

    def handler(model, params, **_: Any):
        body = params.get("body")
        request = json.loads(body) if isinstance(body, (bytes, str)) and body else dict(body or {})
        calls.append((operation, request))
        parsed = _typed(model.output_shape, respond(request))
        status = 400 if "Error" in parsed else 200
        parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status})
        return AWSResponse("https://recorded.invalid", status, {}, None), parsed

    client.meta.events.register(f"before-call.{service}.{operation}", handler)


class World:
    """A prod environment in moto: a group with three versions, an execution, reports, a serving stack."""

    def __init__(self, clients: SharedClients) -> None:
        self.clients = audit.Clients(*(clients(s) for s in ("sagemaker", "s3", "cloudformation", "cloudtrail", "sts")))
        self.calls: list = []
        self.overrides: Dict[str, Dict[str, Any]] = {}  # operation -> response replacing the recording
        sm, s3 = self.clients.sagemaker, self.clients.s3
        role = clients("iam").create_role(RoleName="pipeline", AssumeRolePolicyDocument="{}")
        sm.create_model_package_group(ModelPackageGroupName=GROUP, ModelPackageGroupDescription="churn")
        # The gate's parameters with the defaults the evaluation fixture's thresholds were judged with.
        definition = {"Version": "2020-12-01", "Parameters": [{"Name": "TriggerReason", "Type": "String"}, *(
            {"Name": name, "Type": "Float", "DefaultValue": value} for name, value in GATE_DEFAULTS.items())], "Steps": []}
        sm.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition), RoleArn=role["Role"]["Arn"])
        self.parameters = [
            {"Name": "TriggerReason", "Value": "drift:mlops-loop-prod-churn-retrain-psi"},
            {"Name": "InputFeatures", "Value": "s3://mlops-loop-prod-features/customer_churn/snapshot=2026-11-20/"},
            {"Name": "MinDisparateImpact", "Value": "0.8"},
        ]
        self.execution_arn = sm.start_pipeline_execution(PipelineName=PIPELINE, PipelineParameters=self.parameters)[
            "PipelineExecutionArn"
        ]
        self.execution_id = self.execution_arn.rsplit("/", 1)[-1]
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.v1 = self.register(approval="Approved", with_execution=False)
        # The frozen test set version 2 was judged on (its manifest holds the data file's sha256, as prepare writes it).
        self.test_set_sha256 = hashlib.sha256(FROZEN_TEST_ROWS).hexdigest()
        s3.put_object(Bucket=BUCKET, Key=f"{FROZEN_TEST}test.parquet", Body=FROZEN_TEST_ROWS)
        s3.put_object(Bucket=BUCKET, Key=f"{FROZEN_TEST}manifest.json",
                      Body=json.dumps({"file": "test.parquet", "sha256": self.test_set_sha256, "rows": 900}).encode())
        self.values = {"account": ACCOUNT, "region": REGION, "champion_arn": self.v1, "execution_arn": self.execution_arn,
                       "test_set_sha256": self.test_set_sha256}
        self.eval_prefix = f"pipelines/churn/{self.execution_id}/Evaluate/evaluation"
        self.evidence = self.write_evidence()
        self.split_digests = self.write_splits()
        self.v2 = self.register(approval="PendingManualApproval", with_execution=True, reports=True)
        # Its card, written by the pipeline (Draft) and approved by a reviewer before the version was approved.
        self.card = self.write_card(self.v2)
        sm.update_model_package(ModelPackageArn=self.v2, ModelApprovalStatus="Approved", ApprovalDescription=MALICIOUS)
        self.v3 = self.register(approval="PendingManualApproval", with_execution=False, execution_id="gone0execution")
        self.values["package_arn"] = self.v2
        self.clients.cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(
                {
                    "Parameters": {
                        "ChurnModelPackageArn": {"Type": "String"},
                        "CreditRiskModelPackageArn": {"Type": "String", "Default": ""},
                    },
                    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                }
            ),
            Parameters=[{"ParameterKey": "ChurnModelPackageArn", "ParameterValue": self.v2}],
        )
        self.lineage_artifacts = {self.v2: "list_artifacts.json"}
        self.record()

    def write_evidence(self) -> Dict[str, str]:
        """Version 2's reports in S3 as the evaluate job writes them (bias.json carrying evaluation.json's digest);
        returns each one's ContentDigest, what the register step records."""
        evaluation = fixture_text("evaluation.json", self.values).encode()
        self.values["evaluation_digest"] = "sha256:" + hashlib.sha256(evaluation).hexdigest()
        quality = {"binary_classification_metrics": json.loads(evaluation)["binary_classification_metrics"]}
        documents = {"evaluation.json": evaluation, "bias.json": fixture_text("bias.json", self.values).encode(),
                     "model_quality.json": json.dumps(quality).encode()}
        for name, body in documents.items():
            self.clients.s3.put_object(Bucket=BUCKET, Key=f"{self.eval_prefix}/{name}", Body=body)
        return {name: "sha256:" + hashlib.sha256(body).hexdigest() for name, body in documents.items()}

    def write_card(self, arn: str, *, status: str = "Approved", describes: str = "", name: str = "") -> str:
        """The model card of version ``arn`` as the pipeline creates it (Draft, named after the package: ``name`` by
        default contract.model_card_name; its content names ``describes``, by default ``arn``, and that package's
        creation time), then moved to ``status`` as a reviewer does; returns its name."""
        sm = self.clients.sagemaker
        created = sm.describe_model_package(ModelPackageName=describes or arn)["CreationTime"]
        name = name or model_card_name(GROUP, int(arn.rsplit("/", 1)[-1]), sm.describe_model_package(ModelPackageName=arn)["CreationTime"])
        content = {"model_overview": {"model_description": "churn"},
                   "model_package_details": {"model_package_arn": describes or arn},
                   "additional_information": {"custom_details": {PACKAGE_CREATED_DETAIL: package_created(created)}}}
        sm.create_model_card(ModelCardName=name, Content=json.dumps(content), ModelCardStatus="Draft")
        if status != "Draft":
            sm.update_model_card(ModelCardName=name, ModelCardStatus=status)
        return name

    def split_uri(self, split: str) -> str:
        """A split's location as the register step records it (Prepare's output S3Uri: no trailing slash)."""
        return f"s3://{BUCKET}/pipelines/churn/work/{self.execution_id}/prepare/{split}"

    def write_splits(self) -> Dict[str, str]:
        """Version 2's prepared splits in S3 as Prepare's outputs upload them; returns each split's digest as Prepare
        records it, computed here from its definition: sha256 of {file: sha256} as canonical JSON."""
        digests = {}
        for split, rows in SPLIT_ROWS.items():
            key = f"{self.split_uri(split).split('/', 3)[3]}/{split}.parquet"
            self.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=rows)
            digests[split] = _split_digest({f"{split}.parquet": rows})
        return digests

    def register(self, *, approval: str, with_execution: bool, reports: bool = False, execution_id: str = "",
                 sealed: bool = True, recorded: bool = True, commit: str = COMMIT, pinned: bool = True) -> str:
        """A version; ``sealed`` (default) as the pipeline registers it: its own archive at its sealed key, both digests;
        ``reports``: version 2's reports as its ModelMetrics, with their digests and the test set's unless not ``recorded``
        (a version registered before they were recorded); ``pinned`` (default): what pins its build without git, the
        job-code asset hash and the model spec's sha256 (not: a version registered before they were recorded)."""
        model_data = f"s3://{BUCKET}/pipelines/churn/train/job-{approval}/output/model.tar.gz"
        digests: Dict[str, str] = {}
        if sealed:
            number = len(self.clients.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) + 1
            model_data, digests = seal_archive(self.clients.s3, BUCKET, "churn", model_archive(before=[(f"./v{number}", b"")]),
                                               container={"Image": IMAGE})
        metadata = {
            "code_version": commit,
            "trigger_reason": "drift:mlops-loop-prod-churn-retrain-psi",
            "input_features": "s3://mlops-loop-prod-features/customer_churn/snapshot=2026-11-20/",
            "input_labels": "s3://mlops-loop-prod-curated/customer_churn/",
            "frozen_test": f"s3://{BUCKET}/{FROZEN_TEST}",
            "pipeline_name": PIPELINE,
            "pipeline_execution_id": execution_id or (self.execution_id if with_execution else "old0execution"),
            **digests,
            **({"job_code_asset_hash": JOB_CODE_ASSET_HASH, "model_spec_sha256": MODEL_SPEC_SHA256} if pinned else {}),
        }
        kwargs: Dict[str, Any] = {}
        if with_execution:
            kwargs["MetadataProperties"] = {"CommitId": commit, "GeneratedBy": self.execution_arn, "ProjectId": PIPELINE}
        if reports:
            base = f"s3://{BUCKET}/{self.eval_prefix}"

            def source(name: str) -> Dict[str, str]:
                digest = {"ContentDigest": self.evidence[name]} if recorded else {}
                return {"ContentType": "application/json", "S3Uri": f"{base}/{name}", **digest}

            kwargs["ModelMetrics"] = {"ModelQuality": {"Statistics": source("model_quality.json")},
                                      "Bias": {"Report": source("bias.json")}}
            metadata.update({f"{split}_data": self.split_uri(split) for split in SPLIT_ROWS})
            if recorded:
                metadata["test_set_sha256"] = self.test_set_sha256
                metadata.update({f"{split}_data_sha256": self.split_digests[split] for split in SPLIT_ROWS})
        return self.clients.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelPackageDescription="churn: XGBoost 3.0-5, passed the promotion gate",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": IMAGE,
                        "ModelDataUrl": model_data,
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelApprovalStatus=approval,
            CustomerMetadataProperties=metadata,
            **kwargs,
        )["ModelPackageArn"]

    def record(self) -> None:
        sm, calls = self.clients.sagemaker, self.calls

        def recorded(operation: str, name: str) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
            return lambda request: self.overrides.get(operation) or json.loads(fixture_text(name, self.values))

        replay(
            sm, "ListPipelineExecutionSteps", recorded("ListPipelineExecutionSteps", "list_pipeline_execution_steps.json"), calls
        )
        replay(self.clients.cloudtrail, "LookupEvents", recorded("LookupEvents", "lookup_events.json"), calls)
        replay(
            self.clients.cloudformation,
            "DescribeStackEvents",
            recorded("DescribeStackEvents", "describe_stack_events.json"),
            calls,
        )

        def artifacts(request: Dict[str, Any]) -> Dict[str, Any]:
            name = self.lineage_artifacts.get(request["SourceUri"])
            return json.loads(fixture_text(name, self.values)) if name else {"ArtifactSummaries": []}

        def associations(request: Dict[str, Any]) -> Dict[str, Any]:
            name = "list_associations_upstream.json" if "DestinationArn" in request else "list_associations_downstream.json"
            return json.loads(fixture_text(name, self.values))

        replay(sm, "ListArtifacts", artifacts, calls)
        replay(sm, "ListAssociations", associations, calls)
        # moto's endpoints report no DeployedImages: the serving endpoint as SageMaker describes one it updated.
        replay(sm, "DescribeEndpoint", lambda request: self.overrides.get("DescribeEndpoint") or self.endpoint(), calls)

    def endpoint(self, images: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
        """DescribeEndpoint of the serving endpoint: one variant running ``images`` (default: the registered image,
        resolved to :data:`RESOLVED_IMAGE`)."""
        images = [{"SpecifiedImage": IMAGE, "ResolvedImage": RESOLVED_IMAGE, "ResolutionTime": "2026-11-21T10:35:00Z"}] \
            if images is None else images
        return {"EndpointName": GROUP, "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{GROUP}",
                "EndpointConfigName": "churn-config", "EndpointStatus": "InService",
                "CreationTime": "2026-11-01T00:00:00Z", "LastModifiedTime": "2026-11-21T10:41:07Z",
                "ProductionVariants": [{"VariantName": "AllTraffic", "DeployedImages": images}]}


def _split_digest(files: Dict[str, bytes]) -> str:
    listing = {name: hashlib.sha256(body).hexdigest() for name, body in files.items()}
    return hashlib.sha256(json.dumps(listing, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@pytest.fixture(scope="module")
def shared_clients() -> SharedClients:
    """The module's clients (tests/support/moto_clients.py): made once, not six times per test."""
    return SharedClients(REGION)


@pytest.fixture()
def world(monkeypatch, shared_clients):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    keep_package_metadata(monkeypatch)
    keep_model_card_fields(monkeypatch)
    with mock_aws(), shared_clients.fresh() as clients:
        yield World(clients)


def run(world: World, tmp_path: Path, *args: str):
    out, page = tmp_path / "report.md", tmp_path / "report.html"
    code = audit.main(
        ["--env", "prod", "--model", "churn", *CONFIG, *args, "--output", str(out), "--html", str(page)],
        clients=world.clients,
    )
    return code, (out.read_text() if out.exists() else ""), (page.read_text() if page.exists() else "")


def section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def gaps(markdown: str) -> list:
    return [line[2:] for line in section(markdown, "Gaps").splitlines() if line.startswith("- ")]


def has_gap(markdown: str, text: str) -> bool:
    return any(audit.md_text(text) in gap for gap in gaps(markdown))


def test_it_first_names_the_project_environment_account_and_region_it_acts_on_and_the_config_read(world, tmp_path, capsys):
    code, _, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert capsys.readouterr().err.splitlines()[0] == (f"project=mlops-loop environment=prod account={ACCOUNT} "
                                                       f"region={REGION} (config {SAMPLE_CONFIG})")


def test_a_changed_artefact_or_an_unsealed_version_is_a_gap(world, tmp_path):
    """GIVEN version 2's sealed object overwritten (the bucket policy forbids it; moto does not model bucket
    policies) and a version registered before sealing WHEN audited THEN each says so in its data section and gaps."""
    uri = world.clients.sagemaker.describe_model_package(ModelPackageName=world.v2)["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    world.clients.s3.put_object(Bucket=bucket, Key=key, Body=b"other bytes")
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert "| Artefact verified | NO: the object's bytes differ \\(see gaps\\) |" in section(md, "Data and code")
    assert has_gap(md, f"integrity: {uri} has sha256 {hashlib.sha256(b'other bytes').hexdigest()}, not the ")

    unsealed = world.register(approval="PendingManualApproval", with_execution=False, sealed=False)
    code, md, _ = run(world, tmp_path, "--version", unsealed.rsplit("/", 1)[-1])
    assert "| Artefact verified | not checked \\(see gaps\\) |" in section(md, "Data and code")
    # Registered within CloudTrail's history and no call removed them: it was registered without digests.
    assert UNSEALED_GAP in gaps(md)
    # Refused for its artefact digests: no second gap about its container.
    assert not [g for g in gaps(md) if g.startswith(audit.md_text("integrity: container_sha256"))]


UNSEALED_GAP = audit.md_text(
    "integrity: model_data_sha256, model_sha256 are absent (registered before artefacts were sealed: "
    "CloudTrail shows no update of the version removing them); the deploy handler refuses to deploy the version")


def _update_event(world: World, arn: str, request: Dict[str, Any], *, who: str = "mallory",
                  at: str = "2026-11-22T08:00:00Z") -> Dict[str, Any]:
    """A successful UpdateModelPackage call on ``arn`` by the approver role's session ``who``, as LookupEvents returns it."""
    record = {
        "eventTime": at, "eventName": "UpdateModelPackage", "eventID": f"tamper-{who}",
        "userIdentity": {"arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/{who}",
                         "sessionContext": {"sessionIssuer": {"arn": f"arn:aws:iam::{ACCOUNT}:role/mlops-loop-prod-model-approver"},
                                            "attributes": {"mfaAuthenticated": "true"}}},
        "requestParameters": {"modelPackageArn": arn, **request},
    }
    return {"EventId": f"tamper-{who}", "EventName": "UpdateModelPackage", "EventTime": at, "CloudTrailEvent": json.dumps(record)}


def test_an_approver_who_rewrites_the_commit_and_strips_the_digests_is_seen_through(world, tmp_path):
    """GIVEN version 2 whose customer metadata was edited after registration (IAM now denies it; an older deployment
    allowed it): code_version rewritten, both artefact digests removed, the call on record in CloudTrail
    WHEN audited THEN the commit is the one recorded at registration (MetadataProperties.CommitId), the edit is a gap,
    and the missing digests are worded as removed, naming who removed them and when."""
    forged = "0" * 40
    world.clients.sagemaker.update_model_package(
        ModelPackageArn=world.v2, ModelApprovalStatus="Approved", CustomerMetadataProperties={"code_version": forged},
        CustomerMetadataPropertiesToRemove=["model_data_sha256", "model_sha256"])
    request = {"modelApprovalStatus": "Approved", "customerMetadataProperties": {"code_version": forged},
               "customerMetadataPropertiesToRemove": ["model_data_sha256", "model_sha256"]}
    world.overrides["LookupEvents"] = {"Events": [_update_event(world, world.v2, request)]}

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    mallory = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/mallory"
    data = section(md, "Data and code")
    assert f"| Code commit | {COMMIT} \\(from MetadataProperties.CommitId\\) |" in data
    assert "| Artefact sha256 (recorded) | absent \\(see gaps\\) |" in data
    assert audit.md_text(
        f"code commit: the customer metadata's code_version {forged} differs from MetadataProperties.CommitId {COMMIT}, "
        "recorded at registration; the report shows CommitId (the customer metadata was changed after registration)") in gaps(md)
    assert audit.md_text(
        f"integrity: model_data_sha256, model_sha256 are absent (removed after registration: by {mallory} at "
        "2026-11-22T08:00:00Z); the deploy handler refuses to deploy the version") in gaps(md)
    assert audit.md_text(
        f"lineage: the UpdateModelPackage call by {mallory} at 2026-11-22T08:00:00Z set code_version, removed "
        "model_data_sha256, removed model_sha256 after registration") in gaps(md)


DIRTY_BECAUSE = ("was built from files that commit does not hold (uncommitted changes, untracked job code, or a "
                 "config not committed; synth's warning said which), so the commit alone does not show what ran: ")
UNKNOWN_BECAUSE = ("names no git commit (40 hex digits, maybe -dirty; synth records unknown when git cannot tell it: no "
                   "checkout, no git, or a checkout git refuses to read, and its warning gave git's error), so nothing "
                   "records which code this version was built from: ")
PINNED = "job_code_asset_hash and model_spec_sha256 record the job code and model spec"
NOT_PINNED = ("neither job_code_asset_hash nor model_spec_sha256 is recorded (registered before they were, or removed), "
              "so what ran cannot be pinned")


@pytest.mark.parametrize("commit, because", [(f"{COMMIT}-dirty", DIRTY_BECAUSE), ("unknown", UNKNOWN_BECAUSE)],
                         ids=["dirty", "unknown"])
@pytest.mark.parametrize("pinned, pins", [(True, PINNED), (False, NOT_PINNED)], ids=["pinned", "registered-before-pins"])
def test_a_version_whose_commit_does_not_show_what_ran_is_a_gap_saying_what_pins_the_build(world, tmp_path, commit,
                                                                                          because, pinned, pins):
    """GIVEN a version registered from a synth whose tree was not its commit (-dirty) or whose commit git could not
    tell (unknown), with or without the two digests that pin the build without git (versions registered before they
    were recorded have neither) WHEN audited THEN the report shows what was recorded, and one code-commit gap says the
    commit does not show what ran and whether the digests are there to pin it."""
    world.register(approval="PendingManualApproval", with_execution=True, commit=commit, pinned=pinned)

    code, md, _ = run(world, tmp_path, "--version", "4")

    assert code == 0
    assert f"| Code commit | {audit.md_text(commit)} \\(from MetadataProperties.CommitId\\) |" in section(md, "Data and code")
    assert [g for g in gaps(md) if g.startswith("code commit")] == [audit.md_text(f"code commit: {commit} {because}{pins}")]
    assert (f"| Metadata {audit.md_text('job_code_asset_hash')} | {JOB_CODE_ASSET_HASH} |" in section(md, "Data and code")) == pinned


def test_a_version_with_one_of_the_build_digests_says_which_is_missing(world, tmp_path):
    """GIVEN a -dirty version whose model spec digest is not recorded WHEN audited THEN the gap says the job code is
    pinned and the model spec is not."""
    dirty = f"{COMMIT}-dirty"
    arn = world.register(approval="PendingManualApproval", with_execution=True, commit=dirty)
    world.clients.sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["model_spec_sha256"])
    world.overrides["LookupEvents"] = {"Events": []}
    code, md, _ = run(world, tmp_path, "--version", "4")
    assert audit.md_text(
        f"code commit: {dirty} {DIRTY_BECAUSE}job_code_asset_hash records the job code, but model_spec_sha256 is not "
        "recorded, so the model spec that ran cannot be pinned") in gaps(md)


def test_a_version_of_a_clean_commit_has_no_code_commit_gap(world, tmp_path):
    """GIVEN version 2, registered from a clean commit WHEN audited THEN no gap speaks of its code commit."""
    _, clean, _ = run(world, tmp_path, "--version", "2")
    assert not [g for g in gaps(clean) if g.startswith("code commit")]


def test_digests_missing_without_a_call_on_record_are_worded_by_what_the_version_tells(world, tmp_path):
    """GIVEN version 2's digests removed with no CloudTrail record of it WHEN audited THEN its sealed artefact key
    says it was registered sealed (so they were removed); GIVEN a version without digests older than CloudTrail's
    90 days and not at a sealed key THEN the report says it cannot tell removed from never recorded."""
    world.clients.sagemaker.update_model_package(ModelPackageArn=world.v2, ModelApprovalStatus="Approved",
                                                 CustomerMetadataPropertiesToRemove=["model_sha256"])
    world.overrides["LookupEvents"] = {"Events": []}
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert audit.md_text(
        "integrity: model_sha256 is absent (removed after registration: the artefact sits at a sealed key "
        "(.../registered/<sha256>/model.tar.gz), which only a sealed registration uses); the deploy handler refuses to "
        "deploy the version") in gaps(md)

    unsealed = world.register(approval="PendingManualApproval", with_execution=False, sealed=False)
    out = tmp_path / "old.md"
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=120)
    assert audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--version", unsealed.rsplit("/", 1)[-1],
                       "--output", str(out)], clients=world.clients, now=later) == 0
    assert audit.md_text(
        "integrity: model_data_sha256, model_sha256 are absent (removed, or registered before artefacts "
        "were sealed: the version is older than CloudTrail's 90-day event history); the deploy handler refuses to deploy "
        "the version") in gaps(out.read_text())


def test_an_execution_in_the_customer_metadata_other_than_generated_by_is_a_gap(world, tmp_path):
    """GIVEN a version registered by the execution (MetadataProperties.GeneratedBy) whose customer metadata names
    another execution WHEN audited THEN the report follows GeneratedBy and the mismatch is a gap."""
    other = world.register(approval="PendingManualApproval", with_execution=True, execution_id="other0execution")
    code, md, _ = run(world, tmp_path, "--version", other.rsplit("/", 1)[-1])
    assert audit.md_text(world.execution_arn) in section(md, "Pipeline execution")
    assert audit.md_text(
        f"pipeline execution: the customer metadata names execution other0execution of pipeline {PIPELINE}, but "
        f"MetadataProperties.GeneratedBy, recorded at registration, names {world.execution_arn}; the report follows "
        "GeneratedBy (the customer metadata was changed after registration)") in gaps(md)


def test_a_replaced_inference_container_is_a_gap_and_its_image_digest_is_reported(world, tmp_path):
    """GIVEN version 2's inference specification replaced after registration (UpdateModelPackage, which IAM cannot
    deny by content) WHEN audited THEN the container is not verified and the gap names both digests; an ImageDigest
    DescribeModelPackage returns is shown, and a container that is the registered one verifies."""
    described = world.clients.sagemaker.describe_model_package(ModelPackageName=world.v2)
    spec = described["InferenceSpecification"]
    registered = described["CustomerMetadataProperties"]["container_sha256"]
    image_digest = "sha256:" + "e" * 64
    same = {**spec, "Containers": [{**spec["Containers"][0], "ImageDigest": image_digest}]}
    replace_inference_specification(world.v2, same, account=ACCOUNT, region=REGION)
    code, md, _ = run(world, tmp_path, "--version", "2")
    data = section(md, "Data and code")
    assert f"| Inference image digest | {audit.md_text(image_digest)} |" in data
    assert "| Inference container verified | yes: the image and environment registered |" in data

    swapped = "999999999999.dkr.ecr.eu-west-1.amazonaws.com/not-the-gated-code:latest"
    replace_inference_specification(world.v2, {**spec, "Containers": [{**spec["Containers"][0], "Image": swapped}]},
                                    account=ACCOUNT, region=REGION)
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert "| Inference container verified | NO: changed after registration \\(see gaps\\) |" in section(md, "Data and code")
    assert audit.md_text(
        f"integrity: the inference container (image {swapped}) is not the one registered: its image and environment hash "
        f"to {integrity.container_digest(swapped, None)}, {registered} was recorded at registration (container_sha256)") in gaps(md)


def test_the_image_digest_the_endpoint_runs_is_reported_with_the_tag_it_was_resolved_from(world, tmp_path):
    """GIVEN version 2 serving, its endpoint's variant running the registered tag resolved to a digest WHEN audited
    THEN the deployment shows the digest, the tag and when SageMaker resolved it (a tag AWS may republish: the digest is
    what to compare between staging and prod); an endpoint that reports none, or cannot be read, says so."""
    code, md, _ = run(world, tmp_path, "--serving")
    deployment = section(md, "Deployment")
    assert code == 0 and (f"| Serving image (AllTraffic) | {audit.md_text(RESOLVED_IMAGE)}, resolved from "
                          f"{audit.md_text(IMAGE)} at 2026-11-21T10:35:00Z |") in deployment

    world.overrides["DescribeEndpoint"] = world.endpoint(images=[])
    _, md, _ = run(world, tmp_path, "--serving")
    why = audit.md_text("not reported: endpoint mlops-loop-prod-churn names no resolved image (DeployedImages)")
    assert f"| Serving image | {why} |" in section(md, "Deployment")

    world.overrides["DescribeEndpoint"] = {"Error": {"Code": "ValidationException", "Message": "Could not find endpoint"}}
    code, md, _ = run(world, tmp_path, "--serving")
    [row] = [line for line in section(md, "Deployment").splitlines() if line.startswith("| Serving image")]
    assert row.startswith(f"| Serving image | {audit.md_text('not read: endpoint mlops-loop-prod-churn: ')}")
    assert "Could not find endpoint" in row and code == 0


def test_an_approved_and_deployed_version_has_every_piece(world, tmp_path):
    """GIVEN version 2: registered by an execution, approved by alice, deployed after a rolled-back try
    WHEN audited THEN the report holds commit, data, execution + parameters, metrics vs champion,
    fairness, the approver and time, and the deployment time of the successful operation."""
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    data = section(md, "Data and code")
    assert COMMIT in data
    assert "| Input features | s3://mlops-loop-prod-features/customer\\_churn/snapshot=2026-11-20/ |" in data
    assert "| Input labels | s3://mlops-loop-prod-curated/customer\\_churn/ |" in data
    assert "model.tar.gz" in data
    execution = section(md, "Pipeline execution")
    assert audit.md_text(world.execution_arn) in execution
    assert "| TriggerReason | drift:mlops-loop-prod-churn-retrain-psi |" in execution
    assert "| Register step created this version | yes |" in execution
    assert "| Register-RegisterModel | Succeeded |" in execution
    evaluation = json.loads(fixture_text("evaluation.json", world.values))
    metrics = section(md, "Evaluation against the champion")
    auc, champion_auc = evaluation["challenger"]["metrics"]["auc"], evaluation["champion"]["metrics"]["auc"]
    assert f"| auc | {auc:.4f} | {champion_auc:.4f} | {auc - champion_auc:.4f} |" in metrics
    assert "Gate: passed." in metrics
    fairness = section(md, "Fairness")
    di = evaluation["challenger"]["fairness"]["disparate_impact"]
    assert f"| disparate_impact | {di:.4f} |" in fairness and ">= 0.8000 | pass |" in fairness
    approvals = section(md, "Approval history")
    alice = audit.md_text(f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/alice")
    assert f"| 2026-11-21T10:15:02Z | {alice} |" in approvals
    assert "AccessDeniedException" in approvals  # the pipeline role's denied self-approval is on record
    assert "first model" not in approvals  # the champion's approval belongs to another version
    summary = section(md, "Summary")
    assert f"approved by {alice} at 2026-11-21T10:15:02Z" in summary
    deployment = section(md, "Deployment")
    assert "| Deployed at (endpoint updated) | 2026-11-21T10:41:07Z |" in deployment
    assert "| Rolled-back attempt | 2026-11-21T09:20:02Z (UPDATE\\_ROLLBACK\\_COMPLETE) |" in deployment
    assert "| Serving now | yes |" in deployment
    assert "ModelDeployment" in section(md, "Lineage")
    assert "| Artefact verified | yes: the object holds the recorded bytes |" in data
    assert section(md, "Gaps").strip() == "None: every piece was found."
    (lookup,) = [request for operation, request in world.calls if operation == "LookupEvents"]
    assert lookup["LookupAttributes"] == [{"AttributeKey": "EventName", "AttributeValue": "UpdateModelPackage"}]


def _rewrite(world: World, name: str, change: Callable[[dict], None]) -> tuple:
    """Rewrite version 2's ``name`` in S3 as someone with s3:PutObject on the artifacts bucket could; returns (uri,
    sha256 of the new bytes, sha256 of the registered bytes)."""
    key = f"{world.eval_prefix}/{name}"
    before = world.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    document = json.loads(before)
    change(document)
    after = json.dumps(document).encode()
    world.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=after)
    return f"s3://{BUCKET}/{key}", hashlib.sha256(after).hexdigest(), hashlib.sha256(before).hexdigest()


def test_a_rewritten_evaluation_report_is_a_gap_naming_both_digests(world, tmp_path):
    """GIVEN version 2's evaluation.json rewritten after approval (a higher AUC, every check passed) WHEN audited
    THEN the gap names the file, its sha256 now and the one bias.json recorded at registration, the summary says the
    evidence differs, and the gate no longer reads as plainly passed."""
    def forge(report: dict) -> None:
        report["challenger"]["metrics"]["auc"] = 0.99
        for check in report["gate"]["checks"]:
            check["passed"] = True

    uri, now, registered = _rewrite(world, "evaluation.json", forge)
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert gaps(md) == [audit.md_text(
        f"evidence: {uri} has sha256 {now}, not the {registered} recorded at registration (evaluation_digest in the "
        "verified bias report): it was rewritten since")]
    summary = section(md, "Summary")
    assert "| Evidence as registered | **NO**: 1 report(s) rewritten since registration (see gaps) |" in summary
    assert "| Gate | passed (says a report rewritten since registration: see gaps) |" in summary
    assert f"| evaluation | {audit.md_text(uri)} | **NO**: rewritten (see gaps) |" in section(md, "Evaluation against the champion")


def _approve_a_failed_gate(world: World) -> str:
    """A version whose evaluation report (as registered: its digests recorded, so verified) says the gate failed on
    disparate impact, approved by the approver role: registered outside the pipeline, whose condition step registers
    only a version that passed. Returns its ARN."""
    evaluation = json.loads(fixture_text("evaluation.json", world.values))
    gate = evaluation["gate"]
    gate["passed"] = False
    gate["reasons"] = ["disparate impact 0.2900 < minimum 0.8000 across age_group"]
    body = json.dumps(evaluation).encode()
    values = {**world.values, "evaluation_digest": "sha256:" + hashlib.sha256(body).hexdigest()}
    bias = fixture_text("bias.json", values).encode()
    for name, document in (("evaluation.json", body), ("bias.json", bias)):
        world.clients.s3.put_object(Bucket=BUCKET, Key=f"{world.eval_prefix}/{name}", Body=document)
    world.evidence = {**world.evidence, "bias.json": "sha256:" + hashlib.sha256(bias).hexdigest()}
    arn = world.register(approval="PendingManualApproval", with_execution=True, reports=True)
    world.clients.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                                                 ApprovalDescription="approved despite the fairness check")
    return arn


def test_an_approved_version_whose_gate_failed_is_a_gap(world, tmp_path, capsys):
    """GIVEN an Approved version whose verified evaluation report says the promotion gate failed WHEN audited THEN it
    is a gap naming the gate's reasons (so --fail-on-gaps stops a release of it), not only a word in the summary;
    version 2, which passed, has none (test_an_approved_and_deployed_version_has_every_piece)."""
    arn = _approve_a_failed_gate(world)
    version = arn.rsplit("/", 1)[-1]
    code, md, _ = run(world, tmp_path, "--version", version)
    assert code == 0
    assert "| Gate | **failed** |" in section(md, "Summary")
    assert audit.md_text(
        f"gate: version {version} is Approved, but its evaluation report says the promotion gate failed (disparate "
        "impact 0.2900 < minimum 0.8000 across age_group); the pipeline registers only a version that passed, so this "
        "one was registered outside it; its approval is the only record of why the failed check was accepted") in gaps(md)
    capsys.readouterr()
    assert audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--version", version, "--format", "json",
                       "--fail-on-gaps"], clients=world.clients) == 3
    sections = capsys.readouterr().err.split(f"churn/{version}: ", 1)[1].split(" (", 1)[0].split(", ")
    assert "evaluation" in sections


def test_an_approval_that_records_no_reason_is_a_gap(world, tmp_path):
    """GIVEN version 2 approved by the approver role with an empty ApprovalDescription (CloudTrail's call) WHEN audited
    THEN the decision without a reason is a gap naming who and when; the fixture's decision with a reason has none
    (test_an_approved_and_deployed_version_has_every_piece)."""
    world.overrides["LookupEvents"] = {"Events": [_update_event(world, world.v2, {"modelApprovalStatus": "Approved"},
                                                                who="alice", at="2026-11-21T10:15:02Z")]}
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    alice = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/alice"
    assert gaps(md) == [audit.md_text(
        f"approval: the decision that approved the version at 2026-11-21T10:15:02Z by {alice} (CloudTrail event "
        "tamper-alice) records no reason (its ApprovalDescription is empty): say why with --approval-description "
        "when approving")]
    assert "not every approval was the approver role's" not in section(md, "Summary")  # it was the approver role's
    assert "| no reason recorded |" in section(md, "Approval history")


def test_a_version_held_because_its_callers_contract_changes_says_so_in_its_evaluation(world, tmp_path):
    """GIVEN version 2's report saying auto-approval was asked for but the callers' contract changes WHEN audited
    THEN the evaluation section says why it was registered PendingManualApproval (the rewrite itself is a gap, above)."""
    change = "the champion takes features ['a', 'b'], the challenger ['b', 'a'], in that order"

    def held(report: dict) -> None:
        report["registration"] = {"requested": "Approved", "approval_status": "PendingManualApproval",
                                  "contract_change": change}

    _rewrite(world, "evaluation.json", held)
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert audit.md_text(
        f"Registration: the callers' contract changes ({change}); registered PendingManualApproval, not the Approved "
        "requested: a person approves a version that answers its callers in another shape."
    ) in section(md, "Evaluation against the champion")


def test_a_rewritten_bias_report_is_a_gap_and_the_evaluation_it_vouches_for_is_unverified(world, tmp_path):
    """GIVEN version 2's bias.json rewritten (a better disparate impact) THEN its ContentDigest, which SageMaker
    keeps as registered, no longer holds: one gap with both digests; evaluation.json, whose digest bias.json
    carries, is reported as not verified rather than as verified."""
    uri, now, registered = _rewrite(world, "bias.json", lambda bias: bias["challenger"].update(disparate_impact=0.99))
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    evaluation = f"s3://{BUCKET}/{world.eval_prefix}/evaluation.json"
    assert gaps(md) == [audit.md_text(g) for g in (
        f"evidence: {uri} has sha256 {now}, not the {registered} recorded at registration (its ModelMetrics Bias.Report "
        "ContentDigest): it was rewritten since",
        f"evidence: {evaluation}: not verified (the bias report that records its digest does not hold the registered "
        "bytes)",
    )]


def test_a_replaced_frozen_test_set_is_a_gap(world, tmp_path):
    """GIVEN the model's frozen test set replaced after version 2 was judged on it (the README's way: delete the
    prefix, the next run freezes another) THEN the gap names the data file, its sha256 now and the one recorded."""
    world.clients.s3.put_object(Bucket=BUCKET, Key=f"{FROZEN_TEST}test.parquet", Body=b"PAR1 other rows PAR1")
    world.clients.s3.put_object(Bucket=BUCKET, Key=f"{FROZEN_TEST}manifest.json", Body=json.dumps(
        {"file": "test.parquet", "sha256": hashlib.sha256(b"PAR1 other rows PAR1").hexdigest(), "rows": 5}).encode())
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert gaps(md) == [audit.md_text(
        f"frozen test set: s3://{BUCKET}/{FROZEN_TEST}test.parquet now has sha256 "
        f"{hashlib.sha256(b'PAR1 other rows PAR1').hexdigest()}, not the {world.test_set_sha256} this version was judged "
        "on: the set was replaced since")]
    assert "| Frozen test set now | NO: it was replaced since \\(see gaps\\) |" in section(md, "Data and code")


def _refreeze(world: World, rows: bytes, *, chain: list, reason: str = "", created_at: str) -> str:
    """The frozen test set replaced as Prepare re-freezes it: new rows and a manifest naming every set replaced
    (``chain``, latest first) and, with ``reason``, why the latest went; returns the new rows' sha256."""
    sha = hashlib.sha256(rows).hexdigest()
    world.clients.s3.put_object(Bucket=BUCKET, Key=f"{FROZEN_TEST}test.parquet", Body=rows)
    manifest = {"file": "test.parquet", "sha256": sha, "rows": 5, "version": str(len(chain) + 1), "created_at": created_at,
                "replaced_test_sets": chain, **({"refrozen": {"reason": reason, "previous": chain[0]}} if reason else {})}
    world.clients.s3.put_object(Bucket=BUCKET, Key=f"{FROZEN_TEST}manifest.json", Body=json.dumps(manifest).encode())
    return sha


def _entry(sha: str, version: str, created_at: str) -> Dict[str, Any]:
    """A replaced set as Prepare's manifest lists it."""
    return {"sha256": sha, "version": version, "created_at": created_at, "rows": 900,
            "time_range": {"min": "2026-01-01T00:00:00+00:00", "max": "2026-03-01T00:00:00+00:00"}}


STALE = "the frozen test set (version 1, 900 rows) had gone stale: 200 of this run's 1000 rows have event times after its window"


def test_a_frozen_test_set_prepare_re_froze_since_is_said_and_no_gap(world, tmp_path):
    """GIVEN the frozen test set version 2 was judged on (version 1 of the set) re-frozen by Prepare since: the new
    manifest names it first among the sets it replaced, with the reason WHEN audited THEN the report says the version
    was judged on an earlier set, its version, the day it was replaced and why, and there is no gap."""
    _refreeze(world, b"PAR1 newer rows PAR1", chain=[_entry(world.test_set_sha256, "1", "2026-01-05T00:00:00+00:00")],
              reason=STALE, created_at="2026-11-25T06:30:00+00:00")
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert not [g for g in gaps(md) if g.startswith("frozen test set")]
    assert ("| Frozen test set now | " + audit.md_text(
        f"no: judged on an earlier frozen set (version 1, replaced on 2026-11-25 because {STALE})") + " |"
    ) in section(md, "Data and code")


def test_a_frozen_test_set_re_frozen_twice_since_names_when_its_own_replacement_came(world, tmp_path):
    """GIVEN the set version 2 was judged on (version 1) replaced by version 2 of the set, itself replaced by version 3
    WHEN audited THEN the report gives version 1, the day version 2 replaced it, and where Prepare's reason for that
    re-freeze is (the current manifest keeps only the latest reason); no gap."""
    second = hashlib.sha256(b"PAR1 second rows PAR1").hexdigest()
    _refreeze(world, b"PAR1 third rows PAR1", chain=[_entry(second, "2", "2026-06-01T09:00:00+00:00"),
                                                     _entry(world.test_set_sha256, "1", "2026-01-05T00:00:00+00:00")],
              reason="the frozen test set (version 2) had gone stale", created_at="2026-11-25T06:30:00+00:00")
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert not [g for g in gaps(md) if g.startswith("frozen test set")]
    assert ("| Frozen test set now | " + audit.md_text(
        "no: judged on an earlier frozen set (version 1, replaced on 2026-06-01 because it had gone stale (Prepare's "
        f"reason is in the manifest of version 2, an old object version of s3://{BUCKET}/{FROZEN_TEST}manifest.json))")
        + " |") in section(md, "Data and code")


def test_a_re_frozen_set_that_never_replaced_the_judged_one_keeps_the_gap(world, tmp_path):
    """GIVEN a re-frozen set whose manifest names other sets as replaced, not the one version 2 was judged on (it was
    deleted by hand before) WHEN audited THEN the replacement is a gap, as for a set replaced by hand."""
    sha = _refreeze(world, b"PAR1 newer rows PAR1", chain=[_entry("0" * 64, "1", "2026-01-05T00:00:00+00:00")],
                    reason=STALE, created_at="2026-11-25T06:30:00+00:00")
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert [g for g in gaps(md) if g.startswith("frozen test set")] == [audit.md_text(
        f"frozen test set: s3://{BUCKET}/{FROZEN_TEST}test.parquet now has sha256 {sha}, not the {world.test_set_sha256} "
        "this version was judged on: the set was replaced since")]
    assert "| Frozen test set now | NO: it was replaced since \\(see gaps\\) |" in section(md, "Data and code")


def _split_key(world: World, split: str, name: str) -> str:
    return f"{world.split_uri(split).split('/', 3)[3]}/{name}"


def test_the_splits_a_version_was_trained_with_are_checked_against_their_registered_digests(world, tmp_path):
    """GIVEN version 2's train and validation splits as Prepare wrote them WHEN audited THEN each is reported as
    holding the data the version was trained with, its location and recorded digest shown, and no gap."""
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    data = section(md, "Data and code")
    for split in ("train", "validation"):
        title = split.capitalize()
        assert f"| {title} split | {audit.md_text(world.split_uri(split))} |" in data
        assert f"| {title} split digest (recorded) | {world.split_digests[split]} |" in data
        assert f"| {title} split now | yes: it holds the data this version was trained with |" in data
    assert section(md, "Gaps").strip() == "None: every piece was found."


def test_a_rewritten_split_is_a_gap_naming_the_split_and_both_digests(world, tmp_path):
    """GIVEN version 2's training data overwritten, and a file added to its validation split (a re-run writing into
    the prefix) WHEN audited THEN each split is a gap naming it, its location, its digest now and the one recorded."""
    s3 = world.clients.s3
    s3.put_object(Bucket=BUCKET, Key=_split_key(world, "train", "train.parquet"), Body=b"PAR1 other rows PAR1")
    s3.put_object(Bucket=BUCKET, Key=_split_key(world, "validation", "part-1.parquet"), Body=b"PAR1 more PAR1")
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    train_now = _split_digest({"train.parquet": b"PAR1 other rows PAR1"})
    validation_now = _split_digest({"validation.parquet": SPLIT_ROWS["validation"], "part-1.parquet": b"PAR1 more PAR1"})
    assert gaps(md) == [audit.md_text(g) for g in (
        f"train split: {world.split_uri('train')}/ now holds 1 object(s) with digest {train_now}, not the "
        f"{world.split_digests['train']} this version was trained with: its data was rewritten since",
        f"validation split: {world.split_uri('validation')}/ now holds 2 object(s) with digest {validation_now}, not "
        f"the {world.split_digests['validation']} this version was trained with: its data was rewritten since",
    )]
    assert "| Train split now | NO: rewritten since \\(see gaps\\) |" in section(md, "Data and code")


def test_a_split_that_expired_is_a_gap_saying_it_is_gone_not_rewritten(world, tmp_path):
    """GIVEN version 2's validation split gone (the artifacts bucket expires a run's work/ data) WHEN audited THEN the
    gap says plainly that the data is gone and why it may be, and calls nothing rewritten; the train split still
    checks."""
    world.clients.s3.delete_object(Bucket=BUCKET, Key=_split_key(world, "validation", "validation.parquet"))
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert gaps(md) == [audit.md_text(
        f"validation split: {world.split_uri('validation')}/ holds nothing now: the data this version was trained with "
        f"is gone, so its digest {world.split_digests['validation']} cannot be checked (a run's working data expires "
        "data_lake.pipeline_work_expiration_days after it was written, or it was deleted)")]
    data = section(md, "Data and code")
    assert "| Validation split now | gone \\(see gaps\\) |" in data
    assert "| Train split now | yes: it holds the data this version was trained with |" in data


def test_a_version_registered_before_split_digests_is_a_gap_not_a_rewrite(world, tmp_path):
    """GIVEN a version that records where its splits are but not their digests (registered before they were)
    WHEN audited THEN each split is a 'not recorded' gap naming its location, and none says rewritten or gone."""
    old = world.register(approval="PendingManualApproval", with_execution=True, reports=True, recorded=False)
    code, md, _ = run(world, tmp_path, "--version", old.rsplit("/", 1)[-1])
    assert code == 0
    for split in ("train", "validation"):
        assert audit.md_text(
            f"{split} split: not recorded: the version records no digest of the {split} data it was trained with "
            f"(registered before {split}_data_sha256 was), so whether {world.split_uri(split)} still holds it is not "
            "known") in gaps(md)
    assert not [g for g in gaps(md) if "split" in g and ("rewritten" in g or "gone" in g)]
    assert "| Train split now | not checked \\(see gaps\\) |" in section(md, "Data and code")


def test_gate_thresholds_other_than_the_executions_are_a_gap(world, tmp_path):
    """GIVEN an evaluation report whose min_disparate_impact (0.5) is not the 0.8 the execution ran with THEN a gap
    names both (besides the rewritten report); the thresholds the execution did not pass are held to its definition's
    defaults (DescribePipelineDefinitionForExecution), which agree."""
    _rewrite(world, "evaluation.json", lambda report: report["gate"]["thresholds"].update(min_disparate_impact=0.5))
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert has_gap(md, "gate thresholds: the evaluation report judged with min_disparate_impact 0.5, but the pipeline "
                       "execution ran with MinDisparateImpact 0.8")
    assert "| min\\_auc | 0.7000 | MinAuc | 0.7000 | yes |" in section(md, "Evaluation against the champion")
    assert len([g for g in gaps(md) if g.startswith("gate thresholds")]) == 1


def test_a_threshold_added_after_a_version_was_judged_is_no_gap_unless_its_report_holds_it(world, tmp_path):
    """GIVEN v2 judged before max_calibration_error existed (neither its report nor its execution holds it) THEN no gap
    names it: the gate of the day had no such check. GIVEN the report holds it while the execution records none THEN
    that is a gap, as for any other threshold."""
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert not [g for g in gaps(md) if g.startswith("gate thresholds")]

    _rewrite(world, "evaluation.json", lambda report: report["gate"]["thresholds"].update(max_calibration_error=0.05))
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert has_gap(md, "gate thresholds: the pipeline execution records no MaxCalibrationError; the report's "
                       "max_calibration_error is not checked")


def test_a_version_registered_before_digests_is_not_recorded_not_tampered(world, tmp_path):
    """GIVEN a version registered before evidence and test-set digests were recorded (its reports and test set as
    they are) THEN the report says 'not recorded' for both and calls nothing rewritten or replaced."""
    old = world.register(approval="PendingManualApproval", with_execution=True, reports=True, recorded=False)
    code, md, _ = run(world, tmp_path, "--version", old.rsplit("/", 1)[-1])
    assert code == 0
    assert has_gap(md, "evidence: not recorded: the version was registered before its reports' digests were (no "
                       "ContentDigest in its ModelMetrics), so the reports below are what S3 holds now, unverified")
    assert has_gap(md, "frozen test set: not recorded: the version records no digest of the test set it was judged on "
                       f"(registered before test_set_sha256 was), so whether s3://{BUCKET}/{FROZEN_TEST} still holds it "
                       "is not known")
    assert not [g for g in gaps(md) if "rewritten" in g or "replaced" in g]
    assert "| Evidence as registered | not recorded (registered before evidence digests; see gaps) |" in section(md, "Summary")
    assert "Gate: passed." in section(md, "Evaluation against the champion")


def test_a_replaced_version_shows_its_own_deployment_and_not_serving(world, tmp_path):
    """GIVEN version 1, deployed at stack creation and replaced by version 2 THEN its own deployment time, serving no."""
    code, md, _ = run(world, tmp_path, "--version", "1")
    assert code == 0
    deployment = section(md, "Deployment")
    assert "| Deployed at (endpoint updated) | 2026-11-12T15:08:40Z |" in deployment
    assert "| Serving now | no |" in deployment and "Rolled-back attempt" not in deployment
    approvals = section(md, "Approval history")
    assert "first model" in approvals and "alice" not in approvals


def test_a_version_without_approval_says_so(world, tmp_path):
    code, md, _ = run(world, tmp_path, "--version", "3")
    assert code == 0
    assert "**not approved** (status PendingManualApproval)" in section(md, "Summary")
    assert "not approved" in section(md, "Approval history")
    assert has_gap(md, "approval: version 3 is not approved (status PendingManualApproval)")
    assert has_gap(md, "approval history: CloudTrail has no UpdateModelPackage call for this version")


def test_missing_lineage_and_execution_are_gaps_not_crashes(world, tmp_path):
    """GIVEN version 3: its execution is no longer listed, no lineage artifact, no metrics THEN each is a gap."""
    code, md, _ = run(world, tmp_path, "--version", "3")
    assert code == 0
    assert has_gap(md, "pipeline execution gone0execution of mlops-loop-prod-churn-training is no longer listed")
    assert has_gap(md, "lineage: SageMaker has no lineage artifact for this model package (link absent)")
    assert has_gap(md, "the package carries no ModelMetrics")
    assert has_gap(md, "deployment: no successful operation of mlops-loop-prod-serving deployed this version")
    assert "Not found (see Gaps)." in section(md, "Pipeline execution")


# A version's execution gone with its pipeline (deleting a pipeline deletes all its executions): the run record the
# deploy handler kept at approval (written here by its own record_run while the execution exists) stands in for it.


def _record_then_delete_pipeline(world) -> str:
    """v2's run record as the deploy handler writes it at approval; then its pipeline (and so its execution) deleted.
    Returns the record's S3 URI."""
    result = record_run(Ledger(bucket=BUCKET, models={GROUP: "churn"}), GROUP, 2, world.v2,
                        sagemaker=world.clients.sagemaker, s3=world.clients.s3)
    assert result["outcome"] == "recorded", result
    world.clients.sagemaker.delete_pipeline(PipelineName=PIPELINE, ClientRequestToken="x" * 32)
    return result["key"]


def _key(world) -> str:
    created = world.clients.sagemaker.describe_model_package(ModelPackageName=world.v2)["CreationTime"]
    return integrity.run_record_key("churn", 2, package_created(created))


def test_a_deleted_pipelines_version_is_audited_from_its_run_record_and_says_so(world, tmp_path):
    """GIVEN v2's run record kept at approval and its pipeline deleted since WHEN audited THEN the execution section
    shows the recorded execution, parameters and steps, found by "run record from the evidence copy written at
    approval", the gate thresholds are checked against the recorded definition, and no gap says the execution is
    gone."""
    uri = _record_then_delete_pipeline(world)

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    execution = section(md, "Pipeline execution")
    assert audit.md_text(world.execution_arn) in execution
    assert audit.md_text(f"run record from the evidence copy written at approval ({uri}, recorded ") in execution
    assert "| TriggerReason | drift:mlops-loop-prod-churn-retrain-psi |" in execution
    assert "| Register step created this version | yes |" in execution
    assert "| Register-RegisterModel | Succeeded |" in execution
    assert not [g for g in gaps(md) if "pipeline execution" in g or "pipeline definition" in g or "run record" in g]


def test_a_deleted_pipelines_version_without_a_run_record_is_a_gap_naming_where_it_was_looked_for(world, tmp_path):
    """GIVEN v2's pipeline deleted before any run record was kept WHEN audited THEN the execution is not found, and a
    gap says no evidence copy is at the version's run-record key."""
    world.clients.sagemaker.delete_pipeline(PipelineName=PIPELINE, ClientRequestToken="x" * 32)

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    assert "Not found (see Gaps)." in section(md, "Pipeline execution")
    assert audit.md_text(f"run record: no evidence copy at s3://{BUCKET}/{_key(world)} (the deploy handler keeps one when "
                         "a version is approved): what the execution ran is not on record") in gaps(md)


def test_a_run_record_altered_after_it_was_written_is_not_used(world, tmp_path):
    """GIVEN a document at v2's run-record key whose content does not hash to its digest (the bucket policy forbids a
    rewrite; moto does not model bucket policies) and the pipeline deleted WHEN audited THEN it is not shown, and a gap
    says why."""
    _record_then_delete_pipeline(world)
    key = _key(world)
    record = json.loads(world.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    record["parameters"] = [{"Name": "MinAuc", "Value": "0.1"}]
    world.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(record).encode())

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    assert "Not found (see Gaps)." in section(md, "Pipeline execution")
    assert has_gap(md, f"run record s3://{BUCKET}/{key} does not parse as this version's run record: its content hashes to ")


def test_a_metrics_object_missing_in_s3_is_a_gap(world, tmp_path):
    world.clients.s3.delete_object(Bucket=BUCKET, Key=f"{world.eval_prefix}/evaluation.json")
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert has_gap(md, f"evaluation report s3://{BUCKET}/{world.eval_prefix}/evaluation.json: NoSuchKey")
    # fairness still comes from the bias report
    assert "| disparate\\_impact |" not in md and "| disparate_impact |" in section(md, "Fairness")


def test_cloudtrail_denied_is_a_gap(world, tmp_path):
    world.overrides["LookupEvents"] = {"Error": {"Code": "AccessDeniedException", "Message": "no cloudtrail:LookupEvents"}}
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert has_gap(md, "approval history (CloudTrail LookupEvents): AccessDeniedException: no cloudtrail:LookupEvents")
    assert "No UpdateModelPackage call on this version was found in CloudTrail." in section(md, "Approval history")


def test_serving_resolves_the_version_in_the_stack_parameter(world, tmp_path):
    code, md, _ = run(world, tmp_path, "--serving")
    assert code == 0
    assert md.startswith(f"# Audit report: {audit.md_text(GROUP)} version 2\n")
    assert "parameter ChurnModelPackageArn of stack mlops-loop-prod-serving" in md


def test_serving_falls_back_to_the_endpoint_without_the_stack(world, tmp_path):
    sm = world.clients.sagemaker
    world.clients.cloudformation.delete_stack(StackName=STACK)
    role = f"arn:aws:iam::{ACCOUNT}:role/serving"
    sm.create_model(ModelName="churn-model", PrimaryContainer={"ModelPackageName": world.v1}, ExecutionRoleArn=role)
    sm.create_endpoint_config(
        EndpointConfigName="churn-config",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "churn-model", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName=GROUP, EndpointConfigName="churn-config")
    code, md, _ = run(world, tmp_path, "--serving")
    assert code == 0
    assert md.startswith(f"# Audit report: {audit.md_text(GROUP)} version 1\n")
    assert "model churn-model of endpoint mlops-loop-prod-churn" in md
    assert has_gap(md, "resolved through the endpoint")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "churn", "--version", "9"], "unknown --version 9 of 'mlops-loop-prod-churn': the group has versions 1..3"),
        # prod deploys credit-risk in the config, but its account has no group for it (not deployed yet)
        (["--model", "credit-risk", "--version", "1"],
         "unknown model 'credit-risk' in environment 'prod': model package group 'mlops-loop-prod-credit-risk' does not "
         f"exist in account {ACCOUNT}, {REGION} (is it deployed there? check --model, --env, --project, --region and "
         "--account)"),
        # the config refuses a model prod does not deploy before anything is read
        (["--model", "fraud", "--version", "1"],
         f"--model fraud: environment 'prod' of {SAMPLE_CONFIG} does not deploy it; choose from churn, credit-risk (or "
         "pass --region, --project and --account to reach a model the config no longer lists)"),
    ],
)
def test_unknown_model_or_version_exits_2_with_one_line(world, capsys, args, message):
    code = audit.main(["--env", "prod", *CONFIG, *args], clients=world.clients)
    err = capsys.readouterr().err
    assert code == 2
    # A model the config refuses is refused before the tool knows what it would act on: no target line then.
    assert (err if message.startswith("--model") else after_target_line(err)) == f"python -m mlops_cli.audit: error: {message}\n"


def test_credentials_of_another_account_exit_2_before_anything_is_read(world, monkeypatch, tmp_path, capsys):
    """GIVEN credentials of another account (a profile left on staging) WHEN auditing prod THEN one line names both
    accounts, no report is written, and STS is the only service asked."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", OTHER_ACCOUNT)
    asked: list = []
    for client in (world.clients.sagemaker, world.clients.s3, world.clients.cloudformation, world.clients.cloudtrail):
        client.meta.events.register("before-call", lambda model, **_: asked.append(model.name))

    code, md, page = run(world, tmp_path, "--version", "2")

    assert (code, md, page, asked) == (2, "", "", [])
    assert after_target_line(capsys.readouterr().err) == (
        f"python -m mlops_cli.audit: error: the credentials are of account {OTHER_ACCOUNT}, environment 'prod' is account "
        f"{ACCOUNT}; use that account's credentials (e.g. AWS_PROFILE) and run again\n")


def test_nothing_serving_exits_2(world, capsys):
    world.clients.cloudformation.delete_stack(StackName=STACK)
    assert audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--serving"], clients=world.clients) == 2
    assert "nothing serves model 'churn' in 'prod'" in capsys.readouterr().err


def test_no_credentials_exits_2(monkeypatch, tmp_path, capsys):
    without_credentials(monkeypatch, tmp_path)
    code = audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--version", "1"])
    err = after_target_line(capsys.readouterr().err)
    assert code == 2
    assert err == (
        "python -m mlops_cli.audit: error: no usable AWS credentials (NoCredentialsError: Unable to locate credentials): "
        f"log in to account {ACCOUNT} of environment 'prod' (e.g. aws sso login, AWS_PROFILE) and run again\n")


def test_credentials_that_expire_during_the_audit_exit_2_with_the_same_line(world, capsys):
    # GIVEN a session token that expires after the account check, as the registry is first read
    replay(world.clients.sagemaker, "DescribeModelPackageGroup", lambda request: {"Error": {
        "Code": "ExpiredTokenException", "Message": "The security token included in the request is expired"}}, world.calls)
    assert audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--version", "2"], clients=world.clients) == 2
    assert after_target_line(capsys.readouterr().err) == (
        "python -m mlops_cli.audit: error: no usable AWS credentials (ExpiredTokenException: The security token included "
        f"in the request is expired): log in to account {ACCOUNT} of environment 'prod' (e.g. aws sso login, "
        "AWS_PROFILE) and run again\n")


def test_a_profile_that_does_not_exist_exits_2_with_one_line(monkeypatch, tmp_path, capsys):
    """A profile that does not exist fails as the clients are made (botocore's ProfileNotFound, not an AWS answer):
    the same one line and exit status as missing credentials."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "nope")
    code = audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--serving"])
    assert code == 2
    assert after_target_line(capsys.readouterr().err) == (
        "python -m mlops_cli.audit: error: no usable AWS credentials (ProfileNotFound: The config profile (nope) could "
        f"not be found): log in to account {ACCOUNT} of environment 'prod' (e.g. aws sso login, AWS_PROFILE) and run "
        "again\n")


def test_html_escapes_a_malicious_approval_description(world, tmp_path):
    code, md, page = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert "<script>" not in page and "<img" not in page and 'href="javascript' not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    # the description stays inside its table cell: the '|' in it is escaped
    row = next(line for line in section(md, "Model package").splitlines() if line.startswith("| Approval description |"))
    assert row.count(" | ") == 1 and row.endswith(" |")


def test_arguments_are_validated():
    with pytest.raises(SystemExit) as exc:
        audit.build_parser().parse_args(["--env", "prod", "--model", "churn", "--version", "0"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        audit.build_parser().parse_args(["--env", "prod", "--model", "churn", "--version", "1", "--serving"])


# Machine-readable output and a gate for pipelines: --format json, --fail-on-gaps (exit 3).

def run_json(world: World, capsys, *args: str):
    """The audit with --format json to stdout: (exit status, the parsed document, stderr)."""
    capsys.readouterr()
    code = audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--format", "json", *args], clients=world.clients)
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_json_gives_the_summary_sections_and_record_of_a_complete_version(world, capsys):
    code, doc, _ = run_json(world, capsys, "--version", "2")
    assert code == 0
    assert doc["format"] == "mlops-loop-audit/1" and doc["ok"] is True and doc["gaps"] == []
    assert list(doc["sections"]) == list(audit.SECTIONS)
    assert all(s == {"complete": True, "gaps": []} for s in doc["sections"].values())
    package = doc["model_package"]
    assert (package["group"], package["version"], package["env"], package["model"]) == (GROUP, 2, "prod", "churn")
    summary = doc["summary"]
    assert summary["approval_status"] == "Approved"
    assert summary["approved_by"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/alice"
    assert summary["approved_at"] == "2026-11-21T10:15:02Z"
    assert (summary["serving_now"], summary["deployed_at"]) == (True, "2026-11-21T10:41:07Z")
    assert (summary["code_commit"], summary["gate"], summary["evidence_verified"]) == (COMMIT, "passed", True)
    assert summary["pipeline_execution"] == world.execution_arn
    # The record holds every fact the Markdown shows, unescaped.
    assert doc["record"]["execution"]["parameters"]["TriggerReason"] == "drift:mlops-loop-prod-churn-retrain-psi"
    assert doc["record"]["package"]["approval_description"] == MALICIOUS


def test_json_gives_each_gap_with_its_section_as_the_markdown_lists_them(world, tmp_path, capsys):
    _, md, _ = run(world, tmp_path, "--version", "3")
    code, doc, _ = run_json(world, capsys, "--version", "3")
    assert code == 0 and doc["ok"] is False
    assert [audit.md_text(g["message"]) for g in doc["gaps"]] == gaps(md)
    by_section = {g["message"]: g["section"] for g in doc["gaps"]}
    assert by_section["approval: version 3 is not approved (status PendingManualApproval)"] == "approval"
    assert by_section["lineage: SageMaker has no lineage artifact for this model package (link absent)"] == "lineage"
    assert by_section["deployment: no successful operation of mlops-loop-prod-serving deployed this version"] == "deployment"
    assert by_section["evaluation: the package carries no ModelMetrics (no evaluation or bias report to read)"] == "evaluation"
    assert doc["sections"]["lineage"] == {"complete": False, "gaps": [
        g["message"] for g in doc["gaps"] if g["section"] == "lineage"]}
    assert doc["sections"]["model_package"] == {"complete": True, "gaps": []}
    assert {g["section"] for g in doc["gaps"]} <= set(audit.SECTIONS)


def test_json_to_a_file_with_the_html_page_beside_it(world, tmp_path, capsys):
    out, page = tmp_path / "audit.json", tmp_path / "audit.html"
    code = audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--version", "3", "--format", "json",
                       "--output", str(out), "--html", str(page)], clients=world.clients)
    assert code == 0
    assert json.loads(out.read_text())["model_package"]["version"] == 3
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert capsys.readouterr().out == ""


def test_fail_on_gaps_exits_3_naming_the_sections_with_gaps_after_writing_the_report(world, tmp_path, capsys):
    _, doc, _ = run_json(world, capsys, "--version", "3")
    code, md, page = run(world, tmp_path, "--version", "3", "--fail-on-gaps")
    err = after_target_line(capsys.readouterr().err).splitlines()
    assert code == 3
    assert md and page  # the report is written all the same
    sections = [name for name in audit.SECTIONS if doc["sections"][name]["gaps"]]
    assert err[-1] == (f"python -m mlops_cli.audit: error: {len(doc['gaps'])} gap(s) in the record of "
                       f"{doc['model_package']['arn']}: {', '.join(sections)} (--fail-on-gaps; the report lists them "
                       "under Gaps)")


def test_fail_on_gaps_with_json_exits_3_and_still_prints_the_document(world, capsys):
    code, doc, err = run_json(world, capsys, "--version", "3", "--fail-on-gaps")
    assert code == 3 and doc["ok"] is False
    assert after_target_line(err).startswith(f"python -m mlops_cli.audit: error: {len(doc['gaps'])} gap(s) in the record")


def test_fail_on_gaps_exits_0_for_a_complete_record(world, tmp_path, capsys):
    code, md, _ = run(world, tmp_path, "--version", "2", "--fail-on-gaps")
    assert code == 0 and section(md, "Gaps").strip() == "None: every piece was found."
    assert "gap(s) in the record" not in capsys.readouterr().err


def test_an_audit_reads_the_config_once(world, tmp_path, monkeypatch):
    """GIVEN the config naming the environment (its region, account, auto_approve and team approvers) WHEN a version is
    audited THEN the config file is read and checked once (it was read three times: the target, auto_approve, the
    model's approving team), and the report is the one the config gives."""
    import mlops_loop.config as config_module

    reads = []
    load = config_module.load_config
    monkeypatch.setattr(config_module, "load_config", lambda *a, **k: reads.append(a) or load(*a, **k))
    code, md, _ = run(world, tmp_path, "--version", "2", "--fail-on-gaps")
    assert code == 0 and section(md, "Gaps").strip() == "None: every piece was found."
    assert len(reads) == 1, reads


def test_without_fail_on_gaps_a_record_with_gaps_exits_0(world, tmp_path):
    code, md, _ = run(world, tmp_path, "--version", "3")
    assert code == 0 and gaps(md)


def test_fail_on_gaps_keeps_exit_2_for_what_cannot_be_audited(world, capsys):
    assert audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--version", "9", "--fail-on-gaps"],
                      clients=world.clients) == 2


def test_an_unknown_format_is_refused_naming_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        audit.build_parser().parse_args(["--env", "prod", "--model", "churn", "--version", "1", "--format", "xml"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "python -m mlops_cli.audit: error: argument --format: invalid choice: 'xml' (choose from 'markdown', 'json')")


# Multiclass and regression versions: version 2's evaluation and bias reports in S3 replaced by the ones the
# evaluate job wrote for a model of each type (tests/support/problem_type_reports.py), so the audit reads real reports.

@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> dict:
    """{problem type: (evaluate output directory, report)}: the realistic model against the weak champion."""
    out = {}
    for kind in (problem.MULTICLASS, problem.REGRESSION):
        root = tmp_path_factory.mktemp(f"audit-{kind}")
        trained = reports.shared(kind, tmp_path_factory)
        report = trained.evaluate(root / "evaluation")
        out[kind] = (root / "evaluation", report)
    return out


def publish(world: World, directory: Path, *names: str) -> None:
    """Put the evaluate job's ``names`` where version 2's ModelMetrics point (replacing the binary fixtures)."""
    for name in names:
        world.clients.s3.put_object(Bucket=BUCKET, Key=f"{world.eval_prefix}/{name}", Body=(directory / name).read_bytes())


def metric_row(name: str, metrics: dict, champion: dict) -> str:
    a, b = metrics[name], champion[name]
    return f"| {name} | {a:.4f} | {b:.4f} | {a - b:.4f} |"


def test_a_multiclass_version_shows_its_type_metrics_and_parity_per_class(world, evaluated, tmp_path):
    """GIVEN version 2 evaluated as a multiclass model WHEN audited THEN its problem type and classes, the multiclass
    headline metrics against the champion, metrics per class, and fairness as parity per class (worst class named)."""
    directory, report = evaluated[problem.MULTICLASS]
    publish(world, directory, "evaluation.json", "bias.json")
    code, md, page = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert "| Problem type | Multiclass Classification (3 classes: bronze, silver, gold); primary metric auc |" in section(md, "Summary")
    metrics = section(md, "Evaluation against the champion")
    assert "Problem type: Multiclass Classification (3 classes: bronze, silver, gold); primary metric auc." in metrics
    mine, theirs = report["challenger"]["metrics"], report["champion"]["metrics"]
    for name in problem.HEADLINE_METRICS[problem.MULTICLASS]:
        assert metric_row(name, mine, theirs) in metrics
    assert "| positive_rate |" not in metrics and "| precision |" not in metrics
    gold = mine["per_class"]["gold"]
    assert f"| gold | {gold['rows']} | {gold['precision']:.4f} | {gold['recall']:.4f} | {gold['f1']:.4f} |" in metrics
    assert "Gate: passed." in metrics
    for check in report["gate"]["checks"]:
        assert f"| {audit.md_text(check['name'] + (' ' + check['slice'] if check.get('slice') else ''))} | yes |" in metrics

    fairness, champion_fairness = report["challenger"]["fairness"], report["champion"]["fairness"]
    text = section(md, "Fairness")
    assert "decision threshold" not in text
    di, which = fairness["disparate_impact"], fairness["disparate_impact_class"]
    assert (
        f"| disparate_impact (class {which}) | {di:.4f} | {champion_fairness['disparate_impact']:.4f} | "
        f">= {reports.GATE.min_disparate_impact:.4f} | pass |"
    ) in text
    assert f"| demographic_parity_difference (class {fairness['demographic_parity_class']}) |" in text
    silver = fairness["per_class"]["silver"]
    assert f"| silver | {silver['demographic_parity_difference']:.4f} | {silver['disparate_impact']:.4f} |" in text
    young = fairness["groups"]["young"]
    shares = ", ".join(f"{c} {young['predicted_shares'][c]:.4f}" for c in reports.CLASSES)
    assert f"| young | {young['rows']} | {shares} | yes |" in text
    assert "<script>" not in page and "Multiclass Classification" in page


def test_a_regression_version_shows_its_metrics_and_error_parity(world, evaluated, tmp_path):
    """GIVEN version 2 evaluated as a regression model WHEN audited THEN the regression headline metrics, error
    quantiles, the min_quality and error_parity checks, and fairness as error parity per group."""
    directory, report = evaluated[problem.REGRESSION]
    publish(world, directory, "evaluation.json", "bias.json")
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert "| Problem type | Regression; primary metric r2 |" in section(md, "Summary")
    metrics = section(md, "Evaluation against the champion")
    mine, theirs = report["challenger"]["metrics"], report["champion"]["metrics"]
    for name in problem.HEADLINE_METRICS[problem.REGRESSION]:
        assert metric_row(name, mine, theirs) in metrics
    assert "| auc |" not in metrics
    quantiles = mine["abs_error_quantiles"]
    assert f"Absolute error p50 / p90 / p99: {quantiles['p50']:.4f} / {quantiles['p90']:.4f} / {quantiles['p99']:.4f}" in metrics
    gate = {c["name"]: c for c in report["gate"]["checks"]}
    assert f"| min\\_quality | yes | {gate['min_quality']['value']:.4f} | {gate['min_quality']['threshold']:.4f} |" in metrics
    assert f"| error\\_parity | yes | {gate['error_parity']['value']:.4f} |" in metrics
    assert f"| bias\\_parity | yes | {gate['bias_parity']['value']:.4f} |" in metrics

    fairness = report["challenger"]["fairness"]
    text = section(md, "Fairness")
    assert "error parity" in text and "decision threshold" not in text
    ratio = fairness["error_parity_ratio"]
    champion_ratio = report["champion"]["fairness"]["error_parity_ratio"]
    assert f"| error_parity_ratio | {ratio:.4f} | {champion_ratio:.4f} | >= {reports.GATE.min_disparate_impact:.4f} | pass |" in text
    gap, champion_gap = fairness["bias_gap"], report["champion"]["fairness"]["bias_gap"]
    limit = reports.GATE.max_demographic_parity_difference
    assert f"| bias_gap | {gap:.4f} | {champion_gap:.4f} | <= {limit:.4f} | pass |" in text
    assert f"| mae_difference | {fairness['mae_difference']:.4f} |" in text
    middle = fairness["groups"]["middle"]
    assert f"| middle | {middle['rows']} | {middle['mae']:.4f} | {middle['bias']:.4f} |" in text
    assert "| disparate_impact |" not in text


def test_a_regression_version_gated_before_its_bias_gap_was_shows_the_gap_as_not_gated(world, evaluated, tmp_path):
    """GIVEN a regression version whose gate made no bias_parity check (evaluated before the bias gap was gated) WHEN
    audited THEN its bias gap is shown without a threshold or verdict: the audit does not judge it by a later rule."""
    directory, report = evaluated[problem.REGRESSION]
    earlier = copy.deepcopy(report)
    earlier["gate"]["checks"] = [c for c in earlier["gate"]["checks"] if c["name"] != "bias_parity"]
    old = tmp_path / "earlier"
    old.mkdir()
    (old / "evaluation.json").write_text(json.dumps(earlier))
    publish(world, old, "evaluation.json")
    publish(world, directory, "bias.json")
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    gap, champion_gap = report["challenger"]["fairness"]["bias_gap"], report["champion"]["fairness"]["bias_gap"]
    assert f"| bias_gap | {gap:.4f} | {champion_gap:.4f} | — | not gated |" in section(md, "Fairness")


def test_without_the_evaluation_report_the_bias_report_gives_error_parity(world, evaluated, tmp_path):
    """GIVEN a regression version whose evaluation.json is missing THEN fairness comes from its bias report,
    still as error parity (the type read from what the report measures), and the missing report is a gap."""
    directory, report = evaluated[problem.REGRESSION]
    publish(world, directory, "bias.json")
    world.clients.s3.delete_object(Bucket=BUCKET, Key=f"{world.eval_prefix}/evaluation.json")
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert "| Problem type | Regression |" in section(md, "Summary")
    text = section(md, "Fairness")
    ratio = report["challenger"]["fairness"]["error_parity_ratio"]
    assert f"| error_parity_ratio | {ratio:.4f} |" in text and ">= 0.5000 | pass |" in text
    assert f"| bias_gap | {report['challenger']['fairness']['bias_gap']:.4f} |" in text and "<= 0.3000 | pass |" in text
    assert "Metrics not available (see Gaps)." in section(md, "Evaluation against the champion")


# --- the approval ledger ------------------------------------------------------------------------------------------
# Records are written by the deploy handler's own code (record_decision) into moto's S3; the principal SageMaker
# records for a package update (LastModifiedBy.IamIdentity) is set in moto's backend, which names a made-up Studio user.

ALICE = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/alice"
BOB = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/bob"


def _decide(world: World, arn: str, status: str, why: str, by: str, outcome: str, at: "dt.datetime") -> None:
    """``by`` sets ``status`` with ``why`` on ``arn``, and the deploy handler records the state change (decision ``outcome``)."""
    from moto.sagemaker.models import sagemaker_backends


    world.clients.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=why)
    backend = sagemaker_backends[ACCOUNT][REGION]
    backend.model_packages[backend.model_package_name_mapping.get(arn, arn)].last_modified_by = {"IamIdentity": {"Arn": by}}
    version = int(arn.rsplit("/", 1)[-1])
    event = {"id": f"e-{status}", "time": at.isoformat(), "detail": {"ModelPackageArn": arn, "ModelApprovalStatus": status}}
    decision = {"group": GROUP, "event": {"id": event["id"], "version": version, "approval": status}, "outcome": outcome,
                "stack": STACK, "parameter": "ChurnModelPackageArn",
                **({"set": {"ChurnModelPackageArn": arn}} if outcome == "deploying" else {})}
    entry = record_decision(Ledger(bucket=BUCKET, models={GROUP: "churn"}), event, decision,
                            sagemaker=world.clients.sagemaker, s3=world.clients.s3,
                            notify=Notifier(None, None, GROUP), now=at)
    assert "key" in entry


def test_the_approval_history_is_read_from_the_ledger_after_a_rollback_overwrote_it_and_cloudtrail_forgot(world, tmp_path):
    """GIVEN v2 approved by alice with her reason, later rolled back to by bob (the rollback overwrites the package's
    ApprovalDescription and LastModifiedBy), each decision recorded in the approval ledger
    WHEN v2 is audited 120 days later (CloudTrail's event history: empty)
    THEN the history shows alice's approval and reason and bob's rollback from the ledger, oldest first, the summary names
    the approval it rests on, and CloudTrail's silence is no gap."""
    import datetime as dt

    start = dt.datetime.now(dt.timezone.utc)
    _decide(world, world.v2, "Approved", "QA passed; CHG-1234", ALICE, "deploying", start)
    _decide(world, world.v2, "Rejected", "drift on age", ALICE, "deploying", start + dt.timedelta(days=3))
    rollback = f"rollback to v2 by {BOB} at 2027-01-01T00:00:00Z"
    _decide(world, world.v2, "PendingManualApproval", f"{rollback} (step 1 of 2)", BOB, "unchanged", start + dt.timedelta(days=9))
    _decide(world, world.v2, "Approved", rollback, BOB, "deploying", start + dt.timedelta(days=9, seconds=1))
    world.overrides["LookupEvents"] = {"Events": []}
    out = tmp_path / "r.md"

    assert audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--version", "2", "--output", str(out)],
                      clients=world.clients, now=start + dt.timedelta(days=120)) == 0

    md = out.read_text()
    assert rollback in world.clients.sagemaker.describe_model_package(ModelPackageName=world.v2)["ApprovalDescription"]
    ledger = section(md, "Approval history").split("### CloudTrail", 1)[0]
    rows = [line for line in ledger.splitlines() if line.startswith("| ") and "approval-ledger/churn/2/" in line]
    assert len(rows) == 4
    assert f"| Approved | {audit.md_text(ALICE)} | QA passed; CHG-1234 | {audit.md_text('deploying (state-change)')} |" in rows[0]
    assert "ChurnModelPackageArn=" in rows[0]
    assert f"| Rejected | {audit.md_text(ALICE)} | drift on age |" in rows[1]
    assert f"| Approved | {audit.md_text(BOB)} | {audit.md_text(rollback)} | {audit.md_text('deploying (state-change)')} |" in rows[3]
    assert f"approved by {audit.md_text(BOB)} at " in section(md, "Summary") and "(approval ledger)" in section(md, "Summary")
    assert not [g for g in gaps(md) if "approval" in g.lower() or "CloudTrail" in g]


# A group deleted and created again (the README's "add back a model", a dev teardown and redeploy) restarts at v1 under
# the same ARNs; the ledger records of the versions before stay (write-once, undeletable) below the same version.

OLD_LIFE = {"schema": "mlops-loop/approval-ledger/1", "recorded_at": "2025-03-01T10:00:00Z", "group": GROUP,
            "model": "churn", "version": 2, "trigger": "state-change",
            "package": {"ModelApprovalStatus": "Approved", "ApprovalDescription": "old model, approved by alice in 2025",
                        "principal": ALICE, "LastModifiedTime": "2025-03-01T09:59:00Z"},
            "decision": {"outcome": "deploying", "reason": "", "set": {}}}


TODAY = "today's v2, QA passed"


def _ledger_rows(md: str) -> list:
    ledger = section(md, "Approval history").split("### CloudTrail", 1)[0]
    return [line for line in ledger.splitlines() if line.startswith("| ") and "approval-ledger/churn/" in line]


def test_the_old_lifes_record_without_its_package_is_not_reported_as_the_new_versions_approval(world, tmp_path):
    """Trial P, finding 4. GIVEN alice's 2025 approval of the v2 of the group's earlier life, recorded as the handler
    could when the package could not be described (no creation time), below approval-ledger/churn/2/
    WHEN today's v2 (registered since, not approved by her) is audited
    THEN her record is not in v2's history, and a gap names it: recorded before v2's package was created."""
    key = "approval-ledger/churn/2/20250301T100000.000000Z-approved-abcd.json"
    record = {**OLD_LIFE, "package_arn": world.v2}
    world.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(record).encode())

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    assert _ledger_rows(md) == []
    assert "old model, approved by alice in 2025" not in md
    assert has_gap(md, f"approval ledger: s3://{BUCKET}/{key} (recorded 2025-03-01T10:00:00Z) left out of this version's "
                       "history: recorded before this version's model package was created, so of an earlier package of "
                       "that version (its group deleted and created again)")


def test_records_of_the_package_that_had_the_version_before_are_left_out_and_a_gap_naming_both(world, tmp_path):
    """GIVEN alice's 2025 approval of the earlier v2 (its package named: same ARN, created 2025-03-01) and today's v2
    approved by bob, both recorded by the handler WHEN v2 is audited THEN only bob's decision is v2's history, and one gap
    names the other package and today's (ARN and creation time of each)."""
    import datetime as dt

    from pipeline_code.core.contract import package_created
    from pipeline_code.core.integrity import ledger_key

    old_key = ledger_key("churn", 2, dt.datetime(2025, 3, 1, 10, tzinfo=dt.timezone.utc), "Approved", "abcd",
                         "20250301T095500Z")
    old = {**OLD_LIFE, "package_arn": world.v2, "package_created": "20250301T095500Z",
           "package": {**OLD_LIFE["package"], "CreationTime": "2025-03-01T09:55:00.123000+00:00"}}
    world.clients.s3.put_object(Bucket=BUCKET, Key=old_key, Body=json.dumps(old).encode())
    _decide(world, world.v2, "Approved", TODAY, BOB, "deploying", dt.datetime.now(dt.timezone.utc))
    created = package_created(world.clients.sagemaker.describe_model_package(ModelPackageName=world.v2)["CreationTime"])

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    (row,) = _ledger_rows(md)
    assert f"| Approved | {audit.md_text(BOB)} | {audit.md_text(TODAY)} |" in row
    assert f"/approval-ledger/churn/2/{created}/" in row
    assert has_gap(md, f"approval ledger: 1 record(s) below s3://{BUCKET}/approval-ledger/churn/2/ are of {world.v2} "
                       f"created 20250301T095500Z, not of this version's model package ({world.v2} created {created}): an "
                       "earlier package of that version (its group deleted and created again); left out of this "
                       "version's history")
    assert "old model, approved by alice in 2025" not in md.split("## Gaps")[0]
    assert f"approved by {audit.md_text(BOB)} at " in section(md, "Summary")


def test_a_record_written_before_records_named_their_package_is_read_by_the_packages_creation_time(world, tmp_path):
    """GIVEN a record the handler wrote before this change (no package_created, filed directly below the version; its
    package's CreationTime recorded as described then) WHEN v2 is audited THEN it is v2's history, no gap."""
    import datetime as dt

    from pipeline_code.core.integrity import ledger_key

    _decide(world, world.v2, "Approved", "QA passed", ALICE, "deploying", dt.datetime.now(dt.timezone.utc))
    (key,) = [o["Key"] for o in world.clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="approval-ledger/churn/2/")["Contents"]]
    record = json.loads(world.clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    world.clients.s3.delete_object(Bucket=BUCKET, Key=key)
    del record["package_created"]
    legacy = ledger_key("churn", 2, dt.datetime.now(dt.timezone.utc), "Approved", "0ld")
    world.clients.s3.put_object(Bucket=BUCKET, Key=legacy, Body=json.dumps(record).encode())

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    (row,) = _ledger_rows(md)
    assert f"| Approved | {audit.md_text(ALICE)} | QA passed |" in row and legacy in row
    assert not [g for g in gaps(md) if "approval ledger" in g]


def test_a_record_that_names_no_package_after_the_package_was_created_cannot_be_told_and_is_a_gap(world, tmp_path):
    import datetime as dt

    from pipeline_code.core.integrity import ledger_key

    now = dt.datetime.now(dt.timezone.utc)
    key = ledger_key("churn", 2, now, "Approved", "0dd")
    record = {**OLD_LIFE, "recorded_at": now.isoformat(), "package_arn": world.v2,
              "package": {"error": "DescribeModelPackage: throttled"}}
    world.clients.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(record).encode())

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    assert _ledger_rows(md) == []
    recorded = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    assert has_gap(md, f"approval ledger: s3://{BUCKET}/{key} (recorded {recorded}) left out of this version's history: "
                       "the record does not say which model package it is about (its creation time is missing: the "
                       "handler could not describe the package), so the audit cannot tell it is this version's")


def test_a_ledger_record_that_does_not_parse_is_flagged_and_a_gap(world, tmp_path):
    """GIVEN v2's ledger holding a record, a file that is not a record and a record of another version filed under v2
    WHEN audited THEN the record is shown, and each of the other two is a gap naming it and a row marked as not parsing."""
    import datetime as dt

    from pipeline_code.core.integrity import ledger_key

    now = dt.datetime.now(dt.timezone.utc)
    _decide(world, world.v2, "Approved", "QA passed", ALICE, "deploying", now)
    garbage = ledger_key("churn", 2, now + dt.timedelta(seconds=1), "Approved", "0bad")
    world.clients.s3.put_object(Bucket=BUCKET, Key=garbage, Body=b"{not json")
    (kept,) = [o["Key"] for o in world.clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="approval-ledger/churn/2/")["Contents"]
               if o["Key"] != garbage]
    misfiled = ledger_key("churn", 2, now + dt.timedelta(seconds=2), "Approved", "0ther")
    record = json.loads(world.clients.s3.get_object(Bucket=BUCKET, Key=kept)["Body"].read())
    world.clients.s3.put_object(Bucket=BUCKET, Key=misfiled, Body=json.dumps({**record, "version": 3}).encode())

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    assert has_gap(md, f"approval ledger: s3://{BUCKET}/{garbage} does not parse as a ledger record: not UTF-8 JSON")
    assert has_gap(md, f"approval ledger: s3://{BUCKET}/{misfiled} does not parse as a ledger record: it records v3 of "
                       "'churn', but is filed under v2 of 'churn'")
    history = section(md, "Approval history")
    assert history.count("**does not parse**") == 2
    assert f"| Approved | {audit.md_text(ALICE)} | QA passed |" in history


# --- the model card ------------------------------------------------------------------------------------------------
# The pipeline writes each version's card (Draft); a reviewer approves it, as the README asks before the version is
# approved. SageMaker keeps every saved card version (docs: model-cards-console-edit), so an edit after the approval
# stays on record; one that only set the card's status (approved after the version) is reported, no gap.


def _card_gaps(md: str) -> list:
    return [g for g in gaps(md) if g.startswith("model card")]


def _reapprove(world: World) -> str:
    """Version 2 approved again (after a card written in the test): its approval time, as the report words it."""
    world.clients.sagemaker.update_model_package(ModelPackageArn=world.v2, ModelApprovalStatus="Approved")
    return audit_time(world.clients.sagemaker.describe_model_package(ModelPackageName=world.v2)["LastModifiedTime"])


def audit_time(value: Any) -> str:
    from mlops_cli.audit.aws import iso_time

    return iso_time(value)


def _created(world: World, arn: str) -> str:
    return package_created(world.clients.sagemaker.describe_model_package(ModelPackageName=arn)["CreationTime"])


def test_the_versions_approved_card_is_reported_with_every_version_it_kept(world, tmp_path):
    """GIVEN version 2's card, written by the pipeline and approved by a reviewer before the version was approved
    WHEN audited THEN the report names the card, its status and the package it describes, lists its versions, none
    after the approval, and no gap is about the card."""
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    card = section(md, "Model card")
    assert f"| Name | {audit.md_text(world.card)} |" in card
    assert "| Status | Approved |" in card
    assert f"| Describes model package | {audit.md_text(world.v2)} |" in card
    assert f"| Package created (as the card records it) | {_created(world, world.v2)} |" in card
    assert [line.split(" | ")[1] for line in card.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")] == [
        "Draft", "Approved"]
    assert "**yes**" not in card
    assert "| Model card | Approved (card version 2) |" in section(md, "Summary")
    assert _card_gaps(md) == []


def test_a_version_without_a_model_card_is_a_gap(world, tmp_path):
    """GIVEN version 2 approved and deployed but its card deleted (or never written) WHEN audited THEN a gap names the
    names looked for: today's and the one cards had before their names carried the package's creation time."""
    world.clients.sagemaker.delete_model_card(ModelCardName=world.card)
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert _card_gaps(md) == [audit.md_text(
        f"model card: version 2 has none ({world.card} or {GROUP}-v2): nothing describes it for review")]
    assert "| Model card | **none found** (see gaps) |" in section(md, "Summary")


def test_a_model_card_no_reviewer_approved_is_a_gap(world, tmp_path):
    """GIVEN version 2 approved while its card is PendingReview WHEN audited THEN a gap says the card is not Approved."""
    world.clients.sagemaker.delete_model_card(ModelCardName=world.card)
    world.write_card(world.v2, status="PendingReview")
    _reapprove(world)
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert _card_gaps(md) == [audit.md_text(
        f"model card: {world.card} is PendingReview, not Approved: no reviewer approved what it says (card version 2)")]
    assert "| Model card | **PendingReview**, not Approved (see gaps) |" in section(md, "Summary")


def test_a_card_edited_after_the_approval_is_a_gap_naming_each_later_version(world, tmp_path):
    """GIVEN version 2's approved card edited after the version's approval (the approver role may update card content)
    WHEN audited THEN a gap names the approval time and each card version saved since, and the card's versions table
    marks it."""
    sm = world.clients.sagemaker
    approved_at = audit_time(sm.describe_model_package(ModelPackageName=world.v2)["LastModifiedTime"])
    edited = json.loads(sm.describe_model_card(ModelCardName=world.card)["Content"])
    edited["model_overview"]["model_description"] = "limitations removed"
    sm.update_model_card(ModelCardName=world.card, Content=json.dumps(edited))
    (later,) = [v for v in sm.list_model_card_versions(ModelCardName=world.card)["ModelCardVersionSummaryList"]
                if v["ModelCardVersion"] == 3]
    saved = audit_time(max(later["CreationTime"], later["LastModifiedTime"]))

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert _card_gaps(md) == [audit.md_text(
        f"model card: {world.card} was changed after the version's approval at {approved_at}: version 3 (Approved) at "
        f"{saved}; what was approved is not what the card says now")]
    assert f"| 3 | Approved | {saved} | **yes: content changed** |" in section(md, "Model card")
    assert "**changed after the version's approval**" in section(md, "Summary")

    sm.update_model_card(ModelCardName=world.card, Content=json.dumps(json.loads(
        sm.describe_model_card(ModelCardName=world.card, ModelCardVersion=2)["Content"])))
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert _card_gaps(md) == [audit.md_text(
        f"model card: {world.card} was changed after the version's approval at {approved_at}: version 3 (Approved) at "
        f"{saved}; the card says what was approved again, but said otherwise in between")]


def _card_approved_after_the_version(world: World) -> str:
    """Version 2's card written (Draft) before the version's approval and moved to Approved, unchanged, after it - the
    order a reviewer who approves the package first takes. Returns the version's approval time as the report words it."""
    sm = world.clients.sagemaker
    sm.delete_model_card(ModelCardName=world.card)
    world.write_card(world.v2, status="Draft")
    approved_at = _reapprove(world)
    sm.update_model_card(ModelCardName=world.card, ModelCardStatus="Approved")
    return approved_at


def test_a_card_approved_after_the_version_is_reported_and_no_gap(world, tmp_path):
    """GIVEN version 2's card written by the pipeline (Draft), the version approved, then the card moved to Approved with
    its content unchanged (UpdateModelCard sets status or content, never both)
    WHEN audited THEN each card version after the approval is compared by content with the one current at the approval
    (DescribeModelCard of that version): only the status changed, so the report has no gap at all; the summary says the
    card was approved after the version and its versions table marks the change as status only."""
    _card_approved_after_the_version(world)
    (later,) = [v for v in world.clients.sagemaker.list_model_card_versions(ModelCardName=world.card)[
        "ModelCardVersionSummaryList"] if v["ModelCardVersion"] == 2]
    saved = audit_time(max(later["CreationTime"], later["LastModifiedTime"]))  # moto: CreationTime is the card's first
    described: list = []
    world.clients.sagemaker.meta.events.register(
        "before-call.sagemaker.DescribeModelCard",
        lambda params, **_: described.append(json.loads(params["body"]).get("ModelCardVersion")))

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    assert gaps(md) == []
    assert section(md, "Gaps").strip() == "None: every piece was found."
    assert ("| Model card | Approved (card version 2), approved after the version was: its content is the one the approval "
            "saw |") in section(md, "Summary")
    card = section(md, "Model card")
    assert "| 1 | Draft |" in card and f"| 2 | Approved | {saved} | yes: status only (content as approved) |" in card
    assert described == [None, 1, 2]  # the card now, then the version current at the approval and the one after


def test_a_card_edited_then_approved_after_the_version_is_a_gap_naming_the_edit(world, tmp_path):
    """GIVEN version 2's Draft card edited after the version's approval and then approved WHEN audited THEN a gap (what
    was approved is not what the card says) names each card version whose content is not the one the approval saw: the
    edit and the approval of the edited content."""
    sm = world.clients.sagemaker
    sm.delete_model_card(ModelCardName=world.card)
    world.write_card(world.v2, status="Draft")
    approved_at = _reapprove(world)
    edited = json.loads(sm.describe_model_card(ModelCardName=world.card)["Content"])
    edited["model_overview"]["model_description"] = "limitations removed"
    sm.update_model_card(ModelCardName=world.card, Content=json.dumps(edited))
    sm.update_model_card(ModelCardName=world.card, ModelCardStatus="Approved")
    times = {v["ModelCardVersion"]: audit_time(max(v["CreationTime"], v["LastModifiedTime"]))
             for v in sm.list_model_card_versions(ModelCardName=world.card)["ModelCardVersionSummaryList"]}

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert gaps(md) == [audit.md_text(
        f"model card: {world.card} was changed after the version's approval at {approved_at}: version 2 (Draft) at "
        f"{times[2]}, version 3 (Approved) at {times[3]}; what was approved is not what the card says now")]
    card = section(md, "Model card")
    assert f"| 2 | Draft | {times[2]} | **yes: content changed** |" in card
    assert f"| 3 | Approved | {times[3]} | **yes: content changed** |" in card  # its content is version 2's


def test_a_card_written_after_the_version_was_approved_is_a_gap(world, tmp_path):
    """GIVEN version 2 approved, its card deleted and written again (then approved) after the approval WHEN audited THEN
    a gap: there was no card to review when the version was approved."""
    sm = world.clients.sagemaker
    sm.delete_model_card(ModelCardName=world.card)
    approved_at = _reapprove(world)
    world.write_card(world.v2)
    (first,) = [v for v in sm.list_model_card_versions(ModelCardName=world.card)["ModelCardVersionSummaryList"]
                if v["ModelCardVersion"] == 1]

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert gaps(md) == [audit.md_text(
        f"model card: {world.card} was written after the version's approval at {approved_at} (its first version saved at "
        f"{audit_time(max(first['CreationTime'], first['LastModifiedTime']))}): there was no card to review when the "
        "version was approved")]
    assert "| 1 | Draft |" in section(md, "Model card") and "**yes: no card before**" in section(md, "Model card")


def test_a_card_version_whose_content_cannot_be_read_is_a_gap_saying_it_cannot_be_told(world, tmp_path):
    """GIVEN the card approved after the version, and DescribeModelCard of its later version denied WHEN audited THEN the
    error is a gap naming the card version, and another says whether the card says what was approved is not known."""
    approved_at = _card_approved_after_the_version(world)
    (later,) = [v for v in world.clients.sagemaker.list_model_card_versions(ModelCardName=world.card)[
        "ModelCardVersionSummaryList"] if v["ModelCardVersion"] == 2]
    saved = audit_time(max(later["CreationTime"], later["LastModifiedTime"]))

    def denied(model: Any, params: Dict[str, Any], **_: Any) -> Any:
        if json.loads(params["body"]).get("ModelCardVersion") == 2:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "no kms:Decrypt"},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse("https://recorded.invalid", 400, {}, None), error
        return None

    world.clients.sagemaker.meta.events.register("before-call.sagemaker.DescribeModelCard", denied)

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert gaps(md) == [audit.md_text(g) for g in (
        f"model card {world.card} version 2 (DescribeModelCard): AccessDeniedException: no kms:Decrypt",
        f"model card: {world.card} was saved after the version's approval at {approved_at}: version 2 (Approved) at "
        f"{saved}, whose content (or that of version 1, current at the approval) could not be read: whether the card "
        "says what was approved is not known",
    )]
    assert "**yes: content not read**" in section(md, "Model card")


def test_a_card_describing_another_package_is_a_gap_naming_both(world, tmp_path):
    """GIVEN version 2's card name holding a card whose content describes version 1 WHEN audited THEN a gap names the
    package the card describes and the audited one (ARN and creation time)."""
    world.clients.sagemaker.delete_model_card(ModelCardName=world.card)
    world.write_card(world.v2, describes=world.v1)
    _reapprove(world)
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert _card_gaps(md) == [audit.md_text(
        f"model card: {world.card} describes {world.v1} created {_created(world, world.v1)}, not this version's model "
        f"package ({world.v2} created {_created(world, world.v2)})")]


def test_a_card_under_its_older_name_is_found_and_one_older_than_the_package_is_another_lifes(world, tmp_path):
    """GIVEN no card under today's name but one under the name cards had before (<group>-v<version>), naming version
    2's ARN and no creation time WHEN audited THEN it is the version's card, said to be under its older name; GIVEN
    that card created before version 2's package THEN a gap: it describes the version of the group's earlier life."""
    from moto.sagemaker.models import sagemaker_backends

    sm = world.clients.sagemaker
    sm.delete_model_card(ModelCardName=world.card)
    legacy = legacy_model_card_name(GROUP, 2)
    content = {"model_package_details": {"model_package_arn": world.v2}}
    sm.create_model_card(ModelCardName=legacy, Content=json.dumps(content), ModelCardStatus="Approved")
    _reapprove(world)
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert f"| Name | {audit.md_text(legacy)} (named as cards were before names carried the package's creation time) |" in section(md, "Model card")
    assert _card_gaps(md) == []

    long_ago = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.timezone.utc)
    sagemaker_backends[ACCOUNT][REGION].model_cards[legacy][0].creation_time = long_ago
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert _card_gaps(md) == [audit.md_text(
        f"model card: {legacy} records no package creation time and was created at 2025-03-01T10:00:00Z, before this "
        f"version's model package ({_created(world, world.v2)}): it describes the package that had this version before "
        "its group was deleted and created again")]


# --- who approved ----------------------------------------------------------------------------------------------------
APPROVER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-loop-prod-model-approver"
EVE = f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/eve"


def _approval_event(arn: str, identity: Dict[str, Any], *, event_id: str, at: str = "2026-11-22T08:00:00Z") -> Dict[str, Any]:
    """A successful UpdateModelPackage call setting Approved on ``arn`` by ``identity`` (CloudTrail's userIdentity), with a
    reason (test_an_approval_that_records_no_reason_is_a_gap: one without)."""
    record = {"eventTime": at, "eventName": "UpdateModelPackage", "eventID": event_id, "userIdentity": identity,
              "requestParameters": {"modelPackageArn": arn, "modelApprovalStatus": "Approved",
                                    "approvalDescription": "evaluation reviewed"}}
    return {"EventId": event_id, "EventName": "UpdateModelPackage", "EventTime": at, "CloudTrailEvent": json.dumps(record)}


def test_an_approval_by_another_role_or_an_iam_user_is_a_gap_naming_the_principal(world, tmp_path):
    """GIVEN version 2 approved (CloudTrail) by a session of the Admin role, by an IAM user with long-term keys (no MFA)
    and by an IAM user signed in with MFA WHEN audited THEN each approval outside the approver role is a gap naming its
    principal and session issuer, the IAM user without MFA is one more, and the summary says not every approval was the
    approver role's."""
    user = f"arn:aws:iam::{ACCOUNT}:user/eve"
    world.overrides["LookupEvents"] = {"Events": [
        _approval_event(world.v2, {"type": "AssumedRole", "arn": EVE, "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin"},
            "attributes": {"mfaAuthenticated": "true"}}}, event_id="by-admin"),
        _approval_event(world.v2, {"type": "IAMUser", "arn": user}, event_id="by-user-keys", at="2026-11-22T09:00:00Z"),
        _approval_event(world.v2, {"type": "IAMUser", "arn": user, "sessionContext": {
            "attributes": {"mfaAuthenticated": "true"}}}, event_id="by-user-mfa", at="2026-11-22T10:00:00Z"),
    ]}

    code, md, _ = run(world, tmp_path, "--version", "2")

    assert code == 0
    assert [g for g in gaps(md) if g.startswith("approval")] == [audit.md_text(g) for g in (
        f"approval: the version was approved at 2026-11-22T08:00:00Z by {EVE} (CloudTrail event by-admin), whose "
        f"session issuer is arn:aws:iam::{ACCOUNT}:role/Admin, not the approver role {APPROVER_ROLE}",
        f"approval: the version was approved at 2026-11-22T09:00:00Z by {user} (CloudTrail event by-user-keys), whose "
        f"session issuer is none (not a role session), not the approver role {APPROVER_ROLE}",
        f"approval: the version was approved at 2026-11-22T09:00:00Z by IAM user {user} without MFA (CloudTrail event "
        "by-user-keys: mfaAuthenticated absent)",
        f"approval: the version was approved at 2026-11-22T10:00:00Z by {user} (CloudTrail event by-user-mfa), whose "
        f"session issuer is none (not a role session), not the approver role {APPROVER_ROLE}",
    )]
    assert "not every approval was the approver role's" in section(md, "Summary")
    assert "| **not the approver role; IAM user without MFA** |" in section(md, "Approval history")


def test_an_approval_the_ledger_records_by_another_role_is_a_gap(world, tmp_path):
    """GIVEN version 2's approval recorded in the approval ledger with the Admin role's session as its principal (and
    CloudTrail's history gone) WHEN audited THEN a gap names the principal, the ledger record and the approver role."""
    start = dt.datetime.now(dt.timezone.utc)
    _decide(world, world.v2, "Approved", "ok", EVE, "deploying", start)
    world.overrides["LookupEvents"] = {"Events": []}
    at = audit_time(world.clients.sagemaker.describe_model_package(ModelPackageName=world.v2)["LastModifiedTime"])
    code, md, _ = run(world, tmp_path, "--version", "2")
    (gap,) = [g for g in gaps(md) if g.startswith("approval:")]
    assert gap.startswith(audit.md_text(
        f"approval: the version was approved at {at} by {EVE} (approval ledger s3://{BUCKET}/approval-ledger/churn/2/"))
    assert gap.endswith(audit.md_text(
        f"), whose session issuer is arn:aws:iam::{ACCOUNT}:role/Admin, not the approver role {APPROVER_ROLE}"))


def _started_by(world: World, identity: Dict[str, Any], profile: Optional[str] = None) -> None:
    """DescribePipelineExecution of version 2's execution answering that ``identity`` (its CreatedBy.IamIdentity)
    started it, from Studio user profile ``profile`` when given; moto's names a Studio user profile only."""
    described = world.clients.sagemaker.describe_pipeline_execution(PipelineExecutionArn=world.execution_arn)
    answer = {k: (v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, dt.datetime) else v)
              for k, v in described.items() if k != "ResponseMetadata"}
    answer["CreatedBy"] = {"IamIdentity": identity, **({"UserProfileName": profile} if profile else {})}
    replay(world.clients.sagemaker, "DescribePipelineExecution", lambda request: answer, world.calls)


@pytest.mark.parametrize("identity", [
    {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/DataScientist/alice", "PrincipalId": "AROAEXAMPLE:alice"},
    {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/DataScientist/session-1", "SourceIdentity": "alice"},
], ids=["session-name", "source-identity"])
def test_an_approver_who_started_the_training_is_a_gap(world, tmp_path, identity):
    """GIVEN version 2's execution started by alice (a DataScientist role session, by session name or by source
    identity) and approved by alice as the approver role (the CloudTrail fixture) WHEN audited THEN the approval that
    is not independent of the training is a gap naming both principals, and the execution section says who started
    it."""
    _started_by(world, identity)
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    alice = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/alice"
    assert gaps(md) == [audit.md_text(
        f"approval: the version was approved at 2026-11-21T10:15:02Z by {alice} (CloudTrail event "
        f"3f1c2b8e-0001-4d7a-9a51-2a9e0c7b1d01), the person (alice) who started the pipeline execution that trained it "
        f"({identity['Arn']}): the approval is not independent of the training; have another approver decide")]
    assert f"| Started by | {audit.md_text(identity['Arn'])} |" in section(md, "Pipeline execution")


def test_an_approver_other_than_who_started_the_training_is_no_gap(world, tmp_path):
    """GIVEN version 2's execution started by bob and approved by alice THEN no gap (the complete record)."""
    _started_by(world, {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/DataScientist/bob"})
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0 and gaps(md) == []


@pytest.mark.parametrize("starter, from_studio, gap", [("bob", True, False), ("alice", False, True)],
                         ids=["bob-started-alice-approved-both-in-studio", "alice-started-in-studio-and-approved"])
def test_a_studio_start_is_judged_by_its_user_profile_not_its_session_name(world, tmp_path, starter, from_studio, gap):
    """GIVEN version 2's execution started from ``starter``'s Studio user profile (SageMaker names every session of a
    Studio execution role "SageMaker", whoever's profile it runs for) and approved by alice, from her Studio profile (a
    session of the approver role also named "SageMaker") or as herself (the CloudTrail fixture: session alice) WHEN
    audited THEN "SageMaker" names no person: bob's start and alice's approval are no gap, while alice approving what her
    own profile started is the approval gap naming her."""
    _started_by(world, {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AmazonSageMaker-ExecutionRole-ds/SageMaker"},
                profile=starter)
    if from_studio:
        world.overrides["LookupEvents"] = {"Events": [_approval_event(world.v2, {
            "type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/SageMaker",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": APPROVER_ROLE},
                               "attributes": {"mfaAuthenticated": "true"}}}, event_id="from-studio")]}
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    if gap:
        [found] = gaps(md)
        assert audit.md_text("the person (alice) who started the pipeline execution") in found, found
    else:
        assert gaps(md) == []


def test_an_approval_from_studio_is_judged_by_its_source_identity(world, tmp_path):
    """GIVEN version 2's execution started by alice (her Identity Center session) and approved from a Studio profile
    whose sessions carry the user's source identity (CloudTrail's sessionContext.sourceIdentity 'alice'; the session
    itself is named "SageMaker") WHEN audited THEN the approval is the gap of an approver who started the training."""
    _started_by(world, {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/DataScientist/alice"})
    studio = f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/SageMaker"
    world.overrides["LookupEvents"] = {"Events": [_approval_event(world.v2, {
        "type": "AssumedRole", "arn": studio, "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": APPROVER_ROLE}, "sourceIdentity": "alice",
            "attributes": {"mfaAuthenticated": "true"}}}, event_id="from-studio")]}
    code, md, _ = run(world, tmp_path, "--version", "2")
    assert code == 0
    assert gaps(md) == [audit.md_text(
        f"approval: the version was approved at 2026-11-22T08:00:00Z by {studio} (source identity alice) (CloudTrail "
        f"event from-studio), the person (alice) who started the pipeline execution that trained it "
        f"(arn:aws:sts::{ACCOUNT}:assumed-role/DataScientist/alice): the approval is not independent of the training; "
        "have another approver decide")]


def test_a_team_approved_models_approvals_are_held_to_its_teams_approver_role(world, tmp_path):
    """GIVEN version 2 approved (CloudTrail) once by a session of team fraud's approver role and once by the
    environment's approver role WHEN audited for a model whose team approves it (``team_approvers``: the command reads it
    from the config) THEN the team role's decision is no gap and the environment role's is one, naming the team's role."""
    team_role = f"arn:aws:iam::{ACCOUNT}:role/mlops-loop-prod-fraud-team-approver"

    def by(role: str, event_id: str, at: str) -> Dict[str, Any]:
        return _approval_event(world.v2, {"type": "AssumedRole", "arn": f"{role.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/')}/ann",
                                          "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role},
                                                             "attributes": {"mfaAuthenticated": "true"}}},
                               event_id=event_id, at=at)

    world.overrides["LookupEvents"] = {"Events": [by(team_role, "by-team", "2026-11-22T08:00:00Z"),
                                                  by(APPROVER_ROLE, "by-env", "2026-11-22T09:00:00Z")]}
    report = audit.gather(clients=world.clients, project="mlops-loop", env="prod", model="churn", version=2,
                          caller={"account": ACCOUNT, "arn": "auditor"}, auto_approve=False, approver_team="fraud")
    gaps_ = [g for g in report["gaps"] if g.startswith("approval")]
    assert len(gaps_) == 1 and "CloudTrail event by-env" in gaps_[0], gaps_
    assert gaps_[0].endswith(f"not the approver role {team_role}"), gaps_[0]



def test_the_audit_command_reads_from_the_config_which_team_approves_the_model(world, tmp_path):
    """GIVEN version 2 approved (CloudTrail) by a session of the environment's approver role WHEN the command audits it
    with a config in which the model's team approves its own models (``team_approvers``) THEN that decision is a gap
    naming the team's role (the command took the team from the config it read for the target); WHEN the config names no
    team approvers THEN the environment's role decides and the same decision is no gap."""
    from tests.support.configs import sample_with_team_approvers

    team_role = f"arn:aws:iam::{ACCOUNT}:role/mlops-loop-prod-fraud-team-approver"
    issuer = {"type": "Role", "arn": APPROVER_ROLE}
    world.overrides["LookupEvents"] = {"Events": [_approval_event(world.v2, {
        "type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-loop-prod-model-approver/ann",
        "sessionContext": {"sessionIssuer": issuer, "attributes": {"mfaAuthenticated": "true"}}}, event_id="by-env")]}

    def approval_gaps(config: Path) -> List[str]:
        out = tmp_path / f"{config.stem}.md"
        assert audit.main(["--env", "prod", "--model", "churn", "--config", str(config), "--version", "2",
                           "--output", str(out)], clients=world.clients) == 0
        return [gap for gap in gaps(out.read_text()) if gap.startswith("approval")]

    team_config = sample_with_team_approvers(tmp_path, "prod", "churn", "fraud")
    found = approval_gaps(team_config)
    assert len(found) == 1 and "CloudTrail event by-env" in found[0], found
    assert found[0].endswith(audit.md_text(f"not the approver role {team_role}")), found[0]
    assert approval_gaps(SAMPLE_CONFIG) == []

def _registered_approved(world: World) -> tuple:
    """A version the pipeline registered Approved (no person decided), its card left Draft, CloudTrail silent:
    (version, its package, its card name)."""
    arn = world.register(approval="Approved", with_execution=False)
    card = world.write_card(arn, status="Draft")
    world.overrides["LookupEvents"] = {"Events": []}
    return int(arn.rsplit("/", 1)[-1]), world.clients.sagemaker.describe_model_package(ModelPackageName=arn), card


def _gather(world: World, version: int, auto_approve: Any) -> Dict[str, Any]:
    return audit.gather(clients=world.clients, project="mlops-loop", env="prod", model="churn", version=version,
                        caller={"account": ACCOUNT, "arn": "auditor"}, auto_approve=auto_approve)


def _auto_approved(world: World) -> str:
    """Version 2 - its execution, reports, card and deployment as in every other test - as a dev version is: registered
    Approved by the pipeline (training.auto_approve) and never updated since, its card written after registration and
    left Draft, CloudTrail holding no UpdateModelPackage call of it (registering is CreateModelPackage). Returns its card."""
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[ACCOUNT][REGION]
    package = backend.model_packages[backend.model_package_name_mapping.get(world.v2, world.v2)]
    package.last_modified_time = package.last_modified_by = None  # as CreateModelPackage leaves them
    world.clients.sagemaker.delete_model_card(ModelCardName=world.card)
    world.overrides["LookupEvents"] = {"Events": []}
    return world.write_card(world.v2, status="Draft")


def _record_registration(world: World, arn: str) -> None:
    """The deploy handler's approval-ledger record of the state-change event SageMaker sends for a version registered
    Approved."""
    version = int(arn.rsplit("/", 1)[-1])
    event = {"id": "e-reg", "time": "2026-11-20T09:40:11Z", "detail": {"ModelPackageArn": arn, "ModelApprovalStatus": "Approved"}}
    decision = {"group": GROUP, "event": {"id": "e-reg", "version": version, "approval": "Approved"}, "outcome": "deploying",
                "stack": STACK, "parameter": "ChurnModelPackageArn"}
    assert "key" in record_decision(Ledger(bucket=BUCKET, models={GROUP: "churn"}), event, decision,
                                    sagemaker=world.clients.sagemaker, s3=world.clients.s3,
                                    notify=Notifier(None, None, GROUP))


def test_a_version_registered_approved_is_the_auto_approval_where_the_environment_auto_approves(world):
    """GIVEN version 2 registered Approved by the pipeline (training.auto_approve), never updated, its card Draft,
    CloudTrail holding no UpdateModelPackage call of it
    WHEN audited for an environment that auto-approves THEN its approval is named the auto-approval and the report has
    no gap at all: not the approval, not CloudTrail's silence (no update call can exist), not the card unreviewed or
    written after registration; a missing card still is one."""
    card = _auto_approved(world)
    result = _gather(world, 2, True)
    assert [c["verdict"] for c in result["approval_checks"]] == [
        "auto-approved at registration (training.auto_approve of environment prod)"]
    assert result["gaps"] == []
    summary = section(audit.render_markdown(result), "Summary")
    assert "| Approval | auto-approved at registration \\(training.auto\\_approve of environment prod\\), by " in summary
    assert "| Model card | Draft (auto-approved version: no review asked) |" in summary

    world.clients.sagemaker.delete_model_card(ModelCardName=card)
    assert _gather(world, 2, True)["gaps"] == [
        f"model card: version 2 has none ({card} or {GROUP}-v2): nothing describes it for review"]


def test_a_version_registered_approved_where_the_environment_does_not_auto_approve_is_a_gap(world, tmp_path):
    """GIVEN a version registered Approved (CreateModelPackage, no UpdateModelPackage) WHEN audited for prod (its config:
    training.auto_approve false) THEN a gap: no person approved it, and its card, never approved, is one too; WHEN the
    config is not read (auto_approve not known) THEN the gap says so."""
    version, package, card = _registered_approved(world)
    created, by = audit_time(package["CreationTime"]), _gather(world, version, None)["package"]["created_by"]
    source = "the model package: Approved since it was registered, never updated"
    out = tmp_path / "r.md"
    assert audit.main(["--env", "prod", "--model", "churn", *CONFIG, "--version", str(version), "--output", str(out)],
                      clients=world.clients) == 0
    md = out.read_text()
    assert audit.md_text(
        f"approval: the version was registered Approved at {created} by {by} ({source}) and no person approved it: "
        "environment prod does not auto-approve (training.auto_approve is false)") in gaps(md)
    assert audit.md_text(f"model card: {card} is Draft, not Approved: no reviewer approved what it says (card version 1)") in gaps(md)

    assert (f"approval: the version was registered Approved at {created} by {by} ({source}) and no person approved it: "
            "whether environment prod auto-approves (training.auto_approve) is not known: the config was not read"
            ) in _gather(world, version, None)["gaps"]


def test_the_ledgers_record_of_a_registration_is_the_auto_approval_not_an_approver(world):
    """GIVEN the deploy handler's ledger record of version 2 registered Approved (its principal: who registered it,
    CreatedBy), CloudTrail holding no UpdateModelPackage call of it WHEN audited where the environment auto-approves
    THEN that record is the auto-approval and the report has no gap at all."""
    _auto_approved(world)
    _record_registration(world, world.v2)
    result = _gather(world, 2, True)
    assert [(c["source"].split(" s3://")[0], c["verdict"]) for c in result["approval_checks"]] == [
        ("approval ledger", "auto-approved at registration (training.auto_approve of environment prod)")]
    assert result["gaps"] == []


def test_cloudtrail_silence_stays_a_gap_for_a_version_updated_or_not_auto_approved(world):
    """GIVEN version 2 registered Approved, CloudTrail silent WHEN the environment does not auto-approve THEN CloudTrail's
    silence is still a gap beside the approval's; GIVEN it auto-approved but updated since (an UpdateModelPackage call
    CloudTrail should hold) THEN the silence is a gap."""
    _auto_approved(world)
    silent = "approval history: CloudTrail has no UpdateModelPackage call for this version"
    assert silent in _gather(world, 2, False)["gaps"]

    world.clients.sagemaker.update_model_package(ModelPackageArn=world.v2, ModelApprovalStatus="Approved")
    assert silent in _gather(world, 2, True)["gaps"]


@pytest.mark.parametrize("arn, execution", [
    ("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlops-loop-prod-churn-training/execution/abc123", True),
    ("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlops-loop-prod-churn-training/execution/abc123\n", False),
    ("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlops-loop-prod-churn-training/execution/abc 123", False),
    ("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/mlops-loop-prod-churn-training", False),
])
def test_only_a_whole_pipeline_execution_arn_is_read_as_the_versions_execution(arn, execution):
    """GIVEN a package's GeneratedBy WHEN the audit decides whether it names a pipeline execution THEN only a whole
    execution ARN does (a pasted newline or space is not one), as the deploy handler decides it."""
    from mlops_cli.audit.execution import _EXECUTION_ARN

    assert bool(_EXECUTION_ARN.fullmatch(arn)) is execution

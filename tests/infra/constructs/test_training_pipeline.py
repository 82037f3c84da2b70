"""TrainingPipeline, built in a bare stack as the Training stack builds it (one JobCode and one registry shared by the
models' pipelines): the SageMaker Pipeline generated from this model and environment, and a role that reads the model's
data, owns its artifacts prefix and may register but never approve.

Two models of this test's own dataset: ``chargeback`` (binary, manual approval, spot training) and ``refund``
(regression, auto-approved, tuned, on-demand)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from aws_cdk import Environment, RemovalPolicy, Stack, Stage
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from constructs import Construct

from mlops_loop.app_builder import new_app
from mlops_loop.config import parse_config
from mlops_loop.config.instance_offers import RegionOffers
from mlops_loop.config.gate import GateConfig
from mlops_loop.config.model import ModelConfig
from mlops_loop.config.training import TrainingConfig, TuningConfig
from mlops_loop.constructs import training_pipeline
from mlops_loop.constructs.job_code import JobCode
from mlops_loop.constructs.model_registry import ModelRegistry
from mlops_loop.constructs.served_model import SERVING_CONTENT_TYPES, SERVING_ENVIRONMENT
from mlops_loop.constructs.training_pipeline import (
    ENTRY_SCRIPT,
    TrainingPipeline,
    xgboost_image_uri,
    xgboost_repository,
    xgboost_repository_arn,
)
from mlops_loop.training.names import STEP_TRAIN, XGBOOST_VERSION
from pipeline_code.core.contract import MODEL_TAG
from pipeline_code.core.hyperparameters import training_arguments
from tests.support.cdk_outdirs import bare_outdir
from tests.support.construct_configs import (WEB_ORDERS, assert_sagemaker_eni_statements, network_config,
                                             vpc_config_of_network, vpc_statements_of)
from tests.support.templates import policy_statements

ACCOUNT, REGION = "123456789012", "eu-west-1"
ASSETS_BUCKET = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
BUCKETS = {kind: f"shop-dev-{kind}-bucket" for kind in ("features", "curated", "artifacts")}

# The construct tests' web orders with a second label (a regression target).
ORDERS: dict[str, Any] = {
    **WEB_ORDERS,
    "description": "Web shop orders; labels: chargeback within 60 days, refunded amount.",
    "labels": ["charged_back", "refund_amount"],
    "columns": {**WEB_ORDERS["columns"], "refund_amount": {"type": "double", "min": 0}},
}
CONFIG = parse_config({
    "project": "shop",
    "datasets": {"web_orders": ORDERS},
    "models": {
        "chargeback": {"dataset": "web_orders", "target": "charged_back", "features": ["amount", "log_items"],
                       "sensitive_attribute": "channel", "description": "Flags orders likely to be charged back"},
        "refund": {"dataset": "web_orders", "target": "refund_amount", "problem_type": "regression", "features": ["amount"],
                   "sensitive_attribute": "channel"},
    },
    "environments": {"dev": {"tier": "dev", "account": ACCOUNT, "region": REGION, "models": ["chargeback", "refund"]}},
})
CHARGEBACK, REFUND = CONFIG.models["chargeback"], CONFIG.models["refund"]
MANUAL = TrainingConfig()  # spot, PendingManualApproval, no tuning, 120 minutes
AUTO = TrainingConfig(auto_approve=True, use_spot=False, hyperparameter_tuning=True, instance_type="ml.m5.2xlarge",
                      instance_count=2, processing_instance_type="ml.m5.large", max_runtime_minutes=30)
GATE = GateConfig(min_auc=0.8, challenger_margin=0.01)


class Training:
    """GIVEN a bare stack with a key, imported lake buckets, one ModelRegistry and one JobCode."""

    def __init__(self, models: tuple[ModelConfig, ...] = (CHARGEBACK, REFUND)) -> None:
        self.stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account=ACCOUNT, region=REGION))
        self.key = kms.Key(self.stack, "Key")
        self.buckets = {kind: s3.Bucket.from_bucket_name(self.stack, kind.title(), name) for kind, name in BUCKETS.items()}
        self.registry = ModelRegistry(self.stack, "Registry", name_prefix="shop-dev", models={m.name: m.description for m in models},
                                      removal_policy=RemovalPolicy.RETAIN, card_key=self.key)
        self.code = JobCode(self.stack, "Code")

    def pipeline(self, model: ModelConfig, training: TrainingConfig, **overrides: Any) -> TrainingPipeline:
        """WHEN the model's pipeline is added."""
        props: dict[str, Any] = dict(
            pipeline_name=f"shop-dev-{model.name}-training", model=model, training=training, gate=GATE, registry=self.registry,
            key=self.key, features_bucket=self.buckets["features"], curated_bucket=self.buckets["curated"],
            artifacts_bucket=self.buckets["artifacts"], code=self.code, code_version="3f2a9c1",
        )
        props.update(overrides)
        return TrainingPipeline(self.stack, model.name.title(), **props)


@dataclass
class Built:
    training: Training
    pipelines: dict[str, TrainingPipeline]
    resources: dict[str, dict]

    @property
    def stack(self) -> Stack:
        return self.training.stack

    def resource(self, construct) -> dict:
        return self.resources[self.stack.get_logical_id(construct)]

    def statements(self, model: str) -> dict[str, dict]:
        access = self.pipelines[model].access
        return policy_statements(self.resources, [self.stack.get_logical_id(p) for p in access.managed_policies])

    def object_arn(self, asset) -> str:
        return f"arn:aws:s3:::{ASSETS_BUCKET}/{self.stack.resolve(asset.s3_object_key)}"

    def url(self, asset) -> str:
        return self.stack.resolve(asset.s3_object_url)


@pytest.fixture(scope="module")
def built() -> Built:
    training = Training()
    pipelines = {"chargeback": training.pipeline(CHARGEBACK, MANUAL), "refund": training.pipeline(REFUND, AUTO)}
    return Built(training, pipelines, Template.from_stack(training.stack).to_json()["Resources"])


def _definition(pipeline: TrainingPipeline) -> dict:
    return json.loads(pipeline.definition)


def _steps(definition: dict) -> dict[str, dict]:
    def walk(steps: list[dict]) -> Iterator[dict]:
        for step in steps:
            yield step
            if step["Type"] == "Condition":
                yield from walk(step["Arguments"]["IfSteps"])
                yield from walk(step["Arguments"]["ElseSteps"])

    return {step["Name"]: step for step in walk(definition["Steps"])}


def _defaults(definition: dict) -> dict[str, Any]:
    return {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}


# ------------------------------------------------------------------ the pipeline resource
def test_the_pipeline_resource_carries_the_generated_definition_under_the_pipelines_name_and_role(built):
    pipeline = built.pipelines["chargeback"]
    resource = built.resource(pipeline.pipeline)
    props = resource["Properties"]
    assert (props["PipelineName"], props["PipelineDisplayName"]) == ("shop-dev-chargeback-training",) * 2
    assert props["PipelineDescription"] == "Train, evaluate against the champion, gate and register chargeback"
    assert props["RoleArn"] == {"Fn::GetAtt": [built.stack.get_logical_id(pipeline.role.node.default_child), "Arn"]}
    assert props["PipelineDefinition"] == {"PipelineDefinitionBody": built.stack.resolve(pipeline.definition)}
    # The role's policy is in place before the pipeline exists (and can be started).
    assert built.stack.get_logical_id(pipeline.access.managed_policy) in resource["DependsOn"]


def test_the_role_is_a_sagemaker_role_named_after_the_pipeline(built):
    """GIVEN a pipeline without tuning (chargeback) and one with (refund) WHEN their roles are read THEN SageMaker
    may assume the first only for a resource of this account and Region (the source SageMaker documents for
    pipelines, training and processing jobs); the second, whose tuning jobs have no documented source, as before."""
    props = built.resource(built.pipelines["chargeback"].role.node.default_child)["Properties"]
    assert props["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:*"}}}]
    assert props["Description"] == "shop-dev-chargeback-training: SageMaker Pipeline and the jobs it runs"
    tuned = built.resource(built.pipelines["refund"].role.node.default_child)["Properties"]
    assert tuned["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}]


def test_the_problem_type_is_the_models(built):
    assert (built.pipelines["chargeback"].problem_type, built.pipelines["refund"].problem_type) == (
        "binary_classification", "regression")


# ------------------------------------------------------------------ the definition
def test_the_definition_reads_the_models_dataset_prefixes_and_takes_the_environments_capacity_and_gate(built):
    defaults = _defaults(_definition(built.pipelines["chargeback"]))
    assert defaults["InputFeatures"] == "s3://shop-dev-features-bucket/snapshots/web_orders/"
    assert defaults["InputLabels"] == "s3://shop-dev-curated-bucket/web_orders/"
    assert (defaults["TrainingInstanceType"], defaults["TrainingInstanceCount"], defaults["ProcessingInstanceType"]) == (
        "ml.m5.xlarge", 1, "ml.m5.xlarge")
    assert (defaults["MinAuc"], defaults["ChallengerMargin"]) == (0.8, 0.01)
    refund = _defaults(_definition(built.pipelines["refund"]))
    assert (refund["TrainingInstanceType"], refund["TrainingInstanceCount"], refund["ProcessingInstanceType"]) == (
        "ml.m5.2xlarge", 2, "ml.m5.large")


def test_the_hyperparameters_a_model_sets_reach_its_training_step_over_the_defaults():
    """GIVEN a model that sets two of its trainer's hyperparameters WHEN its pipeline is built THEN the training step
    passes them, and the other hyperparameters the pipeline passes keep their defaults."""
    model = CHARGEBACK.model_copy(update={"hyperparameters": {"max_depth": 7, "seed": 3}})
    pipeline = Training((model,)).pipeline(model, MANUAL)
    arguments = _steps(_definition(pipeline))[STEP_TRAIN]["Arguments"]["AlgorithmSpecification"]["ContainerArguments"]
    flags = dict(zip(arguments[1::2], arguments[2::2]))
    assert (flags["--max_depth"], flags["--seed"]) == ("7", "3")
    defaults = dict(training_arguments(model.framework, {}))
    assert {name: flags[f"--{name}"] for name in defaults if name != "max_depth"} == {
        name: value for name, value in defaults.items() if name != "max_depth"}


def test_by_default_versions_are_registered_pending_manual_approval_only(built):
    (status,) = [p for p in _definition(built.pipelines["chargeback"])["Parameters"] if p["Name"] == "ModelApprovalStatus"]
    assert (status["DefaultValue"], status["EnumValues"]) == ("PendingManualApproval", ["PendingManualApproval"])


def test_with_auto_approve_versions_are_registered_approved(built):
    (status,) = [p for p in _definition(built.pipelines["refund"])["Parameters"] if p["Name"] == "ModelApprovalStatus"]
    assert status["DefaultValue"] == "Approved"


def test_spot_training_with_the_runtime_limit_or_tuning_on_demand_as_the_environment_says(built):
    manual = _steps(_definition(built.pipelines["chargeback"]))
    assert "Train" in manual and "Tune" not in manual
    train = manual["Train"]["Arguments"]
    assert train["EnableManagedSpotTraining"] is True
    assert train["StoppingCondition"]["MaxRuntimeInSeconds"] == 120 * 60
    tuned = _steps(_definition(built.pipelines["refund"]))
    assert "Tune" in tuned and "Train" not in tuned
    job = tuned["Tune"]["Arguments"]["TrainingJobDefinition"]
    assert job.get("EnableManagedSpotTraining", False) is False
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 30 * 60


def test_the_environments_tuning_budget_and_the_models_ranges_reach_the_tuning_step():
    """GIVEN an environment tuning with 50 jobs, 5 at once, random search with early stopping, and a model narrowing
    max_depth to 2-4 WHEN its pipeline is built THEN its tuning step searches exactly that and stops trials (Auto); the
    other ranges stay the framework's."""
    model = REFUND.model_copy(update={"tuning_ranges": {"max_depth": [2, 4]}})
    training = AUTO.model_copy(update={"tuning": TuningConfig(max_jobs=50, max_parallel_jobs=5, strategy="Random",
                                                              early_stopping=True)})
    config = _steps(_definition(Training((model,)).pipeline(model, training)))["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert (config["Strategy"], config["ResourceLimits"]) == ("Random", {"MaxParallelTrainingJobs": 5, "MaxNumberOfTrainingJobs": 50})
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    ranges = {r["Name"]: (r["MinValue"], r["MaxValue"]) for kind in config["ParameterRanges"].values() for r in kind}
    assert ranges == {"max_depth": ("2", "4"), "eta": ("0.01", "0.3"), "min_child_weight": ("1.0", "10.0")}


def test_jobs_run_the_stock_xgboost_image_with_the_job_code_and_this_models_spec(built):
    pipeline = built.pipelines["chargeback"]
    prepare = _steps(_definition(pipeline))["Prepare"]["Arguments"]
    assert prepare["AppSpecification"]["ImageUri"] == xgboost_image_uri(REGION)
    entry, spec = built.training.code.script(ENTRY_SCRIPT), built.training.code.model_spec(CHARGEBACK)
    assert prepare["AppSpecification"]["ContainerEntrypoint"][3].endswith(built.stack.resolve(entry.s3_object_key))
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in prepare["ProcessingInputs"]}
    assert {name: inputs[name] for name in ("entry", "lib", "model_spec")} == {
        "entry": built.url(entry), "lib": built.url(built.training.code.library), "model_spec": built.url(spec)}


def test_versions_are_registered_in_the_models_group_with_the_serving_container_settings(built):
    register = _steps(_definition(built.pipelines["chargeback"]))["Register"]["Arguments"]
    assert register["ModelPackageGroupName"] == built.training.registry.group_names["chargeback"] == "shop-dev-chargeback"
    inference = register["InferenceSpecification"]
    assert inference["Containers"][0]["Environment"] == dict(SERVING_ENVIRONMENT)
    assert (inference["SupportedContentTypes"], inference["SupportedResponseMIMETypes"]) == (
        list(SERVING_CONTENT_TYPES), list(SERVING_CONTENT_TYPES))
    assert register["MetadataProperties"]["CommitId"] == "3f2a9c1"


def test_each_version_records_the_job_code_and_the_model_spec_it_was_built_from(built):
    """GIVEN the two pipelines WHEN a version registers THEN its customer metadata pins the build without git: the
    library zip's asset hash (the object's key in the assets bucket is ``<hash>.zip``) and the sha256 of the very
    bytes of the model's spec object (each model its own)."""
    code, outdir = built.training.code, Path(Stage.of(built.stack).outdir)
    for name, model in (("chargeback", CHARGEBACK), ("refund", REFUND)):
        metadata = _steps(_definition(built.pipelines[name]))["Register"]["Arguments"]["CustomerMetadataProperties"]
        assert built.stack.resolve(code.library.s3_object_key) == f"{metadata['job_code_asset_hash']}.zip"
        spec_bytes = (outdir / code.model_spec(model).asset_path).read_bytes()
        assert metadata["model_spec_sha256"] == hashlib.sha256(spec_bytes).hexdigest()


def _zip_as_cdk_assets_does(directory: Path, target: Path) -> None:
    """The zip cdk-assets publishes of a staged directory asset: every file under it, by its path relative to it."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            archive.write(path, path.relative_to(directory).as_posix())


def _run_staged_entry(entrypoint: list, entry: Path, lib: Path, digest: str, cwd: Path) -> subprocess.CompletedProcess:
    """The job's ContainerEntrypoint as the container runs it, the entry script's path its staged asset's."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLOPS_LOOP_MODULE")}
    env.update(MLOPS_LOOP_LIB_DIRS=str(lib), MLOPS_LOOP_CODE_SHA256=digest)
    python, flag, check, _, entry_sha256 = entrypoint
    command = [sys.executable, flag, check, str(entry), entry_sha256, "pipeline_code.training.train", "--help"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_jobs_run_the_synthesized_job_code_zip_and_refuse_it_changed(built, tmp_path):
    """GIVEN the synthesized assembly WHEN the library asset as synth staged it is zipped as cdk-assets publishes it
    and run through the staged entry script with the digest the definition gives every job THEN it runs, the version
    records that digest; one file of the zip changed in the assets bucket and the entry refuses to run it."""
    code, outdir = built.training.code, Path(Stage.of(built.stack).outdir)
    steps = _steps(_definition(built.pipelines["chargeback"]))
    digest = steps["Prepare"]["Arguments"]["Environment"]["MLOPS_LOOP_CODE_SHA256"]
    entrypoint = steps["Prepare"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
    assert steps["Register"]["Arguments"]["CustomerMetadataProperties"]["job_code_sha256"] == digest
    lib = tmp_path / "lib"
    lib.mkdir()
    published = lib / built.stack.resolve(code.library.s3_object_key)
    _zip_as_cdk_assets_does(outdir / code.library.asset_path, published)
    entry = outdir / code.script(ENTRY_SCRIPT).asset_path
    result = _run_staged_entry(entrypoint, entry, lib, digest, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"sagemaker_entry: job code verified: files digest {digest}" in result.stdout
    with zipfile.ZipFile(published) as archive:
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    files["pipeline_code/training/train.py"] += b"\nprint('not what was reviewed')\n"
    with zipfile.ZipFile(published, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    result = _run_staged_entry(entrypoint, entry, lib, digest, tmp_path)
    assert result.returncode == 2 and "not what was reviewed" not in result.stdout
    count = sum(not name.endswith("/") for name in files)
    assert f"is not the code this pipeline was deployed with: its {count} files digest to " in result.stderr
    assert f"the job expects {digest} (MLOPS_LOOP_CODE_SHA256, set at synth)" in result.stderr


# ------------------------------------------------------------------ the role's policy
def test_the_role_reads_the_models_data_owns_its_artifacts_prefix_and_writes_nowhere_else(built):
    statements = built.statements("chargeback")
    reads = {sid: statements[sid]["Resource"] for sid in ("ReadFeatures", "ReadLabels")}
    assert reads == {"ReadFeatures": "arn:aws:s3:::shop-dev-features-bucket/snapshots/web_orders/*",
                     "ReadLabels": "arn:aws:s3:::shop-dev-curated-bucket/web_orders/*"}
    writes = {sid: s["Resource"] for sid, s in statements.items()
              if s["Effect"] == "Allow" and "s3:PutObject" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert writes == {"Artifacts": "arn:aws:s3:::shop-dev-artifacts-bucket/pipelines/chargeback/*"}
    assert statements["ArtifactsList"]["Condition"] == {"StringLike": {"s3:prefix": ["pipelines/chargeback/*"]}}
    assert statements["DataKey"]["Resource"] == {"Fn::GetAtt": [built.stack.get_logical_id(built.training.key.node.default_child), "Arn"]}


def test_the_role_lets_sagemaker_grant_the_key_to_its_jobs_volumes_and_no_one_else(built):
    """The pipeline creates its steps' jobs as this role with VolumeKmsKeyId: SageMaker creates the volume's grant as
    the caller; the condition admits only grants an AWS service asks for."""
    grants = built.statements("chargeback")["VolumeGrants"]
    assert (grants["Action"], grants["Condition"]) == ("kms:CreateGrant", {"Bool": {"kms:GrantIsForAWSResource": "true"}})
    assert grants["Resource"] == {"Fn::GetAtt": [built.stack.get_logical_id(built.training.key.node.default_child), "Arn"]}


def test_the_role_reads_the_job_code_and_only_its_own_models_spec(built):
    """Both pipelines share one JobCode: each reads the entry script and library, and its own spec, not the other's."""
    code = built.training.code
    mine, theirs = built.statements("chargeback"), built.statements("refund")
    assert mine["ReadModelSpec"]["Resource"] == built.object_arn(code.model_spec(CHARGEBACK))
    assert theirs["ReadModelSpec"]["Resource"] == built.object_arn(code.model_spec(REFUND))
    assert built.object_arn(code.model_spec(REFUND)) not in json.dumps(mine)
    for statements in (mine, theirs):
        assert statements["CodeSagemakerEntryPy"]["Resource"] == built.object_arn(code.script(ENTRY_SCRIPT))
        assert statements["JobLibrary"]["Resource"] == built.object_arn(code.library)


def test_the_role_runs_only_pipeline_jobs_pulls_only_the_xgboost_image_and_passes_only_itself(built):
    statements = built.statements("chargeback")
    assert statements["RunPipelineJobs"]["Resource"] == [
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/pipelines-*",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-*",
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/pipelines-*",
    ]
    assert not {"sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob"} & set(statements["RunPipelineJobs"]["Action"])
    assert statements["PullImage"]["Resource"] == xgboost_repository_arn(REGION)
    # SageMaker's training and processing job namespaces and log groups only: not /aws/sagemaker/Endpoints, where prod's
    # CPU and memory alarms read (job code runs as this role), nor any other endpoint's or job kind's log group.
    assert statements["JobMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": ["/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs"]}}
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker"
    assert statements["Logs"]["Resource"] == [f"{logs}/ProcessingJobs", f"{logs}/ProcessingJobs:*",
                                              f"{logs}/TrainingJobs", f"{logs}/TrainingJobs:*"]
    assert statements["PassOwnRole"]["Resource"] == {
        "Fn::GetAtt": [built.stack.get_logical_id(built.pipelines["chargeback"].role.node.default_child), "Arn"]}
    assert statements["PassOwnRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


@pytest.mark.parametrize("model", ["chargeback", "refund"])
def test_the_role_starts_training_and_tuning_jobs_on_the_training_type_and_processing_jobs_on_the_processing_type(built, model):
    """GIVEN a pipeline (refund: trained on ml.m5.2xlarge, processed on ml.m5.large) WHEN its role's statements are read
    THEN it may create training and tuning jobs only on the type the TrainingInstanceType parameter defaults to, and
    processing jobs only on ProcessingInstanceType's default; a request naming no type is not allowed either
    (ForAllValues alone would be true for it)."""
    statements = built.statements(model)
    parameters = {p["Name"]: p.get("DefaultValue") for p in json.loads(built.pipelines[model].definition)["Parameters"]}
    training, processing = statements["StartTrainingJobs"], statements["StartProcessingJobs"]
    assert training["Action"] == ["sagemaker:CreateHyperParameterTuningJob", "sagemaker:CreateTrainingJob"]
    assert training["Condition"] == {"ForAllValues:StringEquals": {"sagemaker:InstanceTypes": [parameters["TrainingInstanceType"]]},
                                     "Null": {"sagemaker:InstanceTypes": "false"}}
    assert processing["Action"] == "sagemaker:CreateProcessingJob"
    assert processing["Resource"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-*"
    assert processing["Condition"] == {
        "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": [parameters["ProcessingInstanceType"]]},
        "Null": {"sagemaker:InstanceTypes": "false"}}


def test_the_role_registers_versions_of_its_models_group_only_as_pending_and_never_approves(built):
    statements = built.statements("chargeback")
    assert f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/shop-dev-chargeback/*" in statements["RegisterChargeback"]["Resource"]
    assert "RegisterRefund" not in statements
    assert statements["RegisterOnlyAsPendingChargeback"]["Effect"] == "Deny"
    assert statements["TrainerCannotApprove"] == {"Sid": "TrainerCannotApprove", "Effect": "Deny",
                                                  "Action": "sagemaker:UpdateModelPackage", "Resource": "*"}


def test_with_auto_approve_registration_is_not_limited_to_pending_but_approval_stays_denied(built):
    statements = built.statements("refund")
    assert "RegisterRefund" in statements and "RegisterOnlyAsPendingRefund" not in statements
    assert statements["TrainerCannotApprove"]["Effect"] == "Deny"


# ------------------------------------------------------------------ the stock image
def test_the_xgboost_repository_is_the_images_repository_in_the_regions_partition():
    for region, partition, domain in (("eu-west-1", "aws", "amazonaws.com"), ("cn-north-1", "aws-cn", "amazonaws.com.cn")):
        uri = xgboost_image_uri(region)
        match = re.fullmatch(rf"(\d{{12}})\.dkr\.ecr\.{region}\.{re.escape(domain)}/sagemaker-xgboost:{re.escape(XGBOOST_VERSION)}", uri)
        assert match, uri
        assert xgboost_repository_arn(region) == f"arn:{partition}:ecr:{region}:{match.group(1)}:repository/sagemaker-xgboost"


def test_the_xgboost_repository_is_a_reference_that_creates_no_resource():
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account=ACCOUNT, region=REGION))
    repository = xgboost_repository(stack)
    assert repository.node.id == "XgboostImageRepository"
    assert stack.resolve(repository.repository_arn) == xgboost_repository_arn(REGION)
    assert not Template.from_stack(stack).to_json().get("Resources")


def test_the_xgboost_repository_is_one_reference_per_stack_whatever_the_scope():
    """GIVEN constructs of two stacks WHEN each asks for the XGBoost repository THEN a stack's constructs share the one
    reference at the stack's root, and each stack has its own, in its region."""
    app = new_app(bare_outdir())
    stack = Stack(app, "Bare", env=Environment(account=ACCOUNT, region=REGION))
    other = Stack(app, "Other", env=Environment(account=ACCOUNT, region="cn-north-1"))
    inner = Construct(Construct(stack, "Outer"), "Inner")
    repository = xgboost_repository(inner)
    assert xgboost_repository(stack) is repository and xgboost_repository(Construct(stack, "Sibling")) is repository
    assert repository.node.path == "Bare/XgboostImageRepository"
    elsewhere = xgboost_repository(Construct(other, "Inner"))
    assert elsewhere is not repository and elsewhere.node.path == "Other/XgboostImageRepository"
    assert other.resolve(elsewhere.repository_arn) == xgboost_repository_arn("cn-north-1")


# ------------------------------------------------------------------ refusals
def test_a_pipeline_name_sagemaker_refuses_is_refused():
    training = Training((CHARGEBACK,))
    message = ("invalid PipelineSpec: pipeline_name: 'shop_dev_chargeback' is not a SageMaker pipeline name "
               "(letters, digits, hyphens; max 256)")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        training.pipeline(CHARGEBACK, MANUAL, pipeline_name="shop_dev_chargeback")


def test_a_code_version_a_model_package_cannot_record_is_refused():
    training = Training((CHARGEBACK,))
    message = "invalid PipelineSpec: code_version: 'v1!' is not a version string (max 256 of letters, digits, space, _.:/=+-@)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        training.pipeline(CHARGEBACK, MANUAL, code_version="v1!")


def test_a_model_without_a_group_in_the_registry_is_refused():
    training = Training((REFUND,))
    with pytest.raises(KeyError, match=r"^'chargeback'$"):
        training.pipeline(CHARGEBACK, MANUAL)


def test_a_definition_that_would_run_on_a_type_the_region_does_not_offer_fails_synth_naming_it(monkeypatch):
    """GIVEN a table in which eu-west-1 offers processing only on ml.c5.xlarge WHEN a pipeline processing on the
    environment's ml.m5.xlarge is built THEN synth fails naming the pipeline, the definition's parameter, the use and
    the region (the config is checked the same way; this covers what a definition adds itself)."""
    offers = RegionOffers(region=REGION, source="s", offer_version="20261201000000", publication_date="2026-12-01",
                          sha256="0" * 64, types={"training": frozenset({"ml.m5.xlarge"}),
                                                  "processing": frozenset({"ml.c5.xlarge"}), "hosting": frozenset()})
    monkeypatch.setattr(training_pipeline, "load_offers", lambda: {REGION: offers})
    with pytest.raises(ValueError, match="^" + re.escape(
            "pipeline shop-dev-chargeback-training: parameter ProcessingInstanceType: ml.m5.xlarge is not offered for "
            "processing in eu-west-1; offered: ml.c5.xlarge (AWS Price List 20261201000000, published 2026-12-01)") + "$"):
        Training((CHARGEBACK,)).pipeline(CHARGEBACK, MANUAL)


def test_while_the_sdk_helper_generates_the_definition_the_same_refusal_comes_when_it_is_first_asked(monkeypatch):
    """GIVEN the SDK helper generating definitions (app.py on a cold cache) and the table above WHEN the pipeline is
    built THEN the construct waits for nothing, and the refusal comes, unchanged, when its definition is asked
    (``build_app`` asks for every pipeline's before synth: tests/infra/test_training_stack.py)."""
    offers = RegionOffers(region=REGION, source="s", offer_version="20261201000000", publication_date="2026-12-01",
                          sha256="0" * 64, types={"training": frozenset({"ml.m5.xlarge"}),
                                                  "processing": frozenset({"ml.c5.xlarge"}), "hosting": frozenset()})
    monkeypatch.setattr(training_pipeline, "load_offers", lambda: {REGION: offers})
    monkeypatch.setattr(training_pipeline.sdk_helper, "running", lambda: True)

    pipeline = Training((CHARGEBACK,)).pipeline(CHARGEBACK, MANUAL)

    with pytest.raises(ValueError, match="^" + re.escape("pipeline shop-dev-chargeback-training: parameter "
                                                         "ProcessingInstanceType: ml.m5.xlarge is not offered for")):
        pipeline.definition


# ------------------------------------------------------------------ the environment's VPC
def test_with_a_network_every_job_runs_in_the_vpc_and_the_role_may_manage_its_interfaces():
    """GIVEN the environment's network WHEN the model's pipeline is built THEN every processing and training job of the
    definition has exactly those subnets and security groups, and the role holds SageMaker's documented interface
    permissions, creating interfaces only in those subnets with those groups."""
    training = Training((CHARGEBACK,))
    pipeline = training.pipeline(CHARGEBACK, MANUAL, network=network_config())
    jobs = {name: step["Arguments"] for name, step in _steps(_definition(pipeline)).items()
            if step["Type"] in ("Processing", "Training")}
    assert len(jobs) >= 4
    vpcs = {name: (a["NetworkConfig"] if "NetworkConfig" in a else a).get("VpcConfig") for name, a in jobs.items()}
    assert vpcs == {name: vpc_config_of_network() for name in jobs}
    resources = Template.from_stack(training.stack).to_json()["Resources"]
    parts = [training.stack.get_logical_id(p) for p in pipeline.access.managed_policies]
    assert_sagemaker_eni_statements(policy_statements(resources, parts), ACCOUNT, REGION)


def test_given_tags_every_job_of_the_pipeline_is_created_with_them_and_the_role_may_tag_its_jobs():
    """GIVEN the environment's tags WHEN a trained and a tuned model's pipelines are built THEN every processing,
    training and tuning job of both definitions carries exactly those tags and its model's (CloudFormation's tags reach the pipeline,
    not the jobs its executions start), and the role may tag the jobs it may create (a create request with tags is
    authorized as AddTags too)."""
    tags = (("project", "shop"), ("environment", "dev"), ("tier", "dev"))
    training = Training()
    pipelines = [training.pipeline(CHARGEBACK, MANUAL, tags=tags), training.pipeline(REFUND, AUTO, tags=tags)]
    jobs = {(p.node.id, name): step["Arguments"] for p in pipelines for name, step in _steps(_definition(p)).items()
            if step["Type"] in ("Processing", "Training", "Tuning", "Transform")}
    assert {name for _, name in jobs} >= {"Prepare", "Train", "Tune", "Evaluate", "Baseline"}
    # The environment's tags, then the model's (contract.MODEL_TAG): its jobs bill per model.
    expected = {p.node.id: [*({"Key": key, "Value": value} for key, value in tags),
                            {"Key": MODEL_TAG, "Value": p.node.id.lower()}] for p in pipelines}
    assert {where: a.get("Tags") for where, a in jobs.items()} == {where: expected[where[0]] for where in jobs}
    resources = Template.from_stack(training.stack).to_json()["Resources"]
    statements = policy_statements(resources, [training.stack.get_logical_id(p) for p in pipelines[0].access.managed_policies])
    assert "sagemaker:AddTags" not in statements["RunPipelineJobs"]["Action"]
    assert statements["TagPipelineJobs"]["Action"] == "sagemaker:AddTags"
    for sid in ("RunPipelineJobs", "TagPipelineJobs"):
        assert statements[sid]["Resource"] == sorted(statements["StartTrainingJobs"]["Resource"]
                                                     + [statements["StartProcessingJobs"]["Resource"]])


def test_given_tags_the_role_may_reach_only_its_own_environments_jobs_and_experiments():
    """GIVEN the shop/dev environment's tags WHEN a pipeline is built THEN the role's statements on jobs, experiments and
    lineage (reached by name patterns every environment's share) hold them to shop/dev's tags where present: the
    resource's, and on the creates and AddTags the request's too. Decided by the IAM evaluator: a job tagged as
    shop/prod's or as another project's may not be stopped, described or tagged; its own, tagged or before its tags
    reach authorization, may; relabelling its own job as prod's is refused."""
    from tests.support.iam_eval import IamModel, StackTemplate, authorize

    tags = (("project", "shop"), ("environment", "dev"), ("tier", "dev"))
    training = Training()
    pipeline = training.pipeline(CHARGEBACK, MANUAL, tags=tags)
    resources = Template.from_stack(training.stack).to_json()["Resources"]
    statements = policy_statements(resources, [training.stack.get_logical_id(p) for p in pipeline.access.managed_policies])
    owned = {"aws:ResourceTag/project": "shop", "aws:ResourceTag/environment": "dev"}
    requested = {"aws:RequestTag/project": "shop", "aws:RequestTag/environment": "dev"}
    for sid in ("RunPipelineJobs", "TrackExperiments"):
        assert statements[sid]["Condition"] == {"StringEqualsIfExists": owned}, sid
    for sid in ("TagPipelineJobs", "StartExperiments"):
        assert statements[sid]["Condition"] == {"StringEqualsIfExists": {**owned, **requested}}, sid
    for sid in ("StartTrainingJobs", "StartProcessingJobs"):
        assert statements[sid]["Condition"]["StringEqualsIfExists"] == {**owned, **requested}, sid
    iam = IamModel([StackTemplate("Training", training.stack.stack_name, Template.from_stack(training.stack).to_json())],
                   account=ACCOUNT, region=REGION)
    role = iam.role(iam.resolve("Training", training.stack.resolve(pipeline.role.role_arn)))
    job = {"training-job": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/pipelines-0zt8m4r2pq6d-Train-Ab12Cd34Ef"}

    def tagged(project: str, environment: str, kind: str = "ResourceTag") -> dict[str, str]:
        return {f"aws:{kind}/project": project, f"aws:{kind}/environment": environment}

    for action in ("sagemaker:StopTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:AddTags"):
        assert not authorize(role, action, job, tagged("shop", "prod")).allowed, action
        assert not authorize(role, action, job, tagged("risk", "dev")).allowed, action
        assert authorize(role, action, job, tagged("shop", "dev")).allowed, action
        assert authorize(role, action, job, {}).allowed, action
    assert not authorize(role, "sagemaker:AddTags", job, {**tagged("shop", "dev"), **tagged("shop", "prod", "RequestTag")}).allowed
    assert authorize(role, "sagemaker:AddTags", job, tagged("shop", "dev", "RequestTag")).allowed
    sized = {"sagemaker:InstanceTypes": [MANUAL.instance_type_of(CHARGEBACK.name)]}
    assert authorize(role, "sagemaker:CreateTrainingJob", job, {**sized, **tagged("shop", "dev", "RequestTag")}).allowed
    assert not authorize(role, "sagemaker:CreateTrainingJob", job, {**sized, **tagged("shop", "prod", "RequestTag")}).allowed


def test_given_tags_without_an_owner_tag_the_pipeline_is_refused():
    """GIVEN tags that lack the environment tag WHEN a pipeline is built THEN it is refused, naming the missing tag (the
    role's statements could not be held to their owner)."""
    with pytest.raises(ValueError, match=r"lack the owner tag\(s\) \['environment'\]"):
        Training().pipeline(CHARGEBACK, MANUAL, tags=(("project", "shop"), ("tier", "dev")))


def test_without_a_network_no_job_has_a_vpc_and_the_role_no_interface_permissions(built):
    pipeline = built.pipelines["chargeback"]
    assert '"VpcConfig"' not in pipeline.definition
    assert not vpc_statements_of(built.statements("chargeback"))


def test_every_job_of_the_tuning_pipeline_is_allowed_on_its_types_and_refused_on_any_other(built):
    """GIVEN the refund pipeline (a tuning job; trained on ml.m5.2xlarge, processed on ml.m5.large) WHEN each step's job
    request is decided by the IAM evaluator as the pipeline's role THEN it is allowed as the definition asks, refused on
    ml.p5.48xlarge (a run overriding the step's instance-type parameter), on the other purpose's type, and naming none."""
    from tests.support.iam_eval import IamModel, StackTemplate
    from tests.support.instance_limits import job_requests

    stack = built.training.stack
    iam = IamModel([StackTemplate("Training", stack.stack_name, Template.from_stack(stack).to_json())],
                   account=ACCOUNT, region=REGION)
    role = iam.role(iam.resolve("Training", stack.resolve(built.pipelines["refund"].role.role_arn)))
    requests = [r for r in job_requests(iam) if r.role == role]
    assert {r.action for r in requests} == {"sagemaker:CreateProcessingJob", "sagemaker:CreateHyperParameterTuningJob"}
    other = {"ml.m5.2xlarge": "ml.m5.large", "ml.m5.large": "ml.m5.2xlarge"}
    for r in requests:
        assert r.decide().allowed, r.label
        assert not r.resized("ml.p5.48xlarge").allowed, r.label
        assert not r.resized(other[r.instance_types[0]]).allowed, r.label
        assert not r.decide(()).allowed, r.label

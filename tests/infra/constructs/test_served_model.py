"""ServedModel, built in a bare stack: one model's execution role and access, the approved version as a SageMaker
Model, and its endpoint (ModelEndpoint) or batch schedule (BatchTransform) as the construct's "Default" child.

The model is declared in ``tests.support.construct_configs`` (a small dataset, one binary model) and parsed with
``mlops_loop.config.parse_config``, not read from config/mlops-loop.yaml; each test picks the mode through the
environment's serving override, and the construct gets the environment's ``serving_of(env, model)``, as the serving
stack does.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest
from aws_cdk import App, CfnCondition, CfnParameter, CfnResource, Environment, Fn, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops_loop.app_builder import new_app
from mlops_loop.config import parse_config
from mlops_loop.constructs.batch_transform import BatchTransform
from mlops_loop.constructs.model_endpoint import ModelEndpoint
from mlops_loop.constructs.scheduled_job import job_name_stem
from mlops_loop.constructs.served_model import ServedModel
from tests.support.construct_configs import (NETWORK, assert_sagemaker_eni_statements, network_config, returns_config,
                                             vpc_config_of_network, vpc_statements_of)
from mlops_loop.constructs.access_policy import READ_OBJECT_ACTIONS
from pipeline_code.core.contract import BATCH_RECORD_ERRORS_ENV
from pipeline_code.core.integrity import WORK_SEGMENT, model_prefix, sealed_key, sealed_prefix
from tests.support.built_stack import BuiltStack, evaluate, scheduled_request
from tests.support.cdk_outdirs import bare_outdir
from tests.support.iam_eval import IamModel, Role, StackTemplate, allowed

ENV = Environment(account="123456789012", region="eu-west-1")
PREFIX, ENDPOINT = "shop-dev", "shop-dev-returns"
INFERENCE, ARTIFACTS = "shop-dev-inference", "shop-dev-artifacts"
REPOSITORY = "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-xgboost"
CONDITION = "ReturnsDeployed"
APPROVED = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/shop-dev-returns/7"
BASE_ENVIRONMENT = ("SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY", "MLOPS_LOOP_MODEL_SHA256", "MLOPS_LOOP_MODEL_VERSION")


class _Built(BuiltStack):
    def __init__(self, stack: Stack, served: ServedModel):
        super().__init__(stack)
        self.served = served

    def statements(self) -> dict[str, dict]:
        return self.statements_of(self.served.node.find_child("Access"))

    def own_resources(self) -> dict[str, dict]:
        """The template's resources made by the ServedModel (its own and its Default child's), not the stand-ins."""
        return self.resources_of(self.served)


def _build(serving: Optional[dict] = None, *, framework: str = "xgboost", without_dead_letters: bool = False,
           **environment: Any) -> _Built:
    """GIVEN a bare stack with the stand-ins (data and ops keys, the two buckets by name, the image repository, the
    version and digest parameters and the condition that a version is set) WHEN model ``returns`` (trained by
    ``framework``) is served as the dev environment's ``serving`` override says."""
    raw = returns_config(serving, model_serving={"mode": "realtime"}, **environment)
    raw["models"]["returns"]["framework"] = framework
    config = parse_config(raw, source="served model test config")
    model = config.models["returns"]
    stack = Stack(new_app(bare_outdir()), "Bare", env=ENV)
    package = CfnParameter(stack, "ReturnsModelPackageArn", type="String", default="")
    digest = CfnParameter(stack, "ReturnsModelPackageArnSha256", type="String", default="")
    condition = CfnCondition(stack, CONDITION, expression=Fn.condition_not(Fn.condition_equals(package.value_as_string, "")))
    served = ServedModel(
        stack, "Returns", name_prefix=PREFIX, model=model, serving=config.serving_of(config.environments["dev"], model),
        package_arn=package.value_as_string, model_sha256=digest.value_as_string, condition=condition, key=kms.Key(stack, "Key"),
        inference_bucket=s3.Bucket.from_bucket_name(stack, "Inference", INFERENCE),
        artifacts_bucket=s3.Bucket.from_bucket_name(stack, "Artifacts", ARTIFACTS),
        image_repository=ecr.Repository.from_repository_arn(stack, "Repository", REPOSITORY),
        notification_key=kms.Key(stack, "OpsKey"), network=config.environments["dev"].network,
        **({} if without_dead_letters else {"schedule_dead_letters": sqs.Queue(stack, "ScheduleDeadLetters")}),
    )
    return _Built(stack, served)


def _direct_logical_id(*path: str) -> str:
    """The logical id of a resource at ``path`` in a stack where every construct of the path is built directly."""
    stack = Stack(App(outdir=bare_outdir()), "Direct", env=ENV)
    scope: Construct = stack
    for part in path[:-1]:
        scope = Construct(scope, part)
    return stack.get_logical_id(CfnResource(scope, path[-1], type="AWS::CloudFormation::WaitConditionHandle"))


MODES = ["realtime", "serverless", "async", "batch"]


@pytest.fixture(scope="module")
def built() -> dict[str, _Built]:
    """Model ``returns`` served in each mode (the defaults of each mode's block)."""
    return {mode: _build({"mode": mode}) for mode in MODES}


# ------------------------------------------------------------------ refusal
def test_a_multi_model_member_is_refused_it_is_served_by_its_shared_endpoint():
    with pytest.raises(ValueError, match=r"^serving mode 'multi_model' has no endpoint rollout$"):
        _build({"mode": "multi_model"}, multi_model_endpoints={"shared": {}})


# ------------------------------------------------------------------ role and access
def test_the_role_is_assumed_by_sagemaker_and_is_the_models_execution_role(built):
    made = built["realtime"]
    role_id = made.id_of(made.served.role)
    role = made.of_type("AWS::IAM::Role")[role_id]["Properties"]
    # Only SageMaker serving a resource of this account and Region (the source it documents for inference).
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
         "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:eu-west-1:123456789012:*"}}}]
    assert role["Description"] == "shop-dev: serving container of returns"
    assert made.one("AWS::SageMaker::Model")["Properties"]["ExecutionRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}


@pytest.mark.parametrize(
    ("mode", "data_prefix", "extra_sids"),
    [
        ("realtime", "capture", ["ReadRollbackAlarms"]),
        ("serverless", "capture", ["ReadRollbackAlarms"]),
        ("async", "async", ["AsyncNotifications", "NotificationKey", "ReadRollbackAlarms"]),
        ("batch", "batch", []),
    ],
)
def test_the_role_reads_its_models_artefacts_and_writes_only_its_own_inference_prefixes(built, mode, data_prefix, extra_sids):
    made = built[mode]
    statements = made.statements()
    captures_separately = mode == "async"  # a transform job writes no capture
    # A transform job reads its inputs and writes its outputs, each under its own prefix.
    data = ["BatchInput", "BatchInputList", "BatchOutput", "BatchOutputList"] if mode == "batch" else [
        "InferenceData", "InferenceDataList"]
    assert list(statements) == [
        "ReadModelArtifacts", "ReadModelArtifactsList", *data,
        *(["Capture", "CaptureList"] if captures_separately else []),
        "DataKey", "PullImageToken", "PullImage", "Logs", "Metrics", *extra_sids,
    ]
    assert statements["ReadModelArtifacts"]["Resource"] == f"arn:aws:s3:::{ARTIFACTS}/pipelines/returns/registered/*"
    assert statements["ReadModelArtifacts"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert statements["ReadModelArtifactsList"]["Condition"] == {"StringLike": {"s3:prefix": ["pipelines/returns/registered/*"]}}
    if mode == "batch":
        assert [statements[sid]["Resource"] for sid in ("BatchInput", "BatchOutput")] == [
            f"arn:aws:s3:::{INFERENCE}/batch/returns/input/*", f"arn:aws:s3:::{INFERENCE}/batch/returns/output/*"]
    else:
        assert statements["InferenceData"]["Resource"] == f"arn:aws:s3:::{INFERENCE}/{data_prefix}/returns/*"
    assert statements["DataKey"]["Resource"] == made.arn_of("Key")
    assert statements["PullImage"]["Resource"] == REPOSITORY


def _role(made: _Built) -> Role:
    """The model's execution role with every statement that applies to it, for the IAM evaluator."""
    iam = IamModel([StackTemplate("Serving", made.stack.stack_name, made.template.to_json())], account=ENV.account,
                   region=ENV.region)
    return iam.role(f"Serving/{made.id_of(made.served.role)}")


@pytest.mark.parametrize("mode", MODES)
def test_the_role_reads_the_sealed_artefact_it_serves_and_nothing_else_of_any_models_pipeline(built, mode):
    """GIVEN model ``returns`` served in ``mode`` WHEN its role's S3 reads are decided by the IAM evaluator
    THEN it may read (and list) its sealed artefacts, which SageMaker downloads as it (the ModelDataUrl the pipeline
    registers), but not its prepared training and validation splits (``work/``), its frozen test set, its reports or
    its unsealed training output, nor anything of another model's pipeline (trialQ finding 3: a serving container
    parses untrusted requests, and a serverless one is not network-isolated)."""
    role = _role(built[mode])
    sealed = sealed_key(sealed_prefix("returns"), "ab" * 32)
    assert allowed(role, "s3:GetObject", f"arn:aws:s3:::{ARTIFACTS}/{sealed}")
    assert allowed(role, "s3:ListBucket", f"arn:aws:s3:::{ARTIFACTS}", {"s3:prefix": sealed})
    unreadable = [f"{model_prefix(m)}{key}" for m in ("returns", "other") for key in (
        f"{WORK_SEGMENT}/exec-1/prepare/train/part-0.parquet", f"{WORK_SEGMENT}/exec-1/prepare/validation/part-0.parquet",
        "frozen-test/test.parquet", "exec-1/evaluation/evaluation.json", "exec-1/model/model.tar.gz")]
    unreadable.append(sealed_key(sealed_prefix("other"), "ab" * 32))
    for key in unreadable:
        for action in READ_OBJECT_ACTIONS:
            assert not allowed(role, action, f"arn:aws:s3:::{ARTIFACTS}/{key}"), (mode, action, key)
        assert not allowed(role, "s3:ListBucket", f"arn:aws:s3:::{ARTIFACTS}", {"s3:prefix": key}), (mode, key)
    assert not allowed(role, "s3:ListBucket", f"arn:aws:s3:::{ARTIFACTS}", {"s3:prefix": model_prefix("returns")})


@pytest.mark.parametrize("mode", MODES)
def test_captured_traffic_may_be_written_but_never_deleted_by_the_role(built, mode):
    """Issue #13: the drift monitor judges the model by its capture; the container that answered may not erase it."""
    statements = built[mode].statements()
    if mode == "batch":
        # A transform job writes no capture (the monitor reads its inputs beside their outputs): nothing to write there.
        assert "Capture" not in statements and not any("capture/" in json.dumps(v["Resource"]) for v in statements.values())
        return
    capture = statements["InferenceData"] if mode in ("realtime", "serverless") else statements["Capture"]
    assert capture["Resource"] == f"arn:aws:s3:::{INFERENCE}/capture/returns/*"
    assert capture["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    if mode == "async":
        # Its own requests and results it manages fully.
        assert "s3:DeleteObject" in statements["InferenceData"]["Action"]


def test_a_batch_models_role_reads_its_inputs_writes_its_outputs_and_deletes_neither(built):
    """GIVEN a batch model WHEN its execution role (the transform job's) is decided by the IAM evaluator THEN it may
    list and read the inputs under ``batch/<model>/input/`` and write (multipart too) the outputs under
    ``batch/<model>/output/``, but may delete neither, nor write an input: they are what the drift monitor pairs and
    judges the model by. Nothing of another model's batch prefix."""
    role = _role(built["batch"])
    bucket = f"arn:aws:s3:::{INFERENCE}"
    base = "batch/returns/"
    assert allowed(role, "s3:ListBucket", bucket, {"s3:prefix": f"{base}input/"})
    assert allowed(role, "s3:GetObject", f"{bucket}/{base}input/day=2026-12-06/part-0.jsonl")
    for action in ("s3:PutObject", "s3:AbortMultipartUpload"):
        assert allowed(role, action, f"{bucket}/{base}output/run-1/part-0.jsonl.out"), action
    for key in (f"{base}input/part-0.jsonl", f"{base}output/run-1/part-0.jsonl.out"):
        assert not allowed(role, "s3:DeleteObject", f"{bucket}/{key}"), key
        assert not allowed(role, "s3:DeleteObjectVersion", f"{bucket}/{key}"), key
    assert not allowed(role, "s3:PutObject", f"{bucket}/{base}input/part-0.jsonl")
    for other in ("batch/other/input/part-0.jsonl", "batch/other/output/run-1/part-0.jsonl.out", f"{base}elsewhere/x"):
        for action in ("s3:GetObject", "s3:PutObject"):
            assert not allowed(role, action, f"{bucket}/{other}"), (action, other)


@pytest.mark.parametrize("mode", MODES)
def test_the_role_writes_only_its_own_endpoints_logs_and_publishes_only_in_sagemakers_endpoint_namespace(built, mode):
    """GIVEN model ``returns`` served in ``mode`` WHEN its role's log and metric statements are read and decided THEN
    on an endpoint SageMaker may write the container's logs in ``/aws/sagemaker/Endpoints/shop-dev-returns`` only (not
    in ``shop-dev-returns-vip``'s group, nor a job's) and publish its instance metrics in ``/aws/sagemaker/Endpoints``
    only; a batch model's transform jobs in ``/aws/sagemaker/TransformJobs`` only. Neither in the training or processing
    namespaces, nor in ``/aws/sagemaker/*`` at large (trialM finding 1)."""
    made = built[mode]
    statements, role = made.statements(), _role(made)
    group = "/aws/sagemaker/TransformJobs" if mode == "batch" else f"/aws/sagemaker/Endpoints/{ENDPOINT}"
    namespace = "/aws/sagemaker/TransformJobs" if mode == "batch" else "/aws/sagemaker/Endpoints"
    arn = "arn:aws:logs:eu-west-1:123456789012:log-group:"
    assert statements["Logs"]["Resource"] == [f"{arn}{group}", f"{arn}{group}:*"]
    assert statements["Metrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": namespace}}
    assert allowed(role, "logs:PutLogEvents", f"{arn}{group}:log-stream:AllTraffic/i-0abc")
    assert allowed(role, "logs:CreateLogGroup", f"{arn}{group}")
    for other in (f"/aws/sagemaker/Endpoints/{ENDPOINT}-vip", "/aws/sagemaker/Endpoints/shop-prod-returns",
                  "/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs",
                  *(["/aws/sagemaker/TransformJobs"] if mode != "batch" else [f"/aws/sagemaker/Endpoints/{ENDPOINT}"])):
        assert not allowed(role, "logs:PutLogEvents", f"{arn}{other}:log-stream:x"), (mode, other)
        assert not allowed(role, "logs:CreateLogGroup", f"{arn}{other}"), (mode, other)
    for other in ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/Endpoints/data-metrics",
                  "/aws/sagemaker/Endpoints" if mode == "batch" else "/aws/sagemaker/TransformJobs"):
        assert not allowed(role, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": other}), (mode, other)
    assert allowed(role, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": namespace})


# ------------------------------------------------------------------ the model
def test_the_model_is_the_approved_package_version_with_its_digest_and_version_in_the_environment(built):
    made = built["realtime"]
    model = made.one("AWS::SageMaker::Model")
    (container,) = model["Properties"]["Containers"]
    assert container["ModelPackageName"] == {"Ref": "ReturnsModelPackageArn"}
    environment = container["Environment"]
    assert list(environment) == list(BASE_ENVIRONMENT)
    assert environment["SAGEMAKER_PROGRAM"] == "serve_entry.py"
    assert environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert environment["MLOPS_LOOP_MODEL_SHA256"] == {"Ref": "ReturnsModelPackageArnSha256"}
    # The serving code reports the version it serves: the last part of the approved version's ARN.
    assert evaluate(environment["MLOPS_LOOP_MODEL_VERSION"], {"ReturnsModelPackageArn": APPROVED}) == "7"
    # The role's access is in place before SageMaker checks it on model creation.
    assert model["DependsOn"] == [made.id_of(made.served.node.find_child("Access").managed_policy)]
    assert made.id_of(made.served.model) in made.of_type("AWS::SageMaker::Model")


@pytest.mark.parametrize("mode", MODES)
def test_only_a_batch_models_container_is_told_it_answers_a_refused_record_with_an_error_line(built, mode):
    """SageMaker tells a container nothing about running in a transform job: the batch Model says so (a refused record
    is then answered by an error line of its own and its mini-batch scored, docs/invocation-contract.md "Batch
    transform"); an endpoint's container answers whole or refuses whole."""
    environment = built[mode].one("AWS::SageMaker::Model")["Properties"]["Containers"][0]["Environment"]
    assert environment.get(BATCH_RECORD_ERRORS_ENV) == ("1" if mode == "batch" else None)


def test_a_network_served_on_inferentia2_must_serve_its_neuron_compiled_form_from_the_neuron_image():
    """GIVEN a network on ml.inf2 WHEN served THEN the container is told to serve only a torch-neuronx build (an
    uncompiled artefact does not load) and the role pulls the pinned Neuron inference image, not the XGBoost one."""
    made = _build({"mode": "realtime", "realtime": {"instance_type": "ml.inf2.xlarge"}}, framework="pytorch")
    (container,) = made.one("AWS::SageMaker::Model")["Properties"]["Containers"]
    assert list(container["Environment"]) == [*BASE_ENVIRONMENT, "MLOPS_LOOP_SERVE_COMPILED", "SAGEMAKER_MODEL_SERVER_WORKERS",
                                              "NEURON_RT_NUM_CORES"]
    assert container["Environment"]["MLOPS_LOOP_SERVE_COMPILED"] == "torch-neuronx"
    # ml.inf2.xlarge has two NeuronCores: two workers, one core each.
    assert (container["Environment"]["SAGEMAKER_MODEL_SERVER_WORKERS"], container["Environment"]["NEURON_RT_NUM_CORES"]) == ("2", "1")
    assert made.statements()["PullImage"]["Resource"] == "arn:aws:ecr:eu-west-1:763104351884:repository/pytorch-inference-neuronx"
    assert made.served.compiled and made.served.model_endpoint.parity_checked
    assert made.served.alarm_names == [f"{ENDPOINT}-rollout-errors", f"{ENDPOINT}-rollout-latency",
                                       f"{ENDPOINT}-rollout-client-errors", f"{ENDPOINT}-rollout-parity",
                                       f"{ENDPOINT}-idle-scale-in"]


def test_a_network_served_on_a_cpu_serves_its_numpy_form_from_the_xgboost_image():
    made = _build({"mode": "realtime"}, framework="pytorch")
    (container,) = made.one("AWS::SageMaker::Model")["Properties"]["Containers"]
    assert list(container["Environment"]) == list(BASE_ENVIRONMENT)
    assert made.statements()["PullImage"]["Resource"] == REPOSITORY
    assert not made.served.model_endpoint.parity_checked


@pytest.mark.parametrize(("mode", "isolated"), [("realtime", True), ("async", True), ("batch", True), ("serverless", False)])
def test_the_model_runs_network_isolated_except_on_serverless(built, mode, isolated):
    """Serverless endpoints do not support network isolation (and its serving code writes the capture to S3)."""
    assert built[mode].one("AWS::SageMaker::Model")["Properties"]["EnableNetworkIsolation"] is isolated


def test_on_serverless_the_serving_code_is_told_where_and_how_much_to_capture():
    made = _build({"mode": "serverless", "data_capture_percent": 30})
    environment = made.one("AWS::SageMaker::Model")["Properties"]["Containers"][0]["Environment"]
    assert {k: v for k, v in environment.items() if k not in BASE_ENVIRONMENT} == {
        "MLOPS_CAPTURE_S3_URI": f"s3://{INFERENCE}/capture/returns/",
        "MLOPS_CAPTURE_PERCENT": "30",
        "MLOPS_CAPTURE_KMS_KEY_ID": made.arn_of("Key"),
        "MLOPS_ENDPOINT_NAME": ENDPOINT,
        # The S3 client is made for the bucket's region: its regional endpoint, reachable through a gateway endpoint.
        "MLOPS_CAPTURE_REGION": ENV.region,
    }
    # What the Operations stack reads to watch its capture write failures (EndpointAlarms).
    assert made.served.self_captures is True


@pytest.mark.parametrize("serving", [{"mode": "serverless", "data_capture_percent": 0}, {"mode": "realtime"}, {"mode": "async"}],
                         ids=["serverless-without-capture", "realtime", "async"])
def test_otherwise_the_serving_code_writes_no_capture_of_its_own(serving):
    """Without capture nothing is written; on instance-backed endpoints SageMaker captures, not the serving code."""
    made = _build(serving)
    environment = made.one("AWS::SageMaker::Model")["Properties"]["Containers"][0]["Environment"]
    assert list(environment) == list(BASE_ENVIRONMENT)
    assert made.served.self_captures is False


# ------------------------------------------------------------------ how long a request may run
@pytest.mark.parametrize("mode", ["async", "batch"])
def test_a_declared_inference_time_is_written_as_the_serving_containers_request_timeout(mode):
    """Both serving images stop a request after 60 s unless SAGEMAKER_MODEL_SERVER_TIMEOUT says otherwise."""
    made = _build({"mode": mode, "inference_timeout_seconds": 180})
    environment = made.one("AWS::SageMaker::Model")["Properties"]["Containers"][0]["Environment"]
    assert {k: v for k, v in environment.items() if k not in BASE_ENVIRONMENT} == {
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "180", **({BATCH_RECORD_ERRORS_ENV: "1"} if mode == "batch" else {})}


@pytest.mark.parametrize("mode", MODES)
def test_the_default_inference_time_writes_nothing_the_containers_default_is_sixty_seconds(built, mode):
    # Nothing new on the Model: every CfnModel property is create-only, so a new variable would replace each Model.
    environment = built[mode].one("AWS::SageMaker::Model")["Properties"]["Containers"][0]["Environment"]
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT" not in environment


def test_a_batch_models_transform_job_waits_as_long_as_its_container_lets_a_request_run():
    made = _build({"mode": "batch", "inference_timeout_seconds": 900})
    request = scheduled_request(made.of_type("AWS::Scheduler::Schedule")[made.id_of(made.served.schedule)])
    assert request["ModelClientConfig"]["InvocationsTimeoutInSeconds"] == 900


# ------------------------------------------------------------------ conditions
@pytest.mark.parametrize("mode", MODES)
def test_everything_served_exists_only_once_a_version_is_approved(built, mode):
    """Only the roles, their policies and the async topics exist before the first approval: the deployer's policy
    passes the role (so it cannot be conditional) and the topics cost nothing idle."""
    own = built[mode].own_resources()
    assert {v["Condition"] for v in own.values() if "Condition" in v} == {CONDITION}
    unconditional = {v["Type"] for v in own.values() if "Condition" not in v}
    expected = {"AWS::IAM::Role", "AWS::IAM::ManagedPolicy"}
    assert unconditional == (expected | {"AWS::SNS::Topic", "AWS::SNS::TopicPolicy"} if mode == "async" else expected)
    conditional = sorted(v["Type"] for v in own.values() if "Condition" in v)
    if mode == "batch":
        assert conditional == ["AWS::SageMaker::Model", "AWS::Scheduler::Schedule"]
    else:
        assert {"AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"} <= set(conditional)


# ------------------------------------------------------------------ composition and attributes
@pytest.mark.parametrize("mode", ["realtime", "serverless", "async"])
def test_an_endpoint_mode_composes_a_model_endpoint_as_its_default_child(built, mode):
    made = built[mode]
    served = made.served
    endpoint = served.node.find_child("Default")
    assert isinstance(endpoint, ModelEndpoint) and served.model_endpoint is endpoint
    assert (served.endpoint_name, endpoint.endpoint_name) == (ENDPOINT, ENDPOINT)
    assert served.capture_uri == endpoint.capture_uri == f"s3://{INFERENCE}/capture/returns/"
    assert endpoint.model is served.model and endpoint.serving is served.serving and served.mode == mode
    assert served.endpoint is endpoint.endpoint and served.alarm_names is endpoint.alarm_names
    assert served.alarm_names[:2] == [f"{ENDPOINT}-rollout-errors", f"{ENDPOINT}-rollout-latency"]
    assert made.one("AWS::SageMaker::Endpoint")["Properties"]["EndpointName"] == ENDPOINT
    (variant,) = made.one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert variant["ModelName"] == {"Fn::GetAtt": [made.id_of(served.model), "ModelName"]}
    assert made.of_type("AWS::Scheduler::Schedule") == {} and not hasattr(served, "batch")


def test_a_batch_model_composes_a_batch_transform_as_its_default_child_and_has_no_endpoint(built):
    made = built["batch"]
    served = made.served
    batch = served.node.find_child("Default")
    assert isinstance(batch, BatchTransform) and served.batch is batch
    assert served.endpoint_name is None and not hasattr(served, "endpoint") and not hasattr(served, "alarm_names")
    assert served.schedule_name == batch.schedule_name == "shop-dev-returns-batch"
    assert served.scheduler_role is batch.scheduler_role and served.schedule is batch.schedule
    assert served.job_name_prefix == batch.job_name_prefix == job_name_stem("transform", PREFIX, "returns")
    assert served.capture_uri == f"s3://{INFERENCE}/capture/returns/"
    for cfn_type in ("AWS::SageMaker::Endpoint", "AWS::SageMaker::EndpointConfig", "AWS::CloudWatch::Alarm"):
        assert made.of_type(cfn_type) == {}, cfn_type
    # The transform job runs on the model (as its role: the scheduler passes no role) and writes no SageMaker capture
    # (the drift monitor reads its inputs beside their outputs), so the role may write nothing under capture/.
    policy = made.of_type("AWS::IAM::ManagedPolicy")[made.id_of(batch.node.find_child("SchedulerAccess").managed_policy)]
    assert "PassJobRole" not in [s["Sid"] for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    request = made.one("AWS::Scheduler::Schedule")["Properties"]["Target"]["Input"]["Fn::Join"][1]
    assert {"Fn::GetAtt": [made.id_of(served.model), "ModelName"]} in request
    assert not any("DataCaptureConfig" in part for part in request if isinstance(part, str))
    role_policy = made.of_type("AWS::IAM::ManagedPolicy")[made.id_of(served.node.find_child("Access").managed_policy)]
    writes = [r for st in role_policy["Properties"]["PolicyDocument"]["Statement"] if "s3:PutObject" in st["Action"]
              for r in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])]
    assert writes and not any("/capture/" in json.dumps(r) for r in writes), writes


def test_a_batch_model_dead_letters_into_the_queue_it_is_given_and_is_refused_without_one(built):
    """GIVEN a batch model WHEN served THEN its schedule puts runs it cannot start into the given queue; WHEN served
    without one THEN it is refused (a run that never starts would tell nobody)."""
    made = built["batch"]
    queue_id = made.id_of(made.stack.node.find_child("ScheduleDeadLetters"))
    target = made.one("AWS::Scheduler::Schedule")["Properties"]["Target"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    with pytest.raises(ValueError, match=r"^model 'returns': a batch schedule needs schedule_dead_letters \(runs it cannot "
                                         r"start must reach a dead-letter queue\)$"):
        _build({"mode": "batch"}, without_dead_letters=True)


@pytest.mark.parametrize(
    ("mode", "paths"),
    [
        ("realtime", [("Returns", "Endpoint"), ("Returns", "Config"), ("Returns", "RolloutErrors", "Resource"),
                      ("Returns", "ScalableTarget"), ("Returns", "InvocationsPerInstance")]),
        ("batch", [("Returns", "Schedule"), ("Returns", "SchedulerRole", "Resource")]),
    ],
)
def test_the_default_child_keeps_the_logical_ids_the_resources_had_when_built_directly(built, mode, paths):
    """A new logical id would replace the named endpoint (or schedule), and the create would collide with the old."""
    made = built[mode]
    ids = set(made.own_resources())
    for path in paths:
        assert _direct_logical_id(*path) in ids, path


# ------------------------------------------------------------------ the environment's VPC
@pytest.mark.parametrize("mode", ["realtime", "async", "batch"])
def test_with_a_network_the_model_runs_in_the_vpc_and_its_role_may_manage_the_interfaces(mode):
    """GIVEN the environment's network WHEN the model is served (a transform job runs as the model, so batch too) THEN
    the SageMaker Model has exactly those subnets and security groups, network isolation as without a VPC, and the
    execution role SageMaker's documented interface permissions."""
    built = _build({"mode": mode}, network=NETWORK)
    (model,) = built.of_type("AWS::SageMaker::Model").values()
    assert model["Properties"]["VpcConfig"] == vpc_config_of_network()
    assert model["Properties"]["EnableNetworkIsolation"] is True
    assert_sagemaker_eni_statements(built.statements(), "123456789012", "eu-west-1")


def test_without_a_network_no_model_has_a_vpc_and_no_role_interface_permissions(built):
    for served in built.values():
        (model,) = served.of_type("AWS::SageMaker::Model").values()
        assert "VpcConfig" not in model["Properties"]
        assert not vpc_statements_of(served.statements())


def test_a_serverless_model_in_a_vpc_is_refused_by_the_construct_too():
    """The config refuses it (field serving.mode); a construct built directly refuses it as well."""
    config = parse_config(returns_config(model_serving={"mode": "serverless"}), source="served model test config")
    stack = Stack(new_app(bare_outdir()), "Bare", env=ENV)
    with pytest.raises(ValueError, match=r"a serverless endpoint cannot run inside a VPC"):
        ServedModel(stack, "Returns", name_prefix=PREFIX, model=config.models["returns"],
                    serving=config.models["returns"].serving, package_arn=APPROVED, model_sha256="", condition=None,
                    key=kms.Key(stack, "Key"), inference_bucket=s3.Bucket.from_bucket_name(stack, "Inference", INFERENCE),
                    artifacts_bucket=s3.Bucket.from_bucket_name(stack, "Artifacts", ARTIFACTS),
                    image_repository=ecr.Repository.from_repository_arn(stack, "Repository", REPOSITORY),
                    notification_key=kms.Key(stack, "OpsKey"), network=network_config())

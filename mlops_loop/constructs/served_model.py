"""One model's serving resources, created only once a version has been approved for this environment."""

from __future__ import annotations

from typing import Optional, Sequence, cast

from aws_cdk import CfnCondition, CfnResource, Fn
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from pipeline_code.core import media_types
from pipeline_code.core.compiled import NEURON_COMPILER, SERVE_COMPILED_ENV
from pipeline_code.core.contract import (
    TRAFFIC_INPUT,
    TRAFFIC_OUTPUT,
    BATCH_RECORD_ERRORS_ENV,
    CAPTURE_ENDPOINT_ENV,
    CAPTURE_KMS_KEY_ENV,
    CAPTURE_PERCENT_ENV,
    CAPTURE_REGION_ENV,
    CAPTURE_URI_ENV,
    MODEL_VERSION_ENV,
    endpoint_name,
    inference_prefix,
)
from pipeline_code.core.integrity import MODEL_SHA256_ENV, sealed_prefix

from ..config.instance_types import INSTANCE_TYPES
from ..config.model import ModelConfig
from ..config.network import NetworkConfig
from ..config.serving import (CONTAINER_DEFAULT_TIMEOUT_SECONDS, CONTAINER_TIMEOUT_ENV, ServingConfig,
                              compiled_for_inferentia2)
from ..training.sdk_offline import neuron_inference_image_uri, repository_arn
from .access_policy import READ_OBJECT_ACTIONS, AccessPolicy
from .batch_transform import BatchTransform
from .cdk_reads import environment_of, read_once
from .model_endpoint import ModelEndpoint
from .network import allow_sagemaker_network_interfaces, model_vpc_config
from .service_trust import sagemaker_principal

# Where the model's own serving code lives inside model.tar.gz (written there by the training job),
# so no code is downloaded at start-up and network isolation can stay on.
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "serve_entry.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
}
# What the serving code accepts and answers (docs/invocation-contract.md).
SERVING_CONTENT_TYPES = media_types.CONTENT_TYPES


class ServedModel(Construct):
    """One model's serving: its execution role, the approved package version as a SageMaker Model, and
    either a :class:`ModelEndpoint` (real-time, serverless, async) or a :class:`BatchTransform` (batch).

    Every resource that serves or costs carries ``condition`` (the model's package-ARN parameter is not
    empty); the execution role, its policy and an async endpoint's topics exist from the start (the serving
    deployer's policy names the role; idle topics cost nothing). So a stack deploys with nothing served until
    the first approval, and an approval deploys by changing that one
    parameter: each new version creates a new Model, and the endpoint is updated blue/green (a rollback
    fails the CloudFormation update, which rolls the parameter back to the previous version), or the
    next scheduled transform job uses it. The role reads only this model's sealed artefacts
    (``pipelines/<model>/registered/``: not its training data, test set or reports) and writes only
    its own inference prefixes; captured traffic, and a batch model's transform inputs and outputs, it may write (inputs:
    only read) but never delete. On serverless, where
    SageMaker offers no data capture, the serving code writes the same records itself (environment below).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        model: ModelConfig,
        serving: ServingConfig,
        package_arn: str,
        model_sha256: str,
        condition: CfnCondition,
        key: kms.IKey,
        inference_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        image_repository: ecr.IRepository,
        notification_key: kms.IKey,
        network: Optional[NetworkConfig] = None,
        schedule_dead_letters: Optional[sqs.IQueue] = None,
        job_tags: Sequence[tuple[str, str]] = (),
    ) -> None:
        """``network`` (default None: AWS-managed networking): the model's containers - on the endpoint or in the
        transform jobs, which run as this model - run in these subnets and security groups; ``schedule_dead_letters``:
        where a batch model's schedule puts runs it could not start (required for batch, unused otherwise);
        ``job_tags`` (default none): the environment's cost-allocation tags, which a batch model's transform jobs carry."""
        super().__init__(scope, construct_id)
        if network is not None and serving.mode == "serverless":
            # The config refuses this combination (config.cross_checks.network_problems); a construct built directly must too.
            raise ValueError(f"model {model.name!r}: a serverless endpoint cannot run inside a VPC (no VpcConfig); serve it "
                             "with mode 'realtime' or 'async', or build it with network=None")
        self._condition = condition
        self.serving = serving
        self.mode = serving.mode
        # The serving code captures requests itself (SageMaker's data capture is not offered for serverless): it also
        # publishes each write it could not make (CaptureWriteFailures, which EndpointAlarms watches).
        self.self_captures = self.mode == "serverless" and serving.data_capture_percent > 0
        self.model_config = model
        self.model_name = served_model_name = model.name
        self.endpoint_name: Optional[str] = None if self.mode == "batch" else endpoint_name(name_prefix, served_model_name)
        bucket = inference_bucket
        self.capture_uri = f"s3://{read_once(bucket, 'bucket_name')}/{inference_prefix(served_model_name, 'capture')}"

        # --- the model's execution role: read its artefacts, pull the image, write capture/results.
        self.role = iam.Role(
            self,
            "Role",
            # Endpoints (real-time, serverless, asynchronous) and batch transform jobs: both documented sources.
            assumed_by=sagemaker_principal(self, uses=("transform-job",) if self.mode == "batch" else ("inference",)),
            description=f"{name_prefix}: serving container of {served_model_name}",
        )
        access = AccessPolicy(self, "Access", role=self.role, description=f"{name_prefix} {served_model_name} serving")
        # SageMaker downloads, as this role, the version's ModelDataUrl: its sealed artefact (the pipeline registers
        # nothing else, the deploy handler deploys nothing else), which also holds the serving code. Nothing else under
        # pipelines/<model>/ (the prepared splits in work/, the frozen test set, the reports: customer rows with labels):
        # the container parses untrusted requests, and a serverless one is not network-isolated.
        sealed = sealed_prefix(served_model_name)
        artifacts = read_once(artifacts_bucket, "bucket_name")
        access.allow("ReadModelArtifacts", list(READ_OBJECT_ACTIONS), [access.s3_arn(artifacts, f"{sealed}*")],
                     wildcard_reason=f"Sealed artefacts are content-addressed ({sealed}<sha256>/model.tar.gz); which version "
                     "serves is decided at approval, after synth. The role reads nothing else of the model's pipeline.")
        access.allow("ReadModelArtifactsList", ["s3:ListBucket"], [access.s3_arn(artifacts)],
                     conditions={"StringLike": {"s3:prefix": [f"{sealed}*"]}})
        # Captured traffic is what the drift monitor judges the model by: the role that writes it may
        # not delete it (issue #13), so a serving container cannot erase what it answered.
        if self.mode == "batch":
            # A transform job reads the inputs and writes the outputs the drift monitor pairs and judges the model by:
            # it may change neither what was scored nor what it answered (no delete, no write to input/).
            batch_prefix = inference_prefix(served_model_name, "batch")
            access.allow_prefix("BatchInput", bucket, f"{batch_prefix}{TRAFFIC_INPUT}")
            access.allow_prefix("BatchOutput", bucket, f"{batch_prefix}{TRAFFIC_OUTPUT}", write=True, delete=False)
        else:
            access.allow_prefix("InferenceData", bucket, inference_prefix(served_model_name, self._data_prefix()),
                                write=True, delete=self._data_prefix() != "capture")
        if self.mode == "async":
            # Async endpoints also write their data capture, as this role (transform jobs capture nothing: the drift
            # monitor reads their inputs beside their outputs).
            access.allow_prefix("Capture", bucket, inference_prefix(served_model_name, "capture"),
                                write=True, delete=False)
        access.allow_key("DataKey", key)
        # A network compiled for Inferentia2 is served in AWS's Neuron inference image (its model package says so).
        self.compiled = compiled_for_inferentia2(serving)
        if self.compiled:
            region = environment_of(self).region
            image_repository = ecr.Repository.from_repository_arn(
                self, "NeuronImageRepository", repository_arn(neuron_inference_image_uri(region), region))
        # Its endpoint's log group and SageMaker's endpoint namespace; a batch model's, its transform jobs'.
        access.allow_serving_runtime(repository=image_repository, endpoint_name=self.endpoint_name)
        if network is not None:
            allow_sagemaker_network_interfaces(access, network)

        # --- the model: the approved package version, plus how to run our serving code, which refuses
        # to load a model whose digest is not the registered one and reports the version it serves.
        version = Fn.select(2, Fn.split("/", package_arn))  # the registry version: the ARN's last part
        environment = {
            **SERVING_ENVIRONMENT,
            MODEL_SHA256_ENV: model_sha256,
            MODEL_VERSION_ENV: version,
        }
        if self.compiled:
            # The container must serve the Neuron-compiled form, and refuse an artefact without one. One serving worker
            # per NeuronCore, each taking one core (NEURON_RT_NUM_CORES defaults to "all": the first worker would take
            # every core and the others would fail to load; Neuron Runtime configuration guide).
            environment[SERVE_COMPILED_ENV] = NEURON_COMPILER
            environment["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(INSTANCE_TYPES[serving.realtime.instance_type].neuron_cores)
            environment["NEURON_RT_NUM_CORES"] = "1"
        if serving.mode != "multi_model" and serving.inference_timeout_seconds != CONTAINER_DEFAULT_TIMEOUT_SECONDS:
            # How long the container lets one request run (both images read it; docs/serving.md "How long a request may
            # run"). Left out at the containers' own default: every Model property is create-only.
            environment[CONTAINER_TIMEOUT_ENV] = str(serving.inference_timeout_seconds)
        if self.mode == "batch":
            # SageMaker tells a container nothing about running in a transform job: a record the contract refuses is
            # answered by an error line of its own and the rest of its mini-batch scored (one bad record must not fail
            # the night's job); endpoints answer whole or refuse whole (docs/invocation-contract.md "Batch transform").
            environment[BATCH_RECORD_ERRORS_ENV] = "1"
        if self.self_captures:
            environment.update(
                {
                    CAPTURE_URI_ENV: self.capture_uri,
                    CAPTURE_PERCENT_ENV: str(serving.data_capture_percent),
                    CAPTURE_KMS_KEY_ENV: read_once(key, "key_arn"),
                    CAPTURE_ENDPOINT_ENV: self.endpoint_name or "",
                    # The bucket's region for the container's S3 client: regional endpoint, reachable through the VPC's
                    # S3 gateway endpoint (nothing documented sets AWS_REGION in a hosting container).
                    CAPTURE_REGION_ENV: environment_of(self).region,
                }
            )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=read_once(self.role, "role_arn"),
            containers=[
                sagemaker.CfnModel.ContainerDefinitionProperty(
                    model_package_name=package_arn, environment=environment
                )
            ],
            # Serverless endpoints do not support network isolation (and serverless capture needs S3).
            enable_network_isolation=self.mode != "serverless",
            vpc_config=model_vpc_config(network),
        )
        self._conditional(self.model)
        self.model.node.add_dependency(access)

        # The endpoint or the schedule is this construct's default child, so its resources keep the
        # logical ids they had when ServedModel built them itself (a new id would replace a named endpoint).
        if self.mode == "batch":
            if schedule_dead_letters is None:
                raise ValueError(f"model {served_model_name!r}: a batch schedule needs schedule_dead_letters "
                                 "(runs it cannot start must reach a dead-letter queue)")
            self.batch = BatchTransform(
                self,
                "Default",
                name_prefix=name_prefix,
                model=self.model,
                model_name=served_model_name,
                model_version=version,
                batch=serving.batch,
                inference_timeout_seconds=serving.inference_timeout_seconds,
                inference_bucket=bucket,
                key=key,
                condition=condition,
                dead_letter_queue=schedule_dead_letters,
                team=model.owner.team if model.owner else None,
                tags=job_tags,
            )
            self.job_name_prefix = self.batch.job_name_prefix
            self.schedule_name = self.batch.schedule_name
            self.scheduler_role = self.batch.scheduler_role
            self.schedule = self.batch.schedule
            return
        self.model_endpoint = ModelEndpoint(
            self,
            "Default",
            endpoint_name=cast(str, self.endpoint_name),  # set in every mode but batch
            model=self.model,
            model_name=served_model_name,
            serving=serving,
            capture_uri=self.capture_uri,
            inference_bucket=bucket,
            key=key,
            notification_key=notification_key,
            access=access,
            condition=condition,
        )
        self.endpoint = self.model_endpoint.endpoint
        self.alarm_names = self.model_endpoint.alarm_names

    def _data_prefix(self) -> str:
        return {"batch": "batch", "async": "async"}.get(self.mode, "capture")

    def _conditional(self, resource: CfnResource) -> None:
        resource.cfn_options.condition = self._condition

"""The training pipeline of one model: a SageMaker Pipeline generated at synth, and its role."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

import jsii
from aws_cdk import IStableStringProducer, Lazy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_code import sagemaker_entry
from pipeline_code.core.contract import MODEL_TAG, TEAM_TAG
from pipeline_code.core.problem import quality_alarm_key
from pipeline_code.core.hyperparameters import training_arguments
from pipeline_code.core.integrity import frozen_test_prefix, model_prefix, work_prefix

from ..config.instance_offers import definition_instance_types, load_offers
from ..config.gate import GateConfig
from ..config.model import ModelConfig
from ..config.network import NetworkConfig
from ..config.training import TrainingConfig
from ..naming import feature_snapshots_prefix
from ..training import PipelineSpec, pipeline_definition_later, sdk_helper
from ..training.names import XGBOOST_FRAMEWORK, XGBOOST_VERSION
from ..training.sdk_offline import image_uri, neuron_inference_image_uri, repository_arn, training_image_uri
from .arns import format_arn, s3_url
from .cdk_reads import environment_of, once_per, read_once, service_principal, stack_of
from .served_model import SERVING_CONTENT_TYPES, SERVING_ENVIRONMENT
from .access_policy import PROCESSING_JOBS, TRAINING_JOBS, AccessPolicy, owned_by, owner_of, sagemaker_log_groups
from .job_code import JobCode, model_spec_json
from .model_registry import ModelRegistry
from .network import allow_sagemaker_network_interfaces
from .service_trust import sagemaker_principal

# The job-code entry script, as the job code bundle names it.
ENTRY_SCRIPT = Path(sagemaker_entry.__file__).name


class TrainingPipeline(Construct):
    """``prepare → train (spot, checkpointed) → evaluate vs champion → gate → baseline → register``.

    The definition is generated offline with the SageMaker SDK (:mod:`mlops_loop.training.definition`)
    and embedded in an ``AWS::SageMaker::Pipeline``, so every change to steps, code or thresholds is
    a reviewable template diff. Jobs run the stock XGBoost image with the job code delivered as S3
    assets. The pipeline role reads this model's dataset prefixes, owns
    ``s3://<artifacts>/pipelines/<model>/``, may register versions of the model's group but never
    approve them (see :meth:`ModelRegistry.allow_register`). Defaults: versions are registered
    ``PendingManualApproval``; ``training.auto_approve`` registers them ``Approved``, except a version that would
    answer the serving one's callers in another shape (the evaluate step's ``registration``), which stays pending.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline_name: str,
        model: ModelConfig,
        training: TrainingConfig,
        gate: GateConfig,
        registry: ModelRegistry,
        key: kms.IKey,
        features_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        code: JobCode,
        code_version: str,
        compile_for_inferentia2: bool = False,
        network: Optional[NetworkConfig] = None,
        tags: Sequence[Tuple[str, str]] = (),
    ) -> None:
        """``compile_for_inferentia2`` (default False): the environment serves the model on ml.inf2, so the pipeline
        compiles it after training (see :class:`~mlops_loop.training.PipelineSpec`). ``network`` (default None:
        AWS-managed networking): every job of the pipeline runs in these subnets and security groups, and the role
        may manage their network interfaces. ``tags`` (default none: untagged jobs): (key, value) pairs every job of
        the pipeline is created with (the stage's cost-allocation tags: CloudFormation tags the pipeline, never the
        jobs its executions start); the role may tag its jobs (TagPipelineJobs), and their project and environment
        tags hold what the role reaches by name patterns every environment's jobs share to this environment's
        (``_allow_jobs``; tags without them are refused)."""
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        region = environment_of(stack).region
        features_prefix = feature_snapshots_prefix(model.dataset)
        labels_prefix = f"{model.dataset}/"
        artifacts_prefix = model_prefix(model.name)

        self.role = iam.Role(
            self,
            "Role",
            # The pipeline's executions and its training and processing jobs are uses SageMaker documents the
            # aws:SourceArn of; a hyperparameter tuning job is not (service_trust.SAGEMAKER_CONFUSED_DEPUTY_DOC),
            # so with tuning on the role keeps an unconditioned trust rather than risk SageMaker being refused.
            assumed_by=(service_principal("sagemaker.amazonaws.com") if training.hyperparameter_tuning
                        else sagemaker_principal(self, uses=("pipeline", "training-job", "processing-job"))),
            description=f"{pipeline_name}: SageMaker Pipeline and the jobs it runs",
        )
        access = AccessPolicy(self, "Access", role=self.role, description=f"{pipeline_name} pipeline")
        access.allow_prefix("ReadFeatures", features_bucket, features_prefix)
        access.allow_prefix("ReadLabels", curated_bucket, labels_prefix)
        # The pipeline's jobs add objects (SageMaker uploads their outputs) and never delete one: the reports a
        # registered version points at and the frozen test set are evidence the bucket keeps (DataLake). Only its
        # working data may be deleted: SageMaker syncs the spot checkpoint directory, from which train removes all
        # but the newest checkpoints (trainers.prune_checkpoints).
        access.allow_prefix("Artifacts", artifacts_bucket, artifacts_prefix, write=True, delete=False)
        access.allow("DeleteWorkingData", ["s3:DeleteObject"], [access.s3_arn(read_once(artifacts_bucket, "bucket_name"),
                                                                               f"{work_prefix(model.name)}*")],
                     wildcard_reason="Only the run's working data (work/), which expires; keys are made at run time.")
        access.allow_key("DataKey", key)
        # The pipeline creates its steps' jobs as this role, their volumes encrypted with the key (VolumeKmsKeyId).
        access.allow_volume_grants("VolumeGrants", key)
        code.grant_read(access, listing=True)
        # The types the definition's parameters default to, and the only ones its jobs may run on: an execution's
        # override of TrainingInstanceType or ProcessingInstanceType to anything else is refused by IAM when the step
        # creates its job (issue: FinOps - 10 x ml.p5.48xlarge bounded by quotas only).
        self._allow_jobs(access, stack, self.role, training=(training.instance_type_of(model.name),),
                         processing=(training.processing_instance_type,), owner=owner_of(tags) if tags else None)
        self._allow_training_image(access, stack, model, training.instance_type_of(model.name))
        if compile_for_inferentia2:
            # The Compile step runs in AWS's Neuron inference image, another repository again.
            access.allow("PullCompileImage", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                         [repository_arn(neuron_inference_image_uri(region), region)])
        registry.allow_register(access, model.name, auto_approve=training.auto_approve)
        if network is not None:
            allow_sagemaker_network_interfaces(access, network)
        self.access = access

        entry = code.script(ENTRY_SCRIPT)
        spec_asset = code.grant_model_spec(access, model)
        spec = PipelineSpec(
            pipeline_name=pipeline_name,
            region=region,
            account=environment_of(stack).account,
            role_arn=read_once(self.role, "role_arn"),
            artifacts_bucket=read_once(artifacts_bucket, "bucket_name"),
            kms_key_arn=read_once(key, "key_arn"),
            model_name=model.name,
            model_spec_json=model_spec_json(model),
            model_spec_s3_uri=read_once(spec_asset, "s3_object_url"),
            model_package_group_name=registry.group_names[model.name],
            feature_data_s3_uri=s3_url(read_once(features_bucket, "bucket_name"), features_prefix),
            labels_s3_uri=s3_url(read_once(curated_bucket, "bucket_name"), labels_prefix),
            frozen_test_s3_uri=s3_url(read_once(artifacts_bucket, "bucket_name"), frozen_test_prefix(model.name)),
            code_entry_s3_uri=read_once(entry, "s3_object_url"),
            code_library_s3_uri=read_once(code.library, "s3_object_url"),
            code_version=code_version,
            code_asset_hash=code.library.asset_hash,
            code_sha256=code.library_sha256,
            code_entry_sha256=code.script_sha256(ENTRY_SCRIPT),
            gate=gate.thresholds(),
            default_approval_status="Approved" if training.auto_approve else "PendingManualApproval",
            processing_instance_type=training.processing_instance_type,
            training_instance_type=training.instance_type_of(model.name),
            training_instance_count=training.instance_count,
            use_spot=training.use_spot,
            max_runtime_seconds=training.max_runtime_minutes * 60,
            enable_tuning=training.hyperparameter_tuning,
            tuning_ranges=model.tuning_ranges_searched(),
            tuning_max_jobs=training.tuning.max_jobs,
            tuning_max_parallel_jobs=training.tuning.max_parallel_jobs,
            tuning_strategy=training.tuning.strategy,
            tuning_early_stopping=training.tuning.early_stopping,
            test_set_refreeze=training.test_set_refreeze,
            framework=model.framework,
            compile_for_inferentia2=compile_for_inferentia2,
            hyperparameters=training_arguments(model.framework, model.hyperparameters),
            # The serving code travels inside model.tar.gz (written by the training job), so the
            # registered container needs only to be told where it is.
            inference_environment=tuple(sorted(SERVING_ENVIRONMENT.items())),
            content_types=SERVING_CONTENT_TYPES,
            response_types=SERVING_CONTENT_TYPES,
            subnet_ids=network.subnet_ids if network is not None else (),
            security_group_ids=network.security_group_ids if network is not None else (),
            # The environment's tags, the model's and its team's: its jobs bill per model (contract.MODEL_TAG) and team.
            tags=(*tags, (MODEL_TAG, model.name), *(((TEAM_TAG, model.owner.team),) if model.owner else ())),
        )
        self._pipeline_name, self._region = pipeline_name, spec.region
        self._later, self._definition = pipeline_definition_later(spec), None
        if not sdk_helper.running():
            self.wait_for_definition()  # known already: checked where the construct is made
        self.problem_type = model.problem_type
        # The monitor key the model's retrain-on-quality alarm watches (its type and primary metric decide).
        self.quality_key = quality_alarm_key(model.problem_type, model.primary_metric)
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=f"Train, evaluate against the champion, gate and register {model.name}",
            role_arn=read_once(self.role, "role_arn"),
            # Typed Any in the Python bindings: a PascalCase dict is emitted verbatim.
            pipeline_definition={"PipelineDefinitionBody": Lazy.string(_DefinitionBody(self))},
        )
        self.pipeline.node.add_dependency(access)

    @property
    def definition(self) -> str:
        """The pipeline definition JSON (see :meth:`wait_for_definition`)."""
        return self.wait_for_definition()

    def wait_for_definition(self) -> str:
        """The pipeline definition JSON, checked against the region's offers (:func:`_check_offered`) when first
        asked: in the constructor, unless the SDK helper is generating it; then ``build_app`` asks, before synth.

        Raises:
            ValueError: a step would run on an instance type the region does not offer for its use.
        """
        if self._definition is None:
            definition = self._later()
            _check_offered(self._pipeline_name, definition, self._region)
            self._definition = definition
        return self._definition

    @staticmethod
    def _allow_jobs(access: AccessPolicy, stack: Stack, role: iam.IRole, *, training: Sequence[str],
                    processing: Sequence[str], owner: Optional[Mapping[str, str]]) -> None:
        """Run the pipeline's jobs: training and tuning jobs on the ``training`` instance types only, processing jobs
        (prepare, evaluate, baseline, model card, compile) on the ``processing`` ones only. With an ``owner`` (the
        environment's project and environment tags, which every job of the pipeline is created with), the jobs,
        experiments and lineage entities the role describes, stops, tags or links may not be another project's or
        environment's (:func:`~.access_policy.owned_by`); without (a pipeline whose jobs are untagged), any the
        names reach."""
        owned = owned_by(owner) if owner else None
        tagged = owned_by(owner, tagging=True) if owner else None

        def arns(resource: str) -> str:
            # SageMaker Pipelines names every job it starts "pipelines-<execution>-<step>-...".
            return format_arn(stack, service="sagemaker", resource=resource, resource_name="pipelines-*")

        reason = ("SageMaker Pipelines generates the job names per execution; access is limited to jobs whose names "
                  "carry the pipelines- prefix.")
        # A job the role creates may not be tagged as another environment's (its cost would be billed to them).
        access.allow_instance_types("StartTrainingJobs",
                                    ["sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob"],
                                    [arns("training-job"), arns("hyper-parameter-tuning-job")], training,
                                    conditions=tagged, wildcard_reason=reason)
        access.allow_instance_types("StartProcessingJobs", ["sagemaker:CreateProcessingJob"], [arns("processing-job")],
                                    processing, conditions=tagged, wildcard_reason=reason)
        jobs = [arns("processing-job"), arns("training-job"), arns("hyper-parameter-tuning-job")]
        # SageMaker Pipelines describes (and on a stop, stops) the jobs it starts as this role; the role is also the
        # jobs' own, so job code may make these calls too: every job of every environment and project in the account
        # and region is named pipelines-*, and only the owner tags keep the role to its own environment's.
        access.allow(
            "RunPipelineJobs",
            [
                "sagemaker:DescribeProcessingJob",
                "sagemaker:StopProcessingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:DescribeHyperParameterTuningJob",
                "sagemaker:StopHyperParameterTuningJob",
                "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
            ],
            jobs,
            conditions=owned,
            wildcard_reason=reason,
        )
        # A Create*Job request that carries Tags is authorized as AddTags on the new job too; the tags it may set and
        # the jobs it may tag are the environment's own.
        access.allow("TagPipelineJobs", ["sagemaker:AddTags"], jobs, conditions=tagged, wildcard_reason=reason)
        experiments = [
            format_arn(stack, service="sagemaker", resource="experiment", resource_name="*"),
            format_arn(stack, service="sagemaker", resource="experiment-trial", resource_name="*"),
            format_arn(stack, service="sagemaker", resource="experiment-trial-component", resource_name="*"),
        ]
        lineage = [
            format_arn(stack, service="sagemaker", resource="artifact", resource_name="*"),
            format_arn(stack, service="sagemaker", resource="context", resource_name="*"),
            format_arn(stack, service="sagemaker", resource="action", resource_name="*"),
        ]
        experiments_reason = ("Experiment, trial and lineage entity names are created per pipeline execution by "
                              "SageMaker; they are only known at run time.")
        # SageMaker Pipelines records each execution as an experiment run group (PipelineExperimentConfig). The
        # entities SageMaker creates carry none of our tags, so the owner condition keeps the role off another owner's
        # tagged entities only: an untagged one (a model package's lineage artifact) stays within AddAssociation's
        # reach (docs/reviewing-deploying-auditing.md: "Environments and projects sharing an account").
        access.allow(
            "StartExperiments",
            ["sagemaker:CreateExperiment", "sagemaker:CreateTrial", "sagemaker:CreateTrialComponent"],
            experiments,
            conditions=tagged,
            wildcard_reason=experiments_reason,
        )
        access.allow(
            "TrackExperiments",
            [
                "sagemaker:DescribeExperiment",
                "sagemaker:DescribeTrial",
                "sagemaker:DescribeTrialComponent",
                "sagemaker:UpdateTrialComponent",
                "sagemaker:AssociateTrialComponent",
                "sagemaker:AddAssociation",
            ],
            experiments + lineage,
            conditions=owned,
            wildcard_reason=experiments_reason,
        )
        # The pipeline runs training (and tuning's training) jobs and processing jobs: SageMaker writes their logs and
        # publishes their instance and training metrics as this role, in those two job kinds' groups and namespaces
        # only. Not /aws/sagemaker/Endpoints: job code could otherwise publish any endpoint's CPU and memory points.
        access.allow_metrics("JobMetrics", [TRAINING_JOBS, PROCESSING_JOBS],
                             limited_to="SageMaker's training and processing job metrics")
        access.allow_container_runtime(repository=xgboost_repository(access),
                                       log_groups=sagemaker_log_groups(TRAINING_JOBS, PROCESSING_JOBS))
        access.allow_pass_role("PassOwnRole", read_once(role, "role_arn"), "sagemaker.amazonaws.com")

    @staticmethod
    def _allow_training_image(access: AccessPolicy, stack: Stack, model: ModelConfig, instance_type: str) -> None:
        """A network trains in a PyTorch image (another repository than the XGBoost image every other job runs)."""
        if model.framework == XGBOOST_FRAMEWORK:
            return
        region = environment_of(stack).region
        uri = training_image_uri(model.framework, region, instance_type)
        access.allow("PullTrainingImage", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                     [repository_arn(uri, region)])


def xgboost_image_uri(region: str) -> str:
    """SageMaker's stock XGBoost image in ``region`` (offline lookup in the SDK's tables, cached)."""
    return image_uri(XGBOOST_FRAMEWORK, region, XGBOOST_VERSION)


def xgboost_repository(scope: Construct) -> ecr.IRepository:
    """The ECR repository of SageMaker's stock XGBoost image in the scope's region, as ``XgboostImageRepository`` at the
    root of the scope's stack (a reference: no resource is created). Made once per stack and shared by every role there
    that pulls the image: one construct and one read of its ARN per stack, not per role."""
    stack = stack_of(scope)
    return once_per(stack, xgboost_repository, lambda: ecr.Repository.from_repository_arn(
        stack, "XgboostImageRepository", xgboost_repository_arn(environment_of(stack).region)))


def xgboost_repository_arn(region: str) -> str:
    """The ECR repository of SageMaker's stock XGBoost image in ``region``."""
    return repository_arn(xgboost_image_uri(region), region)


@jsii.implements(IStableStringProducer)
class _DefinitionBody:
    """A pipeline's definition, given to the template when it is made (the SDK helper may still be generating it
    while the constructs are built)."""

    def __init__(self, pipeline: TrainingPipeline) -> None:
        self._pipeline = pipeline

    def produce(self) -> str:
        return self._pipeline.wait_for_definition()


def _check_offered(pipeline_name: str, definition: str, region: str) -> None:
    """Fail synth when the definition would train or process on a type ``region`` does not offer for that use
    (:mod:`..config.instance_offers`; a region its table does not hold passes).

    Today every step takes its type from a parameter whose default is a config field the config check already
    judged, so this is a backstop: it holds for a step that someday sets a type of its own."""
    offers = load_offers().get(region)
    if offers is None:
        return
    problems = [f"{where}: {problem}" for where, use, instance_type in definition_instance_types(definition)
                if (problem := offers.problem(use, instance_type))]
    if problems:
        raise ValueError(f"pipeline {pipeline_name}: " + "; ".join(problems))

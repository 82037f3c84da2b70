"""A multi-model endpoint: many small models on one shared fleet, each switched to a new version by approval."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Optional, Sequence

from aws_cdk import CfnCondition, CfnOutput, Fn
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from pipeline_code.core.contract import (
    CAPTURE_ENDPOINT_ENV,
    CAPTURE_KMS_KEY_ENV,
    CAPTURE_PERCENT_ENV,
    CAPTURE_REGION_ENV,
    CAPTURE_URI_ENV,
    MODEL_PLACEHOLDER,
    VARIANT,
    inference_prefix,
    multi_model_endpoint_name,
    pascal,
    staging_prefix,
    target_model_parameter_name,
)

from ..config.instance_types import INSTANCE_TYPES
from ..config.model import ModelConfig
from ..config.network import NetworkConfig
from ..config.serving import MultiModelEndpointConfig, ServingConfig
from ..packaging import MME_BOOTSTRAP, single_file_tarball
from ..nag import acknowledge
from ..naming import RESOURCE_METADATA_KEY
from .access_policy import AccessPolicy
from .arns import s3_arn
from .cdk_reads import environment_of, read_once, stack_of
from .endpoint_fleet import (
    allow_reading_rollback_alarms,
    blue_green,
    invocations_scaling,
    rollback_alarm_names,
    rollback_alarms,
)
from .generated_asset import generated_asset
from .network import allow_sagemaker_network_interfaces, model_vpc_config
from .service_trust import sagemaker_principal

# The bootstrap the container installs at start-up (SAGEMAKER_SUBMIT_DIRECTORY): standard library
# only; it imports each model's own serving code from that model's directory (see the file).
BOOTSTRAP_PROGRAM = MME_BOOTSTRAP.name
BOOTSTRAP_ASSET_ID = "MultiModelServingBootstrap"


@dataclass(frozen=True)
class MultiModelMember:
    """One model served by a multi-model endpoint: its config, the stack parameter holding its approved
    version (``package_arn``) and the condition that the parameter is set."""

    model: ModelConfig
    serving: ServingConfig
    package_arn: str
    condition: CfnCondition


class MultiModelEndpoint(Construct):
    """One SageMaker multi-model endpoint shared by ``members``, created with the first approval of any of them.

    The endpoint's model has ``Mode: MultiModel`` and loads artefacts on demand from
    ``s3://<artifacts>/mme/<endpoint>/``; clients name one with ``TargetModel``. A model version is
    never overwritten in place (the endpoint caches models by key): the deploy handler copies the
    approved ``model.tar.gz`` to ``<model>/v<N>.tar.gz``, smoke-tests that key on the live endpoint
    (no client uses it yet), and only then sets the member's version parameter on this stack. That
    update changes one resource: the SSM parameter ``/<prefix>/serving/<model>/target-model``, whose
    value CloudFormation derives from the approved ARN - clients read it to know which key to call,
    so the switch is atomic and stays in the template. Rollback is approving an earlier version: its
    key is still staged (and maybe still cached).

    The fleet itself (instance type and count, autoscaling on invocations per instance and to its minimum
    after an idle hour, blue/green with alarm rollback for changes of the endpoint) follows ``config`` like a real-time
    endpoint; it exists while at least one member has an approved version (``self.condition``), so an
    environment whose members are all unapproved idles at $0.

    Serving code: the container installs a tiny standard-library bootstrap (an asset in
    ``asset_scope``, the Storage stack, so this stack stays asset-free) that imports each model's
    *own* serving code from that model's ``code/`` directory: every version still carries the code that
    serves it. Data capture: SageMaker's capture cannot tell models apart on a multi-model endpoint
    (and Model Monitor does not support them), so the serving code writes SageMaker-format records
    per model under ``capture/<model>/`` (the ``{model}`` placeholder and per-model percentages below),
    where the drift monitor reads them as for any other mode.

    Network isolation is off: the container downloads the bootstrap and writes capture records to S3
    (as the model's role, limited to exactly those objects).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        endpoint: str,
        config: MultiModelEndpointConfig,
        members: Sequence[MultiModelMember],
        key: kms.IKey,
        artifacts_bucket: s3.IBucket,
        inference_bucket: s3.IBucket,
        image_uri: str,
        image_repository: ecr.IRepository,
        asset_scope: Construct,
        network: Optional[NetworkConfig] = None,
    ) -> None:
        """``network`` (default None: AWS-managed networking): the endpoint's containers run in these subnets and
        security groups."""
        super().__init__(scope, construct_id)
        if not members:
            raise ValueError(f"members: endpoint {endpoint!r} has no member models; build it only when one names it")
        stack = stack_of(self, scope)
        assets, here = environment_of(asset_scope), environment_of(stack)
        if (assets.region, assets.account) != (here.region, here.account):
            raise ValueError("asset_scope: must be in a stack of the same account and region as the endpoint")
        self.config = config
        self._endpoint = endpoint
        self.members = tuple(members)
        self.member_names = tuple(m.model.name for m in self.members)
        self.endpoint_name = multi_model_endpoint_name(name_prefix, endpoint)
        self.artifacts_bucket_name = read_once(artifacts_bucket, "bucket_name")
        self.staging_prefix = staging_prefix(self.endpoint_name)
        self.model_data_url = f"s3://{self.artifacts_bucket_name}/{self.staging_prefix}"
        self.condition = self._any_member_deployed()
        self.bootstrap = self._bootstrap_asset(asset_scope)
        inference = read_once(inference_bucket, "bucket_name")

        # --- the endpoint's execution role: staged models, the bootstrap, per-model capture.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=sagemaker_principal(self, uses=("inference",)),
            description=f"{name_prefix}: multi-model endpoint {endpoint} ({', '.join(self.member_names)})",
        )
        access = AccessPolicy(self, "Access", role=self.role, description=f"{name_prefix} {endpoint} multi-model serving")
        access.allow_prefix("ReadStagedModels", artifacts_bucket, self.staging_prefix)
        access.allow("ReadBootstrap", ["s3:GetObject"],
                     [s3_arn(self, read_once(self.bootstrap, "s3_bucket_name"), read_once(self.bootstrap, "s3_object_key"))])
        capture_percent = {m.model.name: m.serving.data_capture_percent for m in self.members if m.serving.data_capture_percent > 0}
        for name in capture_percent:
            # Write, never delete: captured traffic is what the drift monitor judges the model by (issue #13).
            access.allow_prefix(f"Capture{pascal(name)}", inference_bucket, inference_prefix(name, "capture"), write=True,
                                delete=False)
        access.allow_key("DataKey", key)
        access.allow_serving_runtime(repository=image_repository, endpoint_name=self.endpoint_name)
        if network is not None:
            allow_sagemaker_network_interfaces(access, network)

        environment = {
            "SAGEMAKER_PROGRAM": BOOTSTRAP_PROGRAM,
            "SAGEMAKER_SUBMIT_DIRECTORY": read_once(self.bootstrap, "s3_object_url"),
            # Set by SageMaker for Mode MultiModel as well; explicit so the container never starts
            # single-model (it would look for /opt/ml/model, which a multi-model endpoint does not have).
            "SAGEMAKER_MULTI_MODEL": "true",
        }
        if capture_percent:
            environment.update(
                {
                    # {model} is filled in by the serving code with the name of the model it loaded.
                    CAPTURE_URI_ENV: f"s3://{inference}/{inference_prefix(MODEL_PLACEHOLDER, 'capture')}",
                    CAPTURE_PERCENT_ENV: json.dumps(capture_percent, sort_keys=True, separators=(",", ":")),
                    CAPTURE_KMS_KEY_ENV: read_once(key, "key_arn"),
                    CAPTURE_ENDPOINT_ENV: self.endpoint_name,
                    # The bucket's region for the container's S3 client: regional endpoint, reachable through the VPC's
                    # S3 gateway endpoint (nothing documented sets AWS_REGION in a hosting container).
                    CAPTURE_REGION_ENV: environment_of(self).region,
                }
            )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=read_once(self.role, "role_arn"),
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri,
                mode="MultiModel",
                model_data_url=self.model_data_url,
                environment=environment,
                multi_model_config=sagemaker.CfnModel.MultiModelConfigProperty(
                    model_cache_setting="Enabled" if config.model_cache else "Disabled"
                ),
            ),
            enable_network_isolation=False,
            vpc_config=model_vpc_config(network),
        )
        self.model.cfn_options.condition = self.condition
        self.model.node.add_dependency(access)
        self.model.add_metadata("checkov", {"skip": [{"id": "CKV_AWS_370", "comment": (
            "The container installs its bootstrap from S3 and writes per-model capture records; the role limits it to those objects.")}]})

        instance = INSTANCE_TYPES[config.instance_type]
        volume_key = None if instance.local_nvme else read_once(key, "key_arn")
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=self.model.attr_model_name,
                    instance_type=config.instance_type,
                    initial_instance_count=config.instance_count,
                )
            ],
            kms_key_id=volume_key,
        )
        self.endpoint_config.cfn_options.condition = self.condition
        self._label(self.endpoint_config)
        if volume_key is None:
            acknowledge(self.endpoint_config, f"{config.instance_type} stores data on local NVMe, which is hardware-encrypted; "
                        "SageMaker rejects a KmsKeyId for it.", "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured")

        self.rollback_alarms = rollback_alarms(self, endpoint_name=self.endpoint_name, rollout=config.rollout,
                                               max_client_error_rate_percent=config.alarms.max_client_error_rate_percent,
                                               condition=self.condition)
        allow_reading_rollback_alarms(access, self.endpoint_name)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            deployment_config=blue_green(config.rollout, self.rollback_alarms),
        )
        self.endpoint.cfn_options.condition = self.condition
        self._label(self.endpoint)
        # Every alarm this stack creates for the endpoint: the serving deployer may manage these and no other.
        self.alarm_names: list[str] = list(rollback_alarm_names(self.endpoint_name))
        if config.autoscaling is not None:
            scaled = invocations_scaling(self, endpoint_name=self.endpoint_name, endpoint=self.endpoint,
                                         scaling=config.autoscaling, condition=self.condition)
            self.alarm_names.extend(scaled.alarm_names)

        # --- per member: which staged key serves it, derived from the approved version's ARN.
        self.target_model_parameters: dict[str, ssm.CfnParameter] = {}
        for member in self.members:
            name = member.model.name
            # ...:model-package/<group>/<N> -> "<model>/v<N>.tar.gz" (the handler stages it under that key).
            version = Fn.select(2, Fn.split("/", member.package_arn))
            parameter = ssm.CfnParameter(
                self,
                f"{pascal(name)}TargetModel",
                name=target_model_parameter_name(name_prefix, name),
                type="String",
                value=Fn.join("", [f"{name}/v", version, ".tar.gz"]),
                description=f"TargetModel serving {name} on {self.endpoint_name} (set by approving a version)",
            )
            parameter.cfn_options.condition = member.condition
            # Clients must not be pointed at a model before the endpoint that serves it exists.
            parameter.node.add_dependency(self.endpoint)
            self.target_model_parameters[name] = parameter
            CfnOutput(self, f"{pascal(name)}TargetModelOutput", value=parameter.attr_value, condition=member.condition,
                      description=f"TargetModel of {name} on {self.endpoint_name}")

    # ------------------------------------------------------------------ helpers
    def _any_member_deployed(self) -> CfnCondition:
        conditions = [m.condition for m in self.members]
        if len(conditions) == 1:
            return conditions[0]
        # Fn::Or takes 2-10 conditions: fold larger groups into nested ORs of at most ten.
        while len(conditions) > 1:
            conditions = [
                chunk[0] if len(chunk) == 1 else Fn.condition_or(*chunk)
                for chunk in (conditions[i : i + 10] for i in range(0, len(conditions), 10))
            ]
        return CfnCondition(self, "AnyMemberDeployed", expression=conditions[0])

    @staticmethod
    def _bootstrap_asset(scope: Construct) -> s3_assets.Asset:
        """The bootstrap tarball, published once per ``scope`` however many endpoints use it."""
        existing = scope.node.try_find_child(BOOTSTRAP_ASSET_ID)
        if isinstance(existing, s3_assets.Asset):
            return existing
        data = single_file_tarball(MME_BOOTSTRAP)
        return generated_asset(scope, BOOTSTRAP_ASSET_ID, f"mme-bootstrap-{hashlib.sha256(data).hexdigest()[:12]}.tar.gz",
                               data)

    def _label(self, resource: sagemaker.CfnEndpointConfig | sagemaker.CfnEndpoint) -> None:
        # Read by the cost-floor report (one fleet, shared by the members) and by people reading the template.
        resource.add_metadata(RESOURCE_METADATA_KEY, {"model": f"{self._endpoint} ({', '.join(self.member_names)})",
                                             "mode": "multi_model", "models": list(self.member_names)})

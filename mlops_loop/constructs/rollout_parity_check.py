"""The parity check of endpoints that serve a network compiled for Inferentia2, run while each rollout bakes and on
the version each endpoint is created with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from pipeline_code.core.compiled import DEPLOYMENT_EVENT, ENDPOINT_EVENT
from pipeline_code.core.contract import parity_namespace
from pipeline_code.core.integrity import SEALED_KEY_PATTERN

from .arns import any_sagemaker, format_arn, s3_arn
from ..config.network import NetworkConfig
from .cdk_reads import read_once, stack_of
from .handler_function import dead_letter_queue, handler_function
from .loop_alarms import handler_alarms


@dataclass(frozen=True)
class ParityEndpoint:
    """An endpoint whose rollouts are checked: its name, its model package group and the share of traffic the new
    fleet takes in the first bake (:func:`~mlops_loop.config.serving.first_bake_share`)."""

    endpoint_name: str
    package_group: str
    share: float


class RolloutParityCheck(Construct):
    """``<prefix>-rollout-parity``: a function on SageMaker's deployment events of ``endpoints`` that holds each
    version being rolled out to its CPU model's answers (:mod:`pipeline_code.handlers.parity_check`), and on their
    state changes to in service, which holds the version an endpoint was created with (no rollout, so no bake) to
    the same answers.

    It publishes the verdict as the metric of each endpoint's ``<endpoint>-rollout-parity`` rollback alarm (made
    with the endpoint, :func:`~.endpoint_fleet.rollback_alarms`) and tells ``topic`` when a version does not match
    or cannot be checked; its own errors and dead letters alarm to ``topic`` too. It may describe endpoint configs,
    models and the groups' packages, describe and invoke only these endpoints, read only sealed artefacts
    (encrypted with ``data_key``) and publish only in these endpoints' own namespaces (``<endpoint>/rollout``). It
    changes nothing in the registry: a first version that does not match (or cannot be checked) has nothing to roll
    back to, and the notice gives the approver's command that rejects it (only the approver changes approval).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        endpoints: Sequence[ParityEndpoint],
        artifacts_bucket: s3.IBucket,
        data_key: kms.IKey,
        topic: sns.ITopic,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        network: Optional[NetworkConfig] = None,
    ) -> None:
        if not endpoints:
            raise ValueError("RolloutParityCheck: endpoints must name at least one endpoint")
        super().__init__(scope, construct_id)
        stack = stack_of(self, scope)
        self.dead_letter_queue = dead_letter_queue(self, key=key, removal_policy=removal_policy, owner="rollout parity check")
        built = handler_function(
            self,
            function_name=f"{name_prefix}-rollout-parity",
            description="Holds a version rolled out to (or first served by) an Inferentia2 endpoint to its CPU model's answers",
            role_description=f"{name_prefix}: parity checks of Inferentia2 rollouts",
            access_description=f"{name_prefix} rollout parity check",
            handler="parity_check.handler",
            environment={
                "PARITY_ENDPOINTS": json.dumps({e.endpoint_name: {"share": e.share} for e in endpoints}, sort_keys=True),
                "TOPIC_ARN": read_once(topic, "topic_arn"),
            },
            key=key,
            dead_letter_queue=self.dead_letter_queue,
            log_retention=log_retention,
            removal_policy=removal_policy,
            # The check's own budget is 150 s (parity_check.MAX_CHECK_SECONDS) and it stops 20 s before this timeout,
            # so a verdict is published whatever happens; a bake of at least 5 minutes outlasts it and the alarm.
            timeout=Duration.minutes(3),
            network=network,
            vpc_reason="The function only calls the SageMaker, S3, CloudWatch and SNS APIs.",
            # Several endpoints may bake at once; each check is independent of the others.
            reserved_concurrency=len(endpoints),
        )
        access = built.access
        access.allow(
            "FindPendingVersion",
            ["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
            any_sagemaker(stack, "endpoint-config", "model"),
            wildcard_reason="CloudFormation names each version's endpoint config and model at deploy time; the "
            "function only reads them to find the model package being rolled out.",
        )
        groups = sorted({e.package_group.lower() for e in endpoints})
        access.allow(
            "ReadPackages",
            ["sagemaker:DescribeModelPackage"],
            [format_arn(stack, service="sagemaker", resource="model-package", resource_name=f"{g}/*") for g in groups],
            wildcard_reason="Any version of these groups may be the one rolled out; reading is limited to those groups.",
        )
        access.allow(
            "InvokeEndpoints",
            ["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"],
            [format_arn(stack, service="sagemaker", resource="endpoint", resource_name=e.endpoint_name.lower()) for e in endpoints],
        )
        access.allow("ReadSealedArtifacts", ["s3:GetObject"], [s3_arn(self, read_once(artifacts_bucket, "bucket_name"), SEALED_KEY_PATTERN)],
                     wildcard_reason="Sealed artefacts are content-addressed (pipelines/<model>/registered/<sha256>/...); "
                     "the function reads only parity.json of the one a package version names.")
        access.allow_key("DataKey", data_key, encrypt=False)
        # Each endpoint's verdicts in its own namespace: this environment's function cannot pass or fail another
        # environment's rollout (IAM has no condition on the EndpointName dimension).
        access.allow_metrics("PublishVerdict", sorted(parity_namespace(e.endpoint_name) for e in endpoints),
                             limited_to="the parity verdicts of its own endpoints, which their rollback alarms watch")
        access.allow("Notify", ["sns:Publish"], [read_once(topic, "topic_arn")])
        self.function = built.function
        self.rule = events.Rule(
            self,
            "Deployments",
            description="Deployment state changes of the Inferentia2 endpoints -> rollout parity check",
            # The handler itself picks the events whose pending deployment is baking: matching inside the
            # PendingDeploymentSummary's arrays is left to code that tests can run.
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[DEPLOYMENT_EVENT],
                detail={"EndpointName": sorted(e.endpoint_name for e in endpoints)},
            ),
        )
        self.rule.add_target(targets.LambdaFunction(self.function, dead_letter_queue=self.dead_letter_queue,
                                                    retry_attempts=2, max_event_age=Duration.hours(1)))
        # An endpoint's creation (the serving stack creates it on the first approval) sends no deployment event: its
        # state change to in service runs the check of the version it was created with. The handler ignores the state
        # changes that follow a rollout (the endpoint config is younger than the endpoint); an autoscaling update keeps
        # the config, so it re-runs the check (read-only: a pass is quiet, a failure pages again).
        self.first_versions = events.Rule(
            self,
            "FirstVersions",
            description="Inferentia2 endpoints in service -> parity check of the version each was created with",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[ENDPOINT_EVENT],
                # The Developer Guide's example event says IN_SERVICE, the API's status InService: a rule that never
                # matched would leave every first version unchecked without a sound, and matching both costs nothing.
                detail={"EndpointName": sorted(e.endpoint_name for e in endpoints), "EndpointStatus": ["IN_SERVICE", "InService"]},
            ),
        )
        self.first_versions.add_target(targets.LambdaFunction(self.function, dead_letter_queue=self.dead_letter_queue,
                                                              retry_attempts=2, max_event_age=Duration.hours(1)))
        # A check that never ran cannot hold a rollout back: people hear of it. Its errors page too, unlike the other
        # handlers': a retry that comes after the bake finds nothing baking and ignores the event, so an error Lambda's
        # retry "gets past" may still be a rollout that went out unchecked. An event that fails every attempt then
        # pages twice (errors, then dead letters): rollouts to Inferentia2 endpoints are rare, an unchecked one is not.
        self.alarms = handler_alarms(
            self,
            name_prefix=name_prefix,
            names=("rollout-parity-errors", "rollout-parity-dead-letters"),
            function=self.function,
            queue=self.dead_letter_queue,
            errors_description="The rollout parity check failed: a rollout to an Inferentia2 endpoint, or the version one "
            "was created with, may have gone out unchecked; check its logs",
            dead_letters_description="Deployment or in-service events of Inferentia2 endpoints were not processed by the parity check "
            "(three failed attempts, or not delivered); if its errors alarm paged, this is the same failure; see its DLQ",
            topic=topic,
            page_on_errors=True,
        )

"""People hear when one of the environment's endpoints is being deleted, has failed or is out of service: an endpoint
deleted by hand publishes no metric at all, so its alarms (missing data not breaching) stay quiet."""

from __future__ import annotations

import json
from typing import Mapping, Sequence

from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .cdk_reads import environment_of, event_field
from .rule_notifications import notify_topic

# The states in which an endpoint answers no request or is about to (DescribeEndpoint's EndpointStatus, as the
# "SageMaker Endpoint State Change" event spells it: upper case with underscores, e.g. IN_SERVICE in the SageMaker
# Developer Guide's example event).
LOST_STATES = ("DELETING", "FAILED", "OUT_OF_SERVICE")
# The same states as the API spells them (botocore's EndpointStatus enum): matched too, so neither spelling silences it.
_API_SPELLING = {"DELETING": "Deleting", "FAILED": "Failed", "OUT_OF_SERVICE": "OutOfService"}


def notify_endpoint_losses(
    scope: Construct,
    construct_id: str,
    *,
    name_prefix: str,
    endpoints: Mapping[str, Sequence[str]],
    deploy_function_name: str,
    topic: sns.ITopic,
    dead_letter_queue: sqs.IQueue,
) -> events.Rule:
    """A rule ``construct_id`` publishing to ``topic`` SageMaker's state change of one of ``endpoints`` (endpoint name ->
    the model package groups it serves) to one of :data:`LOST_STATES`, with what to do: for a deleted endpoint, the
    deploy handler's reconcile of its group (``deploy_function_name``), which names the command that re-creates it;
    for a failed or out-of-service one, the command that shows why. Undeliverable notices go to ``dead_letter_queue``.
    """
    if not endpoints:
        raise ValueError("notify_endpoint_losses: no endpoints given; a rule matching no endpoint tells nobody anything")
    region = environment_of(scope).region
    field = event_field
    name, status = field("$.detail.EndpointName"), field("$.detail.EndpointStatus")
    legend = "; ".join(f"{endpoint}: {', '.join(sorted(groups))}" for endpoint, groups in sorted(endpoints.items()))
    reconcile = json.dumps({"action": "reconcile", "group": "GROUP"})
    rule = events.Rule(
        scope,
        construct_id,
        description=f"Tell people when an endpoint of {name_prefix} is being deleted, has failed or is out of service",
        event_pattern=events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=["SageMaker Endpoint State Change"],
            detail={"EndpointName": sorted(endpoints),
                    "EndpointStatus": [*LOST_STATES, *(_API_SPELLING[s] for s in LOST_STATES)]},
        ),
    )
    notify_topic(rule, topic, dead_letter_queue=dead_letter_queue, message=events.RuleTargetInput.from_text(
        f"{name_prefix} endpoint {name} is {status}. While the serving stack is being deleted or rolls back a first "
        "deployment this is CloudFormation's doing; otherwise its callers get errors. DELETING (deleted by hand: "
        "CloudFormation does not notice, nor re-create it): once it is gone, reconcile its group - aws lambda invoke "
        f"--function-name {deploy_function_name} --cli-binary-format raw-in-base64-out --payload '{reconcile}' out.json "
        f"--region {region} (GROUP by endpoint: {legend}) - which answers, and tells people, the create-endpoint command "
        "with the configuration the serving stack made (docs/deploying.md, Recovering an environment: an endpoint deleted by "
        f"hand). FAILED or OUT_OF_SERVICE, why: aws sagemaker describe-endpoint --endpoint-name {name} --region "
        f"{region} (FailureReason)."))
    return rule

"""Notices to people from the deploy handler: one SNS topic, or a team's (:class:`Topics`)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Mapping, Optional

from botocore.exceptions import ClientError

from pipeline_code.core.commands import cli_command
from pipeline_code.handlers.team_topics import Topics

LOG = logging.getLogger(__name__)

# The environment's name in the config (the --env of the project's CLI), set by the DeployOnApproval construct.
ENVIRONMENT_VARIABLE = "ENVIRONMENT"


class Notifier:
    """Publishes short notices to people (``topic``: one ARN, or :class:`Topics`, resolved for ``group``); a failed
    publish is logged, never fatal to the deployment."""

    def __init__(self, sns: Any, topic: "Optional[str] | Topics", group: str) -> None:
        self.sns, self.group = sns, group
        self.topic = topic.of(group) if isinstance(topic, Topics) else topic

    def __call__(self, subject: str, message: str) -> None:
        if not self.topic or self.sns is None:
            return
        full_subject = f"{self.group}: {subject}"
        # SNS subjects: ASCII, no line breaks, at most 100 characters.
        full_subject = full_subject.encode("ascii", "replace").decode().replace("\n", " ")[:100]
        try:
            self.sns.publish(TopicArn=self.topic, Subject=full_subject, Message=f"{full_subject}\n\n{message}")
        except ClientError as error:
            LOG.warning(json.dumps({"notify_failed": str(error), "subject": full_subject}))


def invoke_command(payload: Mapping[str, Any]) -> str:
    """How a notice tells people to run this function with ``payload``: in Lambda (which sets
    ``AWS_LAMBDA_FUNCTION_NAME`` and ``AWS_REGION``) the whole AWS CLI command, naming the function and its region, as the
    EndpointLosses rule's notice does - a notice's subject names the model group, not which function "this" is; outside
    Lambda, the payload alone."""
    document = json.dumps(dict(payload))
    name, region = os.environ.get("AWS_LAMBDA_FUNCTION_NAME"), os.environ.get("AWS_REGION")
    if not name or not region:
        return f"invoke this function with {document}"
    return (f"invoke this function: aws lambda invoke --function-name {name} --cli-binary-format raw-in-base64-out "
            f"--payload '{document}' out.json --region {region}")


def rollback_command(model: Optional[str], command: str) -> str:
    """``python -m mlops_cli.rollback --env <environment> --model <model> <command>`` as a notice gives it: the
    environment from ``ENVIRONMENT`` (the function's own, set by the construct) and ``model`` (the group's, from
    ``APPROVAL_LEDGER``'s group_prefix), so the command runs as printed; ``<env>`` / ``<model>`` to fill in only when
    one is not known (a function deployed without them); ``--config`` the function's ``CLI_CONFIG`` (set by the
    construct for an app of another config than the default; unset: none, the tools' default)."""
    return cli_command("rollback", command, environment=os.environ.get(ENVIRONMENT_VARIABLE), model=model,
                       config=os.environ.get("CLI_CONFIG"))

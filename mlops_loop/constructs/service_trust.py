"""Service principals for role trust policies, with the confused-deputy condition AWS documents for them.

A condition on a key the service does not send when it assumes the role denies the service: the role
then breaks at run time, silently (a job that never starts, an endpoint that never becomes healthy),
which is worse than no condition. So a role gets a condition only for what AWS documents the service
sends for every use the role is put to; every other service role is listed, with why, in
``tests/infra/test_service_trust.py``.
"""

from __future__ import annotations

from typing import Sequence

from aws_cdk import aws_iam as iam
from constructs import IConstruct

from .arns import format_arn

SAGEMAKER_CONFUSED_DEPUTY_DOC = "https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html"

# What SageMaker sends as aws:SourceArn when it assumes an execution role, per feature, as the SageMaker
# Developer Guide documents it (SAGEMAKER_CONFUSED_DEPUTY_DOC, one section per feature). No section
# documents aws:SourceAccount for a trust policy ("because the account number is in the ARN, you do not
# need to specify an aws:SourceAccount value"), so none is required here. Not listed, so not conditioned:
# hyperparameter tuning jobs, Model Monitor schedules, Feature Store offline stores.
DOCUMENTED_SAGEMAKER_SOURCES = {
    "inference": "real-time, serverless and asynchronous endpoints: arn:<partition>:sagemaker:<region>:<account>:* "
                 "(the asterisk is literal)",
    "transform-job": "batch transform jobs: arn:<partition>:sagemaker:<region>:<account>:transform-job/<name>",
    "training-job": "training jobs: arn:<partition>:sagemaker:<region>:<account>:training-job/<name>",
    "processing-job": "processing jobs: arn:<partition>:sagemaker:<region>:<account>:processing-job/<name>",
    "pipeline": "SageMaker Pipelines: arn:<partition>:sagemaker:<region>:<account>:pipeline/<name>/<execution>",
}


def sagemaker_principal(scope: IConstruct, *, uses: Sequence[str]) -> iam.IPrincipal:
    """``sagemaker.amazonaws.com`` for a role SageMaker assumes only for ``uses`` (keys of
    :data:`DOCUMENTED_SAGEMAKER_SOURCES`), limited to SageMaker acting for a resource of this stack's
    account and Region: ``ArnLike aws:SourceArn arn:<partition>:sagemaker:<region>:<account>:*``. That one
    pattern is the form documented for inference and matches every per-job form above too, so a role
    used for several of them needs nothing more. Raises for a use AWS documents no source for: give
    such a role a plain ``iam.ServicePrincipal`` and say why where it is built."""
    undocumented = sorted(set(uses) - set(DOCUMENTED_SAGEMAKER_SOURCES))
    if not uses or undocumented:
        raise ValueError(
            f"uses: {undocumented or 'none given'}: SageMaker documents the aws:SourceArn it sends only for "
            f"{', '.join(sorted(DOCUMENTED_SAGEMAKER_SOURCES))} ({SAGEMAKER_CONFUSED_DEPUTY_DOC}); trust an "
            "undocumented use without a condition, with a comment saying why"
        )
    return iam.ServicePrincipal(
        "sagemaker.amazonaws.com",
        conditions={"ArnLike": {"aws:SourceArn": format_arn(scope, service="sagemaker", resource="*")}},
    )

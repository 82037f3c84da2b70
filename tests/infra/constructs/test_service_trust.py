"""service_trust: SageMaker is trusted with the aws:SourceArn it documents, and only for documented uses."""

from __future__ import annotations

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from mlops_loop.app_builder import new_app
from mlops_loop.constructs.service_trust import DOCUMENTED_SAGEMAKER_SOURCES, sagemaker_principal
from tests.support.cdk_outdirs import bare_outdir


def _trust(uses) -> list[dict]:
    """GIVEN a bare stack WHEN a role trusting sagemaker_principal(uses) is added THEN its trust statements."""
    stack = Stack(new_app(bare_outdir()), "Bare", env=Environment(account="123456789012", region="eu-west-1"))
    iam.Role(stack, "Role", assumed_by=sagemaker_principal(stack, uses=uses))
    (role,) = Template.from_stack(stack).find_resources("AWS::IAM::Role").values()
    return role["Properties"]["AssumeRolePolicyDocument"]["Statement"]


@pytest.mark.parametrize("uses", [("inference",), ("pipeline", "training-job", "processing-job"), tuple(DOCUMENTED_SAGEMAKER_SOURCES)])
def test_documented_uses_are_limited_to_sagemaker_resources_of_the_stacks_account_and_region(uses):
    # The form documented for inference (its asterisk is literal); ArnLike matches every per-job form with it.
    assert _trust(uses) == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
        "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:eu-west-1:123456789012:*"}},
    }]


@pytest.mark.parametrize(("uses", "named"), [
    (("training-job", "hyper-parameter-tuning-job"), r"\['hyper-parameter-tuning-job'\]"),
    (("monitoring-schedule",), r"\['monitoring-schedule'\]"),
    ((), "none given"),
])
def test_a_use_sagemaker_documents_no_source_for_is_refused_naming_it_and_the_way_out(uses, named):
    with pytest.raises(ValueError, match=rf"^uses: {named}: SageMaker documents the aws:SourceArn it sends only for "
                                         r"inference, pipeline, processing-job, training-job, transform-job \(https://"
                                         r".*\); trust an undocumented use without a condition, with a comment saying why$"):
        _trust(uses)

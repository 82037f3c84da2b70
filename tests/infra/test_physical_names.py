"""Every physical name the app writes into its templates is one its service accepts (issue #13).

The config loader bounds the parts (project, environment, model, dataset, endpoint names) and refuses the
combinations a service would not take, naming the field (``test_config.py``); this proves the result on the
templates themselves, for the sample environments and the scenarios that add every serving mode and
multi-model endpoints.
"""

from __future__ import annotations

import pytest

from mlops_loop.tools.cloud_assembly import stacks
from tests.support.service_names import RULES, STACK_RULE, literal_names, name_problems


def _assemblies(request) -> list:
    return [request.getfixturevalue("synthesized").outdir, request.getfixturevalue("modes").outdir,
            request.getfixturevalue("pooled").outdir]


def test_every_literal_name_and_stack_name_is_one_its_service_accepts(request):
    checked: dict[tuple[str, str], int] = {}
    problems = []
    for outdir in _assemblies(request):
        for stack in stacks(outdir):
            template = stack.template
            problems += name_problems(template, stack.stack_name)
            problem = STACK_RULE.problem(stack.stack_name)
            if problem:
                problems.append(f"stack name {stack.stack_name!r} {problem}")
            for _, kind, prop, _ in literal_names(template):
                checked[(kind, prop)] = checked.get((kind, prop), 0) + 1
    assert problems == []
    # Not vacuous: the names the app sets itself are all among those checked.
    assert {("AWS::SageMaker::Endpoint", "EndpointName"), ("AWS::SageMaker::Pipeline", "PipelineName"),
            ("AWS::SageMaker::FeatureGroup", "FeatureGroupName"), ("AWS::Scheduler::Schedule", "Name"),
            ("AWS::IAM::Role", "RoleName"), ("AWS::Lambda::Function", "FunctionName"),
            ("AWS::CloudWatch::Alarm", "AlarmName"), ("AWS::S3::Bucket", "BucketName")} <= set(checked)


@pytest.mark.parametrize(
    ("kind", "prop", "name", "problem"),
    [
        ("AWS::SageMaker::Endpoint", "EndpointName", "a" * 64, "is 64 characters; SageMaker allows 1-63"),
        ("AWS::SageMaker::FeatureGroup", "FeatureGroupName", "a-" * 32 + "b", "is 65 characters; Feature Store allows 1-64"),
        ("AWS::Scheduler::Schedule", "Name", "a/b", "does not match EventBridge Scheduler's pattern ^[0-9a-zA-Z-_.]+$"),
        ("AWS::SageMaker::Pipeline", "PipelineName", "my_pipeline", "does not match SageMaker's pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"),
    ],
)
def test_a_name_its_service_refuses_is_reported(kind, prop, name, problem):
    assert name_problems({"Resources": {"X": {"Type": kind, "Properties": {prop: name}}}}, "S") == [
        f"S/X ({kind}) {prop} {name!r} {problem}"
    ]
    assert (kind, prop) in RULES

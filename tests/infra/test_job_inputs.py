"""Every S3 object a SageMaker job downloads as an input, its role may list and read.

SageMaker downloads an ``S3Prefix`` input (processing inputs, training channels) by listing the key
first (ListObjectsV2) and then reading each object, as the job's role; without ``s3:ListBucket`` the
job fails before it starts ("Failed to download data. ListObjectsV2 failed"). The inputs checked are
every concrete S3 URI in the jobs the templates start: the steps of each training pipeline, and the
requests of the drift monitor's and batch transform's schedules. URIs known only at run time (a
previous step's output, a pipeline parameter) are the prefix grants' business and are not here.
"""

from __future__ import annotations

import re
from typing import Iterator

import pytest

from tests.support.deploy_permissions import assembly_model
from tests.support.iam_eval import IamModel, Role, allowed
from tests.support.request_shapes import ApiRequest, pipeline_requests, scheduler_requests

_ROLE_REF = re.compile(r"^<GetAtt:(?P<logical_id>[A-Za-z0-9]+)\.Arn>$")
_CONCRETE_S3 = re.compile(r"^s3://(?P<bucket>[a-z0-9.-]+)/(?P<key>[^<>{}$]+)$")


def _downloads(request: ApiRequest) -> Iterator[tuple[str, str]]:
    """(bucket, key) of each concrete S3Prefix input of a CreateProcessingJob / CreateTrainingJob request."""
    params = request.params
    sources = [i.get("S3Input", {}) for i in params.get("ProcessingInputs", [])]
    sources += [c["DataSource"].get("S3DataSource", {}) for c in params.get("InputDataConfig", []) if "DataSource" in c]
    for source in sources:
        uri = source.get("S3Uri")
        match = _CONCRETE_S3.match(uri) if isinstance(uri, str) else None
        if match and source.get("S3DataType", "S3Prefix") == "S3Prefix":
            yield match["bucket"], match["key"]


def _jobs(iam: IamModel) -> Iterator[tuple[ApiRequest, Role]]:
    """Each job request with the role it runs as: a pipeline's steps run as the pipeline's role; a schedule's
    request names its job role."""
    for stack in iam.stacks.values():
        for request in scheduler_requests(stack.label, stack.template):
            role_ref = _ROLE_REF.match(str(request.params.get("RoleArn", "")))
            if role_ref:
                yield request, iam.role(f"{stack.label}/{role_ref['logical_id']}")
        for logical_id, resource in stack.template["Resources"].items():
            if resource["Type"] != "AWS::SageMaker::Pipeline":
                continue
            role = iam.role(iam.resolve(stack.label, resource["Properties"]["RoleArn"]))
            for request in pipeline_requests(stack.label, {"Resources": {logical_id: resource}}):
                yield request, role


def _problems(iam: IamModel) -> tuple[list[str], int]:
    problems, checked = [], 0
    for request, role in _jobs(iam):
        for bucket, key in _downloads(request):
            checked += 1
            listing = allowed(role, "s3:ListBucket", f"arn:aws:s3:::{bucket}", {"s3:prefix": key})
            reading = key.endswith("/") or allowed(role, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}")
            if not (listing and reading):
                problems.append(f"{request.label}: {role} may not {'list' if not listing else 'read'} s3://{bucket}/{key}")
    return problems, checked


def test_every_job_input_is_listable_and_readable_by_the_jobs_role(synthesized):
    """GIVEN every environment of the user's config WHEN each concrete input of each job is decided against the
    job role's policy THEN listing its key and reading it are both allowed."""
    for env in synthesized.config.environments:
        problems, checked = _problems(assembly_model(synthesized.outdir, synthesized.config, env))
        assert problems == [], "\n".join(problems)
        # Per model: the pipeline's jobs (entry script, library, model spec each) and the monitor's.
        assert checked >= 6 * len(synthesized.config.environments[env].models)


@pytest.mark.parametrize("fixture", ["modes", "pooled"])
def test_every_job_input_is_listable_in_every_serving_mode(request, fixture):
    built = request.getfixturevalue(fixture)
    env = next(e for e in built.config.environments if e in (fixture, "modes"))
    problems, checked = _problems(assembly_model(built.outdir, built.config, env))
    assert problems == [] and checked > 0, "\n".join(problems)


def test_a_role_that_may_only_read_its_code_is_reported(synthesized):
    """GIVEN a pipeline role without its CodeListing statement (the policy before this check existed)
    WHEN its jobs' inputs are decided THEN each code input is reported as not listable."""
    env = next(iter(synthesized.config.environments))
    iam = assembly_model(synthesized.outdir, synthesized.config, env)
    request, role = next((r, role) for r, role in _jobs(iam) if "Pipeline" in r.source)
    stripped = tuple(s for s in role.statements if s.sid != "CodeListing")
    assert len(stripped) < len(role.statements)
    iam.roles[role.key] = Role(role.stack, role.logical_id, role.name, role.arn, role.named, stripped)
    problems, _ = _problems(iam)
    assert any(p.startswith(request.source) and "may not list" in p for p in problems), problems

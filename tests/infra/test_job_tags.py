"""Every SageMaker job the app creates at run time carries the environment's cost-allocation tags, and the role that
creates it may tag it.

CloudFormation tags every resource of the templates (the stage's ``Tags.of``), but the jobs that bill (a pipeline's
processing, training and tuning jobs; the scheduled drift monitor and batch transform jobs) are created by
SageMaker Pipelines and EventBridge Scheduler from requests the templates carry verbatim: only a ``Tags`` member in
that request tags them. SageMaker authorizes a create request that carries tags as ``sagemaker:AddTags`` on the new
job as well, so each creating role is decided for both actions on a job name its requests produce.

Every job request in every template of every environment of the user's app and of the ``modes`` environment (batch
transform) is checked, whatever models they hold.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from mlops_loop.config import AppConfig
from mlops_loop.constructs.scheduled_job import EXECUTION_ID
from mlops_loop.tools.cloud_assembly import stacks
from pipeline_code.core.contract import MODEL_TAG, environment_prefix, pascal, pipeline_name

from tests.support import request_shapes as rs
from tests.support.deploy_permissions import assembly_model
from tests.support.iam_eval import IamModel, authorize
from tests.support.instance_limits import INSTANCE_TYPES, instance_types

# The job-creating operations, with the IAM resource type of the job they create.
JOB_RESOURCES = {
    "CreateProcessingJob": "processing-job",
    "CreateTrainingJob": "training-job",
    "CreateHyperParameterTuningJob": "hyper-parameter-tuning-job",
    "CreateTransformJob": "transform-job",
}
# The member that names the job, by operation.
NAME_FIELDS = {operation: field for operation, field in rs.PIPELINE_STEPS.values()}
# What a run puts where the requests leave names to run time.
SCHEDULER_EXECUTION_ID = "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"
PIPELINE_EXECUTION_ID = "a1b2c3d4e5f6"


def _job_requests(outdir, env: str) -> Iterator[tuple[str, dict, rs.ApiRequest]]:
    """(stack construct id, the template, request) of every job-creating request of ``env``'s templates."""
    for stack in stacks(outdir):
        if stack.stage != env:
            continue
        for request in rs.requests_in(stack.construct_id, stack.template):
            if request.service == "sagemaker" and request.operation in JOB_RESOURCES:
                yield stack.construct_id, stack.template, request


def _creator_and_job_arn(iam: IamModel, stack: str, template: dict, request: rs.ApiRequest) -> tuple[Any, str]:
    """The role that sends ``request`` and the ARN of a job it creates (names filled as a run fills them)."""
    resource = template["Resources"][request.source.rsplit("/", 1)[1]]
    if request.kind == rs.SCHEDULER_TARGET:
        role_arn = resource["Properties"]["Target"]["RoleArn"]
        name = request.params[NAME_FIELDS[request.operation]].replace(EXECUTION_ID, SCHEDULER_EXECUTION_ID)
    else:
        role_arn = resource["Properties"]["RoleArn"]
        # SageMaker Pipelines names each job it starts "pipelines-<execution id>-<step>-<suffix>".
        name = f"pipelines-{PIPELINE_EXECUTION_ID}-{request.step}-Xa9Yq2Zk3L"
    arn = f"arn:aws:sagemaker:{iam.region}:{iam.account}:{JOB_RESOURCES[request.operation]}/{name}"
    return iam.role(iam.resolve(stack, role_arn)), arn


def _expected(config: AppConfig, env: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in config.tags_of(config.environments[env])]


def _request_problems(iam: IamModel, expected: list[dict[str, str]], stack: str, template: dict,
                      request: rs.ApiRequest) -> list[str]:
    """What is wrong with one job request: tags of ``expected`` it lacks, and actions its creator may not take."""
    problems = []
    tags = list(request.params.get("Tags") or [])
    missing = [tag for tag in expected if tag not in tags]
    if missing:
        problems.append(f"{request.label}: Tags {tags} lack {missing}")
    role, arn = _creator_and_job_arn(iam, stack, template, request)
    # The create call carries the instance types the request names (its roles may create jobs on those only).
    # The create call, and AddTags with it (tag on create), carry the request's tags: a role held to its owner's tags
    # must accept the job's own.
    requested = {f"aws:RequestTag/{tag['Key']}": tag["Value"] for tag in tags if isinstance(tag, dict)}
    sized = {INSTANCE_TYPES: list(instance_types(request)[0]), **requested}
    for action, context in ((f"sagemaker:{request.operation}", sized), ("sagemaker:AddTags", requested)):
        decision = authorize(role, action, {JOB_RESOURCES[request.operation]: arn}, context)
        if not decision.allowed:
            problems.append(f"{request.label}: {role} may not {action} on {arn} ({decision.outcome})")
    return problems


def _problems(config: AppConfig, outdir, env: str) -> tuple[list[str], set[str]]:
    """Every problem of every job request of ``env``, and the sources (pipelines, schedules) that sent any."""
    iam = assembly_model(outdir, config, env)
    problems, sources = [], set()
    for stack, template, request in _job_requests(outdir, env):
        sources.add(request.source)
        problems.extend(_request_problems(iam, _expected(config, env), stack, template, request))
    return problems, sources


def _job_senders(outdir, env: str) -> set[str]:
    """Every pipeline and every schedule that starts a SageMaker job, by ``<stack>/<logical id>``."""
    out = set()
    for stack in stacks(outdir):
        if stack.stage != env:
            continue
        for logical_id, resource in stack.template["Resources"].items():
            kind = resource["Type"]
            if kind == "AWS::SageMaker::Pipeline" or (
                    kind == "AWS::Scheduler::Schedule" and ":aws-sdk:sagemaker:create" in str(resource["Properties"]["Target"]["Arn"])):
                out.add(f"{stack.construct_id}/{logical_id}")
    return out


def test_every_job_of_every_environment_carries_its_tags_and_its_creator_may_tag_it(synthesized):
    """GIVEN every environment of the app WHEN each job request its pipelines and schedules carry is read THEN each
    carries the environment's tags (the stage's own), and the role that sends it may create and tag that job; every
    pipeline and every job schedule sent at least one request (nothing escaped the check)."""
    for env in synthesized.config.environments:
        problems, sources = _problems(synthesized.config, synthesized.outdir, env)
        assert problems == [], "\n".join(problems)
        assert sources and sources == _job_senders(synthesized.outdir, env), env


def test_the_batch_transform_jobs_carry_the_tags_and_their_creator_may_tag_them(modes):
    """GIVEN the environment that serves every mode WHEN its job requests are read THEN the batch transform jobs are
    among them, tagged, and may be created and tagged by their schedule's role."""
    problems, _ = _problems(modes.config, modes.outdir, modes.env)
    assert problems == [], "\n".join(problems)
    operations = {r.operation for _, _, r in _job_requests(modes.outdir, modes.env)}
    assert "CreateTransformJob" in operations


def test_a_job_request_without_the_tags_or_whose_creator_may_not_tag_is_reported(synthesized):
    """GIVEN a job request whose Tags lost the environment's tags (a construct that forgot them), and its creating
    role without AddTags (a policy edit gone wrong) WHEN checked THEN both are reported, naming the request."""
    env = next(iter(synthesized.config.environments))
    iam = assembly_model(synthesized.outdir, synthesized.config, env)
    expected = _expected(synthesized.config, env)
    stack, template, request = next(iter(_job_requests(synthesized.outdir, env)))
    assert _request_problems(iam, expected, stack, template, request) == []
    untagged = dataclasses.replace(request, params={**request.params, "Tags": []})
    assert _request_problems(iam, expected, stack, template, untagged) == [f"{request.label}: Tags [] lack {expected}"]
    role, arn = _creator_and_job_arn(iam, stack, template, request)
    stripped = tuple(dataclasses.replace(s, actions=tuple(a for a in s.actions if a != "sagemaker:AddTags"))
                     for s in role.statements)
    assert stripped != role.statements
    iam.roles[role.key] = dataclasses.replace(role, statements=stripped)
    (problem,) = _request_problems(iam, expected, stack, template, request)
    assert problem.startswith(f"{request.label}: ") and f"may not sagemaker:AddTags on {arn}" in problem


def _models_of_requests(config: AppConfig, outdir, env: str) -> list[tuple[str, str, list[str]]]:
    """(request label, the model whose job it is, the values of its MODEL_TAG tags) of every job request of ``env``.
    A pipeline's jobs are its model's (``contract.pipeline_name``); a schedule's are the model its id stems from."""
    prefix = environment_prefix(config.project, env)
    by_pipeline = {pipeline_name(prefix, m.name): m.name for m in config.models_of(config.environments[env])}
    out = []
    for _, template, request in _job_requests(outdir, env):
        resource = template["Resources"][request.source.rsplit("/", 1)[1]]
        if request.kind == rs.SCHEDULER_TARGET:
            # A schedule's construct id starts with its model's (``pascal``); the longest first (ChurnNet before Churn).
            logical_id = request.source.rsplit("/", 1)[1]
            owner = next(m for m in sorted(by_pipeline.values(), key=len, reverse=True) if logical_id.startswith(pascal(m)))
        else:
            owner = by_pipeline[resource["Properties"]["PipelineName"]]
        values = [t["Value"] for t in request.params.get("Tags") or [] if isinstance(t, dict) and t.get("Key") == MODEL_TAG]
        out.append((request.label, owner, values))
    return out


def test_every_job_names_its_model_in_a_cost_allocation_tag(synthesized):
    """GIVEN every environment of the app WHEN each job request (pipeline steps: training, tuning, processing; the
    scheduled monitor and batch jobs) is read THEN it carries the ``contract.MODEL_TAG`` tag, once, naming the model
    whose job it is: the jobs bill per model, and without the tag Cost Explorer cannot split a shared environment's
    training and processing spend by model (a team's models from another team's)."""
    for env in synthesized.config.environments:
        rows = _models_of_requests(synthesized.config, synthesized.outdir, env)
        assert rows, env
        wrong = [f"{label}: {MODEL_TAG} {values}, expected [{model!r}]" for label, model, values in rows
                 if values != [model]]
        assert wrong == [], "\n".join(wrong)

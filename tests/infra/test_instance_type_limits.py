"""Each role that creates SageMaker jobs or endpoint configs may do so only on its environment's instance types (FinOps).

Anyone allowed to StartPipelineExecution may override a run's ``TrainingInstanceType``/``ProcessingInstanceType``; an
edited schedule or a template passed with the deployer role may ask for any type too. IAM is the bound: each create
call carries ``sagemaker:InstanceTypes`` (Service Authorization Reference) and each role's policy allows only the
types the config names for that purpose. These tests decide, with the IAM evaluator on the synthesized app, every
create call the app itself makes -- every pipeline step's job, every scheduled job, every endpoint config and native
monitor definition of the serving stack -- as the role that makes it: each is allowed as the template asks for it,
and refused on an instance type the environment's config names nowhere, or naming none. They walk whatever the
templates hold (every environment of the user's config, the ``modes`` and ``pooled`` variants), so adding a model
adds requests to check, never a broken test.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

from tests.support.deploy_permissions import OWN_TYPE, assembly_model, sagemaker_sizing, with_instance_type
from tests.support.iam_eval import IamModel, Role, authorize
from tests.support.instance_limits import INSTANCE_TYPES, job_requests

# The first of these that an environment's templates name nowhere is the "unconfigured" type of the checks.
EXPENSIVE = ("ml.p5.48xlarge", "ml.p4d.24xlarge", "ml.p5e.48xlarge")
# What each serving-stack resource's create call is, for the deployer.
CREATES = {
    "AWS::SageMaker::EndpointConfig": ("sagemaker:CreateEndpointConfig", "endpoint-config"),
    "AWS::SageMaker::DataQualityJobDefinition": ("sagemaker:CreateDataQualityJobDefinition", "data-quality-job-definition"),
    "AWS::SageMaker::ModelQualityJobDefinition": ("sagemaker:CreateModelQualityJobDefinition", "model-quality-job-definition"),
    "AWS::SageMaker::ModelBiasJobDefinition": ("sagemaker:CreateModelBiasJobDefinition", "model-bias-job-definition"),
    "AWS::SageMaker::ModelExplainabilityJobDefinition": ("sagemaker:CreateModelExplainabilityJobDefinition",
                                                         "model-explainability-job-definition"),
}


def _unconfigured(iam: IamModel) -> str:
    text = json.dumps([stack.template for stack in iam.stacks.values()])
    return next(t for t in EXPENSIVE if f'"{t}"' not in text and f"\\\"{t}\\\"" not in text)


def _deployer(iam: IamModel) -> Role:
    """The serving stack's CloudFormation service role."""
    (role,) = [r for r in iam.roles.values() if r.stack == "Serving" and iam.stacks["Serving"].template["Resources"][r.logical_id]
               ["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "cloudformation.amazonaws.com"}]
    return role


def _job_problems(iam: IamModel, env: str) -> tuple[list[str], int]:
    """Every job create call: allowed as asked, refused on the unconfigured type or naming none."""
    problems, requests, expensive = [], job_requests(iam), _unconfigured(iam)
    for r in requests:
        where = f"{env} {r.label} ({r.role}) {r.instance_types}"
        if not (decision := r.decide()).allowed:
            problems.append(f"{where}: the app's own request is refused ({decision})")
        if r.tagged and not authorize(r.role, "sagemaker:AddTags", {r.resource_type: r.arn}).allowed:
            problems.append(f"{where}: the request carries Tags but AddTags on the new job is refused")
        override = f" (a run overriding {r.parameter})" if r.parameter else ""
        if (decision := r.resized(expensive)).allowed:
            problems.append(f"{where}: the same request on {expensive}{override} is allowed by {decision}")
        if (decision := r.decide(())).allowed:
            problems.append(f"{where}: the same request naming no instance type is allowed by {decision}")
    return problems, len(requests)


def _serving_creates(iam: IamModel) -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
    """(logical id, action, resource type, ARN, request context) of each create call the serving stack's resources make."""
    for cfn_type, (action, resource_type) in CREATES.items():
        for label, logical_id, props in iam.resources(cfn_type):
            if label != "Serving":
                continue
            # Named as the template names it (a job definition's name pins the deployer's pattern), else generated.
            name = iam.resolve(label, props[OWN_TYPE[cfn_type][2]]) if OWN_TYPE[cfn_type][2] in props else f"{logical_id}-a1b2c3"
            arn = f"arn:aws:sagemaker:{iam.region}:{iam.account}:{resource_type}/{name.lower()}"
            yield logical_id, action, resource_type, arn, sagemaker_sizing(iam.resolve(label, props), cfn_type)


def _serving_problems(iam: IamModel, env: str) -> tuple[list[str], int]:
    """Every endpoint config and monitor definition of the serving stack, as the deployer: allowed as the template asks,
    refused on the unconfigured type; a serverless config refused above the largest concurrency and memory configured
    here (the deployer cannot tell the models' configs apart: CloudFormation names them); and an endpoint config on
    the unconfigured type refused whatever the environment serves."""
    problems, checked, deployer, expensive = [], 0, _deployer(iam), _unconfigured(iam)
    creates = list(_serving_creates(iam))
    largest = {key: max((int(c[key]) for *_, c in creates if key in c), default=0)
               for key in ("sagemaker:ServerlessMaxConcurrency", "sagemaker:ServerlessMemorySize")}
    for logical_id, action, resource_type, arn, context in creates:
        checked += 1
        where = f"{env} Serving/{logical_id} {action} {context}"
        if not (decision := authorize(deployer, action, {resource_type: arn}, context)).allowed:
            problems.append(f"{where}: the template's own request is refused ({decision})")
        if INSTANCE_TYPES in context and (decision := authorize(
                deployer, action, {resource_type: arn}, with_instance_type(context, expensive))).allowed:
            problems.append(f"{where}: the same request on {expensive} is allowed by {decision}")
        for key, more in (("sagemaker:ServerlessMaxConcurrency", 1), ("sagemaker:ServerlessMemorySize", 1024)):
            if key in context and (decision := authorize(
                    deployer, action, {resource_type: arn}, {**context, key: largest[key] + more})).allowed:
                problems.append(f"{where}: the same serverless config with {key} {largest[key] + more} is allowed by {decision}")
    arn = f"arn:aws:sagemaker:{iam.region}:{iam.account}:endpoint-config/anything"
    if (decision := authorize(deployer, "sagemaker:CreateEndpointConfig", {"endpoint-config": arn},
                              {INSTANCE_TYPES: [expensive]})).allowed:
        problems.append(f"{env}: an endpoint config on {expensive} is allowed by {decision}")
    return problems, checked


def _environments(built, names=None) -> Iterator[tuple[str, IamModel]]:
    for env in names or built.config.environments:
        yield env, assembly_model(built.outdir, built.config, env)


def test_every_job_the_app_creates_is_allowed_on_its_configured_type_only(synthesized):
    """GIVEN every environment of the config WHEN each pipeline step's job and each scheduled job (drift monitor, batch
    transform) is created by its role THEN it is allowed as the template asks for it, and refused on an instance type
    the environment names nowhere (a run overriding the step's parameter, an edited schedule) or naming none."""
    for env, iam in _environments(synthesized):
        problems, checked = _job_problems(iam, env)
        assert problems == [], "\n".join(problems)
        # Each model's pipeline has several jobs and its monitor one.
        assert checked >= 2 * len(synthesized.config.environments[env].models)


def test_every_endpoint_config_and_monitor_definition_is_allowed_on_its_configured_type_only(synthesized):
    """GIVEN every environment's serving stack WHEN the deployer creates each endpoint config (and native monitor
    definition) THEN it is allowed as the template asks, refused on an instance type the environment names nowhere."""
    for env, iam in _environments(synthesized):
        problems, _ = _serving_problems(iam, env)
        assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("fixture", ["modes", "pooled"])
def test_every_serving_mode_and_shared_endpoint_is_limited_alike(request, fixture):
    """GIVEN the environments that serve every mode (real-time on local NVMe, async, serverless, batch, native monitors)
    and multi-model endpoints WHEN every job and serving create call is decided THEN each is allowed as asked and
    refused on an unconfigured type. (A serverless config's checks are in _serving_problems, wherever one is served;
    the deployer's own tests decide them on a bare stack, whatever the sample serves.)"""
    built = request.getfixturevalue(fixture)
    env = next(e for e in built.config.environments if e in (fixture, "modes"))
    iam = assembly_model(built.outdir, built.config, env)
    jobs, job_count = _job_problems(iam, env)
    serving, serving_count = _serving_problems(iam, env)
    assert jobs + serving == [], "\n".join(jobs + serving)
    assert job_count and serving_count


def test_a_role_that_lost_its_limit_is_reported(synthesized):
    """GIVEN a pipeline role whose training statement lost its instance-type condition (a policy edit gone wrong)
    WHEN its jobs are decided THEN the training step's request on the unconfigured type is reported, naming the role."""
    env = next(iter(synthesized.config.environments))
    iam = assembly_model(synthesized.outdir, synthesized.config, env)
    training = next(r for r in job_requests(iam) if r.action == "sagemaker:CreateTrainingJob")
    role = training.role
    loosened = tuple(type(s)(s.effect, s.actions, s.resources, s.not_action, s.not_resource, (), s.sid, s.source)
                     if "sagemaker:CreateTrainingJob" in s.actions else s for s in role.statements)
    iam.roles[role.key] = Role(role.stack, role.logical_id, role.name, role.arn, role.named, loosened)
    problems, _ = _job_problems(iam, env)
    expensive = _unconfigured(iam)
    assert any(training.label in p and f"on {expensive} (a run overriding TrainingInstanceType) is allowed" in p
               for p in problems), problems

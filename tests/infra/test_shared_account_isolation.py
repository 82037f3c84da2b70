"""Separation of duties between environments and projects that share one AWS account and region.

SageMaker Pipelines names every job it starts ``pipelines-<execution>-<step>-<suffix>``, whatever pipeline, environment
or project it runs for, and CloudFormation names every model and endpoint config from its logical id: the ARNs of
another environment's (or another project's) jobs, models and configs in the same account and region match the same
patterns as one's own. What tells them apart is the ``project`` and ``environment`` tags each is created with, and each
role that reaches them by those patterns is held to its own (``access_policy.owned_by``).

Proven over the synthesized policies with ``iam_eval``, for every environment of the user's config and a second project
made from it (the same config under another project name: its first environment), as if all shared one account and
region: the resources of the others are put in each role's own account and region, tagged as the others' templates tag
them (the jobs: the Tags of their pipelines' job requests; models and endpoint configs: the template's Tags). Whatever
models the config holds.
"""

from __future__ import annotations

import pytest

from mlops_loop.config import AppConfig
from mlops_loop.tools.cloud_assembly import stacks
from pipeline_code.core.contract import OWNER_TAGS

from tests.support import request_shapes as rs
from tests.support.deploy_permissions import assembly_model
from tests.support.iam_eval import IamModel, Role, authorize
from tests.support.instance_limits import INSTANCE_TYPES, instance_types


# The job-creating operations of pipeline steps, with the IAM resource type and API noun of the job.
JOBS = {
    "CreateProcessingJob": ("processing-job", "ProcessingJob"),
    "CreateTrainingJob": ("training-job", "TrainingJob"),
    "CreateHyperParameterTuningJob": ("hyper-parameter-tuning-job", "HyperParameterTuningJob"),
}
LINEAGE_TYPES = ("action", "artifact", "context", "experiment", "experiment-trial-component")
GENERATED = {"AWS::SageMaker::Model": "model", "AWS::SageMaker::EndpointConfig": "endpoint-config"}


class Side:
    """One environment of one project: its IAM model, its tags, and what it creates that others could reach."""

    def __init__(self, config: AppConfig, outdir, env: str):
        self.config, self.env = config, env
        self.iam: IamModel = assembly_model(outdir, config, env)
        self.tags = dict(config.tags_of(config.environments[env]))
        self.label = f"{config.project}/{env}"
        self.jobs: list[tuple[str, str, dict[str, str]]] = []  # (create operation, step, tags)
        self.sizes: dict[tuple[str, str], list[str]] = {}  # (operation, step) -> the instance types it names
        self.generated: list[tuple[str, str, dict[str, str]]] = []  # (IAM type, logical id, tags)
        self.pipeline_roles: list[Role] = []
        for stack in stacks(outdir):
            if stack.stage != env:
                continue
            for request in rs.pipeline_requests(stack.construct_id, stack.template):
                if request.operation in JOBS:
                    tags = {t["Key"]: t["Value"] for t in request.params.get("Tags") or []}
                    self.jobs.append((request.operation, request.step, tags))
                    self.sizes[(request.operation, request.step)] = list(instance_types(request)[0])
            for logical_id, resource in stack.template["Resources"].items():
                if resource["Type"] in GENERATED:
                    tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags") or []}
                    self.generated.append((GENERATED[resource["Type"]], logical_id, tags))
        for label, _, props in self.iam.resources("AWS::SageMaker::Pipeline"):
            self.pipeline_roles.append(self.iam.role(self.iam.resolve(label, props["RoleArn"])))
        assert self.jobs and self.pipeline_roles, f"{self.label}: no pipeline job requests found; the checks would prove nothing"

    @property
    def deployer(self) -> Role:
        return self.iam.role(f"{self.config.project}-{self.env}-serving-deployer")

    def arn(self, resource: str) -> str:
        """An ARN in this side's own account and region (where the other side's resources are put)."""
        return f"arn:aws:sagemaker:{self.iam.region}:{self.iam.account}:{resource}"

    def owner(self) -> dict[str, str]:
        return {key: self.tags[key] for key in OWNER_TAGS}


def _resource_tags(tags: dict[str, str]) -> dict[str, str]:
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}


def _request_tags(tags: dict[str, str]) -> dict[str, str]:
    return {f"aws:RequestTag/{k}": v for k, v in tags.items()}


def _job_arn(side: Side, operation: str, step: str, execution: str) -> tuple[str, str, str]:
    iam_type, noun = JOBS[operation]
    return iam_type, noun, side.arn(f"{iam_type}/pipelines-{execution}-{step}-Xa9Yq2Zk3L")


@pytest.fixture(scope="module")
def sides(synthesized, other_project) -> list[Side]:
    """Every environment of the user's config, and the first environment of the same config as another project."""
    return ([Side(synthesized.config, synthesized.outdir, e) for e in synthesized.config.environments]
            + [Side(other_project.config, other_project.outdir, other_project.env)])


def _pairs(sides: list[Side]):
    for mine in sides:
        for theirs in sides:
            if theirs is not mine:
                yield mine, theirs


def test_the_sides_are_tagged_apart(sides):
    """GIVEN the environments of two projects WHEN their job requests, models and endpoint configs are read THEN each
    carries its own project and environment tags (what the roles' conditions compare), and no two sides share both."""
    for side in sides:
        for operation, step, tags in side.jobs:
            assert {k: tags.get(k) for k in OWNER_TAGS} == side.owner(), f"{side.label} {operation} {step}: {tags}"
        for iam_type, logical_id, tags in side.generated:
            assert {k: tags.get(k) for k in OWNER_TAGS} == side.owner(), f"{side.label} {iam_type} {logical_id}: {tags}"
    owners = [tuple(sorted(s.owner().items())) for s in sides]
    assert len(set(owners)) == len(owners)
    assert len({s.config.project for s in sides}) == 2


def test_a_pipeline_role_may_not_stop_describe_or_tag_another_sides_jobs(sides):
    """GIVEN each pipeline role of each side (SageMaker Pipelines passes it to the jobs, so job code holds it) WHEN it
    asks to stop, describe or tag a job of another environment or project, as that job is tagged THEN each is denied,
    also when it would write its own tags over theirs."""
    allowed = []
    for mine, theirs in _pairs(sides):
        for role in mine.pipeline_roles:
            for operation, step, tags in theirs.jobs:
                iam_type, noun, arn = _job_arn(mine, operation, step, "0zt8m4r2pq6d")
                context = _resource_tags(tags)
                asks = [(f"sagemaker:Stop{noun}", context), (f"sagemaker:Describe{noun}", context),
                        ("sagemaker:AddTags", {**context, **_request_tags(mine.tags)}),
                        ("sagemaker:AddTags", {**context, **_request_tags({"note": "x"})})]
                if operation == "CreateHyperParameterTuningJob":
                    asks.append(("sagemaker:ListTrainingJobsForHyperParameterTuningJob", context))
                for action, ctx in asks:
                    if authorize(role, action, {iam_type: arn}, ctx).allowed:
                        allowed.append(f"{mine.label} {role} {action} {theirs.label}'s {arn}")
    assert allowed == [], "\n".join(allowed)


def test_a_pipeline_role_still_runs_its_own_jobs(sides):
    """GIVEN each pipeline role WHEN SageMaker Pipelines creates, tags, describes and stops the jobs of its own
    environment, tagged as they are created, and before their tags reach authorization (tag propagation: no tag yet)
    THEN every call is allowed; relabelling its own job as another side's, or starting one tagged as theirs, is
    denied."""
    problems = []
    for side in sides:
        others = [s for s in sides if s is not side]
        for role in side.pipeline_roles:
            for operation, step, tags in side.jobs:
                iam_type, noun, arn = _job_arn(side, operation, step, "a1b2c3d4e5f6")
                sized = {INSTANCE_TYPES: side.sizes[(operation, step)]}
                if not authorize(role, f"sagemaker:{operation}", {iam_type: arn}, {**sized, **_request_tags(tags)}).allowed:
                    problems.append(f"{side.label} {role} may not start its own {arn}")
                for context in (_resource_tags(tags), {}):
                    for action, ctx in ((f"sagemaker:Stop{noun}", context), (f"sagemaker:Describe{noun}", context),
                                        ("sagemaker:AddTags", {**context, **_request_tags(tags)}),
                                        # SageMaker Pipelines' own sagemaker:pipeline-* tags name no owner tag.
                                        ("sagemaker:AddTags", {**context, "aws:RequestTag/sagemaker:pipeline-step-name": step})):
                        decision = authorize(role, action, {iam_type: arn}, ctx)
                        if not decision.allowed:
                            problems.append(f"{side.label} {role} may not {action} its own {arn} {ctx}")
                for other in others:
                    relabel = {**_resource_tags(tags), **_request_tags(other.owner())}
                    if authorize(role, "sagemaker:AddTags", {iam_type: arn}, relabel).allowed:
                        problems.append(f"{side.label} {role} may relabel its own {arn} as {other.label}'s")
                    # A job it starts tagged as another side's (its cost billed to them), as its step asks otherwise.
                    if authorize(role, f"sagemaker:{operation}", {iam_type: arn},
                                 {**sized, **_request_tags(other.owner())}).allowed:
                        problems.append(f"{side.label} {role} may start a job tagged as {other.label}'s")
    assert problems == [], "\n".join(problems)


def test_a_pipeline_role_may_not_touch_another_sides_tagged_experiments_or_lineage(sides):
    """GIVEN each pipeline role WHEN it asks to update, associate or link an experiment, trial component or lineage
    entity tagged as another side's THEN it is denied (entities SageMaker creates untagged stay reachable: docs/reviewing-deploying-auditing.md, Environments and projects sharing an account)."""
    allowed = []
    for mine, theirs in _pairs(sides):
        context = _resource_tags(theirs.owner())
        for role in mine.pipeline_roles:
            for action, resources in (
                ("sagemaker:UpdateTrialComponent", {"experiment-trial-component": mine.arn("experiment-trial-component/x")}),
                # The authorization data lists every lineage type as required: one request names one of each.
                ("sagemaker:AddAssociation", {t: mine.arn(f"{t}/0123456789abcdef") for t in LINEAGE_TYPES}),
                ("sagemaker:DescribeExperiment", {"experiment": mine.arn("experiment/theirs")}),
            ):
                if authorize(role, action, resources, context).allowed:
                    allowed.append(f"{mine.label} {role} {action} {theirs.label}'s {resources}")
    assert allowed == [], "\n".join(allowed)


def test_the_serving_deployer_may_not_delete_or_retag_another_sides_models_and_configs(sides):
    """GIVEN each serving deployer WHEN it asks to delete, describe, tag or untag another side's model or endpoint
    config (as its template tags it), or to create one tagged as another side's THEN each is denied; its own (tagged,
    or before the tags reach authorization) it may create, tag, describe and delete."""
    problems = []
    for mine, theirs in _pairs(sides):
        deployer = mine.deployer
        for iam_type, logical_id, tags in theirs.generated:
            arn = mine.arn(f"{iam_type}/{logical_id.lower()}-k3j5bq0xwz1a")
            context = _resource_tags(tags)
            verb = "Model" if iam_type == "model" else "EndpointConfig"
            for action, ctx in ((f"sagemaker:Delete{verb}", context), (f"sagemaker:Describe{verb}", context),
                                ("sagemaker:AddTags", {**context, **_request_tags(mine.tags)}),
                                ("sagemaker:DeleteTags", context)):
                if authorize(deployer, action, {iam_type: arn}, ctx).allowed:
                    problems.append(f"{mine.label} {deployer} may {action} {theirs.label}'s {arn}")
        foreign = _request_tags(theirs.owner())
        if authorize(deployer, "sagemaker:CreateModel", {"model": mine.arn("model/x-k3j5bq0xwz1a")}, foreign).allowed:
            problems.append(f"{mine.label} {deployer} may create a model tagged as {theirs.label}'s")
    for side in sides:
        deployer = side.deployer
        for iam_type, logical_id, tags in side.generated:
            arn = side.arn(f"{iam_type}/{logical_id.lower()}-k3j5bq0xwz1a")
            verb = "Model" if iam_type == "model" else "EndpointConfig"
            for context in (_resource_tags(tags), {}):
                for action, ctx in ((f"sagemaker:Delete{verb}", context), (f"sagemaker:Describe{verb}", context),
                                    ("sagemaker:AddTags", {**context, **_request_tags(tags)}),
                                    ("sagemaker:DeleteTags", context)):
                    if not authorize(deployer, action, {iam_type: arn}, ctx).allowed:
                        problems.append(f"{side.label} {deployer} may not {action} its own {arn} {ctx}")
    assert problems == [], "\n".join(problems)

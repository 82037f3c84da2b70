"""The SageMaker job requests an app's templates make, as IAM requests of the roles that make them.

The jobs of a pipeline's steps are created by the pipeline's role, those of a schedule's universal target
(drift monitor, batch transform) by the schedule's role (:mod:`request_shapes` finds both requests). Each
becomes a :class:`JobRequest`: the role, the create action, the ARN of the job it creates (named as SageMaker
Pipelines and Scheduler name them) and its ``sagemaker:InstanceTypes`` (a pipeline parameter stands for its
default: what a run that overrides nothing asks for). :meth:`JobRequest.resized` is the same request on
another type, e.g. what a run overriding ``TrainingInstanceType`` asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from mlops_loop.config.instance_types import JOB_RESOURCES
from tests.support import request_shapes as rs
from tests.support.iam_eval import Decision, IamModel, Role, authorize

INSTANCE_TYPES = "sagemaker:InstanceTypes"
# Create operation -> IAM resource type of the job (where its request names the instance type: JOB_RESOURCES).
JOB_OPERATIONS: Mapping[str, str] = {
    "CreateTrainingJob": "training-job",
    "CreateHyperParameterTuningJob": "hyper-parameter-tuning-job",
    "CreateProcessingJob": "processing-job",
    "CreateTransformJob": "transform-job",
}
EXECUTION = "0f8fad5b-d9cb-469f-a165-70867728950e"  # a Scheduler execution id / pipeline execution, as AWS fills it in


@dataclass(frozen=True)
class JobRequest:
    """A create call for one job: who makes it, on which job ARN, with which instance types."""

    label: str  # where the request is (``<stack>/<logical id>: <kind> <operation>``)
    role: Role
    action: str
    resource_type: str
    arn: str
    instance_types: tuple[str, ...]
    tagged: bool  # the request carries Tags (then AddTags on the new job is authorized too)
    parameter: Optional[str] = field(default=None)  # the pipeline parameter the type comes from, if any

    def decide(self, instance_types: Optional[tuple[str, ...]] = None) -> Decision:
        """The create call with ``instance_types`` (default: the request's own; ``()`` names none)."""
        types = self.instance_types if instance_types is None else instance_types
        context = {INSTANCE_TYPES: list(types)} if types else {}
        return authorize(self.role, self.action, {self.resource_type: self.arn}, context)

    def resized(self, instance_type: str) -> Decision:
        """The same call on ``instance_type`` (e.g. a run that overrides the step's instance-type parameter)."""
        return self.decide(tuple(instance_type for _ in self.instance_types))


def instance_types(request: rs.ApiRequest) -> tuple[tuple[str, ...], Optional[str]]:
    """The instance types ``request`` names (a pipeline parameter's default for ``{"Get": "Parameters.X"}``) and the
    parameter they come from (None for a literal)."""
    value: Any = request.params
    for member in (*JOB_RESOURCES[request.operation], "InstanceType"):
        value = value[member]
    if isinstance(value, dict) and str(value.get("Get", "")).startswith("Parameters."):
        name = value["Get"].split(".", 1)[1]
        return (request.parameters[name]["DefaultValue"],), name
    if not isinstance(value, str):
        raise ValueError(f"{request.label}: instance type {value!r} is neither a literal nor a pipeline parameter")
    return (value,), None


def job_requests(iam: IamModel) -> list[JobRequest]:
    """Every job create call of the loaded stacks' pipelines and universal-target schedules, in template order."""
    out = []
    for label, stack in iam.stacks.items():
        template = stack.template
        for request in rs.requests_in(label, template):
            if request.operation not in JOB_OPERATIONS:
                continue
            resource_type = JOB_OPERATIONS[request.operation]
            logical_id = request.source.split("/", 1)[1]
            props = template["Resources"][logical_id]["Properties"]
            if request.kind == rs.PIPELINE_STEP:
                role = iam.role(iam.resolve(label, props["RoleArn"]))
                # SageMaker Pipelines names a step's job pipelines-<execution>-<step>-<suffix>; ARNs are lower case.
                name = f"pipelines-{EXECUTION[:12]}-{request.step}-a1b2c3d4e5".lower()
            else:
                role = iam.role(iam.resolve(label, props["Target"]["RoleArn"]))
                # A scheduled run names its job <stem>-<execution id> (ProcessingJobName, TransformJobName).
                name = str(request.params[request.operation.removeprefix("Create") + "Name"]).replace(
                    "<aws.scheduler.execution-id>", EXECUTION).lower()
            types, parameter = instance_types(request)
            arn = f"arn:{iam.partition}:sagemaker:{iam.region}:{iam.account}:{resource_type}/{name}"
            out.append(JobRequest(request.label, role, f"sagemaker:{request.operation}", resource_type, arn, types,
                                  tagged="Tags" in request.params, parameter=parameter))
    return out

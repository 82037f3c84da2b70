"""Every AWS API request the templates carry matches the SDK's service model (botocore, offline).

CloudFormation passes EventBridge Scheduler universal-target inputs and SageMaker pipeline step
arguments to AWS unread, and AWS validates them only when a schedule fires or a step runs. These
tests validate each of them at synth (``request_shapes.py``) in every environment of the sample app,
in the ``modes`` environment (batch transform) and in the tuning variant of the pipeline, and pin
the message for deliberately broken copies of real requests:
``<env>/<Stack>/<LogicalId>: <scheduler target | pipeline step <Name>> <service>:<Operation>: <problem>``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any, Callable

import pytest

from mlops_loop.tools.cloud_assembly import stacks
from mlops_loop.training import build_pipeline_definition

from tests.support import pipeline_specs as specs
from tests.support import request_shapes as rs


def _all_requests(templates: dict[str, dict]) -> list[rs.ApiRequest]:
    return [r for label, template in templates.items() for r in rs.requests_in(label, template)]


@pytest.fixture(scope="module")
def sample_templates(synthesized) -> dict[str, dict]:
    """Every stack of every environment of the sample app, by ``<env>/<Stack>``."""
    return {f"{env}/{stack}": s.template for (env, stack), s in sorted(synthesized.stacks.items())}


@pytest.fixture(scope="module")
def sample_requests(sample_templates) -> list[rs.ApiRequest]:
    return _all_requests(sample_templates)


@pytest.fixture(scope="module")
def modes_requests(modes) -> list[rs.ApiRequest]:
    """Every request in every stack of the ``modes`` environment."""
    return _all_requests({f"{s.stage}/{s.construct_id}": s.template for s in stacks(modes.outdir)})


@pytest.fixture(scope="module")
def tuning_requests() -> list[rs.ApiRequest]:
    """The steps of the pipeline an environment with ``hyperparameter_tuning`` deploys (the sample
    config trains once, so no synthesized template has a tuning step)."""
    text = build_pipeline_definition(specs.replace(specs.base_spec(), enable_tuning=True))
    return rs.definition_requests("tuning/Definition", json.loads(text))


def _of(requests: list[rs.ApiRequest], kind: str, operation: str = "") -> list[rs.ApiRequest]:
    return [r for r in requests if r.kind == kind and operation in ("", r.operation)]


def _step(requests: list[rs.ApiRequest], name: str) -> rs.ApiRequest:
    return next(r for r in requests if r.kind == rs.PIPELINE_STEP and r.step == name)


def _broken(request: rs.ApiRequest, edit: Callable[[dict], Any]) -> rs.ApiRequest:
    """A copy of ``request`` whose parameters ``edit`` changed in place (the original stays intact)."""
    params = copy.deepcopy(dict(request.params))
    edit(params)
    return dataclasses.replace(request, params=params)


def _edited_strings(value: Any, old: str, new: str) -> Any:
    """``value`` (a template fragment) with ``old`` replaced by ``new`` in every string in it."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_edited_strings(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _edited_strings(v, old, new) for k, v in value.items()}
    return value


def _with_resource(template: dict, logical_id: str, old: str, new: str) -> dict:
    """A copy of ``template`` whose resource ``logical_id`` has ``old`` replaced by ``new`` in its strings."""
    resources = dict(template["Resources"])
    resources[logical_id] = _edited_strings(resources[logical_id], old, new)
    return {**template, "Resources": resources}


def _split(source: str) -> tuple[str, str]:
    """``<env>/<Stack>/<LogicalId>`` -> (``<env>/<Stack>``, ``<LogicalId>``)."""
    label, logical_id = source.rsplit("/", 1)
    return label, logical_id


def test_every_scheduler_target_request_of_the_sample_app_is_valid(sample_requests):
    """GIVEN every schedule whose target is an AWS API (the drift monitors' Processing jobs) in every
    environment WHEN its input is validated against that API's request shape THEN nothing is reported."""
    scheduled = _of(sample_requests, rs.SCHEDULER_TARGET)
    assert scheduled, "no universal-target schedule found: nothing was checked"
    assert rs.problems(scheduled) == []


def test_every_pipeline_step_request_of_the_sample_app_is_valid(sample_requests, sample_templates):
    """GIVEN every step of every SageMaker pipeline in every environment WHEN its arguments are
    validated against the request of the SageMaker API that runs it THEN nothing is reported."""
    steps = _of(sample_requests, rs.PIPELINE_STEP)
    pipelines = {
        f"{label}/{logical_id}"
        for label, template in sample_templates.items()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SageMaker::Pipeline"
    }
    assert pipelines and {r.source for r in steps} == pipelines  # every pipeline yielded its steps
    assert {"CreateProcessingJob", "CreateTrainingJob", "CreateModelPackage"} <= {r.operation for r in steps}
    assert rs.problems(steps) == []


def test_every_request_of_the_modes_environment_is_valid(modes_requests):
    """GIVEN the environment that serves every mode WHEN all its requests are validated THEN the batch
    transform schedule (CreateTransformJob), the monitors and the pipeline steps are all valid."""
    assert _of(modes_requests, rs.SCHEDULER_TARGET, "CreateTransformJob")
    assert _of(modes_requests, rs.SCHEDULER_TARGET, "CreateProcessingJob")
    assert _of(modes_requests, rs.PIPELINE_STEP)
    assert rs.problems(modes_requests) == []


def test_every_request_of_the_tuning_pipeline_is_valid(tuning_requests):
    """GIVEN the tuning variant of the pipeline WHEN its steps are validated THEN the tuning job
    (CreateHyperParameterTuningJob) and the other steps are valid."""
    assert _of(tuning_requests, rs.PIPELINE_STEP, "CreateHyperParameterTuningJob")
    assert rs.problems(tuning_requests) == []


def test_a_scheduler_target_without_a_required_member_is_reported(sample_requests):
    """GIVEN a drift-monitor schedule's input without RoleArn WHEN validated THEN botocore's message
    names the stack, the schedule, the target's operation and the member."""
    request = _of(sample_requests, rs.SCHEDULER_TARGET, "CreateProcessingJob")[0]
    broken = _broken(request, lambda p: p.pop("RoleArn"))
    assert rs.validate(broken) == [
        f"{request.source}: scheduler target sagemaker:CreateProcessingJob: Missing required parameter in input: \"RoleArn\""
    ]


def test_a_misspelled_member_in_a_schedules_template_input_is_reported(sample_templates, sample_requests):
    """GIVEN a schedule in the template whose Input spells ImageUri as ImageURI WHEN the template's
    requests are validated THEN the missing and the unknown member are both reported."""
    request = _of(sample_requests, rs.SCHEDULER_TARGET, "CreateProcessingJob")[0]
    label, logical_id = _split(request.source)
    template = _with_resource(sample_templates[label], logical_id, '"ImageUri":', '"ImageURI":')
    assert rs.problems(rs.scheduler_requests(label, template)) == [
        f"{request.source}: scheduler target sagemaker:CreateProcessingJob: Missing required parameter in AppSpecification: \"ImageUri\"",
        f"{request.source}: scheduler target sagemaker:CreateProcessingJob: Unknown parameter in AppSpecification: "
        "\"ImageURI\", must be one of: ImageUri, ContainerEntrypoint, ContainerArguments",
    ]


def test_a_misspelled_scheduler_action_is_reported(sample_templates, sample_requests):
    """GIVEN a schedule whose target ARN names createProcesingJob WHEN validated THEN the operation is
    reported unknown (Scheduler would fail every run)."""
    request = _of(sample_requests, rs.SCHEDULER_TARGET, "CreateProcessingJob")[0]
    label, logical_id = _split(request.source)
    template = _with_resource(sample_templates[label], logical_id, ":createProcessingJob", ":createProcesingJob")
    assert rs.problems(rs.scheduler_requests(label, template)) == [
        f"{request.source}: scheduler target sagemaker:CreateProcesingJob: no such operation in botocore's service models"
    ]


def test_a_batch_transform_with_a_wrong_type_and_a_missing_member_is_reported(modes_requests):
    """GIVEN the batch-transform schedule's input with MaxConcurrentTransforms as a string and no
    TransformOutput WHEN validated THEN both are reported, the missing member first."""
    request = _of(modes_requests, rs.SCHEDULER_TARGET, "CreateTransformJob")[0]

    def edit(params: dict) -> None:
        params["MaxConcurrentTransforms"] = str(params["MaxConcurrentTransforms"])
        params.pop("TransformOutput")

    value = request.params["MaxConcurrentTransforms"]
    prefix = f"{request.source}: scheduler target sagemaker:CreateTransformJob"
    assert rs.validate(_broken(request, edit)) == [
        f"{prefix}: Missing required parameter in input: \"TransformOutput\"",
        f"{prefix}: Invalid type for parameter MaxConcurrentTransforms, value: {value}, type: <class 'str'>, "
        "valid types: <class 'int'>",
    ]


def test_a_pipeline_step_without_a_required_member_is_reported(sample_requests):
    """GIVEN the Train step of a real pipeline without RoleArn, and the Prepare step without
    AppSpecification WHEN validated THEN each message names the pipeline, the step and the member."""
    train = _step(sample_requests, "Train")
    prepare = next(r for r in sample_requests if r.source == train.source and r.step == "Prepare")
    assert rs.validate(_broken(train, lambda p: p.pop("RoleArn"))) == [
        f"{train.source}: pipeline step Train sagemaker:CreateTrainingJob: Missing required parameter in input: \"RoleArn\""
    ]
    assert rs.validate(_broken(prepare, lambda p: p.pop("AppSpecification"))) == [
        f"{prepare.source}: pipeline step Prepare sagemaker:CreateProcessingJob: Missing required parameter in input: "
        "\"AppSpecification\""
    ]


def test_a_wrong_type_in_a_pipeline_step_is_reported(sample_requests):
    """GIVEN the Prepare step with its instance count as a string WHEN validated THEN botocore reports
    the member's path, the value and both types."""
    prepare = _step(sample_requests, "Prepare")
    broken = _broken(prepare, lambda p: p["ProcessingResources"]["ClusterConfig"].update(InstanceCount="1"))
    assert rs.validate(broken) == [
        f"{prepare.source}: pipeline step Prepare sagemaker:CreateProcessingJob: Invalid type for parameter "
        "ProcessingResources.ClusterConfig.InstanceCount, value: 1, type: <class 'str'>, valid types: <class 'int'>"
    ]


def test_a_pipeline_parameter_of_the_wrong_declared_type_is_reported(sample_templates, sample_requests):
    """GIVEN a pipeline in the template whose TrainingInstanceCount parameter is declared String WHEN
    validated THEN the Train step's ResourceConfig.InstanceCount (an integer) is reported, as
    SageMaker would reject the value at run time."""
    train = _step(sample_requests, "Train")
    assert train.params["ResourceConfig"]["InstanceCount"] == {"Get": "Parameters.TrainingInstanceCount"}
    label, logical_id = _split(train.source)
    # The definition is JSON text (in Fn::Join parts), so the declaration is edited as text.
    declaration = '"Name": "TrainingInstanceCount", "Type": '
    template = _with_resource(sample_templates[label], logical_id, declaration + '"Integer"', declaration + '"String"')
    assert template != sample_templates[label]
    default = train.parameters["TrainingInstanceCount"]["DefaultValue"]
    assert rs.problems([r for r in rs.pipeline_requests(label, template) if r.source == train.source]) == [
        f"{train.source}: pipeline step Train sagemaker:CreateTrainingJob: Invalid type for parameter "
        f"ResourceConfig.InstanceCount, value: {default}, type: <class 'str'>, valid types: <class 'int'>"
    ]


@pytest.mark.parametrize(
    "path, value, problem",
    [
        (
            ("ResourceConfig", "VolumeSizeInGB"),
            {"Std:Join": {"On": "", "Values": ["3", "0"]}},
            "Invalid type for parameter ResourceConfig.VolumeSizeInGB, value: 30, type: <class 'str'>, valid types: <class 'int'>",
        ),
        (
            ("ResourceConfig", "VolumeSizeInGB"),
            {"Get": "Execution.PipelineExecutionId"},
            "Invalid type for parameter ResourceConfig.VolumeSizeInGB, value: <Execution.PipelineExecutionId>, "
            "type: <class 'str'>, valid types: <class 'int'>",
        ),
        (
            ("ResourceConfig",),
            {"Get": "Steps.Prepare.ProcessingResources"},
            'Placeholder where a structure is expected at ResourceConfig: {"Get": "Steps.Prepare.ProcessingResources"}',
        ),
        (
            ("ResourceConfig", "InstanceType"),
            {"Get": "Parameters.NoSuchParameter"},
            'Undeclared pipeline parameter at ResourceConfig.InstanceType: "NoSuchParameter"',
        ),
        (
            ("RoleArn",),
            {"Fn::GetAtt": ["ChurnRole", "Arn"]},
            "Unquoted CloudFormation value where a string is expected at RoleArn (it resolves to text that is not JSON): "
            '{"Fn::GetAtt": ["ChurnRole", "Arn"]}',
        ),
    ],
)
def test_a_placeholder_that_cannot_stand_where_it_is_is_reported(sample_requests, path, value, problem):
    """GIVEN the Train step with a pipeline or CloudFormation placeholder at a member it cannot fill
    (a join or execution variable at an integer, a property at a structure, an undeclared parameter,
    an unquoted ARN) WHEN validated THEN exactly that is reported."""
    train = _step(sample_requests, "Train")

    def edit(params: dict) -> None:
        parent = params
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value

    assert rs.validate(_broken(train, edit)) == [f"{train.source}: pipeline step Train sagemaker:CreateTrainingJob: {problem}"]


def test_only_the_job_name_is_left_to_sagemaker_pipelines(sample_requests):
    """GIVEN a real Processing step WHEN validated as the bare API request (nothing filled in) THEN the
    job name, which Pipelines generates, is the only thing missing; a name written in the step is
    still validated."""
    prepare = _step(sample_requests, "Prepare")
    assert prepare.filled == ("ProcessingJobName",)
    prefix = f"{prepare.source}: pipeline step Prepare sagemaker:CreateProcessingJob"
    assert rs.validate(dataclasses.replace(prepare, filled=())) == [
        f"{prefix}: Missing required parameter in input: \"ProcessingJobName\""
    ]
    assert rs.validate(_broken(prepare, lambda p: p.update(ProcessingJobName=""))) == [
        f"{prefix}: Invalid length for parameter ProcessingJobName, value: 0, valid min length: 1"
    ]


def test_a_pipeline_step_type_without_a_known_request_is_refused():
    """GIVEN a definition with a step type this module does not map WHEN its requests are collected
    THEN it raises naming the step, instead of skipping an unvalidated request."""
    definition = {"Steps": [{"Name": "Deploy", "Type": "Endpoint", "Arguments": {}}]}
    with pytest.raises(rs.RequestShapeError, match="pipeline step Deploy has type 'Endpoint', unknown here"):
        rs.definition_requests("dev/Training/Pipeline", definition)

"""Where a SageMaker create request names what its job runs on (``JOB_RESOURCES``) agrees with the API.

The scheduled jobs' IAM scoping, the instance-offers check, the cost floor and the instance-limit tests all read
the table; botocore's SageMaker service model (each operation's input shape) is the API's own definition of it.
"""

from __future__ import annotations

from typing import Iterator, Optional

import botocore.session
import pytest
from botocore.model import Shape

from mlops_loop.config.instance_types import JOB_RESOURCES

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def _member(api: str, path: tuple[str, ...]) -> Optional[Shape]:
    """The shape at ``path`` in ``api``'s request, None when the request has no such member."""
    shape: Optional[Shape] = SAGEMAKER.operation_model(api).input_shape
    for key in path:
        shape = shape.members.get(key) if shape is not None and shape.type_name == "structure" else None
    return shape


def _instance_types(shape: Shape, path: tuple = (), seen: frozenset = frozenset()) -> Iterator[tuple[str, ...]]:
    """The path of every InstanceType member under ``shape`` (a list's items as ``[]``)."""
    if shape.type_name == "list":
        yield from _instance_types(shape.member, (*path, "[]"), seen)
    elif shape.type_name == "structure" and shape.name not in seen:
        for key, member in shape.members.items():
            if key == "InstanceType":
                yield (*path, key)
            yield from _instance_types(member, (*path, key), seen | {shape.name})


@pytest.mark.parametrize("api", sorted(JOB_RESOURCES))
def test_each_path_holds_the_instance_type_and_count_in_the_request_of_its_api(api):
    resources = _member(api, JOB_RESOURCES[api])
    assert resources is not None and resources.type_name == "structure", (api, JOB_RESOURCES[api])
    assert resources.members["InstanceType"].name.endswith("InstanceType")
    assert resources.members["InstanceCount"].name.endswith("InstanceCount")


def test_every_instance_type_a_job_request_names_lies_under_the_first_member_of_its_path():
    """What the instance-offers check relies on: all beneath that member runs as the job. Outside it: a training job's
    debugger and profiler rules (processing jobs beside it, not checked) and a tuning job's TrainingJobDefinitions
    (several algorithms, each a TrainingJobDefinition: checked as training too). A TrainingJobDefinition may give
    HyperParameterTuningResourceConfig (a choice of types) instead of ResourceConfig."""
    outside = {api: {p[0] for p in _instance_types(SAGEMAKER.operation_model(api).input_shape) if p[0] != path[0]}
               for api, path in JOB_RESOURCES.items()}
    assert outside == {"CreateProcessingJob": set(), "CreateTransformJob": set(),
                       "CreateTrainingJob": {"DebugRuleConfigurations", "ProfilerRuleConfigurations"},
                       "CreateHyperParameterTuningJob": {"TrainingJobDefinitions"}}
    assert _member("CreateHyperParameterTuningJob", ("TrainingJobDefinition", "HyperParameterTuningResourceConfig",
                                                     "InstanceType")) is not None


def test_a_path_the_api_lacks_is_seen():
    """Non-vacuity: a transform job has no cluster config, a processing job no top-level ResourceConfig."""
    assert _member("CreateTransformJob", ("TransformResources", "ClusterConfig")) is None
    assert _member("CreateProcessingJob", ("ResourceConfig",)) is None

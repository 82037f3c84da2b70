"""The environment's VPC in the pipeline definition: every processing, training and tuning job runs in it.

GIVEN the dev churn spec with subnets and security groups WHEN the definition is generated THEN each job's
request carries exactly those ids (network isolation and inter-container encryption as without a VPC); without
them no job has a VpcConfig; and a definition built for one network is never served for another.
"""

from __future__ import annotations

import dataclasses

import pytest

from mlops_loop.training import build_pipeline_definition, step_graph
from mlops_loop.training import sdk_cache
from mlops_loop.training.names import STEP_TRAIN, STEP_TUNE
from mlops_loop.training.tokens import with_placeholders
from tests.support import pipeline_specs as specs

SUBNETS = ("subnet-0123456789abcdef0", "subnet-0fedcba9")
GROUPS = ("sg-0123456789abcdef0",)
VPC = {"SecurityGroupIds": list(GROUPS), "Subnets": list(SUBNETS)}


def _jobs(definition: str) -> dict[str, dict]:
    """The request of every step that starts a job (processing, training, tuning), by step name."""
    return {name: step["Arguments"] for name, step in step_graph(definition).items()
            if step["Type"] in ("Processing", "Training", "Tuning")}


def _network_of(step: str, arguments: dict) -> tuple:
    """(VpcConfig, isolation, encryption) of a step's request, wherever its API keeps them."""
    if "NetworkConfig" in arguments:  # CreateProcessingJob
        config = arguments["NetworkConfig"]
        return config.get("VpcConfig"), config["EnableNetworkIsolation"], config["EnableInterContainerTrafficEncryption"]
    job = arguments["TrainingJobDefinition"] if step == STEP_TUNE else arguments
    return job.get("VpcConfig"), job["EnableNetworkIsolation"], job["EnableInterContainerTrafficEncryption"]


@pytest.fixture(scope="module", params=[False, True], ids=["training", "tuning"])
def pair(request) -> tuple[dict, dict]:
    """The jobs of one spec built without and with the VPC."""
    plain = specs.replace(specs.base_spec(), enable_tuning=request.param)
    in_vpc = specs.replace(plain, subnet_ids=SUBNETS, security_group_ids=GROUPS)
    return _jobs(build_pipeline_definition(plain)), _jobs(build_pipeline_definition(in_vpc))


def test_every_job_runs_in_the_configured_vpc(pair):
    _, jobs = pair
    assert STEP_TRAIN in jobs or STEP_TUNE in jobs
    assert {step: _network_of(step, arguments)[0] for step, arguments in jobs.items()} == {step: VPC for step in jobs}


def test_without_a_network_no_job_has_a_vpc_config_and_isolation_is_unchanged(pair):
    plain, in_vpc = pair
    assert all(_network_of(step, arguments)[0] is None for step, arguments in plain.items())
    # The VPC changes where the jobs run, not whether they are isolated or encrypt their traffic.
    assert {s: _network_of(s, a)[1:] for s, a in plain.items()} == {s: _network_of(s, a)[1:] for s, a in in_vpc.items()}


def test_the_network_is_part_of_the_definition_cache_key():
    spec = specs.base_spec()
    key = lambda s: sdk_cache.sdk_cache().key("pipeline-definition", dataclasses.asdict(with_placeholders(s)[0]))  # noqa: E731
    in_vpc = specs.replace(spec, subnet_ids=SUBNETS, security_group_ids=GROUPS)
    other_groups = specs.replace(in_vpc, security_group_ids=("sg-0fedcba9",))
    assert len({key(spec), key(in_vpc), key(other_groups)}) == 3


@pytest.mark.parametrize(("changes", "problem"), [
    ({"subnet_ids": SUBNETS}, "subnet_ids: subnet_ids and security_group_ids go together (a VpcConfig needs both)"),
    ({"subnet_ids": ("subnet-1",), "security_group_ids": GROUPS}, "subnet_ids: must be a tuple of ids matching"),
    ({"subnet_ids": SUBNETS, "security_group_ids": tuple(f"sg-{i:08x}" for i in range(6))},
     "security_group_ids: must hold at most 5 distinct ids"),
])
def test_a_bad_network_in_a_spec_is_refused_naming_the_field(changes, problem):
    with pytest.raises(ValueError, match="invalid PipelineSpec") as caught:
        specs.replace(specs.base_spec(), **changes)
    assert problem in str(caught.value)

"""A whole environment inside the user's VPC, synthesized with the nag packs on and linted with cfn-lint.

GIVEN a config of its own (``tests.support.construct_configs``: one dataset, models served real-time with scoring
by id, async and batch, not the sample line-up) whose environment sets ``network`` WHEN that environment is
synthesized THEN the templates pass cdk-nag and cfn-lint, and every place compute runs names exactly the configured
subnets and security groups: the pipeline's jobs, the drift monitors' jobs, the models, the Lambda functions and the
Glue jobs and crawler (through one NETWORK connection). (Its budget, which emails two addresses, is read by
tests/infra/test_budget_config.py from the same synth.)
"""

from __future__ import annotations

import re
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_loop.config import parse_config
from mlops_loop.config.vpc_endpoints import INTERFACE_ENDPOINT_SERVICES, VPC_ENDPOINT_SERVICES
from mlops_loop.tools.cloud_assembly import nag_violations, stacks
from mlops_loop.tools.cost_floor import PRICES, floor_report
from mlops_loop.tools.lint import lint_cache, lint_stacks
from mlops_loop.training import step_graph
from tests.support import docs
from tests.support.built_stack import scheduled_request
from tests.support.construct_configs import (NETWORK, NETWORK_ENVIRONMENT, network_environment_config,
                                             vpc_config_of_network)
from tests.support.templates import of_type

ENV = "dev"


@dataclass
class Synth:
    outdir: Path
    templates: dict[str, dict]  # stack construct id -> template


@pytest.fixture(scope="module")
def synth(synthesize_once) -> Synth:
    config = parse_config(network_environment_config(), source="network environment config")
    outdir = synthesize_once(NETWORK_ENVIRONMENT, config, [ENV])  # an unacknowledged cdk-nag finding raises here
    return Synth(outdir, {s.construct_id: s.template for s in stacks(outdir)})


def test_the_environment_passes_cfn_lint_and_the_nag_packs(synth: Synth):
    assert nag_violations(synth.outdir) == []
    result = lint_stacks(stacks(synth.outdir), cache=lint_cache())
    assert (result.errors, result.warnings) == (0, 0), "\n".join(result.lines)


def test_every_pipeline_job_runs_in_the_vpc(synth: Synth):
    pipelines = of_type(synth.templates["Training"], "AWS::SageMaker::Pipeline")
    assert len(pipelines) == 3
    for pipeline in pipelines.values():
        body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
        text = body if isinstance(body, str) else json.dumps(body)
        if not isinstance(body, str):  # tokens (bucket names, role ARNs) make it an Fn::Join; the VPC is literal
            assert text.count('\\"VpcConfig\\"') >= 4
            continue
        jobs = [s["Arguments"] for s in step_graph(text).values() if s["Type"] in ("Processing", "Training")]
        assert all((a.get("NetworkConfig") or a).get("VpcConfig") == vpc_config_of_network() for a in jobs)


def test_every_model_and_every_scheduled_job_runs_in_the_vpc(synth: Synth):
    models = of_type(synth.templates["Serving"], "AWS::SageMaker::Model")
    assert len(models) == 3
    assert all(m["Properties"]["VpcConfig"] == vpc_config_of_network() for m in models.values())
    monitors = [scheduled_request(s) for s in of_type(synth.templates["Operations"], "AWS::Scheduler::Schedule").values()
                if "createProcessingJob" in json.dumps(s["Properties"]["Target"]["Arn"])]
    assert len(monitors) == 3
    assert all(r["NetworkConfig"]["VpcConfig"] == vpc_config_of_network() for r in monitors)


def test_every_function_runs_in_the_vpc_without_a_security_group_of_its_own(synth: Synth):
    functions = {k: v for template in synth.templates.values() for k, v in of_type(template, "AWS::Lambda::Function").items()}
    assert functions
    assert {k: f["Properties"].get("VpcConfig") for k, f in functions.items()} == {
        k: {"SubnetIds": NETWORK["subnet_ids"], "SecurityGroupIds": NETWORK["security_group_ids"]} for k in functions}
    assert not [k for t in synth.templates.values() for k in of_type(t, "AWS::EC2::SecurityGroup")]


def test_the_glue_jobs_and_crawler_use_the_one_network_connection(synth: Synth):
    template = synth.templates["DataPipeline"]
    (connection_id,) = of_type(template, "AWS::Glue::Connection")
    jobs = of_type(template, "AWS::Glue::Job")
    assert jobs and all(j["Properties"]["Connections"] == {"Connections": [{"Ref": connection_id}]} for j in jobs.values())
    (crawler,) = of_type(template, "AWS::Glue::Crawler").values()
    assert [t["ConnectionName"] for t in crawler["Properties"]["Targets"]["S3Targets"]] == [{"Ref": connection_id}]


# The VPC endpoint service of each boto3 client the code running in AWS makes (docs/vpc.md, Running inside your VPC).
ENDPOINT_OF_CLIENT = {
    "s3": "s3", "sts": "sts", "sagemaker": "sagemaker.api", "sagemaker-runtime": "sagemaker.runtime",
    "sagemaker-featurestore-runtime": "sagemaker.featurestore-runtime", "cloudwatch": "monitoring", "logs": "logs",
    "kms": "kms", "glue": "glue", "cloudformation": "cloudformation", "sns": "sns", "scheduler": "scheduler", "ssm": "ssm",
    "sqs": "sqs",
}


def test_the_readme_lists_a_vpc_endpoint_for_every_service_the_code_running_in_aws_calls():
    """GIVEN every boto3 client the job, handler and serving code makes (``client("<service>")`` in pipeline_code)
    THEN the endpoint table of docs/vpc.md has a row for its endpoint service: without one, a VPC without internet egress
    breaks that call (the retrain trigger's SSM read was missing). Only the service's row is checked, not that its
    "Used by" cell names every caller."""
    root = Path(__file__).resolve().parents[2]
    called = set()
    for path in (root / "pipeline_code").rglob("*.py"):
        text = path.read_text()
        called |= set(re.findall(r"""client\(\s*["']([a-z0-9-]+)["']""", text))
        # clients made in a loop over their names: for name in ("s3", "sagemaker", ...): ... client(name)
        for names in re.findall(r"""for \w+ in \(((?:\s*["'][a-z0-9-]+["'],?)+)\)[^\n]*\n?[^\n]*client\(\w+""", text):
            called |= set(re.findall(r"""["']([a-z0-9-]+)["']""", names))
    assert {"sagemaker", "s3", "ssm", "cloudformation"} <= called  # the scan sees the clients
    missing = {service: ENDPOINT_OF_CLIENT.get(service, "?") for service in called
               if ENDPOINT_OF_CLIENT.get(service) not in VPC_ENDPOINT_SERVICES}
    assert not missing, f"VPC_ENDPOINT_SERVICES (mlops_loop/config/vpc_endpoints.py) and docs/vpc.md's table lack: {missing}"


def test_the_readme_endpoint_table_is_the_one_list_of_required_vpc_endpoints():
    """GIVEN the table of VPC endpoints (docs/vpc.md) (one row per service, or two services sharing a row) THEN its services
    and types are exactly ``VPC_ENDPOINT_SERVICES``, in order: the list the cost floor prices the interface endpoints
    from (one definition; a row added to one and not the other fails here)."""
    section = docs.section("## Running inside your VPC").text
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| `com.amazonaws.<region>.")]
    listed = {service: cells[2].strip() for cells in rows
              for service in re.findall(r"`com\.amazonaws\.<region>\.([a-z0-9.-]+)`", cells[1])}
    assert list(listed.items()) == list(VPC_ENDPOINT_SERVICES.items())


def test_the_cost_floor_prices_the_required_interface_endpoints_and_the_batch_schedule(synth: Synth):
    """GIVEN the environment in a VPC WHEN its cost floor is read THEN one fixed line prices every interface endpoint
    of VPC_ENDPOINT_SERVICES in each configured subnet, and the batch model's scheduled transform job is in the
    scheduled column (once deployed, as its schedule is)."""
    (env,) = floor_report(synth.outdir)
    lines = {line.label: line for line in env.lines}
    endpoints = lines["Interface VPC endpoints (required, not created by this app)"]
    subnets = len(NETWORK["subnet_ids"])
    assert endpoints.monthly_usd == pytest.approx(len(INTERFACE_ENDPOINT_SERVICES) * subnets
                                                  * PRICES["interface_endpoint"].usd * 730)
    assert f" x {subnets} subnet(s) " in endpoints.basis and endpoints.once_deployed is None
    transform = lines["SageMaker batch transform jobs"]
    assert transform.monthly_usd > 0 and transform.once_deployed
    assert env.unknown_prices == 0

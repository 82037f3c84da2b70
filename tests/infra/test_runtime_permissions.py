"""The code that runs in AWS may make every call it makes (issue #17, item 3): an inventory per role.

``runtime_calls.RUNTIMES`` lists, per role that job or handler code runs as, every AWS operation the
code makes and the IAM requests it needs. The scan test keeps that list equal to what the code
calls; the permission tests decide each request against the role's synthesized policy (and an S3 request against its
bucket's policy too, whose explicit denies no role policy outweighs), for every environment and model of the sample
config and of the ``modes`` and ``pooled`` variants.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from mlops_loop.config import AppConfig
from mlops_loop.config.serving import compiled_for_inferentia2
from mlops_loop.naming import etl_job_name
from pipeline_code.core.contract import pascal
from pipeline_code.core.integrity import ledger_key

from tests.support.deploy_permissions import assembly_model
from tests.support.iam_eval import IamModel, Role, Statement, authorize, service_statements
from tests.support.runtime_calls import (RUNTIMES, SAGEMAKER_AS_ROLE, SERVICES, Names, Runtime, client_services, closure,
                                         operations_in)

BY_NAME = {r.name: r for r in RUNTIMES}


@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda r: r.name)
def test_the_inventory_lists_exactly_the_aws_calls_the_code_makes(runtime):
    """GIVEN the modules the role runs and every pipeline_code module they import
    WHEN they are scanned for boto3 client calls, paginators and S3 transfers
    THEN each operation found has an inventory entry, and each entry is still called."""
    found = operations_in(closure(runtime.modules), runtime.unreached)
    missing = {op: where for op, where in found.items() if op not in runtime.calls}
    assert missing == {}, f"{runtime.name}: add these calls to runtime_calls.RUNTIMES with the resources they touch"
    assert set(runtime.calls) - set(found) == set(), f"{runtime.name}: inventory entries no code makes any more"


def test_the_scan_finds_a_new_call():
    """GIVEN a module that calls a client method, a paginator and an S3 transfer, and a module function of
    the same name, and a module-level compiled pattern's ``search`` WHEN scanned THEN the three AWS calls are found and
    neither of the others (SageMaker has a Search operation)."""
    code = ("import re\nimport boto3\n"
            "s3 = boto3.client('s3')\ns3.delete_object(Bucket='b', Key='k')\n"
            "s3.get_paginator('list_objects_v2')\ns3.download_file('b', 'k', '/tmp/x')\nre.search('a', 'b')\n"
            "_BUSY = re.compile('x')\n_BUSY.search('y')\n")
    found = _scanned(code, operations_in)
    assert sorted(found) == ["delete_object", "download_file", "list_objects_v2"]


@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda r: r.name)
def test_the_scan_reads_the_operations_of_every_service_the_code_makes_a_client_of(runtime):
    """GIVEN the modules the role runs WHEN the services they make boto3 clients of are listed THEN the scan reads the
    operations of each (runtime_calls.SERVICES): a client of another service (Glue, Lambda, KMS ...) would make calls
    that no inventory entry lists and no role policy is checked for, failing only in AWS with AccessDenied."""
    found = client_services(closure(runtime.modules))
    assert found, f"{runtime.name}: no client found - the scan of client factories no longer matches the code"
    unscanned = {service: where for service, where in found.items() if service not in SERVICES}
    assert unscanned == {}, (f"{runtime.name}: add these services to runtime_calls.SERVICES (and their calls to the "
                             "inventory); a service computed at run time or a boto3 resource cannot be scanned")


def test_a_client_the_scan_does_not_read_is_found():
    """GIVEN a module that makes clients of Glue (written out), of KMS and S3 (taken from a tuple), of a service
    computed at run time, and a DynamoDB resource, beside a wrapper given a region WHEN its client services are listed
    THEN each is found, the region is not, and only S3 is one the scan reads."""
    code = ("import boto3\n"
            "glue = boto3.client('glue')\n"
            "clients = {name: boto3.client(name) for name in ('kms', 's3')}\n"
            "def _client(region):\n    return boto3.client('s3', region_name=region)\n"
            "store = _client('eu-west-1')\n"
            "other = boto3.session.Session().client(SERVICE_OF_THE_DAY)\n"
            "table = boto3.resource('dynamodb')\n")
    found = _scanned(code, client_services)
    assert sorted(found) == sorted(["glue", "kms", "s3", "<SERVICE_OF_THE_DAY>", "<resource 'dynamodb'>"])
    assert [service for service in found if service in SERVICES] == ["s3"]


def _function_role(iam: IamModel, name: str) -> Role:
    (props,) = [p for _, _, p in iam.resources("AWS::Lambda::Function") if p.get("FunctionName") == name]
    return iam.role(iam.resolve("Operations", props["Role"]))


def _logical_role(iam: IamModel, stack: str, prefix: str) -> Role:
    (role,) = [r for r in iam.roles.values() if r.stack == stack and re.fullmatch(rf"{prefix}[0-9A-F]{{8}}", r.logical_id)]
    return role


def _glue_job_role(iam: IamModel, n: Names, job: str) -> Role:
    """The role the dataset's Glue job ``job`` runs as: its ``Role`` (each job has one of its own)."""
    (props,) = [p for _, _, p in iam.resources("AWS::Glue::Job") if p["Name"] == etl_job_name(n.prefix, n.dataset, job)]
    return iam.role(iam.resolve("DataPipeline", props["Role"]))


def _role(iam: IamModel, runtime: Runtime, n: Names) -> Role | None:
    if runtime.name == "deploy-on-approval handler":
        return _function_role(iam, f"{n.prefix}-deploy-on-approval")
    if runtime.name == "retrain trigger":
        return _function_role(iam, f"{n.prefix}-retrain-trigger")
    if runtime.name == "rollout parity check":
        return _function_role(iam, f"{n.prefix}-rollout-parity") if n.compiled else None
    if runtime.name == "score-by-id front":
        return _function_role(iam, f"{n.prefix}-{n.model}-by-id") if n.by_id else None
    if runtime.name == "drift monitor job":
        return _logical_role(iam, "Operations", f"{pascal(n.model)}MonitorRole")
    if runtime.name == "training pipeline jobs":
        (props,) = [p for _, _, p in iam.resources("AWS::SageMaker::Pipeline") if p["PipelineName"] == f"{n.prefix}-{n.model}-training"]
        return iam.role(iam.resolve("Training", props["RoleArn"]))
    if runtime.name == "serving container":
        if n.multi_model_endpoint:
            endpoint = n.multi_model_endpoint.removeprefix(f"{n.prefix}-mme-")
            return _logical_role(iam, "Serving", f"{pascal(endpoint)}MultiModelRole")
        return _logical_role(iam, "Serving", f"{pascal(n.model)}Role")
    if runtime.name in ("feature ingestion job", "curate job"):
        return _glue_job_role(iam, n, "features" if runtime.name == "feature ingestion job" else "curate")
    raise AssertionError(f"no role lookup for runtime {runtime.name!r}")


def _names(iam: IamModel, config: AppConfig, env: str, model: str) -> Names:
    environment = config.environments[env]
    serving = config.serving_of(environment, config.models[model])
    prefix = f"{config.project}-{env}"
    shared = f"{prefix}-mme-{serving.multi_model.endpoint}" if serving.mode == "multi_model" else ""
    return Names(iam=iam, prefix=prefix, model=model, dataset=config.models[model].dataset, project=config.project,
                 multi_model_endpoint=shared,
                 self_capture=serving.mode in ("serverless", "multi_model") and serving.data_capture_percent > 0,
                 by_id=serving.by_id.enabled, compiled=compiled_for_inferentia2(serving),
                 online_store=environment.feature_store.online_store, endpoint=serving.mode != "batch")


# boto3 calls S3 over TLS 1.2 or later: the buckets' statements denying other transport do not apply to the code's calls.
_TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}


def _bucket_denies(iam: IamModel) -> dict[str, tuple[Statement, ...]]:
    """Each bucket of the templates that has a bucket policy (by name) -> the policy's Deny statements for every
    principal (the write-once prefixes' put without If-None-Match, their deletes, other transport): a role's own
    policy cannot outweigh them, so a call they deny fails in AWS whatever the role may do."""
    names = {(label, lid): iam.resolve(label, props["BucketName"])
             for label, lid, props in iam.resources("AWS::S3::Bucket") if "BucketName" in props}
    denies: dict[str, tuple[Statement, ...]] = {}
    for label, _, policy in iam.resources("AWS::S3::BucketPolicy"):
        logical_id = policy["Bucket"].get("Ref") if isinstance(policy["Bucket"], dict) else None
        # A policy whose bucket cannot be named here (a bucket CloudFormation names, a bucket of another stack) would
        # leave its denies out of every decision: the proof would pass on calls they deny in AWS.
        assert (label, logical_id) in names, (
            f"{label}/{logical_id or policy['Bucket']}: a bucket policy the proof cannot tie to a bucket name (a Ref to "
            "a bucket of the same stack with a BucketName): its Deny statements would be left out of every S3 decision")
        name = names[(label, logical_id)]
        document = json.loads(json.dumps(iam.resolve(label, policy["PolicyDocument"]))
                              .replace(f"${{{label}/{logical_id}.Arn}}", f"arn:aws:s3:::{name}"))
        denies[name] = tuple(s for s in service_statements(document, "(a role of the account)", source=f"{label}/{name}")
                             if s.effect == "Deny")
    return denies


def _problems(iam: IamModel, config: AppConfig, env: str, runtimes: tuple[Runtime, ...] = RUNTIMES) -> tuple[list[str], int]:
    """Every inventoried request of ``runtimes`` the role's policy does not allow, or the bucket's policy denies."""
    problems, checked = [], 0
    denies = _bucket_denies(iam)
    for model in config.environments[env].models:
        n = _names(iam, config, env, model)
        for runtime in runtimes:
            role = _role(iam, runtime, n)
            calls = {**runtime.calls, **({"(SageMaker: logs and metrics)": SAGEMAKER_AS_ROLE[runtime.name]}
                                         if runtime.name in SAGEMAKER_AS_ROLE else {})}
            for operation, requests in calls.items():
                for action, resources, context in requests(n):
                    checked += 1
                    if action.startswith("s3:"):
                        (arn,) = resources.values()
                        bucket = arn.removeprefix("arn:aws:s3:::").split("/")[0]
                        decision = authorize((*role.statements, *denies.get(bucket, ())), action, resources,
                                             {**_TLS, **context})
                    else:
                        decision = authorize(role, action, resources, context)
                    if not decision.allowed:
                        problems.append(f"{env}/{model} {runtime.name} ({role}): {operation} needs {action} on "
                                        f"{decision.resource or resources} ({decision.outcome})")
    return problems, checked


def test_every_runtime_role_may_make_its_calls_in_every_environment(synthesized):
    """GIVEN every environment and model of the sample config WHEN each inventoried call is decided against the
    policy of the role the code runs as THEN all are allowed."""
    for env in synthesized.config.environments:
        iam = assembly_model(synthesized.outdir, synthesized.config, env)
        problems, checked = _problems(iam, synthesized.config, env)
        assert problems == [], "\n".join(problems)
        assert checked >= 20 * len(synthesized.config.environments[env].models)


@pytest.mark.parametrize("fixture", ["modes", "pooled"])
def test_every_runtime_role_may_make_its_calls_in_every_serving_mode(request, fixture):
    """GIVEN the environments that serve every mode and multi-model endpoints (staging, smoke test, self-capture)
    WHEN each inventoried call is decided THEN all are allowed."""
    built = request.getfixturevalue(fixture)
    env = next(e for e in built.config.environments if e in (fixture, "modes"))
    problems, checked = _problems(assembly_model(built.outdir, built.config, env), built.config, env)
    assert problems == [], "\n".join(problems)
    assert checked > 0


def test_a_call_the_policy_does_not_cover_is_reported(synthesized):
    """GIVEN the drift monitor's role without its permission to publish metrics (a policy edit gone wrong)
    WHEN its calls are decided THEN put_metric_data is reported, naming the environment, model, role and action."""
    env = next(iter(synthesized.config.environments))
    iam = assembly_model(synthesized.outdir, synthesized.config, env)
    model = synthesized.config.environments[env].models[0]
    role = _logical_role(iam, "Operations", f"{pascal(model)}MonitorRole")
    stripped = tuple(s for s in role.statements if "cloudwatch:PutMetricData" not in s.actions)
    assert len(stripped) < len(role.statements)
    iam.roles[role.key] = Role(role.stack, role.logical_id, role.name, role.arn, role.named, stripped)
    problems, _ = _problems(iam, synthesized.config, env)
    assert problems == [f"{env}/{model} drift monitor job ({role}): put_metric_data needs cloudwatch:PutMetricData on "
                        "* (ImplicitDeny)"]


def test_a_runtime_write_a_bucket_policy_denies_is_reported(synthesized):
    """GIVEN the deploy handler writing its approval-ledger records, which its role may create, once with If-None-Match
    and once without WHEN the writes are decided THEN the one without is reported as the artifacts bucket's explicit
    deny for every model (the ledger is write-once for every principal: a handler that dropped the header would lose
    every record in AWS), the one with it is allowed: the proof decides the buckets' policies, not the role's alone."""
    env = next(iter(synthesized.config.environments))
    iam = assembly_model(synthesized.outdir, synthesized.config, env)

    def ledger_write(header: dict) -> Runtime:
        record = ledger_key("{model}", 7, dt.datetime(2027, 1, 1), "Approved", "ab12cd34", "20261201T000000Z")
        return Runtime("deploy-on-approval handler", (), {"put_object": lambda n: [
            ("s3:PutObject", {"object": n.object("artifacts", record.replace("{model}", n.model))}, header)]})

    allowed, checked = _problems(iam, synthesized.config, env, (ledger_write({"s3:if-none-match": "*"}),))
    assert (allowed, checked) == ([], len(synthesized.config.environments[env].models))
    denied, _ = _problems(iam, synthesized.config, env, (ledger_write({}),))
    assert len(denied) == checked and all(p.endswith("(ExplicitDeny)") and "/approval-ledger/" in p for p in denied), denied


def test_a_bucket_policy_the_proof_cannot_tie_to_its_bucket_stops_it(synthesized):
    """GIVEN the environment's templates with the artifacts bucket's name left to CloudFormation (no BucketName, as a
    new bucket may be) WHEN the buckets' denies are gathered THEN the proof stops naming the policy, instead of deciding
    every S3 call without that bucket's denies (its write-once statements would never be checked again)."""
    import copy

    from tests.support.iam_eval import StackTemplate

    env = next(iter(synthesized.config.environments))
    iam = assembly_model(synthesized.outdir, synthesized.config, env)
    assert len(_bucket_denies(iam)) == len(iam.resources("AWS::S3::BucketPolicy"))
    stacks = []
    for label, stack in iam.stacks.items():
        template = copy.deepcopy(stack.template)
        for resource in template.get("Resources", {}).values():
            if resource.get("Type") == "AWS::S3::Bucket" and "artifacts" in json.dumps(resource.get("Properties", {}).get("BucketName", "")):
                del resource["Properties"]["BucketName"]
        stacks.append(StackTemplate(label, stack.name, template))
    unnamed = IamModel(stacks, account=iam.account, region=iam.region)
    with pytest.raises(AssertionError, match=r"Storage/DataLakeArtifactsBucket[0-9A-F]{8}: .*its Deny statements"):
        _bucket_denies(unnamed)


def test_a_describe_log_groups_grant_narrowed_to_the_endpoint_groups_is_reported(synthesized):
    """GIVEN the deploy handler's role with its logs:DescribeLogGroups grant narrowed from * to the endpoint log groups
    it sets (the ARNs its PutRetentionPolicy grant names) WHEN its calls are decided THEN describe_log_groups is
    reported for every model with an endpoint: the Service Authorization Reference lists no resource type for
    DescribeLogGroups (a List action: Resource must be "*"), and its logGroupNamePrefix does not make it one - AWS
    denies a grant on a group's ARN even when the prefix is that group's name. A sweep with that grant would fail every
    hour, each group an error."""
    import dataclasses

    def sweeping(env: str) -> tuple[IamModel, Role] | None:
        iam = assembly_model(synthesized.outdir, synthesized.config, env)
        role = _function_role(iam, f"{synthesized.config.project}-{env}-deploy-on-approval")
        return (iam, role) if any("logs:PutRetentionPolicy" in s.actions for s in role.statements) else None

    found = next(((env, pair) for env in synthesized.config.environments if (pair := sweeping(env))), None)
    if found is None:
        pytest.skip("no environment of this config serves a model by an endpoint (no log retention to set)")
    env, (iam, role) = found
    (retention,) = [s for s in role.statements if "logs:PutRetentionPolicy" in s.actions]
    narrowed = tuple(dataclasses.replace(s, resources=retention.resources) if "logs:DescribeLogGroups" in s.actions else s
                     for s in role.statements)
    assert narrowed != role.statements
    iam.roles[role.key] = Role(role.stack, role.logical_id, role.name, role.arn, role.named, narrowed)
    problems, _ = _problems(iam, synthesized.config, env)
    assert problems and all(" describe_log_groups needs logs:DescribeLogGroups on * (ImplicitDeny)" in p for p in problems)
    served = [m for m in synthesized.config.environments[env].models
              if _names(iam, synthesized.config, env, m).endpoint]
    assert sorted(p.split(" ")[0] for p in problems) == sorted(f"{env}/{m}" for m in served)


def test_what_sagemaker_does_as_a_role_is_listed_for_runtimes_that_exist(synthesized):
    """GIVEN the requests SageMaker makes as the pipeline's and the serving container's roles WHEN they are listed
    THEN each names an inventoried runtime (a renamed runtime cannot drop them unnoticed), and the serving container's
    are its own endpoint's log group and SageMaker's endpoint namespace: no /aws/sagemaker/* at large."""
    assert set(SAGEMAKER_AS_ROLE) <= set(BY_NAME)
    env = next(iter(synthesized.config.environments))
    iam = assembly_model(synthesized.outdir, synthesized.config, env)
    n = Names(iam=iam, prefix="shop-dev", model="returns", dataset="returns")
    requests = SAGEMAKER_AS_ROLE["serving container"](n)
    assert {ctx["cloudwatch:namespace"] for _, _, ctx in requests if ctx} == {"/aws/sagemaker/Endpoints"}
    assert {arn.split(":log-stream:")[0].removesuffix(":*") for _, res, _ in requests for arn in res.values() if "logs" in arn} == {
        f"arn:aws:logs:{iam.region}:{iam.account}:log-group:/aws/sagemaker/Endpoints/shop-dev-returns"}


def test_every_handler_module_is_run_by_an_inventoried_role():
    """GIVEN the Lambda handlers WHEN the inventory's runtimes are followed through their imports THEN each handler
    module is reached, so a new handler cannot make AWS calls no role was checked for."""
    from mlops_loop.app_builder import REPO_ROOT

    reached = {str(path.relative_to(REPO_ROOT)) for runtime in RUNTIMES for path in closure(runtime.modules)}
    handlers = {str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "pipeline_code" / "handlers").glob("*.py")
                if path.name != "__init__.py"}
    assert handlers - reached == set()


def _scanned(code: str, scan):
    """``scan`` of one module holding ``code``, written under tests/ (the scans read repository files) and removed."""
    import tempfile
    from pathlib import Path

    from mlops_loop.app_builder import REPO_ROOT

    with tempfile.NamedTemporaryFile("w", suffix=".py", dir=REPO_ROOT / "tests", delete=False) as f:
        f.write(code)
    try:
        return scan([Path(f.name)])
    finally:
        Path(f.name).unlink()

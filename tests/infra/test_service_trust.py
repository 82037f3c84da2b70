"""Who may assume the app's roles, over the synthesized templates of the user's config and the ``modes`` and
``pooled`` scenarios (every construct that builds a service role is in one of them).

* EventBridge Scheduler: every role it may assume names the source Scheduler really sends. Scheduler
  sends the ARN of the schedule's GROUP as aws:SourceArn, never the schedule's own ARN (EventBridge
  Scheduler User Guide, "Confused deputy prevention": "The ARN you specify must be a schedule group"); a
  trust naming ``schedule/<group>/*`` admits no schedule, and the target silently never runs. Each role
  is checked against the groups its schedules live in: the ``GroupName`` of every AWS::Scheduler::Schedule
  that runs as it, and the group the deploy handler creates its one-time retries in at run time.
* Every service principal a role trusts carries a source condition (aws:SourceArn or aws:SourceAccount),
  or the role is in :data:`EXEMPT` with why: a condition the service does not send breaks the role at
  run time, so a role without one is a decision, not an omission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

import pytest

from mlops_loop.config import AppConfig
from tests.support.deploy_permissions import assembly_model
from tests.support.iam_eval import IamModel, evaluate, service_statements
from tests.support.scenarios import POOLED_ENV

SCHEDULER = "scheduler.amazonaws.com"
FOREIGN_ACCOUNT = "999999999999"
SOURCE_KEYS = {"aws:sourcearn", "aws:sourceaccount"}


@dataclass(frozen=True)
class Exemption:
    service: str
    role: str  # regex over "<stack construct id>/<logical id>" of the role
    reason: str
    applies: Callable[[AppConfig, str], bool] = lambda config, env: True


# Service roles trusted without a source condition, and why. Each reason names what AWS documents.
EXEMPT = (
    Exemption("lambda.amazonaws.com", r"^Operations/",
              "Lambda documents no aws:SourceArn / aws:SourceAccount for assuming a function's execution role (Lambda "
              "Developer Guide, 'Defining Lambda function permissions with an execution role': the trust names "
              "lambda.amazonaws.com alone; aws:SourceArn there applies to who may invoke the function)."),
    Exemption("cloudformation.amazonaws.com", r"^Serving/Deployer[0-9A-F]{8}$",
              "CloudFormation's confused-deputy page covers resource policies (extensions), not the service role a "
              "stack operation runs as; only the deploy handler may pass this role (test_separation_of_duties)."),
    Exemption("glue.amazonaws.com", r"^DataPipeline/(GlueRuntimeCrawlerRole|[A-Za-z0-9]+(Curate|Features)Role)[0-9A-F]{8}$",
              "The AWS Glue Developer Guide documents no source condition for the roles Glue assumes ('Create an IAM "
              "role for AWS Glue' trusts glue.amazonaws.com alone); a wrong one stops every job and crawler."),
    Exemption("sagemaker.amazonaws.com", r"^Storage/FeatureStoreOfflineStoreRole[0-9A-F]{8}$",
              "Neither SageMaker's confused-deputy page nor the Feature Store offline-store pages document what "
              "Feature Store sends when it assumes this role; a wrong condition stops offline ingestion silently."),
    Exemption("sagemaker.amazonaws.com", r"^Serving/[A-Za-z0-9]+NativeMonitorRole[0-9A-F]{8}$",
              "SageMaker's confused-deputy page documents sources for endpoints, training, processing, transform and "
              "pipelines, not for the jobs a Model Monitor schedule starts."),
    Exemption("sagemaker.amazonaws.com", r"^Training/[A-Za-z0-9]+Role[0-9A-F]{8}$",
              "With hyperparameter tuning on, the pipeline role also runs tuning jobs, for which SageMaker's "
              "confused-deputy page documents no source (without tuning the role is conditioned).",
              lambda config, env: config.environments[env].training.hyperparameter_tuning),
)


@dataclass(frozen=True)
class Deployment:
    """One synthesized environment: its config, name and IAM model."""

    name: str
    config: AppConfig
    env: str
    model: IamModel


def _deployments(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    synthesized = request.getfixturevalue("synthesized")
    for env in synthesized.config.environments:
        yield Deployment(f"user/{env}", synthesized.config, env, assembly_model(synthesized.outdir, synthesized.config, env))
    modes = request.getfixturevalue("modes")
    yield Deployment(f"modes/{modes.env}", modes.config, modes.env, assembly_model(modes.outdir, modes.config, modes.env))
    pooled = request.getfixturevalue("pooled")
    yield Deployment(f"pooled/{POOLED_ENV}", pooled.config, POOLED_ENV, assembly_model(pooled.outdir, pooled.config, POOLED_ENV))


@pytest.fixture(scope="module")
def deployments(request: pytest.FixtureRequest) -> list[Deployment]:
    return list(_deployments(request))


def _trusted(d: Deployment) -> Iterator[tuple[str, str, dict, dict]]:
    """``(label, logical id, role resource, resolved trust policy)`` of every role of ``d``."""
    for label, stack in d.model.stacks.items():
        for logical_id, resource in (stack.template.get("Resources") or {}).items():
            if resource.get("Type") == "AWS::IAM::Role":
                yield label, logical_id, resource, d.model.resolve(label, resource["Properties"]["AssumeRolePolicyDocument"])


def _trust_statements(d: Deployment, label: str, logical_id: str, trust: dict, service: str):
    """``(role ARN, the trust statements that apply to ``service``)``, as statements about sts:AssumeRole on the role
    (a trust policy names no Resource: it is the role's own)."""
    role = d.model.role(f"{label}/{logical_id}").arn
    document = {"Statement": [{**s, "Resource": role} for s in trust["Statement"]]}
    return role, service_statements(document, service, source=f"{d.name}/{label}/{logical_id}")


def _services(document: dict) -> Iterator[tuple[str, dict]]:
    """``(service, statement)`` for every statement of a trust policy naming a service principal."""
    for statement in document["Statement"]:
        services = (statement.get("Principal") or {}).get("Service", [])
        for service in services if isinstance(services, list) else [services]:
            yield service, statement


def _schedule_groups(d: Deployment) -> dict[str, set[str]]:
    """Role ARN -> the schedule groups whose schedules run as that role: AWS::Scheduler::Schedule resources (their
    GroupName, else ``default``) and the deploy handler's run-time retries (RETRY_SCHEDULE_GROUP / RETRY_ROLE_ARN)."""
    groups: dict[str, set[str]] = {}
    for label, _, props in d.model.resources("AWS::Scheduler::Schedule"):
        role = d.model.resolve(label, props["Target"]["RoleArn"])
        groups.setdefault(role, set()).add(d.model.resolve(label, props.get("GroupName", "default")))
    for label, _, props in d.model.resources("AWS::Lambda::Function"):
        variables = d.model.resolve(label, (props.get("Environment") or {}).get("Variables") or {})
        if "RETRY_ROLE_ARN" in variables:
            groups.setdefault(variables["RETRY_ROLE_ARN"], set()).add(variables["RETRY_SCHEDULE_GROUP"])
    return groups


def _group_arn(d: Deployment, group: str, account: str | None = None) -> str:
    return f"arn:aws:scheduler:{d.model.region}:{account or d.model.account}:schedule-group/{group}"


def test_scheduler_may_assume_each_role_for_exactly_the_groups_its_schedules_live_in(deployments):
    """GIVEN every role EventBridge Scheduler may assume, in every synthesized environment
    WHEN Scheduler assumes it as it does (aws:SourceArn = the schedule GROUP's ARN, aws:SourceAccount)
    THEN it is allowed for each group a schedule running as that role lives in (the templates' schedules and
    the deploy handler's run-time retry group), and denied for the same group of another account; a role
    whose trust names aws:SourceArn names the schedule-group form, never a schedule or a name prefix."""
    checked = 0
    for d in deployments:
        groups = _schedule_groups(d)
        for label, logical_id, _, trust in _trusted(d):
            role, statements = _trust_statements(d, label, logical_id, trust, SCHEDULER)
            if not statements:
                continue
            where = f"{d.name}: {label}/{logical_id}"
            assert groups.get(role), f"{where}: Scheduler may assume it but no schedule runs as it"
            for statement in statements:
                keys = {c.key.lower(): c for c in statement.conditions}
                assert "aws:sourceaccount" in keys, f"{where}: no aws:SourceAccount in {statement}"
                for value in keys["aws:sourcearn"].values if "aws:sourcearn" in keys else ():
                    assert ":schedule-group/" in value, f"{where}: aws:SourceArn {value!r} is not a schedule-group ARN"
            for group in groups[role]:
                sent = {"aws:SourceArn": _group_arn(d, group), "aws:SourceAccount": d.model.account}
                assert evaluate(statements, "sts:AssumeRole", role, sent).allowed, f"{where}: Scheduler refused for {group}"
                foreign = {"aws:SourceArn": _group_arn(d, group, FOREIGN_ACCOUNT), "aws:SourceAccount": FOREIGN_ACCOUNT}
                assert not evaluate(statements, "sts:AssumeRole", role, foreign).allowed, f"{where}: another account's {group}"
                checked += 1
    assert checked  # the deploy retries, monitor schedules, retrain schedules and batch schedules at least


def test_the_deploy_retry_role_admits_only_its_own_group(deployments):
    """GIVEN the deploy handler's retry role WHEN Scheduler assumes it for a schedule of another group of the same
    account (e.g. the default group) THEN it is denied: only the handler's own one-time retries run as it."""
    for d in deployments:
        groups = _schedule_groups(d)
        retry = [(label, lid, trust) for label, lid, _, trust in _trusted(d) if lid.startswith("DeployOnApprovalRetryRole")]
        assert len(retry) == 1, d.name
        label, logical_id, trust = retry[0]
        role, statements = _trust_statements(d, label, logical_id, trust, SCHEDULER)
        assert groups[role] == {f"{d.config.project}-{d.env}-deploy-retries"}
        other = {"aws:SourceArn": _group_arn(d, "default"), "aws:SourceAccount": d.model.account}
        assert not evaluate(statements, "sts:AssumeRole", role, other).allowed, d.name


def _exemption(d: Deployment, service: str, role: str) -> Exemption | None:
    return next((e for e in EXEMPT if e.service == service and re.search(e.role, role) and e.applies(d.config, d.env)), None)


def test_every_service_trust_names_its_source_or_is_exempt_with_a_reason(deployments):
    """GIVEN every role of every synthesized environment
    WHEN each statement trusting a service principal is read
    THEN it is conditioned on aws:SourceArn or aws:SourceAccount, or the role is in EXEMPT (which says why);
    and every exemption is used somewhere or is conditional on config, so the list does not rot."""
    missing, used = [], set()
    for d in deployments:
        for label, logical_id, _, trust in _trusted(d):
            path = f"{label}/{logical_id}"
            for service, statement in _services(trust):
                keys = {k.lower() for by_key in (statement.get("Condition") or {}).values() for k in by_key}
                if keys & SOURCE_KEYS:
                    continue
                exemption = _exemption(d, service, path)
                if exemption is None:
                    missing.append(f"{d.name}: {path} trusts {service} with no aws:SourceArn / aws:SourceAccount")
                else:
                    used.add(exemption)
    assert missing == []
    conditional = {e for e in EXEMPT if e.applies is not Exemption.__dataclass_fields__["applies"].default}
    assert set(EXEMPT) - used - conditional == set(), "an exemption no role needs any more: remove it"


def test_sagemaker_roles_with_a_source_admit_sagemaker_only_for_this_account_and_region(deployments):
    """GIVEN every role trusting SageMaker with an aws:SourceArn condition
    WHEN SageMaker assumes it as the SageMaker Developer Guide documents (an endpoint: the literal
    ``arn:aws:sagemaker:<region>:<account>:*``; a job: its ARN; a pipeline: its execution's ARN)
    THEN each is allowed for this account and Region and denied for another account or Region."""
    checked = 0
    for d in deployments:
        region, account = d.model.region, d.model.account
        sources = [f"arn:aws:sagemaker:{region}:{account}:*",
                   f"arn:aws:sagemaker:{region}:{account}:processing-job/{d.config.project}-{d.env}-mon-1",
                   f"arn:aws:sagemaker:{region}:{account}:training-job/pipelines-abc-train-1",
                   f"arn:aws:sagemaker:{region}:{account}:transform-job/{d.config.project}-{d.env}-bt-1",
                   f"arn:aws:sagemaker:{region}:{account}:pipeline/{d.config.project}-{d.env}-m-training/execution/x1"]
        for label, logical_id, _, trust in _trusted(d):
            role, statements = _trust_statements(d, label, logical_id, trust, "sagemaker.amazonaws.com")
            if not any(c.key.lower() == "aws:sourcearn" for s in statements for c in s.conditions):
                continue
            for source in sources:
                assert evaluate(statements, "sts:AssumeRole", role, {"aws:SourceArn": source}).allowed, (d.name, logical_id, source)
                for other in (source.replace(f":{account}:", f":{FOREIGN_ACCOUNT}:"),
                              source.replace(f":{region}:", ":ap-southeast-7:")):
                    assert not evaluate(statements, "sts:AssumeRole", role, {"aws:SourceArn": other}).allowed, (logical_id, other)
            checked += 1
    assert checked

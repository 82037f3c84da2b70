"""Models of several teams in one environment: each team hears of its own models only.

With ``models.<model>.owner.team`` set, the environment's Operations stack has one topic per team, and everything that
concerns one model (its drift-monitor, retrain and endpoint alarms, its score-by-id alarms, its failed training runs,
its versions awaiting approval, its failed scheduled jobs, its lost endpoint) notifies its team's topic instead of the
environment's: a marketing model's drift page does not wake the fraud on-call. A model without an owner keeps the
environment's topic. Checked over the synthesized templates of the user's config with its first environment's first
two models given to two teams (``teams`` fixture), whatever models the config holds.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Optional

import pytest

from mlops_loop.constructs.scheduled_job import job_name_stem
from mlops_loop.naming import ETL_JOBS, etl_crawler_name, etl_job_name
from pipeline_code.core.contract import (MODEL_TAG, TEAM_TAG, environment_prefix, package_group_name, pascal, pipeline_name,
                                         team_topic_name)

from tests.support import request_shapes as rs
from tests.support.deploy_permissions import assembly_model, missing_permissions
from tests.support.iam_eval import authorize


def _topics(template: dict) -> dict[Optional[str], str]:
    """Team (None: the environment's own) -> the logical id of its notification topic."""
    out: dict[Optional[str], str] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::SNS::Topic" or "Watchdog" in logical_id:
            continue
        tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
        team = tags.get("mlops-loop:team")
        assert team not in out, f"two topics for {team}: {out.get(team)}, {logical_id}"
        out[team] = logical_id
    return out


def _owner(teams, model: str) -> Optional[str]:
    owner = teams.config.models[model].owner
    return owner.team if owner else None


def _model_of_name(models: list[str], prefix: str, name: str) -> Optional[str]:
    """The model whose ``<prefix>-<model>`` starts ``name`` (the longest: churn-net before churn), else None."""
    for model in sorted(models, key=len, reverse=True):
        if name == f"{prefix}-{model}" or name.startswith(f"{prefix}-{model}-"):
            return model
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _models_in_pattern(teams, pattern: dict) -> set[str]:
    """The models an event pattern names: by pipeline ARN, package group, endpoint or scheduled-job stem."""
    prefix = environment_prefix(teams.config.project, teams.env)
    found = set()
    for model in teams.config.environments[teams.env].models:
        names = {package_group_name(prefix, model), f"{prefix}-{model}"}
        pipeline = f":pipeline/{pipeline_name(prefix, model).lower()}"
        stems = {f"{job_name_stem(kind, prefix, model)}-" for kind in ("processing", "transform")}
        for text in _strings(pattern):
            if text in names or text in stems or text.endswith(pipeline):
                found.add(model)
    return found


def _refs(values) -> set[str]:
    return {v["Ref"] for v in values or [] if isinstance(v, dict) and "Ref" in v}


def test_each_team_has_a_topic_of_its_own_tagged_with_its_team_and_contact(teams):
    """GIVEN two teams' models WHEN synthesized THEN the Operations stack has the environment's topic and one per team,
    tagged with the team and its contact, each an output to subscribe people to."""
    operations = teams.by_id["Operations"].template
    topics = _topics(operations)
    owners = {_owner(teams, m) for m in teams.config.environments[teams.env].models} - {None}
    assert set(topics) == {None, *owners}
    for team in owners:
        tags = {t["Key"]: t["Value"] for t in operations["Resources"][topics[team]]["Properties"]["Tags"]}
        assert tags["mlops-loop:contact"] == f"{team}-oncall@example.com"
        outputs = [o for o in operations["Outputs"].values() if o["Value"] == {"Ref": topics[team]}]
        assert len(outputs) == 1 and team in outputs[0]["Description"], outputs


def test_a_models_alarms_page_its_own_team_only(teams):
    """GIVEN two teams' models WHEN every alarm with an action is read THEN an alarm of a model
    (``<prefix>-<model>-...``) notifies its team's topic, and no other; an unowned model's the environment's."""
    prefix = environment_prefix(teams.config.project, teams.env)
    models = list(teams.config.environments[teams.env].models)
    topics = _topics(teams.by_id["Operations"].template)
    wrong, seen = [], set()
    for stack in teams.by_id.values():
        for resource in stack.template["Resources"].values():
            if resource["Type"] not in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
                continue
            props = resource["Properties"]
            actions = _refs(props.get("AlarmActions"))
            model = _model_of_name(models, prefix, props.get("AlarmName", ""))
            if not actions or model is None:
                continue
            seen.add(model)
            expected = {topics[_owner(teams, model)]}
            if actions != expected:
                wrong.append(f"{props['AlarmName']}: notifies {sorted(actions)}, expected {sorted(expected)}")
    assert wrong == [], "\n".join(wrong)
    assert seen == set(models)


def test_a_models_notices_reach_its_own_team_only(teams):
    """GIVEN two teams' models WHEN every EventBridge rule that publishes to a topic is read THEN the models its pattern
    names (pipelines, package groups, endpoints, job stems) all belong to the owner of the topic it publishes to; and
    each model's failed training runs and versions awaiting approval reach its own team's topic."""
    topics = _topics(teams.by_id["Operations"].template)
    team_of_topic = {logical_id: team for team, logical_id in topics.items()}
    wrong, reached = [], set()
    for logical_id, resource in teams.by_id["Operations"].template["Resources"].items():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        targets = {t["Arn"]["Ref"] for t in resource["Properties"].get("Targets", []) if "Ref" in t.get("Arn", {})}
        targets &= set(team_of_topic)
        if not targets:
            continue
        pattern = resource["Properties"]["EventPattern"]
        for model in _models_in_pattern(teams, pattern):
            expected = topics[_owner(teams, model)]
            if targets != {expected}:
                wrong.append(f"{logical_id}: names {model} and publishes to {sorted(targets)}, expected {expected}")
            if pattern["detail-type"][0] in ("SageMaker Model Building Pipeline Execution Status Change",
                                             "SageMaker Model Package State Change"):
                reached.add((model, pattern["detail-type"][0]))
    assert wrong == [], "\n".join(wrong)
    models = teams.config.environments[teams.env].models
    assert {m for m, kind in reached if kind.startswith("SageMaker Model Building")} == set(models), json.dumps(sorted(reached))
    assert {m for m, kind in reached if kind.startswith("SageMaker Model Package")} == set(models), json.dumps(sorted(reached))


def test_a_models_jobs_name_its_team_in_a_cost_allocation_tag(teams):
    """GIVEN two teams' models WHEN every job request (pipeline steps, scheduled monitor and batch jobs) is read THEN
    an owned model's jobs carry ``contract.TEAM_TAG`` with its team (Cost Explorer groups a team's training and
    monitoring spend by it), an unowned model's carry none."""
    prefix = environment_prefix(teams.config.project, teams.env)
    models = list(teams.config.environments[teams.env].models)
    wrong, seen = [], set()
    for stack in teams.by_id.values():
        for request in rs.requests_in(stack.construct_id, stack.template):
            if request.service != "sagemaker" or not request.operation.startswith("Create") or "Tags" not in request.params:
                continue
            tags = {t["Key"]: t["Value"] for t in request.params["Tags"] if isinstance(t, dict)}
            model = tags.get(MODEL_TAG)
            if model is None:
                continue
            seen.add(model)
            team = [t["Value"] for t in request.params["Tags"] if isinstance(t, dict) and t["Key"] == TEAM_TAG]
            expected = [_owner(teams, model)] if _owner(teams, model) else []
            if team != expected:
                wrong.append(f"{request.label}: {TEAM_TAG} {team}, expected {expected}")
    assert wrong == [], "\n".join(wrong)
    assert seen == set(models), prefix


BILLED_PER_MODEL = ("AWS::SageMaker::Endpoint", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Model",
                    "AWS::SageMaker::Pipeline", "AWS::SageMaker::ModelPackageGroup")


def test_an_owned_models_resources_carry_its_model_and_team_tags(teams):
    """GIVEN two teams' models WHEN the per-model resources (endpoint, endpoint config, model, pipeline, package group)
    are read THEN an owned model's carry ``MODEL_TAG`` and ``TEAM_TAG`` with its name and team (Cost Explorer splits
    the endpoints' hours by them), an unowned model's neither (its templates stay as they were); no feature group (a
    dataset's, whose Tags are create-only: a new tag would replace it) carries a team."""
    models = list(teams.config.environments[teams.env].models)
    by_id = sorted(((pascal(m), m) for m in models), key=lambda pair: len(pair[0]), reverse=True)
    wrong, seen = [], set()
    for stack in teams.by_id.values():
        for logical_id, resource in stack.template["Resources"].items():
            tags = {t["Key"]: t["Value"] for t in resource.get("Properties", {}).get("Tags", []) if isinstance(t, dict)}
            if resource["Type"] == "AWS::SageMaker::FeatureGroup":
                assert TEAM_TAG not in tags, logical_id
            if resource["Type"] not in BILLED_PER_MODEL:
                continue
            model = next(m for pascal_id, m in by_id if logical_id.removeprefix("Registry").startswith(pascal_id))
            seen.add(model)
            owner = _owner(teams, model)
            expected = {MODEL_TAG: model, TEAM_TAG: owner} if owner else {}
            got = {k: tags[k] for k in (MODEL_TAG, TEAM_TAG) if k in tags}
            if got != expected:
                wrong.append(f"{stack.construct_id}/{logical_id}: {got}, expected {expected}")
    assert wrong == [], "\n".join(wrong)
    assert seen == set(models)


def test_the_serving_deployer_may_still_make_every_call_with_the_team_tags(teams):
    """GIVEN two teams' models, their serving resources tagged with model and team WHEN every resource that follows a
    model-version parameter is created, read, updated and deleted THEN the serving deployer may make each call."""
    model = assembly_model(teams.outdir, teams.config, teams.env)
    template = model.stacks["Serving"].template
    (deployer,) = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"
                   and r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
                   == {"Service": "cloudformation.amazonaws.com"}]
    problems, checked = missing_permissions(model, model.role(f"Serving/{deployer}"), "Serving")
    assert problems == [] and checked, "\n".join(problems)


def _dataset_team(teams, dataset: str) -> Optional[str]:
    """The team of every model of the environment that learns from ``dataset`` when they share one, else None."""
    env_models = teams.config.environments[teams.env].models
    owners = {_owner(teams, m) for m in env_models if teams.config.models[m].dataset == dataset}
    return owners.pop() if len(owners) == 1 else None


def test_a_datasets_failed_etl_reaches_its_team_when_all_its_models_are_that_teams(teams):
    """GIVEN two teams' models WHEN the ETL-failure rules are read THEN a dataset whose models all belong to one team has
    its curate and feature jobs' failures published to that team's topic; a dataset shared by several teams (or with an
    unowned model) to the environment's; every dataset's jobs in exactly one rule; the same for its raw crawler."""
    prefix = environment_prefix(teams.config.project, teams.env)
    topics = _topics(teams.by_id["Operations"].template)
    datasets = {teams.config.models[m].dataset for m in teams.config.environments[teams.env].models}
    expected = {etl_job_name(prefix, d, job): topics[_dataset_team(teams, d)] for d in datasets for job in ETL_JOBS}
    expected.update({etl_crawler_name(prefix, d): topics[_dataset_team(teams, d)] for d in datasets})
    routed: dict[str, list[str]] = {}
    for resource in teams.by_id["Operations"].template["Resources"].values():
        if resource["Type"] != "AWS::Events::Rule" or resource["Properties"].get("EventPattern", {}).get("source") != ["aws.glue"]:
            continue
        (target,) = [t["Arn"]["Ref"] for t in resource["Properties"]["Targets"]]
        detail = resource["Properties"]["EventPattern"]["detail"]
        for name in detail.get("jobName", []) + detail.get("crawlerName", []):
            routed.setdefault(name, []).append(target)
    assert routed == {name: [topic] for name, topic in expected.items()}


def _handler(teams, module: str = "deploy_on_approval") -> dict:
    (function,) = [r["Properties"] for r in teams.by_id["Operations"].template["Resources"].values()
                   if r["Type"] == "AWS::Lambda::Function"
                   and r["Properties"].get("Handler") == f"pipeline_code.handlers.{module}.handler"]
    return function


@pytest.mark.parametrize("module, shared", [("deploy_on_approval", "NOTIFY_TOPIC_ARN"), ("retrain_trigger", "TOPIC_ARN")])
def test_the_deploy_handler_tells_each_team_of_its_own_models(teams, module, shared):
    """GIVEN two teams' models WHEN the deploy handler's (and the retrain trigger's) environment is read THEN its
    TEAM_TOPICS puts each owned model's package group under its team's topic (the one its alarms notify) and no unowned
    model's group anywhere: its notices about held, refused and deployed versions (the trigger's circuit-breaker page)
    reach that team, the rest the environment's topic (NOTIFY_TOPIC_ARN; the trigger's TOPIC_ARN)."""
    prefix = environment_prefix(teams.config.project, teams.env)
    topics = _topics(teams.by_id["Operations"].template)
    variables = _handler(teams, module)["Environment"]["Variables"]
    assert variables[shared] == {"Ref": topics[None]}
    resources = teams.by_id["Operations"].template["Resources"]
    expected: dict[str, list[str]] = {}
    for model in teams.config.environments[teams.env].models:
        team = _owner(teams, model)
        if team is not None:
            # By the team topic's fixed name (a plain string: Lambda's 4 KB counts it at its length); the handler
            # builds the ARN from the environment topic's.
            name = resources[topics[team]]["Properties"]["TopicName"]
            assert name == team_topic_name(prefix, team)
            expected.setdefault(name, []).append(package_group_name(prefix, model))
    assert isinstance(variables["TEAM_TOPICS"], str)
    assert {topic: sorted(groups) for topic, groups in json.loads(variables["TEAM_TOPICS"]).items()} == \
        {topic: sorted(groups) for topic, groups in expected.items()}
    assert len(expected) == 2


@pytest.mark.parametrize("module", ["deploy_on_approval", "retrain_trigger"])
def test_the_deploy_handler_may_publish_to_the_environments_and_the_teams_topics_and_no_other(teams, module):
    """GIVEN two teams' models WHEN the deploy handler's (the retrain trigger's) role is evaluated THEN it may publish to
    the environment's topic and each team's, and use the key they are encrypted with; not to the notification
    watchdog's topic or any other."""
    model = assembly_model(teams.outdir, teams.config, teams.env)
    template = teams.by_id["Operations"].template
    role_id = _handler(teams, module)["Role"]["Fn::GetAtt"][0]
    role = model.role(f"Operations/{role_id}")
    topics = _topics(template)
    for team, logical_id in topics.items():
        assert authorize(role, "sns:Publish", {"topic": model.resolve("Operations", {"Ref": logical_id})}).allowed, team
        key = model.resolve("Operations", template["Resources"][logical_id]["Properties"]["KmsMasterKeyId"])
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            assert authorize(role, action, {"key": key}).allowed, (team, action, key)
    others = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic" and lid not in topics.values()]
    assert others, "the watchdog's topic"
    for logical_id in others:
        assert not authorize(role, "sns:Publish", {"topic": model.resolve("Operations", {"Ref": logical_id})}).allowed
    env = teams.config.environments[teams.env]
    assert not authorize(role, "sns:Publish", {"topic": f"arn:aws:sns:{env.region}:{env.account}:another"}).allowed


def test_giving_a_model_an_owner_replaces_nothing_its_tags_reach(teams):
    """GIVEN two teams' models WHEN every resource carrying ``TEAM_TAG`` (the model's own: endpoint, endpoint config,
    model, pipeline, package group, schedules, functions, roles, alarms, its team's topic) is read THEN its type's
    CloudFormation schema (the one cfn-lint ships) updates ``Tags`` in place: giving a running model an owner adds
    the tags without replacing anything (a replaced endpoint config or model would be a rollout; a replaced feature
    group, its online store lost). A construct whose Tags are create-only must not be under ``Tags.of`` of an owned
    model (docs/configuration.md, Models of several teams)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    region = teams.config.environments[teams.env].region
    wrong, seen = [], set()
    for stack in teams.by_id.values():
        for logical_id, resource in stack.template["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if not isinstance(tags, list) or not any(isinstance(t, dict) and t.get("Key") == TEAM_TAG for t in tags):
                continue
            seen.add(resource["Type"])
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource["Type"]).schema
            if ("/properties/Tags" in schema.get("createOnlyProperties", [])
                    or schema.get("tagging", {}).get("tagUpdatable") is False):
                wrong.append(f"{stack.construct_id}/{logical_id} ({resource['Type']}): Tags are create-only")
    assert wrong == [], "\n".join(wrong)
    assert {"AWS::SageMaker::Endpoint", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Model"} <= seen, seen

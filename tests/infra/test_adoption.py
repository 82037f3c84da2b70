"""A deleted stack's retained resources can all be adopted by a new stack of its name (mlops_cli.retained), whatever
the config: each goes into the `cdk import` mapping or is adopted by name by the deploy after it, none is left to do
by hand; and the import identifiers the mapping is keyed by are CloudFormation's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from unittest import mock

import pytest

from mlops_cli import retained

# Types the import must hold: no static name in the template CloudFormation's auto-import could match (a key has none,
# a model package group is identified by its ARN, a read-only property; a database by DatabaseName, which the template
# does not set; a bucket policy by a Ref; the offline-store role's name is generated).
IMPORT_ONLY = ("AWS::KMS::Key", "AWS::SageMaker::ModelPackageGroup", "AWS::Glue::Database", "AWS::S3::BucketPolicy",
               "AWS::IAM::Role")


def _registry_schema(kind: str) -> dict:
    """The CloudFormation registry schema of ``kind`` cfn-lint ships (eu-west-1's): read from the installed package's
    files, without importing cfn-lint (its rules, sympy and networkx: about 0.4 CPU-s of every collection)."""
    (package,) = importlib.util.find_spec("cfnlint").submodule_search_locations
    schemas = Path(package) / "data" / "schemas"
    digest = json.loads((schemas / "providers" / "eu-west-1.json").read_text())[kind]
    return json.loads((schemas / "resources" / f"{digest}.json").read_text())


@pytest.mark.parametrize("kind", sorted(retained.IMPORT_IDENTIFIER))
def test_each_identifier_is_the_types_primary_identifier_in_cloudformations_registry(kind):
    schema = _registry_schema(kind)
    assert schema["primaryIdentifier"] == [f"/properties/{retained.IMPORT_IDENTIFIER[kind]}"]
    assert "read" in schema["handlers"] and "create" in schema["handlers"]


def test_every_retained_resource_of_every_stack_can_be_adopted_after_its_stack_is_deleted(synthesized):
    """GIVEN every stack of every environment deleted and everything it retains left over (keys by id, the offline-store
    role by the name its groups name, the rest by the name the template gives) WHEN its adoption is planned THEN nothing
    is left to do by hand, the keys, groups, database, policies and roles go through the import, and what the deploy
    adopts by name has a static name."""
    config = synthesized.config
    for env, environment in config.environments.items():
        stacks = retained.synthesized_stacks(synthesized.outdir, env, environment.account, environment.region)
        for stack in stacks.values():
            left = retained.Leftovers(stack)
            for lid, resource in retained.retained(stack.template).items():
                name = retained.fixed_name(stack.template, resource)
                if resource["Type"] == "AWS::KMS::Key":
                    left.found[lid] = {"KeyId": f"key-of-{lid}"}
                elif resource["Type"] == "AWS::IAM::Role":
                    # Found by the name in a retained feature group's RoleArn (generated: the template has none).
                    left.found[lid] = {"RoleName": f"name-of-{lid}"}
                elif name:
                    left.found[lid] = {retained.IMPORT_IDENTIFIER[resource["Type"]]: name}
                else:
                    # A generated name (dead-letter queues): a new one is made, nothing collides.
                    continue
                left.labels[lid] = f"{resource['Type']} {name}"
            adoption = retained.plan(left)
            assert adoption.by_hand == [], (env, stack.name)
            resources = stack.template["Resources"]
            for lid in left.found:
                if resources[lid]["Type"] in IMPORT_ONLY:
                    assert lid in adoption.mapping, (env, stack.name, lid)
            for lid in adoption.by_name:
                kind = resources[lid]["Type"]
                assert isinstance(resources[lid]["Properties"][retained.IMPORT_IDENTIFIER[kind]], str), (env, lid)
                assert resources[lid]["DeletionPolicy"] in retained.RETAINED


def test_a_retained_resource_refers_only_to_resources_kept_with_it(synthesized):
    """GIVEN every stack of every environment THEN what a retained resource refers to by value (Ref, Fn::GetAtt,
    Fn::Sub: an id or ARN fixed in it, which an adoption cannot change) is retained too: a resource deleted with the
    stack would come back under another name or id, and the retained one would keep pointing at the gone one (a
    feature group's RoleArn at its deleted offline-store role). DependsOn is only an order: the deploy after the import
    creates what is gone (a managed policy) before what depends on it."""
    for env, environment in synthesized.config.environments.items():
        for stack in retained.synthesized_stacks(synthesized.outdir, env, environment.account, environment.region).values():
            resources = stack.template["Resources"]
            for lid, resource in retained.retained(stack.template).items():
                by_value = retained.references({k: v for k, v in resource.items() if k != "DependsOn"})
                gone = sorted(r for r in by_value if r in resources and resources[r].get("DeletionPolicy") not in retained.RETAINED)
                assert gone == [], (env, stack.name, lid)


def test_a_retained_feature_groups_role_is_kept_as_the_group_is(synthesized):
    """GIVEN every environment THEN each retained feature group's RoleArn names a role of its stack with the group's own
    DeletionPolicy and UpdateReplacePolicy, and with a generated name (a name set on a running role would replace it,
    and with it, RoleArn being create-only, every group)."""
    checked = 0
    for env, environment in synthesized.config.environments.items():
        for stack in retained.synthesized_stacks(synthesized.outdir, env, environment.account, environment.region).values():
            resources = stack.template["Resources"]
            for lid, group in retained.retained(stack.template).items():
                if group["Type"] != "AWS::SageMaker::FeatureGroup":
                    continue
                role = resources[retained.role_of(stack.template, group)]
                assert (role["DeletionPolicy"], role["UpdateReplacePolicy"]) == (
                    group["DeletionPolicy"], group["UpdateReplacePolicy"]), (env, lid)
                assert "RoleName" not in role["Properties"], (env, lid)
                checked += 1
    if not checked:
        pytest.skip("no environment of the config keeps its feature groups (removal_policy: destroy everywhere)")


def _names(resource: dict) -> list[str]:
    """The names ``resource``'s template gives it or what it belongs to: every string property whose key ends in
    ``Name``, at the top or in a ``...Input`` block (a Glue table's ``TableInput.Name``)."""
    props = resource.get("Properties", {})
    blocks = [props] + [v for k, v in props.items() if k.endswith("Input") and isinstance(v, dict)]
    return [v for block in blocks for k, v in block.items() if k.endswith("Name") and isinstance(v, str)]


class _Everything:
    """A session whose every read-only call answers: every resource looked for exists (a log group is listed under the
    prefix it is looked for by)."""

    def client(self, service):
        client = mock.MagicMock(name=service)
        if service == "logs":
            client.get_paginator.return_value.paginate.side_effect = lambda logGroupNamePrefix: [
                {"logGroups": [{"logGroupName": logGroupNamePrefix}]}]
        return client


@pytest.mark.parametrize("scenario", ["synthesized", "modes"])
def test_every_retained_resource_with_a_fixed_name_is_one_adopt_looks_for(request, scenario):
    """GIVEN every stack of the user's config, and of the modes environment (a batch-served model: the Serving stack
    keeps its schedules' dead-letter queue, outside dev) WHEN a stack is deleted and everything it retains is left over
    THEN each retained resource whose template fixes a name is one `lifecycle stacks` / `adopt` looks up by that name
    and maps: were it not, `stacks` would say "nothing an earlier stack of this name retained is left" and the next
    `cdk deploy` would fail "already exists" on it. A retained resource with no fixed name (a generated dead-letter
    queue, a key) makes no such collision."""
    fixture = request.getfixturevalue(scenario)
    environments = ({fixture.env: fixture.config.environments[fixture.env]} if scenario == "modes"
                    else fixture.config.environments)
    finder = retained.Finder(_Everything())
    unknown = []
    for env, environment in environments.items():
        for stack in retained.synthesized_stacks(fixture.outdir, env, environment.account, environment.region).values():
            for lid, resource in retained.retained(stack.template).items():
                if not _names(resource):
                    continue
                name = retained.fixed_name(stack.template, resource)
                if not name or finder._look_up(resource["Type"], name) is None:
                    unknown.append(f"{env} {stack.name} {resource['Type']} {lid} {_names(resource)}")
    assert unknown == [], "\n".join(unknown)

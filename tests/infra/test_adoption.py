"""A deleted stack's retained resources can all be adopted by a new stack of its name (mlops_cli.retained), whatever
the config: each goes into the `cdk import` mapping or is adopted by name by the deploy after it, none is left to do
by hand; and the import identifiers the mapping is keyed by are CloudFormation's."""

from __future__ import annotations

import json
from pathlib import Path

import cfnlint
import pytest

from mlops_cli import retained

# Types the import must hold: no static name in the template CloudFormation's auto-import could match (a key has none,
# a model package group is identified by its ARN, a read-only property; a database by DatabaseName, which the template
# does not set; a bucket policy by a Ref).
IMPORT_ONLY = ("AWS::KMS::Key", "AWS::SageMaker::ModelPackageGroup", "AWS::Glue::Database", "AWS::S3::BucketPolicy")


def _registry_schema(kind: str) -> dict:
    """The CloudFormation registry schema of ``kind`` cfn-lint ships (eu-west-1's)."""
    schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
    digest = json.loads((schemas / "providers" / "eu-west-1.json").read_text())[kind]
    return json.loads((schemas / "resources" / f"{digest}.json").read_text())


@pytest.mark.parametrize("kind", sorted(retained.IMPORT_IDENTIFIER))
def test_each_identifier_is_the_types_primary_identifier_in_cloudformations_registry(kind):
    schema = _registry_schema(kind)
    assert schema["primaryIdentifier"] == [f"/properties/{retained.IMPORT_IDENTIFIER[kind]}"]
    assert "read" in schema["handlers"] and "create" in schema["handlers"]


def test_every_retained_resource_of_every_stack_can_be_adopted_after_its_stack_is_deleted(synthesized):
    """GIVEN every stack of every environment deleted and everything it retains left over (keys by id, the rest by the
    name the template gives) WHEN its adoption is planned THEN nothing is left to do by hand, the keys, groups, database
    and policies go through the import, and what the deploy adopts by name has a static name."""
    config = synthesized.config
    for env, environment in config.environments.items():
        stacks = retained.synthesized_stacks(synthesized.outdir, env, environment.account, environment.region)
        for stack in stacks.values():
            left = retained.Leftovers(stack)
            for lid, resource in retained.retained(stack.template).items():
                name = retained.fixed_name(stack.template, resource)
                if resource["Type"] == "AWS::KMS::Key":
                    left.found[lid] = {"KeyId": f"key-of-{lid}"}
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

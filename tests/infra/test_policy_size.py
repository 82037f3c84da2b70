"""IAM's size quotas, checked on every synthesized template: what AWS refuses at deploy is refused here first.

A managed policy document may hold 6,144 characters, whitespace not counted, and a role may have 10 managed
policies attached by default (IAM quotas); CloudFormation fails the stack otherwise. Values synth cannot know
(partition, region, account, another resource's ARN) count at their longest."""

from __future__ import annotations

import pytest

from mlops_loop.constructs.access_policy import MANAGED_POLICIES_PER_ROLE, POLICY_SIZE_LIMIT
from tests.support.templates import estimated_policy_length



def _templates(request: pytest.FixtureRequest, scenario: str) -> dict[str, dict]:
    if scenario == "user":
        synthesized = request.getfixturevalue("synthesized")
        return {f"{env}/{stack}": s.template for (env, stack), s in synthesized.stacks.items()}
    made = request.getfixturevalue(scenario)
    return {f"{scenario}/{name}": getattr(made, name) for name in ("serving", "operations", "storage")}


@pytest.mark.parametrize("scenario", ["user", "modes", "pooled"])
def test_every_managed_policy_fits_iams_size_limit(request, scenario):
    """GIVEN every environment of the user's config (and the serving-mode and multi-model scenarios) WHEN each
    template's managed policies are measured THEN none is over 6,144 characters."""
    over = {f"{where}:{logical_id}": estimated_policy_length(r["Properties"]["PolicyDocument"])
            for where, template in _templates(request, scenario).items()
            for logical_id, r in template["Resources"].items() if r["Type"] == "AWS::IAM::ManagedPolicy"}
    assert over and {k: n for k, n in over.items() if n > POLICY_SIZE_LIMIT} == {}


@pytest.mark.parametrize("scenario", ["user", "modes", "pooled"])
def test_no_role_has_more_managed_policies_than_iam_attaches_by_default(request, scenario):
    counts: dict[str, int] = {}
    for where, template in _templates(request, scenario).items():
        for logical_id, r in template["Resources"].items():
            if r["Type"] == "AWS::IAM::Role":
                key = f"{where}:{logical_id}"
                counts[key] = counts.get(key, 0) + len(r["Properties"].get("ManagedPolicyArns") or [])
            elif r["Type"] == "AWS::IAM::ManagedPolicy":
                for role in r["Properties"].get("Roles") or []:
                    if isinstance(role, dict) and "Ref" in role:
                        key = f"{where}:{role['Ref']}"
                        counts[key] = counts.get(key, 0) + 1
    assert counts and {k: n for k, n in counts.items() if n > MANAGED_POLICIES_PER_ROLE} == {}

"""Names unique in an AWS account whatever the region (IAM roles, CloudWatch dashboards, budgets, S3 buckets): two
environments of one account may not both create one, in any two regions.

The loader's other name checks (``environment_name_problems``) compare environments in one account *and* region; an
IAM role of ``dev`` in us-east-1 and one of ``dev-eu`` in eu-west-1 meet all the same, and CloudFormation refuses the
second deploy ("already exists"). GIVEN the one-model construct config (model ``returns``, environment ``dev``) with a
second environment WHEN it is loaded THEN a pair whose account-wide names meet is refused in one line naming both
environments, the name and the fixes, and every pair that deploys today is accepted.
"""

from __future__ import annotations

import copy

import pytest

from mlops_loop.config import ConfigError, parse_config
from mlops_loop.config.cross_checks import account_wide_names
from mlops_loop.tools.cloud_assembly import stacks
from pipeline_code.core.contract import environment_prefix, environment_stack_names
from tests.support.construct_configs import returns_config

REALTIME = {"mode": "realtime", "realtime": {"instance_type": "ml.m5.large", "autoscaling": None}}
# The resource types whose names are unique in an account whatever the region, and the property that names them
# (a budget's is Budget.BudgetName). Lake buckets are unique across all accounts.
ACCOUNT_WIDE = {"AWS::IAM::Role": "RoleName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::IAM::User": "UserName",
                "AWS::IAM::Group": "GroupName", "AWS::IAM::InstanceProfile": "InstanceProfileName",
                "AWS::CloudWatch::Dashboard": "DashboardName", "AWS::Budgets::Budget": None, "AWS::S3::Bucket": "BucketName"}


def _two_environments(*, native_in_dev: bool = True, native_in_eu: bool = True, account: str | None = None,
                      region: str = "eu-central-1") -> dict:
    """``dev`` serving model ``eu-returns`` and ``dev-eu`` (another region of the same account) serving ``returns``:
    the native monitor role of the first, <project>-dev-eu-returns-native-monitor, is the second's too."""
    raw = returns_config(None, model_serving=REALTIME, monitoring={"schedule": "cron(0 3 * * ? *)"})
    returns = raw["models"]["returns"]
    raw["models"]["eu-returns"] = {**copy.deepcopy(returns),
                                   "serving": {**REALTIME, "native_model_monitor": native_in_dev}}
    returns["serving"] = {**REALTIME, "native_model_monitor": native_in_eu}
    dev = raw["environments"]["dev"]
    eu = copy.deepcopy(dev)
    dev["models"] = ["eu-returns"]
    eu.update(models=["returns"], region=region)
    if account:
        eu["account"] = account
    raw["environments"]["dev-eu"] = eu
    return raw


def test_an_iam_role_name_two_environments_of_one_account_would_both_create_is_refused():
    raw = _two_environments()
    dev = raw["environments"]["dev"]
    with pytest.raises(ConfigError) as refused:
        parse_config(raw)
    assert refused.value.problems == [
        f"environments 'dev' ({dev['region']}) and 'dev-eu' (eu-central-1): both deploy to account {dev['account']} and "
        f"both would create IAM role '{raw['project']}-dev-eu-returns-native-monitor' (the native Model Monitor role of model "
        "'eu-returns' in 'dev'; the native Model Monitor role of model 'returns' in 'dev-eu'); its name is unique in the account whatever the "
        "region, so CloudFormation refuses the second deploy ('already exists'). Rename one of the models, or rename "
        "one environment so that neither name is the other's followed by '-' (e.g. 'dev-eu' to 'deveu'), or deploy "
        "the two environments to different accounts"]


@pytest.mark.parametrize("change", [{"native_in_dev": False}, {"native_in_eu": False}, {"account": "444444444444"}])
def test_a_pair_whose_account_wide_names_do_not_meet_is_accepted(change):
    """Only the role of a monitor both turn on is shared; in two accounts nothing is."""
    config = parse_config(_two_environments(**change))
    assert set(config.environments) == {"dev", "dev-eu"}


def _account_wide_literals(template: dict) -> set[str]:
    found = set()
    for resource in template.get("Resources", {}).values():
        kind = resource.get("Type")
        if kind not in ACCOUNT_WIDE:
            continue
        props = resource.get("Properties") or {}
        name = (props.get("Budget") or {}).get("BudgetName") if kind == "AWS::Budgets::Budget" else props.get(ACCOUNT_WIDE[kind])
        if isinstance(name, str):
            found.add(name)
    return found


def test_the_account_wide_names_the_config_checks_are_those_the_templates_create(request):
    """The one list the loader compares (``account_wide_names``) is every fixed account-wide name each synthesized
    environment writes, no more and no fewer: a construct that adds one cannot escape the check."""
    checked = 0
    for fixture in ("synthesized", "modes", "pooled", "teams"):
        assembly = request.getfixturevalue(fixture)
        config = assembly.config
        for env in config.environments.values():
            written = set()
            mine = set(environment_stack_names(environment_prefix(config.project, env.name)).values())
            for stack in stacks(assembly.outdir):
                if stack.stack_name in mine:
                    written |= _account_wide_literals(stack.template)
            if not written:
                continue  # not synthesized in this assembly
            assert set(account_wide_names(config.project, env, config.models)) == written, env.name
            checked += 1
    assert checked >= 3


def test_a_pair_in_one_region_is_refused_once():
    """In one account and region ``environment_name_problems`` already refuses the pair (model ``eu-returns`` of
    ``dev`` takes the names of ``dev-eu``): the account-wide check adds no second message for the same cause."""
    raw = _two_environments(region=_two_environments()["environments"]["dev"]["region"])
    with pytest.raises(ConfigError) as refused:
        parse_config(raw)
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0].startswith("environments 'dev' and 'dev-eu': both deploy to account ")

"""Which deployed environment rollback, the audit and the preflight act on: read from the config, refused when it
lacks the environment or the model; credentials refused when they are of another account or unusable."""

from __future__ import annotations

import argparse

import boto3
import pytest
from botocore.exceptions import NoCredentialsError, ProfileNotFound
from botocore.stub import Stubber

from mlops_cli import target
from tests.support.configs import SAMPLE_CONFIG, sample_account, sample_without_model
from tests.support.credentials import without_credentials
from tests.support.paths import REPO_ROOT

PROD = sample_account("prod")
OTHER = sample_account("staging")


def _args(*argv: str, model: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", required=True)
    if model:
        parser.add_argument("--model", required=True)
    target.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_environments_region_account_and_the_configs_project_unless_given():
    # GIVEN the frozen sample config (prod in eu-west-1 and its own account, project mlops-loop)
    assert target.resolve(_args("--env", "prod", "--config", str(SAMPLE_CONFIG))) == target.Target(
        "prod", "eu-west-1", "mlops-loop", PROD)
    # WHEN one is given THEN it wins, the others still come from the config
    assert target.resolve(_args("--env", "prod", "--config", str(SAMPLE_CONFIG), "--region", "us-east-1")) == \
        target.Target("prod", "us-east-1", "mlops-loop", PROD)
    assert target.resolve(_args("--env", "prod", "--config", str(SAMPLE_CONFIG), "--account", "444455556666")) == \
        target.Target("prod", "eu-west-1", "mlops-loop", "444455556666")


def test_with_region_project_and_account_given_a_broken_config_does_not_block(tmp_path):
    broken = tmp_path / "half-edited.yaml"
    broken.write_text("environments: [\n")
    assert target.resolve(_args("--env", "prod", "--model", "fraud", "--config", str(broken), "--region", "us-east-1",
                                "--project", "shop", "--account", "444455556666", model=True)) == \
        target.Target("prod", "us-east-1", "shop", "444455556666")


def test_without_the_account_the_config_is_read_even_with_region_and_project(tmp_path):
    # The account the credentials must be of comes from the config unless given: it is never left unchecked.
    broken = tmp_path / "half-edited.yaml"
    broken.write_text("environments: [\n")
    with pytest.raises(target.TargetError, match="or pass --region, --project and --account$"):
        target.resolve(_args("--env", "prod", "--config", str(broken), "--region", "us-east-1", "--project", "shop"))


def test_a_broken_config_is_one_line_naming_the_fixes(tmp_path):
    broken = tmp_path / "half-edited.yaml"
    broken.write_text("project: Bad_Name\n")
    with pytest.raises(target.TargetError) as refused:
        target.resolve(_args("--env", "prod", "--config", str(broken)))
    message = str(refused.value)
    assert message.startswith(f"--config {broken}: ") and "\n" not in message
    assert message.endswith("; fix it, pass --config <file>, or pass --region, --project and --account")


def test_a_model_the_environment_does_not_deploy_is_refused_listing_those_it_does(tmp_path):
    # GIVEN the sample config with prod no longer deploying credit-risk (staging still does)
    config = sample_without_model(tmp_path, "prod", "credit-risk")
    # WHEN a tool is pointed at it in prod THEN it is refused from the config, naming prod's models
    with pytest.raises(target.TargetError) as refused:
        target.resolve(_args("--env", "prod", "--model", "credit-risk", "--config", str(config), model=True))
    assert str(refused.value) == (
        f"--model credit-risk: environment 'prod' of {config} does not deploy it; choose from churn (or pass --region, "
        "--project and --account to reach a model the config no longer lists)")
    # and a model the config does not know at all is refused the same way
    with pytest.raises(target.TargetError, match=r"^--model fraud: environment 'prod' of .* does not deploy it; choose from churn "):
        target.resolve(_args("--env", "prod", "--model", "fraud", "--config", str(config), model=True))
    # while the environments that deploy it still reach it
    assert target.resolve(_args("--env", "staging", "--model", "credit-risk", "--config", str(config), model=True)) == \
        target.Target("staging", "eu-west-1", "mlops-loop", OTHER)


def test_an_account_id_that_is_not_one_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        _args("--env", "prod", "--account", "33333333333")
    assert "'33333333333' is not an AWS account id (12 digits)" in capsys.readouterr().err


# ---- whose credentials -----------------------------------------------------------------------------------

WHERE = target.Target("prod", "eu-west-1", "mlops-loop", PROD)


@pytest.fixture()
def sts(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with Stubber(boto3.client("sts", region_name="eu-west-1")) as stubber:
        yield stubber


def _identity(account: str) -> dict:
    return {"Account": account, "Arn": f"arn:aws:sts::{account}:assumed-role/approver/alice", "UserId": "AROA:alice"}


def test_credentials_of_the_environments_account_give_the_callers_identity(sts):
    sts.add_response("get_caller_identity", _identity(PROD), {})
    identity = target.check_account(sts.client, WHERE)
    assert (identity["Account"], identity["Arn"]) == (PROD, f"arn:aws:sts::{PROD}:assumed-role/approver/alice")


def test_credentials_of_another_account_are_refused_naming_the_environment_and_both_accounts(sts):
    sts.add_response("get_caller_identity", _identity(OTHER), {})
    with pytest.raises(target.TargetError) as refused:
        target.check_account(sts.client, WHERE)
    assert str(refused.value) == (f"the credentials are of account {OTHER}, environment 'prod' is account {PROD}; use "
                                  "that account's credentials (e.g. AWS_PROFILE) and run again")


def test_credentials_aws_does_not_accept_say_which_account_and_role_to_log_in_as(sts):
    sts.add_client_error("get_caller_identity", service_error_code="ExpiredToken",
                         service_message="The security token included in the request is expired")
    with pytest.raises(target.TargetError) as refused:
        target.check_account(sts.client, WHERE, role="the approver role mlops-loop-prod-model-approver")
    assert str(refused.value) == (
        "no usable AWS credentials (ExpiredToken: The security token included in the request is expired): log in to "
        f"account {PROD} of environment 'prod' as the approver role mlops-loop-prod-model-approver (e.g. aws sso login, "
        "AWS_PROFILE) and run again")


def test_when_sts_cannot_answer_nothing_is_done_and_the_line_says_why(sts):
    sts.add_client_error("get_caller_identity", service_error_code="Throttling", service_message="Rate exceeded")
    with pytest.raises(target.TargetError) as refused:
        target.check_account(sts.client, WHERE)
    assert str(refused.value) == (f"cannot tell which account the credentials are of (Throttling: Rate exceeded); "
                                  f"nothing of environment 'prod' (account {PROD}) was read or changed")


@pytest.mark.parametrize("error, detail", [
    (NoCredentialsError(), "NoCredentialsError: Unable to locate credentials"),
    (ProfileNotFound(profile="nope"), "ProfileNotFound: The config profile (nope) could not be found"),
])
def test_missing_credentials_or_profile_are_one_line_and_other_errors_are_not_about_credentials(error, detail):
    assert target.credentials_problem(error, WHERE) == (
        f"no usable AWS credentials ({detail}): log in to account {PROD} of environment 'prod' (e.g. aws sso login, "
        "AWS_PROFILE) and run again")
    assert target.credentials_problem(ValueError("not AWS"), WHERE) is None


def test_a_profile_that_does_not_exist_fails_as_the_session_is_made(monkeypatch, tmp_path):
    # Why the commands treat credentials errors wherever they are raised, not only at the account check.
    without_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(ProfileNotFound) as raised:
        boto3.session.Session(region_name="eu-west-1")
    assert target.unusable_credentials(raised.value)


def test_a_project_name_aws_resources_cannot_carry_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        _args("--env", "prod", "--project", "Bad_Name!")
    assert ("'Bad_Name!' is not a project name (2-20 lower-case letters, digits and '-', starting with a letter)"
            in capsys.readouterr().err)


def test_the_default_config_is_the_repositorys_unless_mlops_loop_config_names_another(monkeypatch):
    monkeypatch.delenv("MLOPS_LOOP_CONFIG", raising=False)
    assert target.default_config() == REPO_ROOT / "config" / "mlops-loop.yaml"
    monkeypatch.setenv("MLOPS_LOOP_CONFIG", "config/risk-ml.yaml")
    assert target.default_config() == REPO_ROOT / "config" / "risk-ml.yaml"


def test_a_second_projects_operator_who_exported_mlops_loop_config_acts_on_their_own_project(monkeypatch, tmp_path):
    """GIVEN a second project's config (another project, the same accounts) named by MLOPS_LOOP_CONFIG WHEN a tool runs
    without --config (docs/configuration.md, A second project: the way to run a second project) THEN it acts on that project, not the sample's."""
    import yaml

    raw = yaml.safe_load(SAMPLE_CONFIG.read_text())
    raw["project"] = "risk-ml"
    second = tmp_path / "risk-ml.yaml"
    second.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("MLOPS_LOOP_CONFIG", str(second))
    assert target.resolve(_args("--env", "prod")) == target.Target("prod", "eu-west-1", "risk-ml", PROD)


def test_the_target_line_names_project_environment_account_region_and_the_config_read():
    where = target.resolve(_args("--env", "prod", "--config", str(SAMPLE_CONFIG)))
    assert target.target_line(where) == (f"project=mlops-loop environment=prod account={PROD} region=eu-west-1 "
                                         f"(config {SAMPLE_CONFIG})")
    given = target.resolve(_args("--env", "prod", "--config", "/nonexistent.yaml", "--region", "us-east-1", "--project",
                                 "shop", "--account", "444455556666"))
    assert target.target_line(given) == ("project=shop environment=prod account=444455556666 region=us-east-1 "
                                         "(config not read: --region, --project and --account given)")


def test_the_target_line_warns_when_a_context_file_beat_a_different_mlops_loop_config(monkeypatch, capsys):
    """GIVEN MLOPS_LOOP_CONFIG exported but a context file (cdk.json, cdk.context.json, ~/.cdk.json) naming another
    config WHEN a tool takes its default THEN it reads the context's (as cdk synth does) and says the variable lost."""
    from mlops_loop.config import location

    monkeypatch.setenv("MLOPS_LOOP_CONFIG", "config/risk-ml.yaml")
    monkeypatch.setattr(location, "persistent_context", lambda key, *_: (str(SAMPLE_CONFIG), REPO_ROOT / "cdk.json"))
    where = target.resolve(_args("--env", "prod"))
    target.announce(where)
    assert capsys.readouterr().err.splitlines() == [
        f"project=mlops-loop environment=prod account={PROD} region=eu-west-1 (config {SAMPLE_CONFIG})",
        f"warning: context 'mlops-loop:config' names {SAMPLE_CONFIG}, which wins over "
        "MLOPS_LOOP_CONFIG=config/risk-ml.yaml; drop the one you did not mean, so that synth, deploy and the tools read "
        "the same config"]


def test_each_tools_failure_is_one_line_with_its_hint_only_after_an_access_denial():
    """Every workstation tool's exit-2 line comes from one rule (failure_line): its own refusal as written, no region
    as NO_REGION, an AWS refusal naming the call, with the tool's hint only when AWS denied access, and unusable
    credentials naming the account and the role to log in as."""
    from botocore.exceptions import ClientError, NoRegionError

    where = target.Target("prod", "eu-west-1", "mlops-loop", "444455556666")

    def refused(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "no"}}, "ListObjectsV2")

    hint = lambda: "; run as the admin"  # noqa: E731
    assert target.failure_line(target.TargetError("--env x: not in the config"), where) == "--env x: not in the config"
    assert target.failure_line(NoRegionError(), where, denied_hint=hint) == target.NO_REGION
    assert target.failure_line(refused("AccessDenied"), where, denied_hint=hint) == (
        "AWS refused ListObjectsV2: AccessDenied: no; run as the admin")
    assert target.failure_line(refused("ThrottlingException"), where, denied_hint=hint) == (
        "AWS refused ListObjectsV2: ThrottlingException: no")
    unusable = target.failure_line(NoCredentialsError(), where, role="the approver role x")
    assert "444455556666" in unusable and "as the approver role x" in unusable

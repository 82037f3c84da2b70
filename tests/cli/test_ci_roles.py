"""The CI roles (``python -m mlops_cli.ci_roles``): the IAM documents the GitHub workflows' deploy and diff roles need,
judged by the offline IAM evaluator as IAM would judge the requests the workflows make, and tied to the workflows
(the OIDC subject each job gets, the variables they read, the session length the deploy job asks for).

Nothing pins the sample's environments: every check runs over the environments of the user's config."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pytest
import yaml

from mlops_cli import ci_roles
from mlops_loop.config import load_config
from mlops_loop.config.location import bootstrap_qualifier
from pipeline_code.core.contract import CDK_BOOTSTRAP_ROLES, cdk_bootstrap_role_arn
from tests.support.iam_eval import Statement, evaluate
from tests.support.paths import CONFIG_PATH, REPO_ROOT

REPOSITORY = "acme/mlops-loop"
DIFF_ACCOUNT = "999999999999"
WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _run(*argv: str) -> tuple[int, Any, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = ci_roles.main([*argv, "--config", str(CONFIG_PATH)])
    return status, (json.loads(out.getvalue()) if status == 0 else out.getvalue()), err.getvalue()


@pytest.fixture(scope="module")
def app():
    return load_config(CONFIG_PATH)


@pytest.fixture(scope="module")
def roles() -> dict:
    status, printed, err = _run("--repository", REPOSITORY, "--diff-account", DIFF_ACCOUNT)
    assert status == 0, err
    return printed


def _statements(policy: dict) -> list[Statement]:
    return [Statement.from_json(s) for s in policy["Statement"]]


def _may_take(trust: dict, *, sub: str, aud: str = "sts.amazonaws.com") -> bool:
    """Would IAM let a GitHub OIDC token with ``sub`` and ``aud`` assume a role of this trust policy? (The evaluator
    judges identity statements: the statement's principal, checked below, is left out and it applies to the role.)"""
    for statement in trust["Statement"]:
        assert statement["Principal"] == {"Federated": statement["Principal"]["Federated"]}
        assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    statements = [Statement.from_json({**{k: v for k, v in s.items() if k != "Principal"}, "Resource": "*"})
                  for s in trust["Statement"]]
    decision = evaluate(statements, "sts:AssumeRoleWithWebIdentity", "arn:aws:iam::111111111111:role/any",
                        {"token.actions.githubusercontent.com:sub": sub, "token.actions.githubusercontent.com:aud": aud})
    return decision.allowed


def _workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_each_deploy_role_admits_only_its_github_environments_jobs(roles, app):
    """GIVEN the deploy role of each environment WHEN GitHub's OIDC token of a job asks to assume it THEN only a job of
    this repository naming that GitHub environment (subject ``repo:<repo>:environment:<env>``, audience STS) gets in:
    not a pull request, not a push to main outside the environment, not another environment's job, not a fork's
    repository of the same name, not another audience."""
    for name in app.environments:
        trust = roles["environments"][name]["deploy_role"]["trust_policy"]
        assert _may_take(trust, sub=f"repo:{REPOSITORY}:environment:{name}")
        refused = [f"repo:{REPOSITORY}:pull_request", f"repo:{REPOSITORY}:ref:refs/heads/main",
                   f"repo:someone/mlops-loop:environment:{name}", f"repo:{REPOSITORY}:environment:{name}-x",
                   *(f"repo:{REPOSITORY}:environment:{other}" for other in app.environments if other != name)]
        assert not [sub for sub in refused if _may_take(trust, sub=sub)]
        assert not _may_take(trust, sub=f"repo:{REPOSITORY}:environment:{name}", aud="https://github.com/acme")


def test_each_deploy_role_may_assume_only_what_cdk_deploy_needs_in_its_own_account(roles, app):
    """GIVEN the deploy role's policy THEN it may assume the deploy and publishing roles of its environment's bootstrap
    (the cdk.json qualifier, its account and region) and nothing else: not the cfn-exec role (CloudFormation's, with
    administrator rights), not another environment's bootstrap roles, not another qualifier's."""
    qualifier = bootstrap_qualifier(user=False)
    assert roles["qualifier"] == qualifier
    for name, env in app.environments.items():
        policy = _statements(roles["environments"][name]["deploy_role"]["policy"])
        for role in CDK_BOOTSTRAP_ROLES:
            arn = cdk_bootstrap_role_arn(env.account, env.region, qualifier, role)
            wanted = role in ("deploy-role", "file-publishing-role", "image-publishing-role")
            assert evaluate(policy, "sts:AssumeRole", arn).allowed is wanted, (name, role)
        assert not evaluate(policy, "sts:AssumeRole", cdk_bootstrap_role_arn(env.account, env.region, "other", "deploy-role")).allowed
        others = [(o.account, o.region) for n, o in app.environments.items() if (o.account, o.region) != (env.account, env.region)]
        for account, region in others:
            assert not evaluate(policy, "sts:AssumeRole", cdk_bootstrap_role_arn(account, region, qualifier, "deploy-role")).allowed


def test_the_diff_role_admits_the_live_diff_jobs_and_may_only_look_up(roles, app):
    """GIVEN the diff role THEN it admits a pull request's job and the deploy run's (push to main), nothing else, and
    may assume each environment's lookup role (read-only), not a deploy role."""
    diff = roles["diff_role"]
    assert diff["account"] == DIFF_ACCOUNT
    assert diff["trust_policy"]["Statement"][0]["Principal"]["Federated"].split(":")[4] == DIFF_ACCOUNT
    trust = diff["trust_policy"]
    assert _may_take(trust, sub=f"repo:{REPOSITORY}:pull_request")
    assert _may_take(trust, sub=f"repo:{REPOSITORY}:ref:refs/heads/main")
    for sub in (f"repo:{REPOSITORY}:ref:refs/heads/feature", f"repo:{REPOSITORY}:environment:prod",
                "repo:someone/mlops-loop:pull_request"):
        assert not _may_take(trust, sub=sub), sub
    policy = _statements(diff["policy"])
    qualifier = bootstrap_qualifier(user=False)
    for env in app.environments.values():
        assert evaluate(policy, "sts:AssumeRole", cdk_bootstrap_role_arn(env.account, env.region, qualifier, "lookup-role")).allowed
        for role in CDK_BOOTSTRAP_ROLES:
            if role != "lookup-role":
                assert not evaluate(policy, "sts:AssumeRole", cdk_bootstrap_role_arn(env.account, env.region, qualifier, role)).allowed


def test_an_account_other_than_the_diff_roles_trusts_it_for_lookups(app):
    """GIVEN the diff role in one environment's account WHEN the bootstrap commands are printed THEN every other
    account's bootstrap trusts the diff role's account for lookups (``--trust-for-lookup``: a lookup role trusts only
    its own account otherwise, and the live diff fails on its credentials), and the diff role's own account needs no
    such trust; the qualifier is named when it is not the CDK's default."""
    first = next(iter(app.environments.values()))
    status, printed, err = _run("--repository", REPOSITORY, "--diff-account", first.account)
    assert status == 0, err
    qualifier = bootstrap_qualifier(user=False)
    for name, env in app.environments.items():
        expected = f"npx cdk bootstrap aws://{env.account}/{env.region}"
        if qualifier != "hnb659fds":
            expected += f" --qualifier {qualifier}"
        if env.account != first.account:
            expected += f" --trust-for-lookup {first.account}"
        assert printed["environments"][name]["bootstrap"] == expected
    assert ci_roles.bootstrap_command("111111111111", "eu-west-1", "acme", "222222222222") == (
        "npx cdk bootstrap aws://111111111111/eu-west-1 --qualifier acme --trust-for-lookup 222222222222")


def test_the_roles_match_what_the_workflows_ask_for(roles, app):
    """GIVEN the workflows THEN each deploy job asks for a session no longer than the deploy role allows, reads the
    variables the roles are printed for, and names the GitHub environment whose subject the deploy role trusts; the
    live diff reads the diff role's variable."""
    job = _workflow("deploy-environment.yml")["jobs"]["deploy"]
    (credentials,) = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert int(credentials["with"]["role-duration-seconds"]) <= ci_roles.DEPLOY_SESSION_SECONDS
    for name in app.environments:
        deploy_role = roles["environments"][name]["deploy_role"]
        assert deploy_role["max_session_duration"] == ci_roles.DEPLOY_SESSION_SECONDS
        assert credentials["with"]["role-to-assume"] == f"${{{{ vars.{deploy_role['github_environment_variable']} }}}}"
    assert job["environment"] == "${{ inputs.environment }}"
    called = [j["with"]["environment"] for j in _workflow("deploy.yml")["jobs"].values()
              if j.get("uses", "").endswith("/deploy-environment.yml")]
    assert sorted(called) == sorted(app.environments)
    (diff_credentials,) = [s for s in _workflow("live-diff.yml")["jobs"]["diff"]["steps"]
                           if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert diff_credentials["with"]["role-to-assume"] == f"${{{{ vars.{roles['diff_role']['repository_variable']} }}}}"


def test_without_a_diff_account_no_diff_role_and_no_lookup_trust(app):
    name = next(iter(app.environments))
    status, printed, err = _run("--repository", REPOSITORY, "--env", name)
    assert status == 0, err
    assert "diff_role" not in printed and list(printed["environments"]) == [name]
    assert "--trust-for-lookup" not in printed["environments"][name]["bootstrap"]


@pytest.mark.parametrize("argv, message", [
    (["--repository", "acme"], "ci-roles: --repository 'acme': give the GitHub repository as <owner>/<repo> (e.g. "
                               "acme/mlops-loop), as in its URL\n"),
    (["--repository", REPOSITORY, "--diff-account", "12345"],
     "ci-roles: --diff-account '12345': give the 12-digit AWS account id the diff role is in\n"),
    (["--repository", REPOSITORY, "--env", "nope"],
     f"ci-roles: --env nope: not an environment of {CONFIG_PATH}; choose from {{envs}}\n"),
])
def test_bad_arguments_exit_2_with_one_line(app, argv, message):
    status, printed, err = _run(*argv)
    assert (status, printed) == (2, "")
    assert err.endswith(message.format(envs=", ".join(app.environments))), err


def test_the_qualifier_is_the_one_ci_synthesizes_with_not_the_workstations_own_defaults(tmp_path, monkeypatch):
    """GIVEN the person printing the roles has a ``~/.cdk.json`` naming another qualifier (their own CDK defaults)
    WHEN the roles are printed THEN they name the bootstrap roles of the qualifier the repository gives (cdk.json,
    cdk.context.json, else the CDK's default): CI synthesizes the assembly on a runner that has no ``~/.cdk.json``, and
    its deploy assumes the roles that assembly names; a policy for the workstation's qualifier would be refused them."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".cdk.json").write_text(json.dumps({"context": {"@aws-cdk/core:bootstrapQualifier": "mine"}}))
    ci = bootstrap_qualifier(home=tmp_path / "runner-home")  # the runner's home: no .cdk.json
    assert ci != "mine"
    status, printed, err = _run("--repository", REPOSITORY)
    assert status == 0, err
    assert printed["qualifier"] == ci
    assert err == (f"ci-roles: note: ~/.cdk.json names the bootstrap qualifier 'mine', which CI's synth does not read: "
                   f"the roles are for {ci!r} (put the qualifier in cdk.json's context for both)\n")
    for name, env in printed["environments"].items():
        assert printed["environments"][name]["deploy_role"]["policy"]["Statement"][0]["Resource"] == sorted(
            cdk_bootstrap_role_arn(env["account"], env["region"], ci, role) for role in ci_roles.DEPLOY_ASSUMES)


def test_the_diff_role_printed_for_some_environments_still_covers_every_one(app):
    """GIVEN the roles printed for one environment (``--env``) with the diff role WHEN that diff role's policy is applied
    THEN it still lets the live diff look up every environment of the config: there is one diff role for all of them
    (the pull request's live diff covers them all), and a policy for the one environment asked about would take the
    others' lookups away from it."""
    name = next(iter(app.environments))
    status, printed, err = _run("--repository", REPOSITORY, "--env", name, "--diff-account", DIFF_ACCOUNT)
    assert status == 0, err
    assert list(printed["environments"]) == [name]
    policy = _statements(printed["diff_role"]["policy"])
    for env in app.environments.values():
        arn = cdk_bootstrap_role_arn(env.account, env.region, bootstrap_qualifier(user=False), "lookup-role")
        assert evaluate(policy, "sts:AssumeRole", arn).allowed, arn
    # And each of those accounts is told how to trust it for lookups, not only the one asked about.
    qualifier = bootstrap_qualifier(user=False)
    assert printed["diff_role"]["lookup_bootstrap"] == {
        other: ci_roles.bootstrap_command(env.account, env.region, qualifier, DIFF_ACCOUNT)
        for other, env in app.environments.items()}
    assert all(f"--trust-for-lookup {DIFF_ACCOUNT}" in command
               for other, command in printed["diff_role"]["lookup_bootstrap"].items()
               if app.environments[other].account != DIFF_ACCOUNT)

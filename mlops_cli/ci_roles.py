"""The IAM roles the GitHub workflows take, written out for the config's environments: what to create in each
account before the first deploy from CI, least privilege, and the bootstrap each account needs for them.

    python -m mlops_cli.ci_roles --repository <owner>/<repo> [--env prod ...] [--diff-account <account>]

Prints one JSON document (nothing is read from or written to AWS):

* per environment, the **deploy role** (``AWS_DEPLOY_ROLE_ARN`` of the GitHub environment of that name, in the
  environment's account): a trust policy for GitHub's OIDC provider that admits only the subject
  ``repo:<owner>/<repo>:environment:<env>`` (the deploy job names the environment, so only it, behind the environment's
  reviewers and branch rule, gets that subject), and a permissions policy that may only assume that account's and
  region's CDK bootstrap roles the CLI deploys an assembly through (deploy, file and image publishing: not the
  cfn-exec role, which CloudFormation assumes, nor another environment's); a ``MaxSessionDuration`` of 5 hours, the
  deploy job's ``role-duration-seconds``. The bootstrap roles' names carry the qualifier of cdk.json (read as the CDK
  CLI reads it on a CI runner: not the user's ``~/.cdk.json``, which is named in a note when it differs);
* with ``--diff-account``, the **diff role** (repository variable ``AWS_DIFF_ROLE_ARN``, one role in that account for
  every environment): trusted for ``repo:<owner>/<repo>:pull_request`` and ``repo:<owner>/<repo>:ref:refs/heads/main``,
  allowed only to assume each environment's bootstrap lookup role (ReadOnlyAccess, KMS decryption denied), for every
  environment of the config whatever ``--env`` names;
* per environment, the ``cdk bootstrap`` command: an account other than the diff role's must trust that account for
  lookups (``--trust-for-lookup``), or the lookup role refuses the diff role and the live diff fails on its
  credentials; with ``--diff-account``, the diff role's ``lookup_bootstrap`` gives that command for every environment
  of the config, as its policy covers every one.

The OIDC provider ``token.actions.githubusercontent.com`` (audience ``sts.amazonaws.com``) must exist in each account
that holds one of the roles. Exit 0; 2 with one line for a bad argument or a config without the environment.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, Dict, List, Optional, Sequence

from mlops_cli import target as deploy_target
from pipeline_code.core.contract import DEFAULT_CDK_QUALIFIER, aws_partition, cdk_bootstrap_role_arn

OIDC_HOST = "token.actions.githubusercontent.com"
OIDC_AUDIENCE = "sts.amazonaws.com"
# The deploy job's role-duration-seconds (.github/workflows/deploy-environment.yml): a blue/green rollout's 4 hours and
# an hour for the rest. IAM refuses a longer session than the role's MaxSessionDuration.
DEPLOY_SESSION_SECONDS = 18000
# What `cdk deploy --app cdk.out --require-approval never` assumes: the deploy role for CloudFormation and the bootstrap
# version, the publishing roles for the assets. CloudFormation itself assumes the cfn-exec role.
DEPLOY_ASSUMES = ("deploy-role", "file-publishing-role", "image-publishing-role")
DIFF_ASSUMES = ("lookup-role",)
# The subjects GitHub gives the workflows' jobs (the live diff of a pull request, and of the deploy run on main).
DIFF_SUBJECTS = ("pull_request", "ref:refs/heads/main")
_REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
_ACCOUNT = re.compile(r"^\d{12}$")


class CiRolesError(ValueError):
    """A bad argument; the message is one line naming the fix."""


def trust_policy(account: str, region: str, repository: str, subjects: Sequence[str]) -> Dict[str, Any]:
    """Admit GitHub's OIDC tokens for ``repository`` with one of ``subjects`` (after ``repo:<repository>:``), nothing else."""
    provider = f"arn:{aws_partition(region)}:iam::{account}:oidc-provider/{OIDC_HOST}"
    subs = [f"repo:{repository}:{subject}" for subject in subjects]
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "GitHubActions",
        "Effect": "Allow",
        "Principal": {"Federated": provider},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{OIDC_HOST}:aud": OIDC_AUDIENCE,
                                       f"{OIDC_HOST}:sub": subs[0] if len(subs) == 1 else subs}},
    }]}


def assume_policy(targets: Sequence[tuple[str, str]], qualifier: str, roles: Sequence[str]) -> Dict[str, Any]:
    """May assume exactly ``roles`` of the bootstrap of each (account, region) of ``targets``."""
    arns = sorted({cdk_bootstrap_role_arn(account, region, qualifier, role) for account, region in targets for role in roles})
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "CdkBootstrapRoles", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arns}]}


def bootstrap_command(account: str, region: str, qualifier: str, diff_account: Optional[str]) -> str:
    command = f"npx cdk bootstrap aws://{account}/{region}"
    if qualifier != DEFAULT_CDK_QUALIFIER:
        command += f" --qualifier {qualifier}"
    if diff_account is not None and diff_account != account:
        command += f" --trust-for-lookup {diff_account}"
    return command


def ci_roles(app: Any, *, repository: str, environments: Sequence[str], qualifier: str,
             diff_account: Optional[str]) -> Dict[str, Any]:
    """The roles and bootstrap commands for ``environments`` of the loaded ``app`` (see the module docstring)."""
    out: Dict[str, Any] = {"repository": repository, "qualifier": qualifier, "oidc_provider": OIDC_HOST,
                           "environments": {}}
    for name in environments:
        env = app.environments[name]
        out["environments"][name] = {
            "account": env.account,
            "region": env.region,
            "deploy_role": {
                "github_environment_variable": "AWS_DEPLOY_ROLE_ARN",
                "role_name": f"{app.project}-{name}-github-deploy",
                "max_session_duration": DEPLOY_SESSION_SECONDS,
                "trust_policy": trust_policy(env.account, env.region, repository, [f"environment:{name}"]),
                "policy": assume_policy([(env.account, env.region)], qualifier, DEPLOY_ASSUMES),
            },
            "bootstrap": bootstrap_command(env.account, env.region, qualifier, diff_account),
        }
    if diff_account is not None:
        # One diff role for every environment of the config (the pull request's live diff covers them all), whichever
        # environments were asked about: a policy for some would take the others' lookups away from it.
        targets = [(env.account, env.region) for env in app.environments.values()]
        out["diff_role"] = {
            "repository_variable": "AWS_DIFF_ROLE_ARN",
            "account": diff_account,
            "role_name": f"{app.project}-github-diff",
            # The OIDC provider is the diff account's; its partition is the environments' (one partition per config).
            "trust_policy": trust_policy(diff_account, targets[0][1], repository, DIFF_SUBJECTS),
            "policy": assume_policy(targets, qualifier, DIFF_ASSUMES),
            # Each account's lookup role must trust the diff role's account, whichever environments were asked about:
            # a policy that may assume a lookup role which does not trust it still fails the live diff.
            "lookup_bootstrap": {name: bootstrap_command(env.account, env.region, qualifier, diff_account)
                                 for name, env in app.environments.items()},
        }
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlops_cli.ci_roles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", required=True, help="the GitHub repository the workflows run in: <owner>/<repo>")
    parser.add_argument("--env", action="append", default=[], metavar="ENV",
                        help="an environment of the config (repeatable; default: every one)")
    parser.add_argument("--diff-account", default=None,
                        help="the account of the live diff's read-only role, AWS_DIFF_ROLE_ARN (default: no diff role)")
    parser.add_argument("--config", default=str(deploy_target.default_config()),
                        help="the app's config (default: MLOPS_LOOP_CONFIG's file, else config/mlops-loop.yaml: what cdk "
                             "synth reads)")
    return parser


def _checked(args: argparse.Namespace) -> tuple[Any, List[str], str]:
    if not _REPOSITORY.match(args.repository):
        raise CiRolesError(f"--repository {args.repository!r}: give the GitHub repository as <owner>/<repo> (e.g. "
                           "acme/mlops-loop), as in its URL")
    if args.diff_account is not None and not _ACCOUNT.match(args.diff_account):
        raise CiRolesError(f"--diff-account {args.diff_account!r}: give the 12-digit AWS account id the diff role is in")
    from mlops_loop.config import ConfigError, load_config
    from mlops_loop.config.location import bootstrap_qualifier

    try:
        app = load_config(args.config)
    except ConfigError as error:
        more = f" (and {len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
        raise CiRolesError(f"--config {args.config}: {error.problems[0]}{more}") from None
    for name in args.env:
        deploy_target.environment_of(app, name, args.config)
    # The qualifier CI's synth reads: the repository's files, not this workstation's ~/.cdk.json (a runner has none),
    # since the deploy assumes the roles the assembly names.
    qualifier = bootstrap_qualifier(user=False)
    try:
        own: Optional[str] = bootstrap_qualifier()
    except ValueError:  # ~/.cdk.json names no usable qualifier: this workstation's concern, not CI's
        own = None
    if own is not None and own != qualifier:
        print(f"ci-roles: note: ~/.cdk.json names the bootstrap qualifier {own!r}, which CI's synth does not read: the "
              f"roles are for {qualifier!r} (put the qualifier in cdk.json's context for both)", file=sys.stderr)
    return app, list(dict.fromkeys(args.env)) or list(app.environments), qualifier


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        app, environments, qualifier = _checked(args)
    except (CiRolesError, deploy_target.TargetError, ValueError) as error:
        print(f"ci-roles: {error}", file=sys.stderr)
        return 2
    print(json.dumps(ci_roles(app, repository=args.repository, environments=environments, qualifier=qualifier,
                              diff_account=args.diff_account), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

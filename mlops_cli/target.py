"""The deployed environment a workstation tool acts on, read from the app's config, and the credentials checked
against it.

``--env`` must name one of the config's environments and ``--model`` (for the tools that take one) one of the
models that environment deploys; the tool works in that environment's region, project and account unless
``--region`` / ``--project`` / ``--account`` say otherwise: an operator's shell default region, a profile left on
another account, or a typo'd name would otherwise point it at resources that do not exist, or at another
region's or account's. With all three given, the config is not read at all, so a config being edited cannot
block, say, a rollback (nor a model or environment it no longer lists be out of reach).

Before acting, every such tool prints one line on stderr naming what it acts on (:func:`announce`: ``project=<p>
environment=<e> account=<a> region=<r> (config <file>)``): in an account several projects share, a tool left
reading another project's config would otherwise act on that project without a word. Then it asks STS whose
credentials it runs with (:func:`check_account`) and refuses another account than the environment's, and it
reports unusable credentials - none found, a profile that does not exist, an expired token
(:func:`credentials_problem`) - as one line.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, TextIO

from pipeline_code.core.contract import NAME_PATTERN

_PROJECT = re.compile(NAME_PATTERN)
_ACCOUNT = re.compile(r"^\d{12}$")

# Errors that say the credentials themselves are missing or unusable, whichever call raised them: botocore's
# (raised before any request, some already when the session is created: a profile that does not exist) and
# AWS's codes for keys or tokens it does not accept.
# What a tool says when boto3 finds no region: the config gives every environment one, so only --region was left out
# with --project and --account given.
NO_REGION = "no AWS region: the environment's config names none; pass --region"
_CREDENTIALS_ERRORS = ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound", "CredentialRetrievalError",
                       "SSOError", "SSOTokenLoadError", "UnauthorizedSSOTokenError", "TokenRetrievalError",
                       "LoginTokenLoadError", "NoAuthTokenError", "UnknownCredentialError")
_CREDENTIALS_CODES = ("InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch",
                      "UnrecognizedClientException", "InvalidAccessKeyId", "AuthFailure")


class TargetError(ValueError):
    """The tool must not act on the environment (config unreadable or lacking it, another account's or unusable
    credentials); the one-line message names the fix."""


@dataclass(frozen=True)
class Target:
    environment: str
    region: str
    project: str
    account: str
    # The config file read (None: not read, --region, --project and --account given); what the target line names.
    config: Optional[str] = field(default=None, compare=False)
    # The serving mode the config gives the tool's model in this environment (None: no model, or the config not read).
    serving_mode: Optional[str] = field(default=None, compare=False)
    # The tool's model's team when that team approves its own models (team_approvers; docs/configuration.md, Models of
    # several teams): its approver role decides the model's versions, not the environment's. None: no model, no such
    # team, or the config not read.
    approver_team: Optional[str] = field(default=None, compare=False)
    # The loaded config the target was read from (None: not read), for a tool's further settings without reading and
    # checking the file again.
    app: Any = field(default=None, compare=False, repr=False)


def default_config() -> Path:
    """The config ``cdk synth`` without ``-c`` synthesizes from: the file ``MLOPS_LOOP_CONFIG`` names, else
    config/mlops-loop.yaml (``mlops_loop.config.location``: one resolution for app.py and every tool)."""
    from mlops_loop.config.location import configured_path

    return configured_path()


def _project(value: str) -> str:
    if not _PROJECT.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a project name (2-20 lower-case letters, digits and '-', "
                                         "starting with a letter)")
    return value


def _account(value: str) -> str:
    if not _ACCOUNT.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an AWS account id (12 digits)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, and ``--region`` / ``--project`` / ``--account`` defaulting to the environment's."""
    parser.add_argument("--config", default=str(default_config()),
                        help="the app's config, which names the environments (default: MLOPS_LOOP_CONFIG's file, else "
                             "config/mlops-loop.yaml: what cdk synth reads)")
    parser.add_argument("--region", default=None, help="AWS region (default: the environment's, from the config)")
    parser.add_argument("--project", default=None, type=_project, help="project name prefix (default: the config's)")
    parser.add_argument("--account", default=None, type=_account,
                        help="AWS account the credentials must be of (default: the environment's, from the config)")


def given_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The options of :func:`add_arguments` this run was given (``--config`` when not the repository's default config,
    ``--project``, ``--region``, ``--account``), as words to repeat in a command the tool prints: run as printed, it
    acts on the same target this run did, not on the default config's.

    A config the run took as its default (from ``MLOPS_LOOP_CONFIG`` or the context) is named too, as the app's printed
    commands name it (:attr:`ConfigLocation.cli_config`): the variable is a shell's, and the line pasted into another
    shell without it would read config/mlops-loop.yaml. A ``--config`` given is repeated as given."""
    from mlops_loop.config.location import ConfigLocation

    config: Optional[str] = args.config
    if args.config == parser.get_default("config"):
        config = ConfigLocation(str(args.config), "default").cli_config  # None: the repository's default file
    words = ["--config", config] if config else []
    for option in ("project", "region", "account"):
        if getattr(args, option, None):
            words += [f"--{option}", getattr(args, option)]
    return [shlex.quote(word) for word in words]


def resolve(args: argparse.Namespace) -> Target:
    """The environment ``args.env`` of ``args.config``, with ``args.region`` / ``args.project`` / ``args.account``
    when given; ``args.model``, when the tool has one, must be a model the environment deploys."""
    if args.region and args.project and args.account:
        return Target(args.env, args.region, args.project, args.account)
    from mlops_loop.config import ConfigError, load_config

    try:
        app = load_config(args.config)
    except ConfigError as error:
        more = f" (and {len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
        raise TargetError(f"--config {args.config}: {error.problems[0]}{more}; fix it, pass --config <file>, or pass "
                          "--region, --project and --account") from None
    return target_of(app, args.env, args.config, model=getattr(args, "model", None), region=args.region,
                     project=args.project, account=args.account)


def target_of(app: Any, name: str, config: str, *, model: Optional[str] = None, region: Optional[str] = None,
              project: Optional[str] = None, account: Optional[str] = None) -> Target:
    """Environment ``name`` of the loaded ``app`` (read from ``config``), its region, project and account unless
    given; by default no model is checked, else ``model`` must be one the environment deploys."""
    environment = environment_of(app, name, config)
    if model is not None and model not in environment.models:
        raise TargetError(f"--model {model}: environment '{name}' of {config} does not deploy it; choose from "
                          f"{', '.join(environment.models)} (or pass --region, --project and --account to reach a model "
                          "the config no longer lists)")
    mode = app.serving_of(environment, app.models[model]).mode if model is not None else None
    owner = app.models[model].owner if model is not None else None
    team = owner.team if owner is not None and owner.team in environment.team_approvers else None
    return Target(name, region or environment.region, project or app.project, account or environment.account,
                  config=str(config), serving_mode=mode, approver_team=team, app=app)


def target_line(where: Target) -> str:
    """``project=<p> environment=<e> account=<a> region=<r> (config <file>)``: what a tool acts on, and where it read
    that (``(config not read: ...)`` when ``--region``, ``--project`` and ``--account`` said it all)."""
    source = (f"config {where.config}" if where.config is not None
              else "config not read: --region, --project and --account given")
    return (f"project={where.project} environment={where.environment} account={where.account} region={where.region} "
            f"({source})")


def announce(where: Target, out: Optional[TextIO] = None) -> None:
    """Print :func:`target_line` to ``out`` (default: stderr, so that stdout stays the tool's report) before the tool
    acts; and, when ``where`` was read from the default config while a context file's ``mlops-loop:config`` beat a
    different ``MLOPS_LOOP_CONFIG``, a warning line saying so."""
    stream = out or sys.stderr
    print(target_line(where), file=stream)
    from mlops_loop.config.location import configured

    location = configured()
    if where.config is not None and location.warning() and Path(where.config) == location.absolute:
        print(f"warning: {location.warning()}", file=stream)


def environment_of(app: Any, name: str, config: str) -> Any:
    """The environment ``name`` of the loaded ``app`` (read from ``config``); one line listing them when it has none."""
    if name not in app.environments:
        raise TargetError(f"--env {name}: not an environment of {config}; choose from {', '.join(app.environments)}")
    return app.environments[name]


def check_account(sts: Any, where: Target, *, role: Optional[str] = None) -> Dict[str, str]:
    """The caller's identity (``Account``, ``Arn``) when the credentials are of ``where.account``.

    Raises TargetError, before anything of the environment is read or changed, when they are of another
    account (whose resources of the same names would answer, or be changed), unusable, or cannot be told;
    ``role`` (default: none) is the role the message tells to log in as.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        identity = sts.get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        problem = credentials_problem(error, where, role=role)
        raise TargetError(problem or f"cannot tell which account the credentials are of ({describe_error(error)}); nothing "
                                     f"of environment '{where.environment}' (account {where.account}) was read or "
                                     "changed") from None
    caller = identity["Account"]
    if caller != where.account:
        raise TargetError(f"the credentials are of account {caller}, environment '{where.environment}' is account "
                          f"{where.account}; use that account's credentials (e.g. AWS_PROFILE) and run again")
    return identity


def credentials_problem(error: BaseException, where: Target, *, role: Optional[str] = None) -> Optional[str]:
    """One line saying the credentials are unusable and which account (and ``role``, default none) to log in to,
    when ``error`` is about the credentials (:func:`unusable_credentials`); None for any other error."""
    if not unusable_credentials(error):
        return None
    as_role = f" as {role}" if role else ""
    return (f"no usable AWS credentials ({describe_error(error)}): log in to account {where.account} of environment "
            f"'{where.environment}'{as_role} (e.g. aws sso login, AWS_PROFILE) and run again")


def unusable_credentials(error: BaseException) -> bool:
    """Whether ``error``, raised by boto3 or botocore, says the credentials are missing or unusable."""
    import botocore.exceptions

    kinds = tuple(getattr(botocore.exceptions, name) for name in _CREDENTIALS_ERRORS)
    code = (getattr(error, "response", None) or {}).get("Error", {}).get("Code")
    return isinstance(error, kinds) or code in _CREDENTIALS_CODES


def error_code(exc: BaseException) -> str:
    """AWS's error code of ``exc`` (its class name for an error raised before any request)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


def describe_error(exc: BaseException) -> str:
    """``<code>: <message>`` of an error raised by boto3 or botocore."""
    response = getattr(exc, "response", None) or {}
    message = response.get("Error", {}).get("Message") or str(exc)
    return f"{error_code(exc)}: {message}"


def aws_error_line(error: BaseException, where: Optional[Target], *, hint: str = "", role: Optional[str] = None) -> str:
    """The one line a tool's exit-2 message gives for an AWS error: the credentials' problem when they are unusable
    for ``where`` (:func:`credentials_problem`, naming ``role``, default none), else the SDK's error, else which call
    AWS refused and why (``hint``, default none, follows a refusal)."""
    unusable = credentials_problem(error, where, role=role) if where else None
    if unusable:
        return unusable
    if getattr(error, "operation_name", None) is None:
        return f"AWS SDK error: {error}"
    return f"AWS refused {error.operation_name}: {describe_error(error)}{hint}"


def failure_line(error: BaseException, where: Optional[Target], *, denied_hint: Optional[Callable[[], str]] = None,
                 role: Optional[str] = None) -> str:
    """The one line a workstation tool's exit-2 message gives for ``error``: :data:`NO_REGION`, an AWS error
    (:func:`aws_error_line`, followed by ``denied_hint()`` when AWS denied access; default none), else the error's own
    message (a :class:`TargetError`, the tool's own refusals)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

    if isinstance(error, NoRegionError):
        return NO_REGION
    if isinstance(error, (BotoCoreError, ClientError)):
        hint = denied_hint() if denied_hint is not None and "AccessDenied" in error_code(error) else ""
        return aws_error_line(error, where, hint=hint, role=role)
    return str(error)

"""List a model's versions, show which one serves, and roll back to an earlier one.

    python -m mlops_cli.rollback --env prod --model churn versions
    python -m mlops_cli.rollback --env prod --model churn rollback --to-version 3 --reason "INC-42: v4 answers 5xx" [--yes]

``versions`` prints every version of the model package group ``<project>-<env>-<model>`` and marks
the one the serving stack ``<project>-<env>-serving`` runs (its ``<PascalModel>ModelPackageArn``
parameter) and the one the registry says should run (the most recently approved ``Approved`` +
``Completed`` version, the deploy handler's rule). They differ while a rollout runs, after a failed
one (CloudFormation rolled the stack back), and when the deploy handler refuses the desired version;
the summary line says which, as far as the registry and the stack show it.

``rollback --to-version N`` re-approves version N so that it becomes the most recently approved
one; the deploy-on-approval handler then updates the serving stack, exactly as for any approval
(blue/green rollout, alarm rollback). ``--reason`` says why; it is recorded in the version's
``ApprovalDescription`` after who rolled back and when (``rollback to v3 by <caller ARN> at <time>: <reason>``),
which the audit reports as the decision's reason. It refuses a blank reason, one too long for the description's
1,024 characters, unknown versions, the version already serving, and
every version the handler would refuse on what the registry records (not ``Completed``, no inference
container, no sealed artefact digests: registered before artefacts were sealed), with the handler's
reason, and every version whose evaluation reports are not where the handler may read them (the evaluation folder of
the model in the environment's artifacts bucket, ``<project>-<env>-artifacts-<account>-<region>``: the bucket the
handler is given), with the handler's reason too. The artefact's bytes, and the promotion gate its evaluation report
records, are checked by the handler itself
(the approver role cannot read them; sealed artefacts are write-once): re-approving a version whose gate failed is
refused by the handler, which tells people, and the version serving keeps serving. Without ``--yes`` it asks for confirmation on stdin. Run it with
the approver role's credentials (``<project>-<env>-model-approver``; for a model whose team approves its own models,
``team_approvers``, that team's ``<project>-<env>-<team>-team-approver``): only that role may change its approval
status.

Both commands act on ``--env`` and ``--model`` as the config names them (:mod:`mlops_cli.target`): a model
the environment does not deploy is refused, and so are credentials of another account than the
environment's, before anything is read. Errors (an environment or model the config lacks, another
account's or unusable credentials, unknown group, refused version) print one line on stderr and exit 2;
declining the confirmation exits 1 with nothing changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import Any, Callable, List, Optional, Sequence

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli import target as deploy_target
from pipeline_code.argtypes import positive_int
from pipeline_code.core import approval, images
from pipeline_code.core.contract import (
    approver_role_name, environment_prefix, lake_bucket, package_group_name, package_parameter_name, serving_stack_name,
    team_approver_role_name,
)
from pipeline_code.handlers.deploy.registry import Version, list_versions, problems, seal_problems, select_desired
from pipeline_code.handlers.deploy.stack import describe_stack, stack_parameters

PROG = "python -m mlops_cli.rollback"
# UpdateModelPackage's ApprovalDescription (botocore's service model: max 1024).
APPROVAL_DESCRIPTION_LIMIT = 1024
STEP_ONE = " (step 1 of 2)"
# SageMaker's model package group name pattern.
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class CliError(Exception):
    """A problem the operator can fix; printed as one line, exit code 2."""


class State:
    """What the registry and the serving stack say about one model in one environment."""

    def __init__(self, *, group: str, stack: str, parameter: str, versions: List[Version], stack_found: bool, serving_arn: Optional[str],
                 stack_status: str = "", region: str = "", model: Optional[str] = None,
                 bucket: Optional[str] = None) -> None:
        """``stack_status`` (default: unknown) is the serving stack's StackStatus; ``region`` (default: unknown) the
        stack's region, which the commands this prints name; ``model`` (default: unknown) the model whose group it is,
        whose evaluation folder the deploy handler reads reports in; ``bucket`` (default: unknown) the environment's
        artifacts bucket, the one bucket it reads them in."""
        self.group, self.stack, self.parameter, self.region, self.model = group, stack, parameter, region, model
        self.bucket = bucket
        self.versions = versions
        self.stack_found = stack_found
        self.stack_status = stack_status
        # None: the stack is missing or has no parameter for this model; "": no endpoint yet.
        self.serving_arn = serving_arn
        self.desired = select_desired(versions)

    def version(self, number: int) -> Optional[Version]:
        return next((v for v in self.versions if v.version == number), None)

    @property
    def serving(self) -> Optional[Version]:
        return next((v for v in self.versions if self.serving_arn and v.arn == self.serving_arn), None)

    @property
    def stack_events_command(self) -> str:
        """The AWS CLI command that shows the serving stack's events, in its region (a shell's default may be another)."""
        return (f"aws cloudformation describe-stack-events --stack-name {self.stack}"
                + (f" --region {self.region}" if self.region else ""))

    def label(self, arn: Optional[str]) -> str:
        if not arn:
            return "none"
        match = next((v for v in self.versions if v.arn == arn), None)
        return f"v{match.version}" if match else arn


def load_state(*, sagemaker: Any, cloudformation: Any, project: str, env: str, model: str, account: str,
               region: Optional[str] = None) -> State:
    """Read the group's versions (all described) and the serving stack's parameter for ``model``; ``account`` (the
    credentials', checked) is named when the group does not exist. With ``region`` (the environment's), the state knows
    the environment's artifacts bucket (``contract.lake_bucket``, as the app names it), where the deploy handler reads
    reports; without it, any bucket (the key alone is checked)."""
    group = package_group_name(environment_prefix(project, env), model)
    if not _GROUP_NAME.match(group):
        raise CliError(
            f"--project/--env/--model give the group name {group!r}, which SageMaker does not allow "
            "(letters, digits and single hyphens, at most 63 characters)"
        )
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as error:
        if "does not exist" in str(error):
            raise CliError(
                f"unknown model {model!r} in environment {env!r}: there is no model package group {group} in account "
                f"{account}, {sagemaker.meta.region_name} (is it deployed there? check --model, --env, --project, --region "
                "and --account)"
            ) from None
        raise
    stack = serving_stack_name(environment_prefix(project, env))
    parameter = package_parameter_name(model)
    described = describe_stack(cloudformation, stack)
    serving_arn = None if described is None else stack_parameters(described).get(parameter)
    return State(
        group=group,
        stack=stack,
        parameter=parameter,
        versions=list_versions(sagemaker, group, describe_all=True),
        stack_found=described is not None,
        serving_arn=serving_arn,
        stack_status=(described or {}).get("StackStatus", ""),
        region=cloudformation.meta.region_name or "",
        model=model,
        bucket=None if region is None else artifacts_bucket(project, env, account, region),
    )


def artifacts_bucket(project: str, env: str, account: str, region: str) -> str:
    """The environment's artifacts bucket (``contract.lake_bucket``: the name the app gives it and the deploy handler is
    told in ``APPROVAL_LEDGER``), the only bucket the handler reads evaluation reports in."""
    return lake_bucket(environment_prefix(project, env), "artifacts", account, region)


def render(state: State) -> str:
    """The ``versions`` table and a one-line summary of serving vs desired."""
    header = ("", "version", "approval", "status", "created (UTC)", "last modified (UTC)", "approval description")
    rows = [header]
    for v in sorted(state.versions, key=lambda v: v.version, reverse=True):
        marks = [m for m, hit in (("serving", v.arn == state.serving_arn), ("desired", v == state.desired)) if hit]
        rows.append(
            (
                "+".join(marks),
                f"v{v.version}",
                v.approval or "-",
                v.status or "-",
                _time(v.created),
                _time(v.last_modified),
                _one_line(v.approval_description) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [f"model package group {state.group}; serving stack {state.stack} (parameter {state.parameter})"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows]
    if not state.versions:
        lines.append("(no versions registered yet)")
    lines.append(_summary(state))
    return "\n".join(line.rstrip() for line in lines)


def rollback(
    state: State,
    *,
    sagemaker: Any,
    caller: str,
    to_version: int,
    reason: str,
    assume_yes: bool,
    ask: Callable[[str], str] = input,
    now: Optional[dt.datetime] = None,
    out: Any = None,
    versions_command: str = f"{PROG} --env <env> --model <model> versions",
    multi_model: bool = False,
) -> int:
    """Re-approve ``to_version`` so the deploy handler rolls the endpoint back to it; returns the exit code.

    ``caller`` (an ARN), the time and ``reason`` are recorded in the approval description; a blank reason or one
    that does not fit the description's 1,024 characters is refused before anything changes. By default asks for confirmation with
    ``input``; ``assume_yes`` skips the question.
    ``versions_command`` is printed as the way to watch the rollout. ``multi_model``: the model is a member of a
    multi-model endpoint, which runs its own (the app's) image whatever image a version was registered with.
    """
    out = out or sys.stdout
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    description = _description(target_version=to_version, caller=caller, stamp=stamp, reason=reason)
    target = _check_target(state, to_version)
    print(
        f"Roll {state.group} back to v{target.version}: serving now {state.label(state.serving_arn)}, "
        f"v{target.version} is {target.approval}"
        + (f" ({_one_line(target.approval_description)})" if target.approval_description else "")
        + ".\nIt will be re-approved and become the most recently approved version; the deploy handler then "
        f"updates stack {state.stack} ({state.parameter} -> v{target.version}).",
        file=out,
    )
    # A version registered before the app moved to a newer XGBoost image comes back in its own (docs/training.md); a
    # multi-model member runs in the endpoint's image instead.
    note = None if multi_model else images.registered_image_note(target.image, (now or dt.datetime.now(dt.timezone.utc)).date())
    if note:
        print(f"Note: v{target.version} {note}", file=out)
    if not assume_yes and not _confirmed(ask):
        print("rollback: aborted, nothing changed", file=sys.stderr)
        return 1

    if target.approval == "Approved":
        # Re-approving an approved version would not change its status, and an update that leaves the
        # status alone may emit no state-change event: step through PendingManualApproval.
        sagemaker.update_model_package(
            ModelPackageArn=target.arn,
            ModelApprovalStatus="PendingManualApproval",
            ApprovalDescription=description + STEP_ONE,
        )
    sagemaker.update_model_package(ModelPackageArn=target.arn, ModelApprovalStatus="Approved", ApprovalDescription=description)

    desired = select_desired(list_versions(sagemaker, state.group))
    if desired is None or desired.version != target.version:
        print(
            f"rollback: warning: v{target.version} was re-approved but the registry's most recently approved version is "
            f"{'none' if desired is None else f'v{desired.version}'}; check with the versions command",
            file=sys.stderr,
        )
    print(
        f"v{target.version} re-approved ({description}).\n"
        f"The deploy handler now updates {state.stack}: {state.parameter} {state.label(state.serving_arn)} -> v{target.version} "
        "(blue/green; CloudFormation rolls back on alarm and people are notified).\n"
        "Watch it:\n"
        f"  {versions_command}      # serving becomes v{target.version}\n"
        f"  {state.stack_events_command} --max-items 10",
        file=out,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="environment name (dev, staging, prod)")
    parser.add_argument("--model", required=True, help="model name from the config (e.g. churn, credit-risk)")
    deploy_target.add_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("versions", help="list versions; mark the serving and the desired one")
    back = commands.add_parser("rollback", help="re-approve an earlier version so it is deployed")
    back.add_argument("--to-version", type=positive_int, required=True, help="version number to roll back to")
    back.add_argument("--reason", required=True,
                      help="why (an incident, what the serving version does wrong): recorded in the version's approval "
                           "description with who rolled back and when, which the audit reads")
    back.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def main(argv: Optional[Sequence[str]] = None, *, ask: Callable[[str], str] = input) -> int:
    """CLI entry point; returns the exit code (0 done, 1 declined, 2 error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    where, approver = None, None
    try:
        where = deploy_target.resolve(args)
        deploy_target.announce(where)
        prefix = environment_prefix(where.project, args.env)
        # A team that approves its own models (team_approvers) decides them with its role, not the environment's.
        approver = "the approver role " + (team_approver_role_name(prefix, where.approver_team) if where.approver_team
                                           else approver_role_name(prefix))
        session = boto3.session.Session(region_name=where.region)
        # Whose credentials these are comes first: another account may hold a group of the same name.
        identity = deploy_target.check_account(session.client("sts"), where, role=approver)
        sagemaker = session.client("sagemaker")
        state = load_state(
            sagemaker=sagemaker,
            cloudformation=session.client("cloudformation"),
            project=where.project,
            env=args.env,
            model=args.model,
            account=where.account,
            region=where.region,
        )
        if args.command == "versions":
            print(render(state))
            return 0
        watch = " ".join([PROG, "--env", args.env, "--model", args.model, *deploy_target.given_options(args, parser), "versions"])
        return rollback(
            state,
            sagemaker=sagemaker,
            caller=identity["Arn"],
            to_version=args.to_version,
            reason=args.reason,
            assume_yes=args.yes,
            ask=ask,
            versions_command=watch,
            multi_model=where.serving_mode == "multi_model",
        )
    except (CliError, deploy_target.TargetError, BotoCoreError, ClientError) as error:
        # Credentials can also fail after the account check: a profile that does not exist fails as the
        # session is made, a token may expire between two calls.
        return _fail(deploy_target.failure_line(error, where, denied_hint=lambda: f"; run as {approver}", role=approver))


def _description(*, target_version: int, caller: str, stamp: str, reason: str) -> str:
    """The approval description a rollback records: who, when and why, within the registry's 1,024 characters
    (with the " (step 1 of 2)" the re-approval of an Approved version adds)."""
    reason = reason.strip()
    if not reason:
        raise CliError("--reason is empty: say why you roll back (an incident, what the serving version does wrong); "
                       "it is recorded in the version's ApprovalDescription, which the audit reads")
    head = f"rollback to v{target_version} by {caller} at {stamp}: "
    room = APPROVAL_DESCRIPTION_LIMIT - len(head) - len(STEP_ONE)
    if len(reason) > room:
        raise CliError(f"--reason is {len(reason)} characters; the approval description it goes in holds "
                       f"{APPROVAL_DESCRIPTION_LIMIT} with who and when ({len(head) + len(STEP_ONE)} here): shorten it "
                       f"to {room} or fewer, e.g. a ticket and a line")
    return head + reason


def _check_target(state: State, number: int) -> Version:
    if not state.stack_found:
        raise CliError(f"serving stack {state.stack} does not exist: deploy it first, nothing could be rolled back")
    if state.serving_arn is None:
        raise CliError(f"serving stack {state.stack} has no parameter {state.parameter}: this model is not served there")
    target = state.version(number)
    if target is None:
        known = ", ".join(f"v{v.version}" for v in state.versions) or "none"
        raise CliError(f"--to-version {number}: {state.group} has no version {number} (versions: {known})")
    if target.status != "Completed":
        raise CliError(f"--to-version {number}: v{number} has package status {target.status}, only Completed versions can serve")
    if target.arn == state.serving_arn:
        raise CliError(f"--to-version {number}: v{number} is already serving; nothing to roll back")
    found = handler_refuses(target, state.group, state.model, state.bucket)
    if found:
        raise CliError(f"--to-version {number}: v{number} cannot serve, the deploy handler would refuse it: {'; '.join(found)}")
    return target


def handler_refuses(version: Version, group: str, model: Optional[str] = None, bucket: Optional[str] = None) -> List[str]:
    """Why the deploy handler refuses ``version`` whatever its approval, as far as the registry shows (its
    :func:`problems` and :func:`seal_problems`: it also verifies the artefact's bytes, which only it reads; and
    :func:`approval.place_problems`: reports outside ``model``'s evaluation folder of the artifacts ``bucket``, which it
    may not read, with the handler's reason; ``bucket`` None: any bucket, the key alone is checked)."""
    place = approval.ReportPlace(model=model, bucket=bucket)
    return (problems(version, group, require_approved=False) + seal_problems(version)
            + approval.place_problems(evaluation_uri=version.evaluation_uri, bias_uri=version.bias_uri,
                                      bias_sha256=version.bias_sha256, place=place))


def _confirmed(ask: Callable[[str], str]) -> bool:
    try:
        return ask("Proceed? [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _summary(state: State) -> str:
    if not state.stack_found:
        serving = f"stack {state.stack} not found"
    elif state.serving_arn is None:
        serving = f"stack has no parameter {state.parameter}"
    else:
        serving = state.label(state.serving_arn) if state.serving_arn else "none (no endpoint yet)"
    desired = f"v{state.desired.version}" if state.desired else "none (no Approved + Completed version)"
    line = f"serving: {serving}; desired: {desired}"
    if state.stack_found and state.serving_arn is not None and state.desired and state.desired.arn != state.serving_arn:
        line += " -- they differ: " + _why_they_differ(state, state.desired)
    return line


def _why_they_differ(state: State, desired: Version) -> str:
    number = f"v{desired.version}"
    refused = handler_refuses(desired, state.group, state.model, state.bucket)
    if refused:
        return (f"the deploy handler refuses {number} ({'; '.join(refused)}) and leaves the stack as it is; roll back "
                f"to a version that can serve, or reject {number}")
    if state.stack_status.endswith("_IN_PROGRESS"):
        return f"stack {state.stack} is {state.stack_status} (an update or its rollback is running; list again when it ends)"
    return (f"the deploy handler has not updated the stack yet (it does minutes after an approval), the rollout failed "
            f"and CloudFormation rolled back (the handler then holds {number} until it is approved again), or the handler "
            f"refused {number} on reading its artefact or its evaluation report (bytes not as "
            "recorded, a promotion gate that failed, or a failed multi-model smoke test; its notice says why) "
            f"({state.stack_events_command})")


def _time(value: Optional[dt.datetime]) -> str:
    if value is None:
        return "-"
    if value.tzinfo:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _one_line(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(message: str) -> int:
    print(f"rollback: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

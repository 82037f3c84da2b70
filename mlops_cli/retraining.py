"""Pause and resume automatic retraining of an environment, or of one of its models, without a deploy.

    python -m mlops_cli.retraining --env prod status
    python -m mlops_cli.retraining --env prod pause --reason "INC-42: bad labels in the lake"
    python -m mlops_cli.retraining --env prod --model churn pause --reason "INC-43: churn pipeline broken"
    python -m mlops_cli.retraining --env prod [--model churn] resume

``pause`` creates the SSM parameter ``/<project>-<env>/retraining/paused`` (with ``--model``:
``/<project>-<env>/retraining/paused-models/<model>``) holding ``{"reason", "by", "at"}``: the reason given, the
caller's ARN (STS GetCallerIdentity) and the time. While it exists, the retrain trigger starts no pipeline of the
environment (of the model) on a drift alarm, on the hourly sweep or on the retraining schedule. The parameter is
not part of any CloudFormation template, so no deploy reverts the pause. The retrain trigger's circuit breaker creates
a model's pause itself (``by`` "retrain-trigger circuit breaker") after consecutive failed runs; ``resume`` lifts it
as any other. ``resume`` deletes it (a resume also records who and when in
``/<project>-<env>/retraining/resumed-models/<model>``, or ``.../retraining/resumed`` for the environment: the circuit
breaker counts failures anew from then): a retrain alarm
still in ALARM is then answered by the next hourly sweep (cooldown and storm guard permitting); a scheduled
retraining that fell in the pause is not replayed. ``status`` shows the environment's pause and every model's.

Not paused by this switch: an execution already running (``aws sagemaker stop-pipeline-execution`` stops it), and a
person starting the pipeline directly (``aws sagemaker start-pipeline-execution``): the switch governs the trigger.

Who paused and when is recorded twice: in the parameter's value (as the CLI writes it) and by CloudTrail, which logs
``PutParameter`` and ``DeleteParameter`` with the caller's identity (the record that cannot be written by hand).
The credentials need ``ssm:PutParameter``, ``ssm:DeleteParameter``, ``ssm:GetParameters`` and
``ssm:GetParametersByPath`` on ``arn:aws:ssm:<region>:<account>:parameter/<project>-<env>/retraining/*``.

``--env`` (and ``--model``) are read from the config as for every workstation tool (:mod:`mlops_cli.target`);
credentials of another account than the environment's are refused before anything is read. Pausing what is already
paused, or resuming what is not, changes nothing and exits 0; errors print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from mlops_cli import target as deploy_target
from pipeline_code.core.contract import (
    RETRAINING_BREAKER,
    RETRAINING_PAUSE_ANNOUNCED,
    environment_prefix,
    pause_record,
    pause_value,
    retraining_path,
    retraining_pause_parameter,
    retraining_paused_models_path,
    retraining_reset_parameter,
)

PROG = "python -m mlops_cli.retraining"
# The reason is read in logs and by the next on-call: one line, long enough for an incident id and a sentence.
MAX_REASON = 500


class CliError(Exception):
    """A problem the operator can fix; printed as one line, exit code 2."""


class Scope:
    """What a pause covers: the whole environment (``model`` None) or one model of it. ``options``: the target options
    (``--config``, ``--project``, ...) the run was given, repeated in the commands it prints."""

    def __init__(self, env: str, prefix: str, model: Optional[str], options: Sequence[str] = ()) -> None:
        self.env, self.prefix, self.model, self.options = env, prefix, model, tuple(options)
        self.parameter = retraining_pause_parameter(prefix, model)

    def of(self, model: Optional[str]) -> "Scope":
        """The same environment's scope for ``model`` (None: the whole environment)."""
        return Scope(self.env, self.prefix, model, self.options)

    def __str__(self) -> str:
        return f"environment '{self.env}'" if self.model is None else f"model '{self.model}' of environment '{self.env}'"


def pause(ssm: Any, scope: Scope, *, reason: str, caller: str, now: dt.datetime, out: Any) -> int:
    """Create ``scope``'s pause parameter with ``reason``, ``caller`` and ``now``; an existing pause is left as it is."""
    value = pause_value(reason=reason, by=caller, at=_stamp(now))
    try:
        # Overwrite=False: a pause is created once; the first one's who/when/why is what the next on-call reads.
        ssm.put_parameter(Name=scope.parameter, Value=value, Type="String", Overwrite=False,
                          Description=f"Pauses automatic retraining of {scope} ({PROG}); delete it to resume")
    except ClientError as error:
        if deploy_target.error_code(error) != "ParameterAlreadyExists":
            raise
        existing = read_pauses(ssm, [scope.parameter]).get(scope.parameter)
        if existing is None:
            # Never report "already paused" for a pause that cannot be seen: SSM refuses to create a parameter again
            # for 30 seconds after it was deleted (DeleteParameter), and a pause that is not there pauses nothing.
            raise CliError(f"SSM refused to create {scope.parameter} (ParameterAlreadyExists) but it cannot be read: "
                           f"retraining of {scope} is NOT paused; a pause resumed less than 30 seconds ago cannot be created "
                           "again yet, so wait a minute and run again") from None
        if existing["by"] == RETRAINING_BREAKER:
            # The breaker's pause lifts itself when a run succeeds; a person's must hold until they resume it.
            ssm.put_parameter(Name=scope.parameter, Value=value, Type="String", Overwrite=True,
                              Description=f"Pauses automatic retraining of {scope} ({PROG}); delete it to resume")
            print(f"retraining of {scope} was paused by the retrain trigger's circuit breaker since {existing['at']} (a "
                  "pause that lifts itself when a run succeeds); yours replaces it and holds until resumed: "
                  f"{scope.parameter} = {value}\nResume: {_command(scope, 'resume')}", file=out)
            return 0
        print(f"retraining of {scope} is already paused{_since(existing)}; nothing changed (to record another reason, "
              "resume, wait 30 seconds - SSM's delay before a deleted parameter can be created again - and pause "
              "again)", file=out)
        return 0
    print(f"retraining of {scope} paused: {scope.parameter} = {value}\n"
          "From now on no drift alarm, hourly sweep or retraining schedule starts "
          f"{'any of its pipelines' if scope.model is None else 'its pipeline'}. An execution already running goes on "
          "(aws sagemaker stop-pipeline-execution stops it), and a person can still start one by hand.\n"
          f"Resume: {_command(scope, 'resume')}", file=out)
    return 0


def resume(ssm: Any, scope: Scope, *, caller: str, out: Any, now: Optional[dt.datetime] = None) -> int:
    """Delete ``scope``'s pause parameter, saying whose pause it lifts and which pauses still hold. A resume (of a
    model or of the environment) records who and when (``retraining_reset_parameter``): the retrain trigger's circuit breaker counts failures anew
    from then, so the failures that tripped it do not trip it again at the next sweep."""
    lifted = read_pauses(ssm, [scope.parameter]).get(scope.parameter)
    if lifted is not None:
        # Before the pause is lifted: were it lifted first, a sweep in between, or a record SSM then refused, would count
        # the failures that tripped the circuit breaker, and pause and page again at once.
        moment = now or dt.datetime.now(dt.timezone.utc)
        ssm.put_parameter(Name=retraining_reset_parameter(scope.prefix, scope.model), Type="String", Overwrite=True,
                          Value=pause_value(reason="resumed", by=caller, at=_stamp(moment)),
                          Description=f"When retraining of {scope} was last resumed ({PROG}): the retrain "
                                      "trigger's circuit breaker counts failures after it; pauses nothing")
    try:
        ssm.delete_parameter(Name=scope.parameter)
    except ClientError as error:
        if deploy_target.error_code(error) != "ParameterNotFound":
            raise
        lifted = None
    if lifted is None:
        print(f"retraining of {scope} is not paused; nothing changed", file=out)
    else:
        print(f"retraining of {scope} resumed by {caller}: lifted the pause{_since(lifted)}.\n"
              "A retrain alarm still in ALARM is answered by the next hourly sweep (cooldown and storm guard "
              "permitting); a scheduled retraining that fell in the pause is not replayed.", file=out)
    for line in _still_paused(ssm, scope):
        print(line, file=out)
    return 0


def status(ssm: Any, scope: Scope, *, out: Any) -> int:
    """Print the environment's pause and every model's (with ``scope.model``: that model's alone)."""
    environment = scope.of(None)
    pauses = read_pauses(ssm, [environment.parameter] + ([scope.parameter] if scope.model else []))
    if scope.model is None:
        pauses.update(model_pauses(ssm, scope.prefix))
    lines = [_state(environment, pauses.get(environment.parameter))]
    models = [scope.model] if scope.model else sorted(_model_of(scope.prefix, name) for name in pauses if name != environment.parameter)
    lines += [_state(scope.of(m), pauses.get(retraining_pause_parameter(scope.prefix, m))) for m in models]
    if scope.model is None and not models:
        lines.append("no model is paused on its own")
    print("\n".join(lines), file=out)
    return 0


def read_pauses(ssm: Any, names: List[str]) -> Dict[str, Dict[str, str]]:
    """The pauses among the parameters ``names`` that exist (name -> ``{"reason", "by", "at"}``)."""
    found = ssm.get_parameters(Names=names).get("Parameters", [])
    return {p["Name"]: pause_record(p.get("Value", "")) for p in found}


def model_pauses(ssm: Any, prefix: str) -> Dict[str, Dict[str, str]]:
    """Every model's pause of the environment ``prefix``, including models the config no longer lists."""
    pauses: Dict[str, Dict[str, str]] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=retraining_paused_models_path(prefix)):
        pauses.update({p["Name"]: pause_record(p.get("Value", "")) for p in page.get("Parameters", [])})
    return pauses


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="environment name (dev, staging, prod)")
    parser.add_argument("--model", default=None,
                        help="one model of the environment (default: the whole environment, every model)")
    deploy_target.add_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="show whether retraining is paused, and by whom, when and why")
    stop = commands.add_parser("pause", help="pause automatic retraining (drift alarms, sweep, schedule)")
    stop.add_argument("--reason", required=True, type=_reason,
                      help=f"why (an incident id, what is wrong; at most {MAX_REASON} characters): recorded with your ARN and the time")
    commands.add_parser("resume", help="resume automatic retraining")
    return parser


def main(argv: Optional[Sequence[str]] = None, *, now: Optional[Callable[[], dt.datetime]] = None) -> int:
    """CLI entry point; returns the exit code (0 done or nothing to change, 2 error). ``now`` (default: the clock)
    stamps a pause."""
    parser = build_parser()
    args = parser.parse_args(argv)
    where = None
    try:
        where = deploy_target.resolve(args)
        deploy_target.announce(where)
        session = boto3.session.Session(region_name=where.region)
        # Whose credentials these are comes first: another account may hold parameters of the same names.
        identity = deploy_target.check_account(session.client("sts"), where)
        ssm = session.client("ssm")
        scope = Scope(args.env, environment_prefix(where.project, args.env), args.model,
                      deploy_target.given_options(args, parser))
        if args.command == "pause":
            moment = (now or (lambda: dt.datetime.now(dt.timezone.utc)))()
            return pause(ssm, scope, reason=args.reason, caller=identity["Arn"], now=moment, out=sys.stdout)
        if args.command == "resume":
            moment = (now or (lambda: dt.datetime.now(dt.timezone.utc)))()
            return resume(ssm, scope, caller=identity["Arn"], out=sys.stdout, now=moment)
        return status(ssm, scope, out=sys.stdout)
    except (CliError, deploy_target.TargetError, BotoCoreError, ClientError) as error:
        def denied_hint() -> str:
            if where is None:
                return ""
            path = retraining_path(environment_prefix(where.project, args.env))
            return (f"; the credentials need ssm:PutParameter, ssm:DeleteParameter, ssm:GetParameters and "
                    f"ssm:GetParametersByPath on arn:aws:ssm:{where.region}:{where.account}:parameter{path}/*")

        return _fail(deploy_target.failure_line(error, where, denied_hint=denied_hint))


def _reason(value: str) -> str:
    text = " ".join(value.split())
    if not text:
        raise argparse.ArgumentTypeError("say why retraining is paused (an incident id, what is wrong)")
    if len(text) > MAX_REASON:
        raise argparse.ArgumentTypeError(f"at most {MAX_REASON} characters ({len(text)} given)")
    return text


def _state(scope: Scope, pause_: Optional[Dict[str, str]]) -> str:
    if pause_ is None:
        return f"{scope}: retraining not paused"
    what = "every model" if scope.model is None else "this model"
    # A breaker's pause whose page failed holds with nobody told: the engineer reading the status may be the first.
    unpaged = ("; NOT PAGED YET: its page failed, the retrain trigger pages it at its next invocation or hourly sweep"
               if pause_.get(RETRAINING_PAUSE_ANNOUNCED) == "no" else "")
    return f"{scope}: retraining PAUSED for {what} ({scope.parameter}){_since(pause_)}{unpaged}"


def _still_paused(ssm: Any, scope: Scope) -> List[str]:
    """The pauses that still hold after ``scope``'s was lifted: the environment's over a model, a model's under it."""
    if scope.model is not None:
        environment = scope.of(None)
        held = read_pauses(ssm, [environment.parameter]).get(environment.parameter)
        return [] if held is None else [
            f"note: the whole {environment} is still paused{_since(held)}: {scope.model} does not retrain until "
            f"{_command(environment, 'resume')}"]
    return [f"note: model '{_model_of(scope.prefix, name)}' is still paused on its own{_since(held)} "
            f"({_command(scope.of(_model_of(scope.prefix, name)), 'resume')})"
            for name, held in sorted(model_pauses(ssm, scope.prefix).items())]


def _model_of(prefix: str, parameter: str) -> str:
    return parameter.removeprefix(retraining_paused_models_path(prefix) + "/")


def _since(pause_: Optional[Dict[str, str]]) -> str:
    if pause_ is None:
        return ""
    return f" since {pause_['at']} by {pause_['by']}: {pause_['reason']}"


def _command(scope: Scope, command: str) -> str:
    return " ".join([PROG, "--env", scope.env] + (["--model", scope.model] if scope.model else []) + [*scope.options, command])


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fail(message: str) -> int:
    print(f"retraining: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""Stand an environment up again after a failed first deploy, and tear a dev environment down.

    python -m mlops_cli.lifecycle --env staging stacks [--delete-failed-creates]
    python -m mlops_cli.lifecycle --env dev teardown [--execute]

``stacks`` describes every stack of the environment (``<project>-<env>-storage``, ``-data-pipeline``, ``-training``,
``-serving``, ``-operations``) and says, per stack, whether ``cdk deploy`` can proceed from its state. The one it
cannot get past on its own is a stack whose first create failed (``ROLLBACK_COMPLETE`` / ``ROLLBACK_FAILED``) with
termination protection on (the config's default, always outside dev): the CDK CLI turns protection on before it runs the create,
and on the next deploy tries to delete the failed stack, which CloudFormation refuses while protection is on. With
``--delete-failed-creates`` it turns protection off and deletes exactly those stacks (by stack id, then waits until
they are gone), and nothing else; every other state is only reported, with what to do: an update whose rollback failed
(``UPDATE_ROLLBACK_FAILED``) takes ``continue-update-rollback`` with the CDK's cfn-exec role, a failed delete
(``DELETE_FAILED``) another delete (with that role too), an operation in progress a wait. The role is the one of the
CDK bootstrap the app deploys through: its qualifier is read where the CDK CLI reads it (the
``@aws-cdk/core:bootstrapQualifier`` context of cdk.json, cdk.context.json or ~/.cdk.json; the CDK's default
``hnb659fds`` when none sets it), and a value that is no qualifier is refused.

A stack that does not exist (deleted: a ``cdk destroy`` of the wrong stage, a delete-stack once protection was off),
or whose first create failed, is checked for what an earlier stack of that name retained (:mod:`mlops_cli.retained`:
fixed-name buckets and their policies, Glue database, feature and model package groups, log groups, the KMS
keys (a key pending deletion named with when it goes and how to cancel that), and the role the feature groups write
their offline store as): when any is left, the stack BLOCKS - ``cdk
deploy`` would fail "already exists" on each name and create new keys - and the adoption commands are printed, after
what adoption cannot repair (a feature group's role that no longer exists: how to create it again). ``adopt --stack <component>`` writes the ``cdk import`` resource mapping of one
such stack (a dry step: no AWS write) and prints the import and the deploy that follows it. The retained resources
are read from the synthesized app (``--assembly``, default ``cdk.out``): without it, whether anything is left is not
known, and a stack that does not exist blocks too.

``teardown`` empties a **dev** environment so that ``cdk destroy '<env>/*'`` can delete it: it refuses any environment
whose config ``tier`` is not ``dev``, and any bucket not tagged ``project``, ``environment`` and ``tier`` as that dev
environment of the config's project. From the Storage stack's resources it finds the environment's buckets and model
package groups, and from the registry the model cards the pipeline created (``<group>-v<N>-<package creation time>``,
or ``<group>-v<N>`` from before card names carried it: ``contract.model_card_name_regex``; outside CloudFormation).
It also finds, from the Training stack's pipelines, their executions that have not ended: SageMaker deletes no
pipeline with a running execution (DeletePipeline; CloudFormation's handler only calls it), so ``cdk destroy`` would
stop on the Training stack, and such a run writes to the buckets and registers versions after they were emptied.
By default it only lists what it would do (a dry run); ``--execute`` does it, in this order:

0. keeps every function of the Operations stack from running (reserved concurrency 0): the retrain trigger (its
   hourly sweep, the drift alarms) would start a pipeline run after step 1, and the deploy handler writes an
   approval-ledger record into the artifacts bucket on every model package state change; their events are throttled
   until ``cdk destroy`` deletes them (``aws lambda delete-function-concurrency`` undoes it for an environment kept).
   The drift monitors' schedules start their processing jobs themselves and are not stopped; it also deactivates
   every Glue trigger of the DataPipeline stack (the nightly start would run the crawlers and jobs again;
   ``aws glue start-trigger`` undoes it);
1. looks again once step 0 has quieted the environment (a run started since the first look is found too), then
   stops every such execution still ``Executing``, every running crawler of the DataPipeline stack (Glue deletes no
   running crawler: ``cdk destroy`` would stop on that stack) and every run of its jobs that has not ended, and waits
   (up to 30 minutes) until each has ended, then looks at the environment again, so that what the runs wrote and
   registered goes too, and stops what that look finds started meanwhile in turn, until a look finds nothing running
   (at most :data:`STOP_ROUNDS` rounds); one that has not ended by then, or runs still starting after the last round,
   stop the teardown, nothing emptied or deleted (exit 1: run it again once it has ended);
2. deletes the Glue table SageMaker made for each feature group's offline store in its account-wide
   ``sagemaker_featurestore`` database (``DataCatalogConfig`` of ``DescribeFeatureGroup``): it is not the stack's and
   SageMaker's DeleteFeatureGroup leaves it, so every teardown and rebuild would leave another table there, on data
   that is gone;
3. stops every bucket's server access logging (the deletes below would otherwise be logged into the access-logs
   bucket after it was emptied);
4. removes from each bucket policy the statements that deny deleting objects (the write-once prefixes: whatever they
   are, every ``Deny`` covering ``s3:DeleteObject`` or ``s3:DeleteObjectVersion`` that is not a TLS guard), or the
   policy when nothing else is left;
5. deletes every object version and delete marker of every bucket (the buckets are versioned), log-target buckets
   last;
6. deletes every version (model package) of every group (SageMaker deletes no group that still has versions), then
   the groups' model cards.

It then prints the ``cdk destroy`` command and does not run it: the CDK CLI needs the synthesized app and its own
credentials handling, and asks its own confirmation; the last irreversible step stays the operator's. Re-running the
teardown is safe (it lists what is left). Needs credentials of the environment's account that may do all of the above
(an administrator of the dev account).

Both commands act on ``--env`` as the config names it (:mod:`mlops_cli.target`), refuse credentials of another account,
and paginate every listing. Exit 0: nothing blocks a deploy (``stacks``) / dry run or everything deleted (``teardown``);
1: a stack blocks ``cdk deploy`` / something could not be deleted (each said on stderr); 2: an error or a refusal,
one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from mlops_cli import retained
from mlops_cli import target as deploy_target
# The command's parts, one job each (mlops_cli/environment/): the stacks, adoption, the commands printed, teardown.
from mlops_cli.environment import PROG, CliError
from mlops_cli.environment.adoption import adopt, check_leftovers
from mlops_cli.environment.commands import (
    cdk_context,
    destroy_command,
    mapping_file,
    reconcile_after_deploy,
    render_stacks,
    resubscribe_after_deploy,
)
from mlops_cli.environment.stacks import delete_failed_creates, describe_stacks, leftovers_block
from mlops_cli.environment.teardown import (
    STOP_ROUNDS,
    deactivate_triggers,
    describe_running,
    execute_teardown,
    glue_work,
    plan_teardown,
    render_plan,
    stop_executions,
    stop_glue_work,
    throttle_functions,
    unended_executions,
)
from pipeline_code.core.contract import environment_prefix, environment_stack_names, STACK_COMPONENTS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="environment name (dev, staging, prod)")
    deploy_target.add_arguments(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    stacks = commands.add_parser("stacks", help="say whether cdk deploy can proceed from each stack's state")
    stacks.add_argument("--delete-failed-creates", action="store_true",
                        help="turn termination protection off and delete the stacks whose first create failed")
    stacks.add_argument("--assembly", type=Path, default=None,
                        help="the synthesized app whose templates say what each stack retains (default: cdk.out)")
    adopt_cmd = commands.add_parser("adopt", help="write the cdk import resource mapping of a deleted stack's retained "
                                    "resources (no AWS write)")
    adopt_cmd.add_argument("--stack", required=True, choices=STACK_COMPONENTS, help="the stack (its component)")
    adopt_cmd.add_argument("--mapping", default=None,
                           help="the file to write (default: <stack name>.resource-mapping.json here)")
    adopt_cmd.add_argument("--assembly", type=Path, default=None,
                           help="the synthesized app whose templates say what the stack retains (default: cdk.out)")
    teardown = commands.add_parser("teardown", help="empty a dev environment for cdk destroy (dry run by default)")
    teardown.add_argument("--execute", action="store_true", help="delete what the dry run lists")
    return parser


def _tier_of(args: argparse.Namespace) -> Tuple[str, List[str]]:
    """The environment's tier and models in the config (the teardown always reads it: the tier decides). Refused: a
    ``--region`` / ``--project`` / ``--account`` other than the environment's own - the tier read would be another
    environment's than the one emptied."""
    from mlops_loop.config import ConfigError, load_config

    try:
        app = load_config(args.config)
    except ConfigError as error:
        raise CliError(f"--config {args.config}: {error.problems[0]}; teardown reads the environment's tier there, fix "
                       "it or pass --config <file>") from None
    environment = deploy_target.environment_of(app, args.env, args.config)
    own = {"region": environment.region, "project": app.project, "account": environment.account}
    for option, value in own.items():
        given = getattr(args, option, None)
        if given is not None and given != value:
            raise CliError(f"--{option} {given}: environment '{args.env}' of {args.config} has {option} {value}; teardown "
                           f"acts only on an environment as its config names it (its tier is read there): drop --{option}")
    return environment.tier, list(environment.models)


def _bootstrap_qualifier() -> str:
    """The CDK bootstrap qualifier the app deploys through, read as the CDK CLI reads it (``bootstrap_qualifier``);
    a value that is no qualifier is the operator's to fix."""
    from mlops_loop.config.location import bootstrap_qualifier

    try:
        return bootstrap_qualifier()
    except ValueError as error:
        raise CliError(str(error)) from None


def main(argv: Optional[Sequence[str]] = None, *, session: Any = None, out: Any = None) -> int:
    """CLI entry point; returns the exit code. ``session`` (default: a boto3 session in the environment's region)
    makes the clients."""
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    where = None
    try:
        models: List[str] = []
        # Read before any AWS call: the repairs the listing gives name that bootstrap's cfn-exec role.
        qualifier = _bootstrap_qualifier() if args.command == "stacks" else ""
        if args.command == "teardown":
            # Refused before any AWS call: the tier is the config's word on whether the data may go.
            tier, models = _tier_of(args)
            if tier != "dev":
                raise CliError(f"environment '{args.env}' of {args.config}: field 'tier' is '{tier}'; teardown deletes its "
                               "data and model versions, so it runs only where tier is 'dev' (a staging or prod "
                               "environment is taken down by hand, see docs/deploying.md \"Recovering an environment\")")
        where = deploy_target.resolve(args)
        if args.command == "teardown":
            # Read for its tier even with --region, --project and --account given (equal to its own, or refused).
            where = dataclasses.replace(where, config=str(args.config))
        deploy_target.announce(where)
        if session is None:
            import boto3

            session = boto3.session.Session(region_name=where.region)
        deploy_target.check_account(session.client("sts"), where)
        cloudformation = session.client("cloudformation")
        prefix = environment_prefix(where.project, args.env)
        context = cdk_context(args.config, parser.get_default("config"))
        config_option = f" --config {args.config}" if context else ""
        if args.command == "adopt":
            return adopt(session, component=args.stack, prefix=prefix, assembly=args.assembly or retained.DEFAULT_ASSEMBLY,
                         environment=args.env, account=where.account, region=where.region,
                         mapping=args.mapping or mapping_file(environment_stack_names(prefix)[args.stack]),
                         config_option=config_option, context=context, out=out)
        if args.command == "stacks":
            states = describe_stacks(cloudformation, list(environment_stack_names(prefix).values()))
            assembly = args.assembly or retained.DEFAULT_ASSEMBLY
            left = check_leftovers(session, states, assembly=assembly, environment=args.env, account=where.account,
                                   region=where.region)
            print(render_stacks(states, environment=args.env, account=where.account, region=where.region,
                                qualifier=qualifier, left=left, cdk_context=context, prefix=prefix,
                                config_option=config_option), file=out)
            for after_deploy in (reconcile_after_deploy, resubscribe_after_deploy):
                for line in after_deploy(states, left, assembly=assembly, environment=args.env, account=where.account,
                                         region=where.region, prefix=prefix):
                    print(line, file=out)
            problems: List[str] = []
            if args.delete_failed_creates:
                if not any(s.deletable_failed_create for s in states):
                    print("nothing to delete: no stack is a failed first create under termination protection", file=out)
                problems = delete_failed_creates(cloudformation, states, out=out)
                for problem in problems:
                    print(f"lifecycle: {problem}", file=sys.stderr)
                states = describe_stacks(cloudformation, list(environment_stack_names(prefix).values()))
                left = check_leftovers(session, states, assembly=assembly, environment=args.env, account=where.account,
                                       region=where.region)
            blocking = [s for s in states if s.blocks_deploy or leftovers_block(s, left.get(s.name))]
            if not blocking and not (args.delete_failed_creates and problems):
                print(f"cdk deploy '{args.env}/*' can proceed", file=out)
            return 1 if blocking or (args.delete_failed_creates and problems) else 0
        s3, sagemaker, glue = session.client("s3"), session.client("sagemaker"), session.client("glue")
        plan = plan_teardown(cloudformation=cloudformation, s3=s3, sagemaker=sagemaker, glue=glue, prefix=prefix,
                             models=models, project=where.project, environment=args.env)
        print(render_plan(plan, environment=args.env, account=where.account, region=where.region, execute=args.execute),
              file=out)
        destroy = destroy_command(args.env, args.config, parser.get_default("config"))
        # A dev environment may still be termination-protected (the config's default is on): cdk destroy is then refused.
        protected = [s.name for s in describe_stacks(cloudformation, list(environment_stack_names(prefix).values()))
                     if s.exists and s.protected]
        if protected:
            destroy = (" && ".join(f"aws cloudformation update-termination-protection --no-enable-termination-protection "
                                   f"--stack-name {name} --region {where.region}" for name in protected)
                       + f" && {destroy}  (termination protection is on; set termination_protection: false for "
                       f"'{args.env}' in the config so the next deploy keeps it off)")
        if not args.execute:
            print(f"Then: {destroy}", file=out)
            return 0
        # First: nothing of the environment may start a retraining or write to a bucket from here on.
        throttle_functions(plan, lambda_client=session.client("lambda"), out=out)
        deactivate_triggers(plan, glue=glue, out=out)
        # Looked at again once quiet: a run started since the first look (the nightly trigger, a retraining the retrain
        # trigger started before it was throttled) is stopped with the rest, never emptied under.
        executions = unended_executions(cloudformation, sagemaker, prefix)
        _, crawlers, job_runs = glue_work(cloudformation, glue, prefix)
        plan = dataclasses.replace(plan, executions=executions, crawlers=crawlers, job_runs=job_runs)
        rounds = 0
        while plan.executions or plan.crawlers or plan.job_runs:
            # Then, or they write to the emptied buckets, register versions into the emptied groups, and keep cdk
            # destroy from deleting their pipelines (DeletePipeline refuses a pipeline with a running execution) and
            # crawlers (DeleteCrawler refuses a running crawler). Until a look finds nothing running: a run started
            # while the last ones were stopped is stopped in turn, never emptied under.
            if rounds == STOP_ROUNDS:
                print(f"lifecycle: still running after {STOP_ROUNDS} rounds of stopping what the environment runs: "
                      f"{describe_running(plan)}; something the teardown does not stop keeps starting runs (a pipeline "
                      "started by hand, a Glue job or crawler started by hand): nothing was emptied or deleted; stop that, "
                      "then run the teardown again", file=sys.stderr)
                return 1
            rounds += 1
            stopping = (stop_glue_work(plan, glue=glue, region=where.region, out=out)
                        + stop_executions(plan, sagemaker=sagemaker, region=where.region, out=out))
            for problem in stopping:
                print(f"lifecycle: {problem}", file=sys.stderr)
            if stopping:
                return 1
            # Looked at again: what the stopped runs wrote and registered before they ended goes too.
            plan = plan_teardown(cloudformation=cloudformation, s3=s3, sagemaker=sagemaker, glue=glue, prefix=prefix,
                                 models=models, project=where.project, environment=args.env)
            print(render_plan(plan, environment=args.env, account=where.account, region=where.region, execute=True),
                  file=out)
        problems = execute_teardown(plan, s3=s3, sagemaker=sagemaker, glue=glue, out=out)
        for problem in problems:
            print(f"lifecycle: could not delete {problem}", file=sys.stderr)
        if problems:
            print(f"{len(problems)} could not be deleted (above); fix the cause and run the teardown again", file=out)
            return 1
        print(f"Now: {destroy}\n(If the Storage stack then stops in DELETE_FAILED on a bucket - a job or a late server "
              "access log wrote after it was emptied - or the Training stack on a pipeline - a retraining started "
              "since - run this teardown again, then the destroy again.)", file=out)
        return 0
    except (CliError, deploy_target.TargetError, BotoCoreError, ClientError) as error:
        return _fail(deploy_target.failure_line(error, where))


def _fail(message: str) -> int:
    print(f"lifecycle: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

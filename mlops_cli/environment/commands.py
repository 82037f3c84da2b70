"""What the operator is told about each stack and the commands printed for it: the repair of a state, the adoption
of what an earlier stack retained, what to run once the deploy has finished, and the ``cdk destroy`` of a teardown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from mlops_cli import retained
from mlops_cli.environment import PROG
from mlops_cli.environment.stacks import DEPLOYABLE, FAILED_CREATE, Left, StackState, leftovers_block
from pipeline_code.core.contract import (
    cfn_exec_role_arn,
    deploy_handler_name,
    NOTIFICATION_TOPIC_OUTPUTS,
    TEAM_TOPIC_OUTPUT_SUFFIX,
    environment_stack_names,
)


def advice(state: StackState, *, account: str, region: str, qualifier: str, left: Optional[Left] = None) -> str:
    """What the state means for `cdk deploy` and what to do about it (``qualifier``: the CDK bootstrap's, whose
    cfn-exec role a rollback or a delete by hand runs as; ``left``: what an earlier stack of its name retained, for a
    stack that does not exist or whose first create failed)."""
    where = f"--region {region}"
    if isinstance(left, str):
        return (f"BLOCKS cdk deploy: {'not deployed' if not state.exists else state.status}, and whether an earlier "
                f"stack of this name left retained resources was not checked: {left}")
    if left is not None and left.blocks:
        first = "" if not state.exists else (
            "delete this failed create first (--delete-failed-creates), then " if state.protected else
            f"delete this failed create first (aws cloudformation delete-stack --stack-name {state.name} {where}), then ")
        return (f"BLOCKS cdk deploy: retained resources of {state.name} exist: adopt them before deploying ({first}see "
                f"below): {'; '.join(left.describe())}")
    if not state.exists:
        return "not deployed" + ("; nothing an earlier stack of this name retained is left" if left is not None else "")
    if state.status in DEPLOYABLE:
        return "ok"
    if state.status.endswith("_IN_PROGRESS"):
        return "an operation is running: wait until it ends, then look again"
    if state.status in FAILED_CREATE:
        if not state.protected:
            return "its first create failed; cdk deploy deletes it and creates it again"
        return (f"BLOCKS cdk deploy: its first create failed and termination protection stops cdk deploy deleting it; "
                f"--delete-failed-creates turns protection off and deletes it ({state.reason or 'see its events'})")
    if state.status == "UPDATE_ROLLBACK_FAILED":
        return ("BLOCKS cdk deploy: an update's rollback failed; see what failed (aws cloudformation describe-stack-events "
                f"--stack-name {state.name} --max-items 40 {where}), fix it, then: aws cloudformation continue-update-rollback "
                f"--stack-name {state.name} --role-arn {cfn_exec_role_arn(account, region, qualifier)} {where} (add "
                "--resources-to-skip with the logical ids of resources that cannot be rolled back)")
    if state.status == "DELETE_FAILED":
        return ("BLOCKS cdk deploy: a deletion failed; see which resource (aws cloudformation describe-stack-events "
                f"--stack-name {state.name} --max-items 40 {where}), then delete it again: aws cloudformation delete-stack "
                f"--stack-name {state.name} --role-arn {cfn_exec_role_arn(account, region, qualifier)} {where} (add --retain-resources "
                "with the logical ids of resources to keep)")
    if state.status in ("CREATE_FAILED", "UPDATE_FAILED"):
        return ("BLOCKS cdk deploy: a deployment with --no-rollback stopped; deploy again, or roll it back (npx cdk "
                "rollback)")
    return f"BLOCKS cdk deploy: state {state.status}"


def render_stacks(states: Sequence[StackState], *, environment: str, account: str, region: str, qualifier: str,
                  left: Optional[Dict[str, Left]] = None, cdk_context: str = "", prefix: str = "",
                  config_option: str = "") -> str:
    left = left or {}
    blocking = [s for s in states if s.blocks_deploy or leftovers_block(s, left.get(s.name))]
    lines = [f"Stacks of environment '{environment}' (account {account}, {region}): "
             + (f"{len(blocking)} block cdk deploy" if blocking else "none blocks cdk deploy")]
    width = max(len(s.name) for s in states)
    for s in states:
        status = f"{s.status} ({'protected' if s.protected else 'unprotected'})" if s.exists else "-"
        lines.append(f"  {s.name.ljust(width)}  {status:40}  "
                     f"{advice(s, account=account, region=region, qualifier=qualifier, left=left.get(s.name))}")
    adopt = [s.name for s in states if isinstance(left.get(s.name), retained.Leftovers) and left[s.name].blocks]
    if adopt:
        components = {name: component for component, name in environment_stack_names(prefix).items()}
        lines.append("Adopt what they left before any deploy, one stack at a time in this order (Storage first: the "
                     "other stacks read its outputs); a new stack would fail on every fixed name and make new KMS keys, "
                     "to which the other stacks' references would then point:")
        for name in adopt:
            # What adoption cannot repair comes first: a role re-created by hand is then found, and imported, by adopt.
            lines += [f"  first: {problem}" for problem in left[name].problems]
            if not left[name].exist:  # only something in the way (deleted first): nothing to import
                continue
            lines += [f"  {command}" for command in adoption_commands(left[name], environment=environment, region=region,
                                                                     component=components[name], cdk_context=cdk_context,
                                                                     config_option=config_option)]
        lines.append(f"  then: npx cdk deploy{cdk_context} '{environment}/*'")
    return "\n".join(lines)


def reconcile_after_deploy(states: Sequence[StackState], left: Dict[str, Left], *, assembly: Path, environment: str,
                           account: str, region: str, prefix: str) -> List[str]:
    """What to run once `cdk deploy` has created the Serving and Operations stacks again while the registry was kept
    (the Storage stack is there, or left its model package groups): the Serving stack comes back with every version
    parameter empty, and its CREATE_COMPLETE comes before the Operations stack's rule that would reconcile it (Operations
    is created after Serving), so each group is reconciled by hand. None when only one of the two is created again (a
    Serving stack created beside an existing Operations stack is reconciled by its rule) or for a new environment."""
    names = environment_stack_names(prefix)
    created = {s.name for s in states if not s.exists or s.status in FAILED_CREATE}
    if names["serving"] not in created or names["operations"] not in created:
        return []
    storage = left.get(names["storage"])
    if names["storage"] in created and not (isinstance(storage, retained.Leftovers) and any(
            storage.stack.template["Resources"][lid]["Type"] == "AWS::SageMaker::ModelPackageGroup" for lid in storage.found)):
        return []
    try:
        template = next(s.template for s in retained.synthesized_stacks(assembly, environment, account, region).values()
                        if s.name == names["storage"])
        groups = sorted(retained.fixed_name(template, r) for r in template["Resources"].values()
                        if r["Type"] == "AWS::SageMaker::ModelPackageGroup")
    except (retained.AssemblyProblem, StopIteration):
        groups = [f"{prefix}-<model>"]
    return ["Then reconcile each model's group: the Serving stack is created again with no version set, before the "
            "Operations stack whose rule reconciles a new Serving stack, so no approved version serves until then (the "
            "reconcile sets the group's latest approved version and creates its endpoint):"] + [
        f"  aws lambda invoke --function-name {deploy_handler_name(prefix)} --cli-binary-format raw-in-base64-out "
        f"--payload '{json.dumps({'action': 'reconcile', 'group': group})}' --region {region} {group}.reconcile.json"
        for group in groups]


def resubscribe_after_deploy(states: Sequence[StackState], left: Dict[str, Left], *, assembly: Path, environment: str,
                             account: str, region: str, prefix: str) -> List[str]:
    """What to run once `cdk deploy` has created the Operations stack again in an environment that existed (its Storage
    stack is there, or something an earlier stack kept was found): its topics come back under new ARNs with no
    subscription (the app subscribes nobody), so people are subscribed again - to the notices, the watchdog and each
    owner team's topic the synthesized stack outputs. None for a new environment or an Operations stack that is there."""
    names = environment_stack_names(prefix)
    created = {s.name for s in states if not s.exists or s.status in FAILED_CREATE}
    existed = names["storage"] not in created or any(isinstance(v, retained.Leftovers) and v.exist for v in left.values())
    if names["operations"] not in created or not existed:
        return []
    outputs = list(NOTIFICATION_TOPIC_OUTPUTS)
    try:
        template = next(s.template for s in retained.synthesized_stacks(assembly, environment, account, region).values()
                        if s.name == names["operations"])
        outputs += sorted(o for o in template.get("Outputs", {}) if o.endswith(TEAM_TOPIC_OUTPUT_SUFFIX))
    except (retained.AssemblyProblem, StopIteration):
        pass
    arn = ("$(aws cloudformation describe-stacks --region {region} --stack-name {stack} --query "
           "\"Stacks[0].Outputs[?OutputKey=='{output}'].OutputValue\" --output text)")
    return ["Then subscribe people again: the Operations stack's topics are created again (the notices' and the "
            "watchdog's under new ARNs) with no subscription (the app subscribes nobody), so no alarm, failed rollout or "
            "dead letter reaches anyone until then; for each address that was subscribed (an email subscription waits "
            "for its confirmation):"] + [
        f"  aws sns subscribe --region {region} --protocol email --notification-endpoint <address> --topic-arn "
        + arn.format(region=region, stack=names["operations"], output=output) for output in outputs]


def mapping_file(stack_name: str) -> str:
    """Where ``adopt`` writes a stack's resource mapping by default (the current directory)."""
    return f"{stack_name}.resource-mapping.json"


def adoption_commands(left: retained.Leftovers, *, environment: str, region: str, component: str, cdk_context: str,
                      mapping: str = "", config_option: str = "") -> List[str]:
    """The commands that adopt ``left``: write the mapping, import it, then deploy the stack (which creates what was
    deleted and adopts by name what the import could not hold)."""
    mapping = mapping or mapping_file(left.stack.name)
    return [f"{PROG} --env {environment}{config_option} --region {region} adopt --stack {component}  (writes {mapping})",
            f"npx cdk import{cdk_context} --resource-mapping {mapping} '{left.stack.selector}'",
            f"npx cdk deploy{cdk_context} --exclusively --import-existing-resources '{left.stack.selector}'"]


def destroy_command(environment: str, config: str, default_config: str) -> str:
    """The `cdk destroy` command for the environment (naming the config when it is not the default)."""
    return f"npx cdk destroy{cdk_context(config, default_config)} '{environment}/*'"


def cdk_context(config: str, default_config: str) -> str:
    """The CDK CLI's option naming the config (" -c mlops-loop:config=<file>"), "" for the default one."""
    return f" -c mlops-loop:config={config}" if config != default_config else ""

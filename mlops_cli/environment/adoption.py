"""What an earlier stack of a name retained (:mod:`mlops_cli.retained`), per stack of the environment, and the
``adopt`` command: the ``cdk import`` resource mapping of one such stack and the commands that adopt it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Sequence

from mlops_cli import retained
from mlops_cli.environment import PROG, CliError
from mlops_cli.environment.commands import adoption_commands
from mlops_cli.environment.stacks import FAILED_CREATE, Left, StackState, describe_stacks
from pipeline_code.core.contract import environment_stack_names


def check_leftovers(session: Any, states: Sequence[StackState], *, assembly: Path, environment: str, account: str,
                    region: str) -> Dict[str, Left]:
    """For each stack of ``states`` that does not exist or whose first create failed, what an earlier stack of its
    name retained that is still there (or why that could not be checked)."""
    open_names = [s.name for s in states if not s.exists or s.status in FAILED_CREATE]
    if not open_names:
        return {}
    try:
        synthesized = retained.synthesized_stacks(assembly, environment, account, region)
    except retained.AssemblyProblem as problem:
        return {name: str(problem) for name in open_names}
    finder = retained.Finder(session)
    found: Dict[str, Left] = {}
    for name in open_names:
        if name not in synthesized:
            found[name] = (f"the synthesized app at {assembly} has no stack {name}: synthesize it again "
                           "(bash scripts/synth.sh)")
        else:
            found[name] = finder.leftovers(synthesized[name])
    return found


def adopt(session: Any, *, component: str, prefix: str, assembly: Path, environment: str, account: str, region: str,
          mapping: str, config_option: str, context: str, out: Any) -> int:
    """Write the `cdk import` resource mapping of the ``component`` stack, which must not exist, from what an earlier
    stack of its name retained, and print the commands that adopt it; no AWS write. 0: written, nothing left over; 1:
    something must be adopted by hand (said on stderr)."""
    name = environment_stack_names(prefix)[component]
    (state,) = describe_stacks(session.client("cloudformation"), [name])
    if state.exists:
        raise CliError(f"stack {name} exists ({state.status}): adopt is for a stack that was deleted; "
                       + (f"delete this failed create first ({PROG} --env {environment} stacks --delete-failed-creates, "
                          "or aws cloudformation delete-stack), then adopt" if state.status in FAILED_CREATE else
                          "its resources are its own, nothing to adopt"))
    try:
        synthesized = retained.synthesized_stacks(assembly, environment, account, region)
    except retained.AssemblyProblem as problem:
        raise CliError(str(problem)) from None
    if name not in synthesized:
        raise CliError(f"the synthesized app at {assembly} has no stack {name}: synthesize it again (bash scripts/synth.sh)")
    left = retained.Finder(session).leftovers(synthesized[name])
    if not left.exist:
        if left.problems:  # nothing to import, but something in the way of the create (a table an earlier version kept)
            for problem in left.problems:
                print(f"{name}: nothing it retains is left over, but first: {problem}", file=out)
            return 1
        print(f"{name}: nothing it retains is left over; cdk deploy creates it", file=out)
        return 0
    adoption = retained.plan(left)
    Path(mapping).write_text(json.dumps(adoption.mapping, indent=2, sort_keys=True) + "\n")
    print(f"{name} ({synthesized[name].selector}): {len(adoption.mapping)} retained resources to import, written to "
          f"{mapping}:", file=out)
    for lid, identifier in sorted(adoption.mapping.items()):
        print(f"  {lid}: {', '.join(f'{k}={v}' for k, v in identifier.items())}", file=out)
    if adoption.by_name:
        print(f"adopted by name by the deploy after the import (--import-existing-resources): "
              f"{', '.join(left.labels[lid] for lid in adoption.by_name)}", file=out)
    commands = adoption_commands(left, environment=environment, region=region, component=component, cdk_context=context,
                                 mapping=mapping, config_option=config_option)[1:]
    print("Then, with credentials that may deploy the environment:\n" + "\n".join(f"  {c}" for c in commands), file=out)
    for problem in adoption.by_hand:
        print(f"lifecycle: not adopted: {problem}", file=sys.stderr)
    return 1 if adoption.by_hand else 0

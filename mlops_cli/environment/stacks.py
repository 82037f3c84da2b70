"""The environment's stacks as CloudFormation describes them, what each state means for ``cdk deploy``, and the
deletion of the failed first creates termination protection keeps in its way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from mlops_cli import retained
from mlops_cli import target as deploy_target
from pipeline_code.core.contract import region_of_arn


# A first create that failed: CloudFormation takes no update of such a stack, only its deletion, and `cdk deploy`
# deletes it before creating it again (the CDK CLI's `isCreationFailure`).
FAILED_CREATE = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED")
# States `cdk deploy` updates from.
DEPLOYABLE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
              "IMPORT_ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS")


# How long `--delete-failed-creates` waits for each deletion: polls every 10 s, up to 30 minutes.
DELETE_WAIT = {"Delay": 10, "MaxAttempts": 180}


@dataclass(frozen=True)
class StackState:
    """One stack of the environment as CloudFormation describes it (``status`` "" when it does not exist)."""

    name: str
    stack_id: str = ""
    status: str = ""
    protected: bool = False
    reason: str = ""

    @property
    def exists(self) -> bool:
        return bool(self.status)

    @property
    def deletable_failed_create(self) -> bool:
        """A failed first create that termination protection keeps `cdk deploy` from deleting."""
        return self.status in FAILED_CREATE and self.protected

    @property
    def blocks_deploy(self) -> bool:
        if not self.exists or self.status in DEPLOYABLE or self.status.endswith("_IN_PROGRESS"):
            return False
        return not (self.status in FAILED_CREATE and not self.protected)


def describe_stacks(cloudformation: Any, names: Sequence[str]) -> List[StackState]:
    """Each stack of ``names`` as it is now (one DescribeStacks by name each: it answers one stack, no pages)."""
    from botocore.exceptions import ClientError

    states = []
    for name in names:
        try:
            (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except ClientError as error:
            if deploy_target.error_code(error) == "ValidationError" and "does not exist" in str(error):
                states.append(StackState(name))
                continue
            raise
        states.append(StackState(name, stack["StackId"], stack["StackStatus"], bool(stack.get("EnableTerminationProtection")),
                                 stack.get("StackStatusReason", "")))
    return states


# What an earlier stack of a name left (retained.Leftovers), or why that was not checked (a line).
Left = Union[retained.Leftovers, str]


def leftovers_block(state: StackState, left: Optional[Left]) -> bool:
    """Whether what an earlier stack of ``state``'s name left (or not knowing it) keeps `cdk deploy` from creating it."""
    return left is not None and (isinstance(left, str) or left.blocks)


def delete_failed_creates(cloudformation: Any, states: Sequence[StackState], *, out: Any) -> List[str]:
    """Turn termination protection off and delete each failed first create it keeps from `cdk deploy` (last created
    first), waiting for each deletion; every other stack is left alone. Returns what could not be deleted."""
    from botocore.exceptions import WaiterError

    problems = []
    for state in reversed([s for s in states if s.deletable_failed_create]):
        # A rollback that failed left resources it could not delete; the stack's deletion keeps those whose policy is
        # RetainExceptOnCreate (deleted only by the rollback of the create that made them), so with fixed names they
        # would make the next create fail "already exists": named, to be deleted by hand first.
        left = _resources_left(cloudformation, state.stack_id) if state.status == "ROLLBACK_FAILED" else []
        # By stack id: the failed stack itself, never one created under its name meanwhile.
        cloudformation.update_termination_protection(StackName=state.stack_id, EnableTerminationProtection=False)
        cloudformation.delete_stack(StackName=state.stack_id, ClientRequestToken=f"mlops-lifecycle-{uuid.uuid4()}")
        print(f"{state.name}: termination protection off, deleting ({state.status})", file=out)
        try:
            cloudformation.get_waiter("stack_delete_complete").wait(StackName=state.stack_id, WaiterConfig=DELETE_WAIT)
        except WaiterError as error:
            status = (error.last_response or {}).get("Stacks", [{}])[0].get("StackStatus", "unknown")
            # In the stack's region (its id is its ARN), not the shell's default.
            region = region_of_arn(state.stack_id) or cloudformation.meta.region_name
            problems.append(f"{state.name}: the deletion ended {status}: see aws cloudformation describe-stack-events "
                            f"--stack-name {state.stack_id} --region {region}")
            continue
        print(f"{state.name}: deleted", file=out)
        if left:
            problems.append(f"{state.name}: its failed rollback left {len(left)} resources, which its deletion may have "
                            f"kept (RetainExceptOnCreate), and a fixed name among them makes the next create fail: "
                            f"{'; '.join(left)}; delete those still there by hand, then cdk deploy")
    return problems


def _resources_left(cloudformation: Any, stack_id: str) -> List[str]:
    """The resources of ``stack_id`` not deleted (type and physical id, all pages)."""
    return [f"{r['ResourceType']} {r['PhysicalResourceId']}" for r in live_resources(cloudformation, stack_id)]


def live_resources(cloudformation: Any, stack: str) -> Iterator[Dict[str, Any]]:
    """The resource summaries of ``stack`` that still have a physical resource (all pages)."""
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        for resource in page.get("StackResourceSummaries", []):
            if resource.get("PhysicalResourceId") and resource.get("ResourceStatus") != "DELETE_COMPLETE":
                yield resource

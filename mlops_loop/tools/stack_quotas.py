"""CloudFormation's per-template quotas, checked on the synthesized assembly: what grows with an environment's models
(alarms, schedules, rules, pipeline definitions) is refused at synth, naming the stack, not an hour into a deploy.

The quotas (AWS CloudFormation User Guide, "Understand CloudFormation quotas"): a template read from S3 (how
``cdk deploy`` hands over every template past 50 KB) is at most 1 MB, which CreateChangeSet enforces as "Template may
not exceed 1000000 bytes in size"; at most 500 resources, 200 outputs, 200 parameters and 200 mappings per template.
The CDK refuses a stack over 500 resources itself (``TooManyResourcesInStack``), while the templates are written;
:func:`too_many_resources` turns that into the same advice."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional

from .cloud_assembly import stacks

# What CreateChangeSet accepts from S3, in bytes of the file the CDK writes and uploads (whitespace counts).
MAX_TEMPLATE_BYTES = 1_000_000
MAX_RESOURCES = 500
MAX_OUTPUTS = 200
MAX_PARAMETERS = 200
MAX_MAPPINGS = 200

# The section of a template and its quota, for the counted ones.
_COUNTED = (("Resources", "resources", MAX_RESOURCES), ("Outputs", "outputs", MAX_OUTPUTS),
            ("Parameters", "parameters", MAX_PARAMETERS), ("Mappings", "mappings", MAX_MAPPINGS))

# The CDK's own refusal, as jsii passes it on: "TooManyResourcesInStack: Number of resources in stack 'dev/Operations':
# 814 is greater than allowed maximum of 500: ...".
_TOO_MANY = re.compile(r"TooManyResourcesInStack: Number of resources in stack '([^'/]+)/([^']+)': (\d+) is greater than "
                       r"allowed maximum of (\d+)")


def advice(stage: str, models: int) -> str:
    """What to do about a template of environment ``stage`` (serving ``models`` models) over a quota."""
    return (f"the deploy would fail. Its size grows with the environment's models: serve fewer in environment {stage} "
            f"(environments.{stage}.models lists {models}) and move the others to a second project config "
            "(docs/configuration.md \"A second project (another config)\")")


def quota_problems(outdir: str | Path, models_of: Callable[[str], int]) -> list[str]:
    """One line per template of the assembly at ``outdir`` over one of CloudFormation's quotas above (none when all
    fit), each naming the stack, the quota and :func:`advice`; ``models_of`` gives an environment's model count."""
    problems = []
    for stack in stacks(outdir):
        where = f"stack {stack.stage}/{stack.construct_id}"
        size = stack.template_path.stat().st_size
        if size > MAX_TEMPLATE_BYTES:
            problems.append(f"{where}: its template is {size:,} bytes, over CloudFormation's {MAX_TEMPLATE_BYTES:,}-byte "
                            f"limit for a template: {advice(stack.stage, models_of(stack.stage))}")
        template = stack.template
        for section, what, limit in _COUNTED:
            count = len(template.get(section) or {})
            if count > limit:
                problems.append(f"{where}: its template has {count} {what}, over CloudFormation's {limit} per template: "
                                f"{advice(stack.stage, models_of(stack.stage))}")
    return problems


def too_many_resources(error: BaseException, models_of: Callable[[str], int]) -> Optional[str]:
    """The CDK's ``TooManyResourcesInStack`` refusal in ``error`` as one line with :func:`advice`; None for another error."""
    found = _TOO_MANY.search(str(error))
    if not found:
        return None
    stage, construct_id, count, limit = found.groups()
    return (f"stack {stage}/{construct_id}: its template has {count} resources, over CloudFormation's {limit} per "
            f"template: {advice(stage, models_of(stage))}")

"""The parts of ``python -m mlops_cli.lifecycle`` (:mod:`mlops_cli.lifecycle`, the command line), one job per module:

* :mod:`.stacks`: the environment's stacks as CloudFormation describes them, and the deletion of failed first creates;
* :mod:`.adoption`: what an earlier stack of a name retained, and the ``adopt`` command's resource mapping;
* :mod:`.commands`: what the operator is told, per stack, and the commands printed for it (repairs, imports, deploys,
  the ``cdk destroy`` of a teardown);
* :mod:`.teardown`: the emptying of a dev environment (its plan, rendering and execution).
"""

from __future__ import annotations

# The command the printed commands name.
PROG = "python -m mlops_cli.lifecycle"


class CliError(Exception):
    """A problem the operator can fix, or a refusal; one line, exit code 2."""

"""Summarize a synthesized app: stacks per environment, resource counts, cdk-nag and cfn-lint results.

Usage: ``python -m mlops_loop.tools.summary [cdk.out]``. Exits 1 when cfn-lint reports an error
or cdk-nag recorded an unacknowledged finding, so the main job fails on either.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from .cloud_assembly import nag_violations, stacks
from .lint import lint_cache, lint_stacks


def main(argv: list[str]) -> int:
    outdir = Path(argv[0] if argv else "cdk.out")
    all_stacks = list(stacks(outdir))
    if not all_stacks:
        print(f"no stacks found in {outdir}", file=sys.stderr)
        return 1
    lint = lint_stacks(all_stacks, cache=lint_cache())
    violations = nag_violations(outdir)

    print(f"\nmlops-loop synth summary ({outdir})")
    print(f"{'environment':<12} {'stack':<34} {'resources':>9}  {'protected':<9}  top resource types")
    for stack in all_stacks:
        types = Counter(r["Type"] for r in stack.template.get("Resources", {}).values())
        top = ", ".join(f"{t.split('::', 1)[1]}={n}" for t, n in types.most_common(4))
        print(
            f"{stack.stage:<12} {stack.stack_name:<34} {sum(types.values()):>9}  "
            f"{'yes' if stack.termination_protection else 'no':<9}  {top}"
        )
    per_stage = Counter(s.stage for s in all_stacks)
    print(f"\nenvironments: {len(per_stage)} ({', '.join(f'{k}: {v} stacks' for k, v in per_stage.items())})")
    # The packs run inside synth (mlops_loop/nag.py); a finding there fails synth before this point.
    print(f"cdk-nag (AwsSolutions + NIST 800-53 R5): {len(violations)} unacknowledged finding(s)")
    for v in violations:
        print(f"  {v['pack']}: {v.get('ruleName')} {v.get('description', '')}")
    print(f"cfn-lint: {lint.errors} error(s), {lint.warnings} warning(s), {lint.informational} informational")
    for line in lint.lines:
        print(f"  {line}")
    return 1 if (lint.errors or lint.warnings or violations) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

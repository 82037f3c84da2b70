"""Summarize a synthesized app: stacks per environment, resource counts, cdk-nag and cfn-lint results.

Usage: ``python -m mlops_loop.tools.summary [cdk.out] [--format text|json]``. Exits 1 when cfn-lint reports an error
or a warning or cdk-nag recorded an unacknowledged finding, so the main job fails on either; 2 with one line when the
directory is not a cloud assembly (or holds no stack) or cfn-lint could not run, so a pipeline tells a finding from a
summary that was not made. ``--format json`` prints one JSON document (the stacks, the nag findings, cfn-lint's counts
and lines, ``ok``) for a pipeline to read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

from .cloud_assembly import nag_violations, stacks
from .lint import lint_cache, lint_stacks

FIX = "run bash scripts/synth.sh"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_loop.tools.summary",
        description="Stacks per environment, resource counts, cdk-nag and cfn-lint results of a synthesized app. "
                    "Exit 0: clean; 1: a cfn-lint error or warning or an unacknowledged cdk-nag finding; 2: no "
                    "summary (not a cloud assembly, no stacks, cfn-lint failed to run, bad arguments).",
    )
    parser.add_argument("assembly", nargs="?", default="cdk.out", help="the cloud assembly directory (default: cdk.out)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    return parser


def _refuse(message: str) -> int:
    print(f"summary: {message}", file=sys.stderr)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    outdir = Path(args.assembly)
    if not (outdir / "manifest.json").is_file():
        return _refuse(f"{outdir} is not a cloud assembly (no manifest.json); {FIX}")
    all_stacks = list(stacks(outdir))
    if not all_stacks:
        return _refuse(f"no stacks found in {outdir}; {FIX}")
    try:
        lint = lint_stacks(all_stacks, cache=lint_cache())
    except RuntimeError as error:  # cfn-lint did not run, or answered about files it was not given
        return _refuse(str(error).strip().splitlines()[0] if str(error).strip() else "cfn-lint failed to run")
    violations = nag_violations(outdir)
    status = 1 if (lint.errors or lint.warnings or violations) else 0
    types_of = {stack.artifact_id: Counter(r["Type"] for r in stack.template.get("Resources", {}).values())
                for stack in all_stacks}

    if args.format == "json":
        print(json.dumps({
            "assembly": str(outdir),
            "stacks": [{"environment": stack.stage, "stack": stack.stack_name,
                        "resources": sum(types_of[stack.artifact_id].values()),
                        "protected": stack.termination_protection,
                        "resource_types": dict(sorted(types_of[stack.artifact_id].items()))} for stack in all_stacks],
            "cdk_nag": [{"pack": v["pack"], "rule": v.get("ruleName"), "description": v.get("description", "")}
                        for v in violations],
            "cfn_lint": {"errors": lint.errors, "warnings": lint.warnings, "informational": lint.informational,
                         "findings": lint.lines},
            "ok": status == 0,
        }, indent=2))
        return status

    print(f"\nmlops-loop synth summary ({outdir})")
    print(f"{'environment':<12} {'stack':<34} {'resources':>9}  {'protected':<9}  top resource types")
    for stack in all_stacks:
        types = types_of[stack.artifact_id]
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
    return status


if __name__ == "__main__":
    sys.exit(main())

"""cfn-lint over synthesized templates, with the project's justified exceptions in one place (.cfnlintrc)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .cloud_assembly import SynthesizedStack

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LintResult:
    errors: int = 0
    warnings: int = 0
    informational: int = 0
    lines: list[str] = field(default_factory=list)


def lint_stacks(stacks: Iterable[SynthesizedStack]) -> LintResult:
    """:func:`lint_templates` over the stacks' templates, each against the region it deploys to.

    cfn-lint checks resource types, properties and values against the region it is given (us-east-1 by
    default), and regions differ: eu-west-1 lacks about 220 of us-east-1's resource types. One cfn-lint
    run per region.
    """
    by_region: dict[Optional[str], list[Path]] = {}
    for stack in stacks:
        by_region.setdefault(stack.region, []).append(stack.template_path)
    result = LintResult()
    for region, paths in by_region.items():
        found = lint_templates(paths, region=region)
        result.errors += found.errors
        result.warnings += found.warnings
        result.informational += found.informational
        result.lines += found.lines
    return result


def lint_templates(paths: Sequence[Path], *, region: Optional[str] = None) -> LintResult:
    """Run cfn-lint (config: .cfnlintrc at the repo root) over ``paths`` for ``region`` (default: cfn-lint's,
    us-east-1) and count findings by level.

    In a process of its own, on purpose: run through its API in the caller's process, what cfn-lint leaves
    behind made every later test of that pytest worker 3-4x slower (the deploy-permission tests after a
    lint of the whole app: 48 s instead of 11 s), far more than the 1.4 s a process start costs.
    """
    regions = ["--regions", region] if region else []
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "json", *regions, "--", *map(str, paths)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 2, 4, 6, 8, 10, 12, 14) or not proc.stdout.strip().startswith("["):
        raise RuntimeError(f"cfn-lint failed to run: {proc.stderr or proc.stdout}")
    result = LintResult()
    for match in json.loads(proc.stdout):
        level = match["Level"]
        if level == "Error":
            result.errors += 1
        elif level == "Warning":
            result.warnings += 1
        else:
            result.informational += 1
        location = match["Location"]
        result.lines.append(
            f"{level} {match['Rule']['Id']} {Path(match['Filename']).name}:"
            f"{location['Start']['LineNumber']} {match['Message']}"
        )
    return result

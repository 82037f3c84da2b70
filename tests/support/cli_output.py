"""What the workstation tools write: the line every tool that acts on an environment prints first on stderr
(``mlops_cli.target.announce``), checked to be there, and what follows it."""

from __future__ import annotations

import re

# project=<p> environment=<e> account=<12 digits> region=<r> (config <file>), or (config not read: ...).
TARGET_LINE = re.compile(r"project=[a-z][a-z0-9-]* environment=\S+ account=\d{12} region=\S+ "
                         r"\((config \S.*|config not read: --region, --project and --account given)\)")


def after_target_line(err: str) -> str:
    """``err`` without its first line, which must be the target line: what the tool said once it knew what it acts
    on."""
    first, _, rest = err.partition("\n")
    assert TARGET_LINE.fullmatch(first), f"not the target line: {first!r}"
    return rest
